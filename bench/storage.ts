// Benchmark (not a test): the partition log against plain file writes of the same bytes, measured
// in the same run.
//   node bench/storage.ts            (BENCH_MB sets the data volume per case, default 128)
//
// - append MB/s of 1 KiB records in 16 KiB and 1 MiB batches vs sequential fs writes
// - fsync-before-ack with group commit (8 concurrent appenders, 16 KiB batches) vs write +
//   fdatasync every 16 MiB
// - read MB/s from the page cache
// - recovery time per GiB scanned (a crash: every segment revalidated)

import { mkdtempSync, rmSync } from "node:fs";
import { open } from "node:fs/promises";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { iterateBatches, lastOffsetOf } from "../packages/protocol/src/records/batch-header.ts";
import { buildRecordBatch } from "../packages/protocol/src/records/record-batch.ts";
import { nodeDisk, systemClock } from "../packages/storage/src/disk.ts";
import { DEFAULT_LOG_CONFIG } from "../packages/storage/src/log-config.ts";
import { PartitionLog } from "../packages/storage/src/partition-log.ts";

const TOTAL_MB = Number(process.env.BENCH_MB ?? 128);
const dir = mkdtempSync(join(tmpdir(), "sluice-bench-"));
const rows: [string, string, string][] = [];
const mbps = (bytes: number, ms: number): number => bytes / 1e6 / (ms / 1000);

function makeBatch(batchBytes: number): Buffer {
  const n = Math.max(1, Math.floor(batchBytes / 1100));
  return buildRecordBatch({ records: Array.from({ length: n }, (_, i) => ({ value: Buffer.alloc(1024, i % 251) })) });
}

async function fsBaseline(batch: Buffer, syncEveryBytes: number): Promise<number> {
  const fh = await open(join(dir, `baseline-${batch.length}-${syncEveryBytes}`), "w");
  const count = Math.ceil((TOTAL_MB * 1e6) / batch.length);
  const start = performance.now();
  let sinceSync = 0;
  for (let i = 0; i < count; i++) {
    await fh.write(batch);
    sinceSync += batch.length;
    if (syncEveryBytes > 0 && sinceSync >= syncEveryBytes) {
      await fh.datasync();
      sinceSync = 0;
    }
  }
  if (syncEveryBytes > 0) await fh.datasync();
  const ms = performance.now() - start;
  await fh.close();
  return mbps(count * batch.length, ms);
}

async function openLog(name: string, fsync: boolean): Promise<PartitionLog> {
  return PartitionLog.open(
    join(dir, name),
    name,
    0,
    { ...DEFAULT_LOG_CONFIG, "segment.bytes": 256 * 1024 * 1024, "fsync.before.ack": fsync },
    { disk: nodeDisk, clock: systemClock },
    null,
  );
}

async function logAppend(
  name: string,
  batch: Buffer,
  fsync: boolean,
  concurrency: number,
): Promise<{ mb: number; log: PartitionLog }> {
  const log = await openLog(name, fsync);
  const count = Math.ceil((TOTAL_MB * 1e6) / batch.length);
  let issued = 0;
  const start = performance.now();
  const worker = async (): Promise<void> => {
    while (issued < count) {
      issued++;
      await log.appendAsLeader(Buffer.from(batch), 0);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { mb: mbps(count * batch.length, performance.now() - start), log };
}

for (const batchBytes of [16 * 1024, 1024 * 1024]) {
  const batch = makeBatch(batchBytes);
  const base = await fsBaseline(batch, 0);
  const { mb, log } = await logAppend(`append-${batchBytes}`, batch, false, 1);
  rows.push([
    `append, ${batchBytes / 1024} KiB batches`,
    `${mb.toFixed(0)} MB/s (fs write ${base.toFixed(0)} MB/s)`,
    (mb / base).toFixed(2),
  ]);
  if (batchBytes === 1024 * 1024) {
    // Read back everything from the page cache.
    const start = performance.now();
    let offset = 0n;
    let bytes = 0;
    while (offset < log.logEndOffset) {
      const r = await log.read(offset, 1024 * 1024);
      if (r.records.length === 0) break;
      bytes += r.records.length;
      offset = lastOffsetOf([...iterateBatches(r.records)].at(-1)!.header) + 1n;
    }
    const readMb = mbps(bytes, performance.now() - start);
    rows.push(["read from page cache, 1 MiB reads", `${readMb.toFixed(0)} MB/s`, (readMb / base).toFixed(2)]);
  }
  await log.close();
}

{
  const batch = makeBatch(16 * 1024);
  const base = await fsBaseline(batch, 16 * 1024 * 1024);
  const { mb, log } = await logAppend("fsync", batch, true, 8);
  rows.push([
    "fsync before ack, group commit (8 appenders, 16 KiB)",
    `${mb.toFixed(0)} MB/s (write+fdatasync/16 MiB ${base.toFixed(0)} MB/s)`,
    (mb / base).toFixed(2),
  ]);
  await log.close();
}

{
  // Recovery: reopen the 1 MiB-batch log as after a crash (no recovery point): every batch is revalidated.
  const name = `append-${1024 * 1024}`;
  const start = performance.now();
  const log = await PartitionLog.open(
    join(dir, name),
    name,
    0,
    { ...DEFAULT_LOG_CONFIG, "segment.bytes": 256 * 1024 * 1024 },
    { disk: nodeDisk, clock: systemClock },
    null,
  );
  const ms = performance.now() - start;
  const gib = log.sizeBytes / 2 ** 30;
  rows.push(["recovery scan (CRC of every batch)", `${(ms / gib / 1000).toFixed(2)} s per GiB`, "—"]);
  await log.close();
}

rmSync(dir, { recursive: true, force: true });
console.log(
  `storage benchmark — ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${TOTAL_MB} MB per case`,
);
console.log("| case | result | × baseline |");
console.log("| --- | --- | ---: |");
for (const r of rows) console.log(`| ${r.join(" | ")} |`);
