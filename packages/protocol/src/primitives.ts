// Wire primitives of the Kafka protocol: a bounds-checked Reader and a growable, chunked Writer.
//
// Every generated codec reads and writes through these two classes. The Reader never allocates
// from a length or count read off the wire before checking it against the bytes remaining and the
// configured limits (STYLE.md: bound everything from the wire). The Writer keeps large byte fields
// (record batches) as separate chunks instead of copying them, so a Fetch response can be written
// to a socket with writev without a second copy of the log data.

/** Limits applied while decoding; every length and count read off the wire is checked against them. */
export interface DecodeLimits {
  /** Largest element count accepted for any array. */
  readonly maxArrayLength: number;
  /** Largest string, bytes or records field accepted, in bytes. */
  readonly maxBytesLength: number;
}

export const DEFAULT_DECODE_LIMITS: DecodeLimits = { maxArrayLength: 1_000_000, maxBytesLength: 256 * 1024 * 1024 };

/** A field that a decoder did not know: kept so it can be re-encoded unchanged. */
export interface TaggedField {
  readonly tag: number;
  readonly data: Uint8Array;
}

/** Raised by Reader on malformed input; the generated decoders add the API and version. */
export class DecodeError extends Error {
  readonly code = "MALFORMED_MESSAGE";
  readonly field: string;
  readonly reason: string;
  constructor(field: string, reason: string) {
    super(`${field}: ${reason}`);
    this.name = "DecodeError";
    this.field = field;
    this.reason = reason;
  }
}

/** A malformed request or response: names the API, version and field. */
export class ProtocolDecodeError extends Error {
  readonly code = "MALFORMED_MESSAGE";
  readonly apiName: string;
  readonly version: number;
  readonly field: string;
  constructor(apiName: string, version: number, field: string, reason: string, cause?: unknown) {
    super(`cannot decode ${apiName} v${version}: field ${field}: ${reason}`, { cause });
    this.name = "ProtocolDecodeError";
    this.apiName = apiName;
    this.version = version;
    this.field = field;
  }
}

/** Raised when a value cannot be encoded at the requested version (e.g. null where not nullable). */
export class EncodeError extends Error {
  readonly code = "ENCODE_ERROR";
  constructor(message: string) {
    super(message);
    this.name = "EncodeError";
  }
}

/** Turns a decoded type into the input accepted by an encoder: every field optional (defaults apply). */
/** Records fields also accept a RecordChunks (record batches as separate buffers, not merged). */
export type Input<T> = T extends Uint8Array
  ? "__records" extends keyof T
    ? Uint8Array | RecordChunks
    : T
  : T extends bigint | number | string | boolean | RecordChunks | null | undefined
    ? T
    : T extends readonly (infer U)[]
      ? readonly Input<U>[]
      : { readonly [K in keyof T]?: K extends "_unknownTaggedFields" ? T[K] : Input<T[K]> };

/**
 * The type of a decoded records field: a plain Uint8Array. The optional brand only tells `Input`
 * that an encoder also takes a RecordChunks there.
 */
export type Records = Uint8Array & { readonly __records?: never };

/**
 * Whole record batches given to an encoder as several buffers (e.g. the tail cache's views of
 * consecutive appends): written back to back as one records field, without merging them first.
 */
export class RecordChunks {
  readonly chunks: readonly Uint8Array[];
  readonly byteLength: number;

  constructor(chunks: readonly Uint8Array[]) {
    this.chunks = chunks;
    let n = 0;
    for (const c of chunks) n += c.byteLength;
    this.byteLength = n;
  }
}

const textDecoder = new TextDecoder("utf-8", { fatal: true });
const EMPTY = new Uint8Array(0);

export class Reader {
  readonly buf: Uint8Array;
  readonly view: DataView;
  readonly limits: DecodeLimits;
  pos: number;
  end: number;

  constructor(buf: Uint8Array, limits: DecodeLimits = DEFAULT_DECODE_LIMITS, start = 0, end = buf.byteLength) {
    this.buf = buf;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.limits = limits;
    this.pos = start;
    this.end = end;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  private need(n: number, field: string): void {
    if (this.end - this.pos < n) throw new DecodeError(field, `needs ${n} bytes, ${this.end - this.pos} remain`);
  }

  readInt8(field: string): number {
    this.need(1, field);
    return this.view.getInt8(this.pos++);
  }
  readBool(field: string): boolean {
    return this.readInt8(field) !== 0;
  }
  readInt16(field: string): number {
    this.need(2, field);
    const v = this.view.getInt16(this.pos);
    this.pos += 2;
    return v;
  }
  readUint16(field: string): number {
    this.need(2, field);
    const v = this.view.getUint16(this.pos);
    this.pos += 2;
    return v;
  }
  readInt32(field: string): number {
    this.need(4, field);
    const v = this.view.getInt32(this.pos);
    this.pos += 4;
    return v;
  }
  readUint32(field: string): number {
    this.need(4, field);
    const v = this.view.getUint32(this.pos);
    this.pos += 4;
    return v;
  }
  readInt64(field: string): bigint {
    this.need(8, field);
    const v = this.view.getBigInt64(this.pos);
    this.pos += 8;
    return v;
  }
  readFloat64(field: string): number {
    this.need(8, field);
    const v = this.view.getFloat64(this.pos);
    this.pos += 8;
    return v;
  }

  /** Unsigned LEB128, at most 5 bytes (a 32-bit value). */
  readUVarint(field: string): number {
    let result = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      this.need(1, field);
      const b = this.buf[this.pos++]!;
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) {
        if (result > 0xffffffff) throw new DecodeError(field, "varint exceeds 32 bits");
        return result;
      }
    }
    throw new DecodeError(field, "varint longer than 5 bytes");
  }

  readUuid(field: string): Uint8Array {
    this.need(16, field);
    const v = this.buf.subarray(this.pos, this.pos + 16);
    this.pos += 16;
    return v;
  }

  /** Length prefix of a string/bytes field: -1 for null. Checked against remaining bytes and limits. */
  private readLength(field: string, compact: boolean, wide: boolean): number {
    let len: number;
    if (compact) len = this.readUVarint(field) - 1;
    else len = wide ? this.readInt32(field) : this.readInt16(field);
    if (len < -1) throw new DecodeError(field, `negative length ${len}`);
    if (len > this.limits.maxBytesLength) throw new DecodeError(field, `length ${len} exceeds limit`);
    if (len > this.end - this.pos)
      throw new DecodeError(field, `length ${len} exceeds the ${this.end - this.pos} bytes remaining`);
    return len;
  }

  readString(field: string, compact: boolean, nullable: boolean): string | null {
    const len = this.readLength(field, compact, false);
    if (len === -1) {
      if (!nullable) throw new DecodeError(field, "null for a non-nullable string");
      return null;
    }
    const start = this.pos;
    this.pos += len;
    try {
      return textDecoder.decode(this.buf.subarray(start, start + len));
    } catch {
      throw new DecodeError(field, "invalid UTF-8");
    }
  }

  /** Zero-copy: the result is a view of the input buffer. */
  readBytes(field: string, compact: boolean, nullable: boolean): Uint8Array | null {
    const len = this.readLength(field, compact, true);
    if (len === -1) {
      if (!nullable) throw new DecodeError(field, "null for non-nullable bytes");
      return null;
    }
    if (len === 0) return EMPTY;
    const start = this.pos;
    this.pos += len;
    return this.buf.subarray(start, start + len);
  }

  /** Array count: -1 for null. `minElementBytes` lets the count be checked before allocating. */
  readArrayLength(field: string, compact: boolean, nullable: boolean, minElementBytes: number): number {
    const count = compact ? this.readUVarint(field) - 1 : this.readInt32(field);
    if (count < -1) throw new DecodeError(field, `negative array length ${count}`);
    if (count === -1) {
      if (!nullable) throw new DecodeError(field, "null for a non-nullable array");
      return -1;
    }
    if (count > this.limits.maxArrayLength) throw new DecodeError(field, `array length ${count} exceeds limit`);
    if (count * minElementBytes > this.end - this.pos) {
      throw new DecodeError(field, `array length ${count} exceeds the ${this.end - this.pos} bytes remaining`);
    }
    return count;
  }

  /** Reads a tagged-field section; calls `known` for each tag, returning false for unknown tags. */
  readTaggedFields(field: string, known: (tag: number, r: Reader) => boolean): TaggedField[] | undefined {
    const count = this.readUVarint(`${field}._taggedFields`);
    if (count > this.end - this.pos)
      throw new DecodeError(field, `tagged field count ${count} exceeds bytes remaining`);
    let unknown: TaggedField[] | undefined;
    let lastTag = -1;
    for (let i = 0; i < count; i++) {
      const tag = this.readUVarint(`${field}._taggedFields.tag`);
      if (tag <= lastTag) throw new DecodeError(field, `tagged fields out of order (${tag} after ${lastTag})`);
      lastTag = tag;
      const size = this.readUVarint(`${field}._taggedFields.size`);
      this.need(size, `${field}._taggedFields[${tag}]`);
      const start = this.pos;
      const sub = new Reader(this.buf, this.limits, start, start + size);
      if (known(tag, sub)) {
        if (sub.pos !== sub.end)
          throw new DecodeError(field, `tagged field ${tag} has ${sub.end - sub.pos} trailing bytes`);
      } else {
        unknown ??= [];
        unknown.push({ tag, data: this.buf.subarray(start, start + size) });
      }
      this.pos = start + size;
    }
    return unknown;
  }
}

const INITIAL_BYTES = 256;
/** Byte fields at least this large are kept as separate chunks instead of being copied. */
export const CHUNK_BYTES_MIN = 4096;

export class Writer {
  private chunks: Uint8Array[] = [];
  private chunkedBytes = 0;
  private buf: Buffer;
  private view: DataView;
  private pos = 0;
  private start = 0;

  constructor(initialBytes = INITIAL_BYTES) {
    this.buf = Buffer.allocUnsafe(initialBytes);
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
  }

  /** Total bytes written so far. */
  get length(): number {
    return this.chunkedBytes + (this.pos - this.start);
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.byteLength) return;
    const used = this.pos - this.start;
    const size = Math.max(this.buf.byteLength * 2, used + n, INITIAL_BYTES);
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, this.start, this.pos);
    this.buf = next;
    this.view = new DataView(next.buffer, next.byteOffset, next.byteLength);
    this.start = 0;
    this.pos = used;
  }

  writeInt8(v: number): void {
    this.ensure(1);
    this.view.setInt8(this.pos++, v);
  }
  writeBool(v: boolean): void {
    this.writeInt8(v ? 1 : 0);
  }
  writeInt16(v: number): void {
    this.ensure(2);
    this.view.setInt16(this.pos, v);
    this.pos += 2;
  }
  writeUint16(v: number): void {
    this.ensure(2);
    this.view.setUint16(this.pos, v);
    this.pos += 2;
  }
  writeInt32(v: number): void {
    this.ensure(4);
    this.view.setInt32(this.pos, v);
    this.pos += 4;
  }
  writeUint32(v: number): void {
    this.ensure(4);
    this.view.setUint32(this.pos, v);
    this.pos += 4;
  }
  writeInt64(v: bigint): void {
    this.ensure(8);
    this.view.setBigInt64(this.pos, v);
    this.pos += 8;
  }
  writeFloat64(v: number): void {
    this.ensure(8);
    this.view.setFloat64(this.pos, v);
    this.pos += 8;
  }
  writeUVarint(v: number): void {
    this.ensure(5);
    let n = v;
    while (n >= 0x80) {
      this.buf[this.pos++] = (n & 0x7f) | 0x80;
      n = Math.floor(n / 128);
    }
    this.buf[this.pos++] = n;
  }
  writeUuid(v: Uint8Array): void {
    if (v.byteLength !== 16) throw new EncodeError(`uuid must be 16 bytes, got ${v.byteLength}`);
    this.writeRaw(v);
  }

  /** Appends bytes; large ones become their own chunk (no copy). */
  writeRaw(v: Uint8Array): void {
    if (v.byteLength >= CHUNK_BYTES_MIN) {
      this.flushChunk();
      this.chunks.push(v);
      this.chunkedBytes += v.byteLength;
      return;
    }
    this.ensure(v.byteLength);
    this.buf.set(v, this.pos);
    this.pos += v.byteLength;
  }

  private flushChunk(): void {
    if (this.pos === this.start) return;
    this.chunks.push(this.buf.subarray(this.start, this.pos));
    this.chunkedBytes += this.pos - this.start;
    this.start = this.pos;
  }

  writeString(v: string | null, compact: boolean): void {
    if (v === null) {
      if (compact) this.writeUVarint(0);
      else this.writeInt16(-1);
      return;
    }
    const len = Buffer.byteLength(v, "utf8");
    if (compact) this.writeUVarint(len + 1);
    else {
      if (len > 0x7fff) throw new EncodeError(`string of ${len} bytes is too long`);
      this.writeInt16(len);
    }
    this.ensure(len);
    this.pos += this.buf.write(v, this.pos, len, "utf8");
  }

  writeBytes(v: Uint8Array | null, compact: boolean): void {
    if (v === null) {
      if (compact) this.writeUVarint(0);
      else this.writeInt32(-1);
      return;
    }
    if (compact) this.writeUVarint(v.byteLength + 1);
    else this.writeInt32(v.byteLength);
    this.writeRaw(v);
  }

  /** A records field: like writeBytes, and a RecordChunks is written chunk by chunk (no merge). */
  writeRecords(v: Uint8Array | RecordChunks | null, compact: boolean): void {
    if (!(v instanceof RecordChunks)) {
      this.writeBytes(v, compact);
      return;
    }
    if (compact) this.writeUVarint(v.byteLength + 1);
    else this.writeInt32(v.byteLength);
    for (const c of v.chunks) this.writeRaw(c);
  }

  writeArrayLength(n: number | null, compact: boolean): void {
    if (n === null) {
      if (compact) this.writeUVarint(0);
      else this.writeInt32(-1);
      return;
    }
    if (compact) this.writeUVarint(n + 1);
    else this.writeInt32(n);
  }

  /** Writes a tagged-field section from fields already sorted by tag. */
  writeTaggedFields(fields: readonly TaggedField[]): void {
    this.writeUVarint(fields.length);
    for (const f of fields) {
      this.writeUVarint(f.tag);
      this.writeUVarint(f.data.byteLength);
      this.writeRaw(f.data);
    }
  }

  /** The bytes written, as chunks suitable for writev (no copy of large fields). */
  toChunks(): Uint8Array[] {
    this.flushChunk();
    return this.chunks;
  }

  /** The bytes written, as one contiguous buffer. */
  toBuffer(): Buffer {
    this.flushChunk();
    if (this.chunks.length === 1) {
      const c = this.chunks[0]!;
      return Buffer.from(c.buffer, c.byteOffset, c.byteLength);
    }
    return Buffer.concat(this.chunks, this.chunkedBytes);
  }
}

/** Merges known and unknown tagged fields into ascending tag order. */
export function sortTaggedFields(fields: TaggedField[]): TaggedField[] {
  return fields.sort((a, b) => a.tag - b.tag);
}

export const ZERO_UUID: Uint8Array = new Uint8Array(16);

/** Kafka prints topic ids in URL-safe base64 without padding. */
export function uuidToString(uuid: Uint8Array): string {
  return Buffer.from(uuid.buffer, uuid.byteOffset, uuid.byteLength).toString("base64url");
}

export function uuidFromString(s: string): Uint8Array {
  const b = Buffer.from(s, "base64url");
  if (b.byteLength !== 16) throw new Error(`not a 16-byte uuid: ${s}`);
  return new Uint8Array(b.buffer, b.byteOffset, 16);
}

export function uuidEquals(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== 16 || b.byteLength !== 16) return false;
  for (let i = 0; i < 16; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function bytesEqual(a: Uint8Array | null, b: Uint8Array | null): boolean {
  if (a === null || b === null) return a === b;
  return a.byteLength === b.byteLength && Buffer.compare(a, b) === 0;
}

export const EMPTY_BYTES: Uint8Array = new Uint8Array(0);

/** Encodes one value with a generated writer into a standalone buffer. */
export function encodeWith<T>(write: (w: Writer, v: T, version: number) => void, v: T, version: number): Uint8Array {
  const w = new Writer();
  write(w, v, version);
  return w.toBuffer();
}
