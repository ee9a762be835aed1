// The read-buffer pool: which sizes it lends, that a released buffer is lent again (and only
// then), that releasing twice or releasing a foreign buffer does nothing, and the free-bytes cap.

import assert from "node:assert/strict";
import { test } from "node:test";
import { POOLED_READ_BYTES_MIN, ReadBufferPool } from "../src/read-buffers.ts";

test("small reads are fresh buffers, not lent", () => {
  const pool = new ReadBufferPool();
  const b = pool.acquire(POOLED_READ_BYTES_MIN - 1);
  assert.equal(b.length, POOLED_READ_BYTES_MIN - 1);
  assert.equal(pool.isLent(b), false);
  assert.equal(pool.allocated, 0);
});

test("a released buffer is lent again for a read of its class, and not before", () => {
  const pool = new ReadBufferPool();
  const a = pool.acquire(1024 * 1024 + 61);
  assert.equal(a.length, 1024 * 1024 + 61);
  assert.equal(pool.isLent(a), true);
  const b = pool.acquire(1024 * 1024);
  assert.notEqual(b.buffer, a.buffer, "a lent buffer is never lent twice");
  pool.release(a.subarray(10, 20));
  assert.equal(pool.isLent(a), false);
  const c = pool.acquire(900 * 1024);
  assert.equal(c.buffer, a.buffer);
  assert.equal(c.length, 900 * 1024);
  assert.equal(pool.reused, 1);
  assert.equal(pool.allocated, 2);
  // Another size class does not take it.
  pool.release(c);
  const d = pool.acquire(100 * 1024);
  assert.notEqual(d.buffer, a.buffer);
});

test("releasing twice, or a buffer the pool never lent, changes nothing", () => {
  const pool = new ReadBufferPool();
  const a = pool.acquire(200 * 1024);
  pool.release(a);
  pool.release(a);
  const free = pool.freeBytes;
  pool.release(Buffer.alloc(200 * 1024));
  assert.equal(pool.freeBytes, free);
  const b = pool.acquire(200 * 1024);
  const c = pool.acquire(200 * 1024);
  assert.equal(b.buffer, a.buffer);
  assert.notEqual(c.buffer, a.buffer, "a double release must not put the buffer on the free list twice");
});

test("free buffers are capped; beyond the cap released buffers are left to the GC", () => {
  const pool = new ReadBufferPool();
  const lent = Array.from({ length: 12 }, () => pool.acquire(8 * 1024 * 1024));
  for (const b of lent) pool.release(b);
  assert.ok(pool.freeBytes <= 64 * 1024 * 1024, `${pool.freeBytes} free bytes`);
  assert.ok(pool.freeBytes >= 7 * 8 * 1024 * 1024);
});
