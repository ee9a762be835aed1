// The per-log-dir state files (Kafka's names and text format, see checkpoint.ts), one entry per
// partition ("topic partition offset"):
//
//   recovery-point-offset-checkpoint  offsets below which a log's segments and indexes are durable;
//                                     after an unclean shutdown only segments from there are scanned
//   replication-offset-checkpoint     high watermarks
//   log-start-offset-checkpoint       log start offsets (moved by retention and DeleteRecords)
//   cleaner-offset-checkpoint         where compaction's dirty section begins
//   .kafka_cleanshutdown              present only while the dir is closed cleanly: removed when the
//                                     dir is opened, written after the final checkpoints on close
//
// Logs update the maps; files are written by `write` (the LogManager's scheduler, clean shutdown,
// and at once for log start offsets). Writes of one file are serialised and coalesced: a write
// requested while one runs happens once after it, with the latest entries. Entries of partitions
// that are not open this session are kept as they were read.

import { join } from "node:path";
import { CorruptCheckpointError, formatCheckpoint, readOffsetCheckpoint } from "./checkpoint.ts";
import { type Disk, exists, unlinkIfExists, writeFileDurable } from "./disk.ts";

export const CLEAN_SHUTDOWN_FILE = ".kafka_cleanshutdown";

export const CHECKPOINT_FILES = {
  recoveryPoints: "recovery-point-offset-checkpoint",
  highWatermarks: "replication-offset-checkpoint",
  logStartOffsets: "log-start-offset-checkpoint",
  cleanerOffsets: "cleaner-offset-checkpoint",
} as const;

export type CheckpointKind = keyof typeof CHECKPOINT_FILES;

export function partitionKey(topic: string, partition: number): string {
  return `${topic}-${partition}`;
}

/** Splits a partition dir name `topic-partition` (topics may contain '-'). */
export function parsePartitionDir(name: string): { topic: string; partition: number } | null {
  const m = /^(.+)-(\d+)$/.exec(name);
  if (!m) return null;
  return { topic: m[1]!, partition: Number(m[2]) };
}

export class LogDirState {
  readonly dir: string;
  private readonly disk: Disk;
  /** The dir was closed cleanly last time: logs with a recovery point need no recovery. */
  cleanShutdown = false;
  readonly maps: Record<CheckpointKind, Map<string, bigint>> = {
    recoveryPoints: new Map(),
    highWatermarks: new Map(),
    logStartOffsets: new Map(),
    cleanerOffsets: new Map(),
  };
  private readonly writing = new Map<CheckpointKind, Promise<void>>();
  private readonly again = new Set<CheckpointKind>();
  /** What each file holds now (unwritten files: undefined), so unchanged files are not rewritten. */
  private readonly written = new Map<CheckpointKind, string>();

  constructor(disk: Disk, dir: string) {
    this.disk = disk;
    this.dir = dir;
  }

  /**
   * Reads the marker and the checkpoints, then removes the marker (from here on, a crash is an
   * unclean shutdown). A corrupt checkpoint reads as empty: for recovery points that means a full
   * recovery, which is slow but loses nothing.
   */
  static async open(disk: Disk, dir: string): Promise<LogDirState> {
    const s = new LogDirState(disk, dir);
    await disk.mkdir(dir);
    s.cleanShutdown = await exists(disk, join(dir, CLEAN_SHUTDOWN_FILE));
    for (const kind of Object.keys(CHECKPOINT_FILES) as CheckpointKind[]) {
      try {
        for (const [k, v] of await readOffsetCheckpoint(disk, join(dir, CHECKPOINT_FILES[kind])))
          s.maps[kind].set(k, v);
      } catch (e) {
        if (!(e instanceof CorruptCheckpointError)) throw e;
        if (kind === "recoveryPoints") s.cleanShutdown = false;
      }
    }
    await unlinkIfExists(disk, join(dir, CLEAN_SHUTDOWN_FILE));
    await disk.fsyncDir(dir);
    return s;
  }

  forget(key: string): void {
    for (const m of Object.values(this.maps)) m.delete(key);
  }

  /** Writes one checkpoint file with the current entries (coalescing concurrent requests). */
  write(kind: CheckpointKind): Promise<void> {
    const running = this.writing.get(kind);
    if (running) {
      this.again.add(kind);
      return running;
    }
    const run = (async () => {
      try {
        do {
          this.again.delete(kind);
          const rows = [...this.maps[kind]]
            .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
            .map(([key, offset]) => {
              const p = parsePartitionDir(key)!;
              return [p.topic, String(p.partition), String(offset)];
            });
          const data = formatCheckpoint(rows);
          const text = data.toString("utf8");
          if (this.written.get(kind) === text) continue;
          await writeFileDurable(this.disk, join(this.dir, CHECKPOINT_FILES[kind]), [data]);
          this.written.set(kind, text);
        } while (this.again.has(kind));
      } finally {
        this.writing.delete(kind);
      }
    })();
    this.writing.set(kind, run);
    return run;
  }

  async writeAll(): Promise<void> {
    for (const kind of Object.keys(CHECKPOINT_FILES) as CheckpointKind[]) await this.write(kind);
  }

  async markCleanShutdown(): Promise<void> {
    await writeFileDurable(this.disk, join(this.dir, CLEAN_SHUTDOWN_FILE), []);
  }
}
