// Per-partition producer state: what makes produce idempotent and transactions visible correctly.
//
// For every producer id that wrote to the partition we keep its epoch and the metadata of its last
// five batches (sequence range and offsets), as Kafka does: a retried batch whose sequence range
// matches one of them is a duplicate and is answered with its original offsets instead of being
// appended again; a sequence that does not follow the last one is OUT_OF_ORDER_SEQUENCE_NUMBER; an
// epoch older than the current one is INVALID_PRODUCER_EPOCH. A producer we know nothing about
// (new, or expired) may start at any sequence (KIP-360).
//
// Transactions: the first offset of each producer's open transaction is tracked; the last stable
// offset (LSO) is the smallest such offset (or the high watermark when none is open). A control
// batch (COMMIT/ABORT marker) closes the transaction; for an ABORT, `apply` returns the aborted
// range, which the caller records in the log's per-segment aborted-transaction index.
//
// Concurrency: one instance per partition, used only from the partition's append path, which
// the broker serialises. `check` is pure (no mutation) so a failed disk write leaves state intact;
// `apply` is called only after the batch is in the log.

import assert from "node:assert/strict";

/** Kafka keeps the last five batches per producer for duplicate detection. */
export const NUM_BATCHES_TO_RETAIN = 5;
const INT32_MAX = 2 ** 31 - 1;

export interface BatchMetadata {
  readonly firstSeq: number;
  readonly lastSeq: number;
  readonly firstOffset: bigint;
  readonly lastOffset: bigint;
  readonly timestampMs: bigint;
}

export interface ProducerStateEntry {
  producerId: bigint;
  producerEpoch: number;
  /** Newest last, at most NUM_BATCHES_TO_RETAIN. */
  batches: BatchMetadata[];
  coordinatorEpoch: number;
  /** First offset of the open transaction, or null. */
  currentTxnFirstOffset: bigint | null;
  lastTimestampMs: bigint;
}

export interface AbortedTxn {
  readonly producerId: bigint;
  readonly firstOffset: bigint;
  readonly lastOffset: bigint;
}

/** What a producer batch header tells the state machine (read from the batch header). */
export interface ProducerBatchInfo {
  readonly producerId: bigint;
  readonly producerEpoch: number;
  readonly baseSequence: number;
  /** recordCount - 1 */
  readonly lastOffsetDelta: number;
  readonly isTransactional: boolean;
  readonly isControl: boolean;
  readonly maxTimestampMs: bigint;
}

export type CheckResult =
  | { readonly kind: "append" }
  | { readonly kind: "duplicate"; readonly batch: BatchMetadata }
  | {
      readonly kind: "error";
      readonly error: "OUT_OF_ORDER_SEQUENCE_NUMBER" | "INVALID_PRODUCER_EPOCH" | "INVALID_TXN_STATE";
      readonly message: string;
    };

export interface ControlMarker {
  readonly type: "COMMIT" | "ABORT";
  readonly coordinatorEpoch: number;
}

function lastSeqOf(baseSequence: number, lastOffsetDelta: number): number {
  // Sequence numbers wrap from INT32_MAX to 0.
  const last = baseSequence + lastOffsetDelta;
  return last > INT32_MAX ? last - INT32_MAX - 1 : last;
}

function inSequence(lastSeq: number, nextSeq: number): boolean {
  return nextSeq === lastSeq + 1 || (nextSeq === 0 && lastSeq === INT32_MAX);
}

export class ProducerStateManager {
  private readonly producers = new Map<bigint, ProducerStateEntry>();

  get size(): number {
    return this.producers.size;
  }

  entry(producerId: bigint): ProducerStateEntry | undefined {
    return this.producers.get(producerId);
  }

  entries(): IterableIterator<ProducerStateEntry> {
    return this.producers.values();
  }

  /** Decides what to do with a producer batch before it is written. Does not change state. */
  check(b: ProducerBatchInfo): CheckResult {
    if (b.producerId < 0n) return { kind: "append" };
    const e = this.producers.get(b.producerId);
    if (b.isControl) return { kind: "append" };
    if (e === undefined) return { kind: "append" };
    if (b.producerEpoch < e.producerEpoch) {
      return {
        kind: "error",
        error: "INVALID_PRODUCER_EPOCH",
        message: `epoch ${b.producerEpoch} is older than the current epoch ${e.producerEpoch} of producer ${b.producerId}`,
      };
    }
    const lastSeq = lastSeqOf(b.baseSequence, b.lastOffsetDelta);
    if (b.producerEpoch === e.producerEpoch) {
      const dup = e.batches.find((m) => m.firstSeq === b.baseSequence && m.lastSeq === lastSeq);
      if (dup) return { kind: "duplicate", batch: dup };
    }
    if (b.producerEpoch > e.producerEpoch) {
      if (b.baseSequence !== 0) {
        return {
          kind: "error",
          error: "OUT_OF_ORDER_SEQUENCE_NUMBER",
          message: `sequence ${b.baseSequence} for the new epoch ${b.producerEpoch} of producer ${b.producerId} (expected 0)`,
        };
      }
      return { kind: "append" };
    }
    const current = e.batches.at(-1);
    if (current !== undefined && !inSequence(current.lastSeq, b.baseSequence)) {
      return {
        kind: "error",
        error: "OUT_OF_ORDER_SEQUENCE_NUMBER",
        message: `sequence ${b.baseSequence} of producer ${b.producerId} does not follow ${current.lastSeq}`,
      };
    }
    if (!b.isTransactional && e.currentTxnFirstOffset !== null) {
      return {
        kind: "error",
        error: "INVALID_TXN_STATE",
        message: "non-transactional batch inside an open transaction",
      };
    }
    return { kind: "append" };
  }

  /** Records a batch that is now in the log at [firstOffset, lastOffset]. */
  apply(b: ProducerBatchInfo, firstOffset: bigint, lastOffset: bigint, marker?: ControlMarker): AbortedTxn | null {
    if (b.producerId < 0n) return null;
    let e = this.producers.get(b.producerId);
    if (e === undefined) {
      e = {
        producerId: b.producerId,
        producerEpoch: b.producerEpoch,
        batches: [],
        coordinatorEpoch: -1,
        currentTxnFirstOffset: null,
        lastTimestampMs: b.maxTimestampMs,
      };
      this.producers.set(b.producerId, e);
    }
    if (b.producerEpoch > e.producerEpoch) {
      e.producerEpoch = b.producerEpoch;
      e.batches = [];
    }
    e.lastTimestampMs = b.maxTimestampMs;
    if (b.isControl) {
      assert.ok(marker, "a control batch carries a marker");
      e.coordinatorEpoch = marker.coordinatorEpoch;
      const txnFirst = e.currentTxnFirstOffset;
      e.currentTxnFirstOffset = null;
      if (marker.type === "ABORT" && txnFirst !== null)
        return { producerId: b.producerId, firstOffset: txnFirst, lastOffset };
      return null;
    }
    if (b.isTransactional && e.currentTxnFirstOffset === null) e.currentTxnFirstOffset = firstOffset;
    e.batches.push({
      firstSeq: b.baseSequence,
      lastSeq: lastSeqOf(b.baseSequence, b.lastOffsetDelta),
      firstOffset,
      lastOffset,
      timestampMs: b.maxTimestampMs,
    });
    if (e.batches.length > NUM_BATCHES_TO_RETAIN) e.batches.shift();
    return null;
  }

  /** The smallest first offset of an open transaction, or null when none is open. */
  firstUnstableOffset(): bigint | null {
    let min: bigint | null = null;
    for (const e of this.producers.values()) {
      const f = e.currentTxnFirstOffset;
      if (f !== null && (min === null || f < min)) min = f;
    }
    return min;
  }

  /** Last stable offset given the high watermark. */
  lastStableOffset(highWatermark: bigint): bigint {
    const f = this.firstUnstableOffset();
    return f !== null && f < highWatermark ? f : highWatermark;
  }

  /** Removes producers idle for longer than `expirationMs` that have no open transaction. */
  expire(nowMs: bigint, expirationMs: bigint): number {
    let removed = 0;
    for (const [id, e] of this.producers) {
      if (e.currentTxnFirstOffset === null && nowMs - e.lastTimestampMs > expirationMs) {
        this.producers.delete(id);
        removed++;
      }
    }
    return removed;
  }

  /** Forgets everything at or after `offset` (log truncation): state must be rebuilt from the log. */
  clear(): void {
    this.producers.clear();
  }

  // ---- snapshot ---------------------------------------------------------------------------------
  // Format (version 1), all big-endian: int16 version, int32 producer count, then per producer:
  // int64 id, int16 epoch, int32 coordinatorEpoch, int64 currentTxnFirstOffset (-1 none),
  // int64 lastTimestamp, int8 batch count, per batch: int32 firstSeq, int32 lastSeq,
  // int64 firstOffset, int64 lastOffset, int64 timestamp.

  toSnapshot(): Buffer {
    let size = 2 + 4;
    for (const e of this.producers.values()) size += 8 + 2 + 4 + 8 + 8 + 1 + e.batches.length * 32;
    const b = Buffer.allocUnsafe(size);
    let p = b.writeInt16BE(1, 0);
    p = b.writeInt32BE(this.producers.size, p);
    for (const e of this.producers.values()) {
      p = b.writeBigInt64BE(e.producerId, p);
      p = b.writeInt16BE(e.producerEpoch, p);
      p = b.writeInt32BE(e.coordinatorEpoch, p);
      p = b.writeBigInt64BE(e.currentTxnFirstOffset ?? -1n, p);
      p = b.writeBigInt64BE(e.lastTimestampMs, p);
      p = b.writeInt8(e.batches.length, p);
      for (const m of e.batches) {
        p = b.writeInt32BE(m.firstSeq, p);
        p = b.writeInt32BE(m.lastSeq, p);
        p = b.writeBigInt64BE(m.firstOffset, p);
        p = b.writeBigInt64BE(m.lastOffset, p);
        p = b.writeBigInt64BE(m.timestampMs, p);
      }
    }
    assert.equal(p, size);
    return b;
  }

  /** Replaces the state with a snapshot; throws on a malformed snapshot (the caller rebuilds from the log). */
  loadSnapshot(buf: Buffer): void {
    this.clear();
    let p = 0;
    const need = (n: number): void => {
      if (p + n > buf.length) throw new Error("truncated producer state snapshot");
    };
    need(6);
    const version = buf.readInt16BE(p);
    p += 2;
    if (version !== 1) throw new Error(`unknown producer state snapshot version ${version}`);
    const count = buf.readInt32BE(p);
    p += 4;
    if (count < 0 || count * 31 > buf.length - p) throw new Error("bad producer count in snapshot");
    for (let i = 0; i < count; i++) {
      need(31);
      const producerId = buf.readBigInt64BE(p);
      const producerEpoch = buf.readInt16BE(p + 8);
      const coordinatorEpoch = buf.readInt32BE(p + 10);
      const txnFirst = buf.readBigInt64BE(p + 14);
      const lastTimestampMs = buf.readBigInt64BE(p + 22);
      const n = buf.readInt8(p + 30);
      p += 31;
      if (n < 0 || n > NUM_BATCHES_TO_RETAIN) throw new Error("bad batch count in snapshot");
      need(n * 32);
      const batches: BatchMetadata[] = [];
      for (let j = 0; j < n; j++) {
        batches.push({
          firstSeq: buf.readInt32BE(p),
          lastSeq: buf.readInt32BE(p + 4),
          firstOffset: buf.readBigInt64BE(p + 8),
          lastOffset: buf.readBigInt64BE(p + 16),
          timestampMs: buf.readBigInt64BE(p + 24),
        });
        p += 32;
      }
      this.producers.set(producerId, {
        producerId,
        producerEpoch,
        batches,
        coordinatorEpoch,
        currentTxnFirstOffset: txnFirst < 0n ? null : txnFirst,
        lastTimestampMs,
      });
    }
    if (p !== buf.length) throw new Error("trailing bytes in producer state snapshot");
  }
}
