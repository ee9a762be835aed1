// sarama (1.22, Debian's golang-github-shopify-sarama-dev: the Go client, with its own protocol
// code) against a real broker process. The Go program in ./sarama is built here, offline, in GOPATH
// mode from Debian's packaged sources; each test runs one of its scenarios and checks the JSON it
// prints. Configured for Kafka 2.1, sarama 1.22 still sends old versions: Produce v3 (idempotent
// in one scenario), Fetch v4, ListOffsets v1, Metadata v5, JoinGroup v1, OffsetCommit v2, and the
// ClusterAdmin APIs (CreateTopics, DescribeConfigs, CreatePartitions, DeleteTopics, ListGroups,
// DescribeGroups, OffsetFetch).

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { goInterop, hasGoPackage } from "../helpers/go.ts";

const SOURCE = fileURLToPath(new URL("./sarama/main.go", import.meta.url));
const skip =
  !hasGoPackage("github.com/Shopify/sarama") &&
  "golang-go and golang-github-shopify-sarama-dev are not installed (CI installs them with apt-get)";

describe("sarama", { skip }, () => {
  const go = goInterop(SOURCE, "sarama");
  before(() => go.start());
  after(() => go.stop());

  test("ClusterAdmin creates, describes, grows and deletes a topic; a duplicate is refused", async () => {
    const out = await go.scenario("admin");
    assert.match(String(out.dup), /already exists/);
    delete out.dup;
    assert.deepEqual(out, {
      listed: 3,
      configs: { "retention.ms": "123456", "cleanup.policy": "delete" },
      grown: 5,
      gone: true,
    });
  });

  test("SyncProducer (idempotent, then every codec) with keys, headers and timestamps; the partition consumer reads it all back byte-exact", async () => {
    const out = (await go.scenario("produce-consume")) as {
      sent: { offset: number; value: string }[];
      got: { offset: number; key: string; value: string; header: string; timestamp: number }[];
    };
    assert.equal(out.sent.length, 200);
    assert.deepEqual(
      out.sent.map((s) => s.offset),
      Array.from({ length: 200 }, (_, i) => i),
    );
    assert.deepEqual(
      out.got.map((g) => g.offset),
      Array.from({ length: 200 }, (_, i) => i),
    );
    const codecs = ["none", "gzip", "snappy", "lz4", "zstd"];
    for (const [i, g] of out.got.entries()) {
      const codec = codecs[Math.floor(i / 40)]!;
      assert.equal(g.key, `${codec}-${i % 40}`);
      assert.equal(g.value, out.sent[i]!.value, `value at offset ${i} is byte-exact`);
      assert.equal(g.header, codec);
      assert.equal(g.timestamp, 1_700_000_000_000 + i);
    }
  });

  test("GetOffset: newest, oldest, and by timestamp (sarama writes maxTimestamp -1; the broker recomputes it)", async () => {
    assert.deepEqual(await go.scenario("offsets"), { newest: 8, oldest: 0, at: 5, after: -1 });
  });

  test("sarama's default config (Kafka 0.8.2: message format v0, Produce v0, Fetch v0) and Kafka 0.10.0 (format v1 with timestamps, Fetch v2) produce and read back through the broker's format conversions", async () => {
    const out = (await go.scenario("legacy")) as Record<
      string,
      number[] | { offset: number; key: string; value: string; timestamp: number }[]
    >;
    const expected = (round: number) =>
      ["none", "gzip", "snappy"].flatMap((codec) =>
        [0, 1, 2, 3, 4].map((i) => ({
          key: `r${round}-${codec}-${i}`,
          value: `value ${i}`,
          // Format v0 has no timestamps; v1 keeps the producer's.
          timestamp: round === 0 ? -1 : 1_650_000_000_000 + i * 1000,
        })),
      );
    assert.deepEqual(
      out.sent0,
      Array.from({ length: 15 }, (_, i) => i),
    );
    assert.deepEqual(
      out.sent1,
      Array.from({ length: 15 }, (_, i) => 15 + i),
    );
    const strip = (rows: unknown) =>
      (rows as { offset: number; key: string; value: string; timestamp: number }[]).map((r, i) => {
        assert.equal(r.offset, i);
        return { key: r.key, value: r.value, timestamp: r.timestamp };
      });
    assert.deepEqual(strip(out.got0), expected(0), "the v0 consumer reads the v0 producer's messages");
    assert.deepEqual(strip(out.got1), [...expected(0), ...expected(1)], "the v1 consumer reads both");
  });

  test("two ConsumerGroup members share the partitions and commit what they marked; the admin lists and describes the group", async () => {
    const out = await go.scenario("group");
    assert.deepEqual(out, {
      seen: Array.from({ length: 40 }, (_, i) => `g${i}`).sort(),
      split: [2, 2],
      listed: { "sar-g": "consumer" },
      state: "Stable",
      protocol: "range",
      members: 2,
      committed: [10, 10, 10, 10],
    });
  });
});
