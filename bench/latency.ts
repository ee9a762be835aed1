// Benchmark (not a test): latency of the broker (a separate process) driven by our client.
//   ./node_modules/.bin/node bench/latency.ts          (BENCH_SMOKE=1: tiny sizes; BENCH_JSON=path)
//   BENCH_E2E_RATE=n: the fixed-rate e2e case at n records/s instead of half the measured maximum
//   BENCH_CASES: a comma-separated subset of unloaded,max,half,omb (half without max needs
//   BENCH_E2E_RATE)
//
// - Unloaded produce: one 100 B record at a time (acks=1), p50/p99, through our Producer and as a
//   raw Produce request over one connection, each as a ratio to a 64 B ping-pong round trip with
//   a second Node process (the floor for any request/response over loopback). Target ≤ 2×.
// - End-to-end produce→consume at a fixed rate of 50 % of the measured maximum (1 KiB records,
//   1 partition). Without coordinated omission: record i is due at t0 + i/rate; its latency runs
//   from that intended time (not from when the generator got round to sending it) to the moment
//   the consumer hands it out, so a stall anywhere counts for every record it delays. Every sample
//   is kept (exact p50/p99/p99.9). Target p99 ≤ 2 ms.
// - OpenMessaging-style workload: 1 topic, 16 partitions, 1 KiB records, 50 000 records/s for a
//   fixed duration: achieved (acked) and consumed rates, end-to-end and publish (send → ack)
//   latency percentiles.
// The broker has its own process. The producer (and the closed-loop case's consumer) run in this
// one; the fixed-rate cases' consumer runs in a third (bench/lib/latency-consumer.ts), with due and
// delivery times on the shared epoch clock (performance.timeOrigin + now): one thread producing,
// consuming and keeping the schedule at tens of thousands of records/s fell behind by itself.

import { fork } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Admin, Connection, Consumer, Producer } from "../packages/client/src/index.ts";
import { ApiKey, decodeProduceResponse, encodeProduceRequest } from "../packages/protocol/src/index.ts";
import { buildRecordBatch } from "../packages/protocol/src/records/record-batch.ts";
import { startBrokerProcess } from "../tests/helpers/broker-process.ts";
import { pingPong } from "./lib/baselines.ts";
import { type BenchRow, machine, ratioRow, report, smoke } from "./lib/report.ts";
import { Samples, sleep } from "./lib/stats.ts";

const UNLOADED = smoke ? 200 : 5000;
const MAX_SECONDS = smoke ? 0.5 : 5;
const HALF_SECONDS = smoke ? 1 : 10;
const OMB_RATE = smoke ? 5000 : 50_000;
const OMB_SECONDS = smoke ? 1 : 20;
const WARMUP_SECONDS = smoke ? 0.2 : 2;
const RECORD_BYTES = 1024;
/**
 * An achieved rate counts the acks (or deliveries) inside the measured window, so the records in
 * flight at its two edges move it by a few hundredths of a percent either way: the rate is met
 * within 0.5 %.
 */
const RATE_TOLERANCE = 0.995;
const RATE_NOTE = "the set rate, within 0.5 % (records in flight at the window's edges)";
/** The longest blocking wait in the fixed-rate generator (see fixedRate), and what it waits on. */
const MAX_BLOCK_MS = 0.1;
const BLOCKER = new Int32Array(new SharedArrayBuffer(4));
/** Most sends awaiting their ack; beyond it the generator waits (due times keep counting). */
const OUTSTANDING_MAX = 20_000;

const CASES = new Set((process.env.BENCH_CASES ?? "unloaded,max,half,omb").split(","));
if (CASES.has("half") && !CASES.has("max") && process.env.BENCH_E2E_RATE === undefined)
  throw new Error("BENCH_CASES: half without max needs BENCH_E2E_RATE");

const rows: BenchRow[] = [];
const log = (s: string): void => console.error(s);

type Baseline = NonNullable<BenchRow["baseline"]>;

/** The ping-pong baseline, measured right before the case it anchors (the machine's load drifts). */
async function pingPongBaseline(): Promise<{ p50: Baseline; p99: Baseline }> {
  const pp = await pingPong(smoke ? 500 : 20_000);
  log(`ping-pong p50 ${pp.p50Us.toFixed(1)} µs, p99 ${pp.p99Us.toFixed(1)} µs`);
  return {
    p50: { case: "64 B ping-pong round trip p50", value: pp.p50Us, unit: "µs" },
    p99: { case: "64 B ping-pong round trip p99", value: pp.p99Us, unit: "µs" },
  };
}

const broker = await startBrokerProcess({ config: { "num.partitions": "1" } });
const bootstrap = broker.bootstrap;
const admin = new Admin({ bootstrapServers: bootstrap });
const lowLatencyProducer = (): Producer =>
  new Producer({ bootstrapServers: bootstrap, acks: 1, enableIdempotence: false, lingerMs: 0 });
const consumerOf = (topic: string, partitions: number): Consumer => {
  const c = new Consumer({
    bootstrapServers: bootstrap,
    isolationLevel: "read_uncommitted",
    maxPollRecords: 10_000,
    fetchMaxWaitMs: 500,
  });
  c.assign(Array.from({ length: partitions }, (_, partition) => ({ topic, partition, offset: 0n })));
  return c;
};

try {
  await admin.createTopics([
    { name: "lat-unloaded", numPartitions: 1 },
    { name: "lat-raw", numPartitions: 1 },
    { name: "lat-max", numPartitions: 1 },
    { name: "lat-half", numPartitions: 1 },
    { name: "lat-omb", numPartitions: 16 },
  ]);
  // ---- unloaded produce, our client ----
  if (CASES.has("unloaded")) {
    const p = lowLatencyProducer();
    const value = Buffer.alloc(100, 1);
    for (let i = 0; i < Math.min(500, UNLOADED); i++) await p.send({ topic: "lat-unloaded", partition: 0, value });
    const pp = await pingPongBaseline();
    const s = new Samples();
    for (let i = 0; i < UNLOADED; i++) {
      const t = performance.now();
      await p.send({ topic: "lat-unloaded", partition: 0, value });
      s.add((performance.now() - t) * 1000);
    }
    await p.close();
    rows.push(ratioRow("unloaded produce p50 (client, acks=1, 100 B)", s.quantile(0.5), "µs", pp.p50, 2, "lower"));
    rows.push(ratioRow("unloaded produce p99 (client, acks=1, 100 B)", s.quantile(0.99), "µs", pp.p99, 2, "lower"));
    log(`unloaded produce (client): p50 ${s.quantile(0.5).toFixed(0)} µs, p99 ${s.quantile(0.99).toFixed(0)} µs`);
  }

  // ---- unloaded produce, a raw Produce request over one connection ----
  if (CASES.has("unloaded")) {
    const conn = await Connection.open("127.0.0.1", broker.port, {
      clientId: "bench-latency",
      requestTimeoutMs: 30_000,
      connectTimeoutMs: 10_000,
    });
    const value = Buffer.alloc(100, 1);
    const once = async (): Promise<void> => {
      const records = buildRecordBatch({ records: [{ value }] });
      const res = await conn.request(
        ApiKey.Produce,
        [3, 9],
        (w, v) =>
          encodeProduceRequest(
            w,
            {
              transactionalId: null,
              acks: 1,
              timeoutMs: 30_000,
              topicData: [{ name: "lat-raw", partitionData: [{ index: 0, records }] }],
            },
            v,
          ),
        decodeProduceResponse,
      );
      const code = res.responses[0]?.partitionResponses[0]?.errorCode;
      if (code !== 0) throw new Error(`raw Produce failed with error code ${code}`);
    };
    for (let i = 0; i < Math.min(500, UNLOADED); i++) await once();
    const pp = await pingPongBaseline();
    const s = new Samples();
    for (let i = 0; i < UNLOADED; i++) {
      const t = performance.now();
      await once();
      s.add((performance.now() - t) * 1000);
    }
    conn.close();
    rows.push(ratioRow("unloaded produce p50 (raw request, acks=1, 100 B)", s.quantile(0.5), "µs", pp.p50, 2, "lower"));
    rows.push(
      ratioRow("unloaded produce p99 (raw request, acks=1, 100 B)", s.quantile(0.99), "µs", pp.p99, 2, "lower"),
    );
    log(`unloaded produce (raw): p50 ${s.quantile(0.5).toFixed(0)} µs, p99 ${s.quantile(0.99).toFixed(0)} µs`);
  }

  // ---- maximum produce→consume rate (closed loop), 1 KiB records, 1 partition ----
  const maxRate = CASES.has("max") ? await closedLoopRate("lat-max", MAX_SECONDS) : Number.NaN;
  if (CASES.has("max")) {
    rows.push({
      case: "max produce→consume rate (1 KiB, 1 partition)",
      value: maxRate,
      unit: "records/s",
      better: "higher",
    });
    log(`max produce→consume rate: ${Math.round(maxRate)} records/s`);
  }

  // ---- fixed rate at 50 % of the maximum ----
  if (CASES.has("half")) {
    const half = Number(process.env.BENCH_E2E_RATE ?? Math.max(100, Math.round(maxRate / 2)));
    const h = await fixedRate("lat-half", 1, half, HALF_SECONDS, { lingerMs: 0 });
    const note = `at ${half} records/s${process.env.BENCH_E2E_RATE ? "" : " (50 % of max)"}; from send(): p50 ${h.fromSend.quantile(0.5).toFixed(2)} ms, p99 ${h.fromSend.quantile(0.99).toFixed(2)} ms; publish (due → ack): p50 ${h.publish.quantile(0.5).toFixed(2)} ms, p99 ${h.publish.quantile(0.99).toFixed(2)} ms`;
    for (const [label, q] of [
      ["p50", 0.5],
      ["p99", 0.99],
      ["p99.9", 0.999],
    ] as const) {
      const row: BenchRow = {
        case: `e2e latency at 50 % of max rate ${label} (1 KiB, 1 partition)`,
        value: h.e2e.quantile(q),
        unit: "ms",
        better: "lower",
        note,
      };
      if (label === "p99") row.targetValue = 2;
      rows.push(row);
    }
    rows.push(...cpuRows("e2e at 50 % of max", h.cores));
    rows.push({
      case: "achieved rate at 50 % of max",
      value: h.achieved,
      unit: "records/s",
      better: "higher",
      targetValue: half * RATE_TOLERANCE,
      note: RATE_NOTE,
    });
    log(
      `half load (${half}/s): e2e p50 ${h.e2e.quantile(0.5).toFixed(2)} ms, p99 ${h.e2e.quantile(0.99).toFixed(2)} ms`,
    );
  }

  // ---- OpenMessaging-style workload ----
  if (CASES.has("omb")) {
    const o = await fixedRate("lat-omb", 16, OMB_RATE, OMB_SECONDS, { lingerMs: 1 });
    rows.push({
      case: `OMB 16 partitions, 1 KiB, ${OMB_RATE} records/s: achieved rate`,
      value: o.achieved,
      unit: "records/s",
      better: "higher",
      targetValue: OMB_RATE * RATE_TOLERANCE,
      note: RATE_NOTE,
    });
    rows.push({
      case: "OMB consumed rate",
      value: o.consumed,
      unit: "records/s",
      better: "higher",
      targetValue: OMB_RATE * RATE_TOLERANCE,
      note: RATE_NOTE,
    });
    for (const [label, q] of [
      ["p50", 0.5],
      ["p99", 0.99],
      ["p99.9", 0.999],
    ] as const)
      rows.push({ case: `OMB e2e latency ${label}`, value: o.e2e.quantile(q), unit: "ms", better: "lower" });
    for (const [label, q] of [
      ["p50", 0.5],
      ["p99", 0.99],
    ] as const)
      rows.push({ case: `OMB publish latency ${label}`, value: o.publish.quantile(q), unit: "ms", better: "lower" });
    rows.push(...cpuRows("OMB", o.cores));
    log(
      `OMB: achieved ${Math.round(o.achieved)}/s, consumed ${Math.round(o.consumed)}/s, e2e p99 ${o.e2e.quantile(0.99).toFixed(2)} ms`,
    );
  }
} finally {
  await admin.close();
  await broker.stop();
  await broker.cleanup();
}

/** Sends 1 KiB records as fast as the window allows while a consumer drains: consumed records/s. */
async function closedLoopRate(topic: string, seconds: number): Promise<number> {
  const p = new Producer({ bootstrapServers: bootstrap, acks: 1, enableIdempotence: false, lingerMs: 1 });
  const c = consumerOf(topic, 1);
  const value = Buffer.alloc(RECORD_BYTES, 7);
  let consumed = 0;
  let stop = false;
  // The first WARMUP_SECONDS (connections, JIT, the pipeline filling up) are not counted.
  const start = performance.now() + WARMUP_SECONDS * 1000;
  const end = start + seconds * 1000;
  const draining = (async () => {
    while (!stop) {
      const n = (await c.poll(100)).length;
      if (performance.now() >= start) consumed += n;
    }
  })();
  let outstanding = 0;
  let wake: (() => void) | null = null;
  while (performance.now() < end) {
    if (outstanding >= 5000) {
      await new Promise<void>((r) => {
        wake = r;
      });
      continue;
    }
    outstanding++;
    void p.send({ topic, partition: 0, value }).finally(() => {
      outstanding--;
      if (outstanding < 2500 && wake) {
        const w = wake;
        wake = null;
        w();
      }
    });
    if (outstanding % 100 === 0) await new Promise((r) => setImmediate(r));
  }
  const rate = consumed / ((performance.now() - start) / 1000);
  stop = true;
  await draining;
  await p.flush();
  await p.close();
  await c.close();
  return rate;
}

/** The consumer of a fixed-rate case in its own process (bench/lib/latency-consumer.ts). */
function startConsumerProcess(
  topic: string,
  partitions: number,
): {
  pid: number;
  ready: Promise<void>;
  finish(expect: number): Promise<{ received: number; triples: Float64Array }>;
} {
  const out = join(mkdtempSync(join(tmpdir(), "sluice-lat-")), "samples.f64");
  const child = fork(fileURLToPath(new URL("./lib/latency-consumer.ts", import.meta.url)), [
    bootstrap,
    topic,
    String(partitions),
    out,
  ]);
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  const ready = new Promise<void>((resolve, reject) => {
    child.once("message", (m) => (m === "ready" ? resolve() : reject(new Error(`consumer said ${String(m)}`))));
    void exited.then((code) => reject(new Error(`consumer process exited with ${code} before it was ready`)));
  });
  return {
    pid: child.pid ?? -1,
    ready,
    async finish(expect) {
      const done = new Promise<number>((resolve) =>
        child.on("message", (m: { received?: number }) => {
          if (typeof m === "object" && m !== null && typeof m.received === "number") resolve(m.received);
        }),
      );
      child.send({ expect });
      const received = await Promise.race([done, exited.then(() => -1)]);
      const code = await exited;
      if (received < 0 || code !== 0) throw new Error(`consumer process failed (exit code ${code})`);
      const bytes = readFileSync(out);
      rmSync(dirname(out), { recursive: true, force: true });
      // Copied: a Buffer from readFileSync need not be 8-byte aligned.
      const triples = new Float64Array(Math.floor(bytes.byteLength / 8));
      new Uint8Array(triples.buffer).set(bytes.subarray(0, triples.byteLength));
      return { received, triples };
    },
  };
}

interface FixedRateResult {
  e2e: Samples;
  fromSend: Samples;
  publish: Samples;
  /** Acks per second in the measured window. */
  achieved: number;
  /** Records handed out by the consumer per second in the measured window. */
  consumed: number;
  /** CPU used in the measured window, in cores (CPU seconds per second). */
  cores: { generator: number; consumer: number; broker: number };
}

/** Rows with the CPU each process used in a fixed-rate case's measured window. */
function cpuRows(label: string, cores: FixedRateResult["cores"]): BenchRow[] {
  // Other processes' CPU comes from /proc: without it (not Linux) there are no such rows.
  return (["generator", "consumer", "broker"] as const)
    .filter((who) => Number.isFinite(cores[who]))
    .map((who) => ({
      case: `${label}: CPU of the ${who} process`,
      value: cores[who],
      unit: "cores",
      better: "lower" as const,
    }));
}

/** CPU seconds (user + system) used so far by process `pid` (Linux /proc; NaN elsewhere). */
function cpuSecondsOf(pid: number): number {
  try {
    // Fields 14 and 15 (utime, stime) in clock ticks; the command name (field 2) may hold spaces.
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100; // USER_HZ: 100 on every Linux Node runs on
  } catch {
    return Number.NaN;
  }
}

/**
 * Record i is due at t0 + i/rate. The generator sends every record that is due (its due time in
 * the first 8 bytes of its value, its actual send time in the next 8, as epoch ms), then waits for
 * the next due time; the consumer (its own process) measures due → delivered. Records due in the warm-up
 * are not counted. Achieved rate: acks received in the measured window per second.
 */
async function fixedRate(
  topic: string,
  partitions: number,
  rate: number,
  seconds: number,
  opts: { lingerMs: number },
): Promise<FixedRateResult> {
  const p = new Producer({
    bootstrapServers: bootstrap,
    acks: 1,
    enableIdempotence: false,
    lingerMs: opts.lingerMs,
    batchSize: 1024 * 1024,
  });
  const consumer = startConsumerProcess(topic, partitions);
  // Connections and metadata before the clock starts; the consumer reports once it has this record.
  await p.send({ topic, value: Buffer.alloc(RECORD_BYTES) });
  await consumer.ready;
  const publish = new Samples();
  const t0 = performance.now() + 5;
  const measureFrom = t0 + WARMUP_SECONDS * 1000;
  const measureTo = measureFrom + seconds * 1000;
  const total = Math.round(rate * (WARMUP_SECONDS + seconds));
  const periodMs = 1000 / rate;
  let next = 0;
  let acked = 0;
  let outstanding = 0;
  const value = Buffer.alloc(RECORD_BYTES, 7);
  // Due and send times go out as epoch milliseconds: the consumer process shares that clock.
  const epoch = performance.timeOrigin;
  const cpu = (): number[] =>
    [process.cpuUsage(), consumer.pid, broker.child.pid ?? -1].map((x) =>
      typeof x === "number" ? cpuSecondsOf(x) : (x.user + x.system) / 1e6,
    );
  let cpuFrom: number[] | null = null;
  let cpuTo: number[] | null = null;
  while (next < total) {
    const now = performance.now();
    if (cpuFrom === null && now >= measureFrom) cpuFrom = [now, ...cpu()];
    if (cpuTo === null && now >= measureTo) cpuTo = [now, ...cpu()];
    while (next < total && t0 + next * periodMs <= now && outstanding < OUTSTANDING_MAX) {
      const due = t0 + next * periodMs;
      // One value buffer for every record: send() copies the value into its batch before it
      // returns, and a fresh 1 KiB per record was half the garbage of this process.
      value.writeDoubleLE(epoch + due, 0);
      value.writeDoubleLE(epoch + performance.now(), 8);
      outstanding++;
      void p.send({ topic, value }).then(() => {
        outstanding--;
        const at = performance.now();
        if (due >= measureFrom) publish.add(at - due);
        if (at >= measureFrom && at < measureTo) acked++;
      });
      next++;
    }
    // Wait for the next due time: a timer when it is far (timers fire ~1 ms late); when it is near,
    // a short blocking wait (it overshoots by ~60 µs, the kernel's timer slack) and then a turn of
    // the event loop for the acks. Turning the loop alone until the due time would spin a core,
    // which the broker and the consumer need on a 2-core machine (measured: 0.94 cores at 5,000
    // records/s). Blocking delays the generator's ack callbacks by at most MAX_BLOCK_MS + the
    // slack, which only the publish latency sees; e2e runs from the due time, so any lateness
    // of the generator counts against it.
    const waitMs = t0 + next * periodMs - performance.now();
    if (waitMs > 2) await sleep(waitMs - 1.5);
    else {
      if (waitMs > 0) Atomics.wait(BLOCKER, 0, 0, Math.min(waitMs, MAX_BLOCK_MS));
      await new Promise((r) => setImmediate(r));
    }
  }
  cpuTo ??= [performance.now(), ...cpu()];
  cpuFrom ??= cpuTo;
  const windowMs = cpuTo[0]! - cpuFrom[0]!;
  const coresOf = (i: number): number => (cpuTo[i]! - cpuFrom[i]!) / (windowMs / 1000);
  const cores = { generator: coresOf(1), consumer: coresOf(2), broker: coresOf(3) };
  await p.flush();
  await p.close();
  const sent = total + 1;
  const { received, triples } = await consumer.finish(sent);
  if (received < sent) log(`${topic}: only ${received} of ${sent} records came back`);
  const e2e = new Samples();
  const fromSend = new Samples();
  let consumedInWindow = 0;
  for (let k = 0; k + 2 < triples.length; k += 3) {
    const due = triples[k]! - epoch;
    const at = triples[k + 1]! - epoch;
    if (at >= measureFrom && at < measureTo) consumedInWindow++;
    if (due >= measureFrom) {
      e2e.add(at - due);
      fromSend.add(at - (triples[k + 2]! - epoch));
    }
  }
  return { e2e, fromSend, publish, achieved: acked / seconds, consumed: consumedInWindow / seconds, cores };
}

report("latency", rows);
const m = machine();
console.log(`latency — ${m.cores} cores, ${m.memoryGiB} GiB, ${m.cpu}, Node ${m.node}${smoke ? " (smoke)" : ""}`);
console.log("| case | value | unit | × baseline |");
console.log("| --- | ---: | --- | ---: |");
for (const r of rows)
  console.log(
    `| ${r.case} | ${r.value.toFixed(2)} | ${r.unit} | ${r.ratio === undefined ? "—" : r.ratio.toFixed(2)} |`,
  );
process.exit(0);
