// The codecs behind record batches: round trips (sync and async), standard output for gzip/zstd,
// bounded decompression (bombs stop at the limit without allocating their size), clean failures.
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { gunzipSync, gzipSync, zstdCompressSync, zstdDecompressSync } from "node:zlib";
import fc from "fast-check";
import lz4 from "lz4-napi";
import snappy from "snappy";
import type { CompressionCodec } from "../../src/records/batch-header.ts";
import { compress, compressSync, decompress, decompressSync } from "../../src/records/compression.ts";
import { RecordsError } from "../../src/records/errors.ts";

const CODECS: CompressionCodec[] = [0, 1, 2, 3, 4];
const MiB = 1024 * 1024;

function isCode(code: string): (e: unknown) => boolean {
  return (e: unknown) => e instanceof RecordsError && e.code === code;
}

/** Compressible data: runs of repeated bytes mixed with random ones. */
const dataArb = fc
  .array(fc.oneof(fc.uint8Array({ maxLength: 200 }), fc.tuple(fc.nat({ max: 255 }), fc.nat({ max: 5000 }))), {
    maxLength: 40,
  })
  .map((parts) => Buffer.concat(parts.map((p) => (p instanceof Uint8Array ? p : Buffer.alloc(p[1], p[0])))));

describe("compression round trips", () => {
  test("every codec round-trips (sync)", () => {
    fc.assert(
      fc.property(dataArb, fc.constantFrom(...CODECS), (data, codec) => {
        const packed = compressSync(codec, data);
        assert.deepEqual(Buffer.from(decompressSync(codec, packed, MiB)), data);
      }),
      { numRuns: 100 },
    );
  });

  test("every codec round-trips (async), and async output decodes with the sync decoder", async () => {
    for (const codec of CODECS) {
      const data = Buffer.from("some record bytes, some record bytes ".repeat(3000));
      const packed = await compress(codec, data);
      assert.deepEqual(Buffer.from(await decompress(codec, packed, MiB)), data);
      assert.deepEqual(Buffer.from(decompressSync(codec, packed, MiB)), data);
    }
  });

  test("empty input round-trips for every codec", async () => {
    for (const codec of CODECS) {
      assert.equal(decompressSync(codec, compressSync(codec, new Uint8Array(0)), 0).length, 0);
      assert.equal((await decompress(codec, await compress(codec, new Uint8Array(0)), 0)).length, 0);
    }
  });

  test("gzip and zstd output is a standard stream, and standard streams decode", () => {
    const data = Buffer.from("standard stream ".repeat(500));
    assert.deepEqual(gunzipSync(compressSync(1, data)), data);
    assert.deepEqual(zstdDecompressSync(compressSync(4, data)), data);
    assert.deepEqual(Buffer.from(decompressSync(1, gzipSync(data, { level: 9 }), MiB)), data);
    assert.deepEqual(Buffer.from(decompressSync(4, zstdCompressSync(data), MiB)), data);
  });

  test("concatenated gzip members decode as one stream", () => {
    const a = Buffer.from("first member ");
    const b = Buffer.from("second member");
    assert.deepEqual(
      Buffer.from(decompressSync(1, Buffer.concat([gzipSync(a), gzipSync(b)]), MiB)),
      Buffer.concat([a, b]),
    );
  });

  test("output exactly at the limit is accepted", () => {
    const data = Buffer.alloc(4096, 7);
    for (const codec of CODECS) assert.equal(decompressSync(codec, compressSync(codec, data), 4096).length, 4096);
  });

  test("one byte over the limit is DECOMPRESSION_LIMIT for every compressed codec", async () => {
    const data = Buffer.alloc(4097, 7);
    for (const codec of [1, 2, 3, 4] as CompressionCodec[]) {
      assert.throws(
        () => decompressSync(codec, compressSync(codec, data), 4096),
        isCode("DECOMPRESSION_LIMIT"),
        `codec ${codec}`,
      );
      await assert.rejects(decompress(codec, compressSync(codec, data), 4096), isCode("DECOMPRESSION_LIMIT"));
    }
  });
});

describe("bad compressed input", () => {
  test("garbage is DECOMPRESSION_FAILED for every codec", async () => {
    const garbage = Buffer.from("definitely not compressed data, not even close");
    for (const codec of [1, 2, 3, 4] as CompressionCodec[]) {
      assert.throws(() => decompressSync(codec, garbage, MiB), isCode("DECOMPRESSION_FAILED"), `codec ${codec}`);
      await assert.rejects(decompress(codec, garbage, MiB), isCode("DECOMPRESSION_FAILED"));
    }
  });

  test("a truncated stream is DECOMPRESSION_FAILED for every codec", () => {
    const data = Buffer.from("truncate me please ".repeat(2000));
    for (const codec of [1, 2, 3, 4] as CompressionCodec[]) {
      const packed = compressSync(codec, data);
      assert.throws(
        () => decompressSync(codec, packed.subarray(0, packed.length - 5), MiB),
        isCode("DECOMPRESSION_FAILED"),
        `codec ${codec}`,
      );
    }
  });

  test("codecs 5-7 are UNSUPPORTED_COMPRESSION", async () => {
    for (const codec of [5, 6, 7]) {
      assert.throws(
        () => decompressSync(codec as CompressionCodec, Buffer.alloc(4), MiB),
        isCode("UNSUPPORTED_COMPRESSION"),
      );
      assert.throws(() => compressSync(codec as CompressionCodec, Buffer.alloc(4)), isCode("UNSUPPORTED_COMPRESSION"));
      await assert.rejects(
        decompress(codec as CompressionCodec, Buffer.alloc(4), MiB),
        isCode("UNSUPPORTED_COMPRESSION"),
      );
    }
  });
});

describe("decompression bombs", () => {
  // 64 MiB of zeros in each codec, decompressed with a 1 MiB limit.
  const bombs: [string, CompressionCodec, Uint8Array][] = [];
  before(() => {
    const zeros = Buffer.alloc(64 * MiB);
    bombs.push(
      ["gzip", 1, gzipSync(zeros, { level: 1 })],
      ["zstd", 4, zstdCompressSync(zeros)],
      ["lz4 frame (lz4-napi)", 3, lz4.compressFrameSync(zeros)],
      ["raw snappy", 2, snappy.compressSync(zeros)],
      ["xerial snappy", 2, compressSync(2, zeros)],
    );
    for (const [name, , bomb] of bombs) assert.ok(bomb.length < 4 * MiB, `${name} bomb is small`);
  });

  /** Bytes of ArrayBuffer memory alive after `fn` beyond those alive before it. */
  function arrayBufferGrowth(fn: () => void): number {
    const before = process.memoryUsage().arrayBuffers;
    fn();
    return process.memoryUsage().arrayBuffers - before;
  }

  test("each stops with DECOMPRESSION_LIMIT, quickly and without allocating the bomb's size", () => {
    for (const [name, codec, bomb] of bombs) {
      const started = performance.now();
      const growth = arrayBufferGrowth(() =>
        assert.throws(() => decompressSync(codec, bomb, MiB), isCode("DECOMPRESSION_LIMIT"), name),
      );
      assert.ok(performance.now() - started < 1000, `${name} stopped early`);
      assert.ok(growth < 16 * MiB, `${name} allocated ${growth} bytes`);
    }
  });

  test("the async decoders stop too", async () => {
    for (const [name, codec, bomb] of bombs) {
      await assert.rejects(decompress(codec, bomb, MiB), isCode("DECOMPRESSION_LIMIT"), name);
    }
  });

  test("a 1 GiB length declared up front is refused before any work", () => {
    const rawSnappy = Buffer.from([0x80, 0x80, 0x80, 0x80, 0x04, 0x00]); // uvarint 2^30, then nothing
    assert.throws(() => decompressSync(2, rawSnappy, MiB), isCode("DECOMPRESSION_LIMIT"));
    const framed = Buffer.concat([
      Buffer.from("82534e41505059000000000100000001", "hex"),
      Buffer.from([0, 0, 0, 6]),
      rawSnappy,
    ]);
    assert.throws(() => decompressSync(2, framed, MiB), isCode("DECOMPRESSION_LIMIT"));
  });
});
