// CRC-32C (Castagnoli): native @node-rs/crc32 and the pure fallback.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { crc32c, crc32cIsNative, crc32cPure } from "../../src/records/crc32c.ts";

// RFC 3720 (iSCSI) B.4 and the common check value.
const VECTORS: [string, Buffer, number][] = [
  ['"123456789"', Buffer.from("123456789"), 0xe3069283],
  ["empty", Buffer.alloc(0), 0],
  ["32 zero bytes", Buffer.alloc(32, 0), 0x8a9136aa],
  ["32 0xff bytes", Buffer.alloc(32, 0xff), 0x62a8ab43],
  ["0..31", Buffer.from(Array.from({ length: 32 }, (_, i) => i)), 0x46dd794e],
];

describe("CRC32C", () => {
  test("the native implementation loads here", () => {
    assert.equal(crc32cIsNative, true);
  });

  for (const [name, data, want] of VECTORS) {
    test(`known vector ${name}`, () => {
      assert.equal(crc32c(data), want);
      assert.equal(crc32cPure(data), want);
    });
  }

  test("native and pure agree on random data and views with a byteOffset", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3000 }), fc.nat({ max: 16 }), (bytes, skip) => {
        const view = bytes.subarray(Math.min(skip, bytes.length));
        assert.equal(crc32c(view), crc32cPure(view));
      }),
      { numRuns: 300 },
    );
  });

  test("passing the previous CRC as `initial` continues the checksum", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 500 }), fc.uint8Array({ maxLength: 500 }), (a, b) => {
        const whole = Buffer.concat([a, b]);
        assert.equal(crc32c(b, crc32c(a)), crc32c(whole));
        assert.equal(crc32cPure(b, crc32cPure(a)), crc32cPure(whole));
      }),
      { numRuns: 100 },
    );
  });

  test("results are unsigned", () => {
    assert.ok(crc32c(Buffer.from("123456789")) > 0x7fffffff);
  });
});
