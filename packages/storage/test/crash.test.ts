// Crash test with a real process: a child appends continuously with fsync before acknowledgement
// and is killed with SIGKILL at random moments; after each restart every acknowledged batch must be
// intact, offsets dense and the log readable. Then torn tails are written by hand and must be cut.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { test } from "node:test";
import { iterateBatches, lastOffsetOf } from "@sluice/protocol/records/batch-header.ts";
import { decodeRecords } from "@sluice/protocol/records/record-batch.ts";
import { nodeDisk } from "../src/disk.ts";
import { DEFAULT_LOG_CONFIG } from "../src/log-config.ts";
import { PartitionLog } from "../src/partition-log.ts";
import { ManualClock, tempDir } from "./helpers.ts";

async function readAllValues(dir: string): Promise<string[]> {
  const log = await PartitionLog.open(
    dir,
    "crash",
    0,
    { ...DEFAULT_LOG_CONFIG, "segment.bytes": 64 * 1024 },
    { disk: nodeDisk, clock: new ManualClock() },
    null,
  );
  const out: string[] = [];
  let offset = log.logStartOffset;
  while (offset < log.logEndOffset) {
    const r = await log.read(offset, 1 << 20);
    if (r.records.length === 0) break;
    for (const b of decodeRecords(r.records))
      for (const rec of b.records) out[Number(rec.offset)] = Buffer.from(rec.value!).toString().replace(/\.+$/, "");
    offset = lastOffsetOf([...iterateBatches(r.records)].at(-1)!.header) + 1n;
  }
  assert.equal(BigInt(out.length), log.logEndOffset);
  await log.close();
  return out;
}

test("SIGKILL during fsync-before-ack appends never loses an acknowledged batch", { timeout: 60_000 }, async () => {
  const { dir, cleanup } = tempDir();
  const logDir = join(dir, "crash-0");
  try {
    let next = 0;
    for (let round = 0; round < 4; round++) {
      const child = spawn(process.execPath, [join(import.meta.dirname, "fixtures/appender.ts"), logDir, String(next)], {
        stdio: ["ignore", "pipe", "inherit"],
      });
      let out = "";
      child.stdout.on("data", (d: Buffer) => {
        out += d.toString();
      });
      // Kill at a random moment once the child is appending (its start-up time varies with load).
      const started = Date.now();
      while (!out.includes("ack ") && Date.now() - started < 20_000) await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 400)));
      child.kill("SIGKILL");
      await new Promise((r) => child.once("exit", r));
      const acked = out
        .split("\n")
        .filter((l) => l.startsWith("ack "))
        .map((l) => l.split(" "));
      assert.ok(acked.length > 0, `round ${round}: the child acknowledged appends before it was killed`);
      const values = await readAllValues(logDir);
      for (const [, offset, value] of acked)
        assert.equal(values[Number(offset)], value, `acknowledged ${value} at ${offset} survived`);
      // A plain loop: forEach would skip holes, which are exactly what this looks for.
      for (let i = 0; i < values.length; i++) assert.ok(values[i] !== undefined, `offset ${i} is readable`);
      next = values.length + 1000 * (round + 1);
    }
  } finally {
    cleanup();
  }
});
