// Producer state snapshots as segments roll (Kafka takes one at each roll), so that recovery after
// a crash replays the log from the last snapshot instead of from its start. Clean shutdown writes
// one too (TopicManager.snapshotProducers).
//
// Consistency: every append that changes producer state (idempotent and transactional batches,
// transaction markers) runs in the partition's serialAppend chain and applies its change there.
// Called from inside such a step, right after the apply, the in-memory state covers every producer
// batch below `nextOffset`: the snapshot taken then is labelled `nextOffset`, and recovery replays
// from it. Appends without a producer id may interleave; they do not touch producer state.
// The bytes are taken synchronously; the file is written in the background (atomically, fsynced),
// so the append's acknowledgement does not wait for it.

import type { Logger } from "pino";
import type { PartitionState } from "../topics.ts";

/** Per partition, the active segment a snapshot was last taken in. */
const snapshotSegment = new WeakMap<PartitionState, bigint>();

/**
 * Takes a snapshot if the partition's active segment has none yet. Call only inside a serialAppend
 * step, after applying that step's change to the producer state; `nextOffset` is the offset after
 * the step's append.
 */
export function snapshotOnNewSegment(p: PartitionState, nextOffset: bigint, logger: Logger | undefined): void {
  const segment = p.log.activeSegmentBaseOffset;
  const last = snapshotSegment.get(p);
  if (last === undefined) {
    // The segment the broker started in: recovery already had to replay it; start from the next.
    snapshotSegment.set(p, segment);
    return;
  }
  if (last === segment || p.producers.size === 0) return;
  snapshotSegment.set(p, segment);
  const data = p.producers.toSnapshot();
  p.log.writeProducerSnapshot(nextOffset, data).catch((e: unknown) => {
    // Only recovery time is at stake: without it, recovery replays from an older snapshot.
    logger?.warn({ err: e, topic: p.topic, partition: p.partition }, "producer state snapshot failed");
  });
}
