// The `sluice` command: run a broker, manage topics, produce and consume against any
// Kafka-compatible cluster (--bootstrap or SLUICE_BOOTSTRAP, default localhost:9092).
// Human-readable output by default, --json for scripts. A wrong argument prints a clear message
// and exits with status 2; a failed operation prints "sluice: <reason>" and exits with status 1.

import { createInterface } from "node:readline";
import { Consumer, KafkaError, Producer } from "@sluice/client";
import { Command, CommanderError, Option } from "commander";
import {
  acksOf,
  checkReachable,
  collect,
  globals,
  openAdmin,
  parseKeyValues,
  positiveInt,
  print,
  reachTimeoutMs,
  table,
  UsageError,
} from "./common.ts";
import { groupCommands } from "./group.ts";
import { perfCommands } from "./perf.ts";

const program = new Command("sluice")
  .description("Sluice: a Kafka-compatible streaming platform")
  .addOption(
    new Option("-b, --bootstrap <servers>", "bootstrap servers (host:port,...)")
      .env("SLUICE_BOOTSTRAP")
      .default("localhost:9092"),
  )
  .option("--json", "machine-readable output", false)
  .option(
    "--request-timeout <ms>",
    "how long a request may take, retries included (request.timeout.ms)",
    positiveInt("--request-timeout"),
    30000,
  )
  .exitOverride()
  .configureOutput({ writeErr: (s) => process.stderr.write(s) });

program
  .command("start")
  .description(
    "run a broker (flags are broker configs: --log.dirs ./data --listeners PLAINTEXT://0.0.0.0:9092, or --config file)",
  )
  .allowUnknownOption(true)
  .helpOption(false)
  .argument("[args...]")
  .action(async (args: string[]) => {
    const { runBroker } = await import("@sluice/broker/run-broker.ts");
    await runBroker(args.length > 0 ? args : ["--log.dirs", "./data"]);
  });

const topic = program.command("topic").description("create, list, describe, alter and delete topics");

topic
  .command("create <name>")
  .description("create a topic")
  .option("-p, --partitions <n>", "number of partitions (broker default when omitted)", positiveInt("--partitions"))
  .option(
    "-r, --replication-factor <n>",
    "replication factor (broker default when omitted)",
    positiveInt("--replication-factor"),
  )
  .option("-c, --config <key=value>", "topic config, repeatable", collect)
  .action(
    async (name: string, o: { partitions?: number; replicationFactor?: number; config?: string[] }, cmd: Command) => {
      const g = globals(cmd);
      const admin = await openAdmin(g);
      try {
        await admin.createTopics([
          {
            name,
            numPartitions: o.partitions ?? -1,
            replicationFactor: o.replicationFactor ?? -1,
            configs: parseKeyValues(o.config, "--config"),
          },
        ]);
        print(g.json, { created: name }, () => `created topic ${name}`);
      } finally {
        await admin.close();
      }
    },
  );

topic
  .command("list")
  .description("list topics")
  .action(async (_o: unknown, cmd: Command) => {
    const g = globals(cmd);
    const admin = await openAdmin(g);
    try {
      const topics = await admin.listTopics();
      print(g.json, topics, () => topics.join("\n"));
    } finally {
      await admin.close();
    }
  });

topic
  .command("describe <name>")
  .description("partitions, leaders, ISR and offsets of a topic")
  .action(async (name: string, _o: unknown, cmd: Command) => {
    const g = globals(cmd);
    const admin = await openAdmin(g);
    try {
      const [d] = await admin.describeTopics([name]);
      const earliest = await admin.listOffsets(name, "earliest");
      const latest = await admin.listOffsets(name, "latest");
      const parts = d!.partitions.map((p) => ({
        partition: p.partition,
        leader: p.leader,
        replicas: p.replicas,
        isr: p.isr,
        startOffset: earliest.find((e) => e.partition === p.partition)?.offset ?? -1n,
        endOffset: latest.find((e) => e.partition === p.partition)?.offset ?? -1n,
      }));
      print(g.json, { name, topicId: d!.topicId, partitions: parts }, () =>
        [
          `topic ${name} (id ${d!.topicId}), ${parts.length} partition(s)`,
          table([
            ["PARTITION", "LEADER", "REPLICAS", "ISR", "START", "END"],
            ...parts.map((p) => [
              String(p.partition),
              String(p.leader),
              p.replicas.join(","),
              p.isr.join(","),
              String(p.startOffset),
              String(p.endOffset),
            ]),
          ]),
        ].join("\n"),
      );
    } finally {
      await admin.close();
    }
  });

topic
  .command("alter <name>")
  .description("set (key=value) or delete (key=) topic configs, or grow the partition count")
  .option("-c, --config <key=value>", "config to set; key= deletes it; repeatable", collect)
  .option("-p, --partitions <n>", "new (larger) partition count", positiveInt("--partitions"))
  .action(async (name: string, o: { config?: string[]; partitions?: number }, cmd: Command) => {
    const g = globals(cmd);
    if (!o.config && o.partitions === undefined) throw new UsageError("topic alter needs --config or --partitions");
    const admin = await openAdmin(g);
    try {
      if (o.partitions !== undefined) await admin.createPartitions(name, o.partitions);
      if (o.config) {
        const changes = Object.fromEntries(
          Object.entries(parseKeyValues(o.config, "--config")).map(([k, v]) => [k, v === "" ? null : v]),
        );
        await admin.alterConfigs({ type: "topic", name }, changes);
      }
      print(g.json, { altered: name }, () => `altered topic ${name}`);
    } finally {
      await admin.close();
    }
  });

topic
  .command("delete <name>")
  .description("delete a topic")
  .action(async (name: string, _o: unknown, cmd: Command) => {
    const g = globals(cmd);
    const admin = await openAdmin(g);
    try {
      await admin.deleteTopics([name]);
      print(g.json, { deleted: name }, () => `deleted topic ${name}`);
    } finally {
      await admin.close();
    }
  });

groupCommands(program);
perfCommands(program);

program
  .command("produce <topic> [values...]")
  .description("produce the values given, or one record per line of stdin")
  .option("-K, --key-separator <sep>", "split each value into key<sep>value")
  .option("-H, --header <key=value>", "header for every record, repeatable", collect)
  .option("-p, --partition <n>", "partition (default: by key, or sticky)", positiveInt("--partition"))
  .addOption(new Option("--acks <acks>", "acknowledgements").choices(["0", "1", "all", "-1"]).default("all"))
  .addOption(
    new Option("-z, --compression <codec>", "compression")
      .choices(["none", "gzip", "snappy", "lz4", "zstd"])
      .default("none"),
  )
  .action(
    async (
      topicName: string,
      values: string[],
      o: {
        keySeparator?: string;
        header?: string[];
        partition?: number;
        acks: string;
        compression: "none" | "gzip" | "snappy" | "lz4" | "zstd";
      },
      cmd: Command,
    ) => {
      const g = globals(cmd);
      const headers = parseKeyValues(o.header, "--header");
      const acks = acksOf(o.acks);
      await checkReachable(g.bootstrap, reachTimeoutMs(g));
      const producer = new Producer({
        bootstrapServers: g.bootstrap,
        requestTimeoutMs: g.requestTimeout,
        acks,
        compressionType: o.compression,
        enableIdempotence: acks === -1,
      });
      const pending: Promise<{ partition: number; offset: bigint }>[] = [];
      const sendLine = (line: string): void => {
        let key: string | null = null;
        let value = line;
        if (o.keySeparator !== undefined) {
          const i = line.indexOf(o.keySeparator);
          if (i >= 0) {
            key = line.slice(0, i);
            value = line.slice(i + o.keySeparator.length);
          }
        }
        pending.push(
          producer.send({
            topic: topicName,
            key,
            value,
            headers,
            ...(o.partition !== undefined ? { partition: o.partition } : {}),
          }),
        );
      };
      try {
        if (values.length > 0) values.forEach(sendLine);
        else for await (const line of createInterface({ input: process.stdin })) if (line.length > 0) sendLine(line);
        const results = await Promise.all(pending);
        print(
          g.json,
          results.map((r) => ({ partition: r.partition, offset: r.offset })),
          () => results.map((r) => `${topicName}-${r.partition}@${r.offset}`).join("\n"),
        );
      } finally {
        await producer.close();
      }
    },
  );

type From =
  | { kind: "beginning" }
  | { kind: "end" }
  | { kind: "offset"; offset: bigint }
  | { kind: "time"; timestampMs: bigint };

/** consume --from: beginning, end, an offset, @<epoch ms>, or an ISO date-time. */
function parseFrom(where: string): From {
  if (where === "beginning" || where === "end") return { kind: where };
  if (/^\d+$/.test(where)) return { kind: "offset", offset: BigInt(where) };
  if (/^@\d+$/.test(where)) return { kind: "time", timestampMs: BigInt(where.slice(1)) };
  const ms = /^\d{4}-\d{2}-\d{2}/.test(where) ? Date.parse(where) : Number.NaN;
  if (Number.isNaN(ms))
    throw new UsageError(
      `--from must be beginning, end, an offset, @<epoch ms> or a date-time like 2024-05-01T12:00:00Z, got "${where}"`,
    );
  return { kind: "time", timestampMs: BigInt(ms) };
}

program
  .command("consume <topic>")
  .description("print records of a topic (all partitions)")
  .option(
    "--from <where>",
    "beginning, end, an offset, or a time: @<epoch ms> or an ISO date-time (the first record at or after it)",
    "beginning",
  )
  .option("-g, --group <id>", "consume as a member of this group (commits offsets)")
  .option("-n, --count <n>", "stop after n records", positiveInt("--count"))
  .option("-f, --follow", "keep waiting for new records", false)
  .option(
    "--format <template>",
    "kcat-like: %t topic, %p partition, %o offset, %k key, %s value, %T timestamp, %h headers",
    "%s",
  )
  .action(
    async (
      topicName: string,
      o: { from: string; group?: string; count?: number; follow: boolean; format: string },
      cmd: Command,
    ) => {
      const g = globals(cmd);
      const from = parseFrom(o.from);
      if (o.group && (from.kind === "offset" || from.kind === "time"))
        throw new UsageError(
          "with --group, --from is beginning or end (where members start without a committed offset); reset a group with `sluice group reset-offsets`",
        );
      const admin = await openAdmin(g);
      const consumer = new Consumer({
        bootstrapServers: g.bootstrap,
        requestTimeoutMs: g.requestTimeout,
        autoOffsetReset: from.kind === "end" ? "latest" : "earliest",
        ...(o.group ? { groupId: o.group } : {}),
      });
      try {
        const [d] = await admin.describeTopics([topicName]);
        const ends = new Map((await admin.listOffsets(topicName, "latest")).map((e) => [e.partition, e.offset]));
        if (o.group) await consumer.subscribe([topicName]);
        else {
          // A time: each partition starts at its first offset with a timestamp at or after it
          // (ListOffsets), or at its end when it has none that recent.
          const byTime =
            from.kind === "time"
              ? new Map(
                  (await admin.listOffsets(topicName, from.timestampMs)).map((e) => [
                    e.partition,
                    e.offset < 0n ? (ends.get(e.partition) ?? 0n) : e.offset,
                  ]),
                )
              : null;
          consumer.assign(
            d!.partitions.map((p) => {
              const offset = from.kind === "offset" ? from.offset : byTime?.get(p.partition);
              return offset === undefined
                ? { topic: topicName, partition: p.partition }
                : { topic: topicName, partition: p.partition, offset };
            }),
          );
        }
        let printed = 0;
        let idlePolls = 0;
        const text = (b: Uint8Array | null): string => (b === null ? "" : Buffer.from(b).toString());
        while (o.count === undefined || printed < o.count) {
          const records = await consumer.poll(500);
          if (records.length === 0) {
            idlePolls++;
            const atEnd = [...ends].every(([p, end]) => (consumer.position(topicName, p) ?? -1n) >= end);
            if (!o.follow && (atEnd || idlePolls > 20)) break;
            continue;
          }
          idlePolls = 0;
          for (const r of records) {
            if (o.count !== undefined && printed >= o.count) break;
            printed++;
            if (g.json) {
              print(
                true,
                {
                  topic: r.topic,
                  partition: r.partition,
                  offset: r.offset,
                  timestamp: r.timestamp,
                  key: r.key === null ? null : text(r.key),
                  value: r.value === null ? null : text(r.value),
                  headers: Object.fromEntries(r.headers.map((h) => [h.key, text(h.value)])),
                },
                () => "",
              );
            } else {
              const headers = r.headers.map((h) => `${h.key}=${text(h.value)}`).join(",");
              const line = o.format.replace(
                /%[tpokTsh]/g,
                (m) =>
                  ({
                    "%t": r.topic,
                    "%p": String(r.partition),
                    "%o": String(r.offset),
                    "%k": text(r.key),
                    "%s": text(r.value),
                    "%T": String(r.timestamp),
                    "%h": headers,
                  })[m] ?? m,
              );
              process.stdout.write(`${line}\n`);
            }
          }
        }
        if (o.group) await consumer.commit();
      } finally {
        await consumer.close();
        await admin.close();
      }
    },
  );

/** One line for the user: the reason, never a stack trace. */
function reason(e: unknown): string {
  if (e instanceof KafkaError && e.code === "TIMEOUT") return `${e.message} (raise --request-timeout to wait longer)`;
  return e instanceof Error ? e.message : String(e);
}

// Failures in clients' background work surface here rather than as a crash with a stack trace.
process.on("unhandledRejection", (e) => {
  process.stderr.write(`sluice: ${reason(e)}\n`);
  process.exit(1);
});

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) {
    // Help and version exit 0; usage errors were already printed by commander.
    process.exit(e.exitCode === 0 ? 0 : 2);
  }
  if (e instanceof UsageError) {
    process.stderr.write(`sluice: ${e.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`sluice: ${reason(e)}\n`);
  process.exit(1);
}
