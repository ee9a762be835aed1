// The building blocks: offset and time indexes (property-based), checkpoint files, and the leader
// epoch cache's Kafka semantics.

import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import fc from "fast-check";
import { CorruptCheckpointError, formatCheckpoint, parseCheckpoint, readOffsetCheckpoint } from "../src/checkpoint.ts";
import { nodeDisk } from "../src/disk.ts";
import { LeaderEpochCache } from "../src/leader-epoch-cache.ts";
import { OffsetIndex } from "../src/offset-index.ts";
import { TimeIndex } from "../src/time-index.ts";
import { tempDir } from "./helpers.ts";

/** Strictly increasing pairs (relative offset, position), positions > 0. */
const entriesArb = fc
  .array(fc.tuple(fc.integer({ min: 1, max: 1000 }), fc.integer({ min: 1, max: 1000 })), { maxLength: 200 })
  .map((steps) => {
    let rel = -1;
    let pos = 0;
    return steps.map(([dr, dp]) => {
      rel += dr;
      pos += dp;
      return [rel, pos] as const;
    });
  });

describe("offset index", () => {
  test("lookup returns the position of the largest entry at or below the offset, else 0", () => {
    fc.assert(
      fc.property(entriesArb, fc.integer({ min: -5, max: 250_000 }), (entries, target) => {
        const idx = new OffsetIndex(1000, 4);
        for (const [r, p] of entries) idx.append(r, p);
        let expected = 0;
        for (const [r, p] of entries) if (r <= target) expected = p;
        assert.equal(idx.lookup(target), expected);
      }),
    );
  });

  test("round-trips through its file format and refuses inconsistent files", () => {
    fc.assert(
      fc.property(entriesArb, (entries) => {
        const idx = new OffsetIndex(1000);
        for (const [r, p] of entries) idx.append(r, p);
        const logBytes = (entries.at(-1)?.[1] ?? 0) + 1;
        const again = OffsetIndex.fromBytes(idx.toBytes(), 1000, logBytes);
        assert.ok(again);
        assert.deepEqual(again.toBytes(), idx.toBytes());
        assert.equal(
          OffsetIndex.fromBytes(idx.toBytes(), 1000, logBytes - 1) === null,
          entries.length > 0,
          "a position past the log",
        );
        if (entries.length > 1) {
          const swapped = Buffer.concat([idx.toBytes().subarray(8, 16), idx.toBytes().subarray(0, 8)]);
          assert.equal(OffsetIndex.fromBytes(swapped, 1000, logBytes), null, "out of order");
        }
        assert.equal(OffsetIndex.fromBytes(Buffer.alloc(7), 1000, logBytes), null, "torn");
      }),
    );
  });

  test("truncation removes the entries at or past a position", () => {
    const idx = new OffsetIndex(10);
    idx.append(3, 100);
    idx.append(7, 200);
    idx.append(9, 300);
    idx.truncateToPosition(200);
    assert.deepEqual(idx.lastEntry(), { relativeOffset: 3, position: 100 });
    assert.equal(idx.lookup(100), 100);
  });
});

describe("time index", () => {
  test("lookup gives the offset of the largest entry whose timestamp is at or below T; only growing timestamps are kept", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.bigInt({ min: 0n, max: 10_000n }), fc.integer({ min: 0, max: 5 })), { maxLength: 100 }),
        fc.bigInt({ min: -1n, max: 10_001n }),
        (steps, target) => {
          const idx = new TimeIndex(1000);
          const kept: [bigint, number][] = [];
          let rel = 0;
          for (const [ts, dr] of steps) {
            rel += dr;
            idx.maybeAppend(ts, rel);
            if (kept.length === 0 || ts > kept.at(-1)![0]) kept.push([ts, rel]);
          }
          let expected = -1;
          for (const [ts, r] of kept) if (ts <= target) expected = r;
          assert.equal(idx.lookup(target), expected);
          const again = TimeIndex.fromBytes(idx.toBytes(), 1000, rel);
          assert.ok(again);
          assert.deepEqual(again.toBytes(), idx.toBytes());
        },
      ),
    );
  });
});

describe("checkpoint files", () => {
  test("Kafka's text format: version, count, one entry per line", () => {
    assert.equal(
      formatCheckpoint([
        ["orders", "0", "1042"],
        ["orders", "1", "977"],
      ]).toString(),
      "0\n2\norders 0 1042\norders 1 977\n",
    );
    assert.deepEqual(parseCheckpoint("x", "0\n1\n3 100\n", 2), [["3", "100"]]);
    for (const bad of ["1\n0\n", "0\n2\na 0 1\n", "0\n1\na 0\n", "", "0\n1\na  1 2\n"])
      assert.throws(() => parseCheckpoint("x", bad, 3), CorruptCheckpointError, JSON.stringify(bad));
  });

  test("topics with dashes round-trip through the offset checkpoints", async () => {
    const { dir, cleanup } = tempDir();
    try {
      writeFileSync(join(dir, "cp"), "0\n2\nmy-topic-1 3 44\n__consumer_offsets 12 7\n");
      const m = await readOffsetCheckpoint(nodeDisk, join(dir, "cp"));
      assert.deepEqual(
        [...m],
        [
          ["my-topic-1-3", 44n],
          ["__consumer_offsets-12", 7n],
        ],
      );
    } finally {
      cleanup();
    }
  });
});

describe("leader epoch cache", () => {
  async function cache(
    entries: [number, bigint][],
  ): Promise<{ c: LeaderEpochCache; path: string; cleanup: () => void }> {
    const { dir, cleanup } = tempDir();
    const path = join(dir, "leader-epoch-checkpoint");
    const c = new LeaderEpochCache(nodeDisk, path);
    await c.load();
    for (const [e, o] of entries) await c.assign(e, o);
    return { c, path, cleanup };
  }

  test("assign keeps entries increasing, dropping contradicted ones; the file is Kafka's format", async () => {
    const { c, path, cleanup } = await cache([
      [1, 0n],
      [1, 5n],
      [3, 10n],
      [5, 20n],
    ]);
    try {
      assert.deepEqual(c.list(), [
        { epoch: 1, startOffset: 0n },
        { epoch: 3, startOffset: 10n },
        { epoch: 5, startOffset: 20n },
      ]);
      assert.equal(readFileSync(path, "utf8"), "0\n3\n1 0\n3 10\n5 20\n");
      await c.assign(4, 15n); // a follower learning of a different history drops epoch 5
      assert.deepEqual(
        c.list().map((e) => e.epoch),
        [1, 3, 4],
      );
      const reloaded = new LeaderEpochCache(nodeDisk, path);
      await reloaded.load();
      assert.deepEqual(reloaded.list(), c.list());
    } finally {
      cleanup();
    }
  });

  test("endOffsetFor answers OffsetForLeaderEpoch as Kafka does", async () => {
    const { c, cleanup } = await cache([
      [2, 10n],
      [4, 20n],
      [6, 30n],
    ]);
    try {
      assert.deepEqual(c.endOffsetFor(6, 42n), { epoch: 6, endOffset: 42n }, "latest epoch: the log end");
      assert.deepEqual(c.endOffsetFor(4, 42n), { epoch: 4, endOffset: 30n }, "known epoch: start of the next");
      assert.deepEqual(c.endOffsetFor(5, 42n), { epoch: 4, endOffset: 30n }, "unknown middle epoch: the one below");
      assert.deepEqual(c.endOffsetFor(1, 42n), { epoch: 1, endOffset: 10n }, "below every epoch: start of the first");
      assert.deepEqual(c.endOffsetFor(7, 42n), { epoch: -1, endOffset: -1n }, "newer than known");
      assert.deepEqual(c.endOffsetFor(-1, 42n), { epoch: -1, endOffset: -1n });
    } finally {
      cleanup();
    }
  });

  test("truncation from either end", async () => {
    const { c, cleanup } = await cache([
      [2, 10n],
      [4, 20n],
      [6, 30n],
    ]);
    try {
      await c.truncateFromEnd(25n);
      assert.deepEqual(
        c.list().map((e) => e.epoch),
        [2, 4],
      );
      await c.truncateFromStart(15n);
      assert.deepEqual(c.list(), [
        { epoch: 2, startOffset: 15n },
        { epoch: 4, startOffset: 20n },
      ]);
      assert.equal(c.epochForOffset(17n), 2);
      assert.equal(c.epochForOffset(20n), 4);
    } finally {
      cleanup();
    }
  });

  test("a corrupt checkpoint loads as empty", async () => {
    const { c, path, cleanup } = await cache([]);
    try {
      writeFileSync(path, "0\n2\n5 10\n3 20\n");
      await c.load();
      assert.deepEqual(c.list(), []);
    } finally {
      cleanup();
    }
  });
});
