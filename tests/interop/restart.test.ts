// Restart: kill -9 the broker mid-produce and restart it on the same data. Every acknowledged
// record must be there (with fsync.before.ack this would hold across a power loss too; a process
// kill keeps the page cache, so it holds with default settings as well); the log must be readable
// and consistent, with offsets dense from 0 up to the high watermark.

import assert from "node:assert/strict";
import { test } from "node:test";
import { type BrokerProcess, hasConfluentKafka, PYTHON, run, startBrokerProcess } from "../helpers/broker-process.ts";

const skip = !hasConfluentKafka() && "python3-confluent-kafka is not installed";

const PRODUCER = `
import sys, time
from confluent_kafka import Producer
p = Producer({"bootstrap.servers": sys.argv[1], "acks": "all", "linger.ms": 2, "message.timeout.ms": 2000, "retries": 0})
def report(err, m):
    if err is None:
        print("ack %d %s" % (m.offset(), m.value().decode()), flush=True)
i = 0
end = time.time() + 2.5
while time.time() < end:
    p.produce("durable", value=b"record-%d" % i, partition=0, on_delivery=report)
    i += 1
    p.poll(0)
    if i % 50 == 0: time.sleep(0.005)
p.flush(5)
`;

const CONSUMER = `
import sys, json, time
from confluent_kafka import Consumer, TopicPartition
c = Consumer({"bootstrap.servers": sys.argv[1], "group.id": "unused", "enable.auto.commit": False})
lo, hi = c.get_watermark_offsets(TopicPartition("durable", 0), timeout=10)
c.assign([TopicPartition("durable", 0, 0)])
out = []
deadline = time.time() + 20
while (not out or out[-1][0] < hi - 1) and time.time() < deadline:
    m = c.poll(0.5)
    if m is None or m.error(): continue
    out.append([m.offset(), m.value().decode()])
c.close()
print(json.dumps({"low": lo, "high": hi, "records": out}))
`;

for (const mode of ["fsync.before.ack", "default"] as const) {
  test(`kill -9 mid-produce and restart (${mode})`, { skip, timeout: 120_000 }, async () => {
    const config = mode === "fsync.before.ack" ? { "sluice.fsync.before.ack": "true" } : {};
    let broker: BrokerProcess = await startBrokerProcess({ config });
    try {
      const producer = run(PYTHON, ["-c", PRODUCER, broker.bootstrap], { timeoutMs: 40_000 });
      await new Promise((r) => setTimeout(r, 1500));
      await broker.kill();
      const produced = await producer;
      const acked = produced.stdout
        .split("\n")
        .filter((l) => l.startsWith("ack "))
        .map((l) => l.split(" "));
      assert.ok(acked.length > 50, `the producer got acknowledgements before the kill (${acked.length})`);
      broker = await broker.restart();
      const consumed = await run(PYTHON, ["-c", CONSUMER, broker.bootstrap], { timeoutMs: 40_000 });
      assert.equal(consumed.status, 0, consumed.stderr);
      const out = JSON.parse(consumed.stdout.trim().split("\n").at(-1)!) as {
        low: number;
        high: number;
        records: [number, string][];
      };
      const records = out.records;
      assert.equal(out.low, 0);
      assert.equal(records.length, out.high, "every offset below the high watermark is readable");
      for (const [i, [offset]] of records.entries()) assert.equal(offset, i, "offsets are dense from 0");
      const seen = new Map(records.map(([o, v]) => [o, v]));
      // kill -9 loses the process, not the page cache: an acknowledged append was written (and,
      // with fsync.before.ack, fsynced) before its acknowledgement, so it survives in both modes.
      for (const [, offset, value] of acked)
        assert.equal(seen.get(Number(offset)), value, `acknowledged record at ${offset} survived`);
      // Values are produced in order, so the log is a prefix of what was sent.
      for (const [i, [, v]] of records.entries()) assert.equal(v, `record-${i}`);
    } finally {
      await broker.cleanup();
    }
  });
}
