// Baselines for the benchmark suite: what this machine does with the same resources and none of
// our code, measured in the same run as the case they anchor (the machines are shared and noisy,
// so only ratios to a baseline of the same run compare across runs). The network baselines talk
// to a second Node process over loopback, as a client talks to the broker process.
//   socketPump      one process writes 1 MiB buffers, another reads them: MB/s
//   frames          small length-prefixed request/response frames, 16 in flight, coalesced writes
//   pingPong        one 64 B frame at a time, echoed: round-trip p50/p99
//   diskWrite       sequential 1 MiB writes, optionally with fdatasync every 16 MiB: MB/s

import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { connect, createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Samples } from "./stats.ts";

/**
 * An echo server in a child process: it answers each complete length-prefixed frame with the same
 * bytes, all frames of one read in one write (as the broker writes responses). Prints its port.
 */
const ECHO_SERVER = `
const net = require("net");
const srv = net.createServer((s) => {
  s.setNoDelay(true);
  let buf = Buffer.alloc(0);
  s.on("data", (d) => {
    buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
    let end = 0;
    while (buf.length - end >= 4 && buf.length - end >= 4 + buf.readInt32BE(end)) end += 4 + buf.readInt32BE(end);
    if (end > 0) { s.write(buf.subarray(0, end)); buf = buf.subarray(end); }
  });
  s.on("error", () => {});
});
srv.listen(0, "127.0.0.1", () => console.log(srv.address().port));
`;

async function startEcho(): Promise<{ child: ChildProcess; socket: Socket }> {
  const child = spawn(process.execPath, ["-e", ECHO_SERVER], { stdio: ["ignore", "pipe", "inherit"] });
  const [data] = (await once(child.stdout as NodeJS.ReadableStream, "data")) as [Buffer];
  const socket = connect(Number(data.toString().trim()), "127.0.0.1");
  await once(socket, "connect");
  socket.setNoDelay(true);
  return { child, socket };
}

function stopEcho(e: { child: ChildProcess; socket: Socket }): void {
  e.socket.destroy();
  e.child.kill();
}

/** Raw loopback throughput: a child process writes 1 MiB buffers for `seconds`; MB/s read here. */
export async function socketPump(seconds: number): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const port = (server.address() as { port: number }).port;
  const writer = `const s=require("net").connect(${port},"127.0.0.1");const b=Buffer.alloc(1<<20,1);const end=Date.now()+${Math.round(seconds * 1000)};function w(){while(Date.now()<end){if(!s.write(b))return s.once("drain",w)}s.end()}s.on("connect",w);s.on("error",()=>{})`;
  const child = spawn(process.execPath, ["-e", writer], { stdio: "ignore" });
  const [sock] = (await once(server, "connection")) as [Socket];
  let bytes = 0;
  const start = performance.now();
  sock.on("data", (d: Buffer) => {
    bytes += d.length;
  });
  await once(sock, "end");
  const mbPerS = bytes / 1e6 / ((performance.now() - start) / 1000);
  child.kill();
  server.close();
  return mbPerS;
}

/**
 * Small request/response frames: `frameBytes` length-prefixed frames (prefix included), `inFlight`
 * outstanding, each batch of answers answered by one coalesced write. Frames per second.
 */
export async function frames(seconds: number, frameBytes = 104, inFlight = 16): Promise<number> {
  const echo = await startEcho();
  const frame = Buffer.alloc(frameBytes, 1);
  frame.writeInt32BE(frameBytes - 4, 0);
  const burst = (n: number): Buffer => Buffer.concat(Array.from({ length: n }, () => frame));
  let done = 0;
  let carry = 0; // bytes of a frame split across reads
  const end = performance.now() + seconds * 1000;
  const start = performance.now();
  await new Promise<void>((resolve) => {
    echo.socket.on("data", (d: Buffer) => {
      const total = carry + d.length;
      const n = Math.floor(total / frameBytes);
      carry = total % frameBytes;
      done += n;
      if (performance.now() >= end) return resolve();
      if (n > 0) echo.socket.write(burst(n));
    });
    echo.socket.write(burst(inFlight));
  });
  const rate = done / ((performance.now() - start) / 1000);
  stopEcho(echo);
  return rate;
}

/** One `frameBytes` frame at a time, echoed: round-trip times in microseconds. */
export async function pingPong(roundTrips: number, frameBytes = 64): Promise<{ p50Us: number; p99Us: number }> {
  const echo = await startEcho();
  const frame = Buffer.alloc(frameBytes, 2);
  frame.writeInt32BE(frameBytes - 4, 0);
  const samples = new Samples();
  const warmUp = Math.min(1000, Math.ceil(roundTrips / 5));
  let got = 0;
  let i = 0;
  let sentAt = 0;
  await new Promise<void>((resolve) => {
    echo.socket.on("data", (d: Buffer) => {
      got += d.length;
      if (got < frameBytes) return;
      got -= frameBytes;
      const us = (performance.now() - sentAt) * 1000;
      if (i >= warmUp) samples.add(us);
      if (++i === warmUp + roundTrips) return resolve();
      sentAt = performance.now();
      echo.socket.write(frame);
    });
    sentAt = performance.now();
    echo.socket.write(frame);
  });
  stopEcho(echo);
  return { p50Us: samples.quantile(0.5), p99Us: samples.quantile(0.99) };
}

/**
 * Sequential writes of 1 MiB buffers (`totalMiB` in all) to a new file in `dir`; with `syncEveryMiB`
 * an fdatasync after every so many MiB and at the end. MB/s (10^6 bytes), file removed after.
 */
export function diskWrite(totalMiB: number, syncEveryMiB: number | null, dir = tmpdir()): number {
  const root = mkdtempSync(join(dir, "sluice-bench-disk-"));
  const buf = Buffer.alloc(1 << 20, 3);
  try {
    const fd = openSync(join(root, "seq.bin"), "w");
    const start = performance.now();
    for (let i = 1; i <= totalMiB; i++) {
      writeSync(fd, buf);
      if (syncEveryMiB !== null && i % syncEveryMiB === 0) fdatasyncSync(fd);
    }
    if (syncEveryMiB !== null) fdatasyncSync(fd);
    const s = (performance.now() - start) / 1000;
    closeSync(fd);
    return (totalMiB * 2 ** 20) / 1e6 / s;
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
