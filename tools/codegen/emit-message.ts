// Emits TypeScript for one message spec: an interface per struct, and version-parametric
// write/read functions that follow Kafka's serialization rules (see ../shared/kafka-protocol/README.md).
//
// Every struct function takes the message version; which fields exist, which are nullable, which
// are tagged and whether compact encodings are used are decided per version exactly as the spec says.

import type { FieldSpec, MessageSpec, VersionRange } from "./spec.ts";
import { parseRange } from "./spec.ts";

const PRIMITIVES = new Set([
  "bool",
  "int8",
  "int16",
  "uint16",
  "int32",
  "uint32",
  "int64",
  "float64",
  "string",
  "uuid",
  "bytes",
  "records",
]);

type TypeRef =
  | { readonly kind: "prim"; readonly prim: string }
  | { readonly kind: "array"; readonly elem: TypeRef }
  | { readonly kind: "struct"; readonly name: string };

interface Field {
  readonly spec: FieldSpec;
  readonly tsName: string;
  readonly type: TypeRef;
  readonly versions: VersionRange;
  readonly nullable: VersionRange | null;
  readonly tagged: VersionRange | null;
  readonly tag: number | undefined;
  /** Overrides the message's flexible versions for this field (RequestHeader.ClientId). */
  readonly flexibleOverride: VersionRange | null | undefined;
}

interface Struct {
  readonly tsName: string;
  readonly fields: Field[];
}

export interface EmittedMessage {
  readonly code: string;
  readonly typeName: string;
  readonly structNames: string[];
}

export function camel(name: string): string {
  return name.charAt(0).toLowerCase() + name.slice(1);
}

export class MessageEmitter {
  private readonly spec: MessageSpec;
  private readonly valid: VersionRange;
  private readonly flexible: VersionRange | null;
  private readonly structs: Struct[] = [];
  private readonly renames: ReadonlyMap<string, string>;
  private readonly commonNames = new Set<string>();

  /** `renames` maps spec struct names to TS names (to avoid collisions between request and response). */
  constructor(spec: MessageSpec, renames: ReadonlyMap<string, string>) {
    this.spec = spec;
    const valid = parseRange(spec.validVersions);
    if (!valid) throw new Error(`${spec.name}: no valid versions`);
    this.valid = valid;
    this.flexible = parseRange(spec.flexibleVersions);
    this.renames = renames;
    for (const c of spec.commonStructs ?? []) this.commonNames.add(c.name);
  }

  /** Every struct name this message defines (top level first). */
  structSpecNames(): string[] {
    const names: string[] = [this.spec.name];
    const walk = (fields: readonly FieldSpec[]): void => {
      for (const f of fields) {
        if (f.fields) {
          names.push(baseType(f.type));
          walk(f.fields);
        }
      }
    };
    walk(this.spec.fields);
    for (const c of this.spec.commonStructs ?? []) {
      names.push(c.name);
      walk(c.fields);
    }
    return names;
  }

  private tsStructName(specName: string): string {
    return this.renames.get(specName) ?? specName;
  }

  emit(): EmittedMessage {
    this.collect(this.spec.name, this.spec.fields);
    for (const c of this.spec.commonStructs ?? []) this.collect(c.name, c.fields);
    const out: string[] = [];
    for (const s of this.structs) out.push(this.emitInterface(s));
    for (const s of this.structs) out.push(this.emitDefault(s));
    for (const s of this.structs) out.push(this.emitIsDefault(s));
    for (const s of this.structs) out.push(this.emitWrite(s));
    for (const s of this.structs) out.push(this.emitRead(s));
    return {
      code: out.join("\n"),
      typeName: this.tsStructName(this.spec.name),
      structNames: this.structs.map((s) => s.tsName),
    };
  }

  private collect(specName: string, fields: readonly FieldSpec[]): void {
    const tsName = this.tsStructName(specName);
    if (this.structs.some((s) => s.tsName === tsName)) return;
    const struct: Struct = { tsName, fields: [] };
    this.structs.push(struct);
    for (const f of fields) {
      // A tagged field may omit "versions": it then exists in its tagged versions.
      const versions = parseRange(f.versions ?? f.taggedVersions);
      if (!versions) continue;
      struct.fields.push({
        spec: f,
        tsName: camel(f.name),
        type: this.typeRef(f.type),
        versions,
        nullable: parseRange(f.nullableVersions),
        tagged: parseRange(f.taggedVersions),
        tag: f.tag,
        flexibleOverride: f.flexibleVersions === undefined ? undefined : parseRange(f.flexibleVersions),
      });
      if (f.fields) this.collect(baseType(f.type), f.fields);
    }
  }

  private typeRef(t: string): TypeRef {
    if (t.startsWith("[]")) return { kind: "array", elem: this.typeRef(t.slice(2)) };
    if (PRIMITIVES.has(t)) return { kind: "prim", prim: t };
    return { kind: "struct", name: this.tsStructName(t) };
  }

  // ---- version conditions -------------------------------------------------------------------

  /** A JS condition that is true when `version` lies in `r` (simplified against validVersions). */
  private cond(r: VersionRange | null): string {
    if (r === null) return "false";
    const lo = r.lo <= this.valid.lo ? null : r.lo;
    const hi = r.hi >= this.valid.hi ? null : r.hi;
    if (r.lo > this.valid.hi || r.hi < this.valid.lo) return "false";
    if (lo === null && hi === null) return "true";
    if (lo !== null && hi !== null) return lo === hi ? `version === ${lo}` : `version >= ${lo} && version <= ${hi}`;
    if (lo !== null) return `version >= ${lo}`;
    return `version <= ${hi}`;
  }

  private compactExpr(f: Field): string {
    if (f.flexibleOverride !== undefined) return this.cond(f.flexibleOverride);
    return "flexible";
  }

  // ---- types and defaults ---------------------------------------------------------------------

  private tsType(t: TypeRef): string {
    switch (t.kind) {
      case "array":
        return `${this.tsType(t.elem)}[]`;
      case "struct":
        return t.name;
      case "prim":
        switch (t.prim) {
          case "bool":
            return "boolean";
          case "int64":
            return "bigint";
          case "string":
            return "string";
          case "records":
            return "Records";
          case "uuid":
          case "bytes":
            return "Uint8Array";
          default:
            return "number";
        }
    }
  }

  private fieldTsType(f: Field): string {
    const base = this.tsType(f.type);
    return f.nullable ? `${base} | null` : base;
  }

  private defaultExpr(f: Field): string {
    const d = f.spec.default;
    if (d === "null") return "null";
    const t = f.type;
    if (t.kind === "array") return "[]";
    if (t.kind === "struct") return `default${t.name}()`;
    switch (t.prim) {
      case "bool":
        return d === true || d === "true" ? "true" : "false";
      case "int64":
        return `${d === undefined || d === "" ? 0 : BigInt(String(d))}n`;
      case "float64":
        return d === undefined || d === "" ? "0" : String(Number(d));
      case "string":
        return JSON.stringify(d === undefined ? "" : String(d));
      case "uuid":
        return "ZERO_UUID";
      case "bytes":
      case "records":
        return "EMPTY_BYTES";
      default: {
        if (d === undefined || d === "") return "0";
        const s = String(d);
        return String(s.startsWith("0x") ? Number.parseInt(s.slice(2), 16) : Number(s));
      }
    }
  }

  // ---- emitters -------------------------------------------------------------------------------

  private emitInterface(s: Struct): string {
    const lines = [`export interface ${s.tsName} {`];
    for (const f of s.fields) {
      const about = f.spec.about
        ? ` /** ${f.spec.about.replace(/\*\//g, "* /")} (versions ${f.spec.versions}) */\n `
        : "";
      lines.push(` ${about} ${f.tsName}: ${this.fieldTsType(f)};`);
    }
    lines.push("  /** Tagged fields this version of Sluice does not know; re-encoded unchanged. */");
    lines.push("  _unknownTaggedFields?: TaggedField[];");
    lines.push("}");
    return `${lines.join("\n")}\n`;
  }

  private emitDefault(s: Struct): string {
    const body = s.fields.map((f) => `    ${f.tsName}: ${this.defaultExpr(f)},`).join("\n");
    return `export function default${s.tsName}(): ${s.tsName} {\n  return {\n${body}\n  };\n}\n`;
  }

  /** Whether every field of a (possibly partial) struct value equals its default: tagged structs are only written when not. */
  private emitIsDefault(s: Struct): string {
    const checks = s.fields.map((f) => {
      const x = `v.${f.tsName}`;
      return `(${x} === undefined || !(${this.notDefault(f, x)}))`;
    });
    const body = checks.length === 0 ? "true" : checks.join(" &&\n    ");
    return `export function isDefault${s.tsName}(v: Input<${s.tsName}>): boolean {\n  return ${body};\n}\n`;
  }

  private flexibleDecl(): string {
    return `const flexible = ${this.cond(this.flexible)};`;
  }

  private emitWrite(s: Struct): string {
    const lines: string[] = [];
    lines.push(`export function write${s.tsName}(w: Writer, v: Input<${s.tsName}>, version: number): void {`);
    lines.push(`  ${this.flexibleDecl()}`);
    for (const f of s.fields) {
      const inVersion = this.cond(f.versions);
      if (inVersion === "false") continue;
      const taggedCond = f.tagged ? `(flexible && ${this.cond(f.tagged)})` : "false";
      const guard = taggedCond === "false" ? inVersion : `${inVersion} && !${taggedCond}`;
      const valueExpr = `(v.${f.tsName} === undefined ? ${this.defaultExpr(f)} : v.${f.tsName})`;
      const body = this.writeValue(f, f.type, valueExpr, "w", this.compactExpr(f), 0);
      if (guard === "true") lines.push(`  ${body}`);
      else lines.push(`  if (${guard}) {\n    ${body}\n  }`);
    }
    const taggedFields = s.fields.filter((f) => f.tagged !== null && this.cond(f.tagged) !== "false");
    lines.push("  if (flexible) {");
    if (taggedFields.length === 0) {
      lines.push("    if (v._unknownTaggedFields === undefined) w.writeUVarint(0);");
      lines.push("    else w.writeTaggedFields(sortTaggedFields([...v._unknownTaggedFields]));");
    } else {
      lines.push("    const tagged: TaggedField[] = v._unknownTaggedFields ? [...v._unknownTaggedFields] : [];");
      for (const f of taggedFields) {
        const valueExpr = `(v.${f.tsName} === undefined ? ${this.defaultExpr(f)} : v.${f.tsName})`;
        lines.push(`    if (${this.cond(f.tagged)}) {`);
        lines.push(`      const x = ${valueExpr};`);
        lines.push(`      if (${this.notDefault(f, "x")}) {`);
        lines.push("        const tw = new Writer();");
        lines.push(`        ${this.writeValue(f, f.type, "x", "tw", "true", 0)}`);
        lines.push(`        tagged.push({ tag: ${f.tag}, data: tw.toBuffer() });`);
        lines.push("      }");
        lines.push("    }");
      }
      lines.push("    w.writeTaggedFields(sortTaggedFields(tagged));");
    }
    lines.push("  }");
    lines.push("}");
    return `${lines.join("\n")}\n`;
  }

  /** A condition true when a tagged value differs from its default (only then is it written). */
  private notDefault(f: Field, x: string): string {
    const d = this.defaultExpr(f);
    if (d === "null") return `${x} !== null`;
    const t = f.type;
    if (t.kind === "array") return `${x} === null || ${x}.length !== 0`;
    if (t.kind === "struct") return `${f.nullable ? `${x} === null || ` : ""}!isDefault${t.name}(${x})`;
    if (t.prim === "uuid") return `!uuidEquals(${x}, ZERO_UUID)`;
    if (t.prim === "bytes" || t.prim === "records") return `${x} === null || ${x}.byteLength !== 0`;
    return `${x} !== ${d}`;
  }

  private nullCheck(f: Field, x: string): string {
    if (!f.nullable) return `if (${x} === null) throw new EncodeError("${f.tsName} is not nullable");`;
    const c = this.cond(f.nullable);
    if (c === "true") return "";
    return `if (${x} === null && !(${c})) throw new EncodeError(\`${f.tsName} is not nullable in v\${version}\`);`;
  }

  private writeValue(f: Field, t: TypeRef, x: string, w: string, compact: string, depth: number): string {
    const top = depth === 0;
    switch (t.kind) {
      case "struct": {
        const nullableStruct = top && f.nullable !== null;
        if (nullableStruct) {
          return `{ const s = ${x}; ${this.nullCheck(f, "s")} if (s === null) ${w}.writeInt8(-1); else { ${w}.writeInt8(1); write${t.name}(${w}, s, version); } }`;
        }
        return `write${t.name}(${w}, ${x}, version);`;
      }
      case "array": {
        const a = `a${depth}`;
        const e = `e${depth}`;
        const nullPart = top ? this.nullCheck(f, a) : "";
        return `{ const ${a} = ${x}; ${nullPart} if (${a} === null) ${w}.writeArrayLength(null, ${compact}); else { ${w}.writeArrayLength(${a}.length, ${compact}); for (const ${e} of ${a}) { ${this.writeValue(f, t.elem, e, w, compact, depth + 1)} } } }`;
      }
      case "prim":
        switch (t.prim) {
          case "bool":
            return `${w}.writeBool(${x});`;
          case "int8":
            return `${w}.writeInt8(${x});`;
          case "int16":
            return `${w}.writeInt16(${x});`;
          case "uint16":
            return `${w}.writeUint16(${x});`;
          case "int32":
            return `${w}.writeInt32(${x});`;
          case "uint32":
            return `${w}.writeUint32(${x});`;
          case "int64":
            return `${w}.writeInt64(${x});`;
          case "float64":
            return `${w}.writeFloat64(${x});`;
          case "uuid":
            return `${w}.writeUuid(${x});`;
          case "string":
          case "bytes":
          case "records": {
            const method = t.prim === "string" ? "writeString" : t.prim === "records" ? "writeRecords" : "writeBytes";
            if (top && f.nullable) {
              return `{ const s = ${x}; ${this.nullCheck(f, "s")} ${w}.${method}(s, ${compact}); }`;
            }
            return `${w}.${method}(${x}, ${compact});`;
          }
        }
    }
    throw new Error(`unknown type ${JSON.stringify(t)}`);
  }

  private emitRead(s: Struct): string {
    const lines: string[] = [];
    lines.push(`export function read${s.tsName}(r: Reader, version: number): ${s.tsName} {`);
    lines.push(`  ${this.flexibleDecl()}`);
    for (const f of s.fields) {
      lines.push(`  let ${f.tsName}: ${this.fieldTsType(f)} = ${this.defaultExpr(f)};`);
    }
    for (const f of s.fields) {
      const inVersion = this.cond(f.versions);
      if (inVersion === "false") continue;
      const taggedCond = f.tagged ? `(flexible && ${this.cond(f.tagged)})` : "false";
      const guard = taggedCond === "false" ? inVersion : `${inVersion} && !${taggedCond}`;
      const body = this.readValue(s, f, f.type, f.tsName, "r", this.compactExpr(f), 0);
      if (guard === "true") lines.push(`  ${body}`);
      else lines.push(`  if (${guard}) {\n    ${body}\n  }`);
    }
    lines.push("  let unknown: TaggedField[] | undefined;");
    const taggedFields = s.fields.filter((f) => f.tagged !== null && this.cond(f.tagged) !== "false");
    if (taggedFields.length === 0) {
      lines.push(`  if (flexible) unknown = r.readTaggedFields("${s.tsName}", () => false);`);
    } else {
      lines.push("  if (flexible) {");
      lines.push(`    unknown = r.readTaggedFields("${s.tsName}", (tag, tr) => {`);
      lines.push("      switch (tag) {");
      for (const f of taggedFields) {
        lines.push(`        case ${f.tag}:`);
        lines.push(`          if (!(${this.cond(f.tagged)})) return false;`);
        lines.push(`          ${this.readValue(s, f, f.type, f.tsName, "tr", "true", 0)}`);
        lines.push("          return true;");
      }
      lines.push("        default:");
      lines.push("          return false;");
      lines.push("      }");
      lines.push("    });");
      lines.push("  }");
    }
    const names = s.fields.map((f) => f.tsName).join(", ");
    lines.push(`  const o: ${s.tsName} = { ${names} };`);
    lines.push("  if (unknown !== undefined) o._unknownTaggedFields = unknown;");
    lines.push("  return o;");
    lines.push("}");
    return `${lines.join("\n")}\n`;
  }

  private nullableExpr(f: Field): string {
    return f.nullable ? this.cond(f.nullable) : "false";
  }

  private minBytes(t: TypeRef): number {
    if (t.kind !== "prim") return 1;
    switch (t.prim) {
      case "int16":
      case "uint16":
        return 2;
      case "int32":
      case "uint32":
        return 4;
      case "int64":
      case "float64":
        return 8;
      case "uuid":
        return 16;
      default:
        return 1;
    }
  }

  private readValue(
    s: Struct,
    f: Field,
    t: TypeRef,
    target: string,
    r: string,
    compact: string,
    depth: number,
  ): string {
    const top = depth === 0;
    const path = `${s.tsName}.${f.tsName}`;
    switch (t.kind) {
      case "struct":
        if (top && f.nullable) {
          return `{ const marker = ${r}.readInt8("${path}"); if (marker < 0) { if (!(${this.nullableExpr(f)})) throw new DecodeError("${path}", "null for a non-nullable struct"); ${target} = null; } else ${target} = read${t.name}(${r}, version); }`;
        }
        return `${target} = read${t.name}(${r}, version);`;
      case "array": {
        const n = `n${depth}`;
        const arr = `arr${depth}`;
        const i = `i${depth}`;
        const el = `el${depth}`;
        const nullable = top ? this.nullableExpr(f) : "false";
        const elemType = this.tsType(t.elem);
        const nullAssign = top && f.nullable ? `${target} = null;` : `throw new DecodeError("${path}", "null array");`;
        return `{ const ${n} = ${r}.readArrayLength("${path}", ${compact}, ${nullable}, ${this.minBytes(t.elem)}); if (${n} < 0) { ${nullAssign} } else { const ${arr}: ${elemType}[] = new Array(${n}); for (let ${i} = 0; ${i} < ${n}; ${i}++) { let ${el}: ${elemType}; ${this.readValue(s, f, t.elem, el, r, compact, depth + 1)} ${arr}[${i}] = ${el}; } ${target} = ${arr}; } }`;
      }
      case "prim": {
        const nullable = top ? this.nullableExpr(f) : "false";
        const cast = top && f.nullable ? "" : ` as ${this.tsType(t)}`;
        switch (t.prim) {
          case "bool":
            return `${target} = ${r}.readBool("${path}");`;
          case "int8":
            return `${target} = ${r}.readInt8("${path}");`;
          case "int16":
            return `${target} = ${r}.readInt16("${path}");`;
          case "uint16":
            return `${target} = ${r}.readUint16("${path}");`;
          case "int32":
            return `${target} = ${r}.readInt32("${path}");`;
          case "uint32":
            return `${target} = ${r}.readUint32("${path}");`;
          case "int64":
            return `${target} = ${r}.readInt64("${path}");`;
          case "float64":
            return `${target} = ${r}.readFloat64("${path}");`;
          case "uuid":
            return `${target} = ${r}.readUuid("${path}");`;
          case "string":
            return `${target} = ${r}.readString("${path}", ${compact}, ${nullable})${cast};`;
          case "bytes":
          case "records":
            return `${target} = ${r}.readBytes("${path}", ${compact}, ${nullable})${cast};`;
        }
      }
    }
    throw new Error(`unknown type ${JSON.stringify(t)}`);
  }
}

export function baseType(t: string): string {
  return t.startsWith("[]") ? t.slice(2) : t;
}
