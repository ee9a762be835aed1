// The Broker as a whole: startBroker, the metadata stores (local file, memory), cluster ids, the
// Clock seam, and the coordinators' way to append to a partition.

import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { ErrorCode } from "@sluice/protocol";
import pino from "pino";
import { Broker, buildConfig, startBroker } from "../src/index.ts";
import { MemoryMetadataStore, type MetadataSnapshot } from "../src/metadata-store.ts";
import { defaultPlugins } from "../src/plugins.ts";
import { Metadata } from "./apis.ts";
import { batch, createTopic, fetchOne, produce, WireClient } from "./helpers.ts";

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), "sluice-broker-test-"));
}

function broker(
  dir: string,
  extra: Record<string, string> = {},
  opts: Partial<ConstructorParameters<typeof Broker>[0]> = {},
) {
  return new Broker({
    config: buildConfig(new Map(Object.entries({ "log.dirs": dir, listeners: "PLAINTEXT://127.0.0.1:0", ...extra }))),
    logger: pino({ level: "silent" }),
    plugins: defaultPlugins(),
    ...opts,
  });
}

describe("Broker", () => {
  test("startBroker: a free port, a temporary data dir removed on stop", async () => {
    const b = await startBroker();
    assert.ok(b.port > 0);
    assert.equal(b.bootstrap, `127.0.0.1:${b.port}`);
    assert.ok(existsSync(b.logDir));
    const c = await WireClient.connect(b.port);
    const md = await c.call(Metadata, 9, { topics: null });
    assert.equal(md.brokers[0]!.port, b.port);
    c.close();
    await b.stop();
    await b.stop();
    assert.ok(!existsSync(b.logDir), "the temporary dir is removed");
  });

  test("startBroker keeps a given data dir", async () => {
    const dir = tempDir();
    try {
      const b = await startBroker({ logDir: dir });
      await b.stop();
      assert.ok(existsSync(join(dir, "sluice-metadata.json")));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("the local metadata file holds the cluster id, this broker's registration and each partition's placement", async () => {
    const dir = tempDir();
    try {
      const b = broker(dir, { "node.id": "4", "advertised.listeners": "PLAINTEXT://sluice.test:9999" });
      await b.start();
      await b.context!.topics.create("placed", 2, { "retention.ms": "1000" });
      await b.stop();
      const snap = JSON.parse(readFileSync(join(dir, "sluice-metadata.json"), "utf8")) as MetadataSnapshot;
      assert.ok(snap.clusterId.length > 0);
      assert.deepEqual(snap.brokers, [{ nodeId: 4, host: "sluice.test", port: 9999, rack: null }]);
      const t = snap.topics.find((x) => x.name === "placed")!;
      assert.deepEqual(t.assignments, [[4], [4]]);
      assert.deepEqual(t.states, [
        { leader: 4, leaderEpoch: 0, isr: [4] },
        { leader: 4, leaderEpoch: 0, isr: [4] },
      ]);
      assert.deepEqual(t.configs, { "retention.ms": "1000" });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a metadata file without placements (older format) loads, and is filled in", async () => {
    const dir = tempDir();
    try {
      writeFileSync(
        join(dir, "sluice-metadata.json"),
        JSON.stringify({
          clusterId: "old-cluster",
          topics: [{ name: "legacy", id: "AAAAAAAAAAAAAAAAAAAAAQ", partitions: 1, configs: {}, internal: false }],
        }),
      );
      const b = broker(dir);
      await b.start();
      assert.equal(b.context!.topics.clusterId, "old-cluster");
      assert.deepEqual(b.context!.topics.get("legacy")!.record.assignments, [[1]]);
      await b.stop();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("cluster.id names a new cluster, and must match the data dir's afterwards", async () => {
    const dir = tempDir();
    try {
      const b = broker(dir, { "cluster.id": "my-cluster" });
      await b.start();
      assert.equal(b.context!.topics.clusterId, "my-cluster");
      await b.stop();
      const other = broker(dir, { "cluster.id": "another" });
      await assert.rejects(other.start(), /cluster.id another does not match my-cluster/);
      await other.stop();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("an in-memory metadata store serves a broker (nothing written to the metadata file)", async () => {
    const dir = tempDir();
    const store = new MemoryMetadataStore();
    try {
      const b = broker(dir, {}, { store });
      await b.start();
      await b.context!.topics.create("mem", 1, {});
      await b.stop();
      assert.ok(!existsSync(join(dir, "sluice-metadata.json")));
      assert.deepEqual(
        (await store.load()).topics.map((t) => t.name),
        ["mem"],
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("time comes from the Clock seam (LogAppendTime stamps)", async () => {
    const dir = tempDir();
    try {
      const b = broker(dir, {}, { clock: { nowMs: () => 1_234_567 } });
      await b.start();
      const c = await WireClient.connect(b.port);
      await createTopic(c, "clocked", 1, { "message.timestamp.type": "LogAppendTime" });
      const r = await produce(c, "clocked", 0, batch(["tick"]));
      assert.equal(r.logAppendTimeMs, 1_234_567n);
      c.close();
      await b.stop();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("coordinators append to a partition as leader and consumers see it at once", async () => {
    const b = await startBroker();
    try {
      const topics = b.broker.context!.topics;
      const t = await topics.create("__internal_demo", 1, { "cleanup.policy": "compact" }, true);
      const c = await WireClient.connect(b.port);
      const poll = fetchOne(c, "__internal_demo", 0, 0n, { maxWaitMs: 5000 });
      const info = await topics.appendAsLeader(t.partitions[0]!, batch(["v"], { keys: ["k"] }));
      assert.deepEqual([info.baseOffset, info.lastOffset], [0n, 0n]);
      const started = Date.now();
      const p = (await poll).responses[0]!.partitions[0]!;
      assert.equal(p.errorCode, ErrorCode.NONE);
      assert.equal(p.highWatermark, 1n);
      assert.ok(Date.now() - started < 2000);
      const read = await t.partitions[0]!.log.read(0n, 1 << 20);
      assert.ok(read.records.length > 0);
      c.close();
    } finally {
      await b.stop();
    }
  });
});
