// Consumer groups in the client against a real in-process broker: members share partitions,
// commits resume, and a member that stops polling beyond maxPollIntervalMs loses its partitions.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { type RunningBroker, startBroker } from "@sluice/broker";
import { Admin } from "../src/admin.ts";
import { Consumer, type ConsumerRecord } from "../src/consumer.ts";
import { assign } from "../src/group.ts";
import { Producer } from "../src/producer.ts";

describe("consumer groups", () => {
  let broker: RunningBroker;
  before(async () => {
    broker = await startBroker({ config: { "group.initial.rebalance.delay.ms": "0" } });
    const admin = new Admin({ bootstrapServers: broker.bootstrap });
    await admin.createTopics([{ name: "g4", numPartitions: 4 }]);
    await admin.close();
    const producer = new Producer({ bootstrapServers: broker.bootstrap });
    await Promise.all(
      Array.from({ length: 40 }, (_, i) => producer.send({ topic: "g4", partition: i % 4, value: `m${i}` })),
    );
    await producer.close();
  });
  after(async () => {
    await broker.stop();
  });

  test("range and roundrobin assignors split partitions completely and disjointly", () => {
    const members = [
      { memberId: "b", topics: ["t"] },
      { memberId: "a", topics: ["t"] },
    ];
    const range = assign("range", members, new Map([["t", 5]]));
    assert.deepEqual(range.get("a")?.get("t"), [0, 1, 2]);
    assert.deepEqual(range.get("b")?.get("t"), [3, 4]);
    const rr = assign("roundrobin", members, new Map([["t", 5]]));
    assert.deepEqual(rr.get("a")?.get("t"), [0, 2, 4]);
    assert.deepEqual(rr.get("b")?.get("t"), [1, 3]);
  });

  test("two members share the topic; a stalled member's partitions move; commits are honoured", {
    timeout: 60_000,
  }, async () => {
    // Auto-commit, which also commits before every rejoin: progress made before a rebalance is not
    // redone by the next owner (with manual commits it would be, as in Kafka: at-least-once).
    const mk = () =>
      new Consumer({
        bootstrapServers: broker.bootstrap,
        groupId: "cg",
        autoOffsetReset: "earliest",
        sessionTimeoutMs: 10_000,
        heartbeatIntervalMs: 200,
        maxPollIntervalMs: 2000,
        enableAutoCommit: true,
        autoCommitIntervalMs: 100,
      });
    const a = mk();
    const b = mk();
    const c = mk();
    try {
      await a.subscribe(["g4"]);
      await b.subscribe(["g4"]);
      const seen: ConsumerRecord[] = [];
      const deadline = Date.now() + 20_000;
      while (
        Date.now() < deadline &&
        (seen.length < 40 ||
          a.assignment().length + b.assignment().length !== 4 ||
          a.assignment().length === 0 ||
          b.assignment().length === 0)
      ) {
        for (const x of [a, b]) seen.push(...(await x.poll(100)));
      }
      const parts = [...a.assignment(), ...b.assignment()].map((p) => p.partition).sort();
      assert.deepEqual(parts, [0, 1, 2, 3], "disjoint and complete");
      assert.equal(new Set(seen.map((r) => `${r.partition}:${r.offset}`)).size, 40, "every record seen");
      await a.commit();
      await b.commit();
      // b stops polling: past maxPollIntervalMs it leaves and a takes everything.
      const until = Date.now() + 20_000;
      while (Date.now() < until && a.assignment().length < 4) await a.poll(100);
      assert.equal(a.assignment().length, 4, "the stalled member's partitions moved");
      await a.close();
      await b.close();
      // A new member resumes after the committed offsets: nothing to read.
      await c.subscribe(["g4"]);
      const extra: ConsumerRecord[] = [];
      const end = Date.now() + 1500;
      while (Date.now() < end) extra.push(...(await c.poll(100)));
      assert.equal(extra.length, 0);
    } finally {
      for (const x of [a, b, c]) await x.close().catch(() => {});
    }
  });
});
