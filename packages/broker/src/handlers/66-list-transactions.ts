// ListTransactions (key 66), versions 0–1: transactional ids with their producer id and state,
// filtered by state names and producer ids; v1+: durationFilter (running longer than, in ms).
// Unknown state names are echoed in unknownStateFilters.

import type { ListTransactionsRequest, ListTransactionsResponse } from "@sluice/protocol";
import { decodeListTransactionsRequest, ErrorCode, encodeListTransactionsResponse } from "@sluice/protocol";
import { txns } from "../txn/handlers.ts";
import { TXN_STATE_NAMES, TxnState } from "../txn/transaction-coordinator.ts";
import { defineHandler } from "./types.ts";

export const listTransactionsHandler = defineHandler<ListTransactionsRequest, ListTransactionsResponse>({
  apiKey: 66,
  name: "ListTransactions",
  minVersion: 0,
  maxVersion: 1,
  decode: (r, v) => decodeListTransactionsRequest(r, v),
  encode: (w, res, v) => encodeListTransactionsResponse(w, res, v),
  handle(req, ctx) {
    // Kafka's TransactionStateManager.listTransactionStates: a state filter of only unknown names
    // matches nothing; the duration filter keeps transactions started more than that long ago.
    const known = new Set(Object.values(TXN_STATE_NAMES));
    const states = new Set(req.stateFilters.filter((s) => known.has(s)));
    const pids = new Set(req.producerIdFilters);
    const now = BigInt(ctx.broker.clock.nowMs());
    const list = txns(ctx.broker)
      .list()
      .filter((m) => m.state !== TxnState.Dead)
      .filter((m) => req.stateFilters.length === 0 || states.has(TXN_STATE_NAMES[m.state] ?? ""))
      .filter((m) => pids.size === 0 || pids.has(m.producerId))
      .filter((m) => ctx.apiVersion < 1 || req.durationFilter < 0n || now - m.txnStartTimestampMs > req.durationFilter)
      .map((m) => ({
        transactionalId: m.transactionalId,
        producerId: m.producerId,
        transactionState: TXN_STATE_NAMES[m.state] ?? "Unknown",
      }));
    return {
      throttleTimeMs: 0,
      errorCode: ErrorCode.NONE,
      unknownStateFilters: req.stateFilters.filter((s) => !known.has(s)),
      transactionStates: list,
    };
  },
});
