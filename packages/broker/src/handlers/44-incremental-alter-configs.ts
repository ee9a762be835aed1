// IncrementalAlterConfigs (key 44), versions 0–1: SET (0), DELETE (1), APPEND (2) and
// SUBTRACT (3) on individual configs of a topic or of the broker; list configs only for
// APPEND/SUBTRACT. v1+: flexible.

import type { IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse } from "@sluice/protocol";
import { decodeIncrementalAlterConfigsRequest, encodeIncrementalAlterConfigsResponse } from "@sluice/protocol";
import { CONFIG_DEFS, TOPIC_CONFIGS } from "../config.ts";
import { ResourceType } from "./32-describe-configs.ts";
import { applyConfigs } from "./33-alter-configs.ts";
import { defineHandler } from "./types.ts";

export const incrementalAlterConfigsHandler = defineHandler<
  IncrementalAlterConfigsRequest,
  IncrementalAlterConfigsResponse
>({
  apiKey: 44,
  name: "IncrementalAlterConfigs",
  minVersion: 0,
  maxVersion: 1,
  decode: (r, v) => decodeIncrementalAlterConfigsRequest(r, v),
  encode: (w, res, v) => encodeIncrementalAlterConfigsResponse(w, res, v),
  async handle(req, ctx) {
    const responses = [];
    for (const res of req.resources) {
      const r = await applyConfigs(
        ctx.broker,
        res.resourceType,
        res.resourceName,
        (current) => {
          for (const c of res.configs) {
            const def = res.resourceType === ResourceType.TOPIC ? TOPIC_CONFIGS.get(c.name) : CONFIG_DEFS.get(c.name);
            const currentList = (current[c.name] ?? (def ? (ctx.broker.config.get(def.name) ?? "") : ""))
              .split(",")
              .filter(Boolean);
            switch (c.configOperation) {
              case 0:
                if (c.value === null) return `${c.name}: SET needs a value`;
                current[c.name] = c.value;
                break;
              case 1:
                delete current[c.name];
                break;
              case 2:
              case 3: {
                if (def?.type !== "list") return `${c.name} is not a list config`;
                const items = (c.value ?? "").split(",").filter(Boolean);
                const next =
                  c.configOperation === 2
                    ? [...currentList, ...items.filter((i) => !currentList.includes(i))]
                    : currentList.filter((i) => !items.includes(i));
                current[c.name] = next.join(",");
                break;
              }
              default:
                return `unknown operation ${c.configOperation}`;
            }
          }
          return current;
        },
        req.validateOnly,
      );
      responses.push({ ...r, resourceType: res.resourceType, resourceName: res.resourceName });
    }
    return { throttleTimeMs: 0, responses };
  },
});
