// `sluice perf produce|consume`: throughput tests in the manner of kafka-producer-perf-test and
// kafka-consumer-perf-test.
//
// produce sends --num-records records of --record-size bytes (one random payload of uppercase
// letters, as Kafka's tool does), at most --throughput records/s (-1: as fast as possible), and
// times each record from send() to its acknowledgement. Latencies are kept for at most 500 000
// records (every n-th one beyond that, as Kafka samples); count, average and max cover all.
// Outstanding records are bounded by buffer.memory so memory stays flat whatever the count.
//
// On a terminal (stdout is a TTY) a progress line is rewritten in place every 500 ms; the final
// summary replaces it. --json prints only the summary, as one JSON object.

import { Admin, Consumer, fromJavaProperties, Producer } from "@sluice/client";
import { type Command, Option } from "commander";
import {
  acksOf,
  CommandError,
  checkReachable,
  collect,
  globals,
  integer,
  jsonText,
  parseKeyValues,
  positiveInt,
  reachTimeoutMs,
  UsageError,
} from "./common.ts";

const MB = 1024 * 1024;
const PROGRESS_INTERVAL_MS = 500;
const LATENCY_SAMPLES_MAX = 500_000;

/** A line rewritten in place on a terminal; nothing otherwise. */
class ProgressLine {
  private readonly timer: NodeJS.Timeout | null;
  private shown = false;

  constructor(render: () => string) {
    this.timer = process.stdout.isTTY
      ? setInterval(() => {
          process.stdout.write(`\r\x1b[K${render()}`);
          this.shown = true;
        }, PROGRESS_INTERVAL_MS)
      : null;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.shown) process.stdout.write("\r\x1b[K");
  }
}

/** Latencies in ms: all of them counted, up to LATENCY_SAMPLES_MAX kept for percentiles. */
class Latencies {
  private readonly samples: Float64Array;
  private readonly stride: number;
  private kept = 0;
  count = 0;
  sumMs = 0;
  maxMs = 0;

  constructor(expected: number) {
    this.stride = Math.max(1, Math.ceil(expected / LATENCY_SAMPLES_MAX));
    this.samples = new Float64Array(Math.min(Math.max(expected, 1), LATENCY_SAMPLES_MAX));
  }

  record(ms: number): void {
    if (this.count % this.stride === 0 && this.kept < this.samples.length) this.samples[this.kept++] = ms;
    this.count++;
    this.sumMs += ms;
    if (ms > this.maxMs) this.maxMs = ms;
  }

  summary(): { avg: number; p50: number; p95: number; p99: number; p999: number; max: number } {
    const sorted = this.samples.subarray(0, this.kept).sort();
    const at = (q: number): number =>
      sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
    const r = (x: number): number => Math.round(x * 100) / 100;
    return {
      avg: r(this.count === 0 ? 0 : this.sumMs / this.count),
      p50: r(at(0.5)),
      p95: r(at(0.95)),
      p99: r(at(0.99)),
      p999: r(at(0.999)),
      max: r(this.maxMs),
    };
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const yieldToLoop = (): Promise<void> => new Promise((r) => setImmediate(r));
const fixed = (x: number, digits = 1): string => x.toFixed(digits);

function payload(size: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) b[i] = 65 + Math.floor(Math.random() * 26);
  return b;
}

interface PerfProduceOptions {
  numRecords: number;
  recordSize: number;
  throughput: number;
  acks: string;
  compression: "none" | "gzip" | "snappy" | "lz4" | "zstd";
  batchSize?: number;
  lingerMs?: number;
  producerProps?: string[];
}

async function perfProduce(topic: string, o: PerfProduceOptions, cmd: Command): Promise<void> {
  const g = globals(cmd);
  if (o.numRecords < 1) throw new UsageError("--num-records must be at least 1");
  if (o.throughput === 0 || o.throughput < -1)
    throw new UsageError(`--throughput must be a positive rate in records/s, or -1 for no limit, got ${o.throughput}`);
  let props: Record<string, unknown>;
  try {
    props = fromJavaProperties(parseKeyValues(o.producerProps, "--producer-props"));
  } catch (e) {
    throw new UsageError(`--producer-props: ${(e as Error).message}`);
  }
  await checkReachable(g.bootstrap, reachTimeoutMs(g));
  const acks = acksOf(o.acks);
  const producer = new Producer({
    bootstrapServers: g.bootstrap,
    requestTimeoutMs: g.requestTimeout,
    acks,
    compressionType: o.compression,
    enableIdempotence: acks === -1,
    ...(o.batchSize !== undefined ? { batchSize: o.batchSize } : {}),
    ...(o.lingerMs !== undefined ? { lingerMs: o.lingerMs } : {}),
    ...props,
  });
  const value = payload(o.recordSize);
  const bufferMemory = (props.bufferMemory as number | undefined) ?? 32 * MB;
  const outstandingMax = Math.max(1, Math.min(100_000, Math.floor(bufferMemory / (o.recordSize + 64))));
  const latencies = new Latencies(o.numRecords);
  let sent = 0;
  let acked = 0;
  let failed = 0;
  let firstError: Error | null = null;
  let wake: (() => void) | null = null;
  let windowAcked = 0;
  let windowStart = performance.now();
  const start = performance.now();
  const progress = new ProgressLine(() => {
    const now = performance.now();
    const rate = ((acked - windowAcked) * 1000) / Math.max(1, now - windowStart);
    windowAcked = acked;
    windowStart = now;
    const l = latencies.summary();
    return `${acked}/${o.numRecords} records acknowledged, ${fixed(rate)} records/s (${fixed((rate * o.recordSize) / MB, 2)} MB/s), avg latency ${fixed(l.avg, 2)} ms, max ${fixed(l.max, 2)} ms`;
  });
  try {
    for (let i = 0; i < o.numRecords; i++) {
      if (o.throughput > 0) {
        const dueMs = start + (i * 1000) / o.throughput - performance.now();
        if (dueMs >= 2) await sleep(dueMs);
      }
      while (sent - acked - failed >= outstandingMax) await new Promise<void>((r) => (wake = r));
      const sentAt = performance.now();
      sent++;
      producer.send({ topic, value }).then(
        () => {
          latencies.record(performance.now() - sentAt);
          acked++;
          wake?.();
          wake = null;
        },
        (e: Error) => {
          failed++;
          firstError ??= e;
          wake?.();
          wake = null;
        },
      );
      if (i % 1000 === 999) await yieldToLoop();
      if (firstError) break;
    }
    await producer.flush();
    while (acked + failed < sent) await new Promise<void>((r) => (wake = r));
  } finally {
    progress.stop();
    await producer.close();
  }
  const elapsedMs = performance.now() - start;
  const recordsPerSec = (acked * 1000) / elapsedMs;
  const l = latencies.summary();
  const summary = {
    topic,
    records: acked,
    failed,
    recordSize: o.recordSize,
    bytes: acked * o.recordSize,
    elapsedMs: Math.round(elapsedMs),
    recordsPerSec: Math.round(recordsPerSec * 10) / 10,
    mbPerSec: Math.round(((recordsPerSec * o.recordSize) / MB) * 100) / 100,
    latencyMs: l,
  };
  process.stdout.write(
    g.json
      ? `${jsonText(summary)}\n`
      : `${acked} records sent, ${fixed(recordsPerSec)} records/sec (${fixed(summary.mbPerSec, 2)} MB/sec), ` +
          `${fixed(l.avg, 2)} ms avg latency, ${fixed(l.max, 2)} ms max latency, ` +
          `${fixed(l.p50, 2)} ms 50th, ${fixed(l.p95, 2)} ms 95th, ${fixed(l.p99, 2)} ms 99th, ${fixed(l.p999, 2)} ms 99.9th.\n`,
  );
  if (firstError) throw new CommandError(`${failed} record(s) failed; the first: ${(firstError as Error).message}`);
}

interface PerfConsumeOptions {
  numRecords?: number;
  group?: string;
  timeout: number;
  fromLatest: boolean;
  consumerProps?: string[];
}

async function perfConsume(topic: string, o: PerfConsumeOptions, cmd: Command): Promise<void> {
  const g = globals(cmd);
  let props: Record<string, unknown>;
  try {
    props = fromJavaProperties(parseKeyValues(o.consumerProps, "--consumer-props"));
  } catch (e) {
    throw new UsageError(`--consumer-props: ${(e as Error).message}`);
  }
  await checkReachable(g.bootstrap, reachTimeoutMs(g));
  const consumer = new Consumer({
    bootstrapServers: g.bootstrap,
    requestTimeoutMs: g.requestTimeout,
    autoOffsetReset: o.fromLatest ? "latest" : "earliest",
    allowAutoCreateTopics: false,
    ...(o.group ? { groupId: o.group } : {}),
    ...props,
  });
  const start = performance.now();
  let records = 0;
  let bytes = 0;
  let firstRecordMs: number | null = null;
  let windowRecords = 0;
  let windowStart = start;
  const progress = new ProgressLine(() => {
    const now = performance.now();
    const rate = ((records - windowRecords) * 1000) / Math.max(1, now - windowStart);
    windowRecords = records;
    windowStart = now;
    return `${records}${o.numRecords ? `/${o.numRecords}` : ""} records consumed, ${fixed(rate)} records/s, ${fixed(bytes / MB, 2)} MB`;
  });
  let timedOut = false;
  let lastRecordAt = start;
  try {
    if (o.group) await consumer.subscribe([topic]);
    else {
      const admin = new Admin({ bootstrapServers: g.bootstrap, requestTimeoutMs: g.requestTimeout });
      try {
        const [d] = await admin.describeTopics([topic]);
        consumer.assign(d!.partitions.map((p) => ({ topic, partition: p.partition })));
      } finally {
        await admin.close();
      }
    }
    lastRecordAt = performance.now();
    while (o.numRecords === undefined || records < o.numRecords) {
      const batch = await consumer.poll(Math.min(o.timeout, 500));
      const now = performance.now();
      if (batch.length === 0) {
        if (now - lastRecordAt >= o.timeout) {
          timedOut = true;
          break;
        }
        continue;
      }
      lastRecordAt = now;
      firstRecordMs ??= now - start;
      for (const r of batch) {
        records++;
        bytes += (r.key?.byteLength ?? 0) + (r.value?.byteLength ?? 0);
      }
    }
    if (o.group) await consumer.commit();
  } finally {
    progress.stop();
    await consumer.close();
  }
  // Ended by the idle timeout: the time waited after the last record is not consumption time.
  const elapsedMs = Math.max(1, (timedOut ? lastRecordAt : performance.now()) - start);
  const recordsPerSec = (records * 1000) / elapsedMs;
  const summary = {
    topic,
    records,
    bytes,
    mb: Math.round((bytes / MB) * 1000) / 1000,
    elapsedMs: Math.round(elapsedMs),
    recordsPerSec: Math.round(recordsPerSec * 10) / 10,
    mbPerSec: Math.round(((bytes * 1000) / elapsedMs / MB) * 100) / 100,
    firstRecordMs: firstRecordMs === null ? null : Math.round(firstRecordMs),
  };
  process.stdout.write(
    g.json
      ? `${jsonText(summary)}\n`
      : `${records} records (${fixed(summary.mb, 3)} MB) consumed in ${fixed(elapsedMs / 1000, 2)} s, ` +
          `${fixed(recordsPerSec)} records/sec (${fixed(summary.mbPerSec, 2)} MB/sec), ` +
          `first record after ${summary.firstRecordMs ?? "-"} ms.\n`,
  );
  if (o.numRecords !== undefined && records < o.numRecords)
    throw new CommandError(
      `exiting before consuming the expected number of records: no record for ${o.timeout} ms (got ${records} of ${o.numRecords})`,
    );
}

export function perfCommands(program: Command): void {
  const perf = program
    .command("perf")
    .description("throughput tests (like kafka-producer-perf-test and kafka-consumer-perf-test)");

  perf
    .command("produce <topic>")
    .description("send records as fast as allowed; report records/s, MB/s and send-to-ack latency percentiles")
    .requiredOption("-n, --num-records <n>", "number of records to send", positiveInt("--num-records"))
    .option("-s, --record-size <bytes>", "value size of each record", positiveInt("--record-size"), 100)
    .option("-t, --throughput <records/s>", "target rate; -1 for no limit", integer("--throughput"), -1)
    .addOption(new Option("--acks <acks>", "acknowledgements").choices(["0", "1", "all", "-1"]).default("all"))
    .addOption(
      new Option("-z, --compression <codec>", "compression")
        .choices(["none", "gzip", "snappy", "lz4", "zstd"])
        .default("none"),
    )
    .option("--batch-size <bytes>", "batch.size", positiveInt("--batch-size"))
    .option("--linger-ms <ms>", "linger.ms", positiveInt("--linger-ms"))
    .option(
      "-X, --producer-props <key=value>",
      "other producer configs, Java names (buffer.memory=...); repeatable",
      collect,
    )
    .addHelpText(
      "after",
      "\nLatency is measured per record, from send() to its acknowledgement.\n" +
        "Example: sluice perf produce bench -n 100000 -s 1024 -t 20000 --acks 1",
    )
    .action(perfProduce);

  perf
    .command("consume <topic>")
    .description("read records as fast as possible; report records/s and MB/s")
    .option(
      "-n, --num-records <n>",
      "stop after this many records (default: when idle for --timeout)",
      positiveInt("--num-records"),
    )
    .option("-g, --group <id>", "consume as a member of this group (commits at the end)")
    .option("--timeout <ms>", "give up after this long without a record", positiveInt("--timeout"), 10000)
    .option("--from-latest", "start at the end of each partition instead of the beginning", false)
    .option(
      "-X, --consumer-props <key=value>",
      "other consumer configs, Java names (fetch.max.bytes=...); repeatable",
      collect,
    )
    .action(perfConsume);
}
