// The embeddable broker: startBroker() on a free port, ready when it resolves, several side by
// side, stop() cleans up. Start times are measured and printed, not asserted (beyond a sanity
// bound far above any real figure).

import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { ErrorCode } from "@sluice/protocol";
import { startBroker } from "../src/index.ts";
import { ApiVersions } from "./apis.ts";
import { batch, createTopic, fetchOne, produce, WireClient } from "./helpers.ts";

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

test("startBroker is ready when it resolves: start and first answer timed", async () => {
  const startMs: number[] = [];
  const readyMs: number[] = [];
  for (let i = 0; i < 10; i++) {
    const t0 = performance.now();
    const b = await startBroker();
    const t1 = performance.now();
    const c = await WireClient.connect(b.port);
    const res = await c.call(ApiVersions, 3, { clientSoftwareName: "t", clientSoftwareVersion: "1" });
    const t2 = performance.now();
    c.close();
    assert.equal(res.errorCode, ErrorCode.NONE);
    startMs.push(t1 - t0);
    readyMs.push(t2 - t0);
    await b.stop();
  }
  console.log(
    `# startBroker: first ${startMs[0]!.toFixed(1)} ms, median ${median(startMs).toFixed(1)} ms, max ${Math.max(...startMs).toFixed(1)} ms; ` +
      `start + first ApiVersions answer: median ${median(readyMs).toFixed(1)} ms (10 runs)`,
  );
  assert.ok(Math.max(...startMs) < 10_000, "sanity bound only");
});

test("several brokers side by side, each with its own port, data and topics", async () => {
  const brokers = await Promise.all([startBroker(), startBroker(), startBroker()]);
  try {
    assert.equal(new Set(brokers.map((b) => b.port)).size, 3);
    assert.equal(new Set(brokers.map((b) => b.logDir)).size, 3);
    for (const [i, b] of brokers.entries()) {
      assert.equal(b.bootstrap, `127.0.0.1:${b.port}`);
      const c = await WireClient.connect(b.port);
      await createTopic(c, `only-on-${i}`, 1);
      const p = await produce(c, `only-on-${i}`, 0, batch([`from ${i}`]));
      assert.equal(p.baseOffset, 0n);
      c.close();
    }
    for (const [i, b] of brokers.entries()) {
      assert.deepEqual(
        b.broker.context!.topics.list().map((t) => t.record.name),
        [`only-on-${i}`],
      );
    }
  } finally {
    await Promise.all(brokers.map((b) => b.stop()));
  }
  for (const b of brokers) assert.equal(existsSync(b.logDir), false, "the temporary data dir is removed");
});

test("with a logDir given, data survives a restart and the dir is kept", async () => {
  const dir = mkdtempSync(join(tmpdir(), "sluice-embedded-"));
  try {
    const first = await startBroker({ logDir: dir });
    let c = await WireClient.connect(first.port);
    await createTopic(c, "kept", 1);
    await produce(c, "kept", 0, batch(["a", "b"]));
    c.close();
    await first.stop();
    assert.ok(existsSync(dir));
    const second = await startBroker({ logDir: dir });
    c = await WireClient.connect(second.port);
    const res = await fetchOne(c, "kept", 0, 0n);
    c.close();
    await second.stop();
    assert.equal(res.responses[0]!.partitions[0]!.highWatermark, 2n);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a port already in use fails the start with the listen error", async () => {
  const a = await startBroker();
  try {
    await assert.rejects(startBroker({ port: a.port }), /EADDRINUSE/);
  } finally {
    await a.stop();
  }
});
