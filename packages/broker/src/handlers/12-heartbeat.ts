// Heartbeat (key 12), versions 0–4. Keeps the member's session alive; REBALANCE_IN_PROGRESS tells
// it to rejoin. v3+: groupInstanceId (FENCED_INSTANCE_ID). v4+: flexible.

import type { HeartbeatRequest, HeartbeatResponse } from "@sluice/protocol";
import { decodeHeartbeatRequest, encodeHeartbeatResponse } from "@sluice/protocol";
import { groups } from "../group/handlers.ts";
import { defineHandler } from "./types.ts";

export const heartbeatHandler = defineHandler<HeartbeatRequest, HeartbeatResponse>({
  apiKey: 12,
  name: "Heartbeat",
  minVersion: 0,
  maxVersion: 4,
  decode: (r, v) => decodeHeartbeatRequest(r, v),
  encode: (w, res, v) => encodeHeartbeatResponse(w, res, v),
  handle(req, ctx) {
    const errorCode = groups(ctx.broker).heartbeat(
      req.groupId,
      req.memberId,
      req.generationId,
      ctx.apiVersion >= 3 ? req.groupInstanceId : null,
    );
    return { throttleTimeMs: 0, errorCode };
  },
});
