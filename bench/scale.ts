// Benchmark (not a test): how the broker (a separate process) scales with partitions.
//   ./node_modules/.bin/node bench/scale.ts            (BENCH_SMOKE=1: 10 × 10 partitions; BENCH_JSON=path)
//   BENCH_TOPICS=100 BENCH_PARTITIONS=100              (the default: 10 000 partitions)
//
// - Start-to-ready of an empty broker: from spawn until the port accepts a connection and answers
//   ApiVersions (median of a few starts), and its idle RSS.
// - With TOPICS × PARTITIONS partitions created over the wire (CreateTopics through our Admin):
//   the time to create them, Metadata (all topics) latency p50/p99 on one connection as a ratio
//   to the same request against the empty broker, idle RSS, and restart time (SIGTERM, exit, spawn
//   on the same directory → ApiVersions answered; and → Metadata lists every partition with a
//   leader) as a ratio to the empty broker's start.

import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Admin, Connection } from "../packages/client/src/index.ts";
import { ApiKey, decodeMetadataResponse, encodeMetadataRequest } from "../packages/protocol/src/index.ts";
import { type BenchRow, machine, ratioRow, report, smoke } from "./lib/report.ts";
import { Samples, sleep } from "./lib/stats.ts";

const MAIN = resolve(import.meta.dirname, "../packages/broker/src/main.ts");
const TOPICS = Number(process.env.BENCH_TOPICS ?? (smoke ? 10 : 100));
const PARTITIONS = Number(process.env.BENCH_PARTITIONS ?? (smoke ? 10 : 100));
const STARTS = smoke ? 1 : 3;
const METADATA_REQUESTS = smoke ? 5 : 50;
const IDLE_MS = smoke ? 200 : 2000;
const TOTAL = TOPICS * PARTITIONS;

const rows: BenchRow[] = [];
const log = (s: string): void => console.error(s);

async function freePort(): Promise<number> {
  const srv = createServer();
  srv.listen(0, "127.0.0.1");
  await once(srv, "listening");
  const port = (srv.address() as { port: number }).port;
  srv.close();
  await once(srv, "close");
  return port;
}

/** An ApiVersions v0 request frame (correlation id 1, client id "ready"). */
const API_VERSIONS_FRAME = (() => {
  const clientId = Buffer.from("ready");
  const b = Buffer.alloc(4 + 2 + 2 + 4 + 2 + clientId.length);
  b.writeInt32BE(b.length - 4, 0);
  b.writeInt16BE(ApiKey.ApiVersions, 4);
  b.writeInt16BE(0, 6);
  b.writeInt32BE(1, 8);
  b.writeInt16BE(clientId.length, 12);
  clientId.copy(b, 14);
  return b;
})();

/** One attempt: connect, send ApiVersions, resolve true on a complete response with error code 0. */
function answersApiVersions(port: number): Promise<boolean> {
  return new Promise((done) => {
    const s = connect(port, "127.0.0.1", () => s.write(API_VERSIONS_FRAME));
    let buf = Buffer.alloc(0);
    const finish = (ok: boolean): void => {
      s.destroy();
      done(ok);
    };
    s.on("data", (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 4 && buf.length >= 4 + buf.readInt32BE(0)) finish(buf.readInt16BE(8) === 0);
    });
    s.on("error", () => finish(false));
    s.setTimeout(2000, () => finish(false));
  });
}

interface Started {
  child: ChildProcess;
  port: number;
  /** performance.now() at spawn. */
  spawnedAt: number;
  readyMs: number;
  exited: Promise<void>;
}

/** Spawns a broker on `dir` and `port`; resolves when it answers ApiVersions. */
async function spawnBroker(dir: string, port: number): Promise<Started> {
  const t = performance.now();
  const child = spawn(
    process.execPath,
    [MAIN, "--log.dirs", dir, "--listeners", `PLAINTEXT://127.0.0.1:${port}`, "--num.partitions", "1"],
    { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, SLUICE_LOG_LEVEL: "warn" } },
  );
  let out = "";
  child.stdout?.on("data", (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on("data", (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  const deadline = t + 120_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`broker exited with ${child.exitCode}:\n${out}`);
    if (await answersApiVersions(port)) break;
    if (performance.now() > deadline) throw new Error(`broker not ready in 120 s:\n${out}`);
    await sleep(2);
  }
  return { child, port, spawnedAt: t, readyMs: performance.now() - t, exited };
}

async function stopBroker(b: Started): Promise<number> {
  const t = performance.now();
  b.child.kill("SIGTERM");
  await b.exited;
  return performance.now() - t;
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

async function openConnection(port: number): Promise<Connection> {
  return Connection.open("127.0.0.1", port, {
    clientId: "bench-scale",
    requestTimeoutMs: 60_000,
    connectTimeoutMs: 10_000,
  });
}

/** Metadata for all topics (topics: null); returns the number of partitions that have a leader. */
async function metadataAll(conn: Connection): Promise<number> {
  const res = await conn.request(
    ApiKey.Metadata,
    [1, 12],
    (w, v) => encodeMetadataRequest(w, { topics: null, allowAutoTopicCreation: false }, v),
    decodeMetadataResponse,
  );
  let led = 0;
  for (const t of res.topics) for (const p of t.partitions) if (p.errorCode === 0 && p.leaderId >= 0) led++;
  return led;
}

async function metadataLatency(conn: Connection, expected: number): Promise<Samples> {
  await metadataAll(conn);
  const s = new Samples();
  for (let i = 0; i < METADATA_REQUESTS; i++) {
    const t = performance.now();
    const led = await metadataAll(conn);
    s.add(performance.now() - t);
    if (led < expected) throw new Error(`Metadata listed ${led} partitions with a leader, expected ${expected}`);
  }
  return s;
}

const dirs: string[] = [];
const newDir = (): string => {
  const d = mkdtempSync(join(tmpdir(), "sluice-bench-scale-"));
  dirs.push(d);
  return d;
};
let running: Started | null = null;

try {
  // ---- empty broker: start-to-ready, idle RSS, Metadata latency ----
  const starts = new Samples();
  let emptyRss = 0;
  let emptyMetadata = new Samples();
  for (let i = 0; i < STARTS; i++) {
    const b = await spawnBroker(newDir(), await freePort());
    running = b;
    starts.add(b.readyMs);
    if (i === STARTS - 1) {
      await sleep(IDLE_MS);
      emptyRss = rssMiB(b.child.pid as number);
      const conn = await openConnection(b.port);
      emptyMetadata = await metadataLatency(conn, 0);
      conn.close();
    }
    await stopBroker(b);
    running = null;
  }
  const startMs = starts.quantile(0.5);
  const startBase = { case: "empty broker start-to-ready", value: startMs, unit: "ms" };
  rows.push({
    case: "empty broker start-to-ready (spawn → ApiVersions answered)",
    value: startMs,
    unit: "ms",
    better: "lower",
  });
  rows.push({ case: "empty broker idle RSS", value: emptyRss, unit: "MiB", better: "lower" });
  const emptyMetaBase = {
    case: "Metadata (all topics), empty broker, p50",
    value: emptyMetadata.quantile(0.5),
    unit: "ms",
  };
  rows.push({ ...emptyMetaBase, better: "lower" });
  log(`empty broker: ready in ${startMs.toFixed(0)} ms, RSS ${emptyRss.toFixed(0)} MiB`);

  // ---- TOPICS × PARTITIONS ----
  const dir = newDir();
  const port = await freePort();
  running = await spawnBroker(dir, port);
  const admin = new Admin({ bootstrapServers: `127.0.0.1:${port}`, requestTimeoutMs: 120_000 });
  const t = performance.now();
  const CHUNK = 10;
  for (let i = 0; i < TOPICS; i += CHUNK)
    await admin.createTopics(
      Array.from({ length: Math.min(CHUNK, TOPICS - i) }, (_, j) => ({
        name: `scale-${String(i + j).padStart(4, "0")}`,
        numPartitions: PARTITIONS,
      })),
    );
  const createS = (performance.now() - t) / 1000;
  await admin.close();
  rows.push({
    case: `create ${TOTAL} partitions (${TOPICS} topics × ${PARTITIONS})`,
    value: TOTAL / createS,
    unit: "partitions/s",
    better: "higher",
  });
  log(`created ${TOTAL} partitions in ${createS.toFixed(1)} s`);

  const conn = await openConnection(port);
  const meta = await metadataLatency(conn, TOTAL);
  conn.close();
  rows.push(
    ratioRow(
      `Metadata (all topics) p50, ${TOTAL} partitions`,
      meta.quantile(0.5),
      "ms",
      emptyMetaBase,
      undefined,
      "lower",
    ),
  );
  rows.push(
    ratioRow(
      `Metadata (all topics) p99, ${TOTAL} partitions`,
      meta.quantile(0.99),
      "ms",
      emptyMetaBase,
      undefined,
      "lower",
    ),
  );
  log(
    `Metadata with ${TOTAL} partitions: p50 ${meta.quantile(0.5).toFixed(1)} ms, p99 ${meta.quantile(0.99).toFixed(1)} ms`,
  );
  await sleep(IDLE_MS);
  rows.push({
    case: `idle RSS, ${TOTAL} partitions`,
    value: rssMiB(running.child.pid as number),
    unit: "MiB",
    better: "lower",
  });

  const stopMs = await stopBroker(running);
  running = null;
  rows.push({ case: `shutdown (SIGTERM → exit), ${TOTAL} partitions`, value: stopMs, unit: "ms", better: "lower" });
  const restarted = await spawnBroker(dir, port);
  running = restarted;
  rows.push(
    ratioRow(
      `restart to ready (ApiVersions), ${TOTAL} partitions`,
      restarted.readyMs,
      "ms",
      startBase,
      undefined,
      "lower",
    ),
  );
  const check = await openConnection(port);
  for (;;) {
    if ((await metadataAll(check)) >= TOTAL) break;
    await sleep(5);
  }
  const servingMs = performance.now() - restarted.spawnedAt;
  check.close();
  rows.push(
    ratioRow(
      `restart until Metadata lists every partition with a leader, ${TOTAL} partitions`,
      servingMs,
      "ms",
      startBase,
      undefined,
      "lower",
    ),
  );
  log(`restart: ready in ${restarted.readyMs.toFixed(0)} ms, all partitions led after ${servingMs.toFixed(0)} ms`);
  await stopBroker(restarted);
  running = null;
} finally {
  if (running) running.child.kill("SIGKILL");
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}

report("scale", rows);
const m = machine();
console.log(`scale — ${m.cores} cores, ${m.memoryGiB} GiB, ${m.cpu}, Node ${m.node}${smoke ? " (smoke)" : ""}`);
console.log("| case | value | unit | × baseline |");
console.log("| --- | ---: | --- | ---: |");
for (const r of rows)
  console.log(
    `| ${r.case} | ${r.value.toFixed(1)} | ${r.unit} | ${r.ratio === undefined ? "—" : r.ratio.toFixed(2)} |`,
  );
