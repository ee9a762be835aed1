// Fetch from disk through the storage read pool: the record bytes of a response are read into a
// lent buffer that the connection gives back once the socket has taken them, and the next read
// reuses it. If a buffer went back too early (or twice), a later read would overwrite bytes still
// queued for another consumer and the records would arrive corrupt. Two consumers read two
// partitions concurrently from a restarted broker (empty tail caches: every read is a disk read),
// several passes each, and check every record's CRC and value.

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { ErrorCode } from "@sluice/protocol";
import { decodeRecords } from "@sluice/protocol/records/record-batch.ts";
import { bufferPool } from "@sluice/storage";
import { batch, createTopic, fetchOne, produce, sleep, testBroker, WireClient } from "../helpers.ts";

const BATCHES = 24;
const RECORDS_PER_BATCH = 40;
const VALUE_BYTES = 1000;

function value(partition: number, i: number): string {
  return `${partition}:${i}:`.padEnd(VALUE_BYTES, String.fromCharCode(97 + ((partition * 7 + i) % 26)));
}

/** Reads the whole partition from offset 0 in fetches of ~`fetchBytes`; returns the values in order. */
async function readAll(
  c: WireClient,
  topic: string,
  partition: number,
  end: bigint,
  fetchBytes = 128 * 1024,
): Promise<string[]> {
  const out: string[] = [];
  let offset = 0n;
  while (offset < end) {
    const res = await fetchOne(c, topic, partition, offset, { partitionMaxBytes: fetchBytes });
    const p = res.responses[0]!.partitions[0]!;
    assert.equal(p.errorCode, ErrorCode.NONE);
    assert.ok(p.records !== null && p.records.length > 0, `no records at offset ${offset}`);
    for (const b of decodeRecords(p.records, { allowPartialTail: false })) {
      for (const r of b.records) {
        if (r.offset < offset) continue;
        out.push(Buffer.from(r.value!).toString());
      }
      offset = b.header.baseOffset + BigInt(b.header.lastOffsetDelta) + 1n;
    }
  }
  return out;
}

test("responses queued behind a consumer that is not reading keep their bytes while other reads reuse buffers", async () => {
  // A client that stops reading fills the socket buffers; the broker's later responses wait in
  // the socket's write queue. A read buffer given back before the socket took its bytes would be
  // overwritten by the other client's reads.
  const dir = mkdtempSync(join(tmpdir(), "sluice-fetch-queue-"));
  try {
    let broker = await testBroker({}, { logDir: dir });
    const p = await WireClient.connect(broker.port);
    await createTopic(p, "q", 2);
    for (let partition = 0; partition < 2; partition++) {
      for (let b = 0; b < BATCHES; b++) {
        const values = Array.from({ length: RECORDS_PER_BATCH }, (_, k) => value(partition, b * RECORDS_PER_BATCH + k));
        assert.equal((await produce(p, "q", partition, batch(values))).errorCode, ErrorCode.NONE);
      }
    }
    p.close();
    await broker.stop();
    broker = await testBroker({ "queued.max.requests": "500" }, { logDir: dir });
    try {
      const end = BigInt(BATCHES * RECORDS_PER_BATCH);
      const slow = await WireClient.connect(broker.port);
      slow.socket.pause();
      // 40 fetches of the whole partition 0 (~1 MiB each): far more than the socket buffers hold.
      const queued = Array.from({ length: 40 }, () =>
        fetchOne(slow, "q", 0, 0n, { partitionMaxBytes: 2 * 1024 * 1024 }),
      );
      await sleep(300);
      const fast = await WireClient.connect(broker.port);
      for (let pass = 0; pass < 10; pass++) {
        // Reads of the same size as the queued ones: the same pool size class.
        const got = await readAll(fast, "q", 1, end, 2 * 1024 * 1024);
        assert.deepEqual(
          got,
          Array.from({ length: Number(end) }, (_, i) => value(1, i)),
        );
      }
      fast.close();
      slow.socket.resume();
      const want = Array.from({ length: Number(end) }, (_, i) => value(0, i));
      for (const res of await Promise.all(queued)) {
        const part = res.responses[0]!.partitions[0]!;
        assert.equal(part.errorCode, ErrorCode.NONE);
        const got = decodeRecords(part.records!, { allowPartialTail: false }).flatMap((b) =>
          b.records.map((r) => Buffer.from(r.value!).toString()),
        );
        assert.deepEqual(got, want);
      }
      slow.close();
    } finally {
      await broker.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("concurrent fetches from disk reuse read buffers without corrupting any record", async () => {
  const dir = mkdtempSync(join(tmpdir(), "sluice-fetch-disk-"));
  try {
    let broker = await testBroker({}, { logDir: dir });
    const p = await WireClient.connect(broker.port);
    await createTopic(p, "disk", 2);
    for (let partition = 0; partition < 2; partition++) {
      for (let b = 0; b < BATCHES; b++) {
        const values = Array.from({ length: RECORDS_PER_BATCH }, (_, k) => value(partition, b * RECORDS_PER_BATCH + k));
        assert.equal((await produce(p, "disk", partition, batch(values))).errorCode, ErrorCode.NONE);
      }
    }
    p.close();
    await broker.stop();
    broker = await testBroker({}, { logDir: dir });
    try {
      const reusedBefore = bufferPool.reused;
      const end = BigInt(BATCHES * RECORDS_PER_BATCH);
      const expected = (partition: number): string[] =>
        Array.from({ length: Number(end) }, (_, i) => value(partition, i));
      const clients = await Promise.all([WireClient.connect(broker.port), WireClient.connect(broker.port)]);
      for (let pass = 0; pass < 3; pass++) {
        const got = await Promise.all(clients.map((c, partition) => readAll(c, "disk", partition, end)));
        for (let partition = 0; partition < 2; partition++) {
          assert.equal(got[partition]!.length, Number(end));
          assert.deepEqual(got[partition], expected(partition), `partition ${partition}, pass ${pass}`);
        }
      }
      for (const c of clients) c.close();
      assert.ok(bufferPool.reused > reusedBefore, "the reads reused pooled buffers");
    } finally {
      await broker.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
