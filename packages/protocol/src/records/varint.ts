// Varints of the record format: zig-zag signed varints (int32) and varlongs (int64), LEB128.

import { RecordsError } from "./errors.ts";

export class VarintReader {
  readonly buf: Uint8Array;
  pos: number;
  readonly end: number;
  constructor(buf: Uint8Array, pos = 0, end = buf.length) {
    this.buf = buf;
    this.pos = pos;
    this.end = end;
  }

  /** Signed zig-zag varint, at most 5 bytes. */
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

  /** Signed zig-zag varlong, at most 10 bytes. */
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

  bytes(len: number): Uint8Array {
    if (len < 0 || this.pos + len > this.end)
      throw new RecordsError("TRUNCATED", `field of ${len} bytes runs past the record`);
    const v = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return v;
  }
}

/** Bytes needed for a zig-zag varint. */
export function varintSize(v: number): number {
  let z = ((v << 1) ^ (v >> 31)) >>> 0;
  let n = 1;
  while (z >= 0x80) {
    z >>>= 7;
    n++;
  }
  return n;
}

export function writeVarint(buf: Uint8Array, pos: number, v: number): number {
  let z = ((v << 1) ^ (v >> 31)) >>> 0;
  while (z >= 0x80) {
    buf[pos++] = (z & 0x7f) | 0x80;
    z >>>= 7;
  }
  buf[pos++] = z;
  return pos;
}

export function varlongSize(v: bigint): number {
  let z = BigInt.asUintN(64, (v << 1n) ^ (v >> 63n));
  let n = 1;
  while (z >= 0x80n) {
    z >>= 7n;
    n++;
  }
  return n;
}

export function writeVarlong(buf: Uint8Array, pos: number, v: bigint): number {
  // Small values take the number path: most timestamp deltas fit in 31 bits.
  if (v >= -0x40000000n && v < 0x40000000n) return writeVarint(buf, pos, Number(v));
  let z = BigInt.asUintN(64, (v << 1n) ^ (v >> 63n));
  while (z >= 0x80n) {
    buf[pos++] = Number(z & 0x7fn) | 0x80;
    z >>= 7n;
  }
  buf[pos++] = Number(z);
  return pos;
}
