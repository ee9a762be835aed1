// What every `sluice` command shares: global options, output (tables or --json), argument parsers
// that fail with a UsageError (exit status 2), and clients that check first that the bootstrap
// servers answer, so that an unreachable cluster is one clear line instead of a long wait.

import { connect } from "node:net";
import { Admin, parseBootstrap } from "@sluice/client";
import type { Command } from "commander";

export interface GlobalOptions {
  bootstrap: string;
  json: boolean;
  /** --request-timeout: request.timeout.ms of the clients. */
  requestTimeout: number;
}

/** A wrong argument: printed as "sluice: <message>", exit status 2. */
export class UsageError extends Error {}

/** A failed operation with a message meant for the user as is: exit status 1. */
export class CommandError extends Error {}

export function globals(cmd: Command): GlobalOptions {
  return cmd.optsWithGlobals() as GlobalOptions;
}

export const jsonText = (value: unknown): string =>
  JSON.stringify(value, (_k, v) => (typeof v === "bigint" ? v.toString() : v));

export function print(json: boolean, value: unknown, human: () => string): void {
  process.stdout.write(`${json ? jsonText(value) : human()}\n`);
}

export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

export function parseKeyValues(list: string[] | undefined, what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of list ?? []) {
    const i = kv.indexOf("=");
    if (i <= 0) throw new UsageError(`${what} must be key=value, got "${kv}"`);
    out[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return out;
}

/** Parser of a non-negative integer option. */
export function positiveInt(what: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(n))
      throw new UsageError(`${what} must be a non-negative integer, got "${v}"`);
    return n;
  };
}

/** Parser of an integer option that may be negative (e.g. -1 for "unlimited"). */
export function integer(what: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!/^-?\d+$/.test(v.trim()) || !Number.isSafeInteger(n))
      throw new UsageError(`${what} must be an integer, got "${v}"`);
    return n;
  };
}

export function bigintArg(what: string) {
  return (v: string): bigint => {
    if (!/^-?\d+$/.test(v.trim())) throw new UsageError(`${what} must be an integer, got "${v}"`);
    return BigInt(v.trim());
  };
}

/** An --acks choice ("0", "1", "all" or "-1", as commander validated it) as the producer's acks. */
export const acksOf = (acks: string): -1 | 0 | 1 => (acks === "all" || acks === "-1" ? -1 : (Number(acks) as 0 | 1));

export const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

/**
 * Resolves when at least one bootstrap server accepts a TCP connection; otherwise fails with one
 * line naming them. A refused connection answers at once; a silent host waits up to `timeoutMs`.
 */
export async function checkReachable(bootstrap: string, timeoutMs: number): Promise<void> {
  let servers: { host: string; port: number }[];
  try {
    servers = parseBootstrap(bootstrap);
  } catch (e) {
    throw new UsageError(`--bootstrap: ${(e as Error).message}`);
  }
  const attempt = (s: { host: string; port: number }): Promise<string | null> =>
    new Promise((resolve) => {
      const socket = connect({ host: s.host, port: s.port });
      const timer = setTimeout(() => {
        socket.destroy();
        resolve(`${s.host}:${s.port}: no answer within ${timeoutMs} ms`);
      }, timeoutMs);
      socket.once("connect", () => {
        clearTimeout(timer);
        socket.destroy();
        resolve(null);
      });
      socket.once("error", (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        resolve(`${s.host}:${s.port}: ${e.code ?? e.message}`);
      });
    });
  const failures = await Promise.all(servers.map(attempt));
  if (failures.some((f) => f === null)) return;
  throw new CommandError(`cannot reach the cluster (${failures.join("; ")}); check --bootstrap or SLUICE_BOOTSTRAP`);
}

/** The timeout for the reachability check: short, since a refused connection answers at once. */
export const reachTimeoutMs = (g: GlobalOptions): number => Math.min(g.requestTimeout, 5000);

/** An admin client on the global bootstrap servers, once they are known to answer. */
export async function openAdmin(g: GlobalOptions): Promise<Admin> {
  await checkReachable(g.bootstrap, reachTimeoutMs(g));
  return new Admin({ bootstrapServers: g.bootstrap, requestTimeoutMs: g.requestTimeout });
}

/** Runs `body` with an admin client and closes it afterwards. */
export async function withAdmin<T>(g: GlobalOptions, body: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = await openAdmin(g);
  try {
    return await body(admin);
  } finally {
    await admin.close();
  }
}
