// ListOffsets (earliest, latest, by timestamp, max timestamp; v0's old-style answer),
// OffsetForLeaderEpoch and DeleteRecords.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ErrorCode } from "@sluice/protocol";
import {
  type CompressionCodec,
  computeBatchCrc,
  iterateBatches,
  readBatchHeader,
} from "@sluice/protocol/records/batch-header.ts";
import { buildRecordBatch, parseRecordBatch } from "@sluice/protocol/records/record-batch.ts";
import type { RunningBroker } from "../../src/index.ts";
import { DeleteRecords, ListOffsets, OffsetForLeaderEpoch } from "../apis.ts";
import { batch, createTopic, fetchOne, produce, testBroker, WireClient } from "../helpers.ts";

const T0 = 1_700_000_000_000n;

/** The batch as sarama 1.22 writes it: maxTimestamp -1 (its CRC made valid again). */
function withBadMaxTimestamp(b: Buffer): Buffer {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  v.setBigInt64(35, -1n);
  v.setUint32(17, computeBatchCrc(b, 0, readBatchHeader(b, 0).batchLength));
  return b;
}

describe("ListOffsets, OffsetForLeaderEpoch, DeleteRecords", () => {
  let broker: RunningBroker;
  let c: WireClient;
  before(async () => {
    broker = await testBroker();
    c = await WireClient.connect(broker.port);
    await createTopic(c, "o", 1);
    // Offsets 0-1 at T0+1000/T0+2000, 2 at T0+5000 (the max), 3 at T0+3000.
    await produce(
      c,
      "o",
      0,
      buildRecordBatch({
        records: [
          { value: Buffer.from("a"), timestamp: T0 + 1000n },
          { value: Buffer.from("b"), timestamp: T0 + 2000n },
        ],
      }),
    );
    await produce(c, "o", 0, batch(["c"], { timestamp: T0 + 5000n }));
    await produce(c, "o", 0, batch(["d"], { timestamp: T0 + 3000n }));
  });
  after(async () => {
    c.close();
    await broker.stop();
  });

  async function list(timestamp: bigint, version = 7, partitionIndex = 0, topic = "o") {
    const res = await c.call(ListOffsets, version, {
      replicaId: -1,
      topics: [{ name: topic, partitions: [{ partitionIndex, timestamp, maxNumOffsets: 1 }] }],
    });
    return res.topics[0]!.partitions[0]!;
  }

  test("earliest (-2) is the log start offset, latest (-1) the high watermark", async () => {
    assert.equal((await list(-2n)).offset, 0n);
    assert.equal((await list(-1n)).offset, 4n);
  });

  test("a timestamp finds the first offset whose timestamp is at least it", async () => {
    const p = await list(T0 + 1500n);
    assert.deepEqual([p.errorCode, p.offset, p.timestamp], [ErrorCode.NONE, 1n, T0 + 2000n]);
    const q = await list(T0 + 2500n);
    assert.deepEqual([q.offset, q.timestamp], [2n, T0 + 5000n], "offset 2 is the first at or after T0+2500");
  });

  test("a timestamp after every record finds nothing (-1)", async () => {
    const p = await list(T0 + 9000n);
    assert.deepEqual([p.errorCode, p.offset], [ErrorCode.NONE, -1n]);
  });

  test("max timestamp (-3, v7+) finds the record with the largest timestamp", async () => {
    const p = await list(-3n, 7);
    assert.deepEqual([p.offset, p.timestamp], [2n, T0 + 5000n]);
  });

  test("a batch whose maxTimestamp is below its first timestamp (sarama 1.22 writes -1) gets the records' max, with a valid CRC, as Kafka recomputes it", async () => {
    await createTopic(c, "o-max", 1);
    const records = (ts: bigint[], compression: CompressionCodec) =>
      withBadMaxTimestamp(
        buildRecordBatch({ records: ts.map((t, i) => ({ value: Buffer.from(`r${i}`), timestamp: t })), compression }),
      );
    assert.equal((await produce(c, "o-max", 0, records([T0 + 1000n, T0 + 4000n, T0 + 2000n], 0))).errorCode, 0);
    assert.equal((await produce(c, "o-max", 0, records([T0 + 6000n, T0 + 5000n], 1))).errorCode, 0);
    const found = await list(T0 + 3000n, 7, 0, "o-max");
    assert.deepEqual([found.offset, found.timestamp], [1n, T0 + 4000n], "the first batch's real max");
    const later = await list(T0 + 5500n, 7, 0, "o-max");
    assert.deepEqual([later.offset, later.timestamp], [3n, T0 + 6000n], "a compressed batch too");
    const stored = (await fetchOne(c, "o-max", 0, 0n)).responses[0]!.partitions[0]!.records!;
    const headers = [...iterateBatches(stored)].map((b) => b.header.maxTimestamp);
    assert.deepEqual(headers, [T0 + 4000n, T0 + 6000n]);
    for (const b of iterateBatches(stored)) parseRecordBatch(stored, b.position, { verifyCrc: true });
    // A bad CRC is still refused rather than rewritten over.
    const corrupt = records([T0 + 7000n], 0);
    corrupt[corrupt.length - 1]! ^= 0xff;
    assert.equal((await produce(c, "o-max", 0, corrupt)).errorCode, ErrorCode.CORRUPT_MESSAGE);
  });

  test("v0 answers with old-style offsets", async () => {
    const p = await list(-1n, 0);
    assert.deepEqual(p.oldStyleOffsets, [4n]);
  });

  test("every version from 0 to 10 answers latest", async () => {
    for (let v = 0; v <= 10; v++) {
      const p = await list(-1n, v);
      assert.equal(p.errorCode, ErrorCode.NONE, `v${v}`);
      assert.equal(v === 0 ? p.oldStyleOffsets[0] : p.offset, 4n, `v${v}`);
    }
  });

  test("an unknown partition is UNKNOWN_TOPIC_OR_PARTITION", async () => {
    assert.equal((await list(-1n, 7, 3)).errorCode, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
    assert.equal((await list(-1n, 7, 0, "missing")).errorCode, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
  });

  test("OffsetForLeaderEpoch gives the end offset of the current epoch (the log end)", async () => {
    for (const version of [0, 2, 4]) {
      const res = await c.call(OffsetForLeaderEpoch, version, {
        replicaId: -1,
        topics: [{ topic: "o", partitions: [{ partition: 0, currentLeaderEpoch: -1, leaderEpoch: 0 }] }],
      });
      const p = res.topics[0]!.partitions[0]!;
      assert.equal(p.errorCode, ErrorCode.NONE);
      assert.equal(p.endOffset, 4n, `v${version}`);
      if (version >= 1) assert.equal(p.leaderEpoch, 0);
    }
    const fenced = await c.call(OffsetForLeaderEpoch, 3, {
      replicaId: -1,
      topics: [{ topic: "o", partitions: [{ partition: 0, currentLeaderEpoch: 9, leaderEpoch: 0 }] }],
    });
    assert.equal(fenced.topics[0]!.partitions[0]!.errorCode, ErrorCode.UNKNOWN_LEADER_EPOCH);
  });

  test("DeleteRecords moves the log start offset; fetches below it are OFFSET_OUT_OF_RANGE", async () => {
    await createTopic(c, "del");
    await produce(c, "del", 0, batch(["0"]));
    await produce(c, "del", 0, batch(["1"]));
    await produce(c, "del", 0, batch(["2"]));
    const res = await c.call(DeleteRecords, 1, {
      topics: [{ name: "del", partitions: [{ partitionIndex: 0, offset: 2n }] }],
      timeoutMs: 1000,
    });
    const p = res.topics[0]!.partitions[0]!;
    assert.deepEqual([p.errorCode, p.lowWatermark], [ErrorCode.NONE, 2n]);
    const earliest = await c.call(ListOffsets, 1, {
      replicaId: -1,
      topics: [{ name: "del", partitions: [{ partitionIndex: 0, timestamp: -2n }] }],
    });
    assert.equal(earliest.topics[0]!.partitions[0]!.offset, 2n);
    assert.equal(
      (await fetchOne(c, "del", 0, 0n)).responses[0]!.partitions[0]!.errorCode,
      ErrorCode.OFFSET_OUT_OF_RANGE,
    );
    const fetched = (await fetchOne(c, "del", 0, 2n)).responses[0]!.partitions[0]!;
    assert.equal(fetched.logStartOffset, 2n);
  });

  test("DeleteRecords beyond the high watermark is OFFSET_OUT_OF_RANGE; -1 means the high watermark", async () => {
    const res = await c.call(DeleteRecords, 2, {
      topics: [
        {
          name: "del",
          partitions: [
            { partitionIndex: 0, offset: 99n },
            { partitionIndex: 5, offset: 0n },
          ],
        },
      ],
      timeoutMs: 1000,
    });
    const [beyond, unknown] = res.topics[0]!.partitions;
    assert.equal(beyond!.errorCode, ErrorCode.OFFSET_OUT_OF_RANGE);
    assert.equal(unknown!.errorCode, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
    const all = await c.call(DeleteRecords, 0, {
      topics: [{ name: "del", partitions: [{ partitionIndex: 0, offset: -1n }] }],
      timeoutMs: 1000,
    });
    assert.equal(all.topics[0]!.partitions[0]!.lowWatermark, 3n);
  });
});
