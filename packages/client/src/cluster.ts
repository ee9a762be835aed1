// What the client knows of the cluster: brokers, topics and partition leaders (from Metadata),
// and one connection per broker, opened on first use and reopened after a failure.

import { decodeMetadataResponse, ErrorCode, encodeMetadataRequest } from "@sluice/protocol";
import { Connection as Conn, type Connection, type ConnectionOptions } from "./connection.ts";
import { ConnectionError, KafkaProtocolError } from "./errors.ts";

export interface BrokerAddress {
  readonly nodeId: number;
  readonly host: string;
  readonly port: number;
}

export interface PartitionInfo {
  readonly partition: number;
  readonly leader: number;
  readonly leaderEpoch: number;
}

const METADATA = 3;

export function parseBootstrap(servers: string | readonly string[]): { host: string; port: number }[] {
  const list = typeof servers === "string" ? servers.split(",") : servers;
  return list.map((s) => {
    const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(s.trim());
    if (!m) throw new Error(`bad bootstrap server "${s}": expected host:port`);
    return { host: m[1]!, port: Number(m[2]) };
  });
}

export class Cluster {
  private readonly bootstrap: { host: string; port: number }[];
  private readonly opts: ConnectionOptions;
  private readonly brokers = new Map<number, BrokerAddress>();
  private readonly topics = new Map<string, PartitionInfo[]>();
  private readonly connections = new Map<string, Promise<Connection>>();
  private refreshing: Promise<void> | null = null;
  private closed = false;

  constructor(bootstrap: string | readonly string[], opts: ConnectionOptions) {
    this.bootstrap = parseBootstrap(bootstrap);
    this.opts = opts;
  }

  /** A connection to host:port, shared and reopened after failures. */
  connection(host: string, port: number): Promise<Connection> {
    // Work still running when the client closes must not open connections that outlive it.
    if (this.closed) return Promise.reject(new ConnectionError("the client is closed"));
    const key = `${host}:${port}`;
    const existing = this.connections.get(key);
    if (existing) {
      return existing.then((c) => {
        if (!c.closed) return c;
        this.connections.delete(key);
        return this.connection(host, port);
      });
    }
    const p = Conn.open(host, port, this.opts);
    this.connections.set(key, p);
    p.catch(() => this.connections.delete(key));
    return p;
  }

  async connectionTo(nodeId: number): Promise<Connection> {
    const b = this.brokers.get(nodeId);
    if (!b) throw new ConnectionError(`unknown broker ${nodeId}`);
    return this.connection(b.host, b.port);
  }

  /** Any reachable broker (bootstrap or known). */
  async anyConnection(): Promise<Connection> {
    const candidates = [...this.brokers.values(), ...this.bootstrap];
    let last: unknown;
    for (const c of candidates) {
      try {
        return await this.connection(c.host, c.port);
      } catch (e) {
        last = e;
      }
    }
    throw new ConnectionError("no broker is reachable", last);
  }

  /** Refreshes metadata for `topics` (auto-creating them when the broker allows). */
  refresh(topics: readonly string[]): Promise<void> {
    this.refreshing ??= this.doRefresh(topics).finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  private async doRefresh(topics: readonly string[]): Promise<void> {
    const conn = await this.anyConnection();
    const version = conn.version(METADATA, 1, 12);
    const r = await conn.send(METADATA, version, (w) =>
      encodeMetadataRequest(w, { topics: topics.map((name) => ({ name })), allowAutoTopicCreation: true }, version),
    );
    const res = decodeMetadataResponse(r, version);
    for (const b of res.brokers) this.brokers.set(b.nodeId, { nodeId: b.nodeId, host: b.host, port: b.port });
    for (const t of res.topics) {
      if (t.name === null) continue;
      if (t.errorCode !== ErrorCode.NONE) {
        this.topics.delete(t.name);
        if (t.errorCode !== ErrorCode.LEADER_NOT_AVAILABLE && t.errorCode !== ErrorCode.UNKNOWN_TOPIC_OR_PARTITION) {
          throw new KafkaProtocolError(t.errorCode, `metadata of ${t.name}`);
        }
        continue;
      }
      this.topics.set(
        t.name,
        t.partitions
          .map((p) => ({ partition: p.partitionIndex, leader: p.leaderId, leaderEpoch: p.leaderEpoch }))
          .sort((a, b) => a.partition - b.partition),
      );
    }
  }

  partitions(topic: string): PartitionInfo[] | undefined {
    return this.topics.get(topic);
  }

  /** Partitions of `topic`, refreshing metadata (a few times, for auto-created topics) when unknown. */
  async partitionsOf(topic: string): Promise<PartitionInfo[]> {
    for (let attempt = 0; attempt < 10; attempt++) {
      const known = this.topics.get(topic);
      if (known && known.length > 0) return known;
      await this.refresh([topic]);
      if (!this.topics.get(topic)?.length) await new Promise((r) => setTimeout(r, 50 * (attempt + 1)));
    }
    throw new KafkaProtocolError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `topic ${topic}`);
  }

  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.connections.values()];
    this.connections.clear();
    for (const p of all) {
      try {
        (await p).close();
      } catch {
        // never opened
      }
    }
  }
}
