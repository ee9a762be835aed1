// Benchmark (not a test): the broker driven by librdkafka, each figure as a ratio to a baseline
// measured in the same run on the same machine.
//   node bench/broker.ts [--record]
// --record appends the table to bench/RESULTS.md. BENCH_RECORDS: 1 KiB records per produce case
// (default 100000); BENCH_DRIVER=kcat drives with kcat instead of the C driver.
//
// Driver: a small C program on librdkafka (Debian's librdkafka-dev), compiled into a temporary
// directory at start, producing from memory and consuming without printing — so the numbers are
// not bounded by kcat's line parsing. Without gcc or the headers, kcat drives instead.
// Baselines: raw Node loopback socket pump (one process writes 1 MiB buffers, another reads) and
// small length-prefixed request/response frames (16 in flight, coalesced writes).
// Broker: produce MB/s (1 KiB records, acks=1, batches up to 1 MB) to 1 and 8 partitions, consume
// MB/s from the page cache, small produce requests/s (100 B records, one per request, 16 in
// flight), start-up time and idle RSS. The driver shares the machine's cores with the broker.

import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { appendFileSync, createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect, createServer } from "node:net";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { run, startBrokerProcess } from "../tests/helpers/broker-process.ts";
import { createTopic } from "../tests/helpers/wire.ts";

const RECORDS = Number(process.env.BENCH_RECORDS ?? 100_000);
const SECONDS = 2;
const dir = mkdtempSync(join(tmpdir(), "sluice-bbench-"));
const rows: [string, string, string][] = [];

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
  let pending = Buffer.alloc(0);
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
//   driver consume <bootstrap> <topic> <partitions> <count>
// Prints the elapsed milliseconds of the measured part on stdout.
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
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
  set(c, "bootstrap.servers", argv[2]);
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
  rd_kafka_topic_t *t = rd_kafka_topic_new(rk, argv[3], NULL);
  char *payload = malloc(size);
  memset(payload, 'x', size);
  // Warm up: metadata and connection.
  rd_kafka_produce(t, RD_KAFKA_PARTITION_UA, 0, payload, size, NULL, 0, NULL);
  rd_kafka_flush(rk, 10000);
  delivered = 0;
  double start = now_ms();
  for (long i = 0; i < count; i++) {
    while (rd_kafka_produce(t, RD_KAFKA_PARTITION_UA, 0, payload, size, NULL, 0, NULL) == -1) {
      if (rd_kafka_last_error() != RD_KAFKA_RESP_ERR__QUEUE_FULL) { fprintf(stderr, "produce: %s\n", rd_kafka_err2str(rd_kafka_last_error())); return 1; }
      rd_kafka_poll(rk, 1);
    }
    rd_kafka_poll(rk, 0);
  }
  rd_kafka_flush(rk, 60000);
  double ms = now_ms() - start;
  if (delivered != count || failed) { fprintf(stderr, "delivered %ld of %ld, %ld failed\n", delivered, count, failed); return 1; }
  printf("%.1f\n", ms);
  rd_kafka_topic_destroy(t);
  rd_kafka_destroy(rk);
  return 0;
}

static long consumed = 0;
static long long bytes = 0;
static void on_msg(rd_kafka_message_t *m, void *opaque) {
  (void)opaque;
  if (!m->err) { consumed++; bytes += m->len; }
}

static int consume(int argc, char **argv) {
  if (argc < 6) return 2;
  int partitions = atoi(argv[4]);
  long count = atol(argv[5]);
  rd_kafka_conf_t *c = rd_kafka_conf_new();
  char err[512];
  set(c, "bootstrap.servers", argv[2]);
  set(c, "fetch.max.bytes", "52428800");
  set(c, "max.partition.fetch.bytes", getenv("PFB") ? getenv("PFB") : "1048576");
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
  double ms = now_ms() - start;
  printf("%.1f\n", ms);
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

function runDriver(binary: string, args: string[]): number {
  const r = spawnSync(binary, args, { encoding: "utf8", timeout: 180_000 });
  if (r.status !== 0) throw new Error(`driver ${args.join(" ")} failed: ${r.stderr}`);
  return Number(r.stdout.trim());
}

async function writeLines(path: string, count: number, size: number): Promise<void> {
  const ws = createWriteStream(path);
  const line = `${"x".repeat(size - 1)}\n`;
  for (let i = 0; i < count; i++) if (!ws.write(line)) await once(ws, "drain");
  ws.end();
  await once(ws, "finish");
}

function kcat(args: string[], stdinFile?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const child = spawn(
      "sh",
      ["-c", `kcat ${args.map((a) => `'${a}'`).join(" ")} ${stdinFile ? `< ${stdinFile}` : ""} > /dev/null`],
      { stdio: "inherit" },
    );
    child.on("error", reject);
    child.on("exit", (code) =>
      code === 0 ? resolve(performance.now() - start) : reject(new Error(`kcat exited ${code}`)),
    );
  });
}

const pump = await socketPump();
rows.push(["baseline: loopback socket pump (1 MiB writes)", `${pump.toFixed(0)} MB/s`, "1.00"]);
const frames = await framePingPong();
rows.push([
  "baseline: 100 B request/response frames, 16 in flight",
  `${Math.round(frames).toLocaleString("en")} frames/s`,
  "1.00",
]);

const startAt = performance.now();
const broker = await startBrokerProcess({ config: { "num.partitions": "1" } });
const startupMs = performance.now() - startAt;
await new Promise((r) => setTimeout(r, 500));
const rssKb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${broker.child.pid}/status`, "utf8"))?.[1] ?? 0);
rows.push(["broker start-up (spawn → listening)", `${startupMs.toFixed(0)} ms`, "—"]);
rows.push(["broker idle RSS", `${(rssKb / 1024).toFixed(0)} MiB`, "—"]);

const driver = buildDriver();
const driverName = driver ? "librdkafka C driver" : "kcat";

/** Milliseconds to produce `count` records of `size` bytes to `topic` (all acknowledged). */
async function produceMs(topic: string, count: number, size: number, small: boolean): Promise<number> {
  if (driver) {
    const args = small ? ["0", "1", "16"] : ["5", "10000", "5"];
    return runDriver(driver, ["produce", broker.bootstrap, topic, String(count), String(size), ...args, "1"]);
  }
  const file = join(dir, `${topic}.txt`);
  await writeLines(file, count, size);
  const opts = small
    ? ["-X", "linger.ms=0", "-X", "batch.num.messages=1", "-X", "max.in.flight=16"]
    : ["-X", "linger.ms=5", "-X", "batch.size=1000000", "-X", "queue.buffering.max.kbytes=1048576"];
  return kcat(["-b", broker.bootstrap, "-P", "-t", topic, "-X", "acks=1", ...opts], file);
}

/** Milliseconds to consume `count` records of one partition from the beginning. */
async function consumeMs(topic: string, count: number): Promise<number> {
  if (driver) return runDriver(driver, ["consume", broker.bootstrap, topic, "1", String(count)]);
  return kcat(["-b", broker.bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%s\n"]);
}

try {
  const bytes = RECORDS * 1024;
  await run("kcat", ["-b", broker.bootstrap, "-L"]);
  const p1 = bytes / 1e6 / ((await produceMs("p1", RECORDS, 1024, false)) / 1000);
  rows.push([`produce 1 KiB records, 1 partition (${driverName})`, `${p1.toFixed(0)} MB/s`, (p1 / pump).toFixed(2)]);
  // An 8-partition topic: auto-created topics get num.partitions (1 here), so create it explicitly.
  if ((await createTopic(broker.bootstrap, "p8", 8)) !== 0) throw new Error("cannot create topic p8");
  const p8 = bytes / 1e6 / ((await produceMs("p8", RECORDS, 1024, false)) / 1000);
  rows.push([`produce 1 KiB records, 8 partitions (${driverName})`, `${p8.toFixed(0)} MB/s`, (p8 / pump).toFixed(2)]);
  // The C driver sent one warm-up record before the measured ones.
  const c1 = bytes / 1e6 / ((await consumeMs("p1", driver ? RECORDS + 1 : RECORDS)) / 1000);
  rows.push([
    `consume 1 KiB records from the page cache (${driverName})`,
    `${c1.toFixed(0)} MB/s`,
    (c1 / pump).toFixed(2),
  ]);
  const SMALL = 20_000;
  const rate = SMALL / ((await produceMs("small", SMALL, 100, true)) / 1000);
  rows.push([
    `small produce requests (100 B, one per request, 16 in flight, ${driverName})`,
    `${Math.round(rate).toLocaleString("en")} requests/s`,
    (rate / frames).toFixed(2),
  ]);
} finally {
  await broker.cleanup();
  rmSync(dir, { recursive: true, force: true });
}

const kcatInfo = spawnSync("kcat", ["-V"], { encoding: "utf8" }).stdout ?? "";
const librdkafka = /librdkafka (\S+)/.exec(kcatInfo)?.[1] ?? "?";
const kcatVersion = `librdkafka ${librdkafka}, kcat ${/Version (\S+)/.exec(kcatInfo)?.[1] ?? "?"}`;
const machine = `${cpus().length} cores (${cpus()[0]?.model.trim() ?? "?"}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
const table = [
  "| case | result | × baseline |",
  "| --- | --- | ---: |",
  ...rows.map((r) => `| ${r.join(" | ")} |`),
].join("\n");
console.log(`broker benchmark — ${machine}, ${RECORDS} records per produce case, driver: ${driverName}`);
console.log(table);
if (process.argv.includes("--record")) {
  const date = new Date().toISOString().slice(0, 10);
  appendFileSync(
    join(import.meta.dirname, "RESULTS.md"),
    `\n## Broker (\`bench/broker.ts\`), ${date}\n\nCommand: \`./node_modules/.bin/node bench/broker.ts --record\` — ${date}, ${machine}, driver: ${driverName} (${kcatVersion}), ${RECORDS} records per produce case. The driver runs on the same cores as the broker.\n\n${table}\n`,
  );
  console.log("appended to bench/RESULTS.md");
}
