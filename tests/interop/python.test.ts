// confluent-kafka-python (librdkafka 2.0.2, Debian's python3-confluent-kafka) against a real
// broker process: AdminClient create/describe topics and configs, produce with acks=all and every
// codec, consume back byte-exact at the reported offsets, offsets_for_times and seek.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { type BrokerProcess, hasConfluentKafka, PYTHON, run, startBrokerProcess } from "../helpers/broker-process.ts";

const skip = !hasConfluentKafka() && "python3-confluent-kafka is not installed (CI installs it with apt-get)";

async function py(script: string, bootstrap: string): Promise<unknown> {
  const r = await run(PYTHON, ["-c", script, bootstrap], { timeoutMs: 60_000 });
  assert.equal(r.status, 0, `python failed:\n${r.stderr}\n${r.stdout}`);
  const last = r.stdout.trim().split("\n").at(-1)!;
  return JSON.parse(last);
}

describe("confluent-kafka-python", { skip }, () => {
  let broker: BrokerProcess;
  before(async () => {
    broker = await startBrokerProcess();
  });
  after(async () => {
    await broker.cleanup();
  });

  test("AdminClient creates and describes topics and configs", async () => {
    const out = (await py(
      `
import sys, json
from confluent_kafka.admin import AdminClient, NewTopic, ConfigResource
a = AdminClient({"bootstrap.servers": sys.argv[1]})
for t, f in a.create_topics([NewTopic("py-admin", num_partitions=4, replication_factor=1, config={"retention.ms": "123456", "cleanup.policy": "compact"})]).items():
    f.result()
dup = a.create_topics([NewTopic("py-admin", num_partitions=1, replication_factor=1)])["py-admin"]
try:
    dup.result(); dup_err = None
except Exception as e:
    dup_err = e.args[0].name()
bad_rf = a.create_topics([NewTopic("py-rf", num_partitions=1, replication_factor=3)])["py-rf"]
try:
    bad_rf.result(); rf_err = None
except Exception as e:
    rf_err = e.args[0].name()
md = a.list_topics(timeout=10)
res = list(a.describe_configs([ConfigResource("topic", "py-admin")]).values())[0].result()
print(json.dumps({
  "partitions": len(md.topics["py-admin"].partitions),
  "retention": [res["retention.ms"].value, res["retention.ms"].source],
  "policy": res["cleanup.policy"].value,
  "segment": [res["segment.bytes"].value, res["segment.bytes"].is_default, res["segment.bytes"].source],
  "dup": dup_err, "rf": rf_err,
}))
`,
      broker.bootstrap,
    )) as Record<string, unknown>;
    assert.deepEqual(out, {
      partitions: 4,
      retention: ["123456", 1],
      policy: "compact",
      segment: ["1073741824", true, 5],
      dup: "TOPIC_ALREADY_EXISTS",
      rf: "INVALID_REPLICATION_FACTOR",
    });
  });

  test("produces with acks=all and every codec; consumes byte-exact at the reported offsets", async () => {
    const out = (await py(
      `
import sys, json, os
from confluent_kafka import Producer, Consumer, TopicPartition
bs = sys.argv[1]
sent = []
for codec in ["none", "gzip", "snappy", "lz4", "zstd"]:
    p = Producer({"bootstrap.servers": bs, "acks": "all", "compression.type": codec, "linger.ms": 20})
    for i in range(50):
        value = (codec * 20 + str(i)).encode() + bytes([i, 0, 255])
        p.produce("py-data", key=("%s-%d" % (codec, i)).encode(), value=value, partition=0,
                  headers=[("codec", codec.encode())],
                  on_delivery=lambda err, m, v=value: sent.append([m.offset(), m.key().hex(), v.hex(), str(err)]))
    assert p.flush(20) == 0
c = Consumer({"bootstrap.servers": bs, "group.id": "unused", "enable.auto.commit": False})
c.assign([TopicPartition("py-data", 0, 0)])
got = []
while len(got) < len(sent):
    m = c.poll(10)
    if m is None: break
    if m.error(): continue
    got.append([m.offset(), m.key().hex(), m.value().hex(), m.headers()[0][1].decode()])
c.close()
print(json.dumps({"sent": sent, "got": got}))
`,
      broker.bootstrap,
    )) as { sent: [number, string, string, string][]; got: [number, string, string, string][] };
    assert.equal(out.sent.length, 250);
    assert.ok(
      out.sent.every((s) => s[3] === "None"),
      "every delivery succeeded",
    );
    const byOffset = new Map(out.got.map((g) => [g[0], g]));
    for (const [offset, key, value] of out.sent) {
      const g = byOffset.get(offset);
      assert.ok(g, `offset ${offset} was consumed`);
      assert.equal(g[1], key);
      assert.equal(g[2], value, "value is byte-exact");
    }
    assert.deepEqual(
      out.got.map((g) => g[0]),
      Array.from({ length: 250 }, (_, i) => i),
    );
  });

  test("offsets_for_times and seek", async () => {
    const out = (await py(
      `
import sys, json
from confluent_kafka import Producer, Consumer, TopicPartition
bs = sys.argv[1]
p = Producer({"bootstrap.servers": bs})
for i, ts in enumerate([1000, 2000, 3000, 4000]):
    p.produce("py-time", value=b"t%d" % i, timestamp=1700000000000 + ts, partition=0)
p.flush(10)
c = Consumer({"bootstrap.servers": bs, "group.id": "unused", "enable.auto.commit": False})
q = c.offsets_for_times([TopicPartition("py-time", 0, 1700000002500)], timeout=10) + c.offsets_for_times([TopicPartition("py-time", 0, 1700000009000)], timeout=10)
c.assign([TopicPartition("py-time", 0, 0)])
first = c.poll(10)
c.seek(TopicPartition("py-time", 0, 2))
after = c.poll(10)
lo, hi = c.get_watermark_offsets(TopicPartition("py-time", 0), timeout=10)
c.close()
print(json.dumps({"times": [q[0].offset, q[1].offset], "first": first.value().decode(), "afterSeek": [after.offset(), after.value().decode()], "watermarks": [lo, hi]}))
`,
      broker.bootstrap,
    )) as Record<string, unknown>;
    assert.deepEqual(out, { times: [2, -1], first: "t0", afterSeek: [2, "t2"], watermarks: [0, 4] });
  });
});
