import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { type ProducerBatchInfo, ProducerStateManager } from "../../src/txn/producer-state.ts";

const batch = (seq: number, count: number, over: Partial<ProducerBatchInfo> = {}): ProducerBatchInfo => ({
  producerId: 7n,
  producerEpoch: 0,
  baseSequence: seq,
  lastOffsetDelta: count - 1,
  isTransactional: false,
  isControl: false,
  maxTimestampMs: 1000n,
  ...over,
});

describe("idempotent producer state", () => {
  test("a new producer may start at any sequence; the next batch must follow it", () => {
    const s = new ProducerStateManager();
    assert.equal(s.check(batch(42, 3)).kind, "append");
    s.apply(batch(42, 3), 0n, 2n);
    assert.equal(s.check(batch(45, 1)).kind, "append");
    const gap = s.check(batch(47, 1));
    assert.equal(gap.kind, "error");
    assert.equal(gap.kind === "error" && gap.error, "OUT_OF_ORDER_SEQUENCE_NUMBER");
  });

  test("a retried batch among the last five is a duplicate with its original offsets", () => {
    const s = new ProducerStateManager();
    for (let i = 0; i < 6; i++) s.apply(batch(i * 2, 2), BigInt(i * 2), BigInt(i * 2 + 1));
    const dup = s.check(batch(4, 2));
    assert.equal(dup.kind, "duplicate");
    assert.equal(dup.kind === "duplicate" && dup.batch.firstOffset, 4n);
    // The first batch fell out of the window of five: no longer recognised as a duplicate.
    assert.equal(s.check(batch(0, 2)).kind, "error");
  });

  test("an older epoch is fenced; a newer epoch must start at sequence 0", () => {
    const s = new ProducerStateManager();
    s.apply(batch(0, 1, { producerEpoch: 3 }), 0n, 0n);
    const old = s.check(batch(1, 1, { producerEpoch: 2 }));
    assert.equal(old.kind === "error" && old.error, "INVALID_PRODUCER_EPOCH");
    const bad = s.check(batch(5, 1, { producerEpoch: 4 }));
    assert.equal(bad.kind === "error" && bad.error, "OUT_OF_ORDER_SEQUENCE_NUMBER");
    assert.equal(s.check(batch(0, 1, { producerEpoch: 4 })).kind, "append");
  });

  test("sequence numbers wrap from INT32_MAX to 0", () => {
    const s = new ProducerStateManager();
    s.apply(batch(2 ** 31 - 2, 2), 0n, 1n);
    assert.equal(s.check(batch(0, 1)).kind, "append");
  });

  test("open transactions hold back the last stable offset; an abort is recorded", () => {
    const s = new ProducerStateManager();
    const txn = { isTransactional: true };
    s.apply(batch(0, 2, txn), 10n, 11n);
    s.apply(batch(0, 1, { producerId: 8n }), 12n, 12n);
    assert.equal(s.lastStableOffset(13n), 10n);
    const marker = batch(-1, 1, { isControl: true, isTransactional: true });
    const aborted = s.apply(marker, 13n, 13n, { type: "ABORT", coordinatorEpoch: 0 });
    assert.deepEqual(aborted, { producerId: 7n, firstOffset: 10n, lastOffset: 13n });
    assert.equal(s.lastStableOffset(14n), 14n);
  });

  test("snapshots round-trip and reject corruption", () => {
    const s = new ProducerStateManager();
    s.apply(batch(0, 2, { isTransactional: true }), 0n, 1n);
    s.apply(batch(0, 3, { producerId: 9n, producerEpoch: 2 }), 2n, 4n);
    s.apply(batch(-1, 1, { isControl: true, isTransactional: true }), 5n, 5n, { type: "ABORT", coordinatorEpoch: 1 });
    const snap = s.toSnapshot();
    const t = new ProducerStateManager();
    t.loadSnapshot(snap);
    assert.deepEqual([...t.entries()], [...s.entries()]);
    assert.throws(() => t.loadSnapshot(snap.subarray(0, snap.length - 3)), /truncated/);
  });

  test("idle producers expire unless a transaction is open", () => {
    const s = new ProducerStateManager();
    s.apply(batch(0, 1, { maxTimestampMs: 0n }), 0n, 0n);
    s.apply(batch(0, 1, { producerId: 8n, isTransactional: true, maxTimestampMs: 0n }), 1n, 1n);
    assert.equal(s.expire(10_000n, 5_000n), 1);
    assert.equal(s.entry(7n), undefined);
    assert.ok(s.entry(8n));
  });
});
