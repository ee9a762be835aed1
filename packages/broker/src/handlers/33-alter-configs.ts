// AlterConfigs (key 33), versions 0–2: replaces a topic's whole set of overrides (configs left
// out return to their defaults), or sets dynamic broker configs. validateOnly checks only.
// IncrementalAlterConfigs (key 44, versions 0–1) is in 44-incremental-alter-configs.ts and shares
// the validation and application below.

import type { AlterConfigsRequest, AlterConfigsResponse } from "@sluice/protocol";
import { decodeAlterConfigsRequest, ErrorCode, encodeAlterConfigsResponse } from "@sluice/protocol";
import { CONFIG_DEFS, validateValue } from "../config.ts";
import type { BrokerContext } from "../context.ts";
import { validateTopicConfigs } from "../topics.ts";
import { ResourceType } from "./32-describe-configs.ts";
import { defineHandler } from "./types.ts";

export interface AlterResult {
  errorCode: number;
  errorMessage: string | null;
}

/** Validates and (unless validateOnly) applies a new full set of configs for one resource. */
export async function applyConfigs(
  b: BrokerContext,
  resourceType: number,
  resourceName: string,
  compute: (current: Record<string, string>) => Record<string, string> | string,
  validateOnly: boolean,
): Promise<AlterResult> {
  if (resourceType === ResourceType.TOPIC) {
    const t = b.topics.get(resourceName);
    if (!t)
      return { errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, errorMessage: `topic ${resourceName} does not exist` };
    const next = compute({ ...t.record.configs });
    if (typeof next === "string") return { errorCode: ErrorCode.INVALID_CONFIG, errorMessage: next };
    const bad = validateTopicConfigs(next);
    if (bad) return { errorCode: ErrorCode.INVALID_CONFIG, errorMessage: bad.message };
    if (!validateOnly) await b.topics.setConfigs(resourceName, next);
    return { errorCode: ErrorCode.NONE, errorMessage: null };
  }
  if (resourceType === ResourceType.BROKER) {
    if (resourceName !== "" && resourceName !== String(b.nodeId))
      return { errorCode: ErrorCode.INVALID_REQUEST, errorMessage: `unknown broker ${resourceName}` };
    const next = compute(Object.fromEntries(b.config.dynamic));
    if (typeof next === "string") return { errorCode: ErrorCode.INVALID_CONFIG, errorMessage: next };
    for (const [k, v] of Object.entries(next)) {
      const def = CONFIG_DEFS.get(k);
      if (!def) return { errorCode: ErrorCode.INVALID_CONFIG, errorMessage: `unknown broker config ${k}` };
      if (def.readOnly)
        return { errorCode: ErrorCode.INVALID_CONFIG, errorMessage: `${k} cannot be changed at run time` };
      const err = validateValue(def, v);
      if (err) return { errorCode: ErrorCode.INVALID_CONFIG, errorMessage: `${k}=${v} ${err}` };
    }
    if (!validateOnly) {
      b.config.dynamic.clear();
      for (const [k, v] of Object.entries(next)) b.config.dynamic.set(k, v);
      // Topic logs take their defaults from broker configs.
      for (const t of b.topics.list()) await b.topics.setConfigs(t.record.name, t.record.configs);
    }
    return { errorCode: ErrorCode.NONE, errorMessage: null };
  }
  return { errorCode: ErrorCode.INVALID_REQUEST, errorMessage: `unsupported resource type ${resourceType}` };
}

export const alterConfigsHandler = defineHandler<AlterConfigsRequest, AlterConfigsResponse>({
  apiKey: 33,
  name: "AlterConfigs",
  minVersion: 0,
  maxVersion: 2,
  decode: (r, v) => decodeAlterConfigsRequest(r, v),
  encode: (w, res, v) => encodeAlterConfigsResponse(w, res, v),
  async handle(req, ctx) {
    const responses = [];
    for (const res of req.resources) {
      const r = await applyConfigs(
        ctx.broker,
        res.resourceType,
        res.resourceName,
        () => {
          const next: Record<string, string> = {};
          for (const c of res.configs) if (c.value !== null) next[c.name] = c.value;
          return next;
        },
        req.validateOnly,
      );
      responses.push({ ...r, resourceType: res.resourceType, resourceName: res.resourceName });
    }
    return { throttleTimeMs: 0, responses };
  },
});
