// Disk faults through the Disk seam: a failed append rejects with a StorageError, leaves the log
// consistent (as if it never happened), and the next append works once the fault is gone.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { StorageError } from "../src/errors.ts";
import { batch, FaultyDisk, openLog, readAll, tempDir, values } from "./helpers.ts";

function storageError(code: string) {
  return (e: unknown) => e instanceof StorageError && e.code === code && e.retriable && e.cause !== undefined;
}

// Small appends are written synchronously (Disk.writeSync), larger ones through the thread pool
// (writev): every write fault is checked on both paths.
for (const mode of ["synchronous", "thread-pool"] as const) {
  describe(`write faults (${mode} writes)`, () => {
    const faultyDisk = (): FaultyDisk => {
      const d = new FaultyDisk();
      d.asyncWritesOnly = mode === "thread-pool";
      return d;
    };
    const assertPath = (d: FaultyDisk): void => {
      if (mode === "synchronous") assert.ok(d.syncWrites > 0, "appends took the synchronous path");
      else assert.equal(d.syncWrites, 0, "appends took the thread-pool path");
    };

    for (const fault of ["EIO", "ENOSPC"] as const) {
      test(`${fault} on write fails that append only; the log is unchanged; later appends work`, async () => {
        const { dir, cleanup } = tempDir();
        const disk = faultyDisk();
        const { manager, log } = await openLog(dir, {}, { disk });
        try {
          await log.appendAsLeader(batch(["one"]), 0);
          disk.writeFault = fault;
          await assert.rejects(log.appendAsLeader(batch(["lost"]), 0), (e: unknown) => {
            assert.ok(storageError("KAFKA_STORAGE_ERROR")(e));
            assert.match((e as Error).message, new RegExp(fault));
            return true;
          });
          disk.writeFault = null;
          assertPath(disk);
          assert.equal(log.logEndOffset, 1n);
          assert.equal(log.sizeBytes, batch(["one"]).length, "the partial write was cut off");
          assert.equal((await log.appendAsLeader(batch(["two"]), 0)).baseOffset, 1n);
          assert.deepEqual(values(await readAll(log)), ["0:one", "1:two"]);
          await manager.close();
          const again = await openLog(dir);
          assert.deepEqual(values(await readAll(again.log)), ["0:one", "1:two"]);
          await again.manager.close();
        } finally {
          cleanup();
        }
      });
    }

    test("a short write is completed", async () => {
      const { dir, cleanup } = tempDir();
      const disk = faultyDisk();
      const { manager, log } = await openLog(dir, {}, { disk });
      try {
        disk.writeFault = "short";
        await log.appendAsLeader(batch(["complete", "me"]), 0);
        assertPath(disk);
        assert.deepEqual(values(await readAll(log)), ["0:complete", "1:me"]);
      } finally {
        await manager.close();
        cleanup();
      }
    });

    test("when the cut after a failed write fails too, the garbage is removed before the next write", async () => {
      const { dir, cleanup } = tempDir();
      const disk = faultyDisk();
      const { manager, log } = await openLog(dir, {}, { disk, tailCacheBytesPerLog: 0 });
      try {
        await log.appendAsLeader(batch(["one"]), 0);
        disk.writeFault = "EIO";
        disk.truncateFault = "EIO";
        await assert.rejects(log.appendAsLeader(batch(["lost"]), 0), storageError("KAFKA_STORAGE_ERROR"));
        disk.writeFault = null;
        await assert.rejects(log.appendAsLeader(batch(["blocked"]), 0), storageError("KAFKA_STORAGE_ERROR"));
        disk.truncateFault = null;
        assert.equal((await log.appendAsLeader(batch(["two"]), 0)).baseOffset, 1n);
        await manager.close();
        const again = await openLog(dir);
        assert.deepEqual(values(await readAll(again.log)), ["0:one", "1:two"]);
        await again.manager.close();
      } finally {
        cleanup();
      }
    });

    test("concurrent appends around a failed write: each gets its own answer, offsets stay dense", async () => {
      const { dir, cleanup } = tempDir();
      const disk = faultyDisk();
      const { manager, log } = await openLog(dir, {}, { disk });
      try {
        await log.appendAsLeader(batch(["first"]), 0);
        disk.writeFault = "ENOSPC";
        const failing = Array.from({ length: 5 }, (_, i) => log.appendAsLeader(batch([`f${i}`]), 0));
        const settled = await Promise.allSettled(failing);
        assert.ok(settled.every((s) => s.status === "rejected"));
        disk.writeFault = null;
        const ok = await Promise.all(Array.from({ length: 5 }, (_, i) => log.appendAsLeader(batch([`k${i}`]), 0)));
        assert.deepEqual(
          ok.map((r) => r.baseOffset),
          [1n, 2n, 3n, 4n, 5n],
        );
        assert.deepEqual(values(await readAll(log)).length, 6);
      } finally {
        await manager.close();
        cleanup();
      }
    });
  });
}

describe("fsync faults and group commit", () => {
  test("EIO on fsync with fsync.before.ack rejects the append, removes its data, and later appends work", async () => {
    const { dir, cleanup } = tempDir();
    const disk = new FaultyDisk();
    const { manager, log } = await openLog(dir, { "fsync.before.ack": true }, { disk });
    try {
      await log.appendAsLeader(batch(["durable"]), 0);
      disk.syncFault = "EIO";
      const failed = await Promise.allSettled([
        log.appendAsLeader(batch(["maybe1"]), 0),
        log.appendAsLeader(batch(["maybe2"]), 0),
      ]);
      assert.ok(failed.every((s) => s.status === "rejected" && storageError("KAFKA_STORAGE_ERROR")(s.reason)));
      disk.syncFault = null;
      const ok = await log.appendAsLeader(batch(["after"]), 0);
      assert.equal(
        ok.baseOffset,
        1n,
        "the unacknowledged data was cut off, so offsets continue after the acknowledged end",
      );
      assert.deepEqual(values(await readAll(log)), ["0:durable", "1:after"]);
      assert.equal(await log.updateHighWatermark(10n), 2n);
    } finally {
      await manager.close();
      cleanup();
    }
  });

  test("after a failed fsync, nothing is acknowledged before the log is cut back", async () => {
    // The order forced here: x and y are written, their fsync fails; z is being written; a roll is
    // queued behind z's write (so before the repair), and z's own fsync succeeds while the roll
    // waits. z must not be acknowledged: that would keep x and y (rejected) in the log.
    const { dir, cleanup } = tempDir();
    const disk = new FaultyDisk();
    const { manager, log } = await openLog(dir, { "fsync.before.ack": true }, { disk });
    const gate = (): { promise: Promise<void>; open: () => void } => {
      let open!: () => void;
      return { promise: new Promise<void>((r) => (open = r)), open };
    };
    const until = async (cond: () => boolean): Promise<void> => {
      while (!cond()) await new Promise((r) => setImmediate(r));
    };
    try {
      const sync = gate();
      disk.syncFault = "EIO";
      disk.syncGate = sync.promise;
      const a1 = log.appendAsLeader(batch(["x"]), 0);
      const a2 = log.appendAsLeader(batch(["y"]), 0);
      await until(() => disk.syncs === 1);
      const write = gate();
      disk.writeGate = write.promise;
      const a3 = log.appendAsLeader(batch(["z"]), 0);
      await until(() => disk.writes === 2);
      const dirSync = gate();
      disk.dirSyncGate = dirSync.promise;
      const roll = log.rollNow();
      disk.syncGate = null;
      sync.open();
      await assert.rejects(a1, storageError("KAFKA_STORAGE_ERROR"));
      await assert.rejects(a2, storageError("KAFKA_STORAGE_ERROR"));
      disk.syncFault = null;
      disk.writeGate = null;
      write.open();
      await until(() => disk.syncs === 2); // z's fsync, while the roll waits
      await new Promise((r) => setTimeout(r, 20));
      disk.dirSyncGate = null;
      dirSync.open();
      await roll;
      await assert.rejects(
        a3,
        (e: unknown) => e instanceof StorageError && e.code === "KAFKA_STORAGE_ERROR" && e.retriable,
      );
      assert.equal(log.logEndOffset, 0n, "nothing unacknowledged is left behind");
      assert.equal((await log.appendAsLeader(batch(["ok"]), 0)).baseOffset, 0n);
      assert.deepEqual(values(await readAll(log)), ["0:ok"]);
    } finally {
      await manager.close();
      cleanup();
    }
  });

  test("ENOSPC on fsync is reported the same way", async () => {
    const { dir, cleanup } = tempDir();
    const disk = new FaultyDisk();
    const { manager, log } = await openLog(dir, { "fsync.before.ack": true }, { disk });
    try {
      disk.syncFault = "ENOSPC";
      await assert.rejects(log.appendAsLeader(batch(["x"]), 0), storageError("KAFKA_STORAGE_ERROR"));
      disk.syncFault = null;
      assert.equal((await log.appendAsLeader(batch(["y"]), 0)).baseOffset, 0n);
    } finally {
      await manager.close();
      cleanup();
    }
  });

  test("group commit: concurrent fsync-before-ack appends share fsyncs and resolve in order", async () => {
    const { dir, cleanup } = tempDir();
    const disk = new FaultyDisk();
    const { manager, log } = await openLog(dir, { "fsync.before.ack": true }, { disk });
    try {
      const order: bigint[] = [];
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          log.appendAsLeader(batch([`c${i}`]), 0).then((r) => {
            order.push(r.baseOffset);
            return r;
          }),
        ),
      );
      assert.deepEqual(
        results.map((r) => r.baseOffset),
        Array.from({ length: 50 }, (_, i) => BigInt(i)),
      );
      assert.deepEqual(
        order,
        [...order].sort((a, b) => (a < b ? -1 : 1)),
        "acknowledged in offset order",
      );
      assert.ok(disk.syncs < 50, `50 appends took ${disk.syncs} fsyncs`);
    } finally {
      await manager.close();
      cleanup();
    }
  });

  test("flush.messages fsyncs before acknowledging the append that reaches it", async () => {
    const { dir, cleanup } = tempDir();
    const disk = new FaultyDisk();
    const { manager, log } = await openLog(dir, { "flush.messages": 3 }, { disk });
    try {
      await log.appendAsLeader(batch(["a"]), 0);
      await log.appendAsLeader(batch(["b"]), 0);
      assert.equal(disk.syncs, 0);
      await log.appendAsLeader(batch(["c"]), 0);
      assert.equal(disk.syncs, 1);
    } finally {
      await manager.close();
      cleanup();
    }
  });

  test("flush.ms: the manager's flush pass fsyncs once the oldest unflushed data is old enough", async () => {
    const { dir, cleanup } = tempDir();
    const disk = new FaultyDisk();
    const { ManualClock } = await import("./helpers.ts");
    const clock = new ManualClock(0);
    const { manager, log } = await openLog(dir, { "flush.ms": 1000 }, { disk, clock });
    try {
      await log.appendAsLeader(batch(["a"]), 0);
      await manager.runFlushPass();
      assert.equal(disk.syncs, 0);
      clock.now = 1000;
      await manager.runFlushPass();
      assert.equal(disk.syncs, 1);
      assert.equal(log.recoveryPoint, 1n);
    } finally {
      await manager.close();
      cleanup();
    }
  });
});

describe("bad CRCs among concurrent appends", () => {
  test("only the append with the bad CRC is refused; the others are written with dense offsets", async () => {
    const { dir, cleanup } = tempDir();
    const { manager, log } = await openLog(dir);
    try {
      const bad = batch(["bad"]);
      bad[bad.length - 1]! ^= 1;
      const results = await Promise.allSettled([
        log.appendAsLeader(batch(["a"]), 0),
        log.appendAsLeader(batch(["b"]), 0),
        log.appendAsLeader(bad, 0),
        log.appendAsLeader(batch(["c"]), 0),
      ]);
      assert.deepEqual(
        results.map((r) => r.status),
        ["fulfilled", "fulfilled", "rejected", "fulfilled"],
      );
      assert.ok(results[2]!.status === "rejected" && storageErrorCode(results[2]!.reason) === "CORRUPT_MESSAGE");
      assert.deepEqual(values(await readAll(log)), ["0:a", "1:b", "2:c"]);
      await log.verify();
    } finally {
      await manager.close();
      cleanup();
    }
  });

  test("with LogAppendTime the client's CRC is checked before it is rewritten", async () => {
    const { dir, cleanup } = tempDir();
    const { manager, log } = await openLog(dir, { "message.timestamp.type": "LogAppendTime" });
    try {
      const bad = batch(["bad"]);
      bad[bad.length - 1]! ^= 1;
      await assert.rejects(log.appendAsLeader(bad, 0), (e: unknown) => storageErrorCode(e) === "CORRUPT_MESSAGE");
      assert.equal(log.logEndOffset, 0n);
    } finally {
      await manager.close();
      cleanup();
    }
  });
});

function storageErrorCode(e: unknown): string | null {
  return e instanceof StorageError ? e.code : null;
}
