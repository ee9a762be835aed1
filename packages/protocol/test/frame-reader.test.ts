// FrameReader: the same frames however the byte stream is cut into reads (split size prefixes,
// frames spanning many reads, several frames per read), through the steered path (reads into the
// buffers it picks) and the fallback path (fed chunks); large frames grow their buffer as bytes
// arrive instead of trusting a size prefix; whole frames go where `allocate` says; a size out of
// bounds stops the reader.

import assert from "node:assert/strict";
import { test } from "node:test";
import { FrameReader } from "../src/frame-reader.ts";

/** A frame: size prefix, then an int16 api key and `bytes - 2` bytes of a pattern. */
function frame(apiKey: number, bytes: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(4 + bytes);
  b.writeInt32BE(bytes, 0);
  if (bytes >= 2) b.writeInt16BE(apiKey, 4);
  for (let i = 6; i < b.length; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

/** A deterministic pseudo-random sequence (read sizes). */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

/** Delivers `stream` as a socket would: each read fills at most the target, up to `readMax` bytes. */
function deliverSteered(r: FrameReader, stream: Buffer, readMax: () => number): void {
  let off = 0;
  while (off < stream.length) {
    const target = r.nextTarget();
    const n = Math.min(target.length, stream.length - off, Math.max(1, readMax()));
    stream.copy(target, 0, off, off + n);
    r.onRead(n, target);
    off += n;
  }
}

function deliverFed(r: FrameReader, stream: Buffer, chunkMax: () => number): void {
  let off = 0;
  while (off < stream.length) {
    const n = Math.min(stream.length - off, Math.max(1, chunkMax()));
    r.feed(stream.subarray(off, off + n));
    off += n;
  }
}

function collect(): { reader: FrameReader; frames: Buffer[]; bad: number[] } {
  const frames: Buffer[] = [];
  const bad: number[] = [];
  const reader = new FrameReader({
    frameBytesMax: 8 * 1024 * 1024,
    onFrame: (f) => frames.push(Buffer.from(f)),
    onBadSize: (s) => bad.push(s),
  });
  return { reader, frames, bad };
}

const sizes = [0, 1, 2, 3, 10, 200, 4095, 70_000, 100, 1_500_000, 5, 3_000_000, 64 * 1024, 17];

for (const path of ["steered", "fed"] as const) {
  for (const [name, max] of [
    ["1-byte reads", () => () => 1],
    ["random reads up to 100 KiB", (g: () => number) => () => Math.floor(g() * 100 * 1024)],
    ["64 KiB reads", () => () => 64 * 1024],
  ] as const) {
    test(`${path}: every frame arrives whole and in order with ${name}`, () => {
      const input = sizes.map((s, i) => frame(i % 2 === 0 ? 0 : 3, s, i));
      const stream = Buffer.concat(input);
      const { reader, frames, bad } = collect();
      const g = rng(7);
      const readMax = max(g);
      // 1-byte reads of 4.7 MB take a while: only the small frames then.
      const data = name === "1-byte reads" ? Buffer.concat(input.filter((f) => f.length < 100_000)) : stream;
      const want = name === "1-byte reads" ? input.filter((f) => f.length < 100_000) : input;
      if (path === "steered") deliverSteered(reader, data, readMax);
      else deliverFed(reader, data, readMax);
      assert.deepEqual(bad, []);
      assert.equal(frames.length, want.length);
      for (let i = 0; i < want.length; i++) assert.ok(frames[i]!.equals(want[i]!.subarray(4)), `frame ${i}`);
    });
  }
}

test("a large frame's buffer grows with the bytes received, not with its size prefix", () => {
  const { reader } = collect();
  const head = Buffer.alloc(6);
  head.writeInt32BE(8 * 1024 * 1024, 0); // 8 MiB announced
  head.writeInt16BE(3, 4);
  const t = reader.nextTarget();
  head.copy(t);
  reader.onRead(6, t);
  const next = reader.nextTarget();
  assert.ok(next.length <= 1024 * 1024, `the first buffer is ${next.length} bytes`);
});

test("whole frames go into the buffers `allocate` gives, which sees the frame's first bytes", () => {
  const frames: Buffer[] = [];
  const heads: number[] = [];
  const mine = new Set<ArrayBufferLike>();
  const reader = new FrameReader({
    frameBytesMax: 1 << 24,
    allocate: (size, head) => {
      heads.push((head[0]! << 8) | head[1]!);
      const b = Buffer.allocUnsafeSlow(size);
      mine.add(b.buffer);
      return b;
    },
    onFrame: (f) => frames.push(f),
    onBadSize: () => {},
  });
  deliverSteered(reader, Buffer.concat([frame(0, 200_000, 1), frame(3, 200_000, 2), frame(7, 100, 3)]), () => 65536);
  assert.equal(frames.length, 3);
  assert.deepEqual(heads, [0, 3, 7]);
  for (const f of frames) assert.ok(mine.has(f.buffer));
});

test("a frame below frameBytesMin is a bad size", () => {
  const bad: number[] = [];
  const reader = new FrameReader({
    frameBytesMax: 100,
    frameBytesMin: 4,
    onFrame: () => {},
    onBadSize: (s) => bad.push(s),
  });
  deliverFed(reader, Buffer.from([0, 0, 0, 2, 1, 1]), () => 6);
  assert.deepEqual(bad, [2]);
});

test("a size prefix out of bounds is reported once and nothing after it is read", () => {
  const { reader, frames, bad } = collect();
  const b = Buffer.alloc(4);
  b.writeInt32BE(-5, 0);
  deliverSteered(reader, Buffer.concat([frame(3, 10, 1), b, frame(3, 10, 2)]), () => 7);
  assert.equal(frames.length, 1);
  assert.deepEqual(bad, [-5]);
  const big = collect();
  const c = Buffer.alloc(4);
  c.writeInt32BE(8 * 1024 * 1024 + 1, 0);
  deliverFed(big.reader, c, () => 2);
  assert.deepEqual(big.bad, [8 * 1024 * 1024 + 1]);
});
