// Varints of the record format: zig-zag varints (int32), varlongs (int64), unsigned varints.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { RecordsError } from "../../src/records/errors.ts";
import {
  uvarintSize,
  VarintReader,
  varintSize,
  varlongSize,
  writeUvarint,
  writeVarint,
  writeVarlong,
} from "../../src/records/varint.ts";

const INT32_EDGES = [0, 1, -1, 63, -64, 64, -65, 2 ** 31 - 1, -(2 ** 31)];
const INT64_EDGES = [
  0n,
  1n,
  -1n,
  2n ** 31n - 1n,
  -(2n ** 31n),
  2n ** 63n - 1n,
  -(2n ** 63n),
  0x3fffffffn,
  -0x40000001n,
];

function rejectsWith(fn: () => unknown, code: string): void {
  assert.throws(fn, (e: unknown) => e instanceof RecordsError && e.code === code);
}

function encodeVarint(v: number): Buffer {
  const buf = Buffer.alloc(5);
  return buf.subarray(0, writeVarint(buf, 0, v));
}

describe("varints", () => {
  test("zig-zag varints encode as Kafka's ByteUtils does", () => {
    assert.equal(encodeVarint(0).toString("hex"), "00");
    assert.equal(encodeVarint(-1).toString("hex"), "01");
    assert.equal(encodeVarint(1).toString("hex"), "02");
    assert.equal(encodeVarint(63).toString("hex"), "7e");
    assert.equal(encodeVarint(-64).toString("hex"), "7f");
    assert.equal(encodeVarint(64).toString("hex"), "8001");
    assert.equal(encodeVarint(2 ** 31 - 1).toString("hex"), "feffffff0f");
    assert.equal(encodeVarint(-(2 ** 31)).toString("hex"), "ffffffff0f");
  });

  test("signed varints round-trip, edge values included", () => {
    const check = (v: number): void => {
      const buf = Buffer.alloc(5);
      const end = writeVarint(buf, 0, v);
      assert.equal(end, varintSize(v));
      const r = new VarintReader(buf, 0, end);
      assert.equal(r.varint(), v);
      assert.equal(r.remaining, 0);
    };
    for (const v of INT32_EDGES) check(v);
    fc.assert(fc.property(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), check), { numRuns: 500 });
  });

  test("varlongs round-trip, int64 extremes included", () => {
    const check = (v: bigint): void => {
      const buf = Buffer.alloc(10);
      const end = writeVarlong(buf, 0, v);
      assert.equal(end, varlongSize(v));
      const r = new VarintReader(buf, 0, end);
      assert.equal(r.varlong(), v);
      assert.equal(r.remaining, 0);
    };
    for (const v of INT64_EDGES) check(v);
    assert.equal(varlongSize(-(2n ** 63n)), 10);
    fc.assert(fc.property(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), check), { numRuns: 500 });
  });

  test("unsigned varints round-trip over the whole uint32 range", () => {
    const check = (v: number): void => {
      const buf = Buffer.alloc(5);
      const end = writeUvarint(buf, 0, v);
      assert.equal(end, uvarintSize(v));
      assert.equal(new VarintReader(buf, 0, end).uvarint(), v);
    };
    for (const v of [0, 127, 128, 16383, 16384, 0xffffffff]) check(v);
    fc.assert(fc.property(fc.integer({ min: 0, max: 0xffffffff }), check), { numRuns: 500 });
  });

  test("a sequence of mixed varints reads back in order", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(
            fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
            fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
          ),
        ),
        (pairs) => {
          const buf = Buffer.alloc(pairs.length * 15);
          let p = 0;
          for (const [i, l] of pairs) p = writeVarlong(buf, writeVarint(buf, p, i), l);
          const r = new VarintReader(buf, 0, p);
          for (const [i, l] of pairs) {
            assert.equal(r.varint(), i);
            assert.equal(r.varlong(), l);
          }
          assert.equal(r.remaining, 0);
        },
      ),
      { numRuns: 100 },
    );
  });

  test("a varint cut off by the end of its window is TRUNCATED", () => {
    rejectsWith(() => new VarintReader(Buffer.from([0x80, 0x80])).varint(), "TRUNCATED");
    rejectsWith(() => new VarintReader(Buffer.from([0x80, 0x80, 0x80])).varlong(), "TRUNCATED");
    rejectsWith(() => new VarintReader(Buffer.from([0x80, 0x01]), 0, 1).uvarint(), "TRUNCATED");
    rejectsWith(() => new VarintReader(Buffer.alloc(0)).varint(), "TRUNCATED");
  });

  test("over-long encodings are CORRUPT_RECORD", () => {
    rejectsWith(() => new VarintReader(Buffer.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x00])).varint(), "CORRUPT_RECORD");
    rejectsWith(() => new VarintReader(Buffer.alloc(11, 0x80)).varlong(), "CORRUPT_RECORD");
    rejectsWith(() => new VarintReader(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x1f])).uvarint(), "CORRUPT_RECORD");
  });

  test("a field longer than the bytes left is TRUNCATED, a negative one CORRUPT_RECORD", () => {
    const r = new VarintReader(Buffer.alloc(10), 2, 6);
    rejectsWith(() => r.bytes(5), "TRUNCATED");
    rejectsWith(() => r.bytes(-1), "CORRUPT_RECORD");
    assert.equal(r.bytes(4).length, 4);
  });

  test("writers refuse to run past the end of the buffer", () => {
    rejectsWith(() => writeVarint(Buffer.alloc(4), 0, 2 ** 31 - 1), "BUFFER_TOO_SMALL");
    rejectsWith(() => writeVarlong(Buffer.alloc(9), 0, -(2n ** 63n)), "BUFFER_TOO_SMALL");
    rejectsWith(() => writeUvarint(Buffer.alloc(2), 1, 128), "BUFFER_TOO_SMALL");
    assert.equal(writeVarint(Buffer.alloc(2), 1, 5), 2);
  });
});
