// DescribeCluster (key 60), versions 0–1: this broker, the cluster id and the controller (itself
// on a single node). v1+: endpointType (only brokers, 1, are described).

import type { DescribeClusterRequest, DescribeClusterResponse } from "@sluice/protocol";
import { decodeDescribeClusterRequest, ErrorCode, encodeDescribeClusterResponse } from "@sluice/protocol";
import { defineHandler } from "./types.ts";

export const describeClusterHandler = defineHandler<DescribeClusterRequest, DescribeClusterResponse>({
  apiKey: 60,
  name: "DescribeCluster",
  minVersion: 0,
  maxVersion: 1,
  decode: (r, v) => decodeDescribeClusterRequest(r, v),
  encode: (w, res, v) => encodeDescribeClusterResponse(w, res, v),
  handle(req, ctx) {
    const b = ctx.broker;
    if (ctx.apiVersion >= 1 && req.endpointType !== 1) {
      return {
        errorCode: ErrorCode.UNSUPPORTED_ENDPOINT_TYPE,
        errorMessage: "only broker endpoints are described",
        clusterId: b.topics.clusterId,
        brokers: [],
      };
    }
    return {
      throttleTimeMs: 0,
      errorCode: ErrorCode.NONE,
      errorMessage: null,
      endpointType: 1,
      clusterId: b.topics.clusterId,
      controllerId: b.nodeId,
      brokers: [{ brokerId: b.nodeId, host: b.advertisedHost, port: b.advertisedPort, rack: null }],
      clusterAuthorizedOperations: -2147483648,
    };
  },
});
