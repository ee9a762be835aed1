// The benchmark suite still works: `bench/run.ts --smoke` (tiny sizes) exits 0, and each suite
// script produces a report with its cases and finite, positive values. A benchmark that rots —
// stops running, drops a case, measures nothing — fails here. No performance is asserted: smoke
// figures mean nothing. Other owners' scripts are checked only when they produced a report.

import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { test } from "node:test";
import type { BenchRow } from "../bench/lib/report.ts";
import type { SuiteRun } from "../bench/run.ts";
import { run } from "./helpers/broker-process.ts";

const ROOT = resolve(import.meta.dirname, "..");

/** The cases each suite script must report (a pattern per case). */
/** latency.ts reads the consumer's and the broker's CPU from /proc, so those rows are Linux-only. */
const OTHER_PROCESS_CPU = (label: string): RegExp[] =>
  process.platform === "linux"
    ? [new RegExp(`^${label}: CPU of the consumer process$`), new RegExp(`^${label}: CPU of the broker process$`)]
    : [];

const EXPECTED: Record<string, RegExp[]> = {
  baselines: [
    /^loopback socket pump \(1 MiB writes\)$/,
    /^100 B request\/response frames, 16 in flight$/,
    /^64 B ping-pong round trip p50$/,
    /^64 B ping-pong round trip p99$/,
    /^sequential disk write \(1 MiB writes\)$/,
    /^sequential disk write, fdatasync every 16 MiB$/,
  ],
  latency: [
    /^unloaded produce p50 \(client/,
    /^unloaded produce p99 \(client/,
    /^unloaded produce p50 \(raw request/,
    /^unloaded produce p99 \(raw request/,
    /^max produce→consume rate/,
    /^e2e latency at 50 % of max rate p50/,
    /^e2e latency at 50 % of max rate p99 /,
    /^e2e latency at 50 % of max rate p99\.9/,
    /^e2e at 50 % of max: CPU of the generator process$/,
    ...OTHER_PROCESS_CPU("e2e at 50 % of max"),
    /^achieved rate at 50 % of max/,
    /^OMB 16 partitions, 1 KiB, \d+ records\/s: achieved rate$/,
    /^OMB consumed rate$/,
    /^OMB e2e latency p50$/,
    /^OMB e2e latency p99$/,
    /^OMB e2e latency p99\.9$/,
    /^OMB publish latency p50$/,
    /^OMB publish latency p99$/,
    /^OMB: CPU of the generator process$/,
    ...OTHER_PROCESS_CPU("OMB"),
  ],
  scale: [
    /^empty broker start-to-ready/,
    /^empty broker idle RSS$/,
    /^Metadata \(all topics\), empty broker, p50$/,
    /^create \d+ partitions/,
    /^Metadata \(all topics\) p50, \d+ partitions$/,
    /^Metadata \(all topics\) p99, \d+ partitions$/,
    /^idle RSS, \d+ partitions$/,
    /^shutdown \(SIGTERM → exit\)/,
    /^restart to ready \(ApiVersions\)/,
    /^restart until Metadata lists every partition with a leader/,
  ],
  protocol: [
    /^baseline: Buffer\.concat of the record bytes$/,
    /^Produce v9 encode \(chunks, no copy\)$/,
    /^Produce v9 decode \(zero copy\)$/,
    /^Produce v7 encode \(contiguous\)$/,
    /^Fetch v12 response encode \(chunks\)$/,
    /^Fetch v12 response decode$/,
    /^CRC32C of the record bytes \(native @node-rs\/crc32\)$/,
    /^CRC32C of the record bytes \(pure TypeScript fallback\)$/,
  ],
  records: [
    /^baseline: memcpy of \d+ [KM]iB$/,
    /^CRC32C native @node-rs\/crc32, \d+ [KM]iB$/,
    /^CRC32C pure TypeScript fallback, \d+ [KM]iB$/,
    /^baseline: CRC32C of \d+ [KM]iB$/,
    ...["none", "gzip", "snappy", "lz4", "zstd"].flatMap((codec) => [
      new RegExp(`^${codec} batch build, \\d+ × 1 KiB records$`),
      new RegExp(`^${codec} batch parse, \\d+ × 1 KiB records$`),
    ]),
  ],
  groups: [
    /^\d+ kafkajs members stabilise$/,
    /^OffsetCommit requests\/s \(1 connection, 16 in flight, persisted to __consumer_offsets\)$/,
    /^OffsetCommit requests\/s, fsync before each acknowledgement \(sluice\.fsync\.before\.ack=true\)$/,
  ],
};

test("the bench suite runs in smoke mode and every suite script reports its cases", { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "sluice-bench-smoke-"));
  try {
    const out = join(dir, "run.json");
    const r = await run(process.execPath, [join(ROOT, "bench/run.ts"), "--smoke", "--out", out], {
      timeoutMs: 110_000,
      env: { ...process.env, BENCH_SMOKE: "1" },
    });
    assert.equal(r.status, 0, `bench/run.ts --smoke failed:\n${r.stderr.slice(-4000)}`);
    const suite = JSON.parse(readFileSync(out, "utf8")) as SuiteRun;
    assert.equal(suite.smoke, true);
    assert.match(r.stdout, /\| bench \| case \| value \| unit \| ratio \| target \| met\? \|/);

    for (const [name, cases] of Object.entries(EXPECTED)) {
      const script = suite.scripts.find((s) => s.name === name);
      assert.ok(script, `${name} did not run`);
      assert.equal(script.status, "ok", `${name}: ${script.status} ${script.detail ?? ""}`);
      const rep = script.report;
      assert.ok(rep, `${name} wrote no report`);
      assert.equal(rep.bench, name);
      assert.equal(rep.smoke, true, `${name} did not see BENCH_SMOKE`);
      for (const pattern of cases) {
        const rows: BenchRow[] = rep.rows.filter((row) => pattern.test(row.case));
        assert.equal(rows.length, 1, `${name}: expected one case matching ${pattern}, got ${rows.length}`);
      }
      assert.equal(
        rep.rows.length,
        cases.length,
        `${name}: unexpected cases ${rep.rows.map((x) => x.case).join("; ")}`,
      );
      for (const row of rep.rows) {
        assert.ok(Number.isFinite(row.value) && row.value > 0, `${name}: ${row.case} = ${row.value}`);
        assert.ok(row.unit.length > 0, `${name}: ${row.case} has no unit`);
        if (row.baseline) {
          assert.ok(row.baseline.value > 0 && Number.isFinite(row.baseline.value), `${name}: ${row.case} baseline`);
          assert.ok(Number.isFinite(row.ratio) && (row.ratio as number) > 0, `${name}: ${row.case} ratio ${row.ratio}`);
        }
        assert.match(
          r.stdout,
          new RegExp(`\\| ${name} \\| ${escapeRegExp(row.case)} \\|`),
          `${row.case} missing from the table`,
        );
      }
    }

    // Other owners' scripts: only what they reported, and only that it is well-formed.
    for (const script of suite.scripts) {
      if (EXPECTED[script.name] || !script.report) continue;
      assert.ok(script.report.rows.length > 0, `${script.name} reported no rows`);
      for (const row of script.report.rows)
        assert.ok(Number.isFinite(row.value), `${script.name}: ${row.case} = ${row.value} is not a number`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
