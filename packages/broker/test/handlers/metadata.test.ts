// Metadata (auto-creation, allowAutoTopicCreation, topic ids, v0's "all topics"), DescribeCluster,
// DescribeLogDirs and the SASL answers of a broker without SASL.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ErrorCode, uuidToString, ZERO_UUID } from "@sluice/protocol";
import type { RunningBroker } from "../../src/index.ts";
import { DescribeCluster, DescribeLogDirs, Metadata, SaslAuthenticate, SaslHandshake } from "../apis.ts";
import { batch, createTopic, produce, testBroker, WireClient } from "../helpers.ts";

describe("Metadata", () => {
  let broker: RunningBroker;
  let c: WireClient;
  before(async () => {
    broker = await testBroker({ "num.partitions": "3", "node.id": "7" });
    c = await WireClient.connect(broker.port);
    await createTopic(c, "known", 2);
  });
  after(async () => {
    c.close();
    await broker.stop();
  });

  test("describes this broker as the leader, only replica and controller of every partition", async () => {
    const res = await c.call(Metadata, 12, { topics: [{ name: "known" }], allowAutoTopicCreation: false });
    assert.deepEqual(res.brokers, [{ nodeId: 7, host: "127.0.0.1", port: broker.port, rack: null }]);
    assert.equal(res.controllerId, 7);
    assert.ok(res.clusterId && res.clusterId.length > 0);
    const t = res.topics[0]!;
    assert.equal(t.errorCode, ErrorCode.NONE);
    assert.notDeepEqual(t.topicId, ZERO_UUID, "topics have ids");
    assert.deepEqual(
      t.partitions.map((p) => [p.partitionIndex, p.leaderId, p.leaderEpoch, p.replicaNodes, p.isrNodes]),
      [
        [0, 7, 0, [7], [7]],
        [1, 7, 0, [7], [7]],
      ],
    );
  });

  test("a missing topic is created on request with num.partitions when auto-creation is on", async () => {
    const res = await c.call(Metadata, 9, { topics: [{ name: "auto" }], allowAutoTopicCreation: true });
    assert.equal(res.topics[0]!.errorCode, ErrorCode.NONE);
    assert.equal(res.topics[0]!.partitions.length, 3);
    assert.ok(broker.broker.context!.topics.get("auto"));
  });

  test("allowAutoTopicCreation=false (v4+) leaves a missing topic UNKNOWN_TOPIC_OR_PARTITION", async () => {
    const res = await c.call(Metadata, 4, { topics: [{ name: "not-created" }], allowAutoTopicCreation: false });
    assert.equal(res.topics[0]!.errorCode, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
    assert.equal(broker.broker.context!.topics.get("not-created"), undefined);
  });

  test("an invalid topic name is INVALID_TOPIC_EXCEPTION, never created", async () => {
    const res = await c.call(Metadata, 9, { topics: [{ name: "bad/name" }], allowAutoTopicCreation: true });
    assert.equal(res.topics[0]!.errorCode, ErrorCode.INVALID_TOPIC_EXCEPTION);
  });

  test("null topics (v1+) and an empty list (v0) mean all topics; an empty list (v1+) none", async () => {
    const all = await c.call(Metadata, 1, { topics: null });
    assert.ok(all.topics.some((t) => t.name === "known"));
    const v0 = await c.call(Metadata, 0, { topics: [] });
    assert.ok(v0.topics.some((t) => t.name === "known"));
    const none = await c.call(Metadata, 1, { topics: [] });
    assert.equal(none.topics.length, 0);
  });

  test("topics can be looked up by id (v12)", async () => {
    const id = (await c.call(Metadata, 12, { topics: [{ name: "known" }] })).topics[0]!.topicId;
    const byId = await c.call(Metadata, 12, { topics: [{ topicId: id, name: null }] });
    assert.equal(byId.topics[0]!.name, "known");
    const unknown = await c.call(Metadata, 12, { topics: [{ topicId: new Uint8Array(16).fill(3), name: null }] });
    assert.equal(unknown.topics[0]!.errorCode, ErrorCode.UNKNOWN_TOPIC_ID);
    assert.equal(uuidToString(id), broker.broker.context!.topics.get("known")!.record.id);
  });

  test("every version from 0 to 12 describes the topic", async () => {
    for (let v = 0; v <= 12; v++) {
      const res = await c.call(Metadata, v, { topics: [{ name: "known" }], allowAutoTopicCreation: false });
      assert.equal(res.topics[0]!.partitions.length, 2, `v${v}`);
    }
  });

  test("auto-creation off: Metadata v0-v3 (which always ask for it) do not create topics", async () => {
    const off = await testBroker({ "auto.create.topics.enable": "false" });
    const c2 = await WireClient.connect(off.port);
    const res = await c2.call(Metadata, 1, { topics: [{ name: "never" }] });
    assert.equal(res.topics[0]!.errorCode, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
    c2.close();
    await off.stop();
  });

  test("advertised.listeners is what clients are told to connect to", async () => {
    const adv = await testBroker({ "advertised.listeners": "PLAINTEXT://kafka.example:19092" });
    const c2 = await WireClient.connect(adv.port);
    const res = await c2.call(Metadata, 9, { topics: null });
    assert.deepEqual([res.brokers[0]!.host, res.brokers[0]!.port], ["kafka.example", 19092]);
    c2.close();
    await adv.stop();
  });
});

describe("DescribeCluster, DescribeLogDirs, SASL", () => {
  let broker: RunningBroker;
  let c: WireClient;
  before(async () => {
    broker = await testBroker();
    c = await WireClient.connect(broker.port);
    await createTopic(c, "sized", 2);
    await produce(c, "sized", 1, batch(["some bytes"]));
  });
  after(async () => {
    c.close();
    await broker.stop();
  });

  test("DescribeCluster lists this broker as the controller with the cluster id", async () => {
    const res = await c.call(DescribeCluster, 1, { endpointType: 1 });
    assert.equal(res.errorCode, ErrorCode.NONE);
    assert.equal(res.controllerId, 1);
    assert.deepEqual(
      res.brokers.map((b) => [b.brokerId, b.port]),
      [[1, broker.port]],
    );
    assert.equal(res.clusterId, broker.broker.context!.topics.clusterId);
    const controllers = await c.call(DescribeCluster, 1, { endpointType: 2 });
    assert.equal(controllers.errorCode, ErrorCode.UNSUPPORTED_ENDPOINT_TYPE);
  });

  test("DescribeLogDirs gives the data dir, each partition's size and the disk's space", async () => {
    const res = await c.call(DescribeLogDirs, 4, { topics: null });
    const dir = res.results[0]!;
    assert.equal(dir.logDir, broker.logDir);
    const sized = dir.topics.find((t) => t.name === "sized")!;
    const sizes = new Map(sized.partitions.map((p) => [p.partitionIndex, p.partitionSize]));
    assert.equal(sizes.get(0), 0n);
    assert.ok(sizes.get(1)! > 0n);
    assert.ok(dir.totalBytes > 0n && dir.usableBytes > 0n);
    const some = await c.call(DescribeLogDirs, 0, { topics: [{ topic: "sized", partitions: [1] }] });
    assert.deepEqual(
      some.results[0]!.topics.map((t) => [t.name, t.partitions.map((p) => p.partitionIndex)]),
      [["sized", [1]]],
    );
  });

  test("SaslHandshake says no mechanism is enabled; SaslAuthenticate is ILLEGAL_SASL_STATE", async () => {
    const h = await c.call(SaslHandshake, 1, { mechanism: "PLAIN" });
    assert.equal(h.errorCode, ErrorCode.UNSUPPORTED_SASL_MECHANISM);
    assert.deepEqual(h.mechanisms, []);
    const a = await c.call(SaslAuthenticate, 2, { authBytes: Buffer.from("\0user\0pass") });
    assert.equal(a.errorCode, ErrorCode.ILLEGAL_SASL_STATE);
    assert.match(a.errorMessage ?? "", /SASL/);
  });
});
