// DeleteTopics (key 20), versions 0–6. v0–v5 name topics in `topicNames`; v6+ in `topics` by
// name or id. v5+: error messages. Internal topics cannot be deleted.

import type { DeleteTopicsRequest, DeleteTopicsResponse } from "@sluice/protocol";
import {
  decodeDeleteTopicsRequest,
  ErrorCode,
  encodeDeleteTopicsResponse,
  uuidFromString,
  uuidToString,
  ZERO_UUID,
} from "@sluice/protocol";
import { defineHandler } from "./types.ts";

export const deleteTopicsHandler = defineHandler<DeleteTopicsRequest, DeleteTopicsResponse>({
  apiKey: 20,
  name: "DeleteTopics",
  minVersion: 0,
  maxVersion: 6,
  decode: (r, v) => decodeDeleteTopicsRequest(r, v),
  encode: (w, res, v) => encodeDeleteTopicsResponse(w, res, v),
  async handle(req, ctx) {
    const b = ctx.broker;
    const wanted =
      ctx.apiVersion >= 6
        ? req.topics.map((t) => ({ name: t.name, topicId: t.topicId }))
        : req.topicNames.map((name) => ({ name, topicId: ZERO_UUID }));
    const responses = [];
    for (const w of wanted) {
      const t = w.name !== null ? b.topics.get(w.name) : b.topics.getById(uuidToString(w.topicId));
      if (!t) {
        responses.push({
          name: w.name,
          topicId: w.topicId,
          errorCode: w.name === null ? ErrorCode.UNKNOWN_TOPIC_ID : ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
          errorMessage: "topic does not exist",
        });
        continue;
      }
      if (!b.config.bool("delete.topic.enable")) {
        responses.push({
          name: t.record.name,
          topicId: uuidFromString(t.record.id),
          errorCode: ErrorCode.TOPIC_DELETION_DISABLED,
          errorMessage: "delete.topic.enable is false",
        });
        continue;
      }
      if (t.record.internal) {
        responses.push({
          name: t.record.name,
          topicId: uuidFromString(t.record.id),
          errorCode: ErrorCode.INVALID_TOPIC_EXCEPTION,
          errorMessage: "internal topics cannot be deleted",
        });
        continue;
      }
      await b.topics.delete(t.record.name);
      responses.push({
        name: t.record.name,
        topicId: uuidFromString(t.record.id),
        errorCode: ErrorCode.NONE,
        errorMessage: null,
      });
    }
    return { throttleTimeMs: 0, responses };
  },
});
