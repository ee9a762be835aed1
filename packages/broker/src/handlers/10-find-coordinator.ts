// FindCoordinator (key 10), versions 0–6. keyType 0 = group, 1 = transaction (v1+); this broker
// coordinates both on a single node. v4+ batches keys in coordinatorKeys and answers per key.
// The internal topic (__consumer_offsets / __transaction_state) is created on first use.

import type { FindCoordinatorRequest, FindCoordinatorResponse } from "@sluice/protocol";
import { decodeFindCoordinatorRequest, ErrorCode, encodeFindCoordinatorResponse } from "@sluice/protocol";
import { offsetsStore } from "../group/handlers.ts";
import { txnStore } from "../txn/handlers.ts";
import { defineHandler } from "./types.ts";

export const findCoordinatorHandler = defineHandler<FindCoordinatorRequest, FindCoordinatorResponse>({
  apiKey: 10,
  name: "FindCoordinator",
  minVersion: 0,
  maxVersion: 6,
  decode: (r, v) => decodeFindCoordinatorRequest(r, v),
  encode: (w, res, v) => encodeFindCoordinatorResponse(w, res, v),
  async handle(req, ctx) {
    const b = ctx.broker;
    const keys = ctx.apiVersion >= 4 ? req.coordinatorKeys : [req.key];
    const answer = (
      key: string,
    ): { key: string; nodeId: number; host: string; port: number; errorCode: number; errorMessage: string | null } => {
      if (req.keyType !== 0 && req.keyType !== 1)
        return {
          key,
          nodeId: -1,
          host: "",
          port: -1,
          errorCode: ErrorCode.INVALID_REQUEST,
          errorMessage: `unsupported key type ${req.keyType}`,
        };
      if (req.keyType === 1 && !b.services.has("transactions")) {
        return {
          key,
          nodeId: -1,
          host: "",
          port: -1,
          errorCode: ErrorCode.COORDINATOR_NOT_AVAILABLE,
          errorMessage: "transactions are not enabled",
        };
      }
      return {
        key,
        nodeId: b.nodeId,
        host: b.advertisedHost,
        port: b.advertisedPort,
        errorCode: ErrorCode.NONE,
        errorMessage: null,
      };
    };
    if (req.keyType === 0) await offsetsStore(b).ensureTopic();
    if (req.keyType === 1 && b.services.has("txnStore")) await txnStore(b).ensureTopic();
    const coordinators = keys.map(answer);
    if (ctx.apiVersion >= 4) return { throttleTimeMs: 0, coordinators };
    const c = coordinators[0]!;
    return {
      throttleTimeMs: 0,
      errorCode: c.errorCode,
      errorMessage: c.errorMessage,
      nodeId: c.nodeId,
      host: c.host,
      port: c.port,
    };
  },
});
