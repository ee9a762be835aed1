// The network layer: framing, in-order pipelined responses, backpressure, limits, and bad input
// that closes one connection without affecting the others.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ErrorCode, Reader } from "@sluice/protocol";
import { decodeRecords } from "@sluice/protocol/records/record-batch.ts";
import type { RunningBroker } from "../src/index.ts";
import { ApiVersions, Fetch, Metadata, Produce } from "./apis.ts";
import { batch, createTopic, fetchOne, produce, sleep, testBroker, WireClient } from "./helpers.ts";

function longPoll(c: WireClient, topic: string, maxWaitMs: number, correlationId = c.nextCorrelationId()): Buffer {
  return c.frame(
    Fetch,
    11,
    {
      replicaId: -1,
      maxWaitMs,
      minBytes: 1,
      maxBytes: 1 << 20,
      topics: [{ topic, partitions: [{ partition: 0, fetchOffset: 0n, partitionMaxBytes: 1 << 20 }] }],
    },
    correlationId,
  );
}

describe("connections", () => {
  let broker: RunningBroker;
  let c: WireClient;
  before(async () => {
    broker = await testBroker({
      "socket.request.max.bytes": "8000000",
      "message.max.bytes": "6000000",
      "queued.max.requests": "3",
    });
    c = await WireClient.connect(broker.port);
    await createTopic(c, "conn");
  });
  after(async () => {
    c.close();
    await broker.stop();
  });

  test("a request arriving one byte at a time is answered", async () => {
    const frame = c.frame(ApiVersions, 0, {}, 4242);
    const response = c.expect(4242);
    for (const byte of frame) {
      c.write(Buffer.from([byte]));
      await sleep(0);
    }
    const r = new Reader(await response);
    assert.equal(r.readInt32("correlationId"), 4242);
  });

  test("several requests in one write are all answered, in order", async () => {
    const ids = [c.nextCorrelationId(), c.nextCorrelationId(), c.nextCorrelationId()];
    const frames = ids.map((id) => c.frame(Metadata, 1, { topics: [] }, id));
    const responses = Promise.all(ids.map((id) => c.expect(id)));
    const start = c.arrived.length;
    c.write(Buffer.concat(frames));
    await responses;
    assert.deepEqual(c.arrived.slice(start), ids);
  });

  test("responses keep request order even when an earlier request is slow", async () => {
    const slowId = c.nextCorrelationId();
    const fastId = c.nextCorrelationId();
    const both = Promise.all([c.expect(slowId), c.expect(fastId)]);
    const start = c.arrived.length;
    const started = Date.now();
    c.write(Buffer.concat([longPoll(c, "conn", 300, slowId), c.frame(ApiVersions, 0, {}, fastId)]));
    await both;
    assert.deepEqual(c.arrived.slice(start), [slowId, fastId], "the ApiVersions answer waited for the long poll's");
    assert.ok(Date.now() - started >= 250);
  });

  test("a large request arriving in many chunks is answered", async () => {
    const big = batch(["z".repeat(5_000_000)]);
    const started = Date.now();
    const r = await produce(c, "conn", 0, big, { acks: 1 });
    assert.equal(r.errorCode, ErrorCode.NONE);
    assert.ok(Date.now() - started < 5000);
  });

  test("small and large frames cut at arbitrary points are all answered, in order, and appended in order", async () => {
    const p = await WireClient.connect(broker.port);
    await createTopic(p, "split");
    // Sizes on both sides of the 64 KiB at which frames are assembled as they arrive.
    const sizes = [10, 100_000, 5, 300_000, 1, 70_000, 65_000, 3, 200_000, 20];
    const values = sizes.map((n, i) => String.fromCharCode(97 + i).repeat(n));
    const ids = values.map(() => p.nextCorrelationId());
    const frames = values.map((v, i) =>
      p.frame(
        Produce,
        7,
        {
          acks: 1,
          timeoutMs: 5000,
          topicData: [{ name: "split", partitionData: [{ index: 0, records: batch([v]) }] }],
        },
        ids[i],
      ),
    );
    const all = Buffer.concat(frames);
    const responses = Promise.all(ids.map((id) => p.expect(id)));
    const start = p.arrived.length;
    // Cut points from a fixed linear congruential sequence: from 1 byte to 90 KB per write.
    let seed = 7;
    for (let pos = 0; pos < all.length; ) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      const n = 1 + (seed % 90_000);
      p.write(all.subarray(pos, pos + n));
      pos += n;
      await sleep(0);
    }
    await responses;
    assert.deepEqual(p.arrived.slice(start), ids, "responses in request order");
    const got: string[] = [];
    for (let offset = 0n; offset < BigInt(values.length); ) {
      const r = await fetchOne(p, "split", 0, offset, { partitionMaxBytes: 8 << 20 });
      const records = r.responses[0]!.partitions[0]!.records!;
      const batches = decodeRecords(records);
      for (const b of batches) for (const rec of b.records) got.push(Buffer.from(rec.value!).toString());
      offset = BigInt(got.length);
    }
    assert.deepEqual(
      got.map((v) => v.length),
      sizes,
      "records in the order sent",
    );
    assert.deepEqual(got, values);
    p.close();
  });

  test("beyond queued.max.requests in flight the broker stops reading (backpressure)", async () => {
    const p = await WireClient.connect(broker.port);
    await createTopic(p, "bp");
    const log = broker.broker.context!.topics.partition("bp", 0)!.log;
    // Three long polls on an empty topic fill the connection's in-flight slots (limit 3); the
    // produce behind them is not read until one of them is answered.
    const polls = [p.nextCorrelationId(), p.nextCorrelationId(), p.nextCorrelationId()];
    const frames = polls.map((id) => longPoll(p, "bp", 800, id));
    const produceFrame = p.frame(Produce, 7, {
      acks: 1,
      timeoutMs: 1000,
      topicData: [{ name: "bp", partitionData: [{ index: 0, records: batch(["later"]) }] }],
    });
    p.write(Buffer.concat([...frames, produceFrame]));
    await sleep(300);
    assert.equal(log.logEndOffset, 0n, "the produce was not dispatched while 3 requests were in flight");
    await sleep(1200);
    assert.equal(log.logEndOffset, 1n, "it was, once the long polls were answered");
    p.close();
  });

  test("a size prefix over socket.request.max.bytes closes that connection only", async () => {
    const bad = await WireClient.connect(broker.port);
    const b = Buffer.alloc(4);
    b.writeInt32BE(9_000_000);
    bad.write(b);
    await bad.closed;
    await c.call(ApiVersions, 0, {});
  });

  test("a negative size prefix closes the connection", async () => {
    const bad = await WireClient.connect(broker.port);
    bad.write(Buffer.from([0xff, 0xff, 0xff, 0xfe]));
    await bad.closed;
  });

  test("an unknown API key closes the connection; the broker keeps serving others", async () => {
    const bad = await WireClient.connect(broker.port);
    const frame = Buffer.alloc(14);
    frame.writeInt32BE(10, 0);
    frame.writeInt16BE(999, 4);
    frame.writeInt16BE(0, 6);
    frame.writeInt32BE(1, 8);
    frame.writeInt16BE(-1, 12);
    bad.write(frame);
    await bad.closed;
    await c.call(ApiVersions, 0, {});
  });

  test("a frame too short for a header, or a body that does not decode, closes the connection", async () => {
    const a = await WireClient.connect(broker.port);
    a.write(Buffer.from([0, 0, 0, 2, 0, 3]));
    await a.closed;
    const b = await WireClient.connect(broker.port);
    // Metadata v1 header, then an array count of 1 billion topics with no bytes behind it.
    b.write(Buffer.from([0, 0, 0, 14, 0, 3, 0, 1, 0, 0, 0, 1, 0xff, 0xff, 0x3b, 0x9a, 0xca, 0x00]));
    await b.closed;
    await c.call(ApiVersions, 0, {});
  });

  test("an unsupported version of an API gets UNSUPPORTED_VERSION and the connection stays open", async () => {
    const id = c.nextCorrelationId();
    const response = c.expect(id);
    // Metadata v99: a flexible request header (null client id, no tagged fields), empty body.
    const frame = Buffer.alloc(15);
    frame.writeInt32BE(11, 0);
    frame.writeInt16BE(3, 4);
    frame.writeInt16BE(99, 6);
    frame.writeInt32BE(id, 8);
    frame.writeInt16BE(-1, 12);
    frame.writeInt8(0, 14);
    c.write(frame);
    const r = new Reader(await response);
    r.readInt32("correlationId");
    assert.equal(r.readUVarint("taggedFields"), 0, "v99 of a flexible API: response header v1");
    assert.equal(r.readInt16("errorCode"), ErrorCode.UNSUPPORTED_VERSION);
    await c.call(ApiVersions, 0, {});
  });

  test("a closed connection's long poll does not disturb the broker", async () => {
    const p = await WireClient.connect(broker.port);
    p.write(longPoll(p, "conn", 5000));
    await sleep(50);
    p.close();
    await c.call(ApiVersions, 0, {});
  });
});

describe("connection limits", () => {
  test("max.connections: connections over the limit are closed at once", async () => {
    const broker = await testBroker({ "max.connections": "2" });
    const a = await WireClient.connect(broker.port);
    const b = await WireClient.connect(broker.port);
    await a.call(ApiVersions, 0, {});
    const extra = await WireClient.connect(broker.port);
    await extra.closed;
    await b.call(ApiVersions, 0, {});
    a.close();
    await a.closed;
    await sleep(50);
    const again = await WireClient.connect(broker.port);
    await again.call(ApiVersions, 0, {});
    for (const x of [b, again]) x.close();
    await broker.stop();
  });

  test("connections.max.idle.ms closes idle connections, not busy ones", async () => {
    const broker = await testBroker({ "connections.max.idle.ms": "300" });
    const idle = await WireClient.connect(broker.port);
    const busy = await WireClient.connect(broker.port);
    await createTopic(busy, "idle");
    const started = Date.now();
    await idle.closed;
    assert.ok(Date.now() - started < 2000);
    const live = await WireClient.connect(broker.port);
    for (let i = 0; i < 5; i++) {
      await live.call(ApiVersions, 0, {});
      await sleep(100);
    }
    assert.equal(live.isClosed, false, "a connection in use stays open");
    live.close();
    busy.close();
    await broker.stop();
  });

  test("a client that does not read its responses is not read from either (send-buffer backpressure)", async () => {
    // A high in-flight limit, so that only the full send buffer can stop the reading.
    const broker = await testBroker({ "queued.max.requests": "500" });
    const c = await WireClient.connect(broker.port);
    await createTopic(c, "slow");
    // Under message.max.bytes (1 MB by default).
    const big = await produce(c, "slow", 0, batch(["r".repeat(900_000)]), { acks: 1 });
    assert.equal(big.errorCode, ErrorCode.NONE);
    const log = broker.broker.context!.topics.partition("slow", 0)!.log;
    c.socket.pause();
    // 40 fetches of the 900 kB record: far more than the kernel's socket buffers hold.
    const ids = Array.from({ length: 40 }, () => c.nextCorrelationId());
    const answered = Promise.all(ids.map((id) => c.expect(id)));
    c.write(Buffer.concat(ids.map((id) => longPoll(c, "slow", 0, id))));
    await sleep(500);
    const produceId = c.nextCorrelationId();
    const produced = c.expect(produceId);
    c.write(
      c.frame(
        Produce,
        7,
        {
          acks: 1,
          timeoutMs: 5000,
          topicData: [{ name: "slow", partitionData: [{ index: 0, records: batch(["x"]) }] }],
        },
        produceId,
      ),
    );
    await sleep(500);
    assert.equal(log.logEndOffset, 1n, "the produce behind the unread responses was not read yet");
    c.socket.resume();
    await answered;
    await produced;
    assert.equal(log.logEndOffset, 2n, "it was, once the client read its responses");
    c.close();
    await broker.stop();
  });

  test("graceful stop answers requests in flight before closing", async () => {
    const broker = await testBroker();
    const c = await WireClient.connect(broker.port);
    await createTopic(c, "g");
    const id = c.nextCorrelationId();
    const pending = c.expect(id);
    c.write(longPoll(c, "g", 10_000, id));
    await sleep(100);
    const started = Date.now();
    await broker.stop();
    const r = new Reader(await pending);
    assert.equal(r.readInt32("correlationId"), id, "the request in flight was answered");
    assert.ok(Date.now() - started < 3000, "its long poll ended early");
    await c.closed;
  });
});
