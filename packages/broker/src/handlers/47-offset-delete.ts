// OffsetDelete (key 47), version 0: deletes committed offsets of a group for partitions it is not
// consuming (GROUP_SUBSCRIBED_TO_TOPIC otherwise; GROUP_ID_NOT_FOUND for unknown groups).

import type { OffsetDeleteRequest, OffsetDeleteResponse } from "@sluice/protocol";
import { decodeOffsetDeleteRequest, ErrorCode, encodeOffsetDeleteResponse } from "@sluice/protocol";
import { groups } from "../group/handlers.ts";
import { defineHandler } from "./types.ts";

export const offsetDeleteHandler = defineHandler<OffsetDeleteRequest, OffsetDeleteResponse>({
  apiKey: 47,
  name: "OffsetDelete",
  minVersion: 0,
  maxVersion: 0,
  decode: (r, v) => decodeOffsetDeleteRequest(r, v),
  encode: (w, res, v) => encodeOffsetDeleteResponse(w, res, v),
  async handle(req, ctx) {
    const parts = req.topics.flatMap((t) => t.partitions.map((p) => ({ topic: t.name, partition: p.partitionIndex })));
    const r = await groups(ctx.broker).deleteOffsets(req.groupId, parts);
    if (r.errorCode !== ErrorCode.NONE) return { errorCode: r.errorCode, throttleTimeMs: 0, topics: [] };
    let i = 0;
    return {
      errorCode: ErrorCode.NONE,
      throttleTimeMs: 0,
      topics: req.topics.map((t) => ({
        name: t.name,
        partitions: t.partitions.map((p) => ({ partitionIndex: p.partitionIndex, errorCode: r.codes[i++]! })),
      })),
    };
  },
});
