// The real `sluice` binary against a real broker: every command, its output, and its errors.
// Offsets changed by the CLI are read back with our client; perf summaries are parsed and checked
// against what the broker holds; the live progress line is checked on a real terminal (tmux).

import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type RunningBroker, startBroker } from "@sluice/broker";
import { Admin, Consumer, Producer } from "@sluice/client";

const BIN = join(import.meta.dirname, "../src/main.ts");

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function sluice(args: string[], input = "", env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    const { SLUICE_BOOTSTRAP: _, ...inherited } = process.env;
    const c = spawn(process.execPath, [BIN, ...args], {
      stdio: ["pipe", "pipe", "pipe"],
      env: { ...inherited, ...env },
    });
    let stdout = "";
    let stderr = "";
    c.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    c.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    c.on("close", (status) => resolve({ status, stdout, stderr }));
    // A child that exits without reading its input closes the pipe (EPIPE); its exit status tells.
    c.stdin.on("error", () => {});
    c.stdin.end(input);
  });
}

/** A failure is one line on stderr, never a stack trace. */
function assertOneLineError(r: Run, status: number, message: RegExp): void {
  assert.equal(r.status, status, `exit status; stderr: ${r.stderr}`);
  assert.match(r.stderr, message);
  assert.doesNotMatch(r.stderr, /^\s+at .+:\d+/m, "no stack trace");
  assert.equal(r.stderr.trim().split("\n").length, 1, `one line: ${r.stderr}`);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test("the installed `sluice` command runs as an executable (npx sluice, the bin link npm made)", () => {
  // npm links packages/cli's bin into node_modules/.bin; running it needs the file's execute bit
  // and its shebang, which running the source with `node` above would not notice.
  const bin = join(import.meta.dirname, "../../../node_modules/.bin/sluice");
  const PATH = `${dirname(process.execPath)}:${process.env.PATH ?? ""}`;
  const out = execFileSync(bin, ["--help"], { encoding: "utf8", env: { ...process.env, PATH } });
  assert.match(out, /^Usage: sluice/m);
});

describe("sluice CLI", () => {
  let broker: RunningBroker;
  let b: string[];
  let admin: Admin;
  before(async () => {
    broker = await startBroker();
    b = ["--bootstrap", broker.bootstrap];
    admin = new Admin({ bootstrapServers: broker.bootstrap });
  });
  after(async () => {
    await admin.close();
    await broker.stop();
  });

  const committed = async (group: string): Promise<Record<string, string>> =>
    Object.fromEntries(
      (await admin.listConsumerGroupOffsets(group)).map((o) => [`${o.topic}-${o.partition}`, String(o.offset)]),
    );

  test("topic create, list, describe, alter and delete", async () => {
    const created = await sluice([...b, "topic", "create", "cli-t", "-p", "3", "-c", "retention.ms=60000"]);
    assert.equal(created.status, 0, created.stderr);
    assert.match(created.stdout, /created topic cli-t/);
    const list = await sluice([...b, "--json", "topic", "list"]);
    assert.ok((JSON.parse(list.stdout) as string[]).includes("cli-t"));
    const desc = await sluice([...b, "topic", "describe", "cli-t"]);
    assert.match(desc.stdout, /3 partition\(s\)/);
    assert.match(desc.stdout, /PARTITION\s+LEADER\s+REPLICAS\s+ISR\s+START\s+END/);
    const altered = await sluice([...b, "topic", "alter", "cli-t", "-p", "4", "-c", "retention.ms="]);
    assert.equal(altered.status, 0, altered.stderr);
    const json = JSON.parse((await sluice([...b, "--json", "topic", "describe", "cli-t"])).stdout) as {
      partitions: unknown[];
    };
    assert.equal(json.partitions.length, 4);
    const dup = await sluice([...b, "topic", "create", "cli-t"]);
    assertOneLineError(dup, 1, /TOPIC_ALREADY_EXISTS/);
    assert.equal((await sluice([...b, "topic", "delete", "cli-t"])).status, 0);
    assert.ok(!(JSON.parse((await sluice([...b, "--json", "topic", "list"])).stdout) as string[]).includes("cli-t"));
    assertOneLineError(await sluice([...b, "topic", "describe", "no-such-topic"]), 1, /UNKNOWN_TOPIC_OR_PARTITION/);
  });

  test("consume --from a time starts each partition at its first record at or after it", async () => {
    await admin.createTopics([{ name: "cli-times", numPartitions: 2 }]);
    const p = new Producer({ bootstrapServers: broker.bootstrap });
    await p.sendBatch(
      [1000, 2000, 3000, 4000].flatMap((ts) =>
        [0, 1].map((partition) => ({ topic: "cli-times", partition, value: `p${partition}-${ts}`, timestamp: ts })),
      ),
    );
    await p.close();
    const consumed = async (from: string): Promise<string[]> => {
      const r = await sluice([...b, "consume", "cli-times", "--from", from, "--format", "%s"]);
      assert.equal(r.status, 0, r.stderr);
      return r.stdout.trim().split("\n").filter(Boolean).sort();
    };
    const from3000 = ["p0-3000", "p0-4000", "p1-3000", "p1-4000"];
    assert.deepEqual(await consumed("@3000"), from3000);
    assert.deepEqual(await consumed("@2500"), from3000, "the first record at or after the time");
    assert.deepEqual(await consumed("1970-01-01T00:00:03Z"), from3000);
    assert.deepEqual(await consumed("@5000"), [], "no record that recent: from the end");
    assertOneLineError(await sluice([...b, "consume", "cli-times", "--from", "yesterday"]), 2, /--from must be/);
    assertOneLineError(
      await sluice([...b, "consume", "cli-times", "--group", "g", "--from", "@3000"]),
      2,
      /with --group, --from is beginning or end/,
    );
  });

  test("produce from arguments and stdin, with keys and headers; consume them back in formats", async () => {
    const p1 = await sluice([...b, "produce", "cli-data", "-p", "0", "first", "second"]);
    assert.equal(p1.status, 0, p1.stderr);
    assert.deepEqual(p1.stdout.trim().split("\n"), ["cli-data-0@0", "cli-data-0@1"]);
    const p2 = await sluice(
      [...b, "--json", "produce", "cli-data", "-p", "0", "-K", ":", "-H", "app=cli", "-z", "gzip"],
      "k1:third\nk2:fourth\n",
    );
    assert.deepEqual(JSON.parse(p2.stdout), [
      { partition: 0, offset: "2" },
      { partition: 0, offset: "3" },
    ]);
    const c1 = await sluice([...b, "consume", "cli-data", "--format", "%o %k=%s %h"]);
    assert.equal(c1.status, 0, c1.stderr);
    assert.deepEqual(c1.stdout.trim().split("\n"), [
      "0 =first ",
      "1 =second ",
      "2 k1=third app=cli",
      "3 k2=fourth app=cli",
    ]);
    const c2 = await sluice([...b, "--json", "consume", "cli-data", "--from", "2", "-n", "1"]);
    const rec = JSON.parse(c2.stdout.trim()) as {
      offset: string;
      key: string;
      value: string;
      headers: Record<string, string>;
    };
    assert.deepEqual([rec.offset, rec.key, rec.value, rec.headers.app], ["2", "k1", "third", "cli"]);
    const g1 = await sluice([...b, "consume", "cli-data", "--group", "cli-g"]);
    assert.equal(g1.stdout.trim().split("\n").length, 4);
    const g2 = await sluice([...b, "consume", "cli-data", "--group", "cli-g"]);
    assert.equal(g2.stdout.trim(), "", "a second run of the group reads nothing already committed");
    const groups = JSON.parse((await sluice([...b, "--json", "group", "list"])).stdout) as {
      groupId: string;
      state: string;
    }[];
    assert.deepEqual(
      groups.filter((x) => x.groupId === "cli-g").map((x) => x.state),
      ["Empty"],
    );
    const described = await sluice([...b, "group", "describe", "cli-g"]);
    assert.equal(described.status, 0, described.stderr);
    assert.match(described.stdout, /group cli-g: Empty/);
    assert.match(described.stdout, /TOPIC\s+PARTITION\s+CURRENT-OFFSET\s+LOG-END-OFFSET\s+LAG\s+CONSUMER-ID/);
    assert.match(described.stdout, /cli-data\s+0\s+4\s+4\s+0\s+-/, "committed 4, end 4, lag 0, no owner");
  });

  test("group describe shows an active member, its assignment and the lag; such a group cannot be reset or deleted", async () => {
    await admin.createTopics([{ name: "cli-live", numPartitions: 2 }]);
    const producer = new Producer({ bootstrapServers: broker.bootstrap });
    await producer.sendBatch(
      Array.from({ length: 6 }, (_, i) => ({ topic: "cli-live", partition: i % 2, value: `v${i}` })),
    );
    await producer.close();
    const consumer = new Consumer({
      bootstrapServers: broker.bootstrap,
      groupId: "cli-live-g",
      clientId: "cli-test-member",
      autoOffsetReset: "earliest",
      enableAutoCommit: false,
    });
    try {
      await consumer.subscribe(["cli-live"]);
      let got = 0;
      for (let i = 0; i < 40 && (got < 6 || consumer.assignment().length < 2); i++)
        got += (await consumer.poll(200)).length;
      assert.equal(got, 6);
      // Commit 2 of partition 0's 3 records and none of partition 1's.
      await consumer.commit([{ topic: "cli-live", partition: 0, offset: 2n }]);
      const d = JSON.parse((await sluice([...b, "--json", "group", "describe", "cli-live-g"])).stdout) as {
        state: string;
        members: { memberId: string; clientId: string; assignment: { topic: string; partition: number }[] }[];
        partitions: {
          topic: string;
          partition: number;
          committed: string | null;
          logEndOffset: string;
          lag: string | null;
          memberId: string | null;
        }[];
        totalLag: string;
      };
      assert.equal(d.state, "Stable");
      assert.equal(d.members.length, 1);
      assert.equal(d.members[0]!.clientId, "cli-test-member");
      assert.deepEqual(d.members[0]!.assignment.map((tp) => tp.partition).sort(), [0, 1]);
      const memberId = d.members[0]!.memberId;
      assert.deepEqual(
        d.partitions.map((p) => [p.topic, p.partition, p.committed, p.logEndOffset, p.lag, p.memberId]),
        [
          ["cli-live", 0, "2", "3", "1", memberId],
          ["cli-live", 1, null, "3", null, memberId],
        ],
      );
      assert.equal(d.totalLag, "1");
      const human = await sluice([...b, "group", "describe", "cli-live-g"]);
      assert.match(human.stdout, /group cli-live-g: Stable \(range\), 1 member\(s\), total lag 1/);
      assert.match(human.stdout, /MEMBER-ID\s+CLIENT-ID\s+HOST\s+INSTANCE-ID\s+#PARTITIONS\s+ASSIGNMENT/);
      assert.match(human.stdout, /cli-test-member\s+\S+\s+-\s+2\s+cli-live-0,cli-live-1/);
      assert.match(human.stdout, /cli-live\s+0\s+2\s+3\s+1\s+\S+/);
      assert.match(human.stdout, /cli-live\s+1\s+-\s+3\s+-\s+\S+/);
      const reset = await sluice([...b, "group", "reset-offsets", "cli-live-g", "--all-topics", "--to-earliest"]);
      assertOneLineError(
        reset,
        1,
        /cli-live-g is Stable with 1 member\(s\): offsets can only be reset while it has no active members/,
      );
      assertOneLineError(await sluice([...b, "group", "delete", "cli-live-g"]), 1, /NON_EMPTY_GROUP/);
    } finally {
      await consumer.close();
    }
    assert.deepEqual(await committed("cli-live-g"), { "cli-live-0": "2" }, "nothing was changed");
  });

  describe("group reset-offsets", () => {
    const T0 = Date.parse("2024-05-01T12:00:00Z");
    const G = "cli-reset-g";
    before(async () => {
      await admin.createTopics([{ name: "cli-reset", numPartitions: 2 }]);
      const producer = new Producer({ bootstrapServers: broker.bootstrap });
      // 10 records per partition, record i at T0 + i s.
      await producer.sendBatch(
        Array.from({ length: 20 }, (_, i) => ({
          topic: "cli-reset",
          partition: i % 2,
          value: `r${i}`,
          timestamp: T0 + Math.floor(i / 2) * 1000,
        })),
      );
      await producer.close();
      await admin.alterConsumerGroupOffsets(G, [
        { topic: "cli-reset", partition: 0, offset: 5n },
        { topic: "cli-reset", partition: 1, offset: 5n },
      ]);
    });
    const reset = (...args: string[]) => sluice([...b, "group", "reset-offsets", G, ...args]);

    test("without --execute: the plan is printed and nothing changes", async () => {
      const r = await reset("--topic", "cli-reset", "--to-earliest");
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /GROUP\s+TOPIC\s+PARTITION\s+CURRENT-OFFSET\s+NEW-OFFSET/);
      assert.match(r.stdout, /cli-reset-g\s+cli-reset\s+0\s+5\s+0/);
      assert.match(r.stdout, /cli-reset-g\s+cli-reset\s+1\s+5\s+0/);
      assert.match(r.stdout, /dry run: nothing changed/);
      const j = JSON.parse(
        (await sluice([...b, "--json", "group", "reset-offsets", G, "--all-topics", "--to-latest", "--dry-run"]))
          .stdout,
      ) as {
        executed: boolean;
        offsets: { partition: number; current: string; newOffset: string }[];
      };
      assert.equal(j.executed, false);
      assert.deepEqual(
        j.offsets.map((o) => [o.partition, o.current, o.newOffset]),
        [
          [0, "5", "10"],
          [1, "5", "10"],
        ],
      );
      assert.deepEqual(await committed(G), { "cli-reset-0": "5", "cli-reset-1": "5" });
    });

    test("--to-earliest and --to-latest --execute", async () => {
      const r = await reset("--topic", "cli-reset", "--to-earliest", "--execute");
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /reset 2 partition\(s\) of group cli-reset-g/);
      assert.deepEqual(await committed(G), { "cli-reset-0": "0", "cli-reset-1": "0" });
      assert.equal((await reset("--all-topics", "--to-latest", "--execute")).status, 0);
      assert.deepEqual(await committed(G), { "cli-reset-0": "10", "cli-reset-1": "10" });
    });

    test("--to-offset on some partitions, clamped to the log's range", async () => {
      assert.equal((await reset("--topic", "cli-reset:0", "--to-offset", "3", "--execute")).status, 0);
      assert.deepEqual(await committed(G), { "cli-reset-0": "3", "cli-reset-1": "10" });
      const high = await reset("--topic", "cli-reset:1", "--to-offset", "99", "--execute");
      assert.match(high.stdout, /cli-reset\s+1\s+10\s+10/);
      assert.equal((await reset("--topic", "cli-reset:1", "--to-offset", "-5", "--execute")).status, 0);
      assert.deepEqual(await committed(G), { "cli-reset-0": "3", "cli-reset-1": "0" });
    });

    test("--shift-by moves each committed offset, clamped", async () => {
      assert.equal((await reset("--all-topics", "--shift-by", "4", "--execute")).status, 0);
      assert.deepEqual(await committed(G), { "cli-reset-0": "7", "cli-reset-1": "4" });
      assert.equal((await reset("--all-topics", "--shift-by", "-6", "--execute")).status, 0);
      assert.deepEqual(await committed(G), { "cli-reset-0": "1", "cli-reset-1": "0" });
    });

    test("--to-datetime: the first offset at or after that time; the log end when none is", async () => {
      const at = new Date(T0 + 4500).toISOString();
      assert.equal((await reset("--topic", "cli-reset", "--to-datetime", at, "--execute")).status, 0);
      assert.deepEqual(await committed(G), { "cli-reset-0": "5", "cli-reset-1": "5" });
      assert.equal(
        (await reset("--topic", "cli-reset", "--to-datetime", "2999-01-01T00:00:00Z", "--execute")).status,
        0,
      );
      assert.deepEqual(await committed(G), { "cli-reset-0": "10", "cli-reset-1": "10" });
    });

    test("--by-duration: like --to-datetime at now minus the duration", async () => {
      // The records are from 2024: 100,000 days back is before all of them, one day back after.
      assert.equal((await reset("--topic", "cli-reset", "--by-duration", "P100000D", "--execute")).status, 0);
      assert.deepEqual(await committed(G), { "cli-reset-0": "0", "cli-reset-1": "0" });
      assert.equal((await reset("--topic", "cli-reset", "--by-duration", "PT24H", "--execute")).status, 0);
      assert.deepEqual(await committed(G), { "cli-reset-0": "10", "cli-reset-1": "10" });
      assertOneLineError(await reset("--topic", "cli-reset", "--by-duration", "1 day"), 2, /ISO-8601 duration/);
    });

    test("--to-current keeps committed offsets and takes the log end where there is none", async () => {
      await admin.alterConsumerGroupOffsets("cli-reset-cur", [{ topic: "cli-reset", partition: 0, offset: 2n }]);
      const r = await sluice([...b, "group", "reset-offsets", "cli-reset-cur", "--topic", "cli-reset", "--to-current"]);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /cli-reset-cur\s+cli-reset\s+0\s+2\s+2/);
      assert.match(r.stdout, /cli-reset-cur\s+cli-reset\s+1\s+-\s+10/);
      const x = await sluice([
        ...b,
        "group",
        "reset-offsets",
        "cli-reset-cur",
        "--topic",
        "cli-reset",
        "--to-current",
        "--execute",
      ]);
      assert.equal(x.status, 0, x.stderr);
      assert.deepEqual(await committed("cli-reset-cur"), { "cli-reset-0": "2", "cli-reset-1": "10" });
    });

    test("wrong arguments", async () => {
      assertOneLineError(await reset("--topic", "cli-reset"), 2, /needs exactly one of --to-earliest/);
      assertOneLineError(await reset("--topic", "cli-reset", "--to-earliest", "--to-latest"), 2, /got 2/);
      assertOneLineError(await reset("--to-earliest"), 2, /needs --topic .* or --all-topics/);
      assertOneLineError(await reset("--topic", "cli-reset", "--to-datetime", "yesterday"), 2, /--to-datetime must be/);
      assertOneLineError(await reset("--topic", "cli-reset", "--to-offset", "x"), 2, /--to-offset must be an integer/);
      assertOneLineError(await reset("--topic", "cli-reset:0,7", "--to-earliest"), 1, /has no partition 7/);
      assertOneLineError(await reset("--topic", "cli-reset:a", "--to-earliest"), 2, /--topic must be/);
      assertOneLineError(
        await reset("--topic", "cli-reset", "--to-earliest", "--execute", "--dry-run"),
        2,
        /exclude each other/,
      );
      const noOffsets = await sluice([
        ...b,
        "group",
        "reset-offsets",
        "cli-fresh-g",
        "--topic",
        "cli-reset",
        "--shift-by",
        "1",
      ]);
      assertOneLineError(noOffsets, 1, /no committed offset/);
      assert.deepEqual(await committed(G), { "cli-reset-0": "10", "cli-reset-1": "10" }, "nothing changed");
    });

    test("group delete removes the group and its offsets", async () => {
      const r = await sluice([...b, "group", "delete", G]);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`deleted group ${G}`));
      assert.deepEqual(await committed(G), {});
      const groups = JSON.parse((await sluice([...b, "--json", "group", "list"])).stdout) as { groupId: string }[];
      assert.ok(!groups.some((g) => g.groupId === G));
      assertOneLineError(await sluice([...b, "group", "describe", G]), 1, /consumer group cli-reset-g does not exist/);
      assertOneLineError(await sluice([...b, "group", "delete", G]), 1, /GROUP_ID_NOT_FOUND/);
    });
  });

  test("perf produce and perf consume: summaries match what the broker holds", async () => {
    const p = await sluice([...b, "--json", "perf", "produce", "cli-perf", "-n", "3000", "-s", "200", "--acks", "1"]);
    assert.equal(p.status, 0, p.stderr);
    assert.equal(p.stdout.trim().split("\n").length, 1, "only the summary: stdout is not a terminal");
    const s = JSON.parse(p.stdout) as {
      records: number;
      failed: number;
      bytes: number;
      recordsPerSec: number;
      mbPerSec: number;
      latencyMs: { avg: number; p50: number; p95: number; p99: number; max: number };
    };
    assert.equal(s.records, 3000);
    assert.equal(s.failed, 0);
    assert.equal(s.bytes, 3000 * 200);
    assert.ok(s.recordsPerSec > 0 && s.mbPerSec > 0);
    const l = s.latencyMs;
    assert.ok(0 < l.p50 && l.p50 <= l.p95 && l.p95 <= l.p99 && l.p99 <= l.max, JSON.stringify(l));
    const ends = await admin.listOffsets("cli-perf", "latest");
    assert.equal(
      ends.reduce((sum, e) => sum + e.offset, 0n),
      3000n,
    );
    const human = await sluice([...b, "perf", "produce", "cli-perf", "-n", "500", "-s", "200", "-t", "1000"]);
    assert.equal(human.status, 0, human.stderr);
    assert.match(
      human.stdout,
      /^500 records sent, [\d.]+ records\/sec \([\d.]+ MB\/sec\), [\d.]+ ms avg latency, [\d.]+ ms max latency, [\d.]+ ms 50th, [\d.]+ ms 95th, [\d.]+ ms 99th, [\d.]+ ms 99\.9th\.$/m,
    );
    const c = await sluice([...b, "--json", "perf", "consume", "cli-perf", "-n", "3500"]);
    assert.equal(c.status, 0, c.stderr);
    const cs = JSON.parse(c.stdout) as { records: number; bytes: number; recordsPerSec: number };
    assert.equal(cs.records, 3500);
    assert.equal(cs.bytes, 3500 * 200);
    assert.ok(cs.recordsPerSec > 0);
    const short = await sluice([...b, "perf", "consume", "cli-perf", "-n", "4000", "--timeout", "300"]);
    assert.match(short.stdout, /^3500 records \([\d.]+ MB\) consumed/m);
    assertOneLineError(short, 1, /exiting before consuming the expected number of records: .*got 3500 of 4000/);
  });

  test("perf produce on a terminal shows a live progress line, then the summary", async () => {
    const socket = `sluice-cli-test-${process.pid}`;
    const tmux = (...args: string[]) => execFileSync("tmux", ["-L", socket, ...args], { encoding: "utf8" });
    const shellQuote = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;
    const command = [process.execPath, BIN, ...b, "perf", "produce", "cli-tty", "-n", "2500", "-s", "100", "-t", "1000"]
      .map(shellQuote)
      .join(" ");
    tmux("new-session", "-d", "-s", "perf", "-x", "250", "-y", "20", `${command}; echo EXIT=$?; sleep 60`);
    const screens: string[] = [];
    try {
      for (let i = 0; i < 100; i++) {
        await sleep(100);
        const screen = tmux("capture-pane", "-p", "-t", "perf");
        screens.push(screen);
        if (/EXIT=\d+/.test(screen)) break;
      }
    } finally {
      tmux("kill-server");
    }
    const last = screens.at(-1)!;
    assert.match(last, /EXIT=0/, last);
    const progress = screens.find((s) => /\d+\/2500 records acknowledged, [\d.]+ records\/s/.test(s));
    assert.ok(progress, `a progress line appeared; last screen:\n${last}`);
    assert.match(last, /2500 records sent, [\d.]+ records\/sec .* 99\.9th\./);
    assert.doesNotMatch(last, /records acknowledged/, "the summary replaced the progress line");
  });

  test("wrong arguments give a clear message and exit status 2", async () => {
    assertOneLineError(
      await sluice([...b, "topic", "create", "x", "-p", "many"]),
      2,
      /--partitions must be a non-negative integer/,
    );
    const unknown = await sluice(["frobnicate"]);
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /unknown command/);
    const badCodec = await sluice([...b, "produce", "t", "-z", "rar", "x"]);
    assert.equal(badCodec.status, 2);
    assert.match(badCodec.stderr, /Allowed choices/);
    assertOneLineError(await sluice([...b, "perf", "produce", "t", "-n", "10", "-t", "0"]), 2, /--throughput must be/);
    assertOneLineError(await sluice([...b, "perf", "produce", "t"]), 2, /required option '-n, --num-records <n>'/);
    assertOneLineError(
      await sluice([...b, "perf", "produce", "t", "-n", "1", "-X", "no.such.prop=1"]),
      2,
      /--producer-props: unknown or unsupported client property "no.such.prop"/,
    );
    assertOneLineError(
      await sluice(["--bootstrap", "nonsense", "topic", "list"]),
      2,
      /--bootstrap: bad bootstrap server/,
    );
  });

  test("an unreachable cluster is one clear line and status 1, at once", async () => {
    const t0 = performance.now();
    const runs = await Promise.all(
      [
        ["topic", "list"],
        ["group", "describe", "g"],
        ["produce", "t", "x"],
        ["consume", "t"],
        ["perf", "produce", "t", "-n", "1"],
        ["perf", "consume", "t"],
      ].map((args) => sluice(["--bootstrap", "127.0.0.1:1", ...args])),
    );
    for (const r of runs)
      assertOneLineError(r, 1, /^sluice: cannot reach the cluster \(127\.0\.0\.1:1: ECONNREFUSED\); check --bootstrap/);
    console.log(`# six commands against a closed port, in parallel: ${(performance.now() - t0).toFixed(0)} ms`);
  });

  test("SLUICE_BOOTSTRAP is used when --bootstrap is not given", async () => {
    await admin.createTopics([{ name: "cli-env" }]);
    const r = await sluice(["--json", "topic", "list"], "", { SLUICE_BOOTSTRAP: broker.bootstrap });
    assert.equal(r.status, 0, r.stderr);
    assert.ok((JSON.parse(r.stdout) as string[]).includes("cli-env"));
  });

  test("every command has --help", async () => {
    const commands = [
      [],
      ["start"],
      ["topic"],
      ["topic", "create"],
      ["topic", "list"],
      ["topic", "describe"],
      ["topic", "alter"],
      ["topic", "delete"],
      ["group"],
      ["group", "list"],
      ["group", "describe"],
      ["group", "reset-offsets"],
      ["group", "delete"],
      ["produce"],
      ["consume"],
      ["perf"],
      ["perf", "produce"],
      ["perf", "consume"],
    ];
    const runs = await Promise.all(commands.map((c) => sluice(c[0] === "start" ? ["help", ...c] : [...c, "--help"])));
    for (const [i, r] of runs.entries()) {
      const path = commands[i]!.join(" ");
      assert.equal(r.status, 0, `${path}: ${r.stderr}`);
      assert.match(r.stdout, new RegExp(`^Usage: sluice${path ? ` ${path}` : ""}`), path);
    }
    assert.match(runs[11]!.stdout, /--to-datetime <iso>/);
    assert.match(runs[11]!.stdout, /--execute/);
    assert.match(runs[16]!.stdout, /--throughput <records\/s>/);
  });
});
