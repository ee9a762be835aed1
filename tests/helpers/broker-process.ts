// Starts a real Sluice broker process (packages/broker/src/main.ts) for interop and fault tests:
// a temporary data directory, a free port on 127.0.0.1, readiness from its start-up line, and
// stop (SIGTERM), kill (SIGKILL) and restart on the same directory and port.

import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dirname, "../..");
const NODE = process.execPath;
const MAIN = join(ROOT, "packages/broker/src/main.ts");

export interface BrokerProcess {
  readonly bootstrap: string;
  readonly port: number;
  readonly dir: string;
  readonly child: ChildProcess;
  /** Output so far (stdout and stderr). */
  output(): string;
  stop(): Promise<number | null>;
  kill(): Promise<void>;
  /** Starts a new process on the same data directory and port. */
  restart(extra?: Record<string, string>): Promise<BrokerProcess>;
  /** Stops the process (if running) and removes the data directory. */
  cleanup(): Promise<void>;
}

export interface StartOptions {
  dir?: string;
  port?: number;
  config?: Record<string, string>;
}

export async function startBrokerProcess(opts: StartOptions = {}): Promise<BrokerProcess> {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), "sluice-it-"));
  const config: Record<string, string> = {
    "log.dirs": dir,
    listeners: `PLAINTEXT://127.0.0.1:${opts.port ?? 0}`,
    "group.initial.rebalance.delay.ms": "0",
    ...opts.config,
  };
  const args = [MAIN, ...Object.entries(config).flatMap(([k, v]) => [`--${k}`, v])];
  const child = spawn(NODE, args, {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, SLUICE_LOG_LEVEL: process.env.SLUICE_LOG_LEVEL ?? "warn" },
  });
  let out = "";
  const port = await new Promise<number>((resolvePort, reject) => {
    const timer = setTimeout(() => reject(new Error(`broker did not start in 15 s:\n${out}`)), 15_000);
    const onData = (d: Buffer): void => {
      out += d.toString();
      const m = /Sluice listening on port (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolvePort(Number(m[1]));
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`broker exited with ${code} before it was ready:\n${out}`));
    });
  });
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  const bp: BrokerProcess = {
    bootstrap: `127.0.0.1:${port}`,
    port,
    dir,
    child,
    output: () => out,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      return exited;
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exited;
    },
    restart: (extra = {}) => startBrokerProcess({ dir, port, config: { ...opts.config, ...extra } }),
    async cleanup() {
      await bp.kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return bp;
}

export function hasCommand(cmd: string, args: string[] = ["-V"]): boolean {
  return spawnSync(cmd, args, { stdio: "ignore" }).status === 0;
}

export const PYTHON = "/usr/bin/python3";
export function hasConfluentKafka(): boolean {
  return spawnSync(PYTHON, ["-c", "import confluent_kafka"], { stdio: "ignore" }).status === 0;
}

/** Runs a command asynchronously (never blocks the event loop), feeding `input` to stdin. */
export function run(
  cmd: string,
  args: string[],
  opts: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(cmd, args, {
      stdio: ["pipe", "pipe", "pipe"],
      timeout: opts.timeoutMs ?? 60_000,
      env: opts.env ?? process.env,
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    child.on("error", reject);
    child.on("close", (status) => resolveRun({ status, stdout, stderr }));
    // A child that exits without reading its input closes the pipe (EPIPE); its exit status tells.
    child.stdin.on("error", () => {});
    child.stdin.end(opts.input ?? "");
  });
}
