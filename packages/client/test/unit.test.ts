// Pieces of the client that need no broker: partitioners, assignors, the consumer protocol
// formats, options and the Java-properties loader, backoff.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { Writer } from "@sluice/protocol";
import fc from "fast-check";
import {
  type AssignorName,
  assign,
  decodeAssignment,
  decodeSubscription,
  encodeAssignment,
  encodeSubscription,
  type GroupMemberSubscription,
  type TopicPartition,
} from "../src/assignors.ts";
import { backoffMs } from "../src/backoff.ts";
import { ConfigError } from "../src/errors.ts";
import {
  CONSUMER_OPTIONS,
  fromJavaProperties,
  PRODUCER_OPTIONS,
  parseJavaProperties,
  resolveOptions,
} from "../src/options.ts";
import { keyedPartition, murmur2, StickyPartitioner } from "../src/partitioner.ts";

describe("partitioners", () => {
  test("murmur2 matches Kafka's Utils.murmur2 test vectors", () => {
    // clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java
    const cases: [string, number][] = [
      ["21", -973932308],
      ["foobar", -790332482],
      ["a-little-bit-long-string", -985981536],
      ["a-little-bit-longer-string", -1486304829],
      ["lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971],
      ["abc", 479470107],
    ];
    for (const [k, v] of cases) assert.equal(murmur2(Buffer.from(k)), v, k);
    assert.equal(murmur2(new Uint8Array([0, 1, 2, 3, 4, 5, 6])), murmur2(new Uint8Array([0, 1, 2, 3, 4, 5, 6])));
  });

  test("keyed partition is toPositive(murmur2) % n", () => {
    assert.equal(keyedPartition(Buffer.from("21"), 7), (-973932308 & 0x7fffffff) % 7);
  });

  test("sticky partitioning stays on a partition for batchSize bytes, then moves to another", () => {
    const s = new StickyPartitioner({ batchSize: 1000, adaptive: false });
    const seen: number[] = [];
    for (let i = 0; i < 50; i++) seen.push(s.partition("t", 4, 100, [], () => 0));
    for (let i = 0; i < 50; i += 10) {
      assert.equal(new Set(seen.slice(i, i + 10)).size, 1, "ten 100-byte records share a partition");
      if (i > 0) assert.notEqual(seen[i], seen[i - 1], "then it moves on");
    }
  });

  test("adaptive sticky partitioning favours partitions with short queues", () => {
    let seed = 1;
    const random = (): number => {
      seed = (seed * 16807) % 2147483647;
      return seed / 2147483647;
    };
    const s = new StickyPartitioner({ batchSize: 1, adaptive: true, random });
    const counts = [0, 0, 0];
    for (let i = 0; i < 3000; i++) counts[s.partition("t", 3, 10, [], (p) => (p === 0 ? 10_000 : 0))]!++;
    assert.ok(counts[0]! < counts[1]! / 10, `the long queue gets little: ${counts}`);
  });

  test("sticky partitioning only uses partitions with a leader", () => {
    const s = new StickyPartitioner({ batchSize: 1, adaptive: false });
    for (let i = 0; i < 100; i++) assert.ok([1, 3].includes(s.partition("t", 4, 10, [1, 3], () => 0)));
  });
});

const sortTp = (a: TopicPartition, b: TopicPartition): number =>
  a.topic === b.topic ? a.partition - b.partition : a.topic < b.topic ? -1 : 1;
const member = (
  memberId: string,
  topics: string[],
  owned: TopicPartition[] = [],
  generationId = -1,
): GroupMemberSubscription => ({
  memberId,
  groupInstanceId: null,
  topics,
  userData: null,
  ownedPartitions: owned,
  generationId,
  rackId: null,
});

describe("assignors", () => {
  test("range gives consecutive ranges per topic, extras to the first members", () => {
    const a = assign("range", [member("b", ["t"]), member("a", ["t"])], new Map([["t", 5]]));
    assert.deepEqual(
      a.get("a")?.map((p) => p.partition),
      [0, 1, 2],
    );
    assert.deepEqual(
      a.get("b")?.map((p) => p.partition),
      [3, 4],
    );
  });

  test("roundrobin deals partitions in turn", () => {
    const a = assign("roundrobin", [member("b", ["t"]), member("a", ["t"])], new Map([["t", 5]]));
    assert.deepEqual(
      a.get("a")?.map((p) => p.partition),
      [0, 2, 4],
    );
    assert.deepEqual(
      a.get("b")?.map((p) => p.partition),
      [1, 3],
    );
  });

  const groupArb = fc.record({
    topics: fc.uniqueArray(fc.constantFrom("a", "b", "c"), { minLength: 1 }),
    counts: fc.array(fc.integer({ min: 0, max: 12 }), { minLength: 3, maxLength: 3 }),
    members: fc.uniqueArray(fc.string({ minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 7 }),
    subsets: fc.array(fc.integer({ min: 1, max: 7 }), { minLength: 7, maxLength: 7 }),
  });

  for (const strategy of ["range", "roundrobin", "sticky"] as AssignorName[]) {
    test(`${strategy}: every partition goes to exactly one member subscribed to its topic`, () => {
      fc.assert(
        fc.property(groupArb, ({ topics, counts, members, subsets }) => {
          const counts_ = new Map(["a", "b", "c"].map((t, i) => [t, counts[i]!]));
          const ms = members.map((m, i) =>
            member(
              m,
              topics.filter((_, j) => ((subsets[i]! >> j) & 1) === 1 || j === 0),
            ),
          );
          const out = assign(strategy, ms, counts_);
          const all = [...out.values()].flat();
          const expected = [...new Set(ms.flatMap((m) => m.topics))].flatMap((t) =>
            Array.from({ length: counts_.get(t)! }, (_, p) => ({ topic: t, partition: p })),
          );
          assert.deepEqual([...all].sort(sortTp), expected.sort(sortTp));
          for (const m of ms) for (const tp of out.get(m.memberId)!) assert.ok(m.topics.includes(tp.topic));
        }),
      );
    });
  }

  test("sticky is balanced for equal subscriptions and keeps owned partitions when it can", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 0, max: 40 }), (n, parts) => {
        const counts = new Map([["t", parts]]);
        const first = assign(
          "sticky",
          Array.from({ length: n }, (_, i) => member(`m${i}`, ["t"])),
          counts,
        );
        const loads = [...first.values()].map((l) => l.length);
        assert.ok(Math.max(...loads) - Math.min(...loads) <= 1);
        // One member leaves: the others keep everything they had.
        if (n < 2) return;
        const rest = Array.from({ length: n - 1 }, (_, i) => member(`m${i}`, ["t"], first.get(`m${i}`)!, 1));
        const second = assign("sticky", rest, counts);
        for (const m of rest)
          for (const tp of m.ownedPartitions)
            assert.ok(
              second.get(m.memberId)!.some((x) => x.partition === tp.partition),
              "kept",
            );
      }),
    );
  });

  test("cooperative-sticky takes moving partitions away first and hands them out in the next round", () => {
    const counts = new Map([["t", 6]]);
    const a = assign("cooperative-sticky", [member("a", ["t"])], counts).get("a")!;
    assert.equal(a.length, 6);
    // b joins: round 1 gives b nothing that a still owns, and takes 3 from a.
    const r1 = assign("cooperative-sticky", [member("a", ["t"], a, 1), member("b", ["t"], [], -1)], counts);
    assert.equal(r1.get("a")!.length, 3);
    assert.equal(r1.get("b")!.length, 0);
    // a revoked them and rejoins with what it kept: round 2 gives them to b.
    const r2 = assign("cooperative-sticky", [member("a", ["t"], r1.get("a")!, 2), member("b", ["t"], [], 2)], counts);
    assert.deepEqual(r2.get("a"), r1.get("a"));
    assert.equal(r2.get("b")!.length, 3);
  });

  test("a partition claimed by two members goes to the higher generation", () => {
    const tp = { topic: "t", partition: 0 };
    const out = assign("sticky", [member("a", ["t"], [tp], 1), member("b", ["t"], [tp], 2)], new Map([["t", 1]]));
    assert.deepEqual(out.get("b"), [tp]);
    assert.deepEqual(out.get("a"), []);
  });
});

describe("consumer protocol", () => {
  test("subscriptions and assignments round-trip", () => {
    const owned = [
      { topic: "x", partition: 2 },
      { topic: "y", partition: 0 },
    ];
    const s = decodeSubscription(encodeSubscription({ topics: ["x", "y"], ownedPartitions: owned, generationId: 7 }));
    assert.deepEqual(s.topics, ["x", "y"]);
    assert.deepEqual(s.ownedPartitions, owned);
    assert.equal(s.generationId, 7);
    assert.deepEqual(decodeAssignment(encodeAssignment(owned)), owned);
    assert.deepEqual(decodeAssignment(new Uint8Array(0)), []);
  });

  test("reads a v0 subscription (kafkajs, librdkafka) and a v3 one (Java) with a rack", () => {
    const v0 = new Writer();
    v0.writeInt16(0);
    v0.writeInt32(1);
    v0.writeString("t", false);
    v0.writeBytes(null, false);
    assert.deepEqual(decodeSubscription(v0.toBuffer()).topics, ["t"]);
    const v3 = encodeSubscription({ topics: ["t"], rackId: "r1", generationId: 3 }, 3);
    const s = decodeSubscription(v3);
    assert.equal(s.rackId, "r1");
    assert.equal(s.generationId, 3);
  });
});

describe("options", () => {
  test("fromJavaProperties maps Java names to camelCase options with types", () => {
    assert.deepEqual(
      fromJavaProperties({
        "bootstrap.servers": "a:9092,b:9092",
        "linger.ms": "5",
        acks: "all",
        "enable.idempotence": "false",
        "compression.type": "zstd",
        "partition.assignment.strategy": "org.apache.kafka.clients.consumer.CooperativeStickyAssignor,range",
      }),
      {
        bootstrapServers: ["a:9092", "b:9092"],
        lingerMs: 5,
        acks: "all",
        enableIdempotence: false,
        compressionType: "zstd",
        partitionAssignmentStrategy: ["cooperative-sticky", "range"],
      },
    );
    assert.deepEqual(fromJavaProperties(parseJavaProperties("# c\nacks=1\nlinger.ms = 7\n")), { acks: 1, lingerMs: 7 });
  });

  test("unknown properties, bad numbers and bad choices are refused", () => {
    assert.throws(() => fromJavaProperties({ "linger.msec": "5" }), ConfigError);
    assert.throws(() => fromJavaProperties({ "linger.ms": "soon" }), ConfigError);
    assert.throws(() => fromJavaProperties({ "compression.type": "brotli" }), ConfigError);
    assert.throws(
      () => resolveOptions("producer", PRODUCER_OPTIONS, { bootstrapServers: "x:1", lingrMs: 5 }),
      ConfigError,
    );
    assert.throws(() => resolveOptions("producer", PRODUCER_OPTIONS, {}), /bootstrapServers/);
  });

  test("defaults are Java's", () => {
    const p = resolveOptions<Record<string, unknown>>("producer", PRODUCER_OPTIONS, { bootstrapServers: "x:1" });
    assert.equal(p.lingerMs, 5);
    assert.equal(p.batchSize, 16384);
    assert.equal(p.bufferMemory, 33554432);
    assert.equal(p.deliveryTimeoutMs, 120000);
    const c = resolveOptions<Record<string, unknown>>("consumer", CONSUMER_OPTIONS, { bootstrapServers: "x:1" });
    assert.equal(c.maxPollRecords, 500);
    assert.equal(c.sessionTimeoutMs, 45000);
    assert.deepEqual(c.partitionAssignmentStrategy, ["range", "cooperative-sticky"]);
  });

  test("docs/client.md lists every option with its Java name and default", () => {
    const doc = readFileSync(new URL("../../../docs/client.md", import.meta.url), "utf8");
    for (const s of [...PRODUCER_OPTIONS, ...CONSUMER_OPTIONS]) {
      const row = doc.split("\n").find((l) => l.startsWith(`| \`${s.name}\``));
      assert.ok(row, `docs/client.md has a row for ${s.name}`);
      assert.ok(row.includes(`\`${s.java}\``), `${s.name}'s row names ${s.java}`);
      if (s.default !== undefined) {
        const shown = Array.isArray(s.default) ? s.default.join(", ") : String(s.default);
        assert.ok(row.includes(shown), `${s.name}'s row shows the default ${shown}`);
      }
    }
  });
});

test("backoff grows exponentially up to the maximum, with ±20 % jitter", () => {
  for (let i = 0; i < 100; i++) {
    const first = backoffMs(0, 100, 1000);
    assert.ok(first >= 80 && first <= 120);
    const late = backoffMs(10, 100, 1000);
    assert.ok(late >= 800 && late <= 1200);
  }
});
