// All partition logs of a broker, across its log directories, and the background work on them:
// retention, compaction and time-based flushes.
//
// In each log dir:
//   recovery-point-offset-checkpoint  "topic partition offset" lines: segments below the offset
//                                     were flushed when the broker last shut down cleanly
//   .sluice_cleanshutdown             present only after a clean shutdown; removed at startup, so
//                                     after a crash every log's segments are scanned and repaired
//   <topic>-<partition>/              one directory per partition log

import { join } from "node:path";
import { readCheckpoint, writeCheckpoint } from "./checkpoint.ts";
import { type Clock, type Disk, nodeDisk, systemClock } from "./disk.ts";
import { DEFAULT_LOG_CONFIG, type LogConfig } from "./log-config.ts";
import { PartitionLog } from "./partition-log.ts";

const RECOVERY_CHECKPOINT = "recovery-point-offset-checkpoint";
const CLEAN_SHUTDOWN = ".sluice_cleanshutdown";

export interface LogManagerDeps {
  readonly disk?: Disk;
  readonly clock?: Clock;
  /** Interval of the background retention/compaction/flush pass (log.retention.check.interval.ms). */
  readonly checkIntervalMs?: number;
  readonly onError?: (e: unknown, log: PartitionLog) => void;
}

export function logKey(topic: string, partition: number): string {
  return `${topic}-${partition}`;
}

export class LogManager {
  readonly logDirs: readonly string[];
  readonly defaults: LogConfig;
  private readonly disk: Disk;
  private readonly clock: Clock;
  private readonly logs = new Map<string, PartitionLog>();
  private readonly creating = new Map<string, Promise<PartitionLog>>();
  private readonly recoveryPoints = new Map<string, bigint>();
  private cleanShutdown = new Map<string, boolean>();
  private timer: NodeJS.Timeout | null = null;
  private passRunning = false;
  private readonly checkIntervalMs: number;
  private readonly onError: (e: unknown, log: PartitionLog) => void;

  private constructor(logDirs: readonly string[], defaults: LogConfig, deps: LogManagerDeps) {
    this.logDirs = logDirs;
    this.defaults = defaults;
    this.disk = deps.disk ?? nodeDisk;
    this.clock = deps.clock ?? systemClock;
    this.checkIntervalMs = deps.checkIntervalMs ?? 300_000;
    this.onError = deps.onError ?? (() => {});
  }

  /** Opens every partition log found in `logDirs` (recovering those not cleanly shut down). */
  static async open(
    logDirs: readonly string[],
    defaults: Partial<LogConfig> = {},
    deps: LogManagerDeps = {},
  ): Promise<LogManager> {
    const m = new LogManager(logDirs, { ...DEFAULT_LOG_CONFIG, ...defaults }, deps);
    await m.loadAll();
    return m;
  }

  private async loadAll(): Promise<void> {
    for (const dir of this.logDirs) {
      await this.disk.mkdir(dir);
      const clean = await this.disk.exists(join(dir, CLEAN_SHUTDOWN));
      this.cleanShutdown.set(dir, clean);
      await this.disk.unlink(join(dir, CLEAN_SHUTDOWN)).catch(() => {});
      for (const [topic, partition, offset] of await readCheckpoint(this.disk, join(dir, RECOVERY_CHECKPOINT))) {
        if (topic !== undefined && partition !== undefined && offset !== undefined) {
          this.recoveryPoints.set(logKey(topic, Number(partition)), BigInt(offset));
        }
      }
    }
  }

  /** Partition directories present on disk, as [topic, partition] (the broker decides which to open). */
  async listOnDisk(): Promise<{ topic: string; partition: number; dir: string }[]> {
    const out: { topic: string; partition: number; dir: string }[] = [];
    for (const dir of this.logDirs) {
      for (const name of await this.disk.readdir(dir)) {
        const m = /^(.+)-(\d+)$/.exec(name);
        if (m) out.push({ topic: m[1]!, partition: Number(m[2]), dir });
      }
    }
    return out;
  }

  getLog(topic: string, partition: number): PartitionLog | undefined {
    return this.logs.get(logKey(topic, partition));
  }

  listLogs(): PartitionLog[] {
    return [...this.logs.values()];
  }

  /** Opens the log of a partition, creating it in the emptiest log dir if it does not exist. */
  getOrCreateLog(topic: string, partition: number, overrides: Partial<LogConfig> = {}): Promise<PartitionLog> {
    const key = logKey(topic, partition);
    const existing = this.logs.get(key);
    if (existing) return Promise.resolve(existing);
    const pending = this.creating.get(key);
    if (pending) return pending;
    const p = (async () => {
      let dir = this.logDirs[0]!;
      for (const d of this.logDirs) {
        if (await this.disk.exists(join(d, key))) dir = d;
      }
      const clean = this.cleanShutdown.get(dir) ?? false;
      const log = await PartitionLog.open(
        join(dir, key),
        topic,
        partition,
        { ...this.defaults, ...overrides },
        { disk: this.disk, clock: this.clock },
        clean ? (this.recoveryPoints.get(key) ?? 0n) : null,
      );
      this.logs.set(key, log);
      return log;
    })().finally(() => this.creating.delete(key));
    this.creating.set(key, p);
    return p;
  }

  async deleteLog(topic: string, partition: number): Promise<void> {
    const key = logKey(topic, partition);
    const log = this.logs.get(key);
    this.logs.delete(key);
    if (log) await log.delete();
    else for (const d of this.logDirs) await this.disk.rmdir(join(d, key));
  }

  /** Starts the background pass (retention, compaction, flush.ms). */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.runBackgroundPass(), this.checkIntervalMs);
    this.timer.unref();
  }

  /** One pass over every log; each log's work runs in its own exclusive section, so appends interleave. */
  async runBackgroundPass(): Promise<void> {
    if (this.passRunning) return;
    this.passRunning = true;
    try {
      for (const log of [...this.logs.values()]) {
        try {
          await log.applyRetention();
          await log.compact();
          await log.maybeFlushByTime();
        } catch (e) {
          this.onError(e, log);
        }
        // Yield between logs so that request handling is never starved.
        await new Promise((r) => setImmediate(r));
      }
    } finally {
      this.passRunning = false;
    }
  }

  /** Flushes and closes every log, then writes recovery points and the clean-shutdown marker. */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    const byDir = new Map<string, string[][]>();
    for (const log of this.logs.values()) {
      await log.close();
      const dir = this.logDirs.find((d) => log.dir.startsWith(join(d, "/"))) ?? this.logDirs[0]!;
      const rows = byDir.get(dir) ?? [];
      rows.push([log.topic, String(log.partition), String(log.logEndOffset)]);
      byDir.set(dir, rows);
    }
    this.logs.clear();
    for (const dir of this.logDirs) {
      await writeCheckpoint(this.disk, join(dir, RECOVERY_CHECKPOINT), byDir.get(dir) ?? []);
      await this.disk.writeFileAtomic(join(dir, CLEAN_SHUTDOWN), new Uint8Array(0));
    }
  }
}
