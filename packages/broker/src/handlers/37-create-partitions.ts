// CreatePartitions (key 37), versions 0–3: really adds partitions (their logs are created at
// once). The count may only grow (INVALID_PARTITIONS otherwise). validateOnly checks without
// creating. v2+: flexible.

import type { CreatePartitionsRequest, CreatePartitionsResponse } from "@sluice/protocol";
import { decodeCreatePartitionsRequest, ErrorCode, encodeCreatePartitionsResponse } from "@sluice/protocol";
import { defineHandler } from "./types.ts";

export const createPartitionsHandler = defineHandler<CreatePartitionsRequest, CreatePartitionsResponse>({
  apiKey: 37,
  name: "CreatePartitions",
  minVersion: 0,
  maxVersion: 3,
  decode: (r, v) => decodeCreatePartitionsRequest(r, v),
  encode: (w, res, v) => encodeCreatePartitionsResponse(w, res, v),
  async handle(req, ctx) {
    const results = [];
    for (const t of req.topics) {
      const topic = ctx.broker.topics.get(t.name);
      if (!topic) {
        results.push({
          name: t.name,
          errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
          errorMessage: `topic ${t.name} does not exist`,
        });
        continue;
      }
      const current = topic.partitions.length;
      if (t.count <= current) {
        results.push({
          name: t.name,
          errorCode: ErrorCode.INVALID_PARTITIONS,
          errorMessage: `topic has ${current} partitions; the new count ${t.count} must be larger`,
        });
        continue;
      }
      if (t.assignments?.some((a) => a.brokerIds.some((id) => id !== ctx.broker.nodeId))) {
        results.push({
          name: t.name,
          errorCode: ErrorCode.INVALID_REPLICA_ASSIGNMENT,
          errorMessage: `assignments may only name broker ${ctx.broker.nodeId}`,
        });
        continue;
      }
      if (!req.validateOnly) await ctx.broker.topics.addPartitions(t.name, t.count);
      results.push({ name: t.name, errorCode: ErrorCode.NONE, errorMessage: null });
    }
    return { throttleTimeMs: 0, results };
  },
});
