// Property test: for every (API, version) the specs define, random valid messages generated from
// the schema survive encode → decode unchanged, and re-encoding the decoded message gives the
// same bytes.

import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, test } from "node:test";
import fc from "fast-check";
import { kebab } from "../../../tools/codegen/naming.ts";
import { loadSpecs, parseRange } from "../../../tools/codegen/spec.ts";
import { Reader, Writer } from "../src/primitives.ts";
import { loadMessageSpecs, messageArb, SPEC_DIR } from "./helpers/schema-arbitrary.ts";

type Encode = (w: Writer, v: unknown, version: number) => void;
type Decode = (r: Reader, version: number) => unknown;

const specs = loadMessageSpecs();
const byName = new Map(specs.map((s) => [s.name, s]));
const RUNS = Number(process.env.ROUNDTRIP_RUNS ?? 50);

/** Plain objects and plain Uint8Arrays, so that prototypes (Buffer, null-prototype records) don't matter. */
function normalize(v: unknown): unknown {
  if (v instanceof Uint8Array) return new Uint8Array(v);
  if (Array.isArray(v)) return v.map(normalize);
  if (v !== null && typeof v === "object") {
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) o[k] = normalize(x);
    return o;
  }
  return v;
}

function roundTrip(encode: Encode, decode: Decode, msg: unknown, version: number): void {
  const w = new Writer();
  encode(w, msg, version);
  const bytes = w.toBuffer();
  const r = new Reader(bytes);
  const decoded = decode(r, version);
  assert.equal(r.remaining, 0, "decoder must consume every byte");
  assert.deepStrictEqual(normalize(decoded), normalize(msg));
  const w2 = new Writer();
  encode(w2, decoded, version);
  assert.deepStrictEqual(w2.toBuffer(), bytes);
}

describe("every API and version round-trips", () => {
  for (const req of specs) {
    if (req.type !== "request" || !(req.listeners ?? []).includes("broker")) continue;
    const api = req.name.replace(/Request$/, "");
    const res = byName.get(`${api}Response`)!;
    test(`${api} (key ${req.apiKey})`, async () => {
      const mod = (await import(`../src/generated/${kebab(api)}.ts`)) as Record<string, unknown>;
      for (const spec of [req, res]) {
        const range = parseRange(spec.validVersions)!;
        const encode = mod[`encode${spec.name}`] as Encode;
        const decode = mod[`decode${spec.name}`] as Decode;
        for (let v = range.lo; v <= range.hi; v++) {
          fc.assert(
            fc.property(messageArb(spec, v), (msg) => roundTrip(encode, decode, msg, v)),
            { numRuns: RUNS },
          );
        }
      }
    });
  }
});

describe("headers and coordinator records round-trip", () => {
  test("RequestHeader v0-v2 and ResponseHeader v0-v1", async () => {
    const mod = (await import("../src/generated/headers.ts")) as Record<string, unknown>;
    for (const name of ["RequestHeader", "ResponseHeader"]) {
      const spec = byName.get(name)!;
      const range = parseRange(spec.validVersions)!;
      for (let v = range.lo; v <= range.hi; v++) {
        fc.assert(
          fc.property(messageArb(spec, v), (msg) =>
            roundTrip(mod[`encode${name}`] as Encode, mod[`decode${name}`] as Decode, msg, v),
          ),
          { numRuns: RUNS },
        );
      }
    }
  });
});

describe("coordinator records round-trip", () => {
  for (const spec of loadSpecs(join(SPEC_DIR, "coordinator-records"))) {
    test(spec.name, async () => {
      const mod = (await import(`../src/generated/coordinator/${kebab(spec.name)}.ts`)) as Record<string, unknown>;
      const range = parseRange(spec.validVersions)!;
      for (let v = range.lo; v <= range.hi; v++) {
        fc.assert(
          fc.property(messageArb(spec, v), (msg) =>
            roundTrip(mod[`encode${spec.name}`] as Encode, mod[`decode${spec.name}`] as Decode, msg, v),
          ),
          { numRuns: RUNS },
        );
      }
    });
  }
});
