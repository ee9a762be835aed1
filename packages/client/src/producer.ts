// The producer.
//
// Records go into a per-partition accumulator. A partition's open batch takes records until it
// holds `batchSize` bytes; it is sent when full, when `lingerMs` has passed since it opened, or
// sooner when a flush, a close or a send waiting for memory asks for it. Each record is encoded
// into its batch's buffer as it is appended (batch-builder.ts), so sending a batch costs a header
// and a CRC. The sender groups ready batches by the partition leader and puts one batch per
// partition into each Produce request, with at most `maxInFlightRequestsPerConnection` requests
// in flight per broker.
//
// Memory: `bufferMemory` bounds the bytes of records accepted and not yet completed (each record
// counts its worst-case encoded size). When it is full, `send()` waits (up to `maxBlockMs` or an
// AbortSignal) and `trySend()` fails at once. Waiting sends form one FIFO queue; a send of many
// records waits as one entry whose records go in, in order, as space frees, so no later send
// overtakes it and a full buffer costs one timer per send, not a promise per record.
//
// Idempotence (the default when the broker serves InitProducerId): every batch carries the
// producer id, epoch and the partition's next sequence number, assigned when the batch is first
// sent and kept, with the encoded bytes, across retries, so the broker drops duplicates. Up to
// five batches per partition may be in flight. When one fails with a retriable error, the
// partition stops sending until all its in-flight batches are back; the failed ones are queued
// again in sequence order ahead of newer batches (the broker answers those that followed with
// OUT_OF_ORDER_SEQUENCE_NUMBER, which is then expected and retried). A batch whose outcome is
// unknown and that can no longer be retried (deliveryTimeoutMs) leaves the sequence uncertain:
// the producer then waits for everything in flight and takes a new producer id.
//
// Transactions (`transactionalId`): InitProducerId at the transaction coordinator fences older
// instances; partitions join the transaction (AddPartitionsToTxn) before their first batch goes
// out; `sendOffsets` adds a group's offsets (AddOffsetsToTxn + TxnOffsetCommit); commit flushes
// and sends EndTxn. A fenced producer is dead: every later call fails with the fencing error.

import {
  ApiKey,
  decodeAddOffsetsToTxnResponse,
  decodeAddPartitionsToTxnResponse,
  decodeEndTxnResponse,
  decodeInitProducerIdResponse,
  decodeProduceResponse,
  decodeTxnOffsetCommitResponse,
  ErrorCode,
  encodeAddOffsetsToTxnRequest,
  encodeAddPartitionsToTxnRequest,
  encodeEndTxnRequest,
  encodeInitProducerIdRequest,
  encodeProduceRequest,
  encodeTxnOffsetCommitRequest,
} from "@sluice/protocol";
import type { CompressionCodec } from "@sluice/protocol/records/batch-header.ts";
import { backoffMs, sleep } from "./backoff.ts";
import { byteLengthOf, type EncodedHeader, RecordBatchBuilder, recordBytesMax } from "./batch-builder.ts";
import { Cluster } from "./cluster.ts";
import type { Connection } from "./connection.ts";
import {
  AbortedError,
  BufferExhaustedError,
  ClosedError,
  ConfigError,
  DeliveryTimeoutError,
  type ItemResult,
  KafkaError,
  KafkaProtocolError,
  PartialFailureError,
  RecordTooLargeError,
} from "./errors.ts";
import { PRODUCER_OPTIONS, resolveOptions } from "./options.ts";
import { keyedPartition, type Partitioner, StickyPartitioner } from "./partitioner.ts";

export interface ProducerOptions {
  /** bootstrap.servers: "host:port,host:port" or a list. Required. */
  bootstrapServers: string | readonly string[];
  /** client.id (default "sluice"). */
  clientId?: string;
  /** request.timeout.ms (default 30000): longest wait for one response. */
  requestTimeoutMs?: number;
  /** retry.backoff.ms (default 100): first retry delay, doubled per attempt with ±20 % jitter. */
  retryBackoffMs?: number;
  /** retry.backoff.max.ms (default 1000): the longest retry delay. */
  retryBackoffMaxMs?: number;
  /** reconnect.backoff.ms (default 50): first delay before reconnecting to a broker. */
  reconnectBackoffMs?: number;
  /** reconnect.backoff.max.ms (default 1000). */
  reconnectBackoffMaxMs?: number;
  /** socket.connection.setup.timeout.ms (default 10000). */
  socketConnectionSetupTimeoutMs?: number;
  /** metadata.max.age.ms (default 300000): metadata older than this is refreshed. */
  metadataMaxAgeMs?: number;
  /** acks (default "all"): 0 (no response), 1 (leader wrote it) or "all"/-1 (all in-sync replicas). */
  acks?: 0 | 1 | -1 | "all";
  /** batch.size (default 16384): bytes per partition batch; a full batch is sent at once. */
  batchSize?: number;
  /** linger.ms (default 5): how long a batch waits for more records before it is sent. */
  lingerMs?: number;
  /** buffer.memory (default 33554432): bytes of records waiting; send() waits when full. */
  bufferMemory?: number;
  /** max.block.ms (default 60000): longest wait in send() for metadata and buffer space. */
  maxBlockMs?: number;
  /** max.request.size (default 1048576): larger records are refused at once. */
  maxRequestSize?: number;
  /** compression.type (default "none"): "gzip", "snappy", "lz4" or "zstd". */
  compressionType?: "none" | "gzip" | "snappy" | "lz4" | "zstd";
  /** retries (default 2147483647): retries per batch, bounded by deliveryTimeoutMs. */
  retries?: number;
  /** delivery.timeout.ms (default 120000): time from send() to success or failure. */
  deliveryTimeoutMs?: number;
  /** max.in.flight.requests.per.connection (default 5): unanswered Produce requests per broker. */
  maxInFlightRequestsPerConnection?: number;
  /**
   * enable.idempotence (default true): sequence numbers let the broker drop duplicates from
   * retries. Left unset, it is on when the broker serves InitProducerId and acks is "all", and
   * off with a warning otherwise; set to true, a broker without it is an error.
   */
  enableIdempotence?: boolean;
  /** transactional.id (default none): enables transactions (and idempotence). */
  transactionalId?: string;
  /** transaction.timeout.ms (default 60000): the coordinator aborts transactions open longer. */
  transactionTimeoutMs?: number;
  /** partitioner.ignore.keys (default false): partition keyed records like unkeyed ones. */
  partitionerIgnoreKeys?: boolean;
  /** partitioner.adaptive.partitioning.enable (default true): sticky partitioning favours short queues. */
  partitionerAdaptivePartitioningEnable?: boolean;
  /** partitioner.class: a custom partitioner for records without an explicit partition. */
  partitioner?: Partitioner;
  /** Where warnings go (default: process.emitWarning). */
  logger?: (level: "warn" | "error", message: string) => void;
}

export type HeaderValue = Uint8Array | string | null;

export interface ProducerRecord {
  topic: string;
  value: Uint8Array | string | null;
  key?: Uint8Array | string | null;
  partition?: number;
  /** As an object (one value per key) or a list (repeated keys, order kept). */
  headers?: Readonly<Record<string, HeaderValue>> | readonly { key: string; value: HeaderValue }[];
  /** CreateTime in ms (default: now). */
  timestamp?: bigint | number;
}

/** A kafkajs-style message, sent with `send({ topic, messages })`. */
export type Message = Omit<ProducerRecord, "topic">;

export interface RecordMetadata {
  topic: string;
  partition: number;
  /** -1n with acks=0. */
  offset: bigint;
  /** CreateTime, or the broker's LogAppendTime for topics configured so. */
  timestamp: bigint;
}

export interface SendOptions {
  /** Cancels the wait for metadata or buffer space. */
  signal?: AbortSignal;
}

/** A consumer's group state, for exactly-once consume-transform-produce (TxnOffsetCommit v3+). */
export interface ConsumerGroupMetadata {
  groupId: string;
  generationId: number;
  memberId: string;
  groupInstanceId: string | null;
}

export interface TopicPartitionOffset {
  topic: string;
  partition: number;
  /** The next offset to consume (last processed + 1). */
  offset: bigint;
  metadata?: string | null;
}

/** Receives the outcome of each record of a send. */
interface Sink {
  done(index: number, m: RecordMetadata): void;
  fail(index: number, e: Error): void;
}

/** A record checked and measured, on its way into a batch. */
interface PendingRecord {
  readonly topic: string;
  /** The explicit partition, if any. */
  readonly partition: number | undefined;
  readonly key: Uint8Array | null;
  readonly keyBytes: number;
  /** A string value is written as UTF-8 straight into the batch (bytes when a custom partitioner needs them). */
  readonly value: Uint8Array | string | null;
  readonly valueBytes: number;
  readonly headers: EncodedHeader[] | null;
  readonly timestampMs: number;
  /** Upper bound of its size in a batch: what it holds of bufferMemory. */
  readonly bytes: number;
  readonly sink: Sink;
  readonly index: number;
}

/** A send waiting for buffer space: its records go in, in order, as space frees. */
interface MemoryWaiter {
  readonly records: PendingRecord[];
  readonly partitionCounts: number[];
  /** Records before this one are in batches (or failed). */
  next: number;
  timer: NodeJS.Timeout | null;
  readonly signal: AbortSignal | undefined;
  onAbort: (() => void) | null;
}

interface Batch {
  readonly pq: PartitionQueue;
  readonly builder: RecordBatchBuilder;
  /** Per record, in offset order: whom to tell the outcome, as which index, and its CreateTime. */
  readonly sinks: Sink[];
  readonly indexes: number[];
  readonly timestamps: number[];
  /** bufferMemory held by the batch's records (the sum of their upper bounds). */
  bytes: number;
  readonly createdMs: number;
  /** No more appends (full, or a newer batch was opened). */
  closed: boolean;
  encoded: Buffer | null;
  baseSequence: number;
  attempts: number;
  nextRetryMs: number;
  /** The last attempt ended without an answer: the broker may have written it. */
  outcomeUnknown: boolean;
  doneWaiters: (() => void)[] | null;
  finished: boolean;
}

interface PartitionQueue {
  readonly topic: string;
  readonly partition: number;
  readonly key: string;
  /** Waiting batches: retries first (in sequence order), then new ones. */
  readonly queue: Batch[];
  /** Batches in flight, in sequence order. */
  readonly inFlight: Batch[];
  nextSequence: number;
  queuedBytes: number;
  /** An idempotent retry is pending: send nothing until the in-flight batches are back. */
  recovering: boolean;
}

type TxnState = "uninitialized" | "ready" | "in_transaction" | "completing" | "abortable_error" | "fatal_error";

interface ResolvedProducerOptions {
  bootstrapServers: string | readonly string[];
  clientId: string;
  requestTimeoutMs: number;
  retryBackoffMs: number;
  retryBackoffMaxMs: number;
  reconnectBackoffMs: number;
  reconnectBackoffMaxMs: number;
  socketConnectionSetupTimeoutMs: number;
  metadataMaxAgeMs: number;
  acks: 0 | 1 | -1;
  batchSize: number;
  lingerMs: number;
  bufferMemory: number;
  maxBlockMs: number;
  maxRequestSize: number;
  compressionType: "none" | "gzip" | "snappy" | "lz4" | "zstd";
  retries: number;
  deliveryTimeoutMs: number;
  maxInFlightRequestsPerConnection: number;
  enableIdempotence: boolean;
  transactionalId?: string;
  transactionTimeoutMs: number;
  partitionerIgnoreKeys: boolean;
  partitionerAdaptivePartitioningEnable: boolean;
  partitioner?: Partitioner;
  logger?: (level: "warn" | "error", message: string) => void;
}

const CODECS: Record<string, CompressionCodec> = { none: 0, gzip: 1, snappy: 2, lz4: 3, zstd: 4 };
const PRODUCE_VERSIONS: [number, number] = [3, 11];
const INIT_PRODUCER_ID_VERSIONS: [number, number] = [0, 4];
const ADD_PARTITIONS_VERSIONS: [number, number] = [0, 3];
const ADD_OFFSETS_VERSIONS: [number, number] = [0, 3];
const END_TXN_VERSIONS: [number, number] = [0, 4];
const TXN_OFFSET_COMMIT_VERSIONS: [number, number] = [0, 3];
/** Kafka keeps the last five batches per producer and partition for duplicate detection. */
const IDEMPOTENT_IN_FLIGHT_MAX = 5;
/** Record batch header (61) plus the Produce request's own framing for one partition, rounded up. */
const BATCH_OVERHEAD_BYTES = 61;
/** A new batch's buffer holds at least this many record bytes before it has to grow. */
const BATCH_CAPACITY_MIN = 1024;
const encoder = new TextEncoder();

const toBytes = (v: Uint8Array | string | null | undefined): Uint8Array | null =>
  v === null || v === undefined ? null : typeof v === "string" ? encoder.encode(v) : v;

/** Headers with encoded keys and values; null when there are none. */
function encodeHeaders(h: ProducerRecord["headers"]): EncodedHeader[] | null {
  if (h === undefined || h === null) return null;
  const out: EncodedHeader[] = [];
  if (Array.isArray(h)) {
    for (const x of h as { key: string; value: HeaderValue }[])
      out.push({ key: encoder.encode(x.key), value: toBytes(x.value) });
  } else {
    for (const key in h as Record<string, HeaderValue>)
      if (Object.hasOwn(h, key))
        out.push({ key: encoder.encode(key), value: toBytes((h as Record<string, HeaderValue>)[key]) });
  }
  return out.length === 0 ? null : out;
}

class SingleSink implements Sink {
  readonly promise: Promise<RecordMetadata>;
  private resolve!: (m: RecordMetadata) => void;
  private reject!: (e: Error) => void;
  constructor() {
    this.promise = new Promise((res, rej) => {
      this.resolve = res;
      this.reject = rej;
    });
  }
  done(_i: number, m: RecordMetadata): void {
    this.resolve(m);
  }
  fail(_i: number, e: Error): void {
    this.reject(e);
  }
}

/** One promise for many records: resolves with every record's metadata, or rejects with per-record results. */
class BatchSink implements Sink {
  readonly promise: Promise<RecordMetadata[]>;
  private resolve!: (m: RecordMetadata[]) => void;
  private reject!: (e: Error) => void;
  private readonly results: (RecordMetadata | Error | undefined)[];
  private left: number;
  private failed = false;
  constructor(n: number) {
    this.results = new Array(n);
    this.left = n;
    this.promise = new Promise((res, rej) => {
      this.resolve = res;
      this.reject = rej;
    });
    if (n === 0) this.resolve([]);
  }
  done(i: number, m: RecordMetadata): void {
    this.results[i] = m;
    if (--this.left === 0) this.finish();
  }
  fail(i: number, e: Error): void {
    this.results[i] = e;
    this.failed = true;
    if (--this.left === 0) this.finish();
  }
  private finish(): void {
    if (!this.failed) {
      this.resolve(this.results as RecordMetadata[]);
      return;
    }
    const results: ItemResult<RecordMetadata>[] = this.results.map((r, i) =>
      r instanceof Error
        ? { item: String(i), error: r instanceof KafkaError ? r : new KafkaError("UNKNOWN", r.message, { cause: r }) }
        : { item: String(i), error: null, value: r as RecordMetadata },
    );
    this.reject(new PartialFailureError("send", results));
  }
}

export class Producer {
  private readonly o: ResolvedProducerOptions;
  private readonly cluster: Cluster;
  private readonly partitionQueues = new Map<string, PartitionQueue>();
  private readonly sticky: StickyPartitioner;
  private bufferedBytes = 0;
  /** Sends waiting for buffer space, in send order. */
  private readonly memoryQueue: MemoryWaiter[] = [];
  /** grantMemory() is running (it is re-entered through failures it causes). */
  private granting = false;
  /** Records waiting for metadata, so that later sends queue behind them (FIFO per producer). */
  private metadataBlocked = 0;
  /**
   * The records waiting for metadata, as a chain: each is admitted only after the one sent before
   * it. (Each awaiting its own metadata lookup let them overtake each other when a lookup was
   * retried, e.g. after a cut connection, and records went into batches out of send() order.)
   */
  private metadataWaits: Promise<void> = Promise.resolve();
  /**
   * Records of the current call still to be appended, this one included: a new batch's buffer is
   * sized for them (up to batchSize) instead of growing by doubling.
   */
  private recordsComing = 1;
  private readonly inFlightByNode = new Map<number, number>();
  private inFlightTotal = 0;
  private flushing = 0;
  private closing = false;
  private closed = false;
  private senderScheduled = false;
  private senderMicrotask = false;
  private senderTimer: NodeJS.Timeout | null = null;
  private senderTimerAtMs = Number.POSITIVE_INFINITY;
  private metadataWanted = new Set<string>();
  private metadataRefreshing = false;

  // Idempotence and transactions.
  private idempotence: boolean;
  private readonly idempotenceExplicit: boolean;
  /** "unknown" until InitProducerId answered (or idempotence was found unsupported). */
  private idState: "unknown" | "initializing" | "ready" | "resetting" = "unknown";
  private producerId = -1n;
  private producerEpoch = -1;
  private needsIdReset = false;
  private fatalError: KafkaError | null = null;
  private txnState: TxnState = "uninitialized";
  private txnError: KafkaError | null = null;
  private readonly txnPartitions = new Set<string>();
  private readonly txnPendingPartitions = new Map<string, PartitionQueue>();
  private txnAdding = false;
  private txnOffsetsAdded = false;
  private initPromise: Promise<void> | null = null;

  constructor(options: ProducerOptions) {
    const given = { ...options } as ProducerOptions & { acks?: unknown };
    const o = resolveOptions<Omit<ResolvedProducerOptions, "acks"> & { acks: unknown }>(
      "producer",
      PRODUCER_OPTIONS,
      given,
      ["partitioner", "logger"],
    );
    const acks = o.acks === "all" || o.acks === -1 ? -1 : o.acks;
    if (acks !== 0 && acks !== 1 && acks !== -1)
      throw new ConfigError(`acks must be 0, 1, -1 or "all", got ${String(o.acks)}`);
    this.o = { ...o, acks: acks as 0 | 1 | -1 };
    this.idempotenceExplicit = options.enableIdempotence !== undefined || options.transactionalId !== undefined;
    this.idempotence = this.o.enableIdempotence || this.o.transactionalId !== undefined;
    const conflicts: string[] = [];
    if (this.o.acks !== -1) conflicts.push('acks must be "all"');
    if (this.o.maxInFlightRequestsPerConnection > IDEMPOTENT_IN_FLIGHT_MAX)
      conflicts.push(`maxInFlightRequestsPerConnection must be at most ${IDEMPOTENT_IN_FLIGHT_MAX}`);
    if (this.o.retries === 0) conflicts.push("retries must be above 0");
    if (this.idempotence && conflicts.length > 0) {
      if (this.idempotenceExplicit)
        throw new ConfigError(`idempotence (enable.idempotence / transactional.id): ${conflicts.join(", ")}`);
      this.idempotence = false; // as in Java: left unset, it quietly gives way to explicit settings
    }
    if (this.o.maxInFlightRequestsPerConnection < 1)
      throw new ConfigError("maxInFlightRequestsPerConnection must be at least 1");
    if (this.o.batchSize < 1) throw new ConfigError("batchSize must be at least 1");
    if (this.o.transactionalId === undefined) this.txnState = "ready";
    this.sticky = new StickyPartitioner({
      batchSize: this.o.batchSize,
      adaptive: this.o.partitionerAdaptivePartitioningEnable,
    });
    this.cluster = new Cluster({ ...this.o, allowAutoCreateTopics: true });
  }

  /** Bytes of records accepted and not yet completed (bounded by bufferMemory). */
  get bufferedBytesNow(): number {
    return this.bufferedBytes;
  }

  /** Whether batches carry producer ids and sequence numbers (known after the first send). */
  get isIdempotent(): boolean {
    return this.idempotence && this.idState === "ready";
  }

  /** Producer id and epoch in use (-1 when not idempotent or not yet known). */
  get producerIdentity(): { producerId: bigint; producerEpoch: number } {
    return { producerId: this.producerId, producerEpoch: this.producerEpoch };
  }

  // ---- sending ----------------------------------------------------------------------------

  /**
   * Sends a record; resolves with its partition and offset once its batch is acknowledged. Waits
   * for metadata and buffer space up to maxBlockMs. With `{ topic, messages }` (kafkajs style)
   * sends them all and resolves with each one's metadata.
   */
  send(record: ProducerRecord, opts?: SendOptions): Promise<RecordMetadata>;
  send(batch: { topic: string; messages: readonly Message[] }, opts?: SendOptions): Promise<RecordMetadata[]>;
  send(
    r: ProducerRecord | { topic: string; messages: readonly Message[] },
    opts: SendOptions = {},
  ): Promise<RecordMetadata | RecordMetadata[]> {
    if ("messages" in r) return this.sendMany(r.messages, r.topic, opts);
    const sink = new SingleSink();
    this.accept(r, r.topic, sink, 0, opts.signal, true, null);
    return sink.promise;
  }

  /** Like send(), but fails at once with BufferExhaustedError when the buffer is full. */
  trySend(record: ProducerRecord): Promise<RecordMetadata> {
    const sink = new SingleSink();
    this.accept(record, record.topic, sink, 0, undefined, false, null);
    return sink.promise;
  }

  /**
   * Sends many records with one promise: resolves with their metadata in order; when some fail,
   * rejects with a PartialFailureError whose `results` has each record's metadata or error.
   */
  sendBatch(records: readonly ProducerRecord[], opts: SendOptions = {}): Promise<RecordMetadata[]> {
    return this.sendMany(records, undefined, opts);
  }

  /** Records of one call, in order; `topic` (kafkajs-style send) overrides each record's. */
  private sendMany(
    records: readonly (ProducerRecord | Message)[],
    topic: string | undefined,
    opts: SendOptions,
  ): Promise<RecordMetadata[]> {
    const sink = new BatchSink(records.length);
    let waiter: MemoryWaiter | null = null;
    try {
      for (let i = 0; i < records.length; i++) {
        const r = records[i]!;
        this.recordsComing = records.length - i;
        waiter = this.accept(r, topic ?? (r as ProducerRecord).topic, sink, i, opts.signal, true, waiter);
      }
    } finally {
      this.recordsComing = 1;
    }
    return sink.promise;
  }

  /**
   * Takes one record: into a batch at once when metadata is known, nobody waits for memory and
   * the buffer has room; else it waits. `joinable` is the memory waiter of the same call's
   * previous record, which this one joins while it is still the last in the queue. Returns the
   * waiter this record joined (null when it did not wait for memory).
   */
  private accept(
    record: ProducerRecord | Message,
    topic: string,
    sink: Sink,
    index: number,
    signal: AbortSignal | undefined,
    block: boolean,
    joinable: MemoryWaiter | null,
  ): MemoryWaiter | null {
    let p: PendingRecord;
    try {
      p = this.prepare(record, topic, sink, index);
    } catch (e) {
      sink.fail(index, e as Error);
      return joinable;
    }
    const partitions = this.cluster.partitions(topic);
    if (partitions === undefined || (block && this.metadataBlocked > 0)) {
      // Sends behind one that waits for metadata wait too, so that none overtakes it.
      const deadline = Date.now() + this.o.maxBlockMs;
      this.metadataBlocked++;
      this.metadataWaits = this.metadataWaits.then(() =>
        this.acceptSlow(p, signal, block, deadline).finally(() => {
          this.metadataBlocked--;
        }),
      );
      return joinable;
    }
    return this.admit(p, partitions.length, signal, block, Date.now() + this.o.maxBlockMs, joinable);
  }

  /** With metadata known: into a batch if memory allows and nobody is queued, else wait (or fail). */
  private admit(
    p: PendingRecord,
    partitionCount: number,
    signal: AbortSignal | undefined,
    block: boolean,
    deadlineMs: number,
    joinable: MemoryWaiter | null,
  ): MemoryWaiter | null {
    if (this.memoryQueue.length === 0 && this.bufferedBytes + p.bytes <= this.o.bufferMemory) {
      this.bufferedBytes += p.bytes;
      this.appendOrFail(p, partitionCount);
      return null;
    }
    if (!block) {
      p.sink.fail(
        p.index,
        new BufferExhaustedError(`bufferMemory (buffer.memory) of ${this.o.bufferMemory} bytes is full`),
      );
      return joinable;
    }
    if (joinable !== null && joinable === this.memoryQueue.at(-1)) {
      joinable.records.push(p);
      joinable.partitionCounts.push(partitionCount);
      return joinable;
    }
    if (signal?.aborted) {
      p.sink.fail(p.index, new AbortedError("send() was aborted"));
      return null;
    }
    const w: MemoryWaiter = {
      records: [p],
      partitionCounts: [partitionCount],
      next: 0,
      timer: null,
      signal,
      onAbort: null,
    };
    const bytes = p.bytes;
    w.timer = setTimeout(
      () =>
        this.failWaiter(
          w,
          new BufferExhaustedError(
            `no buffer space for ${bytes} bytes within maxBlockMs (max.block.ms) ${this.o.maxBlockMs} ms (bufferMemory ${this.o.bufferMemory})`,
          ),
        ),
      Math.max(0, deadlineMs - Date.now()),
    );
    if (signal) {
      w.onAbort = () => this.failWaiter(w, new AbortedError("send() was aborted while waiting for buffer space"));
      signal.addEventListener("abort", w.onAbort, { once: true });
    }
    this.memoryQueue.push(w);
    // Sends are waiting: batches are ready now rather than after lingerMs (as Java's "exhausted").
    this.wakeSender();
    return w;
  }

  /** Admits one record once its topic's metadata is known (never rejects: failures go to its sink). */
  private async acceptSlow(
    p: PendingRecord,
    signal: AbortSignal | undefined,
    block: boolean,
    deadline: number,
  ): Promise<void> {
    try {
      const known = this.cluster.partitions(p.topic);
      const partitions =
        known ??
        (await this.cluster.partitionsOf(p.topic, deadline, signal).catch((e: unknown) => {
          if (e instanceof KafkaError && e.code === "UNKNOWN_TOPIC_OR_PARTITION")
            throw new KafkaError(
              "TIMEOUT",
              `topic ${p.topic} not present in metadata after maxBlockMs (max.block.ms) ${this.o.maxBlockMs} ms`,
              { retriable: true, cause: e },
            );
          throw e;
        }));
      if (this.fatalError) throw this.fatalError;
      if (this.closed) throw new ClosedError("producer");
      if (signal?.aborted) throw new AbortedError("send() was aborted while waiting for metadata");
      this.admit(p, partitions.length, signal, block, deadline, null);
    } catch (e) {
      p.sink.fail(p.index, e as Error);
    }
  }

  private prepare(record: ProducerRecord | Message, topic: string, sink: Sink, index: number): PendingRecord {
    if (this.fatalError) throw this.fatalError;
    if (this.closing) throw new ClosedError("producer");
    if (this.o.transactionalId !== undefined && this.txnState !== "in_transaction") {
      throw new KafkaError(
        "INVALID_TXN_STATE",
        this.txnState === "abortable_error"
          ? `the transaction failed and must be aborted: ${this.txnError?.message}`
          : "a transactional producer sends only inside a transaction (transaction() or beginTransaction())",
        { cause: this.txnError },
      );
    }
    if (typeof topic !== "string" || topic.length === 0)
      throw new KafkaError("INVALID_TOPIC_EXCEPTION", "a record needs a topic");
    const key = toBytes(record.key);
    const rawValue = record.value ?? null;
    // A custom partitioner sees the value's bytes; otherwise a string goes into the batch as it is.
    const value = this.o.partitioner !== undefined ? toBytes(rawValue) : rawValue;
    const headers = encodeHeaders(record.headers);
    const keyBytes = key === null ? -1 : key.length;
    const valueBytes = byteLengthOf(value);
    const bytes = recordBytesMax(keyBytes, valueBytes, headers);
    const size = bytes + BATCH_OVERHEAD_BYTES;
    if (size > this.o.maxRequestSize) throw new RecordTooLargeError(size, this.o.maxRequestSize);
    if (size > this.o.bufferMemory)
      throw new RecordTooLargeError(size, this.o.bufferMemory, "bufferMemory (buffer.memory)");
    const ts = record.timestamp;
    const timestampMs = ts === undefined ? Date.now() : typeof ts === "bigint" ? Number(ts) : Math.trunc(ts);
    if (!Number.isSafeInteger(timestampMs))
      throw new KafkaError("INVALID_TIMESTAMP", `timestamp ${String(ts)} is not a millisecond time`, {
        errorCode: ErrorCode.INVALID_TIMESTAMP,
      });
    return {
      topic,
      partition: record.partition,
      key,
      keyBytes,
      value,
      valueBytes,
      headers,
      timestampMs,
      bytes,
      sink,
      index,
    };
  }

  private failWaiter(w: MemoryWaiter, e: Error): void {
    const i = this.memoryQueue.indexOf(w);
    if (i < 0) return;
    this.memoryQueue.splice(i, 1);
    this.disarm(w);
    for (let k = w.next; k < w.records.length; k++) w.records[k]!.sink.fail(w.records[k]!.index, e);
    w.next = w.records.length;
    this.grantMemory(); // the next waiter may fit now
  }

  private disarm(w: MemoryWaiter): void {
    if (w.timer) clearTimeout(w.timer);
    w.timer = null;
    if (w.onAbort) w.signal?.removeEventListener("abort", w.onAbort);
    w.onAbort = null;
  }

  private release(bytes: number): void {
    this.bufferedBytes -= bytes;
    this.grantMemory();
  }

  /** Lets waiting records in, strictly in queue order, while they fit. */
  private grantMemory(): void {
    if (this.granting) return; // the loop below is running further up the stack and re-checks
    this.granting = true;
    try {
      while (this.memoryQueue.length > 0) {
        const w = this.memoryQueue[0]!;
        while (w.next < w.records.length) {
          const p = w.records[w.next]!;
          if (this.bufferedBytes + p.bytes > this.o.bufferMemory) return;
          const partitionCount = w.partitionCounts[w.next]!;
          this.recordsComing = w.records.length - w.next;
          w.next++;
          this.bufferedBytes += p.bytes;
          this.appendOrFail(p, partitionCount);
          this.recordsComing = 1;
        }
        this.memoryQueue.shift();
        this.disarm(w);
      }
    } finally {
      this.granting = false;
    }
  }

  /** Fails every record still waiting for memory. */
  private failWaiters(e: Error): void {
    for (const w of this.memoryQueue.splice(0)) {
      this.disarm(w);
      for (let k = w.next; k < w.records.length; k++) w.records[k]!.sink.fail(w.records[k]!.index, e);
      w.next = w.records.length;
    }
  }

  private appendOrFail(p: PendingRecord, partitionCount: number): void {
    let partition: number;
    try {
      if (this.fatalError) throw this.fatalError;
      partition = this.choosePartition(p, partitionCount);
    } catch (e) {
      this.release(p.bytes);
      p.sink.fail(p.index, e as Error);
      return;
    }
    this.append(p.topic, partition, p);
  }

  private choosePartition(p: PendingRecord, count: number): number {
    if (p.partition !== undefined) {
      if (!Number.isInteger(p.partition) || p.partition < 0 || p.partition >= count) {
        throw new KafkaError(
          "UNKNOWN_TOPIC_OR_PARTITION",
          `partition ${p.partition} of ${p.topic} does not exist (${count} partitions)`,
          { errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION },
        );
      }
      return p.partition;
    }
    if (this.o.partitioner) {
      const chosen = this.o.partitioner({
        topic: p.topic,
        key: p.key,
        value: p.value as Uint8Array | null,
        partitionCount: count,
      });
      if (!Number.isInteger(chosen) || chosen < 0 || chosen >= count)
        throw new KafkaError("INVALID_PARTITION", `the custom partitioner chose ${chosen} of ${count} partitions`);
      return chosen;
    }
    if (p.key !== null && !this.o.partitionerIgnoreKeys) return keyedPartition(p.key, count);
    const stuck = this.sticky.stick(p.topic, count, p.bytes);
    if (stuck >= 0) return stuck;
    const infos = this.cluster.partitions(p.topic) ?? [];
    const available = infos.filter((i) => i.leader >= 0).map((i) => i.partition);
    return this.sticky.partition(
      p.topic,
      count,
      p.bytes,
      available.length === count ? [] : available,
      (part) => this.partitionQueues.get(`${p.topic}\u0000${part}`)?.queuedBytes ?? 0,
    );
  }

  private queueOf(topic: string, partition: number): PartitionQueue {
    const key = `${topic}\u0000${partition}`;
    let pq = this.partitionQueues.get(key);
    if (!pq) {
      pq = { topic, partition, key, queue: [], inFlight: [], nextSequence: 0, queuedBytes: 0, recovering: false };
      this.partitionQueues.set(key, pq);
    }
    return pq;
  }

  private append(topic: string, partition: number, p: PendingRecord): void {
    const pq = this.queueOf(topic, partition);
    if (this.o.transactionalId !== undefined && !this.txnPartitions.has(pq.key))
      this.txnPendingPartitions.set(pq.key, pq);
    let batch = pq.queue[pq.queue.length - 1];
    if (
      batch === undefined ||
      batch.closed ||
      batch.encoded !== null ||
      batch.builder.sizeInBytes + p.bytes > this.o.batchSize
    ) {
      if (batch) batch.closed = true;
      batch = {
        pq,
        builder: new RecordBatchBuilder(
          Math.min(this.o.batchSize, Math.max(p.bytes * this.recordsComing, BATCH_CAPACITY_MIN)),
          p.bytes,
        ),
        sinks: [],
        indexes: [],
        timestamps: [],
        bytes: 0,
        createdMs: Date.now(),
        closed: false,
        encoded: null,
        baseSequence: -1,
        attempts: 0,
        nextRetryMs: 0,
        outcomeUnknown: false,
        doneWaiters: null,
        finished: false,
      };
      pq.queue.push(batch);
      // A new batch needs the sender: at once if a batch before it is complete, else at linger time.
      // With lingerMs 0 the sender runs on this turn (a microtask: the records appended by the same
      // synchronous code still share the batch), not after a setImmediate hop.
      if (this.o.lingerMs <= 0) this.wakeSenderThisTurn();
      else this.wakeSender(pq.queue.length > 1 ? 0 : this.o.lingerMs);
    }
    batch.builder.append(p.key, p.keyBytes, p.value, p.valueBytes, p.headers, p.timestampMs);
    batch.sinks.push(p.sink);
    batch.indexes.push(p.index);
    batch.timestamps.push(p.timestampMs);
    batch.bytes += p.bytes;
    pq.queuedBytes += p.bytes;
    if (batch.builder.sizeInBytes >= this.o.batchSize) {
      batch.closed = true;
      this.wakeSender();
    }
  }

  // ---- the sender -------------------------------------------------------------------------

  /** Runs the sender after `delayMs` (coalesced: a burst of sends triggers one pass). */
  private wakeSender(delayMs = 0): void {
    if (this.closed) return;
    if (delayMs <= 0) {
      if (this.senderScheduled) return;
      this.senderScheduled = true;
      setImmediate(() => {
        this.senderScheduled = false;
        this.runSender();
      });
      return;
    }
    const at = Date.now() + delayMs;
    if (at >= this.senderTimerAtMs) return;
    if (this.senderTimer) clearTimeout(this.senderTimer);
    this.senderTimerAtMs = at;
    this.senderTimer = setTimeout(() => {
      this.senderTimer = null;
      this.senderTimerAtMs = Number.POSITIVE_INFINITY;
      this.runSender();
    }, delayMs);
  }

  /** Runs the sender in a microtask (coalesced with any pass already scheduled). */
  private wakeSenderThisTurn(): void {
    if (this.closed || this.senderMicrotask) return;
    this.senderMicrotask = true;
    queueMicrotask(() => {
      this.senderMicrotask = false;
      this.runSender();
    });
  }

  private sendable(b: Batch, pq: PartitionQueue, now: number): boolean {
    return (
      b.closed ||
      pq.queue.length > 1 ||
      b.attempts > 0 ||
      now - b.createdMs >= this.o.lingerMs ||
      this.flushing > 0 ||
      this.closing ||
      this.memoryQueue.length > 0 ||
      this.txnState === "completing"
    );
  }

  private runSender(): void {
    if (this.closed) return;
    if (this.idempotence && this.idState !== "ready") {
      this.ensureProducerId(); // asynchronous: the sender runs again when it is done
      return;
    }
    if (this.needsIdReset) {
      if (this.inFlightTotal === 0) this.resetProducerId();
      return;
    }
    const now = Date.now();
    this.expireBatches(now);
    let nextWakeMs = Number.POSITIVE_INFINITY;
    const readyByNode = new Map<number, PartitionQueue[]>();
    const perPartitionMax = this.idempotence ? IDEMPOTENT_IN_FLIGHT_MAX : this.o.maxInFlightRequestsPerConnection;
    for (const pq of this.partitionQueues.values()) {
      const first = pq.queue[0];
      if (!first) continue;
      if (pq.recovering && pq.inFlight.length > 0) continue;
      if (pq.inFlight.length >= perPartitionMax) continue;
      if (first.nextRetryMs > now) {
        nextWakeMs = Math.min(nextWakeMs, first.nextRetryMs);
        continue;
      }
      if (!this.sendable(first, pq, now)) {
        nextWakeMs = Math.min(nextWakeMs, first.createdMs + this.o.lingerMs);
        continue;
      }
      const leader = this.cluster.leaderOf(pq.topic, pq.partition);
      if (leader < 0) {
        this.metadataWanted.add(pq.topic);
        continue;
      }
      if (this.o.transactionalId !== undefined && !this.txnPartitions.has(pq.key)) {
        this.txnPendingPartitions.set(pq.key, pq);
        continue;
      }
      const list = readyByNode.get(leader);
      if (list) list.push(pq);
      else readyByNode.set(leader, [pq]);
    }
    for (const [node, pqs] of readyByNode) this.drainNode(node, pqs, perPartitionMax, now);
    if (this.metadataWanted.size > 0) this.refreshMetadata();
    if (this.txnPendingPartitions.size > 0 && this.txnState === "in_transaction") void this.addPartitionsToTxn();
    if (this.txnPendingPartitions.size > 0 && this.txnState === "completing") void this.addPartitionsToTxn();
    if (nextWakeMs < Number.POSITIVE_INFINITY) this.wakeSender(Math.max(1, nextWakeMs - Date.now()));
  }

  /** Sends requests to one broker while it has room: one batch per partition per request. */
  private drainNode(node: number, pqs: PartitionQueue[], perPartitionMax: number, now: number): void {
    for (;;) {
      if ((this.inFlightByNode.get(node) ?? 0) >= this.o.maxInFlightRequestsPerConnection) return;
      const batches: Batch[] = [];
      let bytes = 0;
      for (const pq of pqs) {
        const b = pq.queue[0];
        if (!b || pq.inFlight.length >= perPartitionMax || (pq.recovering && pq.inFlight.length > 0)) continue;
        if (b.nextRetryMs > now || !this.sendable(b, pq, now)) continue;
        const encoded = this.encode(b);
        if (batches.length > 0 && bytes + encoded.length > this.o.maxRequestSize) continue;
        bytes += encoded.length;
        pq.queue.shift();
        pq.recovering = false;
        this.insertInFlight(pq, b);
        batches.push(b);
      }
      if (batches.length === 0) return;
      this.inFlightByNode.set(node, (this.inFlightByNode.get(node) ?? 0) + 1);
      this.inFlightTotal++;
      void this.produce(node, batches);
    }
  }

  private insertInFlight(pq: PartitionQueue, b: Batch): void {
    let i = pq.inFlight.length;
    while (i > 0 && pq.inFlight[i - 1]!.baseSequence > b.baseSequence) i--;
    pq.inFlight.splice(i, 0, b);
  }

  private encode(b: Batch): Buffer {
    if (b.encoded) return b.encoded;
    const idempotent = this.idempotence && this.producerId >= 0n;
    if (idempotent) {
      b.baseSequence = b.pq.nextSequence;
      b.pq.nextSequence = (b.pq.nextSequence + b.sinks.length) % 2 ** 31;
    }
    b.closed = true;
    b.encoded = b.builder.build({
      compression: CODECS[this.o.compressionType] ?? 0,
      producerId: idempotent ? this.producerId : -1n,
      producerEpoch: idempotent ? this.producerEpoch : -1,
      baseSequence: idempotent ? b.baseSequence : -1,
      transactional: this.o.transactionalId !== undefined,
    });
    return b.encoded;
  }

  private refreshMetadata(): void {
    if (this.metadataRefreshing) return;
    this.metadataRefreshing = true;
    const topics = [...this.metadataWanted];
    this.metadataWanted.clear();
    for (const t of topics) this.cluster.invalidate(t);
    void this.cluster
      .refresh(topics)
      .catch(() => {})
      .then(() => sleep(this.o.retryBackoffMs))
      .finally(() => {
        this.metadataRefreshing = false;
        this.wakeSender();
      });
  }

  private async produce(node: number, batches: Batch[]): Promise<void> {
    for (const b of batches) b.attempts++;
    try {
      const conn = this.cluster.openConnectionTo(node) ?? (await this.cluster.connectionTo(node));
      const byTopic = new Map<string, { index: number; records: Uint8Array }[]>();
      for (const b of batches) {
        const list = byTopic.get(b.pq.topic);
        const entry = { index: b.pq.partition, records: b.encoded! };
        if (list) list.push(entry);
        else byTopic.set(b.pq.topic, [entry]);
      }
      const request = {
        transactionalId: this.o.transactionalId ?? null,
        acks: this.o.acks,
        timeoutMs: this.o.requestTimeoutMs,
        topicData: [...byTopic].map(([name, partitionData]) => ({ name, partitionData })),
      };
      if (this.o.acks === 0) {
        const v = conn.version(ApiKey.Produce, PRODUCE_VERSIONS[0], PRODUCE_VERSIONS[1]);
        conn.sendNoResponse(ApiKey.Produce, v, (w) => encodeProduceRequest(w, request, v));
        for (const b of batches) this.complete(b, -1n, -1n);
        return;
      }
      const res = await conn.request(
        ApiKey.Produce,
        PRODUCE_VERSIONS,
        (w, v) => encodeProduceRequest(w, request, v),
        decodeProduceResponse,
      );
      const answers = new Map<string, (typeof res.responses)[number]["partitionResponses"][number]>();
      for (const t of res.responses) for (const p of t.partitionResponses) answers.set(`${t.name}\u0000${p.index}`, p);
      for (const b of batches) {
        const a = answers.get(b.pq.key);
        if (!a) {
          this.onBatchError(
            b,
            new KafkaError("INVALID_RESPONSE", `Produce response without ${b.pq.topic}-${b.pq.partition}`, {
              retriable: true,
            }),
            false,
          );
          continue;
        }
        if (a.errorCode === ErrorCode.NONE || a.errorCode === ErrorCode.DUPLICATE_SEQUENCE_NUMBER) {
          this.complete(b, a.baseOffset, a.logAppendTimeMs);
          continue;
        }
        const detail = a.errorMessage ?? a.recordErrors[0]?.batchIndexErrorMessage ?? null;
        this.onBatchError(
          b,
          new KafkaProtocolError(a.errorCode, `produce to ${b.pq.topic}-${b.pq.partition}`, detail),
          false,
        );
      }
    } catch (e) {
      // No answer: the broker may or may not have written these batches.
      const err =
        e instanceof KafkaError ? e : new KafkaError("UNKNOWN", (e as Error).message, { cause: e, retriable: false });
      for (const b of batches) this.onBatchError(b, err, true);
    } finally {
      this.inFlightByNode.set(node, (this.inFlightByNode.get(node) ?? 1) - 1);
      this.inFlightTotal--;
      this.wakeSender();
    }
  }

  private removeInFlight(b: Batch): void {
    const i = b.pq.inFlight.indexOf(b);
    if (i >= 0) b.pq.inFlight.splice(i, 1);
  }

  private onBatchError(b: Batch, err: KafkaError, noAnswer: boolean): void {
    this.removeInFlight(b);
    const pq = b.pq;
    const code = err.errorCode;
    if (
      code === ErrorCode.NOT_LEADER_OR_FOLLOWER ||
      code === ErrorCode.UNKNOWN_TOPIC_OR_PARTITION ||
      code === ErrorCode.LEADER_NOT_AVAILABLE ||
      code === ErrorCode.FENCED_LEADER_EPOCH ||
      (err instanceof KafkaError && err.code === "NETWORK_EXCEPTION")
    )
      this.metadataWanted.add(pq.topic);
    // After an earlier batch of this partition failed, later ones are expected out of sequence.
    const expectedGap =
      this.idempotence &&
      code === ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER &&
      (pq.recovering || pq.queue.some((q) => q.attempts > 0 && q.baseSequence < b.baseSequence));
    const retriable = err.retriable || expectedGap;
    const expired = Date.now() - b.createdMs >= this.o.deliveryTimeoutMs;
    if (noAnswer) b.outcomeUnknown = true;
    else if (!expectedGap) b.outcomeUnknown = false;
    if (retriable && !expired && b.attempts <= this.o.retries && !this.fatalError) {
      // Queue again ahead of newer batches, in sequence order among the retries.
      let i = 0;
      while (i < pq.queue.length && pq.queue[i]!.encoded !== null && pq.queue[i]!.baseSequence < b.baseSequence) i++;
      pq.queue.splice(i, 0, b);
      b.nextRetryMs = Date.now() + backoffMs(b.attempts - 1, this.o.retryBackoffMs, this.o.retryBackoffMaxMs);
      if (this.idempotence) pq.recovering = true;
      return;
    }
    const final =
      retriable && expired
        ? new DeliveryTimeoutError(
            `${b.sinks.length} record(s) for ${pq.topic}-${pq.partition} not acknowledged within deliveryTimeoutMs (delivery.timeout.ms) ${this.o.deliveryTimeoutMs} ms: ${err.message}`,
            err,
          )
        : err;
    this.onFatalForIdempotence(b, err);
    this.fail(b, final);
  }

  /** Decides what a batch that will not be retried means for the producer id and the transaction. */
  private onFatalForIdempotence(b: Batch, err: KafkaError): void {
    if (this.o.transactionalId !== undefined) {
      const code = err.errorCode;
      if (
        code === ErrorCode.PRODUCER_FENCED ||
        code === ErrorCode.INVALID_PRODUCER_EPOCH ||
        code === ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
      )
        this.setFatal(err);
      else this.setAbortable(err);
      return;
    }
    if (!this.idempotence || b.baseSequence < 0) return;
    const code = err.errorCode;
    // A sequence that may or may not be in the log, or a broker that lost track of us: start afresh.
    if (
      b.outcomeUnknown ||
      code === ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER ||
      code === ErrorCode.UNKNOWN_PRODUCER_ID ||
      code === ErrorCode.INVALID_PRODUCER_EPOCH ||
      code === ErrorCode.PRODUCER_FENCED
    )
      this.needsIdReset = true;
  }

  private expireBatches(now: number): void {
    for (const pq of this.partitionQueues.values()) {
      while (pq.queue.length > 0) {
        const b = pq.queue[0]!;
        if (now - b.createdMs < this.o.deliveryTimeoutMs) break;
        pq.queue.shift();
        const err = new DeliveryTimeoutError(
          `${b.sinks.length} record(s) for ${pq.topic}-${pq.partition} expired: not sent within deliveryTimeoutMs (delivery.timeout.ms) ${this.o.deliveryTimeoutMs} ms`,
        );
        this.onFatalForIdempotence(b, err);
        this.fail(b, err);
      }
    }
  }

  private complete(b: Batch, baseOffset: bigint, logAppendTimeMs: bigint): void {
    this.removeInFlight(b);
    const pq = b.pq;
    this.finish(b);
    const n = b.sinks.length;
    // Records appended in the same millisecond share one bigint.
    let lastMs = Number.NaN;
    let lastTimestamp = -1n;
    for (let i = 0; i < n; i++) {
      const ms = b.timestamps[i]!;
      if (ms !== lastMs) {
        lastMs = ms;
        lastTimestamp = BigInt(ms);
      }
      b.sinks[i]!.done(b.indexes[i]!, {
        topic: pq.topic,
        partition: pq.partition,
        offset: baseOffset < 0n ? -1n : baseOffset + BigInt(i),
        timestamp: logAppendTimeMs >= 0n ? logAppendTimeMs : lastTimestamp,
      });
    }
  }

  private fail(b: Batch, e: Error): void {
    this.removeInFlight(b);
    this.finish(b);
    for (let i = 0; i < b.sinks.length; i++) b.sinks[i]!.fail(b.indexes[i]!, e);
  }

  private finish(b: Batch): void {
    if (b.finished) return;
    b.finished = true;
    b.pq.queuedBytes -= b.bytes;
    this.release(b.bytes);
    for (const w of b.doneWaiters ?? []) w();
    b.doneWaiters = null;
  }

  private whenDone(b: Batch): Promise<void> {
    if (b.finished) return Promise.resolve();
    return new Promise((r) => {
      b.doneWaiters ??= [];
      b.doneWaiters.push(r);
    });
  }

  // ---- producer id --------------------------------------------------------------------------

  private ensureProducerId(): void {
    if (this.idState !== "unknown") return;
    this.idState = "initializing";
    void this.initProducerId()
      .then(() => {
        this.idState = "ready";
      })
      .catch((e: unknown) => {
        const err = e instanceof KafkaError ? e : new KafkaError("UNKNOWN", String(e), { cause: e });
        if (this.o.transactionalId === undefined && err.code === "UNSUPPORTED_VERSION" && !this.idempotenceExplicit) {
          this.warn(`the broker does not serve InitProducerId: producing without idempotence (${err.message})`);
          this.idempotence = false;
          this.idState = "ready";
          return;
        }
        if (err.retriable) {
          this.idState = "unknown";
          return sleep(this.o.retryBackoffMs);
        }
        this.setFatal(err);
        this.idState = "unknown";
      })
      .finally(() => this.wakeSender());
  }

  private async initProducerId(): Promise<void> {
    const conn =
      this.o.transactionalId !== undefined
        ? await this.cluster.coordinator("transaction", this.o.transactionalId)
        : await this.cluster.anyConnection();
    if (!conn.supports(ApiKey.InitProducerId))
      throw new KafkaError("UNSUPPORTED_VERSION", `broker ${conn.host}:${conn.port} does not serve InitProducerId`, {
        errorCode: ErrorCode.UNSUPPORTED_VERSION,
      });
    const res = await conn.request(
      ApiKey.InitProducerId,
      INIT_PRODUCER_ID_VERSIONS,
      (w, v) =>
        encodeInitProducerIdRequest(
          w,
          {
            transactionalId: this.o.transactionalId ?? null,
            transactionTimeoutMs: this.o.transactionalId !== undefined ? this.o.transactionTimeoutMs : -1,
            producerId: -1n,
            producerEpoch: -1,
          },
          v,
        ),
      decodeInitProducerIdResponse,
    );
    if (res.errorCode !== ErrorCode.NONE) {
      if (res.errorCode === ErrorCode.NOT_COORDINATOR && this.o.transactionalId !== undefined)
        this.cluster.invalidateCoordinator("transaction", this.o.transactionalId);
      const retriable =
        res.errorCode === ErrorCode.CONCURRENT_TRANSACTIONS ||
        res.errorCode === ErrorCode.COORDINATOR_LOAD_IN_PROGRESS ||
        res.errorCode === ErrorCode.NOT_COORDINATOR ||
        res.errorCode === ErrorCode.COORDINATOR_NOT_AVAILABLE;
      const err = new KafkaProtocolError(res.errorCode, "InitProducerId");
      throw retriable ? new KafkaError(err.code, err.message, { errorCode: res.errorCode, retriable: true }) : err;
    }
    this.producerId = res.producerId;
    this.producerEpoch = res.producerEpoch;
    for (const pq of this.partitionQueues.values()) pq.nextSequence = 0;
  }

  /** New producer id after an uncertain sequence; nothing is in flight when this runs. */
  private resetProducerId(): void {
    if (this.idState === "resetting") return;
    this.idState = "resetting";
    for (const pq of this.partitionQueues.values()) {
      for (const b of [...pq.queue]) {
        if (b.encoded === null) continue;
        if (b.outcomeUnknown) {
          pq.queue.splice(pq.queue.indexOf(b), 1);
          this.fail(
            b,
            new KafkaError(
              "OUT_OF_ORDER_SEQUENCE_NUMBER",
              `the outcome of ${b.sinks.length} record(s) for ${pq.topic}-${pq.partition} is unknown and the producer id had to be reset`,
              { retriable: true },
            ),
          );
          continue;
        }
        b.encoded = null; // re-sequenced under the new producer id
        b.baseSequence = -1;
      }
      pq.recovering = false;
      pq.nextSequence = 0;
    }
    void (async () => {
      for (let attempt = 0; ; attempt++) {
        try {
          await this.initProducerId();
          break;
        } catch (e) {
          if (!(e instanceof KafkaError) || !e.retriable || this.closed) {
            this.setFatal(e instanceof KafkaError ? e : new KafkaError("UNKNOWN", String(e)));
            break;
          }
          await sleep(backoffMs(attempt, this.o.retryBackoffMs, this.o.retryBackoffMaxMs));
        }
      }
      this.needsIdReset = false;
      this.idState = "ready";
      this.wakeSender();
    })();
  }

  private setFatal(e: KafkaError): void {
    if (this.fatalError) return;
    this.fatalError = e;
    if (this.o.transactionalId !== undefined) this.txnState = "fatal_error";
    // Nothing more can be sent: fail everything waiting.
    for (const pq of this.partitionQueues.values()) for (const b of pq.queue.splice(0)) this.fail(b, e);
    this.failWaiters(e);
  }

  private setAbortable(e: KafkaError): void {
    if (this.txnState === "in_transaction" || this.txnState === "completing") {
      this.txnState = "abortable_error";
      this.txnError = e;
    }
  }

  private warn(message: string): void {
    if (this.o.logger) this.o.logger("warn", message);
    else process.emitWarning(message, { code: "SLUICE_PRODUCER" });
  }

  // ---- flush and close --------------------------------------------------------------------

  /** Sends everything waiting now (ignoring lingerMs); resolves when it is all completed. */
  async flush(): Promise<void> {
    const pending = new Set<Batch>();
    const collect = (): void => {
      for (const pq of this.partitionQueues.values()) {
        for (const b of pq.queue) pending.add(b);
        for (const b of pq.inFlight) pending.add(b);
      }
    };
    collect();
    // Sends still waiting for metadata or memory belong to this flush too.
    while (this.metadataBlocked > 0 || this.memoryQueue.length > 0) {
      this.wakeSender();
      await sleep(1);
      collect();
    }
    if (pending.size === 0) return;
    this.flushing++;
    this.wakeSender();
    try {
      await Promise.all([...pending].map((b) => this.whenDone(b)));
    } finally {
      this.flushing--;
    }
  }

  /**
   * Stops accepting records, sends what is waiting (up to `timeoutMs`, default: no limit), fails
   * whatever is left after that, and closes the connections.
   */
  async close(opts: { timeoutMs?: number } = {}): Promise<void> {
    if (this.closed) return;
    this.closing = true;
    const flushed = this.flush();
    if (opts.timeoutMs === undefined) await flushed.catch(() => {});
    else await Promise.race([flushed.catch(() => {}), sleep(opts.timeoutMs)]);
    this.closed = true;
    if (this.senderTimer) clearTimeout(this.senderTimer);
    const err = new ClosedError("producer");
    for (const pq of this.partitionQueues.values())
      for (const b of [...pq.queue.splice(0), ...pq.inFlight.splice(0)]) this.fail(b, err);
    this.failWaiters(err);
    await this.cluster.close();
  }

  // ---- transactions -----------------------------------------------------------------------

  private requireTransactional(): string {
    if (this.o.transactionalId === undefined)
      throw new KafkaError("INVALID_TXN_STATE", "transactions need transactionalId (transactional.id)");
    if (this.fatalError) throw this.fatalError;
    return this.o.transactionalId;
  }

  /** Registers the transactional id with its coordinator, fencing older producers with the same id. */
  async initTransactions(): Promise<void> {
    this.requireTransactional();
    if (this.txnState !== "uninitialized") return;
    this.initPromise ??= (async () => {
      for (let attempt = 0; ; attempt++) {
        try {
          await this.initProducerId();
          break;
        } catch (e) {
          if (!(e instanceof KafkaError) || !e.retriable || attempt > 50) throw e;
          await sleep(backoffMs(attempt, this.o.retryBackoffMs, this.o.retryBackoffMaxMs));
        }
      }
      this.idState = "ready";
      this.txnState = "ready";
    })().finally(() => {
      this.initPromise = null;
    });
    await this.initPromise;
  }

  /** Starts a transaction: records sent from now on commit or abort together. */
  beginTransaction(): void {
    this.requireTransactional();
    if (this.txnState !== "ready")
      throw new KafkaError(
        "INVALID_TXN_STATE",
        `cannot begin a transaction in state ${this.txnState}${this.txnState === "uninitialized" ? " (call initTransactions() first)" : ""}`,
      );
    this.txnState = "in_transaction";
    this.txnError = null;
    this.txnOffsetsAdded = false;
  }

  /** kafkajs style: initializes if needed, begins a transaction and returns a handle to it. */
  async transaction(): Promise<Transaction> {
    await this.initTransactions();
    this.beginTransaction();
    return new Transaction(this);
  }

  private async txnCoordinatorRequest<T extends { errorCode: number }>(
    what: string,
    call: (conn: Connection) => Promise<T>,
  ): Promise<T> {
    const txnId = this.requireTransactional();
    for (let attempt = 0; ; attempt++) {
      let res: T;
      try {
        res = await call(await this.cluster.coordinator("transaction", txnId));
      } catch (e) {
        if (!(e instanceof KafkaError) || !e.retriable || attempt > 100) throw e;
        this.cluster.invalidateCoordinator("transaction", txnId);
        await sleep(backoffMs(attempt, this.o.retryBackoffMs, this.o.retryBackoffMaxMs));
        continue;
      }
      const code = res.errorCode;
      if (code === ErrorCode.NONE) return res;
      if (code === ErrorCode.NOT_COORDINATOR || code === ErrorCode.COORDINATOR_NOT_AVAILABLE)
        this.cluster.invalidateCoordinator("transaction", txnId);
      if (
        code === ErrorCode.CONCURRENT_TRANSACTIONS ||
        code === ErrorCode.COORDINATOR_LOAD_IN_PROGRESS ||
        code === ErrorCode.NOT_COORDINATOR ||
        code === ErrorCode.COORDINATOR_NOT_AVAILABLE
      ) {
        if (attempt > 200) throw new KafkaProtocolError(code, what);
        await sleep(
          code === ErrorCode.CONCURRENT_TRANSACTIONS
            ? 20
            : backoffMs(attempt, this.o.retryBackoffMs, this.o.retryBackoffMaxMs),
        );
        continue;
      }
      const err = new KafkaProtocolError(code, what);
      if (
        code === ErrorCode.PRODUCER_FENCED ||
        code === ErrorCode.INVALID_PRODUCER_EPOCH ||
        code === ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED ||
        code === ErrorCode.INVALID_TXN_STATE
      )
        this.setFatal(err);
      else this.setAbortable(err);
      throw err;
    }
  }

  private async addPartitionsToTxn(): Promise<void> {
    if (this.txnAdding || this.txnPendingPartitions.size === 0) return;
    this.txnAdding = true;
    const adding = new Map(this.txnPendingPartitions);
    this.txnPendingPartitions.clear();
    const byTopic = new Map<string, number[]>();
    for (const pq of adding.values()) byTopic.set(pq.topic, [...(byTopic.get(pq.topic) ?? []), pq.partition]);
    try {
      await this.txnCoordinatorRequest("AddPartitionsToTxn", async (conn) => {
        const res = await conn.request(
          ApiKey.AddPartitionsToTxn,
          ADD_PARTITIONS_VERSIONS,
          (w, v) =>
            encodeAddPartitionsToTxnRequest(
              w,
              {
                v3AndBelowTransactionalId: this.o.transactionalId!,
                v3AndBelowProducerId: this.producerId,
                v3AndBelowProducerEpoch: this.producerEpoch,
                v3AndBelowTopics: [...byTopic].map(([name, partitions]) => ({ name, partitions })),
              },
              v,
            ),
          decodeAddPartitionsToTxnResponse,
        );
        // The worst partition error stands for the request (they share one cause in practice).
        let errorCode: number = ErrorCode.NONE;
        for (const t of res.resultsByTopicV3AndBelow)
          for (const p of t.resultsByPartition)
            if (p.partitionErrorCode !== ErrorCode.NONE && p.partitionErrorCode !== ErrorCode.OPERATION_NOT_ATTEMPTED)
              errorCode = p.partitionErrorCode;
        return { errorCode };
      });
      for (const k of adding.keys()) this.txnPartitions.add(k);
    } catch (e) {
      // The batches of these partitions cannot be sent in this transaction.
      const err = e instanceof KafkaError ? e : new KafkaError("UNKNOWN", String(e));
      for (const pq of adding.values()) for (const b of pq.queue.splice(0)) this.fail(b, err);
    } finally {
      this.txnAdding = false;
      this.wakeSender();
    }
  }

  /**
   * Adds a consumer group's offsets to the transaction: they are committed if and only if the
   * transaction commits. `group` is a group id or, better, the consumer's groupMetadata() (the
   * coordinator then also checks the consumer's generation).
   */
  async sendOffsetsToTransaction(
    offsets: readonly TopicPartitionOffset[],
    group: string | ConsumerGroupMetadata,
  ): Promise<void> {
    const txnId = this.requireTransactional();
    if (this.txnState !== "in_transaction")
      throw new KafkaError("INVALID_TXN_STATE", `cannot send offsets in state ${this.txnState}`);
    const meta: ConsumerGroupMetadata =
      typeof group === "string" ? { groupId: group, generationId: -1, memberId: "", groupInstanceId: null } : group;
    await this.txnCoordinatorRequest("AddOffsetsToTxn", (conn) =>
      conn.request(
        ApiKey.AddOffsetsToTxn,
        ADD_OFFSETS_VERSIONS,
        (w, v) =>
          encodeAddOffsetsToTxnRequest(
            w,
            {
              transactionalId: txnId,
              producerId: this.producerId,
              producerEpoch: this.producerEpoch,
              groupId: meta.groupId,
            },
            v,
          ),
        decodeAddOffsetsToTxnResponse,
      ),
    );
    this.txnOffsetsAdded = true;
    const byTopic = new Map<string, TopicPartitionOffset[]>();
    for (const o of offsets) byTopic.set(o.topic, [...(byTopic.get(o.topic) ?? []), o]);
    for (let attempt = 0; ; attempt++) {
      const conn = await this.cluster.coordinator("group", meta.groupId);
      const res = await conn.request(
        ApiKey.TxnOffsetCommit,
        TXN_OFFSET_COMMIT_VERSIONS,
        (w, v) =>
          encodeTxnOffsetCommitRequest(
            w,
            {
              transactionalId: txnId,
              groupId: meta.groupId,
              producerId: this.producerId,
              producerEpoch: this.producerEpoch,
              generationId: meta.generationId,
              memberId: meta.memberId,
              groupInstanceId: meta.groupInstanceId,
              topics: [...byTopic].map(([name, ps]) => ({
                name,
                partitions: ps.map((p) => ({
                  partitionIndex: p.partition,
                  committedOffset: p.offset,
                  committedLeaderEpoch: -1,
                  committedMetadata: p.metadata ?? "",
                })),
              })),
            },
            v,
          ),
        decodeTxnOffsetCommitResponse,
      );
      let code: number = ErrorCode.NONE;
      for (const t of res.topics) for (const p of t.partitions) if (p.errorCode !== ErrorCode.NONE) code = p.errorCode;
      if (code === ErrorCode.NONE) return;
      if (code === ErrorCode.NOT_COORDINATOR || code === ErrorCode.COORDINATOR_NOT_AVAILABLE)
        this.cluster.invalidateCoordinator("group", meta.groupId);
      const retriable =
        code === ErrorCode.NOT_COORDINATOR ||
        code === ErrorCode.COORDINATOR_NOT_AVAILABLE ||
        code === ErrorCode.COORDINATOR_LOAD_IN_PROGRESS ||
        code === ErrorCode.CONCURRENT_TRANSACTIONS ||
        code === ErrorCode.UNKNOWN_TOPIC_OR_PARTITION ||
        code === ErrorCode.REQUEST_TIMED_OUT;
      if (!retriable || attempt > 100) {
        const err = new KafkaProtocolError(code, `TxnOffsetCommit for group ${meta.groupId}`);
        if (code === ErrorCode.PRODUCER_FENCED || code === ErrorCode.INVALID_PRODUCER_EPOCH) this.setFatal(err);
        else this.setAbortable(err);
        throw err;
      }
      await sleep(backoffMs(attempt, this.o.retryBackoffMs, this.o.retryBackoffMaxMs));
    }
  }

  /** Flushes, then commits: the records and offsets become visible to read_committed consumers. */
  async commitTransaction(): Promise<void> {
    this.requireTransactional();
    if (this.txnState === "abortable_error")
      throw new KafkaError(
        "INVALID_TXN_STATE",
        `the transaction failed and must be aborted: ${this.txnError?.message}`,
        { cause: this.txnError },
      );
    if (this.txnState !== "in_transaction")
      throw new KafkaError("INVALID_TXN_STATE", `cannot commit in state ${this.txnState}`);
    this.txnState = "completing";
    await this.flush();
    while (this.txnAdding || this.txnPendingPartitions.size > 0) {
      this.wakeSender();
      await sleep(2);
      await this.flush();
    }
    if (this.fatalError) throw this.fatalError;
    if (this.txnError) {
      this.txnState = "abortable_error";
      throw new KafkaError(
        "INVALID_TXN_STATE",
        `the transaction failed and must be aborted: ${this.txnError.message}`,
        { cause: this.txnError },
      );
    }
    await this.endTxn(true);
  }

  /** Drops records not yet sent, waits for those in flight, and aborts the transaction. */
  async abortTransaction(): Promise<void> {
    this.requireTransactional();
    if (this.txnState !== "in_transaction" && this.txnState !== "abortable_error" && this.txnState !== "completing")
      throw new KafkaError("INVALID_TXN_STATE", `cannot abort in state ${this.txnState}`);
    this.txnState = "completing";
    const aborted = new KafkaError("TRANSACTION_ABORTED", "the transaction was aborted");
    // Batches never sent have no sequence yet and can go; sent ones must be resolved first.
    for (const pq of this.partitionQueues.values()) {
      for (const b of [...pq.queue]) {
        if (b.encoded !== null) continue;
        pq.queue.splice(pq.queue.indexOf(b), 1);
        this.fail(b, aborted);
      }
    }
    this.txnPendingPartitions.clear();
    await this.flush();
    if (this.fatalError) throw this.fatalError;
    await this.endTxn(false);
  }

  private async endTxn(committed: boolean): Promise<void> {
    const txnId = this.requireTransactional();
    if (this.txnPartitions.size > 0 || this.txnOffsetsAdded) {
      await this.txnCoordinatorRequest("EndTxn", (conn) =>
        conn.request(
          ApiKey.EndTxn,
          END_TXN_VERSIONS,
          (w, v) =>
            encodeEndTxnRequest(
              w,
              { transactionalId: txnId, producerId: this.producerId, producerEpoch: this.producerEpoch, committed },
              v,
            ),
          decodeEndTxnResponse,
        ),
      );
    }
    this.txnPartitions.clear();
    this.txnOffsetsAdded = false;
    this.txnError = null;
    this.txnState = "ready";
  }

  /** The transaction state: "ready" (none open), "in_transaction", "abortable_error", "fatal_error", ... */
  get transactionState(): TxnState {
    return this.txnState;
  }
}

/** A transaction in progress (kafkajs style): send, sendOffsets, then commit or abort. */
export class Transaction {
  private readonly producer: Producer;
  private active = true;
  constructor(producer: Producer) {
    this.producer = producer;
  }

  send(record: ProducerRecord, opts?: SendOptions): Promise<RecordMetadata>;
  send(batch: { topic: string; messages: readonly Message[] }, opts?: SendOptions): Promise<RecordMetadata[]>;
  send(
    r: ProducerRecord | { topic: string; messages: readonly Message[] },
    opts?: SendOptions,
  ): Promise<RecordMetadata | RecordMetadata[]> {
    return this.producer.send(r as ProducerRecord, opts);
  }

  sendBatch(records: readonly ProducerRecord[], opts?: SendOptions): Promise<RecordMetadata[]> {
    return this.producer.sendBatch(records, opts);
  }

  /** Adds consumed offsets to the transaction (see Producer.sendOffsetsToTransaction). */
  sendOffsets(offsets: readonly TopicPartitionOffset[], group: string | ConsumerGroupMetadata): Promise<void> {
    return this.producer.sendOffsetsToTransaction(offsets, group);
  }

  async commit(): Promise<void> {
    await this.producer.commitTransaction();
    this.active = false;
  }

  async abort(): Promise<void> {
    await this.producer.abortTransaction();
    this.active = false;
  }

  isActive(): boolean {
    return this.active;
  }
}
