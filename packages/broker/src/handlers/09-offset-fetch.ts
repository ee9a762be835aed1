// OffsetFetch (key 9), versions 0–9. v1+: offsets from __consumer_offsets (v0 read ZooKeeper in
// Kafka; here the same store). v2+: null topics = all the group's offsets, top-level error code.
// v5+: committed leader epoch. v6+: flexible. v7+: requireStable (UNSTABLE_OFFSET_COMMIT only
// while transactional offsets are pending). v8+: several groups per request.
// A partition without a committed offset answers offset -1 and empty metadata.

import type { OffsetFetchRequest, OffsetFetchResponse } from "@sluice/protocol";
import { decodeOffsetFetchRequest, ErrorCode, encodeOffsetFetchResponse } from "@sluice/protocol";
import type { GroupCoordinator } from "../group/coordinator.ts";
import { groups } from "../group/handlers.ts";
import { defineHandler } from "./types.ts";

interface TopicQuery {
  name: string;
  partitionIndexes: number[];
}

function answer(g: GroupCoordinator, groupId: string, topics: TopicQuery[] | null, requireStable: boolean) {
  let queries = topics;
  if (queries === null) {
    const byTopic = new Map<string, number[]>();
    for (const key of g.groups.get(groupId)?.offsets.keys() ?? []) {
      const [t, p] = key.split("\u0000");
      byTopic.set(t!, [...(byTopic.get(t!) ?? []), Number(p)]);
    }
    queries = [...byTopic].map(([name, partitionIndexes]) => ({
      name,
      partitionIndexes: partitionIndexes.sort((a, b) => a - b),
    }));
  }
  return queries.map((t) => ({
    name: t.name,
    partitions: t.partitionIndexes.map((partitionIndex) => {
      if (requireStable && g.hasPendingTxnOffset(groupId, t.name, partitionIndex)) {
        return {
          partitionIndex,
          committedOffset: -1n,
          committedLeaderEpoch: -1,
          metadata: "",
          errorCode: ErrorCode.UNSTABLE_OFFSET_COMMIT,
        };
      }
      const o = g.fetchOffset(groupId, t.name, partitionIndex);
      return {
        partitionIndex,
        committedOffset: o?.offset ?? -1n,
        committedLeaderEpoch: o?.leaderEpoch ?? -1,
        metadata: o?.metadata ?? "",
        errorCode: ErrorCode.NONE,
      };
    }),
  }));
}

export const offsetFetchHandler = defineHandler<OffsetFetchRequest, OffsetFetchResponse>({
  apiKey: 9,
  name: "OffsetFetch",
  minVersion: 0,
  maxVersion: 9,
  decode: (r, v) => decodeOffsetFetchRequest(r, v),
  encode: (w, res, v) => encodeOffsetFetchResponse(w, res, v),
  handle(req, ctx) {
    const g = groups(ctx.broker);
    if (ctx.apiVersion >= 8) {
      return {
        throttleTimeMs: 0,
        groups: req.groups.map((q) => ({
          groupId: q.groupId,
          topics: answer(g, q.groupId, q.topics, req.requireStable),
          errorCode: ErrorCode.NONE,
        })),
      };
    }
    return {
      throttleTimeMs: 0,
      errorCode: ErrorCode.NONE,
      topics: answer(g, req.groupId, req.topics, ctx.apiVersion >= 7 && req.requireStable),
    };
  },
});
