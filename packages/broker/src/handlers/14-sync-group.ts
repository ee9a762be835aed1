// SyncGroup (key 14), versions 0–5. The leader sends every member's assignment; each member gets
// its own once the leader's arrives. v3+: groupInstanceId. v4+: flexible. v5+: protocolType and
// protocolName are checked against the group's (INCONSISTENT_GROUP_PROTOCOL) and returned.

import type { SyncGroupRequest, SyncGroupResponse } from "@sluice/protocol";
import { decodeSyncGroupRequest, encodeSyncGroupResponse } from "@sluice/protocol";
import { groups } from "../group/handlers.ts";
import { defineHandler } from "./types.ts";

export const syncGroupHandler = defineHandler<SyncGroupRequest, SyncGroupResponse>({
  apiKey: 14,
  name: "SyncGroup",
  minVersion: 0,
  maxVersion: 5,
  decode: (r, v) => decodeSyncGroupRequest(r, v),
  encode: (w, res, v) => encodeSyncGroupResponse(w, res, v),
  async handle(req, ctx) {
    const r = await groups(ctx.broker).sync({
      groupId: req.groupId,
      memberId: req.memberId,
      generationId: req.generationId,
      groupInstanceId: ctx.apiVersion >= 3 ? req.groupInstanceId : null,
      protocolType: ctx.apiVersion >= 5 ? req.protocolType : null,
      protocolName: ctx.apiVersion >= 5 ? req.protocolName : null,
      assignments: req.assignments.map((a) => ({ memberId: a.memberId, assignment: a.assignment })),
    });
    return {
      throttleTimeMs: 0,
      errorCode: r.errorCode,
      protocolType: r.protocolType,
      protocolName: r.protocolName,
      assignment: r.assignment,
    };
  },
});
