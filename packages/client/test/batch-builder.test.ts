// The producer's incremental record batch builder: what it builds parses back exactly (records,
// header fields, CRC) and is byte-identical to the protocol package's reference builder.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { readBatchHeader, verifyBatchCrc } from "@sluice/protocol/records/batch-header.ts";
import { buildRecordBatch, parseRecordBatch } from "@sluice/protocol/records/record-batch.ts";
import fc from "fast-check";
import { byteLengthOf, type EncodedHeader, RecordBatchBuilder, recordBytesMax } from "../src/batch-builder.ts";

interface Input {
  key: Uint8Array | string | null;
  value: Uint8Array | string | null;
  headers: { key: string; value: Uint8Array | null }[];
  timestampMs: number;
}

const bytesOrString = fc.oneof(
  fc.constant(null),
  fc.uint8Array({ maxLength: 300 }),
  fc.string({ maxLength: 200, unit: "grapheme" }),
);
const input: fc.Arbitrary<Input> = fc.record({
  key: bytesOrString,
  value: bytesOrString,
  headers: fc.array(
    fc.record({ key: fc.string({ maxLength: 20 }), value: fc.option(fc.uint8Array({ maxLength: 40 })) }),
    { maxLength: 3 },
  ),
  // Around now, with deltas of both signs and some far away (varlongs past 32 bits).
  timestampMs: fc.oneof(
    fc.integer({ min: 1_700_000_000_000, max: 1_700_000_100_000 }),
    fc.integer({ min: -1, max: 2 ** 45 }),
  ),
});

const utf8 = (v: Uint8Array | string | null): Uint8Array | null =>
  v === null ? null : typeof v === "string" ? new TextEncoder().encode(v) : v;

function encodeHeaders(hs: Input["headers"]): EncodedHeader[] | null {
  return hs.length === 0 ? null : hs.map((h) => ({ key: new TextEncoder().encode(h.key), value: h.value }));
}

function build(records: Input[], codec: 0 | 1 | 2 | 3 | 4 = 0): Buffer {
  const first = records[0]!;
  const b = new RecordBatchBuilder(
    64, // small, so that the buffer grows while records are appended
    recordBytesMax(byteLengthOf(first.key), byteLengthOf(first.value), encodeHeaders(first.headers)),
  );
  for (const r of records)
    b.append(r.key, byteLengthOf(r.key), r.value, byteLengthOf(r.value), encodeHeaders(r.headers), r.timestampMs);
  return b.build({ compression: codec, producerId: 42n, producerEpoch: 3, baseSequence: 1000, transactional: true });
}

describe("record batch builder", () => {
  test("batches of many records parse back exactly, CRC and header fields included", () => {
    fc.assert(
      fc.property(fc.array(input, { minLength: 1, maxLength: 60 }), (records) => {
        const buf = build(records);
        assert.ok(verifyBatchCrc(buf, 0), "CRC");
        const { header, records: parsed } = parseRecordBatch(buf);
        assert.equal(header.recordCount, records.length);
        assert.equal(header.lastOffsetDelta, records.length - 1);
        assert.equal(header.producerId, 42n);
        assert.equal(header.producerEpoch, 3);
        assert.equal(header.baseSequence, 1000);
        assert.equal(header.baseTimestamp, BigInt(records[0]!.timestampMs));
        assert.equal(header.maxTimestamp, BigInt(Math.max(-1, ...records.map((r) => r.timestampMs))));
        assert.equal(buf.length, header.batchLength + 12);
        parsed.forEach((p, i) => {
          const r = records[i]!;
          assert.equal(p.offset, BigInt(i));
          assert.equal(p.timestamp, BigInt(r.timestampMs));
          assert.deepEqual(
            p.key === null ? null : Buffer.from(p.key),
            r.key === null ? null : Buffer.from(utf8(r.key)!),
          );
          assert.deepEqual(
            p.value === null ? null : Buffer.from(p.value),
            r.value === null ? null : Buffer.from(utf8(r.value)!),
          );
          assert.deepEqual(
            p.headers.map((h) => [h.key, h.value === null ? null : Buffer.from(h.value)]),
            r.headers.map((h) => [h.key, h.value === null ? null : Buffer.from(h.value)]),
          );
        });
      }),
      { numRuns: 200 },
    );
  });

  test("the bytes equal the protocol package's reference builder", () => {
    fc.assert(
      fc.property(fc.array(input, { minLength: 1, maxLength: 30 }), (records) => {
        const reference = buildRecordBatch({
          records: records.map((r) => ({
            key: utf8(r.key),
            value: utf8(r.value),
            headers: r.headers,
            timestamp: BigInt(r.timestampMs),
          })),
          producerId: 42n,
          producerEpoch: 3,
          baseSequence: 1000,
          transactional: true,
        });
        assert.deepEqual(build(records), reference);
      }),
      { numRuns: 200 },
    );
  });

  test("recordBytesMax is an upper bound of each record's encoded size", () => {
    fc.assert(
      fc.property(fc.array(input, { minLength: 1, maxLength: 40 }), (records) => {
        const bound = records.reduce(
          (n, r) => n + recordBytesMax(byteLengthOf(r.key), byteLengthOf(r.value), encodeHeaders(r.headers)),
          61,
        );
        assert.ok(build(records).length <= bound);
      }),
    );
  });

  test("compressed batches hold the same records", () => {
    const records: Input[] = Array.from({ length: 500 }, (_, i) => ({
      key: `k${i % 7}`,
      value: `value ${i} `.repeat(10),
      headers: i % 3 === 0 ? [{ key: "h", value: new Uint8Array([i & 255]) }] : [],
      timestampMs: 1_700_000_000_000 + i,
    }));
    const plainBytes = build(records);
    const plain = parseRecordBatch(plainBytes).records;
    for (const codec of [1, 2, 3, 4] as const) {
      const buf = build(records, codec);
      assert.equal(readBatchHeader(buf, 0).attributes & 7, codec);
      assert.ok(buf.length < plainBytes.length / 2, `codec ${codec} compresses`);
      assert.deepEqual(parseRecordBatch(buf).records, plain, `codec ${codec}`);
    }
  });

  test("building again (new producer id) changes the header only and leaves earlier bytes alone", () => {
    const b = new RecordBatchBuilder(1024, 64);
    for (let i = 0; i < 100; i++) b.append(null, -1, `v${i}`, byteLengthOf(`v${i}`), null, 1000 + i);
    const first = b.build({ compression: 0, producerId: 1n, producerEpoch: 0, baseSequence: 0, transactional: false });
    const copy = Buffer.from(first);
    const second = b.build({ compression: 0, producerId: 2n, producerEpoch: 0, baseSequence: 7, transactional: false });
    assert.deepEqual(first, copy, "the first build's bytes are untouched");
    assert.equal(readBatchHeader(second, 0).producerId, 2n);
    assert.equal(readBatchHeader(second, 0).baseSequence, 7);
    assert.ok(verifyBatchCrc(second, 0));
    assert.deepEqual(parseRecordBatch(second).records, parseRecordBatch(first).records);
  });
});
