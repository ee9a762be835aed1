// TxnOffsetCommit (key 28), versions 0–4: offsets committed inside a transaction. They are
// written to __consumer_offsets as a transactional batch of the producer and become visible only
// when the COMMIT marker reaches that partition (dropped on ABORT). The group's partition must have
// been added with AddOffsetsToTxn (INVALID_TXN_STATE otherwise). v2+: committed leader epoch.
// v3+: flexible, and the consumer's generation/member for fencing zombies (KIP-447).

import type { TxnOffsetCommitRequest, TxnOffsetCommitResponse } from "@sluice/protocol";
import { decodeTxnOffsetCommitRequest, ErrorCode, encodeTxnOffsetCommitResponse } from "@sluice/protocol";
import { E } from "../group/coordinator.ts";
import { groups, offsetsStore } from "../group/handlers.ts";
import { OFFSETS_TOPIC, partitionFor } from "../group/persistence.ts";
import { storeErrorCode } from "../group/store-errors.ts";
import { txns } from "../txn/handlers.ts";
import { defineHandler } from "./types.ts";

/** The transaction was no longer ongoing when the write's turn to be appended came. */
class TxnOffsetsRefused extends Error {
  readonly errorCode: number;
  constructor(errorCode: number) {
    super(`transactional offsets refused with error code ${errorCode}`);
    this.errorCode = errorCode;
  }
}

export const txnOffsetCommitHandler = defineHandler<TxnOffsetCommitRequest, TxnOffsetCommitResponse>({
  apiKey: 28,
  name: "TxnOffsetCommit",
  minVersion: 0,
  maxVersion: 4,
  decode: (r, v) => decodeTxnOffsetCommitRequest(r, v),
  encode: (w, res, v) => encodeTxnOffsetCommitResponse(w, res, v),
  async handle(req, ctx) {
    const g = groups(ctx.broker);
    const partition = partitionFor(req.groupId, ctx.broker.config.int("offsets.topic.num.partitions"));
    const txnCode = (): number => {
      const m = txns(ctx.broker).get(req.transactionalId);
      if (!m || m.producerId !== req.producerId) return ErrorCode.INVALID_PRODUCER_ID_MAPPING;
      if (m.producerEpoch !== req.producerEpoch)
        return ctx.apiVersion >= 3 ? ErrorCode.PRODUCER_FENCED : ErrorCode.INVALID_PRODUCER_EPOCH;
      const ongoing = txns(ctx.broker).isPartOfOngoingTransaction(
        req.transactionalId,
        req.producerId,
        req.producerEpoch,
        { topic: OFFSETS_TOPIC, partition },
      );
      return ongoing ? ErrorCode.NONE : ErrorCode.INVALID_TXN_STATE;
    };
    let code = txnCode();
    if (code === ErrorCode.NONE && ctx.apiVersion >= 3) {
      const v = g.validateTxnCommit(req.groupId, req.memberId, req.generationId, req.groupInstanceId);
      if (v !== E.NONE) code = v;
    }
    if (code === ErrorCode.NONE) {
      const now = BigInt(ctx.broker.clock.nowMs());
      const offsets = req.topics.flatMap((t) =>
        t.partitions.map((p) => ({
          topic: t.name,
          partition: p.partitionIndex,
          value: {
            offset: p.committedOffset,
            leaderEpoch: ctx.apiVersion >= 2 ? p.committedLeaderEpoch : -1,
            metadata: p.committedMetadata ?? "",
            commitTimestampMs: now,
          },
        })),
      );
      try {
        // The transaction is checked again where the write is appended: it may have ended (EndTxn,
        // or the coordinator's timeout abort) while this write waited behind others.
        await offsetsStore(ctx.broker).storeTxnOffsets(
          req.groupId,
          {
            producerId: req.producerId,
            producerEpoch: req.producerEpoch,
            verify: () => {
              const now = txnCode();
              return now === ErrorCode.NONE ? null : new TxnOffsetsRefused(now);
            },
            onAppended: () => g.addPendingTxnOffsets(req.producerId, req.groupId, offsets),
          },
          offsets,
        );
      } catch (e) {
        code = e instanceof TxnOffsetsRefused ? e.errorCode : storeErrorCode(e, "commit");
      }
    }
    return {
      throttleTimeMs: 0,
      topics: req.topics.map((t) => ({
        name: t.name,
        partitions: t.partitions.map((p) => ({ partitionIndex: p.partitionIndex, errorCode: code })),
      })),
    };
  },
});
