// The real `sluice` binary against a real broker: every command, its output, and its errors.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type RunningBroker, startBroker } from "@sluice/broker";

const BIN = join(import.meta.dirname, "../src/main.ts");

function sluice(args: string[], input = ""): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [BIN, ...args], { stdio: ["pipe", "pipe", "pipe"] });
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

describe("sluice CLI", () => {
  let broker: RunningBroker;
  let b: string[];
  before(async () => {
    broker = await startBroker();
    b = ["--bootstrap", broker.bootstrap];
  });
  after(async () => {
    await broker.stop();
  });

  test("topic create, list, describe, alter and delete", async () => {
    const created = await sluice([...b, "topic", "create", "cli-t", "-p", "3", "-c", "retention.ms=60000"]);
    assert.equal(created.status, 0, created.stderr);
    assert.match(created.stdout, /created topic cli-t/);
    const list = await sluice([...b, "--json", "topic", "list"]);
    assert.deepEqual(JSON.parse(list.stdout), ["cli-t"]);
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
    assert.equal(dup.status, 1);
    assert.match(dup.stderr, /TOPIC_ALREADY_EXISTS/);
    assert.doesNotMatch(dup.stderr, /at .*\.ts:\d+/, "no stack trace");
    assert.equal((await sluice([...b, "topic", "delete", "cli-t"])).status, 0);
    assert.deepEqual(JSON.parse((await sluice([...b, "--json", "topic", "list"])).stdout), []);
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
      groups.map((x) => [x.groupId, x.state]),
      [["cli-g", "Empty"]],
    );
    const described = await sluice([...b, "group", "describe", "cli-g"]);
    assert.equal(described.status, 0, described.stderr);
    assert.match(described.stdout, /group cli-g: Empty/);
    assert.match(described.stdout, /cli-data\s+0\s+4\s+4\s+0/, "committed 4, end 4, lag 0");
  });

  test("wrong arguments give a clear message and exit status 2", async () => {
    const bad = await sluice([...b, "topic", "create", "x", "-p", "many"]);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--partitions must be a non-negative integer/);
    const unknown = await sluice(["frobnicate"]);
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /unknown command/);
    const badCodec = await sluice([...b, "produce", "t", "-z", "rar", "x"]);
    assert.equal(badCodec.status, 2);
    assert.match(badCodec.stderr, /Allowed choices/);
    const help = await sluice(["--help"]);
    assert.equal(help.status, 0);
    assert.match(help.stdout, /topic/);
  });
});
