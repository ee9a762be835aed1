// The consumer.
//
// Fetching: one Fetch in flight per leader, for the assigned, unpaused partitions whose buffer
// holds less than maxPartitionFetchBytes (so the next chunk is prefetched while the current one is
// consumed, and a partition never buffers much more than two responses' worth); nothing is
// fetched while the whole buffer holds fetchMaxBytes or more. The broker long-polls each fetch
// (fetchMinBytes, fetchMaxWaitMs). Positions: `position` is the next offset poll() returns (what
// commits store), `fetchOffset` the next offset to fetch; seek() moves both and drops buffered
// records, and a fetch answered after a seek is discarded (per-partition epoch).
//
// Records: under read_committed (the default) aborted transactions are skipped using the
// response's AbortedTransactions list (Kafka's algorithm: a producer's batches are aborted from
// its listed first offset until its ABORT marker); control records are never returned.
//
// API: poll() returns at most maxPollRecords records; `for await (const r of consumer)`; and
// kafkajs-style run({ eachMessage | eachBatch }). Groups: subscribe() joins the group (groupId)
// through GroupMember; auto-commit commits positions every autoCommitIntervalMs from poll(),
// before partitions are revoked, and on close().

import {
  ApiKey,
  decodeFetchResponse,
  decodeListOffsetsResponse,
  ErrorCode,
  encodeFetchRequest,
  encodeListOffsetsRequest,
} from "@sluice/protocol";
import { isControlBatch, isTransactional, lastOffsetOf } from "@sluice/protocol/records/batch-header.ts";
import { decodeRecords, parseControlRecord, type RecordHeader } from "@sluice/protocol/records/record-batch.ts";
import type { AssignorName, TopicPartition } from "./assignors.ts";
import { backoffMs, sleep } from "./backoff.ts";
import { Cluster } from "./cluster.ts";
import { ClosedError, ConfigError, KafkaError, KafkaProtocolError } from "./errors.ts";
import { GroupMember, type OffsetAndMetadata } from "./group.ts";
import { CONSUMER_OPTIONS, resolveOptions } from "./options.ts";
import type { ConsumerGroupMetadata } from "./producer.ts";

export type { TopicPartition } from "./assignors.ts";

/** Called from poll() around rebalances (Java's ConsumerRebalanceListener). */
export interface RebalanceListener {
  /** Before partitions are taken away (offsets are committed first when auto-commit is on). */
  onPartitionsRevoked?(partitions: TopicPartition[]): void | Promise<void>;
  /** After partitions were given to this member, before records of them are returned. */
  onPartitionsAssigned?(partitions: TopicPartition[]): void | Promise<void>;
  /** Partitions another member may own already (session or poll timeout): no commit possible. */
  onPartitionsLost?(partitions: TopicPartition[]): void | Promise<void>;
}

export interface ConsumerOptions {
  /** bootstrap.servers. Required. */
  bootstrapServers: string | readonly string[];
  /** client.id (default "sluice"). */
  clientId?: string;
  /** request.timeout.ms (default 30000). */
  requestTimeoutMs?: number;
  /** retry.backoff.ms (default 100). */
  retryBackoffMs?: number;
  /** retry.backoff.max.ms (default 1000). */
  retryBackoffMaxMs?: number;
  /** reconnect.backoff.ms (default 50). */
  reconnectBackoffMs?: number;
  /** reconnect.backoff.max.ms (default 1000). */
  reconnectBackoffMaxMs?: number;
  /** socket.connection.setup.timeout.ms (default 10000). */
  socketConnectionSetupTimeoutMs?: number;
  /** metadata.max.age.ms (default 300000). */
  metadataMaxAgeMs?: number;
  /** group.id (default none): needed for subscribe() and commits. */
  groupId?: string;
  /** group.instance.id (default none): static membership; a restart within sessionTimeoutMs keeps the partitions. */
  groupInstanceId?: string;
  /** session.timeout.ms (default 45000): a member without heartbeats this long is removed. */
  sessionTimeoutMs?: number;
  /** heartbeat.interval.ms (default 3000): heartbeats run on their own timer. */
  heartbeatIntervalMs?: number;
  /** max.poll.interval.ms (default 300000): a member that does not poll this often leaves the group. */
  maxPollIntervalMs?: number;
  /** max.poll.records (default 500): most records one poll() returns. */
  maxPollRecords?: number;
  /** enable.auto.commit (default true). */
  enableAutoCommit?: boolean;
  /** auto.commit.interval.ms (default 5000). */
  autoCommitIntervalMs?: number;
  /** auto.offset.reset (default "latest"): where to start without a committed offset. */
  autoOffsetReset?: "earliest" | "latest" | "none";
  /** fetch.min.bytes (default 1): the broker waits for this much data (up to fetchMaxWaitMs). */
  fetchMinBytes?: number;
  /** fetch.max.bytes (default 52428800): most data per Fetch response, and the fetch buffer's bound. */
  fetchMaxBytes?: number;
  /** max.partition.fetch.bytes (default 1048576): most data per partition per Fetch. */
  maxPartitionFetchBytes?: number;
  /** fetch.max.wait.ms (default 500): how long the broker holds a Fetch for fetchMinBytes. */
  fetchMaxWaitMs?: number;
  /** isolation.level (default "read_committed", as kafkajs and librdkafka; Java: read_uncommitted). */
  isolationLevel?: "read_committed" | "read_uncommitted";
  /** partition.assignment.strategy (default ["range", "cooperative-sticky"], Java's). */
  partitionAssignmentStrategy?: readonly AssignorName[];
  /** allow.auto.create.topics (default true). */
  allowAutoCreateTopics?: boolean;
  /** check.crcs (default true): verify each batch's CRC32C. */
  checkCrcs?: boolean;
  /** Rebalance callbacks. */
  rebalanceListener?: RebalanceListener;
  /** Where warnings go (default: process.emitWarning). */
  logger?: (level: "warn" | "error", message: string) => void;
}

export interface ConsumerRecord {
  topic: string;
  partition: number;
  offset: bigint;
  timestamp: bigint;
  key: Uint8Array | null;
  value: Uint8Array | null;
  headers: RecordHeader[];
  /** Leader epoch of the batch (for commits), -1 when unknown. */
  leaderEpoch: number;
}

export interface EachMessagePayload {
  topic: string;
  partition: number;
  message: ConsumerRecord;
  /** Sends a heartbeat now (they also run on their own timer). */
  heartbeat(): Promise<void>;
  pause(): void;
}

export interface EachBatchPayload {
  topic: string;
  partition: number;
  records: ConsumerRecord[];
  highWatermark: bigint;
  /** Marks records up to and including `offset` as processed (committed by auto-commit or commit()). */
  resolveOffset(offset: bigint): void;
  heartbeat(): Promise<void>;
  isRunning(): boolean;
}

export interface RunOptions {
  eachMessage?: (payload: EachMessagePayload) => Promise<void> | void;
  eachBatch?: (payload: EachBatchPayload) => Promise<void> | void;
  /** Partitions handled at the same time (kafkajs' partitionsConsumedConcurrently, default 1). */
  partitionsConsumedConcurrently?: number;
  /** A handler error: the partition is re-read from the failed record after retryBackoffMs. */
  onError?: (error: unknown, topicPartition: TopicPartition) => void;
}

interface ResolvedConsumerOptions {
  bootstrapServers: string | readonly string[];
  clientId: string;
  requestTimeoutMs: number;
  retryBackoffMs: number;
  retryBackoffMaxMs: number;
  reconnectBackoffMs: number;
  reconnectBackoffMaxMs: number;
  socketConnectionSetupTimeoutMs: number;
  metadataMaxAgeMs: number;
  groupId?: string;
  groupInstanceId?: string;
  sessionTimeoutMs: number;
  heartbeatIntervalMs: number;
  maxPollIntervalMs: number;
  maxPollRecords: number;
  enableAutoCommit: boolean;
  autoCommitIntervalMs: number;
  autoOffsetReset: "earliest" | "latest" | "none";
  fetchMinBytes: number;
  fetchMaxBytes: number;
  maxPartitionFetchBytes: number;
  fetchMaxWaitMs: number;
  isolationLevel: "read_committed" | "read_uncommitted";
  partitionAssignmentStrategy: readonly AssignorName[];
  allowAutoCreateTopics: boolean;
  checkCrcs: boolean;
  rebalanceListener?: RebalanceListener;
  logger?: (level: "warn" | "error", message: string) => void;
}

interface PartitionState {
  readonly topic: string;
  readonly partition: number;
  /** Next offset poll() returns; null until known (committed offset or reset). */
  position: bigint | null;
  /** Next offset to fetch. */
  fetchOffset: bigint | null;
  /** Where to go when the position is unknown: the reset policy, or an explicit seekToBeginning/End. */
  reset: "earliest" | "latest" | "none" | null;
  resetting: boolean;
  paused: boolean;
  /** Bumped by seek and reassignment: fetches answered for an older epoch are dropped. */
  epoch: number;
  records: ConsumerRecord[];
  readIndex: number;
  bufferedBytes: number;
  highWatermark: bigint;
  lastStableOffset: bigint;
  logStartOffset: bigint;
  leaderEpoch: number;
}

const FETCH_VERSIONS: [number, number] = [4, 12];
const LIST_OFFSETS_VERSIONS: [number, number] = [1, 7];
const tpKey = (topic: string, partition: number): string => `${topic}\u0000${partition}`;

export class Consumer implements AsyncIterable<ConsumerRecord> {
  private readonly o: ResolvedConsumerOptions;
  private readonly cluster: Cluster;
  private readonly assigned = new Map<string, PartitionState>();
  private group: GroupMember | null = null;
  private subscription: string[] = [];
  private subscribed = false;
  private readonly fetchingNodes = new Set<number>();
  private fetcherScheduled = false;
  private fetchBackoffUntilMs = 0;
  private fetchFailures = 0;
  private pendingError: Error | null = null;
  private waiters: (() => void)[] = [];
  private lastPollMs = Date.now();
  private lastAutoCommitMs = Date.now();
  private rotation = 0;
  private closed = false;
  private running = false;
  private runLoop: Promise<void> | null = null;
  private autoCommitting: Promise<void> | null = null;

  constructor(options: ConsumerOptions) {
    this.o = resolveOptions<ResolvedConsumerOptions>("consumer", CONSUMER_OPTIONS, options, [
      "rebalanceListener",
      "logger",
    ]);
    if (this.o.partitionAssignmentStrategy.length === 0) throw new ConfigError("partitionAssignmentStrategy is empty");
    if (this.o.maxPollRecords < 1) throw new ConfigError("maxPollRecords must be at least 1");
    this.cluster = new Cluster(this.o);
  }

  // ---- assignment -------------------------------------------------------------------------

  /**
   * Joins the consumer group (groupId) for `topics`; the group assigns partitions. kafkajs'
   * `{ topics, fromBeginning }` form is accepted too (fromBeginning: autoOffsetReset "earliest").
   */
  async subscribe(topics: readonly string[] | { topics: readonly string[]; fromBeginning?: boolean }): Promise<void> {
    if (this.closed) throw new ClosedError("consumer");
    const list = Array.isArray(topics)
      ? (topics as readonly string[])
      : (topics as { topics: readonly string[] }).topics;
    if (!Array.isArray(topics) && (topics as { fromBeginning?: boolean }).fromBeginning)
      this.o.autoOffsetReset = "earliest";
    if (this.o.groupId === undefined) throw new ConfigError("subscribe() needs groupId (group.id)");
    if (!this.subscribed && this.assigned.size > 0)
      throw new KafkaError("ILLEGAL_STATE", "subscribe() and assign() cannot be mixed: unassign first");
    this.subscription = [...new Set([...(this.subscribed ? this.subscription : []), ...list])];
    this.subscribed = true;
    await this.cluster.refresh(this.subscription).catch(() => {});
    this.groupMember().requestRejoin();
  }

  /** Leaves the group and drops the assignment. */
  async unsubscribe(): Promise<void> {
    if (!this.subscribed) return;
    this.subscribed = false;
    this.subscription = [];
    if (this.group) {
      await this.revokeForGroup(this.assignment(), false);
      await this.group.leave("the consumer unsubscribed");
    }
  }

  private groupMember(): GroupMember {
    this.group ??= new GroupMember(
      this.cluster,
      {
        groupId: this.o.groupId!,
        groupInstanceId: this.o.groupInstanceId ?? null,
        sessionTimeoutMs: this.o.sessionTimeoutMs,
        maxPollIntervalMs: this.o.maxPollIntervalMs,
        heartbeatIntervalMs: this.o.heartbeatIntervalMs,
        assignors: this.o.partitionAssignmentStrategy,
        retryBackoffMs: this.o.retryBackoffMs,
        retryBackoffMaxMs: this.o.retryBackoffMaxMs,
        requireStable: this.o.isolationLevel === "read_committed",
      },
      {
        subscription: () => this.subscription,
        revoke: (parts, lost) => this.revokeForGroup(parts, lost),
        assigned: (parts) => this.assignForGroup(parts),
        partitionCounts: async (topics) => {
          await this.cluster.refresh(topics).catch(() => {});
          const counts = new Map<string, number>();
          for (const t of topics) {
            const n = this.cluster.partitions(t)?.length;
            if (n !== undefined) counts.set(t, n);
          }
          return counts;
        },
        lastPollMs: () => this.lastPollMs,
        wake: () => this.wake(),
        warn: (m) => this.warn(m),
      },
    );
    return this.group;
  }

  private async revokeForGroup(parts: TopicPartition[], lost: boolean): Promise<void> {
    if (parts.length === 0) return;
    if (!lost && this.o.enableAutoCommit) {
      await this.commitPositions(parts).catch((e: unknown) =>
        this.warn(`commit before revoking partitions failed: ${(e as Error).message}`),
      );
    }
    const l = this.o.rebalanceListener;
    try {
      // As in Java, a listener without onPartitionsLost hears about lost partitions as revoked.
      if (lost && l?.onPartitionsLost) await l.onPartitionsLost(parts);
      else await l?.onPartitionsRevoked?.(parts);
    } finally {
      for (const p of parts) this.assigned.delete(tpKey(p.topic, p.partition));
    }
  }

  private async assignForGroup(parts: TopicPartition[]): Promise<void> {
    const committed = await this.group!.committed(parts);
    for (const p of parts) {
      const c = committed.get(tpKey(p.topic, p.partition)) ?? null;
      this.addPartition(p.topic, p.partition, c?.offset ?? null);
    }
    await this.o.rebalanceListener?.onPartitionsAssigned?.(parts);
    this.kick();
  }

  private addPartition(topic: string, partition: number, offset: bigint | null): void {
    const k = tpKey(topic, partition);
    const old = this.assigned.get(k);
    this.assigned.set(k, {
      topic,
      partition,
      position: offset,
      fetchOffset: offset,
      reset: offset === null ? this.o.autoOffsetReset : null,
      resetting: false,
      paused: false,
      epoch: (old?.epoch ?? 0) + 1,
      records: [],
      readIndex: 0,
      bufferedBytes: 0,
      highWatermark: -1n,
      lastStableOffset: -1n,
      logStartOffset: -1n,
      leaderEpoch: -1,
    });
  }

  /** Replaces the assignment (no group). An offset starts there; otherwise the committed offset (with groupId) or autoOffsetReset. */
  assign(partitions: readonly { topic: string; partition: number; offset?: bigint }[]): void {
    if (this.closed) throw new ClosedError("consumer");
    if (this.subscribed) throw new KafkaError("ILLEGAL_STATE", "assign() and subscribe() cannot be mixed");
    this.assigned.clear();
    for (const p of partitions) this.addPartition(p.topic, p.partition, p.offset ?? null);
    const withoutOffset = partitions.filter((p) => p.offset === undefined);
    if (this.o.groupId !== undefined && withoutOffset.length > 0) {
      // Manual assignment with a group id starts from the group's committed offsets when there are some.
      for (const p of withoutOffset) {
        const st = this.assigned.get(tpKey(p.topic, p.partition));
        if (st) st.resetting = true;
      }
      void this.groupMember()
        .committed(withoutOffset)
        .then(
          (committed) => {
            for (const p of withoutOffset) {
              const st = this.assigned.get(tpKey(p.topic, p.partition));
              if (!st || st.position !== null) continue;
              const c = committed.get(tpKey(p.topic, p.partition));
              st.resetting = false;
              if (c) {
                st.position = c.offset;
                st.fetchOffset = c.offset;
                st.reset = null;
              }
            }
          },
          (e: unknown) => {
            for (const st of this.assigned.values()) st.resetting = false;
            this.warn(`fetching committed offsets failed: ${(e as Error).message}`);
          },
        )
        .finally(() => this.kick());
    }
    this.kick();
  }

  assignment(): TopicPartition[] {
    return [...this.assigned.values()].map((a) => ({ topic: a.topic, partition: a.partition }));
  }

  /** The next offset poll() returns for a partition (null while unknown). */
  position(topic: string, partition: number): bigint | null {
    return this.assigned.get(tpKey(topic, partition))?.position ?? null;
  }

  /** The last high watermark seen for a partition (-1n before the first fetch). */
  highWatermark(topic: string, partition: number): bigint {
    return this.assigned.get(tpKey(topic, partition))?.highWatermark ?? -1n;
  }

  private state(topic: string, partition: number): PartitionState {
    const st = this.assigned.get(tpKey(topic, partition));
    if (!st) throw new KafkaError("ILLEGAL_STATE", `${topic}-${partition} is not assigned to this consumer`);
    return st;
  }

  private clearBuffer(st: PartitionState): void {
    st.records = [];
    st.readIndex = 0;
    st.bufferedBytes = 0;
    st.epoch++;
  }

  /** The next poll() returns records of this partition from `offset` on. */
  seek(topic: string, partition: number, offset: bigint): void;
  seek(tp: { topic: string; partition: number; offset: bigint | string }): void;
  seek(
    a: string | { topic: string; partition: number; offset: bigint | string },
    partition?: number,
    offset?: bigint,
  ): void {
    const [t, p, o] = typeof a === "string" ? [a, partition!, offset!] : [a.topic, a.partition, BigInt(a.offset)];
    const st = this.state(t, p);
    this.clearBuffer(st);
    st.position = o;
    st.fetchOffset = o;
    st.reset = null;
    st.resetting = false;
    this.kick();
  }

  seekToBeginning(partitions: readonly TopicPartition[] = this.assignment()): void {
    this.seekReset(partitions, "earliest");
  }

  seekToEnd(partitions: readonly TopicPartition[] = this.assignment()): void {
    this.seekReset(partitions, "latest");
  }

  private seekReset(partitions: readonly TopicPartition[], to: "earliest" | "latest"): void {
    for (const tp of partitions) {
      const st = this.state(tp.topic, tp.partition);
      this.clearBuffer(st);
      st.position = null;
      st.fetchOffset = null;
      st.reset = to;
      st.resetting = false;
    }
    this.kick();
  }

  /** Stops returning and fetching records of these partitions until resume(). */
  pause(partitions: readonly TopicPartition[]): void {
    for (const p of partitions) {
      const st = this.assigned.get(tpKey(p.topic, p.partition));
      if (st) st.paused = true;
    }
  }

  resume(partitions: readonly TopicPartition[]): void {
    for (const p of partitions) {
      const st = this.assigned.get(tpKey(p.topic, p.partition));
      if (st) st.paused = false;
    }
    this.kick();
  }

  paused(): TopicPartition[] {
    return [...this.assigned.values()].filter((s) => s.paused).map((s) => ({ topic: s.topic, partition: s.partition }));
  }

  /** The group's identity, for Producer.sendOffsetsToTransaction (exactly-once pipelines). */
  groupMetadata(): ConsumerGroupMetadata {
    if (this.o.groupId === undefined) throw new ConfigError("groupMetadata() needs groupId (group.id)");
    const g = this.group;
    return {
      groupId: this.o.groupId,
      generationId: g?.generationId ?? -1,
      memberId: g?.memberId ?? "",
      groupInstanceId: this.o.groupInstanceId ?? null,
    };
  }

  // ---- polling ----------------------------------------------------------------------------

  /** Up to maxPollRecords records; waits up to `timeoutMs` when none is ready. */
  async poll(timeoutMs = 1000): Promise<ConsumerRecord[]> {
    if (this.closed) throw new ClosedError("consumer");
    this.lastPollMs = Date.now();
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.subscribed && this.group?.rebalanceNeeded) {
        // The join runs on while poll() returns at its deadline: JoinGroup completes only when
        // every member rejoined, and those members may be polled by this same thread.
        const join = this.group.ensureActive().catch((e: unknown) => {
          this.pendingError ??= e as Error;
        });
        await Promise.race([join, sleep(Math.max(0, deadline - Date.now()))]);
      }
      this.maybeAutoCommit();
      if (this.pendingError) {
        const e = this.pendingError;
        this.pendingError = null;
        throw e;
      }
      const out = this.take(this.o.maxPollRecords);
      this.kick();
      this.lastPollMs = Date.now();
      if (out.length > 0 || Date.now() >= deadline || this.closed) return out;
      await this.waitForData(deadline - Date.now());
      this.lastPollMs = Date.now();
    }
  }

  private waitForData(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      this.waiters.push(done);
    });
  }

  /** Takes buffered records, rotating over partitions for fairness, and advances positions. */
  private take(max: number): ConsumerRecord[] {
    const out: ConsumerRecord[] = [];
    const states = [...this.assigned.values()];
    if (states.length === 0) return out;
    this.rotation = (this.rotation + 1) % states.length;
    for (let i = 0; i < states.length && out.length < max; i++) {
      const st = states[(this.rotation + i) % states.length]!;
      if (st.paused || st.position === null) continue;
      while (st.readIndex < st.records.length && out.length < max) {
        const r = st.records[st.readIndex++]!;
        if (r.offset < st.position) continue;
        out.push(r);
        st.position = r.offset + 1n;
        st.bufferedBytes -= (r.key?.length ?? 0) + (r.value?.length ?? 0) + 16;
      }
      if (st.readIndex >= st.records.length) {
        st.records = [];
        st.readIndex = 0;
        st.bufferedBytes = 0;
        // Offsets past the last record (control records, aborted data) are consumed too.
        if (st.fetchOffset !== null && st.position < st.fetchOffset) st.position = st.fetchOffset;
      }
    }
    return out;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<ConsumerRecord, void, undefined> {
    while (!this.closed) {
      const records = await this.poll(1000);
      let i = 0;
      try {
        for (; i < records.length; i++) yield records[i]!;
      } finally {
        // The loop stopped early (break): the records not yet seen are returned by later polls.
        if (i < records.length - 1 && !this.closed) this.rewind(records.slice(i + 1));
      }
    }
  }

  /** Moves partitions back to the first of `unseen` records so that they are returned again. */
  private rewind(unseen: ConsumerRecord[]): void {
    const first = new Map<string, ConsumerRecord>();
    for (const r of unseen) {
      const k = tpKey(r.topic, r.partition);
      if (!first.has(k)) first.set(k, r);
    }
    for (const [k, r] of first) if (this.assigned.has(k)) this.seek(r.topic, r.partition, r.offset);
  }

  /**
   * kafkajs style: polls in the background and calls eachMessage (or eachBatch) for each record
   * (batch), partitions in parallel up to partitionsConsumedConcurrently. Resolves once running;
   * stop() or close() ends it. A record is processed (and its offset committable) once its handler
   * resolved; a handler that throws makes its partition start again at the failed record.
   */
  async run(opts: RunOptions): Promise<void> {
    if (!opts.eachMessage && !opts.eachBatch) throw new ConfigError("run() needs eachMessage or eachBatch");
    if (this.running) throw new KafkaError("ILLEGAL_STATE", "run() is already running");
    this.running = true;
    this.runLoop = this.loop(opts).finally(() => {
      this.running = false;
    });
  }

  /** Stops run() after the records being handled. */
  async stop(): Promise<void> {
    this.running = false;
    this.wake();
    await this.runLoop?.catch(() => {});
    this.runLoop = null;
  }

  private async loop(opts: RunOptions): Promise<void> {
    const concurrency = Math.max(1, opts.partitionsConsumedConcurrently ?? 1);
    while (this.running && !this.closed) {
      let records: ConsumerRecord[];
      try {
        records = await this.poll(Math.min(1000, this.o.maxPollIntervalMs));
      } catch (e) {
        if (this.closed) return;
        opts.onError?.(e, { topic: "", partition: -1 });
        if (!opts.onError) this.warn(`poll failed in run(): ${(e as Error).message}`);
        await sleep(this.o.retryBackoffMs);
        continue;
      }
      const byPartition = new Map<string, ConsumerRecord[]>();
      for (const r of records) {
        const k = tpKey(r.topic, r.partition);
        const list = byPartition.get(k);
        if (list) list.push(r);
        else byPartition.set(k, [r]);
      }
      const groups = [...byPartition.values()];
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < groups.length && this.running) await this.handle(groups[next++]!, opts);
      };
      await Promise.all(Array.from({ length: Math.min(concurrency, groups.length) }, worker));
    }
  }

  private async handle(records: ConsumerRecord[], opts: RunOptions): Promise<void> {
    const first = records[0]!;
    const { topic, partition } = first;
    let processed = first.offset;
    let resolved = first.offset - 1n;
    const heartbeat = async (): Promise<void> => {
      this.lastPollMs = Date.now();
    };
    try {
      if (opts.eachBatch) {
        await opts.eachBatch({
          topic,
          partition,
          records,
          highWatermark: this.highWatermark(topic, partition),
          resolveOffset: (o) => {
            resolved = o;
          },
          heartbeat,
          isRunning: () => this.running,
        });
        return;
      }
      for (const message of records) {
        if (!this.running) {
          this.rewind([message]);
          return;
        }
        processed = message.offset;
        await opts.eachMessage!({
          topic,
          partition,
          message,
          heartbeat,
          pause: () => this.pause([{ topic, partition }]),
        });
      }
    } catch (e) {
      if (opts.eachBatch) processed = resolved + 1n;
      if (opts.onError) opts.onError(e, { topic, partition });
      else this.warn(`handler failed for ${topic}-${partition} at offset ${processed}: ${(e as Error).message}`);
      if (this.assigned.has(tpKey(topic, partition))) this.seek(topic, partition, processed);
      await sleep(this.o.retryBackoffMs);
    }
  }

  // ---- commits ----------------------------------------------------------------------------

  /**
   * Commits offsets: the given ones, or the position (next offset to return) of every assigned
   * partition. In a group the commit carries the generation: after a rebalance it fails.
   */
  async commit(offsets?: readonly OffsetAndMetadata[]): Promise<void> {
    if (this.o.groupId === undefined) throw new ConfigError("commit() needs groupId (group.id)");
    if (offsets) {
      await this.groupMember().commit(offsets, this.subscribed);
      return;
    }
    await this.commitPositions(this.assignment());
  }

  private async commitPositions(parts: readonly TopicPartition[]): Promise<void> {
    const offsets: OffsetAndMetadata[] = [];
    for (const p of parts) {
      const st = this.assigned.get(tpKey(p.topic, p.partition));
      if (st && st.position !== null)
        offsets.push({ topic: st.topic, partition: st.partition, offset: st.position, leaderEpoch: st.leaderEpoch });
    }
    this.lastAutoCommitMs = Date.now();
    await this.groupMember().commit(offsets, this.subscribed);
  }

  /** Committed offsets of partitions (null where the group has none). */
  async committed(partitions: readonly TopicPartition[]): Promise<(OffsetAndMetadata | null)[]> {
    if (this.o.groupId === undefined) throw new ConfigError("committed() needs groupId (group.id)");
    const c = await this.groupMember().committed(partitions);
    return partitions.map((p) => {
      const x = c.get(tpKey(p.topic, p.partition));
      return x ? { topic: p.topic, partition: p.partition, offset: x.offset, metadata: x.metadata } : null;
    });
  }

  private maybeAutoCommit(): void {
    if (!this.o.enableAutoCommit || this.o.groupId === undefined || this.autoCommitting) return;
    if (Date.now() - this.lastAutoCommitMs < this.o.autoCommitIntervalMs) return;
    if (this.subscribed && (this.group?.generationId ?? -1) < 0) return;
    this.autoCommitting = this.commitPositions(this.assignment())
      .catch((e: unknown) => this.warn(`auto-commit failed: ${(e as Error).message}`))
      .finally(() => {
        this.autoCommitting = null;
      });
  }

  // ---- fetching ---------------------------------------------------------------------------

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  private kick(): void {
    if (this.fetcherScheduled || this.closed) return;
    this.fetcherScheduled = true;
    const delay = Math.max(0, this.fetchBackoffUntilMs - Date.now());
    const run = (): void => {
      this.fetcherScheduled = false;
      this.runFetcher();
    };
    if (delay > 0) setTimeout(run, delay);
    else setImmediate(run);
  }

  private totalBufferedBytes(): number {
    let n = 0;
    for (const st of this.assigned.values()) n += st.bufferedBytes;
    return n;
  }

  private runFetcher(): void {
    if (this.closed) return;
    const toReset = [...this.assigned.values()].filter((s) => s.fetchOffset === null && !s.resetting);
    if (toReset.length > 0) void this.resetPositions(toReset);
    if (this.totalBufferedBytes() >= this.o.fetchMaxBytes) return;
    const byLeader = new Map<number, PartitionState[]>();
    let unknownLeader = false;
    for (const st of this.assigned.values()) {
      if (st.paused || st.fetchOffset === null || st.resetting) continue;
      if (st.bufferedBytes >= this.o.maxPartitionFetchBytes) continue;
      const leader = this.cluster.leaderOf(st.topic, st.partition);
      if (leader < 0) {
        unknownLeader = true;
        continue;
      }
      if (this.fetchingNodes.has(leader)) continue;
      const list = byLeader.get(leader);
      if (list) list.push(st);
      else byLeader.set(leader, [st]);
    }
    if (unknownLeader) {
      const topics = [...new Set([...this.assigned.values()].map((s) => s.topic))];
      void this.cluster
        .refresh(topics)
        .catch(() => {})
        .then(() => sleep(this.o.retryBackoffMs))
        .then(() => this.kick());
    }
    for (const [node, parts] of byLeader) {
      this.fetchingNodes.add(node);
      void this.fetch(node, parts).finally(() => {
        this.fetchingNodes.delete(node);
        this.kick();
      });
    }
  }

  private async fetch(node: number, parts: PartitionState[]): Promise<void> {
    const epochs = new Map(parts.map((p) => [tpKey(p.topic, p.partition), p.epoch]));
    const offsets = new Map(parts.map((p) => [tpKey(p.topic, p.partition), p.fetchOffset!]));
    const byTopic = new Map<string, PartitionState[]>();
    for (const p of parts) byTopic.set(p.topic, [...(byTopic.get(p.topic) ?? []), p]);
    try {
      const conn = await this.cluster.connectionTo(node);
      const res = await conn.request(
        ApiKey.Fetch,
        FETCH_VERSIONS,
        (w, v) =>
          encodeFetchRequest(
            w,
            {
              replicaId: -1,
              maxWaitMs: this.o.fetchMaxWaitMs,
              minBytes: this.o.fetchMinBytes,
              maxBytes: this.o.fetchMaxBytes,
              isolationLevel: this.o.isolationLevel === "read_committed" ? 1 : 0,
              sessionId: 0,
              sessionEpoch: -1,
              topics: [...byTopic].map(([topic, ps]) => ({
                topic,
                partitions: ps.map((p) => ({
                  partition: p.partition,
                  currentLeaderEpoch: -1,
                  fetchOffset: p.fetchOffset!,
                  lastFetchedEpoch: -1,
                  logStartOffset: -1n,
                  partitionMaxBytes: this.o.maxPartitionFetchBytes,
                })),
              })),
              forgottenTopicsData: [],
              rackId: "",
            },
            v,
          ),
        decodeFetchResponse,
      );
      if (res.errorCode !== ErrorCode.NONE) throw new KafkaProtocolError(res.errorCode, "Fetch");
      for (const t of res.responses) {
        for (const p of t.partitions) {
          const k = tpKey(t.topic, p.partitionIndex);
          const st = this.assigned.get(k);
          if (!st || st.epoch !== epochs.get(k) || st.fetchOffset !== offsets.get(k)) continue;
          this.onPartitionData(st, p);
        }
      }
      this.fetchFailures = 0;
    } catch (e) {
      if (this.closed) return;
      this.fetchFailures++;
      this.fetchBackoffUntilMs =
        Date.now() + backoffMs(this.fetchFailures - 1, this.o.retryBackoffMs, this.o.retryBackoffMaxMs);
      if (!(e instanceof KafkaError) || !e.retriable) this.pendingError = e as Error;
      for (const t of byTopic.keys()) this.cluster.invalidate(t);
    } finally {
      this.wake();
    }
  }

  private onPartitionData(
    st: PartitionState,
    p: {
      partitionIndex: number;
      errorCode: number;
      highWatermark: bigint;
      lastStableOffset: bigint;
      logStartOffset: bigint;
      abortedTransactions: { producerId: bigint; firstOffset: bigint }[] | null;
      records: Uint8Array | null;
    },
  ): void {
    const code = p.errorCode;
    if (code === ErrorCode.NONE) {
      st.highWatermark = p.highWatermark;
      st.lastStableOffset = p.lastStableOffset;
      st.logStartOffset = p.logStartOffset;
      this.appendRecords(st, p.records, p.abortedTransactions ?? []);
      return;
    }
    if (code === ErrorCode.OFFSET_OUT_OF_RANGE) {
      if (this.o.autoOffsetReset === "none") {
        this.pendingError = new KafkaProtocolError(
          code,
          `fetch ${st.topic}-${st.partition} at ${st.fetchOffset} (autoOffsetReset is "none")`,
        );
        return;
      }
      this.clearBuffer(st);
      st.position = null;
      st.fetchOffset = null;
      st.reset = this.o.autoOffsetReset;
      return;
    }
    if (
      code === ErrorCode.NOT_LEADER_OR_FOLLOWER ||
      code === ErrorCode.UNKNOWN_TOPIC_OR_PARTITION ||
      code === ErrorCode.LEADER_NOT_AVAILABLE ||
      code === ErrorCode.FENCED_LEADER_EPOCH ||
      code === ErrorCode.UNKNOWN_LEADER_EPOCH ||
      code === ErrorCode.KAFKA_STORAGE_ERROR ||
      code === ErrorCode.OFFSET_NOT_AVAILABLE
    ) {
      this.cluster.invalidate(st.topic);
      return;
    }
    this.pendingError = new KafkaProtocolError(code, `fetch ${st.topic}-${st.partition}`);
  }

  /** Decodes the fetched batches into the partition's buffer, dropping aborted and control records. */
  private appendRecords(
    st: PartitionState,
    blob: Uint8Array | null,
    aborted: { producerId: bigint; firstOffset: bigint }[],
  ): void {
    if (blob === null || blob.length === 0) return;
    const from = st.fetchOffset!;
    const pending = [...aborted].sort((a, b) =>
      a.firstOffset < b.firstOffset ? -1 : a.firstOffset > b.firstOffset ? 1 : 0,
    );
    const abortedProducers = new Set<bigint>();
    const readCommitted = this.o.isolationLevel === "read_committed";
    let next = from;
    let batches: ReturnType<typeof decodeRecords>;
    try {
      batches = decodeRecords(blob, { verifyCrc: this.o.checkCrcs });
    } catch (e) {
      this.pendingError = new KafkaError(
        "CORRUPT_MESSAGE",
        `bad record batch in ${st.topic}-${st.partition}: ${(e as Error).message}`,
        { errorCode: 2, cause: e },
      );
      return;
    }
    for (const batch of batches) {
      const h = batch.header;
      const last = lastOffsetOf(h);
      if (last < from) continue;
      if (last + 1n > next) next = last + 1n;
      if (readCommitted) {
        while (pending.length > 0 && pending[0]!.firstOffset <= last) abortedProducers.add(pending.shift()!.producerId);
      }
      if (isControlBatch(h.attributes)) {
        const rec = batch.records[0];
        if (rec && parseControlRecord(rec.key, rec.value).type === "ABORT") abortedProducers.delete(h.producerId);
        continue;
      }
      if (readCommitted && isTransactional(h.attributes) && abortedProducers.has(h.producerId)) continue;
      for (const r of batch.records) {
        if (r.offset < from) continue;
        st.records.push({
          topic: st.topic,
          partition: st.partition,
          offset: r.offset,
          timestamp: r.timestamp,
          key: r.key,
          value: r.value,
          headers: r.headers,
          leaderEpoch: h.partitionLeaderEpoch,
        });
        st.bufferedBytes += (r.key?.length ?? 0) + (r.value?.length ?? 0) + 16;
      }
      st.leaderEpoch = h.partitionLeaderEpoch;
    }
    st.fetchOffset = next;
    if (st.records.length === 0 && st.position !== null && st.position < next) st.position = next;
  }

  /** Resolves unknown positions with ListOffsets (earliest or latest) at each partition's leader. */
  private async resetPositions(states: PartitionState[]): Promise<void> {
    for (const st of states) st.resetting = true;
    const byLeader = new Map<number, PartitionState[]>();
    for (const st of states) {
      if (st.reset === "none" || st.reset === null) {
        st.resetting = false;
        this.pendingError = new KafkaError(
          "NO_OFFSET",
          `no committed offset for ${st.topic}-${st.partition} and autoOffsetReset (auto.offset.reset) is "none"`,
        );
        continue;
      }
      let leader = this.cluster.leaderOf(st.topic, st.partition);
      if (leader < 0) {
        await this.cluster.partitionsOf(st.topic, Date.now() + this.o.requestTimeoutMs).catch(() => {});
        leader = this.cluster.leaderOf(st.topic, st.partition);
      }
      if (leader < 0) {
        st.resetting = false;
        continue;
      }
      byLeader.set(leader, [...(byLeader.get(leader) ?? []), st]);
    }
    await Promise.all(
      [...byLeader].map(async ([leader, list]) => {
        const epochs = new Map(list.map((s) => [s, s.epoch]));
        try {
          const conn = await this.cluster.connectionTo(leader);
          const byTopic = new Map<string, PartitionState[]>();
          for (const s of list) byTopic.set(s.topic, [...(byTopic.get(s.topic) ?? []), s]);
          const res = await conn.request(
            ApiKey.ListOffsets,
            LIST_OFFSETS_VERSIONS,
            (w, v) =>
              encodeListOffsetsRequest(
                w,
                {
                  replicaId: -1,
                  isolationLevel: this.o.isolationLevel === "read_committed" ? 1 : 0,
                  topics: [...byTopic].map(([name, ss]) => ({
                    name,
                    partitions: ss.map((s) => ({
                      partitionIndex: s.partition,
                      timestamp: s.reset === "earliest" ? -2n : -1n,
                      currentLeaderEpoch: -1,
                    })),
                  })),
                },
                v,
              ),
            decodeListOffsetsResponse,
          );
          for (const t of res.topics) {
            for (const p of t.partitions) {
              const st = this.assigned.get(tpKey(t.name, p.partitionIndex));
              if (!st || epochs.get(st) !== st.epoch || st.fetchOffset !== null) continue;
              if (p.errorCode !== ErrorCode.NONE) {
                this.cluster.invalidate(t.name);
                continue;
              }
              st.position = p.offset;
              st.fetchOffset = p.offset;
              st.reset = null;
            }
          }
        } catch (e) {
          if (!(e instanceof KafkaError) || !e.retriable) this.pendingError = e as Error;
          this.fetchBackoffUntilMs = Date.now() + this.o.retryBackoffMs;
        } finally {
          for (const s of list) s.resetting = false;
        }
      }),
    );
    this.kick();
  }

  private warn(message: string): void {
    if (this.o.logger) this.o.logger("warn", message);
    else process.emitWarning(message, { code: "SLUICE_CONSUMER" });
  }

  /** Stops run(), commits (auto-commit), leaves the group (not a static member) and disconnects. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.running = false;
    this.wake();
    await this.runLoop?.catch(() => {});
    if (this.group) {
      if (this.o.enableAutoCommit && this.o.groupId !== undefined && (!this.subscribed || this.group.generationId >= 0))
        await this.commitPositions(this.assignment()).catch((e: unknown) =>
          this.warn(`commit on close failed: ${(e as Error).message}`),
        );
      if (this.subscribed) await this.group.leave();
      else this.group.stop();
    }
    this.closed = true;
    this.wake();
    await this.cluster.close();
  }
}
