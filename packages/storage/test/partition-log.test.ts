import assert from "node:assert/strict";
import { readdirSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { iterateBatches, lastOffsetOf } from "@sluice/protocol/records/batch-header.ts";
import { nodeDisk } from "../src/disk.ts";
import { OffsetOutOfRangeError, StorageError } from "../src/errors.ts";
import { DEFAULT_LOG_CONFIG, type LogConfig } from "../src/log-config.ts";
import { LogManager } from "../src/log-manager.ts";
import { PartitionLog } from "../src/partition-log.ts";
import { batch, FaultyDisk, keyed, ManualClock, tempDir, values } from "./helpers.ts";

const config = (over: Partial<LogConfig> = {}): LogConfig => ({ ...DEFAULT_LOG_CONFIG, ...over });

async function openLog(dir: string, over: Partial<LogConfig> = {}, clock = new ManualClock(), disk = nodeDisk) {
  return PartitionLog.open(join(dir, "t-0"), "t", 0, config(over), { disk, clock }, null);
}

describe("partition log", () => {
  test("appends assign consecutive offsets per record and stamp the leader epoch", async () => {
    const { dir, cleanup } = tempDir();
    try {
      const log = await openLog(dir);
      const a = await log.appendAsLeader(batch(["a", "b", "c"]), 4);
      assert.deepEqual([a.baseOffset, a.lastOffset, a.logEndOffset], [0n, 2n, 3n]);
      const b = await log.appendAsLeader(Buffer.concat([batch(["d"]), batch(["e", "f"])]), 4);
      assert.deepEqual([b.baseOffset, b.lastOffset, b.logEndOffset], [3n, 5n, 6n]);
      const r = await log.read(0n, 1 << 20);
      assert.deepEqual(values(r.records), ["0:a", "1:b", "2:c", "3:d", "4:e", "5:f"]);
      assert.equal(r.records.readInt32BE(12), 4, "leader epoch stamped");
      assert.deepEqual(log.leaderEpochCache.endOffsetFor(4, log.logEndOffset), { epoch: 4, endOffset: 6n });
      await log.close();
    } finally {
      cleanup();
    }
  });

  test("a read from mid-batch returns the whole batch; the first batch is returned even when over the limit", async () => {
    const { dir, cleanup } = tempDir();
    try {
      const log = await openLog(dir);
      await log.appendAsLeader(batch(["x".repeat(500), "y".repeat(500)]), 0);
      await log.appendAsLeader(batch(["z"]), 0);
      const mid = await log.read(1n, 10);
      assert.deepEqual(values(mid.records), [`0:${"x".repeat(500)}`, `1:${"y".repeat(500)}`]);
      assert.equal(mid.firstOffset, 0n);
      const bounded = await log.read(0n, 1 << 20, { maxOffset: 2n });
      assert.equal(values(bounded.records).length, 2, "maxOffset (high watermark) bounds the read");
      await assert.rejects(log.read(9n, 100), OffsetOutOfRangeError);
      assert.equal((await log.read(3n, 100)).records.length, 0, "reading at the log end gives nothing");
      await log.close();
    } finally {
      cleanup();
    }
  });

  test("segments roll by size and the log reopens with the same content", async () => {
    const { dir, cleanup } = tempDir();
    try {
      const log = await openLog(dir, { "segment.bytes": 300, "index.interval.bytes": 100 });
      for (let i = 0; i < 20; i++) await log.appendAsLeader(batch([`v${i}`.padEnd(50, ".")]), 0);
      assert.ok(log.segmentCount > 3, `rolled into ${log.segmentCount} segments`);
      const before = values((await readAll(log)).records);
      await log.close();
      const reopened = await openLog(dir, { "segment.bytes": 300 });
      assert.equal(reopened.logEndOffset, 20n);
      assert.deepEqual(values((await readAll(reopened)).records), before);
      for (let i = 0; i < 20; i++)
        assert.equal(values((await reopened.read(BigInt(i), 1)).records)[0]?.split(":")[0], String(i));
      await reopened.close();
    } finally {
      cleanup();
    }
  });

  test("timestamps: earliest, latest, max timestamp, first offset at or after T", async () => {
    const { dir, cleanup } = tempDir();
    try {
      const log = await openLog(dir, { "segment.bytes": 200 });
      for (const ts of [100n, 200n, 300n, 250n]) await log.appendAsLeader(batch([`t${ts}`], { timestamp: ts }), 0);
      assert.equal((await log.offsetForTimestamp("earliest"))?.offset, 0n);
      assert.equal((await log.offsetForTimestamp("latest"))?.offset, 4n);
      assert.deepEqual(
        [
          (await log.offsetForTimestamp("maxTimestamp"))?.offset,
          (await log.offsetForTimestamp("maxTimestamp"))?.timestamp,
        ],
        [2n, 300n],
      );
      assert.equal((await log.offsetForTimestamp(150n))?.offset, 1n);
      assert.equal((await log.offsetForTimestamp(300n))?.offset, 2n);
      assert.equal(await log.offsetForTimestamp(301n), null);
      await log.close();
    } finally {
      cleanup();
    }
  });

  test("invalid batches are refused whole: bad CRC, size over max.message.bytes", async () => {
    const { dir, cleanup } = tempDir();
    try {
      const log = await openLog(dir, { "max.message.bytes": 200 });
      const bad = batch(["ok"]);
      bad.writeUInt8(bad.readUInt8(bad.length - 1) ^ 1, bad.length - 1);
      await assert.rejects(
        log.appendAsLeader(Buffer.concat([batch(["fine"]), bad]), 0),
        (e: unknown) => e instanceof StorageError && e.code === "CORRUPT_MESSAGE",
      );
      await assert.rejects(
        log.appendAsLeader(batch(["x".repeat(300)]), 0),
        (e: unknown) => e instanceof StorageError && e.code === "MESSAGE_TOO_LARGE",
      );
      assert.equal(log.logEndOffset, 0n);
      await log.close();
    } finally {
      cleanup();
    }
  });

  test("truncation removes everything from an offset, across segments", async () => {
    const { dir, cleanup } = tempDir();
    try {
      const log = await openLog(dir, { "segment.bytes": 200 });
      for (let i = 0; i < 10; i++) await log.appendAsLeader(batch([`v${i}`]), i < 5 ? 1 : 2);
      await log.truncateTo(3n);
      assert.equal(log.logEndOffset, 3n);
      assert.deepEqual(values((await readAll(log)).records), ["0:v0", "1:v1", "2:v2"]);
      assert.equal(log.leaderEpochCache.latestEpoch(), 1);
      const next = await log.appendAsLeader(batch(["again"]), 3);
      assert.equal(next.baseOffset, 3n);
      await log.close();
    } finally {
      cleanup();
    }
  });
});

describe("recovery", () => {
  test("a torn tail is truncated and never served; later appends continue from the last whole batch", async () => {
    const { dir, cleanup } = tempDir();
    try {
      const log = await openLog(dir);
      for (let i = 0; i < 5; i++) await log.appendAsLeader(batch([`v${i}`]), 0);
      await log.close();
      const file = join(dir, "t-0", "00000000000000000000.log");
      truncateSync(file, (await nodeDisk.readFile(file)).length - 5);
      const reopened = await PartitionLog.open(
        join(dir, "t-0"),
        "t",
        0,
        config(),
        { disk: nodeDisk, clock: new ManualClock() },
        null,
      );
      assert.equal(reopened.logEndOffset, 4n);
      assert.deepEqual(values((await readAll(reopened)).records), ["0:v0", "1:v1", "2:v2", "3:v3"]);
      assert.equal((await reopened.appendAsLeader(batch(["v4b"]), 0)).baseOffset, 4n);
      await reopened.close();
    } finally {
      cleanup();
    }
  });

  test("a corrupted last batch is truncated on recovery", async () => {
    const { dir, cleanup } = tempDir();
    try {
      const log = await openLog(dir);
      for (let i = 0; i < 3; i++) await log.appendAsLeader(batch([`v${i}`]), 0);
      await log.close();
      const file = join(dir, "t-0", "00000000000000000000.log");
      const bytes = await nodeDisk.readFile(file);
      bytes.writeUInt8(bytes.readUInt8(bytes.length - 3) ^ 0xff, bytes.length - 3);
      writeFileSync(file, bytes);
      const reopened = await openLog(dir);
      assert.equal(reopened.logEndOffset, 2n);
      await reopened.close();
    } finally {
      cleanup();
    }
  });

  test("a corrupt index is rebuilt after a clean shutdown", async () => {
    const { dir, cleanup } = tempDir();
    try {
      const m = await LogManager.open([dir], { "index.interval.bytes": 50, "segment.bytes": 400 });
      const log = await m.getOrCreateLog("t", 0);
      for (let i = 0; i < 20; i++) await log.appendAsLeader(batch([`v${i}`]), 0);
      await m.close();
      const idx = readdirSync(join(dir, "t-0")).find((n) => n.endsWith(".index"))!;
      writeFileSync(join(dir, "t-0", idx), Buffer.from([0, 0, 0, 9, 0x7f, 0, 0, 0, 0, 0, 0, 1]));
      const m2 = await LogManager.open([dir], { "index.interval.bytes": 50, "segment.bytes": 400 });
      const log2 = await m2.getOrCreateLog("t", 0);
      for (let i = 0; i < 20; i++) assert.equal(values((await log2.read(BigInt(i), 1)).records)[0], `${i}:v${i}`);
      await m2.close();
    } finally {
      cleanup();
    }
  });

  test("a corrupt batch in the middle of a sealed segment is reported, not served as valid", async () => {
    const { dir, cleanup } = tempDir();
    try {
      const m = await LogManager.open([dir], { "segment.bytes": 400 });
      const log = await m.getOrCreateLog("t", 0);
      for (let i = 0; i < 20; i++) await log.appendAsLeader(batch([`value-${i}`]), 0);
      await m.close();
      const first = join(dir, "t-0", "00000000000000000000.log");
      const bytes = await nodeDisk.readFile(first);
      const second = bytes.readInt32BE(8) + 12;
      bytes.writeUInt8(bytes.readUInt8(second + 40) ^ 0xff, second + 40); // the second batch's max timestamp: covered by its CRC
      writeFileSync(first, bytes);
      const m2 = await LogManager.open([dir], { "segment.bytes": 400 });
      const log2 = await m2.getOrCreateLog("t", 0);
      await assert.rejects(log2.verify(), (e: unknown) => e instanceof StorageError && e.code === "CORRUPT_MESSAGE");
      await m2.close();
    } finally {
      cleanup();
    }
  });
});

describe("faults", () => {
  for (const fault of ["EIO", "ENOSPC"] as const) {
    test(`${fault} on write fails that append, keeps the log consistent, and later appends work`, async () => {
      const { dir, cleanup } = tempDir();
      try {
        const disk = new FaultyDisk();
        const log = await openLog(dir, {}, new ManualClock(), disk);
        await log.appendAsLeader(batch(["one"]), 0);
        disk.writeFault = fault;
        await assert.rejects(
          log.appendAsLeader(batch(["lost"]), 0),
          (e: unknown) => e instanceof StorageError && e.code === "KAFKA_STORAGE_ERROR",
        );
        disk.writeFault = null;
        assert.equal(log.logEndOffset, 1n);
        assert.equal((await log.appendAsLeader(batch(["two"]), 0)).baseOffset, 1n);
        assert.deepEqual(values((await readAll(log)).records), ["0:one", "1:two"]);
        await log.close();
        const reopened = await openLog(dir);
        assert.deepEqual(values((await readAll(reopened)).records), ["0:one", "1:two"]);
        await reopened.close();
      } finally {
        cleanup();
      }
    });
  }

  test("a short write is completed", async () => {
    const { dir, cleanup } = tempDir();
    try {
      const disk = new FaultyDisk();
      const log = await openLog(dir, {}, new ManualClock(), disk);
      disk.writeFault = "short";
      await log.appendAsLeader(batch(["complete", "me"]), 0);
      assert.deepEqual(values((await readAll(log)).records), ["0:complete", "1:me"]);
      await log.close();
    } finally {
      cleanup();
    }
  });

  test("EIO on fsync fails the acknowledgement with fsync.before.ack, and later appends work", async () => {
    const { dir, cleanup } = tempDir();
    try {
      const disk = new FaultyDisk();
      const log = await openLog(dir, { "fsync.before.ack": true }, new ManualClock(), disk);
      disk.syncFault = "EIO";
      await assert.rejects(
        log.appendAsLeader(batch(["maybe"]), 0),
        (e: unknown) => e instanceof StorageError && e.code === "KAFKA_STORAGE_ERROR",
      );
      disk.syncFault = null;
      const ok = await log.appendAsLeader(batch(["durable"]), 0);
      assert.equal(ok.lastOffset, ok.baseOffset);
      await log.close();
    } finally {
      cleanup();
    }
  });

  test("group commit: concurrent fsync-before-ack appends all succeed in order", async () => {
    const { dir, cleanup } = tempDir();
    try {
      const log = await openLog(dir, { "fsync.before.ack": true });
      const results = await Promise.all(Array.from({ length: 50 }, (_, i) => log.appendAsLeader(batch([`c${i}`]), 0)));
      assert.deepEqual(
        results.map((r) => r.baseOffset),
        Array.from({ length: 50 }, (_, i) => BigInt(i)),
      );
      await log.close();
    } finally {
      cleanup();
    }
  });
});

describe("retention and compaction", () => {
  test("time retention deletes old sealed segments and moves the log start offset", async () => {
    const { dir, cleanup } = tempDir();
    try {
      const clock = new ManualClock(10_000);
      const log = await openLog(dir, { "segment.bytes": 150, "retention.ms": 5_000 }, clock);
      for (let i = 0; i < 6; i++) await log.appendAsLeader(batch([`old${i}`], { timestamp: 1_000n }), 0);
      for (let i = 0; i < 3; i++) await log.appendAsLeader(batch([`new${i}`], { timestamp: 9_000n }), 0);
      await log.updateHighWatermark(log.logEndOffset);
      const deleted = await log.applyRetention();
      assert.ok(deleted > 0);
      assert.ok(log.logStartOffset > 0n);
      const all = values((await log.read(log.logStartOffset, 1 << 20)).records);
      assert.ok(all.every((v) => !v.includes("old") || Number(v.split(":")[0]) >= Number(log.logStartOffset)));
      assert.ok(values((await readAll(log)).records).some((v) => v.endsWith("new2")));
      await assert.rejects(log.read(0n, 100), OffsetOutOfRangeError);
      await log.close();
    } finally {
      cleanup();
    }
  });

  test("size retention keeps the log under retention.bytes", async () => {
    const { dir, cleanup } = tempDir();
    try {
      const log = await openLog(dir, { "segment.bytes": 150, "retention.bytes": 400 });
      for (let i = 0; i < 12; i++) await log.appendAsLeader(batch([`v${i}`]), 0);
      await log.updateHighWatermark(log.logEndOffset);
      await log.applyRetention();
      assert.ok(log.sizeBytes - 150 <= 400, `size ${log.sizeBytes}`);
      await log.close();
    } finally {
      cleanup();
    }
  });

  test("DeleteRecords moves the log start offset", async () => {
    const { dir, cleanup } = tempDir();
    try {
      const log = await openLog(dir, { "segment.bytes": 150 });
      for (let i = 0; i < 8; i++) await log.appendAsLeader(batch([`v${i}`]), 0);
      await log.updateHighWatermark(log.logEndOffset);
      assert.equal(await log.deleteRecordsBefore(5n), 5n);
      await assert.rejects(log.read(4n, 100), OffsetOutOfRangeError);
      assert.equal(values((await log.read(5n, 1)).records)[0], "5:v5");
      await log.close();
      const reopened = await openLog(dir, { "segment.bytes": 150 });
      assert.equal(reopened.logStartOffset, 5n, "the log start offset survives a restart");
      await reopened.close();
    } finally {
      cleanup();
    }
  });

  test("compaction keeps the latest value per key, preserves offsets, and drops old tombstones", async () => {
    const { dir, cleanup } = tempDir();
    try {
      const clock = new ManualClock(100_000);
      const log = await openLog(
        dir,
        { "segment.bytes": 200, "cleanup.policy": "compact", "delete.retention.ms": 10_000 },
        clock,
      );
      await log.appendAsLeader(
        keyed(
          [
            ["a", "1"],
            ["b", "1"],
          ],
          1_000n,
        ),
        0,
      );
      await log.appendAsLeader(
        keyed(
          [
            ["a", "2"],
            ["c", "1"],
          ],
          1_000n,
        ),
        0,
      );
      await log.appendAsLeader(keyed([["b", null]], 1_000n), 0);
      await log.appendAsLeader(keyed([["c", "2"]], 95_000n), 0);
      await log.appendAsLeader(keyed([["d", "1"]], 99_000n), 0);
      await log.rollNow();
      await log.appendAsLeader(keyed([["e", "1"]], 99_000n), 0);
      await log.updateHighWatermark(log.logEndOffset);
      const removed = await log.compact();
      assert.ok(removed >= 4);
      const left = values((await readAll(log)).records);
      assert.deepEqual(
        left,
        ["2:2", "5:2", "6:1", "7:1"],
        "a=2 at 2, c=2 at 5, d and e; b's tombstone is past delete.retention.ms",
      );
      await log.close();
      const reopened = await openLog(dir, { "cleanup.policy": "compact" });
      assert.deepEqual(values((await readAll(reopened)).records), left);
      await reopened.close();
    } finally {
      cleanup();
    }
  });
});

async function readAll(log: PartitionLog): Promise<{ records: Buffer }> {
  const parts: Buffer[] = [];
  let offset = log.logStartOffset;
  while (offset < log.logEndOffset) {
    const r = await log.read(offset, 1 << 20);
    if (r.records.length === 0) break;
    parts.push(r.records);
    // Continue after the last batch (its last offset may be past its last record after compaction).
    const last = [...iterateBatches(r.records)].at(-1)!;
    offset = lastOffsetOf(last.header) + 1n;
  }
  return { records: Buffer.concat(parts) };
}

describe("aborted-transaction index", () => {
  test("entries live with the segment of their marker, survive reopening, and are cut by truncation", async () => {
    const { dir, cleanup } = tempDir();
    try {
      const log = await openLog(dir, { "segment.bytes": 200 });
      for (let i = 0; i < 6; i++) await log.appendAsLeader(batch([`v${i}`]), 0);
      await log.appendAbortedTxn({ producerId: 7n, firstOffset: 1n, lastOffset: 2n, lastStableOffset: 3n });
      await log.appendAbortedTxn({ producerId: 8n, firstOffset: 3n, lastOffset: 5n, lastStableOffset: 6n });
      await log.appendAbortedTxn({ producerId: 8n, firstOffset: 3n, lastOffset: 5n, lastStableOffset: 6n });
      assert.deepEqual(
        log.collectAbortedTxns(0n, 6n).map((e) => e.producerId),
        [7n, 8n],
        "duplicates are not recorded twice",
      );
      assert.deepEqual(
        log.collectAbortedTxns(3n, 6n).map((e) => e.producerId),
        [8n],
      );
      assert.deepEqual(log.collectAbortedTxns(0n, 1n), []);
      await log.close();
      const reopened = await openLog(dir, { "segment.bytes": 200 });
      assert.deepEqual(
        reopened.collectAbortedTxns(0n, 6n).map((e) => e.lastOffset),
        [2n, 5n],
      );
      await reopened.truncateTo(4n);
      assert.deepEqual(
        reopened.collectAbortedTxns(0n, 6n).map((e) => e.lastOffset),
        [2n],
      );
      await reopened.close();
    } finally {
      cleanup();
    }
  });
});
