// Test helpers: temp dirs, batches, a controllable clock and a fault-injecting disk.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildRecordBatch, decodeRecords } from "@sluice/protocol/records/record-batch.ts";
import { type Clock, type Disk, type DiskFile, nodeDisk } from "../src/disk.ts";

export function tempDir(prefix = "sluice-storage-"): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function batch(values: string[], opts: { key?: string | null; timestamp?: bigint } = {}): Buffer {
  return buildRecordBatch({
    records: values.map((v) => ({
      key: opts.key === undefined ? null : opts.key === null ? null : Buffer.from(opts.key),
      value: Buffer.from(v),
      timestamp: opts.timestamp ?? 1_000n,
    })),
  });
}

export function keyed(entries: [string, string | null][], timestamp = 1_000n): Buffer {
  return buildRecordBatch({
    records: entries.map(([k, v]) => ({ key: Buffer.from(k), value: v === null ? null : Buffer.from(v), timestamp })),
  });
}

/** "offset:value" for every record in a records blob. */
export function values(records: Uint8Array): string[] {
  return decodeRecords(records).flatMap((b) =>
    b.records.map((r) => `${r.offset}:${Buffer.from(r.value ?? []).toString()}`),
  );
}

export class ManualClock implements Clock {
  now: number;
  constructor(now = 1_000_000) {
    this.now = now;
  }
  nowMs(): number {
    return this.now;
  }
}

export type Fault = "EIO" | "ENOSPC" | "short" | null;

/** A Disk whose log writes and fsyncs fail on demand. */
export class FaultyDisk implements Disk {
  writeFault: Fault = null;
  syncFault: Fault = null;
  open = async (path: string, flags: "r" | "r+" | "w+" | "a+"): Promise<DiskFile> => {
    const f = await nodeDisk.open(path, flags);
    const self = this;
    const isLog = path.endsWith(".log");
    return {
      async writev(buffers, position) {
        if (isLog && self.writeFault === "short") {
          const all = Buffer.concat(buffers as Uint8Array[]);
          const n = await f.writev([all.subarray(0, Math.max(1, all.length >> 1))], position);
          self.writeFault = null;
          return n;
        }
        if (isLog && self.writeFault)
          throw Object.assign(new Error(`${self.writeFault}: injected`), { code: self.writeFault });
        return f.writev(buffers, position);
      },
      read: (b, o, l, p) => f.read(b, o, l, p),
      async datasync() {
        if (isLog && self.syncFault)
          throw Object.assign(new Error(`${self.syncFault}: injected`), { code: self.syncFault });
        return f.datasync();
      },
      truncate: (l) => f.truncate(l),
      size: () => f.size(),
      close: () => f.close(),
    };
  };
  readFile = nodeDisk.readFile;
  writeFileAtomic = nodeDisk.writeFileAtomic;
  rename = nodeDisk.rename;
  unlink = nodeDisk.unlink;
  readdir = nodeDisk.readdir;
  mkdir = nodeDisk.mkdir;
  rmdir = nodeDisk.rmdir;
  exists = nodeDisk.exists;
}
