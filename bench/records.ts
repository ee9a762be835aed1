// Benchmark (not a test): CRC32C throughput (native @node-rs/crc32 and the pure fallback) and
// build/parse throughput of a 1 MiB record batch of 1 KiB records, per codec. Plain lines, one
// result each; MB/s counts the uncompressed record bytes (1 MB = 10^6 bytes).
//
//   ./node_modules/.bin/node bench/records.ts        (BENCH_MS=… per measurement, default 500)

import { cpus, totalmem } from "node:os";
import { COMPRESSION_NAMES, type CompressionCodec } from "../packages/protocol/src/records/batch-header.ts";
import { crc32c, crc32cIsNative, crc32cPure } from "../packages/protocol/src/records/crc32c.ts";
import { buildRecordBatch, parseRecordBatch, type RecordInput } from "../packages/protocol/src/records/record-batch.ts";

const DURATION_MS = Number(process.env.BENCH_MS ?? 500);
const RECORD_BYTES = 1024;
const RECORDS = 1024;

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

function mbPerSec(bytes: number, seconds: number): string {
  return (bytes / seconds / 1e6).toFixed(0);
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

console.log(
  `records bench: Node ${process.version}, ${cpus().length} cores (${cpus()[0]?.model ?? "?"}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB`,
);

const crcInput = Buffer.alloc(4 * 1024 * 1024, 0xa5);
console.log(
  `crc32c native (${crc32cIsNative ? "loaded" : "NOT loaded, pure"}): ${mbPerSec(
    crcInput.length,
    secondsPerOp(() => crc32c(crcInput)),
  )} MB/s`,
);
console.log(
  `crc32c pure: ${mbPerSec(
    crcInput.length,
    secondsPerOp(() => crc32cPure(crcInput)),
  )} MB/s`,
);

const records = sampleRecords();
const recordBytes = RECORDS * RECORD_BYTES;
for (let codec = 0; codec <= 4; codec++) {
  const compression = codec as CompressionCodec;
  const name = COMPRESSION_NAMES[compression];
  const batch = buildRecordBatch({ records, compression });
  const build = secondsPerOp(() => buildRecordBatch({ records, compression }));
  const parse = secondsPerOp(() => parseRecordBatch(batch, 0));
  console.log(
    `${name}: batch ${batch.length} bytes for ${recordBytes} of records; ` +
      `build ${mbPerSec(recordBytes, build)} MB/s (${(build * 1000).toFixed(2)} ms), ` +
      `parse ${mbPerSec(recordBytes, parse)} MB/s (${(parse * 1000).toFixed(2)} ms)`,
  );
}
