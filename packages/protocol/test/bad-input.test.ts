// Hostile input: truncated frames, oversize lengths, negative counts, unknown versions and random
// mutations of real client frames must each end in a typed ProtocolDecodeError — never another
// exception from deep inside, never a hang, never an allocation sized by the attacker.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import fc from "fast-check";
import { decodeFetchRequest } from "../src/generated/fetch.ts";
import { decodeMetadataRequest, encodeMetadataRequest } from "../src/generated/metadata.ts";
import { decodeProduceRequest, encodeProduceRequest } from "../src/generated/produce.ts";
import { readRequestHeader } from "../src/header.ts";
import { ProtocolDecodeError, Reader, Writer } from "../src/primitives.ts";
import { requestCodec } from "./helpers/codec-lookup.ts";

interface Fixture {
  client: string;
  apiKey: number;
  apiVersion: number;
  hex: string;
}
const fixtures = (
  JSON.parse(readFileSync(join(import.meta.dirname, "fixtures/client-frames.json"), "utf8")) as Fixture[]
).map((f) => ({ ...f, bytes: Buffer.from(f.hex, "hex") }));

/** Decodes a whole frame (header and body); returns the error thrown, if any. */
async function decodeFrame(bytes: Uint8Array): Promise<unknown> {
  try {
    const { header, body } = readRequestHeader(bytes);
    const codec = await requestCodec(header.requestApiKey).catch(() => null);
    if (codec === null) return null; // an unknown API key is the dispatcher's concern
    codec.decode(body, header.requestApiVersion);
    return null;
  } catch (e) {
    return e;
  }
}

function produceRequest(version: number): Buffer {
  const w = new Writer();
  encodeProduceRequest(
    w,
    {
      acks: -1,
      timeoutMs: 1000,
      topicData: [{ name: "t", partitionData: [{ index: 0, records: new Uint8Array(100) }] }],
    },
    version,
  );
  return w.toBuffer();
}

function expectDecodeError(fn: () => unknown, field: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ProtocolDecodeError, `expected ProtocolDecodeError, got ${String(e)}`);
    assert.match(e.field, field);
    return true;
  });
}

describe("malformed messages give typed errors", () => {
  test("every truncation of a Produce request fails with ProtocolDecodeError", () => {
    for (const version of [3, 7, 9, 11]) {
      const bytes = produceRequest(version);
      for (let len = 0; len < bytes.length; len++) {
        const r = new Reader(bytes.subarray(0, len));
        assert.throws(
          () => decodeProduceRequest(r, version),
          (e: unknown) => e instanceof ProtocolDecodeError && e.apiName === "ProduceRequest" && e.version === version,
        );
      }
    }
  });

  test("a string length beyond the bytes remaining names the field", () => {
    const bytes = Buffer.from([0x00, 0x00, 0x00, 0x01, 0x7f, 0xff, 0x61]); // 1 topic, name length 32767
    expectDecodeError(() => decodeMetadataRequest(new Reader(bytes), 1), /MetadataRequestTopic\.name/);
  });

  test("an array count beyond the bytes remaining is refused before allocating", () => {
    const bytes = Buffer.from([0x7f, 0xff, 0xff, 0xff]); // 2^31-1 topics
    const started = process.hrtime.bigint();
    expectDecodeError(() => decodeMetadataRequest(new Reader(bytes), 1), /topics/);
    assert.ok(process.hrtime.bigint() - started < 50_000_000n, "refused without work proportional to the count");
  });

  test("a negative array count is refused", () => {
    const w = new Writer();
    w.writeInt32(-1); // replica id
    w.writeInt32(100);
    w.writeInt32(1);
    w.writeInt32(-7); // topics: negative count
    expectDecodeError(() => decodeFetchRequest(new Reader(w.toBuffer()), 3), /topics/);
  });

  test("null for a non-nullable array is refused", () => {
    const w = new Writer();
    w.writeInt16(-1); // transactional id null (v3+)
    w.writeInt16(1);
    w.writeInt32(1000);
    w.writeInt32(-1); // topicData: null
    expectDecodeError(() => decodeProduceRequest(new Reader(w.toBuffer()), 3), /topicData/);
  });

  test("a compact length past 32 bits is refused", () => {
    const bytes = Buffer.from([0xff, 0xff, 0xff, 0xff, 0x7f]);
    expectDecodeError(() => decodeMetadataRequest(new Reader(bytes), 12), /topics/);
  });

  test("an unknown version is refused with a typed error", () => {
    expectDecodeError(() => decodeProduceRequest(new Reader(produceRequest(9)), 99), /\(version\)/);
    expectDecodeError(() => decodeMetadataRequest(new Reader(Buffer.alloc(8)), -1), /\(version\)/);
  });

  test("tagged fields out of order are refused", () => {
    const w = new Writer();
    encodeMetadataRequest(w, { topics: null }, 12);
    const good = w.toBuffer();
    // Replace the final empty tagged section by two fields with descending tags.
    const bad = Buffer.concat([good.subarray(0, good.length - 1), Buffer.from([2, 5, 0, 3, 0])]);
    expectDecodeError(() => decodeMetadataRequest(new Reader(bad), 12), /MetadataRequest/);
  });
});

describe("fuzz: mutations of real client frames", () => {
  test("captured frames from kcat, confluent-kafka-python and kafkajs are present", () => {
    const clients = new Set(fixtures.map((f) => f.client));
    assert.deepEqual([...clients].sort(), ["kafkajs", "kcat", "python"]);
  });

  test("random byte flips, truncations and splices never crash or hang the decoder", async () => {
    const frameArb = fc.constantFrom(...fixtures.map((f) => f.bytes));
    const mutation = fc.oneof(
      fc.record({ kind: fc.constant("flip" as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
      fc.record({ kind: fc.constant("truncate" as const), at: fc.nat(), value: fc.constant(0) }),
      fc.record({ kind: fc.constant("int32" as const), at: fc.nat(), value: fc.integer() }),
    );
    const started = Date.now();
    await fc.assert(
      fc.asyncProperty(frameArb, fc.array(mutation, { minLength: 1, maxLength: 4 }), async (frame, mutations) => {
        const bytes = Buffer.from(frame);
        let view: Buffer = bytes;
        for (const m of mutations) {
          const at = m.at % Math.max(1, view.length);
          if (m.kind === "flip") view[at] = m.value;
          else if (m.kind === "truncate") view = view.subarray(0, at);
          else if (at + 4 <= view.length) view.writeInt32BE(m.value, at);
        }
        const error = await decodeFrame(view);
        if (error !== null) assert.ok(error instanceof ProtocolDecodeError, `unexpected ${String(error)}`);
      }),
      { numRuns: 20_000 },
    );
    assert.ok(Date.now() - started < 20_000, "fuzz run finished in bounded time");
  });
});
