// Cluster metadata the broker keeps: topics (with their ids, partition counts and config
// overrides) and the cluster id. One interface, a local-file implementation for a single node
// (written atomically into the first log dir as `sluice-metadata.json`) and an in-memory one for
// tests; an etcd implementation will back clusters.

import { randomBytes } from "node:crypto";
import { readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";

export interface TopicRecord {
  readonly name: string;
  /** Kafka topic id: 16 bytes as URL-safe base64. */
  readonly id: string;
  partitions: number;
  configs: Record<string, string>;
  readonly internal: boolean;
}

export interface MetadataSnapshot {
  clusterId: string;
  topics: TopicRecord[];
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
      return { clusterId: newClusterId(), topics: [] };
    }
  }
  async save(snapshot: MetadataSnapshot): Promise<void> {
    const tmp = `${this.path}.tmp`;
    await writeFile(tmp, JSON.stringify(snapshot, null, 1));
    await rename(tmp, this.path);
  }
}

export class MemoryMetadataStore implements MetadataStore {
  private snapshot: MetadataSnapshot = { clusterId: newClusterId(), topics: [] };
  async load(): Promise<MetadataSnapshot> {
    return structuredClone(this.snapshot);
  }
  async save(snapshot: MetadataSnapshot): Promise<void> {
    this.snapshot = structuredClone(snapshot);
  }
}
