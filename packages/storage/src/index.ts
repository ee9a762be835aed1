// @sluice/storage: partition logs in segments, with recovery, retention and compaction.
export * from "./checkpoint.ts";
export * from "./disk.ts";
export * from "./errors.ts";
export * from "./leader-epoch-cache.ts";
export * from "./log-config.ts";
export * from "./log-manager.ts";
export * from "./partition-log.ts";
export * from "./segment.ts";
export * from "./txn-index.ts";
