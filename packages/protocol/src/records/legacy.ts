// Message formats v0 and v1 (Kafka before 0.11), for clients that still send or fetch them: sarama
// with its default config (Kafka 0.8.2), kafka-python with an old api_version, librdkafka with
// api.version.request=false. Like Kafka 3.x, the broker stores only v2 batches: a Produce of a
// legacy message set is converted up to one v2 batch, and a Fetch of version 0-3 (whose clients
// read only v0/v1) gets the stored batches converted down.
//
// A message set is a run of [offset int64][messageSize int32][message]. A message is
//   crc uint32 (CRC-32/IEEE of the rest) | magic int8 | attributes int8 (bits 0-2 codec, bit 3
//   LogAppendTime, v1) | timestamp int64 (v1 only) | key bytes | value bytes (int32 length, -1 null)
// A compressed message ("wrapper") holds a whole inner message set, compressed, as its value;
// inner sets are never compressed again. Magic v1 inner offsets are relative (0..n-1), with the
// wrapper carrying the absolute offset of the last one; v0 inner offsets are absolute.

import * as zlib from "node:zlib";
import { type CompressionCodec, iterateBatches } from "./batch-header.ts";
import { compressSync, DEFAULT_MAX_DECOMPRESSED_BYTES, decompressSync } from "./compression.ts";
import { RecordsError } from "./errors.ts";
import { parseRecordBatch, type RecordInput } from "./record-batch.ts";

/** Offset of the magic byte, the same in a legacy message set and a v2 batch. */
const MAGIC_OFFSET = 16;
/** offset, messageSize, crc, magic, attributes: the bytes every message has before its v1 timestamp. */
const LOG_OVERHEAD = 12;
const MESSAGE_V0_MIN = 4 + 1 + 1 + 4 + 4;
const TIMESTAMP_TYPE_BIT = 0x08;

/** Whether `records` starts with a message of format v0 or v1 rather than a v2 batch. */
export function isLegacyMessageSet(records: Uint8Array): boolean {
  return records.length > MAGIC_OFFSET && records[MAGIC_OFFSET]! < 2;
}

const IEEE_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

export function crc32IeeePure(data: Uint8Array): number {
  let crc = 0xffffffff;
  for (let i = 0; i < data.length; i++) crc = IEEE_TABLE[(crc ^ data[i]!) & 0xff]! ^ (crc >>> 8);
  return ~crc >>> 0;
}

const nativeCrc32 = (zlib as { crc32?: (d: Uint8Array) => number }).crc32;

/** CRC-32 (IEEE), the legacy message checksum: zlib's where Node has it (22.2+), else a table. */
export function crc32Ieee(data: Uint8Array): number {
  return nativeCrc32 ? nativeCrc32(data) >>> 0 : crc32IeeePure(data);
}

export interface LegacyMessageSet {
  /** The format of the messages (0 or 1). */
  magic: 0 | 1;
  /** The codec of the wrapper messages (0 when uncompressed). */
  compression: CompressionCodec;
  records: RecordInput[];
}

/**
 * Reads a Produce request's legacy message set: every message's CRC checked, compressed ones
 * unpacked (bounded by `maxDecompressedBytes`). v0 messages have no timestamp (-1), as Kafka
 * converts them. Throws RecordsError (CORRUPT_MESSAGE and friends) on anything malformed.
 */
export function readLegacyMessageSet(
  buf: Uint8Array,
  maxDecompressedBytes = DEFAULT_MAX_DECOMPRESSED_BYTES,
): LegacyMessageSet {
  const records: RecordInput[] = [];
  let magic: 0 | 1 | null = null;
  let compression: CompressionCodec = 0;
  forEachMessage(buf, maxDecompressedBytes, (m, codec) => {
    if (magic === null) magic = m.magic;
    else if (m.magic !== magic) throw new RecordsError("CORRUPT_RECORD", "a message set mixes magic v0 and v1");
    if (codec !== 0) compression = codec;
    records.push(m.record);
  });
  if (magic === null) throw new RecordsError("CORRUPT_RECORD", "an empty message set");
  return { magic, compression, records };
}

interface LegacyMessage {
  offset: bigint;
  magic: 0 | 1;
  codec: CompressionCodec;
  record: RecordInput;
}

export interface LegacyMessageRead {
  offset: bigint;
  magic: 0 | 1;
  timestamp: bigint;
  key: Uint8Array | null;
  value: Uint8Array | null;
}

/**
 * Every message of a legacy message set with its absolute offset, wrappers unpacked (for clients
 * of old Fetch versions, tools and tests).
 */
export function readLegacyMessages(
  buf: Uint8Array,
  maxDecompressedBytes = DEFAULT_MAX_DECOMPRESSED_BYTES,
): LegacyMessageRead[] {
  const out: LegacyMessageRead[] = [];
  forEachMessage(buf, maxDecompressedBytes, (m) => {
    out.push({
      offset: m.offset,
      magic: m.magic,
      timestamp: m.record.timestamp ?? -1n,
      key: m.record.key ?? null,
      value: m.record.value,
    });
  });
  return out;
}

/**
 * Visits every plain message of a set, a compressed wrapper's inner messages in its place (with
 * the wrapper's codec; the inner ones must have the wrapper's magic). Offsets are absolute: a v1
 * wrapper's inner offsets are relative, the last one having the wrapper's offset.
 */
function forEachMessage(
  buf: Uint8Array,
  maxDecompressedBytes: number,
  visit: (m: LegacyMessage, wrapperCodec: CompressionCodec) => void,
): void {
  readSet(buf, false, (m) => {
    if (m.codec === 0) return visit(m, 0);
    const inner: LegacyMessage[] = [];
    readSet(decompressSync(m.codec, m.record.value ?? new Uint8Array(0), maxDecompressedBytes), true, (im) => {
      if (im.magic !== m.magic) throw new RecordsError("CORRUPT_RECORD", "an inner message has another magic");
      inner.push(im);
    });
    const last = inner.at(-1)?.offset ?? 0n;
    for (const im of inner)
      visit({ ...im, offset: m.magic === 1 ? m.offset - (last - im.offset) : im.offset }, m.codec);
  });
}

function readSet(buf: Uint8Array, inner: boolean, onMessage: (m: LegacyMessage) => void): void {
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let pos = 0;
  while (pos < buf.length) {
    if (buf.length - pos < LOG_OVERHEAD) throw new RecordsError("TRUNCATED", `message set cut off at ${pos}`);
    const size = v.getInt32(pos + 8);
    const start = pos + LOG_OVERHEAD;
    const end = start + size;
    if (size < MESSAGE_V0_MIN || end > buf.length)
      throw new RecordsError(
        size < MESSAGE_V0_MIN ? "CORRUPT_RECORD" : "TRUNCATED",
        `message at ${pos} of ${size} bytes`,
      );
    const crc = v.getUint32(start);
    if (crc32Ieee(buf.subarray(start + 4, end)) !== crc)
      throw new RecordsError("CRC_MISMATCH", `message at ${pos} has a bad CRC`);
    const magic = buf[start + 4]!;
    if (magic > 1) throw new RecordsError("CORRUPT_RECORD", `message at ${pos} has magic ${magic} in a legacy set`);
    const attributes = buf[start + 5]!;
    const codec = attributes & 0x07;
    if (codec > 3) throw new RecordsError("UNSUPPORTED_COMPRESSION", `codec ${codec} in a v${magic} message`);
    if (inner && codec !== 0) throw new RecordsError("CORRUPT_RECORD", "a compressed message inside a compressed one");
    let p = start + 6;
    let timestamp = -1n;
    if (magic === 1) {
      if (p + 8 > end) throw new RecordsError("CORRUPT_RECORD", `message at ${pos} is too short for v1`);
      timestamp = v.getBigInt64(p);
      p += 8;
    }
    const key = readBytes(buf, v, p, end);
    p = key.next;
    const value = readBytes(buf, v, p, end);
    if (value.next !== end) throw new RecordsError("CORRUPT_RECORD", `message at ${pos} has trailing bytes`);
    onMessage({
      offset: v.getBigInt64(pos),
      magic: magic as 0 | 1,
      codec: codec as CompressionCodec,
      record: { key: key.bytes, value: value.bytes, timestamp },
    });
    pos = end;
  }
}

function readBytes(buf: Uint8Array, v: DataView, p: number, end: number): { bytes: Uint8Array | null; next: number } {
  if (p + 4 > end) throw new RecordsError("CORRUPT_RECORD", "a message ends inside a length");
  const len = v.getInt32(p);
  if (len === -1) return { bytes: null, next: p + 4 };
  if (len < 0 || p + 4 + len > end) throw new RecordsError("CORRUPT_RECORD", `a length of ${len} overruns its message`);
  return { bytes: buf.subarray(p + 4, p + 4 + len), next: p + 4 + len };
}

/**
 * Converts v2 batches (a Fetch's stored bytes) to an uncompressed legacy message set of `magic`,
 * for Fetch versions 0-3. Control batches are dropped (old consumers know no transactions and read
 * uncommitted); each record keeps its offset; v1 keeps timestamps (LogAppendTime batches are
 * marked so). A batch cut off at the end (a Fetch's size limit) is left out, as old clients
 * expect only whole messages. Headers have no place in v0/v1 and are dropped, as Kafka does.
 */
export function downConvertBatches(
  buf: Uint8Array,
  magic: 0 | 1,
  maxDecompressedBytes = DEFAULT_MAX_DECOMPRESSED_BYTES,
): Uint8Array {
  const messages: Uint8Array[] = [];
  let total = 0;
  for (const { position, header } of iterateBatches(buf, { allowPartialTail: true })) {
    if (position + LOG_OVERHEAD + header.batchLength > buf.length) break;
    if ((header.attributes & 0x20) !== 0) continue; // control batch
    const logAppendTime = (header.attributes & TIMESTAMP_TYPE_BIT) !== 0;
    for (const r of parseRecordBatch(buf, position, { verifyCrc: false, maxDecompressedBytes }).records) {
      const ts = logAppendTime ? header.maxTimestamp : r.timestamp;
      const m = encodeMessage(r.offset, magic, logAppendTime ? TIMESTAMP_TYPE_BIT : 0, ts, r.key, r.value);
      messages.push(m);
      total += m.length;
    }
  }
  const out = new Uint8Array(total);
  let p = 0;
  for (const m of messages) {
    out.set(m, p);
    p += m.length;
  }
  return out;
}

/** One legacy message with its offset and size prefix (attributes without a codec). */
export function encodeMessage(
  offset: bigint,
  magic: 0 | 1,
  attributes: number,
  timestamp: bigint,
  key: Uint8Array | null,
  value: Uint8Array | null,
): Uint8Array {
  const size = 4 + 1 + 1 + (magic === 1 ? 8 : 0) + 4 + (key?.length ?? 0) + 4 + (value?.length ?? 0);
  const out = new Uint8Array(LOG_OVERHEAD + size);
  const v = new DataView(out.buffer);
  v.setBigInt64(0, offset);
  v.setInt32(8, size);
  let p = LOG_OVERHEAD + 4;
  out[p++] = magic;
  out[p++] = magic === 1 ? attributes : attributes & 0x07;
  if (magic === 1) {
    v.setBigInt64(p, timestamp);
    p += 8;
  }
  for (const b of [key, value]) {
    v.setInt32(p, b === null ? -1 : b.length);
    p += 4;
    if (b !== null) {
      out.set(b, p);
      p += b.length;
    }
  }
  v.setUint32(LOG_OVERHEAD, crc32Ieee(out.subarray(LOG_OVERHEAD + 4)));
  return out;
}

/** A compressed wrapper message holding `inner` (a message set), for tests and tools. */
export function encodeWrapperMessage(
  offset: bigint,
  magic: 0 | 1,
  codec: CompressionCodec,
  timestamp: bigint,
  inner: Uint8Array,
): Uint8Array {
  return encodeMessage(offset, magic, codec, timestamp, null, compressSync(codec, inner));
}
