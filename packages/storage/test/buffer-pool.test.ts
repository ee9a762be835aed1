// The buffer pool: which sizes it lends, that a buffer is lent again once its last reference is
// given back (and only then), that extra or foreign releases do nothing, and the free-bytes cap.

import assert from "node:assert/strict";
import { test } from "node:test";
import { BufferPool, POOLED_BYTES_MIN } from "../src/buffer-pool.ts";

test("small reads are fresh buffers, not lent", () => {
  const pool = new BufferPool();
  const b = pool.acquire(POOLED_BYTES_MIN - 1);
  assert.equal(b.length, POOLED_BYTES_MIN - 1);
  assert.equal(pool.isLent(b), false);
  assert.equal(pool.allocated, 0);
});

test("a released buffer is lent again for a read of its class, and not before", () => {
  const pool = new BufferPool();
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
  const pool = new BufferPool();
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
  const pool = new BufferPool();
  const lent = Array.from({ length: 12 }, () => pool.acquire(8 * 1024 * 1024));
  for (const b of lent) pool.release(b);
  assert.ok(pool.freeBytes <= 64 * 1024 * 1024, `${pool.freeBytes} free bytes`);
  assert.ok(pool.freeBytes >= 7 * 8 * 1024 * 1024);
});

test("a buffer with several references is reused only after the last one is given back", () => {
  const pool = new BufferPool();
  const a = pool.acquire(300 * 1024);
  pool.retain(a.subarray(0, 100)); // e.g. the tail cache
  pool.retain(a.subarray(100, 200)); // e.g. a Fetch response
  pool.release(a); // the connection's reference to the request frame
  pool.release(a.subarray(0, 100));
  assert.equal(pool.isLent(a), true);
  assert.notEqual(pool.acquire(300 * 1024).buffer, a.buffer);
  pool.release(a.subarray(100, 200));
  assert.equal(pool.isLent(a), false);
  assert.equal(pool.acquire(300 * 1024).buffer, a.buffer);
});

test("retaining a buffer that is back on the free list is an invariant violation", () => {
  const pool = new BufferPool();
  const a = pool.acquire(300 * 1024);
  pool.release(a);
  assert.throws(() => pool.retain(a), /invariant/);
  pool.retain(Buffer.alloc(300 * 1024)); // not a pool buffer: ignored
});
