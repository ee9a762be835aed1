// The producer: records wait in a per-partition accumulator until `batchSize` bytes or `lingerMs`,
// then go out as one record batch; batches for partitions led by the same broker share a Produce
// request. `bufferMemory` bounds the bytes waiting: when full, `send()` waits (up to `maxBlockMs`
// or an AbortSignal) and `trySend()` fails at once. With idempotence (the default when the broker
// supports InitProducerId) each partition's batches carry consecutive sequence numbers, and a
// retried batch is resent byte for byte, so the broker drops duplicates. One batch per partition
// is in flight at a time, which keeps per-partition order through retries.

import {
  decodeInitProducerIdResponse,
  decodeProduceResponse,
  ErrorCode,
  encodeInitProducerIdRequest,
  encodeProduceRequest,
} from "@sluice/protocol";
import type { CompressionCodec } from "@sluice/protocol/records/batch-header.ts";
import { buildRecordBatch, type RecordHeader } from "@sluice/protocol/records/record-batch.ts";
import { Cluster } from "./cluster.ts";
import { BufferExhaustedError, KafkaClientError, KafkaProtocolError, RecordTooLargeError } from "./errors.ts";
import { keyedPartition, type Partitioner, StickyPartitioner } from "./partitioner.ts";

export interface ProducerOptions {
  /** bootstrap.servers: "host:port,host:port". */
  bootstrapServers: string | readonly string[];
  /** client.id (default "sluice-producer"). */
  clientId?: string;
  /** acks (Java default "all" = -1). */
  acks?: 0 | 1 | -1 | "all";
  /** batch.size: bytes per partition batch before it is sent (Java default 16384). */
  batchSize?: number;
  /** linger.ms: how long a batch waits for more records (Java default 5). */
  lingerMs?: number;
  /** buffer.memory: bytes of records waiting to be sent (Java default 33554432). */
  bufferMemory?: number;
  /** max.block.ms: how long send() waits for buffer space or metadata (Java default 60000). */
  maxBlockMs?: number;
  /** max.request.size: largest record (and request) accepted (Java default 1048576). */
  maxRequestSize?: number;
  /** compression.type (Java default "none"). */
  compressionType?: "none" | "gzip" | "snappy" | "lz4" | "zstd";
  /** retries (Java default 2147483647, bounded by deliveryTimeoutMs). */
  retries?: number;
  /** retry.backoff.ms (Java default 100); doubled per attempt with jitter, up to retry.backoff.max.ms 1000. */
  retryBackoffMs?: number;
  /** delivery.timeout.ms: time from send() to success or failure (Java default 120000). */
  deliveryTimeoutMs?: number;
  /** request.timeout.ms (Java default 30000). */
  requestTimeoutMs?: number;
  /** enable.idempotence (Java default true; used when the broker supports InitProducerId). */
  enableIdempotence?: boolean;
  /** partitioner.class: a custom partitioner for every record without an explicit partition. */
  partitioner?: Partitioner;
}

export interface ProducerRecord {
  topic: string;
  value: Uint8Array | string | null;
  key?: Uint8Array | string | null;
  partition?: number;
  headers?: Record<string, Uint8Array | string | null>;
  timestamp?: bigint;
}

export interface RecordMetadata {
  topic: string;
  partition: number;
  /** -1 with acks=0. */
  offset: bigint;
  timestamp: bigint;
}

interface Pending {
  readonly key: Uint8Array | null;
  readonly value: Uint8Array | null;
  readonly headers: RecordHeader[];
  readonly timestamp: bigint;
  readonly bytes: number;
  readonly resolve: (m: RecordMetadata) => void;
  readonly reject: (e: Error) => void;
}

interface Batch {
  readonly records: Pending[];
  bytes: number;
  readonly createdMs: number;
  sealed: boolean;
  encoded: Buffer | null;
  attempts: number;
}

interface PartitionQueue {
  readonly topic: string;
  readonly partition: number;
  readonly batches: Batch[];
  inFlight: boolean;
  sequence: number;
  lingerTimer: NodeJS.Timeout | null;
}

const CODECS: Record<string, CompressionCodec> = { none: 0, gzip: 1, snappy: 2, lz4: 3, zstd: 4 };
const RECORD_OVERHEAD_BYTES = 24;
const PRODUCE = 0;
const INIT_PRODUCER_ID = 22;
const encoder = new TextEncoder();

const toBytes = (v: Uint8Array | string | null | undefined): Uint8Array | null =>
  v === null || v === undefined ? null : typeof v === "string" ? encoder.encode(v) : v;

export class Producer {
  private readonly o: Required<Omit<ProducerOptions, "partitioner" | "acks">> & {
    acks: 0 | 1 | -1;
    partitioner: Partitioner | null;
  };
  private readonly cluster: Cluster;
  private readonly queues = new Map<string, PartitionQueue>();
  private readonly sticky = new StickyPartitioner();
  private bufferedBytes = 0;
  private readonly memoryWaiters: { bytes: number; resolve: () => void }[] = [];
  private producerId = -1n;
  private producerEpoch = -1;
  private idInit: Promise<void> | null = null;
  private closed = false;
  private readonly idleWaiters: (() => void)[] = [];

  constructor(options: ProducerOptions) {
    this.o = {
      bootstrapServers: options.bootstrapServers,
      clientId: options.clientId ?? "sluice-producer",
      acks: options.acks === "all" || options.acks === undefined ? -1 : options.acks,
      batchSize: options.batchSize ?? 16384,
      lingerMs: options.lingerMs ?? 5,
      bufferMemory: options.bufferMemory ?? 33554432,
      maxBlockMs: options.maxBlockMs ?? 60000,
      maxRequestSize: options.maxRequestSize ?? 1048576,
      compressionType: options.compressionType ?? "none",
      retries: options.retries ?? 2147483647,
      retryBackoffMs: options.retryBackoffMs ?? 100,
      deliveryTimeoutMs: options.deliveryTimeoutMs ?? 120000,
      requestTimeoutMs: options.requestTimeoutMs ?? 30000,
      enableIdempotence: options.enableIdempotence ?? true,
      partitioner: options.partitioner ?? null,
    };
    if (this.o.enableIdempotence && this.o.acks !== -1) {
      throw new KafkaClientError("INVALID_CONFIG", "enableIdempotence requires acks=all (enable.idempotence / acks)");
    }
    this.cluster = new Cluster(this.o.bootstrapServers, {
      clientId: this.o.clientId,
      requestTimeoutMs: this.o.requestTimeoutMs,
      connectTimeoutMs: 10000,
    });
  }

  /** Bytes of records accepted but not yet acknowledged. */
  get bufferedBytesNow(): number {
    return this.bufferedBytes;
  }

  /** Sends a record; resolves with its partition and offset once its batch is acknowledged. */
  async send(record: ProducerRecord, opts: { signal?: AbortSignal } = {}): Promise<RecordMetadata> {
    const p = this.prepare(record);
    await this.reserve(p.bytes, opts.signal);
    return this.enqueue(record, p);
  }

  /** Like send(), but fails at once with BufferExhaustedError instead of waiting for buffer space. */
  trySend(record: ProducerRecord): Promise<RecordMetadata> {
    const p = this.prepare(record);
    if (this.bufferedBytes + p.bytes > this.o.bufferMemory) {
      return Promise.reject(
        new BufferExhaustedError(`bufferMemory (buffer.memory) of ${this.o.bufferMemory} bytes is full`),
      );
    }
    this.bufferedBytes += p.bytes;
    return this.enqueue(record, p);
  }

  private prepare(record: ProducerRecord): {
    key: Uint8Array | null;
    value: Uint8Array | null;
    headers: RecordHeader[];
    bytes: number;
  } {
    if (this.closed) throw new KafkaClientError("PRODUCER_CLOSED", "the producer is closed");
    const key = toBytes(record.key);
    const value = toBytes(record.value);
    const headers = Object.entries(record.headers ?? {}).map(([k, v]) => ({ key: k, value: toBytes(v) }));
    let bytes = RECORD_OVERHEAD_BYTES + (key?.length ?? 0) + (value?.length ?? 0);
    for (const h of headers) bytes += h.key.length + (h.value?.length ?? 0) + 4;
    if (bytes > this.o.maxRequestSize) throw new RecordTooLargeError(bytes, this.o.maxRequestSize);
    return { key, value, headers, bytes };
  }

  private reserve(bytes: number, signal?: AbortSignal): Promise<void> {
    if (this.bufferedBytes + bytes <= this.o.bufferMemory && this.memoryWaiters.length === 0) {
      this.bufferedBytes += bytes;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const waiter = {
        bytes,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      const fail = (e: Error): void => {
        const i = this.memoryWaiters.indexOf(waiter);
        if (i >= 0) this.memoryWaiters.splice(i, 1);
        clearTimeout(timer);
        reject(e);
      };
      const timer = setTimeout(
        () => fail(new BufferExhaustedError(`no buffer space within maxBlockMs (max.block.ms) ${this.o.maxBlockMs}`)),
        this.o.maxBlockMs,
      );
      signal?.addEventListener(
        "abort",
        () => fail(new KafkaClientError("ABORTED", "send() aborted while waiting for buffer space")),
        { once: true },
      );
      this.memoryWaiters.push(waiter);
    });
  }

  private release(bytes: number): void {
    this.bufferedBytes -= bytes;
    while (this.memoryWaiters.length > 0 && this.bufferedBytes + this.memoryWaiters[0]!.bytes <= this.o.bufferMemory) {
      const w = this.memoryWaiters.shift()!;
      this.bufferedBytes += w.bytes;
      w.resolve();
    }
  }

  private async enqueue(
    record: ProducerRecord,
    p: { key: Uint8Array | null; value: Uint8Array | null; headers: RecordHeader[]; bytes: number },
  ): Promise<RecordMetadata> {
    let partition: number;
    try {
      partition = await this.choosePartition(record, p.key);
    } catch (e) {
      this.release(p.bytes);
      throw e;
    }
    return new Promise((resolve, reject) => {
      const q = this.queue(record.topic, partition);
      let batch = q.batches.at(-1);
      if (!batch || batch.sealed || batch.bytes + p.bytes > this.o.batchSize) {
        if (batch && !batch.sealed) batch.sealed = true;
        batch = { records: [], bytes: 0, createdMs: Date.now(), sealed: false, encoded: null, attempts: 0 };
        q.batches.push(batch);
      }
      batch.records.push({ ...p, timestamp: record.timestamp ?? BigInt(Date.now()), resolve, reject });
      batch.bytes += p.bytes;
      if (batch.bytes >= this.o.batchSize) batch.sealed = true;
      if (batch.sealed) this.drain(q);
      else if (q.lingerTimer === null) {
        q.lingerTimer = setTimeout(() => {
          q.lingerTimer = null;
          const open = q.batches.at(-1);
          if (open) open.sealed = true;
          this.drain(q);
        }, this.o.lingerMs);
      }
    });
  }

  private async choosePartition(record: ProducerRecord, key: Uint8Array | null): Promise<number> {
    const partitions = await this.cluster.partitionsOf(record.topic);
    if (record.partition !== undefined) {
      if (record.partition < 0 || record.partition >= partitions.length) {
        throw new KafkaClientError(
          "INVALID_PARTITION",
          `partition ${record.partition} of ${record.topic} does not exist (${partitions.length} partitions)`,
        );
      }
      return record.partition;
    }
    if (this.o.partitioner) return this.o.partitioner(record.topic, key, partitions.length);
    if (key !== null) return keyedPartition(key, partitions.length);
    return this.sticky.partition(record.topic, partitions.length);
  }

  private queue(topic: string, partition: number): PartitionQueue {
    const k = `${topic}\u0000${partition}`;
    let q = this.queues.get(k);
    if (!q) {
      q = { topic, partition, batches: [], inFlight: false, sequence: 0, lingerTimer: null };
      this.queues.set(k, q);
    }
    return q;
  }

  private drain(q: PartitionQueue): void {
    if (q.inFlight || q.batches.length === 0 || !q.batches[0]!.sealed) return;
    q.inFlight = true;
    void this.sendBatch(q, q.batches[0]!);
  }

  private async ensureProducerId(): Promise<void> {
    if (!this.o.enableIdempotence || this.producerId >= 0n) return;
    this.idInit ??= (async () => {
      const conn = await this.cluster.anyConnection();
      if (!conn.supports(INIT_PRODUCER_ID)) {
        this.o.enableIdempotence = false;
        return;
      }
      const v = conn.version(INIT_PRODUCER_ID, 0, 4);
      const r = await conn.send(INIT_PRODUCER_ID, v, (w) =>
        encodeInitProducerIdRequest(w, { transactionalId: null, transactionTimeoutMs: -1 }, v),
      );
      const res = decodeInitProducerIdResponse(r, v);
      if (res.errorCode !== ErrorCode.NONE) throw new KafkaProtocolError(res.errorCode, "InitProducerId");
      this.producerId = res.producerId;
      this.producerEpoch = res.producerEpoch;
    })().finally(() => {
      this.idInit = null;
    });
    await this.idInit;
  }

  private encode(q: PartitionQueue, batch: Batch): Buffer {
    if (batch.encoded) return batch.encoded;
    const idempotent = this.o.enableIdempotence && this.producerId >= 0n;
    batch.encoded = buildRecordBatch({
      records: batch.records.map((r) => ({ key: r.key, value: r.value, headers: r.headers, timestamp: r.timestamp })),
      compression: CODECS[this.o.compressionType] ?? 0,
      producerId: idempotent ? this.producerId : -1n,
      producerEpoch: idempotent ? this.producerEpoch : -1,
      baseSequence: idempotent ? q.sequence : -1,
    });
    if (idempotent) q.sequence = (q.sequence + batch.records.length) % 2 ** 31;
    return batch.encoded;
  }

  private async sendBatch(q: PartitionQueue, batch: Batch): Promise<void> {
    for (;;) {
      batch.attempts++;
      try {
        await this.ensureProducerId();
        const partitions = await this.cluster.partitionsOf(q.topic);
        const leader = partitions.find((p) => p.partition === q.partition)?.leader ?? -1;
        if (leader < 0) throw new KafkaProtocolError(ErrorCode.LEADER_NOT_AVAILABLE, `${q.topic}-${q.partition}`);
        const conn = await this.cluster.connectionTo(leader);
        const v = conn.version(PRODUCE, 3, 9);
        const records = this.encode(q, batch);
        const r = await conn.send(
          PRODUCE,
          v,
          (w) =>
            encodeProduceRequest(
              w,
              {
                transactionalId: null,
                acks: this.o.acks,
                timeoutMs: this.o.requestTimeoutMs,
                topicData: [{ name: q.topic, partitionData: [{ index: q.partition, records }] }],
              },
              v,
            ),
          this.o.acks !== 0,
        );
        if (this.o.acks === 0) {
          this.complete(q, batch, -1n, null);
          return;
        }
        const pr = decodeProduceResponse(r, v).responses[0]?.partitionResponses[0];
        if (!pr) throw new KafkaClientError("INVALID_RESPONSE", "Produce response without the partition");
        if (pr.errorCode === ErrorCode.NONE) {
          this.complete(q, batch, pr.baseOffset, null);
          return;
        }
        throw new KafkaProtocolError(pr.errorCode, `produce to ${q.topic}-${q.partition}`);
      } catch (e) {
        const err = e as Error & { retriable?: boolean; errorCode?: number };
        const expired = Date.now() - batch.createdMs >= this.o.deliveryTimeoutMs;
        if (!err.retriable || batch.attempts > this.o.retries || expired) {
          this.complete(
            q,
            batch,
            -1n,
            expired && err.retriable
              ? new KafkaClientError(
                  "DELIVERY_TIMEOUT",
                  `not acknowledged within deliveryTimeoutMs (delivery.timeout.ms): ${err.message}`,
                  { cause: err },
                )
              : err,
          );
          return;
        }
        if (
          err.errorCode === ErrorCode.NOT_LEADER_OR_FOLLOWER ||
          err.errorCode === ErrorCode.UNKNOWN_TOPIC_OR_PARTITION ||
          err.errorCode === ErrorCode.LEADER_NOT_AVAILABLE ||
          err.name === "ConnectionError"
        ) {
          await this.cluster.refresh([q.topic]).catch(() => {});
        }
        const backoff = Math.min(1000, this.o.retryBackoffMs * 2 ** (batch.attempts - 1));
        await new Promise((r) => setTimeout(r, backoff * (0.8 + Math.random() * 0.4)));
      }
    }
  }

  private complete(q: PartitionQueue, batch: Batch, baseOffset: bigint, error: Error | null): void {
    q.batches.shift();
    q.inFlight = false;
    let bytes = 0;
    batch.records.forEach((r, i) => {
      bytes += r.bytes;
      if (error) r.reject(error);
      else
        r.resolve({
          topic: q.topic,
          partition: q.partition,
          offset: baseOffset < 0n ? -1n : baseOffset + BigInt(i),
          timestamp: r.timestamp,
        });
    });
    this.release(bytes);
    const partitions = this.cluster.partitions(q.topic)?.length ?? 1;
    this.sticky.onBatchSent(q.topic, q.partition, partitions);
    this.drain(q);
    if (this.isIdle()) for (const w of this.idleWaiters.splice(0)) w();
  }

  private isIdle(): boolean {
    for (const q of this.queues.values()) if (q.batches.length > 0) return false;
    return true;
  }

  /** Sends everything waiting now (ignoring lingerMs) and resolves when all of it is acknowledged. */
  flush(): Promise<void> {
    for (const q of this.queues.values()) {
      if (q.lingerTimer) {
        clearTimeout(q.lingerTimer);
        q.lingerTimer = null;
      }
      for (const b of q.batches) b.sealed = true;
      this.drain(q);
    }
    if (this.isIdle()) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  /** Flushes, then closes the connections. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.flush();
    this.closed = true;
    await this.cluster.close();
  }
}
