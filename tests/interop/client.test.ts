// Our client (@sluice/client) with other clients, both ways, against a real broker process:
// records our producer writes (keys, headers, timestamps, every codec) read back by kcat and
// kafkajs; records kcat and kafkajs write read back by our consumer; and keyed records landing on
// the partitions librdkafka's murmur2 partitioner picks (the Java client's default for keys).

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import kafkajs from "kafkajs";
import { Admin } from "../../packages/client/src/admin.ts";
import { Consumer, type ConsumerRecord } from "../../packages/client/src/consumer.ts";
import { Producer } from "../../packages/client/src/producer.ts";
import { type BrokerProcess, hasCommand, run, startBrokerProcess } from "../helpers/broker-process.ts";

const { Kafka, logLevel, CompressionTypes } = kafkajs;
process.env.KAFKAJS_NO_PARTITIONER_WARNING = "1";
const noKcat = !hasCommand("kcat") && "kcat is not installed (CI installs it with apt-get)";
const CODECS = ["none", "gzip", "snappy", "lz4", "zstd"] as const;
const silent = { logger: () => {} };
const text = (b: Uint8Array | null): string | null => (b === null ? null : Buffer.from(b).toString());

/** Reads partition 0..n-1 of `topic` from the beginning with our consumer until `count` records arrived. */
async function readWithSluice(bootstrap: string, topic: string, partitions: number, count: number) {
  const c = new Consumer({ bootstrapServers: bootstrap, autoOffsetReset: "earliest", ...silent });
  try {
    c.assign(Array.from({ length: partitions }, (_, partition) => ({ topic, partition })));
    const out: ConsumerRecord[] = [];
    const deadline = Date.now() + 20_000;
    while (out.length < count && Date.now() < deadline) out.push(...(await c.poll(200)));
    out.push(...(await c.poll(200))); // nothing more may arrive
    return out;
  } finally {
    await c.close();
  }
}

describe("our client with kcat and kafkajs", () => {
  let broker: BrokerProcess;
  let kafka: InstanceType<typeof Kafka>;
  before(async () => {
    broker = await startBrokerProcess();
    kafka = new Kafka({ clientId: "client-interop", brokers: [broker.bootstrap], logLevel: logLevel.NOTHING });
    const admin = new Admin({ bootstrapServers: broker.bootstrap });
    await admin.createTopics([
      ...CODECS.map((c) => ({ name: `ours-${c}`, numPartitions: 1 })),
      { name: "from-kafkajs", numPartitions: 1 },
      { name: "keyed", numPartitions: 7 },
      { name: "keyed-kcat", numPartitions: 7 },
    ]);
    await admin.close();
  });
  after(async () => {
    await broker.cleanup();
  });

  for (const codec of CODECS) {
    test(`kcat reads what our producer wrote with ${codec}: keys, values, headers, timestamps`, {
      skip: noKcat,
    }, async () => {
      const topic = `ours-${codec}`;
      const p = new Producer({ bootstrapServers: broker.bootstrap, compressionType: codec, lingerMs: 5, ...silent });
      const sent = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          p.send({
            topic,
            key: `k${i}`,
            value: `v${i}-${codec}`,
            headers: [
              { key: "i", value: String(i) },
              { key: "codec", value: codec },
            ],
            timestamp: 1_700_000_000_000n + BigInt(i),
          }),
        ),
      );
      await p.close();
      const out = await run("kcat", ["-b", broker.bootstrap, "-C", "-t", topic, "-e", "-q", "-f", "%o|%k|%s|%h|%T\\n"]);
      assert.equal(out.status, 0, out.stderr);
      const rows = out.stdout.trim().split("\n");
      assert.deepEqual(
        rows,
        Array.from(
          { length: 20 },
          (_, i) => `${i}|k${i}|v${i}-${codec}|i=${i},codec=${codec}|${1_700_000_000_000 + i}`,
        ),
      );
      assert.deepEqual(
        sent.map((m) => m.offset),
        Array.from({ length: 20 }, (_, i) => BigInt(i)),
        "the offsets our producer reported are where kcat found the records",
      );
    });
  }

  test("kafkajs reads what our producer wrote: keys, values, headers, timestamps (gzip)", async () => {
    const p = new Producer({ bootstrapServers: broker.bootstrap, compressionType: "gzip", ...silent });
    await p.sendBatch(
      Array.from({ length: 10 }, (_, i) => ({
        topic: "ours-gzip-js",
        key: `k${i}`,
        value: `v${i}`,
        headers: { n: String(i) },
        timestamp: 1_600_000_000_000 + i,
      })),
    );
    await p.close();
    const c = kafka.consumer({ groupId: "js-reads-ours" });
    await c.connect();
    await c.subscribe({ topic: "ours-gzip-js", fromBeginning: true });
    const got: string[] = [];
    await c.run({
      eachMessage: async ({ message }) =>
        void got.push(
          `${message.offset}|${message.key}|${message.value}|${message.headers?.n?.toString()}|${message.timestamp}`,
        ),
    });
    const deadline = Date.now() + 20_000;
    while (got.length < 10 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await c.disconnect();
    assert.deepEqual(
      got,
      Array.from({ length: 10 }, (_, i) => `${i}|k${i}|v${i}|${i}|${1_600_000_000_000 + i}`),
    );
  });

  for (const codec of CODECS) {
    test(`our consumer reads what kcat wrote with ${codec}: keys, values, headers`, { skip: noKcat }, async () => {
      const topic = `from-kcat-${codec}`;
      const before = Date.now();
      const lines = Array.from({ length: 15 }, (_, i) => `key${i}:value${i}`);
      const produced = await run(
        "kcat",
        ["-b", broker.bootstrap, "-P", "-t", topic, "-K:", "-z", codec, "-H", "src=kcat", "-H", `codec=${codec}`],
        { input: `${lines.join("\n")}\n` },
      );
      assert.equal(produced.status, 0, produced.stderr);
      const records = await readWithSluice(broker.bootstrap, topic, 1, 15);
      assert.deepEqual(
        records.map((r) => [r.offset, text(r.key), text(r.value), r.headers.map((h) => `${h.key}=${text(h.value)}`)]),
        Array.from({ length: 15 }, (_, i) => [BigInt(i), `key${i}`, `value${i}`, ["src=kcat", `codec=${codec}`]]),
      );
      for (const r of records) {
        assert.ok(r.timestamp >= BigInt(before - 1000) && r.timestamp <= BigInt(Date.now()), "kcat's CreateTime");
      }
    });
  }

  test("our consumer reads what kafkajs wrote (gzip): keys, values, headers, timestamps", async () => {
    const p = kafka.producer();
    await p.connect();
    await p.send({
      topic: "from-kafkajs",
      compression: CompressionTypes.GZIP,
      messages: Array.from({ length: 12 }, (_, i) => ({
        key: `jk${i}`,
        value: `jv${i}`,
        headers: { from: "kafkajs", i: String(i) },
        timestamp: String(1_650_000_000_000 + i),
      })),
    });
    await p.disconnect();
    const records = await readWithSluice(broker.bootstrap, "from-kafkajs", 1, 12);
    assert.deepEqual(
      records.map((r) => [
        r.offset,
        text(r.key),
        text(r.value),
        r.headers.map((h) => `${h.key}=${text(h.value)}`),
        r.timestamp,
      ]),
      Array.from({ length: 12 }, (_, i) => [
        BigInt(i),
        `jk${i}`,
        `jv${i}`,
        ["from=kafkajs", `i=${i}`],
        BigInt(1_650_000_000_000 + i),
      ]),
    );
  });

  test("keyed records land where librdkafka's murmur2 partitioner puts them", { skip: noKcat }, async () => {
    const keys = Array.from({ length: 60 }, (_, i) => `customer-${i * 7919}`);
    const produced = await run(
      "kcat",
      ["-b", broker.bootstrap, "-P", "-t", "keyed-kcat", "-K:", "-X", "partitioner=murmur2_random"],
      { input: `${keys.map((k) => `${k}:x`).join("\n")}\n` },
    );
    assert.equal(produced.status, 0, produced.stderr);
    const consumed = await run("kcat", [
      "-b",
      broker.bootstrap,
      "-C",
      "-t",
      "keyed-kcat",
      "-e",
      "-q",
      "-f",
      "%k %p\\n",
    ]);
    assert.equal(consumed.status, 0, consumed.stderr);
    const librdkafka = new Map(
      consumed.stdout
        .trim()
        .split("\n")
        .map((l) => l.split(" ") as [string, string]),
    );
    assert.equal(librdkafka.size, keys.length);
    assert.ok(new Set(librdkafka.values()).size > 3, "the keys spread over several partitions");

    const p = new Producer({ bootstrapServers: broker.bootstrap, ...silent });
    const ours = await Promise.all(keys.map((key) => p.send({ topic: "keyed", key, value: "x" })));
    await p.close();
    for (const [i, key] of keys.entries()) {
      assert.equal(String(ours[i]!.partition), librdkafka.get(key), `partition of ${key}`);
    }
  });
});
