// Topics and partitions hosted by this broker: their logs, leader epochs and producer state.
// On a single node this broker leads every partition (leader epoch 0, ISR = [this node]); the
// state is shaped for replication (leader epoch, high watermark, log start offset per partition).

import { randomBytes } from "node:crypto";
import type { AppendInfo, LogConfig, LogManager, PartitionLog } from "@sluice/storage";
import type { BrokerConfig } from "./config.ts";
import { TOPIC_CONFIGS, toSafeNumber, validateValue } from "./config.ts";
import {
  type BrokerRegistration,
  type MetadataSnapshot,
  type MetadataStore,
  newClusterId,
  type TopicRecord,
} from "./metadata-store.ts";
import { ProducerStateManager } from "./txn/producer-state.ts";
import { rebuildProducerState } from "./txn/producer-state-recovery.ts";

export interface PartitionState {
  readonly topic: string;
  readonly partition: number;
  readonly log: PartitionLog;
  leaderEpoch: number;
  readonly producers: ProducerStateManager;
}

export interface TopicState {
  readonly record: TopicRecord;
  readonly partitions: PartitionState[];
}

interface AppendChain {
  tail: Promise<unknown>;
  /** Steps queued or running. */
  pending: number;
}

const chains = new WeakMap<PartitionState, AppendChain>();

/**
 * Runs appends to one partition one at a time, so that a check made before an append (producer
 * sequence numbers, transaction state) still holds when the append happens.
 */
export function serialAppend<T>(p: PartitionState, fn: () => Promise<T>): Promise<T> {
  let chain = chains.get(p);
  if (!chain) {
    chain = { tail: Promise.resolve(), pending: 0 };
    chains.set(p, chain);
  }
  const c = chain;
  c.pending++;
  const next = c.tail.then(fn, fn);
  const settled = (): void => {
    c.pending--;
  };
  c.tail = next.then(settled, settled);
  return next;
}

/**
 * True when no serialAppend step is queued or running for the partition, so an append handed to
 * the log now lands after every earlier one (appends that need no check may skip the chain then).
 */
export function appendChainIdle(p: PartitionState): boolean {
  return (chains.get(p)?.pending ?? 0) === 0;
}

const LEGAL_TOPIC = /^[a-zA-Z0-9._-]+$/;
export const TOPIC_NAME_MAX = 249;

export function topicNameError(name: string): string | null {
  if (name.length === 0) return "topic name is empty";
  if (name === "." || name === "..") return "topic name cannot be '.' or '..'";
  if (name.length > TOPIC_NAME_MAX) return `topic name is longer than ${TOPIC_NAME_MAX} characters`;
  if (!LEGAL_TOPIC.test(name)) return "topic name may contain only ASCII letters, digits, '.', '_' and '-'";
  return null;
}

export function validateTopicConfigs(configs: Record<string, string>): { key: string; message: string } | null {
  for (const [k, v] of Object.entries(configs)) {
    const def = TOPIC_CONFIGS.get(k);
    if (!def) return { key: k, message: `unknown topic config ${k}` };
    const err = validateValue(def, v);
    if (err) return { key: k, message: `${k}=${v} ${err}` };
  }
  return null;
}

export class TopicManager {
  private readonly topics = new Map<string, TopicState>();
  private readonly byId = new Map<string, TopicState>();
  private readonly creating = new Map<string, Promise<TopicState>>();
  private readonly deleting = new Map<string, Promise<void>>();
  private snapshot: MetadataSnapshot = { clusterId: "", topics: [] };
  private readonly config: BrokerConfig;
  private readonly logs: LogManager;
  private readonly store: MetadataStore;
  private saving: Promise<void> = Promise.resolve();

  constructor(config: BrokerConfig, logs: LogManager, store: MetadataStore) {
    this.config = config;
    this.logs = logs;
    this.store = store;
  }

  get clusterId(): string {
    return this.snapshot.clusterId;
  }

  private get nodeId(): number {
    return this.config.int("node.id");
  }

  /**
   * Loads the metadata and opens every topic's logs. A configured `cluster.id` must match the one
   * the data dir already belongs to (Kafka refuses to start otherwise, so that a broker never
   * mixes two clusters' data).
   */
  async load(): Promise<void> {
    this.snapshot = await this.store.load();
    const configured = this.config.lookup("cluster.id");
    if (this.snapshot.clusterId === "") this.snapshot.clusterId = configured ?? newClusterId();
    else if (configured !== null && configured !== this.snapshot.clusterId) {
      throw new Error(
        `cluster.id ${configured} does not match ${this.snapshot.clusterId}, the cluster of the data in ${this.logs.logDirs.join(", ")}`,
      );
    }
    this.snapshot.brokers ??= [];
    for (const t of this.snapshot.topics) {
      this.fillPlacement(t);
      await this.openTopic(t);
    }
    await this.persist();
  }

  /** Single node: every partition's only replica, leader and ISR is this broker. */
  private fillPlacement(t: TopicRecord): void {
    const assignments = t.assignments ?? [];
    const states = t.states ?? [];
    for (let p = 0; p < t.partitions; p++) {
      assignments[p] ??= [this.nodeId];
      states[p] ??= { leader: this.nodeId, leaderEpoch: 0, isr: [this.nodeId] };
    }
    t.assignments = assignments;
    t.states = states;
  }

  /** Records this broker's registration (its advertised address). */
  async registerBroker(reg: BrokerRegistration): Promise<void> {
    const brokers = (this.snapshot.brokers ?? []).filter((b) => b.nodeId !== reg.nodeId);
    brokers.push(reg);
    this.snapshot.brokers = brokers.sort((a, b) => a.nodeId - b.nodeId);
    await this.persist();
  }

  get brokers(): readonly BrokerRegistration[] {
    return this.snapshot.brokers ?? [];
  }

  private persist(): Promise<void> {
    this.saving = this.saving.then(() => this.store.save(this.snapshot));
    return this.saving;
  }

  /** Effective log config of a topic: topic overrides over broker defaults. */
  logConfig(configs: Record<string, string>): LogConfig {
    const value = (topicName: string): string => {
      const def = TOPIC_CONFIGS.get(topicName)!;
      return configs[topicName] ?? this.config.get(def.name);
    };
    return {
      "segment.bytes": Number(value("segment.bytes")),
      "segment.ms": toSafeNumber(value("segment.ms")),
      "segment.index.bytes": Number(value("segment.index.bytes")),
      "index.interval.bytes": Number(value("index.interval.bytes")),
      "retention.ms": toSafeNumber(value("retention.ms")),
      "retention.bytes": toSafeNumber(value("retention.bytes")),
      "cleanup.policy": value("cleanup.policy"),
      "delete.retention.ms": toSafeNumber(value("delete.retention.ms")),
      "min.compaction.lag.ms": toSafeNumber(value("min.compaction.lag.ms")),
      "flush.messages": toSafeNumber(value("flush.messages")),
      "flush.ms": toSafeNumber(value("flush.ms")),
      "message.timestamp.type": value("message.timestamp.type") === "LogAppendTime" ? "LogAppendTime" : "CreateTime",
      "max.message.bytes": Number(value("max.message.bytes")),
      "fsync.before.ack": value("sluice.fsync.before.ack") === "true",
    };
  }

  private async openTopic(t: TopicRecord): Promise<TopicState> {
    const partitions: PartitionState[] = [];
    const state: TopicState = { record: t, partitions };
    for (let p = 0; p < t.partitions; p++) partitions.push(await this.openPartition(t, p));
    this.topics.set(t.name, state);
    this.byId.set(t.id, state);
    return state;
  }

  private async openPartition(t: TopicRecord, p: number): Promise<PartitionState> {
    const log = await this.logs.getOrCreateLog(t.name, p, this.logConfig(t.configs));
    // Single node: everything written is committed, so the high watermark is the log end.
    await log.updateHighWatermark(log.logEndOffset);
    const producers = new ProducerStateManager();
    await rebuildProducerState(log, producers);
    return {
      topic: t.name,
      partition: p,
      log,
      leaderEpoch: log.leaderEpochCache.latestEpoch() < 0 ? 0 : log.leaderEpochCache.latestEpoch(),
      producers,
    };
  }

  /**
   * Appends record batches to a partition as its leader (offsets and leader epoch assigned) and
   * advances the high watermark, which wakes consumers' long polls. For the coordinators' internal
   * topics; client produce goes through the Produce handler's checks. Read back with `p.log.read`.
   */
  appendAsLeader(p: PartitionState, records: Uint8Array): Promise<AppendInfo> {
    return serialAppend(p, async () => {
      const info = await p.log.appendAsLeader(records, p.leaderEpoch);
      await p.log.updateHighWatermark(p.log.logEndOffset);
      return info;
    });
  }

  get(name: string): TopicState | undefined {
    return this.topics.get(name);
  }

  getById(id: string): TopicState | undefined {
    return this.byId.get(id);
  }

  list(): TopicState[] {
    return [...this.topics.values()];
  }

  partition(topic: string, p: number): PartitionState | undefined {
    return this.topics.get(topic)?.partitions[p];
  }

  /**
   * Creates a topic, or returns it if it exists or is being created (concurrent auto-creation of
   * one name yields one topic).
   */
  create(name: string, partitions: number, configs: Record<string, string>, internal = false): Promise<TopicState> {
    const existing = this.topics.get(name);
    if (existing) return Promise.resolve(existing);
    const pending = this.creating.get(name);
    if (pending) return pending;
    const created = (async () => {
      await this.deleting.get(name)?.catch(() => {});
      const record: TopicRecord = { name, id: randomBytes(16).toString("base64url"), partitions, configs, internal };
      this.fillPlacement(record);
      const state = await this.openTopic(record);
      this.snapshot.topics.push(record);
      await this.persist();
      return state;
    })().finally(() => this.creating.delete(name));
    this.creating.set(name, created);
    return created;
  }

  /** True while a topic of this name exists or is being created. */
  exists(name: string): boolean {
    return this.topics.has(name) || this.creating.has(name);
  }

  /** Deletes a topic and its logs; a creation of the same name waits until the old logs are gone. */
  delete(name: string): Promise<void> {
    const t = this.topics.get(name);
    if (!t) return Promise.resolve();
    this.topics.delete(name);
    this.byId.delete(t.record.id);
    this.snapshot.topics = this.snapshot.topics.filter((x) => x.name !== name);
    const deleted = (async () => {
      await this.persist();
      for (const p of t.partitions) await this.logs.deleteLog(name, p.partition);
    })().finally(() => this.deleting.delete(name));
    this.deleting.set(name, deleted);
    return deleted;
  }

  async addPartitions(name: string, count: number): Promise<void> {
    const t = this.topics.get(name);
    if (!t) throw new Error(`no topic ${name}`);
    for (let p = t.partitions.length; p < count; p++) t.partitions.push(await this.openPartition(t.record, p));
    t.record.partitions = count;
    this.fillPlacement(t.record);
    await this.persist();
  }

  async setConfigs(name: string, configs: Record<string, string>): Promise<void> {
    const t = this.topics.get(name);
    if (!t) throw new Error(`no topic ${name}`);
    t.record.configs = configs;
    const lc = this.logConfig(configs);
    for (const p of t.partitions) p.log.config = lc;
    await this.persist();
  }

  /** Writes producer state snapshots (at clean shutdown), so restarts need not rescan logs. */
  async snapshotProducers(): Promise<void> {
    for (const t of this.topics.values()) {
      for (const p of t.partitions) {
        if (p.producers.size > 0) await p.log.writeProducerSnapshot(p.log.logEndOffset, p.producers.toSnapshot());
      }
    }
  }
}
