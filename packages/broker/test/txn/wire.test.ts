// Idempotence and transactions over the wire with the in-process broker: InitProducerId at every
// version, duplicate/gap/epoch handling on produce, KIP-890 rejection of a produce to a partition
// outside the transaction, the LSO and AbortedTransactions on Fetch, transactional offsets
// (UNSTABLE_OFFSET_COMMIT for require_stable), the operator APIs with their filters, Kafka's error
// codes for bad input, and the expiry / timeout machinery under a controlled clock.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ErrorCode } from "@sluice/protocol";
import { buildRecordBatch, decodeRecords } from "@sluice/protocol/records/record-batch.ts";
import pino from "pino";
import { Broker } from "../../src/broker.ts";
import { buildConfig } from "../../src/config.ts";
import { offsetsStore } from "../../src/group/handlers.ts";
import { OFFSETS_TOPIC, partitionFor } from "../../src/group/persistence.ts";
import type { RunningBroker } from "../../src/index.ts";
import { defaultPlugins } from "../../src/plugins.ts";
import { serialAppend } from "../../src/topics.ts";
import { Produce } from "../apis.ts";
import {
  AddOffsetsToTxn,
  DescribeProducers,
  DescribeTransactions,
  FindCoordinator,
  InitProducerId,
  ListTransactions,
  OffsetCommit,
  OffsetFetch,
  TxnOffsetCommit,
} from "../group/group-apis.ts";
import { createTopic, fetchOne, sleep, testBroker, WireClient } from "../helpers.ts";
import { addPartitions, endTxn, initTxn } from "./txn-calls.ts";

interface BatchOpts {
  producerId: bigint;
  producerEpoch: number;
  baseSequence: number;
  transactional?: boolean;
  timestamp?: bigint;
}

function producerBatch(values: string[], o: BatchOpts): Buffer {
  return buildRecordBatch({
    records: values.map((v) => ({
      value: Buffer.from(v),
      ...(o.timestamp !== undefined ? { timestamp: o.timestamp } : {}),
    })),
    producerId: o.producerId,
    producerEpoch: o.producerEpoch,
    baseSequence: o.baseSequence,
    transactional: o.transactional ?? false,
  });
}

async function produceTo(
  c: WireClient,
  topic: string,
  partition: number,
  records: Buffer,
  transactionalId: string | null = null,
) {
  const r = await c.call(Produce, 9, {
    transactionalId,
    acks: -1,
    timeoutMs: 5000,
    topicData: [{ name: topic, partitionData: [{ index: partition, records }] }],
  });
  return r.responses[0]!.partitionResponses[0]!;
}

/** AddOffsetsToTxn v3 of the group to the producer's transaction: its error code. */
async function addOffsets(
  c: WireClient,
  transactionalId: string,
  p: { producerId: bigint; producerEpoch: number },
  groupId: string,
) {
  return (
    await c.call(AddOffsetsToTxn, 3, {
      transactionalId,
      producerId: p.producerId,
      producerEpoch: p.producerEpoch,
      groupId,
    })
  ).errorCode;
}

/** TxnOffsetCommit v3 of one partition of topic "tx" (no group membership): the response. */
function txnOffsetCommit(
  c: WireClient,
  transactionalId: string,
  groupId: string,
  p: { producerId: bigint; producerEpoch: number },
  partitionIndex: number,
  committedOffset: bigint,
  committedMetadata = "",
) {
  return c.call(TxnOffsetCommit, 3, {
    transactionalId,
    groupId,
    producerId: p.producerId,
    producerEpoch: p.producerEpoch,
    generationId: -1,
    memberId: "",
    groupInstanceId: null,
    topics: [
      { name: "tx", partitions: [{ partitionIndex, committedOffset, committedLeaderEpoch: -1, committedMetadata }] },
    ],
  });
}

function values(records: Uint8Array | null): { offset: bigint; value: string | null; control: boolean }[] {
  if (!records || records.length === 0) return [];
  return decodeRecords(records).flatMap((b) =>
    b.records.map((r) => ({
      offset: r.offset,
      value: r.value === null ? null : Buffer.from(r.value).toString(),
      control: (b.header.attributes & 0x20) !== 0,
    })),
  );
}

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(2);
  }
}

describe("idempotence and transactions over the wire", () => {
  let b: RunningBroker;
  let c: WireClient;
  before(async () => {
    b = await testBroker();
    c = await WireClient.connect(b.port);
    await createTopic(c, "idem", 1);
    await createTopic(c, "tx", 2);
  });
  after(async () => {
    c.close();
    await b.stop();
  });

  test("InitProducerId v0–v5 without a transactional id: a fresh, unique producer id every time (v3+ id and epoch ignored, as Kafka)", async () => {
    const ids = new Set<bigint>();
    for (let v = 0; v <= 5; v++) {
      const r = await c.call(InitProducerId, v, {
        transactionalId: null,
        transactionTimeoutMs: 60_000,
        producerId: -1n,
        producerEpoch: -1,
      });
      assert.equal(r.errorCode, ErrorCode.NONE, `v${v}`);
      assert.equal(r.producerEpoch, 0);
      ids.add(r.producerId);
      if (v >= 3) {
        const again = await c.call(InitProducerId, v, {
          transactionalId: null,
          transactionTimeoutMs: 60_000,
          producerId: r.producerId,
          producerEpoch: 0,
        });
        assert.notEqual(again.producerId, r.producerId, "a new id, not a bumped epoch of a claimed one");
        ids.add(again.producerId);
      }
    }
    assert.equal(ids.size, 9);
  });

  test("idempotent produce: a retried batch gets its original offset and is not appended; a gap is OUT_OF_ORDER_SEQUENCE_NUMBER; an old epoch is INVALID_PRODUCER_EPOCH", async () => {
    const r = await c.call(InitProducerId, 4, {
      transactionalId: null,
      transactionTimeoutMs: 60_000,
      producerId: -1n,
      producerEpoch: -1,
    });
    const pid = r.producerId;
    const first = await produceTo(
      c,
      "idem",
      0,
      producerBatch(["a", "b"], { producerId: pid, producerEpoch: 0, baseSequence: 0 }),
    );
    assert.equal(first.errorCode, ErrorCode.NONE);
    const second = await produceTo(
      c,
      "idem",
      0,
      producerBatch(["c"], { producerId: pid, producerEpoch: 0, baseSequence: 2 }),
    );
    const dup = await produceTo(
      c,
      "idem",
      0,
      producerBatch(["a", "b"], { producerId: pid, producerEpoch: 0, baseSequence: 0 }),
    );
    assert.equal(dup.errorCode, ErrorCode.NONE);
    assert.equal(dup.baseOffset, first.baseOffset, "the duplicate is answered with its original offset");
    const gap = await produceTo(
      c,
      "idem",
      0,
      producerBatch(["x"], { producerId: pid, producerEpoch: 0, baseSequence: 9 }),
    );
    assert.equal(gap.errorCode, ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER);
    const bumped = await produceTo(
      c,
      "idem",
      0,
      producerBatch(["d"], { producerId: pid, producerEpoch: 1, baseSequence: 0 }),
    );
    assert.equal(bumped.errorCode, ErrorCode.NONE);
    const stale = await produceTo(
      c,
      "idem",
      0,
      producerBatch(["y"], { producerId: pid, producerEpoch: 0, baseSequence: 3 }),
    );
    assert.equal(stale.errorCode, ErrorCode.INVALID_PRODUCER_EPOCH);
    const f = await fetchOne(c, "idem", 0, 0n);
    assert.deepEqual(
      values(f.responses[0]!.partitions[0]!.records).map((x) => x.value),
      ["a", "b", "c", "d"],
      "no duplicate, nothing rejected in the log",
    );
    assert.equal(second.baseOffset, 2n);
  });

  test("KIP-890: a transactional produce to a partition not added to the transaction is INVALID_TXN_STATE and not appended", async () => {
    const p = await initTxn(c, "kip890");
    assert.deepEqual(await addPartitions(c, "kip890", p, "tx", [0]), [ErrorCode.NONE]);
    const before = (await fetchOne(c, "tx", 1, 0n)).responses[0]!.partitions[0]!.highWatermark;
    const bad = await produceTo(
      c,
      "tx",
      1,
      producerBatch(["nope"], { ...p, baseSequence: 0, transactional: true }),
      "kip890",
    );
    assert.equal(bad.errorCode, ErrorCode.INVALID_TXN_STATE);
    const noTxnId = await produceTo(
      c,
      "tx",
      0,
      producerBatch(["nope"], { ...p, baseSequence: 0, transactional: true }),
      null,
    );
    assert.equal(noTxnId.errorCode, ErrorCode.INVALID_TXN_STATE, "a transactional batch needs its transactional id");
    assert.equal((await fetchOne(c, "tx", 1, 0n)).responses[0]!.partitions[0]!.highWatermark, before);
    assert.equal(await endTxn(c, "kip890", p, false), ErrorCode.NONE);
  });

  test("read_committed: the LSO holds at an open transaction; an abort is listed in AbortedTransactions; control records take offsets", async () => {
    await createTopic(c, "lso", 1);
    const p = await initTxn(c, "lso-txn");
    await produceTo(c, "lso", 0, producerBatch(["plain-0"], { producerId: -1n, producerEpoch: -1, baseSequence: -1 }));
    assert.deepEqual(await addPartitions(c, "lso-txn", p, "lso", [0]), [ErrorCode.NONE]);
    const t = await produceTo(
      c,
      "lso",
      0,
      producerBatch(["aborted-1", "aborted-2"], { ...p, baseSequence: 0, transactional: true }),
      "lso-txn",
    );
    assert.equal(t.errorCode, ErrorCode.NONE);
    assert.equal(t.baseOffset, 1n);
    const open = (await fetchOne(c, "lso", 0, 0n, { isolationLevel: 1 })).responses[0]!.partitions[0]!;
    assert.equal(open.highWatermark, 3n);
    assert.equal(open.lastStableOffset, 1n, "the LSO is the open transaction's first offset");
    assert.deepEqual(
      values(open.records).map((x) => x.value),
      ["plain-0"],
      "read_committed stops at the LSO",
    );
    const ru = (await fetchOne(c, "lso", 0, 0n, { isolationLevel: 0 })).responses[0]!.partitions[0]!;
    assert.equal(values(ru.records).length, 3, "read_uncommitted reads up to the high watermark");
    assert.equal(await endTxn(c, "lso-txn", p, false), ErrorCode.NONE);
    for (const version of [4, 11, 12]) {
      const rc = (await fetchOne(c, "lso", 0, 0n, { isolationLevel: 1, version })).responses[0]!.partitions[0]!;
      assert.equal(rc.highWatermark, 4n, `v${version}: the ABORT marker took offset 3`);
      assert.equal(rc.lastStableOffset, 4n);
      assert.deepEqual(
        rc.abortedTransactions?.map((a) => [a.producerId, a.firstOffset]),
        [[p.producerId, 1n]],
        `Fetch v${version}`,
      );
      const all = values(rc.records);
      assert.deepEqual(
        all.map((x) => [x.offset, x.control]),
        [
          [0n, false],
          [1n, false],
          [2n, false],
          [3n, true],
        ],
      );
    }
    const committedTxn = await initTxn(c, "lso-txn");
    await addPartitions(c, "lso-txn", committedTxn, "lso", [0]);
    await produceTo(
      c,
      "lso",
      0,
      producerBatch(["committed-5"], { ...committedTxn, baseSequence: 0, transactional: true }),
      "lso-txn",
    );
    assert.equal(await endTxn(c, "lso-txn", committedTxn, true), ErrorCode.NONE);
    const after = (await fetchOne(c, "lso", 0, 4n, { isolationLevel: 1 })).responses[0]!.partitions[0]!;
    assert.deepEqual(after.abortedTransactions ?? [], [], "no aborted transaction in the fetched range");
    assert.deepEqual(
      values(after.records).map((x) => [x.control ? "COMMIT marker" : x.value, x.control]),
      [
        ["committed-5", false],
        ["COMMIT marker", true],
      ],
    );
  });

  test("TxnOffsetCommit: require_stable gets UNSTABLE_OFFSET_COMMIT while the transaction is open; the offset counts only on commit", async () => {
    const group = "txn-offsets";
    await c.call(OffsetCommit, 8, {
      groupId: group,
      generationIdOrMemberEpoch: -1,
      memberId: "",
      topics: [{ name: "tx", partitions: [{ partitionIndex: 0, committedOffset: 1n }] }],
    });
    const p = await initTxn(c, "offsets-txn");
    const txnCommit = (committedMetadata: string) =>
      txnOffsetCommit(c, "offsets-txn", group, p, 0, 9n, committedMetadata);
    const notAdded = await txnCommit("");
    assert.equal(notAdded.topics[0]?.partitions[0]?.errorCode, ErrorCode.INVALID_TXN_STATE, "AddOffsetsToTxn first");
    assert.equal(await addOffsets(c, "offsets-txn", p, group), ErrorCode.NONE);
    const tc = await txnCommit("in-txn");
    assert.equal(tc.topics[0]?.partitions[0]?.errorCode, ErrorCode.NONE);
    const fetch = async (requireStable: boolean, version = 7) => {
      const r =
        version >= 8
          ? (
              await c.call(OffsetFetch, version, {
                groups: [{ groupId: group, topics: [{ name: "tx", partitionIndexes: [0] }] }],
                requireStable,
              })
            ).groups[0]!.topics
          : (
              await c.call(OffsetFetch, version, {
                groupId: group,
                topics: [{ name: "tx", partitionIndexes: [0] }],
                requireStable,
              })
            ).topics;
      const x = r[0]!.partitions[0]!;
      return [x.errorCode, x.committedOffset];
    };
    assert.deepEqual(await fetch(true), [ErrorCode.UNSTABLE_OFFSET_COMMIT, -1n]);
    assert.deepEqual(await fetch(true, 8), [ErrorCode.UNSTABLE_OFFSET_COMMIT, -1n]);
    assert.deepEqual(await fetch(false), [ErrorCode.NONE, 1n], "without require_stable: the last committed offset");
    assert.equal(await endTxn(c, "offsets-txn", p, true), ErrorCode.NONE);
    assert.deepEqual(await fetch(true), [ErrorCode.NONE, 9n]);
  });

  test("a TxnOffsetCommit still waiting to be appended when its transaction ends is refused, and nothing lands after the marker", async () => {
    const group = "txn-race";
    const n = b.broker.context!.config.int("offsets.topic.num.partitions");
    const index = partitionFor(group, n);
    let other = 0;
    while (partitionFor(`txn-race-other-${other}`, n) !== index) other++;
    const p = await initTxn(c, "race-txn");
    assert.equal(await addOffsets(c, "race-txn", p, group), ErrorCode.NONE);
    const offsetsPartition = b.broker.context!.topics.partition(OFFSETS_TOPIC, index)!;
    // Hold the group's __consumer_offsets partition: a plain commit of another group takes the
    // partition's write queue and waits; the transactional commit queues behind it; then EndTxn
    // writes its marker (it goes straight to the partition's append chain, ahead of the commit).
    let release!: () => void;
    const held = serialAppend(offsetsPartition, () => new Promise<void>((r) => (release = r)));
    // One connection per request left waiting (a connection answers in request order), one to look.
    const [c2, c3, c4] = await Promise.all([
      WireClient.connect(b.port),
      WireClient.connect(b.port),
      WireClient.connect(b.port),
    ]);
    try {
      const plain = c2.call(OffsetCommit, 8, {
        groupId: `txn-race-other-${other}`,
        generationIdOrMemberEpoch: -1,
        memberId: "",
        topics: [{ name: "tx", partitions: [{ partitionIndex: 0, committedOffset: 3n }] }],
      });
      const store = offsetsStore(b.broker.context!);
      await until(() => store.queueDepth(index).appending, "the plain commit is being appended");
      let txnDone = false;
      const txnCommit = txnOffsetCommit(c3, "race-txn", group, p, 1, 5n).finally(() => {
        txnDone = true;
      });
      await until(() => store.queueDepth(index).waiting === 1, "the transactional commit waits behind it");
      const ended = endTxn(c, "race-txn", p, true);
      // PrepareCommit is recorded right before the markers are queued.
      let state: string | undefined;
      for (let i = 0; i < 2000 && state !== "PrepareCommit"; i++) {
        if (i > 0) await sleep(5);
        const d = await c4.call(DescribeTransactions, 0, { transactionalIds: ["race-txn"] });
        state = d.transactionStates[0]?.transactionState;
      }
      assert.equal(state, "PrepareCommit", "EndTxn has queued its markers");
      assert.equal(txnDone, false, "the transactional commit is still waiting");
      release();
      await held;
      assert.equal((await plain).topics[0]?.partitions[0]?.errorCode, ErrorCode.NONE);
      assert.equal(await ended, ErrorCode.NONE);
      const tc = await txnCommit;
      assert.equal(tc.topics[0]?.partitions[0]?.errorCode, ErrorCode.INVALID_TXN_STATE);
      // Nothing transactional is left open in the partition, and the group has no pending offset.
      const log = offsetsPartition.log;
      assert.equal(offsetsPartition.producers.lastStableOffset(log.logEndOffset), log.logEndOffset);
      const fetched = await c.call(OffsetFetch, 8, {
        groups: [{ groupId: group, topics: [{ name: "tx", partitionIndexes: [1] }] }],
        requireStable: true,
      });
      const x = fetched.groups[0]!.topics[0]!.partitions[0]!;
      assert.deepEqual([x.errorCode, x.committedOffset], [ErrorCode.NONE, -1n]);
    } finally {
      release?.();
      c2.close();
      c3.close();
      c4.close();
    }
  });

  test("DescribeTransactions, ListTransactions (state, producer id, duration filters) and DescribeProducers", async () => {
    const p = await initTxn(c, "ops-open");
    await addPartitions(c, "ops-open", p, "tx", [0, 1]);
    await produceTo(c, "tx", 1, producerBatch(["o"], { ...p, baseSequence: 0, transactional: true }), "ops-open");
    const q = await initTxn(c, "ops-idle");
    const d = await c.call(DescribeTransactions, 0, { transactionalIds: ["ops-open", "ops-idle", "nobody"] });
    const [open, idle, nobody] = d.transactionStates;
    assert.equal(open?.transactionState, "Ongoing");
    assert.equal(open?.producerId, p.producerId);
    assert.equal(open?.transactionTimeoutMs, 60_000);
    assert.ok((open?.transactionStartTimeMs ?? -1n) > 0n);
    assert.deepEqual(
      open?.topics.map((t) => [t.topic, [...t.partitions].sort()]),
      [["tx", [0, 1]]],
    );
    assert.deepEqual([idle?.transactionState, idle?.transactionStartTimeMs, idle?.topics.length], ["Empty", -1n, 0]);
    assert.equal(nobody?.errorCode, ErrorCode.TRANSACTIONAL_ID_NOT_FOUND);

    const list = async (
      req: { stateFilters?: string[]; producerIdFilters?: bigint[]; durationFilter?: bigint },
      v = 1,
    ) => c.call(ListTransactions, v, { stateFilters: [], producerIdFilters: [], durationFilter: -1n, ...req });
    const ids = (r: Awaited<ReturnType<typeof list>>) =>
      r.transactionStates
        .map((t) => t.transactionalId)
        .filter((t) => t.startsWith("ops-"))
        .sort();
    assert.deepEqual(ids(await list({})), ["ops-idle", "ops-open"]);
    assert.deepEqual(ids(await list({ stateFilters: ["Ongoing"] })), ["ops-open"]);
    assert.deepEqual(ids(await list({ producerIdFilters: [q.producerId] })), ["ops-idle"]);
    const unknown = await list({ stateFilters: ["Sleeping"] });
    assert.deepEqual(unknown.unknownStateFilters, ["Sleeping"]);
    assert.deepEqual(unknown.transactionStates, [], "only unknown state names: nothing matches (as Kafka)");
    const long = await list({ stateFilters: ["Ongoing"], durationFilter: 3_600_000n });
    assert.deepEqual(ids(long), [], "not running for an hour yet");
    await sleep(20);
    assert.deepEqual(ids(await list({ stateFilters: ["Ongoing"], durationFilter: 10n })), ["ops-open"]);

    const dp = await c.call(DescribeProducers, 0, { topics: [{ name: "tx", partitionIndexes: [1, 9] }] });
    const [p1, p9] = dp.topics[0]!.partitions;
    const mine = p1?.activeProducers.find((x) => x.producerId === p.producerId);
    assert.ok(mine, "the open transaction's producer is active on tx-1");
    assert.equal(mine.producerEpoch, p.producerEpoch);
    assert.equal(mine.lastSequence, 0);
    assert.ok(mine.currentTxnStartOffset >= 0n);
    assert.equal(p9?.errorCode, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
    assert.equal(await endTxn(c, "ops-open", p, false), ErrorCode.NONE);
    const afterAbort = await c.call(DescribeProducers, 0, { topics: [{ name: "tx", partitionIndexes: [1] }] });
    assert.equal(
      afterAbort.topics[0]!.partitions[0]!.activeProducers.find((x) => x.producerId === p.producerId)
        ?.currentTxnStartOffset,
      -1n,
    );
  });

  test("bad input: EndTxn without a transaction, unknown producer ids, fenced epochs by version, oversized timeouts", async () => {
    const p = await initTxn(c, "bad");
    assert.equal(await endTxn(c, "bad", p, true), ErrorCode.INVALID_TXN_STATE);
    assert.equal(
      await endTxn(c, "bad", { producerId: 424242n, producerEpoch: 0 }, true),
      ErrorCode.INVALID_PRODUCER_ID_MAPPING,
    );
    assert.equal(await endTxn(c, "never-initialised", p, true), ErrorCode.INVALID_PRODUCER_ID_MAPPING);
    assert.deepEqual(await addPartitions(c, "bad", { producerId: 424242n, producerEpoch: 0 }, "tx", [0]), [
      ErrorCode.INVALID_PRODUCER_ID_MAPPING,
    ]);
    assert.deepEqual(await addPartitions(c, "bad", p, "no-such-topic", [0]), [ErrorCode.UNKNOWN_TOPIC_OR_PARTITION]);
    await initTxn(c, "bad"); // a new instance: p is fenced
    assert.equal(
      await endTxn(c, "bad", p, true, 1),
      ErrorCode.INVALID_PRODUCER_EPOCH,
      "EndTxn v1 predates PRODUCER_FENCED",
    );
    assert.equal(await endTxn(c, "bad", p, true, 2), ErrorCode.PRODUCER_FENCED);
    assert.deepEqual(await addPartitions(c, "bad", p, "tx", [0]), [ErrorCode.PRODUCER_FENCED]);
    const tooLong = await c.call(InitProducerId, 4, {
      transactionalId: "bad",
      transactionTimeoutMs: 900_001,
      producerId: -1n,
      producerEpoch: -1,
    });
    assert.equal(tooLong.errorCode, ErrorCode.INVALID_TRANSACTION_TIMEOUT);
    const fc = await c.call(FindCoordinator, 3, { key: "bad", keyType: 1 });
    assert.equal(fc.errorCode, ErrorCode.NONE);
  });
});

describe("expiry and timeouts under a controlled clock", () => {
  let now = Date.now();
  let broker: Broker;
  let c: WireClient;
  before(async () => {
    const { mkdtempSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    broker = new Broker({
      config: buildConfig(
        new Map(
          Object.entries({
            "log.dirs": mkdtempSync(join(tmpdir(), "txn-clock-")),
            listeners: "PLAINTEXT://127.0.0.1:0",
            "group.initial.rebalance.delay.ms": "0",
            "producer.id.expiration.ms": "60000",
            "transactional.id.expiration.ms": "60000",
          }),
        ),
      ),
      logger: pino({ level: "silent" }),
      plugins: defaultPlugins(),
      clock: { nowMs: () => now },
    });
    await broker.start();
    c = await WireClient.connect(broker.port);
    await createTopic(c, "clocked", 1);
  });
  after(async () => {
    c.close();
    await broker.stop();
  });

  test("a transaction open beyond transaction.timeout.ms is aborted by the coordinator; read_committed never sees it", async () => {
    const p = await initTxn(c, "stuck", 5_000);
    await addPartitions(c, "stuck", p, "clocked", [0]);
    await produceTo(
      c,
      "clocked",
      0,
      producerBatch(["never"], { ...p, baseSequence: 0, transactional: true, timestamp: BigInt(now) }),
      "stuck",
    );
    now += 6_000;
    await sleep(1_300); // the abort check runs every second
    const d = await c.call(DescribeTransactions, 0, { transactionalIds: ["stuck"] });
    assert.equal(d.transactionStates[0]?.transactionState, "CompleteAbort");
    assert.ok(d.transactionStates[0]!.producerEpoch > p.producerEpoch, "the producer was fenced");
    const rc = (await fetchOne(c, "clocked", 0, 0n, { isolationLevel: 1 })).responses[0]!.partitions[0]!;
    assert.equal(rc.lastStableOffset, rc.highWatermark);
    assert.deepEqual(
      rc.abortedTransactions?.map((a) => a.producerId),
      [p.producerId],
    );
    assert.equal(await endTxn(c, "stuck", p, true), ErrorCode.PRODUCER_FENCED);
  });

  test("producer.id.expiration.ms and transactional.id.expiration.ms forget idle producers and ids", async () => {
    const r = await c.call(InitProducerId, 4, {
      transactionalId: null,
      transactionTimeoutMs: 60_000,
      producerId: -1n,
      producerEpoch: -1,
    });
    const pid = r.producerId;
    assert.equal(
      (
        await produceTo(
          c,
          "clocked",
          0,
          producerBatch(["x"], { producerId: pid, producerEpoch: 0, baseSequence: 0, timestamp: BigInt(now) }),
        )
      ).errorCode,
      0,
    );
    await initTxn(c, "idle-id");
    const active = async () =>
      (
        await c.call(DescribeProducers, 0, { topics: [{ name: "clocked", partitionIndexes: [0] }] })
      ).topics[0]!.partitions[0]!.activeProducers.map((x) => x.producerId);
    assert.ok((await active()).includes(pid));
    now += 30_000;
    await sleep(1_300);
    assert.ok((await active()).includes(pid), "not idle long enough yet");
    now += 31_000;
    await sleep(1_300);
    assert.ok(!(await active()).includes(pid), "expired");
    const d = await c.call(DescribeTransactions, 0, { transactionalIds: ["idle-id"] });
    assert.equal(d.transactionStates[0]?.errorCode, ErrorCode.TRANSACTIONAL_ID_NOT_FOUND);
    // A producer the partition forgot may start again at any sequence (KIP-360).
    assert.equal(
      (
        await produceTo(
          c,
          "clocked",
          0,
          producerBatch(["y"], { producerId: pid, producerEpoch: 0, baseSequence: 77, timestamp: BigInt(now) }),
        )
      ).errorCode,
      0,
    );
  });
});
