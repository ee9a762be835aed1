// ListOffsets (key 2), versions 0–10.
// Timestamps: -2 earliest, -1 latest (the high watermark, or the last stable offset under
// read_committed, v2+), -3 max timestamp (v7+), otherwise the first offset whose record timestamp
// is ≥ the given one. v0 answers with `oldStyleOffsets` (at most maxNumOffsets); v1+ with one
// offset and its timestamp. v4+: leader epoch of the offset, currentLeaderEpoch checks.
// v10+: timeoutMs (for remote storage lookups; every lookup here is local).

import type { Input, ListOffsetsRequest, ListOffsetsResponse } from "@sluice/protocol";
import { decodeListOffsetsRequest, ErrorCode, encodeListOffsetsResponse } from "@sluice/protocol";
import type { ListOffsetsPartitionResponse } from "@sluice/protocol/generated/list-offsets.ts";
import { errorCodeOf } from "../errors.ts";
import { defineHandler } from "./types.ts";

const EARLIEST = -2n;
const LATEST = -1n;
const MAX_TIMESTAMP = -3n;

export const listOffsetsHandler = defineHandler<ListOffsetsRequest, ListOffsetsResponse>({
  apiKey: 2,
  name: "ListOffsets",
  minVersion: 0,
  maxVersion: 10,
  decode: (r, v) => decodeListOffsetsRequest(r, v),
  encode: (w, res, v) => encodeListOffsetsResponse(w, res, v),
  async handle(req, ctx) {
    const v = ctx.apiVersion;
    const topics = await Promise.all(
      req.topics.map(async (t) => ({
        name: t.name,
        partitions: await Promise.all(
          t.partitions.map(async (q): Promise<Input<ListOffsetsPartitionResponse>> => {
            const none = {
              partitionIndex: q.partitionIndex,
              timestamp: -1n,
              offset: -1n,
              leaderEpoch: -1,
              oldStyleOffsets: [],
            };
            const p = ctx.broker.topics.partition(t.name, q.partitionIndex);
            if (!p) return { ...none, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION };
            if (q.currentLeaderEpoch >= 0 && q.currentLeaderEpoch !== p.leaderEpoch) {
              return {
                ...none,
                errorCode:
                  q.currentLeaderEpoch < p.leaderEpoch ? ErrorCode.FENCED_LEADER_EPOCH : ErrorCode.UNKNOWN_LEADER_EPOCH,
              };
            }
            try {
              let offset: bigint;
              let timestamp = -1n;
              let leaderEpoch = p.leaderEpoch;
              if (q.timestamp === EARLIEST) offset = p.log.logStartOffset;
              else if (q.timestamp === LATEST) {
                const hw = p.log.highWatermark;
                offset = req.isolationLevel === 1 && v >= 2 ? p.producers.lastStableOffset(hw) : hw;
              } else {
                const found = await p.log.offsetForTimestamp(
                  q.timestamp === MAX_TIMESTAMP ? "maxTimestamp" : q.timestamp,
                );
                if (found === null) return { ...none, errorCode: ErrorCode.NONE };
                offset = found.offset;
                timestamp = found.timestamp;
                leaderEpoch = found.leaderEpoch;
              }
              if (v === 0) {
                return { ...none, errorCode: ErrorCode.NONE, oldStyleOffsets: q.maxNumOffsets > 0 ? [offset] : [] };
              }
              return { partitionIndex: q.partitionIndex, errorCode: ErrorCode.NONE, timestamp, offset, leaderEpoch };
            } catch (e) {
              return { ...none, errorCode: errorCodeOf(e) };
            }
          }),
        ),
      })),
    );
    return { throttleTimeMs: 0, topics };
  },
});
