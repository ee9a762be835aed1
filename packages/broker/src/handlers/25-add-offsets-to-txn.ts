// AddOffsetsToTxn (key 25), versions 0–4: adds the group's __consumer_offsets partition to the
// transaction, so that TxnOffsetCommit can write there and the marker settles the offsets.
// v3+: flexible.

import type { AddOffsetsToTxnRequest, AddOffsetsToTxnResponse } from "@sluice/protocol";
import { decodeAddOffsetsToTxnRequest, encodeAddOffsetsToTxnResponse } from "@sluice/protocol";
import { offsetsStore } from "../group/handlers.ts";
import { OFFSETS_TOPIC, partitionFor } from "../group/persistence.ts";
import { txnErrorCode, txns } from "../txn/handlers.ts";
import { defineHandler } from "./types.ts";

export const addOffsetsToTxnHandler = defineHandler<AddOffsetsToTxnRequest, AddOffsetsToTxnResponse>({
  apiKey: 25,
  name: "AddOffsetsToTxn",
  minVersion: 0,
  maxVersion: 4,
  decode: (r, v) => decodeAddOffsetsToTxnRequest(r, v),
  encode: (w, res, v) => encodeAddOffsetsToTxnResponse(w, res, v),
  async handle(req, ctx) {
    await offsetsStore(ctx.broker).ensureTopic();
    const partition = partitionFor(req.groupId, ctx.broker.config.int("offsets.topic.num.partitions"));
    const e = await txns(ctx.broker).addPartitions(req.transactionalId, req.producerId, req.producerEpoch, [
      { topic: OFFSETS_TOPIC, partition },
    ]);
    return { throttleTimeMs: 0, errorCode: txnErrorCode(e, ctx.apiVersion, 2) };
  },
});
