// Benchmark (not a test): the broker driven by librdkafka (kcat), each figure as a ratio to a
// baseline measured in the same run on the same machine.
//   node bench/broker.ts        (BENCH_RECORDS: 1 KiB records per produce case, default 100000)
//
// Baselines: raw Node loopback socket pump (one process writes 1 MiB buffers, another reads) and
// small length-prefixed request/response frames (16 in flight, coalesced writes).
// Broker: produce MB/s (1 KiB records, acks=1, librdkafka batches up to 1 MB) to 1 and 8
// partitions, consume MB/s from the page cache, small produce requests/s (100 B records, one per
// request, 16 in flight), start-up time and idle RSS.

import { spawn } from "node:child_process";
import { once } from "node:events";
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { connect, createServer } from "node:net";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { run, startBrokerProcess } from "../tests/helpers/broker-process.ts";

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

try {
  const big = join(dir, "1k.txt");
  await writeLines(big, RECORDS, 1024);
  const bytes = RECORDS * 1024;
  const producerOpts = [
    "-X",
    "linger.ms=5",
    "-X",
    "batch.size=1000000",
    "-X",
    "acks=1",
    "-X",
    "queue.buffering.max.kbytes=1048576",
  ];
  await run("kcat", ["-b", broker.bootstrap, "-L"]);
  const ms1 = await kcat(["-b", broker.bootstrap, "-P", "-t", "p1", ...producerOpts], big);
  const p1 = bytes / 1e6 / (ms1 / 1000);
  rows.push(["produce 1 KiB records, 1 partition (kcat)", `${p1.toFixed(0)} MB/s`, (p1 / pump).toFixed(2)]);
  await run("kcat", ["-b", broker.bootstrap, "-P", "-t", "p8-init", "-p", "0"], { input: "x\n" });
  // An 8-partition topic: auto-created topics get num.partitions, so restart is avoided by CreateTopics through kafkajs.
  const kafkajs = (await import("kafkajs")).default;
  const admin = new kafkajs.Kafka({ brokers: [broker.bootstrap], logLevel: kafkajs.logLevel.NOTHING }).admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: "p8", numPartitions: 8 }] });
  await admin.disconnect();
  const ms8 = await kcat(["-b", broker.bootstrap, "-P", "-t", "p8", ...producerOpts], big);
  const p8 = bytes / 1e6 / (ms8 / 1000);
  rows.push(["produce 1 KiB records, 8 partitions (kcat)", `${p8.toFixed(0)} MB/s`, (p8 / pump).toFixed(2)]);
  const msc = await kcat([
    "-b",
    broker.bootstrap,
    "-C",
    "-t",
    "p1",
    "-o",
    "beginning",
    "-e",
    "-q",
    "-f",
    "%s\n",
    "-X",
    "fetch.max.bytes=52428800",
  ]);
  const c1 = bytes / 1e6 / (msc / 1000);
  rows.push(["consume 1 KiB records from the page cache (kcat)", `${c1.toFixed(0)} MB/s`, (c1 / pump).toFixed(2)]);
  const small = join(dir, "100b.txt");
  const SMALL = 20_000;
  await writeLines(small, SMALL, 100);
  const mss = await kcat(
    [
      "-b",
      broker.bootstrap,
      "-P",
      "-t",
      "small",
      "-X",
      "linger.ms=0",
      "-X",
      "batch.num.messages=1",
      "-X",
      "max.in.flight=16",
      "-X",
      "acks=1",
    ],
    small,
  );
  const rate = SMALL / (mss / 1000);
  rows.push([
    "small produce requests (100 B, one per request, kcat)",
    `${Math.round(rate).toLocaleString("en")} requests/s`,
    (rate / frames).toFixed(2),
  ]);
} finally {
  await broker.cleanup();
  rmSync(dir, { recursive: true, force: true });
}

console.log(
  `broker benchmark — ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${RECORDS} records per produce case`,
);
console.log("| case | result | × baseline |");
console.log("| --- | --- | ---: |");
for (const r of rows) console.log(`| ${r.join(" | ")} |`);
