// kafka-python (2.0.2, Debian's python3-kafka: a pure-Python client with its own protocol code,
// independent of librdkafka) against a real broker process. It probes the broker with ApiVersions
// and settles on the Kafka 2.4 feature set (asserted), and then sends older, non-flexible versions
// than the other clients do: Produce v7, Fetch v4 (no fetch sessions), ListOffsets v1,
// Metadata v1, JoinGroup v2, SyncGroup and Heartbeat v1, OffsetCommit v2, OffsetFetch v1, and the
// admin client's CreateTopics v3, DescribeConfigs, CreatePartitions, DeleteTopics, ListGroups and
// DescribeGroups.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { after, before, describe, test } from "node:test";
import { type BrokerProcess, PYTHON, run, startBrokerProcess } from "../helpers/broker-process.ts";

const hasKafkaPython = spawnSync(PYTHON, ["-c", "import kafka"], { stdio: "ignore" }).status === 0;
const skip = !hasKafkaPython && "python3-kafka is not installed (CI installs it with apt-get)";

async function py(script: string, bootstrap: string): Promise<unknown> {
  const r = await run(PYTHON, ["-c", script, bootstrap], { timeoutMs: 90_000 });
  assert.equal(r.status, 0, `python failed:\n${r.stderr}\n${r.stdout}`);
  const last = r.stdout.trim().split("\n").at(-1)!;
  return JSON.parse(last);
}

describe("kafka-python", { skip }, () => {
  let broker: BrokerProcess;
  before(async () => {
    broker = await startBrokerProcess();
  });
  after(async () => {
    await broker.cleanup();
  });

  test("KafkaAdminClient creates, describes, grows and deletes topics", async () => {
    const out = (await py(
      `
import sys, json, time
from kafka import KafkaAdminClient, KafkaConsumer
from kafka.admin import NewTopic, NewPartitions, ConfigResource, ConfigResourceType
from kafka.errors import TopicAlreadyExistsError
b = sys.argv[1]
a = KafkaAdminClient(bootstrap_servers=b)
a.create_topics([NewTopic("kp-admin", num_partitions=3, replication_factor=1, topic_configs={"retention.ms": "123456"})])
try:
    a.create_topics([NewTopic("kp-admin", num_partitions=1, replication_factor=1)]); dup = None
except TopicAlreadyExistsError as e:
    dup = type(e).__name__
res = a.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "kp-admin")])[0].resources[0]
configs = {c[0]: c[1] for c in res[4]}
a.create_partitions({"kp-admin": NewPartitions(total_count=5)})
c = KafkaConsumer(bootstrap_servers=b)
grown = len(c.partitions_for_topic("kp-admin"))
c.close()
listed = "kp-admin" in a.list_topics()
a.delete_topics(["kp-admin"])
gone = False
for _ in range(50):
    if "kp-admin" not in a.list_topics():
        gone = True
        break
    time.sleep(0.1)
print(json.dumps({"version": list(a._client.check_version()), "dup": dup, "retention": configs.get("retention.ms"),
                  "segment": configs.get("segment.bytes"), "grown": grown, "listed": listed, "gone": gone}))
`,
      broker.bootstrap,
    )) as Record<string, unknown>;
    assert.deepEqual(out, {
      version: [2, 4, 0],
      dup: "TopicAlreadyExistsError",
      retention: "123456",
      segment: "1073741824",
      grown: 5,
      listed: true,
      gone: true,
    });
  });

  test("KafkaProducer with acks=all and every codec; KafkaConsumer reads back keys, values, headers and timestamps byte-exact", async () => {
    const out = (await py(
      `
import sys, json
from kafka import KafkaProducer, KafkaConsumer, TopicPartition
b = sys.argv[1]
sent = []
for codec in [None, "gzip", "snappy", "lz4", "zstd"]:
    p = KafkaProducer(bootstrap_servers=b, acks="all", compression_type=codec, linger_ms=20)
    name = codec or "none"
    futures = []
    for i in range(40):
        value = (name * 10 + str(i)).encode() + bytes([i, 0, 255])
        f = p.send("kp-data", key=("%s-%d" % (name, i)).encode(), value=value, partition=0,
                   headers=[("codec", name.encode())], timestamp_ms=1700000000000 + len(sent))
        futures.append((f, value))
        sent.append(None)
    p.flush()
    for k, (f, value) in enumerate(futures):
        m = f.get(timeout=10)
        sent[len(sent) - len(futures) + k] = [m.offset, m.partition, value.hex(), m.timestamp]
    p.close()
c = KafkaConsumer(bootstrap_servers=b, enable_auto_commit=False, consumer_timeout_ms=5000)
c.assign([TopicPartition("kp-data", 0)])
c.seek_to_beginning()
got = []
for m in c:
    got.append([m.offset, m.key.decode(), m.value.hex(), m.headers[0][1].decode(), m.timestamp])
    if len(got) == len(sent): break
c.close()
print(json.dumps({"sent": sent, "got": got}))
`,
      broker.bootstrap,
    )) as { sent: [number, number, string, number][]; got: [number, string, string, string, number][] };
    assert.equal(out.sent.length, 200);
    assert.deepEqual(
      out.sent.map((s) => s[0]),
      Array.from({ length: 200 }, (_, i) => i),
      "offsets in send order",
    );
    assert.deepEqual(
      out.got.map((g) => g[0]),
      Array.from({ length: 200 }, (_, i) => i),
    );
    const codecs = ["none", "gzip", "snappy", "lz4", "zstd"];
    for (const [i, g] of out.got.entries()) {
      const codec = codecs[Math.floor(i / 40)]!;
      assert.equal(g[1], `${codec}-${i % 40}`);
      assert.equal(g[2], out.sent[i]![2], `value at offset ${i} is byte-exact`);
      assert.equal(g[3], codec);
      assert.equal(g[4], 1_700_000_000_000 + i, "the producer's timestamp");
    }
  });

  test("with api_version (0, 10, 1) it produces message format v1 (none, gzip, lz4) and fetches v1; as (0, 9) it fetches format v0", async () => {
    const out = (await py(
      `
import sys, json
from kafka import KafkaProducer, KafkaConsumer, TopicPartition
b = sys.argv[1]
offsets = []
for codec in [None, "gzip", "lz4"]:
    p = KafkaProducer(bootstrap_servers=b, api_version=(0, 10, 1), compression_type=codec)
    fs = [p.send("kp-old", key=b"k%d" % i, value=(codec or "none").encode() + b"-%d" % i, timestamp_ms=1600000000000 + i, partition=0) for i in range(5)]
    p.flush()
    offsets += [f.get(10).offset for f in fs]
    p.close()
read = {}
for version in [(0, 10, 1), (0, 9)]:
    c = KafkaConsumer(bootstrap_servers=b, api_version=version, consumer_timeout_ms=1500)
    c.assign([TopicPartition("kp-old", 0)])
    c.seek_to_beginning()
    read[".".join(map(str, version))] = [[m.offset, m.key.decode(), m.value.decode(), m.timestamp] for m in c]
    c.close()
print(json.dumps({"offsets": offsets, "read": read}))
`,
      broker.bootstrap,
    )) as { offsets: number[]; read: Record<string, [number, string, string, number | null][]> };
    assert.deepEqual(
      out.offsets,
      Array.from({ length: 15 }, (_, i) => i),
    );
    const expected = (withTimestamps: boolean) =>
      ["none", "gzip", "lz4"].flatMap((codec, k) =>
        [0, 1, 2, 3, 4].map((i) => [
          k * 5 + i,
          `k${i}`,
          `${codec}-${i}`,
          withTimestamps ? 1_600_000_000_000 + i : null,
        ]),
      );
    assert.deepEqual(out.read["0.10.1"], expected(true));
    assert.deepEqual(out.read["0.9"], expected(false), "format v0 has no timestamps (None)");
  });

  test("end and beginning offsets, offsets_for_times and seek", async () => {
    const out = (await py(
      `
import sys, json
from kafka import KafkaProducer, KafkaConsumer, KafkaAdminClient, TopicPartition
from kafka.admin import NewTopic
b = sys.argv[1]
KafkaAdminClient(bootstrap_servers=b).create_topics([NewTopic("kp-time", num_partitions=4, replication_factor=1)])
p = KafkaProducer(bootstrap_servers=b, acks=1)
for i in range(40):
    p.send("kp-time", value=b"x%d" % i, partition=i % 4, timestamp_ms=1600000000000 + i * 1000)
p.flush()
c = KafkaConsumer(bootstrap_servers=b)
tps = [TopicPartition("kp-time", i) for i in range(4)]
end = sorted((t.partition, o) for t, o in c.end_offsets(tps).items())
begin = sorted((t.partition, o) for t, o in c.beginning_offsets(tps).items())
q = c.offsets_for_times({TopicPartition("kp-time", 1): 1600000000000 + 21 * 1000, TopicPartition("kp-time", 2): 1700000000000})
times = sorted((t.partition, None if v is None else [v.offset, v.timestamp]) for t, v in q.items())
c.assign([TopicPartition("kp-time", 1)])
c.seek(TopicPartition("kp-time", 1), 7)
r = c.poll(timeout_ms=5000)
seek = [[m.offset, m.value.decode()] for ms in r.values() for m in ms]
c.close()
print(json.dumps({"end": end, "begin": begin, "times": times, "seek": seek}))
`,
      broker.bootstrap,
    )) as Record<string, unknown>;
    assert.deepEqual(out, {
      end: [
        [0, 10],
        [1, 10],
        [2, 10],
        [3, 10],
      ],
      begin: [
        [0, 0],
        [1, 0],
        [2, 0],
        [3, 0],
      ],
      // Partition 1 holds records 1, 5, 9, ...: the first at or after record 21's time is record 21, its 6th.
      times: [
        [1, [5, 1_600_000_021_000]],
        [2, null],
      ],
      seek: [
        [7, "x29"],
        [8, "x33"],
        [9, "x37"],
      ],
    });
  });

  test("a group of two consumers (one thread each) shares the partitions and commits; a new member resumes from the commits; the admin client lists and describes the group", async () => {
    const out = (await py(
      `
import sys, json, time, threading
from kafka import KafkaProducer, KafkaConsumer, KafkaAdminClient, TopicPartition
from kafka.admin import NewTopic
b = sys.argv[1]
a = KafkaAdminClient(bootstrap_servers=b)
a.create_topics([NewTopic("kp-group", num_partitions=4, replication_factor=1)])
p = KafkaProducer(bootstrap_servers=b, acks=1)
for i in range(40):
    p.send("kp-group", value=b"g%d" % i, partition=i % 4)
p.flush()
seen = [[], []]; assigned = [None, None]; members = [None, None]
stop = threading.Event(); committed = [False, False]
def done():
    return sum(len(s) for s in seen) >= 40 and all(assigned) and len(assigned[0]) + len(assigned[1]) == 4
def member(i):
    m = KafkaConsumer("kp-group", bootstrap_servers=b, group_id="kp-g", auto_offset_reset="earliest",
                      enable_auto_commit=False, session_timeout_ms=10000, heartbeat_interval_ms=500)
    members[i] = m
    while not stop.is_set():
        for recs in m.poll(timeout_ms=200).values():
            seen[i].extend(r.value.decode() for r in recs)
        if m.assignment():
            assigned[i] = sorted(tp.partition for tp in m.assignment())
        if done() and not committed[i]:
            m.commit()
            committed[i] = True
threads = [threading.Thread(target=member, args=(i,)) for i in range(2)]
for t in threads: t.start()
deadline = time.time() + 40
while time.time() < deadline and not (done() and all(committed)): time.sleep(0.05)
groups = a.list_consumer_groups()
d = a.describe_consumer_groups(["kp-g"])[0]
offsets = sorted((tp.partition, om.offset) for tp, om in a.list_consumer_group_offsets("kp-g").items())
stop.set()
for t in threads: t.join()
for m in members: m.close()
p.send("kp-group", value=b"late", partition=2)
p.flush()
n = KafkaConsumer("kp-group", bootstrap_servers=b, group_id="kp-g", auto_offset_reset="earliest", enable_auto_commit=False, consumer_timeout_ms=15000)
resumed = []
for r in n:  # the first record it gets: "late" if it resumed from the commits, an old one if not
    resumed.append(r.value.decode())
    break
n.close()
print(json.dumps({"seen": sorted(seen[0] + seen[1]), "split": [len(x) for x in assigned], "overlap": sorted(set(assigned[0]) & set(assigned[1])),
                  "groups": [list(g) for g in groups], "state": d.state, "protocol": d.protocol, "members": len(d.members),
                  "offsets": offsets, "resumed": resumed}))
`,
      broker.bootstrap,
    )) as Record<string, unknown>;
    assert.deepEqual(out, {
      seen: Array.from({ length: 40 }, (_, i) => `g${i}`).sort(),
      split: [2, 2],
      overlap: [],
      groups: [["kp-g", "consumer"]],
      state: "Stable",
      protocol: "range",
      members: 2,
      offsets: [
        [0, 10],
        [1, 10],
        [2, 10],
        [3, 10],
      ],
      resumed: ["late"],
    });
  });
});
