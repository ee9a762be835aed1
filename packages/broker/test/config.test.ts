// Broker configuration: Kafka's names and defaults, sources in order, and invalid configs refused
// with a message naming the key — also by the real process, which must not start.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { buildConfig, ConfigError, fromEnv, parseProperties } from "../src/config.ts";

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
