// Benchmark (not a test): the storage engine against plain file writes of the same bytes, measured
// in the same run on the same disk.
//   ./node_modules/.bin/node bench/storage.ts     (BENCH_MB sets the volume per case, default 128)
//
// - append MB/s of 1 KiB records in 16 KiB and 1 MiB batches (one appender, each append awaited)
//   vs sequential fs writes of the same buffers; also 4 concurrent appenders (write coalescing)
// - fsync before ack with group commit (8 and 64 concurrent appenders, 16 KiB batches) vs write +
//   fdatasync every 16 MiB
// - read MB/s from the page cache (1 MiB reads from the start of the log)
// - a consumer tailing a producer: read-after-append latency with and without the tail cache
// - recovery time per GiB scanned (every batch's CRC checked), from a full recovery of the log
//
// Request buffers are built before the clock starts (as the network layer hands them over), one
// per append, so the log may patch and keep them. Dirty pages from earlier runs slow later ones
// (kernel writeback), so every run starts after `sync`, baseline and engine runs alternate, and the
// best of RUNS is reported for each.

import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, unlinkSync } from "node:fs";
import { open } from "node:fs/promises";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { iterateBatches, lastOffsetOf } from "../packages/protocol/src/records/batch-header.ts";
import { buildRecordBatch } from "../packages/protocol/src/records/record-batch.ts";
import type { LogConfig } from "../packages/storage/src/log-config.ts";
import { CHECKPOINT_FILES } from "../packages/storage/src/log-dir-state.ts";
import { LogManager } from "../packages/storage/src/log-manager.ts";

const TOTAL_MB = Number(process.env.BENCH_MB ?? 128);
const TOTAL_BYTES = TOTAL_MB * 1024 * 1024;
const root = mkdtempSync(join(tmpdir(), "sluice-bench-storage-"));
const rows: [string, string, string][] = [];
const mbps = (bytes: number, ms: number): number => bytes / (1024 * 1024) / (ms / 1000);
const fmt = (x: number): string => (x >= 100 ? x.toFixed(0) : x.toFixed(1));
const CONFIG: Partial<LogConfig> = { "segment.bytes": 64 * 1024 * 1024, "retention.ms": -1 };

function makeBatch(batchBytes: number): Buffer {
  const n = Math.max(1, Math.floor(batchBytes / 1024));
  return buildRecordBatch({
    records: Array.from({ length: n }, (_, i) => ({
      value: Buffer.alloc(1024 - 20, i % 251),
      timestamp: BigInt(Date.now()),
    })),
  });
}

function copies(b: Buffer, count: number): Buffer[] {
  return Array.from({ length: count }, () => Buffer.from(b));
}

async function fsBaseline(name: string, buffers: Buffer[], syncEveryBytes: number): Promise<number> {
  const path = join(root, name);
  const fh = await open(path, "w");
  let bytes = 0;
  let sinceSync = 0;
  const start = performance.now();
  for (const b of buffers) {
    await fh.write(b, 0, b.length, bytes);
    bytes += b.length;
    sinceSync += b.length;
    if (syncEveryBytes > 0 && sinceSync >= syncEveryBytes) {
      await fh.datasync();
      sinceSync = 0;
    }
  }
  if (syncEveryBytes > 0) await fh.datasync();
  const ms = performance.now() - start;
  await fh.close();
  unlinkSync(path);
  return mbps(bytes, ms);
}

async function logAppend(
  dir: string,
  buffers: Buffer[],
  concurrency: number,
  config: Partial<LogConfig> = {},
): Promise<number> {
  const manager = await LogManager.open([dir], { ...CONFIG, ...config });
  const log = await manager.getOrCreateLog("bench", 0);
  let next = 0;
  let bytes = 0;
  const start = performance.now();
  const worker = async (): Promise<void> => {
    while (next < buffers.length) {
      const b = buffers[next++]!;
      bytes += b.length;
      await log.appendAsLeader(b, 0);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const ms = performance.now() - start;
  await manager.close();
  return mbps(bytes, ms);
}

const gc = (): void => (globalThis as { gc?: () => void }).gc?.();
const RUNS = Number(process.env.BENCH_RUNS ?? 2);

/** Starts a run from a quiet disk: no dirty pages left from the previous one. */
function settle(): void {
  gc();
  execFileSync("sync");
}

/** Best of RUNS alternating runs of each function (results in MB/s). */
async function bestOf(...runs: (() => Promise<number>)[]): Promise<number[]> {
  const best = runs.map(() => 0);
  for (let i = 0; i < RUNS; i++) {
    for (const [k, run] of runs.entries()) {
      settle();
      best[k] = Math.max(best[k]!, await run());
    }
  }
  return best;
}

// ---- appends --------------------------------------------------------------------------------------

for (const batchBytes of [16 * 1024, 1024 * 1024]) {
  const label = batchBytes === 1024 * 1024 ? "1 MiB" : "16 KiB";
  const template = makeBatch(batchBytes);
  const count = Math.ceil(TOTAL_BYTES / template.length);
  const fresh = (name: string): string => {
    rmSync(join(root, name), { recursive: true, force: true });
    return join(root, name);
  };
  const [base, one, four] = await bestOf(
    () => fsBaseline(`fs-${batchBytes}`, copies(template, count), 0),
    () => logAppend(fresh(`append-${batchBytes}`), copies(template, count), 1),
    () => logAppend(fresh(`append4-${batchBytes}`), copies(template, count), 4),
  );
  rows.push([
    `append, ${label} batches, 1 appender (fs write: ${fmt(base!)} MB/s)`,
    `${fmt(one!)} MB/s`,
    (one! / base!).toFixed(2),
  ]);
  rows.push([`append, ${label} batches, 4 appenders`, `${fmt(four!)} MB/s`, (four! / base!).toFixed(2)]);
  rmSync(join(root, `append4-${batchBytes}`), { recursive: true, force: true });
  if (batchBytes === 16 * 1024) rmSync(join(root, `append-${batchBytes}`), { recursive: true, force: true });
}

// ---- fsync before ack -----------------------------------------------------------------------------

{
  const template = makeBatch(16 * 1024);
  const volume = Math.min(TOTAL_BYTES, 64 * 1024 * 1024);
  const count = Math.ceil(volume / template.length);
  const run = (appenders: number) => async (): Promise<number> => {
    const dir = join(root, `fsync-${appenders}`);
    rmSync(dir, { recursive: true, force: true });
    const mb = await logAppend(dir, copies(template, count), appenders, { "fsync.before.ack": true });
    rmSync(dir, { recursive: true, force: true });
    return mb;
  };
  const [base, eight, many] = await bestOf(
    () => fsBaseline("fs-sync", copies(template, count), 16 * 1024 * 1024),
    run(8),
    run(64),
  );
  for (const [appenders, mb] of [
    [8, eight!],
    [64, many!],
  ] as const) {
    rows.push([
      `fsync before ack, group commit, ${appenders} appenders, 16 KiB (write+fdatasync/16 MiB: ${fmt(base!)} MB/s)`,
      `${fmt(mb)} MB/s`,
      (mb / base!).toFixed(2),
    ]);
  }
}

// ---- reads ----------------------------------------------------------------------------------------

const bigDir = join(root, `append-${1024 * 1024}`);
{
  const manager = await LogManager.open([bigDir], CONFIG, { tailCacheBytesPerLog: 0 });
  const log = await manager.getOrCreateLog("bench", 0);
  // Warm the page cache (the log was just written, but make sure), then measure.
  for (let pass = 0; pass < 2; pass++) {
    let offset = 0n;
    let bytes = 0;
    const start = performance.now();
    while (offset < log.logEndOffset) {
      const r = await log.read(offset, 1024 * 1024);
      if (r.records.length === 0) break;
      bytes += r.records.length;
      for (const b of iterateBatches(r.records)) offset = lastOffsetOf(b.header) + 1n;
    }
    const ms = performance.now() - start;
    if (pass === 1)
      rows.push(["read from the page cache, 1 MiB reads (CRC checked)", `${fmt(mbps(bytes, ms))} MB/s`, "—"]);
  }
  await manager.close();
}

// ---- tailing consumer ---------------------------------------------------------------------------

for (const cacheBytes of [1024 * 1024, 0]) {
  const dir = join(root, `tail-${cacheBytes}`);
  const manager = await LogManager.open([dir], CONFIG, { tailCacheBytesPerLog: cacheBytes });
  const log = await manager.getOrCreateLog("bench", 0);
  const template = makeBatch(16 * 1024);
  const n = 2000;
  const buffers = copies(template, n);
  let readUs = 0;
  for (let i = 0; i < n; i++) {
    const info = await log.appendAsLeader(buffers[i]!, 0);
    const t = performance.now();
    const r = await log.read(info.baseOffset, 1024 * 1024);
    readUs += (performance.now() - t) * 1000;
    if (r.records.length === 0) throw new Error("tail read returned nothing");
  }
  rows.push([
    `tailing read right after each 16 KiB append, tail cache ${cacheBytes ? "on" : "off"}`,
    `${fmt(readUs / n)} µs per read`,
    "—",
  ]);
  await manager.close();
  rmSync(dir, { recursive: true, force: true });
}

// ---- recovery -------------------------------------------------------------------------------------

{
  // Make the 1 MiB-batch log look crashed: no clean-shutdown marker, no recovery points.
  unlinkSync(join(bigDir, ".kafka_cleanshutdown"));
  unlinkSync(join(bigDir, CHECKPOINT_FILES.recoveryPoints));
  const start = performance.now();
  const manager = await LogManager.open([bigDir], CONFIG);
  const log = await manager.getOrCreateLog("bench", 0);
  const ms = performance.now() - start;
  const gib = log.sizeBytes / 2 ** 30;
  rows.push([
    `recovery, every batch validated (${fmt(log.sizeBytes / 2 ** 20)} MiB scanned)`,
    `${(ms / 1000 / gib).toFixed(2)} s per GiB`,
    "—",
  ]);
  await manager.close();
}

rmSync(root, { recursive: true, force: true });
console.log(
  `storage benchmark — ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${TOTAL_MB} MiB per case, ${tmpdir()}`,
);
console.log("| case | result | × baseline |");
console.log("| --- | --- | ---: |");
for (const r of rows) console.log(`| ${r.join(" | ")} |`);
