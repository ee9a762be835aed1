// The admin client against a real in-process broker.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { type RunningBroker, startBroker } from "@sluice/broker";
import { Admin, AdminError } from "../src/admin.ts";
import { Producer } from "../src/producer.ts";

describe("admin", () => {
  let broker: RunningBroker;
  let admin: Admin;
  before(async () => {
    broker = await startBroker({ config: { "auto.create.topics.enable": "false" } });
    admin = new Admin({ bootstrapServers: broker.bootstrap });
  });
  after(async () => {
    await admin.close();
    await broker.stop();
  });

  test("creates, describes, grows and deletes topics; failures carry per-item results", async () => {
    await admin.createTopics([{ name: "a1", numPartitions: 3, configs: { "retention.ms": "1000" } }, { name: "a2" }]);
    assert.deepEqual(await admin.listTopics(), ["a1", "a2"]);
    const [d] = await admin.describeTopics(["a1"]);
    assert.equal(d!.partitions.length, 3);
    assert.deepEqual(d!.partitions[0]!.isr, [1]);
    await assert.rejects(admin.createTopics([{ name: "a1" }, { name: "a3" }]), (e: unknown) => {
      assert.ok(e instanceof AdminError);
      assert.deepEqual(
        e.results.map((r) => [r.name, r.error]),
        [
          ["a1", "TOPIC_ALREADY_EXISTS"],
          ["a3", null],
        ],
      );
      return true;
    });
    await admin.createPartitions("a1", 5);
    assert.equal((await admin.describeTopics(["a1"]))[0]!.partitions.length, 5);
    await assert.rejects(admin.createPartitions("a1", 2), AdminError);
    await admin.deleteTopics(["a2", "a3"]);
    assert.deepEqual(await admin.listTopics(), ["a1"]);
  });

  test("describes and alters topic configs with their sources", async () => {
    const before = await admin.describeConfigs({ type: "topic", name: "a1" });
    const retention = before.find((c) => c.name === "retention.ms")!;
    assert.deepEqual([retention.value, retention.source], ["1000", 1]);
    assert.equal(before.find((c) => c.name === "segment.bytes")!.isDefault, true);
    await admin.alterConfigs({ type: "topic", name: "a1" }, { "retention.ms": null, "cleanup.policy": "compact" });
    const after = await admin.describeConfigs({ type: "topic", name: "a1" });
    assert.equal(after.find((c) => c.name === "retention.ms")!.value, "604800000");
    assert.equal(after.find((c) => c.name === "cleanup.policy")!.value, "compact");
    await assert.rejects(
      admin.alterConfigs({ type: "topic", name: "a1" }, { "cleanup.policy": "shred" }),
      /INVALID_CONFIG/,
    );
  });

  test("lists offsets and deletes records", async () => {
    const producer = new Producer({ bootstrapServers: broker.bootstrap, lingerMs: 0 });
    for (let i = 0; i < 10; i++) await producer.send({ topic: "a1", partition: 0, value: `v${i}` });
    await producer.close();
    assert.equal((await admin.listOffsets("a1", "latest"))[0]!.offset, 10n);
    await admin.deleteRecords("a1", { 0: 4n });
    assert.equal((await admin.listOffsets("a1", "earliest"))[0]!.offset, 4n);
  });
});
