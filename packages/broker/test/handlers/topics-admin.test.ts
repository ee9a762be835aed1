// CreateTopics, DeleteTopics and CreatePartitions: what they create and remove, and each error.

import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { ErrorCode, type Input, ZERO_UUID } from "@sluice/protocol";
import type { CreatableTopic } from "@sluice/protocol/generated/create-topics.ts";
import type { RunningBroker } from "../../src/index.ts";
import { CreatePartitions, CreateTopics, DeleteTopics, Metadata } from "../apis.ts";
import { batch, createTopic, fetchOne, produce, testBroker, WireClient } from "../helpers.ts";

describe("CreateTopics", () => {
  let broker: RunningBroker;
  let c: WireClient;
  before(async () => {
    broker = await testBroker({ "num.partitions": "2" });
    c = await WireClient.connect(broker.port);
  });
  after(async () => {
    c.close();
    await broker.stop();
  });

  async function create(topic: Input<CreatableTopic>, version = 7, validateOnly = false) {
    const res = await c.call(CreateTopics, version, { topics: [topic], timeoutMs: 1000, validateOnly });
    return res.topics[0]!;
  }

  test("creates the partitions with their logs and describes the result (v5+: configs, v7: id)", async () => {
    const r = await create({ name: "made", numPartitions: 3, replicationFactor: 1 });
    assert.equal(r.errorCode, ErrorCode.NONE);
    assert.deepEqual([r.numPartitions, r.replicationFactor], [3, 1]);
    assert.notDeepEqual(r.topicId, ZERO_UUID);
    assert.ok(r.configs?.some((x) => x.name === "retention.ms" && x.value === "604800000"));
    for (let p = 0; p < 3; p++) assert.ok(existsSync(join(broker.logDir, `made-${p}`)));
  });

  test("-1 partitions and replication factor take the broker defaults (v4+)", async () => {
    const r = await create({ name: "defaults", numPartitions: -1, replicationFactor: -1 }, 4);
    assert.equal(r.errorCode, ErrorCode.NONE);
    assert.equal(broker.broker.context!.topics.get("defaults")!.partitions.length, 2);
  });

  test("an existing topic is TOPIC_ALREADY_EXISTS", async () => {
    await create({ name: "twice", numPartitions: 1, replicationFactor: 1 });
    assert.equal(
      (await create({ name: "twice", numPartitions: 1, replicationFactor: 1 })).errorCode,
      ErrorCode.TOPIC_ALREADY_EXISTS,
    );
  });

  test("replication factor above 1 on one node is INVALID_REPLICATION_FACTOR", async () => {
    const r = await create({ name: "rf3", numPartitions: 1, replicationFactor: 3 });
    assert.equal(r.errorCode, ErrorCode.INVALID_REPLICATION_FACTOR);
    assert.match(r.errorMessage ?? "", /replication factor 3/);
  });

  test("zero partitions is INVALID_PARTITIONS; a bad name INVALID_TOPIC_EXCEPTION", async () => {
    assert.equal(
      (await create({ name: "zero", numPartitions: 0, replicationFactor: 1 })).errorCode,
      ErrorCode.INVALID_PARTITIONS,
    );
    for (const name of ["", "..", "has space", "x".repeat(250)]) {
      assert.equal(
        (await create({ name, numPartitions: 1, replicationFactor: 1 })).errorCode,
        ErrorCode.INVALID_TOPIC_EXCEPTION,
        JSON.stringify(name),
      );
    }
  });

  test("unknown configs and invalid values are INVALID_CONFIG naming the key", async () => {
    const unknown = await create({
      name: "cfg1",
      numPartitions: 1,
      replicationFactor: 1,
      configs: [{ name: "no.such.config", value: "1" }],
    });
    assert.equal(unknown.errorCode, ErrorCode.INVALID_CONFIG);
    assert.match(unknown.errorMessage ?? "", /no\.such\.config/);
    const bad = await create({
      name: "cfg2",
      numPartitions: 1,
      replicationFactor: 1,
      configs: [{ name: "cleanup.policy", value: "shred" }],
    });
    assert.equal(bad.errorCode, ErrorCode.INVALID_CONFIG);
    assert.match(bad.errorMessage ?? "", /cleanup\.policy/);
    assert.equal(broker.broker.context!.topics.get("cfg2"), undefined);
  });

  test("validateOnly checks without creating", async () => {
    const r = await create({ name: "dry", numPartitions: 4, replicationFactor: 1 }, 7, true);
    assert.equal(r.errorCode, ErrorCode.NONE);
    assert.equal(r.numPartitions, 4);
    assert.equal(broker.broker.context!.topics.get("dry"), undefined);
    const bad = await create({ name: "dry", numPartitions: 1, replicationFactor: 2 }, 7, true);
    assert.equal(bad.errorCode, ErrorCode.INVALID_REPLICATION_FACTOR);
  });

  test("a manual assignment naming another broker is INVALID_REPLICA_ASSIGNMENT", async () => {
    const r = await create({
      name: "assigned",
      numPartitions: -1,
      replicationFactor: -1,
      assignments: [{ partitionIndex: 0, brokerIds: [42] }],
    });
    assert.equal(r.errorCode, ErrorCode.INVALID_REPLICA_ASSIGNMENT);
    const ok = await create({
      name: "assigned",
      numPartitions: -1,
      replicationFactor: -1,
      assignments: [
        { partitionIndex: 0, brokerIds: [1] },
        { partitionIndex: 1, brokerIds: [1] },
      ],
    });
    assert.equal(ok.errorCode, ErrorCode.NONE);
    assert.equal(broker.broker.context!.topics.get("assigned")!.partitions.length, 2);
  });

  test("concurrent creations of one name make one topic; the later request gets TOPIC_ALREADY_EXISTS", async () => {
    const other = await WireClient.connect(broker.port);
    const [a, b] = await Promise.all([
      c.call(CreateTopics, 4, { topics: [{ name: "race", numPartitions: 2, replicationFactor: 1 }] }),
      other.call(CreateTopics, 4, { topics: [{ name: "race", numPartitions: 2, replicationFactor: 1 }] }),
    ]);
    assert.deepEqual([a.topics[0]!.errorCode, b.topics[0]!.errorCode].sort(), [
      ErrorCode.NONE,
      ErrorCode.TOPIC_ALREADY_EXISTS,
    ]);
    const [m1, m2] = await Promise.all([
      c.call(Metadata, 9, { topics: [{ name: "auto-race" }], allowAutoTopicCreation: true }),
      other.call(Metadata, 9, { topics: [{ name: "auto-race" }], allowAutoTopicCreation: true }),
    ]);
    assert.deepEqual(m1.topics[0]!.topicId, m2.topics[0]!.topicId, "one topic, one id");
    const saved = JSON.parse(readFileSync(join(broker.logDir, "sluice-metadata.json"), "utf8")) as {
      topics: { name: string }[];
    };
    assert.deepEqual(
      saved.topics.map((t) => t.name).filter((n) => n.includes("race")),
      ["race", "auto-race"],
      "each topic recorded once",
    );
    other.close();
  });

  test("every version from 0 to 7 creates a topic", async () => {
    for (let v = 0; v <= 7; v++) {
      const r = await create({ name: `ver-${v}`, numPartitions: 1, replicationFactor: 1 }, v);
      assert.equal(r.errorCode, ErrorCode.NONE, `v${v}`);
    }
  });

  test("topics survive a restart with their ids, partitions and configs", async () => {
    const dirBroker = await testBroker({}, { logDir: `${broker.logDir}-restart` });
    const c2 = await WireClient.connect(dirBroker.port);
    await createTopic(c2, "durable", 2, { "retention.ms": "1000" });
    await produce(c2, "durable", 1, batch(["kept"]));
    const id = dirBroker.broker.context!.topics.get("durable")!.record.id;
    c2.close();
    await dirBroker.stop();
    const again = await testBroker({}, { logDir: dirBroker.logDir });
    try {
      const t = again.broker.context!.topics.get("durable")!;
      assert.equal(t.record.id, id);
      assert.equal(t.partitions.length, 2);
      assert.deepEqual(t.record.configs, { "retention.ms": "1000" });
      assert.equal(t.partitions[1]!.log.logEndOffset, 1n);
    } finally {
      await again.stop();
      const { rmSync } = await import("node:fs");
      rmSync(dirBroker.logDir, { recursive: true, force: true });
    }
  });
});

describe("DeleteTopics and CreatePartitions", () => {
  let broker: RunningBroker;
  let c: WireClient;
  before(async () => {
    broker = await testBroker({ "auto.create.topics.enable": "false" });
    c = await WireClient.connect(broker.port);
  });
  after(async () => {
    c.close();
    await broker.stop();
  });

  test("DeleteTopics by name removes the topic and its data; a new topic of that name starts empty", async () => {
    await createTopic(c, "doomed", 2);
    await produce(c, "doomed", 0, batch(["x", "y"]));
    const res = await c.call(DeleteTopics, 4, { topicNames: ["doomed", "ghost"], timeoutMs: 1000 });
    assert.deepEqual(
      res.responses.map((r) => [r.name, r.errorCode]),
      [
        ["doomed", ErrorCode.NONE],
        ["ghost", ErrorCode.UNKNOWN_TOPIC_OR_PARTITION],
      ],
    );
    assert.ok(!existsSync(join(broker.logDir, "doomed-0")));
    const md = await c.call(Metadata, 9, { topics: [{ name: "doomed" }], allowAutoTopicCreation: false });
    assert.equal(md.topics[0]!.errorCode, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
    await createTopic(c, "doomed", 1);
    const p = (await fetchOne(c, "doomed", 0, 0n)).responses[0]!.partitions[0]!;
    assert.equal(p.highWatermark, 0n);
  });

  test("a topic deleted and re-created at once gets fresh, working logs", async () => {
    const topics = broker.broker.context!.topics;
    await createTopic(c, "phoenix", 1);
    await produce(c, "phoenix", 0, batch(["old"]));
    const [, reborn] = await Promise.all([topics.delete("phoenix"), topics.create("phoenix", 1, {})]);
    assert.equal(reborn.partitions[0]!.log.logEndOffset, 0n);
    assert.equal((await produce(c, "phoenix", 0, batch(["new"]))).errorCode, ErrorCode.NONE);
    const p = (await fetchOne(c, "phoenix", 0, 0n)).responses[0]!.partitions[0]!;
    assert.equal(p.highWatermark, 1n);
  });

  test("DeleteTopics by id (v6+); an unknown id is UNKNOWN_TOPIC_ID", async () => {
    await createTopic(c, "by-id");
    const id = (await c.call(Metadata, 12, { topics: [{ name: "by-id" }] })).topics[0]!.topicId;
    const res = await c.call(DeleteTopics, 6, {
      topics: [
        { name: null, topicId: id },
        { name: null, topicId: new Uint8Array(16).fill(9) },
      ],
      timeoutMs: 1000,
    });
    assert.deepEqual(
      res.responses.map((r) => [r.name, r.errorCode]),
      [
        ["by-id", ErrorCode.NONE],
        [null, ErrorCode.UNKNOWN_TOPIC_ID],
      ],
    );
    assert.equal(broker.broker.context!.topics.get("by-id"), undefined);
  });

  test("internal topics cannot be deleted", async () => {
    await broker.broker.context!.topics.create("__keep", 1, {}, true);
    const res = await c.call(DeleteTopics, 1, { topicNames: ["__keep"], timeoutMs: 1000 });
    assert.equal(res.responses[0]!.errorCode, ErrorCode.INVALID_TOPIC_EXCEPTION);
  });

  test("CreatePartitions really adds partitions that take writes and reads", async () => {
    await createTopic(c, "grow", 1);
    const res = await c.call(CreatePartitions, 1, {
      topics: [{ name: "grow", count: 4, assignments: null }],
      timeoutMs: 1000,
    });
    assert.equal(res.results[0]!.errorCode, ErrorCode.NONE);
    const md = await c.call(Metadata, 9, { topics: [{ name: "grow" }] });
    assert.equal(md.topics[0]!.partitions.length, 4);
    assert.equal((await produce(c, "grow", 3, batch(["new"]))).errorCode, ErrorCode.NONE);
    assert.equal((await fetchOne(c, "grow", 3, 0n)).responses[0]!.partitions[0]!.highWatermark, 1n);
  });

  test("CreatePartitions: not more partitions is INVALID_PARTITIONS; unknown topic; validateOnly", async () => {
    const res = await c.call(CreatePartitions, 3, {
      topics: [
        { name: "grow", count: 2, assignments: null },
        { name: "missing", count: 2, assignments: null },
      ],
      timeoutMs: 1000,
    });
    assert.deepEqual(
      res.results.map((r) => r.errorCode),
      [ErrorCode.INVALID_PARTITIONS, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION],
    );
    const dry = await c.call(CreatePartitions, 0, {
      topics: [{ name: "grow", count: 9, assignments: null }],
      timeoutMs: 1000,
      validateOnly: true,
    });
    assert.equal(dry.results[0]!.errorCode, ErrorCode.NONE);
    assert.equal(broker.broker.context!.topics.get("grow")!.partitions.length, 4);
  });
});
