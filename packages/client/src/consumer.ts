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
import { KafkaClientError, KafkaProtocolError } from "./errors.ts";

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

export class Consumer implements AsyncIterable<ConsumerRecord> {
  private readonly o: Required<ConsumerOptions>;
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
    };
    this.cluster = new Cluster(this.o.bootstrapServers, {
      clientId: this.o.clientId,
      requestTimeoutMs: this.o.requestTimeoutMs,
      connectTimeoutMs: 10000,
    });
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
    if (!a) throw new KafkaClientError("NOT_ASSIGNED", `${topic}-${partition} is not assigned`);
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
      throw new KafkaClientError("NO_OFFSET", "no position and autoOffsetReset (auto.offset.reset) is none");
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
    this.closed = true;
    this.wake();
    await this.cluster.close();
  }
}
