// @sluice/storage: partition logs in segments (Kafka's on-disk layout), with recovery, retention,
// compaction, group-commit fsync, and fault-injectable disk and clock.

export { BufferPool, bufferPool, detach, POOLED_BYTES_MIN } from "./buffer-pool.ts";
export * from "./checkpoint.ts";
export * from "./disk.ts";
export * from "./errors.ts";
export * from "./leader-epoch-cache.ts";
export * from "./log-config.ts";
export * from "./log-dir-state.ts";
export * from "./log-manager.ts";
export * from "./partition-log.ts";
export { type BatchLocation, LogSegment, segmentFileName } from "./segment.ts";
export * from "./txn-index.ts";
