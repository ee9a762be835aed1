// Benchmark (not a test): group coordinator.
//   node bench/groups.ts
// - time for a group of 50 kafkajs consumers (one process) to stabilise: from the first join until
//   every member's latest assignment holds one partition and together they cover all 50;
// - OffsetCommit requests/s on one connection, 16 in flight (one partition per commit).

import { once } from "node:events";
import { connect } from "node:net";
import { cpus, totalmem } from "node:os";
import kafkajs from "kafkajs";
import { startBroker } from "../packages/broker/src/index.ts";
import {
  decodeOffsetCommitResponse,
  encodeOffsetCommitRequest,
  Reader,
  Writer,
  writeRequestHeader,
} from "../packages/protocol/src/index.ts";

const MEMBERS = 50;
const { Kafka, logLevel } = kafkajs;
process.env.KAFKAJS_NO_PARTITIONER_WARNING = "1";

const broker = await startBroker({ config: { "group.initial.rebalance.delay.ms": "0" } });
const rows: [string, string][] = [];
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
  const deadline = Date.now() + 120_000;
  while (stableAt === 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    check();
  }
  rows.push([
    `${MEMBERS} kafkajs members stabilise`,
    stableAt ? `${((stableAt - start) / 1000).toFixed(2)} s` : "did not stabilise in 120 s",
  ]);
  await Promise.all(consumers.map((c) => c.disconnect()));

  // OffsetCommit rate: raw pipelined requests on one connection.
  const sock = connect(broker.port, "127.0.0.1");
  await once(sock, "connect");
  sock.setNoDelay(true);
  let correlation = 0;
  const request = (): Buffer => {
    const w = new Writer();
    writeRequestHeader(w, { requestApiKey: 8, requestApiVersion: 8, correlationId: correlation++, clientId: "bench" });
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
    );
    const body = w.toBuffer();
    const size = Buffer.alloc(4);
    size.writeInt32BE(body.length);
    return Buffer.concat([size, body]);
  };
  let done = 0;
  let errors = 0;
  let pending = Buffer.alloc(0);
  const end = Date.now() + 3000;
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
  rows.push([
    "OffsetCommit requests/s (1 connection, 16 in flight, persisted to __consumer_offsets)",
    `${Math.round(rate).toLocaleString("en")} (${errors} errors)`,
  ]);
} finally {
  await broker.stop();
}
console.log(
  `group benchmark — ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`,
);
console.log("| case | result |");
console.log("| --- | --- |");
for (const r of rows) console.log(`| ${r.join(" | ")} |`);
