// Records fields given as a RecordChunks (several buffers, e.g. the tail cache's views of
// consecutive appends) encode to the same bytes as the merged buffer, in every Fetch and Produce
// version, and the chunks reach the writer's output as they are (no merging copy).

import assert from "node:assert/strict";
import { test } from "node:test";
import { encodeFetchResponse } from "../src/generated/fetch.ts";
import { encodeProduceRequest } from "../src/generated/produce.ts";
import { RecordChunks, Writer } from "../src/primitives.ts";

function bytes(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

const parts = [bytes(5000, 1), bytes(17, 2), bytes(9000, 3), bytes(0, 4), bytes(300, 5)];
const merged = Buffer.concat(parts);

function encoded(f: (w: Writer) => void): { whole: Buffer; chunks: Uint8Array[] } {
  const w = new Writer();
  f(w);
  const chunks = w.toChunks();
  return { whole: Buffer.concat(chunks), chunks };
}

test("writeRecords: a RecordChunks is written like writeBytes of the merged buffer (compact and not)", () => {
  for (const compact of [false, true]) {
    const a = encoded((w) => w.writeRecords(new RecordChunks(parts), compact)).whole;
    const b = encoded((w) => w.writeBytes(merged, compact)).whole;
    assert.ok(a.equals(b), `compact=${compact}`);
    const empty = encoded((w) => w.writeRecords(new RecordChunks([]), compact)).whole;
    assert.ok(empty.equals(encoded((w) => w.writeBytes(new Uint8Array(0), compact)).whole));
    const nul = encoded((w) => w.writeRecords(null, compact)).whole;
    assert.ok(nul.equals(encoded((w) => w.writeBytes(null, compact)).whole));
  }
});

test("writeRecords keeps the large chunks as they are (the same memory, not copies)", () => {
  const { chunks } = encoded((w) => w.writeRecords(new RecordChunks(parts), false));
  assert.ok(chunks.includes(parts[0]!), "the 5000-byte chunk is passed through");
  assert.ok(chunks.includes(parts[2]!), "the 9000-byte chunk is passed through");
});

test("Fetch responses (v0–17) and Produce requests (v0–11) encode a RecordChunks like the merged buffer", () => {
  for (let v = 0; v <= 17; v++) {
    const res = (records: Uint8Array | RecordChunks) => ({
      responses: [
        {
          topic: "t",
          topicId: new Uint8Array(16).fill(7),
          partitions: [
            { partitionIndex: 0, highWatermark: 9n, records },
            { partitionIndex: 1, records: null },
          ],
        },
      ],
    });
    const a = Buffer.concat(encoded((w) => encodeFetchResponse(w, res(new RecordChunks(parts)), v)).chunks);
    const b = Buffer.concat(encoded((w) => encodeFetchResponse(w, res(merged), v)).chunks);
    assert.ok(a.equals(b), `Fetch v${v}`);
  }
  for (let v = 0; v <= 11; v++) {
    const req = (records: Uint8Array | RecordChunks) => ({
      acks: 1,
      timeoutMs: 1000,
      topicData: [{ name: "t", partitionData: [{ index: 0, records }] }],
    });
    const a = Buffer.concat(encoded((w) => encodeProduceRequest(w, req(new RecordChunks(parts)), v)).chunks);
    const b = Buffer.concat(encoded((w) => encodeProduceRequest(w, req(merged), v)).chunks);
    assert.ok(a.equals(b), `Produce v${v}`);
  }
});
