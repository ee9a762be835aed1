// The producer against a real (in-process) Sluice broker: every option has a test that fails
// without it; interop with kcat both ways, including Java/librdkafka-compatible key partitioning.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { after, before, describe, test } from "node:test";
import { type RunningBroker, startBroker } from "@sluice/broker";
import { iterateBatches } from "@sluice/protocol/records/batch-header.ts";
import { decodeRecords } from "@sluice/protocol/records/record-batch.ts";
import { BufferExhaustedError, RecordTooLargeError } from "../src/errors.ts";
import { keyedPartition, murmur2 } from "../src/partitioner.ts";
import { Producer } from "../src/producer.ts";

function kcat(args: string[], input = ""): Promise<{ status: number | null; stdout: string }> {
  return new Promise((resolve) => {
    const c = spawn("kcat", args, { stdio: ["pipe", "pipe", "ignore"] });
    let stdout = "";
    c.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    c.on("error", () => resolve({ status: -1, stdout }));
    c.on("close", (status) => resolve({ status, stdout }));
    c.stdin.end(input);
  });
}
const hasKcat = await kcat(["-V"]).then((r) => r.status === 0);

describe("producer", () => {
  let broker: RunningBroker;
  before(async () => {
    broker = await startBroker({ config: { "num.partitions": "1" } });
  });
  after(async () => {
    await broker.stop();
  });

  /** Record batches in a partition's log, as [recordCount, producerId] pairs. */
  async function batchesOf(topic: string, partition = 0): Promise<[number, bigint][]> {
    const p = broker.broker.context!.topics.partition(topic, partition)!;
    const r = await p.log.read(0n, 1 << 24);
    return [...iterateBatches(r.records)].map((b) => [b.header.recordCount, b.header.producerId]);
  }

  test("send() resolves with partition and offset; lingerMs gathers concurrent sends into one batch", async () => {
    const producer = new Producer({ bootstrapServers: broker.bootstrap, lingerMs: 100 });
    const sent = await Promise.all(
      Array.from({ length: 20 }, (_, i) => producer.send({ topic: "linger", value: `v${i}` })),
    );
    assert.deepEqual(
      sent.map((m) => m.offset),
      Array.from({ length: 20 }, (_, i) => BigInt(i)),
    );
    assert.deepEqual(
      (await batchesOf("linger")).map(([n]) => n),
      [20],
      "one batch of 20 records",
    );
    await producer.close();
    const unbatched = new Producer({ bootstrapServers: broker.bootstrap, lingerMs: 0, batchSize: 1 });
    await Promise.all(Array.from({ length: 5 }, (_, i) => unbatched.send({ topic: "no-linger", value: `v${i}` })));
    assert.ok((await batchesOf("no-linger")).length > 1, "without linger or batch room, records go out separately");
    await unbatched.close();
  });

  test("batchSize closes a batch as soon as it is full", async () => {
    // Each record counts 24 + 126 = 150 bytes, so every second record fills a 300-byte batch.
    const producer = new Producer({ bootstrapServers: broker.bootstrap, lingerMs: 10_000, batchSize: 300 });
    const started = Date.now();
    await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        producer.send({ topic: "batch-size", value: `value-${i}`.padEnd(126, ".") }),
      ),
    );
    assert.ok(Date.now() - started < 5000, "full batches did not wait for lingerMs");
    assert.deepEqual(
      (await batchesOf("batch-size")).map(([n]) => n),
      [2, 2, 2, 2, 2],
    );
    await producer.close();
  });

  test("a record larger than maxRequestSize is refused at once", async () => {
    const producer = new Producer({ bootstrapServers: broker.bootstrap, maxRequestSize: 1000 });
    await assert.rejects(producer.send({ topic: "big", value: new Uint8Array(2000) }), RecordTooLargeError);
    await producer.close();
  });

  test("a full bufferMemory makes send() wait until space frees; trySend() fails fast", async () => {
    const producer = new Producer({
      bootstrapServers: broker.bootstrap,
      bufferMemory: 3000,
      lingerMs: 300,
      batchSize: 1_000_000,
    });
    const first = producer.send({ topic: "buffer", value: new Uint8Array(2000) });
    let secondDone = false;
    const second = producer.send({ topic: "buffer", value: new Uint8Array(2000) }).then((m) => {
      secondDone = true;
      return m;
    });
    await assert.rejects(producer.trySend({ topic: "buffer", value: new Uint8Array(2000) }), BufferExhaustedError);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(secondDone, false, "the second send waits while the buffer is full");
    assert.ok(producer.bufferedBytesNow <= 3000);
    await first;
    const m = await second;
    assert.equal(m.offset, 1n);
    await producer.close();
  });

  test("maxBlockMs bounds the wait for buffer space", async () => {
    const producer = new Producer({
      bootstrapServers: broker.bootstrap,
      bufferMemory: 1500,
      lingerMs: 5000,
      batchSize: 1_000_000,
      maxBlockMs: 200,
    });
    const first = producer.send({ topic: "blocked", value: new Uint8Array(1000) });
    await assert.rejects(producer.send({ topic: "blocked", value: new Uint8Array(1000) }), BufferExhaustedError);
    await producer.flush();
    await first;
    await producer.close();
  });

  test("idempotence is on by default: batches carry a producer id; 2000 concurrent sends keep order", async () => {
    const producer = new Producer({ bootstrapServers: broker.bootstrap, lingerMs: 2 });
    const sent = await Promise.all(
      Array.from({ length: 2000 }, (_, i) => producer.send({ topic: "idem", value: String(i) })),
    );
    assert.deepEqual(
      sent.map((m) => Number(m.offset)),
      Array.from({ length: 2000 }, (_, i) => i),
    );
    const batches = await batchesOf("idem");
    assert.ok(
      batches.every(([, pid]) => pid >= 0n),
      "every batch is idempotent",
    );
    const p = broker.broker.context!.topics.partition("idem", 0)!;
    const values = decodeRecords((await p.log.read(0n, 1 << 24)).records).flatMap((b) =>
      b.records.map((r) => Buffer.from(r.value!).toString()),
    );
    assert.deepEqual(
      values,
      Array.from({ length: 2000 }, (_, i) => String(i)),
    );
    await producer.close();
  });

  test("keyed records land where Java's murmur2 partitioner puts them", () => {
    // Reference values from Kafka's Utils.murmur2 (clients/src/test/.../UtilsTest.java).
    const cases: [string, number][] = [
      ["21", -973932308],
      ["foobar", -790332482],
      ["a-little-bit-long-string", -985981536],
      ["a-little-bit-longer-string", -1486304829],
      ["lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971],
      ["abc", 479470107],
    ];
    for (const [k, v] of cases) assert.equal(murmur2(Buffer.from(k)), v, k);
  });

  test("interop with kcat both ways: keys, headers, compression, and the same partitions as librdkafka's murmur2", {
    skip: !hasKcat && "kcat is not installed",
  }, async () => {
    const admin = broker.broker.context!.topics;
    await admin.create("interop", 6, {});
    const producer = new Producer({ bootstrapServers: broker.bootstrap, compressionType: "zstd", lingerMs: 5 });
    const keys = Array.from({ length: 30 }, (_, i) => `key-${i}`);
    const ours = await Promise.all(
      keys.map((k) => producer.send({ topic: "interop", key: k, value: `value-of-${k}`, headers: { h: "x" } })),
    );
    await producer.close();
    const read = await kcat(["-b", broker.bootstrap, "-C", "-t", "interop", "-e", "-q", "-f", "%p|%k|%s|%h\\n"]);
    const rows = read.stdout
      .trim()
      .split("\n")
      .map((l) => l.split("|"));
    assert.equal(rows.length, 30);
    for (const [p, k, v, h] of rows) {
      assert.equal(v, `value-of-${k}`);
      assert.equal(h, "h=x");
      assert.equal(Number(p), ours[keys.indexOf(k!)]!.partition);
    }
    // librdkafka with murmur2_random chooses the same partitions for the same keys.
    await admin.create("interop-rdkafka", 6, {});
    const written = await kcat(
      ["-b", broker.bootstrap, "-P", "-t", "interop-rdkafka", "-K:", "-X", "partitioner=murmur2_random"],
      keys.map((k) => `${k}:v`).join("\n"),
    );
    assert.equal(written.status, 0);
    const back = await kcat(["-b", broker.bootstrap, "-C", "-t", "interop-rdkafka", "-e", "-q", "-f", "%p|%k\\n"]);
    for (const line of back.stdout.trim().split("\n")) {
      const [p, k] = line.split("|");
      assert.equal(Number(p), keyedPartition(Buffer.from(k!), 6), `key ${k}`);
    }
  });
});
