// The consumer side of bench/latency.ts's fixed-rate cases, in its own process (spawned with an
// IPC channel), so that the load generator's single thread does not also run the consumer: at
// tens of thousands of records/s one thread cannot produce, consume and keep the schedule, and
// its lag was charged to the broker. Argv: bootstrap, topic, partitions, output file.
//
// Records carry their due time and send time as epoch milliseconds (performance.timeOrigin +
// performance.now(), the same clock in both processes on one machine) in their first 16 bytes.
// Protocol with the parent: after the first record arrives (the parent's warm-up record) it sends
// "ready"; the parent then sends { expect: n } once it has sent everything; this process polls
// until n records have arrived (or 15 s after that message), writes (due, delivered, sent) triples
// of the records with a due time > 0 to the output file as float64s, sends { received } and exits.

import { writeFileSync } from "node:fs";
import { Consumer } from "../../packages/client/src/index.ts";

const [bootstrap, topic, partitionsArg, outFile] = process.argv.slice(2);
if (!bootstrap || !topic || !partitionsArg || !outFile) throw new Error("usage: bootstrap topic partitions outFile");
const send = (m: unknown): void => {
  process.send?.(m);
};

const c = new Consumer({
  bootstrapServers: bootstrap,
  isolationLevel: "read_uncommitted",
  maxPollRecords: 10_000,
  fetchMaxWaitMs: 500,
});
c.assign(Array.from({ length: Number(partitionsArg) }, (_, partition) => ({ topic, partition, offset: 0n })));

let expect = Number.POSITIVE_INFINITY;
let deadline = Number.POSITIVE_INFINITY;
process.on("message", (m: { expect?: number }) => {
  if (typeof m.expect === "number") {
    expect = m.expect;
    deadline = performance.now() + 15_000;
  }
});

let triples = new Float64Array(3 * 65_536);
let n = 0;
let received = 0;
let ready = false;
const epochNow = (): number => performance.timeOrigin + performance.now();
while (received < expect && performance.now() < deadline) {
  const records = await c.poll(100);
  const now = epochNow();
  for (const r of records) {
    received++;
    const v = r.value as Uint8Array;
    const view = new DataView(v.buffer, v.byteOffset, v.byteLength);
    const due = view.getFloat64(0, true);
    if (due <= 0) continue; // the warm-up record
    if (3 * (n + 1) > triples.length) {
      const bigger = new Float64Array(triples.length * 2);
      bigger.set(triples);
      triples = bigger;
    }
    triples[3 * n] = due;
    triples[3 * n + 1] = now;
    triples[3 * n + 2] = view.getFloat64(8, true);
    n++;
  }
  if (!ready && received > 0) {
    ready = true;
    send("ready");
  }
}
writeFileSync(outFile, triples.subarray(0, 3 * n));
await c.close();
send({ received });
process.disconnect?.();
