// kafkajs 2.2.4 (non-flexible versions only) against a real broker process: admin, send and
// sendBatch with gzip (checked by reading the partitions back over the wire), and a consumer group
// reading everything back with committed offsets honoured (kafkajs can only consume in a group).

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import kafkajs from "kafkajs";
import { type BrokerProcess, startBrokerProcess } from "../helpers/broker-process.ts";
import { readPartition, servesGroups } from "../helpers/wire.ts";

const { Kafka, logLevel, CompressionTypes } = kafkajs;
process.env.KAFKAJS_NO_PARTITIONER_WARNING = "1";

describe("kafkajs", () => {
  let broker: BrokerProcess;
  let kafka: InstanceType<typeof Kafka>;
  before(async () => {
    broker = await startBrokerProcess();
    kafka = new Kafka({
      clientId: "interop",
      brokers: [broker.bootstrap],
      logLevel: logLevel.NOTHING,
      retry: { retries: 3 },
    });
  });
  after(async () => {
    await broker.cleanup();
  });

  test("admin creates topics, lists metadata and offsets, and refuses duplicates", async () => {
    const admin = kafka.admin();
    await admin.connect();
    try {
      assert.equal(await admin.createTopics({ topics: [{ topic: "js-admin", numPartitions: 4 }] }), true);
      assert.equal(await admin.createTopics({ topics: [{ topic: "js-admin", numPartitions: 4 }] }), false);
      const md = await admin.fetchTopicMetadata({ topics: ["js-admin"] });
      assert.equal(md.topics[0]!.partitions.length, 4);
      assert.ok((await admin.listTopics()).includes("js-admin"));
      const offsets = await admin.fetchTopicOffsets("js-admin");
      assert.deepEqual(
        offsets.map((o) => [o.partition, o.high, o.low]).sort(),
        [0, 1, 2, 3].map((p) => [p, "0", "0"]),
      );
      await admin.createPartitions({ topicPartitions: [{ topic: "js-admin", count: 6 }] });
      assert.equal((await admin.fetchTopicMetadata({ topics: ["js-admin"] })).topics[0]!.partitions.length, 6);
      await admin.deleteTopics({ topics: ["js-admin"] });
      assert.ok(!(await admin.listTopics()).includes("js-admin"));
    } finally {
      await admin.disconnect();
    }
  });

  test("send and sendBatch with gzip: every record is stored byte-exact at the offsets kafkajs was given", async () => {
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: "js-gzip", numPartitions: 2 }] });
    await admin.disconnect();
    const producer = kafka.producer();
    await producer.connect();
    try {
      const single = await producer.send({
        topic: "js-gzip",
        compression: CompressionTypes.GZIP,
        acks: -1,
        messages: Array.from({ length: 10 }, (_, i) => ({
          partition: 0,
          key: `s${i}`,
          value: `single-${i}`,
          headers: { n: String(i) },
        })),
      });
      assert.deepEqual(
        single.map((r) => [r.partition, r.errorCode, r.baseOffset]),
        [[0, 0, "0"]],
      );
      const batch = await producer.sendBatch({
        compression: CompressionTypes.GZIP,
        topicMessages: [
          {
            topic: "js-gzip",
            messages: Array.from({ length: 30 }, (_, i) => ({ partition: i % 2, key: `b${i}`, value: `batch-${i}` })),
          },
        ],
      });
      const base = new Map(batch.map((r) => [r.partition, BigInt(r.baseOffset!)]));
      assert.deepEqual([base.get(0), base.get(1)], [10n, 0n]);
      const p0 = await readPartition(broker.bootstrap, "js-gzip", 0);
      const p1 = await readPartition(broker.bootstrap, "js-gzip", 1);
      assert.deepEqual(
        p0.map((r) => [r.offset, Buffer.from(r.key!).toString(), Buffer.from(r.value!).toString()]),
        [
          ...Array.from({ length: 10 }, (_, i) => [BigInt(i), `s${i}`, `single-${i}`]),
          ...Array.from({ length: 15 }, (_, i) => [10n + BigInt(i), `b${2 * i}`, `batch-${2 * i}`]),
        ],
      );
      assert.deepEqual(
        p1.map((r) => [r.offset, Buffer.from(r.value!).toString()]),
        Array.from({ length: 15 }, (_, i) => [BigInt(i), `batch-${2 * i + 1}`]),
      );
      assert.deepEqual(
        p0.slice(0, 10).map((r) => r.headers.map((h) => [h.key, Buffer.from(h.value!).toString()])),
        Array.from({ length: 10 }, (_, i) => [["n", String(i)]]),
      );
      const offsets = await kafka.admin();
      await offsets.connect();
      const high = await offsets.fetchTopicOffsets("js-gzip");
      assert.deepEqual(high.map((o) => [o.partition, o.high]).sort(), [
        [0, "25"],
        [1, "15"],
      ]);
      await offsets.disconnect();
    } finally {
      await producer.disconnect();
    }
  });

  // TODO(issue 5): needs the group coordinator; skipped only while the broker does not advertise
  // its APIs (decided at run time from ApiVersions, not hard-coded).
  test("a consumer group reads everything back, in order per partition, and resumes from committed offsets", async (t) => {
    if (!(await servesGroups(broker.bootstrap))) {
      t.skip("TODO(issue 5): the broker does not serve the group coordinator APIs yet");
      return;
    }
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: "js-data", numPartitions: 3 }] });
    const producer = kafka.producer();
    await producer.connect();
    const sent = new Map<string, string>();
    const r1 = await producer.send({
      topic: "js-data",
      compression: CompressionTypes.GZIP,
      messages: Array.from({ length: 20 }, (_, i) => ({
        key: `k${i}`,
        value: `single-${i}`,
        headers: { n: String(i) },
      })),
    });
    assert.ok(r1.every((r) => r.errorCode === 0));
    await producer.sendBatch({
      compression: CompressionTypes.GZIP,
      topicMessages: [
        { topic: "js-data", messages: Array.from({ length: 40 }, (_, i) => ({ key: `b${i}`, value: `batch-${i}` })) },
      ],
    });
    for (let i = 0; i < 20; i++) sent.set(`k${i}`, `single-${i}`);
    for (let i = 0; i < 40; i++) sent.set(`b${i}`, `batch-${i}`);

    const consume = async (count: number): Promise<Map<string, string>> => {
      const consumer = kafka.consumer({ groupId: "js-group", sessionTimeout: 10_000, heartbeatInterval: 500 });
      await consumer.connect();
      await consumer.subscribe({ topic: "js-data", fromBeginning: true });
      const got = new Map<string, string>();
      const perPartition = new Map<number, bigint[]>();
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`consumed ${got.size} of ${count}`)), 30_000);
        void consumer.run({
          eachMessage: async ({ partition, message }) => {
            got.set(message.key!.toString(), message.value!.toString());
            perPartition.set(partition, [...(perPartition.get(partition) ?? []), BigInt(message.offset)]);
            if (message.key!.toString().startsWith("k"))
              assert.equal(message.headers?.n?.toString(), message.key!.toString().slice(1));
            if (got.size === count) {
              clearTimeout(timer);
              resolve();
            }
          },
        });
      });
      for (const offsets of perPartition.values())
        assert.deepEqual(
          offsets,
          [...offsets].sort((a, b) => (a < b ? -1 : 1)),
          "in order per partition",
        );
      await consumer.disconnect();
      return got;
    };
    const first = await consume(60);
    assert.deepEqual(new Map([...first].sort()), new Map([...sent].sort()));
    const committed = await admin.fetchOffsets({ groupId: "js-group", topics: ["js-data"] });
    const total = committed[0]!.partitions.reduce((n, p) => n + Number(p.offset), 0);
    assert.equal(total, 60, "the group committed everything it consumed");
    await producer.send({ topic: "js-data", messages: [{ key: "late", value: "after-commit" }] });
    const second = await consume(1);
    assert.deepEqual(
      [...second],
      [["late", "after-commit"]],
      "a restarted consumer resumes after its committed offsets",
    );
    const groups = await admin.listGroups();
    assert.ok(groups.groups.some((g) => g.groupId === "js-group"));
    await producer.disconnect();
    await admin.disconnect();
  });
});
