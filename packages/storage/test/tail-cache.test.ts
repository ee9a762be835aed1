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
