// Shared test helpers: a broker per suite, API support checks from the broker's own ApiVersions
// (tests of features a broker lacks are skipped at run time, never by hand), proxies that stall or
// cut connections, external tools.

import { spawn } from "node:child_process";
import { connect, createServer, type Server, type Socket } from "node:net";
import { type RunningBroker, startBroker } from "@sluice/broker";
import { Connection } from "../../src/connection.ts";
import type { Consumer, ConsumerRecord } from "../../src/consumer.ts";

export type { RunningBroker };
export { startBroker };

/** The broker's ApiVersions, asked over the wire. */
export async function brokerApis(bootstrap: string): Promise<Set<number>> {
  const [host, port] = bootstrap.split(":") as [string, string];
  const c = await Connection.open(host, Number(port), {
    clientId: "probe",
    requestTimeoutMs: 5000,
    connectTimeoutMs: 5000,
  });
  const keys = new Set<number>();
  for (let k = 0; k < 100; k++) if (c.supports(k)) keys.add(k);
  c.close();
  return keys;
}

/** Skip reason when the broker lacks any of `apiKeys` (false when it serves all of them). */
export async function skipUnlessServed(bootstrap: string, apiKeys: number[], what: string): Promise<string | false> {
  const apis = await brokerApis(bootstrap);
  const missing = apiKeys.filter((k) => !apis.has(k));
  return missing.length > 0 ? `the broker does not serve ${what} (API keys ${missing.join(", ")})` : false;
}

export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export interface TestProxy {
  readonly port: number;
  /** Responses are held back (not forwarded) until release(). */
  stall(): void;
  release(): void;
  /** Cuts every open connection now. */
  cutAll(): void;
  cuts: number;
  close(): Promise<void>;
}

/**
 * A TCP proxy to 127.0.0.1:targetPort. `cutEveryBytes` cuts a connection after roughly that many
 * bytes of requests went through it (in the middle of a request: the broker never sees it whole)
 * and `responseCutProbability` drops a connection right after the broker answered (the broker did
 * the work, the client never hears of it), while `cutsMax` allows.
 */
export async function startProxy(
  targetPort: number,
  opts: { cutEveryBytes?: number; responseCutProbability?: number; cutsMax?: number } = {},
): Promise<TestProxy> {
  const sockets = new Set<Socket>();
  let stalled = false;
  const held: (() => void)[] = [];
  const state = { cuts: 0 };
  const cutsMax = opts.cutsMax ?? 0;
  const server: Server = createServer((client) => {
    const upstream = connect(targetPort, "127.0.0.1");
    sockets.add(client);
    sockets.add(upstream);
    let budget = opts.cutEveryBytes ? Math.floor(opts.cutEveryBytes * (0.5 + Math.random())) : Number.POSITIVE_INFINITY;
    const cut = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on("data", (d: Buffer) => {
      if (state.cuts < cutsMax && d.length >= budget) {
        upstream.write(d.subarray(0, Math.max(1, Math.floor(budget / 2))));
        state.cuts++;
        setImmediate(cut);
        return;
      }
      budget -= d.length;
      upstream.write(d);
    });
    upstream.on("data", (d: Buffer) => {
      if (state.cuts < cutsMax && Math.random() < (opts.responseCutProbability ?? 0)) {
        state.cuts++;
        cut();
        return;
      }
      if (stalled) held.push(() => client.write(d));
      else client.write(d);
    });
    for (const s of [client, upstream]) {
      s.on("error", cut);
      s.on("close", () => {
        sockets.delete(s);
        cut();
      });
    }
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    get cuts() {
      return state.cuts;
    },
    stall: () => {
      stalled = true;
    },
    release: () => {
      stalled = false;
      for (const h of held.splice(0)) h();
    },
    cutAll: () => {
      for (const s of sockets) s.destroy();
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** A broker reached only through a proxy: it advertises the proxy's address. */
export async function startProxiedBroker(
  opts: Parameters<typeof startProxy>[1] = {},
  config: Record<string, string> = {},
): Promise<{ broker: RunningBroker; proxy: TestProxy; bootstrap: string }> {
  const brokerPort = await freePort();
  const proxy = await startProxy(brokerPort, opts);
  const broker = await startBroker({
    port: brokerPort,
    config: { "advertised.listeners": `PLAINTEXT://127.0.0.1:${proxy.port}`, ...config },
  });
  return { broker, proxy, bootstrap: `127.0.0.1:${proxy.port}` };
}

export function run(
  cmd: string,
  args: string[],
  input = "",
  timeoutMs = 30_000,
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(cmd, args, { stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    const timer = setTimeout(() => c.kill("SIGKILL"), timeoutMs);
    c.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    c.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    c.on("error", () => {
      clearTimeout(timer);
      resolve({ status: -1, stdout, stderr });
    });
    c.on("close", (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
    // A child that exits without reading its input closes the pipe (EPIPE); its exit status tells.
    c.stdin.on("error", () => {});
    c.stdin.end(input);
  });
}

export const hasKcat = (await run("kcat", ["-V"])).status === 0;

export const text = (b: Uint8Array | null): string => (b === null ? "" : Buffer.from(b).toString());

/** Polls until `n` records arrived or `timeoutMs` passed. */
export async function pollUntil(c: Consumer, n: number, timeoutMs = 10_000): Promise<ConsumerRecord[]> {
  const out: ConsumerRecord[] = [];
  const deadline = Date.now() + timeoutMs;
  while (out.length < n && Date.now() < deadline) out.push(...(await c.poll(100)));
  return out;
}

export const silent = { logger: () => {} } as const;
