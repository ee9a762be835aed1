// __transaction_state: where the transaction coordinator persists every state change of every
// transactional id (records in Kafka's TransactionLog schemas, see txn-log-records.ts), and the
// marker writer that puts COMMIT/ABORT control batches into the partitions of a transaction.

import { isControlBatch } from "@sluice/protocol/records/batch-header.ts";
import { buildControlBatch, buildRecordBatch, parseRecordBatch } from "@sluice/protocol/records/record-batch.ts";
import type { Logger } from "pino";
import type { GroupCoordinator } from "../group/coordinator.ts";
import { OFFSETS_TOPIC, partitionFor } from "../group/persistence.ts";
import { serialAppend } from "../handlers/00-produce.ts";
import type { TopicManager } from "../topics.ts";
import { snapshotOnNewSegment } from "./producer-snapshots.ts";
import type { MarkerWriter, TopicPartition, TxnLog, TxnLogValue } from "./transaction-coordinator.ts";
import { decodeTxnKey, decodeTxnValue, encodeTxnKey, encodeTxnValue } from "./txn-log-records.ts";

export const TXN_TOPIC = "__transaction_state";

export class TxnStateStore implements TxnLog {
  private readonly topics: TopicManager;
  private readonly partitions: number;
  private readonly segmentBytes: number;
  constructor(topics: TopicManager, partitions: number, segmentBytes = 100 * 1024 * 1024) {
    this.topics = topics;
    this.partitions = partitions;
    this.segmentBytes = segmentBytes;
  }

  async ensureTopic(): Promise<void> {
    if (!this.topics.get(TXN_TOPIC)) {
      await this.topics.create(
        TXN_TOPIC,
        this.partitions,
        { "cleanup.policy": "compact", "segment.bytes": String(this.segmentBytes) },
        true,
      );
    }
  }

  async append(transactionalId: string, value: TxnLogValue | null): Promise<void> {
    await this.ensureTopic();
    const p = this.topics.partition(TXN_TOPIC, partitionFor(transactionalId, this.partitions));
    if (!p) throw new Error("__transaction_state partition missing");
    const batch = buildRecordBatch({
      records: [{ key: encodeTxnKey(transactionalId), value: value === null ? null : encodeTxnValue(value) }],
    });
    await serialAppend(p, async () => {
      await p.log.appendAsLeader(batch, p.leaderEpoch);
      await p.log.updateHighWatermark(p.log.logEndOffset);
    });
  }

  /** The latest value of every transactional id in the log. */
  async load(): Promise<Map<string, TxnLogValue | null>> {
    const out = new Map<string, TxnLogValue | null>();
    const t = this.topics.get(TXN_TOPIC);
    if (!t) return out;
    for (const p of t.partitions) {
      await p.log.forEachBatch(p.log.logStartOffset, (records, position, header) => {
        if (isControlBatch(header.attributes)) return;
        for (const rec of parseRecordBatch(records, position).records) {
          if (rec.key !== null) out.set(decodeTxnKey(rec.key), decodeTxnValue(rec.value));
        }
      });
    }
    return out;
  }
}

export class LogMarkerWriter implements MarkerWriter {
  private readonly topics: TopicManager;
  private readonly groups: () => GroupCoordinator | undefined;
  private readonly logger: Logger | undefined;
  constructor(topics: TopicManager, groups: () => GroupCoordinator | undefined, logger?: Logger) {
    this.topics = topics;
    this.groups = groups;
    this.logger = logger;
  }

  async writeMarkers(
    producerId: bigint,
    producerEpoch: number,
    coordinatorEpoch: number,
    commit: boolean,
    partitions: readonly TopicPartition[],
  ): Promise<void> {
    let offsetsTouched = false;
    await Promise.all(
      partitions.map(async (tp) => {
        const p = this.topics.partition(tp.topic, tp.partition);
        if (!p) return; // deleted since: nothing to mark
        if (tp.topic === OFFSETS_TOPIC) offsetsTouched = true;
        const type = commit ? "COMMIT" : "ABORT";
        const batch = buildControlBatch({ type, coordinatorEpoch, producerId, producerEpoch });
        await serialAppend(p, async () => {
          const info = await p.log.appendAsLeader(batch, p.leaderEpoch);
          const h = info.batches[0]!.header;
          const aborted = p.producers.apply(
            {
              producerId,
              producerEpoch,
              baseSequence: -1,
              lastOffsetDelta: 0,
              isTransactional: true,
              isControl: true,
              maxTimestampMs: h.maxTimestamp,
            },
            info.baseOffset,
            info.lastOffset,
            { type, coordinatorEpoch },
          );
          if (aborted)
            await p.log.appendAbortedTxn({
              ...aborted,
              lastStableOffset: p.producers.lastStableOffset(p.log.logEndOffset),
            });
          // A marker changes producer state too: the first one in a new segment takes its snapshot.
          snapshotOnNewSegment(p, info.lastOffset + 1n, this.logger);
          await p.log.updateHighWatermark(p.log.logEndOffset);
        });
      }),
    );
    if (offsetsTouched) this.groups()?.completeTxnOffsets(producerId, commit);
  }
}
