// AddPartitionsToTxn (key 24), versions 0–5. v0–v3 (clients): one transaction, a per-partition
// result (all partitions share the outcome; unknown partitions get UNKNOWN_TOPIC_OR_PARTITION and
// the rest OPERATION_NOT_ATTEMPTED). v3+: flexible. v4+ (brokers, KIP-890): several transactions,
// and verifyOnly checks that partitions are already in the transaction (INVALID_TXN_STATE if not).

import type { AddPartitionsToTxnRequest, AddPartitionsToTxnResponse } from "@sluice/protocol";
import { decodeAddPartitionsToTxnRequest, ErrorCode, encodeAddPartitionsToTxnResponse } from "@sluice/protocol";
import type { AddPartitionsToTxnTopic } from "@sluice/protocol/generated/add-partitions-to-txn.ts";
import { txnErrorCode, txns } from "../txn/handlers.ts";
import type { RequestContext } from "./types.ts";
import { defineHandler } from "./types.ts";

async function addOne(
  ctx: RequestContext,
  transactionalId: string,
  producerId: bigint,
  producerEpoch: number,
  topics: AddPartitionsToTxnTopic[],
  verifyOnly: boolean,
) {
  const all = topics.flatMap((t) => t.partitions.map((partition) => ({ topic: t.name, partition })));
  const unknown = all.filter((tp) => !ctx.broker.topics.partition(tp.topic, tp.partition));
  let codeFor: (tp: { topic: string; partition: number }) => number;
  if (unknown.length > 0) {
    codeFor = (tp) =>
      ctx.broker.topics.partition(tp.topic, tp.partition)
        ? ErrorCode.OPERATION_NOT_ATTEMPTED
        : ErrorCode.UNKNOWN_TOPIC_OR_PARTITION;
  } else if (verifyOnly) {
    const c = txns(ctx.broker);
    codeFor = (tp) =>
      c.isPartOfOngoingTransaction(transactionalId, producerId, producerEpoch, tp)
        ? ErrorCode.NONE
        : ErrorCode.INVALID_TXN_STATE;
  } else {
    const code = txnErrorCode(
      await txns(ctx.broker).addPartitions(transactionalId, producerId, producerEpoch, all),
      ctx.apiVersion,
      2,
    );
    codeFor = () => code;
  }
  return topics.map((t) => ({
    name: t.name,
    resultsByPartition: t.partitions.map((partitionIndex) => ({
      partitionIndex,
      partitionErrorCode: codeFor({ topic: t.name, partition: partitionIndex }),
    })),
  }));
}

export const addPartitionsToTxnHandler = defineHandler<AddPartitionsToTxnRequest, AddPartitionsToTxnResponse>({
  apiKey: 24,
  name: "AddPartitionsToTxn",
  minVersion: 0,
  maxVersion: 5,
  decode: (r, v) => decodeAddPartitionsToTxnRequest(r, v),
  encode: (w, res, v) => encodeAddPartitionsToTxnResponse(w, res, v),
  async handle(req, ctx) {
    if (ctx.apiVersion <= 3) {
      const results = await addOne(
        ctx,
        req.v3AndBelowTransactionalId,
        req.v3AndBelowProducerId,
        req.v3AndBelowProducerEpoch,
        req.v3AndBelowTopics,
        false,
      );
      return { throttleTimeMs: 0, resultsByTopicV3AndBelow: results };
    }
    const resultsByTransaction = [];
    for (const t of req.transactions) {
      resultsByTransaction.push({
        transactionalId: t.transactionalId,
        topicResults: await addOne(ctx, t.transactionalId, t.producerId, t.producerEpoch, t.topics, t.verifyOnly),
      });
    }
    return { throttleTimeMs: 0, errorCode: ErrorCode.NONE, resultsByTransaction };
  },
});
