// The log of one partition: an ordered, append-only sequence of record batches in segments.
//
// Directory `<topic>-<partition>/` holds the segments (see segment.ts), plus
//   leader-epoch-checkpoint        epoch → start offset (leader-epoch-cache.ts)
//   partition-state-checkpoint     "highWatermark logStartOffset" (Kafka's checkpoint format)
//   <20-digit offset>.snapshot     producer state snapshots (opaque bytes, owned by the broker)
//
// Offsets: logStartOffset ≤ highWatermark ≤ logEndOffset. `logEndOffset` is the next offset to
// assign. Every batch keeps its record count: a batch of n records takes offsets [base, base+n-1].
//
// Concurrency: appends, truncation, retention, compaction and close run one at a time through
// `exclusive`; reads run concurrently and only look at segment bytes that existed when they began.
// fsync-before-ack acknowledgements wait for a sync that starts after their write (group commit)
// outside the exclusive section, so many appends share one fsync.

import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { join } from "node:path";
import {
  batchTotalBytes,
  isControlBatch,
  iterateBatches,
  lastOffsetOf,
  patchBaseOffset,
  patchPartitionLeaderEpoch,
  type RecordBatchHeader,
  setLogAppendTime,
} from "@sluice/protocol/records/batch-header.ts";
import { RecordsError } from "@sluice/protocol/records/errors.ts";
import { buildRecordBatch, parseRecordBatch } from "@sluice/protocol/records/record-batch.ts";
import { readCheckpoint, writeCheckpoint } from "./checkpoint.ts";
import type { Clock, Disk } from "./disk.ts";
import { OffsetOutOfRangeError, StorageError } from "./errors.ts";
import { LeaderEpochCache } from "./leader-epoch-cache.ts";
import { compacted, deletes, type LogConfig } from "./log-config.ts";
import { type BatchLocation, LogSegment, segmentFileName } from "./segment.ts";
import type { AbortedTxnEntry } from "./txn-index.ts";

export interface AppendInfo {
  baseOffset: bigint;
  lastOffset: bigint;
  logAppendTimeMs: bigint;
  logStartOffset: bigint;
  logEndOffset: bigint;
  /** The batches as written (offsets assigned), for the producer-state bookkeeping of the caller. */
  batches: BatchLocation[];
}

export interface ReadResult {
  /** Whole batches; empty when nothing is available below the bound. */
  records: Buffer;
  /** Offset of the first batch returned (may be below the fetch offset: a batch is never split). */
  firstOffset: bigint | null;
}

export interface ReadOptions {
  /** Exclusive upper bound: batches starting at or after it are not returned (high watermark / LSO). */
  maxOffset?: bigint;
  /** Return the first batch even if it is larger than maxBytes (Kafka's rule, so consumers never stall). */
  minOneMessage?: boolean;
}

export interface TimestampLookup {
  offset: bigint;
  timestamp: bigint;
  leaderEpoch: number;
}

export interface LogDeps {
  readonly disk: Disk;
  readonly clock: Clock;
}

const STATE_CHECKPOINT = "partition-state-checkpoint";
const EPOCH_CHECKPOINT = "leader-epoch-checkpoint";

export class PartitionLog extends EventEmitter {
  readonly topic: string;
  readonly partition: number;
  readonly dir: string;
  config: LogConfig;
  private readonly disk: Disk;
  private readonly clock: Clock;
  private segments: LogSegment[] = [];
  readonly leaderEpochCache: LeaderEpochCache;
  logStartOffset = 0n;
  logEndOffset = 0n;
  highWatermark = 0n;
  private closed = false;
  private lock: Promise<unknown> = Promise.resolve();
  private unflushedMessages = 0;
  private lastFlushMs: number;
  private pendingSync: Promise<void> | null = null;
  private runningSync: Promise<void> | null = null;
  /** Segments rolled since the last sync, that a sync must also cover. */
  private unsyncedSealed: LogSegment[] = [];

  private constructor(dir: string, topic: string, partition: number, config: LogConfig, deps: LogDeps) {
    super();
    this.setMaxListeners(0);
    this.dir = dir;
    this.topic = topic;
    this.partition = partition;
    this.config = config;
    this.disk = deps.disk;
    this.clock = deps.clock;
    this.leaderEpochCache = new LeaderEpochCache(deps.disk, join(dir, EPOCH_CHECKPOINT));
    this.lastFlushMs = deps.clock.nowMs();
  }

  /**
   * Opens the log in `dir`. Segments at or after `recoveryPoint` (all of them after an unclean
   * shutdown) are scanned and truncated at the first invalid batch; earlier ones load their indexes.
   */
  static async open(
    dir: string,
    topic: string,
    partition: number,
    config: LogConfig,
    deps: LogDeps,
    recoveryPoint: bigint | null,
  ): Promise<PartitionLog> {
    const log = new PartitionLog(dir, topic, partition, config, deps);
    await deps.disk.mkdir(dir);
    await log.load(recoveryPoint);
    return log;
  }

  private async load(recoveryPoint: bigint | null): Promise<void> {
    const names = await this.disk.readdir(this.dir);
    // Leftovers of an interrupted compaction are discarded; the original segment is still whole.
    for (const n of names.filter((x) => x.endsWith(".cleaned") || x.endsWith(".tmp"))) {
      await this.disk.unlink(join(this.dir, n)).catch(() => {});
    }
    const bases = names
      .filter((n) => /^\d{20}\.log$/.test(n))
      .map((n) => BigInt(n.slice(0, 20)))
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const state = await readCheckpoint(this.disk, join(this.dir, STATE_CHECKPOINT));
    const savedHw = state[0] ? BigInt(state[0][0] ?? "0") : 0n;
    const savedStart = state[0] ? BigInt(state[0][1] ?? "0") : 0n;
    await this.leaderEpochCache.load();
    let prevLast = -1n;
    for (const base of bases) {
      const seg = await this.openSegment(base);
      if (recoveryPoint === null || seg.baseOffset >= recoveryPoint || base === bases.at(-1)) {
        await seg.recover(prevLast);
      } else {
        await seg.loadIndexes(prevLast);
      }
      if (!seg.isEmpty) prevLast = seg.lastOffset;
      this.segments.push(seg);
    }
    if (this.segments.length === 0) this.segments.push(await this.openSegment(savedStart));
    const active = this.active;
    this.logEndOffset = active.isEmpty ? (prevLast >= 0n ? prevLast + 1n : active.baseOffset) : active.nextOffset;
    this.logStartOffset = savedStart > this.segments[0]!.baseOffset ? savedStart : this.segments[0]!.baseOffset;
    if (this.logStartOffset > this.logEndOffset) this.logStartOffset = this.logEndOffset;
    this.highWatermark =
      savedHw < this.logStartOffset ? this.logStartOffset : savedHw > this.logEndOffset ? this.logEndOffset : savedHw;
    await this.leaderEpochCache.truncateFromEnd(this.logEndOffset);
  }

  private openSegment(base: bigint): Promise<LogSegment> {
    return LogSegment.open(
      this.disk,
      this.dir,
      base,
      this.config["index.interval.bytes"],
      this.config["segment.index.bytes"],
      this.clock.nowMs(),
    );
  }

  private get active(): LogSegment {
    const a = this.segments.at(-1);
    assert.ok(a, "a log always has an active segment");
    return a;
  }

  get sizeBytes(): number {
    return this.segments.reduce((n, s) => n + s.size, 0);
  }

  get segmentCount(): number {
    return this.segments.length;
  }

  segmentBaseOffsets(): bigint[] {
    return this.segments.map((s) => s.baseOffset);
  }

  /** Runs `fn` alone among mutations of this log. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(() => {
      if (this.closed) throw new StorageError("LOG_CLOSED", `log ${this.topic}-${this.partition} is closed`);
      return fn();
    });
    this.lock = run.catch(() => {});
    return run;
  }

  // ---- append -----------------------------------------------------------------------------------

  /**
   * Appends batches from a producer: validates each (header, CRC, record count, size), assigns
   * offsets, stamps the leader epoch (and LogAppendTime when configured) in place, and writes them
   * in one write. Rejects the whole append if any batch is invalid.
   */
  async appendAsLeader(records: Uint8Array, leaderEpoch: number): Promise<AppendInfo> {
    const batches = this.validate(records);
    return this.appendValidated(records, batches, leaderEpoch, true);
  }

  /** Appends batches replicated from the leader, keeping their offsets and epochs. */
  async appendAsFollower(records: Uint8Array): Promise<AppendInfo> {
    const batches = this.validate(records);
    return this.appendValidated(records, batches, -1, false);
  }

  private validate(records: Uint8Array): BatchLocation[] {
    const out: BatchLocation[] = [];
    try {
      for (const b of iterateBatches(records, { verifyCrc: true })) {
        if (batchTotalBytes(b.header) > this.config["max.message.bytes"]) {
          throw new StorageError(
            "MESSAGE_TOO_LARGE",
            `batch of ${batchTotalBytes(b.header)} bytes exceeds max.message.bytes ${this.config["max.message.bytes"]}`,
          );
        }
        if (b.header.recordCount <= 0 || b.header.lastOffsetDelta !== b.header.recordCount - 1) {
          throw new StorageError(
            "INVALID_RECORD",
            `batch record count ${b.header.recordCount} does not match its offsets`,
          );
        }
        out.push(b);
      }
    } catch (e) {
      if (e instanceof StorageError) throw e;
      if (e instanceof RecordsError) throw new StorageError("CORRUPT_MESSAGE", e.message, { cause: e });
      throw e;
    }
    if (out.length === 0) throw new StorageError("CORRUPT_MESSAGE", "no record batch in the append");
    return out;
  }

  private async appendValidated(
    records: Uint8Array,
    batches: BatchLocation[],
    leaderEpoch: number,
    assignOffsets: boolean,
  ): Promise<AppendInfo> {
    const info = await this.exclusive(async () => {
      const now = BigInt(this.clock.nowMs());
      const logAppendTime = this.config["message.timestamp.type"] === "LogAppendTime";
      let next = this.logEndOffset;
      for (const b of batches) {
        if (assignOffsets) {
          patchBaseOffset(records, b.position, next);
          patchPartitionLeaderEpoch(records, b.position, leaderEpoch);
          b.header.baseOffset = next;
          b.header.partitionLeaderEpoch = leaderEpoch;
          if (logAppendTime && !isControlBatch(b.header.attributes)) {
            setLogAppendTime(records, b.position, now);
            b.header.maxTimestamp = now;
          }
        } else if (b.header.baseOffset < next) {
          throw new StorageError("INVALID_RECORD", `follower batch offset ${b.header.baseOffset} is below ${next}`);
        }
        next = lastOffsetOf(b.header) + 1n;
      }
      const total = records.byteLength;
      await this.maybeRoll(total, batches[0]!.header.baseOffset);
      const first = batches[0]!.header.baseOffset;
      await this.active.append([records], batches);
      this.logEndOffset = next;
      if (assignOffsets && leaderEpoch >= 0) await this.leaderEpochCache.assign(leaderEpoch, first);
      if (!assignOffsets) {
        for (const b of batches) await this.leaderEpochCache.assign(b.header.partitionLeaderEpoch, b.header.baseOffset);
      }
      let count = 0;
      for (const b of batches) count += b.header.recordCount;
      this.unflushedMessages += count;
      return {
        baseOffset: first,
        lastOffset: next - 1n,
        logAppendTimeMs: logAppendTime ? now : -1n,
        logStartOffset: this.logStartOffset,
        logEndOffset: next,
        batches,
      };
    });
    if (this.config["fsync.before.ack"]) await this.syncGrouped();
    else if (this.unflushedMessages >= this.config["flush.messages"]) await this.flush();
    this.emit("append", info);
    return info;
  }

  private async maybeRoll(incomingBytes: number, nextOffset: bigint): Promise<void> {
    const a = this.active;
    if (a.isEmpty) return;
    const full = a.size + incomingBytes > this.config["segment.bytes"];
    const old = this.clock.nowMs() - a.createdMs > this.config["segment.ms"];
    if (full || old || a.indexFull) await this.roll(nextOffset);
  }

  /** Starts a new active segment at `nextOffset` (the log end offset). */
  private async roll(nextOffset: bigint): Promise<void> {
    const sealed = this.active;
    this.segments.push(await this.openSegment(nextOffset));
    this.unsyncedSealed.push(sealed);
  }

  /** Forces a roll (tests, and retention of an expired active segment). */
  rollNow(): Promise<void> {
    return this.exclusive(async () => {
      if (!this.active.isEmpty) await this.roll(this.logEndOffset);
    });
  }

  /** Group commit: resolves after a sync that started after the caller's write. */
  private syncGrouped(): Promise<void> {
    if (this.pendingSync) return this.pendingSync;
    const run = async (): Promise<void> => {
      await this.runningSync?.catch(() => {});
      this.pendingSync = null;
      const sealed = this.unsyncedSealed.splice(0);
      const active = this.active;
      const current = (async () => {
        for (const s of sealed) await s.sync();
        await active.sync();
      })();
      this.runningSync = current;
      try {
        await current;
        this.unflushedMessages = 0;
        this.lastFlushMs = this.clock.nowMs();
      } finally {
        if (this.runningSync === current) this.runningSync = null;
      }
    };
    const p = run();
    this.pendingSync = p;
    return p;
  }

  /** fsyncs everything written so far. */
  flush(): Promise<void> {
    return this.syncGrouped();
  }

  /** Flushes when flush.ms has passed since the last flush (called by the LogManager's scheduler). */
  async maybeFlushByTime(): Promise<void> {
    if (this.unflushedMessages > 0 && this.clock.nowMs() - this.lastFlushMs >= this.config["flush.ms"])
      await this.flush();
  }

  // ---- read -------------------------------------------------------------------------------------

  async read(fetchOffset: bigint, maxBytes: number, opts: ReadOptions = {}): Promise<ReadResult> {
    const maxOffset = opts.maxOffset ?? this.logEndOffset;
    if (fetchOffset < this.logStartOffset || fetchOffset > this.logEndOffset) {
      throw new OffsetOutOfRangeError(fetchOffset, this.logStartOffset, this.logEndOffset);
    }
    if (fetchOffset >= maxOffset || fetchOffset === this.logEndOffset)
      return { records: Buffer.alloc(0), firstOffset: null };
    const segments = this.segments;
    let i = segments.length - 1;
    while (i > 0 && segments[i]!.baseOffset > fetchOffset) i--;
    for (; i < segments.length; i++) {
      const seg = segments[i]!;
      const limit = seg.size;
      const start = await seg.findBatch(fetchOffset, limit);
      if (start === null) continue;
      if (start.header.baseOffset >= maxOffset) break;
      let end = start.position;
      let first = true;
      await seg.scan(start.position, limit, (b) => {
        const size = batchTotalBytes(b.header);
        if (b.header.baseOffset >= maxOffset) return false;
        if (!(first && (opts.minOneMessage ?? true)) && end - start.position + size > maxBytes) return false;
        if (first && !(opts.minOneMessage ?? true) && size > maxBytes) return false;
        end += size;
        first = false;
        return true;
      });
      if (end === start.position) return { records: Buffer.alloc(0), firstOffset: null };
      const records = await seg.readAt(start.position, end - start.position);
      return { records, firstOffset: start.header.baseOffset };
    }
    return { records: Buffer.alloc(0), firstOffset: null };
  }

  /** Verifies every batch of the log (CRC, lengths); throws CORRUPT_MESSAGE at the first bad one. */
  async verify(): Promise<void> {
    for (const seg of this.segments) {
      const bytes = await seg.readAt(0, seg.size);
      try {
        for (const _ of iterateBatches(bytes, { verifyCrc: true })) {
          // iterating checks each batch
        }
      } catch (e) {
        throw new StorageError("CORRUPT_MESSAGE", `segment ${seg.baseOffset}: ${(e as Error).message}`, { cause: e });
      }
    }
  }

  /** ListOffsets semantics. Returns null when no record qualifies. */
  async offsetForTimestamp(ts: bigint | "earliest" | "latest" | "maxTimestamp"): Promise<TimestampLookup | null> {
    const epochOf = (offset: bigint): number => {
      let e = -1;
      for (const x of this.leaderEpochCache.list()) if (x.startOffset <= offset) e = x.epoch;
      return e;
    };
    if (ts === "earliest")
      return { offset: this.logStartOffset, timestamp: -1n, leaderEpoch: epochOf(this.logStartOffset) };
    if (ts === "latest")
      return { offset: this.logEndOffset, timestamp: -1n, leaderEpoch: this.leaderEpochCache.latestEpoch() };
    if (ts === "maxTimestamp") {
      let best: LogSegment | null = null;
      for (const s of this.segments) if (!s.isEmpty && (best === null || s.maxTimestamp >= best.maxTimestamp)) best = s;
      if (best === null) return null;
      return {
        offset: best.offsetOfMaxTimestamp,
        timestamp: best.maxTimestamp,
        leaderEpoch: epochOf(best.offsetOfMaxTimestamp),
      };
    }
    for (const seg of this.segments) {
      if (seg.isEmpty || seg.maxTimestamp < ts) continue;
      let hit: BatchLocation | null = null;
      await seg.scan(seg.timeSearchStart(ts), seg.size, (b) => {
        if (b.header.maxTimestamp >= ts && lastOffsetOf(b.header) >= this.logStartOffset) {
          hit = b;
          return false;
        }
        return true;
      });
      if (hit === null) continue;
      const h = (hit as BatchLocation).header;
      const bytes = await seg.readAt((hit as BatchLocation).position, batchTotalBytes(h));
      const parsed = parseRecordBatch(bytes, 0);
      for (const r of parsed.records) {
        if (r.timestamp >= ts && r.offset >= this.logStartOffset) {
          return { offset: r.offset, timestamp: r.timestamp, leaderEpoch: h.partitionLeaderEpoch };
        }
      }
    }
    return null;
  }

  // ---- offsets ----------------------------------------------------------------------------------

  async updateHighWatermark(hw: bigint): Promise<void> {
    const clamped = hw > this.logEndOffset ? this.logEndOffset : hw < this.logStartOffset ? this.logStartOffset : hw;
    if (clamped === this.highWatermark) return;
    this.highWatermark = clamped;
    this.emit("highWatermark", clamped);
  }

  /** DeleteRecords: moves the log start offset forward (not past the high watermark). */
  deleteRecordsBefore(offset: bigint): Promise<bigint> {
    return this.exclusive(async () => {
      if (offset > this.highWatermark) throw new OffsetOutOfRangeError(offset, this.logStartOffset, this.highWatermark);
      if (offset <= this.logStartOffset) return this.logStartOffset;
      this.logStartOffset = offset;
      await this.deleteSegmentsBelowStart();
      await this.writeStateCheckpoint();
      await this.leaderEpochCache.truncateFromStart(offset);
      return this.logStartOffset;
    });
  }

  private async deleteSegmentsBelowStart(): Promise<void> {
    while (this.segments.length > 1 && this.segments[1]!.baseOffset <= this.logStartOffset) {
      const seg = this.segments.shift()!;
      await seg.delete();
    }
  }

  /** Removes everything at and after `offset` (a follower after failover). */
  truncateTo(offset: bigint): Promise<void> {
    return this.exclusive(async () => {
      if (offset >= this.logEndOffset) return;
      const target = offset < this.logStartOffset ? this.logStartOffset : offset;
      while (this.segments.length > 1 && this.active.baseOffset >= target) {
        const seg = this.segments.pop()!;
        await seg.delete();
      }
      if (this.active.baseOffset >= target) {
        // Everything goes: start afresh at the target.
        const seg = this.segments.pop()!;
        await seg.delete();
        this.segments.push(await this.openSegment(target));
        this.logEndOffset = target;
      } else {
        await this.active.truncateTo(target);
        this.logEndOffset = this.active.isEmpty ? this.active.baseOffset : this.active.nextOffset;
      }
      if (this.highWatermark > this.logEndOffset) this.highWatermark = this.logEndOffset;
      await this.leaderEpochCache.truncateFromEnd(this.logEndOffset);
      this.emit("truncate", this.logEndOffset);
    });
  }

  // ---- retention and compaction -----------------------------------------------------------------

  /** Deletes whole sealed segments past retention.ms / retention.bytes. Returns how many. */
  applyRetention(): Promise<number> {
    return this.exclusive(async () => {
      if (!deletes(this.config)) return 0;
      const now = BigInt(this.clock.nowMs());
      const retentionMs = BigInt(this.config["retention.ms"]);
      const retentionBytes = this.config["retention.bytes"];
      let size = this.sizeBytes;
      let deleted = 0;
      while (this.segments.length > 1) {
        const seg = this.segments[0]!;
        // Only data below the high watermark may go.
        if (seg.nextOffset > this.highWatermark) break;
        const ts = seg.maxTimestamp >= 0n ? seg.maxTimestamp : BigInt(seg.createdMs);
        const expired = retentionMs >= 0n && now - ts > retentionMs;
        const oversize = retentionBytes >= 0 && size - seg.size >= retentionBytes;
        if (!expired && !oversize) break;
        this.segments.shift();
        size -= seg.size;
        await seg.delete();
        deleted++;
      }
      if (deleted > 0) {
        const base = this.segments[0]!.baseOffset;
        if (base > this.logStartOffset) this.logStartOffset = base;
        await this.writeStateCheckpoint();
        await this.leaderEpochCache.truncateFromStart(this.logStartOffset);
      }
      return deleted;
    });
  }

  /**
   * Compacts sealed segments: keeps the latest record per key (the active segment's keys count but
   * it is never rewritten), drops tombstones older than delete.retention.ms, keeps offsets. Batches
   * are rewritten with their surviving records, original offsets and producer fields; a rewritten
   * segment replaces the original through a rename. Returns the records removed.
   */
  compact(): Promise<number> {
    return this.exclusive(async () => {
      if (!compacted(this.config) || this.segments.length < 2) return 0;
      const now = BigInt(this.clock.nowMs());
      const lagMs = BigInt(this.config["min.compaction.lag.ms"]);
      const latest = new Map<string, bigint>();
      const parsedBySeg: { seg: LogSegment; batches: ReturnType<typeof parseRecordBatch>[] }[] = [];
      for (const seg of this.segments) {
        const bytes = await seg.readAt(0, seg.size);
        const batches: ReturnType<typeof parseRecordBatch>[] = [];
        for (const { position } of iterateBatches(bytes)) {
          const p = parseRecordBatch(bytes, position);
          batches.push(p);
          if (isControlBatch(p.header.attributes)) continue;
          for (const r of p.records) if (r.key !== null) latest.set(Buffer.from(r.key).toString("base64"), r.offset);
        }
        parsedBySeg.push({ seg, batches });
      }
      let removed = 0;
      const tombstoneLimit = now - BigInt(this.config["delete.retention.ms"]);
      for (const { seg, batches } of parsedBySeg.slice(0, -1)) {
        if (seg.nextOffset > this.highWatermark) break;
        if (lagMs > 0n && seg.maxTimestamp > now - lagMs) break;
        const out: Buffer[] = [];
        let segRemoved = 0;
        for (const p of batches) {
          if (isControlBatch(p.header.attributes)) {
            out.push(rebuild(p.header, p.records));
            continue;
          }
          const keep = p.records.filter((r) => {
            if (r.key === null) return true;
            if (latest.get(Buffer.from(r.key).toString("base64")) !== r.offset) return false;
            return !(r.value === null && p.header.maxTimestamp < tombstoneLimit);
          });
          segRemoved += p.records.length - keep.length;
          if (keep.length > 0) out.push(rebuild(p.header, keep));
        }
        if (segRemoved === 0) continue;
        removed += segRemoved;
        const cleaned = join(this.dir, `${segmentFileName(seg.baseOffset, ".log")}.cleaned`);
        await this.disk.writeFileAtomic(cleaned, Buffer.concat(out));
        await seg.replaceWith(cleaned);
      }
      return removed;
    });
  }

  // ---- aborted transactions -----------------------------------------------------------------------

  /** Records a transaction aborted by a marker at `e.lastOffset` (in the segment holding the marker). */
  appendAbortedTxn(e: AbortedTxnEntry): Promise<void> {
    return this.exclusive(async () => {
      let seg = this.active;
      for (const s of this.segments) if (s.baseOffset <= e.lastOffset) seg = s;
      if (seg.txnIndex && !seg.txnIndex.has(e.lastOffset)) await seg.txnIndex.append(e);
    });
  }

  /** Aborted transactions overlapping [fetchOffset, upperBound): what Fetch returns to read_committed consumers. */
  collectAbortedTxns(fetchOffset: bigint, upperBound: bigint): AbortedTxnEntry[] {
    const out: AbortedTxnEntry[] = [];
    let i = this.segments.length - 1;
    while (i > 0 && this.segments[i]!.baseOffset > fetchOffset) i--;
    for (; i < this.segments.length; i++) {
      const seg = this.segments[i]!;
      if (seg.baseOffset >= upperBound) break;
      for (const e of seg.txnIndex?.list() ?? [])
        if (e.lastOffset >= fetchOffset && e.firstOffset < upperBound) out.push(e);
    }
    return out;
  }

  // ---- producer state snapshots -----------------------------------------------------------------

  async writeProducerSnapshot(offset: bigint, data: Uint8Array): Promise<void> {
    const name = segmentFileName(offset, ".snapshot");
    await this.disk.writeFileAtomic(join(this.dir, name), data);
    for (const n of await this.disk.readdir(this.dir)) {
      if (n.endsWith(".snapshot") && n !== name) await this.disk.unlink(join(this.dir, n)).catch(() => {});
    }
  }

  async readLatestProducerSnapshot(): Promise<{ offset: bigint; data: Buffer } | null> {
    const snaps = (await this.disk.readdir(this.dir)).filter((n) => /^\d{20}\.snapshot$/.test(n)).sort();
    const last = snaps.at(-1);
    if (last === undefined) return null;
    const offset = BigInt(last.slice(0, 20));
    if (offset > this.logEndOffset) return null;
    return { offset, data: await this.disk.readFile(join(this.dir, last)) };
  }

  // ---- shutdown ---------------------------------------------------------------------------------

  private async writeStateCheckpoint(): Promise<void> {
    await writeCheckpoint(this.disk, join(this.dir, STATE_CHECKPOINT), [
      [String(this.highWatermark), String(this.logStartOffset)],
    ]);
  }

  async close(): Promise<void> {
    await this.exclusive(async () => {
      await this.pendingSync?.catch(() => {});
      await this.runningSync?.catch(() => {});
      for (const s of this.unsyncedSealed.splice(0)) await s.sync().catch(() => {});
      await this.active.sync().catch(() => {});
      await this.writeStateCheckpoint();
      this.closed = true;
      for (const s of this.segments) await s.close();
    });
  }

  /** Closes and removes the log's directory. */
  async delete(): Promise<void> {
    await this.exclusive(async () => {
      this.closed = true;
      for (const s of this.segments) await s.close();
    }).catch(() => {});
    await this.disk.rmdir(this.dir);
  }
}

function rebuild(h: RecordBatchHeader, records: ReturnType<typeof parseRecordBatch>["records"]): Buffer {
  const codec = (h.attributes & 0x07) as 0 | 1 | 2 | 3 | 4;
  return buildRecordBatch({
    records: records.map((r) => ({
      key: r.key,
      value: r.value,
      headers: r.headers,
      timestamp: r.timestamp,
      offsetDelta: Number(r.offset - h.baseOffset),
    })),
    baseOffset: h.baseOffset,
    partitionLeaderEpoch: h.partitionLeaderEpoch,
    compression: codec,
    timestampType: (h.attributes & 0x08) !== 0 ? 1 : 0,
    transactional: (h.attributes & 0x10) !== 0,
    control: (h.attributes & 0x20) !== 0,
    producerId: h.producerId,
    producerEpoch: h.producerEpoch,
    baseSequence: h.baseSequence,
    baseTimestamp: h.baseTimestamp,
    lastOffsetDelta: h.lastOffsetDelta,
  });
}
