// Whole record batches: build → parse, validation of the records, control batches.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import {
  type CompressionCodec,
  computeBatchCrc,
  patchBaseOffset,
  readBatchHeader,
  verifyBatchCrc,
} from "../../src/records/batch-header.ts";
import { RecordsError } from "../../src/records/errors.ts";
import {
  buildControlBatch,
  buildRecordBatch,
  decodeRecords,
  parseControlRecord,
  parseRecordBatch,
} from "../../src/records/record-batch.ts";

const CODECS: CompressionCodec[] = [0, 1, 2, 3, 4];

const recordArb = fc.record(
  {
    key: fc.option(fc.uint8Array({ maxLength: 40 }), { nil: null }),
    value: fc.option(fc.uint8Array({ maxLength: 300 }), { nil: null }),
    headers: fc.array(
      fc.record({
        key: fc.string({ unit: "grapheme", maxLength: 10 }),
        value: fc.option(fc.uint8Array({ maxLength: 20 }), { nil: null }),
      }),
      { maxLength: 3 },
    ),
    timestamp: fc.bigInt({ min: 0n, max: 2n ** 50n }),
  },
  { requiredKeys: ["value"] },
);

function rejectsWith(fn: () => unknown, code: string): void {
  assert.throws(fn, (e: unknown) => e instanceof RecordsError && e.code === code);
}

const bytes = (u: Uint8Array | null | undefined): Buffer | null => (u == null ? null : Buffer.from(u));

/** Recomputes the CRC after a test edits bytes it covers, so that the check under test is reached. */
function resign(batch: Buffer): Buffer {
  batch.writeUInt32BE(computeBatchCrc(batch, 0, batch.readInt32BE(8)), 17);
  return batch;
}

/** One uncompressed record: key "k", value "value", no headers; the record starts at 61. */
function oneRecord(): Buffer {
  return buildRecordBatch({ records: [{ key: Buffer.from("k"), value: Buffer.from("value"), timestamp: 10n }] });
}
// Inside oneRecord(): 61 length | 62 attributes | 63 timestampDelta | 64 offsetDelta | 65 keyLength | 66 key
//                     67 valueLength | 68 value | 73 headerCount
const KEY_LENGTH_AT = 65;
const HEADER_COUNT_AT = 73;

describe("record batches", () => {
  test("build → parse round-trips random records for every codec", () => {
    fc.assert(
      fc.property(
        fc.array(recordArb, { minLength: 1, maxLength: 20 }),
        fc.constantFrom(...CODECS),
        fc.bigInt({ min: 0n, max: 2n ** 62n }),
        (records, compression, baseOffset) => {
          const batch = buildRecordBatch({ records, compression, baseOffset });
          assert.ok(verifyBatchCrc(batch, 0));
          const { header, records: parsed } = parseRecordBatch(batch, 0);
          assert.equal(header.recordCount, records.length);
          assert.equal(header.lastOffsetDelta, records.length - 1);
          // Records without a timestamp take the batch's, which is the first record's or now.
          const base = header.baseTimestamp;
          if (records[0]!.timestamp !== undefined) assert.equal(base, records[0]!.timestamp);
          const timestamps = records.map((r) => r.timestamp ?? base);
          assert.equal(
            header.maxTimestamp,
            timestamps.reduce((m, t) => (t > m ? t : m)),
          );
          assert.deepEqual(
            parsed.map((r) => [
              r.offset,
              r.timestamp,
              bytes(r.key),
              bytes(r.value),
              r.headers.map((h) => [h.key, bytes(h.value)]),
            ]),
            records.map((r, i) => [
              baseOffset + BigInt(i),
              timestamps[i],
              bytes(r.key),
              bytes(r.value),
              (r.headers ?? []).map((h) => [h.key, bytes(h.value)]),
            ]),
          );
        },
      ),
      { numRuns: 150 },
    );
  });

  test("producer fields and flags survive the round trip", () => {
    const b = buildRecordBatch({
      records: [{ value: Buffer.from("v") }],
      producerId: 42n,
      producerEpoch: 3,
      baseSequence: 17,
      transactional: true,
      partitionLeaderEpoch: 8,
      compression: 4,
    });
    const h = parseRecordBatch(b, 0).header;
    assert.deepEqual(
      [h.producerId, h.producerEpoch, h.baseSequence, h.partitionLeaderEpoch, h.attributes],
      [42n, 3, 17, 8, 0x14],
    );
  });

  test("timestamps before baseTimestamp give negative deltas that round-trip", () => {
    const b = buildRecordBatch({
      records: [
        { value: null, timestamp: 2000n },
        { value: null, timestamp: 1000n },
      ],
    });
    assert.deepEqual(
      parseRecordBatch(b, 0).records.map((r) => r.timestamp),
      [2000n, 1000n],
    );
  });

  test("records of a LogAppendTime batch report its maxTimestamp", () => {
    const b = buildRecordBatch({
      records: [
        { value: null, timestamp: 1n },
        { value: null, timestamp: 2n },
      ],
      timestampType: 1,
    });
    assert.deepEqual(
      parseRecordBatch(b, 0).records.map((r) => r.timestamp),
      [2n, 2n],
    );
  });

  test("compaction-style gaps in offset deltas are kept", () => {
    const b = buildRecordBatch({
      records: [
        { value: Buffer.from("a"), offsetDelta: 1 },
        { value: Buffer.from("b"), offsetDelta: 4 },
      ],
      lastOffsetDelta: 5,
      baseOffset: 100n,
    });
    const p = parseRecordBatch(b, 0);
    assert.deepEqual(
      p.records.map((r) => r.offset),
      [101n, 104n],
    );
    assert.equal(p.header.lastOffsetDelta, 5);
  });

  test("a batch needs at least one record", () => {
    assert.throws(() => buildRecordBatch({ records: [] }), RecordsError);
  });

  test("decodeRecords reads every batch of a blob and skips a partial tail", () => {
    const a = buildRecordBatch({ records: [{ value: Buffer.from("a") }], compression: 1 });
    const b = buildRecordBatch({ records: [{ value: Buffer.from("b") }, { value: Buffer.from("c") }], compression: 3 });
    patchBaseOffset(b, 0, 1n);
    const blob = Buffer.concat([a, b, a.subarray(0, 20)]);
    const values = decodeRecords(blob).flatMap((p) => p.records.map((r) => `${r.offset}:${bytes(r.value)}`));
    assert.deepEqual(values, ["0:a", "1:b", "2:c"]);
    rejectsWith(() => decodeRecords(blob, { allowPartialTail: false }), "TRUNCATED");
  });

  test("maxDecompressedBytes bounds the records block", () => {
    const b = buildRecordBatch({ records: [{ value: Buffer.alloc(100_000) }], compression: 4 });
    rejectsWith(() => parseRecordBatch(b, 0, { maxDecompressedBytes: 50_000 }), "DECOMPRESSION_LIMIT");
    assert.equal(parseRecordBatch(b, 0, { maxDecompressedBytes: 200_000 }).records.length, 1);
  });
});

describe("record batch validation", () => {
  test("a truncated batch is TRUNCATED", () => {
    const b = oneRecord();
    rejectsWith(() => parseRecordBatch(b.subarray(0, b.length - 1), 0), "TRUNCATED");
    rejectsWith(() => parseRecordBatch(b.subarray(0, 40), 0), "TRUNCATED");
  });

  test("a corrupt CRC is CRC_MISMATCH", () => {
    const b = oneRecord();
    b[b.length - 2]! ^= 0xff;
    rejectsWith(() => parseRecordBatch(b, 0), "CRC_MISMATCH");
  });

  test("a bad magic is UNSUPPORTED_MAGIC", () => {
    const b = oneRecord();
    b[16] = 1;
    rejectsWith(() => parseRecordBatch(b, 0), "UNSUPPORTED_MAGIC");
  });

  test("an unknown compression codec is UNSUPPORTED_COMPRESSION", () => {
    const b = oneRecord();
    b.writeInt16BE(6, 21);
    rejectsWith(() => parseRecordBatch(resign(b), 0), "UNSUPPORTED_COMPRESSION");
  });

  test("a record count above the records held is CORRUPT_RECORD", () => {
    const two = buildRecordBatch({ records: Array.from({ length: 2 }, () => ({ value: Buffer.alloc(30) })) });
    two.writeInt32BE(3, 57);
    rejectsWith(() => parseRecordBatch(resign(two), 0), "CORRUPT_RECORD");
    const one = oneRecord();
    one.writeInt32BE(1000, 57);
    rejectsWith(() => parseRecordBatch(resign(one), 0), "CORRUPT_RECORD");
  });

  test("a record count below the records held is CORRUPT_RECORD", () => {
    const b = buildRecordBatch({ records: [{ value: Buffer.from("a") }, { value: Buffer.from("b") }] });
    b.writeInt32BE(1, 57);
    rejectsWith(() => parseRecordBatch(resign(b), 0), "CORRUPT_RECORD");
  });

  test("a negative record count is CORRUPT_RECORD", () => {
    const b = oneRecord();
    b.writeInt32BE(-1, 57);
    rejectsWith(() => parseRecordBatch(resign(b), 0), "CORRUPT_RECORD");
  });

  test("a negative record length is CORRUPT_RECORD", () => {
    const b = oneRecord();
    b[61] = 0x03; // zig-zag -2
    rejectsWith(() => parseRecordBatch(resign(b), 0), "CORRUPT_RECORD");
  });

  test("a record length past the block is CORRUPT_RECORD", () => {
    const b = oneRecord();
    b[61] = 0x7e; // 63
    rejectsWith(() => parseRecordBatch(resign(b), 0), "CORRUPT_RECORD");
  });

  test("a key length below -1 is CORRUPT_RECORD; -1 is a null key", () => {
    const b = oneRecord();
    assert.equal(b[KEY_LENGTH_AT], 0x02);
    b[KEY_LENGTH_AT] = 0x03; // -2
    rejectsWith(() => parseRecordBatch(resign(b), 0), "CORRUPT_RECORD");
  });

  test("a key running past its record is CORRUPT_RECORD", () => {
    const b = oneRecord();
    b[KEY_LENGTH_AT] = 0x20; // 16 bytes
    rejectsWith(() => parseRecordBatch(resign(b), 0), "CORRUPT_RECORD");
  });

  test("a negative or oversized header count is CORRUPT_RECORD", () => {
    for (const count of [0x01, 0x40]) {
      const b = oneRecord();
      assert.equal(b[HEADER_COUNT_AT], 0);
      b[HEADER_COUNT_AT] = count;
      rejectsWith(() => parseRecordBatch(resign(b), 0), "CORRUPT_RECORD");
    }
  });

  test("offset deltas out of order or past lastOffsetDelta are CORRUPT_RECORD", () => {
    const swapped = buildRecordBatch({
      records: [
        { value: null, offsetDelta: 1 },
        { value: null, offsetDelta: 0 },
      ],
      lastOffsetDelta: 1,
    });
    rejectsWith(() => parseRecordBatch(swapped, 0), "CORRUPT_RECORD");
    const past = buildRecordBatch({ records: [{ value: null }, { value: null }], lastOffsetDelta: 0 });
    rejectsWith(() => parseRecordBatch(past, 0), "CORRUPT_RECORD");
  });

  test("a header key that is not UTF-8 is CORRUPT_RECORD", () => {
    const b = buildRecordBatch({ records: [{ value: null, headers: [{ key: "é", value: null }] }] });
    const at = b.indexOf(Buffer.from("é"));
    b[at] = 0xff;
    rejectsWith(() => parseRecordBatch(resign(b), 0), "CORRUPT_RECORD");
  });

  test("random corruption never escapes as anything but a RecordsError", () => {
    const base = buildRecordBatch({
      records: [
        { key: Buffer.from("key"), value: Buffer.from("value"), headers: [{ key: "h", value: Buffer.from("v") }] },
        { key: null, value: Buffer.from("second") },
      ],
    });
    fc.assert(
      fc.property(fc.integer({ min: 21, max: base.length - 1 }), fc.integer({ min: 1, max: 255 }), (i, flip) => {
        const b = Buffer.from(base);
        b[i]! ^= flip;
        try {
          parseRecordBatch(resign(b), 0);
        } catch (e) {
          assert.ok(e instanceof RecordsError, String(e));
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe("control batches", () => {
  for (const type of ["COMMIT", "ABORT"] as const) {
    test(`a ${type} marker round-trips`, () => {
      const m = buildControlBatch({
        type,
        coordinatorEpoch: 3,
        producerId: 7n,
        producerEpoch: 1,
        baseOffset: 50n,
        timestamp: 123n,
      });
      const p = parseRecordBatch(m, 0);
      assert.equal(p.header.attributes & 0x30, 0x30, "transactional and control bits");
      assert.deepEqual([p.header.producerId, p.header.producerEpoch, p.header.baseOffset], [7n, 1, 50n]);
      const rec = p.records[0]!;
      assert.equal(rec.timestamp, 123n);
      assert.equal(bytes(rec.key)!.toString("hex"), type === "COMMIT" ? "00000001" : "00000000");
      assert.equal(bytes(rec.value)!.toString("hex"), "000000000003");
      assert.deepEqual(parseControlRecord(rec.key, rec.value), { type, coordinatorEpoch: 3 });
    });
  }

  test("an unknown control type or a short key is CORRUPT_RECORD", () => {
    rejectsWith(() => parseControlRecord(Buffer.from("00000002", "hex"), null), "CORRUPT_RECORD");
    rejectsWith(() => parseControlRecord(Buffer.from("0000", "hex"), null), "CORRUPT_RECORD");
    rejectsWith(() => parseControlRecord(null, null), "CORRUPT_RECORD");
  });

  test("readBatchHeader sees a control batch's flags without decoding it", () => {
    const m = buildControlBatch({ type: "ABORT", coordinatorEpoch: 0, producerId: 1n, producerEpoch: 0 });
    assert.equal(readBatchHeader(m, 0).attributes & 0x20, 0x20);
  });
});
