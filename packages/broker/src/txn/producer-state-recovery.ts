// Rebuilds a partition's producer state from its log: load the latest snapshot (written at clean
// shutdown and as segments roll: producer-snapshots.ts) and replay the batches after it; without a
// usable snapshot, replay the whole log.
// Only batch headers are needed, except for control batches, whose marker type is read.

import { isControlBatch, isTransactional, lastOffsetOf } from "@sluice/protocol/records/batch-header.ts";
import { parseControlRecord, parseRecordBatch } from "@sluice/protocol/records/record-batch.ts";
import type { PartitionLog } from "@sluice/storage";
import type { ProducerStateManager } from "./producer-state.ts";

export async function rebuildProducerState(log: PartitionLog, producers: ProducerStateManager): Promise<void> {
  let from = log.logStartOffset;
  const snap = await log.readLatestProducerSnapshot();
  if (snap) {
    try {
      producers.loadSnapshot(snap.data);
      from = snap.offset > from ? snap.offset : from;
    } catch {
      producers.clear();
    }
  }
  await log.forEachBatch(from, (records, position, header) => {
    const last = lastOffsetOf(header);
    if (last < from || header.producerId < 0n) return;
    const info = {
      producerId: header.producerId,
      producerEpoch: header.producerEpoch,
      baseSequence: header.baseSequence,
      lastOffsetDelta: header.lastOffsetDelta,
      isTransactional: isTransactional(header.attributes),
      isControl: isControlBatch(header.attributes),
      maxTimestampMs: header.maxTimestamp,
    };
    if (!info.isControl) {
      producers.apply(info, header.baseOffset, last);
      return;
    }
    const rec = parseRecordBatch(records, position).records[0];
    const marker = rec ? parseControlRecord(rec.key, rec.value) : null;
    const aborted = marker ? producers.apply(info, header.baseOffset, last, marker) : null;
    // The index entry may have been lost in a crash between the marker and its index write.
    if (aborted) return log.appendAbortedTxn({ ...aborted, lastStableOffset: producers.lastStableOffset(last + 1n) });
  });
}
