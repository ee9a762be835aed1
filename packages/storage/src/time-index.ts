// The time index of one segment, `<base>.timeindex` (Kafka's format):
//
//   entries of 12 bytes, big-endian, strictly ascending in timestamp:
//     timestamp      int64   the largest record timestamp in the segment up to this point
//     relativeOffset int32   last offset of the batch holding that timestamp, minus the base offset
//
// An entry may be added whenever an offset-index entry is (only if the max timestamp grew), and
// once more when the segment is sealed, so the last entry holds the segment's max timestamp. To
// find the first record with timestamp ≥ T: the largest entry with timestamp ≤ T gives an offset
// whose batch (and all before it) are below or at T; scanning batch headers from the offset
// index's position for that offset finds the first batch whose maxTimestamp is ≥ T.
//
// Kept in memory and written whole, like the offset index (offset-index.ts).

export const TIME_INDEX_ENTRY_BYTES = 12;

export class TimeIndex {
  private ts: BigInt64Array;
  private rel: Int32Array;
  private n = 0;
  readonly maxEntries: number;

  constructor(maxEntries: number, initialCapacity = 64) {
    this.maxEntries = Math.max(1, maxEntries);
    const cap = Math.min(this.maxEntries, initialCapacity);
    this.ts = new BigInt64Array(cap);
    this.rel = new Int32Array(cap);
  }

  static entriesFor(indexBytes: number): number {
    return Math.max(1, Math.floor(indexBytes / TIME_INDEX_ENTRY_BYTES));
  }

  get entries(): number {
    return this.n;
  }

  get isFull(): boolean {
    return this.n >= this.maxEntries;
  }

  get memoryBytes(): number {
    return this.ts.byteLength + this.rel.byteLength;
  }

  /**
   * Adds an entry if `timestamp` is newer than the last one and there is room; `skipFullCheck` for
   * the entry added when the segment is sealed (Kafka allows that one past the limit).
   */
  maybeAppend(timestamp: bigint, relativeOffset: number, skipFullCheck = false): void {
    if (timestamp < 0n || (this.isFull && !skipFullCheck)) return;
    if (this.n > 0 && timestamp <= this.ts[this.n - 1]!) return;
    if (this.n === this.ts.length) this.grow();
    this.ts[this.n] = timestamp;
    this.rel[this.n] = relativeOffset;
    this.n++;
  }

  private grow(): void {
    const cap = Math.min(this.maxEntries + 1, Math.max(64, this.ts.length * 2));
    const ts = new BigInt64Array(cap);
    const rel = new Int32Array(cap);
    ts.set(this.ts.subarray(0, this.n));
    rel.set(this.rel.subarray(0, this.n));
    this.ts = ts;
    this.rel = rel;
  }

  /** The relative offset of the largest entry with timestamp ≤ `timestamp`, or -1 if none. */
  lookup(timestamp: bigint): number {
    let lo = 0;
    let hi = this.n - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.ts[mid]! <= timestamp) {
        found = this.rel[mid]!;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  }

  lastEntry(): { timestamp: bigint; relativeOffset: number } | null {
    if (this.n === 0) return null;
    return { timestamp: this.ts[this.n - 1]!, relativeOffset: this.rel[this.n - 1]! };
  }

  /** Removes the entries whose offset is at or after `relativeOffset` (the log was cut there). */
  truncateToRelativeOffset(relativeOffset: number): void {
    while (this.n > 0 && this.rel[this.n - 1]! >= relativeOffset) this.n--;
  }

  toBytes(): Buffer {
    const out = Buffer.allocUnsafe(this.n * TIME_INDEX_ENTRY_BYTES);
    for (let i = 0; i < this.n; i++) {
      out.writeBigInt64BE(this.ts[i]!, i * TIME_INDEX_ENTRY_BYTES);
      out.writeInt32BE(this.rel[i]!, i * TIME_INDEX_ENTRY_BYTES + 8);
    }
    return out;
  }

  /**
   * Parses a time index file, or returns null when it is torn or inconsistent: timestamps not
   * strictly increasing, offsets decreasing or outside [0, lastRelativeOffset].
   */
  static fromBytes(buf: Uint8Array, maxEntries: number, lastRelativeOffset: number): TimeIndex | null {
    if (buf.byteLength % TIME_INDEX_ENTRY_BYTES !== 0) return null;
    const count = buf.byteLength / TIME_INDEX_ENTRY_BYTES;
    // One extra entry is allowed: the one added when the segment was sealed.
    if (count > maxEntries + 1) return null;
    const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    const index = new TimeIndex(maxEntries, count);
    let prevRel = -1;
    for (let i = 0; i < count; i++) {
      const ts = v.getBigInt64(i * TIME_INDEX_ENTRY_BYTES);
      const rel = v.getInt32(i * TIME_INDEX_ENTRY_BYTES + 8);
      const last = index.lastEntry();
      if (ts < 0n || rel < 0 || rel > lastRelativeOffset || rel < prevRel) return null;
      if (last && ts <= last.timestamp) return null;
      index.maybeAppend(ts, rel, true);
      prevRel = rel;
    }
    return index;
  }
}
