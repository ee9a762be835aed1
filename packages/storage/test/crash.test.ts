// Crash test with a real process: a child appends continuously with fsync before acknowledgement
// and is killed with SIGKILL at random moments; after each kill the log is reopened (recovering
// whatever the kill left) and every acknowledged batch must be there, intact, with offsets dense
// and every batch valid. Then torn tails are made by hand and must be cut, never served.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { iterateBatches, lastOffsetOf } from "@sluice/protocol/records/batch-header.ts";
import { decodeRecords } from "@sluice/protocol/records/record-batch.ts";
import { CLEAN_SHUTDOWN_FILE } from "../src/log-dir-state.ts";
import { batch, openLog, tempDir } from "./helpers.ts";

const APPENDER = join(import.meta.dirname, "fixtures", "appender.ts");

/** Every record's value by offset (first record of each batch, dots stripped). */
async function readAllValues(dir: string): Promise<{ values: string[]; batches: number }> {
  const { manager, log } = await openLog(dir, { "segment.bytes": 64 * 1024 }, {}, "crash");
  try {
    await log.verify();
    const values: string[] = [];
    let batches = 0;
    let offset = log.logStartOffset;
    while (offset < log.logEndOffset) {
      const r = await log.read(offset, 1 << 20);
      assert.ok(r.records.length > 0, `offset ${offset} below the log end ${log.logEndOffset} is readable`);
      for (const b of decodeRecords(r.records)) {
        batches++;
        for (const rec of b.records)
          values[Number(rec.offset)] = Buffer.from(rec.value!).toString().replace(/\.+$/, "");
      }
      for (const b of iterateBatches(r.records)) offset = lastOffsetOf(b.header) + 1n;
    }
    assert.equal(BigInt(values.length), log.logEndOffset);
    for (let i = 0; i < values.length; i++) assert.ok(values[i] !== undefined, `offset ${i} holds a record`);
    return { values, batches };
  } finally {
    await manager.close();
  }
}

/** Runs the appender until it has acknowledged something, kills it at a random moment, returns its acks. */
async function runAndKill(dir: string, from: number): Promise<[number, string][]> {
  const child = spawn(process.execPath, [APPENDER, dir, String(from)], { stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  child.stdout.on("data", (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise((r) => child.once("exit", r));
  try {
    // Start-up time varies with load: wait for the first acknowledgement, then a random moment.
    const started = Date.now();
    while (!out.includes("ack ") && Date.now() - started < 20_000) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 300)));
  } finally {
    child.kill("SIGKILL");
    await exited;
  }
  const acks = out
    .split("\n")
    .filter((l) => l.startsWith("ack "))
    .map((l) => l.split(" "))
    .map(([, offset, value]) => [Number(offset), value!] as [number, string]);
  assert.ok(acks.length > 0, "the child acknowledged appends before it was killed");
  return acks;
}

test("SIGKILL during fsync-before-ack appends never loses an acknowledged batch", { timeout: 90_000 }, async () => {
  const { dir, cleanup } = tempDir();
  try {
    const acked = new Map<number, string>();
    let next = 0;
    for (let round = 0; round < 4; round++) {
      for (const [offset, value] of await runAndKill(dir, next)) acked.set(offset, value);
      const { values } = await readAllValues(dir);
      for (const [offset, value] of acked) {
        assert.equal(values[offset], value, `acknowledged ${value} at ${offset} survived round ${round}`);
        assert.equal(values[offset + 1], `${value}b`, `the second record of ${value} survived`);
      }
      next = 1_000_000 * (round + 1);
    }
  } finally {
    cleanup();
  }
});

test("torn tails (cut or corrupted last bytes) are cut at recovery and never served", { timeout: 30_000 }, async () => {
  const { dir, cleanup } = tempDir();
  try {
    await runAndKill(dir, 0);
    const before = await readAllValues(dir);
    const partition = join(dir, "crash-0");
    const last = readdirSync(partition)
      .filter((n) => n.endsWith(".log"))
      .sort()
      .at(-1)!;
    const file = join(partition, last);
    // Reading closed the log cleanly; tear it as a crash would (no clean-shutdown marker). After a
    // clean shutdown nothing is rescanned, and a damaged batch is reported instead (recovery.test.ts).
    const crash = () => rmSync(join(dir, CLEAN_SHUTDOWN_FILE));
    crash();
    // A torn write: the last batch loses its end.
    truncateSync(file, statSync(file).size - 7);
    const cut = await readAllValues(dir);
    assert.equal(cut.batches, before.batches - 1, "exactly the torn batch is gone");
    assert.deepEqual(cut.values, before.values.slice(0, cut.values.length));
    // A corrupted tail: flip bytes inside the (new) last batch.
    crash();
    const bytes = readFileSync(file);
    bytes[bytes.length - 3]! ^= 0x5a;
    writeFileSync(file, bytes);
    const corrupted = await readAllValues(dir);
    assert.equal(corrupted.batches, cut.batches - 1);
    // And the log takes appends again right after the last whole batch.
    const { manager, log } = await openLog(dir, { "segment.bytes": 64 * 1024 }, {}, "crash");
    try {
      assert.equal((await log.appendAsLeader(batch(["after"]), 0)).baseOffset, BigInt(corrupted.values.length));
    } finally {
      await manager.close();
    }
  } finally {
    cleanup();
  }
});
