// @platformatic/kafka (flexible versions only: Metadata 9+, Produce 9+, Fetch 12+, ApiVersions 3+)
// against a real broker process: admin, produce with headers checked byte-exact over the wire, and
// a consumer group reading them back.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Admin, Consumer, Producer, stringDeserializers, stringSerializers } from "@platformatic/kafka";
import { type BrokerProcess, startBrokerProcess } from "../helpers/broker-process.ts";
import { readPartition, servesGroups } from "../helpers/wire.ts";

describe("@platformatic/kafka", () => {
  let broker: BrokerProcess;
  before(async () => {
    broker = await startBrokerProcess();
  });
  after(async () => {
    await broker.cleanup();
  });

  test("admin creates, describes and deletes topics", async () => {
    const admin = new Admin({ clientId: "interop", bootstrapBrokers: [broker.bootstrap] });
    try {
      await admin.createTopics({ topics: ["pk-admin"], partitions: 3, replicas: 1 });
      const md = await admin.metadata({ topics: ["pk-admin"] });
      assert.equal(md.topics.get("pk-admin")?.partitionsCount, 3);
      await admin.deleteTopics({ topics: ["pk-admin"] });
      const all = await admin.listTopics();
      assert.ok(!all.includes("pk-admin"));
    } finally {
      await admin.close();
    }
  });

  test("produces keyed records with headers, stored byte-exact at the offsets it was given", async () => {
    const admin = new Admin({ clientId: "interop", bootstrapBrokers: [broker.bootstrap] });
    await admin.createTopics({ topics: ["pk-data"], partitions: 1, replicas: 1 });
    await admin.close();
    const producer = new Producer({
      clientId: "interop",
      bootstrapBrokers: [broker.bootstrap],
      serializers: stringSerializers,
      acks: -1,
    });
    try {
      const sent = Array.from({ length: 20 }, (_, i) => ({
        topic: "pk-data",
        partition: 0,
        key: `key-${i}`,
        value: `value-${i}`,
        headers: new Map([["n", String(i)]]),
      }));
      await producer.send({ messages: sent.slice(0, 10) });
      await producer.send({ messages: sent.slice(10) });
      const stored = await readPartition(broker.bootstrap, "pk-data", 0);
      assert.deepEqual(
        stored.map((r) => [
          r.offset,
          Buffer.from(r.key!).toString(),
          Buffer.from(r.value!).toString(),
          r.headers.map((h) => `${h.key}=${Buffer.from(h.value!).toString()}`).join(","),
        ]),
        sent.map((m, i) => [BigInt(i), m.key, m.value, `n=${i}`]),
      );
    } finally {
      await producer.close();
    }
  });

  // TODO(issue 5): needs the group coordinator; skipped only while the broker does not advertise
  // its APIs (decided at run time from ApiVersions).
  test("a consumer group reads the records back", async (t) => {
    if (!(await servesGroups(broker.bootstrap))) {
      t.skip("TODO(issue 5): the broker does not serve the group coordinator APIs yet");
      return;
    }
    const consumer = new Consumer({
      groupId: "pk-group",
      clientId: "interop",
      bootstrapBrokers: [broker.bootstrap],
      deserializers: stringDeserializers,
      sessionTimeout: 10_000,
      heartbeatInterval: 500,
    });
    try {
      const stream = await consumer.consume({ topics: ["pk-data"], mode: "earliest", autocommit: false });
      const got: string[] = [];
      const timer = setTimeout(() => void stream.close(), 20_000);
      for await (const message of stream) {
        got.push(`${message.offset}:${message.key}=${message.value}`);
        if (got.length === 20) break;
      }
      clearTimeout(timer);
      await stream.close();
      assert.deepEqual(
        got,
        Array.from({ length: 20 }, (_, i) => `${i}:key-${i}=value-${i}`),
      );
    } finally {
      await consumer.close(true);
    }
  });
});
