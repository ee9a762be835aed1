// LZ4 for record batches: the LZ4 *frame* format (magic 0x184D2204), which Kafka clients write
// for magic-v2 batches. Decompression is our own bounded block decoder, so a hostile frame can
// never make us allocate more than the caller's limit. Compression uses lz4-napi's frame encoder
// when it loads; otherwise a valid frame of uncompressed blocks is written.
//
// Frame: magic u32le | FLG | BD | [content size u64le] | HC | blocks... | end mark u32 0 | [content xxh32]
// Block: size u32le (high bit = stored uncompressed) | data | [block xxh32]

import { createRequire } from "node:module";
import { RecordsError } from "./errors.ts";
import { xxh32 } from "./xxhash32.ts";

const MAGIC = 0x184d2204;
const BLOCK_MAX_SIZES = [0, 0, 0, 0, 64 * 1024, 256 * 1024, 1024 * 1024, 4 * 1024 * 1024];

type FrameCompress = (data: Buffer) => Buffer;
const nativeCompress: FrameCompress | null = (() => {
  try {
    const mod = createRequire(import.meta.url)("lz4-napi") as { compressFrameSync: FrameCompress };
    return mod.compressFrameSync;
  } catch {
    return null;
  }
})();

export function lz4FrameCompress(data: Uint8Array): Uint8Array {
  if (nativeCompress !== null) return nativeCompress(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
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
    out.writeUInt32LE((chunk.length | 0x80000000) >>> 0, p);
    out.set(chunk, p + 4);
    p += 4 + chunk.length;
  }
  out.writeUInt32LE(0, p);
  return out.subarray(0, p + 4);
}

export function lz4FrameDecompress(src: Uint8Array, maxBytes: number): Uint8Array {
  const v = new DataView(src.buffer, src.byteOffset, src.byteLength);
  const fail = (msg: string): never => {
    throw new RecordsError("DECOMPRESSION_FAILED", `lz4: ${msg}`);
  };
  if (src.length < 7 || v.getUint32(0, true) !== MAGIC) fail("not an LZ4 frame");
  const flg = src[4]!;
  const bd = src[5]!;
  if (flg >> 6 !== 1) fail("unsupported frame version");
  const blockChecksum = (flg & 0x10) !== 0;
  const hasContentSize = (flg & 0x08) !== 0;
  const contentChecksum = (flg & 0x04) !== 0;
  const hasDictId = (flg & 0x01) !== 0;
  const blockMax = BLOCK_MAX_SIZES[(bd >> 4) & 0x07] ?? 0;
  if (blockMax === 0) fail("bad block maximum size");
  let p = 6;
  if (hasContentSize) {
    if (src.length < p + 8) fail("truncated header");
    const size = v.getBigUint64(p, true);
    if (size > BigInt(maxBytes))
      throw new RecordsError("DECOMPRESSION_LIMIT", `lz4 content of ${size} bytes exceeds ${maxBytes}`);
    p += 8;
  }
  if (hasDictId) p += 4;
  if (src.length < p + 1) fail("truncated header");
  const hc = (xxh32(src.subarray(4, p), 0) >>> 8) & 0xff;
  if (src[p] !== hc) fail("header checksum mismatch");
  p += 1;
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    if (p + 4 > src.length) fail("truncated block size");
    const word = v.getUint32(p, true);
    p += 4;
    if (word === 0) break;
    const stored = (word & 0x80000000) !== 0;
    const size = word & 0x7fffffff;
    if (size > blockMax || p + size > src.length) fail("block larger than allowed or truncated");
    const block = src.subarray(p, p + size);
    p += size + (blockChecksum ? 4 : 0);
    const budget = Math.min(blockMax, maxBytes - total);
    let out: Uint8Array;
    if (stored) {
      if (size > maxBytes - total)
        throw new RecordsError("DECOMPRESSION_LIMIT", `lz4 output exceeds ${maxBytes} bytes`);
      out = block;
    } else {
      out = lz4BlockDecompress(block, budget, maxBytes - total < blockMax ? maxBytes : -1);
    }
    chunks.push(out);
    total += out.length;
  }
  if (contentChecksum) p += 4;
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total);
}

/**
 * Decodes one raw LZ4 block into at most `limit` bytes. `limitForError` is the caller's overall
 * limit when that is what bounds `limit` (so the error says DECOMPRESSION_LIMIT), else -1.
 */
export function lz4BlockDecompress(src: Uint8Array, limit: number, limitForError = -1): Uint8Array {
  const out = Buffer.allocUnsafe(limit);
  let ip = 0;
  let op = 0;
  const overflow = (): never => {
    if (limitForError >= 0) throw new RecordsError("DECOMPRESSION_LIMIT", `lz4 output exceeds ${limitForError} bytes`);
    throw new RecordsError("DECOMPRESSION_FAILED", "lz4 block expands beyond its maximum size");
  };
  while (ip < src.length) {
    const token = src[ip++]!;
    let litLen = token >> 4;
    if (litLen === 15) {
      let b: number;
      do {
        if (ip >= src.length) throw new RecordsError("DECOMPRESSION_FAILED", "lz4 literal length truncated");
        b = src[ip++]!;
        litLen += b;
      } while (b === 255);
    }
    if (ip + litLen > src.length) throw new RecordsError("DECOMPRESSION_FAILED", "lz4 literals truncated");
    if (op + litLen > limit) overflow();
    out.set(src.subarray(ip, ip + litLen), op);
    ip += litLen;
    op += litLen;
    if (ip >= src.length) break; // the last sequence has literals only
    if (ip + 2 > src.length) throw new RecordsError("DECOMPRESSION_FAILED", "lz4 match offset truncated");
    const offset = src[ip]! | (src[ip + 1]! << 8);
    ip += 2;
    if (offset === 0 || offset > op) throw new RecordsError("DECOMPRESSION_FAILED", "lz4 match offset out of range");
    let matchLen = (token & 0x0f) + 4;
    if ((token & 0x0f) === 15) {
      let b: number;
      do {
        if (ip >= src.length) throw new RecordsError("DECOMPRESSION_FAILED", "lz4 match length truncated");
        b = src[ip++]!;
        matchLen += b;
      } while (b === 255);
    }
    if (op + matchLen > limit) overflow();
    let m = op - offset;
    if (offset >= matchLen) {
      out.copyWithin(op, m, m + matchLen);
      op += matchLen;
    } else {
      for (let i = 0; i < matchLen; i++) out[op++] = out[m++]!;
    }
  }
  return out.subarray(0, op);
}
