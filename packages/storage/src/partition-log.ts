// The log of one partition: an ordered, append-only sequence of record batches, in segments.
//
// Directory `<logDir>/<topic>-<partition>/` holds
//   <20-digit base offset>.log/.index/.timeindex/.txnindex   segments (segment.ts)
//   leader-epoch-checkpoint                                   epoch → start offset (leader-epoch-cache.ts)
//   <20-digit offset>.snapshot                                producer state snapshots: opaque bytes
//                                                             written and read by the broker
// and transiently `*.tmp` (atomic file replacement), `*.deleted` (segments awaiting removal),
// `*.cleaned` / `*.swap` (compaction output, cleaner.ts). The log's recovery point, high
// watermark, log start offset and cleaner offset live in the log dir's checkpoints (log-dir-state.ts).
//
// Offsets: logStartOffset ≤ highWatermark ≤ logEndOffset. logEndOffset is the next offset to assign;
// a batch of n records takes n offsets. `recoveryPoint` ≤ logEndOffset: segments wholly below it
// are durable with their indexes.
//
// Concurrency (one Node event loop, many async operations):
// - Appends are validated synchronously, queued, and written by one writer at a time: each write
//   round takes every queued append (up to WRITE_ROUND_BYTES_MAX), assigns offsets and writes them
//   with one writev. So concurrent appends coalesce into one write, and a request's batches (one
//   `records` blob) always go out in one write. A small round (at most `syncWriteBytesMax`, 64 KiB
//   by default) is written synchronously, on the event loop (Disk.writeSync): the bytes only go to
//   the page cache, which takes microseconds, while a round trip through libuv's thread pool costs
//   tens of microseconds of latency before acks=1 can be answered. The trade-off: while the kernel
//   blocks that write (a slow or failing disk, dirty-page throttling) the whole broker stalls, not
//   just this partition; larger rounds keep the thread pool. fsync (fsync.before.ack, flush.*)
//   stays asynchronous, and a failed synchronous write is handled exactly as a failed async one.
// - Mutations (write rounds, rolls, truncation, retention's removal of segments, compaction's swap)
//   run one at a time under `mutex`. Slow work (fsync, compaction's reading and rewriting, unlinking
//   deleted files) runs outside it.
// - Reads take no lock: they use the segment list and sizes they see when they start; segments
//   are reference counted so that deletion waits for readers; `generation` changes on truncation,
//   and a read that overlapped one is retried.
// - Acknowledgements are FIFO: an append resolves after its write and, with fsync.before.ack (or
//   when flush.messages is reached), after an fsync that started after its write. Appends arriving
//   while an fsync runs share the next one (group commit). If an fsync fails, every unacknowledged
//   append is rejected and the log is cut back to the end of the acknowledged ones.

import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { join } from "node:path";
import {
  type BatchPosition,
  batchTotalBytes,
  computeBatchCrc,
  isControlBatch,
  iterateBatches,
  lastOffsetOf,
  patchBaseOffset,
  patchPartitionLeaderEpoch,
  type RecordBatchHeader,
  setLogAppendTime,
} from "@sluice/protocol/records/batch-header.ts";
import { RecordsError } from "@sluice/protocol/records/errors.ts";
import { parseRecordBatch } from "@sluice/protocol/records/record-batch.ts";
import { bufferPool, detach } from "./buffer-pool.ts";
import { type CleanerHost, type CompactionResult, compactLog, completeInterruptedSwaps } from "./cleaner.ts";
import { type Clock, type Disk, isNotFound, readWholeFile, unlinkIfExists, writeFileDurable } from "./disk.ts";
import { ioError, OffsetOutOfRangeError, StorageError } from "./errors.ts";
import { LeaderEpochCache } from "./leader-epoch-cache.ts";
import { compacted, deletes, type LogConfig, resolveConfig } from "./log-config.ts";
import { type LogDirState, partitionKey } from "./log-dir-state.ts";
import type { IndexMemory, MemoryBudget } from "./memory.ts";
import { Mutex } from "./mutex.ts";
import { type AppendedBatch, type BatchLocation, LogSegment, type SegmentOptions, segmentFileName } from "./segment.ts";
import { TailCache } from "./tail-cache.ts";
import type { AbortedTxnEntry } from "./txn-index.ts";

export interface AppendInfo {
  baseOffset: bigint;
  lastOffset: bigint;
  /** The time stamped on the batches under LogAppendTime, else -1. */
  logAppendTimeMs: bigint;
  logStartOffset: bigint;
  logEndOffset: bigint;
  /** The batches as written (positions in the appended blob, headers with their assigned offsets). */
  batches: BatchLocation[];
}

export interface AppendOptions {
  /** Overrides message.timestamp.type for this append. */
  readonly timestampType?: "CreateTime" | "LogAppendTime";
}

export interface ReadOptions {
  /** Exclusive upper bound: batches whose last offset reaches it are not returned (high watermark / LSO). */
  readonly maxOffset?: bigint;
  /** Return the first batch even if it is larger than maxBytes, so a consumer never gets stuck (default true). */
  readonly minOneMessage?: boolean;
}

export interface ReadResult {
  /** Whole batches, ready to be written to a socket; empty when nothing is available below the bound. */
  records: Buffer;
  /** Base offset of the first batch returned (may be below the fetch offset: batches are never split). */
  firstOffset?: bigint;
}

export interface ChunkedReadResult {
  /**
   * Whole batches, back to back across the chunks (several when a read from the tail cache spans
   * appends: the cache's own views, not to be modified); an empty list when nothing is available.
   */
  chunks: readonly Uint8Array[];
  /** Total bytes of the chunks. */
  byteLength: number;
  /** Base offset of the first batch returned (absent when nothing is). */
  firstOffset?: bigint;
}

export interface TimestampLookup {
  offset: bigint;
  timestamp: bigint;
  leaderEpoch: number;
}

export interface LogDeps {
  readonly disk: Disk;
  readonly clock: Clock;
  /** The checkpoints of the log dir this log lives in. */
  readonly dirState: LogDirState;
  /** Bytes of recent appends kept in memory per log (0 disables the tail cache). */
  readonly tailCacheBytes?: number;
  readonly tailCacheBudget?: MemoryBudget | null;
  readonly indexMemory?: IndexMemory | null;
  /** Bound on the offset map of one compaction pass (bytes, estimated). */
  readonly compactionMapBytesMax?: number;
  /** Write rounds of at most this many bytes are written synchronously (0: never); 64 KiB by default. */
  readonly syncWriteBytesMax?: number;
}

/** Relative offsets are int32 (a BigInt constant: this is compared on every append). */
const INT32_MAX_BIG = 2n ** 31n - 1n;
/** Most bytes one write round takes from the append queue. */
const WRITE_ROUND_BYTES_MAX = 16 * 1024 * 1024;
/** Default for LogDeps.syncWriteBytesMax. */
export const SYNC_WRITE_BYTES_MAX_DEFAULT = 64 * 1024;
const HINTS_MAX = 16;
const SNAPSHOTS_KEPT = 2;
const EPOCH_CHECKPOINT = "leader-epoch-checkpoint";

interface QueuedAppend {
  readonly records: Uint8Array;
  /** The batches' CRCs are still to be checked (done while the write is in flight). */
  readonly crcPending: boolean;
  readonly batches: BatchPosition[];
  readonly leaderEpoch: number;
  readonly asLeader: boolean;
  readonly logAppendTime: boolean;
  readonly recordCount: number;
  resolve(info: AppendInfo): void;
  reject(e: unknown): void;
}

interface WrittenAppend {
  readonly info: AppendInfo;
  readonly needsSync: boolean;
  resolve(info: AppendInfo): void;
  reject(e: unknown): void;
}

interface SyncWaiter {
  /** Resolved by the first fsync round numbered at least this (one that starts after the request). */
  readonly round: number;
  resolve(): void;
  reject(e: unknown): void;
}

interface PositionHint {
  readonly offset: bigint;
  readonly seg: LogSegment;
  readonly generation: number;
  readonly position: number;
  /** Size of the batch at `position` when known (0: unknown). */
  readonly batchBytes: number;
}

export class PartitionLog extends EventEmitter {
  readonly topic: string;
  readonly partition: number;
  readonly dir: string;
  readonly key: string;
  private cfg: Required<LogConfig>;
  private readonly disk: Disk;
  private readonly clock: Clock;
  private readonly dirState: LogDirState;
  readonly leaderEpochCache: LeaderEpochCache;
  /** Copy-on-write: readers keep the array they saw. The last segment is the active one. */
  private segments: LogSegment[] = [];
  private _logStartOffset = 0n;
  private _logEndOffset = 0n;
  private _highWatermark = 0n;
  /** Segments wholly below it are durable (data and indexes). */
  recoveryPoint = 0n;
  /** End of the appends acknowledged so far, and of the data known to be fsynced. */
  private ackedEnd = 0n;
  private durableEnd = 0n;
  private generation = 0;
  private state: "open" | "closing" | "closed" = "open";
  private readonly mutex = new Mutex();
  private readonly queue: QueuedAppend[] = [];
  /** Outcome details of the last write run (read by writeRound). */
  private lastWriteError: unknown = null;
  private readonly refused = new Set<QueuedAppend>();
  private writeScheduled = false;
  private readonly acks: WrittenAppend[] = [];
  private readonly syncWaiters: SyncWaiter[] = [];
  private syncing = false;
  /** fsync rounds started, and the last one that completed. */
  private syncRoundsStarted = 0;
  private syncRoundDone = 0;
  private readonly unsynced = new Set<LogSegment>();
  /** A failed fsync left unacknowledged data in the log: cut back to ackedEnd before writing again. */
  private repairNeeded = false;
  private unflushedMessages = 0;
  private lastFlushMs: number;
  /** Where recent reads ended (a ring): the next read of a sequential consumer starts there, no index lookup. */
  private readonly hints: (PositionHint | undefined)[] = new Array(HINTS_MAX);
  private hintNext = 0;
  private readonly tailCache: TailCache | null;
  private readonly indexMemory: IndexMemory | null;
  private compacting: Promise<CompactionResult> | null = null;
  /** Earliest time a tombstone's delete horizon may pass (compaction is due then even if nothing is dirty). */
  private nextDeleteHorizonMs: number;
  private readonly compactionMapBytesMax: number;
  private readonly syncWriteBytesMax: number;

  private constructor(dir: string, topic: string, partition: number, config: LogConfig, deps: LogDeps) {
    super();
    this.setMaxListeners(0);
    this.dir = dir;
    this.topic = topic;
    this.partition = partition;
    this.key = partitionKey(topic, partition);
    this.cfg = resolveConfig(config);
    this.disk = deps.disk;
    this.clock = deps.clock;
    this.dirState = deps.dirState;
    this.leaderEpochCache = new LeaderEpochCache(deps.disk, join(dir, EPOCH_CHECKPOINT));
    this.lastFlushMs = deps.clock.nowMs();
    const tailBytes = deps.tailCacheBytes ?? 2 * 1024 * 1024;
    this.tailCache = tailBytes > 0 ? new TailCache(tailBytes, deps.tailCacheBudget ?? null) : null;
    this.indexMemory = deps.indexMemory ?? null;
    this.nextDeleteHorizonMs = deps.clock.nowMs() + this.cfg["delete.retention.ms"];
    this.compactionMapBytesMax = deps.compactionMapBytesMax ?? 32 * 1024 * 1024;
    this.syncWriteBytesMax = deps.syncWriteBytesMax ?? SYNC_WRITE_BYTES_MAX_DEFAULT;
  }

  /**
   * Opens (creating if needed) the log in `dir`. After a clean shutdown of the log dir nothing is
   * scanned; otherwise segments from the one holding the recovery point onwards are validated
   * batch by batch and cut at the first invalid byte (and later segments dropped).
   */
  static async open(
    dir: string,
    topic: string,
    partition: number,
    config: LogConfig,
    deps: LogDeps,
  ): Promise<PartitionLog> {
    const log = new PartitionLog(dir, topic, partition, config, deps);
    try {
      await deps.disk.mkdir(dir);
      await log.load();
    } catch (e) {
      await Promise.all(log.segments.map((s) => s.close()));
      throw ioError(`cannot open log ${log.key}`, e);
    }
    return log;
  }

  // ---- properties ---------------------------------------------------------------------------------

  get config(): LogConfig {
    return this.cfg;
  }

  /** Topic config changes apply to the next operation (roll sizes, retention, compaction...). */
  set config(c: LogConfig) {
    this.cfg = resolveConfig(c);
  }

  get logStartOffset(): bigint {
    return this._logStartOffset;
  }

  get logEndOffset(): bigint {
    return this._logEndOffset;
  }

  get highWatermark(): bigint {
    return this._highWatermark;
  }

  get sizeBytes(): number {
    let n = 0;
    for (const s of this.segments) n += s.size;
    return n;
  }

  get segmentCount(): number {
    return this.segments.length;
  }

  /** Base offset of the active segment (the one appends go to). */
  get activeSegmentBaseOffset(): bigint {
    return this.active.baseOffset;
  }

  segmentBaseOffsets(): bigint[] {
    return this.segments.map((s) => s.baseOffset);
  }

  private get active(): LogSegment {
    const a = this.segments.at(-1);
    assert.ok(a, "a log always has an active segment");
    return a;
  }

  private get segmentOptions(): SegmentOptions {
    return {
      indexIntervalBytes: this.cfg["index.interval.bytes"],
      indexBytesMax: this.cfg["segment.index.bytes"],
    };
  }

  // ---- loading ------------------------------------------------------------------------------------

  private async load(): Promise<void> {
    // A compaction swap cut short is completed first (it may need the `.deleted` transaction
    // indexes); then leftovers of interrupted work go: temp files, deleted segments, unswapped output.
    await completeInterruptedSwaps(this.disk, this.dir, await this.disk.readdir(this.dir), this.segmentOptions);
    const names = await this.disk.readdir(this.dir);
    for (const n of names) {
      if (n.endsWith(".tmp") || n.endsWith(".deleted") || n.endsWith(".cleaned"))
        await unlinkIfExists(this.disk, join(this.dir, n));
    }
    const bases = names
      .filter((n) => /^\d{20}\.log$/.test(n))
      .map((n) => BigInt(n.slice(0, 20)))
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    await this.leaderEpochCache.load();
    const rp = this.dirState.maps.recoveryPoints.get(this.key);
    const clean = this.dirState.cleanShutdown && rp !== undefined;
    const recoveryPoint = rp ?? 0n;
    let cut = false;
    let prevNext = 0n;
    const persisting: Promise<void>[] = [];
    try {
      for (let i = 0; i < bases.length; i++) {
        const base = bases[i]!;
        const isLast = i === bases.length - 1;
        if (cut) {
          // Everything after an invalid byte goes (Kafka's rule): offsets there cannot be trusted.
          await this.deleteSegmentFiles(base);
          continue;
        }
        const seg = await LogSegment.open(this.disk, this.dir, base, this.segmentOptions);
        this.segments.push(seg);
        const holdsRecoveryPoint = isLast || bases[i + 1]! > recoveryPoint;
        let recovered = false;
        if (!clean && holdsRecoveryPoint) {
          cut = (await seg.recover(prevNext)) > 0;
          recovered = true;
        } else if (!(await seg.loadClean(isLast))) {
          cut = (await seg.recover(prevNext)) > 0;
          recovered = true;
        }
        if (!isLast) {
          seg.seal();
          // Written while the next segment is scanned (the files are derived data; awaited below).
          if (recovered) persisting.push(seg.persistIndexes());
          seg.onIndexesLoaded = (s) => this.indexMemory?.track(s);
          if (seg.indexesLoaded) this.indexMemory?.track(seg);
        }
        if (!seg.isEmpty) prevNext = seg.nextOffset;
      }
    } catch (e) {
      await Promise.allSettled(persisting); // none left unobserved
      throw e;
    }
    await settleAll(persisting);
    const savedStart = this.dirState.maps.logStartOffsets.get(this.key) ?? 0n;
    if (this.segments.length === 0) {
      this.segments.push(
        await LogSegment.create(this.disk, this.dir, savedStart, this.segmentOptions, this.clock.nowMs()),
      );
    }
    if (cut && this.active.sealed) {
      // The cut segment is now the last one: it becomes active again.
      this.active.sealed = false;
      this.indexMemory?.forget(this.active);
      await this.active.ensureIndexes();
    }
    const active = this.active;
    this._logEndOffset = active.isEmpty
      ? prevNext > active.baseOffset
        ? prevNext
        : active.baseOffset
      : active.nextOffset;
    const firstBase = this.segments[0]!.baseOffset;
    this._logStartOffset = savedStart > firstBase ? savedStart : firstBase;
    if (this._logStartOffset > this._logEndOffset) this._logStartOffset = this._logEndOffset;
    const savedHw = this.dirState.maps.highWatermarks.get(this.key) ?? 0n;
    this._highWatermark = clamp(savedHw, this._logStartOffset, this._logEndOffset);
    this.recoveryPoint = clean ? this._logEndOffset : clamp(recoveryPoint, 0n, this._logEndOffset);
    this.ackedEnd = this._logEndOffset;
    this.durableEnd = this._logEndOffset;
    await this.leaderEpochCache.truncateFromEnd(this._logEndOffset);
    await this.leaderEpochCache.truncateFromStart(this._logStartOffset);
    await this.deleteSnapshotsAfter(this._logEndOffset);
    this.publishOffsets();
  }

  private async deleteSegmentFiles(base: bigint): Promise<void> {
    for (const suffix of [".log", ".index", ".timeindex", ".txnindex"])
      await unlinkIfExists(this.disk, LogSegment.pathOf(this.dir, base, suffix));
  }

  /** Copies the offsets the log dir checkpoints record into the dir state (written by the LogManager). */
  private publishOffsets(): void {
    const m = this.dirState.maps;
    m.recoveryPoints.set(this.key, this.recoveryPoint);
    m.highWatermarks.set(this.key, this._highWatermark);
    m.logStartOffsets.set(this.key, this._logStartOffset);
  }

  // ---- append -------------------------------------------------------------------------------------

  /**
   * Appends batches from a producer (one blob of concatenated batches). Each batch is validated
   * (header, CRC, record count against offsets, max.message.bytes); any invalid one rejects the
   * whole append. Offsets are assigned from the log end, the leader epoch (and LogAppendTime when
   * configured) stamped in place, and the batches written in one write. `records` is patched in
   * place and may be kept by the tail cache: the caller must not modify it afterwards.
   */
  appendAsLeader(records: Uint8Array, leaderEpoch: number, opts: AppendOptions = {}): Promise<AppendInfo> {
    try {
      this.checkOpen();
      const logAppendTime = (opts.timestampType ?? this.cfg["message.timestamp.type"]) === "LogAppendTime";
      // LogAppendTime rewrites the CRC, so the client's must be checked first; otherwise the check
      // overlaps the write (it does not cover the fields patched before writing).
      const batches = this.validate(records, true, logAppendTime);
      return this.enqueue(records, batches, leaderEpoch, true, logAppendTime, !logAppendTime);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * Appends batches replicated from the leader, keeping their offsets and leader epochs (offsets
   * must not go below the log end; gaps are allowed, as compaction leaves them).
   */
  appendAsFollower(records: Uint8Array): Promise<AppendInfo> {
    try {
      this.checkOpen();
      if (records.byteLength === 0) {
        const e = this._logEndOffset;
        return Promise.resolve(emptyInfo(e, this._logStartOffset));
      }
      const batches = this.validate(records, false, false);
      return this.enqueue(records, batches, -1, false, false, true);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  private checkOpen(): void {
    if (this.state !== "open") throw new StorageError("LOG_CLOSED", `log ${this.key} is closed`);
  }

  /** Checks the structure of every batch (and CRCs when `verifyCrc`); throws a StorageError for the first bad one. */
  private validate(records: Uint8Array, asLeader: boolean, verifyCrc: boolean): BatchPosition[] {
    const out: BatchPosition[] = [];
    try {
      let prevLast = -1n;
      for (const b of iterateBatches(records, { verifyCrc })) {
        const h = b.header;
        const bytes = batchTotalBytes(h);
        if (asLeader && bytes > this.cfg["max.message.bytes"]) {
          throw new StorageError(
            "MESSAGE_TOO_LARGE",
            `batch of ${bytes} bytes exceeds max.message.bytes ${this.cfg["max.message.bytes"]}`,
          );
        }
        if (asLeader && (h.recordCount <= 0 || h.lastOffsetDelta !== h.recordCount - 1)) {
          throw new StorageError(
            "INVALID_RECORD",
            `batch ${out.length}: record count ${h.recordCount} does not match last offset delta ${h.lastOffsetDelta}`,
          );
        }
        if (!asLeader && (h.lastOffsetDelta < 0 || h.baseOffset <= prevLast)) {
          throw new StorageError(
            "INVALID_RECORD",
            `batch ${out.length}: offsets ${h.baseOffset}..${lastOffsetOf(h)} out of order`,
          );
        }
        prevLast = lastOffsetOf(h);
        out.push(b);
      }
    } catch (e) {
      if (e instanceof StorageError) throw e;
      if (e instanceof RecordsError) {
        const code = e.kafkaError === "INVALID_RECORD" ? "INVALID_RECORD" : "CORRUPT_MESSAGE";
        throw new StorageError(code, e.message, { cause: e });
      }
      throw e;
    }
    if (out.length === 0) throw new StorageError("INVALID_RECORD", "the append holds no record batch");
    return out;
  }

  private enqueue(
    records: Uint8Array,
    batches: BatchPosition[],
    leaderEpoch: number,
    asLeader: boolean,
    logAppendTime: boolean,
    crcPending: boolean,
  ): Promise<AppendInfo> {
    let recordCount = 0;
    for (const b of batches) recordCount += b.header.recordCount;
    // The bytes may be a view of a pooled request frame (buffer-pool.ts): the queued append holds
    // a reference until it is written or refused, whatever its caller does meanwhile.
    bufferPool.retain(records);
    let held = true;
    const letGo = (): void => {
      if (held) bufferPool.release(records);
      held = false;
    };
    return new Promise<AppendInfo>((resolve, reject) => {
      this.queue.push({
        records,
        crcPending,
        batches,
        leaderEpoch,
        asLeader,
        logAppendTime,
        recordCount,
        resolve: (info) => {
          letGo();
          resolve(info);
        },
        reject: (e) => {
          letGo();
          reject(e);
        },
      });
      this.scheduleWrite();
    });
  }

  private scheduleWrite(): void {
    if (this.writeScheduled) return;
    this.writeScheduled = true;
    void this.mutex.run(async () => {
      this.writeScheduled = false;
      await this.writeRound();
      // Later appends go to the back of the mutex queue, behind truncations and swaps already waiting.
      if (this.queue.length > 0) this.scheduleWrite();
    });
  }

  /**
   * Takes queued appends and writes them, rolling segments as needed. Runs under the mutex. Order
   * is kept: when an append fails, the appends after it in the round fail too (an idempotent
   * producer's later batch must not land without its earlier one); new appends are not affected.
   */
  private async writeRound(): Promise<void> {
    const items = this.takeQueued();
    const failRest = (from: number, e: unknown): void => {
      for (let k = from; k < items.length; k++) items[k]!.reject(e);
    };
    if (this.state !== "open") return failRest(0, new StorageError("LOG_CLOSED", `log ${this.key} is closed`));
    if (this.repairNeeded) {
      try {
        await this.repairIfNeeded();
      } catch (e) {
        return failRest(0, e);
      }
    }
    let i = 0;
    while (i < items.length) {
      const start = i;
      const run: QueuedAppend[] = [];
      let runBytes = 0;
      let next = this._logEndOffset;
      for (; i < items.length; i++) {
        const it = items[i]!;
        const first = it.asLeader ? next : it.batches[0]!.header.baseOffset;
        if (!it.asLeader && first < next) {
          return failRest(
            i,
            new StorageError("INVALID_RECORD", `follower batch at ${first} is below the log end ${next}`),
          );
        }
        const last = it.asLeader ? next + BigInt(it.recordCount) - 1n : lastOffsetOf(it.batches.at(-1)!.header);
        const maxTs = maxTimestampOf(it);
        if (run.length === 0) {
          if (this.rollDue(it.records.byteLength, maxTs, first, last)) {
            try {
              await this.rollFor(first);
            } catch (e) {
              return failRest(i, e);
            }
          }
        } else if (this.shouldRoll(runBytes + it.records.byteLength, maxTs, last)) break;
        run.push(it);
        runBytes += it.records.byteLength;
        next = last + 1n;
      }
      const outcome = await this.writeRun(run);
      if (outcome === "written") continue;
      if (outcome === "failed") return failRest(i, this.lastWriteError);
      // A bad CRC: that append was refused; the rest of the round goes back to the queue, in order.
      this.queue.unshift(...items.slice(start, i).filter((it) => !this.refused.has(it)), ...items.slice(i));
      this.refused.clear();
      return;
    }
  }

  private takeQueued(): QueuedAppend[] {
    let bytes = 0;
    let n = 0;
    while (n < this.queue.length && (n === 0 || bytes + this.queue[n]!.records.byteLength <= WRITE_ROUND_BYTES_MAX)) {
      bytes += this.queue[n]!.records.byteLength;
      n++;
    }
    return this.queue.splice(0, n);
  }

  /** Assigns offsets, stamps, writes one run of appends into the active segment, and queues their acks. */
  private async writeRun(run: QueuedAppend[]): Promise<"written" | "failed" | "requeue"> {
    const now = BigInt(this.clock.nowMs());
    const appended: AppendedBatch[] = [];
    const infos: AppendInfo[] = [];
    let next = this._logEndOffset;
    let inWrite = 0;
    for (const it of run) {
      const base = it.asLeader ? next : it.batches[0]!.header.baseOffset;
      for (const b of it.batches) {
        const h = b.header;
        if (it.asLeader) {
          patchBaseOffset(it.records, b.position, next);
          patchPartitionLeaderEpoch(it.records, b.position, it.leaderEpoch);
          h.baseOffset = next;
          h.partitionLeaderEpoch = it.leaderEpoch;
          if (it.logAppendTime && !isControlBatch(h.attributes)) {
            setLogAppendTime(it.records, b.position, now);
            h.maxTimestamp = now;
            h.attributes |= 0x08;
          }
        }
        if (this.leaderEpochCache.needsAssign(h.partitionLeaderEpoch, h.baseOffset)) {
          try {
            await this.leaderEpochCache.assign(h.partitionLeaderEpoch, h.baseOffset);
          } catch (e) {
            const err = ioError(`cannot write the leader epoch checkpoint of ${this.key}`, e);
            for (const r of run) r.reject(err);
            this.lastWriteError = err;
            return "failed";
          }
        }
        appended.push({ header: h, offsetInWrite: inWrite + b.position });
        next = lastOffsetOf(h) + 1n;
      }
      inWrite += it.records.byteLength;
      infos.push({
        baseOffset: base,
        lastOffset: next - 1n,
        logAppendTimeMs: it.logAppendTime ? now : -1n,
        logStartOffset: this._logStartOffset,
        logEndOffset: next,
        batches: it.batches,
      });
    }
    const seg = this.active;
    const chunks: Uint8Array[] = new Array(run.length);
    for (let k = 0; k < run.length; k++) chunks[k] = run[k]!.records;
    const crc: { corrupt: Map<QueuedAppend, StorageError> | null } = { corrupt: null };
    let written: boolean;
    try {
      written = await seg.append(
        chunks,
        appended,
        () => {
          crc.corrupt = checkCrcs(run);
          return crc.corrupt === null;
        },
        inWrite <= this.syncWriteBytesMax,
      );
    } catch (e) {
      for (const it of run) it.reject(crc.corrupt?.get(it) ?? e);
      this.lastWriteError = e;
      return "failed";
    }
    if (!written) {
      // Some append had a bad CRC: it is refused, the others are written again (writeRound).
      for (const [it, err] of crc.corrupt ?? []) {
        it.reject(err);
        this.refused.add(it);
      }
      return "requeue";
    }
    this.unsynced.add(seg);
    let count = 0;
    for (let k = 0; k < run.length; k++) {
      const it = run[k]!;
      const info = infos[k]!;
      this.tailCache?.add(it.records, info.baseOffset, info.logEndOffset);
      count += it.recordCount;
    }
    this._logEndOffset = next;
    this.setHint(next, seg, seg.size);
    this.unflushedMessages += count;
    const flushByCount = this.unflushedMessages >= this.cfg["flush.messages"];
    const needsSync = this.cfg["fsync.before.ack"] || flushByCount;
    for (let k = 0; k < run.length; k++) {
      const it = run[k]!;
      this.acks.push({ info: infos[k]!, needsSync, resolve: it.resolve, reject: it.reject });
    }
    this.processAcks();
    if (needsSync) this.requestSync();
    return "written";
  }

  private shouldRoll(incomingBytes: number, incomingMaxTimestamp: bigint, lastOffset: bigint): boolean {
    const a = this.active;
    if (a.isEmpty) return false;
    if (a.size + incomingBytes > this.cfg["segment.bytes"]) return true;
    if (a.indexFull || !a.canHold(lastOffset)) return true;
    // segment.ms counts from the first batch's timestamp when there is one (Kafka), else from creation.
    const waited =
      a.firstBatchTimestamp >= 0n && incomingMaxTimestamp >= 0n
        ? Number(incomingMaxTimestamp - a.firstBatchTimestamp)
        : this.clock.nowMs() - a.createdMs;
    return waited > this.cfg["segment.ms"];
  }

  /** Whether the next run (starting at `firstOffset`) needs a new active segment first (rollFor). */
  private rollDue(
    incomingBytes: number,
    incomingMaxTimestamp: bigint,
    firstOffset: bigint,
    lastOffset: bigint,
  ): boolean {
    const a = this.active;
    // An empty active segment not starting at the next offset (a follower's gap) is started afresh there.
    if (a.isEmpty) return a.baseOffset !== firstOffset;
    return (
      this.shouldRoll(incomingBytes, incomingMaxTimestamp, lastOffset) || firstOffset - a.baseOffset > INT32_MAX_BIG
    );
  }

  private async rollFor(firstOffset: bigint): Promise<void> {
    if (this.active.isEmpty) await this.replaceEmptyActive(firstOffset);
    else await this.roll(firstOffset);
  }

  private async replaceEmptyActive(base: bigint): Promise<void> {
    const old = this.active;
    const seg = await LogSegment.create(this.disk, this.dir, base, this.segmentOptions, this.clock.nowMs());
    this.segments = [...this.segments.slice(0, -1), seg];
    this.unsynced.delete(old);
    await old.markDeleted();
  }

  /** Starts a new active segment at `base`; the old one is sealed and flushed in the background. */
  private async roll(base: bigint): Promise<void> {
    const old = this.active;
    const seg = await LogSegment.create(this.disk, this.dir, base, this.segmentOptions, this.clock.nowMs());
    old.seal();
    old.onIndexesLoaded = (s) => this.indexMemory?.track(s);
    this.segments = [...this.segments, seg];
    this.indexMemory?.track(old);
    // Kafka flushes the rolled segment asynchronously and moves the recovery point past it.
    void this.flushTo(base).catch((e) => this.emit("backgroundError", e));
  }

  /** Forces a roll (tests, tools). */
  rollNow(): Promise<void> {
    return this.mutex.run(async () => {
      this.checkOpen();
      if (!this.active.isEmpty) await this.roll(this._logEndOffset);
    });
  }

  // ---- acknowledgement and fsync ------------------------------------------------------------------

  private processAcks(): void {
    // After a failed fsync nothing is acknowledged until the repair has cut the log back: an append
    // written after the rejected ones must not move ackedEnd past their data.
    if (this.repairNeeded) return;
    while (this.acks.length > 0) {
      const head = this.acks[0]!;
      if (head.needsSync && this.durableEnd < head.info.logEndOffset) return;
      this.acks.shift();
      if (head.info.logEndOffset > this.ackedEnd) this.ackedEnd = head.info.logEndOffset;
      head.resolve(head.info);
      this.emit("append", head.info);
    }
  }

  private syncNeeded(): boolean {
    for (const a of this.acks) if (a.needsSync && a.info.logEndOffset > this.durableEnd) return true;
    for (const w of this.syncWaiters) if (w.round > this.syncRoundDone) return true;
    return false;
  }

  /** Starts the group-commit loop if it is not running; it re-checks for new work after each fsync. */
  private requestSync(): void {
    if (this.syncing) return;
    this.syncing = true;
    void this.syncLoop();
  }

  private async syncLoop(): Promise<void> {
    try {
      while (this.syncNeeded()) {
        const target = this._logEndOffset;
        const round = ++this.syncRoundsStarted;
        const segs = [...this.unsynced].filter((s) => s.acquire());
        try {
          for (const s of segs) {
            s.unsynced = false;
            await s.fsync();
          }
        } catch (e) {
          for (const s of segs) s.unsynced = true;
          this.onSyncFailure(e);
          return;
        } finally {
          for (const s of segs) s.release();
        }
        for (const s of segs) if (!s.unsynced) this.unsynced.delete(s);
        if (target > this.durableEnd) this.durableEnd = target;
        this.syncRoundDone = round;
        this.unflushedMessages = 0;
        this.lastFlushMs = this.clock.nowMs();
        this.processAcks();
        this.settleSyncWaiters(null);
      }
    } finally {
      this.syncing = false;
    }
  }

  private settleSyncWaiters(error: unknown): void {
    for (let i = this.syncWaiters.length - 1; i >= 0; i--) {
      const w = this.syncWaiters[i]!;
      if (error !== null) w.reject(error);
      else if (w.round <= this.syncRoundDone) w.resolve();
      else continue;
      this.syncWaiters.splice(i, 1);
    }
  }

  /**
   * An fsync failed: nothing after durableEnd can be trusted to be on disk. Every unacknowledged
   * append is rejected, and the log is cut back to the end of the acknowledged ones before the
   * next write (so a retried append cannot leave a duplicate behind).
   */
  private onSyncFailure(cause: unknown): void {
    const err = ioError(`fsync of log ${this.key} failed`, cause);
    const pending = this.acks.splice(0);
    for (const a of pending) a.reject(err);
    this.settleSyncWaiters(err);
    if (pending.length > 0) {
      this.repairNeeded = true;
      void this.mutex.run(() => this.repairIfNeeded()).catch((e) => this.emit("backgroundError", e));
    }
  }

  private async repairIfNeeded(): Promise<void> {
    if (!this.repairNeeded) return;
    await this.truncateLocked(this.ackedEnd);
    this.repairNeeded = false;
    this.processAcks();
  }

  /** Resolves after an fsync round that started after the call (group-committed with appends). */
  private syncAll(): Promise<void> {
    if (this.unsynced.size === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.syncWaiters.push({ round: this.syncRoundsStarted + 1, resolve, reject });
      this.requestSync();
    });
  }

  /**
   * fsyncs everything written so far, writes the indexes of sealed segments, and moves the
   * recovery point to the log end as it was when called.
   */
  async flush(): Promise<void> {
    await this.flushTo(this._logEndOffset);
  }

  /**
   * Kafka's flushUptoOffsetExclusive: makes the segments wholly below `offset` durable (data and
   * indexes) and moves the recovery point there. At the log end (flush()) that includes the active
   * segment, through the group-commit loop; after a roll only the sealed segments are fsynced.
   */
  private async flushTo(offset: bigint): Promise<void> {
    if (offset <= this.recoveryPoint) return;
    const generation = this.generation;
    if (offset >= this._logEndOffset) await this.syncAll();
    for (const seg of this.segments) {
      if (seg.baseOffset >= offset || !seg.sealed) continue;
      if (!seg.acquire()) continue;
      try {
        if (seg.unsynced) {
          seg.unsynced = false;
          try {
            await seg.fsync();
          } catch (e) {
            seg.unsynced = true;
            throw e;
          }
          this.unsynced.delete(seg);
        }
        if (!seg.indexesPersisted) await seg.persistIndexes();
        await seg.txnIndex.fsync();
      } finally {
        seg.release();
      }
    }
    if (generation === this.generation && offset > this.recoveryPoint) {
      this.recoveryPoint = offset > this._logEndOffset ? this._logEndOffset : offset;
      this.dirState.maps.recoveryPoints.set(this.key, this.recoveryPoint);
    }
  }

  /** Flushes when flush.ms has passed since the last flush and data is unflushed (LogManager scheduler). */
  async maybeFlushByTime(): Promise<void> {
    if (this.state !== "open") return;
    if (this.unsynced.size === 0 && this.recoveryPoint >= this._logEndOffset) return;
    if (this.clock.nowMs() - this.lastFlushMs >= this.cfg["flush.ms"]) await this.flush();
  }

  // ---- read ---------------------------------------------------------------------------------------

  /**
   * Whole batches from the one holding `fetchOffset`, up to `maxBytes` (the first batch even if
   * larger, unless minOneMessage is false), stopping before any batch that reaches `maxOffset`
   * (the high watermark or LSO; default the log end). Throws OffsetOutOfRangeError outside
   * [logStartOffset, logEndOffset], and CORRUPT_MESSAGE when the first batch found is corrupt.
   */
  async read(fetchOffset: bigint, maxBytes: number, opts: ReadOptions = {}): Promise<ReadResult> {
    const r = await this.readChunks(fetchOffset, maxBytes, opts);
    if (r.chunks.length === 0) return { records: Buffer.alloc(0) };
    // Bytes of the caller's own (copied out of pooled buffers): these readers keep what they
    // read and never give references back.
    return result(detach(r.chunks), r.firstOffset!);
  }

  /**
   * Calls `visit` for every batch from the one holding `from` up to the log end, in order, reading
   * `readBytes` at a time: the replay that rebuilds state from a log (group and transaction
   * coordinators, producer state). `visit` may be async; the next batch waits for it.
   */
  async forEachBatch(
    from: bigint,
    visit: (records: Buffer, position: number, header: RecordBatchHeader) => void | Promise<void>,
    readBytes = 4 * 1024 * 1024,
  ): Promise<void> {
    let offset = from;
    while (offset < this._logEndOffset) {
      const r = await this.read(offset, readBytes);
      if (r.records.length === 0) break;
      for (const { position, header } of iterateBatches(r.records, { allowPartialTail: true })) {
        offset = lastOffsetOf(header) + 1n;
        const pending = visit(r.records, position, header);
        if (pending) await pending;
      }
    }
  }

  /**
   * Like read, but a read served from the tail cache that spans several appends returns the cache's
   * views of them as separate chunks instead of copying them into one buffer (for writers that
   * take a list, such as a Fetch response's records).
   */
  async readChunks(fetchOffset: bigint, maxBytes: number, opts: ReadOptions = {}): Promise<ChunkedReadResult> {
    const minOneMessage = opts.minOneMessage ?? true;
    for (let attempt = 0; ; attempt++) {
      if (this.state === "closed") throw new StorageError("LOG_CLOSED", `log ${this.key} is closed`);
      const start = this._logStartOffset;
      const end = this._logEndOffset;
      if (fetchOffset < start || fetchOffset > end) throw new OffsetOutOfRangeError(fetchOffset, start, end);
      const maxOffset = opts.maxOffset !== undefined && opts.maxOffset < end ? opts.maxOffset : end;
      if (fetchOffset >= maxOffset) return NOTHING_READ;
      const cached = this.tailCache?.readChunks(fetchOffset, maxBytes, maxOffset, minOneMessage);
      if (cached) {
        if (cached.chunks.length === 0) return NOTHING_READ;
        return { chunks: cached.chunks, byteLength: cached.byteLength, firstOffset: cached.firstOffset };
      }
      const generation = this.generation;
      const r = await this.readSegments(fetchOffset, maxBytes, maxOffset, minOneMessage);
      if (r !== "retry" && generation === this.generation) {
        if (r.records.length === 0) return NOTHING_READ;
        return { chunks: [r.records], byteLength: r.records.length, firstOffset: r.firstOffset! };
      }
      if (attempt >= 3)
        throw new StorageError("KAFKA_STORAGE_ERROR", `read of ${this.key} kept racing with truncation`);
    }
  }

  private async readSegments(
    fetchOffset: bigint,
    maxBytes: number,
    maxOffset: bigint,
    minOneMessage: boolean,
  ): Promise<ReadResult | "retry"> {
    const segs = this.segments;
    for (let i = floorSegment(segs, fetchOffset); i < segs.length; i++) {
      const seg = segs[i]!;
      if (seg.baseOffset >= maxOffset) break;
      if (!seg.acquire()) return "retry";
      const hint = this.hintFor(seg, fetchOffset);
      let r: Awaited<ReturnType<LogSegment["read"]>>;
      try {
        r = await seg.read({
          fetchOffset,
          maxBytes,
          maxOffset,
          minOneMessage,
          startPosition: hint?.position ?? null,
          startBatchBytes: hint?.batchBytes ?? 0,
        });
      } catch (e) {
        throw ioError(`read of ${this.key} at offset ${fetchOffset} failed`, e);
      } finally {
        seg.release();
      }
      if (seg.sealed) this.indexMemory?.touch(seg);
      if (r === null) continue;
      if (r.records.length === 0) return { records: r.records };
      this.setHint(r.nextOffset, seg, r.endPosition, r.nextBatchBytes);
      return result(r.records, r.firstOffset);
    }
    return { records: Buffer.alloc(0) };
  }

  private hintFor(seg: LogSegment, offset: bigint): { position: number; batchBytes: number } | null {
    for (const h of this.hints) {
      if (h === undefined || h.offset !== offset || h.seg !== seg) continue;
      if (h.generation !== seg.generation || h.position > seg.size) return null;
      return h;
    }
    return null;
  }

  private setHint(offset: bigint, seg: LogSegment, position: number, batchBytes = 0): void {
    this.hints[this.hintNext] = { offset, seg, generation: seg.generation, position, batchBytes };
    this.hintNext = (this.hintNext + 1) % HINTS_MAX;
  }

  /**
   * Checks every batch of the log (structure, CRC, offsets increasing) with bounded reads; throws
   * CORRUPT_MESSAGE naming the segment and position of the first bad one.
   */
  async verify(): Promise<void> {
    for (const seg of this.segments) {
      if (!seg.acquire()) continue;
      try {
        await seg.verify();
      } finally {
        seg.release();
      }
    }
  }

  // ---- timestamps ---------------------------------------------------------------------------------

  /**
   * ListOffsets: 'earliest' → log start offset; 'latest' → log end offset; 'maxTimestamp' → the
   * record with the largest timestamp; a timestamp T → the first record with timestamp ≥ T. Null
   * when no record qualifies.
   */
  async offsetForTimestamp(ts: bigint | "earliest" | "latest" | "maxTimestamp"): Promise<TimestampLookup | null> {
    if (ts === "earliest") {
      const offset = this._logStartOffset;
      return { offset, timestamp: -1n, leaderEpoch: this.leaderEpochCache.epochForOffset(offset) };
    }
    if (ts === "latest")
      return { offset: this._logEndOffset, timestamp: -1n, leaderEpoch: this.leaderEpochCache.latestEpoch() };
    const segs = this.segments;
    if (ts === "maxTimestamp") {
      let best: LogSegment | null = null;
      for (const s of segs)
        if (!s.isEmpty && s.maxTimestamp >= 0n && (best === null || s.maxTimestamp > best.maxTimestamp)) best = s;
      if (best === null) return null;
      const seg = best;
      return this.withSegment(seg, async () => {
        const loc = await seg.batchOfMaxTimestamp();
        if (loc === null) return null;
        return this.recordAtTimestamp(seg, loc, seg.maxTimestamp, (t) => t === seg.maxTimestamp);
      });
    }
    const start = this._logStartOffset;
    for (const seg of segs) {
      if (seg.isEmpty || seg.maxTimestamp < ts || seg.nextOffset <= start) continue;
      const found = await this.withSegment(seg, async () => {
        const loc = await seg.findBatchByTimestamp(ts, start);
        if (loc === null) return null;
        return this.recordAtTimestamp(seg, loc, ts, (t) => t >= ts);
      });
      if (found) return found;
    }
    return null;
  }

  private async withSegment<T>(seg: LogSegment, fn: () => Promise<T | null>): Promise<T | null> {
    if (!seg.acquire()) return null;
    try {
      return await fn();
    } finally {
      seg.release();
    }
  }

  /** The first record of the batch at `loc` (at or above the log start) whose timestamp matches. */
  private async recordAtTimestamp(
    seg: LogSegment,
    loc: BatchLocation,
    ts: bigint,
    matches: (t: bigint) => boolean,
  ): Promise<TimestampLookup | null> {
    const h = loc.header;
    const bytes = await seg.readAt(loc.position, batchTotalBytes(h));
    let parsed: ReturnType<typeof parseRecordBatch>;
    try {
      parsed = parseRecordBatch(bytes, 0, {
        maxDecompressedBytes: Math.max(64 * 1024 * 1024, this.cfg["max.message.bytes"] * 4),
      });
    } catch (e) {
      throw new StorageError(
        "CORRUPT_MESSAGE",
        `batch at offset ${h.baseOffset} of ${this.key}: ${(e as Error).message}`,
        { cause: e },
      );
    }
    for (const r of parsed.records) {
      if (r.offset >= this._logStartOffset && matches(r.timestamp)) {
        return { offset: r.offset, timestamp: r.timestamp, leaderEpoch: h.partitionLeaderEpoch };
      }
    }
    // Under LogAppendTime the batch's maxTimestamp is every record's timestamp; otherwise the
    // header promised a record that is not there (a compacted batch keeps its old maxTimestamp).
    void ts;
    return null;
  }

  // ---- offsets ------------------------------------------------------------------------------------

  /**
   * Sets the high watermark (clamped to [logStartOffset, end of acknowledged appends]); emits
   * "highWatermark" when it moves, which wakes fetch long-polls.
   */
  async updateHighWatermark(hw: bigint): Promise<bigint> {
    const clamped = clamp(
      hw,
      this._logStartOffset,
      this.ackedEnd < this._logEndOffset ? this.ackedEnd : this._logEndOffset,
    );
    if (clamped !== this._highWatermark) {
      this._highWatermark = clamped;
      this.dirState.maps.highWatermarks.set(this.key, clamped);
      this.emit("highWatermark", clamped);
    }
    return this._highWatermark;
  }

  /**
   * DeleteRecords: moves the log start offset to `offset` (at most the high watermark) and deletes
   * the segments wholly below it. The new log start offset is checkpointed before this resolves.
   */
  deleteRecordsBefore(offset: bigint): Promise<bigint> {
    return this.mutex
      .run(async () => {
        this.checkOpen();
        if (offset > this._highWatermark || offset < 0n)
          throw new OffsetOutOfRangeError(offset, this._logStartOffset, this._highWatermark);
        if (offset <= this._logStartOffset) return [] as LogSegment[];
        this.setLogStartOffset(offset);
        return this.detachSegmentsBelowStart();
      })
      .then(async (removed) => {
        await this.afterLogStartMoved(removed);
        return this._logStartOffset;
      });
  }

  private setLogStartOffset(offset: bigint): void {
    this._logStartOffset = offset;
    if (this._highWatermark < offset) this._highWatermark = offset;
    this.dirState.maps.logStartOffsets.set(this.key, offset);
    this.dirState.maps.highWatermarks.set(this.key, this._highWatermark);
  }

  /** Removes from the segment list those wholly below the log start offset (under the mutex). */
  private detachSegmentsBelowStart(): LogSegment[] {
    let n = 0;
    while (n + 1 < this.segments.length && this.segments[n + 1]!.baseOffset <= this._logStartOffset) n++;
    return this.detachOldest(n);
  }

  private detachOldest(n: number): LogSegment[] {
    if (n === 0) return [];
    const removed = this.segments.slice(0, n);
    this.segments = this.segments.slice(n);
    for (const s of removed) {
      this.unsynced.delete(s);
      this.indexMemory?.forget(s);
    }
    return removed;
  }

  /** Outside the mutex: deletes detached segments and records the new start everywhere it matters. */
  private async afterLogStartMoved(removed: LogSegment[]): Promise<void> {
    for (const s of removed) await s.markDeleted();
    await this.leaderEpochCache.truncateFromStart(this._logStartOffset);
    await this.deleteSnapshotsBefore(this._logStartOffset);
    await this.dirState.write("logStartOffsets");
    await Promise.all(removed.map((s) => s.unlinked));
  }

  /**
   * Removes everything at and after `offset` (a follower diverging from a new leader). Below the
   * log start offset, the log is emptied and restarts at `offset`.
   */
  truncateTo(offset: bigint): Promise<void> {
    return this.mutex.run(async () => {
      this.checkOpen();
      await this.truncateLocked(offset);
    });
  }

  private async truncateLocked(offset: bigint): Promise<void> {
    if (offset >= this._logEndOffset) return;
    if (offset < this.segments[0]!.baseOffset || offset < this._logStartOffset) {
      await this.truncateFullyAndStartAt(offset);
      return;
    }
    let keep = this.segments.length;
    while (keep > 1 && this.segments[keep - 1]!.baseOffset > offset) keep--;
    const dropped = this.segments.slice(keep);
    const last = this.segments[keep - 1]!;
    this.generation++;
    this.segments = this.segments.slice(0, keep);
    for (const s of dropped) {
      this.unsynced.delete(s);
      this.indexMemory?.forget(s);
      await s.markDeleted();
    }
    if (last.sealed) {
      last.sealed = false;
      this.indexMemory?.forget(last);
      last.onIndexesLoaded = null;
    }
    await last.truncateTo(offset);
    this.unsynced.add(last);
    this.afterTruncation(last.isEmpty ? last.baseOffset : last.nextOffset);
    await this.leaderEpochCache.truncateFromEnd(this._logEndOffset);
    await this.deleteSnapshotsAfter(this._logEndOffset);
    this.emit("truncate", this._logEndOffset);
  }

  private async truncateFullyAndStartAt(offset: bigint): Promise<void> {
    this.generation++;
    const old = this.segments;
    const seg = await LogSegment.create(this.disk, this.dir, offset, this.segmentOptions, this.clock.nowMs());
    // The new segment may reuse a name of an old one: rename those away first.
    for (const s of old) {
      this.unsynced.delete(s);
      this.indexMemory?.forget(s);
      if (s.baseOffset !== offset) await s.markDeleted();
    }
    const same = old.find((s) => s.baseOffset === offset);
    if (same) await same.markDeleted();
    this.segments = [seg];
    this._logStartOffset = offset;
    this.dirState.maps.logStartOffsets.set(this.key, offset);
    this.afterTruncation(offset);
    this._highWatermark = offset;
    await this.leaderEpochCache.clear();
    await this.deleteSnapshotsAfter(-1n);
    this.emit("truncate", offset);
  }

  private afterTruncation(end: bigint): void {
    this._logEndOffset = end;
    // Cutting a whole batch may go below a log start that DeleteRecords put inside it.
    if (this._logStartOffset > end) this._logStartOffset = end;
    if (this._highWatermark > end) this._highWatermark = end;
    if (this.ackedEnd > end) this.ackedEnd = end;
    if (this.durableEnd > end) this.durableEnd = end;
    if (this.recoveryPoint > end) this.recoveryPoint = end;
    const cleanerOffset = this.dirState.maps.cleanerOffsets.get(this.key);
    if (cleanerOffset !== undefined && cleanerOffset > end) this.dirState.maps.cleanerOffsets.set(this.key, end);
    this.hints.fill(undefined);
    this.tailCache?.clear();
    const err = new StorageError(
      "KAFKA_STORAGE_ERROR",
      `log ${this.key} was truncated to ${end} before the append was acknowledged`,
    );
    for (let i = this.acks.length - 1; i >= 0; i--) {
      if (this.acks[i]!.info.logEndOffset <= end) break;
      this.acks.splice(i, 1)[0]!.reject(err);
    }
    this.publishOffsets();
  }

  // ---- retention ----------------------------------------------------------------------------------

  /**
   * Deletes whole segments: those wholly below the log start offset (any cleanup policy), and with
   * cleanup.policy=delete those whose newest record is older than retention.ms and the oldest while
   * the log is larger than retention.bytes — only segments wholly below the high watermark. The
   * active segment is rolled first if it must go too. Returns how many segments were deleted.
   */
  async applyRetention(): Promise<number> {
    if (this.state !== "open") return 0;
    const removed = await this.mutex.run(async () => {
      if (this.state !== "open") return [];
      const n = this.countExpiredSegments();
      if (n === 0) return this.detachSegmentsBelowStart();
      if (n === this.segments.length) await this.roll(this._logEndOffset);
      const out = this.detachOldest(n);
      const newStart = this.segments[0]!.baseOffset;
      if (newStart > this._logStartOffset) this.setLogStartOffset(newStart);
      return [...out, ...this.detachSegmentsBelowStart()];
    });
    if (removed.length > 0) await this.afterLogStartMoved(removed);
    return removed.length;
  }

  private countExpiredSegments(): number {
    const segs = this.segments;
    const now = BigInt(this.clock.nowMs());
    const retentionMs = this.cfg["retention.ms"];
    const retentionBytes = this.cfg["retention.bytes"];
    const useDelete = deletes(this.cfg);
    let oversize = retentionBytes >= 0 ? this.sizeBytes - retentionBytes : 0;
    let n = 0;
    for (let i = 0; i < segs.length; i++) {
      const seg = segs[i]!;
      const isLast = i === segs.length - 1;
      if (isLast && seg.isEmpty) break;
      const upper = isLast ? this._logEndOffset : segs[i + 1]!.baseOffset;
      if (upper > this._highWatermark) break;
      const belowStart = !isLast && upper <= this._logStartOffset;
      const newest = seg.maxTimestamp >= 0n ? seg.maxTimestamp : BigInt(Math.trunc(seg.createdMs));
      const expired = useDelete && retentionMs >= 0 && now - newest > BigInt(retentionMs);
      const tooBig = useDelete && retentionBytes >= 0 && oversize - seg.size >= 0;
      if (!belowStart && !expired && !tooBig) break;
      oversize -= seg.size;
      n++;
    }
    return n;
  }

  // ---- compaction ---------------------------------------------------------------------------------

  /**
   * One compaction pass (cleanup.policy with "compact"): keeps the latest record per key below the
   * first uncleanable offset (the active segment, the high watermark, min.compaction.lag.ms),
   * removes tombstones whose delete horizon (stamped when first cleaned: now + delete.retention.ms)
   * has passed, keeps offsets and producer fields, and swaps cleaned segments in atomically.
   * Returns the number of records removed (0 when nothing was due).
   */
  async compact(opts: { force?: boolean } = {}): Promise<number> {
    if (this.state !== "open" || !compacted(this.cfg)) return 0;
    this.compacting ??= compactLog(this.cleanerHost(), opts.force ?? false).finally(() => {
      this.compacting = null;
    });
    const r = await this.compacting;
    return r.recordsRemoved;
  }

  private cleanerHost(): CleanerHost {
    return {
      disk: this.disk,
      clock: this.clock,
      dir: this.dir,
      key: this.key,
      config: () => this.cfg,
      segmentOptions: () => this.segmentOptions,
      segments: () => this.segments,
      logStartOffset: () => this._logStartOffset,
      highWatermark: () => this._highWatermark,
      cleanerOffset: () => this.dirState.maps.cleanerOffsets.get(this.key) ?? 0n,
      setCleanerOffset: (o) => {
        this.dirState.maps.cleanerOffsets.set(this.key, o);
      },
      nextDeleteHorizonMs: () => this.nextDeleteHorizonMs,
      setNextDeleteHorizonMs: (ms) => {
        this.nextDeleteHorizonMs = ms;
      },
      mapBytesMax: this.compactionMapBytesMax,
      isOpen: () => this.state === "open",
      swap: (oldSegs, replacement) =>
        this.mutex.run(async () => {
          if (this.state !== "open") return false;
          const at = this.segments.indexOf(oldSegs[0]!);
          if (at < 0 || oldSegs.some((s, k) => this.segments[at + k] !== s || s.isDeleted)) return false;
          if (at + oldSegs.length >= this.segments.length) return false; // never the active segment
          await replacement.install();
          const seg = replacement.segment;
          seg.onIndexesLoaded = (s) => this.indexMemory?.track(s);
          this.segments = [...this.segments.slice(0, at), seg, ...this.segments.slice(at + oldSegs.length)];
          for (const s of oldSegs) {
            this.unsynced.delete(s);
            this.indexMemory?.forget(s);
          }
          this.indexMemory?.track(seg);
          this.tailCache?.dropBelow(oldSegs.at(-1)!.nextOffset);
          return true;
        }),
    };
  }

  // ---- aborted transactions -----------------------------------------------------------------------

  /** Records a transaction aborted by a marker at `e.lastOffset` (in the segment holding the marker). */
  appendAbortedTxn(e: AbortedTxnEntry): Promise<void> {
    return this.mutex.run(async () => {
      this.checkOpen();
      let seg = this.active;
      for (const s of this.segments) if (s.baseOffset <= e.lastOffset) seg = s;
      if (!seg.txnIndex.has(e.lastOffset)) {
        try {
          await seg.txnIndex.append(e);
        } catch (err) {
          throw ioError(`cannot write the transaction index of ${this.key}`, err);
        }
      }
    });
  }

  /** Aborted transactions overlapping [fetchOffset, upperBound): what Fetch returns to read_committed consumers. */
  collectAbortedTxns(fetchOffset: bigint, upperBound: bigint): AbortedTxnEntry[] {
    const out: AbortedTxnEntry[] = [];
    const segs = this.segments;
    for (let i = floorSegment(segs, fetchOffset); i < segs.length; i++) {
      const seg = segs[i]!;
      if (seg.baseOffset >= upperBound) break;
      for (const e of seg.txnIndex.list()) if (e.lastOffset >= fetchOffset && e.firstOffset < upperBound) out.push(e);
    }
    return out;
  }

  // ---- producer state snapshots ---------------------------------------------------------------------

  /**
   * Stores a producer state snapshot taken at `offset` as `<offset>.snapshot` (opaque bytes, written
   * atomically). The newest SNAPSHOTS_KEPT are kept.
   */
  async writeProducerSnapshot(offset: bigint, data: Uint8Array): Promise<void> {
    try {
      await writeFileDurable(this.disk, join(this.dir, segmentFileName(offset, ".snapshot")), [data]);
      const all = await this.snapshotOffsets();
      for (const o of all.slice(0, Math.max(0, all.length - SNAPSHOTS_KEPT))) await this.deleteSnapshot(o);
    } catch (e) {
      throw ioError(`cannot write a producer snapshot of ${this.key}`, e);
    }
  }

  /** Offsets of the stored snapshots, ascending. */
  async snapshotOffsets(): Promise<bigint[]> {
    return (await this.disk.readdir(this.dir))
      .filter((n) => /^\d{20}\.snapshot$/.test(n))
      .map((n) => BigInt(n.slice(0, 20)))
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }

  async readProducerSnapshot(offset: bigint): Promise<Buffer | null> {
    return readWholeFile(this.disk, join(this.dir, segmentFileName(offset, ".snapshot")));
  }

  /** The newest snapshot at or below the log end, or null. */
  async readLatestProducerSnapshot(): Promise<{ offset: bigint; data: Buffer } | null> {
    const offsets = (await this.snapshotOffsets()).filter((o) => o <= this._logEndOffset);
    for (let i = offsets.length - 1; i >= 0; i--) {
      const data = await this.readProducerSnapshot(offsets[i]!);
      if (data !== null) return { offset: offsets[i]!, data };
    }
    return null;
  }

  private async deleteSnapshot(offset: bigint): Promise<void> {
    await unlinkIfExists(this.disk, join(this.dir, segmentFileName(offset, ".snapshot")));
  }

  private async deleteSnapshotsAfter(offset: bigint): Promise<void> {
    for (const o of await this.snapshotOffsets()) if (o > offset) await this.deleteSnapshot(o);
  }

  /** Snapshots below the log start describe removed data; the newest of them is kept as a base. */
  private async deleteSnapshotsBefore(offset: bigint): Promise<void> {
    const below = (await this.snapshotOffsets()).filter((o) => o < offset);
    for (const o of below.slice(0, -1)) await this.deleteSnapshot(o);
  }

  // ---- shutdown -----------------------------------------------------------------------------------

  /**
   * Waits for queued appends, fsyncs everything, writes all indexes, and closes the files. The
   * log dir's checkpoints (recovery point = log end) are written by the LogManager.
   */
  async close(): Promise<void> {
    if (this.state !== "open") return;
    await this.mutex.run(async () => {
      while (this.queue.length > 0) await this.writeRound();
      this.state = "closing";
    });
    await this.compacting?.catch(() => {});
    try {
      await this.syncAll();
      for (const seg of this.segments) {
        if (!seg.indexesPersisted && seg.indexesLoaded) await seg.persistIndexes();
      }
      await this.leaderEpochCache.settle();
      this.recoveryPoint = this._logEndOffset;
    } finally {
      await this.mutex.run(async () => {
        this.state = "closed";
        for (const a of this.acks.splice(0)) a.reject(new StorageError("LOG_CLOSED", `log ${this.key} is closed`));
        this.tailCache?.clear();
        for (const s of this.segments) {
          this.indexMemory?.forget(s);
          await s.close();
        }
      });
      this.publishOffsets();
    }
  }

  get isClosed(): boolean {
    return this.state === "closed";
  }

  /** Closes the log (without flushing) and removes its directory. */
  async delete(): Promise<void> {
    if (this.state === "open") {
      await this.mutex.run(async () => {
        this.state = "closed";
        for (const it of this.queue.splice(0)) it.reject(new StorageError("LOG_CLOSED", `log ${this.key} was deleted`));
      });
    }
    this.state = "closed";
    await this.compacting?.catch(() => {});
    for (const a of this.acks.splice(0)) a.reject(new StorageError("LOG_CLOSED", `log ${this.key} was deleted`));
    this.tailCache?.clear();
    for (const s of this.segments) {
      this.indexMemory?.forget(s);
      await s.close();
    }
    this.dirState.forget(this.key);
    try {
      await this.disk.rmdir(this.dir);
    } catch (e) {
      if (!isNotFound(e)) throw ioError(`cannot delete log ${this.key}`, e);
    }
  }
}

/** Checks the CRCs left to check: null when all pass, else each failing append's error. */
function checkCrcs(run: readonly QueuedAppend[]): Map<QueuedAppend, StorageError> | null {
  let corrupt: Map<QueuedAppend, StorageError> | null = null;
  for (const it of run) {
    if (!it.crcPending) continue;
    for (const b of it.batches) {
      if (computeBatchCrc(it.records, b.position, b.header.batchLength) === b.header.crc) continue;
      corrupt ??= new Map();
      corrupt.set(
        it,
        new StorageError(
          "CORRUPT_MESSAGE",
          `record batch at ${b.position} (${b.header.recordCount} records) has a bad CRC`,
        ),
      );
      break;
    }
  }
  return corrupt;
}

/** Waits for every promise (none is left unobserved), then throws the first failure. */
async function settleAll(promises: readonly Promise<unknown>[]): Promise<void> {
  const results = await Promise.allSettled(promises);
  for (const r of results) if (r.status === "rejected") throw r.reason;
}

function clamp(v: bigint, lo: bigint, hi: bigint): bigint {
  return v < lo ? lo : v > hi ? hi : v;
}

/** Index of the last segment whose base offset is ≤ offset (0 when none is). */
function floorSegment(segs: readonly LogSegment[], offset: bigint): number {
  let lo = 0;
  let hi = segs.length - 1;
  let found = 0;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if (segs[mid]!.baseOffset <= offset) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}

function maxTimestampOf(it: { readonly batches: readonly { readonly header: RecordBatchHeader }[] }): bigint {
  let max = -1n;
  for (const b of it.batches) if (b.header.maxTimestamp > max) max = b.header.maxTimestamp;
  return max;
}

/** A read that found nothing (shared and frozen). */
const NOTHING_READ: ChunkedReadResult = Object.freeze({
  chunks: Object.freeze([]),
  byteLength: 0,
});

function result(records: Buffer, firstOffset: bigint): ReadResult {
  return records.length === 0 ? { records } : { records, firstOffset };
}

function emptyInfo(end: bigint, start: bigint): AppendInfo {
  return {
    baseOffset: -1n,
    lastOffset: -1n,
    logAppendTimeMs: -1n,
    logStartOffset: start,
    logEndOffset: end,
    batches: [],
  };
}
