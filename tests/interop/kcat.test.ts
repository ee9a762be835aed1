// kcat (librdkafka 2.0) against a real broker process: metadata, keyed messages with headers
// produced and consumed back exactly, in order per partition.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { type BrokerProcess, hasCommand, run, startBrokerProcess } from "../helpers/broker-process.ts";

const skip = !hasCommand("kcat") && "kcat is not installed (CI installs it with apt-get)";

describe("kcat", { skip }, () => {
  let broker: BrokerProcess;
  before(async () => {
    broker = await startBrokerProcess({ config: { "num.partitions": "3" } });
  });
  after(async () => {
    await broker.cleanup();
  });

  test("produces keyed messages with headers and consumes them back exactly, in order per partition", async () => {
    const lines = Array.from({ length: 60 }, (_, i) => `key-${i % 7}:value-${i}`);
    const produced = await run(
      "kcat",
      ["-b", broker.bootstrap, "-P", "-t", "kc", "-K:", "-H", "app=sluice", "-H", "n=1", "-z", "lz4"],
      {
        input: `${lines.join("\n")}\n`,
      },
    );
    assert.equal(produced.status, 0, produced.stderr);
    const consumed = await run("kcat", [
      "-b",
      broker.bootstrap,
      "-C",
      "-t",
      "kc",
      "-e",
      "-q",
      "-f",
      "%p|%o|%k|%s|%h\\n",
    ]);
    assert.equal(consumed.status, 0, consumed.stderr);
    const rows = consumed.stdout
      .trim()
      .split("\n")
      .map((l) => l.split("|"));
    assert.equal(rows.length, 60);
    const byPartition = new Map<string, string[][]>();
    for (const r of rows) byPartition.set(r[0]!, [...(byPartition.get(r[0]!) ?? []), r]);
    assert.equal(byPartition.size, 3, "keys spread over the 3 partitions");
    for (const [, rs] of byPartition) {
      for (const [i, r] of rs.entries()) assert.equal(r[1], String(i), "offsets are consecutive from 0");
      const values = rs.map((r) => Number(r[3]!.split("-")[1]));
      assert.deepEqual(
        values,
        [...values].sort((a, b) => a - b),
        "order kept per partition",
      );
      for (const r of rs) {
        assert.equal(r[4], "app=sluice,n=1");
        assert.equal(r[2], `key-${Number(r[3]!.split("-")[1]) % 7}`);
      }
    }
    // The same key always lands on the same partition.
    const partitionOfKey = new Map<string, string>();
    for (const r of rows) {
      const p = partitionOfKey.get(r[2]!);
      if (p !== undefined) assert.equal(r[0], p);
      partitionOfKey.set(r[2]!, r[0]!);
    }
  });

  test("librdkafka without ApiVersions (broker.version.fallback 0.9.0 / 0.10.0: message formats v0 / v1) produces and consumes through the format conversions", async () => {
    for (const [fallback, topic, hasTimestamps] of [
      ["0.9.0", "kc-v0", false],
      ["0.10.0", "kc-v1", true],
    ] as const) {
      const legacy = ["-X", "api.version.request=false", "-X", `broker.version.fallback=${fallback}`];
      const lines = Array.from({ length: 20 }, (_, i) => `k${i}:v${i}`);
      const produced = await run(
        "kcat",
        ["-b", broker.bootstrap, ...legacy, "-P", "-t", topic, "-p", "0", "-K:", "-z", "gzip"],
        { input: `${lines.join("\n")}\n` },
      );
      assert.equal(produced.status, 0, produced.stderr);
      for (const args of [legacy, []]) {
        const consumed = await run("kcat", [
          "-b",
          broker.bootstrap,
          ...args,
          "-C",
          "-t",
          topic,
          "-p",
          "0",
          "-e",
          "-q",
          "-f",
          "%o|%k|%s|%T\\n",
        ]);
        assert.equal(consumed.status, 0, consumed.stderr);
        const rows = consumed.stdout
          .trim()
          .split("\n")
          .map((l) => l.split("|"));
        assert.deepEqual(
          rows.map((r) => r.slice(0, 3)),
          lines.map((l, i) => [String(i), ...l.split(":")]),
          `${fallback}, consumed ${args.length ? "the same way" : "with ApiVersions"}`,
        );
        // Format v0 has no timestamps (kcat prints 0 through the legacy path, -1 through v2).
        for (const r of rows) assert.equal(Number(r[3]) > 1_000_000_000_000, hasTimestamps, `timestamp ${r[3]}`);
      }
    }
  });

  test("lists brokers and topics with kcat -L", async () => {
    const md = await run("kcat", ["-b", broker.bootstrap, "-L", "-J"]);
    assert.equal(md.status, 0, md.stderr);
    const json = JSON.parse(md.stdout) as {
      brokers: { id: number; name: string }[];
      topics: { topic: string; partitions: unknown[] }[];
    };
    assert.deepEqual(
      json.brokers.map((b) => b.id),
      [1],
    );
    assert.equal(json.brokers[0]!.name, broker.bootstrap);
    const kc = json.topics.find((t) => t.topic === "kc");
    assert.equal(kc?.partitions.length, 3);
  });
});
