// Runs a broker from command-line arguments (the process entry point is main.ts):
//   node packages/broker/src/main.ts [--config server.properties] [--<config.name> value ...]
//                                    [--override name=value ...]
// Sources, later overriding earlier: the properties file, SLUICE_* environment variables
// (SLUICE_LOG_DIRS → log.dirs), then command-line flags. An invalid config names the key and
// exits with status 2 before anything starts.

import pino from "pino";
import { Broker } from "./broker.ts";
import { buildConfig, ConfigError, fromEnv, loadPropertiesFile } from "./config.ts";
import { defaultPlugins } from "./plugins.ts";

function parseArgs(argv: string[]): { file: string | null; flags: Map<string, string> } {
  const flags = new Map<string, string>();
  let file: string | null = null;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new ConfigError(a, "needs a value");
      return v;
    };
    if (a === "--config") file = next();
    else if (a === "--override") {
      const kv = next();
      const eq = kv.indexOf("=");
      if (eq <= 0) throw new ConfigError(kv, "--override takes name=value");
      flags.set(kv.slice(0, eq), kv.slice(eq + 1));
    } else if (a.startsWith("--") && a.includes("=")) {
      const eq = a.indexOf("=");
      flags.set(a.slice(2, eq), a.slice(eq + 1));
    } else if (a.startsWith("--")) flags.set(a.slice(2), next());
    else throw new ConfigError(a, "unexpected argument (use --name value)");
  }
  return { file, flags };
}

/** Runs a broker from command-line arguments until SIGTERM/SIGINT (also used by `sluice start`). */
export async function runBroker(argv: string[]): Promise<void> {
  let broker: Broker;
  try {
    const { file, flags } = parseArgs(argv);
    const config = buildConfig(file ? loadPropertiesFile(file) : new Map(), fromEnv(process.env), flags);
    const logger = pino({ level: process.env.SLUICE_LOG_LEVEL ?? "info" });
    broker = new Broker({ config, logger, plugins: defaultPlugins() });
    await broker.start();
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`sluice: ${e.message}\n`);
      process.exit(2);
    }
    process.stderr.write(`sluice: cannot start: ${(e as Error).message}\n`);
    process.exit(1);
  }
  process.stdout.write(
    `Sluice listening on port ${broker.port}, data in ${broker.config.list("log.dirs").join(", ")}\n`,
  );
  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    broker.logger.info({ signal }, "shutting down");
    broker.stop().then(
      () => process.exit(0),
      (e) => {
        broker.logger.error({ err: e }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
}
