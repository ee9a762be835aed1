// The benchmark suite (issue 9): runs every bench script one after another, each in its own
// process (BENCH_JSON → a temporary file, BENCH_SMOKE=1 in smoke mode; see bench/lib/report.ts),
// and prints one table on stdout: case, value, unit, ratio to the baseline of the same run,
// target and whether it is met. The scripts' own output goes to stderr.
//   npm run bench                      everything, full sizes (several minutes)
//   npm run bench -- --smoke           tiny sizes, well under a minute (CI: tests/bench-smoke.test.ts)
//   npm run bench -- --record          also replace the "Suite summary" section of bench/RESULTS.md
//   npm run bench -- --only latency,scale      a subset, by name
//   npm run bench -- --out path.json   where the run's JSON goes (default bench/results/<date>.json)
//   npm run bench -- --record-from path.json   record a saved run (e.g. one made in a clean export)
//
// A script that writes no report (it fails, times out, or is not on the report contract yet) is
// shown as "no report" and does not fail the suite — except, in smoke mode, the scripts listed in
// OWN below (those on the report contract whose cases tests/bench-smoke.test.ts checks): their
// breaking is what the smoke test is for. Scripts that do not import bench/lib/report.ts are
// skipped in smoke mode, as they cannot run small.

import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { type BenchReport, type BenchRow, machine } from "./lib/report.ts";

const ROOT = resolve(import.meta.dirname, "..");

interface Script {
  name: string;
  file: string;
}

/** In the order they run: baselines first, then bottom-up through the layers. */
export const SCRIPTS: readonly Script[] = [
  "baselines",
  "storage",
  "broker",
  "client",
  "latency",
  "scale",
  "protocol",
  "records",
  "groups",
].map((name) => ({ name, file: `bench/${name}.ts` }));

/** The scripts whose report the smoke run requires. */
export const OWN = new Set(["baselines", "latency", "scale", "protocol", "records", "groups"]);

export interface ScriptResult {
  name: string;
  file: string;
  status: "ok" | "no report" | "failed" | "timeout" | "skipped";
  exitCode: number | null;
  seconds: number;
  detail?: string;
  report: BenchReport | null;
}

export interface SuiteRun {
  date: string;
  smoke: boolean;
  command: string;
  machine: BenchReport["machine"];
  seconds: number;
  /** 1-minute load average at the start and at the end (other tenants' load shows here). */
  loadAverage: [number, number];
  scripts: ScriptResult[];
}

interface Options {
  smoke: boolean;
  record: boolean;
  recordFrom: string | null;
  only: Set<string> | null;
  out: string | null;
}

function parseArgs(argv: string[]): Options {
  const opts: Options = {
    smoke: process.env.BENCH_SMOKE === "1",
    record: false,
    recordFrom: null,
    only: null,
    out: null,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--smoke") opts.smoke = true;
    else if (a === "--record") opts.record = true;
    else if (a === "--only") opts.only = new Set((argv[++i] ?? "").split(",").filter(Boolean));
    else if (a === "--out") opts.out = argv[++i] ?? null;
    else if (a === "--record-from") opts.recordFrom = argv[++i] ?? null;
    else
      throw new Error(
        `bench/run.ts: unknown argument ${a} (--smoke, --record, --record-from file, --only a,b, --out file)`,
      );
  }
  return opts;
}

let current: number | null = null; // process group of the running script

function killGroup(pid: number): void {
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    // already gone
  }
}

/** Runs one script in its own process group (so a broker it started dies with it on a timeout). */
async function runScript(s: Script, smoke: boolean, timeoutMs: number): Promise<ScriptResult> {
  const source = readFileSync(join(ROOT, s.file), "utf8");
  const onContract = source.includes("lib/report.ts");
  const base = { name: s.name, file: s.file, exitCode: null, seconds: 0, report: null };
  if (smoke && !onContract)
    return { ...base, status: "skipped", detail: "does not use bench/lib/report.ts yet, so cannot run small" };
  const tmp = mkdtempSync(join(tmpdir(), "sluice-bench-run-"));
  const jsonPath = join(tmp, "report.json");
  const env: NodeJS.ProcessEnv = { ...process.env, BENCH_JSON: jsonPath };
  if (smoke) env.BENCH_SMOKE = "1";
  else delete env.BENCH_SMOKE;
  const started = performance.now();
  const child = spawn(process.execPath, [s.file], {
    cwd: ROOT,
    env,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  current = child.pid ?? null;
  const prefix = (d: Buffer): void => {
    for (const line of d.toString().split("\n")) if (line) process.stderr.write(`[${s.name}] ${line}\n`);
  };
  child.stdout.on("data", prefix);
  child.stderr.on("data", prefix);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    if (child.pid) killGroup(child.pid);
  }, timeoutMs);
  const exitCode = await new Promise<number | null>((r) => child.once("close", (code) => r(code)));
  clearTimeout(timer);
  // Whatever the script left running (a broker it did not stop) goes with its group.
  if (child.pid) killGroup(child.pid);
  current = null;
  const seconds = (performance.now() - started) / 1000;
  let report: BenchReport | null = null;
  try {
    report = JSON.parse(readFileSync(jsonPath, "utf8")) as BenchReport;
  } catch {
    report = null;
  }
  rmSync(tmp, { recursive: true, force: true });
  const result = { ...base, exitCode, seconds, report };
  if (timedOut) return { ...result, status: "timeout", detail: `killed after ${timeoutMs / 1000} s` };
  if (exitCode !== 0) return { ...result, status: "failed", detail: `exit code ${exitCode}` };
  if (!report)
    return {
      ...result,
      status: "no report",
      detail: onContract ? "wrote no report" : "not on the report contract yet",
    };
  return { ...result, status: "ok" };
}

function better(r: BenchRow): "higher" | "lower" {
  return r.better ?? (r.unit.includes("/s") ? "higher" : "lower");
}

function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a >= 1000) return Math.round(v).toLocaleString("en-US");
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

/** The target column and whether it is met ("—" where the row has no target). */
function target(r: BenchRow): [string, string] {
  const cmp = better(r) === "lower" ? "≤" : "≥";
  if (r.target !== undefined && r.ratio !== undefined) {
    const met = better(r) === "lower" ? r.ratio <= r.target : r.ratio >= r.target;
    return [`${cmp} ${r.target}×`, met ? "yes" : "no"];
  }
  if (r.targetValue !== undefined) {
    const met = better(r) === "lower" ? r.value <= r.targetValue : r.value >= r.targetValue;
    return [`${cmp} ${fmt(r.targetValue)} ${r.unit}`, met ? "yes" : "no"];
  }
  return ["—", "—"];
}

export function table(run: SuiteRun): string {
  const lines = [
    "| bench | case | value | unit | ratio | target | met? |",
    "| --- | --- | ---: | --- | ---: | --- | --- |",
  ];
  for (const s of run.scripts) {
    if (s.status === "skipped") continue;
    if (!s.report) {
      lines.push(`| ${s.name} | no report (${s.detail ?? s.status}) | | | | | |`);
      continue;
    }
    for (const r of s.report.rows) {
      const ratio = r.ratio === undefined ? "—" : `${r.ratio.toFixed(2)}×`;
      const [t, met] = target(r);
      lines.push(`| ${s.name} | ${r.case} | ${fmt(r.value)} | ${r.unit} | ${ratio} | ${t} | ${met} |`);
    }
    if (s.status !== "ok") lines.push(`| ${s.name} | (${s.status}: ${s.detail ?? ""}) | | | | | |`);
  }
  return lines.join("\n");
}

/** Replaces (or adds, after "How to run the suite") the "Suite summary" section of RESULTS.md. */
function record(run: SuiteRun): void {
  const path = join(ROOT, "bench/RESULTS.md");
  const md = readFileSync(path, "utf8");
  const m = run.machine;
  const ran = run.scripts.filter((s) => s.status !== "skipped").map((s) => s.name);
  const section = [
    "## Suite summary",
    "",
    `Command: \`${run.command}\` — ${run.date.slice(0, 10)}, ${m.cores} cores (${m.cpu}), ${m.memoryGiB} GiB, Node ${m.node}; ${run.seconds.toFixed(0)} s for ${ran.join(", ")}; load average ${run.loadAverage.map((l) => l.toFixed(1)).join(" → ")} (1 min, start → end).`,
    "Ratios are to a baseline measured in the same run; targets are goals, never test assertions.",
    "",
    table(run),
    "",
    "",
  ].join("\n");
  const start = md.indexOf("\n## Suite summary\n");
  let out: string;
  if (start >= 0) {
    const next = md.indexOf("\n## ", start + 1);
    out = md.slice(0, start + 1) + section + (next >= 0 ? md.slice(next + 1) : "");
  } else {
    const how = md.indexOf("\n## How to run the suite\n");
    const after = how >= 0 ? md.indexOf("\n## ", how + 1) : md.indexOf("\n## ");
    out = after >= 0 ? md.slice(0, after + 1) + section + md.slice(after + 1) : `${md}\n${section}`;
  }
  writeFileSync(path, out);
}

async function main(): Promise<number> {
  const opts = parseArgs(process.argv.slice(2));
  for (const signal of ["SIGINT", "SIGTERM"] as const)
    process.on(signal, () => {
      if (current !== null) killGroup(current);
      process.exit(130);
    });
  if (opts.recordFrom) {
    const saved = JSON.parse(readFileSync(opts.recordFrom, "utf8")) as SuiteRun;
    if (saved.smoke) throw new Error("bench/run.ts: smoke figures mean nothing and are never recorded");
    record(saved);
    console.log(table(saved));
    return 0;
  }
  if (opts.record && opts.smoke) throw new Error("bench/run.ts: smoke figures mean nothing and are never recorded");
  const scripts = SCRIPTS.filter((s) => !opts.only || opts.only.has(s.name));
  if (opts.only)
    for (const n of opts.only) if (!SCRIPTS.some((s) => s.name === n)) throw new Error(`no bench script ${n}`);
  const timeoutMs = opts.smoke ? 20_000 : 30 * 60_000;
  const started = performance.now();
  const loadAtStart = loadavg()[0] ?? 0;
  const date = new Date().toISOString();
  const results: ScriptResult[] = [];
  for (const s of scripts) {
    process.stderr.write(`== ${s.name} (${s.file})${opts.smoke ? ", smoke" : ""}\n`);
    const r = await runScript(s, opts.smoke, timeoutMs);
    process.stderr.write(`== ${s.name}: ${r.status}${r.detail ? ` (${r.detail})` : ""}, ${r.seconds.toFixed(1)} s\n`);
    results.push(r);
  }
  const args = process.argv.slice(2).join(" ");
  const run: SuiteRun = {
    date,
    smoke: opts.smoke,
    command: `npm run bench${args ? ` -- ${args}` : ""}`,
    machine: machine(),
    seconds: (performance.now() - started) / 1000,
    loadAverage: [loadAtStart, loadavg()[0] ?? 0],
    scripts: results,
  };
  const out =
    opts.out ??
    join(ROOT, "bench/results", `${date.replace(/:/g, "-").slice(0, 19)}${opts.smoke ? "-smoke" : ""}.json`);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(run, null, 2)}\n`);
  console.log(table(run));
  const skipped = results.filter((s) => s.status === "skipped").map((s) => s.name);
  if (skipped.length) console.log(`\nskipped (not on the report contract, cannot run small): ${skipped.join(", ")}`);
  console.log(`\n${run.seconds.toFixed(1)} s; results in ${out}`);
  if (opts.record) record(run);
  const broken = results.filter((s) => opts.smoke && OWN.has(s.name) && s.status !== "ok");
  for (const s of broken) process.stderr.write(`bench ${s.name} is broken: ${s.status} (${s.detail ?? ""})\n`);
  return broken.length > 0 ? 1 : 0;
}

if (import.meta.main) process.exit(await main());
