// DeleteRecords (key 21), versions 0–2: moves each partition's log start offset forward
// (offset -1 means the high watermark). An offset above the high watermark is OFFSET_OUT_OF_RANGE.

import type { DeleteRecordsRequest, DeleteRecordsResponse } from "@sluice/protocol";
import { decodeDeleteRecordsRequest, ErrorCode, encodeDeleteRecordsResponse } from "@sluice/protocol";
import { errorCodeOf } from "../errors.ts";
import { defineHandler } from "./types.ts";

export const deleteRecordsHandler = defineHandler<DeleteRecordsRequest, DeleteRecordsResponse>({
  apiKey: 21,
  name: "DeleteRecords",
  minVersion: 0,
  maxVersion: 2,
  decode: (r, v) => decodeDeleteRecordsRequest(r, v),
  encode: (w, res, v) => encodeDeleteRecordsResponse(w, res, v),
  async handle(req, ctx) {
    const topics = await Promise.all(
      req.topics.map(async (t) => ({
        name: t.name,
        partitions: await Promise.all(
          t.partitions.map(async (q) => {
            const p = ctx.broker.topics.partition(t.name, q.partitionIndex);
            if (!p)
              return {
                partitionIndex: q.partitionIndex,
                lowWatermark: -1n,
                errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
              };
            try {
              const target = q.offset === -1n ? p.log.highWatermark : q.offset;
              const low = await p.log.deleteRecordsBefore(target);
              return { partitionIndex: q.partitionIndex, lowWatermark: low, errorCode: ErrorCode.NONE };
            } catch (e) {
              return { partitionIndex: q.partitionIndex, lowWatermark: -1n, errorCode: errorCodeOf(e) };
            }
          }),
        ),
      })),
    );
    return { throttleTimeMs: 0, topics };
  },
});
