// LeaveGroup (key 13), versions 0–5. v0–v2: one memberId. v3+: a batch of members, by member id
// or group instance id (static members), answered per member. v4+: flexible. v5+: reason.

import type { LeaveGroupRequest, LeaveGroupResponse } from "@sluice/protocol";
import { decodeLeaveGroupRequest, encodeLeaveGroupResponse } from "@sluice/protocol";
import { groups } from "../group/handlers.ts";
import { defineHandler } from "./types.ts";

export const leaveGroupHandler = defineHandler<LeaveGroupRequest, LeaveGroupResponse>({
  apiKey: 13,
  name: "LeaveGroup",
  minVersion: 0,
  maxVersion: 5,
  decode: (r, v) => decodeLeaveGroupRequest(r, v),
  encode: (w, res, v) => encodeLeaveGroupResponse(w, res, v),
  handle(req, ctx) {
    const members =
      ctx.apiVersion >= 3
        ? req.members.map((m) => ({ memberId: m.memberId, groupInstanceId: m.groupInstanceId }))
        : [{ memberId: req.memberId, groupInstanceId: null }];
    const r = groups(ctx.broker).leave(req.groupId, members);
    if (ctx.apiVersion >= 3) return { throttleTimeMs: 0, errorCode: r.errorCode, members: r.members };
    return { throttleTimeMs: 0, errorCode: r.errorCode !== 0 ? r.errorCode : (r.members[0]?.errorCode ?? 0) };
  },
});
