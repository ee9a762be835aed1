// OffsetForLeaderEpoch (key 23), versions 0–4: for each partition, the end offset of the
// requested leader epoch (the start of the next epoch, or the log end for the current one) from
// the leader-epoch checkpoint. v1+: the epoch found. v2+: currentLeaderEpoch fencing. v3+:
// replicaId (-1 for consumers: answered up to the high watermark... here the log end, which equals
// it on a single node).

import type { OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse } from "@sluice/protocol";
import { decodeOffsetForLeaderEpochRequest, ErrorCode, encodeOffsetForLeaderEpochResponse } from "@sluice/protocol";
import { defineHandler } from "./types.ts";

export const offsetForLeaderEpochHandler = defineHandler<OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse>({
  apiKey: 23,
  name: "OffsetForLeaderEpoch",
  minVersion: 0,
  maxVersion: 4,
  decode: (r, v) => decodeOffsetForLeaderEpochRequest(r, v),
  encode: (w, res, v) => encodeOffsetForLeaderEpochResponse(w, res, v),
  handle(req, ctx) {
    const topics = req.topics.map((t) => ({
      topic: t.topic,
      partitions: t.partitions.map((q) => {
        const p = ctx.broker.topics.partition(t.topic, q.partition);
        if (!p)
          return {
            partition: q.partition,
            errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
            leaderEpoch: -1,
            endOffset: -1n,
          };
        if (q.currentLeaderEpoch >= 0 && q.currentLeaderEpoch !== p.leaderEpoch) {
          const code =
            q.currentLeaderEpoch < p.leaderEpoch ? ErrorCode.FENCED_LEADER_EPOCH : ErrorCode.UNKNOWN_LEADER_EPOCH;
          return { partition: q.partition, errorCode: code, leaderEpoch: -1, endOffset: -1n };
        }
        const r = p.log.leaderEpochCache.endOffsetFor(q.leaderEpoch, p.log.logEndOffset);
        return { partition: q.partition, errorCode: ErrorCode.NONE, leaderEpoch: r.epoch, endOffset: r.endOffset };
      }),
    }));
    return { throttleTimeMs: 0, topics };
  },
});
