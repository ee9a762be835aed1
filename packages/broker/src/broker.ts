// The broker process: opens the logs and metadata, listens for Kafka clients, and shuts down
// gracefully (stop accepting, answer what is in flight, snapshot producer state, flush and
// checkpoint every log).

import { createServer, type Server, type Socket } from "node:net";
import { LogManager } from "@sluice/storage";
import pino, { type Logger } from "pino";
import type { BrokerConfig } from "./config.ts";
import { ignoredConfigs, toSafeNumber } from "./config.ts";
import { Connection } from "./connection.ts";
import type { BrokerContext, Clock } from "./context.ts";
import type { VersionRange } from "./handlers/18-api-versions.ts";
import { buildRegistry, servedApis } from "./handlers/index.ts";
import type { AnyHandler } from "./handlers/types.ts";
import { LocalMetadataStore, type MetadataStore } from "./metadata-store.ts";
import { TopicManager, type TopicState } from "./topics.ts";

export interface BrokerOptions {
  readonly config: BrokerConfig;
  readonly logger?: Logger;
  readonly clock?: Clock;
  readonly store?: MetadataStore;
  /** Extra handlers (coordinators) and their start/stop hooks. */
  readonly plugins?: readonly BrokerPlugin[];
  /** Test hook: wraps every handler of the dispatch table (fault injection, src/faults.ts). */
  readonly wrapHandler?: (handler: AnyHandler) => AnyHandler;
}

export interface BrokerPlugin {
  handlers(ctx: BrokerContext): AnyHandler[];
  start?(ctx: BrokerContext): Promise<void>;
  stop?(): Promise<void>;
}

export interface Listener {
  host: string;
  port: number;
}

export function parseListener(spec: string): Listener {
  const m = /^(?:[A-Z_]+:\/\/)?\[?([^\]]*)\]?:(\d+)$/.exec(spec.trim());
  if (!m) throw new Error(`bad listener ${spec}: expected PLAINTEXT://host:port`);
  return { host: m[1] === "" ? "0.0.0.0" : m[1]!, port: Number(m[2]) };
}

export class Broker {
  readonly config: BrokerConfig;
  readonly logger: Logger;
  private readonly clock: Clock;
  private readonly store: MetadataStore | undefined;
  private readonly plugins: readonly BrokerPlugin[];
  private readonly wrapHandler: ((handler: AnyHandler) => AnyHandler) | undefined;
  private server: Server | null = null;
  private logs: LogManager | null = null;
  private readonly connections = new Set<Connection>();
  context: BrokerContext | null = null;
  port = 0;
  private stopping: Promise<void> | null = null;

  constructor(opts: BrokerOptions) {
    this.config = opts.config;
    this.logger = opts.logger ?? pino({ level: "info" });
    this.clock = opts.clock ?? { nowMs: () => Date.now() };
    this.store = opts.store;
    this.plugins = opts.plugins ?? [];
    this.wrapHandler = opts.wrapHandler;
  }

  async start(): Promise<void> {
    const cfg = this.config;
    const logDirs = cfg.list("log.dirs");
    this.logs = await LogManager.open(
      logDirs,
      {},
      {
        clock: this.clock,
        checkIntervalMs: toSafeNumber(cfg.get("log.retention.check.interval.ms")),
        onError: (e, log) =>
          this.logger.error({ err: e, topic: log.topic, partition: log.partition }, "background log work failed"),
      },
    );
    const topics = new TopicManager(cfg, this.logs, this.store ?? new LocalMetadataStore(logDirs[0]!));
    await topics.load();
    const listener = parseListener(cfg.list("listeners")[0]!);
    const advertised = cfg.list("advertised.listeners")[0];
    const adv = advertised ? parseListener(advertised) : null;
    const self = this;
    let apis: readonly VersionRange[] = [];
    const ctx: BrokerContext = {
      config: cfg,
      nodeId: cfg.int("node.id"),
      get advertisedHost() {
        return adv?.host ?? (listener.host === "0.0.0.0" || listener.host === "::" ? "localhost" : listener.host);
      },
      get advertisedPort() {
        return adv && adv.port !== 0 ? adv.port : self.port;
      },
      topics,
      get apis() {
        return apis;
      },
      clock: this.clock,
      logger: this.logger,
      logDirs,
      services: new Map(),
      autoCreateTopic: async (name: string): Promise<TopicState | null> => {
        if (!cfg.bool("auto.create.topics.enable")) return null;
        return topics.create(name, cfg.int("num.partitions"), {});
      },
    };
    this.context = ctx;
    const registry = buildRegistry(this.plugins.flatMap((p) => p.handlers(ctx)));
    const wrap = this.wrapHandler;
    const handlers = wrap ? new Map([...registry].map(([key, h]) => [key, wrap(h)])) : registry;
    apis = servedApis(handlers);
    for (const p of this.plugins) await p.start?.(ctx);
    this.logs.start();
    const limits = {
      requestBytesMax: cfg.int("socket.request.max.bytes"),
      inFlightMax: cfg.int("queued.max.requests"),
      idleMs: toSafeNumber(cfg.get("connections.max.idle.ms")),
    };
    const maxConnections = cfg.int("max.connections");
    // Accepted sockets start paused: the connection moves each one's handle into a socket whose
    // reads it steers (frame-reader.ts) before anything is read.
    this.server = createServer({ pauseOnConnect: true }, (socket: Socket) => {
      if (this.connections.size >= maxConnections) {
        socket.destroy();
        return;
      }
      const c = new Connection(socket, ctx, handlers, limits, (closed) => this.connections.delete(closed));
      this.connections.add(c);
    });
    await new Promise<void>((resolve, reject) => {
      this.server!.once("error", reject);
      this.server!.listen(listener.port, listener.host, () => resolve());
    });
    const addr = this.server.address();
    this.port = typeof addr === "object" && addr !== null ? addr.port : listener.port;
    await topics.registerBroker({ nodeId: ctx.nodeId, host: ctx.advertisedHost, port: ctx.advertisedPort, rack: null });
    const ignored = ignoredConfigs(cfg);
    if (ignored.length > 0) this.logger.warn({ configs: ignored }, "these Kafka configs have no effect in Sluice");
    this.logger.info({ host: listener.host, port: this.port, logDirs, nodeId: ctx.nodeId }, "Sluice broker started");
  }

  /** Graceful shutdown; safe to call more than once. */
  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    const server = this.server;
    // Stop accepting now; the close callback fires only once every connection has ended.
    const serverClosed = server ? new Promise<void>((r) => server.close(() => r())) : Promise.resolve();
    for (const c of this.connections) c.stopReading();
    // Answer what is in flight, but give up after 5 s (a long poll may hold a request open).
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all([...this.connections].map((c) => c.drained())),
      new Promise((r) => {
        timer = setTimeout(r, 5000);
      }),
    ]);
    clearTimeout(timer);
    for (const c of [...this.connections]) c.close();
    await serverClosed;
    for (const p of this.plugins) await p.stop?.();
    await this.context?.topics
      .snapshotProducers()
      .catch((e) => this.logger.error({ err: e }, "producer snapshot failed"));
    await this.logs?.close();
    this.logger.info("Sluice broker stopped");
  }
}
