// Message formats v0/v1: reading Produce message sets (every codec a legacy wrapper may have, CRCs,
// malformed input) and converting stored v2 batches down for old Fetch versions.

import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { RecordsError } from "../src/records/errors.ts";
import {
  crc32Ieee,
  crc32IeeePure,
  downConvertBatches,
  encodeMessage,
  encodeWrapperMessage,
  isLegacyMessageSet,
  readLegacyMessageSet,
  readLegacyMessages,
} from "../src/records/legacy.ts";
import { buildControlBatch, buildRecordBatch } from "../src/records/record-batch.ts";

const b = (s: string) => Buffer.from(s);
const text = (x: Uint8Array | null | undefined) => (x == null ? null : Buffer.from(x).toString());
const code = (c: string) => (e: unknown) => e instanceof RecordsError && e.code === c;

test("CRC-32/IEEE matches the standard check value; the table fallback matches zlib's", () => {
  assert.equal(crc32Ieee(b("123456789")), 0xcbf43926);
  assert.equal(crc32IeeePure(b("123456789")), 0xcbf43926);
  fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (d) => crc32IeeePure(d) === crc32Ieee(d)));
});

test("v0 and v1 message sets are read with keys, nulls and (v1) timestamps; v2 batches are not legacy", () => {
  const v0 = Buffer.concat([encodeMessage(5n, 0, 0, -1n, b("k"), b("v")), encodeMessage(6n, 0, 0, -1n, null, null)]);
  assert.ok(isLegacyMessageSet(v0));
  assert.ok(!isLegacyMessageSet(buildRecordBatch({ records: [{ value: b("x") }] })));
  const r0 = readLegacyMessageSet(v0);
  assert.deepEqual(
    [r0.magic, r0.compression, r0.records.map((r) => [text(r.key), text(r.value), r.timestamp])],
    [
      0,
      0,
      [
        ["k", "v", -1n],
        [null, null, -1n],
      ],
    ],
  );
  const r1 = readLegacyMessageSet(encodeMessage(0n, 1, 0, 1234n, null, b("t")));
  assert.deepEqual([r1.magic, r1.records[0]!.timestamp], [1, 1234n]);
});

for (const [codec, name] of [
  [1, "gzip"],
  [2, "snappy"],
  [3, "lz4"],
] as const) {
  test(`a v1 ${name} wrapper is unpacked; its inner offsets are relative to the wrapper's`, () => {
    const inner = Buffer.concat(
      [0, 1, 2].map((i) => encodeMessage(BigInt(i), 1, 0, 100n + BigInt(i), null, b(`m${i}`))),
    );
    const set = encodeWrapperMessage(41n, 1, codec, 102n, inner);
    const r = readLegacyMessageSet(set);
    assert.equal(r.compression, codec);
    assert.deepEqual(
      r.records.map((x) => text(x.value)),
      ["m0", "m1", "m2"],
    );
    assert.deepEqual(
      readLegacyMessages(set).map((m) => [m.offset, text(m.value), m.timestamp]),
      [
        [39n, "m0", 100n],
        [40n, "m1", 101n],
        [41n, "m2", 102n],
      ],
    );
  });
}

test("malformed message sets are refused with a RecordsError, never read wrong", () => {
  const good = encodeMessage(0n, 1, 0, 1n, null, b("payload"));
  const flipped = Buffer.from(good);
  flipped[flipped.length - 1]! ^= 1;
  assert.throws(() => readLegacyMessageSet(flipped), code("CRC_MISMATCH"));
  assert.throws(() => readLegacyMessageSet(good.subarray(0, good.length - 2)), code("TRUNCATED"));
  assert.throws(() => readLegacyMessageSet(good.subarray(0, 8)), code("TRUNCATED"));
  const mixed = Buffer.concat([good, encodeMessage(1n, 0, 0, -1n, null, b("v0"))]);
  assert.throws(() => readLegacyMessageSet(mixed), code("CORRUPT_RECORD"));
  const nested = encodeWrapperMessage(0n, 1, 1, 1n, encodeWrapperMessage(0n, 1, 1, 1n, good));
  assert.throws(() => readLegacyMessageSet(nested), code("CORRUPT_RECORD"));
  // A key length that runs past the message (the CRC made valid so the length check is what fails).
  const overrun = Buffer.from(encodeMessage(0n, 0, 0, -1n, b("key"), b("v")));
  overrun.writeInt32BE(1000, 12 + 6);
  overrun.writeUInt32BE(crc32Ieee(overrun.subarray(16)), 12);
  assert.throws(() => readLegacyMessageSet(overrun), code("CORRUPT_RECORD"));
  assert.throws(() => readLegacyMessageSet(encodeWrapperMessage(0n, 1, 1, 1n, b("not a message set"))), RecordsError);
});

test("down-conversion keeps offsets and data, drops control batches and a cut-off last batch", () => {
  const a = buildRecordBatch({
    baseOffset: 10n,
    records: [
      { key: b("a"), value: b("1"), timestamp: 500n },
      { value: null, timestamp: 501n },
    ],
    compression: 1,
  });
  const marker = buildControlBatch({ type: "COMMIT", coordinatorEpoch: 0, producerId: 1n, producerEpoch: 0 });
  marker.writeBigInt64BE(12n, 0);
  const c = buildRecordBatch({ baseOffset: 13n, records: [{ value: b("after") }] });
  const stored = Buffer.concat([a, marker, c]);
  for (const magic of [0, 1] as const) {
    const out = downConvertBatches(Buffer.concat([stored, c.subarray(0, 20)]), magic);
    assert.deepEqual(
      readLegacyMessages(out).map((m) => [m.offset, m.magic, text(m.key), text(m.value), m.timestamp]),
      [
        [10n, magic, "a", "1", magic === 1 ? 500n : -1n],
        [11n, magic, null, null, magic === 1 ? 501n : -1n],
        [13n, magic, null, "after", magic === 1 ? c.readBigInt64BE(27) : -1n],
      ],
    );
  }
  assert.equal(downConvertBatches(new Uint8Array(0), 1).length, 0);
});

test("property: v2 batches converted down read back as the same records", () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          key: fc.option(fc.uint8Array({ maxLength: 20 }), { nil: null }),
          value: fc.option(fc.uint8Array({ maxLength: 50 }), { nil: null }),
          timestamp: fc.bigInt({ min: 0n, max: 1n << 41n }),
        }),
        { minLength: 1, maxLength: 20 },
      ),
      fc.constantFrom(0, 1, 2, 3),
      (records, compression) => {
        const batch = buildRecordBatch({ baseOffset: 7n, records, compression: compression as 0 | 1 | 2 | 3 });
        const back = readLegacyMessages(downConvertBatches(batch, 1));
        assert.deepEqual(
          back.map((m) => [m.offset, text(m.key), text(m.value), m.timestamp]),
          records.map((r, i) => [7n + BigInt(i), text(r.key), text(r.value), r.timestamp]),
        );
      },
    ),
    { numRuns: 200 },
  );
});

test("fuzz: corrupted legacy message sets either read or fail with a RecordsError, never anything else", () => {
  const inner = Buffer.concat([0, 1].map((i) => encodeMessage(BigInt(i), 1, 0, 5n, b(`k${i}`), b(`value-${i}`))));
  const seeds = [
    Buffer.concat([encodeMessage(0n, 0, 0, -1n, b("a"), b("b")), encodeMessage(1n, 0, 0, -1n, null, b("c"))]),
    encodeWrapperMessage(1n, 1, 1, 5n, inner),
    encodeWrapperMessage(1n, 1, 2, 5n, inner),
    encodeWrapperMessage(1n, 1, 3, 5n, inner),
  ];
  fc.assert(
    fc.property(
      fc.constantFrom(...seeds),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }),
      fc.nat(),
      (seed, flips, cut) => {
        const bytes = Buffer.from(seed);
        for (const [at, value] of flips) bytes[at % bytes.length] = value;
        // Also with the first message's CRC made right again, so the checks past the CRC are reached.
        const recrc = Buffer.from(bytes);
        const size = recrc.length >= 16 ? recrc.readInt32BE(8) : -1;
        if (size >= 4 && 12 + size <= recrc.length) recrc.writeUInt32BE(crc32Ieee(recrc.subarray(16, 12 + size)), 12);
        for (const input of [bytes, recrc, bytes.subarray(0, cut % (bytes.length + 1))]) {
          try {
            readLegacyMessageSet(input, 1 << 20);
            readLegacyMessages(input, 1 << 20);
          } catch (e) {
            assert.ok(e instanceof RecordsError, `unexpected ${(e as Error)?.name}: ${(e as Error)?.message}`);
          }
        }
      },
    ),
    { numRuns: 2000 },
  );
});
