// What a client knows of the cluster, and its connections to it.
//
// - Bootstrap: any of several `host:port` addresses; the first that answers gives the metadata.
// - Metadata cache: brokers, controller, and per topic its partitions with leader and leader
//   epoch. Refreshed on demand (coalesced: concurrent callers share one Metadata request), when
//   older than metadataMaxAgeMs, and after errors that mean it is stale (NOT_LEADER_OR_FOLLOWER,
//   UNKNOWN_TOPIC_OR_PARTITION, a dead connection): callers `invalidate()` and retry. A response
//   with an older leader epoch than the cached one is stale and ignored for that partition.
// - Connections: one per broker per lane (a lane keeps, say, group heartbeats from queueing
//   behind a long-polling Fetch on the same socket, as Java's separate coordinator connection
//   does), opened on first use and reopened after a failure with exponential backoff
//   (reconnectBackoffMs doubling up to reconnectBackoffMaxMs, with jitter).
// - Coordinators (group, transaction): FindCoordinator, cached until invalidated.

import {
  ApiKey,
  decodeFindCoordinatorResponse,
  decodeMetadataResponse,
  ErrorCode,
  encodeFindCoordinatorRequest,
  encodeMetadataRequest,
  uuidToString,
} from "@sluice/protocol";
import { backoffMs, sleep } from "./backoff.ts";
import { Connection } from "./connection.ts";
import { ClosedError, ConnectionError, KafkaError, KafkaProtocolError } from "./errors.ts";

export interface BrokerAddress {
  readonly nodeId: number;
  readonly host: string;
  readonly port: number;
}

export interface PartitionInfo {
  readonly partition: number;
  /** -1 when the partition has no leader now. */
  readonly leader: number;
  readonly leaderEpoch: number;
  readonly replicas: readonly number[];
  readonly isr: readonly number[];
}

export interface TopicInfo {
  readonly name: string;
  readonly topicId: string;
  readonly internal: boolean;
  readonly partitions: readonly PartitionInfo[];
}

export interface ClusterOptions {
  readonly bootstrapServers: string | readonly string[];
  readonly clientId: string;
  readonly requestTimeoutMs: number;
  readonly socketConnectionSetupTimeoutMs: number;
  readonly reconnectBackoffMs: number;
  readonly reconnectBackoffMaxMs: number;
  readonly retryBackoffMs: number;
  readonly retryBackoffMaxMs: number;
  readonly metadataMaxAgeMs: number;
  /** Ask brokers to create topics the client asks metadata for (producer, consumer). */
  readonly allowAutoCreateTopics: boolean;
}

export type CoordinatorType = "group" | "transaction";

const METADATA_VERSIONS: [number, number] = [1, 12];
const FIND_COORDINATOR_VERSIONS: [number, number] = [0, 6];

export function parseBootstrap(servers: string | readonly string[]): { host: string; port: number }[] {
  const list = (typeof servers === "string" ? servers.split(",") : servers.flatMap((s) => s.split(",")))
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (list.length === 0) throw new KafkaError("INVALID_CONFIG", "bootstrapServers (bootstrap.servers) is empty");
  return list.map((s) => {
    const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(s.replace(/^[A-Za-z_]+:\/\//, ""));
    if (!m) throw new KafkaError("INVALID_CONFIG", `bad bootstrap server "${s}": expected host:port`);
    return { host: m[1]!, port: Number(m[2]) };
  });
}

interface AddressState {
  failures: number;
  nextAttemptMs: number;
}

export class Cluster {
  readonly options: ClusterOptions;
  private readonly bootstrap: { host: string; port: number }[];
  private readonly brokers = new Map<number, BrokerAddress>();
  private readonly topics = new Map<string, TopicInfo>();
  /** Topics whose metadata we keep fresh (the union of what callers asked for). */
  private readonly wanted = new Set<string>();
  private readonly connections = new Map<string, Promise<Connection>>();
  /** The connections of `connections` that are open, for a send that need not wait on a promise. */
  private readonly openConnections = new Map<string, Connection>();
  private readonly addressState = new Map<string, AddressState>();
  private readonly coordinators = new Map<string, BrokerAddress>();
  private refreshing: Promise<void> | null = null;
  private refreshAgain = false;
  private lastRefreshMs = 0;
  private controllerId = -1;
  clusterId: string | null = null;
  private closed = false;
  private bootstrapIndex = Math.floor(Math.random() * 1024);

  constructor(options: ClusterOptions) {
    this.options = options;
    this.bootstrap = parseBootstrap(options.bootstrapServers);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  // ---- connections ------------------------------------------------------------------------

  /** The shared connection to host:port on `lane`, opened (after any reconnect backoff) when needed. */
  async connection(host: string, port: number, lane = "data"): Promise<Connection> {
    if (this.closed) throw new ClosedError("client");
    const key = `${lane}/${host}:${port}`;
    const existing = this.connections.get(key);
    if (existing) {
      const c = await existing.catch(() => null);
      if (c && !c.closed) return c;
      if (this.connections.get(key) === existing) this.connections.delete(key);
      return this.connection(host, port, lane);
    }
    const p = this.open(host, port);
    this.connections.set(key, p);
    p.then(
      (c) => {
        if (this.connections.get(key) === p) this.openConnections.set(key, c);
        c.onClose(() => {
          if (this.connections.get(key) === p) this.connections.delete(key);
          if (this.openConnections.get(key) === c) this.openConnections.delete(key);
        });
      },
      () => {
        if (this.connections.get(key) === p) this.connections.delete(key);
      },
    );
    return p;
  }

  private async open(host: string, port: number): Promise<Connection> {
    const addr = `${host}:${port}`;
    const state = this.addressState.get(addr);
    if (state && state.nextAttemptMs > Date.now()) await sleep(state.nextAttemptMs - Date.now());
    if (this.closed) throw new ClosedError("client");
    try {
      const c = await Connection.open(host, port, {
        clientId: this.options.clientId,
        requestTimeoutMs: this.options.requestTimeoutMs,
        connectTimeoutMs: this.options.socketConnectionSetupTimeoutMs,
      });
      this.addressState.delete(addr);
      if (this.closed) {
        c.close();
        throw new ClosedError("client");
      }
      // A connection that dies later is reopened after the first backoff step.
      c.onClose(() => {
        if (!this.addressState.has(addr))
          this.addressState.set(addr, {
            failures: 0,
            nextAttemptMs:
              Date.now() + backoffMs(0, this.options.reconnectBackoffMs, this.options.reconnectBackoffMaxMs),
          });
      });
      return c;
    } catch (e) {
      const failures = (state?.failures ?? 0) + 1;
      this.addressState.set(addr, {
        failures,
        nextAttemptMs:
          Date.now() + backoffMs(failures - 1, this.options.reconnectBackoffMs, this.options.reconnectBackoffMaxMs),
      });
      throw e;
    }
  }

  async connectionTo(nodeId: number, lane = "data"): Promise<Connection> {
    const b = this.brokers.get(nodeId);
    if (!b) {
      await this.refresh();
      const again = this.brokers.get(nodeId);
      if (!again) throw new ConnectionError(`broker ${nodeId} is not in the cluster metadata`);
      return this.connection(again.host, again.port, lane);
    }
    return this.connection(b.host, b.port, lane);
  }

  /**
   * The open connection to a known broker on `lane`, or undefined when there is none yet (then
   * connectionTo() opens it). Synchronous: a request on a live connection is written on the
   * caller's turn, without the promise hops of connectionTo().
   */
  openConnectionTo(nodeId: number, lane = "data"): Connection | undefined {
    if (this.closed) return undefined;
    const b = this.brokers.get(nodeId);
    if (!b) return undefined;
    const c = this.openConnections.get(`${lane}/${b.host}:${b.port}`);
    return c !== undefined && !c.closed ? c : undefined;
  }

  /** A connection to any reachable broker: known brokers first, then the bootstrap addresses. */
  async anyConnection(lane = "data"): Promise<Connection> {
    const known = [...this.brokers.values()];
    const boot = this.bootstrap.map((_, i) => this.bootstrap[(this.bootstrapIndex + i) % this.bootstrap.length]!);
    this.bootstrapIndex++;
    // Prefer an address with an open connection, then one not in backoff.
    const candidates = [...known, ...boot];
    for (const c of candidates) {
      const open = this.connections.get(`${lane}/${c.host}:${c.port}`);
      if (open) {
        const conn = await open.catch(() => null);
        if (conn && !conn.closed) return conn;
      }
    }
    const now = Date.now();
    const inBackoff = (c: { host: string; port: number }): number =>
      (this.addressState.get(`${c.host}:${c.port}`)?.nextAttemptMs ?? 0) > now ? 1 : 0;
    candidates.sort((a, b) => inBackoff(a) - inBackoff(b));
    let last: unknown;
    for (const c of candidates) {
      try {
        return await this.connection(c.host, c.port, lane);
      } catch (e) {
        if (e instanceof ClosedError) throw e;
        last = e;
      }
    }
    throw new ConnectionError(
      `no broker is reachable (tried ${candidates.map((c) => `${c.host}:${c.port}`).join(", ")})`,
      last,
    );
  }

  /** The controller (for topic administration), or any broker when the controller is unknown. */
  async controllerConnection(): Promise<Connection> {
    if (this.controllerId < 0 || !this.brokers.has(this.controllerId)) await this.refresh();
    if (this.controllerId >= 0 && this.brokers.has(this.controllerId))
      return this.connectionTo(this.controllerId, "admin");
    return this.anyConnection("admin");
  }

  // ---- metadata ---------------------------------------------------------------------------

  /** Cached partitions of a topic (undefined when not known). */
  partitions(topic: string): readonly PartitionInfo[] | undefined {
    return this.topics.get(topic)?.partitions;
  }

  topic(topic: string): TopicInfo | undefined {
    return this.topics.get(topic);
  }

  leaderOf(topic: string, partition: number): number {
    return this.topics.get(topic)?.partitions[partition]?.leader ?? -1;
  }

  broker(nodeId: number): BrokerAddress | undefined {
    return this.brokers.get(nodeId);
  }

  get knownBrokers(): BrokerAddress[] {
    return [...this.brokers.values()];
  }

  /** Marks a topic's metadata stale: the next partitionsOf() refreshes it. */
  invalidate(topic: string): void {
    this.topics.delete(topic);
  }

  /** Refreshes metadata for every wanted topic plus `topics`. Concurrent calls share requests. */
  refresh(topics: readonly string[] = []): Promise<void> {
    for (const t of topics) this.wanted.add(t);
    if (this.refreshing) {
      // A refresh in flight may not include our topics: run one more after it.
      this.refreshAgain = true;
      return this.refreshing;
    }
    this.refreshing = (async () => {
      try {
        do {
          this.refreshAgain = false;
          await this.doRefresh([...this.wanted]);
        } while (this.refreshAgain);
      } finally {
        this.refreshing = null;
      }
    })();
    return this.refreshing;
  }

  private async doRefresh(topics: string[]): Promise<void> {
    const conn = await this.anyConnection();
    const res = await conn.request(
      ApiKey.Metadata,
      METADATA_VERSIONS,
      (w, v) =>
        encodeMetadataRequest(
          w,
          {
            // v1+: an empty list means no topics, null means all; we only ask for what we use.
            topics: topics.map((name) => ({ name })),
            allowAutoTopicCreation: this.options.allowAutoCreateTopics,
          },
          v,
        ),
      decodeMetadataResponse,
    );
    this.lastRefreshMs = Date.now();
    this.clusterId = res.clusterId;
    this.controllerId = res.controllerId;
    if (res.brokers.length > 0) {
      this.brokers.clear();
      for (const b of res.brokers) this.brokers.set(b.nodeId, { nodeId: b.nodeId, host: b.host, port: b.port });
    }
    for (const t of res.topics) {
      if (t.name === null) continue;
      if (t.errorCode !== ErrorCode.NONE) {
        this.topics.delete(t.name);
        continue;
      }
      const old = this.topics.get(t.name);
      const partitions: PartitionInfo[] = [];
      for (const p of t.partitions) {
        const cached = old?.partitions[p.partitionIndex];
        // An older leader epoch than we know means this broker's metadata is behind: keep ours.
        if (cached && cached.leaderEpoch >= 0 && p.leaderEpoch >= 0 && p.leaderEpoch < cached.leaderEpoch) {
          partitions[p.partitionIndex] = cached;
          continue;
        }
        partitions[p.partitionIndex] = {
          partition: p.partitionIndex,
          leader: p.errorCode === ErrorCode.LEADER_NOT_AVAILABLE ? -1 : p.leaderId,
          leaderEpoch: p.leaderEpoch,
          replicas: p.replicaNodes,
          isr: p.isrNodes,
        };
      }
      // A sparse array (a partition missing from the response) is not a usable topic.
      if (partitions.length === 0 || partitions.some((p) => p === undefined)) {
        this.topics.delete(t.name);
        continue;
      }
      this.topics.set(t.name, {
        name: t.name,
        topicId: uuidToString(t.topicId),
        internal: t.isInternal,
        partitions,
      });
    }
  }

  /**
   * Partitions of `topic`, refreshing metadata while it is unknown (auto-created topics appear
   * after a moment) until `deadlineMs`; UNKNOWN_TOPIC_OR_PARTITION after that.
   */
  async partitionsOf(
    topic: string,
    deadlineMs = Date.now() + 60000,
    signal?: AbortSignal,
  ): Promise<readonly PartitionInfo[]> {
    this.wanted.add(topic);
    if (this.lastRefreshMs > 0 && Date.now() - this.lastRefreshMs > this.options.metadataMaxAgeMs)
      void this.refresh().catch(() => {});
    for (let attempt = 0; ; attempt++) {
      const known = this.topics.get(topic);
      if (known) return known.partitions;
      let error: unknown = null;
      try {
        await this.refresh([topic]);
      } catch (e) {
        if (e instanceof ClosedError) throw e;
        error = e;
      }
      const after = this.topics.get(topic);
      if (after) return after.partitions;
      const wait = backoffMs(attempt, Math.min(50, this.options.retryBackoffMs), this.options.retryBackoffMaxMs);
      if (Date.now() + wait >= deadlineMs) {
        throw new KafkaError(
          "UNKNOWN_TOPIC_OR_PARTITION",
          `topic ${topic} is not in the metadata after waiting${error ? `: ${(error as Error).message}` : ""}`,
          { errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, retriable: true, cause: error },
        );
      }
      await sleep(wait, signal);
    }
  }

  // ---- coordinators -----------------------------------------------------------------------

  /** The connection to the group or transaction coordinator for `key` (retried while unavailable). */
  async coordinator(type: CoordinatorType, key: string, deadlineMs = Date.now() + 30000): Promise<Connection> {
    const id = `${type}:${key}`;
    for (let attempt = 0; ; attempt++) {
      const known = this.coordinators.get(id);
      try {
        if (known) return await this.connection(known.host, known.port, "coordinator");
        const b = await this.findCoordinator(type, key);
        this.coordinators.set(id, b);
        return await this.connection(b.host, b.port, "coordinator");
      } catch (e) {
        this.coordinators.delete(id);
        if (!(e instanceof KafkaError) || !e.retriable || Date.now() >= deadlineMs) throw e;
        await sleep(backoffMs(attempt, this.options.retryBackoffMs, this.options.retryBackoffMaxMs));
      }
    }
  }

  invalidateCoordinator(type: CoordinatorType, key: string): void {
    this.coordinators.delete(`${type}:${key}`);
  }

  private async findCoordinator(type: CoordinatorType, key: string): Promise<BrokerAddress> {
    const conn = await this.anyConnection();
    const keyType = type === "group" ? 0 : 1;
    if (keyType === 1 && (conn.brokerRange(ApiKey.FindCoordinator)?.[1] ?? 0) < 1)
      throw new KafkaError("UNSUPPORTED_VERSION", "the broker has no transaction coordinator (FindCoordinator v1+)");
    const res = await conn.request(
      ApiKey.FindCoordinator,
      FIND_COORDINATOR_VERSIONS,
      (w, v) => encodeFindCoordinatorRequest(w, { key, keyType, coordinatorKeys: [key] }, v),
      (r, v) => {
        const d = decodeFindCoordinatorResponse(r, v);
        if (v < 4) return d;
        const c = d.coordinators[0];
        if (!c) throw new KafkaError("INVALID_RESPONSE", "FindCoordinator answered no coordinator");
        return { ...d, ...c };
      },
    );
    if (res.errorCode !== ErrorCode.NONE)
      throw new KafkaProtocolError(res.errorCode, `FindCoordinator(${type} ${key})`, res.errorMessage);
    return { nodeId: res.nodeId, host: res.host, port: res.port };
  }

  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.connections.values()];
    this.connections.clear();
    this.openConnections.clear();
    await Promise.all(all.map((p) => p.then((c) => c.close()).catch(() => {})));
  }
}
