// Loads Apache Kafka's JSON message specs (JSON with `//` comments) into a typed model.

import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

export interface VersionRange {
  readonly lo: number;
  /** Inclusive; Infinity for "N+". */
  readonly hi: number;
}

export interface FieldSpec {
  readonly name: string;
  readonly type: string;
  /** Absent on some tagged fields, which then exist in their taggedVersions. */
  readonly versions?: string;
  readonly nullableVersions?: string;
  readonly default?: string | number | boolean;
  readonly ignorable?: boolean;
  readonly tag?: number;
  readonly taggedVersions?: string;
  readonly flexibleVersions?: string;
  readonly fields?: readonly FieldSpec[];
  readonly about?: string;
}

export interface StructSpec {
  readonly name: string;
  readonly versions: string;
  readonly fields: readonly FieldSpec[];
}

export interface MessageSpec {
  readonly apiKey?: number;
  readonly type: "request" | "response" | "header" | "data";
  readonly name: string;
  readonly validVersions: string;
  readonly flexibleVersions: string;
  readonly deprecatedVersions?: string;
  readonly listeners?: readonly string[];
  readonly fields: readonly FieldSpec[];
  readonly commonStructs?: readonly StructSpec[];
}

/** Removes `//` comments that are outside string literals. */
export function stripComments(text: string): string {
  let out = "";
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      out += c;
      if (c === "\\") {
        out += text[i + 1] ?? "";
        i++;
      } else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') {
      inString = true;
      out += c;
      continue;
    }
    if (c === "/" && text[i + 1] === "/") {
      while (i < text.length && text[i] !== "\n") i++;
      out += "\n";
      continue;
    }
    out += c;
  }
  return out;
}

export function parseRange(s: string | undefined): VersionRange | null {
  if (s === undefined || s === "none") return null;
  const plus = /^(\d+)\+$/.exec(s);
  if (plus) return { lo: Number(plus[1]), hi: Number.POSITIVE_INFINITY };
  const range = /^(\d+)-(\d+)$/.exec(s);
  if (range) return { lo: Number(range[1]), hi: Number(range[2]) };
  if (/^\d+$/.test(s)) return { lo: Number(s), hi: Number(s) };
  throw new Error(`bad version range: ${s}`);
}

export function loadSpecs(dir: string): MessageSpec[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith(".json"))
    .sort()
    .map((f) => {
      const text = readFileSync(join(dir, f), "utf8");
      try {
        return JSON.parse(stripComments(text)) as MessageSpec;
      } catch (e) {
        throw new Error(`cannot parse ${f}: ${(e as Error).message}`);
      }
    });
}
