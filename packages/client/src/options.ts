// Client options: camelCase names that map one-to-one to the Java client's configuration names
// (`lingerMs` ↔ `linger.ms`), with the Java defaults unless a comment says why not. The tables
// below are the one source of truth for Java names and defaults: option resolution, the
// `fromJavaProperties` loader and the docs check (test/options.test.ts) all read them.

import { ConfigError } from "./errors.ts";

export type OptionType = "int" | "bool" | "string" | "list" | "acks" | "strategies";

export interface OptionSpec {
  /** camelCase option name. */
  readonly name: string;
  /** The Java client's configuration name. */
  readonly java: string;
  readonly type: OptionType;
  /** undefined: required or unset (null-like) by default. */
  readonly default: unknown;
  /** Allowed values of a string option. */
  readonly values?: readonly string[];
}

const opt = (name: string, java: string, type: OptionType, def: unknown, values?: readonly string[]): OptionSpec =>
  values === undefined ? { name, java, type, default: def } : { name, java, type, default: def, values };

/** Options every client takes. */
export const COMMON_OPTIONS: readonly OptionSpec[] = [
  opt("bootstrapServers", "bootstrap.servers", "list", undefined),
  opt("clientId", "client.id", "string", "sluice"),
  opt("requestTimeoutMs", "request.timeout.ms", "int", 30000),
  opt("retryBackoffMs", "retry.backoff.ms", "int", 100),
  opt("retryBackoffMaxMs", "retry.backoff.max.ms", "int", 1000),
  opt("reconnectBackoffMs", "reconnect.backoff.ms", "int", 50),
  opt("reconnectBackoffMaxMs", "reconnect.backoff.max.ms", "int", 1000),
  opt("socketConnectionSetupTimeoutMs", "socket.connection.setup.timeout.ms", "int", 10000),
  opt("metadataMaxAgeMs", "metadata.max.age.ms", "int", 300000),
];

export const PRODUCER_OPTIONS: readonly OptionSpec[] = [
  ...COMMON_OPTIONS,
  opt("acks", "acks", "acks", "all"),
  opt("batchSize", "batch.size", "int", 16384),
  opt("lingerMs", "linger.ms", "int", 5),
  opt("bufferMemory", "buffer.memory", "int", 33554432),
  opt("maxBlockMs", "max.block.ms", "int", 60000),
  opt("maxRequestSize", "max.request.size", "int", 1048576),
  opt("compressionType", "compression.type", "string", "none", ["none", "gzip", "snappy", "lz4", "zstd"]),
  opt("retries", "retries", "int", 2147483647),
  opt("deliveryTimeoutMs", "delivery.timeout.ms", "int", 120000),
  opt("maxInFlightRequestsPerConnection", "max.in.flight.requests.per.connection", "int", 5),
  opt("enableIdempotence", "enable.idempotence", "bool", true),
  opt("transactionalId", "transactional.id", "string", undefined),
  opt("transactionTimeoutMs", "transaction.timeout.ms", "int", 60000),
  opt("partitionerIgnoreKeys", "partitioner.ignore.keys", "bool", false),
  opt("partitionerAdaptivePartitioningEnable", "partitioner.adaptive.partitioning.enable", "bool", true),
];

export const CONSUMER_OPTIONS: readonly OptionSpec[] = [
  ...COMMON_OPTIONS,
  opt("groupId", "group.id", "string", undefined),
  opt("groupInstanceId", "group.instance.id", "string", undefined),
  opt("sessionTimeoutMs", "session.timeout.ms", "int", 45000),
  opt("heartbeatIntervalMs", "heartbeat.interval.ms", "int", 3000),
  opt("maxPollIntervalMs", "max.poll.interval.ms", "int", 300000),
  opt("maxPollRecords", "max.poll.records", "int", 500),
  opt("enableAutoCommit", "enable.auto.commit", "bool", true),
  opt("autoCommitIntervalMs", "auto.commit.interval.ms", "int", 5000),
  opt("autoOffsetReset", "auto.offset.reset", "string", "latest", ["earliest", "latest", "none"]),
  opt("fetchMinBytes", "fetch.min.bytes", "int", 1),
  opt("fetchMaxBytes", "fetch.max.bytes", "int", 52428800),
  opt("maxPartitionFetchBytes", "max.partition.fetch.bytes", "int", 1048576),
  opt("fetchMaxWaitMs", "fetch.max.wait.ms", "int", 500),
  // Java defaults to read_uncommitted; kafkajs and librdkafka to read_committed, as we do.
  opt("isolationLevel", "isolation.level", "string", "read_committed", ["read_committed", "read_uncommitted"]),
  opt("partitionAssignmentStrategy", "partition.assignment.strategy", "strategies", ["range", "cooperative-sticky"]),
  opt("allowAutoCreateTopics", "allow.auto.create.topics", "bool", true),
  opt("checkCrcs", "check.crcs", "bool", true),
];

export const ADMIN_OPTIONS: readonly OptionSpec[] = [...COMMON_OPTIONS];

/** Every option any client takes, by Java name. */
const BY_JAVA = new Map<string, OptionSpec>(
  [...PRODUCER_OPTIONS, ...CONSUMER_OPTIONS, ...ADMIN_OPTIONS].map((s) => [s.java, s]),
);

const STRATEGY_NAMES: Record<string, string> = {
  range: "range",
  roundrobin: "roundrobin",
  "cooperative-sticky": "cooperative-sticky",
  sticky: "sticky",
  "org.apache.kafka.clients.consumer.RangeAssignor": "range",
  "org.apache.kafka.clients.consumer.RoundRobinAssignor": "roundrobin",
  "org.apache.kafka.clients.consumer.CooperativeStickyAssignor": "cooperative-sticky",
  "org.apache.kafka.clients.consumer.StickyAssignor": "sticky",
};

function parseValue(spec: OptionSpec, raw: string): unknown {
  const v = raw.trim();
  switch (spec.type) {
    case "int": {
      if (!/^-?\d+$/.test(v)) throw new ConfigError(`${spec.java} must be an integer, got "${raw}"`);
      return Number(v);
    }
    case "bool":
      if (v !== "true" && v !== "false") throw new ConfigError(`${spec.java} must be true or false, got "${raw}"`);
      return v === "true";
    case "list":
      return v
        .split(",")
        .map((s) => s.trim())
        .filter((s) => s.length > 0);
    case "acks":
      if (v === "all" || v === "-1") return "all";
      if (v === "0" || v === "1") return Number(v);
      throw new ConfigError(`acks must be all, -1, 0 or 1, got "${raw}"`);
    case "strategies":
      return v.split(",").map((s) => {
        const name = STRATEGY_NAMES[s.trim()];
        if (name === undefined) throw new ConfigError(`unknown partition.assignment.strategy "${s.trim()}"`);
        return name;
      });
    case "string":
      if (spec.values && !spec.values.includes(v))
        throw new ConfigError(`${spec.java} must be one of ${spec.values.join(", ")}, got "${raw}"`);
      return v;
  }
}

/**
 * Options from Java-style properties: `fromJavaProperties({ "linger.ms": "5" })` is
 * `{ lingerMs: 5 }`. Unknown names are refused (a typo would otherwise be silently ignored).
 * The result can be spread into ProducerOptions, ConsumerOptions or AdminOptions.
 */
export function fromJavaProperties(props: Readonly<Record<string, string>> | ReadonlyMap<string, string>): {
  // biome-ignore lint/suspicious/noExplicitAny: values are typed by the option they belong to.
  [name: string]: any;
} {
  const entries = props instanceof Map ? [...props] : Object.entries(props);
  const out: Record<string, unknown> = {};
  for (const [key, raw] of entries) {
    const spec = BY_JAVA.get(key);
    if (spec === undefined) throw new ConfigError(`unknown or unsupported client property "${key}"`);
    out[spec.name] = parseValue(spec, raw);
  }
  return out;
}

/** Parses "k=v" lines of a Java .properties file (# and ! comments, blank lines). */
export function parseJavaProperties(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const t = line.trim();
    if (t === "" || t.startsWith("#") || t.startsWith("!")) continue;
    const m = /^([^=:\s]+)\s*[=:\s]\s*(.*)$/.exec(t);
    if (m) out.set(m[1]!, m[2]!);
  }
  return out;
}

/**
 * Fills in defaults from `specs` and checks types. Options with no default stay undefined.
 * `extra` lists option names that are valid but not in the table (functions, listeners).
 */
export function resolveOptions<T>(
  what: string,
  specs: readonly OptionSpec[],
  given: object,
  extra: readonly string[] = [],
): T {
  const out: Record<string, unknown> = {};
  const known = new Set([...specs.map((s) => s.name), ...extra]);
  for (const [k, v] of Object.entries(given)) {
    if (!known.has(k)) throw new ConfigError(`unknown ${what} option "${k}"`);
    if (v !== undefined) out[k] = v;
  }
  for (const s of specs) {
    const v = out[s.name];
    if (v === undefined) {
      if (s.default !== undefined) out[s.name] = s.default;
      continue;
    }
    if (s.type === "int" && (typeof v !== "number" || !Number.isInteger(v) || v < 0))
      throw new ConfigError(`${s.name} (${s.java}) must be a non-negative integer, got ${String(v)}`);
    if (s.type === "bool" && typeof v !== "boolean")
      throw new ConfigError(`${s.name} (${s.java}) must be a boolean, got ${String(v)}`);
    if (s.type === "string" && s.values && !s.values.includes(v as string))
      throw new ConfigError(`${s.name} (${s.java}) must be one of ${s.values.join(", ")}, got ${String(v)}`);
  }
  if (out.bootstrapServers === undefined) throw new ConfigError(`${what} needs bootstrapServers (bootstrap.servers)`);
  return out as T;
}
