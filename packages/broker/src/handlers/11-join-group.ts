// JoinGroup (key 11), versions 0–9. v0 has no rebalance timeout (the session timeout is used).
// v4+: a member without an id first gets MEMBER_ID_REQUIRED with its id (KIP-394). v5+: static
// membership (groupInstanceId). v6+: flexible. v7+: protocolType and protocolName in the response.
// v8+: reason (logged). v9+: skipAssignment (always false here: the leader always assigns).

import type { JoinGroupRequest, JoinGroupResponse } from "@sluice/protocol";
import { decodeJoinGroupRequest, encodeJoinGroupResponse } from "@sluice/protocol";
import { groups } from "../group/handlers.ts";
import { defineHandler } from "./types.ts";

export const joinGroupHandler = defineHandler<JoinGroupRequest, JoinGroupResponse>({
  apiKey: 11,
  name: "JoinGroup",
  minVersion: 0,
  maxVersion: 9,
  decode: (r, v) => decodeJoinGroupRequest(r, v),
  encode: (w, res, v) => encodeJoinGroupResponse(w, res, v),
  async handle(req, ctx) {
    const r = await groups(ctx.broker).join({
      groupId: req.groupId,
      memberId: req.memberId,
      groupInstanceId: ctx.apiVersion >= 5 ? req.groupInstanceId : null,
      protocolType: req.protocolType,
      protocols: req.protocols.map((p) => ({ name: p.name, metadata: p.metadata })),
      sessionTimeoutMs: req.sessionTimeoutMs,
      rebalanceTimeoutMs: ctx.apiVersion >= 1 ? req.rebalanceTimeoutMs : req.sessionTimeoutMs,
      clientId: ctx.clientId ?? "",
      clientHost: ctx.clientHost,
      requireKnownMemberId: ctx.apiVersion >= 4,
    });
    return {
      throttleTimeMs: 0,
      errorCode: r.errorCode,
      generationId: r.generationId,
      protocolType: r.protocolType,
      protocolName: ctx.apiVersion >= 7 ? r.protocolName : (r.protocolName ?? ""),
      leader: r.leader,
      skipAssignment: false,
      memberId: r.memberId,
      members: r.members,
    };
  },
});
