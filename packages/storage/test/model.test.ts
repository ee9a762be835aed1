// Property test: random sequences of appends, reads, timestamp lookups, rolls (tiny segments),
// truncations, DeleteRecords, clean reopens and crash reopens give the same answers as a simple
// in-memory model of the log: an array of (value, timestamp) by offset plus batch boundaries.

import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { iterateBatches, lastOffsetOf } from "@sluice/protocol/records/batch-header.ts";
import { decodeRecords } from "@sluice/protocol/records/record-batch.ts";
import fc from "fast-check";
import { copyCrashImage } from "../../../tests/helpers/crash-image.ts";
import type { LogConfig } from "../src/log-config.ts";
import { batch, ManualClock, type Opened, openLog, tempDir } from "./helpers.ts";

type Op =
  | { kind: "append"; values: string[]; timestamp: number }
  | { kind: "read"; at: number; maxBytes: number; bound: number | null }
  | { kind: "timestamp"; at: number }
  | { kind: "roll" }
  | { kind: "truncate"; at: number }
  | { kind: "deleteRecords"; at: number }
  | { kind: "reopen" }
  | { kind: "crash" };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant("append" as const),
      values: fc.array(fc.string({ minLength: 1, maxLength: 30 }), { minLength: 1, maxLength: 5 }),
      timestamp: fc.integer({ min: 0, max: 1000 }),
    }),
  },
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant("read" as const),
      at: fc.nat(),
      maxBytes: fc.integer({ min: 1, max: 600 }),
      bound: fc.option(fc.nat(), { nil: null }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant("timestamp" as const), at: fc.integer({ min: 0, max: 1100 }) }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: "roll" as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("deleteRecords" as const), at: fc.nat() }) },
  { weight: 1, arbitrary: fc.constant({ kind: "reopen" as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: "crash" as const }) },
);

interface Model {
  values: string[];
  timestamps: number[];
  /** Base offsets of the batches, ascending. */
  bases: number[];
  logStart: number;
}

function batchOf(m: Model, offset: number): { base: number; end: number } {
  let i = m.bases.length - 1;
  while (m.bases[i]! > offset) i--;
  return { base: m.bases[i]!, end: m.bases[i + 1] ?? m.values.length };
}

test("the log behaves like its model under random operations", { timeout: 120_000 }, async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(opArb, { minLength: 1, maxLength: 40 }),
      fc.constantFrom(0, 700, 1 << 20),
      async (ops, tailCacheBytesPerLog) => {
        const { dir, cleanup } = tempDir();
        const config: Partial<LogConfig> = { "segment.bytes": 300, "index.interval.bytes": 100, "retention.ms": -1 };
        let generation = 0;
        let logDir = join(dir, `g${generation}`);
        const open = (): Promise<Opened> => openLog(logDir, config, { clock: new ManualClock(), tailCacheBytesPerLog });
        let o = await open();
        const m: Model = { values: [], timestamps: [], bases: [], logStart: 0 };
        try {
          for (const op of ops) {
            await apply(o, m, op, async () => {
              if (op.kind === "reopen") {
                await o.manager.close();
                o = await open();
              } else {
                // A crash: what the open log left on disk (page cache included) becomes the next dir.
                const next = join(dir, `g${++generation}`);
                await copyCrashImage(logDir, next);
                await o.manager.close();
                rmSync(logDir, { recursive: true, force: true });
                logDir = next;
                o = await open();
              }
              // As the broker does on a single node (the crash may have lost the checkpointed high watermark).
              await o.log.updateHighWatermark(o.log.logEndOffset);
            });
            assert.equal(o.log.logEndOffset, BigInt(m.values.length), `log end after ${op.kind}`);
            assert.equal(o.log.logStartOffset, BigInt(m.logStart), `log start after ${op.kind}`);
          }
          // The whole log equals the model.
          const all: string[] = [];
          let offset = BigInt(m.logStart);
          while (offset < o.log.logEndOffset) {
            const r = await o.log.read(offset, 1 << 20);
            for (const b of decodeRecords(r.records))
              for (const rec of b.records) if (rec.offset >= m.logStart) all.push(Buffer.from(rec.value!).toString());
            for (const b of iterateBatches(r.records)) offset = lastOffsetOf(b.header) + 1n;
          }
          assert.deepEqual(all, m.values.slice(m.logStart));
          await o.log.verify();
        } finally {
          await o.manager.close().catch(() => {});
          cleanup();
        }
      },
    ),
    { numRuns: Number(process.env.MODEL_RUNS ?? 30) },
  );
});

async function apply(o: Opened, m: Model, op: Op, reopen: () => Promise<void>): Promise<void> {
  const log = o.log;
  switch (op.kind) {
    case "append": {
      const info = await log.appendAsLeader(batch(op.values, { timestamp: BigInt(op.timestamp) }), 0);
      assert.equal(info.baseOffset, BigInt(m.values.length));
      m.bases.push(m.values.length);
      for (const v of op.values) {
        m.values.push(v);
        m.timestamps.push(op.timestamp);
      }
      await log.updateHighWatermark(log.logEndOffset);
      return;
    }
    case "read":
      return checkRead(o, m, op);
    case "timestamp": {
      let expected: number | null = null;
      for (let i = m.logStart; i < m.values.length; i++) {
        if (m.timestamps[i]! >= op.at) {
          expected = i;
          break;
        }
      }
      const found = await log.offsetForTimestamp(BigInt(op.at));
      assert.equal(found === null ? null : Number(found.offset), expected, `first offset with timestamp ≥ ${op.at}`);
      if (found) assert.equal(found.timestamp, BigInt(m.timestamps[expected!]!));
      return;
    }
    case "roll":
      return log.rollNow();
    case "truncate": {
      if (m.values.length === m.logStart) return;
      const at = m.logStart + (op.at % (m.values.length - m.logStart));
      await log.truncateTo(BigInt(at));
      // The whole batch holding `at` goes.
      const cut = batchOf(m, at).base;
      m.values.length = cut;
      m.timestamps.length = cut;
      while (m.bases.length > 0 && m.bases.at(-1)! >= cut) m.bases.pop();
      if (m.logStart > cut) m.logStart = cut;
      return;
    }
    case "deleteRecords": {
      const at = m.logStart + (op.at % (m.values.length - m.logStart + 1));
      assert.equal(await log.deleteRecordsBefore(BigInt(at)), BigInt(at));
      m.logStart = at;
      return;
    }
    case "reopen":
    case "crash":
      return reopen();
  }
}

async function checkRead(o: Opened, m: Model, op: Extract<Op, { kind: "read" }>): Promise<void> {
  const size = m.values.length - m.logStart;
  const at = m.logStart + (size === 0 ? 0 : op.at % (size + 1));
  const maxOffset = op.bound === null ? undefined : m.logStart + (op.bound % (size + 1));
  const r = await o.log.read(BigInt(at), op.maxBytes, maxOffset === undefined ? {} : { maxOffset: BigInt(maxOffset) });
  const bound = maxOffset ?? m.values.length;
  if (at >= bound || at === m.values.length) {
    assert.equal(r.records.length, 0, "nothing at or past the bound");
    return;
  }
  const first = batchOf(m, at);
  if (first.end > bound) {
    assert.equal(r.records.length, 0, "the batch holding the fetch offset reaches past the bound");
    return;
  }
  const batches = [...iterateBatches(r.records)];
  assert.ok(batches.length > 0, "a read below the bound returns at least one batch");
  assert.equal(Number(batches[0]!.header.baseOffset), first.base, "the batch holding the fetch offset comes first");
  assert.equal(r.firstOffset, BigInt(first.base));
  assert.ok(batches.length === 1 || r.records.length <= op.maxBytes, "maxBytes is respected beyond the first batch");
  for (const b of batches) assert.ok(lastOffsetOf(b.header) < bound, "never past the bound");
  let expected = first.base;
  for (const b of decodeRecords(r.records)) {
    for (const rec of b.records) {
      assert.equal(Number(rec.offset), expected++);
      assert.equal(Buffer.from(rec.value!).toString(), m.values[Number(rec.offset)]);
    }
  }
  // A read may stop early at a segment's end, as Kafka's does: the next read continues there.
}
