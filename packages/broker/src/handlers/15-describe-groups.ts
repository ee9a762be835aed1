// DescribeGroups (key 15), versions 0–5: state, protocol type and name, and members with their
// metadata and assignment. v3+: authorized operations (not computed: -2^31). v4+: group instance
// ids. v5+: flexible. An unknown group is described as Dead with no members, as Kafka does.

import type { DescribeGroupsRequest, DescribeGroupsResponse } from "@sluice/protocol";
import { decodeDescribeGroupsRequest, ErrorCode, encodeDescribeGroupsResponse } from "@sluice/protocol";
import { groups } from "../group/handlers.ts";
import { defineHandler } from "./types.ts";

export const describeGroupsHandler = defineHandler<DescribeGroupsRequest, DescribeGroupsResponse>({
  apiKey: 15,
  name: "DescribeGroups",
  minVersion: 0,
  maxVersion: 5,
  decode: (r, v) => decodeDescribeGroupsRequest(r, v),
  encode: (w, res, v) => encodeDescribeGroupsResponse(w, res, v),
  handle(req, ctx) {
    const c = groups(ctx.broker);
    return {
      throttleTimeMs: 0,
      groups: req.groups.map((groupId) => {
        const g = c.groups.get(groupId);
        if (!g)
          return {
            errorCode: ErrorCode.NONE,
            groupId,
            groupState: "Dead",
            protocolType: "",
            protocolData: "",
            members: [],
            authorizedOperations: -2147483648,
          };
        const stable = g.state === "Stable";
        return {
          errorCode: ErrorCode.NONE,
          groupId,
          groupState: g.state,
          protocolType: g.protocolType ?? "",
          protocolData: stable ? (g.protocolName ?? "") : "",
          members: [...g.members.values()].map((m) => ({
            memberId: m.memberId,
            groupInstanceId: m.groupInstanceId,
            clientId: m.clientId,
            clientHost: m.clientHost,
            memberMetadata: stable
              ? (m.protocols.find((p) => p.name === g.protocolName)?.metadata ?? new Uint8Array(0))
              : new Uint8Array(0),
            memberAssignment: stable ? m.assignment : new Uint8Array(0),
          })),
          authorizedOperations: -2147483648,
        };
      }),
    };
  },
});
