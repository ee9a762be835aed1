// Broker configuration: Kafka's names and defaults, sources in order, and invalid configs refused
// with a message naming the key — also by the real process, which must not start.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import {
  buildConfig,
  ConfigError,
  fromEnv,
  ignoredConfigs,
  parseProperties,
  TOPIC_CONFIGS,
  validateValue,
} from "../src/config.ts";

const MAIN = join(import.meta.dirname, "../src/main.ts");

describe("broker config", () => {
  test("defaults are Kafka's", () => {
    const c = buildConfig();
    assert.equal(c.int("num.partitions"), 1);
    assert.equal(c.int("message.max.bytes"), 1048588);
    assert.equal(c.get("log.retention.ms"), "604800000");
    assert.equal(c.bool("auto.create.topics.enable"), true);
    assert.deepEqual(c.list("listeners"), ["PLAINTEXT://0.0.0.0:9092"]);
  });

  test("later sources override earlier ones: file, then environment, then flags", () => {
    const file = parseProperties("# comment\nnum.partitions=3\nlog.dirs = /a\n");
    const env = fromEnv({ SLUICE_NUM_PARTITIONS: "4", SLUICE_LOG_DIRS: "/b", UNRELATED: "x" });
    const c = buildConfig(file, env, new Map([["num.partitions", "5"]]));
    assert.equal(c.int("num.partitions"), 5);
    assert.deepEqual(c.list("log.dirs"), ["/b"]);
  });

  test("invalid values and unknown keys name the key", () => {
    assert.throws(
      () => buildConfig(new Map([["num.partitions", "zero"]])),
      (e: unknown) => e instanceof ConfigError && e.key === "num.partitions",
    );
    assert.throws(() => buildConfig(new Map([["num.partitions", "0"]])), /num.partitions.*at least 1/);
    assert.throws(() => buildConfig(new Map([["log.cleanup.policy", "shred"]])), /log.cleanup.policy/);
    assert.throws(
      () => buildConfig(new Map([["no.such.key", "1"]])),
      (e: unknown) => e instanceof ConfigError && e.key === "no.such.key",
    );
    assert.throws(() => parseProperties("just-a-word-without-value"), ConfigError);
  });

  test("log.retention.ms falls back to log.retention.minutes, then log.retention.hours (Kafka's precedence)", () => {
    assert.equal(buildConfig().get("log.retention.ms"), "604800000");
    assert.equal(buildConfig(new Map([["log.retention.hours", "1"]])).get("log.retention.ms"), "3600000");
    const minutes = new Map([
      ["log.retention.hours", "1"],
      ["log.retention.minutes", "2"],
    ]);
    assert.equal(buildConfig(minutes).get("log.retention.ms"), "120000");
    assert.equal(buildConfig(minutes, new Map([["log.retention.ms", "5"]])).get("log.retention.ms"), "5");
    assert.equal(buildConfig(new Map([["log.roll.hours", "2"]])).get("log.roll.ms"), "7200000");
  });

  test("broker.id is an alias of node.id", () => {
    assert.equal(buildConfig(new Map([["broker.id", "3"]])).int("node.id"), 3);
  });

  test("listeners must be PLAINTEXT://host:port lists", () => {
    assert.deepEqual(
      buildConfig(new Map([["listeners", "PLAINTEXT://[::1]:9093, PLAINTEXT://:9094"]])).list("listeners"),
      ["PLAINTEXT://[::1]:9093", "PLAINTEXT://:9094"],
    );
    assert.throws(() => buildConfig(new Map([["listeners", "localhost"]])), /invalid config listeners/);
    assert.throws(() => buildConfig(new Map([["advertised.listeners", "PLAINTEXT://h:port"]])), /advertised.listeners/);
  });

  test("a stock Kafka server.properties is accepted; keys with no effect here are reported", () => {
    const file = parseProperties(
      [
        "broker.id=0",
        "num.network.threads=3",
        "num.io.threads=8",
        "socket.send.buffer.bytes=102400",
        "socket.receive.buffer.bytes=102400",
        "socket.request.max.bytes=104857600",
        "log.dirs=/tmp/kafka-logs",
        "num.partitions=1",
        "num.recovery.threads.per.data.dir=1",
        "offsets.topic.replication.factor=1",
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1",
        "log.retention.hours=168",
        "log.segment.bytes=1073741824",
        "log.retention.check.interval.ms=300000",
        "zookeeper.connect=localhost:2181",
        "zookeeper.connection.timeout.ms=18000",
        "group.initial.rebalance.delay.ms=0",
      ].join("\n"),
    );
    const c = buildConfig(file);
    assert.equal(c.int("node.id"), 0);
    assert.deepEqual(ignoredConfigs(c).sort(), [
      "num.io.threads",
      "num.network.threads",
      "num.recovery.threads.per.data.dir",
      "offsets.topic.replication.factor",
      "socket.receive.buffer.bytes",
      "socket.send.buffer.bytes",
      "transaction.state.log.min.isr",
      "transaction.state.log.replication.factor",
      "zookeeper.connect",
      "zookeeper.connection.timeout.ms",
    ]);
  });

  test("every topic config is backed by a broker config with a valid default", () => {
    const c = buildConfig();
    for (const [topicName, def] of TOPIC_CONFIGS) {
      const value = c.get(def.name);
      assert.equal(validateValue(def, value), null, `${topicName} ← ${def.name}=${value}`);
    }
  });

  test("the broker process refuses to start on a bad config, naming the key, with exit status 2", () => {
    const dir = mkdtempSync(join(tmpdir(), "sluice-cfg-"));
    try {
      const bad = spawnSync(process.execPath, [MAIN, "--log.dirs", dir, "--message.max.bytes", "lots"], {
        encoding: "utf8",
        timeout: 20_000,
      });
      assert.equal(bad.status, 2);
      assert.match(bad.stderr, /invalid config message.max.bytes/);
      const file = join(dir, "server.properties");
      writeFileSync(file, "auto.create.topics.enable=maybe\n");
      const badFile = spawnSync(process.execPath, [MAIN, "--config", file], { encoding: "utf8", timeout: 20_000 });
      assert.equal(badFile.status, 2);
      assert.match(badFile.stderr, /auto.create.topics.enable/);
      const badArg = spawnSync(process.execPath, [MAIN, "stray"], { encoding: "utf8", timeout: 20_000 });
      assert.equal(badArg.status, 2);
      assert.match(badArg.stderr, /unexpected argument/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
