// Metadata (key 3), versions 0–12.
// v0: an empty topic list means all topics; v1+: null means all, empty means none, and the
// controller id and internal flags appear. v4+: allowAutoTopicCreation (earlier versions always
// allow it when the broker does). v7+: leader epochs. v10+: topic ids (v12: lookup by id; an
// unknown id is UNKNOWN_TOPIC_ID).
// On a single node this broker leads every partition and is the controller.

import type { Input, MetadataRequest, MetadataResponse } from "@sluice/protocol";
import {
  decodeMetadataRequest,
  ErrorCode,
  encodeMetadataResponse,
  uuidFromString,
  uuidToString,
  ZERO_UUID,
} from "@sluice/protocol";
import type { MetadataResponseTopic } from "@sluice/protocol/generated/metadata.ts";
import type { TopicState } from "../topics.ts";
import { topicNameError } from "../topics.ts";
import { defineHandler } from "./types.ts";

export function describeTopic(t: TopicState, nodeId: number, version: number): Input<MetadataResponseTopic> {
  return {
    errorCode: ErrorCode.NONE,
    name: t.record.name,
    topicId: uuidFromString(t.record.id),
    isInternal: t.record.internal,
    partitions: t.partitions.map((p) => {
      const state = t.record.states?.[p.partition];
      return {
        errorCode: ErrorCode.NONE,
        partitionIndex: p.partition,
        leaderId: state?.leader ?? nodeId,
        leaderEpoch: version >= 7 ? p.leaderEpoch : -1,
        replicaNodes: t.record.assignments?.[p.partition] ?? [nodeId],
        isrNodes: state?.isr ?? [nodeId],
        offlineReplicas: [],
      };
    }),
    topicAuthorizedOperations: -2147483648,
  };
}

export const metadataHandler = defineHandler<MetadataRequest, MetadataResponse>({
  apiKey: 3,
  name: "Metadata",
  minVersion: 0,
  maxVersion: 12,
  decode: (r, v) => decodeMetadataRequest(r, v),
  encode: (w, res, v) => encodeMetadataResponse(w, res, v),
  async handle(req, ctx) {
    const b = ctx.broker;
    const v = ctx.apiVersion;
    const all = req.topics === null || (v === 0 && req.topics.length === 0);
    const topics: Input<MetadataResponseTopic>[] = [];
    if (all) {
      for (const t of b.topics.list()) if (!t.record.internal || v >= 1) topics.push(describeTopic(t, b.nodeId, v));
    } else {
      const allowCreate = v < 4 || req.allowAutoTopicCreation;
      for (const requested of req.topics ?? []) {
        let t: TopicState | undefined | null;
        let name = requested.name;
        if (name === null) {
          t = b.topics.getById(uuidToString(requested.topicId));
          name = t?.record.name ?? null;
        } else {
          t = b.topics.get(name);
          if (!t && allowCreate && topicNameError(name) === null) t = await b.autoCreateTopic(name);
        }
        if (t) {
          topics.push(describeTopic(t, b.nodeId, v));
          continue;
        }
        const invalid = name !== null && topicNameError(name) !== null;
        const byId = requested.name === null;
        topics.push({
          errorCode: byId
            ? ErrorCode.UNKNOWN_TOPIC_ID
            : invalid
              ? ErrorCode.INVALID_TOPIC_EXCEPTION
              : ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
          name,
          topicId: name === null ? requested.topicId : ZERO_UUID,
          partitions: [],
        });
      }
    }
    return {
      throttleTimeMs: 0,
      brokers: [{ nodeId: b.nodeId, host: b.advertisedHost, port: b.advertisedPort, rack: null }],
      clusterId: b.topics.clusterId,
      controllerId: b.nodeId,
      topics,
      clusterAuthorizedOperations: -2147483648,
    };
  },
});
