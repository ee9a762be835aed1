// Fault injection on the embedded broker (src/faults.ts): injected error codes come back as valid
// responses of every served version and reach our client; delays delay; dropped connections drop.

import assert from "node:assert/strict";
import { after, afterEach, before, describe, test } from "node:test";
import { Admin, Consumer, KafkaProtocolError, Producer } from "@sluice/client";
import {
  ApiKey,
  decodeAddOffsetsToTxnResponse,
  decodeEndTxnResponse,
  decodeFindCoordinatorResponse,
  decodeHeartbeatResponse,
  decodeInitProducerIdResponse,
  decodeJoinGroupResponse,
  decodeLeaveGroupResponse,
  decodeOffsetCommitResponse,
  decodeOffsetFetchResponse,
  decodeSyncGroupResponse,
  ErrorCode,
  encodeAddOffsetsToTxnRequest,
  encodeEndTxnRequest,
  encodeFindCoordinatorRequest,
  encodeHeartbeatRequest,
  encodeInitProducerIdRequest,
  encodeJoinGroupRequest,
  encodeLeaveGroupRequest,
  encodeOffsetCommitRequest,
  encodeOffsetFetchRequest,
  encodeSyncGroupRequest,
  uuidFromString,
} from "@sluice/protocol";
import { ERROR_RESPONSE_APIS, type RunningBroker } from "../src/index.ts";
import { type Api, ApiVersions, api, Fetch, ListOffsets, Metadata, Produce } from "./apis.ts";
import { batch, createTopic, produce, testBroker, WireClient } from "./helpers.ts";

const INJECTED = ErrorCode.NOT_COORDINATOR;
const TOPIC = "faults-t";

// biome-ignore lint/suspicious/noExplicitAny: responses of many APIs are walked field by field.
type Any = any;

interface Case {
  readonly api: Api<Any, Any>;
  request(v: number, topicId: Uint8Array): Any;
  /** The error fields the response has at version v (each must carry the injected code). */
  errors(res: Any, v: number): number[];
}

const one = (xs: readonly Any[] | null | undefined): Any => {
  assert.ok(xs && xs.length === 1, `expected one entry, got ${xs?.length}`);
  return xs[0]!;
};

const CASES: ReadonlyMap<number, Case> = new Map<number, Case>([
  [
    ApiKey.Produce,
    {
      api: Produce,
      request: () => ({
        acks: -1,
        timeoutMs: 1000,
        topicData: [{ name: TOPIC, partitionData: [{ index: 0, records: batch(["x"]) }] }],
      }),
      errors: (res) => [one(one(res.responses).partitionResponses).errorCode],
    },
  ],
  [
    ApiKey.Fetch,
    {
      api: Fetch,
      request: (_v, topicId) => ({
        replicaId: -1,
        maxWaitMs: 0,
        minBytes: 1,
        maxBytes: 1 << 20,
        sessionEpoch: -1,
        topics: [
          { topic: TOPIC, topicId, partitions: [{ partition: 0, fetchOffset: 0n, partitionMaxBytes: 1 << 20 }] },
        ],
      }),
      errors: (res, v) => [...(v >= 7 ? [res.errorCode] : []), one(one(res.responses).partitions).errorCode],
    },
  ],
  [
    ApiKey.ListOffsets,
    {
      api: ListOffsets,
      request: () => ({
        replicaId: -1,
        topics: [{ name: TOPIC, partitions: [{ partitionIndex: 0, timestamp: -1n, maxNumOffsets: 1 }] }],
      }),
      errors: (res) => [one(one(res.topics).partitions).errorCode],
    },
  ],
  [
    ApiKey.Metadata,
    {
      api: Metadata,
      request: (v, topicId) => ({ topics: [{ name: TOPIC, topicId: v >= 10 ? topicId : undefined }] }),
      errors: (res) => {
        const t = one(res.topics);
        return [t.errorCode, one(t.partitions).errorCode];
      },
    },
  ],
  [
    ApiKey.OffsetCommit,
    {
      api: api(ApiKey.OffsetCommit, encodeOffsetCommitRequest, decodeOffsetCommitResponse),
      request: () => ({
        groupId: "g",
        generationIdOrMemberEpoch: -1,
        topics: [{ name: TOPIC, partitions: [{ partitionIndex: 0, committedOffset: 1n }] }],
      }),
      errors: (res) => [one(one(res.topics).partitions).errorCode],
    },
  ],
  [
    ApiKey.OffsetFetch,
    {
      api: api(ApiKey.OffsetFetch, encodeOffsetFetchRequest, decodeOffsetFetchResponse),
      request: (v) =>
        v >= 8
          ? { groups: [{ groupId: "g", topics: [{ name: TOPIC, partitionIndexes: [0] }] }] }
          : { groupId: "g", topics: [{ name: TOPIC, partitionIndexes: [0] }] },
      errors: (res, v) => {
        if (v >= 8) {
          const g = one(res.groups);
          return [g.errorCode, one(one(g.topics).partitions).errorCode];
        }
        return [...(v >= 2 ? [res.errorCode] : []), one(one(res.topics).partitions).errorCode];
      },
    },
  ],
  [
    ApiKey.FindCoordinator,
    {
      api: api(ApiKey.FindCoordinator, encodeFindCoordinatorRequest, decodeFindCoordinatorResponse),
      request: (v) => (v >= 4 ? { keyType: 0, coordinatorKeys: ["g"] } : { key: "g" }),
      errors: (res, v) => (v >= 4 ? [one(res.coordinators).errorCode] : [res.errorCode]),
    },
  ],
  [
    ApiKey.JoinGroup,
    {
      api: api(ApiKey.JoinGroup, encodeJoinGroupRequest, decodeJoinGroupResponse),
      request: () => ({
        groupId: "g",
        sessionTimeoutMs: 10000,
        rebalanceTimeoutMs: 10000,
        memberId: "m",
        protocolType: "consumer",
        protocols: [{ name: "range", metadata: new Uint8Array(0) }],
      }),
      errors: (res) => [res.errorCode],
    },
  ],
  [
    ApiKey.Heartbeat,
    {
      api: api(ApiKey.Heartbeat, encodeHeartbeatRequest, decodeHeartbeatResponse),
      request: () => ({ groupId: "g", generationId: 1, memberId: "m" }),
      errors: (res) => [res.errorCode],
    },
  ],
  [
    ApiKey.LeaveGroup,
    {
      api: api(ApiKey.LeaveGroup, encodeLeaveGroupRequest, decodeLeaveGroupResponse),
      request: (v) => (v >= 3 ? { groupId: "g", members: [{ memberId: "m" }] } : { groupId: "g", memberId: "m" }),
      errors: (res) => [res.errorCode],
    },
  ],
  [
    ApiKey.SyncGroup,
    {
      api: api(ApiKey.SyncGroup, encodeSyncGroupRequest, decodeSyncGroupResponse),
      request: () => ({
        groupId: "g",
        generationId: 1,
        memberId: "m",
        protocolType: "consumer",
        protocolName: "range",
      }),
      errors: (res) => [res.errorCode],
    },
  ],
  [
    ApiKey.InitProducerId,
    {
      api: api(ApiKey.InitProducerId, encodeInitProducerIdRequest, decodeInitProducerIdResponse),
      request: () => ({ transactionalId: null, transactionTimeoutMs: 1000, producerId: -1n, producerEpoch: -1 }),
      errors: (res) => {
        assert.equal(res.producerId, -1n);
        return [res.errorCode];
      },
    },
  ],
  [
    ApiKey.EndTxn,
    {
      api: api(ApiKey.EndTxn, encodeEndTxnRequest, decodeEndTxnResponse),
      request: () => ({ transactionalId: "tx", producerId: 1n, producerEpoch: 0, committed: true }),
      errors: (res) => [res.errorCode],
    },
  ],
  [
    ApiKey.AddOffsetsToTxn,
    {
      api: api(ApiKey.AddOffsetsToTxn, encodeAddOffsetsToTxnRequest, decodeAddOffsetsToTxnResponse),
      request: () => ({ transactionalId: "tx", producerId: 1n, producerEpoch: 0, groupId: "g" }),
      errors: (res) => [res.errorCode],
    },
  ],
]);

describe("fault injection", () => {
  let broker: RunningBroker;
  let topicId: Uint8Array;
  let served: Map<number, { minVersion: number; maxVersion: number }>;
  const clients: { close(): Promise<void> }[] = [];

  before(async () => {
    broker = await testBroker();
    const c = await WireClient.connect(broker.port);
    for (const t of [TOPIC, "faults-clean", "faults-a", "faults-b"]) await createTopic(c, t, 1);
    const versions = await c.call(ApiVersions, 3, { clientSoftwareName: "t", clientSoftwareVersion: "1" });
    served = new Map(versions.apiKeys.map((k) => [k.apiKey, k]));
    topicId = uuidFromString(broker.broker.context!.topics.get(TOPIC)!.record.id);
    c.close();
  });
  // A failed test must not leave its faults to the next one.
  afterEach(() => broker.faults.clear());
  after(async () => {
    for (const c of clients) await c.close().catch(() => {});
    await broker.stop();
  });

  test("every API with error injection has a case here, and is served by the broker", () => {
    assert.deepEqual(
      [...CASES.keys()].sort((a, b) => a - b),
      ERROR_RESPONSE_APIS,
    );
    for (const key of ERROR_RESPONSE_APIS) assert.ok(served.has(key), `API ${key} served`);
  });

  test("an injected error code is a valid response of every served version, in every error field", async () => {
    const c = await WireClient.connect(broker.port);
    try {
      for (const [key, k] of CASES) {
        const range = served.get(key)!;
        for (let v = range.minVersion; v <= range.maxVersion; v++) {
          const fault = broker.faults.next(key, { errorCode: INJECTED });
          // call() fails if the body does not decode at v or leaves bytes over.
          const res = await c.call(k.api, v, k.request(v, topicId)).catch((e: Error) => {
            throw new Error(`API ${key} v${v}: ${e.message}`);
          });
          const codes = k.errors(res, v);
          assert.ok(codes.length > 0);
          assert.deepEqual(
            codes,
            codes.map(() => INJECTED),
            `API ${key} v${v}: ${JSON.stringify(codes)}`,
          );
          assert.equal(fault.hits, 1);
          assert.equal(fault.remaining, 0);
        }
      }
      assert.equal(broker.faults.pending, 0);
    } finally {
      c.close();
    }
  });

  test("an injected produce error appends nothing; the next request is handled normally", async () => {
    const c = await WireClient.connect(broker.port);
    try {
      broker.faults.next(ApiKey.Produce, { errorCode: ErrorCode.NOT_LEADER_OR_FOLLOWER });
      const failed = await produce(c, "faults-clean", 0, batch(["a"]));
      assert.equal(failed.errorCode, ErrorCode.NOT_LEADER_OR_FOLLOWER);
      const ok = await produce(c, "faults-clean", 0, batch(["b"]));
      assert.equal(ok.errorCode, ErrorCode.NONE);
      assert.equal(ok.baseOffset, 0n, "the failed produce appended nothing");
    } finally {
      c.close();
    }
  });

  test("an error injected on OffsetFetch reaches the admin client", async () => {
    const admin = new Admin({ bootstrapServers: broker.bootstrap });
    clients.push(admin);
    broker.faults.next(ApiKey.OffsetFetch, { errorCode: ErrorCode.GROUP_AUTHORIZATION_FAILED });
    await assert.rejects(admin.listConsumerGroupOffsets("some-group"), (e: unknown) => {
      assert.ok(e instanceof KafkaProtocolError);
      assert.equal(e.errorCode, ErrorCode.GROUP_AUTHORIZATION_FAILED);
      return true;
    });
    assert.deepEqual(await admin.listConsumerGroupOffsets("some-group"), [], "the next call is not hit");
  });

  test("retriable produce errors are retried by the producer: the fault is hit twice, the record lands once", async () => {
    const producer = new Producer({ bootstrapServers: broker.bootstrap, retryBackoffMs: 10 });
    clients.push(producer);
    await producer.send({ topic: "faults-retry", partition: 0, value: "warm-up" });
    const fault = broker.faults.next(ApiKey.Produce, { errorCode: ErrorCode.NOT_LEADER_OR_FOLLOWER, count: 2 });
    const meta = await producer.send({ topic: "faults-retry", partition: 0, value: "v" });
    assert.equal(fault.hits, 2);
    await fault.done;
    assert.equal(meta.offset, 1n);
  });

  test("a non-retriable produce error fails the send with that error", async () => {
    const producer = new Producer({ bootstrapServers: broker.bootstrap, enableIdempotence: false });
    clients.push(producer);
    await producer.send({ topic: "faults-fatal", partition: 0, value: "warm-up" });
    broker.faults.next(ApiKey.Produce, { errorCode: ErrorCode.INVALID_TOPIC_EXCEPTION });
    await assert.rejects(producer.send({ topic: "faults-fatal", partition: 0, value: "v" }), (e: unknown) => {
      assert.ok(e instanceof KafkaProtocolError);
      assert.equal(e.errorCode, ErrorCode.INVALID_TOPIC_EXCEPTION);
      return true;
    });
  });

  test("a delay holds the request (and, in order, the ones behind it on the connection)", async () => {
    const c = await WireClient.connect(broker.port);
    try {
      const req = { clientSoftwareName: "t", clientSoftwareVersion: "1" };
      const fault = broker.faults.next(ApiKey.ApiVersions, { delayMs: 300 });
      const t0 = performance.now();
      const delayed = c.call(ApiVersions, 3, req).then(() => performance.now() - t0);
      const behind = c.call(ApiVersions, 3, req).then(() => performance.now() - t0);
      const [first, second] = await Promise.all([delayed, behind]);
      assert.ok(first >= 290, `delayed response after ${first} ms`);
      assert.ok(second >= first, "the response behind it is not sent before it");
      assert.equal(fault.hits, 1);
      const t1 = performance.now();
      await c.call(ApiVersions, 3, req);
      const undelayedMs = performance.now() - t1;
      console.log(
        `# injected delay 300 ms: answered after ${first.toFixed(0)} ms; next request ${undelayedMs.toFixed(1)} ms`,
      );
    } finally {
      c.close();
    }
  });

  test("a delayed Fetch makes the consumer's poll wait", async () => {
    const producer = new Producer({ bootstrapServers: broker.bootstrap });
    clients.push(producer);
    await producer.send({ topic: "faults-slow", partition: 0, value: "v" });
    const consumer = new Consumer({ bootstrapServers: broker.bootstrap });
    clients.push(consumer);
    consumer.assign([{ topic: "faults-slow", partition: 0, offset: 0n }]);
    broker.faults.next(ApiKey.Fetch, { delayMs: 400 });
    const t0 = performance.now();
    const records = await consumer.poll(5000);
    const elapsed = performance.now() - t0;
    assert.equal(records.length, 1);
    assert.ok(elapsed >= 390, `poll returned after ${elapsed} ms`);
  });

  test("a dropped connection closes the client's socket without an answer", async () => {
    const c = await WireClient.connect(broker.port);
    broker.faults.next(ApiKey.Metadata, { dropConnection: true });
    await assert.rejects(c.call(Metadata, 9, { topics: [{ name: TOPIC }] }), /connection closed/);
    await c.closed;
    assert.ok(c.isClosed);
    const d = await WireClient.connect(broker.port);
    const res = await d.call(Metadata, 9, { topics: [{ name: TOPIC }] });
    assert.equal(one(res.topics).errorCode, ErrorCode.NONE, "a new connection is served");
    d.close();
  });

  test("a connection dropped after handling: the produce was appended, and the idempotent retry is not", async () => {
    const producer = new Producer({ bootstrapServers: broker.bootstrap, retryBackoffMs: 10 });
    clients.push(producer);
    await producer.send({ topic: "faults-lost-ack", partition: 0, value: "warm-up" });
    const fault = broker.faults.next(ApiKey.Produce, { dropConnection: "afterHandling" });
    const meta = await producer.send({ topic: "faults-lost-ack", partition: 0, value: "once" });
    assert.equal(fault.hits, 1);
    assert.equal(meta.offset, 1n);
    const c = await WireClient.connect(broker.port);
    const next = await produce(c, "faults-lost-ack", 0, batch(["after"]));
    c.close();
    assert.equal(next.baseOffset, 2n, "exactly one copy of the retried record is in the log");
  });

  test("count, match and cancel", async () => {
    const c = await WireClient.connect(broker.port);
    try {
      const onlyB = broker.faults.next(ApiKey.Produce, {
        errorCode: ErrorCode.NOT_LEADER_OR_FOLLOWER,
        count: 2,
        match: (req) => (req as { topicData: { name: string }[] }).topicData.some((t) => t.name === "faults-b"),
      });
      assert.equal((await produce(c, "faults-a", 0, batch(["a"]))).errorCode, ErrorCode.NONE);
      assert.equal((await produce(c, "faults-b", 0, batch(["b"]))).errorCode, ErrorCode.NOT_LEADER_OR_FOLLOWER);
      assert.equal((await produce(c, "faults-b", 0, batch(["b"]))).errorCode, ErrorCode.NOT_LEADER_OR_FOLLOWER);
      assert.equal((await produce(c, "faults-b", 0, batch(["b"]))).errorCode, ErrorCode.NONE);
      assert.equal(onlyB.hits, 2);
      const always = broker.faults.next(ApiKey.Produce, { errorCode: ErrorCode.REQUEST_TIMED_OUT, count: Infinity });
      for (let i = 0; i < 3; i++)
        assert.equal((await produce(c, "faults-a", 0, batch(["a"]))).errorCode, ErrorCode.REQUEST_TIMED_OUT);
      always.cancel();
      await always.done;
      assert.equal((await produce(c, "faults-a", 0, batch(["a"]))).errorCode, ErrorCode.NONE);
      assert.equal(broker.faults.pending, 0);
    } finally {
      c.close();
    }
  });

  test("bad fault specs are refused when added", () => {
    assert.throws(() => broker.faults.next(ApiKey.CreateTopics, { errorCode: 1 }), /not supported for API key 19/);
    assert.throws(() => broker.faults.next(ApiKey.Produce, {}), /needs errorCode, delayMs or dropConnection/);
    assert.throws(() => broker.faults.next(ApiKey.Produce, { delayMs: 1, count: 0 }), /positive integer/);
    assert.throws(() => broker.faults.next(ApiKey.Produce, { delayMs: -1 }), /non-negative/);
    assert.equal(broker.faults.pending, 0);
  });

  test("faults belong to one broker: a second broker side by side is not hit", async () => {
    const other = await testBroker();
    try {
      broker.faults.next(ApiKey.Metadata, { dropConnection: true });
      const c = await WireClient.connect(other.port);
      const res = await c.call(Metadata, 9, { topics: null });
      c.close();
      assert.deepEqual(res.topics, []);
      assert.equal(broker.faults.pending, 1);
      broker.faults.clear();
      assert.equal(broker.faults.pending, 0);
    } finally {
      await other.stop();
    }
  });
});
