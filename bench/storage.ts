// Benchmark (not a test): the storage engine against plain file I/O of the same bytes, measured in
// the same run on the same disk (issue 3). Follows bench/lib/report.ts:
//   ./node_modules/.bin/node bench/storage.ts     BENCH_MB: volume per case (default 128),
//                                                 BENCH_RUNS: alternating runs, best kept (default 3)
//   BENCH_SMOKE=1   a few seconds, tiny sizes (figures mean nothing)
//   BENCH_JSON=path writes the BenchReport there
//
// - append MB/s of 1 KiB records in 16 KiB and 1 MiB batches (one appender, each append awaited)
//   vs sequential fs writes of the same buffers (each awaited); also 4 concurrent appenders, and
//   one appender into a single 1 GiB segment (no roll, so no flush of a sealed segment in the run)
// - fsync before ack with group commit (8 and 64 concurrent appenders, 16 KiB batches) vs write +
//   fdatasync every 16 MiB
// - read MB/s from the page cache, 1 MiB reads (every batch CRC-checked) vs plain 1 MiB preads
// - a consumer tailing a producer: read-after-append latency with and without the tail cache
// - recovery time per GiB scanned (every batch's CRC checked), from a full recovery of the log
//
// Fairness: request buffers are copied from a template before the clock starts (as the network
// layer hands them over), one per append, for the baseline and the engine alike; the engine may
// patch and keep them. Dirty pages from earlier runs slow later ones (kernel writeback), so every
// run starts after `sync`, baseline and engine runs alternate, and the best of RUNS is reported.

import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, unlinkSync } from "node:fs";
import { open } from "node:fs/promises";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { iterateBatches, lastOffsetOf } from "../packages/protocol/src/records/batch-header.ts";
import { buildRecordBatch } from "../packages/protocol/src/records/record-batch.ts";
import type { LogConfig } from "../packages/storage/src/log-config.ts";
import { CHECKPOINT_FILES } from "../packages/storage/src/log-dir-state.ts";
import { LogManager } from "../packages/storage/src/log-manager.ts";
import { type BenchRow, ratioRow, report, smoke } from "./lib/report.ts";

const TOTAL_MB = Number(process.env.BENCH_MB ?? (smoke ? 4 : 128));
const TOTAL_BYTES = TOTAL_MB * 1024 * 1024;
const RUNS = Number(process.env.BENCH_RUNS ?? (smoke ? 1 : 3));
const TAIL_APPENDS = smoke ? 100 : 2000;
const APPEND_TARGET = 0.8;
const FSYNC_TARGET = 0.8;
const root = mkdtempSync(join(tmpdir(), "sluice-bench-storage-"));
const rows: BenchRow[] = [];
const mbps = (bytes: number, ms: number): number => bytes / (1024 * 1024) / (ms / 1000);
const round = (x: number): number => Math.round(x * 10) / 10;
const CONFIG: Partial<LogConfig> = {
  "segment.bytes": (smoke ? 1 : 64) * 1024 * 1024,
  "retention.ms": -1,
  "max.message.bytes": 2 * 1024 * 1024,
};
const loadBefore = loadavg()[0]!;

/** One run: throughput, and the process's CPU time (all threads, user + system) per MiB moved. */
interface Run {
  mbps: number;
  cpuMsPerMiB: number;
}

function measured(bytes: number, ms: number, cpu: NodeJS.CpuUsage): Run {
  return { mbps: mbps(bytes, ms), cpuMsPerMiB: (cpu.user + cpu.system) / 1000 / (bytes / 2 ** 20) };
}

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

async function fsBaseline(name: string, buffers: Buffer[], syncEveryBytes: number): Promise<Run> {
  const path = join(root, name);
  const fh = await open(path, "w");
  let bytes = 0;
  let sinceSync = 0;
  const cpu = process.cpuUsage();
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
  const used = process.cpuUsage(cpu);
  await fh.close();
  unlinkSync(path);
  return measured(bytes, ms, used);
}

async function logAppend(
  dir: string,
  buffers: Buffer[],
  concurrency: number,
  config: Partial<LogConfig> = {},
): Promise<Run> {
  const manager = await LogManager.open([dir], { ...CONFIG, ...config });
  const log = await manager.getOrCreateLog("bench", 0);
  let next = 0;
  let bytes = 0;
  const cpu = process.cpuUsage();
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
  const used = process.cpuUsage(cpu);
  await manager.close();
  return measured(bytes, ms, used);
}

const gc = (): void => (globalThis as { gc?: () => void }).gc?.();

/** Starts a run from a quiet disk: no dirty pages left from the previous one. */
function settle(): void {
  gc();
  execFileSync("sync");
}

/** Best of RUNS alternating runs of each function: the highest MB/s and the lowest CPU per MiB. */
async function bestOf(...runs: (() => Promise<Run>)[]): Promise<Run[]> {
  const best = runs.map(() => ({ mbps: 0, cpuMsPerMiB: Number.POSITIVE_INFINITY }));
  for (let i = 0; i < RUNS; i++) {
    for (const [k, run] of runs.entries()) {
      settle();
      const r = await run();
      best[k] = { mbps: Math.max(best[k]!.mbps, r.mbps), cpuMsPerMiB: Math.min(best[k]!.cpuMsPerMiB, r.cpuMsPerMiB) };
    }
  }
  return best;
}

/** A throughput row against `base`, with both sides' CPU per MiB in the note. */
function runRow(name: string, r: Run, base: Run, baseCase: string, target: number): BenchRow {
  const row = ratioRow(name, round(r.mbps), "MB/s", { case: baseCase, value: round(base.mbps), unit: "MB/s" }, target);
  row.note = `CPU ${r.cpuMsPerMiB.toFixed(2)} ms/MiB, baseline ${base.cpuMsPerMiB.toFixed(2)}`;
  return row;
}

const fresh = (name: string): string => {
  rmSync(join(root, name), { recursive: true, force: true });
  return join(root, name);
};

// ---- appends --------------------------------------------------------------------------------------

for (const batchBytes of [16 * 1024, 1024 * 1024]) {
  const label = batchBytes === 1024 * 1024 ? "1 MiB" : "16 KiB";
  const template = makeBatch(batchBytes);
  const count = Math.ceil(TOTAL_BYTES / template.length);
  // With segment.bytes 64 MiB the log rolls during the run, and each roll fsyncs the sealed segment
  // in the background (Kafka's flush on roll), which the baseline never does; the "no roll" run
  // (one 1 GiB segment) shows the append path alone.
  const [base, one, four, noRoll] = await bestOf(
    () => fsBaseline(`fs-${batchBytes}`, copies(template, count), 0),
    () => logAppend(fresh(`append-${batchBytes}`), copies(template, count), 1),
    () => logAppend(fresh(`append4-${batchBytes}`), copies(template, count), 4),
    () => logAppend(fresh(`append1g-${batchBytes}`), copies(template, count), 1, { "segment.bytes": 2 ** 30 }),
  );
  const baseCase = `fs write, ${label} buffers, each awaited`;
  rows.push(runRow(`append, ${label} batches, 1 appender`, one!, base!, baseCase, APPEND_TARGET));
  rows.push(runRow(`append, ${label} batches, 4 appenders`, four!, base!, baseCase, APPEND_TARGET));
  rows.push(
    runRow(`append, ${label} batches, 1 appender, no roll in the run`, noRoll!, base!, baseCase, APPEND_TARGET),
  );
  rmSync(join(root, `append4-${batchBytes}`), { recursive: true, force: true });
  rmSync(join(root, `append1g-${batchBytes}`), { recursive: true, force: true });
  if (batchBytes === 16 * 1024) rmSync(join(root, `append-${batchBytes}`), { recursive: true, force: true });
}

// ---- fsync before ack -----------------------------------------------------------------------------

{
  const template = makeBatch(16 * 1024);
  const volume = Math.min(TOTAL_BYTES, 64 * 1024 * 1024);
  const count = Math.ceil(volume / template.length);
  const run = (appenders: number) => async (): Promise<Run> => {
    const dir = fresh(`fsync-${appenders}`);
    const mb = await logAppend(dir, copies(template, count), appenders, { "fsync.before.ack": true });
    rmSync(dir, { recursive: true, force: true });
    return mb;
  };
  const [base, eight, many] = await bestOf(
    () => fsBaseline("fs-sync", copies(template, count), 16 * 1024 * 1024),
    run(8),
    run(64),
  );
  const baseCase = "fs write (16 KiB, each awaited) + fdatasync every 16 MiB";
  for (const [appenders, r] of [
    [8, eight!],
    [64, many!],
  ] as const) {
    const name = `fsync before ack, group commit, ${appenders} appenders, 16 KiB batches`;
    rows.push(runRow(name, r, base!, baseCase, FSYNC_TARGET));
  }
}

// ---- reads ----------------------------------------------------------------------------------------

const bigDir = join(root, `append-${1024 * 1024}`);

/** Plain sequential 1 MiB preads of the log's segment files (a fresh buffer per read, as the log returns). */
async function fsReads(dir: string): Promise<number> {
  const files = readdirSync(dir)
    .filter((n) => n.endsWith(".log"))
    .sort();
  let bytes = 0;
  const start = performance.now();
  for (const name of files) {
    const fh = await open(join(dir, name), "r");
    for (let pos = 0; ; ) {
      const buf = Buffer.allocUnsafe(1024 * 1024);
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) break;
      pos += bytesRead;
      bytes += bytesRead;
    }
    await fh.close();
  }
  return mbps(bytes, performance.now() - start);
}

async function logReads(): Promise<number> {
  const manager = await LogManager.open([bigDir], CONFIG, { tailCacheBytesPerLog: 0 });
  const log = await manager.getOrCreateLog("bench", 0);
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
  await manager.close();
  return mbps(bytes, ms);
}

{
  // The log was just written, so it is in the page cache; one pass of each warms it for sure.
  await fsReads(join(bigDir, "bench-0"));
  await logReads();
  const best = [0, 0];
  for (let i = 0; i < RUNS; i++) {
    gc();
    best[0] = Math.max(best[0]!, await fsReads(join(bigDir, "bench-0")));
    gc();
    best[1] = Math.max(best[1]!, await logReads());
  }
  rows.push(
    ratioRow("read from the page cache, 1 MiB reads (every batch CRC-checked)", round(best[1]!), "MB/s", {
      case: "fs read, 1 MiB preads of the segment files",
      value: round(best[0]!),
      unit: "MB/s",
    }),
  );
}

// ---- tailing consumer ---------------------------------------------------------------------------

for (const cacheBytes of [1024 * 1024, 0]) {
  const dir = fresh(`tail-${cacheBytes}`);
  const manager = await LogManager.open([dir], CONFIG, { tailCacheBytesPerLog: cacheBytes });
  const log = await manager.getOrCreateLog("bench", 0);
  const buffers = copies(makeBatch(16 * 1024), TAIL_APPENDS);
  let readUs = 0;
  for (const b of buffers) {
    const info = await log.appendAsLeader(b, 0);
    const t = performance.now();
    const r = await log.read(info.baseOffset, 1024 * 1024);
    readUs += (performance.now() - t) * 1000;
    if (r.records.length === 0) throw new Error("tail read returned nothing");
  }
  rows.push({
    case: `tailing read right after each 16 KiB append, tail cache ${cacheBytes ? "on" : "off"}`,
    value: round(readUs / TAIL_APPENDS),
    unit: "µs per read",
  });
  await manager.close();
  rmSync(dir, { recursive: true, force: true });
}

// ---- recovery -------------------------------------------------------------------------------------

{
  let best = Number.POSITIVE_INFINITY;
  let scanned = 0;
  for (let i = 0; i < RUNS; i++) {
    // Make the 1 MiB-batch log look crashed: no clean-shutdown marker, no recovery points.
    rmSync(join(bigDir, ".kafka_cleanshutdown"), { force: true });
    rmSync(join(bigDir, CHECKPOINT_FILES.recoveryPoints), { force: true });
    gc();
    const start = performance.now();
    const manager = await LogManager.open([bigDir], CONFIG);
    const log = await manager.getOrCreateLog("bench", 0);
    const ms = performance.now() - start;
    scanned = log.sizeBytes;
    best = Math.min(best, ms / 1000 / (scanned / 2 ** 30));
    await manager.close();
  }
  rows.push({
    case: "recovery, every batch validated (full scan of the 1 MiB-batch log)",
    value: Math.round(best * 100) / 100,
    unit: "s per GiB",
    note: `${round(scanned / 2 ** 20)} MiB scanned`,
  });
}

rmSync(root, { recursive: true, force: true });
console.log(
  `storage benchmark${smoke ? " (smoke: figures mean nothing)" : ""} — ${cpus().length} cores (${cpus()[0]?.model.trim() ?? "?"}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${TOTAL_MB} MiB per case, best of ${RUNS}, ${tmpdir()}, load average ${loadBefore.toFixed(1)} → ${loadavg()[0]!.toFixed(1)}`,
);
console.log("| case | result | baseline (same run) | × baseline | target |");
console.log("| --- | --- | --- | ---: | ---: |");
for (const r of rows) {
  const base = r.baseline ? `${r.baseline.case}: ${r.baseline.value} ${r.baseline.unit}` : "—";
  const ratio = r.ratio === undefined ? "—" : r.ratio.toFixed(2);
  const note = r.note ? ` (${r.note})` : "";
  console.log(
    `| ${r.case} | ${r.value} ${r.unit}${note} | ${base} | ${ratio} | ${r.target === undefined ? "—" : `≥ ${r.target}`} |`,
  );
}
report("storage", rows);
