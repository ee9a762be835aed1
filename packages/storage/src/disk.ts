// The file system as the storage layer sees it: a small interface so tests can inject faults
// (short writes, EIO on write or fsync, ENOSPC) and the real one is a thin wrapper on fs/promises.

import * as fs from "node:fs/promises";

export interface DiskFile {
  /** Writes all buffers at `position`; resolves with the bytes written (a short write is possible). */
  writev(buffers: readonly Uint8Array[], position: number): Promise<number>;
  read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<number>;
  datasync(): Promise<void>;
  truncate(length: number): Promise<void>;
  size(): Promise<number>;
  close(): Promise<void>;
}

export interface Disk {
  open(path: string, flags: "r" | "r+" | "w+" | "a+"): Promise<DiskFile>;
  readFile(path: string): Promise<Buffer>;
  /** Writes a whole file atomically: temp file, fsync, rename. */
  writeFileAtomic(path: string, data: Uint8Array): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
  readdir(path: string): Promise<string[]>;
  mkdir(path: string): Promise<void>;
  rmdir(path: string): Promise<void>;
  exists(path: string): Promise<boolean>;
}

class NodeFile implements DiskFile {
  private readonly fh: fs.FileHandle;
  constructor(fh: fs.FileHandle) {
    this.fh = fh;
  }
  async writev(buffers: readonly Uint8Array[], position: number): Promise<number> {
    const r = await this.fh.writev(buffers as Uint8Array[], position);
    return r.bytesWritten;
  }
  async read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    const r = await this.fh.read(buffer, offset, length, position);
    return r.bytesRead;
  }
  datasync(): Promise<void> {
    return this.fh.datasync();
  }
  truncate(length: number): Promise<void> {
    return this.fh.truncate(length);
  }
  async size(): Promise<number> {
    return (await this.fh.stat()).size;
  }
  close(): Promise<void> {
    return this.fh.close();
  }
}

export const nodeDisk: Disk = {
  async open(path, flags) {
    return new NodeFile(await fs.open(path, flags));
  },
  readFile: (path) => fs.readFile(path),
  async writeFileAtomic(path, data) {
    const tmp = `${path}.tmp`;
    const fh = await fs.open(tmp, "w");
    try {
      await fh.writeFile(data);
      await fh.datasync();
    } finally {
      await fh.close();
    }
    await fs.rename(tmp, path);
  },
  rename: (a, b) => fs.rename(a, b),
  unlink: (p) => fs.unlink(p),
  readdir: (p) => fs.readdir(p),
  async mkdir(p) {
    await fs.mkdir(p, { recursive: true });
  },
  rmdir: (p) => fs.rm(p, { recursive: true, force: true }),
  async exists(p) {
    try {
      await fs.access(p);
      return true;
    } catch {
      return false;
    }
  },
};

export interface Clock {
  nowMs(): number;
}

export const systemClock: Clock = { nowMs: () => Date.now() };
