// Varints of the record format (RECORDS.md, "Record"): LEB128 groups of 7 bits, least
// significant first, high bit set on every byte but the last. Signed values are zig-zag encoded
// first (0 → 0, -1 → 1, 1 → 2, …): varints hold an int32 in at most 5 bytes, varlongs an int64 in
// at most 10. Unsigned varints (flexible-version lengths) are plain LEB128 of a uint32.
// Readers never read past `end` (TRUNCATED) and refuse over-long encodings (CORRUPT_RECORD);
// writers check the room they need and return the position after what they wrote.

import { RecordsError } from "./errors.ts";

export class VarintReader {
  readonly buf: Uint8Array;
  pos: number;
  readonly end: number;
  constructor(buf: Uint8Array, pos = 0, end = buf.length) {
    if (pos < 0 || end > buf.length || pos > end) throw new RangeError(`bad reader window [${pos}, ${end})`);
    this.buf = buf;
    this.pos = pos;
    this.end = end;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  /** Unsigned varint (uint32), at most 5 bytes. */
  uvarint(): number {
    let value = 0;
    for (let shift = 0; ; shift += 7) {
      if (shift > 28) throw new RecordsError("CORRUPT_RECORD", "varint longer than 5 bytes");
      if (this.pos >= this.end) throw new RecordsError("TRUNCATED", "varint runs past the end of the record");
      const b = this.buf[this.pos++]!;
      value += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) break;
    }
    if (value > 0xffffffff) throw new RecordsError("CORRUPT_RECORD", "unsigned varint exceeds 32 bits");
    return value;
  }

  /** Signed zig-zag varint (int32), at most 5 bytes. */
  varint(): number {
    let value = 0;
    let shift = 0;
    for (;;) {
      if (this.pos >= this.end) throw new RecordsError("TRUNCATED", "varint runs past the end of the record");
      const b = this.buf[this.pos++]!;
      value |= (b & 0x7f) << shift;
      if ((b & 0x80) === 0) break;
      shift += 7;
      if (shift > 28) throw new RecordsError("CORRUPT_RECORD", "varint longer than 5 bytes");
    }
    return (value >>> 1) ^ -(value & 1);
  }

  /** Signed zig-zag varlong (int64), at most 10 bytes. */
  varlong(): bigint {
    let value = 0n;
    let shift = 0n;
    for (;;) {
      if (this.pos >= this.end) throw new RecordsError("TRUNCATED", "varlong runs past the end of the record");
      const b = this.buf[this.pos++]!;
      value |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) break;
      shift += 7n;
      if (shift > 63n) throw new RecordsError("CORRUPT_RECORD", "varlong longer than 10 bytes");
    }
    return BigInt.asIntN(64, (value >> 1n) ^ -(value & 1n));
  }

  /** `len` bytes as a view of the underlying buffer (no copy). */
  bytes(len: number): Uint8Array {
    if (len < 0) throw new RecordsError("CORRUPT_RECORD", `negative field length ${len}`);
    if (len > this.end - this.pos)
      throw new RecordsError("TRUNCATED", `field of ${len} bytes runs past the record (${this.end - this.pos} left)`);
    const v = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return v;
  }
}

function zigzag32(v: number): number {
  return ((v << 1) ^ (v >> 31)) >>> 0;
}

function zigzag64(v: bigint): bigint {
  return BigInt.asUintN(64, (v << 1n) ^ (v >> 63n));
}

function room(buf: Uint8Array, pos: number, size: number): void {
  if (pos < 0 || pos + size > buf.length) {
    throw new RecordsError("BUFFER_TOO_SMALL", `writing ${size} bytes at ${pos} overruns a buffer of ${buf.length}`);
  }
}

/** Bytes needed for an unsigned varint of a uint32. */
export function uvarintSize(v: number): number {
  let z = v >>> 0;
  let n = 1;
  while (z >= 0x80) {
    z >>>= 7;
    n++;
  }
  return n;
}

/** Writes `v` (taken as uint32) as an unsigned varint at `pos`; returns the position after it. */
export function writeUvarint(buf: Uint8Array, pos: number, v: number): number {
  room(buf, pos, uvarintSize(v));
  let z = v >>> 0;
  while (z >= 0x80) {
    buf[pos++] = (z & 0x7f) | 0x80;
    z >>>= 7;
  }
  buf[pos++] = z;
  return pos;
}

/** Bytes needed for a zig-zag varint of an int32. */
export function varintSize(v: number): number {
  return uvarintSize(zigzag32(v));
}

/** Writes `v` (taken as int32) as a zig-zag varint at `pos`; returns the position after it. */
export function writeVarint(buf: Uint8Array, pos: number, v: number): number {
  return writeUvarint(buf, pos, zigzag32(v));
}

/** Bytes needed for a zig-zag varlong of an int64. */
export function varlongSize(v: bigint): number {
  if (v >= -0x40000000n && v < 0x40000000n) return varintSize(Number(v));
  let z = zigzag64(v);
  let n = 1;
  while (z >= 0x80n) {
    z >>= 7n;
    n++;
  }
  return n;
}

/** Writes `v` (taken as int64) as a zig-zag varlong at `pos`; returns the position after it. */
export function writeVarlong(buf: Uint8Array, pos: number, v: bigint): number {
  // Small values take the number path: most timestamp deltas fit in 31 bits.
  if (v >= -0x40000000n && v < 0x40000000n) return writeVarint(buf, pos, Number(v));
  room(buf, pos, varlongSize(v));
  let z = zigzag64(v);
  while (z >= 0x80n) {
    buf[pos++] = Number(z & 0x7fn) | 0x80;
    z >>= 7n;
  }
  buf[pos++] = Number(z);
  return pos;
}
