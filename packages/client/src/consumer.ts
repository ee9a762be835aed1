// The consumer (manual assignment; group membership comes next): a fetcher per leader prefetches
// records into a bounded buffer, `poll()` hands out at most `maxPollRecords`, and read_committed
// (the default) drops aborted transactional records and never shows control records.

import {
  decodeFetchResponse,
  decodeListOffsetsResponse,
  ErrorCode,
  encodeFetchRequest,
  encodeListOffsetsRequest,
} from "@sluice/protocol";
import { isControlBatch, isTransactional, lastOffsetOf } from "@sluice/protocol/records/batch-header.ts";
import { decodeRecords, parseControlRecord, type RecordHeader } from "@sluice/protocol/records/record-batch.ts";
import { Cluster } from "./cluster.ts";
import { KafkaError, KafkaProtocolError } from "./errors.ts";
import { type AssignmentStrategy, GroupMember } from "./group.ts";

export interface ConsumerOptions {
  /** bootstrap.servers. */
  bootstrapServers: string | readonly string[];
  /** client.id (default "sluice-consumer"). */
  clientId?: string;
  /** fetch.min.bytes (Java default 1). */
  fetchMinBytes?: number;
  /** fetch.max.bytes (Java default 52428800). */
  fetchMaxBytes?: number;
  /** max.partition.fetch.bytes (Java default 1048576). */
  maxPartitionFetchBytes?: number;
  /** fetch.max.wait.ms (Java default 500). */
  fetchMaxWaitMs?: number;
  /** max.poll.records (Java default 500). */
  maxPollRecords?: number;
  /** isolation.level (Java default "read_uncommitted"; kafkajs and librdkafka default to read_committed, as does this client). */
  isolationLevel?: "read_committed" | "read_uncommitted";
  /** auto.offset.reset (Java default "latest"). */
  autoOffsetReset?: "earliest" | "latest" | "none";
  /** request.timeout.ms (Java default 30000). */
  requestTimeoutMs?: number;
  /** group.id: needed for subscribe() and commits. */
  groupId?: string;
  /** group.instance.id: static membership. */
  groupInstanceId?: string;
  /** session.timeout.ms (Java default 45000). */
  sessionTimeoutMs?: number;
  /** heartbeat.interval.ms (Java default 3000). */
  heartbeatIntervalMs?: number;
  /** max.poll.interval.ms (Java default 300000): a member that does not poll this often leaves the group. */
  maxPollIntervalMs?: number;
  /** enable.auto.commit (Java default true). */
  enableAutoCommit?: boolean;
  /** auto.commit.interval.ms (Java default 5000). */
  autoCommitIntervalMs?: number;
  /** partition.assignment.strategy (Java default range). */
  partitionAssignmentStrategy?: AssignmentStrategy;
}

export interface ConsumerRecord {
  topic: string;
  partition: number;
  offset: bigint;
  timestamp: bigint;
  key: Uint8Array | null;
  value: Uint8Array | null;
  headers: RecordHeader[];
}

interface Assigned {
  readonly topic: string;
  readonly partition: number;
  /** Next offset to fetch; null until resolved from auto.offset.reset. */
  position: bigint | null;
  paused: boolean;
  /** Bumped by seek() so that a fetch in flight for the old position is discarded. */
  epoch: number;
}

const FETCH = 1;
const LIST_OFFSETS = 2;
/** Records kept ready beyond one poll's worth before fetching pauses (bounded memory). */
const BUFFER_POLLS = 4;

type ResolvedOptions = Required<Omit<ConsumerOptions, "groupId" | "groupInstanceId">> & {
  groupId: string | null;
  groupInstanceId: string | null;
};

export class Consumer implements AsyncIterable<ConsumerRecord> {
  private readonly o: ResolvedOptions;
  private group: GroupMember | null = null;
  private subscription: string[] = [];
  /** Next offset to commit per partition: after the last record poll() handed out. */
  private readonly consumed = new Map<string, { topic: string; partition: number; offset: bigint }>();
  private lastPollMs = Date.now();
  private lastCommitMs = Date.now();
  private pollIntervalTimer: NodeJS.Timeout | null = null;
  private rejoining: Promise<void> | null = null;
  private readonly cluster: Cluster;
  private readonly assigned = new Map<string, Assigned>();
  private readonly buffer: ConsumerRecord[] = [];
  private readonly fetching = new Set<number>();
  private waiters: (() => void)[] = [];
  private closed = false;
  private fetchError: Error | null = null;

  constructor(options: ConsumerOptions) {
    this.o = {
      bootstrapServers: options.bootstrapServers,
      clientId: options.clientId ?? "sluice-consumer",
      fetchMinBytes: options.fetchMinBytes ?? 1,
      fetchMaxBytes: options.fetchMaxBytes ?? 52428800,
      maxPartitionFetchBytes: options.maxPartitionFetchBytes ?? 1048576,
      fetchMaxWaitMs: options.fetchMaxWaitMs ?? 500,
      maxPollRecords: options.maxPollRecords ?? 500,
      isolationLevel: options.isolationLevel ?? "read_committed",
      autoOffsetReset: options.autoOffsetReset ?? "latest",
      requestTimeoutMs: options.requestTimeoutMs ?? 30000,
      groupId: options.groupId ?? null,
      groupInstanceId: options.groupInstanceId ?? null,
      sessionTimeoutMs: options.sessionTimeoutMs ?? 45000,
      heartbeatIntervalMs: options.heartbeatIntervalMs ?? 3000,
      maxPollIntervalMs: options.maxPollIntervalMs ?? 300000,
      enableAutoCommit: options.enableAutoCommit ?? true,
      autoCommitIntervalMs: options.autoCommitIntervalMs ?? 5000,
      partitionAssignmentStrategy: options.partitionAssignmentStrategy ?? "range",
    };
    this.cluster = new Cluster({
      bootstrapServers: this.o.bootstrapServers,
      clientId: this.o.clientId,
      requestTimeoutMs: this.o.requestTimeoutMs,
      socketConnectionSetupTimeoutMs: 10000,
      reconnectBackoffMs: 50,
      reconnectBackoffMaxMs: 1000,
      retryBackoffMs: 100,
      retryBackoffMaxMs: 1000,
      metadataMaxAgeMs: 300000,
      allowAutoCreateTopics: true,
    });
  }

  /** Joins the consumer group (groupId) for `topics`; partitions are assigned by the group. */
  async subscribe(topics: string[]): Promise<void> {
    if (this.o.groupId === null) throw new KafkaError("INVALID_CONFIG", "subscribe() needs groupId (group.id)");
    this.subscription = topics;
    this.group ??= new GroupMember(this.cluster, {
      groupId: this.o.groupId,
      groupInstanceId: this.o.groupInstanceId,
      sessionTimeoutMs: this.o.sessionTimeoutMs,
      rebalanceTimeoutMs: this.o.maxPollIntervalMs,
      heartbeatIntervalMs: this.o.heartbeatIntervalMs,
      strategy: this.o.partitionAssignmentStrategy,
      clientId: this.o.clientId,
    });
    // The coordinator asks for a rejoin through heartbeats: do it at once, as Java's heartbeat thread does.
    this.group.onRejoinNeeded = () => {
      if (!this.closed) void this.rejoinOnce().catch(() => {});
    };
    this.lastPollMs = Date.now();
    this.watchPollInterval();
    await this.rejoinOnce();
  }

  private rejoinOnce(): Promise<void> {
    this.rejoining ??= this.rejoin().finally(() => {
      this.rejoining = null;
    });
    return this.rejoining;
  }

  /** The group's current assignment applied to the fetcher, starting at the committed offsets. */
  private async rejoin(): Promise<void> {
    const g = this.group!;
    if (this.o.enableAutoCommit) await this.commit().catch(() => {});
    await g.join(this.subscription);
    const committed = g.assignment.length > 0 ? await g.committed(g.assignment) : [];
    this.consumed.clear();
    this.assign(
      committed.map((c) =>
        c.offset === null
          ? { topic: c.topic, partition: c.partition }
          : { topic: c.topic, partition: c.partition, offset: c.offset },
      ),
    );
  }

  /** max.poll.interval.ms: a member that stops polling leaves the group; its next poll rejoins. */
  private watchPollInterval(): void {
    if (this.pollIntervalTimer) return;
    this.pollIntervalTimer = setInterval(
      () => {
        const g = this.group;
        if (!g || this.closed || g.assignment.length === 0) return;
        if (Date.now() - this.lastPollMs > this.o.maxPollIntervalMs) {
          void g.leave().then(() => {
            this.assign([]);
            g.needsRejoin = true;
          });
        }
      },
      Math.min(1000, this.o.maxPollIntervalMs / 2),
    );
    this.pollIntervalTimer.unref();
  }

  /** Commits the position after the last record poll() returned, for every partition (needs groupId). */
  async commit(): Promise<void> {
    if (this.o.groupId === null) throw new KafkaError("INVALID_CONFIG", "commit() needs groupId (group.id)");
    const offsets = [...this.consumed.values()];
    this.lastCommitMs = Date.now();
    if (offsets.length === 0) return;
    if (!this.group) {
      this.group = new GroupMember(this.cluster, {
        groupId: this.o.groupId,
        groupInstanceId: null,
        sessionTimeoutMs: this.o.sessionTimeoutMs,
        rebalanceTimeoutMs: this.o.maxPollIntervalMs,
        heartbeatIntervalMs: this.o.heartbeatIntervalMs,
        strategy: this.o.partitionAssignmentStrategy,
        clientId: this.o.clientId,
      });
    }
    await this.group.commit(offsets);
  }

  /** Replaces the assignment; an offset starts there, otherwise auto.offset.reset decides. */
  assign(partitions: readonly { topic: string; partition: number; offset?: bigint }[]): void {
    this.assigned.clear();
    this.buffer.length = 0;
    for (const p of partitions) {
      this.assigned.set(`${p.topic}\u0000${p.partition}`, {
        topic: p.topic,
        partition: p.partition,
        position: p.offset ?? null,
        paused: false,
        epoch: 0,
      });
    }
    this.kick();
  }

  assignment(): { topic: string; partition: number }[] {
    return [...this.assigned.values()].map((a) => ({ topic: a.topic, partition: a.partition }));
  }

  /** The next offset poll() will return for a partition (null before it is known). */
  position(topic: string, partition: number): bigint | null {
    return this.assigned.get(`${topic}\u0000${partition}`)?.position ?? null;
  }

  seek(topic: string, partition: number, offset: bigint): void {
    const a = this.assigned.get(`${topic}\u0000${partition}`);
    if (!a) throw new KafkaError("NOT_ASSIGNED", `${topic}-${partition} is not assigned`);
    a.position = offset;
    a.epoch++;
    for (let i = this.buffer.length - 1; i >= 0; i--) {
      const r = this.buffer[i]!;
      if (r.topic === topic && r.partition === partition) this.buffer.splice(i, 1);
    }
    this.kick();
  }

  pause(partitions: readonly { topic: string; partition: number }[]): void {
    for (const p of partitions) {
      const a = this.assigned.get(`${p.topic}\u0000${p.partition}`);
      if (a) a.paused = true;
    }
  }

  resume(partitions: readonly { topic: string; partition: number }[]): void {
    for (const p of partitions) {
      const a = this.assigned.get(`${p.topic}\u0000${p.partition}`);
      if (a) a.paused = false;
    }
    this.kick();
  }

  /** Up to maxPollRecords records; waits up to `timeoutMs` when none is ready. */
  async poll(timeoutMs = 1000): Promise<ConsumerRecord[]> {
    this.lastPollMs = Date.now();
    if (this.group && this.subscription.length > 0 && (this.group.needsRejoin || this.group.assignment.length === 0))
      await this.rejoinOnce();
    if (
      this.o.groupId !== null &&
      this.o.enableAutoCommit &&
      Date.now() - this.lastCommitMs >= this.o.autoCommitIntervalMs
    ) {
      await this.commit().catch(() => {});
    }
    if (this.fetchError) {
      const e = this.fetchError;
      this.fetchError = null;
      throw e;
    }
    this.kick();
    if (this.buffer.length === 0 && timeoutMs > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, timeoutMs);
        function done(): void {
          clearTimeout(timer);
          resolve();
        }
        this.waiters.push(done);
      });
    }
    // Hand out up to maxPollRecords from partitions that are not paused; the rest stay buffered.
    const out: ConsumerRecord[] = [];
    const kept: ConsumerRecord[] = [];
    for (const r of this.buffer) {
      if (out.length < this.o.maxPollRecords && !this.paused(r.topic, r.partition)) out.push(r);
      else kept.push(r);
    }
    this.buffer.splice(0, this.buffer.length, ...kept);
    for (const r of out)
      this.consumed.set(`${r.topic}\u0000${r.partition}`, {
        topic: r.topic,
        partition: r.partition,
        offset: r.offset + 1n,
      });
    this.kick();
    return out;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<ConsumerRecord> {
    while (!this.closed) {
      for (const r of await this.poll(1000)) yield r;
    }
  }

  private paused(topic: string, partition: number): boolean {
    return this.assigned.get(`${topic}\u0000${partition}`)?.paused ?? false;
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Starts a fetch loop for every leader with fetchable partitions. */
  private kick(): void {
    if (this.closed || this.buffer.length >= this.o.maxPollRecords * BUFFER_POLLS) return;
    void this.startFetchers().catch((e) => {
      this.fetchError = e as Error;
      this.wake();
    });
  }

  private async startFetchers(): Promise<void> {
    const byLeader = new Map<number, Assigned[]>();
    for (const a of this.assigned.values()) {
      if (a.paused) continue;
      const leader = (await this.cluster.partitionsOf(a.topic)).find((p) => p.partition === a.partition)?.leader ?? -1;
      if (leader < 0) continue;
      byLeader.set(leader, [...(byLeader.get(leader) ?? []), a]);
    }
    for (const [leader, parts] of byLeader) {
      if (this.closed || this.fetching.has(leader)) continue;
      this.fetching.add(leader);
      void this.fetchOnce(leader, parts)
        .catch((e) => {
          if (!this.closed) this.fetchError = e as Error;
        })
        .finally(() => {
          this.fetching.delete(leader);
          this.wake();
          if (this.buffer.length < this.o.maxPollRecords * BUFFER_POLLS && !this.closed)
            setTimeout(() => this.kick(), this.fetchError ? 200 : 0);
        });
    }
  }

  private async resolvePositions(parts: Assigned[], leader: number): Promise<void> {
    const unknown = parts.filter((a) => a.position === null);
    if (unknown.length === 0) return;
    if (this.o.autoOffsetReset === "none")
      throw new KafkaError("NO_OFFSET", "no position and autoOffsetReset (auto.offset.reset) is none");
    const conn = await this.cluster.connectionTo(leader);
    const v = conn.version(LIST_OFFSETS, 1, 7);
    const timestamp = this.o.autoOffsetReset === "earliest" ? -2n : -1n;
    const byTopic = new Map<string, Assigned[]>();
    for (const a of unknown) byTopic.set(a.topic, [...(byTopic.get(a.topic) ?? []), a]);
    const r = await conn.send(LIST_OFFSETS, v, (w) =>
      encodeListOffsetsRequest(
        w,
        {
          replicaId: -1,
          isolationLevel: this.o.isolationLevel === "read_committed" ? 1 : 0,
          topics: [...byTopic].map(([name, as]) => ({
            name,
            partitions: as.map((a) => ({ partitionIndex: a.partition, timestamp, currentLeaderEpoch: -1 })),
          })),
        },
        v,
      ),
    );
    for (const t of decodeListOffsetsResponse(r, v).topics) {
      for (const p of t.partitions) {
        if (p.errorCode !== ErrorCode.NONE)
          throw new KafkaProtocolError(p.errorCode, `ListOffsets ${t.name}-${p.partitionIndex}`);
        const a = this.assigned.get(`${t.name}\u0000${p.partitionIndex}`);
        if (a && a.position === null) a.position = p.offset;
      }
    }
  }

  private async fetchOnce(leader: number, parts: Assigned[]): Promise<void> {
    await this.resolvePositions(parts, leader);
    const conn = await this.cluster.connectionTo(leader);
    const v = conn.version(FETCH, 4, 12);
    const snapshot = parts
      .filter((a) => a.position !== null)
      .map((a) => ({ a, position: a.position!, epoch: a.epoch }));
    const byTopic = new Map<string, typeof snapshot>();
    for (const s of snapshot) byTopic.set(s.a.topic, [...(byTopic.get(s.a.topic) ?? []), s]);
    const r = await conn.send(FETCH, v, (w) =>
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
          topics: [...byTopic].map(([topic, ss]) => ({
            topic,
            partitions: ss.map((s) => ({
              partition: s.a.partition,
              fetchOffset: s.position,
              partitionMaxBytes: this.o.maxPartitionFetchBytes,
              currentLeaderEpoch: -1,
              logStartOffset: -1n,
            })),
          })),
        },
        v,
      ),
    );
    const res = decodeFetchResponse(r, v);
    if (res.errorCode !== ErrorCode.NONE) throw new KafkaProtocolError(res.errorCode, "Fetch");
    for (const t of res.responses) {
      for (const p of t.partitions) {
        const s = snapshot.find((x) => x.a.topic === t.topic && x.a.partition === p.partitionIndex);
        if (!s || s.a.epoch !== s.epoch) continue; // seeked meanwhile
        if (p.errorCode === ErrorCode.OFFSET_OUT_OF_RANGE && this.o.autoOffsetReset !== "none") {
          s.a.position = null;
          continue;
        }
        if (p.errorCode === ErrorCode.NOT_LEADER_OR_FOLLOWER || p.errorCode === ErrorCode.UNKNOWN_TOPIC_OR_PARTITION) {
          await this.cluster.refresh([t.topic]);
          continue;
        }
        if (p.errorCode !== ErrorCode.NONE)
          throw new KafkaProtocolError(p.errorCode, `Fetch ${t.topic}-${p.partitionIndex}`);
        this.accept(s.a, s.position, p.records, p.abortedTransactions ?? []);
      }
    }
  }

  /** Adds fetched records: skips control batches, aborted transactions (read_committed) and offsets below the position. */
  private accept(
    a: Assigned,
    from: bigint,
    records: Uint8Array | null,
    aborted: { producerId: bigint; firstOffset: bigint }[],
  ): void {
    if (records === null || records.length === 0) return;
    const pending = [...aborted].sort((x, y) => (x.firstOffset < y.firstOffset ? -1 : 1));
    const abortedProducers = new Set<bigint>();
    let next = from;
    for (const batch of decodeRecords(records)) {
      const h = batch.header;
      while (pending.length > 0 && pending[0]!.firstOffset <= lastOffsetOf(h))
        abortedProducers.add(pending.shift()!.producerId);
      next = lastOffsetOf(h) + 1n > next ? lastOffsetOf(h) + 1n : next;
      if (isControlBatch(h.attributes)) {
        const rec = batch.records[0];
        if (rec && parseControlRecord(rec.key, rec.value).type === "ABORT") abortedProducers.delete(h.producerId);
        continue;
      }
      if (
        this.o.isolationLevel === "read_committed" &&
        isTransactional(h.attributes) &&
        abortedProducers.has(h.producerId)
      )
        continue;
      for (const rec of batch.records) {
        if (rec.offset < from) continue;
        this.buffer.push({
          topic: a.topic,
          partition: a.partition,
          offset: rec.offset,
          timestamp: rec.timestamp,
          key: rec.key,
          value: rec.value,
          headers: rec.headers,
        });
      }
    }
    a.position = next;
  }

  async close(): Promise<void> {
    if (this.pollIntervalTimer) clearInterval(this.pollIntervalTimer);
    if (this.group && this.o.enableAutoCommit) await this.commit().catch(() => {});
    if (this.group) await this.group.leave();
    this.closed = true;
    this.wake();
    await this.cluster.close();
  }
}
