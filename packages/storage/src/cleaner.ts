// Log compaction (cleanup.policy=compact, and compact,delete), as Kafka's LogCleaner does it:
//
// 1. The cleanable range is made of sealed segments wholly below the first uncleanable offset: the
//    active segment's base, the high watermark, and the first segment holding records younger than
//    min.compaction.lag.ms. The dirty part starts at the cleaner offset (cleaner-offset-checkpoint).
// 2. A pass runs when dirty bytes / cleanable bytes ≥ min.cleanable.dirty.ratio, or when a
//    tombstone's delete horizon may have passed.
// 3. An offset map (key → latest offset) is built over the dirty part, bounded in memory; when it
//    fills up, the pass only cleans up to where it got.
// 4. Segments from the start of the log up to the map's end are rewritten in groups (consecutive
//    segments that fit in segment.bytes), keeping a record when no later record has its key. Batches
//    keep their offsets, producer fields and compression; one with records removed is rebuilt (new
//    CRC), an unchanged one is copied byte for byte. Control batches are kept. A batch left empty is
//    kept as an empty batch when it may be its producer's last (so producer state survives).
// 5. Tombstones (null values) are kept until their delete horizon: the first pass that keeps a
//    tombstone stamps its batch with horizon = now + delete.retention.ms (KIP-534: baseTimestamp
//    becomes the horizon and attribute bit 6 is set; record timestamps are unchanged); a later pass
//    after the horizon removes them.
// 6. Swap, crash-safe: the group is written to `<base>.log.cleaned` and fsynced; under the log's
//    mutex it is renamed to `<base>.log.swap`, the old segments' files to `.deleted`, and the swap
//    file to `<base>.log`. On startup a `.swap` file is completed (completeInterruptedSwaps) and
//    `.cleaned` files are discarded.
//
// Not done here (known gaps): removal of aborted transactional records and of transaction markers
// after their horizon; the broker's produce path rejects null keys for compacted topics, and any
// such record found here is dropped, as Kafka does.
//
// Concurrency: reading and rewriting run outside the log's mutex (sealed segments do not change
// except by truncation or deletion, which the swap detects: it is then abandoned). Only the renames
// of the swap run under the mutex.

import { createHash } from "node:crypto";
import { join } from "node:path";
import {
  type BatchPosition,
  type CompressionCodec,
  computeBatchCrc,
  DELETE_HORIZON_BIT,
  isControlBatch,
  lastOffsetOf,
  RECORD_BATCH_HEADER_BYTES,
  type RecordBatchHeader,
  TRANSACTIONAL_BIT,
  timestampTypeOf,
} from "@sluice/protocol/records/batch-header.ts";
import {
  buildRecordBatch,
  type Record as KafkaRecord,
  parseRecordBatch,
} from "@sluice/protocol/records/record-batch.ts";
import { type Clock, type Disk, type DiskFile, isNotFound, readWholeFile, unlinkIfExists, writeFully } from "./disk.ts";
import { ioError, StorageError } from "./errors.ts";
import type { LogConfig } from "./log-config.ts";
import { LogSegment, type SegmentOptions, segmentFileName } from "./segment.ts";
import { type AbortedTxnEntry, TXN_INDEX_ENTRY_BYTES, TxnIndex } from "./txn-index.ts";

const INT32_MAX = 2 ** 31 - 1;
/** Estimated memory of one offset-map entry besides its key (Map slot, string header, number). */
const MAP_ENTRY_OVERHEAD_BYTES = 64;
/** Keys longer than this are stored as a SHA-256 digest (Kafka stores MD5 digests of every key). */
const MAP_KEY_INLINE_BYTES = 32;
const WRITE_CHUNK_BYTES = 1024 * 1024;

export interface CompactionResult {
  readonly recordsRemoved: number;
  readonly segmentsCleaned: number;
}

export interface Replacement {
  readonly segment: LogSegment;
  /** Renames the cleaned file into place and the old segments away (under the log's mutex). */
  install(): Promise<void>;
}

/** What the cleaner needs of a PartitionLog. */
export interface CleanerHost {
  readonly disk: Disk;
  readonly clock: Clock;
  readonly dir: string;
  readonly key: string;
  readonly mapBytesMax: number;
  config(): Required<LogConfig>;
  segmentOptions(): SegmentOptions;
  segments(): readonly LogSegment[];
  logStartOffset(): bigint;
  highWatermark(): bigint;
  cleanerOffset(): bigint;
  setCleanerOffset(offset: bigint): void;
  nextDeleteHorizonMs(): number;
  setNextDeleteHorizonMs(ms: number): void;
  isOpen(): boolean;
  /** Replaces `old` (consecutive sealed segments) with `replacement`; false if the log changed meanwhile. */
  swap(old: readonly LogSegment[], replacement: Replacement): Promise<boolean>;
}

/** Latest offset per key, bounded by an estimate of its memory. */
export class OffsetMap {
  private readonly map = new Map<string, number>();
  private bytes = 0;
  readonly bytesMax: number;

  constructor(bytesMax: number) {
    this.bytesMax = bytesMax;
  }

  static keyOf(key: Uint8Array): string {
    if (key.byteLength <= MAP_KEY_INLINE_BYTES)
      return `r${Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString("latin1")}`;
    return `h${createHash("sha256").update(key).digest().toString("latin1")}`;
  }

  put(key: Uint8Array, offset: bigint): void {
    const k = OffsetMap.keyOf(key);
    if (!this.map.has(k)) this.bytes += k.length + MAP_ENTRY_OVERHEAD_BYTES;
    this.map.set(k, Number(offset));
  }

  get(key: Uint8Array): number | undefined {
    return this.map.get(OffsetMap.keyOf(key));
  }

  get full(): boolean {
    return this.bytes >= this.bytesMax;
  }

  get size(): number {
    return this.map.size;
  }
}

function maxDecompressedBytes(cfg: LogConfig): number {
  return Math.max(64 * 1024 * 1024, cfg["max.message.bytes"] * 4);
}

function parse(seg: LogSegment, bytes: Buffer, h: RecordBatchHeader, cfg: LogConfig): KafkaRecord[] {
  try {
    return parseRecordBatch(bytes, 0, { maxDecompressedBytes: maxDecompressedBytes(cfg) }).records;
  } catch (e) {
    throw new StorageError(
      "CORRUPT_MESSAGE",
      `compaction of segment ${segmentFileName(seg.baseOffset, ".log")}: batch at offset ${h.baseOffset}: ${(e as Error).message}`,
      { cause: e, retriable: false },
    );
  }
}

const yieldToLoop = (): Promise<void> => new Promise((r) => setImmediate(r));

/** One compaction pass; see the file comment. */
export async function compactLog(host: CleanerHost, force: boolean): Promise<CompactionResult> {
  const none = { recordsRemoved: 0, segmentsCleaned: 0 };
  const cfg = host.config();
  const now = host.clock.nowMs();
  const segs = host.segments();
  const cleanable = cleanableSegments(segs, host.highWatermark(), cfg["min.compaction.lag.ms"], now);
  if (cleanable.length === 0) return none;
  const cleanableEnd = segs[cleanable.length]!.baseOffset;
  let firstDirty = host.cleanerOffset();
  if (firstDirty < cleanable[0]!.baseOffset) firstDirty = cleanable[0]!.baseOffset;
  if (firstDirty > cleanableEnd) firstDirty = cleanableEnd;
  let dirtyBytes = 0;
  let totalBytes = 0;
  for (let i = 0; i < cleanable.length; i++) {
    const s = cleanable[i]!;
    totalBytes += s.size;
    const upper = segs[i + 1]!.baseOffset;
    if (upper > firstDirty) dirtyBytes += s.size;
  }
  const horizonDue = now >= host.nextDeleteHorizonMs();
  const ratio = totalBytes === 0 ? 0 : dirtyBytes / totalBytes;
  if (!force && !horizonDue && (dirtyBytes === 0 || ratio < cfg["min.cleanable.dirty.ratio"])) return none;

  const map = new OffsetMap(host.mapBytesMax);
  const producerLast = new Map<bigint, bigint>();
  const mapEnd = await buildOffsetMap(cleanable, firstDirty, cleanableEnd, map, producerLast, cfg);
  if (!host.isOpen()) return none;
  const cleanUpTo = mapEnd > firstDirty ? mapEnd : horizonDue || force ? cleanableEnd : firstDirty;
  const toClean = cleanable.filter((s) => s.baseOffset < cleanUpTo);
  let removed = 0;
  let cleaned = 0;
  let nextHorizon = Number.MAX_SAFE_INTEGER;
  for (const group of groupSegments(toClean, cfg["segment.bytes"])) {
    if (!host.isOpen()) return { recordsRemoved: removed, segmentsCleaned: cleaned };
    const out = await cleanGroup(host, group, map, producerLast, now, cfg);
    if (out.horizonMs < nextHorizon) nextHorizon = out.horizonMs;
    if (out.replacement === null) continue;
    let swapped: boolean;
    try {
      swapped = await host.swap(group, out.replacement);
    } catch (e) {
      await out.replacement.segment.close();
      await unlinkIfExists(host.disk, cleanedPath(host.dir, group[0]!.baseOffset));
      throw e;
    }
    if (!swapped) {
      await out.replacement.segment.close();
      await unlinkIfExists(host.disk, cleanedPath(host.dir, group[0]!.baseOffset));
      await unlinkIfExists(host.disk, swapPath(host.dir, group[0]!.baseOffset));
      return { recordsRemoved: removed, segmentsCleaned: cleaned };
    }
    await finishSwap(host.disk, host.dir, out.replacement.segment, out.txnEntries);
    removed += out.removed;
    cleaned += group.length;
  }
  if (mapEnd > host.cleanerOffset()) host.setCleanerOffset(mapEnd);
  host.setNextDeleteHorizonMs(nextHorizon);
  return { recordsRemoved: removed, segmentsCleaned: cleaned };
}

/** Leading sealed segments wholly below the first uncleanable offset. */
function cleanableSegments(
  segs: readonly LogSegment[],
  highWatermark: bigint,
  lagMs: number,
  now: number,
): LogSegment[] {
  const out: LogSegment[] = [];
  for (let i = 0; i + 1 < segs.length; i++) {
    const s = segs[i]!;
    if (segs[i + 1]!.baseOffset > highWatermark) break;
    if (lagMs > 0 && s.maxTimestamp > BigInt(now - lagMs)) break;
    out.push(s);
  }
  return out;
}

/** Consecutive segments whose sizes add up to at most segment.bytes and whose offsets fit a segment. */
function groupSegments(segs: readonly LogSegment[], segmentBytes: number): LogSegment[][] {
  const groups: LogSegment[][] = [];
  let current: LogSegment[] = [];
  let bytes = 0;
  for (const s of segs) {
    const first = current[0];
    const fits =
      first !== undefined && bytes + s.size <= segmentBytes && s.lastOffset - first.baseOffset <= BigInt(INT32_MAX);
    if (first !== undefined && !fits) {
      groups.push(current);
      current = [];
      bytes = 0;
    }
    current.push(s);
    bytes += s.size;
  }
  if (current.length > 0) groups.push(current);
  return groups;
}

/**
 * Fills `map` with the latest offset of each key in [firstDirty, end), stopping at a batch
 * boundary once it is full. Returns the offset it covered up to.
 */
async function buildOffsetMap(
  cleanable: readonly LogSegment[],
  firstDirty: bigint,
  end: bigint,
  map: OffsetMap,
  producerLast: Map<bigint, bigint>,
  cfg: LogConfig,
): Promise<bigint> {
  let covered = firstDirty;
  for (const seg of cleanable) {
    if (seg.nextOffset <= firstDirty) continue;
    if (!seg.acquire()) return covered;
    try {
      let n = 0;
      for await (const b of seg.batches(seg.lookupPosition(firstDirty), seg.size)) {
        const h = b.header;
        const last = lastOffsetOf(h);
        if (last < firstDirty) continue;
        if (h.baseOffset >= end) return covered;
        if (map.full) return covered;
        if (h.producerId >= 0n) producerLast.set(h.producerId, h.baseOffset);
        if (!isControlBatch(h.attributes)) {
          for (const r of parse(seg, b.bytes, h, cfg))
            if (r.key !== null && r.offset >= firstDirty) map.put(r.key, r.offset);
        }
        covered = last + 1n;
        if (++n % 64 === 0) await yieldToLoop();
      }
    } finally {
      seg.release();
    }
    covered = seg.nextOffset > covered ? seg.nextOffset : covered;
  }
  return covered < end ? covered : end;
}

class GroupGone extends Error {}

interface GroupResult {
  replacement: Replacement | null;
  txnEntries: AbortedTxnEntry[];
  removed: number;
  /** Earliest delete horizon of a tombstone kept (MAX_SAFE_INTEGER when none). */
  horizonMs: number;
}

function cleanedPath(dir: string, base: bigint): string {
  return join(dir, `${segmentFileName(base, ".log")}.cleaned`);
}

function swapPath(dir: string, base: bigint): string {
  return join(dir, `${segmentFileName(base, ".log")}.swap`);
}

/** Rewrites one group of segments into `<base>.log.cleaned`; no replacement when nothing changes. */
async function cleanGroup(
  host: CleanerHost,
  group: readonly LogSegment[],
  map: OffsetMap,
  producerLast: Map<bigint, bigint>,
  now: number,
  cfg: Required<LogConfig>,
): Promise<GroupResult> {
  const base = group[0]!.baseOffset;
  const path = cleanedPath(host.dir, base);
  const out = new ChunkWriter(await openOrThrow(host.disk, path));
  let removed = 0;
  let changed = group.length > 1;
  let horizonMs = Number.MAX_SAFE_INTEGER;
  const txnEntries: AbortedTxnEntry[] = [];
  try {
    for (const seg of group) {
      // Retention or truncation removed it meanwhile: this group is abandoned (nothing to do).
      if (!seg.acquire()) throw new GroupGone();
      try {
        txnEntries.push(...seg.txnIndex.list());
        let n = 0;
        for await (const b of seg.batches(0, seg.size)) {
          const r = cleanBatch(seg, b, map, producerLast, now, cfg);
          removed += r.removed;
          if (r.changed) changed = true;
          if (r.horizonMs !== null && r.horizonMs < horizonMs) horizonMs = r.horizonMs;
          if (r.bytes !== null) await out.write(r.bytes);
          if (++n % 64 === 0) await yieldToLoop();
        }
      } finally {
        seg.release();
      }
    }
    await out.finish();
  } catch (e) {
    await out.abandon();
    await unlinkIfExists(host.disk, path);
    if (e instanceof GroupGone) return { replacement: null, txnEntries, removed: 0, horizonMs };
    throw e instanceof StorageError ? e : ioError(`compaction of ${host.key} failed`, e);
  }
  if (!changed) {
    await unlinkIfExists(host.disk, path);
    return { replacement: null, txnEntries, removed: 0, horizonMs };
  }
  const segment = await LogSegment.open(host.disk, host.dir, base, host.segmentOptions(), path);
  segment.sealed = true;
  await segment.rebuildIndexes(false);
  segment.txnIndex.setEntries(txnEntries);
  const disk = host.disk;
  const dir = host.dir;
  return {
    txnEntries,
    removed,
    horizonMs,
    replacement: {
      segment,
      async install() {
        // From the moment the .swap file exists, a crash completes the swap at startup.
        await disk.rename(path, swapPath(dir, base));
        const renamed: LogSegment[] = [];
        try {
          for (const s of group) {
            await s.renameAway();
            renamed.push(s);
          }
          await disk.rename(swapPath(dir, base), LogSegment.pathOf(dir, base, ".log"));
        } catch (e) {
          // Put everything back: the old segments stay in service, the cleaned file is dropped.
          for (const s of renamed) await s.restoreNames().catch(() => {});
          await disk.rename(swapPath(dir, base), path).catch(() => {});
          throw ioError(`compaction swap of segment ${base} failed`, e);
        }
        for (const s of group) await s.markDeleted();
      },
    },
  };
}

/** After a swap, outside the mutex: the renames made durable, the new segment's index files and transaction index. */
async function finishSwap(disk: Disk, dir: string, seg: LogSegment, txnEntries: AbortedTxnEntry[]): Promise<void> {
  // Until this directory fsync a crash may bring back the old names; startup copes with both.
  await disk.fsyncDir(dir);
  await seg.persistIndexes();
  if (txnEntries.length > 0) await seg.txnIndex.persistAll();
}

async function openOrThrow(disk: Disk, path: string): Promise<DiskFile> {
  try {
    return await disk.open(path, "w+");
  } catch (e) {
    throw ioError(`cannot create ${path}`, e);
  }
}

interface BatchOutcome {
  /** Bytes to write (the original, a rebuilt batch, or an empty batch), or null to drop the batch. */
  bytes: Uint8Array | null;
  removed: number;
  changed: boolean;
  horizonMs: number | null;
}

function cleanBatch(
  seg: LogSegment,
  b: BatchPosition & { bytes: Buffer },
  map: OffsetMap,
  producerLast: Map<bigint, bigint>,
  now: number,
  cfg: Required<LogConfig>,
): BatchOutcome {
  const h = b.header;
  if (isControlBatch(h.attributes)) return { bytes: b.bytes, removed: 0, changed: false, horizonMs: null };
  const records = parse(seg, b.bytes, h, cfg);
  const hasHorizon = (h.attributes & DELETE_HORIZON_BIT) !== 0;
  const horizon = hasHorizon ? h.baseTimestamp : null;
  let keptTombstone = false;
  const kept = records.filter((r) => {
    if (r.key === null) return false;
    const latest = map.get(r.key);
    if (latest !== undefined && Number(r.offset) < latest) return false;
    if (r.value !== null) return true;
    if (horizon !== null && BigInt(now) >= horizon) return false;
    keptTombstone = true;
    return true;
  });
  const removed = records.length - kept.length;
  const newHorizon = keptTombstone && horizon === null ? BigInt(now) + BigInt(cfg["delete.retention.ms"]) : horizon;
  const horizonMs = keptTombstone && newHorizon !== null ? Number(newHorizon) : null;
  if (removed === 0 && (horizon !== null || !keptTombstone))
    return { bytes: b.bytes, removed: 0, changed: false, horizonMs };
  if (kept.length === 0) {
    // Kafka keeps a producer's last batch (emptied) so that its sequence numbers survive.
    const last = producerLast.get(h.producerId);
    const keepEmpty = h.producerId >= 0n && (last === undefined || last === h.baseOffset);
    return { bytes: keepEmpty ? emptyBatch(b.bytes, h) : null, removed, changed: true, horizonMs: null };
  }
  const codec = (h.attributes & 0x07) as CompressionCodec;
  const rebuilt = buildRecordBatch({
    records: kept.map((r) => ({
      key: r.key,
      value: r.value,
      headers: r.headers,
      timestamp: r.timestamp,
      offsetDelta: Number(r.offset - h.baseOffset),
    })),
    baseOffset: h.baseOffset,
    partitionLeaderEpoch: h.partitionLeaderEpoch,
    compression: codec,
    timestampType: timestampTypeOf(h.attributes),
    transactional: (h.attributes & TRANSACTIONAL_BIT) !== 0,
    producerId: h.producerId,
    producerEpoch: h.producerEpoch,
    baseSequence: h.baseSequence,
    baseTimestamp: newHorizon ?? h.baseTimestamp,
    lastOffsetDelta: h.lastOffsetDelta,
    extraAttributes: newHorizon !== null ? DELETE_HORIZON_BIT : 0,
  });
  return { bytes: rebuilt, removed, changed: true, horizonMs };
}

/** The header of `h` with no records (uncompressed, record count 0, new CRC). */
function emptyBatch(bytes: Buffer, h: RecordBatchHeader): Buffer {
  const out = Buffer.from(bytes.subarray(0, RECORD_BATCH_HEADER_BYTES));
  out.writeInt32BE(RECORD_BATCH_HEADER_BYTES - 12, 8);
  out.writeInt16BE(h.attributes & ~0x07, 21);
  out.writeInt32BE(0, 57);
  out.writeUInt32BE(computeBatchCrc(out, 0, RECORD_BATCH_HEADER_BYTES - 12), 17);
  return out;
}

/** Buffers small writes into ~1 MiB writes at increasing positions. */
class ChunkWriter {
  private readonly file: DiskFile;
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private position = 0;

  constructor(file: DiskFile) {
    this.file = file;
  }

  async write(bytes: Uint8Array): Promise<void> {
    this.pending.push(bytes);
    this.pendingBytes += bytes.byteLength;
    if (this.pendingBytes >= WRITE_CHUNK_BYTES) await this.drain();
  }

  private async drain(): Promise<void> {
    if (this.pendingBytes === 0) return;
    await writeFully(this.file, this.pending, this.position);
    this.position += this.pendingBytes;
    this.pending = [];
    this.pendingBytes = 0;
  }

  async finish(): Promise<void> {
    await this.drain();
    await this.file.fsync();
    await this.file.close();
  }

  async abandon(): Promise<void> {
    await this.file.close().catch(() => {});
  }
}

/**
 * Startup: completes a swap that a crash interrupted. A `<base>.log.swap` file is a whole, fsynced
 * cleaned segment; the segments it replaces (bases from `base` to its last offset) are removed,
 * their aborted-transaction entries merged into `<base>.txnindex`, and the swap file renamed to
 * `<base>.log`. Its index files are rebuilt when the segment is loaded.
 */
export async function completeInterruptedSwaps(
  disk: Disk,
  dir: string,
  names: readonly string[],
  opts: SegmentOptions,
): Promise<void> {
  for (const name of names.filter((n) => /^\d{20}\.log\.swap$/.test(n))) {
    const base = BigInt(name.slice(0, 20));
    const seg = await LogSegment.open(disk, dir, base, opts, join(dir, name));
    let last: bigint;
    try {
      seg.sealed = true;
      await seg.rebuildIndexes(false);
      last = seg.lastOffset;
    } finally {
      await seg.close();
    }
    const entries = new Map<bigint, AbortedTxnEntry>();
    for (const n of names) {
      const m = /^(\d{20})\.(log|index|timeindex|txnindex)(\.deleted)?$/.exec(n);
      if (!m) continue;
      const b = BigInt(m[1]!);
      if (b < base || b > last) continue;
      if (m[2] === "txnindex") for (const e of await readTxnEntries(disk, join(dir, n))) entries.set(e.lastOffset, e);
      await unlinkIfExists(disk, join(dir, n));
    }
    if (entries.size > 0) {
      const idx = new TxnIndex(disk, LogSegment.pathOf(dir, base, ".txnindex"));
      idx.setEntries([...entries.values()].sort((a, b) => (a.lastOffset < b.lastOffset ? -1 : 1)));
      await idx.persistAll();
    }
    try {
      await disk.rename(join(dir, name), LogSegment.pathOf(dir, base, ".log"));
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
    await disk.fsyncDir(dir);
  }
}

async function readTxnEntries(disk: Disk, path: string): Promise<AbortedTxnEntry[]> {
  const buf = await readWholeFile(disk, path);
  const out: AbortedTxnEntry[] = [];
  if (buf === null) return out;
  for (let p = 0; p + TXN_INDEX_ENTRY_BYTES <= buf.length; p += TXN_INDEX_ENTRY_BYTES) {
    if (buf.readInt16BE(p) !== 0) break;
    out.push({
      producerId: buf.readBigInt64BE(p + 2),
      firstOffset: buf.readBigInt64BE(p + 10),
      lastOffset: buf.readBigInt64BE(p + 18),
      lastStableOffset: buf.readBigInt64BE(p + 26),
    });
  }
  return out;
}
