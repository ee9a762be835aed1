// Producer state across restarts: rebuilt from the snapshot written at a clean shutdown plus the
// log tail written after it, as after a crash (the data directory is copied while the broker runs,
// which is what a kill -9 leaves behind: everything written, nothing flushed or snapshotted). A
// retried batch is still a duplicate afterwards, a gap still an error, and an open transaction
// still holds the last stable offset back.

import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { ErrorCode } from "@sluice/protocol";
import { buildRecordBatch } from "@sluice/protocol/records/record-batch.ts";
import { copyCrashImage } from "../../../../tests/helpers/crash-image.ts";
import type { RunningBroker } from "../../src/index.ts";
import { Produce } from "../apis.ts";
import { InitProducerId } from "../group/group-apis.ts";
import { createTopic, fetchOne, testBroker, WireClient } from "../helpers.ts";
import { addPartitions, endTxn, initTxn } from "./txn-calls.ts";

const dirs: string[] = [];
const brokers: RunningBroker[] = [];
after(async () => {
  for (const b of brokers) await b.stop().catch(() => {});
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function batch(values: string[], producerId: bigint, baseSequence: number, transactional = false): Buffer {
  return buildRecordBatch({
    records: values.map((v) => ({ value: Buffer.from(v) })),
    producerId,
    producerEpoch: 0,
    baseSequence,
    transactional,
  });
}

async function send(c: WireClient, topic: string, records: Buffer, transactionalId: string | null = null) {
  const r = await c.call(Produce, 9, {
    transactionalId,
    acks: -1,
    timeoutMs: 5000,
    topicData: [{ name: topic, partitionData: [{ index: 0, records }] }],
  });
  return r.responses[0]!.partitionResponses[0]!;
}

/** A new idempotent producer's id (InitProducerId without a transactional id). */
async function idempotentProducerId(c: WireClient): Promise<bigint> {
  const r = await c.call(InitProducerId, 4, {
    transactionalId: null,
    transactionTimeoutMs: 60_000,
    producerId: -1n,
    producerEpoch: -1,
  });
  return r.producerId;
}

async function start(dir: string): Promise<{ b: RunningBroker; c: WireClient }> {
  const b = await testBroker({}, { logDir: dir });
  brokers.push(b);
  return { b, c: await WireClient.connect(b.port) };
}

test("after a crash, producer state comes from the last snapshot plus the log tail", { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "pstate-"));
  const crashed = mkdtempSync(join(tmpdir(), "pstate-crash-"));
  dirs.push(dir, crashed);
  let { b, c } = await start(dir);
  await createTopic(c, "idem", 1);
  await createTopic(c, "txn", 1);
  const pid = await idempotentProducerId(c);
  const a = await send(c, "idem", batch(["a0", "a1"], pid, 0));
  assert.equal(a.errorCode, ErrorCode.NONE);
  c.close();
  await b.stop(); // clean: a snapshot at the log end
  assert.ok(
    readdirSync(join(dir, "idem-0")).some((f) => f.endsWith(".snapshot")),
    "a producer state snapshot was written at shutdown",
  );

  ({ b, c } = await start(dir));
  const bRes = await send(c, "idem", batch(["b0"], pid, 2));
  assert.equal(bRes.errorCode, ErrorCode.NONE);
  const init = await initTxn(c, "open-at-crash", 600_000);
  assert.deepEqual(await addPartitions(c, "open-at-crash", init, "txn", [0]), [ErrorCode.NONE]);
  await send(c, "txn", batch(["plain"], -1n, -1));
  const t = await send(c, "txn", batch(["open"], init.producerId, 0, true), "open-at-crash");
  assert.equal(t.errorCode, ErrorCode.NONE);
  // The crash image: what is on disk now, with no shutdown snapshot for the tail.
  await copyCrashImage(dir, crashed);
  c.close();

  const restarted = await start(crashed);
  const rc = restarted.c;
  const dupA = await send(rc, "idem", batch(["a0", "a1"], pid, 0));
  assert.deepEqual(
    [dupA.errorCode, dupA.baseOffset],
    [ErrorCode.NONE, a.baseOffset],
    "a batch from the snapshot is a duplicate",
  );
  const dupB = await send(rc, "idem", batch(["b0"], pid, 2));
  assert.deepEqual(
    [dupB.errorCode, dupB.baseOffset],
    [ErrorCode.NONE, bRes.baseOffset],
    "a batch from the log tail is a duplicate",
  );
  assert.equal((await send(rc, "idem", batch(["gap"], pid, 9))).errorCode, ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER);
  assert.equal((await send(rc, "idem", batch(["c0"], pid, 3))).errorCode, ErrorCode.NONE);
  const log = (await fetchOne(rc, "idem", 0, 0n)).responses[0]!.partitions[0]!;
  assert.equal(log.highWatermark, 4n, "a0 a1 b0 c0: nothing duplicated");
  const txn = (await fetchOne(rc, "txn", 0, 0n, { isolationLevel: 1 })).responses[0]!.partitions[0]!;
  assert.equal(txn.highWatermark, 2n);
  assert.equal(txn.lastStableOffset, 1n, "the transaction open at the crash still holds the LSO");
});

test("producer state snapshots are taken as segments roll, and a crash recovers from them", {
  timeout: 60_000,
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), "pstate-roll-"));
  const crashed = mkdtempSync(join(tmpdir(), "pstate-roll-crash-"));
  dirs.push(dir, crashed);
  const { c } = await start(dir);
  await createTopic(c, "rolling", 1, { "segment.bytes": "2048" });
  const pid = await idempotentProducerId(c);
  const value = "x".repeat(600);
  const sent: { seq: number; baseOffset: bigint }[] = [];
  for (let seq = 0; seq < 20; seq++) {
    const r = await send(c, "rolling", batch([value], pid, seq));
    assert.equal(r.errorCode, ErrorCode.NONE);
    sent.push({ seq, baseOffset: r.baseOffset });
  }
  await new Promise((r) => setTimeout(r, 200)); // the snapshot files are written in the background
  // The crash image: no clean shutdown, so any snapshot in it was taken at a roll.
  await copyCrashImage(dir, crashed);
  c.close();
  const files = readdirSync(join(crashed, "rolling-0"));
  const snapshots = files.filter((f) => f.endsWith(".snapshot")).map((f) => BigInt(f.slice(0, 20)));
  assert.ok(files.filter((f) => f.endsWith(".log")).length >= 5, `segments: ${files.join(", ")}`);
  assert.ok(snapshots.length > 0 && snapshots.every((o) => o > 0n), `snapshots at ${snapshots.join(", ")}`);

  const restarted = await start(crashed);
  const rc = restarted.c;
  // The last batch is a duplicate (its sequence is in the state recovered from snapshot + tail)...
  const dup = await send(rc, "rolling", batch([value], pid, 19));
  assert.deepEqual([dup.errorCode, dup.baseOffset], [ErrorCode.NONE, sent[19]!.baseOffset]);
  // ...a gap is refused, and the next sequence goes on.
  assert.equal((await send(rc, "rolling", batch([value], pid, 25))).errorCode, ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER);
  const next = await send(rc, "rolling", batch([value], pid, 20));
  assert.deepEqual([next.errorCode, next.baseOffset], [ErrorCode.NONE, 20n]);
});

test("a transaction marker that is the first producer-state change in a new segment takes the snapshot", {
  timeout: 60_000,
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), "pstate-marker-"));
  const crashed = mkdtempSync(join(tmpdir(), "pstate-marker-crash-"));
  dirs.push(dir, crashed);
  const { c } = await start(dir);
  await createTopic(c, "marked", 1, { "segment.bytes": "2048" });
  const init = await initTxn(c, "marker-roll", 600_000);
  assert.deepEqual(await addPartitions(c, "marker-roll", init, "marked", [0]), [ErrorCode.NONE]);
  const value = "x".repeat(600);
  const t = await send(c, "marked", batch([value], init.producerId, 0, true), "marker-roll");
  assert.equal(t.errorCode, ErrorCode.NONE);
  // Plain batches (no producer state) until the log has rolled: the marker then opens the new segment's producer-state changes.
  let last = 0n;
  for (let i = 0; i < 4; i++) last = (await send(c, "marked", batch([value], -1n, -1))).baseOffset;
  const segments = () =>
    readdirSync(join(dir, "marked-0"))
      .filter((f) => f.endsWith(".log"))
      .map((f) => BigInt(f.slice(0, 20)));
  assert.ok(segments().length >= 2, "the log rolled");
  assert.ok(
    segments().every((base) => base <= last),
    "no segment starts after the plain batches",
  );
  assert.equal(await endTxn(c, "marker-roll", init, true), ErrorCode.NONE);
  const markerOffset = last + 1n;
  const snapshotNamed = `${String(markerOffset + 1n).padStart(20, "0")}.snapshot`;
  for (let i = 0; i < 100 && !readdirSync(join(dir, "marked-0")).includes(snapshotNamed); i++)
    await new Promise((r) => setTimeout(r, 20)); // written in the background
  assert.ok(
    readdirSync(join(dir, "marked-0")).includes(snapshotNamed),
    `a snapshot after the marker: ${readdirSync(join(dir, "marked-0")).join(", ")}`,
  );
  // A crash now recovers from that snapshot: the committed transaction holds nothing back.
  await copyCrashImage(dir, crashed);
  c.close();
  const restarted = await start(crashed);
  const rc = (await fetchOne(restarted.c, "marked", 0, 0n, { isolationLevel: 1 })).responses[0]!.partitions[0]!;
  assert.equal(rc.highWatermark, markerOffset + 1n);
  assert.equal(rc.lastStableOffset, rc.highWatermark, "no transaction is open after recovery");
  assert.deepEqual(rc.abortedTransactions ?? [], []);
});
