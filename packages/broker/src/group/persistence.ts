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
import { isControlBatch, isTransactional, iterateBatches } from "@sluice/protocol/records/batch-header.ts";
import { buildRecordBatch, parseControlRecord, parseRecordBatch } from "@sluice/protocol/records/record-batch.ts";
import { serialAppend } from "../handlers/00-produce.ts";
import type { TopicManager } from "../topics.ts";
import type { CommittedOffset, Group, GroupCoordinator, GroupPersistence } from "./coordinator.ts";

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
  const key = withVersion(1, (w) => encodeOffsetCommitKey(w, { group: groupId, topic, partition }, 1));
  if (v === null) return { key, value: null };
  if (v.expireTimestampMs !== undefined) {
    // An explicit expiry needs value version 1, as Kafka writes it (no leader epoch there).
    const v1 = withVersion(1, (w) =>
      encodeOffsetCommitValue(
        w,
        {
          offset: v.offset,
          metadata: v.metadata,
          commitTimestamp: v.commitTimestampMs,
          expireTimestamp: v.expireTimestampMs!,
        },
        1,
      ),
    );
    return { key, value: v1 };
  }
  const value = withVersion(3, (w) =>
    encodeOffsetCommitValue(
      w,
      { offset: v.offset, leaderEpoch: v.leaderEpoch, metadata: v.metadata, commitTimestamp: v.commitTimestampMs },
      3,
    ),
  );
  return { key, value };
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

/** Writes group records to the group's __consumer_offsets partition (creating the topic on first use). */
export class OffsetsTopicStore implements GroupPersistence {
  private readonly topics: TopicManager;
  private readonly partitions: number;
  private readonly segmentBytes: number;
  constructor(topics: TopicManager, partitions: number, segmentBytes = 100 * 1024 * 1024) {
    this.topics = topics;
    this.partitions = partitions;
    this.segmentBytes = segmentBytes;
  }

  async ensureTopic(): Promise<void> {
    if (!this.topics.get(OFFSETS_TOPIC)) {
      await this.topics.create(
        OFFSETS_TOPIC,
        this.partitions,
        { "cleanup.policy": "compact", "segment.bytes": String(this.segmentBytes) },
        true,
      );
    }
  }

  private async append(groupId: string, records: { key: Buffer; value: Buffer | null }[]): Promise<void> {
    await this.ensureTopic();
    const p = this.topics.partition(OFFSETS_TOPIC, partitionFor(groupId, this.partitions));
    if (!p) throw new Error("__consumer_offsets partition missing");
    const batch = buildRecordBatch({ records: records.map((r) => ({ key: r.key, value: r.value })) });
    await serialAppend(p, async () => {
      await p.log.appendAsLeader(batch, p.leaderEpoch);
      await p.log.updateHighWatermark(p.log.logEndOffset);
    });
  }

  storeGroup(g: Group): Promise<void> {
    return this.append(g.groupId, [groupMetadataRecord(g)]);
  }

  storeOffsets(
    groupId: string,
    offsets: { topic: string; partition: number; value: CommittedOffset | null }[],
  ): Promise<void> {
    return this.append(
      groupId,
      offsets.map((o) => offsetCommitRecord(groupId, o.topic, o.partition, o.value)),
    );
  }

  /**
   * Writes offsets committed inside a transaction as a transactional batch of the producer, so
   * the COMMIT/ABORT marker written to this partition later decides whether they count.
   */
  async storeTxnOffsets(
    groupId: string,
    producerId: bigint,
    producerEpoch: number,
    offsets: { topic: string; partition: number; value: CommittedOffset }[],
  ): Promise<void> {
    await this.ensureTopic();
    const p = this.topics.partition(OFFSETS_TOPIC, partitionFor(groupId, this.partitions));
    if (!p) throw new Error("__consumer_offsets partition missing");
    const batch = buildRecordBatch({
      records: offsets.map((o) => offsetCommitRecord(groupId, o.topic, o.partition, o.value)),
      transactional: true,
      producerId,
      producerEpoch,
      baseSequence: -1,
    });
    await serialAppend(p, async () => {
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
      await p.log.updateHighWatermark(p.log.logEndOffset);
    });
  }

  removeGroup(groupId: string): Promise<void> {
    return this.append(groupId, [groupMetadataRecord(groupId)]);
  }

  /** Replays every partition of __consumer_offsets into the coordinator. */
  async load(coordinator: GroupCoordinator): Promise<void> {
    const t = this.topics.get(OFFSETS_TOPIC);
    if (!t) return;
    for (const p of t.partitions) {
      let offset = p.log.logStartOffset;
      while (offset < p.log.logEndOffset) {
        const r = await p.log.read(offset, 4 * 1024 * 1024);
        if (r.records.length === 0) break;
        for (const { position, header } of iterateBatches(r.records, { allowPartialTail: true })) {
          offset = header.baseOffset + BigInt(header.lastOffsetDelta) + 1n;
          const parsed = parseRecordBatch(r.records, position);
          if (isControlBatch(header.attributes)) {
            const rec = parsed.records[0];
            if (rec)
              coordinator.completeTxnOffsets(
                header.producerId,
                parseControlRecord(rec.key, rec.value).type === "COMMIT",
              );
            continue;
          }
          if (isTransactional(header.attributes)) {
            for (const rec of parsed.records)
              if (rec.key !== null) applyTxnRecord(coordinator, header.producerId, rec.key, rec.value);
            continue;
          }
          for (const rec of parsed.records) {
            if (rec.key !== null) applyRecord(coordinator, rec.key, rec.value);
          }
        }
      }
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
