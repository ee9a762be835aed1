// CreateTopics (key 19), versions 0–7.
// v1+: validateOnly and error messages. v4+: -1 partitions / replication factor take the broker
// defaults. v5+ (flexible): the result describes the created topic (partitions, replication
// factor, configs). v7+: topic ids. A single node supports replication factor 1 only
// (INVALID_REPLICATION_FACTOR otherwise); manual assignments must name this broker.

import type { CreateTopicsRequest, CreateTopicsResponse, Input } from "@sluice/protocol";
import {
  decodeCreateTopicsRequest,
  ErrorCode,
  encodeCreateTopicsResponse,
  uuidFromString,
  ZERO_UUID,
} from "@sluice/protocol";
import type { CreatableTopicResult } from "@sluice/protocol/generated/create-topics.ts";
import { topicNameError, validateTopicConfigs } from "../topics.ts";
import { describeTopicConfigs } from "./32-describe-configs.ts";
import { defineHandler } from "./types.ts";

export const createTopicsHandler = defineHandler<CreateTopicsRequest, CreateTopicsResponse>({
  apiKey: 19,
  name: "CreateTopics",
  minVersion: 0,
  maxVersion: 7,
  decode: (r, v) => decodeCreateTopicsRequest(r, v),
  encode: (w, res, v) => encodeCreateTopicsResponse(w, res, v),
  async handle(req, ctx) {
    const b = ctx.broker;
    const seen = new Set<string>();
    const results: Input<CreatableTopicResult>[] = [];
    for (const t of req.topics) {
      const fail = (errorCode: number, errorMessage: string): void => {
        results.push({
          name: t.name,
          topicId: ZERO_UUID,
          errorCode,
          errorMessage,
          numPartitions: -1,
          replicationFactor: -1,
          configs: null,
        });
      };
      if (seen.has(t.name)) {
        fail(ErrorCode.INVALID_REQUEST, `topic ${t.name} appears more than once in the request`);
        continue;
      }
      seen.add(t.name);
      const nameError = topicNameError(t.name);
      if (nameError) {
        fail(ErrorCode.INVALID_TOPIC_EXCEPTION, nameError);
        continue;
      }
      if (b.topics.exists(t.name)) {
        fail(ErrorCode.TOPIC_ALREADY_EXISTS, `topic ${t.name} already exists`);
        continue;
      }
      const partitions =
        t.assignments.length > 0
          ? t.assignments.length
          : t.numPartitions === -1
            ? b.config.int("num.partitions")
            : t.numPartitions;
      const rf =
        t.assignments.length > 0
          ? (t.assignments[0]?.brokerIds.length ?? 1)
          : t.replicationFactor === -1
            ? b.config.int("default.replication.factor")
            : t.replicationFactor;
      if (partitions <= 0) {
        fail(ErrorCode.INVALID_PARTITIONS, `number of partitions must be positive, got ${partitions}`);
        continue;
      }
      if (rf !== 1) {
        fail(ErrorCode.INVALID_REPLICATION_FACTOR, `replication factor ${rf} is larger than the 1 available broker`);
        continue;
      }
      if (t.assignments.some((a) => a.brokerIds.some((id) => id !== b.nodeId))) {
        fail(ErrorCode.INVALID_REPLICA_ASSIGNMENT, `assignments may only name broker ${b.nodeId}`);
        continue;
      }
      const configs: Record<string, string> = {};
      for (const c of t.configs) if (c.value !== null) configs[c.name] = c.value;
      const bad = validateTopicConfigs(configs);
      if (bad) {
        fail(ErrorCode.INVALID_CONFIG, bad.message);
        continue;
      }
      if (req.validateOnly) {
        results.push({
          name: t.name,
          errorCode: ErrorCode.NONE,
          errorMessage: null,
          numPartitions: partitions,
          replicationFactor: rf,
          configs: [],
        });
        continue;
      }
      const created = await b.topics.create(t.name, partitions, configs);
      results.push({
        name: t.name,
        topicId: uuidFromString(created.record.id),
        errorCode: ErrorCode.NONE,
        errorMessage: null,
        numPartitions: partitions,
        replicationFactor: rf,
        configs: describeTopicConfigs(ctx.broker, configs, false, false).map((c) => ({
          name: c.name,
          value: c.value,
          readOnly: c.readOnly,
          configSource: c.configSource,
          isSensitive: false,
        })),
      });
    }
    return { throttleTimeMs: 0, topics: results };
  },
});
