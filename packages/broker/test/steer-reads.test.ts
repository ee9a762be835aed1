// Where the broker puts a whole request frame: Produce requests of 64 KiB and more in a buffer
// from the pool (so the log can keep their bytes without a copy), everything else fresh.

import assert from "node:assert/strict";
import { test } from "node:test";
import { bufferPool } from "@sluice/storage";
import { allocateRequestFrame } from "../src/steer-reads.ts";

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
