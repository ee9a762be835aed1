// Builds fast-check arbitraries of valid messages straight from Kafka's JSON specs, so that the
// round-trip property test covers every field of every (API, version) without hand-written cases.

import { join } from "node:path";
import fc from "fast-check";
import type { FieldSpec, MessageSpec, VersionRange } from "../../../../tools/codegen/spec.ts";
import { loadSpecs, parseRange } from "../../../../tools/codegen/spec.ts";

export const SPEC_DIR =
  process.env.SLUICE_KAFKA_PROTOCOL_DIR ?? join(import.meta.dirname, "../../../../../shared/kafka-protocol");

export function loadMessageSpecs(): MessageSpec[] {
  return loadSpecs(join(SPEC_DIR, "messages"));
}

const inRange = (r: VersionRange | null, v: number): boolean => r !== null && v >= r.lo && v <= r.hi;
const camel = (s: string): string => s.charAt(0).toLowerCase() + s.slice(1);

const ZERO16 = new Uint8Array(16);

interface Ctx {
  readonly version: number;
  readonly flexible: boolean;
  readonly common: ReadonlyMap<string, readonly FieldSpec[]>;
}

/** Default value of a field as the decoder produces it when the field is absent. */
function defaultValue(f: FieldSpec, ctx: Ctx): unknown {
  const d = f.default;
  if (d === "null") return null;
  const t = f.type;
  if (t.startsWith("[]")) return [];
  switch (t) {
    case "bool":
      return d === true || d === "true";
    case "int64":
      return d === undefined || d === "" ? 0n : BigInt(String(d));
    case "string":
      return d === undefined ? "" : String(d);
    case "uuid":
      return ZERO16;
    case "bytes":
    case "records":
      return new Uint8Array(0);
    case "int8":
    case "int16":
    case "uint16":
    case "int32":
    case "uint32":
    case "float64": {
      if (d === undefined || d === "") return 0;
      const s = String(d);
      return s.startsWith("0x") ? Number.parseInt(s.slice(2), 16) : Number(s);
    }
    default:
      return structDefault(fieldsOf(f, ctx), ctx);
  }
}

function fieldsOf(f: FieldSpec, ctx: Ctx): readonly FieldSpec[] {
  if (f.fields) return f.fields;
  const base = f.type.startsWith("[]") ? f.type.slice(2) : f.type;
  const c = ctx.common.get(base);
  if (!c) throw new Error(`no struct ${base}`);
  return c;
}

function structDefault(fields: readonly FieldSpec[], ctx: Ctx): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (const f of fields) o[camel(f.name)] = defaultValue(f, ctx);
  return o;
}

function primitive(t: string, compact: boolean): fc.Arbitrary<unknown> {
  switch (t) {
    case "bool":
      return fc.boolean();
    case "int8":
      return fc.integer({ min: -128, max: 127 });
    case "int16":
      return fc.integer({ min: -32768, max: 32767 });
    case "uint16":
      return fc.integer({ min: 0, max: 65535 });
    case "int32":
      return fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 });
    case "uint32":
      return fc.integer({ min: 0, max: 2 ** 32 - 1 });
    case "int64":
      return fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n });
    case "float64":
      return fc.double();
    case "string":
      return fc.string({ unit: "grapheme", maxLength: compact ? 40 : 20 });
    case "uuid":
      return fc.uint8Array({ minLength: 16, maxLength: 16 });
    case "bytes":
    case "records":
      return fc.uint8Array({ maxLength: 32 });
    default:
      throw new Error(`not primitive: ${t}`);
  }
}

function valueArb(f: FieldSpec, t: string, ctx: Ctx, depth: number, top: boolean): fc.Arbitrary<unknown> {
  const compact =
    f.flexibleVersions !== undefined ? inRange(parseRange(f.flexibleVersions), ctx.version) : ctx.flexible;
  let arb: fc.Arbitrary<unknown>;
  if (t.startsWith("[]")) {
    const elem = valueArb(f, t.slice(2), ctx, depth + 1, false);
    arb = fc.array(elem, { maxLength: depth > 2 ? 1 : 3 });
  } else if (/^[A-Z]/.test(t)) {
    arb = structArb(fieldsOf(f, ctx), ctx, depth + 1);
  } else {
    arb = primitive(t, compact);
  }
  if (top && inRange(parseRange(f.nullableVersions), ctx.version)) return fc.option(arb, { nil: null });
  return arb;
}

export function structArb(
  fields: readonly FieldSpec[],
  ctx: Ctx,
  depth: number,
): fc.Arbitrary<Record<string, unknown>> {
  const shape: Record<string, fc.Arbitrary<unknown>> = {};
  for (const f of fields) {
    const name = camel(f.name);
    if (!inRange(parseRange(f.versions ?? f.taggedVersions), ctx.version)) {
      shape[name] = fc.constant(defaultValue(f, ctx));
      continue;
    }
    const tagged = f.tag !== undefined && inRange(parseRange(f.taggedVersions), ctx.version);
    if (tagged && !ctx.flexible) {
      shape[name] = fc.constant(defaultValue(f, ctx));
      continue;
    }
    shape[name] = valueArb(f, f.type, ctx, depth, true);
  }
  return fc.record(shape);
}

/** Arbitrary valid messages of `spec` at `version`. */
export function messageArb(spec: MessageSpec, version: number): fc.Arbitrary<Record<string, unknown>> {
  const common = new Map((spec.commonStructs ?? []).map((c) => [c.name, c.fields]));
  const flexible = inRange(parseRange(spec.flexibleVersions), version);
  return structArb(spec.fields, { version, flexible, common }, 0);
}
