import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { computeBatchCrc, iterateBatches, lastOffsetOf } from "@sluice/protocol/records/batch-header.ts";
import { buildRecordBatch, decodeRecords } from "@sluice/protocol/records/record-batch.ts";
import { OffsetOutOfRangeError, StorageError } from "../src/errors.ts";
import type { AppendInfo } from "../src/partition-log.ts";
import { batch, FaultyDisk, ManualClock, openLog, readAll, tempDir, values } from "./helpers.ts";

function isStorageError(code: string) {
  return (e: unknown) => e instanceof StorageError && e.code === code;
}

describe("append", () => {
  test("offsets are assigned per record from the log end, batches keep their record count", async () => {
    const { dir, cleanup } = tempDir();
    const { manager, log } = await openLog(dir);
    try {
      const a = await log.appendAsLeader(batch(["a", "b", "c"]), 4);
      assert.deepEqual([a.baseOffset, a.lastOffset, a.logEndOffset, a.logStartOffset], [0n, 2n, 3n, 0n]);
      const b = await log.appendAsLeader(Buffer.concat([batch(["d"]), batch(["e", "f"])]), 4);
      assert.deepEqual([b.baseOffset, b.lastOffset, b.logEndOffset], [3n, 5n, 6n]);
      assert.deepEqual(
        b.batches.map((x) => x.header.baseOffset),
        [3n, 4n],
      );
      assert.deepEqual(values(await readAll(log)), ["0:a", "1:b", "2:c", "3:d", "4:e", "5:f"]);
    } finally {
      await manager.close();
      cleanup();
    }
  });

  test("the leader epoch is stamped on each batch and recorded in the epoch cache", async () => {
    const { dir, cleanup } = tempDir();
    const { manager, log } = await openLog(dir);
    try {
      await log.appendAsLeader(batch(["a"]), 3);
      await log.appendAsLeader(batch(["b", "c"]), 5);
      const blob = await readAll(log);
      assert.deepEqual(
        [...iterateBatches(blob)].map((b) => b.header.partitionLeaderEpoch),
        [3, 5],
      );
      assert.deepEqual(log.leaderEpochCache.list(), [
        { epoch: 3, startOffset: 0n },
        { epoch: 5, startOffset: 1n },
      ]);
      assert.deepEqual(log.leaderEpochCache.endOffsetFor(3, log.logEndOffset), { epoch: 3, endOffset: 1n });
    } finally {
      await manager.close();
      cleanup();
    }
  });

  test("batches arriving together go out in one write; concurrent appends coalesce", async () => {
    const { dir, cleanup } = tempDir();
    const disk = new FaultyDisk();
    const { manager, log } = await openLog(dir, {}, { disk });
    try {
      await log.appendAsLeader(batch(["warm"]), 0);
      const before = disk.writes;
      await log.appendAsLeader(Buffer.concat([batch(["a"]), batch(["b"]), batch(["c"])]), 0);
      assert.equal(disk.writes - before, 1, "three batches of one append: one write");
      const mid = disk.writes;
      const all = await Promise.all(Array.from({ length: 20 }, (_, i) => log.appendAsLeader(batch([`c${i}`]), 0)));
      assert.ok(disk.writes - mid < 20, `20 concurrent appends took ${disk.writes - mid} writes`);
      assert.deepEqual(
        all.map((r) => r.baseOffset),
        Array.from({ length: 20 }, (_, i) => BigInt(4 + i)),
      );
    } finally {
      await manager.close();
      cleanup();
    }
  });

  test("LogAppendTime stamps the broker's time as the batch max timestamp", async () => {
    const { dir, cleanup } = tempDir();
    const clock = new ManualClock(42_000);
    const { manager, log } = await openLog(dir, { "message.timestamp.type": "LogAppendTime" }, { clock });
    try {
      const info = await log.appendAsLeader(batch(["x", "y"], { timestamp: 5n }), 0);
      assert.equal(info.logAppendTimeMs, 42_000n);
      const [parsed] = decodeRecords(await readAll(log));
      assert.equal(parsed!.header.maxTimestamp, 42_000n);
      assert.deepEqual(
        parsed!.records.map((r) => r.timestamp),
        [42_000n, 42_000n],
      );
      const create = await log.appendAsLeader(batch(["z"]), 0, { timestampType: "CreateTime" });
      assert.equal(create.logAppendTimeMs, -1n);
    } finally {
      await manager.close();
      cleanup();
    }
  });

  test("an invalid batch rejects the whole append: bad CRC, record count, too large, not a batch", async () => {
    const { dir, cleanup } = tempDir();
    const { manager, log } = await openLog(dir, { "max.message.bytes": 200 });
    try {
      const bad = batch(["ok"]);
      bad.writeUInt8(bad.readUInt8(bad.length - 1) ^ 1, bad.length - 1);
      await assert.rejects(
        log.appendAsLeader(Buffer.concat([batch(["fine"]), bad]), 0),
        isStorageError("CORRUPT_MESSAGE"),
      );
      const miscounted = batch(["a", "b"]);
      miscounted.writeInt32BE(5, 57); // record count no longer matches lastOffsetDelta (CRC covers it: recompute)
      miscounted.writeUInt32BE(computeBatchCrc(miscounted, 0, miscounted.readInt32BE(8)), 17);
      await assert.rejects(log.appendAsLeader(miscounted, 0), isStorageError("INVALID_RECORD"));
      await assert.rejects(log.appendAsLeader(batch(["x".repeat(300)]), 0), isStorageError("MESSAGE_TOO_LARGE"));
      await assert.rejects(log.appendAsLeader(Buffer.from("not a batch at all"), 0), isStorageError("CORRUPT_MESSAGE"));
      await assert.rejects(log.appendAsLeader(Buffer.alloc(0), 0), isStorageError("INVALID_RECORD"));
      assert.equal(log.logEndOffset, 0n, "nothing was written");
      assert.equal((await log.appendAsLeader(batch(["next"]), 0)).baseOffset, 0n);
    } finally {
      await manager.close();
      cleanup();
    }
  });

  test("appends emit 'append' after they are acknowledged", async () => {
    const { dir, cleanup } = tempDir();
    const { manager, log } = await openLog(dir);
    try {
      const seen: bigint[] = [];
      log.on("append", (info: AppendInfo) => seen.push(info.baseOffset));
      await log.appendAsLeader(batch(["a"]), 0);
      await log.appendAsLeader(batch(["b"]), 0);
      assert.deepEqual(seen, [0n, 1n]);
    } finally {
      await manager.close();
      cleanup();
    }
  });
});

describe("read", () => {
  test("a read from inside a batch returns the whole batch, and the first batch even over maxBytes", async () => {
    const { dir, cleanup } = tempDir();
    const { manager, log } = await openLog(dir, {}, { tailCacheBytesPerLog: 0 });
    try {
      await log.appendAsLeader(batch(["x".repeat(500), "y".repeat(500)]), 0);
      await log.appendAsLeader(batch(["z"]), 0);
      const mid = await log.read(1n, 10);
      assert.deepEqual(values(mid.records), [`0:${"x".repeat(500)}`, `1:${"y".repeat(500)}`]);
      assert.equal(mid.firstOffset, 0n);
      assert.equal(
        (await log.read(0n, 10, { minOneMessage: false })).records.length,
        0,
        "without minOneMessage nothing fits",
      );
      assert.deepEqual(values((await log.read(2n, 1 << 20)).records), ["2:z"]);
    } finally {
      await manager.close();
      cleanup();
    }
  });

  test("maxOffset (high watermark / LSO) bounds reads; the log end gives nothing; outside the log is out of range", async () => {
    const { dir, cleanup } = tempDir();
    const { manager, log } = await openLog(dir, {}, { tailCacheBytesPerLog: 0 });
    try {
      await log.appendAsLeader(batch(["a", "b"]), 0);
      await log.appendAsLeader(batch(["c"]), 0);
      assert.deepEqual(values((await log.read(0n, 1 << 20, { maxOffset: 2n })).records), ["0:a", "1:b"]);
      assert.equal(
        (await log.read(0n, 1 << 20, { maxOffset: 1n })).records.length,
        0,
        "a batch crossing maxOffset is held back",
      );
      assert.equal((await log.read(2n, 1 << 20, { maxOffset: 2n })).records.length, 0);
      const atEnd = await log.read(3n, 100);
      assert.equal(atEnd.records.length, 0);
      assert.equal(atEnd.firstOffset, undefined);
      await assert.rejects(log.read(4n, 100), OffsetOutOfRangeError);
      await assert.rejects(
        log.read(-1n, 100),
        (e: unknown) => e instanceof OffsetOutOfRangeError && e.logEndOffset === 3n,
      );
    } finally {
      await manager.close();
      cleanup();
    }
  });

  test("reads stop at maxBytes on batch boundaries and continue where they stopped, across segments", async () => {
    const { dir, cleanup } = tempDir();
    const { manager, log } = await openLog(
      dir,
      { "segment.bytes": 1000, "index.interval.bytes": 100 },
      { tailCacheBytesPerLog: 0 },
    );
    try {
      for (let i = 0; i < 60; i++) await log.appendAsLeader(batch([`v${i}`.padEnd(30, ".")]), 0);
      assert.ok(log.segmentCount > 3);
      const got: string[] = [];
      let offset = 0n;
      while (offset < log.logEndOffset) {
        const r = await log.read(offset, 250);
        assert.ok(r.records.length > 0 && r.records.length <= 250);
        for (const b of iterateBatches(r.records)) offset = lastOffsetOf(b.header) + 1n;
        got.push(...values(r.records));
      }
      assert.deepEqual(
        got.map((v) => v.split(":")[0]),
        Array.from({ length: 60 }, (_, i) => String(i)),
      );
    } finally {
      await manager.close();
      cleanup();
    }
  });

  test("a sequential reader reads each batch from disk once, even batches larger than maxBytes", async () => {
    const { dir, cleanup } = tempDir();
    const disk = new FaultyDisk();
    const { manager, log } = await openLog(dir, {}, { disk, tailCacheBytesPerLog: 0 });
    try {
      for (let i = 0; i < 30; i++) await log.appendAsLeader(batch([`v${i}`.padEnd(3000, ".")]), 0);
      // The first read looks ahead from the index (a window with room for a scan); it is not counted.
      const first = await log.read(0n, 1000);
      let offset = 1n;
      assert.equal(first.firstOffset, 0n);
      const before = disk.logBytesRead;
      let served = 0;
      while (offset < log.logEndOffset) {
        const r = await log.read(offset, 1000);
        assert.equal(r.firstOffset, offset, "one whole batch per read (minOneMessage)");
        for (const b of iterateBatches(r.records)) offset = lastOffsetOf(b.header) + 1n;
        served += r.records.length;
      }
      // Every later read is sized from the header seen at the end of the previous one: a batch
      // larger than maxBytes is not read a second time.
      const read = disk.logBytesRead - before;
      assert.ok(read < served * 1.1, `${read} bytes read from disk to serve ${served}`);
    } finally {
      await manager.close();
      cleanup();
    }
  });

  test("the tail cache serves recent appends with the same bytes as the disk", async () => {
    const { dir, cleanup } = tempDir();
    const cached = await openLog(join(dir, "a"), {}, { tailCacheBytesPerLog: 1 << 20 });
    const plain = await openLog(join(dir, "b"), {}, { tailCacheBytesPerLog: 0 });
    try {
      for (let i = 0; i < 30; i++) {
        const blob = batch([`r${i}`, `s${i}`]);
        await cached.log.appendAsLeader(Buffer.from(blob), 1);
        await plain.log.appendAsLeader(Buffer.from(blob), 1);
      }
      for (const [offset, maxBytes, maxOffset] of [
        [0n, 1 << 20, 60n],
        [7n, 200, 60n],
        [31n, 1, 60n],
        [10n, 1 << 20, 21n],
      ] as const) {
        const a = await cached.log.read(offset, maxBytes, { maxOffset });
        const b = await plain.log.read(offset, maxBytes, { maxOffset });
        assert.deepEqual(a, b, `read(${offset}, ${maxBytes}, ${maxOffset})`);
      }
    } finally {
      await cached.manager.close();
      await plain.manager.close();
      cleanup();
    }
  });
});

describe("segments", () => {
  test("the active segment rolls by segment.bytes; files are named by base offset; the log reopens the same", async () => {
    const { dir, cleanup } = tempDir();
    const first = await openLog(dir, { "segment.bytes": 300, "index.interval.bytes": 100 });
    try {
      for (let i = 0; i < 20; i++) await first.log.appendAsLeader(batch([`v${i}`.padEnd(50, ".")]), 0);
      assert.ok(first.log.segmentCount > 3, `rolled into ${first.log.segmentCount} segments`);
      const bases = first.log.segmentBaseOffsets();
      const names = readdirSync(join(dir, "t-0"))
        .filter((n) => n.endsWith(".log"))
        .sort();
      assert.deepEqual(
        names,
        bases.map((b) => `${b.toString().padStart(20, "0")}.log`),
      );
      const before = values(await readAll(first.log));
      await first.manager.close();
      const again = await openLog(dir, { "segment.bytes": 300 });
      assert.equal(again.log.logEndOffset, 20n);
      assert.deepEqual(values(await readAll(again.log)), before);
      for (let i = 0; i < 20; i++)
        assert.equal(values((await again.log.read(BigInt(i), 1)).records)[0]?.split(":")[0], String(i));
      await again.manager.close();
    } finally {
      cleanup();
    }
  });

  test("the active segment rolls by segment.ms, counted from its first batch's timestamp", async () => {
    const { dir, cleanup } = tempDir();
    const { manager, log } = await openLog(dir, { "segment.ms": 1000 });
    try {
      await log.appendAsLeader(batch(["a"], { timestamp: 10_000n }), 0);
      await log.appendAsLeader(batch(["b"], { timestamp: 10_500n }), 0);
      assert.equal(log.segmentCount, 1);
      await log.appendAsLeader(batch(["c"], { timestamp: 11_001n }), 0);
      assert.deepEqual(log.segmentBaseOffsets(), [0n, 2n]);
    } finally {
      await manager.close();
      cleanup();
    }
  });

  test("the active segment rolls when its offset index is full (segment.index.bytes)", async () => {
    const { dir, cleanup } = tempDir();
    const { manager, log } = await openLog(dir, { "segment.index.bytes": 16, "index.interval.bytes": 1 });
    try {
      for (let i = 0; i < 10; i++) await log.appendAsLeader(batch([`v${i}`]), 0);
      assert.ok(log.segmentCount >= 3, `${log.segmentCount} segments`);
      assert.deepEqual(
        values(await readAll(log)).map((v) => v.split(":")[0]),
        Array.from({ length: 10 }, (_, i) => String(i)),
      );
    } finally {
      await manager.close();
      cleanup();
    }
  });
});

describe("timestamps", () => {
  test("ListOffsets: earliest, latest, max timestamp, first offset with timestamp ≥ T", async () => {
    const { dir, cleanup } = tempDir();
    const { manager, log } = await openLog(dir, { "segment.bytes": 200, "index.interval.bytes": 1 });
    try {
      await log.appendAsLeader(batch(["t100"], { timestamp: 100n }), 1);
      await log.appendAsLeader(
        buildRecordBatch({
          records: [
            { value: Buffer.from("t200"), timestamp: 200n },
            { value: Buffer.from("t350"), timestamp: 350n },
            { value: Buffer.from("t300"), timestamp: 300n },
          ],
        }),
        2,
      );
      await log.appendAsLeader(batch(["t250"], { timestamp: 250n }), 2);
      assert.deepEqual(await log.offsetForTimestamp("earliest"), { offset: 0n, timestamp: -1n, leaderEpoch: 1 });
      assert.deepEqual(await log.offsetForTimestamp("latest"), { offset: 5n, timestamp: -1n, leaderEpoch: 2 });
      assert.deepEqual(await log.offsetForTimestamp("maxTimestamp"), { offset: 2n, timestamp: 350n, leaderEpoch: 2 });
      assert.deepEqual(await log.offsetForTimestamp(150n), { offset: 1n, timestamp: 200n, leaderEpoch: 2 });
      assert.deepEqual(await log.offsetForTimestamp(300n), { offset: 2n, timestamp: 350n, leaderEpoch: 2 });
      assert.deepEqual(await log.offsetForTimestamp(100n), { offset: 0n, timestamp: 100n, leaderEpoch: 1 });
      assert.equal(await log.offsetForTimestamp(351n), null);
    } finally {
      await manager.close();
      cleanup();
    }
  });

  test("timestamp lookups survive a reopen (time index loaded from disk)", async () => {
    const { dir, cleanup } = tempDir();
    const cfg = { "segment.bytes": 150, "index.interval.bytes": 1 };
    const first = await openLog(dir, cfg);
    for (let i = 0; i < 12; i++)
      await first.log.appendAsLeader(batch([`v${i}`], { timestamp: BigInt(1000 + i * 10) }), 0);
    await first.manager.close();
    const again = await openLog(dir, cfg);
    try {
      for (let i = 0; i < 12; i++) {
        assert.equal((await again.log.offsetForTimestamp(BigInt(1000 + i * 10 - 5)))?.offset, BigInt(i));
      }
      assert.equal((await again.log.offsetForTimestamp("maxTimestamp"))?.offset, 11n);
    } finally {
      await again.manager.close();
      cleanup();
    }
  });
});

describe("truncation and followers", () => {
  test("truncateTo removes everything from an offset, across segments, and the epoch cache follows", async () => {
    const { dir, cleanup } = tempDir();
    const { manager, log } = await openLog(dir, { "segment.bytes": 200 });
    try {
      for (let i = 0; i < 10; i++) await log.appendAsLeader(batch([`v${i}`]), i < 5 ? 1 : 2);
      await log.updateHighWatermark(10n);
      const truncated: bigint[] = [];
      log.on("truncate", (o: bigint) => truncated.push(o));
      await log.truncateTo(3n);
      assert.equal(log.logEndOffset, 3n);
      assert.equal(log.highWatermark, 3n);
      assert.deepEqual(truncated, [3n]);
      assert.deepEqual(values(await readAll(log)), ["0:v0", "1:v1", "2:v2"]);
      assert.equal(log.leaderEpochCache.latestEpoch(), 1);
      assert.equal((await log.appendAsLeader(batch(["again"]), 3)).baseOffset, 3n);
      await manager.close();
      const again = await openLog(dir, { "segment.bytes": 200 });
      assert.deepEqual(values(await readAll(again.log)), ["0:v0", "1:v1", "2:v2", "3:again"]);
      await again.manager.close();
    } finally {
      cleanup();
    }
  });

  test("truncating inside a batch removes that whole batch", async () => {
    const { dir, cleanup } = tempDir();
    const { manager, log } = await openLog(dir);
    try {
      await log.appendAsLeader(batch(["a"]), 0);
      await log.appendAsLeader(batch(["b", "c", "d"]), 0);
      await log.truncateTo(2n);
      assert.equal(log.logEndOffset, 1n);
    } finally {
      await manager.close();
      cleanup();
    }
  });

  test("appendAsFollower keeps the leader's offsets and epochs, and refuses going backwards", async () => {
    const { dir, cleanup } = tempDir();
    const leader = await openLog(join(dir, "leader"));
    const follower = await openLog(join(dir, "follower"));
    try {
      await leader.log.appendAsLeader(batch(["a", "b"]), 1);
      await leader.log.appendAsLeader(batch(["c"]), 2);
      const fetched = await readAll(leader.log);
      const info = await follower.log.appendAsFollower(fetched);
      assert.deepEqual([info.baseOffset, info.logEndOffset], [0n, 3n]);
      assert.deepEqual(await readAll(follower.log), fetched);
      assert.deepEqual(follower.log.leaderEpochCache.list(), leader.log.leaderEpochCache.list());
      await assert.rejects(follower.log.appendAsFollower(fetched), isStorageError("INVALID_RECORD"));
      // A diverged follower truncates to the leader's end of its epoch, then continues.
      await follower.log.truncateTo(leader.log.leaderEpochCache.endOffsetFor(1, leader.log.logEndOffset).endOffset);
      assert.equal(follower.log.logEndOffset, 2n);
    } finally {
      await leader.manager.close();
      await follower.manager.close();
      cleanup();
    }
  });

  test("truncating below the log start empties the log and restarts it there", async () => {
    const { dir, cleanup } = tempDir();
    const { manager, log } = await openLog(dir);
    try {
      for (let i = 0; i < 4; i++) await log.appendAsLeader(batch([`v${i}`]), 0);
      await log.updateHighWatermark(4n);
      await log.deleteRecordsBefore(3n);
      await log.truncateTo(1n);
      assert.deepEqual([log.logStartOffset, log.logEndOffset], [1n, 1n]);
      assert.equal((await log.appendAsLeader(batch(["x"]), 0)).baseOffset, 1n);
    } finally {
      await manager.close();
      cleanup();
    }
  });

  test("the high watermark is clamped to the log, emits when it moves, and survives a restart", async () => {
    const { dir, cleanup } = tempDir();
    const first = await openLog(dir);
    try {
      await first.log.appendAsLeader(batch(["a", "b", "c"]), 0);
      const moved: bigint[] = [];
      first.log.on("highWatermark", (hw: bigint) => moved.push(hw));
      assert.equal(await first.log.updateHighWatermark(99n), 3n);
      await first.log.updateHighWatermark(3n);
      assert.deepEqual(moved, [3n]);
      await first.log.updateHighWatermark(2n);
      await first.manager.close();
      const again = await openLog(dir);
      assert.equal(again.log.highWatermark, 2n);
      await again.manager.close();
    } finally {
      cleanup();
    }
  });
});

describe("producer snapshots", () => {
  test("snapshots are opaque files named by offset; the newest are kept; truncation drops later ones", async () => {
    const { dir, cleanup } = tempDir();
    const { manager, log } = await openLog(dir);
    try {
      for (let i = 0; i < 5; i++) await log.appendAsLeader(batch([`v${i}`]), 0);
      await log.writeProducerSnapshot(1n, Buffer.from("one"));
      await log.writeProducerSnapshot(3n, Buffer.from("three"));
      await log.writeProducerSnapshot(5n, Buffer.from("five"));
      assert.deepEqual(await log.snapshotOffsets(), [3n, 5n]);
      assert.ok(readdirSync(join(dir, "t-0")).includes("00000000000000000005.snapshot"));
      assert.deepEqual(await log.readLatestProducerSnapshot(), { offset: 5n, data: Buffer.from("five") });
      await log.truncateTo(4n);
      assert.deepEqual(await log.readLatestProducerSnapshot(), { offset: 3n, data: Buffer.from("three") });
    } finally {
      await manager.close();
      cleanup();
    }
  });
});

describe("log manager", () => {
  test("logs are spread over log dirs and found again after a restart; deleteLog removes one", async () => {
    const { dir, cleanup } = tempDir();
    const dirs = [join(dir, "d1"), join(dir, "d2")];
    const { LogManager } = await import("../src/log-manager.ts");
    try {
      const m = await LogManager.open(dirs);
      for (let p = 0; p < 4; p++) await (await m.getOrCreateLog("spread", p)).appendAsLeader(batch([`p${p}`]), 0);
      assert.equal(m.listLogs().length, 4);
      assert.deepEqual(
        dirs.map((d) => readdirSync(d).filter((n) => n.startsWith("spread-")).length),
        [2, 2],
      );
      await m.close();
      const m2 = await LogManager.open(dirs);
      assert.equal((await m2.listOnDisk()).length, 4);
      const log = await m2.getOrCreateLog("spread", 3);
      assert.deepEqual(values(await readAll(log)), ["0:p3"]);
      await m2.deleteLog("spread", 3);
      assert.equal(m2.getLog("spread", 3), undefined);
      assert.equal((await m2.listOnDisk()).length, 3);
      await m2.close();
    } finally {
      cleanup();
    }
  });

  test("a closed log refuses appends with LOG_CLOSED", async () => {
    const { dir, cleanup } = tempDir();
    const { manager, log } = await openLog(dir);
    await manager.close();
    try {
      await assert.rejects(log.appendAsLeader(batch(["late"]), 0), isStorageError("LOG_CLOSED"));
    } finally {
      cleanup();
    }
  });
});
