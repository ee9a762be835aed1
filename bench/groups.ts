// Benchmark (not a test): group coordinator (issue 5), the broker in its own process.
//   ./node_modules/.bin/node bench/groups.ts          (BENCH_SMOKE=1: 5 members, short runs; BENCH_JSON=path)
// - time for a group of 50 kafkajs consumers (all in this process) to stabilise: from the first
//   join until every member's latest assignment holds one partition and together they cover all
//   50 (a plain value: no baseline does the same work);
// - OffsetCommit requests/s on one connection, 16 in flight (one partition per commit), as a ratio
//   to 100 B request/response frames with 16 in flight to an echo process (bench/lib/baselines.ts),
//   measured right before it; then the same against a second broker that fsyncs every append
//   before acknowledging it (sluice.fsync.before.ack=true), against the same baseline.

import { once } from "node:events";
import { connect } from "node:net";
import kafkajs from "kafkajs";
import { decodeOffsetCommitResponse, encodeOffsetCommitRequest, Reader } from "../packages/protocol/src/index.ts";
import { startBrokerProcess } from "../tests/helpers/broker-process.ts";
import { requestFrame } from "../tests/helpers/wire.ts";
import { frames } from "./lib/baselines.ts";
import { type BenchRow, machine, ratioRow, report, smoke } from "./lib/report.ts";

const MEMBERS = smoke ? 5 : 50;
const STABILISE_MS_MAX = smoke ? 15_000 : 120_000;
const COMMIT_SECONDS = smoke ? 0.3 : 3;
const { Kafka, logLevel } = kafkajs;
process.env.KAFKAJS_NO_PARTITIONER_WARNING = "1";

/**
 * OffsetCommit requests/s on one raw connection to `port`, 16 in flight, each committing one
 * partition of "fifty" for the group "bench-commits"; errors counted (a run with errors measures nothing).
 */
async function commitRate(port: number): Promise<{ rate: number; done: number; errors: number }> {
  const sock = connect(port, "127.0.0.1");
  await once(sock, "connect");
  sock.setNoDelay(true);
  let correlation = 0;
  const request = (): Buffer =>
    requestFrame(8, 8, correlation++, "bench", (w) =>
      encodeOffsetCommitRequest(
        w,
        {
          groupId: "bench-commits",
          generationIdOrMemberEpoch: -1,
          memberId: "",
          topics: [
            {
              name: "fifty",
              partitions: [
                { partitionIndex: correlation % MEMBERS, committedOffset: BigInt(correlation), committedMetadata: "" },
              ],
            },
          ],
        },
        8,
      ),
    );
  let done = 0;
  let errors = 0;
  let pending = Buffer.alloc(0);
  const end = Date.now() + COMMIT_SECONDS * 1000;
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    sock.on("data", (d: Buffer) => {
      pending = Buffer.concat([pending, d]);
      const out: Buffer[] = [];
      while (pending.length >= 4 && pending.length >= 4 + pending.readInt32BE(0)) {
        const n = pending.readInt32BE(0);
        const r = new Reader(pending.subarray(4, 4 + n));
        r.readInt32("correlationId");
        r.readTaggedFields("header", () => false);
        if (decodeOffsetCommitResponse(r, 8).topics[0]!.partitions[0]!.errorCode !== 0) errors++;
        pending = pending.subarray(4 + n);
        done++;
        if (Date.now() < end) out.push(request());
      }
      if (out.length) sock.write(Buffer.concat(out));
      if (Date.now() >= end && done === correlation) resolve();
    });
    sock.write(Buffer.concat(Array.from({ length: 16 }, request)));
  });
  const rate = done / ((performance.now() - t0) / 1000);
  sock.destroy();
  return { rate, done, errors };
}

const broker = await startBrokerProcess({ config: { "group.initial.rebalance.delay.ms": "0" } });
const rows: BenchRow[] = [];
const table: [string, string][] = [];
let failed = false;
try {
  const kafka = new Kafka({ brokers: [broker.bootstrap], logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: "fifty", numPartitions: MEMBERS }] });
  await admin.disconnect();

  const assignments = new Map<number, number[]>();
  const consumers = Array.from({ length: MEMBERS }, () =>
    kafka.consumer({ groupId: "bench-50", sessionTimeout: 30_000, rebalanceTimeout: 60_000, heartbeatInterval: 1000 }),
  );
  const start = performance.now();
  let stableAt = 0;
  const check = (): void => {
    const all = new Set([...assignments.values()].flat());
    const eachOne = [...assignments.values()].every((a) => a.length === 1);
    if (assignments.size === MEMBERS && eachOne && all.size === MEMBERS && stableAt === 0) stableAt = performance.now();
  };
  await Promise.all(
    consumers.map(async (c, i) => {
      c.on(c.events.GROUP_JOIN, (e) => {
        assignments.set(i, e.payload.memberAssignment.fifty ?? []);
        check();
      });
      await c.connect();
      await c.subscribe({ topic: "fifty" });
      await c.run({ eachMessage: async () => {} });
    }),
  );
  const deadline = Date.now() + STABILISE_MS_MAX;
  while (stableAt === 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    check();
  }
  const stabilise = `${MEMBERS} kafkajs members stabilise`;
  if (stableAt) {
    const seconds = (stableAt - start) / 1000;
    rows.push({ case: stabilise, value: seconds, unit: "s", better: "lower" });
    table.push([stabilise, `${seconds.toFixed(2)} s`]);
  } else {
    failed = true;
    table.push([stabilise, `did not stabilise in ${STABILISE_MS_MAX / 1000} s`]);
  }
  await Promise.all(consumers.map((c) => c.disconnect()));

  // OffsetCommit rate: raw pipelined requests on one connection, after its baseline.
  const frameRate = await frames(COMMIT_SECONDS);
  const frameBase = { case: "100 B request/response frames, 16 in flight", value: frameRate, unit: "frames/s" };
  const { rate, done, errors } = await commitRate(broker.port);
  const commits = "OffsetCommit requests/s (1 connection, 16 in flight, persisted to __consumer_offsets)";
  // A rate of error responses measures nothing: such a run fails rather than reporting it.
  if (errors > 0) failed = true;
  else rows.push({ ...ratioRow(commits, rate, "requests/s", frameBase, undefined, "higher"), note: `${done} commits` });
  table.push([commits, `${Math.round(rate).toLocaleString("en")} (${errors} errors)`]);
  table.push([`baseline: ${frameBase.case}`, `${Math.round(frameRate).toLocaleString("en")} frames/s`]);
  table.push(["OffsetCommit ÷ baseline", (rate / frameRate).toFixed(3)]);

  // The same against a broker that fsyncs every append before acknowledging it
  // (sluice.fsync.before.ack=true): each append then waits for the disk, which is where sharing
  // one append among the commits queued behind it counts most.
  const synced = await startBrokerProcess({
    config: { "group.initial.rebalance.delay.ms": "0", "sluice.fsync.before.ack": "true" },
  });
  try {
    const syncedAdmin = new Kafka({ brokers: [synced.bootstrap], logLevel: logLevel.NOTHING }).admin();
    await syncedAdmin.connect();
    await syncedAdmin.createTopics({ topics: [{ topic: "fifty", numPartitions: MEMBERS }] });
    await syncedAdmin.disconnect();
    const s = await commitRate(synced.port);
    const name = "OffsetCommit requests/s, fsync before each acknowledgement (sluice.fsync.before.ack=true)";
    if (s.errors > 0) failed = true;
    else
      rows.push({ ...ratioRow(name, s.rate, "requests/s", frameBase, undefined, "higher"), note: `${s.done} commits` });
    table.push([name, `${Math.round(s.rate).toLocaleString("en")} (${s.errors} errors)`]);
  } finally {
    await synced.stop();
    await synced.cleanup();
  }
} finally {
  // SIGTERM first (a clean exit, so `NODE_OPTIONS=--cpu-prof` writes the broker's profile), then remove its directory.
  await broker.stop();
  await broker.cleanup();
}
report("groups", rows);
const m = machine();
console.log(
  `group benchmark — ${m.cores} cores, ${m.memoryGiB} GiB, ${m.cpu}, Node ${m.node}${smoke ? " (smoke)" : ""}`,
);
console.log("| case | result |");
console.log("| --- | --- |");
for (const r of table) console.log(`| ${r.join(" | ")} |`);
if (failed) process.exitCode = 1;
