// Group commit to __consumer_offsets (OffsetsTopicStore): writes queued for one partition while an
// append is in flight go out together as one record batch in the next append, in queue order; a
// transactional commit stays a batch of its own; a failed append fails exactly the requests whose
// records it held (with the coordinator's error code), and later ones still commit. Checked on the
// log itself (its batches and records) and after reopening the log directory.
//
// The coordinator and its store run over a real TopicManager and LogManager, with a Disk that can
// hold or fail the writes of __consumer_offsets segment files (the storage Disk seam).

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { ErrorCode, Reader } from "@sluice/protocol";
import { decodeOffsetCommitKey } from "@sluice/protocol/generated/coordinator/offset-commit-key.ts";
import { decodeOffsetCommitValue } from "@sluice/protocol/generated/coordinator/offset-commit-value.ts";
import { isTransactional } from "@sluice/protocol/records/batch-header.ts";
import { parseRecordBatch } from "@sluice/protocol/records/record-batch.ts";
import { type Disk, type DiskFile, LogManager, nodeDisk } from "@sluice/storage";
import { buildConfig } from "../../src/config.ts";
import { GroupCoordinator } from "../../src/group/coordinator.ts";
import { OFFSETS_TOPIC, OffsetsTopicStore, partitionFor } from "../../src/group/persistence.ts";
import { LocalMetadataStore } from "../../src/metadata-store.ts";
import { TopicManager } from "../../src/topics.ts";

const PARTITIONS = 3;
const GROUP = "g";
const TOPIC = "t";

/** Node's disk, where each write of a __consumer_offsets segment file first goes through `beforeWrite` (which may wait or throw). */
class ControlledDisk implements Disk {
  beforeWrite: ((n: number) => Promise<void>) | null = null;
  /** Writes of __consumer_offsets segment files since `beforeWrite` was set. */
  writes = 0;
  open = async (path: string, flags: "r" | "r+" | "w+" | "wx"): Promise<DiskFile> => {
    const f = await nodeDisk.open(path, flags);
    if (!/__consumer_offsets-\d+[/\\]\d+\.log$/.test(path)) return f;
    const gated = async (write: () => Promise<number>): Promise<number> => {
      const hook = this.beforeWrite;
      if (hook) await hook(++this.writes);
      return write();
    };
    return {
      write: (b, p) => gated(() => f.write(b, p)),
      writev: (bs, p) => gated(() => f.writev(bs, p)),
      // Always the thread-pool path, so that every write passes the hook.
      writeSync: () => null,
      read: (b, o, l, p) => f.read(b, o, l, p),
      fsync: () => f.fsync(),
      truncate: (l) => f.truncate(l),
      stat: () => f.stat(),
      close: () => f.close(),
    };
  };
  rename = nodeDisk.rename;
  unlink = nodeDisk.unlink;
  readdir = nodeDisk.readdir;
  stat = nodeDisk.stat;
  mkdir = nodeDisk.mkdir;
  rmdir = nodeDisk.rmdir;
  fsyncDir = nodeDisk.fsyncDir;
}

async function open(dir: string, disk: Disk = nodeDisk, offsetsRetentionMs = 7 * 24 * 3600_000) {
  const cfg = buildConfig(new Map([["log.dirs", dir]]));
  const logs = await LogManager.open([dir], {}, { disk });
  const topics = new TopicManager(cfg, logs, new LocalMetadataStore(dir));
  await topics.load();
  const store = new OffsetsTopicStore(topics, PARTITIONS);
  const coordinator = new GroupCoordinator(
    {
      minSessionTimeoutMs: 6000,
      maxSessionTimeoutMs: 1_800_000,
      initialRebalanceDelayMs: 0,
      maxSize: 100,
      offsetsRetentionMs,
      offsetMetadataMaxBytes: 4096,
    },
    store,
  );
  await store.load(coordinator);
  await store.ensureTopic();
  return { topics, store, coordinator, close: () => logs.close() };
}

interface LogBatch {
  transactional: boolean;
  records: { partition: number; offset: bigint }[];
}

/** The group's __consumer_offsets partition as written: its batches, each with its offset commits (partition → committed offset). */
async function logBatches(topics: TopicManager): Promise<LogBatch[]> {
  const p = topics.partition(OFFSETS_TOPIC, partitionFor(GROUP, PARTITIONS))!;
  const out: LogBatch[] = [];
  await p.log.forEachBatch(p.log.logStartOffset, (buf, position, header) => {
    const records = parseRecordBatch(buf, position).records.map((rec) => {
      const kr = new Reader(rec.key!);
      const k = decodeOffsetCommitKey(kr, kr.readInt16("v"));
      const vr = new Reader(rec.value!);
      const v = decodeOffsetCommitValue(vr, vr.readInt16("v"));
      assert.equal(k.group, GROUP);
      assert.equal(k.topic, TOPIC);
      return { partition: k.partition, offset: v.offset };
    });
    out.push({ transactional: isTransactional(header.attributes), records });
  });
  return out;
}

const commit = (c: GroupCoordinator, partition: number, offset: bigint) =>
  c.commitOffsets(GROUP, [{ topic: TOPIC, partition, offset, leaderEpoch: -1, metadata: "" }]);

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

test("concurrent commits to one partition share appends, land in request order, and reload after restart", async () => {
  const dir = mkdtempSync(join(tmpdir(), "sluice-group-commit-"));
  try {
    const disk = new ControlledDisk();
    const s = await open(dir, disk);
    // Hold the first append until every request is queued, so that the grouping does not depend
    // on how fast the disk is.
    const first = deferred();
    const started = deferred();
    disk.beforeWrite = async (n) => {
      if (n !== 1) return;
      started.resolve();
      await first.promise;
    };
    const COMMITS = 200;
    const TXN_AT = 120;
    const results: Promise<unknown>[] = [];
    const expected = new Map<number, bigint>();
    for (let i = 0; i < COMMITS; i++) {
      if (i === TXN_AT) {
        // A transactional commit in the middle of the queue: a batch of its producer, on its own.
        results.push(
          s.store.storeTxnOffsets(GROUP, { producerId: 7n, producerEpoch: 0, verify: () => null, onAppended() {} }, [
            {
              topic: TOPIC,
              partition: 0,
              value: { offset: 1_000_000n, leaderEpoch: -1, metadata: "", commitTimestampMs: 0n },
            },
          ]),
        );
      }
      const partition = i % 10;
      results.push(commit(s.coordinator, partition, BigInt(i)));
      expected.set(partition, BigInt(i));
      if (i === 0) await started.promise;
    }
    first.resolve();
    const codes = await Promise.all(results);
    for (const c of codes) if (Array.isArray(c)) assert.deepEqual(c, [ErrorCode.NONE]);

    const batches = await logBatches(s.topics);
    const plain = batches.filter((b) => !b.transactional);
    const txn = batches.filter((b) => b.transactional);
    assert.ok(plain.length < COMMITS / 10, `${COMMITS} commits took ${plain.length} plain batches`);
    assert.deepEqual(txn, [{ transactional: true, records: [{ partition: 0, offset: 1_000_000n }] }]);
    // Log order is request order, the transactional batch in its place.
    const order = batches.flatMap((b) => b.records.map((r) => r.offset));
    const want = Array.from({ length: COMMITS }, (_, i) => BigInt(i));
    want.splice(TXN_AT, 0, 1_000_000n);
    assert.deepEqual(order, want);
    for (const [partition, offset] of expected)
      assert.equal(s.coordinator.fetchOffset(GROUP, TOPIC, partition)?.offset, offset);
    await s.close();

    const again = await open(dir);
    for (const [partition, offset] of expected)
      assert.equal(again.coordinator.fetchOffset(GROUP, TOPIC, partition)?.offset, offset, `partition ${partition}`);
    // Without its COMMIT marker, the transactional offset stays pending.
    assert.ok(again.coordinator.hasPendingTxnOffset(GROUP, TOPIC, 0));
    await again.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a failed append fails exactly the requests whose records it held; earlier and later ones commit", async () => {
  const dir = mkdtempSync(join(tmpdir(), "sluice-group-commit-"));
  try {
    const disk = new ControlledDisk();
    const s = await open(dir, disk);
    const gates = [deferred(), deferred()];
    const started = [deferred(), deferred()];
    disk.beforeWrite = async (n) => {
      if (n > 2) return;
      started[n - 1]!.resolve();
      await gates[n - 1]!.promise;
      if (n === 2) throw Object.assign(new Error("EIO: injected"), { code: "EIO" });
    };
    // A: alone in append 1. B: queued behind it, together in append 2, which fails. C: queued
    // while append 2 is in flight, in append 3.
    const a = commit(s.coordinator, 0, 10n);
    await started[0]!.promise;
    const b = [commit(s.coordinator, 1, 20n), commit(s.coordinator, 2, 21n), commit(s.coordinator, 3, 22n)];
    gates[0]!.resolve();
    assert.deepEqual(await a, [ErrorCode.NONE]);
    await started[1]!.promise;
    const c = commit(s.coordinator, 1, 30n);
    gates[1]!.resolve();
    // Kafka's mapping: KAFKA_STORAGE_ERROR from the append → NOT_COORDINATOR for the commit.
    assert.deepEqual(await Promise.all(b), [
      [ErrorCode.NOT_COORDINATOR],
      [ErrorCode.NOT_COORDINATOR],
      [ErrorCode.NOT_COORDINATOR],
    ]);
    assert.deepEqual(await c, [ErrorCode.NONE]);
    assert.equal(disk.writes, 3, "A, B's batch and C's batch: one append each");

    const state = (co: GroupCoordinator) => [0, 1, 2, 3].map((p) => co.fetchOffset(GROUP, TOPIC, p)?.offset);
    assert.deepEqual(state(s.coordinator), [10n, 30n, undefined, undefined]);
    assert.deepEqual(
      (await logBatches(s.topics)).map((x) => x.records),
      [[{ partition: 0, offset: 10n }], [{ partition: 1, offset: 30n }]],
    );
    await s.close();
    const again = await open(dir);
    assert.deepEqual(state(again.coordinator), [10n, 30n, undefined, undefined]);
    await again.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a group-metadata write shares the append of the commits queued with it, and its failure fails SyncGroup with NOT_COORDINATOR", async () => {
  const dir = mkdtempSync(join(tmpdir(), "sluice-group-commit-"));
  try {
    const disk = new ControlledDisk();
    const s = await open(dir, disk);
    const joined = await s.coordinator.join({
      groupId: GROUP,
      memberId: "",
      groupInstanceId: null,
      protocolType: "consumer",
      protocols: [{ name: "range", metadata: Buffer.from("m") }],
      sessionTimeoutMs: 10_000,
      rebalanceTimeoutMs: 10_000,
      clientId: "c",
      clientHost: "h",
      requireKnownMemberId: false,
    });
    assert.equal(joined.errorCode, ErrorCode.NONE);
    const gate = deferred();
    const started = deferred();
    disk.beforeWrite = async (n) => {
      if (n === 1) {
        started.resolve();
        await gate.promise;
      }
      if (n === 2) throw Object.assign(new Error("EIO: injected"), { code: "EIO" });
    };
    const a = commit(s.coordinator, 0, 1n);
    await started.promise;
    // Queued behind A: the leader's SyncGroup (its group-metadata record) and a commit, together.
    const sync = s.coordinator.sync({
      groupId: GROUP,
      memberId: joined.memberId,
      generationId: joined.generationId,
      groupInstanceId: null,
      protocolType: null,
      protocolName: null,
      assignments: [{ memberId: joined.memberId, assignment: Buffer.from("A") }],
    });
    const b = commit(s.coordinator, 1, 2n);
    gate.resolve();
    assert.deepEqual(await a, [ErrorCode.NONE]);
    assert.equal((await sync).errorCode, ErrorCode.NOT_COORDINATOR);
    assert.deepEqual(await b, [ErrorCode.NOT_COORDINATOR]);
    assert.equal(disk.writes, 2, "the group-metadata record and the commit behind it were one append");
    assert.equal(s.coordinator.fetchOffset(GROUP, TOPIC, 1), undefined);
    s.coordinator.stop();
    await s.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("DeleteGroups, OffsetDelete and offset expiry answer a failed __consumer_offsets write with an error code and change nothing", async () => {
  const dir = mkdtempSync(join(tmpdir(), "sluice-group-commit-"));
  try {
    const disk = new ControlledDisk();
    const s = await open(dir, disk, 50);
    assert.deepEqual(await commit(s.coordinator, 0, 10n), [ErrorCode.NONE]);
    assert.deepEqual(await commit(s.coordinator, 1, 11n), [ErrorCode.NONE]);
    disk.beforeWrite = async () => {
      throw Object.assign(new Error("EIO: injected"), { code: "EIO" });
    };
    // Kafka's mapping: KAFKA_STORAGE_ERROR from the append → NOT_COORDINATOR (the client retries).
    const del = await s.coordinator.deleteOffsets(GROUP, [{ topic: TOPIC, partition: 0 }]);
    assert.equal(del.errorCode, ErrorCode.NOT_COORDINATOR);
    assert.equal(await s.coordinator.deleteGroup(GROUP), ErrorCode.NOT_COORDINATOR);
    await new Promise((r) => setTimeout(r, 80)); // past the 50 ms retention
    await assert.rejects(s.coordinator.expireOffsets(), AggregateError);
    assert.equal(s.coordinator.fetchOffset(GROUP, TOPIC, 0)?.offset, 10n, "nothing was removed");
    assert.equal(s.coordinator.fetchOffset(GROUP, TOPIC, 1)?.offset, 11n);
    // Once writes work again, the same operations go through.
    disk.beforeWrite = null;
    assert.equal(await s.coordinator.expireOffsets(), 2);
    assert.equal(s.coordinator.fetchOffset(GROUP, TOPIC, 0), undefined);
    assert.equal(
      await s.coordinator.deleteGroup(GROUP),
      ErrorCode.GROUP_ID_NOT_FOUND,
      "expiry removed the emptied group",
    );
    await s.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
