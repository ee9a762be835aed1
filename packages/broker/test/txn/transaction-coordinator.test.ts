import assert from "node:assert/strict";
import { beforeEach, describe, test } from "node:test";
import {
  type TopicPartition,
  TransactionCoordinator,
  type TxnLogValue,
  TxnState,
} from "../../src/txn/transaction-coordinator.ts";

class Fakes {
  now = 1_000;
  nextId = 1000n;
  log = new Map<string, TxnLogValue | null>();
  appends: (TxnLogValue | null)[] = [];
  markers: { producerId: bigint; epoch: number; commit: boolean; partitions: TopicPartition[] }[] = [];
  coordinator(): TransactionCoordinator {
    return new TransactionCoordinator(
      { transactionMaxTimeoutMs: 900_000, transactionalIdExpirationMs: 604_800_000 },
      {
        append: async (id, v) => {
          this.log.set(id, v);
          this.appends.push(v);
        },
      },
      {
        writeMarkers: async (producerId, epoch, _ce, commit, partitions) => {
          this.markers.push({ producerId, epoch, commit, partitions: [...partitions] });
        },
      },
      { next: async () => this.nextId++ },
      { nowMs: () => this.now },
    );
  }
}

const tp = (topic: string, partition: number): TopicPartition => ({ topic, partition });

describe("transaction coordinator", () => {
  let f: Fakes;
  let c: TransactionCoordinator;
  beforeEach(() => {
    f = new Fakes();
    c = f.coordinator();
  });

  test("init, add partitions, commit writes COMMIT markers to every partition", async () => {
    const init = await c.initProducerId("tx", 60_000);
    assert.deepEqual(init, { error: "NONE", producerId: 1000n, producerEpoch: 0 });
    assert.equal(await c.addPartitions("tx", 1000n, 0, [tp("a", 0), tp("b", 1)]), "NONE");
    assert.equal(c.get("tx")?.state, TxnState.Ongoing);
    assert.ok(c.isPartOfOngoingTransaction("tx", 1000n, 0, tp("a", 0)));
    assert.ok(!c.isPartOfOngoingTransaction("tx", 1000n, 0, tp("a", 1)));
    assert.equal(await c.endTxn("tx", 1000n, 0, true), "NONE");
    assert.equal(c.get("tx")?.state, TxnState.CompleteCommit);
    assert.deepEqual(f.markers, [{ producerId: 1000n, epoch: 0, commit: true, partitions: [tp("a", 0), tp("b", 1)] }]);
    // Prepare was persisted before the markers, completion after.
    assert.deepEqual(
      f.appends.map((v) => v?.state),
      [TxnState.Empty, TxnState.Ongoing, TxnState.PrepareCommit, TxnState.CompleteCommit],
    );
  });

  test("a second InitProducerId bumps the epoch and fences the old producer", async () => {
    await c.initProducerId("tx", 60_000);
    const again = await c.initProducerId("tx", 60_000);
    assert.deepEqual(again, { error: "NONE", producerId: 1000n, producerEpoch: 1 });
    assert.equal(await c.addPartitions("tx", 1000n, 0, [tp("a", 0)]), "PRODUCER_FENCED");
    assert.equal(await c.endTxn("tx", 1000n, 0, true), "PRODUCER_FENCED");
  });

  test("InitProducerId during an open transaction aborts it with a bumped epoch", async () => {
    await c.initProducerId("tx", 60_000);
    await c.addPartitions("tx", 1000n, 0, [tp("a", 0)]);
    const r = await c.initProducerId("tx", 60_000);
    assert.equal(r.error, "CONCURRENT_TRANSACTIONS");
    assert.deepEqual(f.markers, [{ producerId: 1000n, epoch: 1, commit: false, partitions: [tp("a", 0)] }]);
    const retry = await c.initProducerId("tx", 60_000);
    assert.deepEqual(retry, { error: "NONE", producerId: 1000n, producerEpoch: 2 });
  });

  test("EndTxn without a transaction, or of the wrong kind after completion, is INVALID_TXN_STATE", async () => {
    await c.initProducerId("tx", 60_000);
    assert.equal(await c.endTxn("tx", 1000n, 0, true), "INVALID_TXN_STATE");
    await c.addPartitions("tx", 1000n, 0, [tp("a", 0)]);
    assert.equal(await c.endTxn("tx", 1000n, 0, false), "NONE");
    assert.equal(await c.endTxn("tx", 1000n, 0, false), "NONE", "a retried abort succeeds");
    assert.equal(await c.endTxn("tx", 1000n, 0, true), "INVALID_TXN_STATE");
  });

  test("unknown producer ids and oversized timeouts get Kafka's errors", async () => {
    assert.equal(await c.addPartitions("nope", 5n, 0, [tp("a", 0)]), "INVALID_PRODUCER_ID_MAPPING");
    assert.equal(await c.endTxn("nope", 5n, 0, true), "INVALID_PRODUCER_ID_MAPPING");
    assert.equal((await c.initProducerId("tx", 900_001)).error, "INVALID_TRANSACTION_TIMEOUT");
    await c.initProducerId("tx", 60_000);
    assert.equal(await c.addPartitions("tx", 999n, 0, [tp("a", 0)]), "INVALID_PRODUCER_ID_MAPPING");
  });

  test("a transaction open beyond its timeout is aborted and its producer fenced", async () => {
    await c.initProducerId("tx", 10_000);
    await c.addPartitions("tx", 1000n, 0, [tp("a", 0)]);
    f.now += 5_000;
    assert.equal(await c.abortTimedOut(), 0);
    f.now += 6_000;
    assert.equal(await c.abortTimedOut(), 1);
    assert.equal(c.get("tx")?.state, TxnState.CompleteAbort);
    assert.equal(f.markers[0]?.commit, false);
    assert.equal(await c.endTxn("tx", 1000n, 0, true), "PRODUCER_FENCED", "its epoch was bumped: fenced, as in Kafka");
    assert.equal(await c.addPartitions("tx", 1000n, 0, [tp("a", 0)]), "PRODUCER_FENCED");
  });

  test("after a restart, a transaction left in PrepareCommit is completed from the log", async () => {
    await c.initProducerId("tx", 60_000);
    await c.addPartitions("tx", 1000n, 0, [tp("a", 0)]);
    const ongoing = f.log.get("tx")!;
    const restarted = f.coordinator();
    await restarted.load(new Map([["tx", { ...ongoing, state: TxnState.PrepareCommit }]]));
    assert.equal(restarted.get("tx")?.state, TxnState.CompleteCommit);
    assert.deepEqual(f.markers, [{ producerId: 1000n, epoch: 0, commit: true, partitions: [tp("a", 0)] }]);
  });

  test("concurrent operations on one id are serialised", async () => {
    await c.initProducerId("tx", 60_000);
    const adds = await Promise.all([0, 1, 2, 3].map((p) => c.addPartitions("tx", 1000n, 0, [tp("a", p)])));
    assert.deepEqual(adds, ["NONE", "NONE", "NONE", "NONE"]);
    assert.equal(c.get("tx")?.partitions.size, 4);
  });
});

describe("InitProducerId with the producer's id and epoch (KIP-360)", () => {
  let f: Fakes;
  let c: TransactionCoordinator;
  beforeEach(() => {
    f = new Fakes();
    c = f.coordinator();
  });

  test("the current epoch is bumped; a retry with the previous epoch gets the same answer; older epochs are fenced", async () => {
    await c.initProducerId("tx", 60_000);
    const bumped = await c.initProducerId("tx", 60_000, { producerId: 1000n, producerEpoch: 0 });
    assert.deepEqual(bumped, { error: "NONE", producerId: 1000n, producerEpoch: 1 });
    const retry = await c.initProducerId("tx", 60_000, { producerId: 1000n, producerEpoch: 0 });
    assert.deepEqual(retry, { error: "NONE", producerId: 1000n, producerEpoch: 1 }, "the lost answer, again");
    await c.initProducerId("tx", 60_000, { producerId: 1000n, producerEpoch: 1 });
    const stale = await c.initProducerId("tx", 60_000, { producerId: 1000n, producerEpoch: 0 });
    assert.equal(stale.error, "PRODUCER_FENCED");
    assert.equal(
      (await c.initProducerId("tx", 60_000, { producerId: 55n, producerEpoch: 2 })).error,
      "PRODUCER_FENCED",
    );
  });

  test("after a fence (open transaction taken over) the old epoch cannot claim the new one", async () => {
    await c.initProducerId("tx", 60_000);
    await c.addPartitions("tx", 1000n, 0, [tp("a", 0)]);
    assert.equal((await c.initProducerId("tx", 60_000)).error, "CONCURRENT_TRANSACTIONS");
    const zombie = await c.initProducerId("tx", 60_000, { producerId: 1000n, producerEpoch: 0 });
    assert.equal(zombie.error, "PRODUCER_FENCED");
    assert.deepEqual(await c.initProducerId("tx", 60_000), { error: "NONE", producerId: 1000n, producerEpoch: 2 });
  });

  test("a fenced producer's EndTxn is PRODUCER_FENCED even after its transaction was completed", async () => {
    await c.initProducerId("tx", 60_000);
    await c.addPartitions("tx", 1000n, 0, [tp("a", 0)]);
    await c.endTxn("tx", 1000n, 0, true);
    await c.initProducerId("tx", 60_000);
    assert.equal(await c.endTxn("tx", 1000n, 0, true), "PRODUCER_FENCED");
    assert.equal(await c.endTxn("tx", 1000n, 1, true), "INVALID_TXN_STATE", "the new producer has no transaction yet");
  });
});
