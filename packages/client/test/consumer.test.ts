// The consumer (manual assignment) against a real in-process broker: positions from
// auto.offset.reset or an explicit offset, seek, maxPollRecords, pause/resume, for await, and
// read_committed dropping aborted transactions written by kafkajs.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type RunningBroker, startBroker } from "@sluice/broker";
import { Consumer, type ConsumerRecord } from "../src/consumer.ts";
import { Producer } from "../src/producer.ts";

const text = (r: ConsumerRecord): string => Buffer.from(r.value ?? []).toString();

async function pollUntil(c: Consumer, count: number, timeoutMs = 10_000): Promise<ConsumerRecord[]> {
  const out: ConsumerRecord[] = [];
  const deadline = Date.now() + timeoutMs;
  while (out.length < count && Date.now() < deadline) out.push(...(await c.poll(200)));
  return out;
}

describe("consumer", () => {
  let broker: RunningBroker;
  before(async () => {
    broker = await startBroker();
    const producer = new Producer({ bootstrapServers: broker.bootstrap, lingerMs: 1 });
    await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        producer.send({ topic: "c-data", value: `m${i}`, key: "k", headers: { i: String(i) } }),
      ),
    );
    await producer.close();
  });
  after(async () => {
    await broker.stop();
  });

  test("reads from the earliest offset, in order, with keys and headers", async () => {
    const c = new Consumer({ bootstrapServers: broker.bootstrap, autoOffsetReset: "earliest" });
    c.assign([{ topic: "c-data", partition: 0 }]);
    const got = await pollUntil(c, 50);
    assert.deepEqual(
      got.map(text),
      Array.from({ length: 50 }, (_, i) => `m${i}`),
    );
    assert.deepEqual(
      got.map((r) => r.offset),
      Array.from({ length: 50 }, (_, i) => BigInt(i)),
    );
    assert.equal(Buffer.from(got[7]!.headers[0]!.value!).toString(), "7");
    await c.close();
  });

  test("latest starts at the end; an explicit offset and seek() move the position", async () => {
    const latest = new Consumer({ bootstrapServers: broker.bootstrap, autoOffsetReset: "latest" });
    latest.assign([{ topic: "c-data", partition: 0 }]);
    assert.deepEqual(await latest.poll(500), []);
    await latest.close();
    const c = new Consumer({ bootstrapServers: broker.bootstrap });
    c.assign([{ topic: "c-data", partition: 0, offset: 45n }]);
    assert.deepEqual((await pollUntil(c, 5)).map(text), ["m45", "m46", "m47", "m48", "m49"]);
    c.seek("c-data", 0, 10n);
    assert.equal((await pollUntil(c, 1))[0]!.offset, 10n);
    await c.close();
  });

  test("poll() returns at most maxPollRecords", async () => {
    const c = new Consumer({ bootstrapServers: broker.bootstrap, autoOffsetReset: "earliest", maxPollRecords: 7 });
    c.assign([{ topic: "c-data", partition: 0 }]);
    const first = await c.poll(2000);
    assert.ok(first.length > 0 && first.length <= 7, `got ${first.length}`);
    await c.close();
  });

  test("paused partitions hand out nothing until resumed, and lose nothing", async () => {
    const c = new Consumer({ bootstrapServers: broker.bootstrap, autoOffsetReset: "earliest" });
    c.assign([{ topic: "c-data", partition: 0 }]);
    c.pause([{ topic: "c-data", partition: 0 }]);
    assert.deepEqual(await c.poll(300), []);
    c.resume([{ topic: "c-data", partition: 0 }]);
    assert.equal((await pollUntil(c, 50)).length, 50);
    await c.close();
  });

  test("for await iterates records", async () => {
    const c = new Consumer({ bootstrapServers: broker.bootstrap, autoOffsetReset: "earliest" });
    c.assign([{ topic: "c-data", partition: 0, offset: 48n }]);
    const seen: string[] = [];
    for await (const r of c) {
      seen.push(text(r));
      if (seen.length === 2) break;
    }
    assert.deepEqual(seen, ["m48", "m49"]);
    await c.close();
  });

  test("read_committed drops aborted transactions and control records; read_uncommitted shows them", async () => {
    // Async: the broker lives in this process and must keep serving while the child runs.
    const child = spawn(
      process.execPath,
      [join(import.meta.dirname, "fixtures/kafkajs-transactions.ts"), broker.bootstrap, "c-txn"],
      { stdio: "inherit" },
    );
    const status = await new Promise((r) => child.on("exit", r));
    assert.equal(status, 0);
    const rc = new Consumer({ bootstrapServers: broker.bootstrap, autoOffsetReset: "earliest" });
    rc.assign([{ topic: "c-txn", partition: 0 }]);
    const committed = await pollUntil(rc, 2, 3000);
    await new Promise((r) => setTimeout(r, 300));
    committed.push(...(await rc.poll(300)));
    assert.deepEqual(committed.map(text), ["commit-1", "commit-3"]);
    await rc.close();
    const ru = new Consumer({
      bootstrapServers: broker.bootstrap,
      autoOffsetReset: "earliest",
      isolationLevel: "read_uncommitted",
    });
    ru.assign([{ topic: "c-txn", partition: 0 }]);
    assert.deepEqual((await pollUntil(ru, 3)).map(text), ["commit-1", "abort-2", "commit-3"]);
    await ru.close();
  });
});
