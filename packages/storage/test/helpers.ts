// Test helpers: temp dirs, batches, a controllable clock, a fault-injecting disk, and a way to
// open one log through a LogManager.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { iterateBatches, lastOffsetOf } from "@sluice/protocol/records/batch-header.ts";
import { buildRecordBatch, decodeRecords } from "@sluice/protocol/records/record-batch.ts";
import type { Clock, Disk, DiskFile, OpenFlags } from "../src/disk.ts";
import { nodeDisk } from "../src/disk.ts";
import type { LogConfig } from "../src/log-config.ts";
import { LogManager, type LogManagerDeps } from "../src/log-manager.ts";
import type { PartitionLog } from "../src/partition-log.ts";

export function tempDir(prefix = "sluice-storage-"): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function batch(values: string[], opts: { key?: string | null; timestamp?: bigint } = {}): Buffer {
  return buildRecordBatch({
    records: values.map((v) => ({
      key: opts.key == null ? null : Buffer.from(opts.key),
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

/** "offset:value" for every record in a records blob ("offset:∅" for a null value). */
export function values(records: Uint8Array): string[] {
  return decodeRecords(records).flatMap((b) =>
    b.records.map((r) => `${r.offset}:${r.value === null ? "∅" : Buffer.from(r.value).toString()}`),
  );
}

/** Everything readable from the log start to the log end, as one blob. */
export async function readAll(log: PartitionLog, maxOffset?: bigint): Promise<Buffer> {
  const parts: Buffer[] = [];
  let offset = log.logStartOffset;
  const end = maxOffset ?? log.logEndOffset;
  while (offset < end) {
    const r = await log.read(offset, 1 << 20, { maxOffset: end });
    if (r.records.length === 0) break;
    parts.push(r.records);
    // Continue after the last batch (after compaction its last offset may be past its last record).
    let last = offset;
    for (const b of iterateBatches(r.records)) last = lastOffsetOf(b.header);
    offset = last + 1n;
  }
  return Buffer.concat(parts);
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

function injected(code: string): Error {
  return Object.assign(new Error(`${code}: injected`), { code });
}

/**
 * A Disk over the real one whose writes and fsyncs fail on demand. Faults apply to files whose
 * path matches `target` (segment .log files by default). A "short" write writes half and clears
 * itself (the kernel may do that); EIO/ENOSPC stay until cleared.
 */
export class FaultyDisk implements Disk {
  writeFault: Fault = null;
  syncFault: Fault = null;
  truncateFault: Fault = null;
  target: RegExp = /\.log$/;
  writes = 0;
  /** Writes of target files done synchronously (Disk.writeSync). */
  syncWrites = 0;
  /** Target files decline synchronous writes (the libuv thread-pool path only). */
  asyncWritesOnly = false;
  syncs = 0;
  /** While set, writes / fsyncs of target files (and directory fsyncs) wait for it, to order concurrent operations. */
  writeGate: Promise<void> | null = null;
  syncGate: Promise<void> | null = null;
  /** Bytes read from segment .log files (to see what recovery scans). */
  logBytesRead = 0;

  open = async (path: string, flags: OpenFlags): Promise<DiskFile> => {
    const f = await nodeDisk.open(path, flags);
    const hit = (): boolean => this.target.test(path);
    return {
      write: (b, p) => this.doWrite(hit(), f, [b], p),
      writev: (bs, p) => this.doWrite(hit(), f, bs, p),
      writeSync: (bs, p) => this.doWriteSync(hit(), f, bs, p),
      read: async (b, o, l, p) => {
        const n = await f.read(b, o, l, p);
        if (/\.log$/.test(path)) this.logBytesRead += n;
        return n;
      },
      fsync: async () => {
        if (hit()) this.syncs++;
        if (hit() && this.syncGate) await this.syncGate;
        if (hit() && this.syncFault) throw injected(this.syncFault);
        return f.fsync();
      },
      truncate: async (l) => {
        if (hit() && this.truncateFault) throw injected(this.truncateFault);
        return f.truncate(l);
      },
      stat: () => f.stat(),
      close: () => f.close(),
    };
  };

  /** The same faults, synchronously; declines (null: the caller writes asynchronously) while a gate is set. */
  private doWriteSync(hit: boolean, f: DiskFile, buffers: readonly Uint8Array[], position: number): number | null {
    if (hit && (this.writeGate || this.asyncWritesOnly)) return null;
    if (hit) {
      this.writes++;
      this.syncWrites++;
    }
    if (hit && this.writeFault === "short") {
      const all = Buffer.concat(buffers as Uint8Array[]);
      this.writeFault = null;
      return f.writeSync([all.subarray(0, Math.max(1, all.length >> 1))], position);
    }
    if (hit && this.writeFault) {
      const first = buffers[0];
      if (first && first.byteLength > 8) f.writeSync([first.subarray(0, 8)], position);
      throw injected(this.writeFault);
    }
    return f.writeSync(buffers, position);
  }

  private async doWrite(hit: boolean, f: DiskFile, buffers: readonly Uint8Array[], position: number): Promise<number> {
    if (hit) this.writes++;
    if (hit && this.writeGate) await this.writeGate;
    if (hit && this.writeFault === "short") {
      const all = Buffer.concat(buffers as Uint8Array[]);
      this.writeFault = null;
      return f.writev([all.subarray(0, Math.max(1, all.length >> 1))], position);
    }
    if (hit && this.writeFault) {
      // A failed write may still have written a part: leave some garbage behind.
      const first = buffers[0];
      if (first && first.byteLength > 8) await f.writev([first.subarray(0, 8)], position);
      throw injected(this.writeFault);
    }
    return f.writev(buffers, position);
  }

  /** Renames whose source path matches fail with EIO. */
  renameFault: RegExp | null = null;
  rename = async (from: string, to: string): Promise<void> => {
    if (this.renameFault?.test(from)) throw injected("EIO");
    return nodeDisk.rename(from, to);
  };
  unlink = nodeDisk.unlink;
  readdir = nodeDisk.readdir;
  stat = nodeDisk.stat;
  mkdir = nodeDisk.mkdir;
  rmdir = nodeDisk.rmdir;
  dirSyncGate: Promise<void> | null = null;
  fsyncDir = async (path: string): Promise<void> => {
    if (this.dirSyncGate) await this.dirSyncGate;
    return nodeDisk.fsyncDir(path);
  };
}

export interface Opened {
  manager: LogManager;
  log: PartitionLog;
}

/** Opens (or reopens) partition t-0 in `dir` through a LogManager. */
export async function openLog(
  dir: string,
  config: Partial<LogConfig> = {},
  deps: LogManagerDeps = {},
  topic = "t",
): Promise<Opened> {
  const manager = await LogManager.open([dir], config, deps);
  const log = await manager.getOrCreateLog(topic, 0);
  return { manager, log };
}
