// Leader epoch → start offset of that epoch in this log, persisted as Kafka's
// `leader-epoch-checkpoint` in the partition dir (checkpoint.ts format, "epoch startOffset" lines).
// A follower that rejoins after a failover asks the leader where its last epoch ended
// (OffsetForLeaderEpoch) and truncates there; `endOffsetFor` answers that question.
//
// Invariant: entries are strictly increasing in both epoch and start offset. `assign` keeps it by
// dropping entries that a new one contradicts (as Kafka's LeaderEpochFileCache does).
// Every change is written through before the method resolves; changes are rare (one per leader
// change), so the cost is negligible.

import assert from "node:assert/strict";
import { CorruptCheckpointError, parseOffset, readCheckpoint, writeCheckpoint } from "./checkpoint.ts";
import type { Disk } from "./disk.ts";

export interface EpochEntry {
  readonly epoch: number;
  readonly startOffset: bigint;
}

export const UNDEFINED_EPOCH = -1;
export const UNDEFINED_EPOCH_OFFSET = -1n;

export class LeaderEpochCache {
  private entries: EpochEntry[] = [];
  private readonly disk: Disk;
  readonly path: string;
  /** Writes are serialised so that the file always ends up with the latest entries. */
  private writing: Promise<void> = Promise.resolve();

  constructor(disk: Disk, path: string) {
    this.disk = disk;
    this.path = path;
  }

  /** Loads the checkpoint; a corrupt file is treated as empty (the cache is rebuilt as batches arrive). */
  async load(): Promise<void> {
    try {
      const rows = await readCheckpoint(this.disk, this.path, 2);
      const entries = rows.map(([e, o]) => ({ epoch: Number(e), startOffset: parseOffset(this.path, o!) }));
      for (let i = 0; i < entries.length; i++) {
        const e = entries[i]!;
        const prev = entries[i - 1];
        if (!Number.isInteger(e.epoch) || e.epoch < 0 || e.startOffset < 0n)
          throw new CorruptCheckpointError(this.path, `entry ${e.epoch} ${e.startOffset}`);
        if (prev && (e.epoch <= prev.epoch || e.startOffset <= prev.startOffset))
          throw new CorruptCheckpointError(this.path, "entries are not increasing");
      }
      this.entries = entries;
    } catch (e) {
      if (!(e instanceof CorruptCheckpointError)) throw e;
      this.entries = [];
    }
  }

  private persist(): Promise<void> {
    const snapshot = this.entries.map((e) => [String(e.epoch), String(e.startOffset)]);
    const run = this.writing.then(() => writeCheckpoint(this.disk, this.path, snapshot));
    this.writing = run.catch(() => {});
    return run;
  }

  list(): readonly EpochEntry[] {
    return this.entries;
  }

  latestEpoch(): number {
    return this.entries.at(-1)?.epoch ?? UNDEFINED_EPOCH;
  }

  latestEntry(): EpochEntry | undefined {
    return this.entries.at(-1);
  }

  /** The epoch of the leader that wrote `offset` (the last entry starting at or before it), or -1. */
  epochForOffset(offset: bigint): number {
    let epoch = UNDEFINED_EPOCH;
    for (const e of this.entries) {
      if (e.startOffset > offset) break;
      epoch = e.epoch;
    }
    return epoch;
  }

  /** True when `assign(epoch, startOffset)` would change the cache (cheap; checked on every append). */
  needsAssign(epoch: number, startOffset: bigint): boolean {
    if (epoch < 0) return false;
    const last = this.entries.at(-1);
    return last === undefined || epoch !== last.epoch || startOffset < last.startOffset;
  }

  /**
   * Records that `epoch` starts at `startOffset`. Entries with an epoch ≥ `epoch` or a start offset
   * ≥ `startOffset` contradict it and are dropped first. A repeat of the latest epoch is a no-op.
   */
  async assign(epoch: number, startOffset: bigint): Promise<void> {
    if (!this.needsAssign(epoch, startOffset)) return;
    assert.ok(startOffset >= 0n, `epoch ${epoch} start offset ${startOffset}`);
    while (this.entries.length > 0) {
      const last = this.entries.at(-1)!;
      if (last.epoch < epoch && last.startOffset < startOffset) break;
      this.entries.pop();
    }
    this.entries.push({ epoch, startOffset });
    await this.persist();
  }

  /**
   * OffsetForLeaderEpoch, as Kafka answers it: for the latest epoch, (epoch, logEndOffset); for an
   * older known epoch, (that epoch, start offset of the next epoch); for an epoch between two known
   * ones, (the largest known epoch below it, start of the next); for one below every known epoch,
   * (requested epoch, start of the first epoch); for an unknown newer epoch or -1, (-1, -1).
   */
  endOffsetFor(requestedEpoch: number, logEndOffset: bigint): { epoch: number; endOffset: bigint } {
    const undefinedResult = { epoch: UNDEFINED_EPOCH, endOffset: UNDEFINED_EPOCH_OFFSET };
    if (requestedEpoch === UNDEFINED_EPOCH || this.entries.length === 0) return undefinedResult;
    if (requestedEpoch === this.latestEpoch()) return { epoch: requestedEpoch, endOffset: logEndOffset };
    const higher = this.entries.findIndex((e) => e.epoch > requestedEpoch);
    if (higher === -1) return undefinedResult;
    const higherEntry = this.entries[higher]!;
    if (higher === 0) return { epoch: requestedEpoch, endOffset: higherEntry.startOffset };
    return { epoch: this.entries[higher - 1]!.epoch, endOffset: higherEntry.startOffset };
  }

  /** The log was truncated to end at `endOffset`: entries starting at or after it go. */
  async truncateFromEnd(endOffset: bigint): Promise<void> {
    const keep = this.entries.filter((e) => e.startOffset < endOffset);
    if (keep.length === this.entries.length) return;
    this.entries = keep;
    await this.persist();
  }

  /**
   * The log now starts at `startOffset`: entries wholly before it go, and the entry covering it is
   * moved to start there (Kafka's truncateFromStart).
   */
  async truncateFromStart(startOffset: bigint): Promise<void> {
    let covering = -1;
    for (let i = 0; i < this.entries.length; i++) if (this.entries[i]!.startOffset <= startOffset) covering = i;
    if (covering === -1) return;
    const first = this.entries[covering]!;
    if (covering === 0 && first.startOffset === startOffset) return;
    this.entries = [{ epoch: first.epoch, startOffset }, ...this.entries.slice(covering + 1)];
    await this.persist();
  }

  /** Drops every entry (the log was emptied and starts afresh). */
  async clear(): Promise<void> {
    if (this.entries.length === 0) return;
    this.entries = [];
    await this.persist();
  }

  /** Waits for pending writes (close). */
  async settle(): Promise<void> {
    await this.writing;
  }
}
