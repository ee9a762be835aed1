// Produce request frames from the buffer pool: the frame's record bytes are written to the log and
// kept by the tail cache, and Fetch responses served from the tail cache are views of them. The
// frame buffer is reused for a later request only once every holder has given its reference back.
// If any holder (a queued append, the tail cache, a response waiting in the socket's queue) held
// no reference, a later produce request would overwrite bytes still to be written or sent, and
// records would arrive corrupt: these tests check every record that comes back.

import assert from "node:assert/strict";
import { test } from "node:test";
import { ErrorCode } from "@sluice/protocol";
import { buildRecordBatch, decodeRecords } from "@sluice/protocol/records/record-batch.ts";
import { bufferPool } from "@sluice/storage";
import { Produce } from "../apis.ts";
import { batch, createTopic, fetchOne, produce, sleep, testBroker, WireClient } from "../helpers.ts";

const RECORDS_PER_BATCH = 200;
const VALUE_BYTES = 1000;

function value(i: number): string {
  return `${i}:`.padEnd(VALUE_BYTES, String.fromCharCode(97 + (i % 26)));
}

/** Batch `b` of consecutive values: ~200 KB, so its produce frame comes from the pool. */
function bigBatch(b: number): Buffer {
  return batch(Array.from({ length: RECORDS_PER_BATCH }, (_, k) => value(b * RECORDS_PER_BATCH + k)));
}

function valuesOf(records: Uint8Array | null): string[] {
  if (records === null) return [];
  return decodeRecords(records, { allowPartialTail: false }).flatMap((b) =>
    b.records.map((r) => Buffer.from(r.value!).toString()),
  );
}

test("a tailing consumer reads back every record while produce frames are reused", async () => {
  const broker = await testBroker();
  try {
    const p = await WireClient.connect(broker.port);
    const c = await WireClient.connect(broker.port);
    await createTopic(p, "tail", 1);
    const BATCHES = 60;
    const reusedBefore = bufferPool.reused;
    const producing = (async () => {
      for (let b = 0; b < BATCHES; b++) {
        // acks=0 and acks=1 in turn: with acks=0 nothing waits for the write before the next frame.
        const acks = b % 2 === 0 ? 0 : 1;
        if (acks === 0) {
          p.send(Produce, 9, {
            acks: 0,
            timeoutMs: 5000,
            topicData: [{ name: "tail", partitionData: [{ index: 0, records: bigBatch(b) }] }],
          });
        } else assert.equal((await produce(p, "tail", 0, bigBatch(b), { acks })).errorCode, ErrorCode.NONE);
      }
    })();
    const got: string[] = [];
    let offset = 0n;
    const end = BigInt(BATCHES * RECORDS_PER_BATCH);
    const deadline = Date.now() + 30_000;
    while (offset < end) {
      assert.ok(Date.now() < deadline, `only ${offset} of ${end} records arrived`);
      const res = await fetchOne(c, "tail", 0, offset, { maxWaitMs: 500, partitionMaxBytes: 4 * 1024 * 1024 });
      const part = res.responses[0]!.partitions[0]!;
      assert.equal(part.errorCode, ErrorCode.NONE);
      const vs = valuesOf(part.records);
      got.push(...vs);
      offset += BigInt(vs.length);
    }
    await producing;
    assert.equal(got.length, Number(end));
    for (let i = 0; i < got.length; i++) if (got[i] !== value(i)) assert.fail(`record ${i} differs`);
    assert.ok(bufferPool.reused > reusedBefore, "produce frames reused pooled buffers");
    p.close();
    c.close();
  } finally {
    await broker.stop();
  }
});

test("Fetch responses queued behind a consumer that is not reading keep their bytes while frames are reused", async () => {
  // The responses are views of the tail cache's chunks, i.e. of earlier produce frames; the
  // consumer stops reading, so they wait in the socket's queue while later produce requests
  // (reusing pooled frames) push those chunks out of the tail cache.
  const broker = await testBroker({ "queued.max.requests": "500" });
  try {
    const p = await WireClient.connect(broker.port);
    await createTopic(p, "queued", 1);
    for (let b = 0; b < 2; b++) assert.equal((await produce(p, "queued", 0, bigBatch(b), { acks: 1 })).errorCode, 0);
    const slow = await WireClient.connect(broker.port);
    slow.socket.pause();
    const queued = Array.from({ length: 40 }, () =>
      fetchOne(slow, "queued", 0, 0n, { partitionMaxBytes: 4 * 1024 * 1024 }),
    );
    await sleep(300);
    for (let b = 2; b < 40; b++) assert.equal((await produce(p, "queued", 0, bigBatch(b), { acks: 1 })).errorCode, 0);
    slow.socket.resume();
    // The fetches read before the socket filled see the first two batches; the ones read after
    // it drained see more. Each must be exactly the log's first records.
    for (const res of await Promise.all(queued)) {
      const part = res.responses[0]!.partitions[0]!;
      assert.equal(part.errorCode, ErrorCode.NONE);
      const got = valuesOf(part.records);
      assert.ok(got.length >= 2 * RECORDS_PER_BATCH, `${got.length} records`);
      for (let i = 0; i < got.length; i++) if (got[i] !== value(i)) assert.fail(`record ${i} differs`);
    }
    p.close();
    slow.close();
  } finally {
    await broker.stop();
  }
});

test("a partition that fails unexpectedly does not release the frame while another partition is still appending", async () => {
  // Partition 0's producer-state check throws (a bug, simulated); partition 1's append is slow.
  // The request must settle only once partition 1 has appended, or its bytes would be taken
  // from a frame buffer already reused by the next request.
  const broker = await testBroker();
  try {
    const p = await WireClient.connect(broker.port);
    await createTopic(p, "two", 2);
    await createTopic(p, "other", 1);
    const topics = broker.broker.context!.topics;
    const p0 = topics.partition("two", 0)!;
    const p1 = topics.partition("two", 1)!;
    p0.producers.check = () => {
      throw new Error("simulated producer-state bug");
    };
    const append = p1.log.appendAsLeader.bind(p1.log);
    p1.log.appendAsLeader = async (records, epoch) => {
      await sleep(200);
      return append(records, epoch);
    };
    const idempotent = buildRecordBatch({
      records: [{ key: null, value: Buffer.alloc(50_000, 1) }],
      producerId: 7n,
      producerEpoch: 0,
      baseSequence: 0,
    });
    const first = p.call(Produce, 9, {
      acks: 1,
      timeoutMs: 5000,
      topicData: [
        {
          name: "two",
          partitionData: [
            { index: 0, records: idempotent },
            { index: 1, records: bigBatch(0) },
          ],
        },
      ],
    });
    // More big frames while partition 1 waits: they reuse pool buffers once any is free.
    const others: Promise<unknown>[] = [];
    for (let b = 1; b < 6; b++) others.push(produce(p, "other", 0, bigBatch(b), { acks: 1 }));
    const res = await first;
    await Promise.all(others);
    const parts = res.responses[0]!.partitionResponses;
    assert.notEqual(parts.find((x) => x.index === 0)!.errorCode, ErrorCode.NONE);
    assert.equal(parts.find((x) => x.index === 1)!.errorCode, ErrorCode.NONE);
    const back = await fetchOne(p, "two", 1, 0n, { partitionMaxBytes: 4 * 1024 * 1024 });
    const got = valuesOf(back.responses[0]!.partitions[0]!.records);
    assert.deepEqual(
      got,
      Array.from({ length: RECORDS_PER_BATCH }, (_, i) => value(i)),
    );
    p.close();
  } finally {
    await broker.stop();
  }
});

test("small Fetch results from pooled frames give their reference back, so frame buffers keep being reused", async () => {
  // A record chunk below the encoder's copy threshold never reaches the socket as itself; if its
  // reference were not given back, every such read would pin its frame buffer for good and the
  // pool would allocate a new buffer for each request.
  const broker = await testBroker();
  try {
    const p = await WireClient.connect(broker.port);
    const c = await WireClient.connect(broker.port);
    await createTopic(p, "smalltail", 1);
    const big = batch(Array.from({ length: 300 }, (_, k) => value(k))); // ~300 KB
    const small = batch(["tail"]);
    const ROUNDS = 40;
    const allocatedBefore = bufferPool.allocated;
    let offset = 0n;
    for (let i = 0; i < ROUNDS; i++) {
      const r = await produce(p, "smalltail", 0, Buffer.concat([big, small]), { acks: 1 });
      assert.equal(r.errorCode, ErrorCode.NONE);
      offset = r.baseOffset + 300n; // the small batch
      const res = await fetchOne(c, "smalltail", 0, offset);
      assert.deepEqual(valuesOf(res.responses[0]!.partitions[0]!.records), ["tail"]);
    }
    const allocated = bufferPool.allocated - allocatedBefore;
    // The 2 MiB tail cache holds ~7 of these frames; a few more are in flight.
    assert.ok(allocated <= 15, `${allocated} buffers allocated for ${ROUNDS} requests`);
    p.close();
    c.close();
  } finally {
    await broker.stop();
  }
});
