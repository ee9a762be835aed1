// Benchmark (not a test): encode/decode throughput of Produce requests and Fetch responses with
// the generated codecs, and CRC32C of the same record bytes (issue 2). A baseline in the same run —
// Buffer.concat of the same record bytes — shows how close the codecs come to just moving the
// bytes; every row is MB/s of record bytes and its ratio to that baseline.
//
//   ./node_modules/.bin/node bench/protocol.ts        (BENCH_SMOKE=1: tiny sizes; BENCH_JSON=path;
//                                                      BENCH_MS=… per measurement, default 1500)

import { decodeFetchResponse, encodeFetchResponse } from "../packages/protocol/src/generated/fetch.ts";
import { decodeProduceRequest, encodeProduceRequest } from "../packages/protocol/src/generated/produce.ts";
import { Reader, Writer } from "../packages/protocol/src/primitives.ts";
import { crc32c, crc32cIsNative, crc32cPure } from "../packages/protocol/src/records/crc32c.ts";
import { type BenchRow, machine, ratioRow, report, smoke } from "./lib/report.ts";

const BATCH_BYTES = (smoke ? 4 : 64) * 1024;
const PARTITIONS = 8;
const DURATION_MS = smoke ? 30 : Number(process.env.BENCH_MS ?? 1500);
const WARMUP_OPS = smoke ? 20 : 200;

interface Measured {
  name: string;
  opsPerSec: number;
  mbPerSec: number;
}

function measure(name: string, bytesPerOp: number, op: () => void): Measured {
  for (let i = 0; i < WARMUP_OPS; i++) op();
  let ops = 0;
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(DURATION_MS) * 1_000_000n;
  while (process.hrtime.bigint() < deadline) {
    for (let i = 0; i < 50; i++) op();
    ops += 50;
  }
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  return { name, opsPerSec: ops / secs, mbPerSec: (ops * bytesPerOp) / secs / 1e6 };
}

const records = Array.from({ length: PARTITIONS }, () => Buffer.alloc(BATCH_BYTES, 7));
const payloadBytes = BATCH_BYTES * PARTITIONS;

const produce = {
  acks: -1,
  timeoutMs: 30000,
  topicData: [{ name: "bench", partitionData: records.map((r, index) => ({ index, records: r })) }],
};
const fetch = {
  responses: [
    {
      topic: "bench",
      partitions: records.map((r, partitionIndex) => ({ partitionIndex, highWatermark: 1000n, records: r })),
    },
  ],
};

const encodeOnce = (enc: (w: Writer) => void): Buffer => {
  const w = new Writer();
  enc(w);
  return w.toBuffer();
};
const produceV9 = encodeOnce((w) => encodeProduceRequest(w, produce, 9));
const fetchV12 = encodeOnce((w) => encodeFetchResponse(w, fetch, 12));

const baseline = measure("Buffer.concat of the record bytes", payloadBytes, () => Buffer.concat(records));
const cases = [
  measure("Produce v9 encode (chunks, no copy)", payloadBytes, () => {
    const w = new Writer();
    encodeProduceRequest(w, produce, 9);
    w.toChunks();
  }),
  measure("Produce v9 decode (zero copy)", payloadBytes, () => decodeProduceRequest(new Reader(produceV9), 9)),
  measure("Produce v7 encode (contiguous)", payloadBytes, () => {
    const w = new Writer();
    encodeProduceRequest(w, produce, 7);
    w.toBuffer();
  }),
  measure("Fetch v12 response encode (chunks)", payloadBytes, () => {
    const w = new Writer();
    encodeFetchResponse(w, fetch, 12);
    w.toChunks();
  }),
  measure("Fetch v12 response decode", payloadBytes, () => decodeFetchResponse(new Reader(fetchV12), 12)),
  measure(
    `CRC32C of the record bytes (${crc32cIsNative ? "native @node-rs/crc32" : "pure fallback, native NOT loaded"})`,
    payloadBytes,
    () => {
      for (const r of records) crc32c(r);
    },
  ),
  measure("CRC32C of the record bytes (pure TypeScript fallback)", payloadBytes, () => {
    for (const r of records) crc32cPure(r);
  }),
];

const base = { case: `baseline: ${baseline.name}`, value: baseline.mbPerSec, unit: "MB/s" };
const opsNote = (m: Measured): string => `${Math.round(m.opsPerSec).toLocaleString("en")} ops/s`;
const rows: BenchRow[] = [
  { case: base.case, value: base.value, unit: "MB/s", better: "higher", note: opsNote(baseline) },
];
for (const m of cases)
  rows.push({ ...ratioRow(m.name, m.mbPerSec, "MB/s", base, undefined, "higher"), note: opsNote(m) });
report("protocol", rows);

const mc = machine();
console.log(
  `protocol codec benchmark — ${mc.cores} cores, ${mc.memoryGiB} GiB, ${mc.cpu}, Node ${mc.node}${smoke ? " (smoke)" : ""}`,
);
console.log(`payload: ${PARTITIONS} partitions × ${BATCH_BYTES / 1024} KiB record batches per message\n`);
console.log("| operation | ops/s | MB/s of records | × baseline |");
console.log("| --- | ---: | ---: | ---: |");
for (const m of [baseline, ...cases]) {
  const name = m === baseline ? base.case : m.name;
  console.log(
    `| ${name} | ${Math.round(m.opsPerSec).toLocaleString("en")} | ${Math.round(m.mbPerSec).toLocaleString("en")} | ${(m.mbPerSec / baseline.mbPerSec).toFixed(2)} |`,
  );
}
