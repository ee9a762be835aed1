// Memory bounds shared by all logs of a LogManager:
// - `MemoryBudget`: a byte budget that tail caches reserve from (and give back to).
// - `IndexMemory`: the in-memory indexes of sealed segments, evicted least recently used first
//   when they exceed their budget (they are reloaded from their files on demand). The active
//   segments' indexes are not counted: each is bounded by its segment.index.bytes.

import type { LogSegment } from "./segment.ts";

export class MemoryBudget {
  readonly limitBytes: number;
  usedBytes = 0;

  constructor(limitBytes: number) {
    this.limitBytes = limitBytes;
  }

  tryReserve(bytes: number): boolean {
    if (this.usedBytes + bytes > this.limitBytes) return false;
    this.usedBytes += bytes;
    return true;
  }

  release(bytes: number): void {
    this.usedBytes = Math.max(0, this.usedBytes - bytes);
  }
}

export class IndexMemory {
  readonly limitBytes: number;
  /** Insertion order is recency order (a touch re-inserts). */
  private readonly loaded = new Map<LogSegment, number>();
  private usedBytes = 0;

  constructor(limitBytes: number) {
    this.limitBytes = limitBytes;
  }

  get bytes(): number {
    return this.usedBytes;
  }

  /** A sealed segment loaded its indexes: count them, then evict others while over budget. */
  track(seg: LogSegment): void {
    this.forget(seg);
    const bytes = seg.indexMemoryBytes;
    this.loaded.set(seg, bytes);
    this.usedBytes += bytes;
    this.evict(seg);
  }

  /** A sealed segment was used: it becomes the most recent. */
  touch(seg: LogSegment): void {
    const bytes = this.loaded.get(seg);
    if (bytes === undefined) return;
    this.loaded.delete(seg);
    this.loaded.set(seg, bytes);
  }

  forget(seg: LogSegment): void {
    const bytes = this.loaded.get(seg);
    if (bytes === undefined) return;
    this.loaded.delete(seg);
    this.usedBytes -= bytes;
  }

  private evict(keep: LogSegment): void {
    for (const [seg, bytes] of this.loaded) {
      if (this.usedBytes <= this.limitBytes) return;
      if (seg === keep) continue;
      if (!seg.evictIndexes()) continue;
      this.loaded.delete(seg);
      this.usedBytes -= bytes;
    }
  }
}
