// Benchmark (not a test): the broker driven by librdkafka, each figure as a ratio to a baseline
// measured in the same run on the same machine.
//   node bench/broker.ts
// Follows bench/lib/report.ts: BENCH_SMOKE=1 runs tiny cases in a few seconds; BENCH_JSON=path
// writes the report. Also: BENCH_RECORDS (1 KiB records per produce case, default 100000),
// BENCH_CASES (comma-separated subset of produce1,produce8,consume,small), BENCH_REPEAT (runs
// per case and baseline, the fastest kept; default 3, 1 when smoke or profiling), BENCH_DRIVER=kcat
// (drive with kcat instead of the C driver), BENCH_PROFILE=dir (run each case on its own broker
// process started with --cpu-prof, keep <dir>/<case>.cpuprofile and print the functions with the
// most self time).
//
// Driver: a small C program on librdkafka (Debian's librdkafka-dev), compiled into a temporary
// directory at start, producing from memory and consuming without printing — so the numbers are
// not bounded by kcat's line parsing. Without gcc or the headers, kcat drives instead. The driver
// shares the machine's cores with the broker; it reports its own CPU time, and the broker's is
// read from /proc, so each row says who was busy.
// Baselines: raw Node loopback socket pump (one process writes 1 MiB buffers, another reads) and
// small length-prefixed request/response frames (16 in flight, coalesced writes).
// Broker: produce MB/s (1 KiB records, acks=1, linger 5 ms, batches up to 1 MB) to 1 and 8
// partitions; consume MB/s of the 1-partition topic after a broker restart (so it is read through
// the page cache, not the broker's tail cache), and again with 4 MiB fetches (context: librdkafka
// keeps one Fetch in flight); small produce requests/s (one 100 B record per request, 16 in
// flight), driven by librdkafka and by a raw pipelined Produce driver in this process (librdkafka
// itself tops out near 0.2× the frame baseline, so only the raw driver can show the broker's
// ceiling); start-up time and idle RSS. The produce and consume cases run again with our own
// client (Producer and Consumer in this process) driving.

import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import {
  closeSync,
  createWriteStream,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { connect, createServer } from "node:net";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { Consumer, Producer } from "../packages/client/src/index.ts";
import { ApiKey, encodeProduceRequest } from "../packages/protocol/src/index.ts";
import { buildRecordBatch } from "../packages/protocol/src/records/record-batch.ts";
import { type BrokerProcess, startBrokerProcess } from "../tests/helpers/broker-process.ts";
import { createTopic, requestFrame } from "../tests/helpers/wire.ts";
import { type BenchRow, ratioRow, report, smoke } from "./lib/report.ts";

const RECORDS = Number(process.env.BENCH_RECORDS ?? (smoke ? 2000 : 100_000));
const SMALL = smoke ? 500 : 20_000;
/** Requests for the raw driver: it is several times faster than librdkafka here. */
const SMALL_RAW = smoke ? 500 : 100_000;
const SECONDS = smoke ? 0.3 : 2;
const CASES = new Set((process.env.BENCH_CASES ?? "produce1,produce8,consume,small").split(","));
const PROFILE_DIR = process.env.BENCH_PROFILE ?? "";
/** Runs per case, the fastest kept (other work on the machine only ever slows a run down). */
const REPEAT = smoke || PROFILE_DIR ? 1 : Number(process.env.BENCH_REPEAT ?? 3);
const dir = mkdtempSync(join(tmpdir(), "sluice-bbench-"));
/** The 1-minute load average at the start: other work on the machine skews every figure. */
const loadAtStart = loadavg()[0]!;
const rows: BenchRow[] = [];

/** Raw loopback throughput: a child process writes 1 MiB buffers for SECONDS, we read them. */
async function socketPump(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const port = (server.address() as { port: number }).port;
  const child = spawn(process.execPath, [
    "-e",
    `const s=require("net").connect(${port},"127.0.0.1");const b=Buffer.alloc(1<<20,1);const end=Date.now()+${SECONDS * 1000};function w(){while(Date.now()<end){if(!s.write(b))return s.once("drain",w)}s.end()}s.on("connect",w)`,
  ]);
  const [sock] = (await once(server, "connection")) as [import("node:net").Socket];
  let bytes = 0;
  const start = performance.now();
  sock.on("data", (d: Buffer) => {
    bytes += d.length;
  });
  await once(sock, "end");
  const mb = bytes / 1e6 / ((performance.now() - start) / 1000);
  child.kill();
  server.close();
  return mb;
}

/**
 * Appending to a new file in the broker's file system: 1 MiB writes for SECONDS (page cache, no
 * fsync). Not a target's baseline: the ceiling the log's appends meet before any networking (the
 * kernel throttles writers to the disk's write-back speed once enough pages are dirty).
 */
function fileAppend(): Promise<number> {
  const path = join(dir, "append-baseline");
  const fd = openSync(path, "w");
  const b = Buffer.alloc(1 << 20, 1);
  let bytes = 0;
  const start = performance.now();
  const end = start + SECONDS * 1000;
  while (performance.now() < end) bytes += writeSync(fd, b);
  const mb = bytes / 1e6 / ((performance.now() - start) / 1000);
  closeSync(fd);
  unlinkSync(path);
  return Promise.resolve(mb);
}

/** Small frames: 100 B length-prefixed requests, 16 in flight, echoed by a child process. */
async function framePingPong(): Promise<number> {
  const child = spawn(
    process.execPath,
    [
      "-e",
      `const srv=require("net").createServer(s=>{let buf=Buffer.alloc(0);s.on("data",d=>{buf=Buffer.concat([buf,d]);const out=[];while(buf.length>=4&&buf.length>=4+buf.readInt32BE(0)){const n=buf.readInt32BE(0);out.push(buf.subarray(0,4+n));buf=buf.subarray(4+n)}if(out.length)s.write(Buffer.concat(out))})});srv.listen(0,"127.0.0.1",()=>console.log(srv.address().port))`,
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  const [data] = (await once(child.stdout!, "data")) as [Buffer];
  const sock = connect(Number(data.toString().trim()), "127.0.0.1");
  await once(sock, "connect");
  sock.setNoDelay(true);
  const frame = Buffer.alloc(104, 1);
  frame.writeInt32BE(100, 0);
  let done = 0;
  let pending: Buffer = Buffer.alloc(0);
  const end = Date.now() + SECONDS * 1000;
  const start = performance.now();
  await new Promise<void>((resolve) => {
    sock.on("data", (d: Buffer) => {
      pending = Buffer.concat([pending, d]);
      let n = 0;
      while (pending.length >= 104) {
        pending = pending.subarray(104);
        n++;
      }
      done += n;
      if (Date.now() >= end) return resolve();
      sock.write(Buffer.concat(Array.from({ length: n }, () => frame)));
    });
    sock.write(Buffer.concat(Array.from({ length: 16 }, () => frame)));
  });
  const rate = done / ((performance.now() - start) / 1000);
  sock.destroy();
  child.kill();
  return rate;
}

const DRIVER_C = String.raw`
// bench driver: librdkafka producer/consumer without line parsing.
//   driver produce <bootstrap> <topic> <count> <size> <linger.ms> <batch.num.messages> <max.in.flight> <acks>
//   driver consume <bootstrap> <topic> <partitions> <count> <max.partition.fetch.bytes>
// A producer's bootstrap "mock:<partitions>" uses librdkafka's built-in mock broker instead (in
// the driver's process, a topic of that many partitions): the driver's own ceiling.
// Prints the elapsed milliseconds of the measured part, the CPU milliseconds the driver used
// (user + system, all its threads) and the payload bytes moved in that part on stdout. Consume is
// timed from the first record received: librdkafka's legacy consumer waits about 500 ms after
// start-up before it even asks for the start offset, which is no part of the broker's reads.
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static double cpu_ms(void) {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return (u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e3 + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e3;
}

static long delivered = 0, failed = 0;
static void dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
  (void)rk; (void)opaque;
  if (m->err) failed++; else delivered++;
}

static void set(rd_kafka_conf_t *c, const char *k, const char *v) {
  char err[512];
  if (rd_kafka_conf_set(c, k, v, err, sizeof err) != RD_KAFKA_CONF_OK) { fprintf(stderr, "%s: %s\n", k, err); exit(2); }
}

static int produce(int argc, char **argv) {
  if (argc < 10) return 2;
  long count = atol(argv[4]);
  int size = atoi(argv[5]);
  rd_kafka_conf_t *c = rd_kafka_conf_new();
  char err[512];
  int mock = !strncmp(argv[2], "mock:", 5);
  if (mock) set(c, "test.mock.num.brokers", "1"); else set(c, "bootstrap.servers", argv[2]);
  set(c, "linger.ms", argv[6]);
  set(c, "batch.num.messages", argv[7]);
  set(c, "max.in.flight", argv[8]);
  set(c, "acks", argv[9]);
  set(c, "batch.size", "1000000");
  set(c, "queue.buffering.max.kbytes", "1048576");
  set(c, "queue.buffering.max.messages", "1000000");
  rd_kafka_conf_set_dr_msg_cb(c, dr);
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof err);
  if (!rk) { fprintf(stderr, "%s\n", err); return 1; }
  if (mock) rd_kafka_mock_topic_create(rd_kafka_handle_mock_cluster(rk), argv[3], atoi(argv[2] + 5), 1);
  rd_kafka_topic_t *t = rd_kafka_topic_new(rk, argv[3], NULL);
  char *payload = malloc(size);
  memset(payload, 'x', size);
  // Warm up: metadata and connection.
  rd_kafka_produce(t, RD_KAFKA_PARTITION_UA, 0, payload, size, NULL, 0, NULL);
  rd_kafka_flush(rk, 10000);
  delivered = 0;
  double start = now_ms(), cpu = cpu_ms();
  for (long i = 0; i < count; i++) {
    while (rd_kafka_produce(t, RD_KAFKA_PARTITION_UA, 0, payload, size, NULL, 0, NULL) == -1) {
      if (rd_kafka_last_error() != RD_KAFKA_RESP_ERR__QUEUE_FULL) { fprintf(stderr, "produce: %s\n", rd_kafka_err2str(rd_kafka_last_error())); return 1; }
      rd_kafka_poll(rk, 1);
    }
    // Delivery reports are served in bulk: polling per message would cost a queue lock each.
    if ((i & 1023) == 0) rd_kafka_poll(rk, 0);
  }
  rd_kafka_flush(rk, 60000);
  double ms = now_ms() - start;
  if (delivered != count || failed) { fprintf(stderr, "delivered %ld of %ld, %ld failed\n", delivered, count, failed); return 1; }
  printf("%.1f %.1f %lld\n", ms, cpu_ms() - cpu, (long long)count * size);
  rd_kafka_topic_destroy(t);
  rd_kafka_destroy(rk);
  return 0;
}

static long consumed = 0;
static long long bytes = 0;
static double first_ms = 0, first_cpu = 0;
static void on_msg(rd_kafka_message_t *m, void *opaque) {
  (void)opaque;
  if (m->err) return;
  if (consumed++ == 0) { first_ms = now_ms(); first_cpu = cpu_ms(); return; }
  bytes += m->len;
}

static int consume(int argc, char **argv) {
  if (argc < 7) return 2;
  int partitions = atoi(argv[4]);
  long count = atol(argv[5]);
  rd_kafka_conf_t *c = rd_kafka_conf_new();
  char err[512];
  set(c, "bootstrap.servers", argv[2]);
  set(c, "fetch.max.bytes", "52428800");
  set(c, "max.partition.fetch.bytes", argv[6]);
  set(c, "queued.max.messages.kbytes", "1048576");
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof err);
  if (!rk) { fprintf(stderr, "%s\n", err); return 1; }
  rd_kafka_topic_t *t = rd_kafka_topic_new(rk, argv[3], NULL);
  rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
  double start = now_ms();
  for (int p = 0; p < partitions; p++) rd_kafka_consume_start_queue(t, p, RD_KAFKA_OFFSET_BEGINNING, q);
  while (consumed < count) {
    rd_kafka_consume_callback_queue(q, 1000, on_msg, NULL);
    if (now_ms() - start > 120000) { fprintf(stderr, "consumed %ld of %ld\n", consumed, count); return 1; }
  }
  printf("%.1f %.1f %lld\n", now_ms() - first_ms, cpu_ms() - first_cpu, bytes);
  for (int p = 0; p < partitions; p++) rd_kafka_consume_stop(t, p);
  rd_kafka_queue_destroy(q);
  rd_kafka_topic_destroy(t);
  rd_kafka_destroy(rk);
  return 0;
}

int main(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[1], "produce")) return produce(argc, argv);
  if (argc > 1 && !strcmp(argv[1], "consume")) return consume(argc, argv);
  fprintf(stderr, "usage: driver produce|consume ...\n");
  return 2;
}
`;

/** Compiles the C driver; null when gcc or librdkafka-dev is missing (kcat drives then). */
function buildDriver(): string | null {
  if (process.env.BENCH_DRIVER === "kcat") return null;
  const source = join(dir, "driver.c");
  const binary = join(dir, "driver");
  writeFileSync(source, DRIVER_C);
  const cc = spawnSync("gcc", ["-O2", "-o", binary, source, "-lrdkafka"], { encoding: "utf8" });
  if (cc.status !== 0) {
    console.error(`C driver not built (${cc.error?.message ?? cc.stderr.trim()}); using kcat`);
    return null;
  }
  return binary;
}

interface Timing {
  /** Wall-clock milliseconds of the measured part. */
  ms: number;
  /** CPU milliseconds the driver used (NaN for kcat). */
  driverCpuMs: number;
  /** Payload bytes moved in the measured part (NaN: the caller knows). */
  bytes: number;
}

function runDriver(binary: string, args: string[]): Promise<Timing> {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, args, { stdio: ["ignore", "pipe", "pipe"], timeout: 180_000 });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      err += d.toString();
    });
    child.on("error", reject);
    child.on("close", (status) => {
      if (status !== 0) return reject(new Error(`driver ${args.join(" ")} failed (${status}): ${err}`));
      const [ms, cpu, bytes] = out.trim().split(/\s+/).map(Number);
      resolve({ ms: ms!, driverCpuMs: cpu!, bytes: bytes! });
    });
  });
}

async function writeLines(path: string, count: number, size: number): Promise<void> {
  const ws = createWriteStream(path);
  const line = `${"x".repeat(size - 1)}\n`;
  for (let i = 0; i < count; i++) if (!ws.write(line)) await once(ws, "drain");
  ws.end();
  await once(ws, "finish");
}

function kcat(args: string[], stdinFile?: string): Promise<Timing> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const child = spawn(
      "sh",
      ["-c", `kcat ${args.map((a) => `'${a}'`).join(" ")} ${stdinFile ? `< ${stdinFile}` : ""} > /dev/null`],
      { stdio: "inherit" },
    );
    child.on("error", reject);
    child.on("exit", (code) =>
      code === 0
        ? resolve({ ms: performance.now() - start, driverCpuMs: Number.NaN, bytes: Number.NaN })
        : reject(new Error(`kcat exited ${code}`)),
    );
  });
}

/** CPU milliseconds (user + system) a process has used so far, from /proc. */
function processCpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // Fields 14 and 15 of stat (utime, stime), counted from after the command name.
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

/** Microseconds on the monotonic clock that V8's profiles also use. */
const monotonicUs = (): number => Number(process.hrtime.bigint() / 1000n);

/**
 * Self time per function of a .cpuprofile over the window [fromUs, toUs] (the measured part, not
 * start-up), the largest first, as printable lines.
 */
function profileSummary(path: string, fromUs: number, toUs: number, top = 25): string[] {
  const prof = JSON.parse(readFileSync(path, "utf8")) as {
    nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
    startTime: number;
    samples: number[];
    timeDeltas: number[];
  };
  const names = new Map<number, string>();
  for (const n of prof.nodes) {
    const f = n.callFrame;
    const file = f.url.replace(/^.*\/(packages|node_modules)\//, "").replace(/^node:/, "");
    names.set(n.id, `${f.functionName || "(anonymous)"} ${file ? `${file}:${f.lineNumber + 1}` : ""}`.trim());
  }
  const self = new Map<string, number>();
  let total = 0;
  let at = prof.startTime;
  prof.samples.forEach((id, i) => {
    const us = prof.timeDeltas[i] ?? 0;
    at += us;
    if (at < fromUs || at > toUs) return;
    total += us;
    const name = names.get(id) ?? "?";
    self.set(name, (self.get(name) ?? 0) + us);
  });
  return [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(
      ([name, us]) =>
        `${((100 * us) / total).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(6)} ms  ${name}`,
    );
}

/** The best of REPEAT runs of a measurement. */
async function bestOf<T>(run: () => Promise<T>, better: (a: T, b: T) => boolean): Promise<T> {
  let best = await run();
  for (let i = 1; i < REPEAT; i++) {
    const next = await run();
    if (better(next, best)) best = next;
  }
  return best;
}
const higher = (a: number, b: number): boolean => a > b;
const faster = (a: { ms: number }, b: { ms: number }): boolean => a.ms < b.ms;

const pump = await bestOf(socketPump, higher);
const pumpBase = { case: "loopback socket pump (1 MiB writes)", value: Math.round(pump), unit: "MB/s" };
rows.push({ case: `baseline: ${pumpBase.case}`, value: pumpBase.value, unit: "MB/s" });
const frames = await bestOf(framePingPong, higher);
const append = await bestOf(fileAppend, higher);
rows.push({
  case: "context: appending to a file (1 MiB writes, page cache)",
  value: Math.round(append),
  unit: "MB/s",
  note: "not a baseline: the file system's ceiling for the log's appends",
});
const framesBase = { case: "100 B request/response frames, 16 in flight", value: Math.round(frames), unit: "frames/s" };
rows.push({ case: `baseline: ${framesBase.case}`, value: framesBase.value, unit: "frames/s" });

const driver = buildDriver();
const driverName = driver ? "librdkafka C driver" : "kcat";
const config = { "num.partitions": "1" };

/** Starts the broker process (with --cpu-prof when profiling) on the bench's data directory. */
async function startBroker(prev: BrokerProcess | null, profiled: boolean): Promise<BrokerProcess> {
  const saved = process.env.NODE_OPTIONS;
  if (profiled) process.env.NODE_OPTIONS = `${saved ?? ""} --cpu-prof --cpu-prof-dir=${PROFILE_DIR}`.trim();
  try {
    return prev ? await prev.restart() : await startBrokerProcess({ config });
  } finally {
    if (saved === undefined) delete process.env.NODE_OPTIONS;
    else process.env.NODE_OPTIONS = saved;
  }
}

const startAt = performance.now();
let broker = await startBroker(null, false);
const startupMs = performance.now() - startAt;
await new Promise((r) => setTimeout(r, 500));
const rssKb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${broker.child.pid}/status`, "utf8"))?.[1] ?? 0);
rows.push({ case: "broker start-up (spawn → listening)", value: Math.round(startupMs), unit: "ms" });
rows.push({ case: "broker idle RSS", value: Math.round(rssKb / 1024), unit: "MiB" });

/** The case whose profile the running broker is recording, if any, and when it was measured. */
let profiling: { name: string; fromUs: number; toUs: number } | null = null;
const profiles: { name: string; path: string; fromUs: number; toUs: number }[] = [];

/** Stops a profiled broker and files its profile under the case's name. */
async function collectProfile(): Promise<void> {
  if (profiling === null) return;
  await broker.stop();
  const file = readdirSync(PROFILE_DIR).find((f) => f.startsWith("CPU.") && f.endsWith(".cpuprofile"));
  if (file) {
    const path = join(PROFILE_DIR, `${profiling.name}.cpuprofile`);
    renameSync(join(PROFILE_DIR, file), path);
    profiles.push({ ...profiling, path });
  }
  profiling = null;
}

/**
 * Gets the broker ready for a case: a fresh profiled process when profiling, and a restarted one
 * when the case must not find its data in the broker's memory.
 */
async function prepare(name: string, restart: boolean): Promise<void> {
  if (!PROFILE_DIR && !restart) return;
  await collectProfile();
  await broker.stop();
  broker = await startBroker(broker, PROFILE_DIR !== "");
  if (PROFILE_DIR) profiling = { name, fromUs: 0, toUs: 0 };
}

/** Runs the driver for one case, measuring the broker's CPU time over the same span. */
async function measure(t: () => Promise<Timing>): Promise<Timing & { brokerCpuMs: number }> {
  const pid = broker.child.pid!;
  const before = processCpuMs(pid);
  const fromUs = monotonicUs();
  const timing = await t();
  if (profiling) Object.assign(profiling, { fromUs, toUs: monotonicUs() });
  return { ...timing, brokerCpuMs: processCpuMs(pid) - before };
}

/** Who was busy during a case, as a share of its wall-clock time (100% = one core). */
/**
 * Who was busy during a case, as a share of its wall-clock time (100% = one core), and the broker's
 * CPU per unit of work (per MB, or per request when `requests` is given): less sensitive to other
 * work on the machine than the throughput is.
 */
function busy(t: Timing & { brokerCpuMs: number }, bytes: number, requests?: number): string {
  const pct = (ms: number): string => `${Math.round((100 * ms) / t.ms)}%`;
  const driver = Number.isNaN(t.driverCpuMs) ? "" : `, driver ${pct(t.driverCpuMs)}`;
  const cost =
    requests === undefined
      ? `${(t.brokerCpuMs / (bytes / 1e6)).toFixed(1)} ms broker CPU per MB`
      : `${Math.round((1000 * t.brokerCpuMs) / requests)} µs broker CPU per request`;
  return `CPU: broker ${pct(t.brokerCpuMs)}${driver}; ${cost}`;
}

/**
 * Produces `count` records of `size` bytes to `topic` (all acknowledged); to librdkafka's own mock
 * broker instead when `mockPartitions` is given (the C driver only).
 */
async function produce(
  topic: string,
  count: number,
  size: number,
  small: boolean,
  mockPartitions?: number,
): Promise<Timing> {
  if (driver) {
    const args = small ? ["0", "1", "16"] : ["5", "10000", "5"];
    const bootstrap = mockPartitions === undefined ? broker.bootstrap : `mock:${mockPartitions}`;
    return runDriver(driver, ["produce", bootstrap, topic, String(count), String(size), ...args, "1"]);
  }
  const file = join(dir, `${topic}.txt`);
  await writeLines(file, count, size);
  const opts = small
    ? ["-X", "linger.ms=0", "-X", "batch.num.messages=1", "-X", "max.in.flight=16"]
    : ["-X", "linger.ms=5", "-X", "batch.size=1000000", "-X", "queue.buffering.max.kbytes=1048576"];
  return kcat(["-b", broker.bootstrap, "-P", "-t", topic, "-X", "acks=1", ...opts], file);
}

/** Consumes `count` records of one partition from the beginning. */
async function consume(topic: string, count: number, partitionFetchBytes = 1024 * 1024): Promise<Timing> {
  if (driver)
    return runDriver(driver, ["consume", broker.bootstrap, topic, "1", String(count), String(partitionFetchBytes)]);
  return kcat(["-b", broker.bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%s\n"]);
}

/**
 * Small produce requests from a raw pipelined driver in this process: one pre-encoded Produce v9
 * request (acks=1, one batch of one 100 B record; only the correlation id changes), 16 in flight
 * over one connection, as many new requests written in one write as responses arrived in one
 * read — the frame baseline's loop with real Produce requests, so the broker, not a client
 * library, is what is measured. Each response is checked (error code 0) by its fixed size and
 * error-code position.
 */
async function rawSmallProduce(topic: string, count: number): Promise<Timing> {
  const records = buildRecordBatch({ records: [{ key: null, value: Buffer.alloc(100, 120) }] });
  const template = requestFrame(ApiKey.Produce, 9, 0, "raw", (w) =>
    encodeProduceRequest(
      w,
      {
        transactionalId: null,
        acks: 1,
        timeoutMs: 30_000,
        topicData: [{ name: topic, partitionData: [{ index: 0, records }] }],
      },
      9,
    ),
  );
  const sock = connect(broker.port, "127.0.0.1");
  await once(sock, "connect");
  sock.setNoDelay(true);
  let correlation = 0;
  const burst = (n: number): Buffer => {
    const out = Buffer.allocUnsafe(n * template.length);
    for (let i = 0; i < n; i++) {
      template.copy(out, i * template.length);
      out.writeInt32BE(correlation++, i * template.length + 8);
    }
    return out;
  };
  let pending: Buffer = Buffer.alloc(0);
  let answered = 0;
  let sent = 0;
  const start = performance.now();
  await new Promise<void>((resolve, reject) => {
    sock.on("error", reject);
    sock.on("data", (d: Buffer) => {
      pending = pending.length === 0 ? d : Buffer.concat([pending, d]);
      let p = 0;
      let n = 0;
      while (pending.length - p >= 4 && pending.length - p >= 4 + pending.readInt32BE(p)) {
        const size = pending.readInt32BE(p);
        // Produce v9 response: correlation id, header tags, topics (compact array), name, partitions,
        // index, then the error code.
        const frame = pending.subarray(p + 4, p + 4 + size);
        const nameLen = frame[6]! - 1;
        const code = frame.readInt16BE(7 + nameLen + 1 + 4);
        if (code !== 0) return reject(new Error(`raw Produce failed with error code ${code}`));
        p += 4 + size;
        n++;
      }
      pending = pending.subarray(p);
      answered += n;
      if (answered >= count) return resolve();
      const more = Math.min(n, count - sent);
      if (more > 0) {
        sock.write(burst(more));
        sent += more;
      }
    });
    const first = Math.min(16, count);
    sock.write(burst(first));
    sent += first;
  });
  const ms = performance.now() - start;
  sock.destroy();
  return { ms, driverCpuMs: Number.NaN, bytes: count * 100 };
}

/**
 * Our client driving the same cases, in this process: a Producer (acks=1, no idempotence, linger
 * 5 ms, batches up to 1 MB, as the C driver) sending `count` records of `size` bytes from memory,
 * 1,000 per sendBatch call, at most 8 calls outstanding (an application that creates every
 * record object up front measures its own heap: with all 100 calls outstanding the client's
 * process GCs a heap of 150 MB); the driver's CPU is this process's.
 */
async function clientProduce(topic: string, count: number, size: number): Promise<Timing> {
  const p = new Producer({
    bootstrapServers: broker.bootstrap,
    acks: 1,
    enableIdempotence: false,
    compressionType: "none",
    lingerMs: 5,
    batchSize: 1_000_000,
  });
  const value = Buffer.alloc(size, 120);
  await p.sendBatch([{ topic, value }]); // warm-up: metadata and connection
  const cpu = process.cpuUsage();
  const start = performance.now();
  const outstanding = new Set<Promise<unknown>>();
  for (let i = 0; i < count; i += 1000) {
    const n = Math.min(1000, count - i);
    const call = p.sendBatch(Array.from({ length: n }, () => ({ topic, value })));
    outstanding.add(call);
    const drop = (): void => void outstanding.delete(call);
    call.then(drop, drop);
    if (outstanding.size >= 8) await Promise.race(outstanding);
  }
  await Promise.all(outstanding);
  const ms = performance.now() - start;
  const used = process.cpuUsage(cpu);
  await p.close();
  return { ms, driverCpuMs: (used.user + used.system) / 1000, bytes: count * size };
}

/** Our Consumer reading `count` records of partition 0 from the beginning, timed from the first. */
async function clientConsume(topic: string, count: number): Promise<Timing> {
  const c = new Consumer({ bootstrapServers: broker.bootstrap, autoOffsetReset: "earliest", maxPollRecords: 10_000 });
  c.assign([{ topic, partition: 0 }]);
  let n = 0;
  let bytes = 0;
  let start = 0;
  let cpu = process.cpuUsage();
  const deadline = performance.now() + 120_000;
  while (n < count) {
    if (performance.now() > deadline) throw new Error(`our consumer read ${n} of ${count} records`);
    const recs = await c.poll(1000);
    if (recs.length === 0) continue;
    if (n === 0) {
      start = performance.now();
      cpu = process.cpuUsage();
    } else for (const r of recs) bytes += r.value?.length ?? 0;
    n += recs.length;
  }
  const ms = performance.now() - start;
  const used = process.cpuUsage(cpu);
  await c.close();
  return { ms, driverCpuMs: (used.user + used.system) / 1000, bytes };
}

async function topic(name: string, partitions: number): Promise<void> {
  if ((await createTopic(broker.bootstrap, name, partitions)) !== 0) throw new Error(`cannot create topic ${name}`);
}

if (PROFILE_DIR) mkdirSync(PROFILE_DIR, { recursive: true });
try {
  const bytes = RECORDS * 1024;
  await topic("p1", 1);
  await topic("p8", 8);
  await topic("p1c", 1);
  await topic("p8c", 8);
  await topic("small", 1);
  // The C driver sends one warm-up record before the measured ones.
  const p1Records = driver ? RECORDS + 1 : RECORDS;
  if (CASES.has("produce1")) {
    await prepare("produce1", false);
    const t = await bestOf(() => measure(() => produce("p1", RECORDS, 1024, false)), faster);
    const mbs = bytes / 1e6 / (t.ms / 1000);
    rows.push({
      ...ratioRow(`produce 1 KiB records, 1 partition (${driverName})`, Math.round(mbs), "MB/s", pumpBase, 0.45),
      note: `${busy(t, bytes)}; ${(mbs / append).toFixed(2)}× the file append`,
    });
  } else if (CASES.has("consume")) await produce("p1", RECORDS, 1024, false);
  if (CASES.has("produce1")) {
    const t = await bestOf(() => measure(() => clientProduce("p1c", RECORDS, 1024)), faster);
    const mbs = bytes / 1e6 / (t.ms / 1000);
    rows.push({
      ...ratioRow("produce 1 KiB records, 1 partition (our client)", Math.round(mbs), "MB/s", pumpBase, 0.45),
      note: busy(t, bytes),
    });
  }
  if (CASES.has("produce1") && driver) {
    const t = await bestOf(() => produce("p1", RECORDS, 1024, false, 1), faster);
    rows.push({
      ...ratioRow(
        "reference: the C driver against librdkafka's mock broker, 1 KiB records, 1 partition",
        Math.round(t.bytes / 1e3 / t.ms),
        "MB/s",
        pumpBase,
      ),
      note: "the driver's own ceiling (mock broker in its process)",
    });
  }
  if (CASES.has("produce8")) {
    await prepare("produce8", false);
    const t = await bestOf(() => measure(() => produce("p8", RECORDS, 1024, false)), faster);
    const mbs = bytes / 1e6 / (t.ms / 1000);
    rows.push({
      ...ratioRow(`produce 1 KiB records, 8 partitions (${driverName})`, Math.round(mbs), "MB/s", pumpBase, 0.45),
      note: `${busy(t, bytes)}; ${(mbs / append).toFixed(2)}× the file append`,
    });
    const c = await bestOf(() => measure(() => clientProduce("p8c", RECORDS, 1024)), faster);
    const cmbs = bytes / 1e6 / (c.ms / 1000);
    rows.push({
      ...ratioRow("produce 1 KiB records, 8 partitions (our client)", Math.round(cmbs), "MB/s", pumpBase, 0.45),
      note: busy(c, bytes),
    });
  }
  if (CASES.has("consume")) {
    await prepare("consume", true);
    const t = await bestOf(() => measure(() => consume("p1", p1Records)), faster);
    const mbs = (Number.isNaN(t.bytes) ? bytes : t.bytes) / 1e6 / (t.ms / 1000);
    rows.push({
      ...ratioRow(`consume 1 KiB records from the page cache (${driverName})`, Math.round(mbs), "MB/s", pumpBase, 0.5),
      note: busy(t, Number.isNaN(t.bytes) ? bytes : t.bytes),
    });
    const oc = await bestOf(() => measure(() => clientConsume("p1", p1Records)), faster);
    rows.push({
      ...ratioRow(
        "consume 1 KiB records from the page cache (our client)",
        Math.round(oc.bytes / 1e3 / oc.ms),
        "MB/s",
        pumpBase,
        0.5,
      ),
      note: busy(oc, oc.bytes),
    });
    if (driver) {
      // librdkafka keeps one Fetch in flight per broker, so with one partition each round trip
      // moves at most max.partition.fetch.bytes: the same consume with 4 MiB per fetch shows how
      // much of the default case is that round trip rather than the broker.
      const f = await bestOf(() => measure(() => consume("p1", p1Records, 4 * 1024 * 1024)), faster);
      rows.push({
        ...ratioRow(
          `context: the same consume with max.partition.fetch.bytes=4 MiB (${driverName})`,
          Math.round(f.bytes / 1e3 / f.ms),
          "MB/s",
          pumpBase,
        ),
        note: busy(f, f.bytes),
      });
    }
  }
  if (CASES.has("small")) {
    await prepare("small", false);
    const t = await bestOf(() => measure(() => produce("small", SMALL, 100, true)), faster);
    const rate = SMALL / (t.ms / 1000);
    rows.push({
      ...ratioRow(
        `small produce requests (100 B, one per request, 16 in flight, ${driverName})`,
        Math.round(rate),
        "requests/s",
        framesBase,
        0.5,
      ),
      note: busy(t, SMALL * 100, SMALL),
    });
    if (driver) {
      const m = await bestOf(() => produce("small", SMALL, 100, true, 1), faster);
      rows.push({
        ...ratioRow(
          "reference: the C driver against librdkafka's mock broker, small requests",
          Math.round(SMALL / (m.ms / 1000)),
          "requests/s",
          framesBase,
        ),
        note: "the driver's own ceiling (mock broker in its process)",
      });
    }
    const r = await bestOf(() => measure(() => rawSmallProduce("small", SMALL_RAW)), faster);
    rows.push({
      ...ratioRow(
        "small produce requests (100 B, one per request, 16 in flight, raw pipelined Produce v9 driver)",
        Math.round(SMALL_RAW / (r.ms / 1000)),
        "requests/s",
        framesBase,
        0.5,
      ),
      note: busy(r, SMALL_RAW * 100, SMALL_RAW),
    });
  }
  await collectProfile();
} finally {
  await broker.cleanup();
  rmSync(dir, { recursive: true, force: true });
}

const kcatInfo = spawnSync("kcat", ["-V"], { encoding: "utf8" }).stdout ?? "";
const librdkafka = /librdkafka (\S+)/.exec(kcatInfo)?.[1] ?? "?";
const machine = `${cpus().length} cores (${cpus()[0]?.model.trim() ?? "?"}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
console.log(
  `broker benchmark${smoke ? " (smoke: figures mean nothing)" : ""} — ${machine}, driver: ${driverName} (librdkafka ${librdkafka}), ${RECORDS} records per produce case, ${SMALL} small requests, best of ${REPEAT}, load average ${loadAtStart.toFixed(1)} at start, ${loadavg()[0]!.toFixed(1)} at end`,
);
console.log("| case | result | × baseline | target | who was busy |");
console.log("| --- | --- | ---: | ---: | --- |");
for (const r of rows) {
  const ratio = r.ratio === undefined ? (r.case.startsWith("baseline") ? "1.00" : "—") : r.ratio.toFixed(2);
  console.log(
    `| ${r.case} | ${r.value.toLocaleString("en")} ${r.unit} | ${ratio} | ${r.target === undefined ? "—" : `≥ ${r.target}`} | ${r.note ?? ""} |`,
  );
}
for (const p of profiles) {
  console.log(`\nself time, broker process, ${p.name}, measured part only (${p.path}):`);
  for (const line of profileSummary(p.path, p.fromUs, p.toUs)) console.log(line);
}
report("broker", rows);
