// ListGroups (key 16), versions 0–5. v3+: flexible. v4+: statesFilter (case-insensitive).
// v5+: typesFilter ("classic" is the only group type here) and groupType in the answer.

import type { ListGroupsRequest, ListGroupsResponse } from "@sluice/protocol";
import { decodeListGroupsRequest, ErrorCode, encodeListGroupsResponse } from "@sluice/protocol";
import { groups } from "../group/handlers.ts";
import { defineHandler } from "./types.ts";

export const listGroupsHandler = defineHandler<ListGroupsRequest, ListGroupsResponse>({
  apiKey: 16,
  name: "ListGroups",
  minVersion: 0,
  maxVersion: 5,
  decode: (r, v) => decodeListGroupsRequest(r, v),
  encode: (w, res, v) => encodeListGroupsResponse(w, res, v),
  handle(req, ctx) {
    const states = new Set(req.statesFilter.map((s) => s.toLowerCase()));
    const types = new Set(req.typesFilter.map((s) => s.toLowerCase()));
    const list = [...groups(ctx.broker).groups.values()]
      .filter((g) => g.state !== "Dead")
      .filter((g) => states.size === 0 || states.has(g.state.toLowerCase()))
      .filter(() => types.size === 0 || types.has("classic"))
      .map((g) => ({
        groupId: g.groupId,
        protocolType: g.protocolType ?? "",
        groupState: g.state,
        groupType: "classic",
      }));
    return { throttleTimeMs: 0, errorCode: ErrorCode.NONE, groups: list };
  },
});
