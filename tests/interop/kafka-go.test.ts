// kafka-go (segmentio, 0.2.1: Debian's golang-github-segmentio-kafka-go-dev, a Go client with its
// own protocol code) against a real broker process. The program in ./kafka-go is built here,
// offline. kafka-go 0.2 speaks old versions only: Produce v2 with message format v1, Fetch v2,
// Metadata v1, CreateTopics v0, JoinGroup v1, SyncGroup and Heartbeat v0, OffsetFetch v1,
// OffsetCommit v2, so every record goes through the broker's format conversions both ways.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { goInterop, hasGoPackage } from "../helpers/go.ts";

const SOURCE = fileURLToPath(new URL("./kafka-go/main.go", import.meta.url));
const skip =
  !hasGoPackage("github.com/segmentio/kafka-go") &&
  "golang-go and golang-github-segmentio-kafka-go-dev are not installed (CI installs them with apt-get)";

describe("kafka-go", { skip }, () => {
  const go = goInterop(SOURCE, "kafka-go");
  before(() => go.start());
  after(() => go.stop());

  test("the Writer with every codec it has (none, gzip, snappy, lz4); a partition Reader reads keys, values and times back byte-exact", async () => {
    const out = (await go.scenario("produce-consume")) as {
      got: { offset: number; key: string; value: string; time: number }[];
    };
    const codecs = ["none", "gzip", "snappy", "lz4"];
    assert.deepEqual(
      out.got.map((g) => g.offset),
      Array.from({ length: 40 }, (_, i) => i),
    );
    for (const [n, g] of out.got.entries()) {
      const codec = codecs[Math.floor(n / 10)]!;
      const i = n % 10;
      assert.equal(g.key, `${codec}-${i}`);
      // Go's encoding/json writes []byte as base64.
      assert.deepEqual(
        Buffer.from(g.value, "base64"),
        Buffer.concat([Buffer.from(`${codec}-value-`), Buffer.from([i, 0, 255])]),
      );
      assert.equal(g.time, 1_650_000_000_000 + i * 1000);
    }
  });

  test("two group Readers consume everything and commit it; a new member of the group resumes after the commits", async () => {
    const out = await go.scenario("group");
    assert.deepEqual(out, { seen: Array.from({ length: 40 }, (_, i) => `g${i}`).sort(), resumed: "late" });
  });
});
