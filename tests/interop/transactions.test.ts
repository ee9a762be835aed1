// Idempotence and transactions with real clients against a real broker process: kafkajs
// transactions (commit, abort, commit; read_committed vs read_uncommitted; sendOffsets committed
// only on commit), a zombie producer fenced, confluent-kafka-python's transactional
// consume-transform-produce loop exactly once, and a broker killed mid-transaction.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import kafkajs from "kafkajs";
import { type BrokerProcess, hasConfluentKafka, PYTHON, run, startBrokerProcess } from "../helpers/broker-process.ts";

const { Kafka, logLevel } = kafkajs;
process.env.KAFKAJS_NO_PARTITIONER_WARNING = "1";

async function readAll(
  kafka: InstanceType<typeof Kafka>,
  topic: string,
  group: string,
  readUncommitted: boolean,
  waitMs = 2500,
): Promise<string[]> {
  const c = kafka.consumer({ groupId: group, readUncommitted });
  await c.connect();
  await c.subscribe({ topic, fromBeginning: true });
  const got: string[] = [];
  await c.run({ eachMessage: async ({ message }) => void got.push(message.value!.toString()) });
  await new Promise((r) => setTimeout(r, waitMs));
  await c.disconnect();
  return got;
}

describe("transactions", () => {
  let broker: BrokerProcess;
  let kafka: InstanceType<typeof Kafka>;
  before(async () => {
    broker = await startBrokerProcess();
    kafka = new Kafka({ clientId: "txn", brokers: [broker.bootstrap], logLevel: logLevel.NOTHING });
  });
  after(async () => {
    await broker.cleanup();
  });

  test("kafkajs: commit, abort, commit — read_committed sees only committed records, in order, no control records", async () => {
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: "txn-data", numPartitions: 1 }] });
    const producer = kafka.producer({ transactionalId: "js-txn", maxInFlightRequests: 1, idempotent: true });
    await producer.connect();
    for (const [i, action] of [
      [1, "commit"],
      [2, "abort"],
      [3, "commit"],
    ] as const) {
      const t = await producer.transaction();
      await t.send({ topic: "txn-data", messages: [0, 1, 2].map((j) => ({ value: `${action}-${i}-${j}` })) });
      await t[action]();
    }
    const committed = await readAll(kafka, "txn-data", "rc", false);
    assert.deepEqual(committed, ["commit-1-0", "commit-1-1", "commit-1-2", "commit-3-0", "commit-3-1", "commit-3-2"]);
    const uncommitted = await readAll(kafka, "txn-data", "ru", true);
    assert.deepEqual(uncommitted, [
      "commit-1-0",
      "commit-1-1",
      "commit-1-2",
      "abort-2-0",
      "abort-2-1",
      "abort-2-2",
      "commit-3-0",
      "commit-3-1",
      "commit-3-2",
    ]);
    // Control records take offsets: 3 + marker, 3 + marker, 3 + marker.
    const offsets = await admin.fetchTopicOffsets("txn-data");
    assert.equal(offsets[0]!.high, "12");
    await producer.disconnect();
    await admin.disconnect();
  });

  test("kafkajs: sendOffsets commits the group offset only when the transaction commits", async () => {
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: "txn-src", numPartitions: 1 }] });
    const producer = kafka.producer({ transactionalId: "js-offsets", maxInFlightRequests: 1, idempotent: true });
    await producer.connect();
    const fetch = async (): Promise<string | undefined> =>
      (await admin.fetchOffsets({ groupId: "txn-group", topics: ["txn-src"] }))[0]!.partitions.find(
        (p) => p.partition === 0,
      )?.offset;
    const aborted = await producer.transaction();
    await aborted.send({ topic: "txn-src", messages: [{ value: "x" }] });
    await aborted.sendOffsets({
      consumerGroupId: "txn-group",
      topics: [{ topic: "txn-src", partitions: [{ partition: 0, offset: "3" }] }],
    });
    await aborted.abort();
    assert.equal(await fetch(), "-1", "an aborted transaction's offsets are dropped");
    const t = await producer.transaction();
    await t.send({ topic: "txn-src", messages: [{ value: "y" }] });
    await t.sendOffsets({
      consumerGroupId: "txn-group",
      topics: [{ topic: "txn-src", partitions: [{ partition: 0, offset: "7" }] }],
    });
    assert.equal(await fetch(), "-1", "not visible before the commit");
    await t.commit();
    assert.equal(await fetch(), "7");
    await producer.disconnect();
    await admin.disconnect();
  });

  test("a zombie producer (same transactional id, older epoch) is fenced", async () => {
    const first = kafka.producer({ transactionalId: "zombie", maxInFlightRequests: 1, idempotent: true });
    await first.connect();
    const t1 = await first.transaction();
    await t1.send({ topic: "txn-data", messages: [{ value: "from-zombie" }] });
    const second = kafka.producer({ transactionalId: "zombie", maxInFlightRequests: 1, idempotent: true });
    await second.connect();
    // kafkajs sends InitProducerId when the first transaction starts: that bumps the epoch and
    // aborts the zombie's open transaction.
    const t2 = await second.transaction();
    await assert.rejects(t1.commit(), (e: Error & { type?: string }) =>
      ["PRODUCER_FENCED", "INVALID_PRODUCER_EPOCH", "INVALID_TXN_STATE"].includes(e.type ?? ""),
    );
    await t2.send({ topic: "txn-data", messages: [{ value: "from-new" }] });
    await t2.commit();
    const seen = await readAll(kafka, "txn-data", "zombie-check", false);
    assert.ok(seen.includes("from-new"));
    assert.ok(!seen.includes("from-zombie"), "the zombie's records were aborted");
    await first.disconnect().catch(() => {});
    await second.disconnect();
  });

  test("confluent-kafka-python: a transactional consume-transform-produce loop is exactly once", {
    skip: !hasConfluentKafka() && "python3-confluent-kafka is not installed",
    timeout: 90_000,
  }, async () => {
    const script = `
import sys, json, time
from confluent_kafka import Producer, Consumer, TopicPartition
bs = sys.argv[1]
p = Producer({"bootstrap.servers": bs})
for i in range(100):
    p.produce("eos-in", value=b"%d" % i, partition=0)
p.flush(10)
c = Consumer({"bootstrap.servers": bs, "group.id": "eos", "enable.auto.commit": False, "auto.offset.reset": "earliest", "isolation.level": "read_committed"})
c.subscribe(["eos-in"])
tp = Producer({"bootstrap.servers": bs, "transactional.id": "eos-loop", "enable.idempotence": True})
tp.init_transactions(15)
done = 0
deadline = time.time() + 40
while done < 100 and time.time() < deadline:
    msgs = c.consume(20, 1.0)
    msgs = [m for m in msgs if not m.error()]
    if not msgs: continue
    tp.begin_transaction()
    for m in msgs:
        tp.produce("eos-out", value=b"x" + m.value(), partition=0)
    abort = done == 40  # abort one batch: it must be reprocessed, not duplicated
    tp.send_offsets_to_transaction(c.position(c.assignment()), c.consumer_group_metadata(), 10)
    if abort:
        tp.abort_transaction(10)
        for part in c.assignment():
            committed = c.committed([part], 10)[0]
            c.seek(TopicPartition(part.topic, part.partition, committed.offset if committed.offset >= 0 else 0))
        done += 0.5
        continue
    tp.commit_transaction(10)
    done = int(done) + len(msgs)
c.close()
r = Consumer({"bootstrap.servers": bs, "group.id": "eos-check", "auto.offset.reset": "earliest", "isolation.level": "read_committed"})
r.assign([TopicPartition("eos-out", 0, 0)])
out = []
idle = 0
while idle < 3:
    m = r.poll(1)
    if m is None: idle += 1; continue
    if m.error(): continue
    out.append(m.value().decode())
r.close()
print(json.dumps(out))
`;
    const r = await run(PYTHON, ["-c", script, broker.bootstrap], { timeoutMs: 80_000 });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim().split("\n").at(-1)!) as string[];
    assert.deepEqual(
      out,
      Array.from({ length: 100 }, (_, i) => `x${i}`),
      "each input produced exactly once, in order",
    );
  });

  test("broker killed mid-transaction: after restart the transaction is aborted and read_committed never sees it", {
    timeout: 60_000,
  }, async () => {
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: "txn-crash", numPartitions: 1 }] });
    await admin.disconnect();
    const producer = kafka.producer({
      transactionalId: "crashy",
      maxInFlightRequests: 1,
      idempotent: true,
      transactionTimeout: 3000,
    });
    await producer.connect();
    const ok = await producer.transaction();
    await ok.send({ topic: "txn-crash", messages: [{ value: "committed-before-crash" }] });
    await ok.commit();
    const open = await producer.transaction();
    await open.send({ topic: "txn-crash", messages: [{ value: "open-at-crash" }] });
    await broker.kill();
    await producer.disconnect().catch(() => {});
    broker = await broker.restart();
    kafka = new Kafka({ clientId: "txn", brokers: [broker.bootstrap], logLevel: logLevel.NOTHING });
    // The open transaction times out (3 s) and is aborted by the coordinator.
    await new Promise((r) => setTimeout(r, 5000));
    const seen = await readAll(kafka, "txn-crash", "crash-check", false);
    assert.deepEqual(seen, ["committed-before-crash"]);
    const all = await readAll(kafka, "txn-crash", "crash-check-ru", true);
    assert.deepEqual(all, ["committed-before-crash", "open-at-crash"]);
  });
});
