// Per-log configuration, keyed by Kafka's topic config names, with Kafka's defaults.

export interface LogConfig {
  "segment.bytes": number;
  "segment.ms": number;
  "segment.index.bytes": number;
  "index.interval.bytes": number;
  "retention.ms": number;
  "retention.bytes": number;
  "cleanup.policy": string;
  "delete.retention.ms": number;
  "min.compaction.lag.ms": number;
  "flush.messages": number;
  "flush.ms": number;
  "message.timestamp.type": "CreateTime" | "LogAppendTime";
  "max.message.bytes": number;
  /** Sluice: fsync before acknowledging an append (with group commit). */
  "fsync.before.ack": boolean;
}

export const DEFAULT_LOG_CONFIG: Readonly<LogConfig> = {
  "segment.bytes": 1024 * 1024 * 1024,
  "segment.ms": 7 * 24 * 3600 * 1000,
  "segment.index.bytes": 10 * 1024 * 1024,
  "index.interval.bytes": 4096,
  "retention.ms": 7 * 24 * 3600 * 1000,
  "retention.bytes": -1,
  "cleanup.policy": "delete",
  "delete.retention.ms": 24 * 3600 * 1000,
  "min.compaction.lag.ms": 0,
  "flush.messages": Number.MAX_SAFE_INTEGER,
  "flush.ms": Number.MAX_SAFE_INTEGER,
  "message.timestamp.type": "CreateTime",
  "max.message.bytes": 1048588,
  "fsync.before.ack": false,
};

export function compacted(c: LogConfig): boolean {
  return c["cleanup.policy"]
    .split(",")
    .map((s) => s.trim())
    .includes("compact");
}

export function deletes(c: LogConfig): boolean {
  return c["cleanup.policy"]
    .split(",")
    .map((s) => s.trim())
    .includes("delete");
}
