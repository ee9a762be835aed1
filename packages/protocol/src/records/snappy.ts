// Snappy for record batches. Java clients write the xerial/snappy-java framed stream
// (magic 0x82 'SNAPPY' 0x00, int32 version, int32 compatible version, then blocks of int32 length
// + raw snappy); librdkafka and others may write raw snappy. Readers accept both. Each raw block
// declares its uncompressed length up front, which is checked against the remaining budget before
// anything is allocated. Native `snappy` is used when it loads; pure code otherwise.

import { createRequire } from "node:module";
import { RecordsError } from "./errors.ts";

const XERIAL_MAGIC = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00]);
const XERIAL_HEADER_BYTES = 16;
const XERIAL_BLOCK_BYTES = 32 * 1024;

interface NativeSnappy {
  compressSync(input: Buffer): Buffer;
  uncompressSync(input: Buffer, opts?: { asBuffer?: boolean }): Buffer | string;
}
const native: NativeSnappy | null = (() => {
  try {
    return createRequire(import.meta.url)("snappy") as NativeSnappy;
  } catch {
    return null;
  }
})();

function asBuffer(u: Uint8Array): Buffer {
  return Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

/** Uncompressed length declared at the start of a raw snappy block (uvarint), and the header size. */
function declaredLength(src: Uint8Array): [number, number] {
  let result = 0;
  for (let i = 0, shift = 0; i < 5 && i < src.length; i++, shift += 7) {
    const b = src[i]!;
    result += (b & 0x7f) * 2 ** shift;
    if ((b & 0x80) === 0) return [result, i + 1];
  }
  throw new RecordsError("DECOMPRESSION_FAILED", "snappy: bad length header");
}

function rawDecompress(src: Uint8Array, budget: number, maxBytes: number, pure = native === null): Uint8Array {
  const [len, headerBytes] = declaredLength(src);
  if (len > budget) throw new RecordsError("DECOMPRESSION_LIMIT", `snappy output exceeds ${maxBytes} bytes`);
  if (!pure && native !== null) {
    try {
      const out = native.uncompressSync(asBuffer(src), { asBuffer: true }) as Buffer;
      if (out.length !== len) throw new Error("length mismatch");
      return out;
    } catch (e) {
      throw new RecordsError("DECOMPRESSION_FAILED", "snappy: corrupt input", e);
    }
  }
  return pureDecompress(src, headerBytes, len);
}

/** The pure decoder of one raw snappy block (used when the native module does not load); exported for tests. */
export function rawSnappyDecompressPure(src: Uint8Array, maxBytes: number): Uint8Array {
  return rawDecompress(src, maxBytes, maxBytes, true);
}

function pureDecompress(src: Uint8Array, start: number, len: number): Uint8Array {
  const out = Buffer.allocUnsafe(len);
  let ip = start;
  let op = 0;
  const bad = (): never => {
    throw new RecordsError("DECOMPRESSION_FAILED", "snappy: corrupt input");
  };
  while (ip < src.length) {
    const tag = src[ip++]!;
    const kind = tag & 3;
    if (kind === 0) {
      let n = tag >> 2;
      if (n >= 60) {
        const extra = n - 59;
        if (ip + extra > src.length) bad();
        n = 0;
        // Multiplication, not shifts: a 4-byte length must not turn negative and move `ip` back.
        for (let i = 0; i < extra; i++) n += src[ip + i]! * 2 ** (8 * i);
        ip += extra;
      }
      n += 1;
      if (ip + n > src.length || op + n > len) bad();
      out.set(src.subarray(ip, ip + n), op);
      ip += n;
      op += n;
      continue;
    }
    let length: number;
    let offset: number;
    if (kind === 1) {
      if (ip >= src.length) bad();
      length = ((tag >> 2) & 7) + 4;
      offset = ((tag >> 5) << 8) | src[ip++]!;
    } else if (kind === 2) {
      if (ip + 2 > src.length) bad();
      length = (tag >> 2) + 1;
      offset = src[ip]! | (src[ip + 1]! << 8);
      ip += 2;
    } else {
      if (ip + 4 > src.length) bad();
      length = (tag >> 2) + 1;
      offset = (src[ip]! | (src[ip + 1]! << 8) | (src[ip + 2]! << 16) | (src[ip + 3]! << 24)) >>> 0;
      ip += 4;
    }
    if (offset === 0 || offset > op || op + length > len) bad();
    for (let i = 0; i < length; i++, op++) out[op] = out[op - offset]!;
  }
  if (op !== len) bad();
  return out;
}

function rawCompress(data: Uint8Array): Uint8Array {
  if (native !== null) return native.compressSync(asBuffer(data));
  // Literal-only snappy: valid for every reader, just not smaller.
  const chunks: Buffer[] = [];
  const header: number[] = [];
  let n = data.length;
  do {
    header.push((n & 0x7f) | (n >= 0x80 ? 0x80 : 0));
    n = Math.floor(n / 128);
  } while (n > 0);
  chunks.push(Buffer.from(header));
  for (let i = 0; i < data.length; i += 65536) {
    const lit = data.subarray(i, Math.min(i + 65536, data.length));
    const l = lit.length - 1;
    chunks.push(l < 60 ? Buffer.from([l << 2]) : Buffer.from([61 << 2, l & 0xff, l >> 8]), asBuffer(lit));
  }
  return Buffer.concat(chunks);
}

/** Compresses in the xerial framing that Java clients write (readable by every client). */
export function snappyCompress(data: Uint8Array): Uint8Array {
  const parts: Uint8Array[] = [XERIAL_MAGIC, Buffer.from([0, 0, 0, 1, 0, 0, 0, 1])];
  for (let i = 0; i < data.length || i === 0; i += XERIAL_BLOCK_BYTES) {
    const block = rawCompress(data.subarray(i, Math.min(i + XERIAL_BLOCK_BYTES, data.length)));
    const len = Buffer.allocUnsafe(4);
    len.writeInt32BE(block.length, 0);
    parts.push(len, block);
    if (data.length === 0) break;
  }
  return Buffer.concat(parts);
}

export function snappyDecompress(src: Uint8Array, maxBytes: number): Uint8Array {
  const isXerial = src.length >= XERIAL_HEADER_BYTES && asBuffer(src.subarray(0, 8)).equals(XERIAL_MAGIC);
  if (!isXerial) return rawDecompress(src, maxBytes, maxBytes);
  const v = new DataView(src.buffer, src.byteOffset, src.byteLength);
  const chunks: Uint8Array[] = [];
  let total = 0;
  let p = XERIAL_HEADER_BYTES;
  while (p < src.length) {
    if (p + 4 > src.length) throw new RecordsError("DECOMPRESSION_FAILED", "snappy: truncated xerial block length");
    const len = v.getInt32(p);
    p += 4;
    if (len < 0 || p + len > src.length)
      throw new RecordsError("DECOMPRESSION_FAILED", "snappy: bad xerial block length");
    const out = rawDecompress(src.subarray(p, p + len), maxBytes - total, maxBytes);
    chunks.push(out);
    total += out.length;
    p += len;
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total);
}
