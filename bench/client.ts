// Client throughput: produce and consume records/s and MB/s for 100 B and 1 KiB records, our
// client against kafkajs and @platformatic/kafka, on the same broker (a separate process) in the
// same run; results as ratios to each baseline (issue 7: produce ≥ 3× kafkajs, ≥ 1.5× platformatic).
// Not a test. Run:
//   ./node_modules/.bin/node bench/client.ts      (BENCH_RECORDS=200000 100 B records by default;
//                                                 a quarter as many 1 KiB ones; BENCH_ROUNDS=3)
// BENCH_SMOKE=1 runs a tiny version; BENCH_JSON=path writes the report (bench/lib/report.ts).
//
// Fairness — every client gets the same records (Buffer values, no key, no headers) in the same
// calls (1000 records per send call), and makes one record batch per call:
//   - kafkajs and platformatic send each call as its own batch (they do not linger);
//   - sluice gets batchSize = the exact size of one call's batch (and lingerMs 5, which then never
//     waits: a batch is full with the call's last record), so it packs no more per request;
//   - acks=all for all; compression none for all; at most 5 requests in flight for all;
//   - idempotence: on for sluice and kafkajs; off for platformatic (its idempotent producer fails
//     with OUT_OF_ORDER_SEQUENCE_NUMBER under concurrent sends), which favours platformatic.
// What is timed — connecting, metadata and InitProducerId are done before the clock starts (a
// warm-up call); each round times `count` records from the first call to the last
// acknowledgement. Rounds alternate between clients; each client's median round is reported and
// the ratios are of medians (the best round is noted: the cores are shared, rounds vary). After
// producing, every topic must hold exactly the records sent (a client that dropped or duplicated
// records would fail the run, not win it). Consume: each client reads
// its own topic (all the same size) from the start; the clock starts when the first records
// arrive (so a group join does not count) and those first records are not counted (unless they
// are all there is, as in smoke runs).

import { Consumer as PlatformaticConsumer, Producer as PlatformaticProducer, ProduceAcks } from "@platformatic/kafka";
import kafkajs from "kafkajs";
import { byteLengthOf, RecordBatchBuilder, recordBytesMax } from "../packages/client/src/batch-builder.ts";
import { Admin, Consumer, Producer } from "../packages/client/src/index.ts";
import { startBrokerProcess } from "../tests/helpers/broker-process.ts";
import { type BenchRow, ratioRow, report, smoke } from "./lib/report.ts";

process.env.KAFKAJS_NO_PARTITIONER_WARNING = "1";
const RECORDS = smoke ? 5000 : Number(process.env.BENCH_RECORDS ?? 200_000);
const ROUNDS = smoke ? 1 : Number(process.env.BENCH_ROUNDS ?? 5);
const CHUNK = 1000; // records per send call for every client ("batched produce")
const IN_FLIGHT = 5;
const TARGET_KAFKAJS = 3;
const TARGET_PLATFORMATIC = 1.5;

type ClientName = "sluice" | "kafkajs" | "platformatic";
const CLIENTS: ClientName[] = ["sluice", "kafkajs", "platformatic"];

/** Sends `count` records of `value` to `topic` in calls of CHUNK; resolves when all are acknowledged. */
type Send = (count: number) => Promise<void>;
interface ProduceClient {
  send: Send;
  close(): Promise<void>;
}

/** The size of a batch of one call's records, as the sluice producer builds it. */
function oneCallBatchBytes(value: Buffer): number {
  const b = new RecordBatchBuilder(1 << 20, recordBytesMax(-1, value.length, null));
  const now = Date.now();
  for (let i = 0; i < CHUNK; i++) b.append(null, -1, value, byteLengthOf(value), null, now);
  return b.sizeInBytes;
}

async function calls(count: number, call: (n: number) => Promise<unknown>): Promise<void> {
  const pending: Promise<unknown>[] = [];
  for (let i = 0; i < count; i += CHUNK) pending.push(call(Math.min(CHUNK, count - i)));
  await Promise.all(pending);
}

async function sluiceProducer(bootstrap: string, topic: string, value: Buffer): Promise<ProduceClient> {
  const p = new Producer({
    bootstrapServers: bootstrap,
    acks: "all",
    enableIdempotence: true,
    compressionType: "none",
    maxInFlightRequestsPerConnection: IN_FLIGHT,
    lingerMs: 5,
    batchSize: oneCallBatchBytes(value),
  });
  const send: Send = (count) => calls(count, (n) => p.sendBatch(Array.from({ length: n }, () => ({ topic, value }))));
  return { send, close: () => p.close() };
}

async function kafkajsProducer(bootstrap: string, topic: string, value: Buffer): Promise<ProduceClient> {
  const k = new kafkajs.Kafka({ brokers: [bootstrap], logLevel: kafkajs.logLevel.NOTHING });
  const p = k.producer({ idempotent: true, maxInFlightRequests: IN_FLIGHT });
  await p.connect();
  const send: Send = (count) =>
    calls(count, (n) =>
      p.send({
        topic,
        acks: -1,
        compression: kafkajs.CompressionTypes.None,
        messages: Array.from({ length: n }, () => ({ value })),
      }),
    );
  return { send, close: () => p.disconnect() };
}

async function platformaticProducer(bootstrap: string, topic: string, value: Buffer): Promise<ProduceClient> {
  const p = new PlatformaticProducer({
    clientId: "bench",
    bootstrapBrokers: [bootstrap],
    idempotent: false,
    acks: ProduceAcks.ALL,
    compression: "none",
    maxInflights: IN_FLIGHT,
  });
  const send: Send = (count) =>
    calls(count, (n) => p.send({ messages: Array.from({ length: n }, () => ({ topic, value })) }));
  return { send, close: () => p.close() };
}

const PRODUCERS: Record<ClientName, (b: string, t: string, v: Buffer) => Promise<ProduceClient>> = {
  sluice: sluiceProducer,
  kafkajs: kafkajsProducer,
  platformatic: platformaticProducer,
};

/** Consumes `total` records of `topic`; returns records/s counted after the first delivery. */
async function consumeRate(client: ClientName, bootstrap: string, topic: string, total: number): Promise<number> {
  const created = performance.now();
  let n = 0;
  let first = -1;
  let firstN = 0;
  const seen = (k: number): boolean => {
    if (first < 0) {
      first = performance.now();
      firstN = k;
    }
    n += k;
    return n >= total;
  };
  // Everything in the first delivery (tiny smoke runs): then the whole consumer's life counts.
  const rate = (): number =>
    n > firstN ? (n - firstN) / ((performance.now() - first) / 1000) : n / ((performance.now() - created) / 1000);
  if (client === "sluice") {
    const c = new Consumer({ bootstrapServers: bootstrap, autoOffsetReset: "earliest", maxPollRecords: 10_000 });
    c.assign([{ topic, partition: 0 }]);
    while (!seen((await c.poll(1000)).length));
    const r = rate();
    await c.close();
    return r;
  }
  if (client === "kafkajs") {
    const k = new kafkajs.Kafka({ brokers: [bootstrap], logLevel: kafkajs.logLevel.NOTHING });
    const c = k.consumer({ groupId: `bench-${topic}-${Date.now()}`, maxBytes: 52428800 });
    await c.connect();
    await c.subscribe({ topic, fromBeginning: true });
    let r = 0;
    await new Promise<void>((resolve) => {
      void c.run({
        eachBatch: async ({ batch }) => {
          if (seen(batch.messages.length) && r === 0) {
            r = rate();
            resolve();
          }
        },
      });
    });
    await c.disconnect();
    return r;
  }
  const c = new PlatformaticConsumer({
    groupId: `bench-${topic}-${Date.now()}`,
    clientId: "bench",
    bootstrapBrokers: [bootstrap],
    maxBytes: 52428800,
  });
  const stream = await c.consume({ topics: [topic], mode: "earliest", autocommit: false });
  let r = 0;
  for await (const _ of stream) {
    if (seen(1)) {
      r = rate();
      break;
    }
  }
  await stream.close();
  await c.close(true);
  return r;
}

interface Measured {
  case: string;
  client: ClientName;
  recordsPerS: number;
  mbPerS: number;
  bestRecordsPerS?: number;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

const broker = await startBrokerProcess({ config: { "num.partitions": "1" } });
const bootstrap = broker.bootstrap;
const admin = new Admin({ bootstrapServers: bootstrap });
const measured: Measured[] = [];
const record = (name: string, client: ClientName, size: number, recordsPerS: number, best?: number): void => {
  const m: Measured = { case: name, client, recordsPerS, mbPerS: (recordsPerS * size) / 1e6 };
  if (best !== undefined) m.bestRecordsPerS = best;
  measured.push(m);
  console.error(`${name} ${client}: ${Math.round(recordsPerS)} records/s`);
};

for (const size of [100, 1024]) {
  const value = Buffer.alloc(size, 120);
  const count = size === 100 ? RECORDS : Math.floor(RECORDS / 4);
  const topics: Record<ClientName, string> = {
    sluice: `b-sluice-${size}`,
    kafkajs: `b-kafkajs-${size}`,
    platformatic: `b-plat-${size}`,
  };
  await admin.createTopics(CLIENTS.map((c) => ({ name: topics[c], numPartitions: 1 })));

  // ---- produce: warm-up call, then alternating rounds ----
  const producers = {} as Record<ClientName, ProduceClient>;
  for (const c of CLIENTS) {
    producers[c] = await PRODUCERS[c](bootstrap, topics[c], value);
    await producers[c].send(CHUNK);
  }
  const rates: Record<ClientName, number[]> = { sluice: [], kafkajs: [], platformatic: [] };
  for (let round = 0; round < ROUNDS; round++) {
    for (const c of CLIENTS) {
      const started = performance.now();
      await producers[c].send(count);
      const rate = count / ((performance.now() - started) / 1000);
      console.error(`  round ${round} produce ${size} B ${c}: ${Math.round(rate)} records/s`);
      rates[c].push(rate);
    }
  }
  const total = CHUNK + ROUNDS * count;
  for (const c of CLIENTS) {
    await producers[c].close();
    const [end] = await admin.listOffsets(topics[c], "latest");
    if (end?.offset !== BigInt(total))
      throw new Error(`${c} left ${end?.offset} records in ${topics[c]}, not the ${total} it was given`);
    record(`produce ${size} B`, c, size, median(rates[c]), Math.max(...rates[c]));
  }

  // ---- consume: every topic holds the same number of records ----
  for (const c of CLIENTS) record(`consume ${size} B`, c, size, await consumeRate(c, bootstrap, topics[c], total));
}

await admin.close();
await broker.stop();

const noteOf = (m: Measured): string =>
  `${m.mbPerS.toFixed(1)} MB/s${m.bestRecordsPerS === undefined ? "" : `; median of ${ROUNDS} rounds, best ${Math.round(m.bestRecordsPerS)} records/s`}`;
const rows: BenchRow[] = [];
for (const m of measured) {
  if (m.client !== "sluice") {
    rows.push({ case: `${m.case} ${m.client}`, value: m.recordsPerS, unit: "records/s", note: noteOf(m) });
    continue;
  }
  rows.push({ case: `${m.case} sluice`, value: m.recordsPerS, unit: "records/s", note: noteOf(m) });
  for (const base of ["kafkajs", "platformatic"] as const) {
    const b = measured.find((x) => x.case === m.case && x.client === base);
    if (!b) continue;
    const target = m.case.startsWith("produce")
      ? base === "kafkajs"
        ? TARGET_KAFKAJS
        : TARGET_PLATFORMATIC
      : undefined;
    rows.push(
      ratioRow(
        `${m.case} sluice ÷ ${base}`,
        m.recordsPerS,
        "records/s",
        { case: `${m.case} ${base}`, value: b.recordsPerS, unit: "records/s" },
        target,
      ),
    );
  }
}
report("client", rows);

console.log(
  `records: ${RECORDS} × 100 B, ${Math.floor(RECORDS / 4)} × 1 KiB per round; median (best) of ${ROUNDS} produce rounds`,
);
console.log("| case | client | records/s | MB/s | sluice ÷ this |");
console.log("| --- | --- | ---: | ---: | ---: |");
for (const m of measured) {
  const s = measured.find((x) => x.case === m.case && x.client === "sluice")!;
  const ratio = m.client === "sluice" ? "—" : `${(s.recordsPerS / m.recordsPerS).toFixed(2)}×`;
  const best = m.bestRecordsPerS === undefined ? "" : ` (${Math.round(m.bestRecordsPerS)})`;
  console.log(`| ${m.case} | ${m.client} | ${Math.round(m.recordsPerS)}${best} | ${m.mbPerS.toFixed(1)} | ${ratio} |`);
}
console.log(`targets: produce ≥ ${TARGET_KAFKAJS}× kafkajs, ≥ ${TARGET_PLATFORMATIC}× platformatic`);
process.exit(0);
