// The aborted-transaction index of one segment, `<base>.txnindex` (Kafka's format): one 34-byte
// entry per transaction aborted by a marker in this segment, in marker order:
//   version int16 (0) | producerId int64 | firstOffset int64 | lastOffset int64 | lastStableOffset int64
// firstOffset is the transaction's first offset (possibly in an earlier segment), lastOffset the
// offset of its ABORT marker. Fetch returns the entries overlapping the fetched range so that
// read_committed consumers can drop aborted records.
//
// Entries are few (one per aborted transaction), so they are kept in memory; the file is created
// on the first entry, appended to in place, and cut on truncation. A torn last entry (a crash
// during its write) is dropped when the file is loaded.

import { type Disk, readWholeFile, unlinkIfExists, writeFileDurable, writeFully } from "./disk.ts";

export interface AbortedTxnEntry {
  readonly producerId: bigint;
  readonly firstOffset: bigint;
  readonly lastOffset: bigint;
  readonly lastStableOffset: bigint;
}

export const TXN_INDEX_ENTRY_BYTES = 34;

export function encodeTxnEntries(entries: readonly AbortedTxnEntry[]): Buffer {
  const b = Buffer.allocUnsafe(entries.length * TXN_INDEX_ENTRY_BYTES);
  entries.forEach((e, i) => {
    const p = i * TXN_INDEX_ENTRY_BYTES;
    b.writeInt16BE(0, p);
    b.writeBigInt64BE(e.producerId, p + 2);
    b.writeBigInt64BE(e.firstOffset, p + 10);
    b.writeBigInt64BE(e.lastOffset, p + 18);
    b.writeBigInt64BE(e.lastStableOffset, p + 26);
  });
  return b;
}

export class TxnIndex {
  private readonly disk: Disk;
  path: string;
  private entries: AbortedTxnEntry[] = [];
  /** Bytes of whole entries in the file. */
  private fileBytes = 0;

  constructor(disk: Disk, path: string) {
    this.disk = disk;
    this.path = path;
  }

  async load(): Promise<void> {
    const buf = await readWholeFile(this.disk, this.path);
    this.entries = [];
    if (buf === null) {
      this.fileBytes = 0;
      return;
    }
    for (let p = 0; p + TXN_INDEX_ENTRY_BYTES <= buf.length; p += TXN_INDEX_ENTRY_BYTES) {
      if (buf.readInt16BE(p) !== 0) break;
      this.entries.push({
        producerId: buf.readBigInt64BE(p + 2),
        firstOffset: buf.readBigInt64BE(p + 10),
        lastOffset: buf.readBigInt64BE(p + 18),
        lastStableOffset: buf.readBigInt64BE(p + 26),
      });
    }
    this.fileBytes = this.entries.length * TXN_INDEX_ENTRY_BYTES;
    if (buf.length !== this.fileBytes) await this.cutFile(this.fileBytes);
  }

  list(): readonly AbortedTxnEntry[] {
    return this.entries;
  }

  has(lastOffset: bigint): boolean {
    return this.entries.some((e) => e.lastOffset === lastOffset);
  }

  async append(e: AbortedTxnEntry): Promise<void> {
    if (this.fileBytes < 0) await this.persistAll();
    const file = await this.disk.open(this.path, this.fileBytes === 0 ? "w+" : "r+");
    try {
      await writeFully(file, [encodeTxnEntries([e])], this.fileBytes);
    } finally {
      await file.close();
    }
    this.entries.push(e);
    this.fileBytes += TXN_INDEX_ENTRY_BYTES;
  }

  /** Drops entries whose marker is at or after `offset` (log truncation). */
  async truncateTo(offset: bigint): Promise<void> {
    const keep = this.entries.filter((e) => e.lastOffset < offset);
    if (keep.length === this.entries.length) return;
    this.entries = keep;
    this.fileBytes = keep.length * TXN_INDEX_ENTRY_BYTES;
    await this.cutFile(this.fileBytes);
  }

  private async cutFile(bytes: number): Promise<void> {
    if (bytes === 0) {
      await unlinkIfExists(this.disk, this.path);
      return;
    }
    const file = await this.disk.open(this.path, "r+");
    try {
      await file.truncate(bytes);
    } finally {
      await file.close();
    }
  }

  /** Replaces the entries in memory (a compacted segment takes over those of the segments it replaces). */
  setEntries(entries: readonly AbortedTxnEntry[]): void {
    this.entries = [...entries];
    this.fileBytes = -1;
  }

  /** Writes all entries to the file (after setEntries), replacing it atomically. */
  async persistAll(): Promise<void> {
    if (this.entries.length === 0) {
      await unlinkIfExists(this.disk, this.path);
    } else {
      await writeFileDurable(this.disk, this.path, [encodeTxnEntries(this.entries)]);
    }
    this.fileBytes = this.entries.length * TXN_INDEX_ENTRY_BYTES;
  }

  /** Makes the file durable (segment flush). */
  async fsync(): Promise<void> {
    if (this.fileBytes === 0) return;
    const file = await this.disk.open(this.path, "r+");
    try {
      await file.fsync();
    } finally {
      await file.close();
    }
  }
}
