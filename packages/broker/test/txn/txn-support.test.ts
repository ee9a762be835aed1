import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { FileProducerIdAllocator, PRODUCER_ID_BLOCK_SIZE } from "../../src/txn/producer-id-allocator.ts";
import { TxnState } from "../../src/txn/transaction-coordinator.ts";
import { decodeTxnKey, decodeTxnValue, encodeTxnKey, encodeTxnValue } from "../../src/txn/txn-log-records.ts";

test("producer ids are unique and never reused after a restart", async () => {
  const dir = mkdtempSync(join(tmpdir(), "pid-"));
  try {
    const a = new FileProducerIdAllocator(dir);
    const first = await Promise.all(Array.from({ length: 1500 }, () => a.next()));
    assert.equal(new Set(first).size, 1500);
    const b = new FileProducerIdAllocator(dir);
    const after = await b.next();
    assert.ok(after > first.reduce((m, x) => (x > m ? x : m)), "no id handed out twice across restarts");
    assert.equal(after % PRODUCER_ID_BLOCK_SIZE, 0n);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("__transaction_state records round-trip through Kafka's schemas", () => {
  const v = {
    producerId: 42n,
    previousProducerId: -1n,
    producerEpoch: 3,
    txnTimeoutMs: 60000,
    state: TxnState.Ongoing,
    partitions: [
      { topic: "a", partition: 0 },
      { topic: "a", partition: 2 },
      { topic: "b", partition: 1 },
    ],
    txnStartTimestampMs: 5n,
    txnLastUpdateTimestampMs: 6n,
  };
  assert.equal(decodeTxnKey(encodeTxnKey("my-txn")), "my-txn");
  assert.deepEqual(decodeTxnValue(encodeTxnValue(v)), v);
  assert.equal(decodeTxnValue(null), null);
});
