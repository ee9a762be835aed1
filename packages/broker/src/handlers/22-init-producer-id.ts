// InitProducerId (key 22), versions 0–5. Without a transactional id: a new producer id for an
// idempotent producer (v3+ producer id and epoch are ignored, as Kafka does). With one: the
// transaction coordinator fences the previous producer of that id (epoch bump, aborting its open
// transaction) and returns the id and new epoch; v3+ (KIP-360) the producer's current id and
// epoch are checked (PRODUCER_FENCED when older; a lost answer's retry gets the same epoch). Ids are never reused,
// even across restarts. v2+: flexible. transactionTimeoutMs above transaction.max.timeout.ms is
// INVALID_TRANSACTION_TIMEOUT.

import type { InitProducerIdRequest, InitProducerIdResponse } from "@sluice/protocol";
import { decodeInitProducerIdRequest, ErrorCode, encodeInitProducerIdResponse } from "@sluice/protocol";
import { producerIds, txnErrorCode, txnStore, txns } from "../txn/handlers.ts";
import { defineHandler } from "./types.ts";

export const initProducerIdHandler = defineHandler<InitProducerIdRequest, InitProducerIdResponse>({
  apiKey: 22,
  name: "InitProducerId",
  minVersion: 0,
  maxVersion: 5,
  decode: (r, v) => decodeInitProducerIdRequest(r, v),
  encode: (w, res, v) => encodeInitProducerIdResponse(w, res, v),
  async handle(req, ctx) {
    if (req.transactionalId === null) {
      // As Kafka: an idempotent producer always gets a fresh id, whatever id and epoch it sent
      // (so no client can take over another producer's id by naming it).
      return {
        throttleTimeMs: 0,
        errorCode: ErrorCode.NONE,
        producerId: await producerIds(ctx.broker).next(),
        producerEpoch: 0,
      };
    }
    if (req.transactionalId === "")
      return { throttleTimeMs: 0, errorCode: ErrorCode.INVALID_REQUEST, producerId: -1n, producerEpoch: -1 };
    await txnStore(ctx.broker).ensureTopic();
    const expected =
      ctx.apiVersion >= 3 && req.producerId >= 0n
        ? { producerId: req.producerId, producerEpoch: req.producerEpoch }
        : undefined;
    const r = await txns(ctx.broker).initProducerId(req.transactionalId, req.transactionTimeoutMs, expected);
    return {
      throttleTimeMs: 0,
      errorCode: txnErrorCode(r.error, ctx.apiVersion, 4),
      producerId: r.producerId,
      producerEpoch: r.producerEpoch,
    };
  },
});
