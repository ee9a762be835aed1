// Record batches (magic v2): headers, whole batches, compression, CRC32C, varints.
export * from "./batch-header.ts";
export * from "./compression.ts";
export * from "./crc32c.ts";
export * from "./errors.ts";
export * from "./record-batch.ts";
export * from "./varint.ts";
export { xxh32 } from "./xxhash32.ts";
