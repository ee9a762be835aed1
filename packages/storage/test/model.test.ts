// Property test: random sequences of appends, reads, rolls, truncations and close/reopen against a
// simple in-memory model of the log (an array of values by offset) give the same answers.

import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { iterateBatches, lastOffsetOf } from "@sluice/protocol/records/batch-header.ts";
import { decodeRecords } from "@sluice/protocol/records/record-batch.ts";
import fc from "fast-check";
import { nodeDisk } from "../src/disk.ts";
import { DEFAULT_LOG_CONFIG, type LogConfig } from "../src/log-config.ts";
import { PartitionLog } from "../src/partition-log.ts";
import { batch, ManualClock, tempDir } from "./helpers.ts";

type Op =
  | { kind: "append"; values: string[] }
  | { kind: "read"; at: number; maxBytes: number }
  | { kind: "roll" }
  | { kind: "truncate"; at: number }
  | { kind: "reopen" };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant("append" as const),
      values: fc.array(fc.string({ minLength: 1, maxLength: 30 }), { minLength: 1, maxLength: 5 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("read" as const),
      at: fc.nat(),
      maxBytes: fc.integer({ min: 1, max: 2000 }),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: "roll" as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }) },
  { weight: 1, arbitrary: fc.constant({ kind: "reopen" as const }) },
);

const CONFIG: LogConfig = { ...DEFAULT_LOG_CONFIG, "segment.bytes": 400, "index.interval.bytes": 150 };

test("the log behaves like its model under random operations", { timeout: 120_000 }, async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 40 }), async (ops) => {
      const { dir, cleanup } = tempDir();
      const open = () =>
        PartitionLog.open(join(dir, "m-0"), "m", 0, CONFIG, { disk: nodeDisk, clock: new ManualClock() }, null);
      let log = await open();
      // The model: values by offset, and batch boundaries (base offsets) for truncation.
      const model: string[] = [];
      const bases: number[] = [];
      try {
        for (const op of ops) {
          switch (op.kind) {
            case "append": {
              const info = await log.appendAsLeader(batch(op.values), 0);
              assert.equal(info.baseOffset, BigInt(model.length));
              bases.push(model.length);
              model.push(...op.values);
              break;
            }
            case "read": {
              if (model.length === 0) break;
              const at = op.at % model.length;
              const r = await log.read(BigInt(at), op.maxBytes);
              const recs = decodeRecords(r.records).flatMap((b) => b.records);
              assert.ok(recs.length > 0, "a read below the log end returns at least one batch");
              const first = Number(recs[0]!.offset);
              assert.ok(first <= at, "the batch holding the offset comes first");
              for (const rec of recs) assert.equal(Buffer.from(rec.value!).toString(), model[Number(rec.offset)]);
              break;
            }
            case "roll":
              await log.rollNow();
              break;
            case "truncate": {
              if (bases.length === 0) break;
              const base = bases[op.at % bases.length]!;
              await log.truncateTo(BigInt(base));
              model.length = base;
              while (bases.length > 0 && bases.at(-1)! >= base) bases.pop();
              break;
            }
            case "reopen":
              await log.close();
              log = await open();
              break;
          }
          assert.equal(log.logEndOffset, BigInt(model.length));
        }
        // The whole log equals the model.
        const all: string[] = [];
        let offset = 0n;
        while (offset < log.logEndOffset) {
          const r = await log.read(offset, 1 << 20);
          for (const b of decodeRecords(r.records))
            for (const rec of b.records) all[Number(rec.offset)] = Buffer.from(rec.value!).toString();
          offset = lastOffsetOf([...iterateBatches(r.records)].at(-1)!.header) + 1n;
        }
        assert.deepEqual(all, model);
      } finally {
        await log.close().catch(() => {});
        cleanup();
      }
    }),
    { numRuns: 40 },
  );
});
