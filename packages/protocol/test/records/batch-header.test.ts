// The 61-byte batch header: reading, in-place patches, CRC, attribute flags, iteration.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import {
  batchTotalBytes,
  Compression,
  compressionOf,
  isControlBatch,
  isTransactional,
  iterateBatches,
  LOG_OVERHEAD,
  lastOffsetOf,
  patchBaseOffset,
  patchPartitionLeaderEpoch,
  RECORD_BATCH_HEADER_BYTES,
  readBatchHeader,
  setLogAppendTime,
  timestampTypeOf,
  verifyBatchCrc,
} from "../../src/records/batch-header.ts";
import { RecordsError } from "../../src/records/errors.ts";
import { buildRecordBatch, parseRecordBatch } from "../../src/records/record-batch.ts";

function rejectsWith(fn: () => unknown, code: string): void {
  assert.throws(fn, (e: unknown) => e instanceof RecordsError && e.code === code);
}

function sampleBatch(values = ["a", "b", "c"]): Buffer {
  return buildRecordBatch({
    records: values.map((v, i) => ({ key: null, value: Buffer.from(v), timestamp: 1000n + BigInt(i) })),
  });
}

/** `batch` copied into a larger ArrayBuffer at a non-zero byteOffset. */
function atOffset(batch: Uint8Array, before: number): Uint8Array {
  const backing = new Uint8Array(before + batch.length + 5);
  backing.set(batch, before);
  return backing.subarray(before, before + batch.length);
}

describe("batch header", () => {
  test("constants", () => {
    assert.equal(RECORD_BATCH_HEADER_BYTES, 61);
    assert.equal(LOG_OVERHEAD, 12);
  });

  test("every field is read from Kafka's position", () => {
    const b = buildRecordBatch({
      records: [
        { value: Buffer.from("a"), timestamp: 5000n },
        { value: Buffer.from("b"), timestamp: 7000n },
      ],
      baseOffset: 0x0102030405060708n,
      partitionLeaderEpoch: 0x0a0b0c0d,
      producerId: 0x1112131415161718n,
      producerEpoch: 0x1a1b,
      baseSequence: 0x21222324,
      transactional: true,
    });
    assert.equal(b.readBigInt64BE(0), 0x0102030405060708n);
    assert.equal(b.readInt32BE(8), b.length - 12);
    assert.equal(b.readInt32BE(12), 0x0a0b0c0d);
    assert.equal(b.readInt8(16), 2);
    assert.equal(b.readInt16BE(21), 0x10);
    assert.equal(b.readInt32BE(23), 1);
    assert.equal(b.readBigInt64BE(27), 5000n);
    assert.equal(b.readBigInt64BE(35), 7000n);
    assert.equal(b.readBigInt64BE(43), 0x1112131415161718n);
    assert.equal(b.readInt16BE(51), 0x1a1b);
    assert.equal(b.readInt32BE(53), 0x21222324);
    assert.equal(b.readInt32BE(57), 2);
    assert.deepEqual(readBatchHeader(b, 0), {
      baseOffset: 0x0102030405060708n,
      batchLength: b.length - 12,
      partitionLeaderEpoch: 0x0a0b0c0d,
      magic: 2,
      crc: b.readUInt32BE(17),
      attributes: 0x10,
      lastOffsetDelta: 1,
      baseTimestamp: 5000n,
      maxTimestamp: 7000n,
      producerId: 0x1112131415161718n,
      producerEpoch: 0x1a1b,
      baseSequence: 0x21222324,
      recordCount: 2,
    });
  });

  test("batchTotalBytes and lastOffsetOf", () => {
    const b = sampleBatch();
    patchBaseOffset(b, 0, 100n);
    const h = readBatchHeader(b, 0);
    assert.equal(batchTotalBytes(h), b.length);
    assert.equal(lastOffsetOf(h), 102n);
  });

  test("a header at a position inside a larger buffer is read there", () => {
    const a = sampleBatch(["x"]);
    const b = sampleBatch(["y", "z"]);
    patchBaseOffset(b, 0, 9n);
    const blob = Buffer.concat([a, b]);
    assert.equal(readBatchHeader(blob, a.length).baseOffset, 9n);
    assert.equal(readBatchHeader(blob, a.length).recordCount, 2);
    assert.ok(verifyBatchCrc(blob, a.length));
  });

  test("views with a non-zero byteOffset are read and patched in their own coordinates", () => {
    const view = atOffset(sampleBatch(), 13);
    const backing = new Uint8Array(view.buffer);
    assert.equal(readBatchHeader(view, 0).recordCount, 3);
    assert.ok(verifyBatchCrc(view, 0));
    patchBaseOffset(view, 0, 77n);
    patchPartitionLeaderEpoch(view, 0, 4);
    setLogAppendTime(view, 0, 123n);
    assert.ok(verifyBatchCrc(view, 0));
    assert.deepEqual(backing.subarray(0, 13), new Uint8Array(13), "bytes before the view untouched");
    const h = readBatchHeader(view, 0);
    assert.deepEqual([h.baseOffset, h.partitionLeaderEpoch, h.maxTimestamp], [77n, 4, 123n]);
  });

  test("patching baseOffset and partitionLeaderEpoch keeps the CRC valid", () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
        fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
        (offset, epoch) => {
          const b = sampleBatch();
          const crc = readBatchHeader(b, 0).crc;
          patchBaseOffset(b, 0, offset);
          patchPartitionLeaderEpoch(b, 0, epoch);
          const h = readBatchHeader(b, 0);
          assert.deepEqual([h.baseOffset, h.partitionLeaderEpoch, h.crc], [offset, epoch, crc]);
          assert.ok(verifyBatchCrc(b, 0));
        },
      ),
      { numRuns: 50 },
    );
  });

  test("setLogAppendTime sets the timestamp-type bit and maxTimestamp and recomputes the CRC", () => {
    for (const compression of [Compression.none, Compression.lz4]) {
      const b = buildRecordBatch({ records: [{ value: Buffer.from("x"), timestamp: 5n }], compression });
      setLogAppendTime(b, 0, 99n);
      assert.ok(verifyBatchCrc(b, 0));
      const h = readBatchHeader(b, 0);
      assert.equal(h.maxTimestamp, 99n);
      assert.equal(timestampTypeOf(h.attributes), 1);
      assert.equal(compressionOf(h.attributes), compression);
      assert.equal(parseRecordBatch(b, 0).records[0]!.timestamp, 99n);
    }
  });

  test("setLogAppendTime refuses a truncated batch", () => {
    const b = sampleBatch();
    rejectsWith(() => setLogAppendTime(b.subarray(0, b.length - 1), 0, 1n), "TRUNCATED");
  });

  test("changing any byte covered by the CRC makes verifyBatchCrc false", () => {
    const b = sampleBatch();
    fc.assert(
      fc.property(fc.integer({ min: 21, max: b.length - 1 }), fc.integer({ min: 1, max: 255 }), (i, flip) => {
        const c = Buffer.from(b);
        c[i]! ^= flip;
        assert.equal(verifyBatchCrc(c, 0), false);
      }),
      { numRuns: 200 },
    );
  });

  test("verifyBatchCrc is false for a batch cut short", () => {
    const b = sampleBatch();
    assert.equal(verifyBatchCrc(b.subarray(0, b.length - 1), 0), false);
  });

  test("a header cut short is TRUNCATED", () => {
    rejectsWith(() => readBatchHeader(sampleBatch().subarray(0, 60), 0), "TRUNCATED");
    rejectsWith(() => readBatchHeader(sampleBatch().subarray(0, 10), 0), "TRUNCATED");
    const b = sampleBatch();
    rejectsWith(() => readBatchHeader(Buffer.concat([b, b.subarray(0, 40)]), b.length), "TRUNCATED");
  });

  test("magic other than 2 is UNSUPPORTED_MAGIC, even when the header is short", () => {
    for (const magic of [0, 1, 3]) {
      const b = sampleBatch();
      b[16] = magic;
      rejectsWith(() => readBatchHeader(b, 0), "UNSUPPORTED_MAGIC");
      rejectsWith(() => readBatchHeader(b.subarray(0, 30), 0), "UNSUPPORTED_MAGIC");
    }
  });

  test("a batchLength smaller than the header is CORRUPT_RECORD", () => {
    const b = sampleBatch();
    b.writeInt32BE(48, 8);
    rejectsWith(() => readBatchHeader(b, 0), "CORRUPT_RECORD");
    b.writeInt32BE(-1, 8);
    rejectsWith(() => readBatchHeader(b, 0), "CORRUPT_RECORD");
  });

  test("attribute flags", () => {
    assert.equal(compressionOf(0x0004), 4);
    assert.equal(compressionOf(0x003b), 3);
    rejectsWith(() => compressionOf(0x0005), "UNSUPPORTED_COMPRESSION");
    rejectsWith(() => compressionOf(0x0007), "UNSUPPORTED_COMPRESSION");
    assert.equal(isTransactional(0x10), true);
    assert.equal(isTransactional(0x2f), false);
    assert.equal(isControlBatch(0x20), true);
    assert.equal(isControlBatch(0x1f), false);
    assert.equal(timestampTypeOf(0x08), 1);
    assert.equal(timestampTypeOf(0x37), 0);
  });
});

describe("iterateBatches", () => {
  const a = sampleBatch(["a"]);
  const b = sampleBatch(["b", "c"]);
  const blob = Buffer.concat([a, b]);

  test("walks concatenated batches in order", () => {
    assert.deepEqual(
      [...iterateBatches(blob, { verifyCrc: true })].map((x) => [x.position, x.header.recordCount]),
      [
        [0, 1],
        [a.length, 2],
      ],
    );
  });

  test("an empty blob has no batches", () => {
    assert.deepEqual([...iterateBatches(new Uint8Array(0))], []);
  });

  test("a trailing partial batch is TRUNCATED, or skipped with allowPartialTail", () => {
    for (const cut of [1, b.length - RECORD_BATCH_HEADER_BYTES + 1, b.length - 1]) {
      const torn = blob.subarray(0, blob.length - cut);
      rejectsWith(() => [...iterateBatches(torn)], "TRUNCATED");
      assert.deepEqual(
        [...iterateBatches(torn, { allowPartialTail: true })].map((x) => x.position),
        [0],
      );
    }
  });

  test("verifyCrc reports a bad batch as CRC_MISMATCH", () => {
    const bad = Buffer.from(blob);
    bad[bad.length - 1]! ^= 1;
    rejectsWith(() => [...iterateBatches(bad, { verifyCrc: true })], "CRC_MISMATCH");
    assert.equal([...iterateBatches(bad)].length, 2);
  });

  test("works on a view with a non-zero byteOffset", () => {
    const view = atOffset(blob, 7);
    assert.deepEqual(
      [...iterateBatches(view, { verifyCrc: true })].map((x) => x.position),
      [0, a.length],
    );
  });
});
