// Finds the generated request/response codecs of an API key at run time (for tests that handle
// frames of any API).

import { kebab } from "../../../../tools/codegen/naming.ts";
import { API_SPECS_BY_KEY } from "../../src/generated/api-keys.ts";
import type { Reader, Writer } from "../../src/primitives.ts";

export interface RequestCodec {
  readonly name: string;
  readonly decode: (r: Reader, version: number) => unknown;
  readonly encode: (w: Writer, v: unknown, version: number) => void;
}

export async function requestCodec(apiKey: number): Promise<RequestCodec> {
  const spec = API_SPECS_BY_KEY.get(apiKey);
  if (!spec) throw new Error(`unknown api key ${apiKey}`);
  const mod = (await import(`../../src/generated/${kebab(spec.name)}.ts`)) as Record<string, unknown>;
  return {
    name: spec.name,
    decode: mod[`decode${spec.name}Request`] as RequestCodec["decode"],
    encode: mod[`encode${spec.name}Request`] as RequestCodec["encode"],
  };
}
