// Compression codecs of record batches: the records block after the 61-byte header is one
// compressed stream (attributes bits 0-2: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd).
//   gzip: a standard gzip stream (node:zlib)      snappy: xerial framing or raw (./snappy.ts)
//   lz4:  an LZ4 frame (./lz4.ts)                 zstd:   a standard zstd frame (node:zlib)
// Decompression is always bounded by `maxBytes`, so a decompression bomb fails with
// DECOMPRESSION_LIMIT after at most `maxBytes` of output, never an unbounded allocation.
// The sync variants serve builders that must be sync (buildRecordBatch, parseRecordBatch); the
// async ones run gzip, zstd and lz4 compression on libuv's thread pool.

import { promisify } from "node:util";
import {
  gunzip,
  gunzipSync,
  gzip,
  gzipSync,
  constants as zlib,
  zstdCompress,
  zstdCompressSync,
  zstdDecompress,
  zstdDecompressSync,
} from "node:zlib";
import { COMPRESSION_NAMES, type CompressionCodec } from "./batch-header.ts";
import { RecordsError } from "./errors.ts";
import { lz4FrameCompress, lz4FrameCompressAsync, lz4FrameDecompress } from "./lz4.ts";
import { snappyCompress, snappyDecompress } from "./snappy.ts";

/** Default bound on one batch's decompressed size. */
export const DEFAULT_MAX_DECOMPRESSED_BYTES = 64 * 1024 * 1024;

// Java's defaults are gzip 6 and zstd 3; gzip 1 compresses ~5x faster for a few percent in size.
const GZIP_OPTIONS = { level: 1 };
const ZSTD_OPTIONS = { params: { [zlib.ZSTD_c_compressionLevel]: 3 } };

const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);
const zstdCompressAsync = promisify(zstdCompress);
const zstdDecompressAsync = promisify(zstdDecompress);

function unsupported(codec: number): never {
  throw new RecordsError("UNSUPPORTED_COMPRESSION", `unknown compression codec ${codec}`);
}

export function compressSync(codec: CompressionCodec, data: Uint8Array): Uint8Array {
  switch (codec) {
    case 0:
      return data;
    case 1:
      return gzipSync(data, GZIP_OPTIONS);
    case 2:
      return snappyCompress(data);
    case 3:
      return lz4FrameCompress(data);
    case 4:
      return zstdCompressSync(data, ZSTD_OPTIONS);
    default:
      return unsupported(codec);
  }
}

export async function compress(codec: CompressionCodec, data: Uint8Array): Promise<Uint8Array> {
  switch (codec) {
    case 1:
      return gzipAsync(data, GZIP_OPTIONS);
    case 3:
      return lz4FrameCompressAsync(data);
    case 4:
      return zstdCompressAsync(data, ZSTD_OPTIONS);
    default:
      return compressSync(codec, data);
  }
}

/** zlib's errors, as RecordsErrors: hitting maxOutputLength means DECOMPRESSION_LIMIT. */
function zlibError(e: unknown, codec: string, maxBytes: number): RecordsError {
  const err = e as NodeJS.ErrnoException;
  if (err.code === "ERR_BUFFER_TOO_LARGE") {
    return new RecordsError("DECOMPRESSION_LIMIT", `${codec} output exceeds ${maxBytes} bytes`, e);
  }
  return new RecordsError("DECOMPRESSION_FAILED", `${codec}: ${err.message}`, e);
}

function checkLimit(maxBytes: number): void {
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) throw new RangeError(`bad decompression limit ${maxBytes}`);
}

export function decompressSync(
  codec: CompressionCodec,
  data: Uint8Array,
  maxBytes = DEFAULT_MAX_DECOMPRESSED_BYTES,
): Uint8Array {
  checkLimit(maxBytes);
  // zlib refuses a maxOutputLength of 0; an empty limit still has to reject any output.
  const zlibOptions = { maxOutputLength: Math.max(1, maxBytes) };
  try {
    switch (codec) {
      case 0:
        return data;
      case 1:
        return bounded(gunzipSync(data, zlibOptions), maxBytes, "gzip");
      case 2:
        return snappyDecompress(data, maxBytes);
      case 3:
        return lz4FrameDecompress(data, maxBytes);
      case 4:
        return bounded(zstdDecompressSync(data, zlibOptions), maxBytes, "zstd");
      default:
        return unsupported(codec);
    }
  } catch (e) {
    if (e instanceof RecordsError) throw e;
    throw zlibError(e, COMPRESSION_NAMES[codec] ?? `codec ${codec}`, maxBytes);
  }
}

export async function decompress(
  codec: CompressionCodec,
  data: Uint8Array,
  maxBytes = DEFAULT_MAX_DECOMPRESSED_BYTES,
): Promise<Uint8Array> {
  checkLimit(maxBytes);
  const zlibOptions = { maxOutputLength: Math.max(1, maxBytes) };
  try {
    switch (codec) {
      case 1:
        return bounded(await gunzipAsync(data, zlibOptions), maxBytes, "gzip");
      case 4:
        return bounded(await zstdDecompressAsync(data, zlibOptions), maxBytes, "zstd");
      default:
        return decompressSync(codec, data, maxBytes);
    }
  } catch (e) {
    if (e instanceof RecordsError) throw e;
    throw zlibError(e, COMPRESSION_NAMES[codec] ?? `codec ${codec}`, maxBytes);
  }
}

/** Only reached with maxBytes 0, where zlib's bound had to be 1. */
function bounded(out: Uint8Array, maxBytes: number, codec: string): Uint8Array {
  if (out.length > maxBytes) throw new RecordsError("DECOMPRESSION_LIMIT", `${codec} output exceeds ${maxBytes} bytes`);
  return out;
}
