// The consumer against a real Sluice broker: fetch options, positions, isolation, groups.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ApiKey } from "@sluice/protocol";
import { Admin } from "../src/admin.ts";
import { Consumer, type ConsumerRecord } from "../src/consumer.ts";
import { PartialFailureError } from "../src/errors.ts";
import { Producer } from "../src/producer.ts";
import { pollUntil, type RunningBroker, silent, skipUnlessServed, startBroker, text } from "./helpers/util.ts";

let broker: RunningBroker;
let groupsSkip: string | false = false;
let txnSkip: string | false = false;

before(async () => {
  broker = await startBroker({ config: { "num.partitions": "1", "group.initial.rebalance.delay.ms": "0" } });
  groupsSkip = await skipUnlessServed(
    broker.bootstrap,
    [ApiKey.JoinGroup, ApiKey.SyncGroup, ApiKey.Heartbeat],
    "consumer groups",
  );
  txnSkip = await skipUnlessServed(
    broker.bootstrap,
    [ApiKey.InitProducerId, ApiKey.AddPartitionsToTxn, ApiKey.EndTxn],
    "transactions",
  );
  const admin = new Admin({ bootstrapServers: broker.bootstrap });
  await admin.createTopics([
    { name: "data", numPartitions: 1 },
    { name: "g4", numPartitions: 4 },
  ]);
  await admin.close();
  const p = new Producer({ bootstrapServers: broker.bootstrap });
  await p.sendBatch(
    Array.from({ length: 100 }, (_, i) => ({ topic: "data", value: `m${i}`, key: `k${i}`, headers: { i: String(i) } })),
  );
  await p.sendBatch(Array.from({ length: 40 }, (_, i) => ({ topic: "g4", partition: i % 4, value: `m${i}` })));
  await p.close();
});
// Every consumer a test made, so that one left open by a failed assertion is closed before the
// broker stops (a consumer would otherwise keep reconnecting and the file would never exit).
const made = new Set<Consumer>();

after(async () => {
  await Promise.all([...made].map((c) => c.close().catch(() => {})));
  await broker.stop();
});

const consumer = (extra: Partial<ConstructorParameters<typeof Consumer>[0]> = {}): Consumer => {
  const c = new Consumer({ bootstrapServers: broker.bootstrap, autoOffsetReset: "earliest", ...silent, ...extra });
  made.add(c);
  return c;
};

describe("consumer with assign()", () => {
  test("poll() returns at most maxPollRecords records, with keys, headers and timestamps", async () => {
    const c = consumer({ maxPollRecords: 7 });
    c.assign([{ topic: "data", partition: 0 }]);
    let first: ConsumerRecord[] = [];
    for (let i = 0; i < 50 && first.length === 0; i++) first = await c.poll(100);
    assert.equal(first.length, 7);
    assert.equal(text(first[0]!.value), "m0");
    assert.equal(text(first[0]!.key), "k0");
    assert.deepEqual(
      first[3]!.headers.map((h) => [h.key, text(h.value)]),
      [["i", "3"]],
    );
    assert.ok(first[0]!.timestamp > 0n);
    assert.equal(c.position("data", 0), 7n);
    await c.close();
  });

  test("autoOffsetReset: earliest starts at the beginning, latest at the end, none fails", async () => {
    const late = consumer({ autoOffsetReset: "latest" });
    late.assign([{ topic: "data", partition: 0 }]);
    assert.deepEqual(await late.poll(300), []);
    assert.equal(late.position("data", 0), 100n);
    await late.close();
    const none = consumer({ autoOffsetReset: "none" });
    none.assign([{ topic: "data", partition: 0 }]);
    await assert.rejects(pollUntil(none, 1, 2000), { code: "NO_OFFSET" });
    await none.close();
  });

  test("seek, seekToBeginning and seekToEnd move the position", async () => {
    const c = consumer();
    c.assign([{ topic: "data", partition: 0, offset: 95n }]);
    assert.deepEqual(
      (await pollUntil(c, 5)).map((r) => text(r.value)),
      ["m95", "m96", "m97", "m98", "m99"],
    );
    c.seek("data", 0, 10n);
    assert.equal(text((await pollUntil(c, 1))[0]!.value), "m10");
    c.seekToEnd();
    assert.deepEqual(await c.poll(300), []);
    c.seekToBeginning();
    assert.equal(text((await pollUntil(c, 1))[0]!.value), "m0");
    await c.close();
  });

  test("pause() stops a partition, resume() continues it", async () => {
    const c = consumer();
    c.assign([{ topic: "data", partition: 0, offset: 50n }]);
    c.pause([{ topic: "data", partition: 0 }]);
    assert.deepEqual(await c.poll(300), []);
    c.resume([{ topic: "data", partition: 0 }]);
    assert.equal((await pollUntil(c, 50)).length, 50);
    await c.close();
  });

  test("for await iterates; a break leaves the rest for the next loop", async () => {
    const c = consumer();
    c.assign([{ topic: "data", partition: 0, offset: 90n }]);
    const seen: string[] = [];
    for await (const r of c) {
      seen.push(text(r.value));
      if (seen.length === 2) break;
    }
    for await (const r of c) {
      seen.push(text(r.value));
      if (seen.length === 4) break;
    }
    assert.deepEqual(seen, ["m90", "m91", "m92", "m93"]);
    await c.close();
  });

  test("maxPartitionFetchBytes and fetchMaxBytes bound each fetch and the buffer", async () => {
    const c = consumer({ maxPartitionFetchBytes: 300, fetchMaxBytes: 300, maxPollRecords: 1000 });
    c.assign([{ topic: "data", partition: 0 }]);
    const all = await pollUntil(c, 100, 10_000);
    assert.equal(all.length, 100, "small fetches still get everything");
    await c.close();
  });

  test("fetchMinBytes makes the broker hold a fetch for up to fetchMaxWaitMs", async () => {
    const timeToFirst = async (extra: Partial<ConstructorParameters<typeof Consumer>[0]>): Promise<number> => {
      const c = consumer(extra);
      c.assign([{ topic: "data", partition: 0, offset: 0n }]);
      const started = Date.now();
      await pollUntil(c, 1, 5000);
      await c.close();
      return Date.now() - started;
    };
    const waited = await timeToFirst({ fetchMinBytes: 10_000_000, fetchMaxWaitMs: 800 });
    assert.ok(waited >= 700, `the broker held the fetch (${waited} ms)`);
    assert.ok(waited < 3000);
    const quick = await timeToFirst({});
    assert.ok(quick < 500, `with fetchMinBytes 1 data comes at once (${quick} ms)`);
  });

  test("isolationLevel: read_committed skips aborted transactions and control records", async (t) => {
    if (txnSkip) return t.skip(txnSkip);
    const p = new Producer({ bootstrapServers: broker.bootstrap, transactionalId: "iso-txn" });
    for (const [v, commit] of [
      ["commit-1", true],
      ["abort-2", false],
      ["commit-3", true],
    ] as const) {
      const txn = await p.transaction();
      await txn.send({ topic: "iso", value: v });
      await (commit ? txn.commit() : txn.abort());
    }
    await p.close();
    const rc = consumer();
    rc.assign([{ topic: "iso", partition: 0 }]);
    const committed = await pollUntil(rc, 2);
    committed.push(...(await rc.poll(300)));
    assert.deepEqual(
      committed.map((r) => text(r.value)),
      ["commit-1", "commit-3"],
    );
    await rc.close();
    const ru = consumer({ isolationLevel: "read_uncommitted" });
    ru.assign([{ topic: "iso", partition: 0 }]);
    const all = await pollUntil(ru, 3);
    all.push(...(await ru.poll(300)));
    assert.deepEqual(
      all.map((r) => text(r.value)),
      ["commit-1", "abort-2", "commit-3"],
    );
    await ru.close();
  });
});

describe("consumer groups", { timeout: 60_000 }, () => {
  const member = (groupId: string, extra: Partial<ConstructorParameters<typeof Consumer>[0]> = {}): Consumer =>
    consumer({ groupId, sessionTimeoutMs: 6000, heartbeatIntervalMs: 100, ...extra });

  async function pollAll(cs: Consumer[], until: () => boolean, ms = 15_000): Promise<ConsumerRecord[]> {
    const seen: ConsumerRecord[] = [];
    const deadline = Date.now() + ms;
    while (Date.now() < deadline && !until()) for (const c of cs) seen.push(...(await c.poll(50)));
    return seen;
  }

  for (const strategy of ["range", "roundrobin", "cooperative-sticky"] as const) {
    test(`${strategy}: two members share the partitions and read every record once`, async (t) => {
      if (groupsSkip) return t.skip(groupsSkip);
      const revoked: number[] = [];
      const a = member(`share-${strategy}`, {
        partitionAssignmentStrategy: [strategy],
        rebalanceListener: { onPartitionsRevoked: (ps) => void revoked.push(ps.length) },
      });
      const b = member(`share-${strategy}`, { partitionAssignmentStrategy: [strategy] });
      await a.subscribe(["g4"]);
      // a alone owns all four partitions first (records it reads then count too), so that b's
      // arrival is a real rebalance: eager revokes everything, cooperative only what moves.
      const seen = await pollAll([a], () => a.assignment().length === 4);
      assert.equal(a.assignment().length, 4, "the first member owns every partition");
      await b.subscribe(["g4"]);
      const deadline = Date.now() + 15_000;
      while (
        Date.now() < deadline &&
        !(
          a.assignment().length === 2 &&
          b.assignment().length === 2 &&
          new Set(seen.map((r) => `${r.partition}:${r.offset}`)).size === 40
        )
      )
        for (const c of [a, b]) seen.push(...(await c.poll(50)));
      const parts = [...a.assignment(), ...b.assignment()].map((p) => p.partition).sort();
      assert.deepEqual(parts, [0, 1, 2, 3], "disjoint and complete");
      assert.equal(new Set(seen.map((r) => `${r.partition}:${r.offset}`)).size, 40);
      if (strategy === "cooperative-sticky")
        assert.ok(
          revoked.every((n) => n <= 2),
          "only moving partitions were revoked",
        );
      else assert.ok(revoked.includes(4), "eager: everything was revoked before rejoining");
      await a.close();
      await b.close();
    });
  }

  test("maxPollIntervalMs: a member that stops polling leaves and its partitions move", async (t) => {
    if (groupsSkip) return t.skip(groupsSkip);
    const lost: string[] = [];
    const a = member("stall", {
      maxPollIntervalMs: 1000,
      rebalanceListener: { onPartitionsLost: () => void lost.push("lost") },
    });
    const b = member("stall", { maxPollIntervalMs: 1000 });
    await a.subscribe(["g4"]);
    await b.subscribe(["g4"]);
    await pollAll([a, b], () => a.assignment().length === 2 && b.assignment().length === 2);
    assert.equal(a.assignment().length, 2);
    // a stops polling; b keeps polling and gets all four partitions.
    await pollAll([b], () => b.assignment().length === 4, 10_000);
    assert.equal(b.assignment().length, 4, "the stalled member's partitions moved");
    await a.poll(10); // a's next poll rejoins and finds its partitions lost
    assert.deepEqual(lost, ["lost"]);
    await a.close();
    await b.close();
  });

  test("commits: manual commit() and auto-commit are resumed by a new member", async (t) => {
    if (groupsSkip) return t.skip(groupsSkip);
    const a = member("commits", { enableAutoCommit: false });
    await a.subscribe(["data"]);
    const first = await pollUntil(a, 30);
    await a.commit([{ topic: "data", partition: 0, offset: first[29]!.offset + 1n }]);
    await a.close();
    const b = member("commits", { enableAutoCommit: true, autoCommitIntervalMs: 100 });
    await b.subscribe(["data"]);
    const next = await pollUntil(b, 1);
    assert.equal(text(next[0]!.value), "m30", "resumes after the manual commit");
    await pollUntil(b, 200, 1500); // reads on; auto-commit stores the position
    await b.close(); // commits on close too
    const admin = new Admin({ bootstrapServers: broker.bootstrap });
    const offsets = await admin.listConsumerGroupOffsets("commits");
    assert.ok(offsets[0]!.offset >= 100n, `auto-committed ${offsets[0]!.offset}`);
    await admin.close();
  });

  test("run({ eachMessage }) processes records; a failing handler re-reads from the failed record", async (t) => {
    if (groupsSkip) return t.skip(groupsSkip);
    const c = member("run", { maxPollRecords: 10 });
    await c.subscribe({ topics: ["data"], fromBeginning: true });
    const values: string[] = [];
    let failed = false;
    await c.run({
      eachMessage: async ({ message }) => {
        if (text(message.value) === "m5" && !failed) {
          failed = true;
          throw new Error("boom");
        }
        values.push(text(message.value));
      },
      onError: () => {},
    });
    const deadline = Date.now() + 10_000;
    while (values.length < 100 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await c.stop();
    assert.deepEqual(
      values.slice(0, 100),
      Array.from({ length: 100 }, (_, i) => `m${i}`),
    );
    await c.close();
  });

  test("static membership: a restarted member with the same groupInstanceId gets its partitions back without a rebalance", async (t) => {
    if (groupsSkip) return t.skip(groupsSkip);
    const mk = (id: string): Consumer =>
      member("static", { groupInstanceId: id, partitionAssignmentStrategy: ["range"] });
    const a = mk("a");
    const b = mk("b");
    await a.subscribe(["g4"]);
    await b.subscribe(["g4"]);
    await pollAll([a, b], () => a.assignment().length === 2 && b.assignment().length === 2);
    const before = b.assignment();
    const genBefore = b.groupMetadata().generationId;
    await a.close(); // a static member does not leave: no rebalance
    const a2 = mk("a");
    await a2.subscribe(["g4"]);
    await pollAll([a2, b], () => a2.assignment().length === 2, 8000);
    assert.deepEqual(b.assignment(), before, "b kept its partitions");
    assert.equal(b.groupMetadata().generationId, genBefore, "no new generation for b");
    assert.equal(a2.assignment().length, 2);
    await a2.close();
    await b.close();
  });
});

describe("admin", () => {
  test("creates, describes, grows, configures and deletes topics; partial failures carry per-item results", async () => {
    const admin = new Admin({ bootstrapServers: broker.bootstrap });
    await admin.createTopics([{ name: "a1", numPartitions: 3, configs: { "retention.ms": "1000" } }]);
    assert.ok((await admin.listTopics()).includes("a1"));
    assert.equal((await admin.describeTopics(["a1"]))[0]!.partitions.length, 3);
    await assert.rejects(admin.createTopics([{ name: "a1" }, { name: "a3" }]), (e: unknown) => {
      assert.ok(e instanceof PartialFailureError);
      assert.equal(e.results.find((r) => r.item === "a1")!.error!.code, "TOPIC_ALREADY_EXISTS");
      assert.equal(e.results.find((r) => r.item === "a3")!.error, null);
      return true;
    });
    await admin.createPartitions("a1", 5);
    assert.equal((await admin.describeTopics(["a1"]))[0]!.partitions.length, 5);
    await admin.alterConfigs({ type: "topic", name: "a1" }, { "retention.ms": "5000" });
    const configs = await admin.describeConfigs({ type: "topic", name: "a1" });
    assert.equal(configs.find((c) => c.name === "retention.ms")?.value, "5000");
    await admin.deleteTopics(["a1", "a3"]);
    assert.ok(!(await admin.listTopics()).includes("a1"));
    await admin.close();
  });

  test("listOffsets, deleteRecords; groups: list, describe, offsets, alter, reset, delete", async (t) => {
    const admin = new Admin({ bootstrapServers: broker.bootstrap });
    assert.deepEqual(
      (await admin.listOffsets("data", "earliest")).map((o) => o.offset),
      [0n],
    );
    const end = (await admin.listOffsets("data", "latest"))[0]!.offset;
    assert.ok(end >= 100n);
    const p = new Producer({ bootstrapServers: broker.bootstrap });
    await p.sendBatch(Array.from({ length: 10 }, () => ({ topic: "trim", value: "x" })));
    await p.close();
    await admin.deleteRecords("trim", { 0: 4n });
    assert.deepEqual(
      (await admin.listOffsets("trim", "earliest")).map((o) => o.offset),
      [4n],
    );
    if (groupsSkip) {
      await admin.close();
      return t.skip(groupsSkip);
    }
    await admin.alterConsumerGroupOffsets("admin-g", [{ topic: "data", partition: 0, offset: 42n }]);
    assert.deepEqual(
      (await admin.listConsumerGroupOffsets("admin-g")).map((o) => o.offset),
      [42n],
    );
    await admin.resetOffsets("admin-g", "data", "earliest");
    assert.deepEqual(
      (await admin.listConsumerGroupOffsets("admin-g")).map((o) => o.offset),
      [0n],
    );
    const c = consumer({ groupId: "admin-g", heartbeatIntervalMs: 100 });
    await c.subscribe(["data"]);
    await pollUntil(c, 1);
    assert.ok((await admin.listGroups()).some((g) => g.groupId === "admin-g"));
    const [d] = await admin.describeGroups(["admin-g"]);
    assert.equal(d!.members.length, 1);
    assert.deepEqual(d!.members[0]!.assignment, [{ topic: "data", partition: 0 }]);
    await assert.rejects(admin.deleteGroups(["admin-g"]), { code: "NON_EMPTY_GROUP" });
    await c.close();
    await admin.deleteGroups(["admin-g"]);
    assert.ok(!(await admin.listGroups()).some((g) => g.groupId === "admin-g"));
    await admin.close();
  });
});
