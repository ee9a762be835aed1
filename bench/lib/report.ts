// The contract between a benchmark script and the suite runner (bench/run.ts).
//
// Every bench script runs standalone (`node bench/<name>.ts`) and prints a table. When the runner
// starts it, two environment variables shape the run:
//   BENCH_SMOKE=1    a few seconds at most: tiny sizes, so CI proves the benchmark still works
//                    (the figures of a smoke run mean nothing and are never recorded);
//   BENCH_JSON=path  at the end, write the results there as a `BenchReport` (JSON).
import { writeFileSync } from "node:fs";
import os from "node:os";

/** One measured case. `ratio` is value ÷ baseline, where the case has a baseline in the same run. */
export interface BenchRow {
  case: string;
  value: number;
  unit: string;
  baseline?: { case: string; value: number; unit: string };
  ratio?: number;
  /** The target for the ratio (a goal, never asserted). */
  target?: number;
  /** A target on the value itself, in `unit`, where the issue states one that way (e.g. p99 ≤ 2 ms). */
  targetValue?: number;
  /** Which way is better, for judging a target: "higher" (throughput) or "lower" (latency, time, memory). */
  better?: "higher" | "lower";
  note?: string;
}

export interface BenchReport {
  bench: string;
  date: string;
  machine: { cores: number; memoryGiB: number; node: string; cpu: string };
  smoke: boolean;
  rows: BenchRow[];
}

export const smoke = process.env.BENCH_SMOKE === "1";

export function machine(): BenchReport["machine"] {
  return {
    cores: os.cpus().length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    cpu: os.cpus()[0]?.model.trim() ?? "unknown",
  };
}

/** A row with its ratio to a baseline measured in the same run. */
export function ratioRow(
  name: string,
  value: number,
  unit: string,
  baseline: { case: string; value: number; unit: string },
  target?: number,
  better?: "higher" | "lower",
): BenchRow {
  const row: BenchRow = { case: name, value, unit, baseline, ratio: baseline.value > 0 ? value / baseline.value : 0 };
  if (target !== undefined) row.target = target;
  if (better !== undefined) row.better = better;
  return row;
}

/** Writes the report to BENCH_JSON when the runner asked for one; returns it either way. */
export function report(bench: string, rows: BenchRow[]): BenchReport {
  const r: BenchReport = { bench, date: new Date().toISOString(), machine: machine(), smoke, rows };
  const path = process.env.BENCH_JSON;
  if (path) writeFileSync(path, `${JSON.stringify(r, null, 2)}\n`);
  return r;
}
