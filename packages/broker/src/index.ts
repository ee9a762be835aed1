// @sluice/broker: the broker, and `startBroker` to run one inside a Node process (tests, tools).
//
// startBroker() gives a single-node broker on 127.0.0.1 and a free port, with its data in a fresh
// temporary directory (removed by stop()), ready when the promise resolves (a few milliseconds);
// several can run side by side in one process. `faults` injects errors, delays and dropped
// connections into the next requests of an API key (src/faults.ts; docs/testing.md).

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { Broker } from "./broker.ts";
import { buildConfig } from "./config.ts";
import { FaultInjector } from "./faults.ts";
import { defaultPlugins } from "./plugins.ts";

export { ApiKey, ErrorCode } from "@sluice/protocol";
export { Broker, type BrokerOptions, type BrokerPlugin } from "./broker.ts";
export { buildConfig, ConfigError } from "./config.ts";
export { ERROR_RESPONSE_APIS, type Fault, FaultInjector, type FaultSpec } from "./faults.ts";

export interface StartBrokerOptions {
  /** Data directory; a fresh temporary one (removed on stop) when omitted. */
  logDir?: string;
  /** 0 (default) picks a free port. */
  port?: number;
  /** Extra broker configs, Kafka names. */
  config?: Record<string, string>;
  logLevel?: string;
}

export interface RunningBroker {
  readonly bootstrap: string;
  readonly port: number;
  readonly logDir: string;
  readonly broker: Broker;
  /** Errors, delays and dropped connections for the next requests of an API key. */
  readonly faults: FaultInjector;
  stop(): Promise<void>;
}

/** Starts a broker in this process on 127.0.0.1. */
export async function startBroker(opts: StartBrokerOptions = {}): Promise<RunningBroker> {
  const temp = opts.logDir === undefined;
  const logDir = opts.logDir ?? mkdtempSync(join(tmpdir(), "sluice-"));
  const config = buildConfig(
    new Map(
      Object.entries({
        "log.dirs": logDir,
        listeners: `PLAINTEXT://127.0.0.1:${opts.port ?? 0}`,
        "group.initial.rebalance.delay.ms": "0",
        ...opts.config,
      }),
    ),
  );
  const faults = new FaultInjector();
  const broker = new Broker({
    config,
    logger: pino({ level: opts.logLevel ?? "silent" }),
    plugins: defaultPlugins(),
    wrapHandler: (h) => faults.wrap(h),
  });
  try {
    await broker.start();
  } catch (e) {
    await broker.stop().catch(() => {});
    if (temp) rmSync(logDir, { recursive: true, force: true });
    throw e;
  }
  return {
    bootstrap: `127.0.0.1:${broker.port}`,
    port: broker.port,
    logDir,
    broker,
    faults,
    async stop() {
      faults.clear();
      await broker.stop();
      if (temp) rmSync(logDir, { recursive: true, force: true });
    },
  };
}
