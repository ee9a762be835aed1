// Consumer groups with real clients against a real broker process: kafkajs members sharing a
// topic (join, leave, killed member expiring), librdkafka (confluent-kafka-python) with the range
// and cooperative-sticky assignors and max.poll.interval.ms, kcat -G resuming from commits, and
// committed offsets surviving broker restarts (clean and kill -9).

import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import kafkajs from "kafkajs";
import {
  type BrokerProcess,
  hasCommand,
  hasConfluentKafka,
  PYTHON,
  run,
  startBrokerProcess,
} from "../helpers/broker-process.ts";

const { Kafka, logLevel } = kafkajs;
process.env.KAFKAJS_NO_PARTITIONER_WARNING = "1";

interface Member {
  child: ChildProcess;
  assignments: number[][];
  messages: string[];
  waitFor(pred: () => boolean, ms?: number): Promise<void>;
}

function startMember(bootstrap: string, group: string, topic: string): Member {
  const child = spawn(
    process.execPath,
    [join(import.meta.dirname, "../fixtures/kafkajs-member.ts"), bootstrap, group, topic],
    {
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  const m: Member = {
    child,
    assignments: [],
    messages: [],
    waitFor: (pred, ms = 30_000) =>
      new Promise((resolve, reject) => {
        const started = Date.now();
        const tick = (): void => {
          if (pred()) resolve();
          else if (Date.now() - started > ms)
            reject(new Error(`timed out; assignments ${JSON.stringify(m.assignments)}`));
          else setTimeout(tick, 50);
        };
        tick();
      }),
  };
  let buf = "";
  child.stdout!.on("data", (d: Buffer) => {
    buf += d.toString();
    let i = buf.indexOf("\n");
    while (i >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line.startsWith("assigned ")) m.assignments.push(JSON.parse(line.slice(9)) as number[]);
      else if (line.startsWith("msg ")) m.messages.push(line.slice(4));
      i = buf.indexOf("\n");
    }
  });
  return m;
}

const last = (m: Member): number[] => m.assignments.at(-1) ?? [];

describe("consumer groups", () => {
  let broker: BrokerProcess;
  let kafka: InstanceType<typeof Kafka>;
  before(async () => {
    // Kafka's default initial rebalance delay (3 s): members started together join one generation,
    // so the first one does not read everything alone and hand uncommitted work to the others.
    broker = await startBrokerProcess({ config: { "group.initial.rebalance.delay.ms": "3000" } });
    kafka = new Kafka({ clientId: "groups", brokers: [broker.bootstrap], logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: "six", numPartitions: 6 }] });
    await admin.disconnect();
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({
      topic: "six",
      messages: Array.from({ length: 60 }, (_, i) => ({ value: `m${i}`, partition: i % 6 })),
    });
    await producer.disconnect();
  });
  after(async () => {
    await broker.cleanup();
  });

  test("kafkajs: three members share 6 partitions; a leaver's and a killed member's partitions move", {
    timeout: 90_000,
  }, async () => {
    const members = [0, 1, 2].map(() => startMember(broker.bootstrap, "trio", "six"));
    try {
      const covered = (ms: Member[]): number[] => ms.flatMap(last).sort((a, b) => a - b);
      await members[0]!.waitFor(
        () => members.every((m) => last(m).length === 2) && covered(members).join() === "0,1,2,3,4,5",
      );
      await members[0]!.waitFor(() => new Set(members.flatMap((m) => m.messages)).size === 60);
      const all = members.flatMap((m) => m.messages);
      assert.equal(all.length, 60, "every message consumed once");
      // One member leaves (LeaveGroup): the other two take over its partitions.
      members[2]!.child.kill("SIGTERM");
      const survivors = members.slice(0, 2);
      await survivors[0]!.waitFor(
        () => survivors.every((m) => last(m).length === 3) && covered(survivors).join() === "0,1,2,3,4,5",
        30_000,
      );
      // One dies without a LeaveGroup: its partitions move once its session (6 s) times out.
      members[1]!.child.kill("SIGKILL");
      await members[0]!.waitFor(() => covered([members[0]!]).join() === "0,1,2,3,4,5", 30_000);
      assert.equal(new Set(members.flatMap((m) => m.messages)).size, 60, "nothing new appeared");
      assert.equal(
        members.flatMap((m) => m.messages).length,
        60,
        "committed offsets honoured: nothing was read twice by the members taking over",
      );
    } finally {
      for (const m of members) m.child.kill("SIGKILL");
    }
  });

  test("kafkajs: a member that leaves hands its partitions over at once; committed offsets are honoured", {
    timeout: 60_000,
  }, async () => {
    const consumer = () => kafka.consumer({ groupId: "leavers", sessionTimeout: 30_000, heartbeatInterval: 300 });
    const a = consumer();
    const b = consumer();
    const assigned = new Map<string, number[]>();
    const seen: string[] = [];
    for (const [name, c] of [
      ["a", a],
      ["b", b],
    ] as const) {
      c.on(c.events.GROUP_JOIN, (e) => assigned.set(name, (e.payload.memberAssignment.six ?? []).slice().sort()));
      await c.connect();
      await c.subscribe({ topic: "six", fromBeginning: true });
      await c.run({ eachMessage: async ({ partition, message }) => void seen.push(`${partition}:${message.offset}`) });
    }
    const until = async (pred: () => boolean): Promise<void> => {
      const start = Date.now();
      while (!pred()) {
        if (Date.now() - start > 30_000) throw new Error(`timeout ${JSON.stringify([...assigned])}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    await until(
      () =>
        (assigned.get("a")?.length ?? 0) + (assigned.get("b")?.length ?? 0) === 6 &&
        (assigned.get("a")?.length ?? 0) > 0 &&
        (assigned.get("b")?.length ?? 0) > 0,
    );
    await until(() => new Set(seen).size === 60);
    const leaveStarted = Date.now();
    await b.disconnect(); // LeaveGroup: no session timeout to wait for
    await until(() => assigned.get("a")?.length === 6);
    assert.ok(
      Date.now() - leaveStarted < 15_000,
      "the rebalance followed the LeaveGroup, not the 30 s session timeout",
    );
    await a.disconnect();
    assert.equal(new Set(seen).size, 60);
  });

  test("kcat -G: a second run of the same group gets nothing already committed", {
    skip: !hasCommand("kcat") && "kcat is not installed",
  }, async () => {
    const producer = await run("kcat", ["-b", broker.bootstrap, "-P", "-t", "kg"], { input: "one\ntwo\nthree\n" });
    assert.equal(producer.status, 0, producer.stderr);
    const first = await run(
      "kcat",
      ["-b", broker.bootstrap, "-G", "kg-group", "kg", "-e", "-q", "-f", "%s\\n", "-X", "auto.offset.reset=earliest"],
      { timeoutMs: 30_000 },
    );
    assert.deepEqual(first.stdout.trim().split("\n"), ["one", "two", "three"]);
    await run("kcat", ["-b", broker.bootstrap, "-P", "-t", "kg"], { input: "four\n" });
    const second = await run(
      "kcat",
      ["-b", broker.bootstrap, "-G", "kg-group", "kg", "-e", "-q", "-f", "%s\\n", "-X", "auto.offset.reset=earliest"],
      { timeoutMs: 30_000 },
    );
    assert.deepEqual(second.stdout.trim().split("\n"), ["four"]);
  });

  for (const strategy of ["range", "cooperative-sticky"]) {
    test(`confluent-kafka-python (${strategy}): two members split the partitions; commits resume; a stalled poller loses its partitions`, {
      skip: !hasConfluentKafka() && "python3-confluent-kafka is not installed",
      timeout: 90_000,
    }, async () => {
      const script = `
import sys, json, time
from confluent_kafka import Consumer
bs, strategy, group = sys.argv[1], sys.argv[2], sys.argv[3]
def mk(name):
    return Consumer({"bootstrap.servers": bs, "group.id": group, "partition.assignment.strategy": strategy,
                     "auto.offset.reset": "earliest", "enable.auto.commit": False, "session.timeout.ms": 6000,
                     "heartbeat.interval.ms": 500, "max.poll.interval.ms": 7000, "client.id": name})
a, b = mk("a"), mk("b")
a.subscribe(["six"]); b.subscribe(["six"])
seen = set()
deadline = time.time() + 30
while time.time() < deadline and len(seen) < 60:
    for c in (a, b):
        m = c.poll(0.1)
        if m is not None and not m.error():
            seen.add((m.partition(), m.offset()))
            c.commit(message=m, asynchronous=False)
split = [sorted(p.partition for p in a.assignment()), sorted(p.partition for p in b.assignment())]
# b stops polling: beyond max.poll.interval.ms it leaves and a takes everything over.
deadline = time.time() + 30
while time.time() < deadline and len(a.assignment()) < 6:
    a.poll(0.2)
after = sorted(p.partition for p in a.assignment())
a.close()
# A new member of the same group resumes after the committed offsets: nothing left to read.
c = mk("c"); c.subscribe(["six"])
extra = 0
deadline = time.time() + 8
while time.time() < deadline:
    m = c.poll(0.2)
    if m is not None and not m.error(): extra += 1
c.close()
print(json.dumps({"seen": len(seen), "split": split, "after": after, "extra": extra}))
`;
      const r = await run(PYTHON, ["-c", script, broker.bootstrap, strategy, `py-${strategy}`], { timeoutMs: 80_000 });
      assert.equal(r.status, 0, r.stderr);
      const out = JSON.parse(r.stdout.trim().split("\n").at(-1)!) as {
        seen: number;
        split: number[][];
        after: number[];
        extra: number;
      };
      assert.equal(out.seen, 60, "every message consumed");
      assert.deepEqual(
        [...out.split[0]!, ...out.split[1]!].sort(),
        [0, 1, 2, 3, 4, 5],
        "partitions split disjointly and completely",
      );
      assert.ok(out.split[0]!.length > 0 && out.split[1]!.length > 0, "both members got partitions");
      assert.deepEqual(out.after, [0, 1, 2, 3, 4, 5], "the stalled member's partitions moved to the other");
      assert.equal(out.extra, 0, "committed offsets honoured");
    });
  }

  test("static membership (librdkafka): a restarted static member gets its partitions back with no rebalance of the others", {
    skip: !hasConfluentKafka() && "python3-confluent-kafka is not installed",
    timeout: 90_000,
  }, async () => {
    const script = `
import sys, json, time
from confluent_kafka import Consumer
bs = sys.argv[1]
events = {"a": 0, "b": 0}
def mk(instance, name):
    c = Consumer({"bootstrap.servers": bs, "group.id": "static-group", "group.instance.id": instance,
                  "session.timeout.ms": 15000, "heartbeat.interval.ms": 500, "auto.offset.reset": "earliest"})
    def on_assign(consumer, parts):
        events[name] += 1
    c.subscribe(["six"], on_assign=on_assign)
    return c
a, b = mk("instance-a", "a"), mk("instance-b", "b")
deadline = time.time() + 30
while time.time() < deadline and not (len(a.assignment()) + len(b.assignment()) == 6 and a.assignment() and b.assignment()):
    a.poll(0.1); b.poll(0.1)
# Let the group settle (callbacks of the initial rebalances run inside poll) before measuring.
for _ in range(20):
    a.poll(0.1); b.poll(0.1)
before_b = sorted(p.partition for p in b.assignment())
before_a = sorted(p.partition for p in a.assignment())
a_events = events["a"]
b.close()   # a static member leaves no LeaveGroup behind
b2 = mk("instance-b", "b")
deadline = time.time() + 20
while time.time() < deadline and not b2.assignment():
    a.poll(0.1); b2.poll(0.1)
for _ in range(20):
    a.poll(0.1); b2.poll(0.1)
print(json.dumps({"before_b": before_b, "after_b": sorted(p.partition for p in b2.assignment()),
                  "before_a": before_a, "after_a": sorted(p.partition for p in a.assignment()),
                  "a_rebalances": events["a"] - a_events}))
a.close(); b2.close()
`;
    const r = await run(PYTHON, ["-c", script, broker.bootstrap], { timeoutMs: 80_000 });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim().split("\n").at(-1)!) as Record<string, unknown>;
    assert.ok((out.before_b as number[]).length > 0);
    assert.deepEqual(out.after_b, out.before_b, "the restarted static member has the same partitions");
    assert.deepEqual(out.after_a, out.before_a);
    assert.equal(out.a_rebalances, 0, "the other member saw no rebalance");
  });

  test("committed offsets and group state survive a clean restart and kill -9", { timeout: 60_000 }, async () => {
    const admin = kafka.admin();
    await admin.connect();
    await admin.setOffsets({
      groupId: "durable-group",
      topic: "six",
      partitions: [
        { partition: 0, offset: "7" },
        { partition: 3, offset: "2" },
      ],
    });
    await admin.disconnect();
    for (const how of ["stop", "kill"] as const) {
      if (how === "stop") assert.equal(await broker.stop(), 0);
      else await broker.kill();
      broker = await broker.restart();
      kafka = new Kafka({ clientId: "groups", brokers: [broker.bootstrap], logLevel: logLevel.NOTHING });
      const a = kafka.admin();
      await a.connect();
      const offsets = await a.fetchOffsets({ groupId: "durable-group", topics: ["six"] });
      const byPartition = new Map(offsets[0]!.partitions.map((p) => [p.partition, p.offset]));
      assert.equal(byPartition.get(0), "7", `after ${how}`);
      assert.equal(byPartition.get(3), "2", `after ${how}`);
      assert.equal(byPartition.get(1), "-1");
      await a.disconnect();
    }
  });
});
