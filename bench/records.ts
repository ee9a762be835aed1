// Benchmark (not a test): CRC32C throughput (native @node-rs/crc32 and the pure fallback) and
// build/parse throughput of a record batch of 1 KiB records (1 MiB in all), per codec (issue 2).
// MB/s counts the uncompressed record bytes (1 MB = 10^6 bytes). Baselines of the same run, over
// the same number of bytes: for CRC32C a memcpy (Buffer.copy into a buffer allocated once); for
// build and parse the CRC32C of the record bytes (which every build and every checked parse pays,
// so it is the floor for both; against a memcpy the ratios would all round to zero).
//
//   ./node_modules/.bin/node bench/records.ts        (BENCH_SMOKE=1: tiny sizes; BENCH_JSON=path;
//                                                     BENCH_MS=… per measurement, default 500)

import { COMPRESSION_NAMES, type CompressionCodec } from "../packages/protocol/src/records/batch-header.ts";
import { crc32c, crc32cIsNative, crc32cPure } from "../packages/protocol/src/records/crc32c.ts";
import { buildRecordBatch, parseRecordBatch, type RecordInput } from "../packages/protocol/src/records/record-batch.ts";
import { type BenchRow, machine, ratioRow, report, smoke } from "./lib/report.ts";

const DURATION_MS = smoke ? 30 : Number(process.env.BENCH_MS ?? 500);
const RECORD_BYTES = 1024;
const RECORDS = smoke ? 64 : 1024;
const CRC_BYTES = (smoke ? 256 : 4096) * 1024;

/** Runs `op` repeatedly for DURATION_MS after a short warm-up; returns seconds per op. */
function secondsPerOp(op: () => void): number {
  const warmUntil = performance.now() + DURATION_MS / 5;
  while (performance.now() < warmUntil) op();
  let ops = 0;
  const start = performance.now();
  while (performance.now() - start < DURATION_MS) {
    op();
    ops++;
  }
  return (performance.now() - start) / 1000 / ops;
}

const mbPerSec = (bytes: number, seconds: number): number => bytes / seconds / 1e6;

/** The baseline: copying `bytes` bytes from one buffer into another, MB/s. */
function memcpy(bytes: number): NonNullable<BenchRow["baseline"]> {
  const src = Buffer.alloc(bytes, 0x5a);
  const dst = Buffer.allocUnsafe(bytes);
  const value = mbPerSec(
    bytes,
    secondsPerOp(() => src.copy(dst)),
  );
  return { case: `baseline: memcpy of ${kib(bytes)}`, value, unit: "MB/s" };
}

function kib(bytes: number): string {
  return bytes >= 2 ** 20 ? `${bytes / 2 ** 20} MiB` : `${bytes / 1024} KiB`;
}

/** JSON-ish values: compressible like real payloads, not trivially so. */
function sampleRecords(): RecordInput[] {
  let seed = 42;
  const rnd = (): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed;
  };
  return Array.from({ length: RECORDS }, (_, i) => {
    let text = "";
    while (text.length < RECORD_BYTES) {
      text += `{"id":${rnd() % 100000},"user":"u${rnd() % 5000}","event":"${["view", "click", "buy"][rnd() % 3]}","t":${1_700_000_000_000 + i}}`;
    }
    return { key: Buffer.from(`key-${i % 64}`), value: Buffer.from(text.slice(0, RECORD_BYTES)), timestamp: BigInt(i) };
  });
}

const rows: BenchRow[] = [];
const baselineRow = (b: NonNullable<BenchRow["baseline"]>): void => {
  rows.push({ case: b.case, value: b.value, unit: b.unit, better: "higher" });
};

const crcInput = Buffer.alloc(CRC_BYTES, 0xa5);
const crcBase = memcpy(CRC_BYTES);
baselineRow(crcBase);
const crcCases: [string, () => void][] = [
  [`CRC32C ${crc32cIsNative ? "native @node-rs/crc32" : "native NOT loaded, pure"}`, () => crc32c(crcInput)],
  ["CRC32C pure TypeScript fallback", () => crc32cPure(crcInput)],
];
for (const [name, op] of crcCases)
  rows.push(
    ratioRow(`${name}, ${kib(CRC_BYTES)}`, mbPerSec(CRC_BYTES, secondsPerOp(op)), "MB/s", crcBase, undefined, "higher"),
  );

const records = sampleRecords();
const recordBytes = RECORDS * RECORD_BYTES;
const recordsFlat = Buffer.concat(records.map((r) => r.value as Buffer));
const batchBase = {
  case: `baseline: CRC32C of ${kib(recordBytes)}`,
  value: mbPerSec(
    recordBytes,
    secondsPerOp(() => crc32c(recordsFlat)),
  ),
  unit: "MB/s",
};
baselineRow(batchBase);
const shape = `${RECORDS} × 1 KiB records`;
for (let codec = 0; codec <= 4; codec++) {
  const compression = codec as CompressionCodec;
  const name = COMPRESSION_NAMES[compression];
  const batch = buildRecordBatch({ records, compression });
  const build = secondsPerOp(() => buildRecordBatch({ records, compression }));
  const parse = secondsPerOp(() => parseRecordBatch(batch, 0));
  const size = `batch ${batch.length} bytes for ${recordBytes} of records`;
  for (const [what, seconds] of [
    ["build", build],
    ["parse", parse],
  ] as const) {
    const row = ratioRow(`${name} batch ${what}, ${shape}`, mbPerSec(recordBytes, seconds), "MB/s", batchBase);
    rows.push({ ...row, better: "higher", note: `${size}; ${(seconds * 1000).toFixed(2)} ms per batch` });
  }
}
report("records", rows);

const m = machine();
console.log(`records bench — ${m.cores} cores, ${m.memoryGiB} GiB, ${m.cpu}, Node ${m.node}${smoke ? " (smoke)" : ""}`);
console.log("| case | MB/s of records | × baseline | note |");
console.log("| --- | ---: | ---: | --- |");
for (const r of rows)
  console.log(
    `| ${r.case} | ${r.value.toFixed(0)} | ${r.ratio === undefined ? "—" : r.ratio.toFixed(3)} | ${r.note ?? ""} |`,
  );
