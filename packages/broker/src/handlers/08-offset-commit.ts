// OffsetCommit (key 8), versions 0–9. v0: no generation (a groupless commit). v1: generation,
// member id and commit timestamp. v2–v4: retention time (ignored: offsets.retention.minutes
// applies, as in Kafka 2.1+). v6+: committed leader epoch. v7+: groupInstanceId. v8+: flexible.
// A commit from outside the group (generation -1) is accepted only while the group has no
// members; commits are refused only while the group is in CompletingRebalance (see
// GroupCoordinator.validateCommit). Offsets are persisted to __consumer_offsets before the answer.

import type { OffsetCommitRequest, OffsetCommitResponse } from "@sluice/protocol";
import { decodeOffsetCommitRequest, encodeOffsetCommitResponse } from "@sluice/protocol";
import { E } from "../group/coordinator.ts";
import { groups } from "../group/handlers.ts";
import { defineHandler } from "./types.ts";

export const offsetCommitHandler = defineHandler<OffsetCommitRequest, OffsetCommitResponse>({
  apiKey: 8,
  name: "OffsetCommit",
  minVersion: 0,
  maxVersion: 9,
  decode: (r, v) => decodeOffsetCommitRequest(r, v),
  encode: (w, res, v) => encodeOffsetCommitResponse(w, res, v),
  async handle(req, ctx) {
    const g = groups(ctx.broker);
    const generation = ctx.apiVersion >= 1 ? req.generationIdOrMemberEpoch : -1;
    const memberId = ctx.apiVersion >= 1 ? req.memberId : "";
    const all = req.topics.flatMap((t) => t.partitions.map((p) => ({ topic: t.name, p })));
    let codes: number[];
    const invalid =
      req.groupId === ""
        ? E.INVALID_GROUP_ID
        : g.validateCommit(req.groupId, memberId, generation, ctx.apiVersion >= 7 ? req.groupInstanceId : null);
    if (invalid !== E.NONE) codes = all.map(() => invalid);
    else {
      const known = all.map(({ topic, p }) => ctx.broker.topics.partition(topic, p.partitionIndex) !== undefined);
      const accepted = all.filter((_, i) => known[i]);
      const stored = await g.commitOffsets(
        req.groupId,
        accepted.map(({ topic, p }) => ({
          topic,
          partition: p.partitionIndex,
          offset: p.committedOffset,
          leaderEpoch: ctx.apiVersion >= 6 ? p.committedLeaderEpoch : -1,
          metadata: p.committedMetadata,
          ...(ctx.apiVersion >= 2 && ctx.apiVersion <= 4 ? { retentionTimeMs: req.retentionTimeMs } : {}),
        })),
      );
      let j = 0;
      codes = known.map((k) => (k ? stored[j++]! : 3));
    }
    let i = 0;
    return {
      throttleTimeMs: 0,
      topics: req.topics.map((t) => ({
        name: t.name,
        partitions: t.partitions.map((p) => ({ partitionIndex: p.partitionIndex, errorCode: codes[i++]! })),
      })),
    };
  },
});
