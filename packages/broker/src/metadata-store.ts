// Cluster metadata the broker keeps: the cluster id, broker registrations, and topics with their
// ids, config overrides, partition assignments (replicas) and partition state (leader, leader
// epoch, ISR). One interface, a local-file implementation for a single node (written atomically
// into the first log dir as `sluice-metadata.json`) and an in-memory one for tests; an etcd
// implementation will back clusters (same records, one key per topic / partition state).
//
// Files written before assignments, states and brokers existed load with those fields absent; the
// TopicManager fills them in (every partition on this node) and writes them back.

import { randomBytes } from "node:crypto";
import { readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";

/** Leadership of one partition, as the controller decides it. */
export interface PartitionStateRecord {
  leader: number;
  leaderEpoch: number;
  isr: number[];
}

export interface TopicRecord {
  readonly name: string;
  /** Kafka topic id: 16 bytes as URL-safe base64. */
  readonly id: string;
  partitions: number;
  configs: Record<string, string>;
  readonly internal: boolean;
  /** Replica broker ids per partition (index = partition). */
  assignments?: number[][];
  /** Leader, leader epoch and ISR per partition (index = partition). */
  states?: PartitionStateRecord[];
}

/** A broker that has announced itself, with the address clients use. */
export interface BrokerRegistration {
  nodeId: number;
  host: string;
  port: number;
  rack: string | null;
}

export interface MetadataSnapshot {
  /** Empty until the first start assigns one. */
  clusterId: string;
  topics: TopicRecord[];
  brokers?: BrokerRegistration[];
}

export interface MetadataStore {
  load(): Promise<MetadataSnapshot>;
  /** Persists the whole snapshot (small: topics and configs only). */
  save(snapshot: MetadataSnapshot): Promise<void>;
}

export function newClusterId(): string {
  return randomBytes(16).toString("base64url");
}

export class LocalMetadataStore implements MetadataStore {
  private readonly path: string;
  constructor(dir: string) {
    this.path = join(dir, "sluice-metadata.json");
  }
  async load(): Promise<MetadataSnapshot> {
    try {
      return JSON.parse(await readFile(this.path, "utf8")) as MetadataSnapshot;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
      return { clusterId: "", topics: [], brokers: [] };
    }
  }
  async save(snapshot: MetadataSnapshot): Promise<void> {
    const tmp = `${this.path}.tmp`;
    await writeFile(tmp, JSON.stringify(snapshot, null, 1));
    await rename(tmp, this.path);
  }
}

export class MemoryMetadataStore implements MetadataStore {
  private snapshot: MetadataSnapshot = { clusterId: "", topics: [], brokers: [] };
  async load(): Promise<MetadataSnapshot> {
    return structuredClone(this.snapshot);
  }
  async save(snapshot: MetadataSnapshot): Promise<void> {
    this.snapshot = structuredClone(snapshot);
  }
}
