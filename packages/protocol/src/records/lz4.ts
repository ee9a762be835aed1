// LZ4 for record batches: the LZ4 *frame* format (lz4_Frame_format.md, magic 0x184D2204), which
// Kafka clients write for magic-v2 batches (Java's KafkaLZ4BlockOutputStream, librdkafka's
// LZ4F, lz4_flex in lz4-napi). Decompression is our own decoder writing into one output buffer
// that never grows past the caller's limit, so a hostile frame cannot make us allocate more than
// `maxBytes`; compression uses lz4-napi's frame encoder when it loads (independent 64 KiB blocks,
// the form Java reads), otherwise a valid frame of stored blocks.
//
// Frame: magic u32le | FLG | BD | [content size u64le] | [dict id u32le] | HC | blocks | end mark
//        u32 0 | [content checksum u32le = xxh32(content)]
//   FLG: bits 7-6 version (01), 5 block independence, 4 block checksum, 3 content size,
//        2 content checksum, 1 reserved (0), 0 dict id.
//   BD:  bits 6-4 block max size (4: 64 KiB, 5: 256 KiB, 6: 1 MiB, 7: 4 MiB); others reserved (0).
//   HC:  second byte of xxh32 of the descriptor (FLG through dict id), seed 0. Kafka before 0.10
//        (magic 0/1) hashed the magic too; magic-v2 batches always carry the correct byte.
// Block: size u32le (high bit: stored uncompressed) | data | [block checksum u32le = xxh32(data)]
//   With dependent (linked) blocks, matches may reach back into the previous 64 KiB of output.
// Raw block: sequences of token (literal length 4 bits | match length - 4, 4 bits), literal
//   length extension bytes (255 = continue), literals, match offset u16le, match length extension.

import { createRequire } from "node:module";
import { RecordsError } from "./errors.ts";
import { xxh32 } from "./xxhash32.ts";

const MAGIC = 0x184d2204;
const BLOCK_MAX_SIZES = [0, 0, 0, 0, 64 * 1024, 256 * 1024, 1024 * 1024, 4 * 1024 * 1024];
const STORED_BIT = 0x80000000;

interface NativeLz4 {
  compressFrameSync(data: Buffer): Buffer;
  compressFrame(data: Uint8Array): Promise<Buffer>;
}
const native: NativeLz4 | null = (() => {
  try {
    return createRequire(import.meta.url)("lz4-napi") as NativeLz4;
  } catch {
    return null;
  }
})();

function asBuffer(u: Uint8Array): Buffer {
  return Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

export function lz4FrameCompress(data: Uint8Array): Uint8Array {
  if (native !== null) return native.compressFrameSync(asBuffer(data));
  return storedFrame(data);
}

/** Same as lz4FrameCompress, on libuv's thread pool when lz4-napi is loaded. */
export async function lz4FrameCompressAsync(data: Uint8Array): Promise<Uint8Array> {
  if (native !== null) return native.compressFrame(data);
  return storedFrame(data);
}

/** A valid LZ4 frame whose blocks are stored uncompressed (64 KiB blocks, independent). */
export function storedFrame(data: Uint8Array): Uint8Array {
  const blockMax = 64 * 1024;
  const blocks = Math.ceil(data.length / blockMax);
  const out = Buffer.allocUnsafe(7 + blocks * 4 + data.length + 4);
  out.writeUInt32LE(MAGIC, 0);
  out[4] = 0x60; // version 01, block independence
  out[5] = 0x40; // 64 KiB max block size
  out[6] = (xxh32(out.subarray(4, 6), 0) >>> 8) & 0xff;
  let p = 7;
  for (let i = 0; i < data.length; i += blockMax) {
    const chunk = data.subarray(i, Math.min(i + blockMax, data.length));
    out.writeUInt32LE((chunk.length | STORED_BIT) >>> 0, p);
    out.set(chunk, p + 4);
    p += 4 + chunk.length;
  }
  out.writeUInt32LE(0, p);
  return out.subarray(0, p + 4);
}

function failed(msg: string): never {
  throw new RecordsError("DECOMPRESSION_FAILED", `lz4: ${msg}`);
}

/** The decompressed bytes so far, in a buffer that grows by doubling but never beyond `maxBytes`. */
class Output {
  buf: Buffer;
  len = 0;
  readonly maxBytes: number;
  constructor(initialBytes: number, maxBytes: number) {
    this.maxBytes = maxBytes;
    this.buf = Buffer.allocUnsafe(Math.min(initialBytes, maxBytes));
  }

  /** Makes room for `end` bytes in all; the caller has checked `end <= maxBytes`. */
  grow(end: number): Buffer {
    const next = Buffer.allocUnsafe(Math.min(this.maxBytes, Math.max(end, this.buf.length * 2)));
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
    return next;
  }

  append(data: Uint8Array): void {
    const end = this.len + data.length;
    if (end > this.maxBytes) throw limitError(this.maxBytes);
    if (end > this.buf.length) this.grow(end);
    this.buf.set(data, this.len);
    this.len = end;
  }

  /** The result; copied when most of the buffer would be wasted, since records keep views of it. */
  result(): Buffer {
    if (this.len * 2 < this.buf.length) return Buffer.from(this.buf.subarray(0, this.len));
    return this.buf.subarray(0, this.len);
  }
}

function limitError(maxBytes: number): RecordsError {
  return new RecordsError("DECOMPRESSION_LIMIT", `lz4 output exceeds ${maxBytes} bytes`);
}

interface FrameHeader {
  independent: boolean;
  blockChecksum: boolean;
  contentChecksum: boolean;
  contentSize: number | null;
  blockMax: number;
  /** Position of the first block. */
  end: number;
}

function readFrameHeader(src: Uint8Array, v: DataView, maxBytes: number): FrameHeader {
  if (src.length < 7 || v.getUint32(0, true) !== MAGIC) failed("not an LZ4 frame");
  const flg = src[4]!;
  const bd = src[5]!;
  if (flg >> 6 !== 1) failed(`unsupported frame version ${flg >> 6}`);
  if ((flg & 0x02) !== 0 || (bd & 0x8f) !== 0) failed("reserved bits set in the frame descriptor");
  if ((flg & 0x01) !== 0) failed("frames that need a dictionary are not supported");
  const blockMax = BLOCK_MAX_SIZES[(bd >> 4) & 0x07] ?? 0;
  if (blockMax === 0) failed("bad block maximum size");
  let p = 6;
  let contentSize: number | null = null;
  if ((flg & 0x08) !== 0) {
    if (src.length < p + 9) failed("truncated frame header");
    const size = v.getBigUint64(p, true);
    if (size > BigInt(maxBytes)) {
      throw new RecordsError("DECOMPRESSION_LIMIT", `lz4 content of ${size} bytes exceeds ${maxBytes}`);
    }
    contentSize = Number(size);
    p += 8;
  }
  if (src.length < p + 1) failed("truncated frame header");
  if (src[p] !== ((xxh32(src.subarray(4, p), 0) >>> 8) & 0xff)) failed("header checksum mismatch");
  return {
    independent: (flg & 0x20) !== 0,
    blockChecksum: (flg & 0x10) !== 0,
    contentChecksum: (flg & 0x04) !== 0,
    contentSize,
    blockMax,
    end: p + 1,
  };
}

/** Decompresses one LZ4 frame into at most `maxBytes` bytes (DECOMPRESSION_LIMIT beyond). */
export function lz4FrameDecompress(src: Uint8Array, maxBytes: number): Uint8Array {
  const v = new DataView(src.buffer, src.byteOffset, src.byteLength);
  const h = readFrameHeader(src, v, maxBytes);
  const out = new Output(h.contentSize ?? Math.max(1024, src.length * 3), maxBytes);
  let p = h.end;
  for (;;) {
    if (p + 4 > src.length) failed("truncated block size");
    const word = v.getUint32(p, true);
    p += 4;
    if (word === 0) break;
    const size = (word & ~STORED_BIT) >>> 0;
    if (size > h.blockMax) failed(`block of ${size} bytes exceeds the frame's maximum ${h.blockMax}`);
    if (p + size + (h.blockChecksum ? 4 : 0) > src.length) failed("truncated block");
    const block = src.subarray(p, p + size);
    p += size;
    if (h.blockChecksum) {
      if (v.getUint32(p, true) !== xxh32(block, 0)) failed("block checksum mismatch");
      p += 4;
    }
    if ((word & STORED_BIT) !== 0) out.append(block);
    else decodeBlock(block, out, h.independent ? out.len : Math.max(0, out.len - 65536), h.blockMax);
  }
  if (h.contentSize !== null && out.len !== h.contentSize) {
    failed(`frame declares ${h.contentSize} bytes of content but holds ${out.len}`);
  }
  const content = out.result();
  if (h.contentChecksum) {
    if (p + 4 > src.length) failed("truncated content checksum");
    if (v.getUint32(p, true) !== xxh32(content, 0)) failed("content checksum mismatch");
  }
  return content;
}

/**
 * Decodes one raw LZ4 block, appending to `out`. Matches may reach back to `windowStart` (the
 * block's own start for independent blocks; up to 64 KiB of earlier output for linked ones). The
 * block may produce at most `blockMax` bytes, and `out` never passes its `maxBytes`.
 */
function decodeBlock(src: Uint8Array, out: Output, windowStart: number, blockMax: number): void {
  let buf = out.buf;
  let op = out.len;
  const blockLimit = Math.min(op + blockMax, out.maxBytes);
  const overflow = (): never => {
    if (blockLimit === out.maxBytes) throw limitError(out.maxBytes);
    return failed("block expands beyond the frame's maximum block size");
  };
  const end = src.length;
  let ip = 0;
  while (ip < end) {
    const token = src[ip++]!;
    let litLen = token >>> 4;
    if (litLen === 15) {
      let b: number;
      do {
        if (ip >= end) failed("literal length truncated");
        b = src[ip++]!;
        litLen += b;
      } while (b === 255);
    }
    if (litLen > end - ip) failed("literals truncated");
    if (op + litLen > blockLimit) overflow();
    if (op + litLen > buf.length) {
      out.len = op;
      buf = out.grow(op + litLen);
    }
    if (litLen < 16) for (let i = 0; i < litLen; i++) buf[op++] = src[ip++]!;
    else {
      buf.set(src.subarray(ip, ip + litLen), op);
      ip += litLen;
      op += litLen;
    }
    if (ip >= end) break; // the last sequence has literals only
    if (ip + 2 > end) failed("match offset truncated");
    const offset = src[ip]! | (src[ip + 1]! << 8);
    ip += 2;
    if (offset === 0 || offset > op - windowStart) failed("match offset out of range");
    let matchLen = (token & 0x0f) + 4;
    if ((token & 0x0f) === 15) {
      let b: number;
      do {
        if (ip >= end) failed("match length truncated");
        b = src[ip++]!;
        matchLen += b;
      } while (b === 255);
    }
    if (op + matchLen > blockLimit) overflow();
    if (op + matchLen > buf.length) {
      out.len = op;
      buf = out.grow(op + matchLen);
    }
    let m = op - offset;
    if (offset >= matchLen) {
      buf.copyWithin(op, m, m + matchLen);
      op += matchLen;
    } else {
      for (let i = 0; i < matchLen; i++) buf[op++] = buf[m++]!;
    }
  }
  out.len = op;
}
