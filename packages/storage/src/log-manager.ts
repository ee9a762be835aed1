// All partition logs of a broker, across its log dirs, and the background work on them.
//
// Each log dir holds one directory per partition (`<topic>-<partition>/`, partition-log.ts) and the
// dir's checkpoints and clean-shutdown marker (log-dir-state.ts). A new log goes to the dir holding
// the fewest logs.
//
// Background work (start()), each pass async and yielding between logs so that appends and reads
// keep flowing; every pass catches and reports its errors (deps.onError):
// - every checkIntervalMs (log.retention.check.interval.ms): retention, then compaction
// - every flushCheckIntervalMs: flush.ms-based flushes
// - every checkpointIntervalMs: the dir checkpoints (high watermarks, recovery points, log start
//   and cleaner offsets), written only when they changed
// close() stops the passes, closes every log (flushing it), writes the checkpoints and then the
// clean-shutdown marker, so the next start scans nothing.

import assert from "node:assert/strict";
import { join } from "node:path";
import { type Clock, type Disk, isNotFound, nodeDisk, systemClock } from "./disk.ts";
import { ioError } from "./errors.ts";
import { type LogConfig, resolveConfig } from "./log-config.ts";
import { LogDirState, parsePartitionDir, partitionKey } from "./log-dir-state.ts";
import { IndexMemory, MemoryBudget } from "./memory.ts";
import { PartitionLog } from "./partition-log.ts";

/** Logs closed at the same time by close() (each flushes and writes its index files). */
const CLOSE_CONCURRENCY = 16;

export interface LogManagerDeps {
  readonly disk?: Disk;
  readonly clock?: Clock;
  /** Retention and compaction pass interval (log.retention.check.interval.ms, default 5 minutes). */
  readonly checkIntervalMs?: number;
  /** How often flush.ms is checked (default 1 s). */
  readonly flushCheckIntervalMs?: number;
  /** How often the dir checkpoints are written (default 5 s, as replica.high.watermark.checkpoint.interval.ms). */
  readonly checkpointIntervalMs?: number;
  /** A background failure on one log (retention, compaction, flush). */
  readonly onError?: (e: unknown, log: PartitionLog) => void;
  /** A background failure not tied to one log (writing a dir's checkpoints). Default: a process warning. */
  readonly onDirError?: (e: unknown, dir: string | null) => void;
  /** Tail cache per log (default 2 MiB; 0 disables) and for all logs together (default 64 MiB). */
  readonly tailCacheBytesPerLog?: number;
  readonly tailCacheBytesMax?: number;
  /** Memory for the indexes of sealed segments, all logs together (default 128 MiB). */
  readonly indexMemoryBytesMax?: number;
  /** Offset map bound of one compaction pass (default 32 MiB). */
  readonly compactionMapBytesMax?: number;
}

/** Kafka's legal topic names. */
const TOPIC_NAME = /^[a-zA-Z0-9._-]{1,249}$/;

export function logKey(topic: string, partition: number): string {
  return partitionKey(topic, partition);
}

export class LogManager {
  readonly logDirs: readonly string[];
  readonly defaults: Required<LogConfig>;
  private readonly disk: Disk;
  private readonly clock: Clock;
  private readonly dirStates = new Map<string, LogDirState>();
  private readonly logs = new Map<string, PartitionLog>();
  private readonly opening = new Map<string, Promise<PartitionLog>>();
  /** Partition dirs found on disk at open: key → log dir. */
  private readonly onDisk = new Map<string, string>();
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly running = new Set<Promise<void>>();
  private readonly busy = new Set<string>();
  private closed = false;
  private readonly deps: LogManagerDeps;
  private readonly tailBudget: MemoryBudget;
  private readonly indexMemory: IndexMemory;
  private readonly onError: (e: unknown, log: PartitionLog) => void;
  private readonly onDirError: (e: unknown, dir: string | null) => void;

  private constructor(logDirs: readonly string[], defaults: Partial<LogConfig>, deps: LogManagerDeps) {
    assert.ok(logDirs.length > 0, "at least one log dir");
    this.logDirs = logDirs;
    this.defaults = resolveConfig(defaults);
    this.disk = deps.disk ?? nodeDisk;
    this.clock = deps.clock ?? systemClock;
    this.deps = deps;
    this.tailBudget = new MemoryBudget(deps.tailCacheBytesMax ?? 64 * 1024 * 1024);
    this.indexMemory = new IndexMemory(deps.indexMemoryBytesMax ?? 128 * 1024 * 1024);
    this.onError = deps.onError ?? (() => {});
    this.onDirError =
      deps.onDirError ??
      ((e, dir) => process.emitWarning(`sluice storage${dir ? ` (${dir})` : ""}: ${(e as Error)?.message ?? e}`));
  }

  /** Opens the log dirs: reads their checkpoints and notes which partitions they hold (logs open on demand). */
  static async open(
    logDirs: readonly string[],
    defaults: Partial<LogConfig> = {},
    deps: LogManagerDeps = {},
  ): Promise<LogManager> {
    const m = new LogManager(logDirs, defaults, deps);
    for (const dir of logDirs) {
      let state: LogDirState;
      try {
        state = await LogDirState.open(m.disk, dir);
      } catch (e) {
        throw ioError(`cannot open log dir ${dir}`, e);
      }
      m.dirStates.set(dir, state);
      for (const name of await m.disk.readdir(dir)) {
        const p = parsePartitionDir(name);
        if (p && TOPIC_NAME.test(p.topic) && (await m.disk.stat(join(dir, name))).isDirectory) m.onDisk.set(name, dir);
      }
    }
    return m;
  }

  /** Partition dirs present on disk, open or not (the broker decides which to open). */
  async listOnDisk(): Promise<{ topic: string; partition: number; dir: string }[]> {
    const out: { topic: string; partition: number; dir: string }[] = [];
    for (const [key, dir] of this.onDisk) out.push({ ...parsePartitionDir(key)!, dir });
    return out;
  }

  getLog(topic: string, partition: number): PartitionLog | undefined {
    return this.logs.get(partitionKey(topic, partition));
  }

  listLogs(): PartitionLog[] {
    return [...this.logs.values()];
  }

  /**
   * The log of a partition, opened (and recovered if needed) on first use, or created in the log dir
   * holding the fewest logs. `overrides` are topic configs over the manager's defaults.
   */
  getOrCreateLog(topic: string, partition: number, overrides: Partial<LogConfig> = {}): Promise<PartitionLog> {
    assert.ok(
      TOPIC_NAME.test(topic) && Number.isInteger(partition) && partition >= 0,
      `bad partition ${topic}-${partition}`,
    );
    const key = partitionKey(topic, partition);
    const existing = this.logs.get(key);
    if (existing) return Promise.resolve(existing);
    const pending = this.opening.get(key);
    if (pending) return pending;
    const p = (async () => {
      if (this.closed) throw ioError(`cannot open ${key}`, new Error("the log manager is closed"));
      const dir = this.onDisk.get(key) ?? this.emptiestDir();
      const log = await PartitionLog.open(
        join(dir, key),
        topic,
        partition,
        { ...this.defaults, ...overrides },
        {
          disk: this.disk,
          clock: this.clock,
          dirState: this.dirStates.get(dir)!,
          tailCacheBytes: this.deps.tailCacheBytesPerLog ?? 2 * 1024 * 1024,
          tailCacheBudget: this.tailBudget,
          indexMemory: this.indexMemory,
          compactionMapBytesMax: this.deps.compactionMapBytesMax ?? 32 * 1024 * 1024,
        },
      );
      log.on("backgroundError", (e: unknown) => this.onError(e, log));
      this.onDisk.set(key, dir);
      this.logs.set(key, log);
      return log;
    })().finally(() => this.opening.delete(key));
    this.opening.set(key, p);
    return p;
  }

  private emptiestDir(): string {
    const counts = new Map<string, number>(this.logDirs.map((d) => [d, 0]));
    for (const dir of this.onDisk.values()) counts.set(dir, (counts.get(dir) ?? 0) + 1);
    let best = this.logDirs[0]!;
    for (const d of this.logDirs) if (counts.get(d)! < counts.get(best)!) best = d;
    return best;
  }

  /** Closes the partition's log and removes its directory and checkpoint entries. */
  async deleteLog(topic: string, partition: number): Promise<void> {
    const key = partitionKey(topic, partition);
    const opening = this.opening.get(key);
    if (opening) await opening.catch(() => {});
    const log = this.logs.get(key);
    this.logs.delete(key);
    const dir = this.onDisk.get(key);
    this.onDisk.delete(key);
    if (log) await log.delete();
    else if (dir) {
      try {
        await this.disk.rmdir(join(dir, key));
      } catch (e) {
        if (!isNotFound(e)) throw ioError(`cannot delete log ${key}`, e);
      }
      this.dirStates.get(dir)?.forget(key);
    }
  }

  // ---- background work ----------------------------------------------------------------------------

  /** Starts the background passes (idempotent). */
  start(): void {
    if (this.timers.length > 0 || this.closed) return;
    const every = (ms: number, name: string, pass: () => Promise<void>): void => {
      const t = setInterval(() => this.runExclusive(name, pass), ms);
      t.unref();
      this.timers.push(t);
    };
    every(this.deps.checkIntervalMs ?? 300_000, "retention", () => this.runBackgroundPass());
    every(this.deps.flushCheckIntervalMs ?? 1_000, "flush", () => this.runFlushPass());
    every(this.deps.checkpointIntervalMs ?? 5_000, "checkpoint", () => this.checkpoint());
  }

  /** Runs a pass unless the same pass is still running (a slow pass is never stacked). */
  private runExclusive(name: string, pass: () => Promise<void>): void {
    if (this.busy.has(name) || this.closed) return;
    this.busy.add(name);
    const p = pass()
      .catch((e) => this.onDirError(e, null))
      .finally(() => {
        this.busy.delete(name);
        this.running.delete(p);
      });
    this.running.add(p);
  }

  /** Retention then compaction on every log, one log at a time. */
  async runBackgroundPass(): Promise<void> {
    for (const log of [...this.logs.values()]) {
      if (this.closed) return;
      try {
        await log.applyRetention();
        await log.compact();
      } catch (e) {
        this.onError(e, log);
      }
      await new Promise((r) => setImmediate(r));
    }
  }

  /** flush.ms: flushes the logs whose oldest unflushed data is old enough. */
  async runFlushPass(): Promise<void> {
    for (const log of [...this.logs.values()]) {
      if (this.closed) return;
      try {
        await log.maybeFlushByTime();
      } catch (e) {
        this.onError(e, log);
      }
    }
  }

  /** Writes every log dir's checkpoints (only files whose entries changed are rewritten). */
  async checkpoint(): Promise<void> {
    for (const state of this.dirStates.values()) {
      try {
        await state.writeAll();
      } catch (e) {
        this.onDirError(e, state.dir);
      }
    }
  }

  /** Stops the background work, closes every log, writes the checkpoints and the clean-shutdown markers. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    this.timers.length = 0;
    await Promise.all([...this.running]);
    await Promise.all([...this.opening.values()].map((p) => p.catch(() => {})));
    let failure: unknown = null;
    // Logs close (flush, index files) a few at a time: one after another, 10 000 partitions took
    // 8-20 s to shut down; all at once would queue 10 000 fsyncs on the thread pool.
    const logs = [...this.logs.values()];
    let next = 0;
    const closer = async (): Promise<void> => {
      for (let log = logs[next++]; log !== undefined; log = logs[next++]) {
        try {
          await log.close();
        } catch (e) {
          failure ??= e;
          this.onError(e, log);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(CLOSE_CONCURRENCY, logs.length) }, closer));
    this.logs.clear();
    for (const state of this.dirStates.values()) {
      await state.writeAll();
      // A log that failed to close cleanly must be recovered next time: no marker.
      if (failure === null) await state.markCleanShutdown();
    }
    if (failure !== null) throw failure;
  }
}
