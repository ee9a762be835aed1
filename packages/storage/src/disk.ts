// The file system and the clock as the storage layer sees them: two small interfaces, so that
// tests inject faults (short writes, EIO on write or fsync, ENOSPC) and control time. `nodeDisk`
// is a thin wrapper on node:fs/promises; everything in this package reaches the disk through a
// `Disk`, including the helpers at the bottom of this file.

import { writeSync, writevSync } from "node:fs";
import * as fs from "node:fs/promises";
import { dirname } from "node:path";

export interface FileStat {
  readonly size: number;
  readonly mtimeMs: number;
  readonly isDirectory: boolean;
}

/** An open file. Positions are byte positions in the file; writes never use the file cursor. */
export interface DiskFile {
  /** Writes `buffer` at `position`; resolves with the bytes written (may be fewer: a short write). */
  write(buffer: Uint8Array, position: number): Promise<number>;
  /** Writes the buffers back to back at `position` in one call; may also be short. */
  writev(buffers: readonly Uint8Array[], position: number): Promise<number>;
  /**
   * The same write done on the calling thread (blocking it until the kernel has taken the bytes:
   * the page cache, normally microseconds); returns the bytes written (may be short) or throws like
   * writev, or returns null when this file cannot write synchronously now (the caller then uses
   * writev). Only for small appends: a slow disk stalls the whole event loop for the call's duration.
   */
  writeSync(buffers: readonly Uint8Array[], position: number): number | null;
  /** Reads up to `length` bytes at `position` into `buffer[offset..]`; 0 at the end of the file. */
  read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<number>;
  /** Makes the file's data durable (fdatasync: the size is included, other metadata is not). */
  fsync(): Promise<void>;
  truncate(length: number): Promise<void>;
  stat(): Promise<FileStat>;
  /** Closes after pending operations on the handle finish (as fs.FileHandle does). */
  close(): Promise<void>;
}

/** "r": read only; "r+": read/write, must exist; "w+": read/write, created or emptied; "wx": new file only. */
export type OpenFlags = "r" | "r+" | "w+" | "wx";

export interface Disk {
  open(path: string, flags: OpenFlags): Promise<DiskFile>;
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
  readdir(path: string): Promise<string[]>;
  /** Rejects with code ENOENT when the path does not exist. */
  stat(path: string): Promise<FileStat>;
  mkdir(path: string): Promise<void>;
  /** Removes a directory and everything in it. */
  rmdir(path: string): Promise<void>;
  /** Makes a directory's entries (creations, renames, unlinks) durable. */
  fsyncDir(path: string): Promise<void>;
}

export interface Clock {
  nowMs(): number;
}

export const systemClock: Clock = { nowMs: () => Date.now() };

function bytesWritten(r: { bytesWritten: number }): number {
  return r.bytesWritten;
}

function toStat(s: { size: number; mtimeMs: number; isDirectory(): boolean }): FileStat {
  return { size: s.size, mtimeMs: s.mtimeMs, isDirectory: s.isDirectory() };
}

class NodeFile implements DiskFile {
  private readonly fh: fs.FileHandle;
  constructor(fh: fs.FileHandle) {
    this.fh = fh;
  }
  async write(buffer: Uint8Array, position: number): Promise<number> {
    return (await this.fh.write(buffer, 0, buffer.byteLength, position)).bytesWritten;
  }
  writev(buffers: readonly Uint8Array[], position: number): Promise<number> {
    // A single buffer takes Node's plain write path (less work per call than writev).
    if (buffers.length === 1) {
      const b = buffers[0]!;
      return this.fh.write(b, 0, b.byteLength, position).then(bytesWritten);
    }
    return this.fh.writev(buffers as Uint8Array[], position).then(bytesWritten);
  }
  writeSync(buffers: readonly Uint8Array[], position: number): number {
    if (buffers.length === 1) {
      const b = buffers[0]!;
      return writeSync(this.fh.fd, b, 0, b.byteLength, position);
    }
    return writevSync(this.fh.fd, buffers as Uint8Array[], position);
  }
  async read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    return (await this.fh.read(buffer, offset, length, position)).bytesRead;
  }
  fsync(): Promise<void> {
    return this.fh.datasync();
  }
  truncate(length: number): Promise<void> {
    return this.fh.truncate(length);
  }
  async stat(): Promise<FileStat> {
    return toStat(await this.fh.stat());
  }
  close(): Promise<void> {
    return this.fh.close();
  }
}

export const nodeDisk: Disk = {
  async open(path, flags) {
    return new NodeFile(await fs.open(path, flags));
  },
  rename: (from, to) => fs.rename(from, to),
  unlink: (path) => fs.unlink(path),
  readdir: (path) => fs.readdir(path),
  stat: async (path) => toStat(await fs.stat(path)),
  async mkdir(path) {
    await fs.mkdir(path, { recursive: true });
  },
  rmdir: (path) => fs.rm(path, { recursive: true, force: true }),
  async fsyncDir(path) {
    const fh = await fs.open(path, "r");
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  },
};

// ---- helpers built on a Disk ------------------------------------------------------------------

export function isNotFound(e: unknown): boolean {
  return (e as { code?: unknown } | null)?.code === "ENOENT";
}

export async function exists(disk: Disk, path: string): Promise<boolean> {
  try {
    await disk.stat(path);
    return true;
  } catch (e) {
    if (isNotFound(e)) return false;
    throw e;
  }
}

/** Writes all of `buffers` at `position`, finishing short writes; throws if a write makes no progress. */
export function writeFully(file: DiskFile, buffers: readonly Uint8Array[], position: number): Promise<void> {
  let total = 0;
  for (const b of buffers) total += b.byteLength;
  // One write is the common case: no async frame for it (this runs once per append round).
  return file
    .writev(buffers, position)
    .then((written) => (written === total ? undefined : finishWrite(file, buffers, position, written, total)));
}

async function finishWrite(
  file: DiskFile,
  buffers: readonly Uint8Array[],
  position: number,
  written: number,
  total: number,
): Promise<void> {
  while (written < total) {
    if (written < 0) throw new Error(`write returned ${written}`);
    const rest = remainingAfter(buffers, written);
    const n = await file.writev(rest, position + written);
    if (n <= 0) throw Object.assign(new Error("write made no progress"), { code: "EIO" });
    written += n;
  }
}

/**
 * writeFully on the calling thread: true once all of `buffers` is written (short writes finished
 * synchronously too), false when the file cannot write synchronously now (nothing was written;
 * the caller falls back to writeFully). Throws as writeFully rejects.
 */
export function writeFullySync(file: DiskFile, buffers: readonly Uint8Array[], position: number): boolean {
  let total = 0;
  for (const b of buffers) total += b.byteLength;
  let written = 0;
  let rest = buffers;
  for (;;) {
    const n = file.writeSync(rest, position + written);
    if (n === null) {
      // Only the first call may decline (a file either writes synchronously or it does not); past
      // that point a declined call is a broken DiskFile.
      if (written > 0) throw new Error("writeSync declined after a partial synchronous write");
      return false;
    }
    if (n < 0) throw new Error(`write returned ${n}`);
    if (n === 0 && written < total) throw Object.assign(new Error("write made no progress"), { code: "EIO" });
    written += n;
    if (written >= total) return true;
    rest = remainingAfter(buffers, written);
  }
}

/** The tail of `buffers` after skipping `skip` bytes, as views (no copy). */
function remainingAfter(buffers: readonly Uint8Array[], skip: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let left = skip;
  for (const b of buffers) {
    if (left >= b.byteLength) {
      left -= b.byteLength;
      continue;
    }
    out.push(left > 0 ? b.subarray(left) : b);
    left = 0;
  }
  return out;
}

/** Reads up to `length` bytes at `position`, looping over short reads; fewer only at the end of the file. */
export async function readFully(file: DiskFile, buffer: Uint8Array, length: number, position: number): Promise<number> {
  let done = 0;
  while (done < length) {
    const n = await file.read(buffer, done, length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}

/** A whole file's bytes, or null if it does not exist. Only for small files (checkpoints, indexes). */
export async function readWholeFile(disk: Disk, path: string): Promise<Buffer | null> {
  let file: DiskFile;
  try {
    file = await disk.open(path, "r");
  } catch (e) {
    if (isNotFound(e)) return null;
    throw e;
  }
  try {
    const { size } = await file.stat();
    const buf = Buffer.allocUnsafe(size);
    const n = await readFully(file, buf, size, 0);
    return n === size ? buf : buf.subarray(0, n);
  } finally {
    await file.close();
  }
}

/**
 * Replaces a file atomically and durably: writes `<path>.<n>.tmp`, fsyncs it, renames it over `path`
 * and fsyncs the directory (so the rename survives a crash).
 */
let tmpCounter = 0;

export async function writeFileDurable(disk: Disk, path: string, data: readonly Uint8Array[]): Promise<void> {
  // A name of its own, so concurrent replacements of one file never share a temp file.
  const tmp = `${path}.${process.pid}-${++tmpCounter}.tmp`;
  const file = await disk.open(tmp, "w+");
  try {
    await writeFully(file, data, 0);
    await file.fsync();
  } finally {
    await file.close();
  }
  await disk.rename(tmp, path);
  await disk.fsyncDir(dirname(path));
}

/** Unlinks a file that may already be gone. */
export async function unlinkIfExists(disk: Disk, path: string): Promise<void> {
  try {
    await disk.unlink(path);
  } catch (e) {
    if (!isNotFound(e)) throw e;
  }
}
