// Fetch: long polls woken by new data (not by the timer), whole batches from mid-batch offsets,
// the size limits, error codes, and the sessionless answer to KIP-227 sessions.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ErrorCode } from "@sluice/protocol";
import { isLegacyMessageSet, readLegacyMessages } from "@sluice/protocol/records/legacy.ts";
import { decodeRecords } from "@sluice/protocol/records/record-batch.ts";
import type { RunningBroker } from "../../src/index.ts";
import { Fetch } from "../apis.ts";
import { batch, createTopic, fetchOne, produce, sleep, testBroker, WireClient } from "../helpers.ts";

function values(records: Uint8Array | null): string[] {
  if (records === null) return [];
  return decodeRecords(records).flatMap((b) => b.records.map((r) => Buffer.from(r.value!).toString()));
}

/** The values of a Fetch of `version`: v0-v3 answers carry message formats v0 (v0-v1) and v1 (v2-v3). */
function valuesOf(version: number, records: Uint8Array | null): string[] {
  if (version > 3 || records === null || records.length === 0) return values(records);
  assert.ok(isLegacyMessageSet(records), `Fetch v${version} answers with legacy messages`);
  const messages = readLegacyMessages(records);
  assert.ok(
    messages.every((m) => m.magic === (version <= 1 ? 0 : 1)),
    `Fetch v${version}: magic ${version <= 1 ? 0 : 1}`,
  );
  return messages.map((m) => Buffer.from(m.value!).toString());
}

describe("Fetch", () => {
  let broker: RunningBroker;
  let c: WireClient;
  before(async () => {
    broker = await testBroker();
    c = await WireClient.connect(broker.port);
    await createTopic(c, "f", 2);
    await produce(c, "f", 0, batch(["a", "b", "c"]));
    await produce(c, "f", 0, batch(["d", "e"]));
  });
  after(async () => {
    c.close();
    await broker.stop();
  });

  test("returns the batches from the fetch offset with the partition's offsets", async () => {
    const res = await fetchOne(c, "f", 0, 0n);
    const p = res.responses[0]!.partitions[0]!;
    assert.equal(p.errorCode, ErrorCode.NONE);
    assert.equal(p.highWatermark, 5n);
    assert.equal(p.lastStableOffset, 5n);
    assert.equal(p.logStartOffset, 0n);
    assert.deepEqual(values(p.records), ["a", "b", "c", "d", "e"]);
  });

  test("a read spanning appends in the tail cache is served as its chunks, in order, in every version", async () => {
    await createTopic(c, "fc", 1);
    for (let i = 0; i < 4; i++) await produce(c, "fc", 0, batch([`p${i}`, `q${i}`]));
    const log = broker.broker.context!.topics.get("fc")!.partitions[0]!.log;
    const direct = await log.readChunks(0n, 1 << 20);
    assert.equal(direct.chunks.length, 4, "four appends, four chunks: the handler gets a chunk list");
    const want = [0, 1, 2, 3].flatMap((i) => [`p${i}`, `q${i}`]);
    for (let v = 0; v <= 12; v++) {
      const res = await c.call(Fetch, v, {
        replicaId: -1,
        maxWaitMs: 0,
        minBytes: 1,
        maxBytes: 1 << 20,
        topics: [{ topic: "fc", partitions: [{ partition: 0, fetchOffset: 2n, partitionMaxBytes: 1 << 20 }] }],
      });
      const p = res.responses[0]!.partitions[0]!;
      assert.equal(p.errorCode, ErrorCode.NONE, `v${v}`);
      assert.deepEqual(valuesOf(v, p.records), want.slice(2), `v${v}`);
    }
  });

  test("a fetch from the middle of a batch returns that whole batch", async () => {
    const p = (await fetchOne(c, "f", 0, 1n)).responses[0]!.partitions[0]!;
    const batches = decodeRecords(p.records!);
    assert.equal(batches[0]!.header.baseOffset, 0n, "the batch holding offset 1 starts at 0");
    assert.deepEqual(values(p.records), ["a", "b", "c", "d", "e"]);
  });

  test("partitionMaxBytes stops after the first batch that does not fit, but never returns nothing", async () => {
    const p = (await fetchOne(c, "f", 0, 0n, { partitionMaxBytes: 1 })).responses[0]!.partitions[0]!;
    assert.deepEqual(values(p.records), ["a", "b", "c"], "one oversized batch, so the consumer makes progress");
  });

  test("maxBytes bounds the whole response across partitions", async () => {
    await produce(c, "f", 1, batch(["x"]));
    const res = await c.call(Fetch, 11, {
      replicaId: -1,
      maxWaitMs: 0,
      minBytes: 1,
      maxBytes: 10,
      isolationLevel: 0,
      topics: [
        {
          topic: "f",
          partitions: [
            { partition: 0, fetchOffset: 0n, partitionMaxBytes: 1 << 20 },
            { partition: 1, fetchOffset: 0n, partitionMaxBytes: 1 << 20 },
          ],
        },
      ],
    });
    const [p0, p1] = res.responses[0]!.partitions;
    assert.deepEqual(values(p0!.records), ["a", "b", "c"], "the first partition gets one batch past the limit");
    assert.deepEqual(values(p1!.records), [], "nothing is left for the second");
  });

  test("the fetch offset at the log end returns no records; beyond it OFFSET_OUT_OF_RANGE", async () => {
    const atEnd = (await fetchOne(c, "f", 0, 5n)).responses[0]!.partitions[0]!;
    assert.equal(atEnd.errorCode, ErrorCode.NONE);
    assert.equal(atEnd.records?.length ?? 0, 0);
    const beyond = (await fetchOne(c, "f", 0, 6n)).responses[0]!.partitions[0]!;
    assert.equal(beyond.errorCode, ErrorCode.OFFSET_OUT_OF_RANGE);
    assert.equal(beyond.highWatermark, 5n);
  });

  test("an unknown topic or partition is UNKNOWN_TOPIC_OR_PARTITION", async () => {
    assert.equal(
      (await fetchOne(c, "nope", 0, 0n)).responses[0]!.partitions[0]!.errorCode,
      ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
    );
    assert.equal(
      (await fetchOne(c, "f", 9, 0n)).responses[0]!.partitions[0]!.errorCode,
      ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
    );
  });

  test("a long poll is woken by an append at once, not at maxWaitMs", async () => {
    await createTopic(c, "lp");
    const other = await WireClient.connect(broker.port);
    const started = Date.now();
    const pending = fetchOne(c, "lp", 0, 0n, { maxWaitMs: 10_000 });
    await sleep(100);
    await produce(other, "lp", 0, batch(["woken"]));
    const p = (await pending).responses[0]!.partitions[0]!;
    const elapsed = Date.now() - started;
    assert.deepEqual(values(p.records), ["woken"]);
    assert.ok(elapsed < 2000, `answered ${elapsed} ms after the request (maxWaitMs 10 s)`);
    other.close();
  });

  test("a long poll with nothing to return answers after maxWaitMs", async () => {
    await createTopic(c, "idle");
    const started = Date.now();
    const p = (await fetchOne(c, "idle", 0, 0n, { maxWaitMs: 300 })).responses[0]!.partitions[0]!;
    const elapsed = Date.now() - started;
    assert.equal(p.errorCode, ErrorCode.NONE);
    assert.equal(p.records?.length ?? 0, 0);
    assert.ok(elapsed >= 290, `waited ${elapsed} ms`);
  });

  test("minBytes keeps the poll open until enough bytes have arrived", async () => {
    await createTopic(c, "mb");
    const other = await WireClient.connect(broker.port);
    const first = batch(["small"]);
    const pending = fetchOne(c, "mb", 0, 0n, { maxWaitMs: 10_000, minBytes: first.length + 1 });
    await produce(other, "mb", 0, first);
    await sleep(100);
    let settled = false;
    void pending.then(() => {
      settled = true;
    });
    await sleep(100);
    assert.equal(settled, false, "one batch is less than minBytes");
    await produce(other, "mb", 0, batch(["more"]));
    assert.deepEqual(values((await pending).responses[0]!.partitions[0]!.records), ["small", "more"]);
    other.close();
  });

  test("every version from 0 to 17 reads the same records (topic ids from v13)", async () => {
    const md = broker.broker.context!.topics.get("f")!;
    for (let v = 0; v <= 17; v++) {
      const res = await c.call(Fetch, v, {
        replicaId: -1,
        maxWaitMs: 0,
        minBytes: 1,
        maxBytes: 1 << 20,
        topics: [
          {
            topic: "f",
            topicId: Buffer.from(md.record.id, "base64url"),
            partitions: [{ partition: 0, fetchOffset: 0n, partitionMaxBytes: 1 << 20 }],
          },
        ],
      });
      const p = res.responses[0]!.partitions[0]!;
      assert.equal(p.errorCode, ErrorCode.NONE, `v${v}`);
      assert.deepEqual(valuesOf(v, p.records), ["a", "b", "c", "d", "e"], `v${v}`);
    }
  });

  test("message.downconversion.enable=false: Fetch v0-v3 of that topic is UNSUPPORTED_VERSION, v4+ reads it", async () => {
    await createTopic(c, "no-down", 1, { "message.downconversion.enable": "false" });
    await produce(c, "no-down", 0, batch(["x"]));
    for (const v of [0, 3, 4]) {
      const p = (await fetchOne(c, "no-down", 0, 0n, { version: v })).responses[0]!.partitions[0]!;
      assert.equal(p.errorCode, v <= 3 ? ErrorCode.UNSUPPORTED_VERSION : ErrorCode.NONE, `v${v}`);
      assert.deepEqual(valuesOf(v, p.records), v <= 3 ? [] : ["x"]);
    }
  });

  test("an unknown topic id is UNKNOWN_TOPIC_ID (v13+)", async () => {
    const res = await c.call(Fetch, 13, {
      replicaId: -1,
      maxWaitMs: 0,
      minBytes: 1,
      maxBytes: 1 << 20,
      topics: [{ topicId: new Uint8Array(16).fill(7), partitions: [{ partition: 0, fetchOffset: 0n }] }],
    });
    assert.equal(res.responses[0]!.partitions[0]!.errorCode, ErrorCode.UNKNOWN_TOPIC_ID);
  });

  test("fetch sessions: a full fetch gets sessionId 0; an incremental one FETCH_SESSION_ID_NOT_FOUND", async () => {
    const full = await c.call(Fetch, 12, {
      replicaId: -1,
      maxWaitMs: 0,
      minBytes: 1,
      maxBytes: 1 << 20,
      sessionId: 0,
      sessionEpoch: 0,
      topics: [{ topic: "f", partitions: [{ partition: 0, fetchOffset: 0n, partitionMaxBytes: 1 << 20 }] }],
    });
    assert.equal(full.errorCode, ErrorCode.NONE);
    assert.equal(full.sessionId, 0, "no session was created: the client keeps sending full fetches");
    assert.deepEqual(values(full.responses[0]!.partitions[0]!.records), ["a", "b", "c", "d", "e"]);
    const incremental = await c.call(Fetch, 12, {
      replicaId: -1,
      maxWaitMs: 0,
      minBytes: 1,
      sessionId: 1234,
      sessionEpoch: 1,
      topics: [],
    });
    assert.equal(incremental.errorCode, ErrorCode.FETCH_SESSION_ID_NOT_FOUND);
  });

  test("a stale currentLeaderEpoch is FENCED_LEADER_EPOCH, a future one UNKNOWN_LEADER_EPOCH (v9+)", async () => {
    const epochOf = async (currentLeaderEpoch: number): Promise<number> =>
      (
        await c.call(Fetch, 9, {
          replicaId: -1,
          maxWaitMs: 0,
          minBytes: 1,
          maxBytes: 1 << 20,
          topics: [{ topic: "f", partitions: [{ partition: 0, fetchOffset: 0n, currentLeaderEpoch }] }],
        })
      ).responses[0]!.partitions[0]!.errorCode;
    assert.equal(await epochOf(0), ErrorCode.NONE);
    assert.equal(await epochOf(-1), ErrorCode.NONE, "-1: no epoch check");
    assert.equal(await epochOf(5), ErrorCode.UNKNOWN_LEADER_EPOCH);
  });

  test("a long poll ends early when the broker stops", async () => {
    const b2 = await testBroker();
    const c2 = await WireClient.connect(b2.port);
    await createTopic(c2, "stop");
    const pending = fetchOne(c2, "stop", 0, 0n, { maxWaitMs: 30_000 });
    await sleep(50);
    const started = Date.now();
    await b2.stop();
    assert.ok(Date.now() - started < 3000, "stop does not wait for the long poll's maxWaitMs");
    const res = await pending.catch(() => null);
    if (res) assert.equal(res.responses[0]!.partitions[0]!.records?.length ?? 0, 0);
    c2.close();
  });
});
