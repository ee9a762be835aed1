// Startup after clean and unclean shutdowns. An unclean shutdown is simulated by copying the log
// dir while the log is open (what a killed process leaves behind); crash.test.ts does it for real.

import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { copyCrashImage } from "../../../tests/helpers/crash-image.ts";
import { StorageError } from "../src/errors.ts";
import { CLEAN_SHUTDOWN_FILE } from "../src/log-dir-state.ts";
import { batch, FaultyDisk, type Opened, openLog, readAll, tempDir, values } from "./helpers.ts";

const seg0 = (dir: string) => join(dir, "t-0", "00000000000000000000.log");

async function fill(o: Opened, n: number, size = 40): Promise<void> {
  for (let i = 0; i < n; i++) await o.log.appendAsLeader(batch([`v${i}`.padEnd(size, ".")]), 0);
}

describe("unclean shutdown", () => {
  test("a torn tail is cut and never served; appends continue after the last whole batch", async () => {
    const { dir, cleanup } = tempDir();
    const live = await openLog(join(dir, "live"));
    try {
      await fill(live, 5, 2);
      const crashed = await copyCrashImage(join(dir, "live"), join(dir, "crashed"));
      truncateSync(seg0(crashed), statSync(seg0(crashed)).size - 5);
      const again = await openLog(crashed);
      assert.equal(again.log.logEndOffset, 4n);
      assert.deepEqual(
        values(await readAll(again.log)).map((v) => v.slice(0, 4)),
        ["0:v0", "1:v1", "2:v2", "3:v3"],
      );
      assert.equal((await again.log.appendAsLeader(batch(["v4b"]), 0)).baseOffset, 4n);
      await again.manager.close();
    } finally {
      await live.manager.close();
      cleanup();
    }
  });

  test("a corrupted last batch (bad CRC) and trailing garbage are cut", async () => {
    const { dir, cleanup } = tempDir();
    const live = await openLog(join(dir, "live"));
    try {
      await fill(live, 3, 2);
      const crashed = await copyCrashImage(join(dir, "live"), join(dir, "crashed"));
      const bytes = readFileSync(seg0(crashed));
      bytes[bytes.length - 3]! ^= 0xff;
      writeFileSync(seg0(crashed), Buffer.concat([bytes, Buffer.alloc(100, 7)]));
      const again = await openLog(crashed);
      assert.equal(again.log.logEndOffset, 2n);
      assert.equal(statSync(seg0(crashed)).size, again.log.sizeBytes);
      await again.manager.close();
    } finally {
      await live.manager.close();
      cleanup();
    }
  });

  test("recovery reads in chunks: batches across chunk boundaries and one larger than a chunk are kept, a bad CRC in a later chunk cuts there", async () => {
    const { dir, cleanup } = tempDir();
    const config = { "max.message.bytes": 8 << 20 };
    const live = await openLog(join(dir, "live"), config);
    try {
      // ~300 KiB batches straddle the 1 MiB read chunks; the 2.5 MiB one spans several.
      const sizes = [300, 300, 300, 300, 2500, 300, 300, 300, 300, 300, 300];
      const starts: number[] = [];
      for (const [i, kib] of sizes.entries()) {
        starts.push(live.log.sizeBytes);
        await live.log.appendAsLeader(batch([`v${i}:`.padEnd(kib * 1024, "x")]), 0);
      }
      const whole = await copyCrashImage(join(dir, "live"), join(dir, "whole"));
      const again = await openLog(whole, config);
      assert.equal(again.log.logEndOffset, BigInt(sizes.length));
      assert.deepEqual(
        values(await readAll(again.log)).map((v) => /^\d+:v\d+:/.exec(v)?.[0]),
        sizes.map((_, i) => `${i}:v${i}:`),
      );
      await again.manager.close();
      // A flipped byte inside batch 8 (well past the first chunks): batches 0..7 stay.
      const bad = await copyCrashImage(join(dir, "live"), join(dir, "bad"));
      const bytes = readFileSync(seg0(bad));
      bytes[starts[8]! + 5000]! ^= 0xff;
      writeFileSync(seg0(bad), bytes);
      const cutOpen = await openLog(bad, config);
      assert.equal(cutOpen.log.logEndOffset, 8n);
      assert.equal(statSync(seg0(bad)).size, starts[8]);
      assert.equal((await cutOpen.log.appendAsLeader(batch(["after"]), 0)).baseOffset, 8n);
      await cutOpen.manager.close();
    } finally {
      await live.manager.close();
      cleanup();
    }
  });

  test("only segments from the recovery point on are scanned; an invalid byte drops every later segment", async () => {
    const { dir, cleanup } = tempDir();
    // Segments below the recovery point are not scanned: only their tails after the last index entry.
    const cfg = { "segment.bytes": 2000, "index.interval.bytes": 200 };
    const live = await openLog(join(dir, "live"), cfg);
    try {
      await fill(live, 100);
      await live.log.flush();
      await live.manager.checkpoint();
      const flushedSegments = live.log.segmentCount;
      assert.ok(flushedSegments >= 4);
      await fill(live, 40);
      const crashed = await copyCrashImage(join(dir, "live"), join(dir, "crashed"));
      const disk = new FaultyDisk();
      const again = await openLog(crashed, cfg, { disk });
      assert.equal(again.log.logEndOffset, 140n);
      const unflushedBytes = live.log.sizeBytes - (live.log.sizeBytes * (flushedSegments - 1)) / live.log.segmentCount;
      assert.ok(disk.logBytesRead < unflushedBytes + 4000, `read ${disk.logBytesRead} bytes at startup`);
      await again.manager.close();

      // Corrupt a batch in an unflushed, non-last segment: that segment is cut there, later ones go.
      const crashed2 = await copyCrashImage(join(dir, "live"), join(dir, "crashed2"));
      const bases = live.log.segmentBaseOffsets();
      const victim = bases[bases.length - 2]!;
      const path = join(crashed2, "t-0", `${victim.toString().padStart(20, "0")}.log`);
      const bytes = readFileSync(path);
      bytes[bytes.readInt32BE(8) + 12 + 40]! ^= 0xff; // second batch of the segment
      writeFileSync(path, bytes);
      const third = await openLog(crashed2, cfg);
      assert.equal(third.log.logEndOffset, victim + 1n);
      assert.deepEqual(third.log.segmentBaseOffsets().at(-1), victim);
      await third.manager.close();
    } finally {
      await live.manager.close();
      cleanup();
    }
  });

  test("a corrupt recovery-point checkpoint means a full recovery, not lost data", async () => {
    const { dir, cleanup } = tempDir();
    const live = await openLog(join(dir, "live"), { "segment.bytes": 500 });
    try {
      await fill(live, 20);
      await live.manager.checkpoint();
      const crashed = await copyCrashImage(join(dir, "live"), join(dir, "crashed"));
      writeFileSync(join(crashed, "recovery-point-offset-checkpoint"), "garbage\n");
      const again = await openLog(crashed, { "segment.bytes": 500 });
      assert.equal(again.log.logEndOffset, 20n);
      await again.manager.close();
    } finally {
      await live.manager.close();
      cleanup();
    }
  });
});

describe("clean shutdown", () => {
  test("close writes Kafka's checkpoint files and the marker; the next start scans nothing", async () => {
    const { dir, cleanup } = tempDir();
    try {
      const cfg = { "segment.bytes": 12_000, "index.interval.bytes": 500 };
      const first = await openLog(dir, cfg);
      await fill(first, 300);
      await first.log.updateHighWatermark(250n);
      await first.manager.close();
      assert.ok(readdirSync(dir).includes(CLEAN_SHUTDOWN_FILE));
      assert.equal(readFileSync(join(dir, "recovery-point-offset-checkpoint"), "utf8"), "0\n1\nt 0 300\n");
      assert.equal(readFileSync(join(dir, "replication-offset-checkpoint"), "utf8"), "0\n1\nt 0 250\n");
      assert.equal(readFileSync(join(dir, "log-start-offset-checkpoint"), "utf8"), "0\n1\nt 0 0\n");
      assert.equal(readFileSync(join(dir, "t-0", "leader-epoch-checkpoint"), "utf8"), "0\n1\n0 0\n");
      const disk = new FaultyDisk();
      const again = await openLog(dir, cfg, { disk });
      assert.ok(!readdirSync(dir).includes(CLEAN_SHUTDOWN_FILE), "the marker is removed while the dir is open");
      assert.equal(again.log.logEndOffset, 300n);
      assert.equal(again.log.highWatermark, 250n);
      // Each segment's tail after its last index entry, and the active segment's first header.
      assert.ok(disk.logBytesRead < 3 * 700, `read ${disk.logBytesRead} of ${again.log.sizeBytes} bytes at startup`);
      assert.equal(values(await readAll(again.log)).length, 300);
      await again.manager.close();
    } finally {
      cleanup();
    }
  });

  test("leftovers of interrupted work (.tmp, .cleaned, .deleted) are removed at startup", async () => {
    const { dir, cleanup } = tempDir();
    try {
      const first = await openLog(dir);
      await fill(first, 3);
      await first.manager.close();
      for (const n of [
        "00000000000000000000.index.tmp",
        "00000000000000000000.log.cleaned",
        "00000000000000000007.log.deleted",
      ])
        writeFileSync(join(dir, "t-0", n), "x");
      const again = await openLog(dir);
      assert.deepEqual(
        readdirSync(join(dir, "t-0")).filter((n) => /tmp|cleaned|deleted/.test(n)),
        [],
      );
      assert.equal(again.log.logEndOffset, 3n);
      await again.manager.close();
    } finally {
      cleanup();
    }
  });
});

describe("indexes", () => {
  test("a corrupt or mismatched index is rebuilt from the log", async () => {
    const { dir, cleanup } = tempDir();
    const cfg = { "index.interval.bytes": 50, "segment.bytes": 400 };
    try {
      const first = await openLog(dir, cfg);
      await fill(first, 20, 2);
      await first.manager.close();
      const names = readdirSync(join(dir, "t-0")).filter((n) => n.endsWith(".index"));
      // Torn, pointing mid-batch, and unordered files.
      writeFileSync(join(dir, "t-0", names[0]!), Buffer.from([0, 0, 0, 9, 0x7f, 0, 0]));
      writeFileSync(join(dir, "t-0", names[1]!), Buffer.from([0, 0, 0, 1, 0, 0, 0, 3]));
      writeFileSync(join(dir, "t-0", names.at(-1)!), Buffer.from([0, 0, 0, 2, 0, 0, 0, 90, 0, 0, 0, 1, 0, 0, 0, 80]));
      writeFileSync(join(dir, "t-0", names[2]!.replace(".index", ".timeindex")), Buffer.alloc(12, 0xff));
      const again = await openLog(dir, cfg, { tailCacheBytesPerLog: 0 });
      for (let i = 0; i < 20; i++)
        assert.equal(values((await again.log.read(BigInt(i), 1)).records)[0]?.slice(0, 4), `${i}:v${i}`.slice(0, 4));
      assert.equal((await again.log.offsetForTimestamp(1_000n))?.offset, 0n);
      await again.manager.close();
      assert.notDeepEqual(
        readFileSync(join(dir, "t-0", names[0]!)),
        Buffer.from([0, 0, 0, 9, 0x7f, 0, 0]),
        "rewritten",
      );
    } finally {
      cleanup();
    }
  });

  test("appends write only the .log: the active segment's index files appear at close, and a crash before that rebuilds them", async () => {
    const { dir, cleanup } = tempDir();
    const cfg = { "index.interval.bytes": 50 };
    const live = await openLog(join(dir, "live"), cfg, { tailCacheBytesPerLog: 0 });
    try {
      for (let i = 0; i < 40; i++)
        await live.log.appendAsLeader(batch([`v${i}`.padEnd(60, ".")], { timestamp: BigInt(1000 + i) }), 0);
      const index = (d: string, suffix: string) => join(d, "t-0", `00000000000000000000${suffix}`);
      const crashed = await copyCrashImage(join(dir, "live"), join(dir, "crashed"));
      for (const suffix of [".index", ".timeindex"])
        assert.equal(
          existsSync(index(crashed, suffix)) ? statSync(index(crashed, suffix)).size : 0,
          0,
          `no ${suffix} written yet`,
        );
      const again = await openLog(crashed, cfg, { tailCacheBytesPerLog: 0 });
      assert.equal(again.log.logEndOffset, 40n);
      for (const i of [0, 17, 39])
        assert.equal(values((await again.log.read(BigInt(i), 1)).records)[0]?.slice(0, 4), `${i}:v${i}`.slice(0, 4));
      assert.equal((await again.log.offsetForTimestamp(1025n))?.offset, 25n);
      await again.manager.close();
      await live.manager.close();
      // The rebuilt files are what the live log wrote at its clean close.
      for (const suffix of [".index", ".timeindex"]) {
        assert.ok(statSync(index(join(dir, "live"), suffix)).size > 0, `${suffix} written at close`);
        assert.deepEqual(readFileSync(index(crashed, suffix)), readFileSync(index(join(dir, "live"), suffix)), suffix);
      }
    } finally {
      await live.manager.close();
      cleanup();
    }
  });

  test("missing index files are rebuilt", async () => {
    const { dir, cleanup } = tempDir();
    try {
      const first = await openLog(dir, { "segment.bytes": 400 });
      await fill(first, 20, 2);
      await first.manager.close();
      const { unlinkSync } = await import("node:fs");
      for (const n of readdirSync(join(dir, "t-0"))) if (/\.(time)?index$/.test(n)) unlinkSync(join(dir, "t-0", n));
      const again = await openLog(dir, { "segment.bytes": 400 });
      assert.equal(values(await readAll(again.log)).length, 20);
      await again.manager.close();
    } finally {
      cleanup();
    }
  });
});

describe("corruption in sealed segments", () => {
  test("a corrupt batch in the middle of a sealed segment is reported by reads and verify, never served", async () => {
    const { dir, cleanup } = tempDir();
    const cfg = { "segment.bytes": 400 };
    try {
      const first = await openLog(dir, cfg);
      for (let i = 0; i < 20; i++) await first.log.appendAsLeader(batch([`value-${i}`]), 0);
      await first.manager.close();
      const bytes = readFileSync(seg0(dir));
      const second = bytes.readInt32BE(8) + 12;
      bytes[second + 40]! ^= 0xff; // the second batch's max timestamp: covered by its CRC
      writeFileSync(seg0(dir), bytes);
      const again = await openLog(dir, cfg, { tailCacheBytesPerLog: 0 });
      const corrupt = (e: unknown) => e instanceof StorageError && e.code === "CORRUPT_MESSAGE" && !e.retriable;
      await assert.rejects(again.log.verify(), corrupt);
      await assert.rejects(again.log.read(1n, 1 << 20), corrupt);
      const before = await again.log.read(0n, 1 << 20);
      assert.deepEqual(values(before.records), ["0:value-0"], "the good batch before it is served, the bad one is not");
      assert.deepEqual(
        values((await again.log.read(2n, 1 << 20)).records)[0],
        "2:value-2",
        "batches after it are still readable",
      );
      await again.manager.close();
    } finally {
      cleanup();
    }
  });
});
