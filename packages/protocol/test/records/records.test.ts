import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { gzipSync, zstdCompressSync } from "node:zlib";
import fc from "fast-check";
import {
  type CompressionCodec,
  compress,
  crc32c,
  crc32cIsNative,
  crc32cPure,
  decompress,
  iterateBatches,
  patchBaseOffset,
  patchPartitionLeaderEpoch,
  RecordsError,
  readBatchHeader,
  setLogAppendTime,
  VarintReader,
  varintSize,
  varlongSize,
  verifyBatchCrc,
  writeVarint,
  writeVarlong,
} from "../../src/records/index.ts";
import { storedFrame } from "../../src/records/lz4.ts";
import {
  buildControlBatch,
  buildRecordBatch,
  parseControlRecord,
  parseRecordBatch,
} from "../../src/records/record-batch.ts";

const CODECS: CompressionCodec[] = [0, 1, 2, 3, 4];
const recordArb = fc.record({
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
});

function expectCode(fn: () => unknown, code: string): void {
  assert.throws(fn, (e: unknown) => e instanceof RecordsError && e.code === code);
}

describe("varints", () => {
  test("signed varints and varlongs round-trip, including the extremes", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
        fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
        (i, l) => {
          const buf = Buffer.alloc(20);
          let p = writeVarint(buf, 0, i);
          assert.equal(p, varintSize(i));
          p = writeVarlong(buf, p, l);
          assert.equal(p, varintSize(i) + varlongSize(l));
          const r = new VarintReader(buf, 0, p);
          assert.equal(r.varint(), i);
          assert.equal(r.varlong(), l);
        },
      ),
    );
  });
  test("a truncated varint is refused", () => {
    expectCode(() => new VarintReader(Buffer.from([0x80, 0x80])).varint(), "TRUNCATED");
  });
});

describe("CRC32C", () => {
  test("known vector and native/pure agreement", () => {
    assert.equal(crc32c(Buffer.from("123456789")), 0xe3069283);
    assert.equal(crc32cPure(Buffer.from("123456789")), 0xe3069283);
    fc.assert(fc.property(fc.uint8Array({ maxLength: 2000 }), (b) => crc32c(b) === crc32cPure(b)));
    assert.equal(typeof crc32cIsNative, "boolean");
  });
});

describe("record batches", () => {
  test("build → parse round-trips for every codec", () => {
    fc.assert(
      fc.property(
        fc.array(recordArb, { minLength: 1, maxLength: 20 }),
        fc.constantFrom(...CODECS),
        fc.bigInt({ min: 0n, max: 2n ** 40n }),
        (records, codec, base) => {
          const batch = buildRecordBatch({ records, compression: codec, baseOffset: base });
          assert.ok(verifyBatchCrc(batch, 0));
          const parsed = parseRecordBatch(batch, 0);
          assert.equal(parsed.header.recordCount, records.length);
          parsed.records.forEach((r, i) => {
            const want = records[i]!;
            assert.equal(r.offset, base + BigInt(i));
            assert.equal(r.timestamp, want.timestamp);
            assert.deepEqual(r.key && Buffer.from(r.key), want.key && Buffer.from(want.key));
            assert.deepEqual(r.value && Buffer.from(r.value), want.value && Buffer.from(want.value));
            assert.deepEqual(
              r.headers.map((h) => [h.key, h.value && Buffer.from(h.value)]),
              want.headers.map((h) => [h.key, h.value && Buffer.from(h.value)]),
            );
          });
        },
      ),
      { numRuns: 200 },
    );
  });

  test("patching base offset and leader epoch keeps the CRC valid; LogAppendTime recomputes it", () => {
    const batch = buildRecordBatch({ records: [{ value: Buffer.from("x"), timestamp: 5n }] });
    patchBaseOffset(batch, 0, 1234n);
    patchPartitionLeaderEpoch(batch, 0, 9);
    assert.ok(verifyBatchCrc(batch, 0));
    const h = readBatchHeader(batch, 0);
    assert.equal(h.baseOffset, 1234n);
    assert.equal(h.partitionLeaderEpoch, 9);
    setLogAppendTime(batch, 0, 99n);
    assert.ok(verifyBatchCrc(batch, 0));
    assert.equal(readBatchHeader(batch, 0).maxTimestamp, 99n);
    assert.equal(readBatchHeader(batch, 0).attributes & 0x08, 0x08);
  });

  test("iterateBatches walks concatenated batches and reports a torn tail", () => {
    const a = buildRecordBatch({ records: [{ value: Buffer.from("a") }] });
    const b = buildRecordBatch({ records: [{ value: Buffer.from("b") }, { value: Buffer.from("c") }] });
    const blob = Buffer.concat([a, b]);
    assert.deepEqual(
      [...iterateBatches(blob, { verifyCrc: true })].map((x) => x.position),
      [0, a.length],
    );
    const torn = blob.subarray(0, blob.length - 3);
    expectCode(() => [...iterateBatches(torn)], "TRUNCATED");
    assert.equal([...iterateBatches(torn, { allowPartialTail: true })].length, 1);
  });

  test("corruption is detected: CRC, magic, record count, negative lengths", () => {
    const batch = buildRecordBatch({ records: [{ key: Buffer.from("k"), value: Buffer.from("value") }] });
    const badCrc = Buffer.from(batch);
    badCrc.writeUInt8(badCrc.readUInt8(badCrc.length - 2) ^ 0xff, badCrc.length - 2);
    expectCode(() => parseRecordBatch(badCrc, 0), "CRC_MISMATCH");
    expectCode(() => [...iterateBatches(badCrc, { verifyCrc: true })], "CRC_MISMATCH");
    const badMagic = Buffer.from(batch);
    badMagic[16] = 1;
    expectCode(() => readBatchHeader(badMagic, 0), "UNSUPPORTED_MAGIC");
    const badCount = Buffer.from(batch);
    badCount.writeInt32BE(5, 57);
    expectCode(() => parseRecordBatch(badCount, 0, { verifyCrc: false }), "CORRUPT_RECORD");
    const negLen = Buffer.from(batch);
    negLen[61] = 0x03; // record length varint = -2
    expectCode(() => parseRecordBatch(negLen, 0, { verifyCrc: false }), "CORRUPT_RECORD");
    expectCode(() => readBatchHeader(batch.subarray(0, 30), 0), "TRUNCATED");
  });

  test("control batches carry COMMIT/ABORT markers", () => {
    const m = buildControlBatch({ type: "COMMIT", coordinatorEpoch: 3, producerId: 7n, producerEpoch: 1 });
    const p = parseRecordBatch(m, 0);
    assert.equal(p.header.attributes & 0x30, 0x30);
    const rec = p.records[0]!;
    assert.deepEqual(parseControlRecord(rec.key, rec.value), { type: "COMMIT", coordinatorEpoch: 3 });
  });
});

describe("compression", () => {
  test("every codec round-trips", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100_000 }), fc.constantFrom(...CODECS), (data, codec) => {
        assert.deepEqual(Buffer.from(decompress(codec, compress(codec, data), 1 << 20)), Buffer.from(data));
      }),
      { numRuns: 60 },
    );
  });

  test("raw snappy (as librdkafka may write) and xerial framing both decode", async () => {
    const snappy = (await import("snappy")).default;
    const data = Buffer.from("hello hello hello snappy ".repeat(100));
    assert.deepEqual(Buffer.from(decompress(2, snappy.compressSync(data), 1 << 20)), data);
    const framed = compress(2, data);
    assert.equal(Buffer.from(framed).subarray(0, 8).toString("latin1"), "\x82SNAPPY\x00");
    assert.deepEqual(Buffer.from(decompress(2, framed, 1 << 20)), data);
  });

  test("lz4 frames from lz4-napi and stored-block frames decode", async () => {
    const lz4 = (await import("lz4-napi")).default;
    const data = Buffer.from("abcabcabcabc lz4 frame ".repeat(5000));
    assert.deepEqual(Buffer.from(decompress(3, lz4.compressFrameSync(data), 1 << 20)), data);
    assert.deepEqual(Buffer.from(decompress(3, storedFrame(data), 1 << 20)), data);
  });

  test("decompression bombs fail with DECOMPRESSION_LIMIT without expanding", async () => {
    const zeros = Buffer.alloc(64 * 1024 * 1024);
    const lz4 = (await import("lz4-napi")).default;
    const snappy = (await import("snappy")).default;
    const bombs: [CompressionCodec, Uint8Array][] = [
      [1, gzipSync(zeros)],
      [4, zstdCompressSync(zeros)],
      [3, lz4.compressFrameSync(zeros)],
      [2, snappy.compressSync(zeros)],
    ];
    for (const [codec, bomb] of bombs) {
      const started = Date.now();
      expectCode(() => decompress(codec, bomb, 1024 * 1024), "DECOMPRESSION_LIMIT");
      assert.ok(Date.now() - started < 2000, `codec ${codec} stopped early`);
    }
  });

  test("garbage fails cleanly", () => {
    for (const codec of [1, 2, 3, 4] as CompressionCodec[]) {
      assert.throws(() => decompress(codec, Buffer.from("definitely not compressed data"), 1 << 20), RecordsError);
    }
  });
});

describe("batch header layout", () => {
  test("fields sit where Kafka puts them (producerEpoch at 51, baseSequence at 53, recordCount at 57)", () => {
    const b = buildRecordBatch({
      records: [{ value: Buffer.from("a") }, { value: Buffer.from("b") }],
      producerId: 0x0102030405060708n,
      producerEpoch: 0x0a0b,
      baseSequence: 0x11223344,
    });
    assert.equal(b.readBigInt64BE(43), 0x0102030405060708n);
    assert.equal(b.readInt16BE(51), 0x0a0b);
    assert.equal(b.readInt32BE(53), 0x11223344);
    assert.equal(b.readInt32BE(57), 2);
    const h = readBatchHeader(b, 0);
    assert.deepEqual(
      [h.producerId, h.producerEpoch, h.baseSequence, h.recordCount],
      [0x0102030405060708n, 0x0a0b, 0x11223344, 2],
    );
  });
});
