// Produce: offsets per acks mode, every version, and each validation's error code.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ErrorCode, Reader } from "@sluice/protocol";
import { computeBatchCrc, LOG_OVERHEAD } from "@sluice/protocol/records/batch-header.ts";
import {
  encodeMessage,
  encodeWrapperMessage,
  isLegacyMessageSet,
  readLegacyMessages,
} from "@sluice/protocol/records/legacy.ts";
import { buildRecordBatch, decodeRecords } from "@sluice/protocol/records/record-batch.ts";
import type { RunningBroker } from "../../src/index.ts";
import { ApiVersions, Produce } from "../apis.ts";
import { batch, createTopic, fetchOne, produce, testBroker, WireClient } from "../helpers.ts";

const T = 1_650_000_000_000n;
const concat = (parts: Uint8Array[]) => Buffer.concat(parts);

describe("Produce", () => {
  let broker: RunningBroker;
  let c: WireClient;
  before(async () => {
    broker = await testBroker({ "message.max.bytes": "10000", "auto.create.topics.enable": "false" });
    c = await WireClient.connect(broker.port);
    await createTopic(c, "p", 2);
  });
  after(async () => {
    c.close();
    await broker.stop();
  });

  test("acks=1 and acks=-1 answer with consecutive base offsets and the log start offset", async () => {
    const a = await produce(c, "p", 0, batch(["1", "2", "3"]), { acks: 1 });
    const b = await produce(c, "p", 0, batch(["4"]), { acks: -1 });
    assert.deepEqual([a.errorCode, a.baseOffset, a.logStartOffset], [ErrorCode.NONE, 0n, 0n]);
    assert.deepEqual([b.errorCode, b.baseOffset], [ErrorCode.NONE, 3n]);
    assert.equal(a.logAppendTimeMs, -1n, "CreateTime topics report -1");
  });

  test("one request may carry several partitions, each answered", async () => {
    const res = await c.call(Produce, 7, {
      acks: -1,
      timeoutMs: 1000,
      topicData: [
        {
          name: "p",
          partitionData: [
            { index: 1, records: batch(["x"]) },
            { index: 7, records: batch(["y"]) },
          ],
        },
      ],
    });
    const [p1, p7] = res.responses[0]!.partitionResponses;
    assert.equal(p1!.errorCode, ErrorCode.NONE);
    assert.equal(p7!.errorCode, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
  });

  test("acks=0 gets no response, yet the records are written", async () => {
    const before = broker.broker.context!.topics.partition("p", 1)!.log.logEndOffset;
    c.send(Produce, 7, {
      acks: 0,
      timeoutMs: 1000,
      topicData: [{ name: "p", partitionData: [{ index: 1, records: batch(["fire", "forget"]) }] }],
    });
    const countBefore = c.arrived.length;
    await c.call(ApiVersions, 0, {});
    assert.equal(c.arrived.length, countBefore + 1, "only the ApiVersions response arrived");
    assert.equal(broker.broker.context!.topics.partition("p", 1)!.log.logEndOffset, before + 2n);
  });

  test("a failed acks=0 produce closes the connection, so the producer notices", async () => {
    const other = await WireClient.connect(broker.port);
    other.send(Produce, 7, {
      acks: 0,
      timeoutMs: 1000,
      topicData: [{ name: "no-such-topic", partitionData: [{ index: 0, records: batch(["lost"]) }] }],
    });
    await other.closed;
  });

  test("every version from 0 to 11 appends", async () => {
    for (let v = 0; v <= 11; v++) {
      const r = await produce(c, "p", 1, batch([`v${v}`]), { version: v });
      assert.equal(r.errorCode, ErrorCode.NONE, `v${v}`);
    }
  });

  test("acks other than -1, 0, 1 is INVALID_REQUIRED_ACKS", async () => {
    assert.equal((await produce(c, "p", 0, batch(["a"]), { acks: 2 })).errorCode, ErrorCode.INVALID_REQUIRED_ACKS);
  });

  test("an unknown topic is UNKNOWN_TOPIC_OR_PARTITION (produce never creates topics)", async () => {
    assert.equal((await produce(c, "nope", 0, batch(["a"]))).errorCode, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
  });

  test("a corrupt CRC is CORRUPT_MESSAGE and nothing is appended", async () => {
    const end = broker.broker.context!.topics.partition("p", 0)!.log.logEndOffset;
    const bad = batch(["good", "bytes"]);
    bad[bad.length - 1]! ^= 0xff;
    const r = await produce(c, "p", 0, bad);
    assert.equal(r.errorCode, ErrorCode.CORRUPT_MESSAGE);
    assert.equal(r.baseOffset, -1n);
    assert.equal(broker.broker.context!.topics.partition("p", 0)!.log.logEndOffset, end);
  });

  test("a truncated batch is CORRUPT_MESSAGE", async () => {
    const b = batch(["abcdef"]);
    assert.equal((await produce(c, "p", 0, b.subarray(0, b.length - 3))).errorCode, ErrorCode.CORRUPT_MESSAGE);
  });

  test("a record count that does not match the offsets is INVALID_RECORD", async () => {
    const b = batch(["one", "two"]);
    b.writeInt32BE(5, 57);
    b.writeUInt32BE(computeBatchCrc(b, 0, b.length - LOG_OVERHEAD), 17);
    const r = await produce(c, "p", 0, b);
    assert.ok(
      r.errorCode === ErrorCode.INVALID_RECORD || r.errorCode === ErrorCode.CORRUPT_MESSAGE,
      `got ${r.errorCode}`,
    );
  });

  test("legacy message sets (v0, v1, compressed) in Produce v0-v2 are stored as v2 batches; Fetch v0-v3 reads them back as v0/v1 messages", async () => {
    await createTopic(c, "legacy", 1);
    const text = (b: Uint8Array | null) => (b === null ? null : Buffer.from(b).toString());
    const v0 = concat([
      encodeMessage(0n, 0, 0, -1n, Buffer.from("k0"), Buffer.from("plain v0")),
      encodeMessage(1n, 0, 0, -1n, null, Buffer.from("no key")),
    ]);
    assert.equal((await produce(c, "legacy", 0, v0, { version: 0 })).errorCode, ErrorCode.NONE);
    const inner = concat([
      encodeMessage(0n, 1, 0, T + 1n, Buffer.from("k2"), Buffer.from("gzip v1 a")),
      encodeMessage(1n, 1, 0, T + 2n, Buffer.from("k3"), null),
    ]);
    const wrapped = encodeWrapperMessage(1n, 1, 1, T + 2n, inner);
    const r = await produce(c, "legacy", 0, wrapped, { version: 2 });
    assert.deepEqual([r.errorCode, r.baseOffset], [ErrorCode.NONE, 2n]);
    // Stored as v2 (a v4+ Fetch sees batches), the second with the wrapper's codec.
    const stored = (await fetchOne(c, "legacy", 0, 0n)).responses[0]!.partitions[0]!.records!;
    const batches = decodeRecords(stored);
    assert.deepEqual(
      batches.map((b) => [b.header.magic, b.header.attributes & 7, b.records.length]),
      [
        [2, 0, 2],
        [2, 1, 2],
      ],
    );
    assert.deepEqual(
      batches[1]!.records.map((x) => x.timestamp),
      [T + 1n, T + 2n],
    );
    for (const [version, magic] of [
      [1, 0],
      [3, 1],
    ] as const) {
      const records = (await fetchOne(c, "legacy", 0, 0n, { version })).responses[0]!.partitions[0]!.records!;
      assert.ok(isLegacyMessageSet(records), `Fetch v${version} answers with legacy messages`);
      const read = readLegacyMessages(records);
      assert.deepEqual(
        read.map((m) => [m.offset, m.magic, text(m.key), text(m.value), m.timestamp]),
        [
          [0n, magic, "k0", "plain v0", -1n],
          [1n, magic, null, "no key", -1n],
          [2n, magic, "k2", "gzip v1 a", magic === 1 ? T + 1n : -1n],
          [3n, magic, "k3", null, magic === 1 ? T + 2n : -1n],
        ],
      );
    }
  });

  test("a legacy message set with a bad CRC is CORRUPT_MESSAGE; in a v3+ request it is INVALID_RECORD", async () => {
    await createTopic(c, "legacy-bad", 1);
    const bad = encodeMessage(0n, 1, 0, T, null, Buffer.from("flipped"));
    bad[bad.length - 1]! ^= 1;
    assert.equal((await produce(c, "legacy-bad", 0, bad, { version: 2 })).errorCode, ErrorCode.CORRUPT_MESSAGE);
    const good = encodeMessage(0n, 1, 0, T, null, Buffer.from("v1 in v3"));
    assert.equal((await produce(c, "legacy-bad", 0, good, { version: 3 })).errorCode, ErrorCode.INVALID_RECORD);
    const p = (await fetchOne(c, "legacy-bad", 0, 0n)).responses[0]!.partitions[0]!;
    assert.equal(p.highWatermark, 0n, "nothing was appended");
  });

  test("a batch over message.max.bytes is MESSAGE_TOO_LARGE; a topic's max.message.bytes overrides it", async () => {
    const big = batch(["x".repeat(12_000)]);
    assert.equal((await produce(c, "p", 0, big)).errorCode, ErrorCode.MESSAGE_TOO_LARGE);
    await createTopic(c, "roomy", 1, { "max.message.bytes": "50000" });
    assert.equal((await produce(c, "roomy", 0, big)).errorCode, ErrorCode.NONE);
    await createTopic(c, "tight", 1, { "max.message.bytes": "100" });
    assert.equal((await produce(c, "tight", 0, batch(["y".repeat(200)]))).errorCode, ErrorCode.MESSAGE_TOO_LARGE);
  });

  test("a compacted topic refuses records without a key, listing them (RecordErrors, v8+)", async () => {
    await createTopic(c, "compacted", 1, { "cleanup.policy": "compact" });
    const r = await produce(c, "compacted", 0, batch(["a", "b", "c"], { keys: ["k", null, null] }), { version: 8 });
    assert.equal(r.errorCode, ErrorCode.INVALID_RECORD);
    assert.deepEqual(
      r.recordErrors.map((e) => e.batchIndex),
      [1, 2],
    );
    assert.match(r.errorMessage ?? "", /key/);
    const ok = await produce(c, "compacted", 0, batch(["a"], { keys: ["k"] }));
    assert.equal(ok.errorCode, ErrorCode.NONE);
  });

  test("message.timestamp.difference.max.ms refuses records with out-of-range timestamps (INVALID_TIMESTAMP)", async () => {
    await createTopic(c, "timely", 1, { "message.timestamp.difference.max.ms": "60000" });
    const now = BigInt(Date.now());
    const records = buildRecordBatch({
      records: [
        { value: Buffer.from("now"), timestamp: now },
        { value: Buffer.from("ancient"), timestamp: now - 3_600_000n },
      ],
    });
    const r = await produce(c, "timely", 0, records, { version: 8 });
    assert.equal(r.errorCode, ErrorCode.INVALID_TIMESTAMP);
    assert.deepEqual(
      r.recordErrors.map((e) => e.batchIndex),
      [1],
    );
    assert.equal((await produce(c, "timely", 0, batch(["fresh"], { timestamp: now }))).errorCode, ErrorCode.NONE);
  });

  test("LogAppendTime topics stamp the append time and report it", async () => {
    await createTopic(c, "appended", 1, { "message.timestamp.type": "LogAppendTime" });
    const before = BigInt(Date.now());
    const r = await produce(c, "appended", 0, batch(["t"], { timestamp: 1000n }), { version: 7 });
    assert.equal(r.errorCode, ErrorCode.NONE);
    assert.ok(r.logAppendTimeMs >= before, "logAppendTimeMs is the broker's clock");
    const fetched = (await fetchOne(c, "appended", 0, 0n)).responses[0]!.partitions[0]!.records!;
    assert.equal(decodeRecords(fetched)[0]!.records[0]!.timestamp, r.logAppendTimeMs);
  });

  test("acks=-1 with fewer in-sync replicas than min.insync.replicas is NOT_ENOUGH_REPLICAS; acks=1 is accepted", async () => {
    await createTopic(c, "strict", 1, { "min.insync.replicas": "2" });
    const all = await produce(c, "strict", 0, batch(["x"]), { acks: -1 });
    assert.equal(all.errorCode, ErrorCode.NOT_ENOUGH_REPLICAS);
    assert.equal(broker.broker.context!.topics.partition("strict", 0)!.log.logEndOffset, 0n, "nothing appended");
    assert.equal((await produce(c, "strict", 0, batch(["x"]), { acks: 1 })).errorCode, ErrorCode.NONE);
  });

  test("pipelined requests to one partition are appended in arrival order, idempotent and plain mixed", async () => {
    await createTopic(c, "order");
    // Idempotent batches take the serialised path (producer-state check), plain ones the direct one.
    const idempotent = (v: string, seq: number): Buffer =>
      buildRecordBatch({
        records: [{ value: Buffer.from(v) }],
        producerId: 4242n,
        producerEpoch: 0,
        baseSequence: seq,
      });
    const sent = [
      idempotent("i0", 0),
      batch(["p0"]),
      idempotent("i1", 1),
      batch(["p1"]),
      batch(["p2"]),
      idempotent("i2", 2),
      batch(["p3"]),
    ];
    const values = ["i0", "p0", "i1", "p1", "p2", "i2", "p3"];
    const ids = sent.map(() => c.nextCorrelationId());
    const responses = Promise.all(ids.map((id) => c.expect(id)));
    c.write(
      Buffer.concat(
        sent.map((records, i) =>
          c.frame(
            Produce,
            7,
            { acks: 1, timeoutMs: 5000, topicData: [{ name: "order", partitionData: [{ index: 0, records }] }] },
            ids[i],
          ),
        ),
      ),
    );
    const offsets = (await responses).map((frame) => {
      const r = new Reader(frame);
      r.readInt32("correlationId");
      const p = Produce.decode(r, 7).responses[0]!.partitionResponses[0]!;
      assert.equal(p.errorCode, ErrorCode.NONE);
      return p.baseOffset;
    });
    assert.deepEqual(offsets, [0n, 1n, 2n, 3n, 4n, 5n, 6n], "offsets in request order");
    const f = await fetchOne(c, "order", 0, 0n);
    const got = decodeRecords(f.responses[0]!.partitions[0]!.records!).flatMap((b) =>
      b.records.map((r) => Buffer.from(r.value!).toString()),
    );
    assert.deepEqual(got, values);
  });

  test("clients may not write to internal topics", async () => {
    await broker.broker.context!.topics.create("__internal_test", 1, {}, true);
    assert.equal((await produce(c, "__internal_test", 0, batch(["no"]))).errorCode, ErrorCode.INVALID_TOPIC_EXCEPTION);
  });
});
