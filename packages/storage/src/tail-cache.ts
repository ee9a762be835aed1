// The most recently appended bytes of one log, kept in memory so that consumers tailing the log
// are served without a disk read (and without re-checking CRCs: the bytes were validated on
// append). Chunks are the byte ranges of successful appends, contiguous, ending at the log end.
// Bounded per log and by a budget shared by all logs; the oldest chunks go first. Truncation
// clears the cache (it is only ever a copy of what is on disk).

import {
  batchTotalBytes,
  lastOffsetOf,
  RECORD_BATCH_HEADER_BYTES,
  readBatchHeader,
} from "@sluice/protocol/records/batch-header.ts";
import { bufferPool, detach } from "./buffer-pool.ts";
import type { MemoryBudget } from "./memory.ts";

/** Node's Buffer pool slab (Buffer.poolSize is 64 KiB in Node 24; 8 KiB before). */
const POOL_SLAB_BYTES_MAX = 64 * 1024;

interface Chunk {
  readonly firstOffset: bigint;
  readonly nextOffset: bigint;
  readonly bytes: Uint8Array;
  /** Bytes reserved for it (a view into a shared buffer keeps that whole buffer alive). */
  readonly cost: number;
  /** A view of a pooled buffer (buffer-pool.ts) the cache holds a reference to. */
  readonly lent: boolean;
}

export interface CachedRead {
  readonly records: Buffer;
  readonly firstOffset: bigint;
  readonly nextOffset: bigint;
}

/** Like CachedRead, as the cache's own views of its chunks (no merging copy; empty list when none). */
export interface CachedChunks {
  readonly chunks: readonly Uint8Array[];
  readonly byteLength: number;
  readonly firstOffset: bigint;
  readonly nextOffset: bigint;
}

export class TailCache {
  /** chunks[head..] are live, oldest first (dropping advances head: no shift per drop). */
  private chunks: Chunk[] = [];
  private head = 0;
  private bytes = 0;
  private readonly maxBytes: number;
  private readonly budget: MemoryBudget | null;

  constructor(maxBytes: number, budget: MemoryBudget | null) {
    this.maxBytes = maxBytes;
    this.budget = budget;
  }

  /** Offset of the first cached record, or null when empty. */
  get firstOffset(): bigint | null {
    return this.chunks[this.head]?.firstOffset ?? null;
  }

  private get count(): number {
    return this.chunks.length - this.head;
  }

  /**
   * Adds the bytes of an append (whole batches covering [firstOffset, nextOffset)). The caller
   * hands over `bytes` and must not modify them afterwards.
   */
  add(bytes: Uint8Array, firstOffset: bigint, nextOffset: bigint): void {
    const last = this.count > 0 ? this.chunks[this.chunks.length - 1]! : undefined;
    if (last && last.nextOffset !== firstOffset) this.clear();
    // Keeping a view pins its whole underlying buffer (a pool slab for small Buffers, a whole request
    // for one partition's share), which is what it costs against the budget. Copying costs an
    // allocation per append, so views are kept when that buffer is a pool slab or not much larger.
    const pinned = bytes.buffer.byteLength;
    const keep = pinned <= POOL_SLAB_BYTES_MAX || bytes.byteLength * 4 >= pinned;
    const owned = keep ? bytes : Uint8Array.prototype.slice.call(bytes);
    const cost = owned.buffer.byteLength;
    if (cost > this.maxBytes) {
      this.clear();
      return;
    }
    while (this.count > 0 && (this.bytes + cost > this.maxBytes || !this.reserve(cost))) this.dropOldest();
    if (this.count === 0 && !this.reserve(cost)) return;
    const lent = bufferPool.isLent(owned);
    if (lent) bufferPool.retain(owned);
    this.chunks.push({ firstOffset, nextOffset, bytes: owned, cost, lent });
    this.bytes += cost;
  }

  private reserve(cost: number): boolean {
    return this.budget === null || this.budget.tryReserve(cost);
  }

  private dropOldest(): void {
    if (this.count === 0) return;
    const c = this.chunks[this.head]!;
    this.chunks[this.head] = undefined as unknown as Chunk;
    this.head++;
    this.bytes -= c.cost;
    this.budget?.release(c.cost);
    if (c.lent) bufferPool.release(c.bytes);
    if (this.head === this.chunks.length) {
      this.chunks = [];
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.chunks.length) {
      // Compact once the dropped prefix is most of the array (amortised O(1) per drop).
      this.chunks = this.chunks.slice(this.head);
      this.head = 0;
    }
  }

  /** Drops the chunks that start below `offset` (compaction rewrote that range). */
  dropBelow(offset: bigint): void {
    while (this.count > 0 && this.chunks[this.head]!.firstOffset < offset) this.dropOldest();
  }

  clear(): void {
    while (this.count > 0) this.dropOldest();
  }

  /** Index of the first live chunk whose nextOffset is above `offset` (chunks.length if none). */
  private chunkAfter(offset: bigint): number {
    let lo = this.head;
    let hi = this.chunks.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.chunks[mid]!.nextOffset > offset) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  /**
   * Whole batches from the one holding `fetchOffset`, as a log read would return them, or null when
   * that batch is not cached. A result spanning chunks is copied into one buffer.
   */
  read(fetchOffset: bigint, maxBytes: number, maxOffset: bigint, minOneMessage: boolean): CachedRead | null {
    const r = this.readChunks(fetchOffset, maxBytes, maxOffset, minOneMessage);
    if (r === null) return null;
    // Bytes of the caller's own: these readers keep what they read without releasing it.
    return { records: detach(r.chunks), firstOffset: r.firstOffset, nextOffset: r.nextOffset };
  }

  /**
   * Like read, but the batches are returned as views of the cached chunks they lie in (one per
   * append spanned), not merged. The views must not be modified. A view of a pooled buffer comes
   * with a reference the caller owns (buffer-pool.ts): the connection gives it back once the
   * socket has taken the bytes.
   */
  readChunks(fetchOffset: bigint, maxBytes: number, maxOffset: bigint, minOneMessage: boolean): CachedChunks | null {
    let i = this.chunkAfter(fetchOffset);
    if (i === this.chunks.length || this.chunks[i]!.firstOffset > fetchOffset) return null;
    const parts: Uint8Array[] = [];
    let total = 0;
    let firstOffset = -1n;
    let nextOffset = fetchOffset;
    let started = false;
    for (; i < this.chunks.length; i++) {
      const chunk = this.chunks[i]!;
      const bytes = chunk.bytes;
      // A chunk wholly inside the request's bounds is taken without walking its batch headers.
      if (chunk.firstOffset >= fetchOffset && chunk.nextOffset <= maxOffset && total + bytes.byteLength <= maxBytes) {
        if (!started) firstOffset = chunk.firstOffset;
        started = true;
        this.take(parts, chunk, bytes);
        total += bytes.byteLength;
        nextOffset = chunk.nextOffset;
        continue;
      }
      let p = 0;
      let from = -1;
      while (p + RECORD_BATCH_HEADER_BYTES <= bytes.byteLength) {
        const h = readBatchHeader(bytes, p);
        const size = batchTotalBytes(h);
        const last = lastOffsetOf(h);
        if (last < fetchOffset) {
          p += size;
          continue;
        }
        const fits = total + size <= maxBytes || (!started && minOneMessage);
        if (last >= maxOffset || !fits) {
          if (from >= 0) this.take(parts, chunk, bytes.subarray(from, p));
          return { chunks: parts, byteLength: total, firstOffset, nextOffset };
        }
        if (!started) firstOffset = h.baseOffset;
        started = true;
        if (from < 0) from = p;
        total += size;
        nextOffset = last + 1n;
        p += size;
      }
      if (from >= 0) this.take(parts, chunk, bytes.subarray(from, p));
    }
    return { chunks: parts, byteLength: total, firstOffset, nextOffset };
  }

  /** Adds a view of a chunk to a read's result, with a reference when the chunk is pooled. */
  private take(parts: Uint8Array[], chunk: Chunk, view: Uint8Array): void {
    if (chunk.lent) bufferPool.retain(view);
    parts.push(view);
  }
}
