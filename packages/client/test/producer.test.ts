// The producer against a real Sluice broker: each option has a test that fails without it.

import assert from "node:assert/strict";
import { Socket } from "node:net";
import { after, before, describe, test } from "node:test";
import { ApiKey } from "@sluice/protocol";
import { iterateBatches } from "@sluice/protocol/records/batch-header.ts";
import { decodeRecords } from "@sluice/protocol/records/record-batch.ts";
import { Admin } from "../src/admin.ts";
import { BufferExhaustedError, DeliveryTimeoutError, PartialFailureError, RecordTooLargeError } from "../src/errors.ts";
import { Producer } from "../src/producer.ts";
import { type RunningBroker, startBroker, startProxiedBroker, type TestProxy } from "./helpers/util.ts";

describe("producer", () => {
  let broker: RunningBroker;
  before(async () => {
    broker = await startBroker({ config: { "num.partitions": "1" } });
  });
  after(async () => {
    await broker.stop();
  });

  /** Record batches in a partition's log: [recordCount, producerId, compression]. */
  async function batchesOf(b: RunningBroker, topic: string, partition = 0): Promise<[number, bigint, number][]> {
    const p = b.broker.context!.topics.partition(topic, partition)!;
    const r = await p.log.read(0n, 1 << 24);
    return [...iterateBatches(r.records)].map((x) => [
      x.header.recordCount,
      x.header.producerId,
      x.header.attributes & 7,
    ]);
  }
  async function valuesOf(b: RunningBroker, topic: string, partition = 0): Promise<string[]> {
    const p = b.broker.context!.topics.partition(topic, partition)!;
    return decodeRecords((await p.log.read(0n, 1 << 26)).records).flatMap((x) =>
      x.records.map((r) => Buffer.from(r.value!).toString()),
    );
  }

  test("send() resolves with partition and offset; lingerMs gathers sends into one batch", async () => {
    const producer = new Producer({ bootstrapServers: broker.bootstrap, lingerMs: 200 });
    const first = producer.send({ topic: "linger", value: "v0" });
    await new Promise((r) => setTimeout(r, 50)); // still lingering: the next sends join the batch
    const rest = Promise.all([1, 2, 3].map((i) => producer.send({ topic: "linger", value: `v${i}` })));
    const sent = [await first, ...(await rest)];
    assert.deepEqual(
      sent.map((m) => m.offset),
      [0n, 1n, 2n, 3n],
    );
    assert.deepEqual(
      (await batchesOf(broker, "linger")).map(([n]) => n),
      [4],
      "one batch of 4",
    );
    await producer.close();
    const eager = new Producer({ bootstrapServers: broker.bootstrap, lingerMs: 0 });
    await eager.send({ topic: "no-linger", value: "a" });
    await new Promise((r) => setTimeout(r, 50));
    await eager.send({ topic: "no-linger", value: "b" });
    assert.deepEqual(
      (await batchesOf(broker, "no-linger")).map(([n]) => n),
      [1, 1],
      "without linger, one batch each",
    );
    await eager.close();
  });

  test("with lingerMs 0 a lone send is written on the same turn; one synchronous burst shares a batch", async () => {
    const clientId = "same-turn-probe";
    const producer = new Producer({ bootstrapServers: broker.bootstrap, lingerMs: 0, clientId });
    await producer.send({ topic: "same-turn", value: "warm" }); // metadata and connection in place
    // Produce requests of this client written to any socket (request header: size, apiKey 0, version,
    // correlation id, client id).
    let produceWrites = 0;
    const write = Socket.prototype.write;
    Socket.prototype.write = function (this: Socket, chunk: unknown, ...rest: unknown[]) {
      if (chunk instanceof Uint8Array && chunk.length >= 14 + clientId.length) {
        const b = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
        const idLength = b.readInt16BE(12);
        if (b.readInt16BE(4) === ApiKey.Produce && b.toString("latin1", 14, 14 + idLength) === clientId)
          produceWrites++;
      }
      return (write as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
    } as typeof write;
    let sent: Promise<{ offset: bigint }>;
    try {
      sent = producer.send({ topic: "same-turn", value: "lone" });
      // Microtasks only: no timer, setImmediate or I/O callback can run in between.
      for (let i = 0; i < 20 && produceWrites === 0; i++) await Promise.resolve();
    } finally {
      Socket.prototype.write = write;
    }
    assert.equal(produceWrites, 1, "the Produce request was not written before the event loop turned");
    assert.equal((await sent).offset, 1n);
    await Promise.all(["a", "b", "c"].map((value) => producer.send({ topic: "same-turn", value })));
    assert.deepEqual(
      (await batchesOf(broker, "same-turn")).map(([n]) => n),
      [1, 1, 3],
      "sends made by one piece of synchronous code go in one batch",
    );
    await producer.close();
  });

  test("batchSize closes a batch when full, without waiting for lingerMs", async () => {
    const producer = new Producer({ bootstrapServers: broker.bootstrap, lingerMs: 30_000, batchSize: 1000 });
    await producer.flush();
    // 17 records of ~220 bytes: four full batches of 4 go at once, the 17th waits for lingerMs.
    const sends = Array.from({ length: 17 }, (_, i) =>
      producer.send({ topic: "batch-size", value: `${i}`.padEnd(200, ".") }),
    );
    const acked = await Promise.race([
      Promise.all(sends.slice(0, 16)),
      new Promise((r) => setTimeout(() => r(null), 3000)),
    ]);
    assert.ok(acked, "full batches did not wait for lingerMs");
    let lastDone = false;
    void sends[16]!.then(() => {
      lastDone = true;
    });
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(lastDone, false, "the open batch lingers");
    assert.deepEqual(
      (await batchesOf(broker, "batch-size")).map(([n]) => n),
      [4, 4, 4, 4],
    );
    await producer.close();
    assert.equal(lastDone, true);
  });

  test("a record larger than maxRequestSize is refused at once", async () => {
    const producer = new Producer({ bootstrapServers: broker.bootstrap, maxRequestSize: 1000 });
    const started = Date.now();
    await assert.rejects(producer.send({ topic: "big", value: new Uint8Array(2000) }), RecordTooLargeError);
    assert.ok(Date.now() - started < 100);
    await producer.send({ topic: "big", value: new Uint8Array(500) });
    await producer.close();
  });

  describe("with a broker whose answers can be held back", () => {
    let slow: { broker: RunningBroker; proxy: TestProxy; bootstrap: string };
    before(async () => {
      slow = await startProxiedBroker({}, { "num.partitions": "1" });
    });
    after(async () => {
      await slow.proxy.close();
      await slow.broker.stop();
    });

    test("a full bufferMemory makes send() wait until space frees; trySend() fails at once", async () => {
      const producer = new Producer({ bootstrapServers: slow.bootstrap, bufferMemory: 5000, lingerMs: 0 });
      await producer.send({ topic: "buffer", value: "warm-up" });
      slow.proxy.stall();
      const first = producer.send({ topic: "buffer", value: new Uint8Array(3000) });
      let secondDone = false;
      const second = producer.send({ topic: "buffer", value: new Uint8Array(3000) }).then((m) => {
        secondDone = true;
        return m;
      });
      await assert.rejects(producer.trySend({ topic: "buffer", value: new Uint8Array(3000) }), BufferExhaustedError);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(secondDone, false, "the second send waits while the buffer is full");
      assert.ok(producer.bufferedBytesNow <= 5000);
      slow.proxy.release();
      assert.equal((await first).offset, 1n);
      assert.equal((await second).offset, 2n);
      await producer.close();
    });

    test("maxBlockMs bounds the wait for buffer space; an AbortSignal ends it sooner", async () => {
      const producer = new Producer({
        bootstrapServers: slow.bootstrap,
        bufferMemory: 5000,
        maxBlockMs: 300,
        lingerMs: 0,
      });
      await producer.send({ topic: "blocked", value: "warm-up" });
      slow.proxy.stall();
      const first = producer.send({ topic: "blocked", value: new Uint8Array(3000) });
      const started = Date.now();
      await assert.rejects(producer.send({ topic: "blocked", value: new Uint8Array(3000) }), BufferExhaustedError);
      assert.ok(Date.now() - started >= 250);
      const ac = new AbortController();
      const aborted = producer.send({ topic: "blocked", value: new Uint8Array(3000) }, { signal: ac.signal });
      ac.abort();
      await assert.rejects(aborted, { code: "ABORTED" });
      slow.proxy.release();
      await first;
      await producer.close();
    });

    test("a sendBatch waiting for memory past maxBlockMs fails only the records that did not get in; later sends queue behind it", async () => {
      const producer = new Producer({
        bootstrapServers: slow.bootstrap,
        bufferMemory: 5000,
        maxBlockMs: 300,
        lingerMs: 0,
      });
      await producer.send({ topic: "blocked-batch", value: "warm-up" });
      slow.proxy.stall();
      const batch = producer
        .sendBatch(Array.from({ length: 10 }, (_, i) => ({ topic: "blocked-batch", value: `${i}`.padEnd(1000, ".") })))
        .then(
          () => null,
          (e: unknown) => e,
        );
      const heldByBatch = producer.bufferedBytesNow;
      // Small enough to fit at once, but it came after records that wait: it waits its turn.
      const later = producer.send({ topic: "blocked-batch", value: "later" });
      assert.equal(producer.bufferedBytesNow, heldByBatch, "the later send did not overtake the waiting records");
      await new Promise((r) => setTimeout(r, 450));
      slow.proxy.release();
      const outcome = await batch;
      assert.ok(outcome instanceof PartialFailureError, "part of the batch failed");
      const codes = outcome.results.map((r) => r.error?.code ?? "ok");
      const inCount = codes.indexOf("BUFFER_EXHAUSTED");
      assert.ok(inCount > 0, `some records got in: ${codes.join(",")}`);
      assert.deepEqual(codes.slice(inCount), Array(10 - inCount).fill("BUFFER_EXHAUSTED"), "the rest failed, in order");
      assert.equal(
        (await later).offset,
        BigInt(1 + inCount),
        "the later send got in after the batch's waiting records failed",
      );
      await producer.close();
    });

    test("deliveryTimeoutMs fails records that are not acknowledged in time", async () => {
      const producer = new Producer({
        bootstrapServers: slow.bootstrap,
        deliveryTimeoutMs: 600,
        requestTimeoutMs: 300,
        lingerMs: 0,
        retryBackoffMs: 50,
      });
      await producer.send({ topic: "delivery", value: "warm-up" });
      slow.proxy.stall();
      await assert.rejects(producer.send({ topic: "delivery", value: "late" }), DeliveryTimeoutError);
      slow.proxy.release();
      await producer.close();
    });

    test("maxInFlightRequestsPerConnection caps unanswered Produce requests per broker", async () => {
      const admin = new Admin({ bootstrapServers: slow.bootstrap });
      await admin.createTopics([{ name: "inflight", numPartitions: 6 }]);
      await admin.close();
      // While the proxy holds every answer back, count the Produce requests and the batches that
      // reached the broker. (Sends are 20 ms apart, but on a loaded machine two may still share a
      // request, so requests are counted at the broker, not inferred from batches.)
      const whileStalled = async (max: number): Promise<{ requests: number; batches: number }> => {
        const producer = new Producer({
          bootstrapServers: slow.bootstrap,
          maxInFlightRequestsPerConnection: max,
          lingerMs: 0,
          enableIdempotence: false,
        });
        await producer.send({ topic: "inflight", partition: 0, value: "warm-up" });
        const batchesBefore = (
          await Promise.all([0, 1, 2, 3, 4, 5].map((p) => batchesOf(slow.broker, "inflight", p)))
        ).flat().length;
        const produces = slow.broker.faults.next(ApiKey.Produce, { delayMs: 0, count: Number.POSITIVE_INFINITY });
        slow.proxy.stall();
        const sends = Array.from({ length: 6 }, async (_, p) => {
          await new Promise((r) => setTimeout(r, p * 20)); // separate requests, when the machine allows
          return producer.send({ topic: "inflight", partition: p, value: "x" });
        });
        await new Promise((r) => setTimeout(r, 300));
        const requests = produces.hits;
        const batches =
          (await Promise.all([0, 1, 2, 3, 4, 5].map((p) => batchesOf(slow.broker, "inflight", p)))).flat().length -
          batchesBefore;
        produces.cancel();
        slow.proxy.release();
        await Promise.all(sends);
        await producer.close();
        return { requests, batches };
      };
      const one = await whileStalled(1);
      assert.equal(one.requests, 1, "with 1 in flight, one request reached the broker while its answer was held");
      assert.ok(one.batches < 6, "the other records waited in the producer");
      const six = await whileStalled(6);
      assert.equal(six.batches, 6, "with 6 in flight, every record reached the broker without waiting for answers");
    });
  });

  test("concurrent sendBatch and send calls under a small bufferMemory land whole and in call order", async () => {
    const bufferMemory = 20_000;
    const producer = new Producer({ bootstrapServers: broker.bootstrap, bufferMemory, batchSize: 4096, lingerMs: 1 });
    await producer.send({ topic: "pressure", value: "warm-up" });
    let maxBuffered = 0;
    const sample = setInterval(() => {
      maxBuffered = Math.max(maxBuffered, producer.bufferedBytesNow);
    }, 1);
    const expected: string[] = ["warm-up"];
    const calls: Promise<{ offset: bigint }[]>[] = [];
    for (let c = 0; c < 40; c++) {
      const values = Array.from({ length: 250 }, (_, i) => `${c}:${i}`.padEnd(40, "."));
      expected.push(...values);
      calls.push(producer.sendBatch(values.map((value) => ({ topic: "pressure", value }))));
      expected.push(`single ${c}`);
      calls.push(producer.send({ topic: "pressure", value: `single ${c}` }).then((m) => [m]));
      maxBuffered = Math.max(maxBuffered, producer.bufferedBytesNow);
    }
    const offsets = (await Promise.all(calls)).flat().map((m) => Number(m.offset));
    clearInterval(sample);
    assert.ok(maxBuffered <= bufferMemory, `bufferMemory held: at most ${maxBuffered} bytes buffered`);
    assert.ok(maxBuffered > bufferMemory / 2, "the buffer really filled up");
    assert.deepEqual(
      offsets,
      Array.from({ length: expected.length - 1 }, (_, i) => i + 1),
      "offsets in call order",
    );
    assert.deepEqual(await valuesOf(broker, "pressure"), expected, "every record once, in call order");
    await producer.close();
  });

  test("records keep their keys, headers and timestamps; string values are stored as UTF-8", async () => {
    const producer = new Producer({ bootstrapServers: broker.bootstrap, lingerMs: 20 });
    const metas = await producer.sendBatch([
      { topic: "fields", value: "häst ✓", key: "k1", headers: { a: "1", b: null }, timestamp: 1_700_000_000_123 },
      {
        topic: "fields",
        value: null,
        key: new Uint8Array([1, 2]),
        headers: [
          { key: "x", value: "y" },
          { key: "x", value: "z" },
        ],
        timestamp: 1_600_000_000_000n,
      },
      { topic: "fields", value: new Uint8Array([0xff]) },
    ]);
    assert.deepEqual(metas.map((m) => m.timestamp).slice(0, 2), [1_700_000_000_123n, 1_600_000_000_000n]);
    assert.ok(metas[2]!.timestamp > 1_700_000_000_000n, "CreateTime defaults to now");
    const p = broker.broker.context!.topics.partition("fields", 0)!;
    const [batch] = decodeRecords((await p.log.read(0n, 1 << 20)).records);
    const [r0, r1, r2] = batch!.records;
    assert.equal(Buffer.from(r0!.value!).toString(), "häst ✓");
    assert.equal(Buffer.from(r0!.key!).toString(), "k1");
    assert.deepEqual(
      r0!.headers.map((h) => [h.key, h.value === null ? null : Buffer.from(h.value).toString()]),
      [
        ["a", "1"],
        ["b", null],
      ],
    );
    assert.equal(r0!.timestamp, 1_700_000_000_123n);
    assert.equal(r1!.value, null);
    assert.deepEqual([...r1!.key!], [1, 2]);
    assert.deepEqual(
      r1!.headers.map((h) => [h.key, Buffer.from(h.value!).toString()]),
      [
        ["x", "y"],
        ["x", "z"],
      ],
    );
    assert.equal(r1!.timestamp, 1_600_000_000_000n);
    assert.deepEqual([...r2!.value!], [0xff]);
    await assert.rejects(producer.send({ topic: "fields", value: "x", timestamp: Number.NaN }), {
      code: "INVALID_TIMESTAMP",
    });
    await producer.close();
  });

  test("acks=0 does not wait for the broker; acks=1 and all get offsets", async () => {
    for (const acks of [0, 1, "all"] as const) {
      const producer = new Producer({ bootstrapServers: broker.bootstrap, acks, enableIdempotence: acks === "all" });
      const m = await producer.send({ topic: `acks-${acks}`, value: "x" });
      assert.equal(m.offset, acks === 0 ? -1n : 0n);
      await producer.close();
    }
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(await valuesOf(broker, "acks-0"), ["x"]);
  });

  test("idempotence is on by default: producer ids, in order under 5000 concurrent sends", async () => {
    const producer = new Producer({ bootstrapServers: broker.bootstrap, lingerMs: 1, batchSize: 2000 });
    const sent = await Promise.all(
      Array.from({ length: 5000 }, (_, i) => producer.send({ topic: "idem", value: String(i) })),
    );
    assert.deepEqual(
      sent.map((m) => Number(m.offset)),
      Array.from({ length: 5000 }, (_, i) => i),
    );
    const batches = await batchesOf(broker, "idem");
    assert.ok(batches.length > 10, "many batches (several in flight at once)");
    assert.ok(
      batches.every(([, pid]) => pid >= 0n),
      "every batch is idempotent",
    );
    assert.deepEqual(
      await valuesOf(broker, "idem"),
      Array.from({ length: 5000 }, (_, i) => String(i)),
    );
    await producer.close();
  });

  test("sends made before metadata is known keep send() order when the metadata lookup fails and is retried", async () => {
    // Each record used to wait for metadata on its own, so after a failed lookup their retries
    // (with jittered backoff) let later records into batches before earlier ones.
    broker.faults.next(ApiKey.Metadata, { delayMs: 50, dropConnection: true, count: 3 });
    const producer = new Producer({
      bootstrapServers: broker.bootstrap,
      lingerMs: 1,
      batchSize: 2000,
      retryBackoffMs: 5,
      reconnectBackoffMs: 5,
    });
    const n = 3000;
    const sent = await Promise.all(
      Array.from({ length: n }, (_, i) => producer.send({ topic: "meta-order", value: String(i) })),
    );
    await producer.close();
    broker.faults.clear();
    assert.deepEqual(
      sent.map((m) => Number(m.offset)),
      Array.from({ length: n }, (_, i) => i),
      "offsets follow send() order",
    );
    assert.deepEqual(
      await valuesOf(broker, "meta-order"),
      Array.from({ length: n }, (_, i) => String(i)),
    );
  });

  test("compressionType compresses batches with gzip, snappy, lz4 and zstd", async () => {
    for (const [i, codec] of (["gzip", "snappy", "lz4", "zstd"] as const).entries()) {
      const producer = new Producer({ bootstrapServers: broker.bootstrap, compressionType: codec });
      await producer.sendBatch(
        Array.from({ length: 50 }, (_, j) => ({ topic: `codec-${codec}`, value: `value ${j} `.repeat(20) })),
      );
      await producer.close();
      const batches = await batchesOf(broker, `codec-${codec}`);
      assert.ok(
        batches.every(([, , c]) => c === i + 1),
        `${codec} batches`,
      );
      assert.equal((await valuesOf(broker, `codec-${codec}`)).length, 50);
    }
  });

  test("a custom partitioner chooses partitions; explicit partitions win; bad ones are refused", async () => {
    const admin = new Admin({ bootstrapServers: broker.bootstrap });
    await admin.createTopics([{ name: "custom", numPartitions: 4 }]);
    await admin.close();
    const producer = new Producer({
      bootstrapServers: broker.bootstrap,
      partitioner: ({ partitionCount }) => partitionCount - 1,
    });
    assert.equal((await producer.send({ topic: "custom", value: "a" })).partition, 3);
    assert.equal((await producer.send({ topic: "custom", value: "b", partition: 1 })).partition, 1);
    await assert.rejects(producer.send({ topic: "custom", value: "c", partition: 9 }), {
      code: "UNKNOWN_TOPIC_OR_PARTITION",
    });
    await producer.close();
  });

  test("sendBatch and kafkajs-style send({ topic, messages }) resolve per record; failures carry per-record results", async () => {
    const producer = new Producer({ bootstrapServers: broker.bootstrap, maxRequestSize: 2000 });
    const metas = await producer.send({ topic: "batch-api", messages: [{ value: "a" }, { value: "b", key: "k" }] });
    assert.deepEqual(
      metas.map((m) => m.offset),
      [0n, 1n],
    );
    await assert.rejects(
      producer.sendBatch([
        { topic: "batch-api", value: "ok" },
        { topic: "batch-api", value: new Uint8Array(5000) },
      ]),
      (e: unknown) => {
        assert.ok(e instanceof PartialFailureError);
        assert.equal(e.results[0]!.error, null);
        assert.equal(e.results[1]!.error?.code, "RECORD_TOO_LARGE");
        return true;
      },
    );
    await producer.close();
  });

  test("close() sends what is waiting first; later sends are refused", async () => {
    const producer = new Producer({ bootstrapServers: broker.bootstrap, lingerMs: 10_000 });
    const pending = producer.send({ topic: "closing", value: "last" });
    await producer.close();
    assert.equal((await pending).offset, 0n);
    await assert.rejects(producer.send({ topic: "closing", value: "late" }), { code: "CLIENT_CLOSED" });
  });
});
