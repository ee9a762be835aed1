// The producer's record batch builder: records are encoded into one growing buffer as they are
// appended (as Java's MemoryRecordsBuilder does), so building a batch for the wire costs one
// header and one CRC32C, not a pass over every record and a copy. Magic v2 layout (RECORDS.md):
//   header (61 bytes) | records, each: length varint | attributes int8 | timestampDelta varlong |
//   offsetDelta varint | keyLength varint | key | valueLength varint | value | headerCount varint |
//   headers (keyLength varint, key, valueLength varint, value)
// The header (producer id, epoch, base sequence, attributes, CRC) is written by `build()`, so a
// batch re-sequenced under a new producer id is rebuilt without re-encoding its records.
// Timestamps are milliseconds as numbers (exact up to 2^53 ms, far past any real clock).

import {
  type CompressionCodec,
  computeBatchCrc,
  LOG_OVERHEAD,
  RECORD_BATCH_HEADER_BYTES,
  TRANSACTIONAL_BIT,
} from "@sluice/protocol/records/batch-header.ts";
import { compressSync } from "@sluice/protocol/records/compression.ts";

/** A header with its key already encoded. */
export interface EncodedHeader {
  readonly key: Uint8Array;
  readonly value: Uint8Array | null;
}

/** Key or value: bytes, a string (written as UTF-8 straight into the batch) or null. */
export type RecordBytes = Uint8Array | string | null;

export interface BuildOptions {
  readonly compression: CompressionCodec;
  readonly producerId: bigint;
  readonly producerEpoch: number;
  readonly baseSequence: number;
  readonly transactional: boolean;
}

/** Bytes of an unsigned varint. */
export function uvarintBytes(v: number): number {
  return v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : v < 0x10000000 ? 4 : 5;
}

/** Bytes of a zigzag varint (a signed 32-bit value). */
export function varintBytes(n: number): number {
  return uvarintBytes(((n << 1) ^ (n >> 31)) >>> 0);
}

/** Bytes of a zigzag varlong of a safe integer. */
function varlongBytes(n: number): number {
  if (n >= -0x40000000 && n < 0x40000000) return varintBytes(n);
  let z = n >= 0 ? n * 2 : -n * 2 - 1;
  let bytes = 1;
  while (z >= 0x80) {
    z = Math.floor(z / 0x80);
    bytes++;
  }
  return bytes;
}

/** The byte length of a key or value as the batch stores it. */
export function byteLengthOf(v: RecordBytes): number {
  return v === null ? -1 : typeof v === "string" ? Buffer.byteLength(v) : v.length;
}

/**
 * An upper bound of one record's size in a batch (worst-case timestamp and offset deltas), for
 * memory accounting and for deciding whether a record still fits in a batch. Lengths are -1 for null.
 */
export function recordBytesMax(keyBytes: number, valueBytes: number, headers: readonly EncodedHeader[] | null): number {
  let body = 1 + 10 + 5; // attributes, timestampDelta (varlong), offsetDelta
  body += keyBytes < 0 ? 1 : uvarintBytes(keyBytes * 2) + keyBytes;
  body += valueBytes < 0 ? 1 : uvarintBytes(valueBytes * 2) + valueBytes;
  body += headers === null ? 1 : headersBytes(headers);
  return uvarintBytes(body * 2) + body;
}

function headersBytes(headers: readonly EncodedHeader[]): number {
  let n = varintBytes(headers.length);
  for (const h of headers) {
    n += varintBytes(h.key.length) + h.key.length;
    n += h.value === null ? 1 : varintBytes(h.value.length) + h.value.length;
  }
  return n;
}

export class RecordBatchBuilder {
  private buf: Buffer;
  /** Write position: the batch's size so far, header included. */
  private pos = RECORD_BATCH_HEADER_BYTES;
  private count = 0;
  private baseTimestamp = 0;
  private maxTimestamp = -1;
  private built = false;

  /** `capacityHint`: record bytes the batch will probably hold (it grows by doubling past them). */
  constructor(capacityHint: number, firstRecordBytes: number) {
    this.buf = Buffer.allocUnsafe(RECORD_BATCH_HEADER_BYTES + Math.max(capacityHint, firstRecordBytes));
  }

  get recordCount(): number {
    return this.count;
  }

  /** Bytes of the uncompressed batch so far, header included. */
  get sizeInBytes(): number {
    return this.pos;
  }

  /**
   * Appends one record. `keyBytes`/`valueBytes` are the byte lengths (-1 for null) as
   * byteLengthOf() gives them.
   */
  append(
    key: RecordBytes,
    keyBytes: number,
    value: RecordBytes,
    valueBytes: number,
    headers: readonly EncodedHeader[] | null,
    timestampMs: number,
  ): void {
    if (this.count === 0) this.baseTimestamp = timestampMs;
    if (timestampMs > this.maxTimestamp) this.maxTimestamp = timestampMs;
    const timestampDelta = timestampMs - this.baseTimestamp;
    const offsetDelta = this.count;
    let body = 1 + varlongBytes(timestampDelta) + uvarintBytes(offsetDelta * 2);
    body += keyBytes < 0 ? 1 : uvarintBytes(keyBytes * 2) + keyBytes;
    body += valueBytes < 0 ? 1 : uvarintBytes(valueBytes * 2) + valueBytes;
    body += headers === null ? 1 : headersBytes(headers);
    this.ensure(uvarintBytes(body * 2) + body);
    const buf = this.buf;
    let p = writeUvarint(buf, this.pos, body * 2);
    buf[p++] = 0; // attributes
    p = writeVarlong(buf, p, timestampDelta);
    p = writeUvarint(buf, p, offsetDelta * 2);
    p = writeBytes(buf, p, key, keyBytes);
    p = writeBytes(buf, p, value, valueBytes);
    if (headers === null) buf[p++] = 0;
    else {
      p = writeUvarint(buf, p, headers.length * 2);
      for (const h of headers) {
        p = writeBytes(buf, p, h.key, h.key.length);
        p = writeBytes(buf, p, h.value, h.value === null ? -1 : h.value.length);
      }
    }
    this.pos = p;
    this.count++;
  }

  /**
   * The batch as it goes on the wire. May be called again (after a producer id reset) with other
   * header fields; the records are not re-encoded.
   */
  build(o: BuildOptions): Buffer {
    if (this.count === 0) throw new Error("a record batch needs at least one record");
    // Bytes handed out before belong to a request that may still be referenced: never rewrite them.
    if (this.built) this.buf = Buffer.from(this.buf.subarray(0, this.pos));
    this.built = true;
    let out: Buffer;
    if (o.compression === 0) out = this.buf.subarray(0, this.pos);
    else {
      const body = compressSync(o.compression, this.buf.subarray(RECORD_BATCH_HEADER_BYTES, this.pos));
      out = Buffer.allocUnsafe(RECORD_BATCH_HEADER_BYTES + body.length);
      out.set(body, RECORD_BATCH_HEADER_BYTES);
    }
    const total = out.length;
    out.writeBigInt64BE(0n, 0); // baseOffset: the broker assigns it
    out.writeInt32BE(total - LOG_OVERHEAD, 8);
    out.writeInt32BE(-1, 12); // partitionLeaderEpoch
    out.writeInt8(2, 16); // magic
    out.writeInt16BE(o.compression | (o.transactional ? TRANSACTIONAL_BIT : 0), 21);
    out.writeInt32BE(this.count - 1, 23); // lastOffsetDelta
    out.writeBigInt64BE(BigInt(this.baseTimestamp), 27);
    out.writeBigInt64BE(BigInt(this.maxTimestamp), 35);
    out.writeBigInt64BE(o.producerId, 43);
    out.writeInt16BE(o.producerEpoch, 51);
    out.writeInt32BE(o.baseSequence, 53);
    out.writeInt32BE(this.count, 57);
    out.writeUInt32BE(computeBatchCrc(out, 0, total - LOG_OVERHEAD), 17);
    return out;
  }

  private ensure(extra: number): void {
    const needed = this.pos + extra;
    if (needed <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(needed, this.buf.length * 2));
    this.buf.copy(grown, 0, 0, this.pos);
    this.buf = grown;
  }
}

/** Writes an unsigned varint (v < 2^32; zigzag values are passed already doubled). */
function writeUvarint(buf: Buffer, pos: number, v: number): number {
  while (v >= 0x80) {
    buf[pos++] = (v & 0x7f) | 0x80;
    v = v >>> 7;
  }
  buf[pos++] = v;
  return pos;
}

/** Writes a zigzag varlong of a safe integer. */
function writeVarlong(buf: Buffer, pos: number, n: number): number {
  if (n >= 0 && n < 0x40000000) return writeUvarint(buf, pos, n * 2);
  let z = n >= 0 ? n * 2 : -n * 2 - 1;
  while (z >= 0x80) {
    buf[pos++] = (z % 0x80) | 0x80;
    z = Math.floor(z / 0x80);
  }
  buf[pos++] = z;
  return pos;
}

/** Writes a length-prefixed key, value or header field (length -1 for null). */
function writeBytes(buf: Buffer, pos: number, v: RecordBytes, length: number): number {
  if (v === null) {
    buf[pos] = 1; // zigzag(-1)
    return pos + 1;
  }
  pos = writeUvarint(buf, pos, length * 2);
  if (typeof v === "string") buf.write(v, pos, length, "utf8");
  else buf.set(v, pos);
  return pos + length;
}
