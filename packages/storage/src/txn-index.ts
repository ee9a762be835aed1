// The aborted-transaction index of one segment, `<base>.txnindex` (Kafka's format): one 34-byte
// entry per transaction aborted by a marker in this segment:
//   version int16 (0) | producerId int64 | firstOffset int64 | lastOffset int64 | lastStableOffset int64
// firstOffset is the transaction's first offset (possibly in an earlier segment), lastOffset the
// offset of its ABORT marker. Fetch returns the entries overlapping the fetched range so that
// read_committed consumers can drop aborted records.

import type { Disk, DiskFile } from "./disk.ts";

export interface AbortedTxnEntry {
  readonly producerId: bigint;
  readonly firstOffset: bigint;
  readonly lastOffset: bigint;
  readonly lastStableOffset: bigint;
}

const ENTRY_BYTES = 34;

export class TxnIndex {
  private readonly file: DiskFile;
  private entries: AbortedTxnEntry[] = [];

  private constructor(file: DiskFile) {
    this.file = file;
  }

  static async open(disk: Disk, path: string): Promise<TxnIndex> {
    const file = await disk.open(path, (await disk.exists(path)) ? "r+" : "w+");
    const idx = new TxnIndex(file);
    const size = await file.size();
    const whole = size - (size % ENTRY_BYTES);
    if (whole > 0) {
      const buf = Buffer.allocUnsafe(whole);
      await file.read(buf, 0, whole, 0);
      for (let p = 0; p < whole; p += ENTRY_BYTES) {
        if (buf.readInt16BE(p) !== 0) break;
        idx.entries.push({
          producerId: buf.readBigInt64BE(p + 2),
          firstOffset: buf.readBigInt64BE(p + 10),
          lastOffset: buf.readBigInt64BE(p + 18),
          lastStableOffset: buf.readBigInt64BE(p + 26),
        });
      }
    }
    // A torn last entry (crash during its write) is dropped.
    if (size !== idx.entries.length * ENTRY_BYTES) await file.truncate(idx.entries.length * ENTRY_BYTES);
    return idx;
  }

  list(): readonly AbortedTxnEntry[] {
    return this.entries;
  }

  has(lastOffset: bigint): boolean {
    return this.entries.some((e) => e.lastOffset === lastOffset);
  }

  async append(e: AbortedTxnEntry): Promise<void> {
    const b = Buffer.allocUnsafe(ENTRY_BYTES);
    b.writeInt16BE(0, 0);
    b.writeBigInt64BE(e.producerId, 2);
    b.writeBigInt64BE(e.firstOffset, 10);
    b.writeBigInt64BE(e.lastOffset, 18);
    b.writeBigInt64BE(e.lastStableOffset, 26);
    await this.file.writev([b], this.entries.length * ENTRY_BYTES);
    this.entries.push(e);
  }

  /** Drops entries whose marker is at or after `offset` (log truncation). */
  async truncateTo(offset: bigint): Promise<void> {
    const keep = this.entries.filter((e) => e.lastOffset < offset);
    if (keep.length === this.entries.length) return;
    this.entries = keep;
    await this.file.truncate(keep.length * ENTRY_BYTES);
  }

  close(): Promise<void> {
    return this.file.close();
  }
}
