// The 61-byte header of a magic-v2 record batch, read and patched in place without decoding
// the records (the broker's hot path). Layout (big-endian), see ../shared/kafka-protocol/RECORDS.md:
//   0 baseOffset int64 | 8 batchLength int32 | 12 partitionLeaderEpoch int32 | 16 magic int8
//   17 crc uint32 (CRC-32C of bytes 21..end) | 21 attributes int16 | 23 lastOffsetDelta int32
//   27 baseTimestamp int64 | 35 maxTimestamp int64 | 43 producerId int64 | 51 producerEpoch int16
//   53 baseSequence int32 | 57 recordCount int32 | 61 records
// (RECORDS.md's table puts baseSequence at 55; producerEpoch is an int16 at 51, so it is 53, as in
// Kafka's DefaultRecordBatch.)
// Buffers are read through a DataView over (buffer, byteOffset, byteLength), so pooled Buffers and
// subarrays (byteOffset != 0) work; `position` is always relative to the view.
// Because the CRC starts at `attributes`, baseOffset and partitionLeaderEpoch can be rewritten
// without recomputing it; anything at offset 21 or later needs a new CRC.

import { crc32c } from "./crc32c.ts";
import { RecordsError } from "./errors.ts";

export const RECORD_BATCH_HEADER_BYTES = 61;
/** baseOffset + batchLength: the bytes before batchLength starts counting. */
export const LOG_OVERHEAD = 12;
const CRC_START = 21;
const MAGIC_V2 = 2;

export const Compression = { none: 0, gzip: 1, snappy: 2, lz4: 3, zstd: 4 } as const;
export type CompressionCodec = 0 | 1 | 2 | 3 | 4;
export const COMPRESSION_NAMES = ["none", "gzip", "snappy", "lz4", "zstd"] as const;

export const TIMESTAMP_TYPE_BIT = 0x08;
export const TRANSACTIONAL_BIT = 0x10;
export const CONTROL_BIT = 0x20;
export const DELETE_HORIZON_BIT = 0x40;

export interface RecordBatchHeader {
  baseOffset: bigint;
  batchLength: number;
  partitionLeaderEpoch: number;
  magic: number;
  crc: number;
  attributes: number;
  lastOffsetDelta: number;
  baseTimestamp: bigint;
  maxTimestamp: bigint;
  producerId: bigint;
  producerEpoch: number;
  baseSequence: number;
  recordCount: number;
}

// A DataView of the whole ArrayBuffer under the last buffer seen, reused while calls keep coming
// for the same one (the batches of one request, small requests sharing Node's pool slab): making
// a DataView per header read and per patch was 5 % of the broker's time on small produce requests.
// Positions passed to it must include the buffer's byteOffset; callers bound them by the buffer.
let viewed: ArrayBufferLike | null = null;
let cachedView: DataView = new DataView(new ArrayBuffer(0));

function view(buf: Uint8Array): DataView {
  if (buf.buffer !== viewed) {
    cachedView = new DataView(buf.buffer);
    viewed = buf.buffer;
  }
  return cachedView;
}

export function readBatchHeader(buf: Uint8Array, position: number): RecordBatchHeader {
  if (position + RECORD_BATCH_HEADER_BYTES > buf.byteLength) {
    // Enough for baseOffset+batchLength+epoch+magic tells an old-format batch apart from a torn one.
    if (position + 17 <= buf.byteLength && buf[position + 16] !== MAGIC_V2) {
      throw new RecordsError(
        "UNSUPPORTED_MAGIC",
        `record batch magic ${buf[position + 16]} is not supported (only v2)`,
      );
    }
    throw new RecordsError("TRUNCATED", `record batch header at ${position} is truncated`);
  }
  const v = view(buf);
  const o = buf.byteOffset + position;
  const magic = v.getInt8(o + 16);
  if (magic !== MAGIC_V2)
    throw new RecordsError("UNSUPPORTED_MAGIC", `record batch magic ${magic} is not supported (only v2)`);
  const batchLength = v.getInt32(o + 8);
  if (batchLength < RECORD_BATCH_HEADER_BYTES - LOG_OVERHEAD) {
    throw new RecordsError("CORRUPT_RECORD", `record batch length ${batchLength} is smaller than its header`);
  }
  return {
    baseOffset: v.getBigInt64(o),
    batchLength,
    partitionLeaderEpoch: v.getInt32(o + 12),
    magic,
    crc: v.getUint32(o + 17),
    attributes: v.getInt16(o + 21),
    lastOffsetDelta: v.getInt32(o + 23),
    baseTimestamp: v.getBigInt64(o + 27),
    maxTimestamp: v.getBigInt64(o + 35),
    producerId: v.getBigInt64(o + 43),
    producerEpoch: v.getInt16(o + 51),
    baseSequence: v.getInt32(o + 53),
    recordCount: v.getInt32(o + 57),
  };
}

export function batchTotalBytes(h: RecordBatchHeader): number {
  return h.batchLength + LOG_OVERHEAD;
}

export function lastOffsetOf(h: RecordBatchHeader): bigint {
  return h.baseOffset + BigInt(h.lastOffsetDelta);
}

export function computeBatchCrc(buf: Uint8Array, position: number, batchLength: number): number {
  return crc32c(buf.subarray(position + CRC_START, position + LOG_OVERHEAD + batchLength));
}

export function verifyBatchCrc(buf: Uint8Array, position: number, header?: RecordBatchHeader): boolean {
  const h = header ?? readBatchHeader(buf, position);
  if (position + batchTotalBytes(h) > buf.byteLength) return false;
  return computeBatchCrc(buf, position, h.batchLength) === h.crc;
}

export function patchBaseOffset(buf: Uint8Array, position: number, baseOffset: bigint): void {
  view(buf).setBigInt64(buf.byteOffset + position, baseOffset);
}

export function patchPartitionLeaderEpoch(buf: Uint8Array, position: number, epoch: number): void {
  view(buf).setInt32(buf.byteOffset + position + 12, epoch);
}

/**
 * Marks the batch LogAppendTime with the given time as maxTimestamp, and recomputes the CRC. The
 * records keep their CreateTime deltas; readers report maxTimestamp for every record of such a
 * batch (as Kafka's DefaultRecordBatch does).
 */
export function setLogAppendTime(buf: Uint8Array, position: number, timestampMs: bigint): void {
  rewriteMaxTimestamp(buf, position, timestampMs, true);
}

/**
 * Sets a CreateTime batch's maxTimestamp (its records' largest timestamp, as the broker computed
 * it) and recomputes the CRC: Kafka's broker does the same (LogValidator), so a client that wrote
 * a wrong one (sarama 1.22, Debian's, always writes -1) still gets a correct time index.
 */
export function setMaxTimestamp(buf: Uint8Array, position: number, timestampMs: bigint): void {
  rewriteMaxTimestamp(buf, position, timestampMs, false);
}

function rewriteMaxTimestamp(buf: Uint8Array, position: number, timestampMs: bigint, logAppendTime: boolean): void {
  const h = readBatchHeader(buf, position);
  // A CRC over a cut-off batch would be silently wrong: refuse instead.
  if (position + batchTotalBytes(h) > buf.byteLength) {
    throw new RecordsError("TRUNCATED", `record batch at ${position} is truncated`);
  }
  const v = view(buf);
  const o = buf.byteOffset + position;
  if (logAppendTime) v.setInt16(o + 21, h.attributes | TIMESTAMP_TYPE_BIT);
  v.setBigInt64(o + 35, timestampMs);
  v.setUint32(o + 17, computeBatchCrc(buf, position, h.batchLength));
}

export function compressionOf(attributes: number): CompressionCodec {
  const c = attributes & 0x07;
  if (c > 4) throw new RecordsError("UNSUPPORTED_COMPRESSION", `unknown compression codec ${c}`);
  return c as CompressionCodec;
}

export function isTransactional(attributes: number): boolean {
  return (attributes & TRANSACTIONAL_BIT) !== 0;
}

export function isControlBatch(attributes: number): boolean {
  return (attributes & CONTROL_BIT) !== 0;
}

export function timestampTypeOf(attributes: number): 0 | 1 {
  return (attributes & TIMESTAMP_TYPE_BIT) !== 0 ? 1 : 0;
}

export interface BatchPosition {
  position: number;
  header: RecordBatchHeader;
}

export interface IterateOptions {
  /** Check each batch's CRC (throws CRC_MISMATCH). */
  readonly verifyCrc?: boolean;
  /** Stop quietly at a trailing partial batch instead of throwing TRUNCATED (fetch responses may end mid-batch). */
  readonly allowPartialTail?: boolean;
}

/** The whole batches in a `records` blob, in order. */
export function* iterateBatches(records: Uint8Array, opts: IterateOptions = {}): Generator<BatchPosition> {
  let position = 0;
  while (position < records.byteLength) {
    if (records.byteLength - position < RECORD_BATCH_HEADER_BYTES) {
      if (opts.allowPartialTail) return;
      throw new RecordsError("TRUNCATED", `${records.byteLength - position} trailing bytes are not a whole batch`);
    }
    const header = readBatchHeader(records, position);
    const total = batchTotalBytes(header);
    if (position + total > records.byteLength) {
      if (opts.allowPartialTail) return;
      throw new RecordsError(
        "TRUNCATED",
        `record batch at ${position} needs ${total} bytes, ${records.byteLength - position} remain`,
      );
    }
    if (opts.verifyCrc && computeBatchCrc(records, position, header.batchLength) !== header.crc) {
      throw new RecordsError(
        "CRC_MISMATCH",
        `record batch at ${position} (base offset ${header.baseOffset}) has a bad CRC`,
      );
    }
    yield { position, header };
    position += total;
  }
}
