// One log segment: three files named by the segment's base offset (20 digits).
//
//   <base>.log        record batches exactly as produced (baseOffset and partitionLeaderEpoch
//                     patched on append), back to back. `position` = byte position in this file.
//   <base>.index      sparse offset index: entries of (relative offset int32, position int32),
//                     big-endian, one per `index.interval.bytes` of log written, ascending. An entry
//                     points at the start of a batch whose base offset is base + relative offset.
//   <base>.timeindex  time index: entries of (timestamp int64, relative offset int32), one whenever
//                     an offset-index entry is added and the segment's max timestamp grew; the
//                     offset is that of the batch holding the max timestamp so far.
//
// The index files are derived data: they are rebuilt from the .log whenever they are missing,
// torn or inconsistent (and always for segments recovered after an unclean shutdown).
//
// Concurrency: the owning PartitionLog serialises appends, truncation and close; reads may run
// concurrently with an append because they only touch bytes below the size seen at their start.

import { join } from "node:path";
import {
  batchTotalBytes,
  computeBatchCrc,
  LOG_OVERHEAD,
  lastOffsetOf,
  RECORD_BATCH_HEADER_BYTES,
  type RecordBatchHeader,
  readBatchHeader,
} from "@sluice/protocol/records/batch-header.ts";
import type { Disk, DiskFile } from "./disk.ts";
import { StorageError } from "./errors.ts";
import { TxnIndex } from "./txn-index.ts";

const INDEX_ENTRY_BYTES = 8;
const TIME_INDEX_ENTRY_BYTES = 12;
const SCAN_CHUNK_BYTES = 64 * 1024;

export function segmentFileName(baseOffset: bigint, suffix: string): string {
  return `${baseOffset.toString().padStart(20, "0")}${suffix}`;
}

export interface BatchLocation {
  readonly position: number;
  readonly header: RecordBatchHeader;
}

export class LogSegment {
  readonly baseOffset: bigint;
  readonly dir: string;
  private readonly disk: Disk;
  private log: DiskFile;
  private index: DiskFile;
  private timeIndex: DiskFile;
  /** Aborted transactions whose ABORT marker is in this segment (txn-index.ts). */
  txnIndex: TxnIndex | null = null;
  private readonly indexIntervalBytes: number;
  private readonly indexEntriesMax: number;
  /** Bytes of whole batches in the .log file. */
  size = 0;
  /** Offset of the last record in the segment; baseOffset - 1 when empty. */
  lastOffset: bigint;
  maxTimestamp = -1n;
  offsetOfMaxTimestamp = -1n;
  readonly createdMs: number;
  private bytesSinceIndexEntry = 0;
  private indexRel: number[] = [];
  private indexPos: number[] = [];
  private timeTs: bigint[] = [];
  private timeRel: number[] = [];

  private constructor(
    disk: Disk,
    dir: string,
    baseOffset: bigint,
    files: [DiskFile, DiskFile, DiskFile],
    indexIntervalBytes: number,
    indexBytesMax: number,
    createdMs: number,
  ) {
    this.disk = disk;
    this.dir = dir;
    this.baseOffset = baseOffset;
    [this.log, this.index, this.timeIndex] = files;
    this.indexIntervalBytes = indexIntervalBytes;
    this.indexEntriesMax = Math.max(1, Math.floor(indexBytesMax / INDEX_ENTRY_BYTES));
    this.lastOffset = baseOffset - 1n;
    this.createdMs = createdMs;
  }

  static path(dir: string, baseOffset: bigint, suffix: string): string {
    return join(dir, segmentFileName(baseOffset, suffix));
  }

  /** Opens (creating if needed) a segment. Call `recover` or `loadIndexes` before using it. */
  static async open(
    disk: Disk,
    dir: string,
    baseOffset: bigint,
    indexIntervalBytes: number,
    indexBytesMax: number,
    nowMs: number,
  ): Promise<LogSegment> {
    const files: DiskFile[] = [];
    try {
      for (const suffix of [".log", ".index", ".timeindex"]) {
        const path = LogSegment.path(dir, baseOffset, suffix);
        files.push(await disk.open(path, (await disk.exists(path)) ? "r+" : "w+"));
      }
    } catch (e) {
      await Promise.all(files.map((f) => f.close().catch(() => {})));
      throw new StorageError("KAFKA_STORAGE_ERROR", `cannot open segment ${baseOffset} in ${dir}`, { cause: e });
    }
    const seg = new LogSegment(
      disk,
      dir,
      baseOffset,
      files as [DiskFile, DiskFile, DiskFile],
      indexIntervalBytes,
      indexBytesMax,
      nowMs,
    );
    seg.size = await seg.log.size();
    seg.txnIndex = await TxnIndex.open(disk, LogSegment.path(dir, baseOffset, ".txnindex"));
    return seg;
  }

  get indexFull(): boolean {
    return this.indexRel.length >= this.indexEntriesMax;
  }

  get isEmpty(): boolean {
    return this.size === 0;
  }

  get nextOffset(): bigint {
    return this.lastOffset + 1n;
  }

  // ---- append -----------------------------------------------------------------------------------

  /**
   * Writes `buffers` (whole batches, already stamped) at the end of the log in one write, then the
   * index entries they call for. On failure the log file is cut back to its previous size.
   */
  async append(buffers: readonly Uint8Array[], batches: readonly BatchLocation[]): Promise<void> {
    const start = this.size;
    let total = 0;
    for (const b of buffers) total += b.byteLength;
    try {
      let written = await this.log.writev(buffers, start);
      // A short write: finish it (the kernel may write less than asked, e.g. on signals).
      while (written < total) {
        const rest = flattenFrom(buffers, written);
        const n = await this.log.writev([rest], start + written);
        if (n <= 0) throw new Error("write made no progress");
        written += n;
      }
    } catch (e) {
      await this.log.truncate(start).catch(() => {});
      throw new StorageError(
        "KAFKA_STORAGE_ERROR",
        `append to segment ${this.baseOffset} failed: ${(e as Error).message}`,
        {
          cause: e,
        },
      );
    }
    this.size = start + total;
    const indexBufs: Uint8Array[] = [];
    const timeBufs: Uint8Array[] = [];
    for (const b of batches) this.track(b.header, start + b.position, indexBufs, timeBufs);
    await this.writeIndexEntries(indexBufs, timeBufs);
  }

  /** Updates in-memory offsets, timestamps and index entries for a batch at `position`. */
  private track(
    h: RecordBatchHeader,
    position: number,
    indexBufs: Uint8Array[] | null,
    timeBufs: Uint8Array[] | null,
  ): void {
    const last = lastOffsetOf(h);
    if (h.maxTimestamp > this.maxTimestamp) {
      this.maxTimestamp = h.maxTimestamp;
      this.offsetOfMaxTimestamp = last;
    }
    this.lastOffset = last;
    if (this.bytesSinceIndexEntry >= this.indexIntervalBytes || this.indexRel.length === 0) {
      const rel = Number(h.baseOffset - this.baseOffset);
      this.indexRel.push(rel);
      this.indexPos.push(position);
      if (indexBufs) {
        const e = Buffer.allocUnsafe(INDEX_ENTRY_BYTES);
        e.writeInt32BE(rel, 0);
        e.writeInt32BE(position, 4);
        indexBufs.push(e);
      }
      const lastTs = this.timeTs.at(-1);
      if (lastTs === undefined || this.maxTimestamp > lastTs) {
        const relTs = Number(this.offsetOfMaxTimestamp - this.baseOffset);
        this.timeTs.push(this.maxTimestamp);
        this.timeRel.push(relTs);
        if (timeBufs) {
          const t = Buffer.allocUnsafe(TIME_INDEX_ENTRY_BYTES);
          t.writeBigInt64BE(this.maxTimestamp, 0);
          t.writeInt32BE(relTs, 8);
          timeBufs.push(t);
        }
      }
      this.bytesSinceIndexEntry = 0;
    }
    this.bytesSinceIndexEntry += batchTotalBytes(h);
  }

  private async writeIndexEntries(indexBufs: Uint8Array[], timeBufs: Uint8Array[]): Promise<void> {
    // Index files are derived: a failure here is repaired by rebuilding on the next open.
    if (indexBufs.length > 0) {
      await this.index.writev(indexBufs, (this.indexRel.length - indexBufs.length) * INDEX_ENTRY_BYTES).catch(() => {});
    }
    if (timeBufs.length > 0) {
      await this.timeIndex
        .writev(timeBufs, (this.timeTs.length - timeBufs.length) * TIME_INDEX_ENTRY_BYTES)
        .catch(() => {});
    }
  }

  async sync(): Promise<void> {
    try {
      await this.log.datasync();
    } catch (e) {
      throw new StorageError("KAFKA_STORAGE_ERROR", `fsync of segment ${this.baseOffset} failed`, { cause: e });
    }
  }

  // ---- reading ----------------------------------------------------------------------------------

  async readAt(position: number, length: number): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const n = await this.log.read(buf, done, length - done, position + done);
      if (n === 0) break;
      done += n;
    }
    return done === length ? buf : buf.subarray(0, done);
  }

  /** The largest index entry at or below `offset`: where a scan for it may start. */
  private floorPosition(offset: bigint): number {
    const rel = Number(offset - this.baseOffset);
    let lo = 0;
    let hi = this.indexRel.length - 1;
    let found = 0;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.indexRel[mid]! <= rel) {
        found = this.indexPos[mid]!;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  }

  /**
   * Walks batch headers from `position` (a batch boundary) up to `limit`, calling `visit` until it
   * returns false. Headers are read in chunks, not one read per batch.
   */
  async scan(position: number, limit: number, visit: (b: BatchLocation) => boolean): Promise<void> {
    let pos = position;
    while (pos + LOG_OVERHEAD <= limit) {
      const chunk = await this.readAt(pos, Math.min(SCAN_CHUNK_BYTES, limit - pos));
      let p = 0;
      while (p + RECORD_BATCH_HEADER_BYTES <= chunk.length) {
        const header = readBatchHeader(chunk, p);
        if (!visit({ position: pos + p, header })) return;
        p += batchTotalBytes(header);
      }
      if (p === 0) {
        if (chunk.length < RECORD_BATCH_HEADER_BYTES) return;
        throw new StorageError("CORRUPT_MESSAGE", `unreadable batch header at ${pos} in segment ${this.baseOffset}`);
      }
      pos += p;
    }
  }

  /** The first batch whose last offset is ≥ `offset`, or null. */
  async findBatch(offset: bigint, limit = this.size): Promise<BatchLocation | null> {
    let found: BatchLocation | null = null;
    await this.scan(this.floorPosition(offset), limit, (b) => {
      if (lastOffsetOf(b.header) >= offset) {
        found = b;
        return false;
      }
      return true;
    });
    return found;
  }

  /** Position of the first byte after batches whose base offset is below `offset`. */
  async positionOf(offset: bigint, limit = this.size): Promise<number> {
    const b = await this.findBatch(offset, limit);
    if (b === null) return limit;
    return b.header.baseOffset >= offset ? b.position : b.position + batchTotalBytes(b.header);
  }

  /** First index position for a timestamp search: the entry before the first time-index entry ≥ ts. */
  timeSearchStart(timestamp: bigint): number {
    let rel = 0;
    for (let i = 0; i < this.timeTs.length; i++) {
      if (this.timeTs[i]! >= timestamp) break;
      rel = this.timeRel[i]!;
    }
    return this.floorPosition(this.baseOffset + BigInt(rel));
  }

  // ---- recovery and indexes ---------------------------------------------------------------------

  /**
   * Validates every batch (header, length, CRC, increasing offsets), truncates the log at the
   * first invalid byte and rebuilds both indexes. Returns the bytes truncated.
   */
  async recover(previousLastOffset: bigint): Promise<number> {
    const fileSize = await this.log.size();
    this.resetIndexes();
    let pos = 0;
    let prevLast = previousLastOffset;
    let valid = 0;
    outer: while (pos + RECORD_BATCH_HEADER_BYTES <= fileSize) {
      const chunkLen = Math.min(Math.max(SCAN_CHUNK_BYTES * 16, 0), fileSize - pos);
      const chunk = await this.readAt(pos, chunkLen);
      let p = 0;
      while (p + RECORD_BATCH_HEADER_BYTES <= chunk.length) {
        let h: RecordBatchHeader;
        try {
          h = readBatchHeader(chunk, p);
        } catch {
          break outer;
        }
        const total = batchTotalBytes(h);
        if (pos + p + total > fileSize) break outer;
        if (p + total > chunk.length) {
          if (p === 0) {
            // One batch larger than the chunk: read it whole.
            const whole = await this.readAt(pos, total);
            if (!this.validBatch(whole, 0, h, prevLast)) break outer;
            this.track(h, pos, null, null);
            prevLast = lastOffsetOf(h);
            pos += total;
            valid = pos;
            continue outer;
          }
          break;
        }
        if (!this.validBatch(chunk, p, h, prevLast)) break outer;
        this.track(h, pos + p, null, null);
        prevLast = lastOffsetOf(h);
        p += total;
        valid = pos + p;
      }
      if (p === 0) break;
      pos += p;
    }
    const truncated = fileSize - valid;
    if (truncated > 0) await this.log.truncate(valid);
    this.size = valid;
    await this.rewriteIndexes();
    return truncated;
  }

  private validBatch(buf: Buffer, p: number, h: RecordBatchHeader, prevLast: bigint): boolean {
    if (h.baseOffset <= prevLast && prevLast >= this.baseOffset) return false;
    if (h.baseOffset < this.baseOffset || h.lastOffsetDelta < 0) return false;
    return computeBatchCrc(buf, p, h.batchLength) === h.crc;
  }

  private resetIndexes(): void {
    this.indexRel = [];
    this.indexPos = [];
    this.timeTs = [];
    this.timeRel = [];
    this.bytesSinceIndexEntry = 0;
    this.lastOffset = this.baseOffset - 1n;
    this.maxTimestamp = -1n;
    this.offsetOfMaxTimestamp = -1n;
  }

  private async rewriteIndexes(): Promise<void> {
    const idx = Buffer.allocUnsafe(this.indexRel.length * INDEX_ENTRY_BYTES);
    this.indexRel.forEach((rel, i) => {
      idx.writeInt32BE(rel, i * INDEX_ENTRY_BYTES);
      idx.writeInt32BE(this.indexPos[i]!, i * INDEX_ENTRY_BYTES + 4);
    });
    const tix = Buffer.allocUnsafe(this.timeTs.length * TIME_INDEX_ENTRY_BYTES);
    this.timeTs.forEach((ts, i) => {
      tix.writeBigInt64BE(ts, i * TIME_INDEX_ENTRY_BYTES);
      tix.writeInt32BE(this.timeRel[i]!, i * TIME_INDEX_ENTRY_BYTES + 8);
    });
    await this.index.truncate(0);
    if (idx.length) await this.index.writev([idx], 0);
    await this.timeIndex.truncate(0);
    if (tix.length) await this.timeIndex.writev([tix], 0);
  }

  /**
   * Loads the index files of a cleanly closed segment. If they are missing or inconsistent with
   * the log (torn, unordered, pointing past the end) the segment is rescanned instead.
   */
  async loadIndexes(previousLastOffset: bigint): Promise<void> {
    const idxSize = await this.index.size();
    const tixSize = await this.timeIndex.size();
    const ok =
      this.size === 0 || (idxSize > 0 && idxSize % INDEX_ENTRY_BYTES === 0 && tixSize % TIME_INDEX_ENTRY_BYTES === 0);
    if (ok && this.size > 0) {
      const idx = await this.readFileHandle(this.index, idxSize);
      const rel: number[] = [];
      const pos: number[] = [];
      let consistent = true;
      for (let i = 0; i < idxSize; i += INDEX_ENTRY_BYTES) {
        const r = idx.readInt32BE(i);
        const p = idx.readInt32BE(i + 4);
        if ((rel.length && (r <= rel.at(-1)! || p <= pos.at(-1)!)) || p >= this.size || r < 0) consistent = false;
        rel.push(r);
        pos.push(p);
      }
      if (consistent && pos[0] === 0) {
        this.indexRel = rel;
        this.indexPos = pos;
        const tix = await this.readFileHandle(this.timeIndex, tixSize);
        for (let i = 0; i < tixSize; i += TIME_INDEX_ENTRY_BYTES) {
          this.timeTs.push(tix.readBigInt64BE(i));
          this.timeRel.push(tix.readInt32BE(i + 8));
        }
        // The last batch gives the segment's last offset; the max timestamp comes from the time index.
        const lastPos = pos.at(-1)!;
        let last: RecordBatchHeader | null = null;
        let lastStart = lastPos;
        await this.scan(lastPos, this.size, (b) => {
          last = b.header;
          lastStart = b.position;
          return true;
        });
        if (last !== null && lastStart + batchTotalBytes(last) === this.size) {
          this.lastOffset = lastOffsetOf(last);
          const tsLast = this.timeTs.at(-1);
          if (tsLast !== undefined) {
            this.maxTimestamp = tsLast;
            this.offsetOfMaxTimestamp = this.baseOffset + BigInt(this.timeRel.at(-1)!);
          }
          this.bytesSinceIndexEntry = this.size - lastPos;
          return;
        }
      }
    }
    if (this.size === 0) {
      this.resetIndexes();
      return;
    }
    await this.recover(previousLastOffset);
  }

  private async readFileHandle(f: DiskFile, size: number): Promise<Buffer> {
    const b = Buffer.allocUnsafe(size);
    let done = 0;
    while (done < size) {
      const n = await f.read(b, done, size - done, done);
      if (n === 0) break;
      done += n;
    }
    return b.subarray(0, done);
  }

  /** Cuts the segment so that it ends before the batch containing `offset`. */
  async truncateTo(offset: bigint): Promise<void> {
    await this.txnIndex?.truncateTo(offset);
    const position = await this.truncationPosition(offset);
    await this.log.truncate(position);
    this.size = position;
    await this.recover(this.baseOffset - 1n);
  }

  private async truncationPosition(offset: bigint): Promise<number> {
    const b = await this.findBatch(offset);
    return b === null ? this.size : b.position;
  }

  async close(): Promise<void> {
    const files = [this.log.close(), this.index.close(), this.timeIndex.close()];
    if (this.txnIndex) files.push(this.txnIndex.close());
    await Promise.all(files.map((p) => p.catch(() => {})));
  }

  async delete(): Promise<void> {
    await this.close();
    for (const suffix of [".log", ".index", ".timeindex", ".txnindex"]) {
      await this.disk.unlink(LogSegment.path(this.dir, this.baseOffset, suffix)).catch(() => {});
    }
  }

  /** Replaces this segment's log with `cleaned` (a file in the same directory), then rebuilds indexes. */
  async replaceWith(cleanedPath: string): Promise<void> {
    await this.close();
    await this.disk.rename(cleanedPath, LogSegment.path(this.dir, this.baseOffset, ".log"));
    this.log = await this.disk.open(LogSegment.path(this.dir, this.baseOffset, ".log"), "r+");
    this.index = await this.disk.open(LogSegment.path(this.dir, this.baseOffset, ".index"), "r+");
    this.timeIndex = await this.disk.open(LogSegment.path(this.dir, this.baseOffset, ".timeindex"), "r+");
    this.txnIndex = await TxnIndex.open(this.disk, LogSegment.path(this.dir, this.baseOffset, ".txnindex"));
    this.size = await this.log.size();
    await this.recover(this.baseOffset - 1n);
  }
}

function flattenFrom(buffers: readonly Uint8Array[], skip: number): Buffer {
  const all = Buffer.concat(buffers as Uint8Array[]);
  return all.subarray(skip);
}
