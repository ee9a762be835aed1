// Retention (retention.ms, retention.bytes) and DeleteRecords, with a controlled clock.

import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { OffsetOutOfRangeError } from "../src/errors.ts";
import { batch, ManualClock, openLog, readAll, tempDir, values } from "./helpers.ts";

describe("retention", () => {
  test("retention.ms deletes sealed segments whose newest record is too old, and moves the log start", async () => {
    const { dir, cleanup } = tempDir();
    const clock = new ManualClock(10_000);
    const { manager, log } = await openLog(dir, { "segment.bytes": 150, "retention.ms": 5_000 }, { clock });
    try {
      for (let i = 0; i < 6; i++) await log.appendAsLeader(batch([`old${i}`], { timestamp: 1_000n }), 0);
      for (let i = 0; i < 3; i++) await log.appendAsLeader(batch([`new${i}`], { timestamp: 9_000n }), 0);
      await log.updateHighWatermark(log.logEndOffset);
      assert.ok((await log.applyRetention()) > 0);
      assert.equal(log.logStartOffset, 6n);
      assert.deepEqual(values(await readAll(log)), ["6:new0", "7:new1", "8:new2"]);
      await assert.rejects(log.read(0n, 100), OffsetOutOfRangeError);
      assert.equal((await log.offsetForTimestamp("earliest"))?.offset, 6n);
      assert.equal(
        readdirSync(join(dir, "t-0")).filter((n) => n.endsWith(".log")).length,
        log.segmentCount,
        "files removed",
      );
      clock.now = 20_000;
      assert.ok((await log.applyRetention()) > 0, "with everything expired, the active segment rolls and goes too");
      assert.deepEqual([log.logStartOffset, log.logEndOffset, log.sizeBytes], [9n, 9n, 0]);
      assert.equal((await log.appendAsLeader(batch(["later"]), 0)).baseOffset, 9n);
    } finally {
      await manager.close();
      cleanup();
    }
  });

  test("retention.bytes deletes the oldest segments while the log is larger than the limit", async () => {
    const { dir, cleanup } = tempDir();
    const { manager, log } = await openLog(dir, { "segment.bytes": 150, "retention.bytes": 400, "retention.ms": -1 });
    try {
      for (let i = 0; i < 12; i++) await log.appendAsLeader(batch([`v${i}`]), 0);
      await log.updateHighWatermark(log.logEndOffset);
      const before = log.sizeBytes;
      const deleted = await log.applyRetention();
      assert.ok(deleted > 0);
      // Kafka's rule: a segment goes only if the rest still holds at least retention.bytes.
      assert.ok(log.sizeBytes >= 400, `size ${log.sizeBytes} (was ${before})`);
      assert.ok(log.sizeBytes - 140 < 400, `size ${log.sizeBytes}: one more segment could have gone`);
    } finally {
      await manager.close();
      cleanup();
    }
  });

  test("retention never deletes data at or above the high watermark", async () => {
    const { dir, cleanup } = tempDir();
    const clock = new ManualClock(1_000_000);
    const { manager, log } = await openLog(dir, { "segment.bytes": 150, "retention.ms": 1 }, { clock });
    try {
      for (let i = 0; i < 6; i++) await log.appendAsLeader(batch([`v${i}`]), 0);
      await log.updateHighWatermark(2n);
      await log.applyRetention();
      assert.ok(log.logStartOffset <= 2n);
      assert.equal(values(await readAll(log)).at(-1), "5:v5");
    } finally {
      await manager.close();
      cleanup();
    }
  });

  test("compact-only topics keep old segments (no time or size retention)", async () => {
    const { dir, cleanup } = tempDir();
    const clock = new ManualClock(1_000_000);
    const { manager, log } = await openLog(
      dir,
      { "segment.bytes": 150, "retention.ms": 1, "cleanup.policy": "compact" },
      { clock },
    );
    try {
      for (let i = 0; i < 6; i++) await log.appendAsLeader(batch([`v${i}`], { key: `k${i}` }), 0);
      await log.updateHighWatermark(6n);
      assert.equal(await log.applyRetention(), 0);
    } finally {
      await manager.close();
      cleanup();
    }
  });

  test("the manager's background pass applies retention to every log", async () => {
    const { dir, cleanup } = tempDir();
    const clock = new ManualClock(100_000);
    const { manager, log } = await openLog(dir, { "segment.bytes": 150, "retention.ms": 1000 }, { clock });
    try {
      const other = await manager.getOrCreateLog("u", 0);
      for (const l of [log, other]) {
        for (let i = 0; i < 4; i++) await l.appendAsLeader(batch([`v${i}`], { timestamp: 1n }), 0);
        await l.updateHighWatermark(4n);
      }
      await manager.runBackgroundPass();
      assert.equal(log.logStartOffset, 4n);
      assert.equal(other.logStartOffset, 4n);
    } finally {
      await manager.close();
      cleanup();
    }
  });

  test("appends and reads keep flowing while retention runs", async () => {
    const { dir, cleanup } = tempDir();
    const clock = new ManualClock(100_000);
    const { manager, log } = await openLog(dir, { "segment.bytes": 200, "retention.ms": 1000 }, { clock });
    try {
      for (let i = 0; i < 30; i++) await log.appendAsLeader(batch([`old${i}`], { timestamp: 1n }), 0);
      await log.updateHighWatermark(log.logEndOffset);
      const retention = log.applyRetention();
      const appends = Promise.all(
        Array.from({ length: 10 }, (_, i) => log.appendAsLeader(batch([`new${i}`], { timestamp: 99_000n }), 0)),
      );
      const [deleted, infos] = await Promise.all([retention, appends]);
      assert.ok(deleted > 0);
      assert.deepEqual(
        infos.map((x) => x.baseOffset),
        Array.from({ length: 10 }, (_, i) => BigInt(30 + i)),
      );
      assert.deepEqual(
        values(await readAll(log))
          .slice(-10)
          .map((v) => v.split(":")[1]),
        Array.from({ length: 10 }, (_, i) => `new${i}`),
      );
    } finally {
      await manager.close();
      cleanup();
    }
  });
});

describe("DeleteRecords", () => {
  test("moves the log start offset (not past the high watermark), deletes whole segments below it, and is checkpointed at once", async () => {
    const { dir, cleanup } = tempDir();
    const { manager, log } = await openLog(dir, { "segment.bytes": 150 });
    try {
      for (let i = 0; i < 8; i++) await log.appendAsLeader(batch([`v${i}`]), 0);
      await log.updateHighWatermark(6n);
      await assert.rejects(log.deleteRecordsBefore(7n), OffsetOutOfRangeError);
      assert.equal(await log.deleteRecordsBefore(5n), 5n);
      assert.equal(await log.deleteRecordsBefore(3n), 5n, "never moves backwards");
      await assert.rejects(log.read(4n, 100), OffsetOutOfRangeError);
      assert.equal(values((await log.read(5n, 1)).records)[0], "5:v5");
      assert.equal(log.segmentBaseOffsets()[0], 4n, "the segment holding the new log start stays");
      assert.equal(readFileSync(join(dir, "log-start-offset-checkpoint"), "utf8"), "0\n1\nt 0 5\n");
    } finally {
      await manager.close();
    }
    const again = await openLog(dir, { "segment.bytes": 150 });
    try {
      assert.equal(again.log.logStartOffset, 5n, "the log start offset survives a restart");
    } finally {
      await again.manager.close();
      cleanup();
    }
  });

  test("a log start inside a segment keeps that segment; reads there start at the batch holding it", async () => {
    const { dir, cleanup } = tempDir();
    const { manager, log } = await openLog(dir);
    try {
      await log.appendAsLeader(batch(["a", "b", "c"]), 0);
      await log.appendAsLeader(batch(["d"]), 0);
      await log.updateHighWatermark(4n);
      await log.deleteRecordsBefore(1n);
      assert.deepEqual(values((await log.read(1n, 1 << 20)).records), ["0:a", "1:b", "2:c", "3:d"]);
      assert.equal(log.leaderEpochCache.list()[0]?.startOffset, 1n, "the epoch cache starts at the log start");
    } finally {
      await manager.close();
      cleanup();
    }
  });
});
