// Group state in `__consumer_offsets`, in Kafka's record schemas (coordinator-records/), so that
// tools which read the topic understand it:
//   offset commit   key = int16 1 + OffsetCommitKey(group, topic, partition)
//                   value = int16 3 + OffsetCommitValue(offset, leaderEpoch, metadata, commitTimestamp)
//   group metadata  key = int16 2 + GroupMetadataKey(group)
//                   value = int16 3 + GroupMetadataValue(protocolType, generation, protocol, leader, members)
// An offset committed with an explicit retention time (OffsetCommit v2–v4) is written as value
// version 1, which holds its expireTimestamp. A null value is a tombstone (offset deleted, group removed). The topic is compacted, so only
// the latest record per key survives. The partition of a group is abs(javaHashCode(group)) % N.

import { Reader, Writer } from "@sluice/protocol";
import {
  decodeGroupMetadataKey,
  encodeGroupMetadataKey,
} from "@sluice/protocol/generated/coordinator/group-metadata-key.ts";
import {
  decodeGroupMetadataValue,
  encodeGroupMetadataValue,
} from "@sluice/protocol/generated/coordinator/group-metadata-value.ts";
import {
  decodeOffsetCommitKey,
  encodeOffsetCommitKey,
} from "@sluice/protocol/generated/coordinator/offset-commit-key.ts";
import {
  decodeOffsetCommitValue,
  encodeOffsetCommitValue,
} from "@sluice/protocol/generated/coordinator/offset-commit-value.ts";
import { isControlBatch, isTransactional } from "@sluice/protocol/records/batch-header.ts";
import { buildRecordBatch, parseControlRecord, parseRecordBatch } from "@sluice/protocol/records/record-batch.ts";
import type { Logger } from "pino";
import { serialAppend } from "../handlers/00-produce.ts";
import type { TopicManager } from "../topics.ts";
import { snapshotOnNewSegment } from "../txn/producer-snapshots.ts";
import type { CommittedOffset, Group, GroupCoordinator, GroupPersistence } from "./coordinator.ts";
import { OffsetsPartitionMissingError } from "./store-errors.ts";

export const OFFSETS_TOPIC = "__consumer_offsets";

/** Java's String.hashCode over UTF-16 code units. */
export function javaStringHash(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (Math.imul(31, h) + s.charCodeAt(i)) | 0;
  return h;
}

/** Kafka's Utils.abs(hash) % n: the __consumer_offsets partition of a group. */
export function partitionFor(groupId: string, partitions: number): number {
  const h = javaStringHash(groupId);
  return (h === -2147483648 ? 0 : Math.abs(h)) % partitions;
}

function withVersion(version: number, encode: (w: Writer) => void): Buffer {
  const w = new Writer();
  w.writeInt16(version);
  encode(w);
  return w.toBuffer();
}

export function offsetCommitRecord(
  groupId: string,
  topic: string,
  partition: number,
  v: CommittedOffset | null,
): { key: Buffer; value: Buffer | null } {
  // Key and value encoded back to back into one buffer (one allocation per commit on the hot path).
  const w = new Writer(128);
  w.writeInt16(1);
  encodeOffsetCommitKey(w, { group: groupId, topic, partition }, 1);
  const keyBytes = w.length;
  if (v !== null) {
    if (v.expireTimestampMs !== undefined) {
      // An explicit expiry needs value version 1, as Kafka writes it (no leader epoch there).
      w.writeInt16(1);
      encodeOffsetCommitValue(
        w,
        {
          offset: v.offset,
          metadata: v.metadata,
          commitTimestamp: v.commitTimestampMs,
          expireTimestamp: v.expireTimestampMs,
        },
        1,
      );
    } else {
      w.writeInt16(3);
      encodeOffsetCommitValue(
        w,
        { offset: v.offset, leaderEpoch: v.leaderEpoch, metadata: v.metadata, commitTimestamp: v.commitTimestampMs },
        3,
      );
    }
  }
  const both = w.toBuffer();
  return { key: both.subarray(0, keyBytes), value: v === null ? null : both.subarray(keyBytes) };
}

export function groupMetadataRecord(g: Group | string): { key: Buffer; value: Buffer | null } {
  const groupId = typeof g === "string" ? g : g.groupId;
  const key = withVersion(2, (w) => encodeGroupMetadataKey(w, { group: groupId }, 2));
  if (typeof g === "string") return { key, value: null };
  const value = withVersion(3, (w) =>
    encodeGroupMetadataValue(
      w,
      {
        protocolType: g.protocolType ?? "",
        generation: g.generationId,
        protocol: g.protocolName,
        leader: g.leaderId,
        currentStateTimestamp: BigInt(g.stateTimestampMs),
        members: [...g.members.values()].map((m) => ({
          memberId: m.memberId,
          groupInstanceId: m.groupInstanceId,
          clientId: m.clientId,
          clientHost: m.clientHost,
          rebalanceTimeout: m.rebalanceTimeoutMs,
          sessionTimeout: m.sessionTimeoutMs,
          subscription: m.protocols.find((p) => p.name === g.protocolName)?.metadata ?? new Uint8Array(0),
          assignment: m.assignment,
        })),
      },
      3,
    ),
  );
  return { key, value };
}

/** Records of one request waiting for its partition's next append. */
/**
 * Offsets committed inside a transaction. `verify` and `onAppended` run inside the partition's
 * serial append step, the one the coordinator's COMMIT/ABORT markers also go through: the write
 * lands only while the transaction is still ongoing (never after its marker, where it would be a
 * transactional batch of no transaction, holding the partition's LSO), and the group learns of
 * the pending offsets before any marker can complete them.
 */
export interface TxnWrite {
  readonly producerId: bigint;
  readonly producerEpoch: number;
  /** An error to refuse the write with (nothing is appended), or null to append it. */
  verify(): Error | null;
  onAppended(): void;
}

interface QueuedWrite {
  readonly records: { key: Buffer; value: Buffer | null }[];
  /** Key and value bytes, to bound a merged batch. */
  readonly bytes: number;
  /** A transactional commit: its own batch of its producer, never merged with others. */
  readonly txn: TxnWrite | null;
  resolve(): void;
  reject(e: unknown): void;
}

/** The writes waiting for one __consumer_offsets partition, and whether an append of it is in flight (or about to start). */
interface PartitionQueue {
  readonly index: number;
  waiting: QueuedWrite[];
  inFlight: boolean;
}

/**
 * A merged batch stops growing at this many key+value bytes or records (one request larger than
 * that still goes, alone): well under __consumer_offsets' max.message.bytes (1 MiB in Kafka).
 */
const MERGED_BATCH_BYTES_MAX = 512 * 1024;
const MERGED_BATCH_RECORDS_MAX = 4096;

/**
 * Writes group records to the group's __consumer_offsets partition (creating the topic on first use).
 *
 * Group commit, as Kafka's coordinator runtime does it: per partition at most one append is in flight;
 * the records of requests arriving meanwhile wait in a FIFO queue and go out together, as one record
 * batch, in the next append. Each request resolves when the append holding its records is written
 * (and the high watermark moved past it), and rejects with that append's error, so a failure fails
 * exactly the requests it held. Queue order is log order: a later request's records never land before
 * an earlier one's. A transactional commit is a batch of its producer and is appended on its own, in
 * its place in the queue. The append itself goes through serialAppend, so it stays ordered with the
 * other writers of the partition (transaction markers).
 */
export class OffsetsTopicStore implements GroupPersistence {
  private readonly topics: TopicManager;
  private readonly partitions: number;
  private readonly segmentBytes: number;
  private readonly logger: Logger | undefined;
  private readonly queues = new Map<number, PartitionQueue>();
  private creating: Promise<void> | null = null;
  constructor(topics: TopicManager, partitions: number, segmentBytes = 100 * 1024 * 1024, logger?: Logger) {
    this.topics = topics;
    this.partitions = partitions;
    this.segmentBytes = segmentBytes;
    this.logger = logger;
  }

  async ensureTopic(): Promise<void> {
    if (this.topics.get(OFFSETS_TOPIC)) return;
    // Requests racing on first use share one creation.
    this.creating ??= this.topics
      .create(
        OFFSETS_TOPIC,
        this.partitions,
        { "cleanup.policy": "compact", "segment.bytes": String(this.segmentBytes) },
        true,
      )
      .then(
        () => {},
        (e: unknown) => {
          if (!this.topics.get(OFFSETS_TOPIC)) throw e;
        },
      )
      .finally(() => {
        this.creating = null;
      });
    await this.creating;
  }

  private async enqueue(
    groupId: string,
    records: { key: Buffer; value: Buffer | null }[],
    txn: QueuedWrite["txn"] = null,
  ): Promise<void> {
    if (records.length === 0) return;
    if (!this.topics.get(OFFSETS_TOPIC)) await this.ensureTopic();
    const index = partitionFor(groupId, this.partitions);
    let q = this.queues.get(index);
    if (!q) {
      q = { index, waiting: [], inFlight: false };
      this.queues.set(index, q);
    }
    let bytes = 0;
    for (const r of records) bytes += r.key.length + (r.value?.length ?? 0);
    const done = new Promise<void>((resolve, reject) => {
      q.waiting.push({ records, bytes, txn, resolve, reject });
    });
    if (!q.inFlight) {
      // Idle: append at the end of this turn rather than now, so that the requests dispatched
      // together (the frames of one socket read) share the append.
      q.inFlight = true;
      queueMicrotask(() => this.appendNext(q));
    }
    return done;
  }

  /** Takes the next batch off the queue (the longest run of plain writes that fits, or one transactional write) and appends it. */
  private appendNext(q: PartitionQueue): void {
    const first = q.waiting[0];
    if (!first) {
      q.inFlight = false;
      return;
    }
    let n = 1;
    if (first.txn === null) {
      let bytes = first.bytes;
      let count = first.records.length;
      for (; n < q.waiting.length; n++) {
        const w = q.waiting[n]!;
        if (
          w.txn !== null ||
          bytes + w.bytes > MERGED_BATCH_BYTES_MAX ||
          count + w.records.length > MERGED_BATCH_RECORDS_MAX
        )
          break;
        bytes += w.bytes;
        count += w.records.length;
      }
    }
    const taken = q.waiting.splice(0, n);
    q.inFlight = true;
    this.append(q.index, taken).then(
      () => {
        this.appendNext(q);
        for (const w of taken) w.resolve();
      },
      (e: unknown) => {
        this.appendNext(q);
        for (const w of taken) w.reject(e);
      },
    );
  }

  private async append(index: number, writes: QueuedWrite[]): Promise<void> {
    const p = this.topics.partition(OFFSETS_TOPIC, index);
    if (!p) throw new OffsetsPartitionMissingError(index);
    const txn = writes[0]!.txn;
    if (txn === null) {
      const records = writes.length === 1 ? writes[0]!.records : writes.flatMap((w) => w.records);
      const batch = buildRecordBatch({ records });
      await serialAppend(p, async () => {
        await p.log.appendAsLeader(batch, p.leaderEpoch);
        await p.log.updateHighWatermark(p.log.logEndOffset);
      });
      return;
    }
    const { producerId, producerEpoch } = txn;
    const batch = buildRecordBatch({
      records: writes[0]!.records,
      transactional: true,
      producerId,
      producerEpoch,
      baseSequence: -1,
    });
    await serialAppend(p, async () => {
      const refused = txn.verify();
      if (refused !== null) throw refused;
      const info = await p.log.appendAsLeader(batch, p.leaderEpoch);
      const h = info.batches[0]!.header;
      p.producers.apply(
        {
          producerId,
          producerEpoch,
          baseSequence: -1,
          lastOffsetDelta: h.lastOffsetDelta,
          isTransactional: true,
          isControl: false,
          maxTimestampMs: h.maxTimestamp,
        },
        info.baseOffset,
        info.lastOffset,
      );
      txn.onAppended();
      snapshotOnNewSegment(p, info.lastOffset + 1n, this.logger);
      await p.log.updateHighWatermark(p.log.logEndOffset);
    });
  }

  storeGroup(g: Group): Promise<void> {
    return this.enqueue(g.groupId, [groupMetadataRecord(g)]);
  }

  storeOffsets(
    groupId: string,
    offsets: { topic: string; partition: number; value: CommittedOffset | null }[],
  ): Promise<void> {
    return this.enqueue(
      groupId,
      offsets.map((o) => offsetCommitRecord(groupId, o.topic, o.partition, o.value)),
    );
  }

  /**
   * Writes offsets committed inside a transaction as a transactional batch of the producer, so
   * the COMMIT/ABORT marker written to this partition later decides whether they count.
   */
  storeTxnOffsets(
    groupId: string,
    txn: TxnWrite,
    offsets: { topic: string; partition: number; value: CommittedOffset }[],
  ): Promise<void> {
    return this.enqueue(
      groupId,
      offsets.map((o) => offsetCommitRecord(groupId, o.topic, o.partition, o.value)),
      txn,
    );
  }

  /** The writes waiting for partition `index`, and whether one is being appended (for tests). */
  queueDepth(index: number): { waiting: number; appending: boolean } {
    const q = this.queues.get(index);
    return { waiting: q?.waiting.length ?? 0, appending: q?.inFlight ?? false };
  }

  removeGroup(groupId: string): Promise<void> {
    return this.enqueue(groupId, [groupMetadataRecord(groupId)]);
  }

  /** Replays every partition of __consumer_offsets into the coordinator. */
  async load(coordinator: GroupCoordinator): Promise<void> {
    const t = this.topics.get(OFFSETS_TOPIC);
    if (!t) return;
    for (const p of t.partitions) {
      await p.log.forEachBatch(p.log.logStartOffset, (records, position, header) => {
        const parsed = parseRecordBatch(records, position);
        if (isControlBatch(header.attributes)) {
          const rec = parsed.records[0];
          if (rec)
            coordinator.completeTxnOffsets(header.producerId, parseControlRecord(rec.key, rec.value).type === "COMMIT");
          return;
        }
        if (isTransactional(header.attributes)) {
          for (const rec of parsed.records)
            if (rec.key !== null) applyTxnRecord(coordinator, header.producerId, rec.key, rec.value);
          return;
        }
        for (const rec of parsed.records) {
          if (rec.key !== null) applyRecord(coordinator, rec.key, rec.value);
        }
      });
    }
  }
}

export function applyRecord(c: GroupCoordinator, key: Uint8Array, value: Uint8Array | null): void {
  const kr = new Reader(key);
  const keyVersion = kr.readInt16("key.version");
  if (keyVersion === 0 || keyVersion === 1) {
    const k = decodeOffsetCommitKey(kr, keyVersion);
    if (value === null) {
      c.restoreOffset(k.group, k.topic, k.partition, null);
      return;
    }
    const vr = new Reader(value);
    const v = decodeOffsetCommitValue(vr, vr.readInt16("value.version"));
    c.restoreOffset(k.group, k.topic, k.partition, {
      offset: v.offset,
      leaderEpoch: v.leaderEpoch,
      metadata: v.metadata,
      commitTimestampMs: v.commitTimestamp,
      ...(v.expireTimestamp >= 0n ? { expireTimestampMs: v.expireTimestamp } : {}),
    });
  } else if (keyVersion === 2) {
    const k = decodeGroupMetadataKey(kr, keyVersion);
    if (value === null) {
      c.removeRestoredGroup(k.group);
      return;
    }
    const vr = new Reader(value);
    const v = decodeGroupMetadataValue(vr, vr.readInt16("value.version"));
    c.restoreGroup({
      groupId: k.group,
      currentStateTimestamp: v.currentStateTimestamp,
      protocolType: v.protocolType,
      generation: v.generation,
      protocol: v.protocol,
      leader: v.leader,
      members: v.members,
    });
  }
}

/** A transactional offset commit read back from the log: pending until its marker. */
function applyTxnRecord(c: GroupCoordinator, producerId: bigint, key: Uint8Array, value: Uint8Array | null): void {
  const kr = new Reader(key);
  const keyVersion = kr.readInt16("key.version");
  if ((keyVersion !== 0 && keyVersion !== 1) || value === null) return;
  const k = decodeOffsetCommitKey(kr, keyVersion);
  const vr = new Reader(value);
  const v = decodeOffsetCommitValue(vr, vr.readInt16("value.version"));
  c.addPendingTxnOffsets(producerId, k.group, [
    {
      topic: k.topic,
      partition: k.partition,
      value: {
        offset: v.offset,
        leaderEpoch: v.leaderEpoch,
        metadata: v.metadata,
        commitTimestampMs: v.commitTimestamp,
      },
    },
  ]);
}
