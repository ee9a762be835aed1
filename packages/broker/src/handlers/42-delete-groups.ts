// DeleteGroups (key 42), versions 0–2: removes empty groups and their offsets
// (NON_EMPTY_GROUP while members remain, GROUP_ID_NOT_FOUND for unknown groups). v2+: flexible.

import type { DeleteGroupsRequest, DeleteGroupsResponse } from "@sluice/protocol";
import { decodeDeleteGroupsRequest, encodeDeleteGroupsResponse } from "@sluice/protocol";
import { groups } from "../group/handlers.ts";
import { defineHandler } from "./types.ts";

export const deleteGroupsHandler = defineHandler<DeleteGroupsRequest, DeleteGroupsResponse>({
  apiKey: 42,
  name: "DeleteGroups",
  minVersion: 0,
  maxVersion: 2,
  decode: (r, v) => decodeDeleteGroupsRequest(r, v),
  encode: (w, res, v) => encodeDeleteGroupsResponse(w, res, v),
  async handle(req, ctx) {
    const c = groups(ctx.broker);
    const results = [];
    for (const groupId of req.groupsNames) results.push({ groupId, errorCode: await c.deleteGroup(groupId) });
    return { throttleTimeMs: 0, results };
  },
});
