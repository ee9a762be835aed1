// Transaction calls the txn tests share: InitProducerId with a transactional id, AddPartitionsToTxn
// and EndTxn, each at one version, as plain wire requests.

import assert from "node:assert/strict";
import { ErrorCode } from "@sluice/protocol";
import { AddPartitionsToTxn, EndTxn, InitProducerId } from "../group/group-apis.ts";
import type { WireClient } from "../helpers.ts";

export interface ProducerIdAndEpoch {
  producerId: bigint;
  producerEpoch: number;
}

/** InitProducerId v4 for a transactional id (asserted to succeed). */
export async function initTxn(c: WireClient, transactionalId: string, timeoutMs = 60_000): Promise<ProducerIdAndEpoch> {
  const r = await c.call(InitProducerId, 4, {
    transactionalId,
    transactionTimeoutMs: timeoutMs,
    producerId: -1n,
    producerEpoch: -1,
  });
  assert.equal(r.errorCode, ErrorCode.NONE);
  return { producerId: r.producerId, producerEpoch: r.producerEpoch };
}

/** AddPartitionsToTxn v3: the error code of each partition. */
export async function addPartitions(
  c: WireClient,
  transactionalId: string,
  p: ProducerIdAndEpoch,
  topic: string,
  partitions: number[],
): Promise<number[]> {
  const r = await c.call(AddPartitionsToTxn, 3, {
    v3AndBelowTransactionalId: transactionalId,
    v3AndBelowProducerId: p.producerId,
    v3AndBelowProducerEpoch: p.producerEpoch,
    v3AndBelowTopics: [{ name: topic, partitions }],
  });
  return r.resultsByTopicV3AndBelow.flatMap((t) => t.resultsByPartition.map((x) => x.partitionErrorCode));
}

/** EndTxn (v3 unless asked): its error code. */
export async function endTxn(
  c: WireClient,
  transactionalId: string,
  p: ProducerIdAndEpoch,
  committed: boolean,
  version = 3,
): Promise<number> {
  const r = await c.call(EndTxn, version, {
    transactionalId,
    producerId: p.producerId,
    producerEpoch: p.producerEpoch,
    committed,
  });
  return r.errorCode;
}
