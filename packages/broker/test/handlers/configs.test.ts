// DescribeConfigs (values, sources, synonyms, documentation), AlterConfigs and
// IncrementalAlterConfigs (SET/DELETE/APPEND/SUBTRACT) on topics and the broker.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ErrorCode } from "@sluice/protocol";
import type { DescribeConfigsResourceResult } from "@sluice/protocol/generated/describe-configs.ts";
import type { RunningBroker } from "../../src/index.ts";
import { AlterConfigs, DescribeConfigs, IncrementalAlterConfigs } from "../apis.ts";
import { batch, createTopic, produce, testBroker, WireClient } from "../helpers.ts";

const TOPIC = 2;
const BROKER = 4;
const Source = { TOPIC_CONFIG: 1, DYNAMIC_BROKER_CONFIG: 2, STATIC_BROKER_CONFIG: 4, DEFAULT_CONFIG: 5 };
const Op = { SET: 0, DELETE: 1, APPEND: 2, SUBTRACT: 3 };

describe("configs", () => {
  let broker: RunningBroker;
  let c: WireClient;
  before(async () => {
    broker = await testBroker({ "log.retention.ms": "86400000" });
    c = await WireClient.connect(broker.port);
    await createTopic(c, "cfg", 1, { "cleanup.policy": "compact", "max.message.bytes": "2000" });
  });
  after(async () => {
    c.close();
    await broker.stop();
  });

  async function describeResource(
    resourceType: number,
    resourceName: string,
    opts: { version?: number; synonyms?: boolean; docs?: boolean; keys?: string[] | null } = {},
  ) {
    const res = await c.call(DescribeConfigs, opts.version ?? 4, {
      resources: [{ resourceType, resourceName, configurationKeys: opts.keys ?? null }],
      includeSynonyms: opts.synonyms ?? false,
      includeDocumentation: opts.docs ?? false,
    });
    return res.results[0]!;
  }

  function byName(configs: DescribeConfigsResourceResult[]): Map<string, DescribeConfigsResourceResult> {
    return new Map(configs.map((x) => [x.name, x]));
  }

  test("a topic's configs: overrides, static broker configs and Kafka's defaults, each with its source", async () => {
    const r = await describeResource(TOPIC, "cfg");
    assert.equal(r.errorCode, ErrorCode.NONE);
    const m = byName(r.configs);
    assert.deepEqual([m.get("cleanup.policy")!.value, m.get("cleanup.policy")!.configSource], ["compact", 1]);
    assert.deepEqual(
      [m.get("retention.ms")!.value, m.get("retention.ms")!.configSource],
      ["86400000", Source.STATIC_BROKER_CONFIG],
    );
    const seg = m.get("segment.bytes")!;
    assert.deepEqual([seg.value, seg.configSource], ["1073741824", Source.DEFAULT_CONFIG]);
  });

  test("v0 reports isDefault; v3+ documentation and type when asked", async () => {
    const v0 = byName((await describeResource(TOPIC, "cfg", { version: 0 })).configs);
    assert.equal(v0.get("segment.bytes")!.isDefault, true);
    assert.equal(v0.get("cleanup.policy")!.isDefault, false);
    const v3 = byName((await describeResource(TOPIC, "cfg", { version: 3, docs: true })).configs);
    assert.ok((v3.get("retention.ms")!.documentation ?? "").length > 0);
    assert.equal(v3.get("retention.ms")!.configType, 5, "LONG");
  });

  test("synonyms list the override, then the broker config it falls back to, then the default", async () => {
    const m = byName((await describeResource(TOPIC, "cfg", { synonyms: true, version: 1 })).configs);
    assert.deepEqual(
      m.get("retention.ms")!.synonyms.map((s) => [s.name, s.value, s.source]),
      [
        ["log.retention.ms", "86400000", Source.STATIC_BROKER_CONFIG],
        ["log.retention.hours", "168", Source.DEFAULT_CONFIG],
      ],
    );
    assert.deepEqual(
      m.get("cleanup.policy")!.synonyms.map((s) => [s.name, s.source]),
      [
        ["cleanup.policy", Source.TOPIC_CONFIG],
        ["log.cleanup.policy", Source.DEFAULT_CONFIG],
      ],
    );
  });

  test("configurationKeys selects configs; an unknown topic is UNKNOWN_TOPIC_OR_PARTITION", async () => {
    const r = await describeResource(TOPIC, "cfg", { keys: ["retention.ms", "segment.bytes"] });
    assert.deepEqual(r.configs.map((x) => x.name).sort(), ["retention.ms", "segment.bytes"]);
    assert.equal((await describeResource(TOPIC, "nope")).errorCode, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
  });

  test("broker configs describe this broker (by id or empty name), read-only ones flagged", async () => {
    for (const name of ["1", ""]) {
      const r = await describeResource(BROKER, name);
      assert.equal(r.errorCode, ErrorCode.NONE);
      const m = byName(r.configs);
      assert.equal(m.get("log.retention.ms")!.configSource, Source.STATIC_BROKER_CONFIG);
      assert.equal(m.get("num.partitions")!.configSource, Source.DEFAULT_CONFIG);
      assert.equal(m.get("log.dirs")!.readOnly, true);
    }
    assert.notEqual((await describeResource(BROKER, "99")).errorCode, ErrorCode.NONE);
  });

  test("AlterConfigs replaces a topic's overrides (those left out return to defaults) and applies them", async () => {
    await createTopic(c, "alter", 1, { "retention.ms": "1000" });
    const res = await c.call(AlterConfigs, 1, {
      resources: [
        { resourceType: TOPIC, resourceName: "alter", configs: [{ name: "max.message.bytes", value: "100" }] },
      ],
      validateOnly: false,
    });
    assert.equal(res.responses[0]!.errorCode, ErrorCode.NONE);
    const m = byName((await describeResource(TOPIC, "alter")).configs);
    assert.equal(m.get("retention.ms")!.configSource, Source.STATIC_BROKER_CONFIG, "the old override is gone");
    assert.equal(m.get("max.message.bytes")!.value, "100");
    assert.equal((await produce(c, "alter", 0, batch(["x".repeat(500)]))).errorCode, ErrorCode.MESSAGE_TOO_LARGE);
  });

  test("AlterConfigs refuses invalid values (INVALID_CONFIG) and validateOnly changes nothing", async () => {
    const bad = await c.call(AlterConfigs, 0, {
      resources: [{ resourceType: TOPIC, resourceName: "alter", configs: [{ name: "retention.ms", value: "soon" }] }],
    });
    assert.equal(bad.responses[0]!.errorCode, ErrorCode.INVALID_CONFIG);
    assert.match(bad.responses[0]!.errorMessage ?? "", /retention\.ms/);
    const dry = await c.call(AlterConfigs, 2, {
      resources: [{ resourceType: TOPIC, resourceName: "alter", configs: [{ name: "retention.ms", value: "5" }] }],
      validateOnly: true,
    });
    assert.equal(dry.responses[0]!.errorCode, ErrorCode.NONE);
    assert.equal(byName((await describeResource(TOPIC, "alter")).configs).get("retention.ms")!.value, "86400000");
  });

  test("IncrementalAlterConfigs SET and DELETE single topic configs, leaving the others", async () => {
    await createTopic(c, "inc", 1, { "retention.ms": "1000", "segment.ms": "60000" });
    const res = await c.call(IncrementalAlterConfigs, 1, {
      resources: [
        {
          resourceType: TOPIC,
          resourceName: "inc",
          configs: [
            { name: "retention.ms", configOperation: Op.SET, value: "2000" },
            { name: "segment.ms", configOperation: Op.DELETE, value: null },
          ],
        },
      ],
      validateOnly: false,
    });
    assert.equal(res.responses[0]!.errorCode, ErrorCode.NONE);
    assert.deepEqual(broker.broker.context!.topics.get("inc")!.record.configs, { "retention.ms": "2000" });
    assert.equal(broker.broker.context!.topics.get("inc")!.partitions[0]!.log.config["retention.ms"], 2000);
  });

  test("IncrementalAlterConfigs APPEND and SUBTRACT list configs; non-list configs refuse them", async () => {
    const run = (configOperation: number, name: string, value: string) =>
      c.call(IncrementalAlterConfigs, 0, {
        resources: [{ resourceType: TOPIC, resourceName: "inc", configs: [{ name, configOperation, value }] }],
      });
    assert.equal((await run(Op.APPEND, "cleanup.policy", "compact")).responses[0]!.errorCode, ErrorCode.NONE);
    assert.equal(broker.broker.context!.topics.get("inc")!.record.configs["cleanup.policy"], "delete,compact");
    assert.equal((await run(Op.SUBTRACT, "cleanup.policy", "delete")).responses[0]!.errorCode, ErrorCode.NONE);
    assert.equal(broker.broker.context!.topics.get("inc")!.record.configs["cleanup.policy"], "compact");
    assert.equal((await run(Op.APPEND, "retention.ms", "5")).responses[0]!.errorCode, ErrorCode.INVALID_CONFIG);
    assert.equal((await run(Op.SET, "nonsense", "5")).responses[0]!.errorCode, ErrorCode.INVALID_CONFIG);
  });

  test("dynamic broker configs: set, described as DYNAMIC_BROKER_CONFIG, then deleted; read-only ones refused", async () => {
    const set = await c.call(IncrementalAlterConfigs, 1, {
      resources: [
        {
          resourceType: BROKER,
          resourceName: "1",
          configs: [{ name: "log.retention.ms", configOperation: Op.SET, value: "3600000" }],
        },
      ],
    });
    assert.equal(set.responses[0]!.errorCode, ErrorCode.NONE);
    const m = byName((await describeResource(BROKER, "1")).configs);
    assert.deepEqual(
      [m.get("log.retention.ms")!.value, m.get("log.retention.ms")!.configSource],
      ["3600000", Source.DYNAMIC_BROKER_CONFIG],
    );
    const topic = byName((await describeResource(TOPIC, "cfg")).configs);
    assert.equal(topic.get("retention.ms")!.value, "3600000", "topics without an override follow it");
    const del = await c.call(IncrementalAlterConfigs, 1, {
      resources: [
        {
          resourceType: BROKER,
          resourceName: "1",
          configs: [{ name: "log.retention.ms", configOperation: Op.DELETE, value: null }],
        },
      ],
    });
    assert.equal(del.responses[0]!.errorCode, ErrorCode.NONE);
    assert.equal(byName((await describeResource(BROKER, "1")).configs).get("log.retention.ms")!.value, "86400000");
    const ro = await c.call(AlterConfigs, 0, {
      resources: [{ resourceType: BROKER, resourceName: "1", configs: [{ name: "log.dirs", value: "/tmp/x" }] }],
    });
    assert.equal(ro.responses[0]!.errorCode, ErrorCode.INVALID_CONFIG);
  });
});
