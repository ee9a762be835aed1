// LZ4 frames: interop with lz4-napi (lz4_flex) and the reference lz4 CLI, every frame option,
// integrity checks, and bounded output.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import lz4 from "lz4-napi";
import { RecordsError } from "../../src/records/errors.ts";
import { lz4FrameCompress, lz4FrameDecompress, storedFrame } from "../../src/records/lz4.ts";
import { xxh32 } from "../../src/records/xxhash32.ts";

const MiB = 1024 * 1024;

function isCode(code: string): (e: unknown) => boolean {
  return (e: unknown) => e instanceof RecordsError && e.code === code;
}

/** The text the fixtures hold (211830 bytes), made by the same loop as when they were generated. */
function fixtureText(): Buffer {
  let s = "";
  for (let i = 0; i < 3000; i++) s += `record ${i} of the lz4 interop fixture: ${"abcdefghij".repeat(i % 7)}\n`;
  return Buffer.from(s);
}

function fixture(name: string): Buffer {
  return readFileSync(new URL(`fixtures/${name}`, import.meta.url));
}

/** A frame header with the given FLG and BD bytes, and its header checksum. */
function frameHeader(flg: number, bd: number, contentSize?: bigint): Buffer {
  const descriptor = Buffer.alloc(contentSize === undefined ? 2 : 10);
  descriptor[0] = flg;
  descriptor[1] = bd;
  if (contentSize !== undefined) descriptor.writeBigUInt64LE(contentSize, 2);
  const magic = Buffer.from([0x04, 0x22, 0x4d, 0x18]);
  return Buffer.concat([magic, descriptor, Buffer.from([(xxh32(descriptor, 0) >>> 8) & 0xff])]);
}

function u32le(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0, 0);
  return b;
}

const hasLz4Cli = spawnSync("lz4", ["--version"]).status === 0;

describe("xxHash32", () => {
  test("known vectors", () => {
    assert.equal(xxh32(Buffer.from(""), 0), 0x02cc5d05);
    assert.equal(xxh32(Buffer.from("a"), 0), 0x550d7456);
    assert.equal(xxh32(Buffer.from("abc"), 0), 0x32d153ff);
    assert.equal(xxh32(Buffer.from("Nobody inspects the spammish repetition"), 0), 0xe2293b2f);
  });
});

describe("lz4 frames", () => {
  const text = fixtureText();

  test("frames from lz4-napi decode, with and without block and content checksums", () => {
    const data = Buffer.from("abcabcabcabc lz4 frame ".repeat(10_000));
    for (const options of [undefined, { contentChecksum: true, blockChecksums: true }]) {
      const frame = lz4.compressFrameSync(data, options);
      assert.deepEqual(Buffer.from(lz4FrameDecompress(frame, MiB)), data);
    }
  });

  test("our frames are standard: version 01, independent blocks Java can read, correct header checksum", () => {
    const frame = Buffer.from(lz4FrameCompress(text));
    assert.equal(frame.readUInt32LE(0), 0x184d2204);
    assert.equal(frame[4]! & 0xe3, 0x60, "version 01, independent blocks, no dictionary");
    assert.ok([0x40, 0x50, 0x60, 0x70].includes(frame[5]!), "64 KiB-4 MiB blocks, reserved bits clear");
    const descriptorEnd = frame[4]! & 0x08 ? 14 : 6;
    assert.equal(frame[descriptorEnd], (xxh32(frame.subarray(4, descriptorEnd), 0) >>> 8) & 0xff);
    assert.deepEqual(Buffer.from(lz4.decompressFrameSync(frame)), text);
  });

  test("the reference lz4 CLI decodes our frames", { skip: !hasLz4Cli && "no lz4 CLI" }, () => {
    for (const frame of [lz4FrameCompress(text), storedFrame(text)]) {
      const r = spawnSync("lz4", ["-d", "-c"], { input: frame, maxBuffer: 4 * MiB });
      assert.equal(r.status, 0, String(r.stderr));
      assert.deepEqual(r.stdout, text);
    }
  });

  // Made once with the reference CLI (lz4 v1.9.4) from fixtureText():
  //   lz4 -B4 -BD --content-size    linked blocks, content size, content checksum
  //   lz4 -B4 -BX --no-frame-crc     independent blocks with block checksums
  //   lz4 -B7                        independent 256 KiB blocks, content checksum
  for (const name of ["linked-content-size.lz4", "block-checksum.lz4", "content-checksum.lz4"]) {
    test(`a frame from the lz4 CLI decodes: ${name}`, () => {
      assert.deepEqual(Buffer.from(lz4FrameDecompress(fixture(name), MiB)), text);
    });
  }

  test("stored (uncompressed) blocks decode", () => {
    assert.deepEqual(Buffer.from(lz4FrameDecompress(storedFrame(text), MiB)), text);
  });

  test("a linked block may copy from the previous block", () => {
    const first = Buffer.from("0123456789abcdef0123");
    // Block 2: no literals, a 16-byte match 20 bytes back (into block 1), then one literal.
    const second = Buffer.from([0x0c, 20, 0, 0x10, 0x21]);
    const frame = Buffer.concat([
      frameHeader(0x40, 0x40),
      u32le(first.length | 0x80000000),
      first,
      u32le(second.length),
      second,
      u32le(0),
    ]);
    assert.equal(Buffer.from(lz4FrameDecompress(frame, MiB)).toString(), "0123456789abcdef01230123456789abcdef!");
    // The same block in an independent frame has nothing to copy from.
    const independent = Buffer.concat([frameHeader(0x60, 0x40), frame.subarray(7)]);
    assert.throws(() => lz4FrameDecompress(independent, MiB), isCode("DECOMPRESSION_FAILED"));
  });

  test("a wrong header checksum is DECOMPRESSION_FAILED", () => {
    const frame = Buffer.from(lz4FrameCompress(text));
    frame[6]! ^= 1;
    assert.throws(() => lz4FrameDecompress(frame, MiB), isCode("DECOMPRESSION_FAILED"));
  });

  test("a wrong block checksum is DECOMPRESSION_FAILED", () => {
    const frame = Buffer.from(fixture("block-checksum.lz4"));
    frame[20]! ^= 1;
    assert.throws(() => lz4FrameDecompress(frame, MiB), /block checksum/);
  });

  test("a wrong content checksum is DECOMPRESSION_FAILED", () => {
    const frame = Buffer.from(fixture("content-checksum.lz4"));
    frame[frame.length - 1]! ^= 1;
    assert.throws(() => lz4FrameDecompress(frame, MiB), /content checksum/);
  });

  test("content that differs from the declared content size is DECOMPRESSION_FAILED", () => {
    const data = Buffer.from("twelve bytes");
    const frame = Buffer.concat([frameHeader(0x68, 0x40, 13n), u32le(data.length | 0x80000000), data, u32le(0)]);
    assert.throws(() => lz4FrameDecompress(frame, MiB), /declares 13 bytes/);
  });

  test("reserved bits, dictionaries, bad block sizes and other versions are refused", () => {
    for (const [flg, bd] of [
      [0x62, 0x40],
      [0x61, 0x40],
      [0xa0, 0x40],
      [0x60, 0x30],
      [0x60, 0xc0],
      [0x60, 0x41],
    ] as const) {
      const frame = Buffer.concat([frameHeader(flg, bd), u32le(0)]);
      assert.throws(() => lz4FrameDecompress(frame, MiB), isCode("DECOMPRESSION_FAILED"), `FLG ${flg} BD ${bd}`);
    }
  });

  test("a block larger than the frame's block maximum is refused", () => {
    const frame = Buffer.concat([frameHeader(0x60, 0x40), u32le(65537 | 0x80000000), Buffer.alloc(65537), u32le(0)]);
    assert.throws(() => lz4FrameDecompress(frame, MiB), isCode("DECOMPRESSION_FAILED"));
  });

  test("a block that expands beyond the block maximum is refused", () => {
    // One literal, then a 70000-byte match at offset 1: 64 KiB blocks may not produce that.
    const ext = Buffer.alloc(Math.floor((70000 - 19) / 255), 255);
    const block = Buffer.concat([Buffer.from([0x1f, 0x41, 1, 0]), ext, Buffer.from([(70000 - 19) % 255, 0x00])]);
    const frame = Buffer.concat([frameHeader(0x60, 0x40), u32le(block.length), block, u32le(0)]);
    assert.throws(() => lz4FrameDecompress(frame, MiB), isCode("DECOMPRESSION_FAILED"));
    assert.throws(() => lz4FrameDecompress(frame, 1000), isCode("DECOMPRESSION_LIMIT"));
  });

  test("a declared content size over the limit is refused before any block is read", () => {
    const frame = Buffer.concat([frameHeader(0x68, 0x40, 1n << 30n), u32le(0)]);
    assert.throws(() => lz4FrameDecompress(frame, MiB), isCode("DECOMPRESSION_LIMIT"));
  });

  test("many tiny blocks in a 4 MiB-block frame do not each hold a block-sized buffer", () => {
    const tiny = Buffer.concat([u32le(2), Buffer.from([0x10, 0x41])]);
    const frame = Buffer.concat([frameHeader(0x60, 0x70), ...Array.from({ length: 2000 }, () => tiny), u32le(0)]);
    const before = process.memoryUsage().arrayBuffers;
    const out = lz4FrameDecompress(frame, 64 * MiB);
    const growth = process.memoryUsage().arrayBuffers - before;
    assert.equal(out.length, 2000);
    assert.ok(growth < 16 * MiB, `grew by ${growth} bytes`);
  });

  test("truncated frames are DECOMPRESSION_FAILED", () => {
    const frame = lz4FrameCompress(text);
    for (const cut of [1, 4, 100, frame.length - 8]) {
      assert.throws(
        () => lz4FrameDecompress(frame.subarray(0, frame.length - cut), MiB),
        isCode("DECOMPRESSION_FAILED"),
      );
    }
  });
});
