// kafkajs 2.2.4 (non-flexible versions only) against a real broker process: admin, send and
// sendBatch with gzip, and a consumer group reading everything back; committed offsets honoured.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import kafkajs from "kafkajs";
import { type BrokerProcess, startBrokerProcess } from "../helpers/broker-process.ts";

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

  test("send and sendBatch with gzip; a consumer group reads everything back and resumes from committed offsets", async () => {
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
