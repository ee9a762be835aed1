// Compaction (cleanup.policy=compact) with a controlled clock: latest value per key, offsets and
// producer fields preserved, tombstones kept for delete.retention.ms, the active segment never
// touched, and a crash-safe swap.

import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { DELETE_HORIZON_BIT, iterateBatches } from "@sluice/protocol/records/batch-header.ts";
import { buildRecordBatch, decodeRecords } from "@sluice/protocol/records/record-batch.ts";
import { copyCrashImage } from "../../../tests/helpers/crash-image.ts";
import { StorageError } from "../src/errors.ts";
import { FaultyDisk, keyed, ManualClock, openLog, readAll, tempDir, values } from "./helpers.ts";

const COMPACT = { "cleanup.policy": "compact", "segment.bytes": 200, "delete.retention.ms": 10_000 } as const;

describe("compaction", () => {
  test("keeps the latest value per key at its original offset; the active segment is never compacted", async () => {
    const { dir, cleanup } = tempDir();
    const clock = new ManualClock(100_000);
    const first = await openLog(dir, COMPACT, { clock });
    const { log } = first;
    try {
      await log.appendAsLeader(
        keyed([
          ["a", "1"],
          ["b", "1"],
        ]),
        0,
      );
      await log.appendAsLeader(
        keyed([
          ["a", "2"],
          ["c", "1"],
        ]),
        0,
      );
      await log.appendAsLeader(keyed([["b", "2"]]), 0);
      await log.appendAsLeader(keyed([["c", "2"]]), 0);
      await log.rollNow();
      await log.appendAsLeader(keyed([["a", "3"]]), 0); // in the active segment
      await log.updateHighWatermark(log.logEndOffset);
      const removed = await log.compact();
      assert.equal(removed, 3, "a=1, b=1, c=1 go; a=2 stays (its successor is in the active segment)");
      assert.deepEqual(values(await readAll(log)), ["2:2", "4:2", "5:2", "6:3"]);
      assert.equal(log.logEndOffset, 7n);
      assert.equal(await log.compact(), 0, "nothing dirty: no pass");
      await first.manager.close();
      const again = await openLog(dir, COMPACT, { clock });
      assert.deepEqual(values(await readAll(again.log)), ["2:2", "4:2", "5:2", "6:3"]);
      await again.manager.close();
    } finally {
      cleanup();
    }
  });

  test("tombstones stay for delete.retention.ms after they are first cleaned, then go", async () => {
    const { dir, cleanup } = tempDir();
    const clock = new ManualClock(100_000);
    const { manager, log } = await openLog(dir, COMPACT, { clock });
    try {
      await log.appendAsLeader(keyed([["k", "v"]], 50_000n), 0);
      await log.appendAsLeader(keyed([["k", null]], 60_000n), 0);
      await log.appendAsLeader(keyed([["other", "x"]], 60_000n), 0);
      await log.rollNow();
      await log.appendAsLeader(keyed([["z", "active"]]), 0);
      await log.updateHighWatermark(log.logEndOffset);
      assert.equal(await log.compact(), 1);
      const afterFirst = decodeRecords(await readAll(log));
      assert.deepEqual(values(await readAll(log)), ["1:∅", "2:x", "3:active"]);
      const tomb = afterFirst.find((b) => b.records.some((r) => r.value === null))!;
      assert.ok((tomb.header.attributes & DELETE_HORIZON_BIT) !== 0, "the tombstone's batch carries a delete horizon");
      assert.equal(tomb.header.baseTimestamp, 110_000n, "horizon = now + delete.retention.ms");
      assert.equal(tomb.records[0]!.timestamp, 60_000n, "the record keeps its timestamp");
      clock.now = 109_999;
      await log.compact({ force: true });
      assert.deepEqual(values(await readAll(log)), ["1:∅", "2:x", "3:active"], "not yet");
      clock.now = 110_000;
      await log.compact();
      assert.deepEqual(
        values(await readAll(log)),
        ["2:x", "3:active"],
        "the horizon passed: the background pass removes it",
      );
    } finally {
      await manager.close();
      cleanup();
    }
  });

  test("only data below the high watermark and older than min.compaction.lag.ms is compacted", async () => {
    const { dir, cleanup } = tempDir();
    const clock = new ManualClock(100_000);
    const { manager, log } = await openLog(dir, { ...COMPACT, "min.compaction.lag.ms": 30_000 }, { clock });
    try {
      await log.appendAsLeader(keyed([["k", "old"]], 10_000n), 0);
      await log.appendAsLeader(keyed([["k", "old2"]], 20_000n), 0);
      await log.rollNow();
      await log.appendAsLeader(keyed([["k", "recent"]], 90_000n), 0);
      await log.appendAsLeader(keyed([["k", "recent2"]], 90_000n), 0);
      await log.rollNow();
      await log.appendAsLeader(keyed([["k", "active"]], 95_000n), 0);
      await log.updateHighWatermark(1n);
      assert.equal(await log.compact({ force: true }), 0, "nothing wholly below the high watermark");
      await log.updateHighWatermark(log.logEndOffset);
      assert.equal(await log.compact({ force: true }), 1, "the recent segment is within the lag");
      assert.deepEqual(values(await readAll(log)), ["1:old2", "2:recent", "3:recent2", "4:active"]);
    } finally {
      await manager.close();
      cleanup();
    }
  });

  test("rewritten batches keep compression, offsets, producer fields; a producer's emptied last batch stays empty", async () => {
    const { dir, cleanup } = tempDir();
    const clock = new ManualClock(100_000);
    const { manager, log } = await openLog(dir, { ...COMPACT, "segment.bytes": 1000 }, { clock });
    try {
      await log.appendAsLeader(
        buildRecordBatch({
          compression: 1,
          producerId: 7n,
          producerEpoch: 2,
          baseSequence: 10,
          records: ["a", "b", "c"].map((k) => ({
            key: Buffer.from(k),
            value: Buffer.from(`${k}1`),
            timestamp: 1_000n,
          })),
        }),
        3,
      );
      await log.appendAsLeader(
        buildRecordBatch({
          producerId: 8n,
          producerEpoch: 0,
          baseSequence: 0,
          records: [{ key: Buffer.from("p"), value: Buffer.from("1"), timestamp: 1_000n }],
        }),
        3,
      );
      await log.appendAsLeader(
        keyed([
          ["b", "2"],
          ["p", "2"],
        ]),
        3,
      );
      await log.rollNow();
      await log.appendAsLeader(keyed([["z", "1"]]), 3);
      await log.updateHighWatermark(log.logEndOffset);
      assert.equal(await log.compact(), 2);
      const batches = [...iterateBatches(await readAll(log))].map((b) => b.header);
      assert.deepEqual(
        batches.map((h) => [
          h.baseOffset,
          h.lastOffsetDelta,
          h.recordCount,
          h.attributes & 7,
          h.producerId,
          h.producerEpoch,
          h.baseSequence,
          h.partitionLeaderEpoch,
        ]),
        [
          [0n, 2, 2, 1, 7n, 2, 10, 3],
          [3n, 0, 0, 0, 8n, 0, 0, 3],
          [4n, 1, 2, 0, -1n, -1, -1, 3],
          [6n, 0, 1, 0, -1n, -1, -1, 3],
        ],
      );
      assert.deepEqual(values(await readAll(log)), ["0:a1", "2:c1", "4:2", "5:2", "6:1"]);
      await log.verify();
    } finally {
      await manager.close();
      cleanup();
    }
  });

  test("appends keep flowing during a pass; a second pass merges the shrunken segments", async () => {
    const { dir, cleanup } = tempDir();
    const clock = new ManualClock(100_000);
    const { manager, log } = await openLog(dir, { ...COMPACT, "segment.bytes": 400 }, { clock });
    try {
      for (let i = 0; i < 60; i++) await log.appendAsLeader(keyed([[`k${i % 5}`, `v${i}`]]), 0);
      await log.updateHighWatermark(log.logEndOffset);
      const pass = log.compact();
      const appends = Promise.all(Array.from({ length: 10 }, (_, i) => log.appendAsLeader(keyed([[`n${i}`, "x"]]), 0)));
      const [removed, infos] = await Promise.all([pass, appends]);
      assert.ok(removed > 40);
      assert.deepEqual(
        infos.map((r) => r.baseOffset),
        Array.from({ length: 10 }, (_, i) => BigInt(60 + i)),
      );
      const segmentsBefore = log.segmentBaseOffsets().filter((b) => b < 60n).length;
      await log.compact({ force: true });
      const segmentsAfter = log.segmentBaseOffsets().filter((b) => b < 60n).length;
      assert.ok(segmentsAfter < segmentsBefore, `${segmentsBefore} → ${segmentsAfter} segments for the same offsets`);
      const left = values(await readAll(log, 60n));
      for (let k = 0; k < 5; k++)
        assert.ok(
          left.some((v) => v.endsWith(`:v${55 + k}`)),
          `latest of k${k} kept`,
        );
      assert.equal(readdirSync(join(dir, "t-0")).filter((n) => /cleaned|swap|deleted/.test(n)).length, 0);
    } finally {
      await manager.close();
      cleanup();
    }
  });

  test("the background pass compacts when the dirty ratio reaches min.cleanable.dirty.ratio", async () => {
    const { dir, cleanup } = tempDir();
    const clock = new ManualClock(100_000);
    const { manager, log } = await openLog(dir, { ...COMPACT, "min.cleanable.dirty.ratio": 0.5 }, { clock });
    try {
      for (let i = 0; i < 40; i++) await log.appendAsLeader(keyed([[`k${i % 20}`, `v${i}`]]), 0);
      await log.updateHighWatermark(log.logEndOffset);
      await manager.runBackgroundPass();
      const left = values(await readAll(log));
      assert.ok(left.length < 40 && left.length >= 20, `${left.length} records left`);
      await log.appendAsLeader(keyed([["k0", "again"]]), 0);
      await log.updateHighWatermark(log.logEndOffset);
      assert.equal(await log.compact(), 0, "little new data in a compacted log is below the dirty ratio");
    } finally {
      await manager.close();
      cleanup();
    }
  });

  test("a failed swap leaves the log as it was; a swap interrupted by a crash is completed at startup", async () => {
    const { dir, cleanup } = tempDir();
    const clock = new ManualClock(100_000);
    const disk = new FaultyDisk();
    const live = await openLog(join(dir, "live"), COMPACT, { clock, disk, tailCacheBytesPerLog: 0 });
    try {
      for (let i = 0; i < 12; i++) await live.log.appendAsLeader(keyed([[`k${i % 3}`, `v${i}`]]), 0);
      await live.log.updateHighWatermark(live.log.logEndOffset);
      const before = values(await readAll(live.log));
      // Both the swap's final rename and its undo fail: the .swap file stays, as after a crash.
      disk.renameFault = /\.log\.swap$/;
      await assert.rejects(
        live.log.compact(),
        (e: unknown) => e instanceof StorageError && e.code === "KAFKA_STORAGE_ERROR",
      );
      assert.deepEqual(values(await readAll(live.log)), before, "the old segments still serve");
      const swapName = readdirSync(join(dir, "live", "t-0")).find((n) => n.endsWith(".log.swap"));
      assert.ok(swapName, "the swap file is left behind");
      const crashed = join(dir, "crashed");
      await copyCrashImage(join(dir, "live"), crashed);
      const swapped = values(readFileSync(join(crashed, "t-0", swapName)));
      // The first group is the first segment alone (two do not fit in segment.bytes).
      const swapLast = Number(live.log.segmentBaseOffsets()[1]!) - 1;

      disk.renameFault = null;
      assert.ok((await live.log.compact()) > 0, "the next pass succeeds");
      await live.log.verify();

      const restarted = await openLog(crashed, COMPACT, { clock });
      const expected = [...swapped, ...before.filter((v) => Number(v.split(":")[0]) > swapLast)];
      assert.deepEqual(values(await readAll(restarted.log)), expected);
      assert.equal(readdirSync(join(crashed, "t-0")).filter((n) => /swap|deleted|cleaned/.test(n)).length, 0);
      await restarted.manager.close();
    } finally {
      await live.manager.close();
      cleanup();
    }
  });
});
