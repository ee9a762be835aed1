// Version negotiation: ApiVersions at every version, KIP-511 answers to versions we do not know,
// and the rule that every API served is served over its whole spec range.

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { API_SPECS, decodeApiVersionsResponse, ErrorCode, Reader } from "@sluice/protocol";
import { Broker, buildConfig, type RunningBroker } from "../src/index.ts";
import { ApiVersions } from "./apis.ts";
import { testBroker, WireClient } from "./helpers.ts";

const GROUP_KEYS = [8, 9, 10, 11, 12, 13, 14, 15, 16, 42, 47];

describe("ApiVersions", () => {
  let broker: RunningBroker;
  let c: WireClient;
  before(async () => {
    broker = await testBroker();
    c = await WireClient.connect(broker.port);
  });
  after(async () => {
    c.close();
    await broker.stop();
  });

  test("every version from 0 to 4 lists the same APIs", async () => {
    const lists = [];
    for (let v = 0; v <= 4; v++) {
      const res = await c.call(ApiVersions, v, { clientSoftwareName: "sluice-test", clientSoftwareVersion: "1.0" });
      assert.equal(res.errorCode, ErrorCode.NONE);
      lists.push(res.apiKeys.map((k) => [k.apiKey, k.minVersion, k.maxVersion]));
    }
    for (const l of lists) assert.deepEqual(l, lists[0]);
  });

  test("each API served is advertised over the whole range of its spec, from its lowest version", async () => {
    const res = await c.call(ApiVersions, 3, {});
    assert.ok(res.apiKeys.length > 20);
    for (const k of res.apiKeys) {
      const spec = API_SPECS.find((s) => s.apiKey === k.apiKey);
      assert.ok(spec, `key ${k.apiKey} is a known API`);
      assert.deepEqual([k.minVersion, k.maxVersion], [spec.minVersion, spec.maxVersion], spec.name);
    }
  });

  test("the versions librdkafka 2.0 gates its features on are included", async () => {
    const res = await c.call(ApiVersions, 3, {});
    const has = (key: number, v: number): boolean =>
      res.apiKeys.some((k) => k.apiKey === key && k.minVersion <= v && v <= k.maxVersion);
    assert.ok(has(0, 3) && has(1, 4), "message format v2");
    assert.ok(has(0, 7) && has(1, 10), "zstd");
    assert.ok(has(2, 1), "offsets for times");
    assert.ok(has(17, 1) && has(36, 0), "SASL via Kafka frames");
    assert.ok(has(0, 1) && has(1, 1), "throttle time");
  });

  test("a version newer than we know is answered in the v0 format with UNSUPPORTED_VERSION and our range (KIP-511)", async () => {
    for (const version of [5, 99]) {
      const id = c.nextCorrelationId();
      const response = c.expect(id);
      // A flexible request header (null client id, no tags) and an unknown body.
      const frame = Buffer.from([0, 0, 0, 13, 0, 18, 0, version, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0]);
      frame.writeInt32BE(id, 8);
      c.write(frame);
      const r = new Reader(await response);
      assert.equal(r.readInt32("correlationId"), id, "response header v0");
      const res = decodeApiVersionsResponse(r, 0);
      assert.equal(res.errorCode, ErrorCode.UNSUPPORTED_VERSION);
      const own = res.apiKeys.find((k) => k.apiKey === 18);
      assert.deepEqual([own?.minVersion, own?.maxVersion], [0, 4]);
    }
  });

  test("the group coordinator's APIs are advertised only when its handlers are registered", async () => {
    const res = await c.call(ApiVersions, 3, {});
    const keys = new Set(res.apiKeys.map((k) => k.apiKey));
    // The default broker registers the group coordinator plugin.
    for (const k of GROUP_KEYS) assert.ok(keys.has(k), `key ${k}`);
    const bareDir = mkdtempSync(join(tmpdir(), "sluice-bare-"));
    const bare = new Broker({
      config: buildConfig(
        new Map([
          ["log.dirs", bareDir],
          ["listeners", "PLAINTEXT://127.0.0.1:0"],
        ]),
      ),
      plugins: [],
      logger: broker.broker.logger,
    });
    await bare.start();
    try {
      const b = await WireClient.connect(bare.port);
      const bareKeys = new Set((await b.call(ApiVersions, 3, {})).apiKeys.map((k) => k.apiKey));
      for (const k of GROUP_KEYS) assert.ok(!bareKeys.has(k), `key ${k} is not advertised without a handler`);
      assert.ok(bareKeys.has(0) && bareKeys.has(1) && bareKeys.has(18));
      // The first broker's list is its own (no process-wide state).
      const again = new Set((await c.call(ApiVersions, 3, {})).apiKeys.map((k) => k.apiKey));
      assert.ok(again.has(11));
      b.close();
    } finally {
      await bare.stop();
      rmSync(bareDir, { recursive: true, force: true });
    }
  });
});
