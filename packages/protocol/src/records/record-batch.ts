// Building and parsing whole magic-v2 record batches, records included (see RECORDS.md).
// Record: length varint | attributes int8 | timestampDelta varlong | offsetDelta varint |
//         keyLength varint | key | valueLength varint | value | headerCount varint |
//         headers (keyLength varint, key utf8, valueLength varint, value)
// Offset deltas must increase strictly within [0, lastOffsetDelta] (compaction leaves gaps); under
// LogAppendTime every record reports the batch's maxTimestamp, as in Kafka's DefaultRecordBatch.
// The broker's hot path never calls this; clients, compaction and tests do.

import {
  batchTotalBytes,
  CONTROL_BIT,
  type CompressionCodec,
  compressionOf,
  computeBatchCrc,
  isControlBatch,
  iterateBatches,
  LOG_OVERHEAD,
  RECORD_BATCH_HEADER_BYTES,
  type RecordBatchHeader,
  readBatchHeader,
  TIMESTAMP_TYPE_BIT,
  TRANSACTIONAL_BIT,
  timestampTypeOf,
} from "./batch-header.ts";
import { compressSync, DEFAULT_MAX_DECOMPRESSED_BYTES, decompressSync } from "./compression.ts";
import { RecordsError } from "./errors.ts";
import { VarintReader, varintSize, varlongSize, writeVarint, writeVarlong } from "./varint.ts";

export interface RecordHeader {
  key: string;
  value: Uint8Array | null;
}

export interface Record {
  offset: bigint;
  timestamp: bigint;
  key: Uint8Array | null;
  value: Uint8Array | null;
  headers: RecordHeader[];
}

export interface RecordInput {
  key?: Uint8Array | null;
  value: Uint8Array | null;
  headers?: readonly RecordHeader[];
  timestamp?: bigint;
  /** Offset delta; defaults to the record's index (compaction keeps original deltas). */
  offsetDelta?: number;
}

export interface BuildBatchOptions {
  records: readonly RecordInput[];
  baseOffset?: bigint;
  partitionLeaderEpoch?: number;
  compression?: CompressionCodec;
  /** 0 CreateTime, 1 LogAppendTime. */
  timestampType?: 0 | 1;
  transactional?: boolean;
  control?: boolean;
  producerId?: bigint;
  producerEpoch?: number;
  baseSequence?: number;
  /** Defaults to the first record's timestamp. */
  baseTimestamp?: bigint;
  /** Offset delta of the last record when records were removed (compaction); defaults to the last record's. */
  lastOffsetDelta?: number;
  /** Extra attribute bits to keep (e.g. the delete-horizon bit). */
  extraAttributes?: number;
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder("utf-8", { fatal: true });

function encodeRecords(records: readonly RecordInput[], baseTimestamp: bigint): Uint8Array {
  const sizes: number[] = [];
  const headerKeys: Uint8Array[][] = [];
  let total = 0;
  records.forEach((r, i) => {
    const delta = (r.timestamp ?? baseTimestamp) - baseTimestamp;
    const offsetDelta = r.offsetDelta ?? i;
    let body = 1 + varlongSize(delta) + varintSize(offsetDelta);
    body += r.key == null ? varintSize(-1) : varintSize(r.key.length) + r.key.length;
    body += r.value === null ? varintSize(-1) : varintSize(r.value.length) + r.value.length;
    const headers = r.headers ?? [];
    const keys = headers.map((h) => textEncoder.encode(h.key));
    headerKeys.push(keys);
    body += varintSize(headers.length);
    headers.forEach((h, j) => {
      const k = keys[j]!;
      body += varintSize(k.length) + k.length;
      body += h.value === null ? varintSize(-1) : varintSize(h.value.length) + h.value.length;
    });
    sizes.push(body);
    total += varintSize(body) + body;
  });
  const out = Buffer.allocUnsafe(total);
  let p = 0;
  records.forEach((r, i) => {
    p = writeVarint(out, p, sizes[i]!);
    out[p++] = 0;
    p = writeVarlong(out, p, (r.timestamp ?? baseTimestamp) - baseTimestamp);
    p = writeVarint(out, p, r.offsetDelta ?? i);
    if (r.key == null) p = writeVarint(out, p, -1);
    else {
      p = writeVarint(out, p, r.key.length);
      out.set(r.key, p);
      p += r.key.length;
    }
    if (r.value === null) p = writeVarint(out, p, -1);
    else {
      p = writeVarint(out, p, r.value.length);
      out.set(r.value, p);
      p += r.value.length;
    }
    const headers = r.headers ?? [];
    p = writeVarint(out, p, headers.length);
    headers.forEach((h, j) => {
      const k = headerKeys[i]![j]!;
      p = writeVarint(out, p, k.length);
      out.set(k, p);
      p += k.length;
      if (h.value === null) p = writeVarint(out, p, -1);
      else {
        p = writeVarint(out, p, h.value.length);
        out.set(h.value, p);
        p += h.value.length;
      }
    });
  });
  return out;
}

export function buildRecordBatch(opts: BuildBatchOptions): Buffer {
  const records = opts.records;
  if (records.length === 0) throw new RecordsError("CORRUPT_RECORD", "a record batch needs at least one record");
  const now = BigInt(Date.now());
  const baseTimestamp = opts.baseTimestamp ?? records[0]!.timestamp ?? now;
  let maxTimestamp = -1n;
  for (const r of records) {
    const t = r.timestamp ?? baseTimestamp;
    if (t > maxTimestamp) maxTimestamp = t;
  }
  const codec = opts.compression ?? 0;
  const body = compressSync(codec, encodeRecords(records, baseTimestamp));
  const total = RECORD_BATCH_HEADER_BYTES + body.length;
  const out = Buffer.allocUnsafe(total);
  let attributes = codec | (opts.extraAttributes ?? 0);
  if (opts.timestampType === 1) attributes |= TIMESTAMP_TYPE_BIT;
  if (opts.transactional) attributes |= TRANSACTIONAL_BIT;
  if (opts.control) attributes |= CONTROL_BIT;
  const lastOffsetDelta = opts.lastOffsetDelta ?? records[records.length - 1]!.offsetDelta ?? records.length - 1;
  out.writeBigInt64BE(opts.baseOffset ?? 0n, 0);
  out.writeInt32BE(total - LOG_OVERHEAD, 8);
  out.writeInt32BE(opts.partitionLeaderEpoch ?? -1, 12);
  out.writeInt8(2, 16);
  out.writeInt16BE(attributes, 21);
  out.writeInt32BE(lastOffsetDelta, 23);
  out.writeBigInt64BE(baseTimestamp, 27);
  out.writeBigInt64BE(maxTimestamp, 35);
  out.writeBigInt64BE(opts.producerId ?? -1n, 43);
  out.writeInt16BE(opts.producerEpoch ?? -1, 51);
  out.writeInt32BE(opts.baseSequence ?? -1, 53);
  out.writeInt32BE(records.length, 57);
  out.set(body, RECORD_BATCH_HEADER_BYTES);
  out.writeUInt32BE(computeBatchCrc(out, 0, total - LOG_OVERHEAD), 17);
  return out;
}

export interface ParseOptions {
  /** Bound on the decompressed size of the batch's records (DECOMPRESSION_LIMIT beyond it). */
  readonly maxDecompressedBytes?: number;
  /** Check the CRC first (CRC_MISMATCH); on by default. */
  readonly verifyCrc?: boolean;
}

export interface ParsedBatch {
  header: RecordBatchHeader;
  /** Keys, values and header values are views of `buf` (uncompressed) or of the decompressed block. */
  records: Record[];
}

/** The smallest record: length, attributes, timestampDelta, offsetDelta, keyLength, valueLength, headerCount. */
const MIN_RECORD_BYTES = 7;

function readNullableBytes(r: VarintReader): Uint8Array | null {
  const len = r.varint();
  if (len < -1) throw new RecordsError("CORRUPT_RECORD", `negative length ${len}`);
  return len === -1 ? null : r.bytes(len);
}

function readHeaderKey(r: VarintReader): string {
  const k = readNullableBytes(r);
  if (k === null) throw new RecordsError("CORRUPT_RECORD", "null header key");
  try {
    return textDecoder.decode(k);
  } catch {
    throw new RecordsError("CORRUPT_RECORD", "header key is not UTF-8");
  }
}

/**
 * One record from `rr`, a reader over exactly its bytes. `logAppendTime` is the batch's
 * maxTimestamp under LogAppendTime (every record then reports it), else null.
 */
function readRecord(rr: VarintReader, h: RecordBatchHeader, logAppendTime: bigint | null): [Record, number] {
  rr.bytes(1); // attributes, unused
  const timestampDelta = rr.varlong();
  const offsetDelta = rr.varint();
  const key = readNullableBytes(rr);
  const value = readNullableBytes(rr);
  const headerCount = rr.varint();
  // Each header takes at least 2 bytes, which bounds the count by the bytes left.
  if (headerCount < 0 || headerCount * 2 > rr.remaining)
    throw new RecordsError("CORRUPT_RECORD", `bad header count ${headerCount}`);
  const headers: RecordHeader[] = [];
  for (let j = 0; j < headerCount; j++) headers.push({ key: readHeaderKey(rr), value: readNullableBytes(rr) });
  if (rr.remaining !== 0) throw new RecordsError("CORRUPT_RECORD", `record has ${rr.remaining} trailing bytes`);
  const timestamp = logAppendTime ?? h.baseTimestamp + timestampDelta;
  return [{ offset: h.baseOffset + BigInt(offsetDelta), timestamp, key, value, headers }, offsetDelta];
}

function readRecords(body: Uint8Array, h: RecordBatchHeader): Record[] {
  if (h.recordCount < 0) throw new RecordsError("CORRUPT_RECORD", `negative record count ${h.recordCount}`);
  // Refuse counts the body cannot hold before doing any work for them.
  if (h.recordCount > body.length / MIN_RECORD_BYTES) {
    throw new RecordsError("CORRUPT_RECORD", `record count ${h.recordCount} does not fit in ${body.length} bytes`);
  }
  const logAppendTime = timestampTypeOf(h.attributes) === 1 ? h.maxTimestamp : null;
  const r = new VarintReader(body);
  const records: Record[] = [];
  let previousDelta = -1;
  for (let i = 0; i < h.recordCount; i++) {
    if (r.remaining === 0) {
      throw new RecordsError("CORRUPT_RECORD", `batch declares ${h.recordCount} records but holds ${i}`);
    }
    try {
      const len = r.varint();
      if (len < 0) throw new RecordsError("CORRUPT_RECORD", `negative record length ${len}`);
      const start = r.pos;
      r.bytes(len); // skips the record; TRUNCATED when it runs past the block
      const [record, offsetDelta] = readRecord(new VarintReader(body, start, r.pos), h, logAppendTime);
      if (offsetDelta <= previousDelta || offsetDelta > h.lastOffsetDelta) {
        throw new RecordsError(
          "CORRUPT_RECORD",
          `offset delta ${offsetDelta} after ${previousDelta} (last offset delta ${h.lastOffsetDelta})`,
        );
      }
      previousDelta = offsetDelta;
      records.push(record);
    } catch (e) {
      // Inside a batch whose length checked out, a field running past its record is corruption.
      if (e instanceof RecordsError && e.code === "TRUNCATED") {
        throw new RecordsError("CORRUPT_RECORD", `record ${i}: ${e.message}`, e);
      }
      throw e;
    }
  }
  if (r.remaining !== 0) {
    throw new RecordsError(
      "CORRUPT_RECORD",
      `batch holds more than its ${h.recordCount} records (${r.remaining} bytes left)`,
    );
  }
  return records;
}

/** The batch at `position`, records decoded (after decompression bounded by maxDecompressedBytes). */
export function parseRecordBatch(buf: Uint8Array, position = 0, opts: ParseOptions = {}): ParsedBatch {
  const header = readBatchHeader(buf, position);
  const end = position + batchTotalBytes(header);
  if (end > buf.length) throw new RecordsError("TRUNCATED", `record batch at ${position} is truncated`);
  if ((opts.verifyCrc ?? true) && computeBatchCrc(buf, position, header.batchLength) !== header.crc) {
    throw new RecordsError("CRC_MISMATCH", `record batch at base offset ${header.baseOffset} has a bad CRC`);
  }
  const body = decompressSync(
    compressionOf(header.attributes),
    buf.subarray(position + RECORD_BATCH_HEADER_BYTES, end),
    opts.maxDecompressedBytes ?? DEFAULT_MAX_DECOMPRESSED_BYTES,
  );
  return { header, records: readRecords(body, header) };
}

export interface DecodeOptions extends ParseOptions {
  /** Ignore a trailing partial batch (as fetch responses may end); on by default. */
  readonly allowPartialTail?: boolean;
}

/** Every record of every whole batch in a `records` blob. */
export function decodeRecords(blob: Uint8Array, opts: DecodeOptions = {}): ParsedBatch[] {
  const out: ParsedBatch[] = [];
  for (const { position } of iterateBatches(blob, { allowPartialTail: opts.allowPartialTail ?? true }))
    out.push(parseRecordBatch(blob, position, opts));
  return out;
}

// ---- control batches (transaction markers) --------------------------------------------------

export type ControlType = "ABORT" | "COMMIT";

export interface ControlBatchOptions {
  type: ControlType;
  coordinatorEpoch: number;
  producerId: bigint;
  producerEpoch: number;
  baseOffset?: bigint;
  partitionLeaderEpoch?: number;
  timestamp?: bigint;
}

export function buildControlBatch(o: ControlBatchOptions): Buffer {
  const key = Buffer.alloc(4);
  key.writeInt16BE(0, 0);
  key.writeInt16BE(o.type === "COMMIT" ? 1 : 0, 2);
  const value = Buffer.alloc(6);
  value.writeInt16BE(0, 0);
  value.writeInt32BE(o.coordinatorEpoch, 2);
  const timestamp = o.timestamp ?? BigInt(Date.now());
  return buildRecordBatch({
    records: [{ key, value, timestamp }],
    baseOffset: o.baseOffset ?? 0n,
    partitionLeaderEpoch: o.partitionLeaderEpoch ?? -1,
    transactional: true,
    control: true,
    producerId: o.producerId,
    producerEpoch: o.producerEpoch,
    baseSequence: -1,
  });
}

export function parseControlRecord(
  key: Uint8Array | null,
  value: Uint8Array | null,
): { type: ControlType; coordinatorEpoch: number } {
  if (key === null || key.length < 4) throw new RecordsError("CORRUPT_RECORD", "control record key is too short");
  const k = Buffer.from(key.buffer, key.byteOffset, key.byteLength);
  const t = k.readInt16BE(2);
  if (t !== 0 && t !== 1) throw new RecordsError("CORRUPT_RECORD", `unknown control record type ${t}`);
  let coordinatorEpoch = -1;
  if (value !== null && value.length >= 6)
    coordinatorEpoch = Buffer.from(value.buffer, value.byteOffset, value.byteLength).readInt32BE(2);
  return { type: t === 1 ? "COMMIT" : "ABORT", coordinatorEpoch };
}

export function isControl(h: RecordBatchHeader): boolean {
  return isControlBatch(h.attributes);
}
