// Leader epoch → start offset, as Kafka's leader-epoch-checkpoint records it. A follower that
// rejoins after a failover asks the leader where its epoch ended (OffsetForLeaderEpoch) and
// truncates there; the cache answers that question for this log.

import { readCheckpoint, writeCheckpoint } from "./checkpoint.ts";
import type { Disk } from "./disk.ts";

export interface EpochEntry {
  readonly epoch: number;
  readonly startOffset: bigint;
}

export class LeaderEpochCache {
  private entries: EpochEntry[] = [];
  private readonly disk: Disk;
  private readonly path: string;

  constructor(disk: Disk, path: string) {
    this.disk = disk;
    this.path = path;
  }

  async load(): Promise<void> {
    const rows = await readCheckpoint(this.disk, this.path);
    this.entries = rows.map(([e, o]) => ({ epoch: Number(e), startOffset: BigInt(o ?? "0") }));
  }

  private async persist(): Promise<void> {
    await writeCheckpoint(
      this.disk,
      this.path,
      this.entries.map((e) => [String(e.epoch), String(e.startOffset)]),
    );
  }

  list(): readonly EpochEntry[] {
    return this.entries;
  }

  latestEpoch(): number {
    return this.entries.at(-1)?.epoch ?? -1;
  }

  /** Records that `epoch` starts at `startOffset` (no-op if it is not newer than the latest). */
  async assign(epoch: number, startOffset: bigint): Promise<void> {
    const last = this.entries.at(-1);
    if (last !== undefined && epoch <= last.epoch) return;
    this.entries.push({ epoch, startOffset });
    await this.persist();
  }

  /**
   * OffsetForLeaderEpoch: the largest epoch ≤ `epoch` and the start offset of the next epoch (or
   * `logEndOffset` if it is the latest). Returns epoch -1 / offset -1 when unknown.
   */
  endOffsetFor(epoch: number, logEndOffset: bigint): { epoch: number; endOffset: bigint } {
    let idx = -1;
    for (let i = 0; i < this.entries.length; i++) if (this.entries[i]!.epoch <= epoch) idx = i;
    if (idx === -1) return { epoch: -1, endOffset: -1n };
    const next = this.entries[idx + 1];
    return { epoch: this.entries[idx]!.epoch, endOffset: next ? next.startOffset : logEndOffset };
  }

  /** Drops entries that start at or after `offset` (log truncated there). */
  async truncateFromEnd(offset: bigint): Promise<void> {
    const before = this.entries.length;
    this.entries = this.entries.filter((e) => e.startOffset < offset);
    if (this.entries.length !== before) await this.persist();
  }

  /** Drops entries wholly below the new log start offset, keeping the one covering it. */
  async truncateFromStart(offset: bigint): Promise<void> {
    let i = 0;
    while (i + 1 < this.entries.length && this.entries[i + 1]!.startOffset <= offset) i++;
    if (i === 0) return;
    this.entries = this.entries.slice(i);
    await this.persist();
  }
}
