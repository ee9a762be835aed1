// Broker configuration: one declarative table of Kafka's config names, types, defaults and
// validators drives parsing (properties file, environment, command line), validation and
// DescribeConfigs. Topic-level configs name the broker config that provides their default.

import { readFileSync } from "node:fs";

export type ConfigType = "string" | "int" | "long" | "boolean" | "list" | "double";

export interface ConfigDef {
  readonly name: string;
  readonly type: ConfigType;
  readonly default: string | null;
  readonly doc: string;
  readonly validate?: (v: string) => string | null;
  /** The topic-level config this broker config provides the default for. */
  readonly topicConfig?: string;
  readonly readOnly?: boolean;
  /**
   * The value when none is set, computed from other configs (Kafka's fallbacks, e.g.
   * log.retention.ms ← log.retention.minutes ← log.retention.hours). Takes precedence over `default`.
   */
  readonly derive?: (get: (name: string) => string | null) => string;
  /** The configs `derive` falls back to, most specific first (DescribeConfigs synonyms). */
  readonly fallbacks?: readonly string[];
  /** Accepted so that stock Kafka config files work, but has no effect here (a warning at start). */
  readonly ignored?: boolean;
}

const atLeast =
  (min: number) =>
  (v: string): string | null =>
    Number(v) >= min ? null : `must be at least ${min}`;
const LISTENER = /^(?:[A-Z_]+:\/\/)?(?:\[[^\]]*\]|[^:/\s]*):\d{1,5}$/;
const listenerList = (v: string): string | null =>
  v
    .split(",")
    .map((x) => x.trim())
    .filter(Boolean)
    .every((x) => LISTENER.test(x))
    ? null
    : "must be a comma-separated list of PLAINTEXT://host:port";
const oneOf =
  (...values: string[]) =>
  (v: string): string | null =>
    v.split(",").every((x) => values.includes(x.trim())) ? null : `must be one of ${values.join(", ")}`;

export const BROKER_CONFIGS: readonly ConfigDef[] = [
  { name: "node.id", type: "int", default: "1", doc: "The id of this broker.", validate: atLeast(0), readOnly: true },
  { name: "broker.id", type: "int", default: null, doc: "Alias of node.id.", readOnly: true },
  {
    name: "listeners",
    type: "list",
    default: "PLAINTEXT://0.0.0.0:9092",
    doc: "Where the broker listens (the first listener is used).",
    validate: listenerList,
    readOnly: true,
  },
  {
    name: "advertised.listeners",
    type: "list",
    default: null,
    doc: "Address given to clients (defaults to listeners, with 0.0.0.0 replaced by localhost).",
    validate: listenerList,
    readOnly: true,
  },
  { name: "log.dirs", type: "list", default: "./data", doc: "Directories holding partition logs.", readOnly: true },
  {
    name: "num.partitions",
    type: "int",
    default: "1",
    doc: "Default partition count of auto-created topics.",
    validate: atLeast(1),
  },
  {
    name: "default.replication.factor",
    type: "int",
    default: "1",
    doc: "Default replication factor of auto-created topics.",
    validate: atLeast(1),
  },
  {
    name: "auto.create.topics.enable",
    type: "boolean",
    default: "true",
    doc: "Create topics on first Metadata request.",
  },
  { name: "delete.topic.enable", type: "boolean", default: "true", doc: "Allow DeleteTopics." },
  {
    name: "message.max.bytes",
    type: "int",
    default: "1048588",
    doc: "Largest record batch accepted.",
    validate: atLeast(0),
    topicConfig: "max.message.bytes",
  },
  {
    name: "log.segment.bytes",
    type: "int",
    default: "1073741824",
    doc: "Segment size before rolling.",
    validate: atLeast(14),
    topicConfig: "segment.bytes",
  },
  {
    name: "log.roll.ms",
    type: "long",
    default: null,
    doc: "Segment age before rolling (default: log.roll.hours).",
    validate: atLeast(1),
    topicConfig: "segment.ms",
    derive: (get) => String(Number(get("log.roll.hours")) * 3_600_000),
    fallbacks: ["log.roll.hours"],
  },
  {
    name: "log.roll.hours",
    type: "int",
    default: "168",
    doc: "Segment age before rolling, in hours (when log.roll.ms is not set).",
    validate: atLeast(1),
  },
  {
    name: "log.index.size.max.bytes",
    type: "int",
    default: "10485760",
    doc: "Offset index size before rolling.",
    validate: atLeast(8),
    topicConfig: "segment.index.bytes",
  },
  {
    name: "log.index.interval.bytes",
    type: "int",
    default: "4096",
    doc: "Bytes between offset index entries.",
    validate: atLeast(0),
    topicConfig: "index.interval.bytes",
  },
  {
    name: "log.retention.ms",
    type: "long",
    default: null,
    doc: "Time to keep a segment (-1: forever; default: log.retention.minutes, then log.retention.hours).",
    validate: atLeast(-1),
    topicConfig: "retention.ms",
    derive: (get) => {
      const minutes = get("log.retention.minutes");
      if (minutes !== null) return String(Number(minutes) * 60_000);
      return String(Number(get("log.retention.hours")) * 3_600_000);
    },
    fallbacks: ["log.retention.minutes", "log.retention.hours"],
  },
  {
    name: "log.retention.minutes",
    type: "int",
    default: null,
    doc: "Time to keep a segment, in minutes (when log.retention.ms is not set).",
    validate: atLeast(-1),
  },
  {
    name: "log.retention.hours",
    type: "int",
    default: "168",
    doc: "Time to keep a segment, in hours (when log.retention.ms and log.retention.minutes are not set).",
    validate: atLeast(-1),
  },
  {
    name: "log.retention.bytes",
    type: "long",
    default: "-1",
    doc: "Size to keep per partition (-1: unlimited).",
    validate: atLeast(-1),
    topicConfig: "retention.bytes",
  },
  {
    name: "log.cleanup.policy",
    type: "list",
    default: "delete",
    doc: "delete, compact or both.",
    validate: oneOf("delete", "compact"),
    topicConfig: "cleanup.policy",
  },
  {
    name: "log.cleaner.delete.retention.ms",
    type: "long",
    default: "86400000",
    doc: "How long tombstones are kept.",
    validate: atLeast(0),
    topicConfig: "delete.retention.ms",
  },
  {
    name: "log.cleaner.min.compaction.lag.ms",
    type: "long",
    default: "0",
    doc: "Minimum age before compaction.",
    validate: atLeast(0),
    topicConfig: "min.compaction.lag.ms",
  },
  {
    name: "log.flush.interval.messages",
    type: "long",
    default: "9223372036854775807",
    doc: "Messages between fsyncs.",
    validate: atLeast(1),
    topicConfig: "flush.messages",
  },
  {
    name: "log.flush.interval.ms",
    type: "long",
    default: "9223372036854775807",
    doc: "Time between fsyncs.",
    validate: atLeast(0),
    topicConfig: "flush.ms",
  },
  {
    name: "log.message.timestamp.type",
    type: "string",
    default: "CreateTime",
    doc: "CreateTime or LogAppendTime.",
    validate: oneOf("CreateTime", "LogAppendTime"),
    topicConfig: "message.timestamp.type",
  },
  {
    name: "log.message.timestamp.difference.max.ms",
    type: "long",
    default: "9223372036854775807",
    doc: "Largest accepted difference between a record timestamp and the broker's clock.",
    validate: atLeast(0),
    topicConfig: "message.timestamp.difference.max.ms",
  },
  {
    name: "log.message.downconversion.enable",
    type: "boolean",
    default: "true",
    doc: "Whether Fetch v0-v3 (clients of message formats v0/v1) get the log's batches converted down; if false they get UNSUPPORTED_VERSION.",
    topicConfig: "message.downconversion.enable",
  },
  {
    name: "log.retention.check.interval.ms",
    type: "long",
    default: "300000",
    doc: "Interval of the retention/compaction pass.",
    validate: atLeast(1),
  },
  {
    name: "sluice.fsync.before.ack",
    type: "boolean",
    default: "false",
    doc: "fsync each append before acknowledging it (group commit).",
    topicConfig: "sluice.fsync.before.ack",
  },
  {
    name: "min.insync.replicas",
    type: "int",
    default: "1",
    doc: "Replicas that must acknowledge acks=all.",
    validate: atLeast(1),
    topicConfig: "min.insync.replicas",
  },
  {
    name: "unclean.leader.election.enable",
    type: "boolean",
    default: "false",
    doc: "Allow out-of-sync leaders.",
    topicConfig: "unclean.leader.election.enable",
  },
  {
    name: "compression.type",
    type: "string",
    default: "producer",
    doc: "Keep the producer's compression.",
    validate: oneOf("producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"),
    topicConfig: "compression.type",
  },
  {
    name: "socket.request.max.bytes",
    type: "int",
    default: "104857600",
    doc: "Largest request accepted.",
    validate: atLeast(1),
  },
  {
    name: "queued.max.requests",
    type: "int",
    default: "500",
    doc: "Requests in flight per connection before reading pauses.",
    validate: atLeast(1),
  },
  {
    name: "max.connections",
    type: "int",
    default: "2147483647",
    doc: "Connections accepted at once.",
    validate: atLeast(1),
  },
  {
    name: "connections.max.idle.ms",
    type: "long",
    default: "600000",
    doc: "Idle connections are closed after this.",
    validate: atLeast(1),
  },
  {
    name: "offsets.topic.num.partitions",
    type: "int",
    default: "50",
    doc: "Partitions of __consumer_offsets.",
    validate: atLeast(1),
  },
  {
    name: "offsets.topic.segment.bytes",
    type: "int",
    default: "104857600",
    doc: "segment.bytes of __consumer_offsets (kept small so that compaction and loading are fast).",
    validate: atLeast(1),
  },
  {
    name: "offsets.retention.minutes",
    type: "int",
    default: "10080",
    doc: "How long committed offsets of empty groups are kept.",
    validate: atLeast(1),
  },
  {
    name: "offsets.retention.check.interval.ms",
    type: "long",
    default: "600000",
    doc: "Interval of the pass that expires committed offsets past offsets.retention.minutes.",
    validate: atLeast(1),
  },
  {
    name: "offset.metadata.max.bytes",
    type: "int",
    default: "4096",
    doc: "Largest metadata string accepted with a committed offset (OFFSET_METADATA_TOO_LARGE beyond).",
    validate: atLeast(0),
  },
  {
    name: "group.initial.rebalance.delay.ms",
    type: "int",
    default: "3000",
    doc: "Delay of the first rebalance of a new group.",
    validate: atLeast(0),
  },
  {
    name: "group.min.session.timeout.ms",
    type: "int",
    default: "6000",
    doc: "Smallest session timeout accepted.",
    validate: atLeast(0),
  },
  {
    name: "group.max.session.timeout.ms",
    type: "int",
    default: "1800000",
    doc: "Largest session timeout accepted.",
    validate: atLeast(0),
  },
  { name: "group.max.size", type: "int", default: "2147483647", doc: "Members per group.", validate: atLeast(1) },
  {
    name: "transaction.max.timeout.ms",
    type: "int",
    default: "900000",
    doc: "Largest transaction timeout accepted.",
    validate: atLeast(1),
  },
  {
    name: "transactional.id.expiration.ms",
    type: "int",
    default: "604800000",
    doc: "Idle transactional ids expire after this.",
    validate: atLeast(1),
  },
  {
    name: "producer.id.expiration.ms",
    type: "int",
    default: "86400000",
    doc: "Idle producer ids expire after this.",
    validate: atLeast(1),
  },
  {
    name: "transaction.state.log.num.partitions",
    type: "int",
    default: "50",
    doc: "Partitions of __transaction_state.",
    validate: atLeast(1),
  },
  {
    name: "transaction.state.log.segment.bytes",
    type: "int",
    default: "104857600",
    doc: "segment.bytes of __transaction_state.",
    validate: atLeast(1),
  },
  {
    name: "cluster.id",
    type: "string",
    default: null,
    doc: "Cluster id (generated and stored on first start when unset).",
    readOnly: true,
  },
];

/** Kafka broker configs that stock config files set, accepted and ignored (threads, buffers, ZooKeeper, KRaft, replication of internal topics on one node). */
const IGNORED_KAFKA_CONFIGS = [
  "num.network.threads",
  "num.io.threads",
  "num.recovery.threads.per.data.dir",
  "num.replica.fetchers",
  "background.threads",
  "socket.send.buffer.bytes",
  "socket.receive.buffer.bytes",
  "offsets.topic.replication.factor",
  "transaction.state.log.replication.factor",
  "transaction.state.log.min.isr",
  "zookeeper.connect",
  "zookeeper.connection.timeout.ms",
  "process.roles",
  "controller.quorum.voters",
  "controller.quorum.bootstrap.servers",
  "controller.listener.names",
  "inter.broker.listener.name",
  "listener.security.protocol.map",
  "log.flush.scheduler.interval.ms",
];

const CONFIG_LIST: readonly ConfigDef[] = [
  ...BROKER_CONFIGS,
  ...IGNORED_KAFKA_CONFIGS.map(
    (name): ConfigDef => ({
      name,
      type: "string",
      default: null,
      doc: "Accepted for compatibility with Kafka config files; has no effect in Sluice.",
      ignored: true,
      readOnly: true,
    }),
  ),
];

export const CONFIG_DEFS: ReadonlyMap<string, ConfigDef> = new Map(CONFIG_LIST.map((d) => [d.name, d]));

/** Topic configs, each with the broker config that supplies its default. */
export const TOPIC_CONFIGS: ReadonlyMap<string, ConfigDef> = new Map(
  BROKER_CONFIGS.filter((d) => d.topicConfig).map((d) => [d.topicConfig!, d]),
);

export class ConfigError extends Error {
  readonly key: string;
  constructor(key: string, message: string) {
    super(`invalid config ${key}: ${message}`);
    this.name = "ConfigError";
    this.key = key;
  }
}

function checkType(def: ConfigDef, value: string): string | null {
  switch (def.type) {
    case "int":
      return /^-?\d+$/.test(value) && Math.abs(Number(value)) <= 2 ** 31 ? null : "must be an integer";
    case "long":
      return /^-?\d+$/.test(value) ? null : "must be an integer";
    case "double":
      return Number.isFinite(Number(value)) ? null : "must be a number";
    case "boolean":
      return value === "true" || value === "false" ? null : "must be true or false";
    default:
      return null;
  }
}

/** Explicitly set configs that have no effect here (for a warning at start). */
export function ignoredConfigs(config: BrokerConfig): string[] {
  return [...config.explicit.keys()].filter((k) => CONFIG_DEFS.get(k)?.ignored);
}

/** Validates one value for a config definition; returns an error message or null. */
export function validateValue(def: ConfigDef, value: string): string | null {
  return checkType(def, value) ?? def.validate?.(value) ?? null;
}

export interface BrokerConfig {
  /** The effective value: dynamic, then explicit, then derived or default. Throws when there is none. */
  get(name: string): string;
  /** Like get, but null when the config has no value. */
  lookup(name: string): string | null;
  int(name: string): number;
  bool(name: string): boolean;
  list(name: string): string[];
  /** Values set explicitly (file, env, flags), by name. */
  readonly explicit: ReadonlyMap<string, string>;
  /** Values set at run time through (Incremental)AlterConfigs on the broker resource. */
  readonly dynamic: Map<string, string>;
}

/** Parses `key=value` lines of a Java properties file (comments with # or !). */
export function parseProperties(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith("!")) continue;
    const m = /^([^=:\s]+)\s*[=:\s]\s*(.*)$/.exec(line);
    if (!m) throw new ConfigError(line, "not a key=value line");
    out.set(m[1]!, m[2]!);
  }
  return out;
}

/** Environment variables SLUICE_LOG_DIRS=… map to log.dirs (underscores → dots, lower case). */
export function fromEnv(env: NodeJS.ProcessEnv): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of Object.entries(env)) {
    if (!k.startsWith("SLUICE_") || v === undefined) continue;
    const name = k.slice(7).toLowerCase().replace(/_/g, ".");
    if (CONFIG_DEFS.has(name)) out.set(name, v);
  }
  return out;
}

/** Builds and validates the config; later sources override earlier ones. Throws ConfigError. */
export function buildConfig(...sources: ReadonlyMap<string, string>[]): BrokerConfig {
  const explicit = new Map<string, string>();
  for (const s of sources) for (const [k, v] of s) explicit.set(k, v);
  for (const [k, v] of explicit) {
    const def = CONFIG_DEFS.get(k);
    if (!def) throw new ConfigError(k, "unknown config");
    const err = validateValue(def, v);
    if (err) throw new ConfigError(k, `${JSON.stringify(v)} ${err}`);
  }
  if (explicit.has("broker.id") && !explicit.has("node.id")) explicit.set("node.id", explicit.get("broker.id")!);
  const dynamic = new Map<string, string>();
  const lookup = (name: string): string | null => {
    const set = dynamic.get(name) ?? explicit.get(name);
    if (set !== undefined) return set;
    const def = CONFIG_DEFS.get(name);
    if (def?.derive) return def.derive(lookup);
    return def?.default ?? null;
  };
  const get = (name: string): string => {
    const v = lookup(name);
    if (v === null) throw new ConfigError(name, "has no value");
    return v;
  };
  return {
    explicit,
    dynamic,
    get,
    lookup,
    int: (n) => Number(get(n)),
    bool: (n) => get(n) === "true",
    list: (n) =>
      (lookup(n) ?? "")
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean),
  };
}

export function loadPropertiesFile(path: string): Map<string, string> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new ConfigError("--config", `cannot read ${path}: ${(e as Error).message}`);
  }
  return parseProperties(text);
}

/** Clamps Kafka's "Long.MAX_VALUE" style values to a safe JS number. */
export function toSafeNumber(v: string): number {
  const n = Number(v);
  return n > Number.MAX_SAFE_INTEGER ? Number.MAX_SAFE_INTEGER : n;
}
