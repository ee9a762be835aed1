// The sparse offset index of one segment, `<base>.index` (Kafka's format):
//
//   entries of 8 bytes, big-endian, ascending in both fields:
//     relativeOffset int32   last offset of an indexed batch, minus the segment's base offset
//     position       int32   byte position of that batch in the segment's .log
//
// An entry is added before a batch when more than `index.interval.bytes` of batches were written
// since the previous entry (so the first batch of a segment has none: position 0 finds it). To find
// offset X: take the largest entry with relativeOffset ≤ X - base (or position 0) and scan batch
// headers from there for the first batch whose last offset is ≥ X.
//
// The index lives in memory (growable typed arrays, bounded by segment.index.bytes) and is written
// to its file whole, by the segment: it is derived data, rebuilt from the .log whenever the file is
// missing, torn or inconsistent.

import assert from "node:assert/strict";

export const OFFSET_INDEX_ENTRY_BYTES = 8;

export class OffsetIndex {
  private rel: Int32Array;
  private pos: Int32Array;
  private n = 0;
  readonly maxEntries: number;

  constructor(maxEntries: number, initialCapacity = 64) {
    this.maxEntries = Math.max(1, maxEntries);
    const cap = Math.min(this.maxEntries, initialCapacity);
    this.rel = new Int32Array(cap);
    this.pos = new Int32Array(cap);
  }

  static entriesFor(indexBytes: number): number {
    return Math.max(1, Math.floor(indexBytes / OFFSET_INDEX_ENTRY_BYTES));
  }

  get entries(): number {
    return this.n;
  }

  get isFull(): boolean {
    return this.n >= this.maxEntries;
  }

  get memoryBytes(): number {
    return this.rel.byteLength + this.pos.byteLength;
  }

  append(relativeOffset: number, position: number): void {
    assert.ok(!this.isFull, "offset index is full (the segment should have rolled)");
    // Messages are built only on failure (this runs once per indexed batch).
    if (this.n > 0 && !(relativeOffset > this.rel[this.n - 1]!))
      assert.fail(`offset index: ${relativeOffset} after ${this.rel[this.n - 1]}`);
    if (this.n > 0 && !(position > this.pos[this.n - 1]!))
      assert.fail(`offset index: position ${position} after ${this.pos[this.n - 1]}`);
    if (this.n === this.rel.length) this.grow();
    this.rel[this.n] = relativeOffset;
    this.pos[this.n] = position;
    this.n++;
  }

  private grow(): void {
    const cap = Math.min(this.maxEntries, Math.max(64, this.rel.length * 2));
    const rel = new Int32Array(cap);
    const pos = new Int32Array(cap);
    rel.set(this.rel.subarray(0, this.n));
    pos.set(this.pos.subarray(0, this.n));
    this.rel = rel;
    this.pos = pos;
  }

  /** Where a scan for `relativeOffset` may start: the position of the largest entry ≤ it, else 0. */
  lookup(relativeOffset: number): number {
    let lo = 0;
    let hi = this.n - 1;
    let found = 0;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.rel[mid]! <= relativeOffset) {
        found = this.pos[mid]!;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  }

  lastEntry(): { relativeOffset: number; position: number } | null {
    if (this.n === 0) return null;
    return { relativeOffset: this.rel[this.n - 1]!, position: this.pos[this.n - 1]! };
  }

  /** Removes the entries pointing at or beyond `position` (the log was cut there). */
  truncateToPosition(position: number): void {
    while (this.n > 0 && this.pos[this.n - 1]! >= position) this.n--;
  }

  toBytes(): Buffer {
    const out = Buffer.allocUnsafe(this.n * OFFSET_INDEX_ENTRY_BYTES);
    for (let i = 0; i < this.n; i++) {
      out.writeInt32BE(this.rel[i]!, i * OFFSET_INDEX_ENTRY_BYTES);
      out.writeInt32BE(this.pos[i]!, i * OFFSET_INDEX_ENTRY_BYTES + 4);
    }
    return out;
  }

  /**
   * Parses an index file, or returns null when it cannot be the index of a log of `logBytes` bytes:
   * a torn entry, entries not strictly increasing, a position at or past the log end, more entries
   * than allowed.
   */
  static fromBytes(buf: Uint8Array, maxEntries: number, logBytes: number): OffsetIndex | null {
    if (buf.byteLength % OFFSET_INDEX_ENTRY_BYTES !== 0) return null;
    const count = buf.byteLength / OFFSET_INDEX_ENTRY_BYTES;
    if (count > maxEntries) return null;
    const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    const index = new OffsetIndex(maxEntries, count);
    for (let i = 0; i < count; i++) {
      const rel = v.getInt32(i * OFFSET_INDEX_ENTRY_BYTES);
      const pos = v.getInt32(i * OFFSET_INDEX_ENTRY_BYTES + 4);
      const last = index.lastEntry();
      if (rel < 0 || pos <= 0 || pos >= logBytes) return null;
      if (last && (rel <= last.relativeOffset || pos <= last.position)) return null;
      index.append(rel, pos);
    }
    return index;
  }
}
