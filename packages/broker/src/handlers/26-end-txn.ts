// EndTxn (key 26), versions 0–5: commits or aborts the ongoing transaction: the coordinator
// records PrepareCommit/PrepareAbort, writes the markers to every partition of the transaction,
// then records the completion. A retried EndTxn of a completed transaction succeeds; EndTxn
// without a transaction is INVALID_TXN_STATE. v3+: flexible. v5+: the producer id and epoch.

import type { EndTxnRequest, EndTxnResponse } from "@sluice/protocol";
import { decodeEndTxnRequest, encodeEndTxnResponse } from "@sluice/protocol";
import { txnErrorCode, txns } from "../txn/handlers.ts";
import { defineHandler } from "./types.ts";

export const endTxnHandler = defineHandler<EndTxnRequest, EndTxnResponse>({
  apiKey: 26,
  name: "EndTxn",
  minVersion: 0,
  maxVersion: 5,
  decode: (r, v) => decodeEndTxnRequest(r, v),
  encode: (w, res, v) => encodeEndTxnResponse(w, res, v),
  async handle(req, ctx) {
    const c = txns(ctx.broker);
    const e = await c.endTxn(req.transactionalId, req.producerId, req.producerEpoch, req.committed);
    const m = c.get(req.transactionalId);
    return {
      throttleTimeMs: 0,
      errorCode: txnErrorCode(e, ctx.apiVersion, 2),
      producerId: m?.producerId ?? -1n,
      producerEpoch: m?.producerEpoch ?? -1,
    };
  },
});
