// DescribeTransactions (key 65), version 0: state, timeout, start time, producer id/epoch and
// partitions of each transactional id (TRANSACTIONAL_ID_NOT_FOUND for unknown ids).

import type { DescribeTransactionsRequest, DescribeTransactionsResponse } from "@sluice/protocol";
import { decodeDescribeTransactionsRequest, ErrorCode, encodeDescribeTransactionsResponse } from "@sluice/protocol";
import { txns } from "../txn/handlers.ts";
import { TXN_STATE_NAMES } from "../txn/transaction-coordinator.ts";
import { defineHandler } from "./types.ts";

export const describeTransactionsHandler = defineHandler<DescribeTransactionsRequest, DescribeTransactionsResponse>({
  apiKey: 65,
  name: "DescribeTransactions",
  minVersion: 0,
  maxVersion: 0,
  decode: (r, v) => decodeDescribeTransactionsRequest(r, v),
  encode: (w, res, v) => encodeDescribeTransactionsResponse(w, res, v),
  handle(req, ctx) {
    const c = txns(ctx.broker);
    return {
      throttleTimeMs: 0,
      transactionStates: req.transactionalIds.map((id) => {
        const m = c.get(id);
        if (!m)
          return {
            errorCode: ErrorCode.TRANSACTIONAL_ID_NOT_FOUND,
            transactionalId: id,
            transactionState: "",
            topics: [],
          };
        const byTopic = new Map<string, number[]>();
        for (const tp of m.partitions.values()) byTopic.set(tp.topic, [...(byTopic.get(tp.topic) ?? []), tp.partition]);
        return {
          errorCode: ErrorCode.NONE,
          transactionalId: id,
          transactionState: TXN_STATE_NAMES[m.state] ?? "Unknown",
          transactionTimeoutMs: m.txnTimeoutMs,
          transactionStartTimeMs: m.txnStartTimestampMs,
          producerId: m.producerId,
          producerEpoch: m.producerEpoch,
          topics: [...byTopic].map(([topic, partitions]) => ({ topic, partitions })),
        };
      }),
    };
  },
});
