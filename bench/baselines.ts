// Benchmark (not a test): the machine's own baselines, with none of our code — loopback socket
// throughput, small request/response frames, 64 B ping-pong round trips, sequential disk writes
// with and without fdatasync. The other scripts measure the baselines they need in their own run
// (bench/lib/baselines.ts); this script records them side by side.
//   ./node_modules/.bin/node bench/baselines.ts        (BENCH_SMOKE=1: tiny sizes; BENCH_JSON=path)

import { diskWrite, frames, pingPong, socketPump } from "./lib/baselines.ts";
import { type BenchRow, machine, report, smoke } from "./lib/report.ts";

const SECONDS = smoke ? 0.3 : 2;
const ROUND_TRIPS = smoke ? 500 : 20_000;
const DISK_MIB = smoke ? 32 : 512;

const rows: BenchRow[] = [];
const add = (name: string, value: number, unit: string, better: "higher" | "lower"): void => {
  rows.push({ case: name, value, unit, better });
  console.error(`${name}: ${value.toFixed(1)} ${unit}`);
};

add("loopback socket pump (1 MiB writes)", await socketPump(SECONDS), "MB/s", "higher");
add("100 B request/response frames, 16 in flight", await frames(SECONDS), "frames/s", "higher");
const pp = await pingPong(ROUND_TRIPS);
add("64 B ping-pong round trip p50", pp.p50Us, "µs", "lower");
add("64 B ping-pong round trip p99", pp.p99Us, "µs", "lower");
add("sequential disk write (1 MiB writes)", diskWrite(DISK_MIB, null), "MB/s", "higher");
add("sequential disk write, fdatasync every 16 MiB", diskWrite(DISK_MIB, 16), "MB/s", "higher");

report("baselines", rows);
const m = machine();
console.log(`baselines — ${m.cores} cores, ${m.memoryGiB} GiB, ${m.cpu}, Node ${m.node}${smoke ? " (smoke)" : ""}`);
console.log("| case | value | unit |");
console.log("| --- | ---: | --- |");
for (const r of rows) console.log(`| ${r.case} | ${r.value.toFixed(1)} | ${r.unit} |`);
