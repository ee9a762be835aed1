// @sluice/broker: the broker, and `startBroker` to run one inside a Node process (tests, tools).

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { Broker } from "./broker.ts";
import { buildConfig } from "./config.ts";
import { defaultPlugins } from "./plugins.ts";

export { Broker, type BrokerOptions, type BrokerPlugin } from "./broker.ts";
export { buildConfig, ConfigError } from "./config.ts";

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
  const broker = new Broker({ config, logger: pino({ level: opts.logLevel ?? "silent" }), plugins: defaultPlugins() });
  await broker.start();
  return {
    bootstrap: `127.0.0.1:${broker.port}`,
    port: broker.port,
    logDir,
    broker,
    async stop() {
      await broker.stop();
      if (temp) rmSync(logDir, { recursive: true, force: true });
    },
  };
}
