// Client throughput: produce and consume records/s and MB/s for 100 B and 1 KiB records, our
// client against kafkajs and @platformatic/kafka, on the same broker (a separate process) in the
// same run; results as ratios to each baseline. Not a test. Run:
//   ./node_modules/.bin/node bench/client.ts            (BENCH_RECORDS=200000 by default)

import { Producer as PlatformaticProducer, stringSerializers } from "@platformatic/kafka";
import kafkajs from "kafkajs";
import { Admin, Consumer, Producer } from "../packages/client/src/index.ts";
import { startBrokerProcess } from "../tests/helpers/broker-process.ts";

process.env.KAFKAJS_NO_PARTITIONER_WARNING = "1";
const RECORDS = Number(process.env.BENCH_RECORDS ?? 200_000);
const CHUNK = 1000; // records per send call for every client ("batched produce")

const broker = await startBrokerProcess({ config: { "num.partitions": "1" } });
const bootstrap = broker.bootstrap;
const admin = new Admin({ bootstrapServers: bootstrap });

interface Row {
  case: string;
  client: string;
  recordsPerS: number;
  mbPerS: number;
}
const rows: Row[] = [];

async function measure(
  name: string,
  client: string,
  size: number,
  count: number,
  fn: () => Promise<void>,
): Promise<void> {
  const started = performance.now();
  await fn();
  const s = (performance.now() - started) / 1000;
  rows.push({ case: name, client, recordsPerS: count / s, mbPerS: (count * size) / s / 1e6 });
  console.error(`${name} ${client}: ${Math.round(count / s)} records/s`);
}

for (const size of [100, 1024]) {
  const value = Buffer.alloc(size, 120);
  const count = size === 100 ? RECORDS : Math.floor(RECORDS / 4);
  const topics = { sluice: `b-sluice-${size}`, kafkajs: `b-kafkajs-${size}`, platformatic: `b-plat-${size}` };
  await admin.createTopics(Object.values(topics).map((name) => ({ name, numPartitions: 1 })));

  // ---- produce ----
  await measure(`produce ${size} B`, "sluice", size, count, async () => {
    const p = new Producer({ bootstrapServers: bootstrap, lingerMs: 5, batchSize: 1024 * 1024 });
    const pending: Promise<unknown>[] = [];
    for (let i = 0; i < count; i += CHUNK)
      pending.push(
        p.sendBatch(Array.from({ length: Math.min(CHUNK, count - i) }, () => ({ topic: topics.sluice, value }))),
      );
    await Promise.all(pending);
    await p.close();
  });
  await measure(`produce ${size} B`, "kafkajs", size, count, async () => {
    const k = new kafkajs.Kafka({ brokers: [bootstrap], logLevel: kafkajs.logLevel.NOTHING });
    const p = k.producer({ idempotent: true, maxInFlightRequests: 5 });
    await p.connect();
    const pending: Promise<unknown>[] = [];
    for (let i = 0; i < count; i += CHUNK)
      pending.push(
        p.send({
          topic: topics.kafkajs,
          messages: Array.from({ length: Math.min(CHUNK, count - i) }, () => ({ value })),
        }),
      );
    await Promise.all(pending);
    await p.disconnect();
  });
  await measure(`produce ${size} B`, "platformatic", size, count, async () => {
    const p = new PlatformaticProducer({
      clientId: "bench",
      bootstrapBrokers: [bootstrap],
      serializers: stringSerializers,
    } as never);
    const pending: Promise<unknown>[] = [];
    const v = value.toString();
    for (let i = 0; i < count; i += CHUNK)
      pending.push(
        (p as unknown as { send(o: unknown): Promise<unknown> }).send({
          messages: Array.from({ length: Math.min(CHUNK, count - i) }, () => ({
            topic: topics.platformatic,
            value: v,
          })),
        }),
      );
    await Promise.all(pending);
    await (p as unknown as { close(): Promise<void> }).close();
  });

  // ---- consume (each client reads its own topic, all of the same size) ----
  await measure(`consume ${size} B`, "sluice", size, count, async () => {
    const c = new Consumer({ bootstrapServers: bootstrap, autoOffsetReset: "earliest", maxPollRecords: 10_000 });
    c.assign([{ topic: topics.sluice, partition: 0 }]);
    let n = 0;
    while (n < count) n += (await c.poll(1000)).length;
    await c.close();
  });
  await measure(`consume ${size} B`, "kafkajs", size, count, async () => {
    const k = new kafkajs.Kafka({ brokers: [bootstrap], logLevel: kafkajs.logLevel.NOTHING });
    const c = k.consumer({ groupId: `bench-${size}-${Date.now()}`, maxBytes: 52428800 });
    await c.connect();
    await c.subscribe({ topic: topics.kafkajs, fromBeginning: true });
    let n = 0;
    await new Promise<void>((resolve) => {
      void c.run({
        eachBatch: async ({ batch }) => {
          n += batch.messages.length;
          if (n >= count) resolve();
        },
      });
    });
    await c.disconnect();
  });
}

await admin.close();
await broker.stop();

const ratio = (kind: string, base: string): string =>
  rows
    .filter((r) => r.case.startsWith(kind) && r.client === "sluice")
    .map((r) => {
      const b = rows.find((x) => x.case === r.case && x.client === base);
      return b ? `${r.case}: ${(r.recordsPerS / b.recordsPerS).toFixed(2)}× ${base}` : "";
    })
    .join("; ");
console.log("| case | client | records/s | MB/s |");
console.log("| --- | --- | ---: | ---: |");
for (const r of rows)
  console.log(`| ${r.case} | ${r.client} | ${Math.round(r.recordsPerS)} | ${r.mbPerS.toFixed(1)} |`);
console.log();
console.log(ratio("produce", "kafkajs"));
console.log(ratio("produce", "platformatic"));
console.log(ratio("consume", "kafkajs"));
process.exit(0);
