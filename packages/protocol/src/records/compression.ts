// Compression codecs of record batches: gzip and zstd from node:zlib, snappy and lz4 from
// ./snappy.ts and ./lz4.ts. Decompression is always bounded by `maxBytes`, so a decompression bomb
// fails cleanly with DECOMPRESSION_LIMIT instead of exhausting memory.

import { gunzipSync, gzipSync, constants as zlib, zstdCompressSync, zstdDecompressSync } from "node:zlib";
import type { CompressionCodec } from "./batch-header.ts";
import { RecordsError } from "./errors.ts";
import { lz4FrameCompress, lz4FrameDecompress } from "./lz4.ts";
import { snappyCompress, snappyDecompress } from "./snappy.ts";

/** Default bound on one batch's decompressed size. */
export const DEFAULT_MAX_DECOMPRESSED_BYTES = 64 * 1024 * 1024;

export function compress(codec: CompressionCodec, data: Uint8Array): Uint8Array {
  switch (codec) {
    case 0:
      return data;
    case 1:
      return gzipSync(data, { level: 1 });
    case 2:
      return snappyCompress(data);
    case 3:
      return lz4FrameCompress(data);
    case 4:
      return zstdCompressSync(data, { params: { [zlib.ZSTD_c_compressionLevel]: 3 } });
  }
}

function zlibBounded(fn: () => Buffer, codec: string, maxBytes: number): Buffer {
  try {
    return fn();
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === "ERR_BUFFER_TOO_LARGE" || /larger than|exceeds|too large/i.test(err.message)) {
      throw new RecordsError("DECOMPRESSION_LIMIT", `${codec} output exceeds ${maxBytes} bytes`, e);
    }
    throw new RecordsError("DECOMPRESSION_FAILED", `${codec}: ${err.message}`, e);
  }
}

export function decompress(
  codec: CompressionCodec,
  data: Uint8Array,
  maxBytes = DEFAULT_MAX_DECOMPRESSED_BYTES,
): Uint8Array {
  switch (codec) {
    case 0:
      return data;
    case 1:
      return zlibBounded(() => gunzipSync(data, { maxOutputLength: Math.max(1, maxBytes) }), "gzip", maxBytes);
    case 2:
      return snappyDecompress(data, maxBytes);
    case 3:
      return lz4FrameDecompress(data, maxBytes);
    case 4:
      return zlibBounded(() => zstdDecompressSync(data, { maxOutputLength: Math.max(1, maxBytes) }), "zstd", maxBytes);
  }
}
