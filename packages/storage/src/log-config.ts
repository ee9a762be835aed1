// Per-log configuration, keyed by Kafka's topic config names, with Kafka's defaults.
// The keys marked optional have defaults filled in by `resolveConfig`, so callers that build a
// LogConfig literal (the broker) need not know about every key.

export interface LogConfig {
  /** Roll the active segment before it would exceed this size. */
  "segment.bytes": number;
  /** Roll the active segment when its first batch is older than this (by record timestamps). */
  "segment.ms": number;
  /** Roll when the offset index of the active segment would exceed this size (8 bytes per entry). */
  "segment.index.bytes": number;
  /** One offset-index entry per this many bytes of batches. */
  "index.interval.bytes": number;
  /** Delete sealed segments whose newest record is older than this; -1: never. */
  "retention.ms": number;
  /** Delete the oldest segments while the log is larger than this; -1: no limit. */
  "retention.bytes": number;
  /** "delete", "compact" or "compact,delete". */
  "cleanup.policy": string;
  /** How long compaction keeps a tombstone (and transaction markers) once it is the latest for its key. */
  "delete.retention.ms": number;
  /** Records younger than this are never compacted. */
  "min.compaction.lag.ms": number;
  /** fsync after this many records (Kafka's default: never, rely on the page cache and replication). */
  "flush.messages": number;
  /** fsync when the oldest unflushed data is this old (checked by the LogManager's scheduler). */
  "flush.ms": number;
  "message.timestamp.type": "CreateTime" | "LogAppendTime";
  /** Largest record batch accepted. */
  "max.message.bytes": number;
  /** Sluice: acknowledge an append only after an fsync that covers it (group commit). */
  "fsync.before.ack": boolean;
  /** Compact when dirty bytes / cleanable bytes reaches this ratio. */
  "min.cleanable.dirty.ratio"?: number;
}

export const DEFAULT_LOG_CONFIG: Readonly<Required<LogConfig>> = {
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
  "min.cleanable.dirty.ratio": 0.5,
};

export function resolveConfig(c: Partial<LogConfig>): Required<LogConfig> {
  const out = { ...DEFAULT_LOG_CONFIG };
  for (const [k, v] of Object.entries(c)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}

function policies(c: LogConfig): string[] {
  return c["cleanup.policy"].split(",").map((s) => s.trim());
}

export function compacted(c: LogConfig): boolean {
  return policies(c).includes("compact");
}

export function deletes(c: LogConfig): boolean {
  return policies(c).includes("delete");
}
