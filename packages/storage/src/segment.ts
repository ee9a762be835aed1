// One log segment: the files of a partition log that start at `baseOffset`, named by it (20 digits):
//
//   <base>.log        record batches exactly as produced (baseOffset and partitionLeaderEpoch patched
//                     on append, LogAppendTime stamped when configured), back to back, nothing else.
//                     `position` always means a byte position in this file; `offset` a Kafka offset.
//   <base>.index      sparse offset index (offset-index.ts)
//   <base>.timeindex  time index (time-index.ts)
//   <base>.txnindex   aborted transactions whose ABORT marker is in this segment (txn-index.ts)
//
// The indexes are derived data, held in memory and written whole (when the segment is sealed, on
// flush and on clean shutdown); they are rebuilt from the .log when missing, torn or inconsistent.
// A sealed segment's indexes may be evicted from memory and are reloaded on demand.
//
// Concurrency: the owning PartitionLog serialises appends, truncation and sealing. Reads run
// concurrently: they only look at bytes below the `size` they saw when they started, and hold a
// reference (acquire/release) so that a deleted segment's file stays open until they finish.
// `generation` changes whenever bytes below `size` change (truncation), so that positions learnt
// earlier can be recognised as stale.

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  batchTotalBytes,
  computeBatchCrc,
  lastOffsetOf,
  RECORD_BATCH_HEADER_BYTES,
  type RecordBatchHeader,
  readBatchHeader,
} from "@sluice/protocol/records/batch-header.ts";
import { crc32c } from "@sluice/protocol/records/crc32c.ts";
import { bufferPool } from "./buffer-pool.ts";
import {
  type Disk,
  type DiskFile,
  isNotFound,
  readFully,
  readWholeFile,
  unlinkIfExists,
  writeFileDurable,
  writeFully,
  writeFullySync,
} from "./disk.ts";
import { ioError, StorageError } from "./errors.ts";
import { OFFSET_INDEX_ENTRY_BYTES, OffsetIndex } from "./offset-index.ts";
import { TIME_INDEX_ENTRY_BYTES, TimeIndex } from "./time-index.ts";
import { TxnIndex } from "./txn-index.ts";

/** Header scans read this much at a time. */
const SCAN_CHUNK_BYTES = 64 * 1024;
/** Recovery validates in chunks of this size (a larger batch is checked piecewise). */
const RECOVERY_CHUNK_BYTES = 1024 * 1024;
const INT32_MAX = 2 ** 31 - 1;
const INT32_MAX_BIG = BigInt(INT32_MAX);

export const SEGMENT_FILE_SUFFIXES = [".log", ".index", ".timeindex", ".txnindex"] as const;

export function segmentFileName(baseOffset: bigint, suffix: string): string {
  return `${baseOffset.toString().padStart(20, "0")}${suffix}`;
}

export interface SegmentOptions {
  readonly indexIntervalBytes: number;
  /** segment.index.bytes: bounds both indexes (and so the memory they take). */
  readonly indexBytesMax: number;
}

/** A batch found in a segment. */
export interface BatchLocation {
  readonly position: number;
  readonly header: RecordBatchHeader;
}

/** A batch about to be appended: its header (offsets assigned) and where it starts in the write. */
export interface AppendedBatch {
  readonly header: RecordBatchHeader;
  readonly offsetInWrite: number;
}

export interface SegmentReadRequest {
  readonly fetchOffset: bigint;
  readonly maxBytes: number;
  /** Exclusive: batches whose last offset is at or above it are not returned. */
  readonly maxOffset: bigint;
  readonly minOneMessage: boolean;
  /** A known batch boundary at or before the wanted batch (from a previous read), or null. */
  readonly startPosition: number | null;
  /** Size of the batch at startPosition when a previous read saw its header (0: unknown). */
  readonly startBatchBytes?: number;
}

export interface SegmentRead {
  /** Whole batches, possibly empty (the first batch is at/above maxOffset or does not fit maxBytes). */
  readonly records: Buffer;
  readonly firstOffset: bigint;
  /** Position right after the returned bytes, and the offset a sequential reader asks for next. */
  readonly endPosition: number;
  readonly nextOffset: bigint;
  /** Size of the batch at endPosition when its header was in the bytes read (0: unknown). */
  readonly nextBatchBytes: number;
}

export class LogSegment {
  readonly baseOffset: bigint;
  readonly dir: string;
  private readonly disk: Disk;
  private readonly opts: SegmentOptions;
  private file: DiskFile;
  /** Bytes of whole, valid batches; readers never look at or past it. */
  size = 0;
  /** Last offset + 1 (baseOffset when empty). */
  nextOffset: bigint;
  /** Largest batch maxTimestamp, and the last offset of the first batch that reached it. */
  maxTimestamp = -1n;
  offsetOfMaxTimestamp = -1n;
  /** maxTimestamp of the first batch: segment.ms counts from it (Kafka's rolling-based timestamp). */
  firstBatchTimestamp = -1n;
  createdMs: number;
  readonly txnIndex: TxnIndex;
  generation = 0;
  sealed = false;
  /** Data written since the last fsync of the .log. */
  unsynced = false;
  /** The index files on disk match memory (nothing to write before the segment counts as flushed). */
  indexesPersisted = false;
  private index: OffsetIndex | null = null;
  private timeIndex: TimeIndex | null = null;
  private indexLoad: Promise<void> | null = null;
  private bytesSinceIndexEntry = 0;
  private refs = 0;
  /** The files carry the `.deleted` suffix. */
  private renamed = false;
  /** markDeleted finished its renames: the last release unlinks. */
  private deleteReady = false;
  private deletion: { resolve: () => void; reject: (e: unknown) => void; promise: Promise<void> } | null = null;
  private closed = false;
  /** File bytes past `size` that a failed append left behind and a truncate could not remove. */
  private tailDirty = false;
  private indexWrites: Promise<void> = Promise.resolve();
  private indexWritesBlocked = false;
  /** Called when a sealed segment loads its indexes (for the LogManager's memory bound). */
  onIndexesLoaded: ((seg: LogSegment) => void) | null = null;

  private constructor(
    disk: Disk,
    dir: string,
    baseOffset: bigint,
    file: DiskFile,
    opts: SegmentOptions,
    createdMs: number,
  ) {
    this.disk = disk;
    this.dir = dir;
    this.baseOffset = baseOffset;
    this.file = file;
    this.opts = opts;
    this.nextOffset = baseOffset;
    this.createdMs = createdMs;
    this.txnIndex = new TxnIndex(disk, this.path(".txnindex"));
  }

  path(suffix: string): string {
    return join(this.dir, segmentFileName(this.baseOffset, suffix));
  }

  static pathOf(dir: string, baseOffset: bigint, suffix: string): string {
    return join(dir, segmentFileName(baseOffset, suffix));
  }

  private newIndexes(): void {
    this.index = new OffsetIndex(OffsetIndex.entriesFor(this.opts.indexBytesMax));
    this.timeIndex = new TimeIndex(TimeIndex.entriesFor(this.opts.indexBytesMax));
  }

  /** Creates an empty segment (the new active segment), replacing stale files of the same name. */
  static async create(
    disk: Disk,
    dir: string,
    baseOffset: bigint,
    opts: SegmentOptions,
    nowMs: number,
  ): Promise<LogSegment> {
    for (const suffix of [".index", ".timeindex", ".txnindex"])
      await unlinkIfExists(disk, LogSegment.pathOf(dir, baseOffset, suffix));
    let file: DiskFile;
    try {
      file = await disk.open(LogSegment.pathOf(dir, baseOffset, ".log"), "w+");
    } catch (e) {
      throw ioError(`cannot create segment ${baseOffset} in ${dir}`, e);
    }
    const seg = new LogSegment(disk, dir, baseOffset, file, opts, nowMs);
    seg.newIndexes();
    try {
      // The new file's directory entry must be durable before data in it is acknowledged as such.
      await disk.fsyncDir(dir);
    } catch (e) {
      await seg.close();
      throw ioError(`cannot create segment ${baseOffset} in ${dir}`, e);
    }
    return seg;
  }

  /**
   * Opens an existing segment's .log (or `logPath`: compaction output not yet renamed into place).
   * Follow with `recover`, `loadClean` or `rebuildIndexes` before use.
   */
  static async open(
    disk: Disk,
    dir: string,
    baseOffset: bigint,
    opts: SegmentOptions,
    logPath?: string,
  ): Promise<LogSegment> {
    let file: DiskFile;
    try {
      file = await disk.open(logPath ?? LogSegment.pathOf(dir, baseOffset, ".log"), "r+");
    } catch (e) {
      throw ioError(`cannot open segment ${baseOffset} in ${dir}`, e);
    }
    try {
      const st = await file.stat();
      const seg = new LogSegment(disk, dir, baseOffset, file, opts, st.mtimeMs);
      seg.size = st.size;
      await seg.txnIndex.load();
      return seg;
    } catch (e) {
      await file.close().catch(() => {});
      throw ioError(`cannot open segment ${baseOffset} in ${dir}`, e);
    }
  }

  get isEmpty(): boolean {
    return this.size === 0;
  }

  get lastOffset(): bigint {
    return this.nextOffset - 1n;
  }

  get indexesLoaded(): boolean {
    return this.index !== null;
  }

  get indexMemoryBytes(): number {
    return (this.index?.memoryBytes ?? 0) + (this.timeIndex?.memoryBytes ?? 0);
  }

  /** True when the indexes cannot take another entry (the segment must roll). */
  get indexFull(): boolean {
    return (this.index?.isFull ?? false) || (this.timeIndex?.isFull ?? false);
  }

  /** Whether `lastOffset` can be stored relative to this segment's base (int32). */
  canHold(lastOffset: bigint): boolean {
    return lastOffset - this.baseOffset <= INT32_MAX_BIG;
  }

  // ---- references and deletion ------------------------------------------------------------------

  /** Takes a reference for a read; false when the segment is being deleted or closed. */
  acquire(): boolean {
    if (this.deletion !== null || this.closed) return false;
    this.refs++;
    return true;
  }

  release(): void {
    assert.ok(this.refs > 0, "segment released more often than acquired");
    this.refs--;
    if (this.refs === 0 && this.deletion !== null && this.deleteReady) void this.finishDelete();
  }

  /**
   * Renames the segment's files to `<name>.deleted` (the open .log handle keeps working). Files
   * that do not exist are skipped. On failure, the renames done so far are undone and it throws.
   */
  async renameAway(): Promise<void> {
    if (this.renamed) return;
    // Index files must not be written under these names any more (a new segment may take them).
    this.indexWritesBlocked = true;
    await this.indexWrites;
    const done: string[] = [];
    try {
      for (const suffix of SEGMENT_FILE_SUFFIXES) {
        try {
          await this.disk.rename(this.path(suffix), `${this.path(suffix)}.deleted`);
          done.push(suffix);
        } catch (e) {
          if (!isNotFound(e)) throw e;
        }
      }
    } catch (e) {
      await this.restoreNames(done).catch(() => {});
      this.indexWritesBlocked = false;
      throw ioError(`cannot rename segment ${this.baseOffset} for deletion`, e);
    }
    this.renamed = true;
  }

  /** Undoes renameAway (a compaction swap that could not complete). */
  async restoreNames(suffixes: readonly string[] = SEGMENT_FILE_SUFFIXES): Promise<void> {
    for (const suffix of suffixes) {
      try {
        await this.disk.rename(`${this.path(suffix)}.deleted`, this.path(suffix));
      } catch (e) {
        if (!isNotFound(e)) throw e;
      }
    }
    this.renamed = false;
    this.indexWritesBlocked = false;
  }

  /**
   * Deletes the segment: its files are renamed to `.deleted` before this resolves (so a crash
   * cannot bring them back, and new files may take their names), and removed once the last reader
   * releases the segment. `unlinked` resolves when they are gone.
   */
  async markDeleted(): Promise<void> {
    if (this.deletion !== null) return;
    let resolve!: () => void;
    let reject!: (e: unknown) => void;
    const promise = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    promise.catch(() => {}); // observed through `unlinked`
    this.deletion = { resolve, reject, promise };
    // If the renames fail, the files are unlinked under their own names once readers are done.
    await this.renameAway().catch(() => {});
    this.deleteReady = true;
    if (this.refs === 0) void this.finishDelete();
  }

  get unlinked(): Promise<void> {
    return this.deletion?.promise ?? Promise.resolve();
  }

  get isDeleted(): boolean {
    return this.deletion !== null;
  }

  private finishing = false;
  private async finishDelete(): Promise<void> {
    if (this.finishing) return;
    this.finishing = true;
    try {
      await this.close();
      for (const suffix of SEGMENT_FILE_SUFFIXES)
        await unlinkIfExists(this.disk, this.renamed ? `${this.path(suffix)}.deleted` : this.path(suffix));
      this.deletion?.resolve();
    } catch (e) {
      this.deletion?.reject(ioError(`cannot delete segment ${this.baseOffset}`, e));
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.indexWrites;
    await this.file.close().catch(() => {});
  }

  // ---- append -----------------------------------------------------------------------------------

  /**
   * Writes `chunks` (whole batches with offsets assigned) at the end of the .log in one write and
   * indexes them. `check`, if given, runs while the write is in flight (the caller's CRC checks);
   * when it returns false the written bytes are cut off again and append resolves false. On an I/O
   * failure the file is cut back, the segment is unchanged, and a retriable StorageError is thrown.
   * Nothing becomes visible to readers before the write and the check both succeed.
   */
  async append(
    chunks: readonly Uint8Array[],
    batches: readonly AppendedBatch[],
    check?: () => boolean,
    syncWrite = false,
  ): Promise<boolean> {
    assert.ok(!this.sealed, "append to a sealed segment");
    assert.ok(this.index !== null, "the active segment keeps its indexes in memory");
    if (this.tailDirty) await this.cutTail();
    const start = this.size;
    let ok: boolean;
    try {
      if (syncWrite) {
        // A small append written on this thread (see PartitionLog.writeRun): the check comes first,
        // as nothing overlaps with it, so refused bytes never reach the file.
        ok = check ? check() : true;
        if (!ok) return false;
        if (!writeFullySync(this.file, chunks, start)) await writeFully(this.file, chunks, start);
      } else {
        const write = writeFully(this.file, chunks, start);
        ok = check ? check() : true;
        await write;
      }
    } catch (e) {
      this.tailDirty = true;
      await this.cutTail().catch(() => {});
      throw ioError(`append to segment ${this.baseOffset} failed`, e);
    }
    if (!ok) {
      this.tailDirty = true;
      await this.cutTail();
      return false;
    }
    this.unsynced = true;
    this.indexesPersisted = false;
    for (const b of batches) this.track(b.header, start + b.offsetInWrite);
    this.size = start + totalBytes(chunks);
    return true;
  }

  /** Removes bytes past `size` left by a failed write (retried before the next write). */
  private async cutTail(): Promise<void> {
    try {
      await this.file.truncate(this.size);
      this.tailDirty = false;
    } catch (e) {
      throw ioError(`cannot cut segment ${this.baseOffset} back to ${this.size} bytes`, e);
    }
  }

  /** Updates offsets, timestamps and indexes for a batch at `position` (Kafka's LogSegment.append). */
  private track(h: RecordBatchHeader, position: number): void {
    const last = lastOffsetOf(h);
    if (this.size === 0 && position === 0) this.firstBatchTimestamp = h.maxTimestamp;
    if (h.maxTimestamp > this.maxTimestamp) {
      this.maxTimestamp = h.maxTimestamp;
      this.offsetOfMaxTimestamp = last;
    }
    // A full index (possible only when recovering a segment written with a larger limit) just stops growing.
    if (
      this.bytesSinceIndexEntry > this.opts.indexIntervalBytes &&
      this.index &&
      this.timeIndex &&
      !this.index.isFull
    ) {
      this.index.append(Number(last - this.baseOffset), position);
      this.timeIndex.maybeAppend(this.maxTimestamp, Number(this.offsetOfMaxTimestamp - this.baseOffset));
      this.bytesSinceIndexEntry = 0;
    }
    this.bytesSinceIndexEntry += batchTotalBytes(h);
    this.nextOffset = last + 1n;
  }

  async fsync(): Promise<void> {
    try {
      await this.file.fsync();
    } catch (e) {
      throw ioError(`fsync of segment ${this.baseOffset} failed`, e);
    }
  }

  /** The segment stops being active: its time index gets a final entry holding its max timestamp. */
  seal(): void {
    if (this.sealed) return;
    this.sealed = true;
    if (this.timeIndex && this.maxTimestamp >= 0n) {
      this.timeIndex.maybeAppend(this.maxTimestamp, Number(this.offsetOfMaxTimestamp - this.baseOffset), true);
    }
    this.indexesPersisted = false;
  }

  /** Writes both index files from memory, durably (temp file, fsync, rename). Serialised per segment. */
  persistIndexes(): Promise<void> {
    const run = this.indexWrites.then(async () => {
      if (this.index === null || this.timeIndex === null || this.deletion !== null || this.indexWritesBlocked) return;
      const gen = this.generation;
      const idx = this.index.toBytes();
      const tix = this.timeIndex.toBytes();
      await writeFileDurable(this.disk, this.path(".index"), [idx]);
      await writeFileDurable(this.disk, this.path(".timeindex"), [tix]);
      if (gen === this.generation) this.indexesPersisted = true;
    });
    this.indexWrites = run.catch(() => {});
    return run.catch((e) => {
      throw ioError(`cannot write the indexes of segment ${this.baseOffset}`, e);
    });
  }

  /** Frees the in-memory indexes of a sealed segment whose files are current (reloaded on demand). */
  evictIndexes(): boolean {
    if (!this.sealed || !this.indexesPersisted || this.indexLoad !== null) return false;
    this.index = null;
    this.timeIndex = null;
    return true;
  }

  // ---- reading ----------------------------------------------------------------------------------

  /**
   * Like readAt, into a buffer lent by the buffer pool (buffer-pool.ts): the records handed to a
   * Fetch response are views of it, and the connection gives it back once they are written.
   */
  private readLent(position: number, length: number): Promise<Buffer> {
    return this.readInto(bufferPool.acquire(length), position, length);
  }

  readAt(position: number, length: number): Promise<Buffer> {
    return this.readInto(Buffer.allocUnsafe(length), position, length);
  }

  private corrupt(position: number, why: string, cause?: unknown): StorageError {
    return new StorageError(
      "CORRUPT_MESSAGE",
      `segment ${segmentFileName(this.baseOffset, ".log")} in ${this.dir} is corrupt at position ${position}: ${why}`,
      cause === undefined ? { retriable: false } : { cause, retriable: false },
    );
  }

  private header(buf: Uint8Array, p: number, position: number): RecordBatchHeader {
    try {
      return readBatchHeader(buf, p);
    } catch (e) {
      throw this.corrupt(position, (e as Error).message, e);
    }
  }

  /**
   * Walks batch headers from `position` (a batch boundary) up to `limit`, calling `visit` until it
   * returns false. Headers are read in chunks; large batches are skipped over without reading them.
   */
  async scanHeaders(position: number, limit: number, visit: (b: BatchLocation) => boolean): Promise<void> {
    let pos = position;
    while (pos < limit) {
      if (limit - pos < RECORD_BATCH_HEADER_BYTES) throw this.corrupt(pos, `${limit - pos} trailing bytes`);
      const chunk = await this.readAt(pos, Math.min(SCAN_CHUNK_BYTES, limit - pos));
      if (chunk.length < RECORD_BATCH_HEADER_BYTES) throw this.corrupt(pos, "file shorter than expected");
      let p = 0;
      while (p + RECORD_BATCH_HEADER_BYTES <= chunk.length) {
        const header = this.header(chunk, p, pos + p);
        const total = batchTotalBytes(header);
        if (pos + p + total > limit) throw this.corrupt(pos + p, `batch of ${total} bytes runs past ${limit}`);
        if (!visit({ position: pos + p, header })) return;
        p += total;
      }
      pos += p;
    }
  }

  /** The first batch whose last offset is ≥ `offset` (Kafka's translateOffset), or null. */
  async translateOffset(offset: bigint, from?: number): Promise<BatchLocation | null> {
    await this.ensureIndexes();
    const limit = this.size;
    let found: BatchLocation | null = null;
    await this.scanHeaders(from ?? this.lookupPosition(offset), limit, (b) => {
      if (lastOffsetOf(b.header) < offset) return true;
      found = b;
      return false;
    });
    return found;
  }

  /** A position at or before the batch holding `offset`, from the offset index. */
  lookupPosition(offset: bigint): number {
    if (this.index === null || offset <= this.baseOffset) return 0;
    const rel = offset - this.baseOffset;
    return this.index.lookup(rel > INT32_MAX_BIG ? INT32_MAX : Number(rel));
  }

  /**
   * Reads whole batches starting with the one holding `fetchOffset`, up to maxBytes (the first one
   * even if larger, when minOneMessage), stopping before a batch that reaches maxOffset. Each batch
   * returned is checked (structure and CRC): a corrupt first batch throws CORRUPT_MESSAGE; a corrupt
   * later one ends the result before it. Returns null when no batch here holds fetchOffset or later.
   */
  async read(req: SegmentReadRequest): Promise<SegmentRead | null> {
    await this.ensureIndexes();
    const limit = this.size;
    let pos = req.startPosition ?? this.lookupPosition(req.fetchOffset);
    let exact = req.startPosition !== null;
    // A window starting at an index entry needs room for the scan up to the wanted batch.
    const slack = this.opts.indexIntervalBytes + SCAN_CHUNK_BYTES;
    while (pos < limit) {
      // From a known boundary: room for the first batch when its size is known (one read, not a
      // second one sized for it), and for the header after the last batch (sizes the next read).
      const known = exact && req.minOneMessage ? (req.startBatchBytes ?? 0) : 0;
      const want = Math.min(
        limit - pos,
        Math.max(req.maxBytes, known, RECORD_BATCH_HEADER_BYTES) + (exact ? RECORD_BATCH_HEADER_BYTES : slack),
      );
      const buf = await this.readLent(pos, want);
      if (buf.length < Math.min(want, RECORD_BATCH_HEADER_BYTES)) throw this.corrupt(pos, "file shorter than expected");
      // Find the first batch whose last offset is ≥ fetchOffset.
      let p = 0;
      let first: RecordBatchHeader | null = null;
      while (p + RECORD_BATCH_HEADER_BYTES <= buf.length) {
        const h = this.header(buf, p, pos + p);
        const total = batchTotalBytes(h);
        if (pos + p + total > limit) throw this.corrupt(pos + p, `batch of ${total} bytes runs past ${limit}`);
        if (lastOffsetOf(h) >= req.fetchOffset) {
          first = h;
          break;
        }
        p += total;
      }
      if (first === null) {
        // Not in this window: continue the scan from the next header (which may lie past the window).
        if (p === 0) throw this.corrupt(pos, `${limit - pos} trailing bytes`);
        bufferPool.release(buf);
        pos += p;
        exact = false;
        continue;
      }
      const firstBytes = batchTotalBytes(first);
      const empty = {
        records: Buffer.alloc(0),
        firstOffset: first.baseOffset,
        endPosition: pos + p,
        nextOffset: req.fetchOffset,
        nextBatchBytes: firstBytes,
      };
      if (lastOffsetOf(first) >= req.maxOffset || (firstBytes > req.maxBytes && !req.minOneMessage)) {
        bufferPool.release(buf);
        return empty;
      }
      if (p + firstBytes > buf.length) {
        // The first batch does not fit in this window: read again from its start, sized for it.
        if (exact && p === 0 && want >= firstBytes) throw this.corrupt(pos, "short read");
        bufferPool.release(buf);
        return this.readExact(pos + p, req, Math.max(firstBytes, Math.min(req.maxBytes, limit - pos - p)), limit);
      }
      return this.collect(buf, pos, p, req);
    }
    return null;
  }

  private async readExact(
    position: number,
    req: SegmentReadRequest,
    bytes: number,
    limit: number,
  ): Promise<SegmentRead | null> {
    const buf = await this.readLent(position, Math.min(bytes, limit - position));
    return this.collect(buf, position, 0, req);
  }

  /** Takes whole batches from `buf` (read at `bufPosition`), starting at `start`, within the request's bounds. */
  private collect(buf: Buffer, bufPosition: number, start: number, req: SegmentReadRequest): SegmentRead {
    let end = start;
    let nextOffset = req.fetchOffset;
    let firstOffset = -1n;
    let expectedBase = -1n;
    while (end + RECORD_BATCH_HEADER_BYTES <= buf.length) {
      const h = this.header(buf, end, bufPosition + end);
      const total = batchTotalBytes(h);
      if (end + total > buf.length) {
        if (end === start) throw this.corrupt(bufPosition + end, "file shorter than expected");
        break;
      }
      if (lastOffsetOf(h) >= req.maxOffset) break;
      if (end > start && end - start + total > req.maxBytes) break;
      const problem =
        h.baseOffset < expectedBase || h.lastOffsetDelta < 0 || h.baseOffset < this.baseOffset
          ? `offsets ${h.baseOffset}..${lastOffsetOf(h)} out of order`
          : computeBatchCrc(buf, end, h.batchLength) !== h.crc
            ? `batch at offset ${h.baseOffset} has a bad CRC`
            : null;
      if (problem !== null) {
        if (end === start) throw this.corrupt(bufPosition + end, problem);
        break; // serve the good batches before it; the next read reports it
      }
      if (end === start) firstOffset = h.baseOffset;
      expectedBase = lastOffsetOf(h) + 1n;
      nextOffset = expectedBase;
      end += total;
    }
    if (end === start && start + RECORD_BATCH_HEADER_BYTES > buf.length)
      throw this.corrupt(bufPosition + start, "file shorter than expected");
    const nextBatchBytes = batchBytesAt(buf, end);
    // Nothing taken: the buffer goes back now, and no view of it is handed out (a view of a
    // buffer since lent to another read must never reach a writer that releases what it wrote).
    if (end === start) bufferPool.release(buf);
    return {
      records: end === start ? Buffer.alloc(0) : buf.subarray(start, end),
      firstOffset,
      endPosition: bufPosition + end,
      nextOffset,
      nextBatchBytes,
    };
  }

  // ---- loading and recovery -------------------------------------------------------------------------

  /**
   * Validates every batch (header, length, CRC, offsets increasing and above `minOffset`, fitting
   * the segment), cuts the .log at the first invalid byte and rebuilds both indexes in memory.
   * Returns the bytes cut.
   *
   * The file is read in chunks into two buffers taken in turn: once a chunk's headers are walked
   * (cheap), the read of the next chunk starts, and the chunk's CRCs (the expensive part) are
   * checked while it is in flight. Memory: two chunks, plus pieces of a batch larger than one.
   */
  async recover(minOffset: bigint): Promise<number> {
    const fileSize = (await this.file.stat()).size;
    this.resetState();
    this.newIndexes();
    /** End of the last valid batch. */
    let valid = 0;
    let expected = minOffset > this.baseOffset ? minOffset : this.baseOffset;
    const chunkBytes = Math.min(RECOVERY_CHUNK_BYTES, fileSize);
    const buffers = [Buffer.allocUnsafe(chunkBytes), Buffer.allocUnsafe(chunkBytes)] as const;
    let turn = 0;
    let pos = 0;
    let pending: Promise<Buffer> | null =
      RECORD_BATCH_HEADER_BYTES <= fileSize ? this.readInto(buffers[0], 0, chunkBytes) : null;
    try {
      while (pending !== null) {
        const chunk = await pending;
        pending = null;
        // 1. Walk the headers of the whole batches in this chunk; stop at the first invalid one.
        const found: { h: RecordBatchHeader; p: number }[] = [];
        let p = 0;
        let invalid = false;
        let large: RecordBatchHeader | null = null;
        let exp = expected;
        while (p + RECORD_BATCH_HEADER_BYTES <= chunk.length) {
          let h: RecordBatchHeader;
          try {
            h = readBatchHeader(chunk, p);
          } catch {
            invalid = true;
            break;
          }
          const total = batchTotalBytes(h);
          const last = lastOffsetOf(h);
          const end = pos + p + total;
          if (end > fileSize || end > INT32_MAX || h.baseOffset < exp || h.lastOffsetDelta < 0 || !this.canHold(last)) {
            invalid = true;
            break;
          }
          if (p + total > chunk.length) {
            if (p === 0) large = h; // larger than a chunk: checked piecewise below
            break; // else the next chunk starts with it
          }
          found.push({ h, p });
          exp = last + 1n;
          p += total;
        }
        // 2. Start reading what follows while this chunk's CRCs are checked.
        const nextPos = pos + (large !== null ? batchTotalBytes(large) : p);
        if (!invalid && nextPos > pos && nextPos + RECORD_BATCH_HEADER_BYTES <= fileSize) {
          turn ^= 1;
          pending = this.readInto(buffers[turn]!, nextPos, Math.min(chunkBytes, fileSize - nextPos));
          pending.catch(() => {}); // awaited below, or dropped when the scan stops here
        }
        // 3. CRCs in order: the first bad batch ends the valid prefix.
        let ok = true;
        for (const { h, p: at } of found) {
          if (computeBatchCrc(chunk, at, h.batchLength) !== h.crc) {
            ok = false;
            break;
          }
          this.size = pos + at; // track() reads size to spot the first batch
          this.track(h, pos + at);
          expected = lastOffsetOf(h) + 1n;
          valid = pos + at + batchTotalBytes(h);
        }
        if (ok && large !== null) {
          ok = await this.crcMatchesLarge(pos, large);
          if (ok) {
            this.size = pos;
            this.track(large, pos);
            expected = lastOffsetOf(large) + 1n;
            valid = nextPos;
          }
        }
        if (!ok || invalid) break;
        pos = nextPos;
      }
    } finally {
      // A read still in flight must not land in a buffer after this returns (nor be left unobserved).
      await pending?.catch(() => {});
    }
    this.size = valid;
    const cut = fileSize - valid;
    if (cut > 0) {
      try {
        await this.file.truncate(valid);
      } catch (e) {
        throw ioError(`cannot truncate segment ${this.baseOffset} during recovery`, e);
      }
    }
    this.generation++;
    this.indexesPersisted = false;
    return cut;
  }

  /** Reads up to `length` bytes at `position` into `buf` (fewer at the end of the file). */
  private async readInto(buf: Buffer, position: number, length: number): Promise<Buffer> {
    const n = await readFully(this.file, buf, length, position);
    return buf.subarray(0, n);
  }

  /** CRC of a batch larger than the recovery chunk, computed piecewise (bounded memory). */
  private async crcMatchesLarge(position: number, h: RecordBatchHeader): Promise<boolean> {
    const end = position + batchTotalBytes(h);
    let at = position + 21;
    let crc = 0;
    while (at < end) {
      const part = await this.readAt(at, Math.min(RECOVERY_CHUNK_BYTES, end - at));
      if (part.length === 0) return false;
      crc = crc32c(part, crc);
      at += part.length;
    }
    return crc === h.crc;
  }

  private resetState(): void {
    this.size = 0;
    this.nextOffset = this.baseOffset;
    this.maxTimestamp = -1n;
    this.offsetOfMaxTimestamp = -1n;
    this.firstBatchTimestamp = -1n;
    this.bytesSinceIndexEntry = 0;
  }

  /**
   * Opens a segment that needs no recovery (below the recovery point, or after a clean shutdown):
   * the last entries of its index files and a scan of the batches after the last offset-index entry
   * give its end offset and max timestamp. Missing or inconsistent index files (a last entry that
   * does not point at a batch ending at that offset, a torn file) mean a rebuild from the .log.
   * Returns false when the .log itself does not end with a whole batch (the caller recovers it).
   */
  async loadClean(active: boolean): Promise<boolean> {
    this.sealed = !active;
    if (this.size === 0) {
      this.resetState();
      this.newIndexes();
      return true;
    }
    const tail = await this.readIndexTails();
    const scanFrom = tail?.indexLast?.position ?? 0;
    let last: RecordBatchHeader | null = null;
    let firstAtScan: RecordBatchHeader | null = null;
    let tailMax: { ts: bigint; offset: bigint } | null = null;
    try {
      await this.scanHeaders(scanFrom, this.size, (b) => {
        firstAtScan ??= b.header;
        last = b.header;
        if (tailMax === null || b.header.maxTimestamp > tailMax.ts)
          tailMax = { ts: b.header.maxTimestamp, offset: lastOffsetOf(b.header) };
        return true;
      });
    } catch (e) {
      if (e instanceof StorageError && e.code === "CORRUPT_MESSAGE") return false;
      throw e;
    }
    const lastHeader = last as RecordBatchHeader | null;
    const atEntry = firstAtScan as RecordBatchHeader | null;
    if (lastHeader === null || atEntry === null) return false;
    const indexOk =
      tail !== null &&
      (tail.indexLast === null || lastOffsetOf(atEntry) === this.baseOffset + BigInt(tail.indexLast.relativeOffset));
    if (!indexOk) {
      await this.rebuildIndexes();
      if (active) await this.readFirstBatchTimestamp();
      return true;
    }
    this.nextOffset = lastOffsetOf(lastHeader) + 1n;
    if (tail!.timeLast && BigInt(tail!.timeLast.relativeOffset) > this.lastOffset - this.baseOffset) {
      await this.rebuildIndexes();
      if (active) await this.readFirstBatchTimestamp();
      return true;
    }
    const tMax = tailMax as { ts: bigint; offset: bigint } | null;
    const timeLast = tail!.timeLast;
    if (timeLast !== null && (tMax === null || timeLast.timestamp >= tMax.ts)) {
      this.maxTimestamp = timeLast.timestamp;
      this.offsetOfMaxTimestamp = this.baseOffset + BigInt(timeLast.relativeOffset);
    } else if (tMax !== null) {
      this.maxTimestamp = tMax.ts;
      this.offsetOfMaxTimestamp = tMax.offset;
    }
    if (active) {
      await this.ensureIndexes();
      this.bytesSinceIndexEntry = this.size - scanFrom;
      await this.readFirstBatchTimestamp();
    }
    return true;
  }

  private async readFirstBatchTimestamp(): Promise<void> {
    if (this.size < RECORD_BATCH_HEADER_BYTES) return;
    this.firstBatchTimestamp = this.header(await this.readAt(0, RECORD_BATCH_HEADER_BYTES), 0, 0).maxTimestamp;
  }

  /** The last entries of both index files (one small read each), or null when either is missing or torn. */
  private async readIndexTails(): Promise<{
    indexLast: { relativeOffset: number; position: number } | null;
    timeLast: { timestamp: bigint; relativeOffset: number } | null;
  } | null> {
    const idx = await this.readFileTail(this.path(".index"), OFFSET_INDEX_ENTRY_BYTES);
    const tix = await this.readFileTail(this.path(".timeindex"), TIME_INDEX_ENTRY_BYTES);
    if (idx === null || tix === null) return null;
    const indexLast = idx.length === 0 ? null : { relativeOffset: idx.readInt32BE(0), position: idx.readInt32BE(4) };
    const timeLast = tix.length === 0 ? null : { timestamp: tix.readBigInt64BE(0), relativeOffset: tix.readInt32BE(8) };
    if (indexLast && (indexLast.relativeOffset < 0 || indexLast.position <= 0 || indexLast.position >= this.size))
      return null;
    if (timeLast && (timeLast.relativeOffset < 0 || timeLast.timestamp < 0n)) return null;
    return { indexLast, timeLast };
  }

  /** The last `entryBytes` of a file ([] if empty), or null if missing or not a whole number of entries. */
  private async readFileTail(path: string, entryBytes: number): Promise<Buffer | null> {
    let f: DiskFile;
    try {
      f = await this.disk.open(path, "r");
    } catch (e) {
      if (isNotFound(e)) return null;
      throw e;
    }
    try {
      const { size } = await f.stat();
      if (size % entryBytes !== 0) return null;
      if (size === 0) return Buffer.alloc(0);
      const b = Buffer.allocUnsafe(entryBytes);
      return (await readFully(f, b, entryBytes, size - entryBytes)) === entryBytes ? b : null;
    } finally {
      await f.close();
    }
  }

  /** Loads the indexes of a segment opened by loadClean (sealed segments load them on first use). */
  ensureIndexes(): Promise<void> {
    if (this.index !== null) return Promise.resolve();
    this.indexLoad ??= this.loadIndexFiles().finally(() => {
      this.indexLoad = null;
    });
    return this.indexLoad;
  }

  private async loadIndexFiles(): Promise<void> {
    const entriesMax = OffsetIndex.entriesFor(this.opts.indexBytesMax);
    const idxBytes = await readWholeFile(this.disk, this.path(".index"));
    const tixBytes = await readWholeFile(this.disk, this.path(".timeindex"));
    const lastRel = Number(this.lastOffset - this.baseOffset);
    const index = idxBytes && OffsetIndex.fromBytes(idxBytes, entriesMax, this.size);
    const timeIndex = tixBytes && TimeIndex.fromBytes(tixBytes, TimeIndex.entriesFor(this.opts.indexBytesMax), lastRel);
    if (index && timeIndex && (index.lastEntry()?.relativeOffset ?? -1) <= lastRel) {
      this.index = index;
      this.timeIndex = timeIndex;
      this.indexesPersisted = true;
    } else {
      await this.rebuildIndexes();
    }
    if (this.sealed) this.onIndexesLoaded?.(this);
  }

  /** Rebuilds both indexes by walking the headers of the whole .log (no CRC checks), then writes them. */
  async rebuildIndexes(persist = true): Promise<void> {
    const size = this.size;
    this.resetState();
    this.newIndexes();
    await this.scanHeaders(0, size, (b) => {
      this.track(b.header, b.position);
      this.size = b.position + batchTotalBytes(b.header);
      return true;
    });
    this.size = size;
    if (this.sealed && this.maxTimestamp >= 0n)
      this.timeIndex!.maybeAppend(this.maxTimestamp, Number(this.offsetOfMaxTimestamp - this.baseOffset), true);
    this.indexesPersisted = false;
    if (persist) await this.persistIndexes();
  }

  /**
   * Checks every batch (structure, CRC, offsets increasing) with bounded reads; throws
   * CORRUPT_MESSAGE at the first bad one.
   */
  async verify(): Promise<void> {
    const limit = this.size;
    let expected = this.baseOffset;
    const bad: { position: number; why: string }[] = [];
    await this.scanHeaders(0, limit, (b) => {
      if (b.header.baseOffset < expected || b.header.lastOffsetDelta < 0) {
        bad.push({ position: b.position, why: `offsets ${b.header.baseOffset}.. after ${expected - 1n}` });
        return false;
      }
      expected = lastOffsetOf(b.header) + 1n;
      return true;
    });
    if (bad[0]) throw this.corrupt(bad[0].position, bad[0].why);
    let pos = 0;
    while (pos < limit) {
      const chunk = await this.readAt(pos, Math.min(RECOVERY_CHUNK_BYTES, limit - pos));
      let p = 0;
      while (p + RECORD_BATCH_HEADER_BYTES <= chunk.length) {
        const h = this.header(chunk, p, pos + p);
        const total = batchTotalBytes(h);
        if (p + total > chunk.length) {
          if (p > 0) break;
          if (!(await this.crcMatchesLarge(pos, h)))
            throw this.corrupt(pos, `batch at offset ${h.baseOffset} has a bad CRC`);
        } else if (computeBatchCrc(chunk, p, h.batchLength) !== h.crc) {
          throw this.corrupt(pos + p, `batch at offset ${h.baseOffset} has a bad CRC`);
        }
        p += total;
      }
      if (p === 0) break;
      pos += p;
    }
  }

  /**
   * The batches from `position` to `limit` with their bytes, read in chunks of about a megabyte
   * (a larger batch is read whole). Memory is bounded by the chunk size and the largest batch.
   */
  async *batches(position: number, limit: number): AsyncGenerator<BatchLocation & { readonly bytes: Buffer }> {
    let pos = position;
    while (pos < limit) {
      const chunk = await this.readAt(pos, Math.min(RECOVERY_CHUNK_BYTES, limit - pos));
      let p = 0;
      while (p + RECORD_BATCH_HEADER_BYTES <= chunk.length) {
        const header = this.header(chunk, p, pos + p);
        const total = batchTotalBytes(header);
        if (pos + p + total > limit) throw this.corrupt(pos + p, `batch of ${total} bytes runs past ${limit}`);
        if (p + total > chunk.length) {
          if (p > 0) break;
          const whole = await this.readAt(pos, total);
          if (whole.length < total) throw this.corrupt(pos, "file shorter than expected");
          yield { position: pos, header, bytes: whole };
          p = total;
          break;
        }
        yield { position: pos + p, header, bytes: chunk.subarray(p, p + total) };
        p += total;
      }
      if (p === 0) throw this.corrupt(pos, `${limit - pos} trailing bytes`);
      pos += p;
    }
  }

  // ---- truncation ---------------------------------------------------------------------------------

  /** Cuts the segment before the batch holding `offset` (that whole batch goes). Returns the bytes cut. */
  async truncateTo(offset: bigint): Promise<number> {
    await this.ensureIndexes();
    const at = offset <= this.baseOffset ? { position: 0 } : await this.translateOffset(offset);
    if (at === null) return 0;
    const cut = this.size - at.position;
    try {
      await this.file.truncate(at.position);
    } catch (e) {
      throw ioError(`cannot truncate segment ${this.baseOffset}`, e);
    }
    this.tailDirty = false;
    this.generation++;
    this.indexesPersisted = false;
    this.size = at.position;
    await this.txnIndex.truncateTo(offset);
    this.index!.truncateToPosition(at.position);
    const cutRel = offset - this.baseOffset;
    this.timeIndex!.truncateToRelativeOffset(cutRel > INT32_MAX_BIG ? INT32_MAX : Number(cutRel));
    await this.recomputeTail();
    return cut;
  }

  /** After a cut: end offset from the batches after the last index entry, max timestamp as Kafka's readLargestTimestamp. */
  private async recomputeTail(): Promise<void> {
    this.nextOffset = this.baseOffset;
    this.maxTimestamp = -1n;
    this.offsetOfMaxTimestamp = -1n;
    this.bytesSinceIndexEntry = 0;
    if (this.size === 0) {
      this.firstBatchTimestamp = -1n;
      return;
    }
    const timeLast = this.timeIndex!.lastEntry();
    if (timeLast) {
      this.maxTimestamp = timeLast.timestamp;
      this.offsetOfMaxTimestamp = this.baseOffset + BigInt(timeLast.relativeOffset);
    }
    const fromTime = timeLast ? this.lookupPosition(this.offsetOfMaxTimestamp) : 0;
    const fromIndex = this.index!.lastEntry()?.position ?? 0;
    const from = Math.min(fromTime, fromIndex);
    await this.scanHeaders(from, this.size, (b) => {
      const last = lastOffsetOf(b.header);
      if (b.header.maxTimestamp > this.maxTimestamp) {
        this.maxTimestamp = b.header.maxTimestamp;
        this.offsetOfMaxTimestamp = last;
      }
      this.nextOffset = last + 1n;
      if (b.position >= fromIndex) this.bytesSinceIndexEntry += batchTotalBytes(b.header);
      return true;
    });
  }

  // ---- timestamps ---------------------------------------------------------------------------------

  /**
   * The first batch whose maxTimestamp is ≥ `timestamp` and whose last offset is ≥ `minOffset`
   * (Kafka's findOffsetByTimestamp, at batch level), or null.
   */
  async findBatchByTimestamp(timestamp: bigint, minOffset: bigint): Promise<BatchLocation | null> {
    await this.ensureIndexes();
    // The index may have been evicted again since ensureIndexes (another segment loaded): then scan.
    const rel = this.timeIndex?.lookup(timestamp) ?? -1;
    const fromOffset = rel < 0 ? this.baseOffset : this.baseOffset + BigInt(rel);
    const start = fromOffset > minOffset ? fromOffset : minOffset;
    let found: BatchLocation | null = null;
    await this.scanHeaders(this.lookupPosition(start), this.size, (b) => {
      if (b.header.maxTimestamp >= timestamp && lastOffsetOf(b.header) >= minOffset) {
        found = b;
        return false;
      }
      return true;
    });
    return found;
  }

  /** The batch whose last offset is `offsetOfMaxTimestamp` (the batch holding the segment's max timestamp). */
  async batchOfMaxTimestamp(): Promise<BatchLocation | null> {
    if (this.offsetOfMaxTimestamp < 0n) return null;
    return this.translateOffset(this.offsetOfMaxTimestamp);
  }

  // ---- renaming (compaction) --------------------------------------------------------------------------

  /** Reopens the .log after its file was replaced by a rename (compaction's swap). */
  async reopenLog(): Promise<void> {
    const old = this.file;
    this.file = await this.disk.open(this.path(".log"), "r+");
    await old.close().catch(() => {});
  }
}

/** Total size of the batch whose header starts at `p` in `buf`, or 0 when the header is not all there or invalid. */
function batchBytesAt(buf: Uint8Array, p: number): number {
  if (p + RECORD_BATCH_HEADER_BYTES > buf.length) return 0;
  try {
    return batchTotalBytes(readBatchHeader(buf, p));
  } catch {
    return 0;
  }
}

function totalBytes(chunks: readonly Uint8Array[]): number {
  let n = 0;
  for (const c of chunks) n += c.byteLength;
  return n;
}
