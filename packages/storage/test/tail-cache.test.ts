// The tail cache against the log's disk reads: after many appends (some holding several batches)
// and evictions, every read it serves is byte for byte what the disk read returns.

import assert from "node:assert/strict";
import { test } from "node:test";
import { TailCache } from "../src/tail-cache.ts";
import { batch, openLog, tempDir } from "./helpers.ts";

test("the tail cache serves, after thousands of appends and evictions, the same bytes as the disk", async () => {
  const { dir, cleanup } = tempDir();
  const { manager, log } = await openLog(dir, {}, { tailCacheBytesPerLog: 0 });
  try {
    const cache = new TailCache(64 * 1024, null);
    for (let i = 0; i < 3000; i++) {
      // 1 to 3 batches per append; each append its own ArrayBuffer (so its cost is its size).
      const n = 1 + (i % 3);
      const blob = Buffer.concat(Array.from({ length: n }, (_, k) => batch([`a${i}b${k}`, `c${i}`])));
      const info = await log.appendAsLeader(blob, 0);
      cache.add(new Uint8Array(blob), info.baseOffset, info.logEndOffset);
    }
    const first = cache.firstOffset;
    assert.ok(first !== null && first > 0n, "older appends were evicted");
    const end = log.logEndOffset;
    let served = 0;
    for (let offset = first; offset < end; offset += 7n) {
      for (const [maxBytes, maxOffset] of [
        [1 << 20, end],
        [300, end],
        [1, end],
        [5000, offset + 40n],
      ] as const) {
        const c = cache.read(offset, maxBytes, maxOffset, true);
        assert.ok(c !== null, `offset ${offset} is cached`);
        const d = await log.read(offset, maxBytes, { maxOffset });
        assert.ok(Buffer.from(c.records).equals(d.records), `read(${offset}, ${maxBytes}, ${maxOffset})`);
        const k = cache.readChunks(offset, maxBytes, maxOffset, true);
        assert.ok(k !== null);
        assert.ok(Buffer.concat(k.chunks).equals(d.records), `readChunks(${offset}, ${maxBytes}, ${maxOffset})`);
        assert.equal(k.byteLength, d.records.length);
        assert.equal(k.firstOffset, c.firstOffset);
        assert.equal(k.nextOffset, c.nextOffset);
        served++;
      }
    }
    assert.ok(served > 500);
    assert.equal(cache.read(first - 1n, 1 << 20, end, true), null, "below the cache: not served");
  } finally {
    await manager.close();
    cleanup();
  }
});

test("readChunks returns views of the appends it spans, not a merged copy", () => {
  const cache = new TailCache(1 << 20, null);
  // Each append its own ArrayBuffer of its own size, which the cache keeps as it is.
  const appends = [0, 1, 2].map((i) => new Uint8Array(batch([`v${i}`])));
  let offset = 0n;
  for (const a of appends) {
    // One record per batch, at its own offset (the baseOffset field is patched as an append would).
    new DataView(a.buffer, a.byteOffset).setBigInt64(0, offset);
    cache.add(a, offset, offset + 1n);
    offset++;
  }
  const k = cache.readChunks(0n, 1 << 20, 3n, true)!;
  assert.equal(k.chunks.length, 3);
  for (let i = 0; i < 3; i++) {
    assert.equal(k.chunks[i]!.buffer, appends[i]!.buffer, `chunk ${i} is the append's own memory`);
    assert.equal(k.chunks[i]!.byteOffset, appends[i]!.byteOffset);
  }
  assert.equal(k.firstOffset, 0n);
  assert.equal(k.nextOffset, 3n);
  const r = cache.read(0n, 1 << 20, 3n, true)!;
  assert.ok(r.records.equals(Buffer.concat(k.chunks)), "read merges the same bytes");
  const tail = cache.readChunks(1n, 1 << 20, 2n, true)!;
  assert.equal(tail.chunks.length, 1, "bounded by maxOffset");
  assert.equal(tail.chunks[0]!.buffer, appends[1]!.buffer);
});

test("PartitionLog.readChunks: the tail cache's chunks when a read spans appends; one chunk from disk", async () => {
  for (const tailCacheBytesPerLog of [2 * 1024 * 1024, 0]) {
    const { dir, cleanup } = tempDir();
    const { manager, log } = await openLog(dir, {}, { tailCacheBytesPerLog });
    try {
      for (let i = 0; i < 5; i++) await log.appendAsLeader(batch([`a${i}`, `b${i}`]), 0);
      const k = await log.readChunks(2n, 1 << 20);
      const r = await log.read(2n, 1 << 20);
      assert.equal(k.chunks.length, tailCacheBytesPerLog > 0 ? 4 : 1, `cache ${tailCacheBytesPerLog}`);
      assert.ok(Buffer.concat(k.chunks).equals(r.records));
      assert.equal(k.byteLength, r.records.length);
      assert.equal(k.firstOffset, 2n);
      assert.equal(r.firstOffset, 2n);
      const none = await log.readChunks(10n, 1 << 20);
      assert.equal(none.chunks.length, 0, "at the log end: nothing");
      assert.equal(none.byteLength, 0);
      assert.equal(none.firstOffset, undefined);
    } finally {
      await manager.close();
      cleanup();
    }
  }
});
