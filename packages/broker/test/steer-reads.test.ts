// Where the broker puts a whole request frame: Produce requests of 64 KiB and more in a buffer
// from the pool (so the log can keep their bytes without a copy), everything else fresh; and that
// accepted sockets really are steered.

import assert from "node:assert/strict";
import { test } from "node:test";
import { bufferPool } from "@sluice/storage";
import { allocateRequestFrame, steerCounts } from "../src/steer-reads.ts";
import { ApiVersions } from "./apis.ts";
import { testBroker, WireClient } from "./helpers.ts";

test("Produce frames of 64 KiB and more come from the buffer pool, other frames do not", () => {
  const produce = allocateRequestFrame(200_000, Uint8Array.of(0, 0));
  assert.equal(produce.length, 200_000);
  assert.equal(bufferPool.isLent(produce), true);
  bufferPool.release(produce);
  assert.equal(bufferPool.isLent(allocateRequestFrame(200_000, Uint8Array.of(0, 3))), false);
  assert.equal(bufferPool.isLent(allocateRequestFrame(1000, Uint8Array.of(0, 0))), false);
  // The api key not received yet: not known to be a Produce request.
  assert.equal(bufferPool.isLent(allocateRequestFrame(200_000, Uint8Array.of(0))), false);
});

test("the broker's accepted sockets are steered (not left on Node's default read path)", async () => {
  // If a Node release stopped accepting the handle move, the broker would silently fall back to
  // the slower path: this fails instead.
  const broker = await testBroker();
  try {
    const before = { ...steerCounts };
    const c = await WireClient.connect(broker.port);
    const res = await c.call(ApiVersions, 3, { clientSoftwareName: "t", clientSoftwareVersion: "1" });
    assert.equal(res.errorCode, 0);
    c.close();
    assert.equal(steerCounts.steered, before.steered + 1);
    assert.equal(steerCounts.fallback, before.fallback);
  } finally {
    await broker.stop();
  }
});
