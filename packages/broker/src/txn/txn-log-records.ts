// The records of `__transaction_state`, in Kafka's schemas (coordinator-records/TransactionLog*),
// so that tools reading the topic understand them: key = int16 version (0) + TransactionLogKey,
// value = int16 version (1, flexible) + TransactionLogValue, a null value being a tombstone.

import {
  decodeTransactionLogKey,
  encodeTransactionLogKey,
} from "@sluice/protocol/generated/coordinator/transaction-log-key.ts";
import {
  decodeTransactionLogValue,
  encodeTransactionLogValue,
} from "@sluice/protocol/generated/coordinator/transaction-log-value.ts";
import { Reader, Writer } from "@sluice/protocol/primitives.ts";
import type { TopicPartition, TxnLogValue, TxnStateId } from "./transaction-coordinator.ts";

const KEY_VERSION = 0;
const VALUE_VERSION = 1;

export function encodeTxnKey(transactionalId: string): Buffer {
  const w = new Writer();
  w.writeInt16(KEY_VERSION);
  encodeTransactionLogKey(w, { transactionalId }, KEY_VERSION);
  return w.toBuffer();
}

export function encodeTxnValue(v: TxnLogValue): Buffer {
  const byTopic = new Map<string, number[]>();
  for (const tp of v.partitions) {
    const list = byTopic.get(tp.topic) ?? [];
    list.push(tp.partition);
    byTopic.set(tp.topic, list);
  }
  const w = new Writer();
  w.writeInt16(VALUE_VERSION);
  encodeTransactionLogValue(
    w,
    {
      producerId: v.producerId,
      previousProducerId: v.previousProducerId,
      producerEpoch: v.producerEpoch,
      transactionTimeoutMs: v.txnTimeoutMs,
      transactionStatus: v.state,
      transactionPartitions: [...byTopic].map(([topic, partitionIds]) => ({ topic, partitionIds })),
      transactionLastUpdateTimestampMs: v.txnLastUpdateTimestampMs,
      transactionStartTimestampMs: v.txnStartTimestampMs,
    },
    VALUE_VERSION,
  );
  return w.toBuffer();
}

export function decodeTxnKey(key: Uint8Array): string {
  const r = new Reader(key);
  const version = r.readInt16("TransactionLogKey.version");
  return decodeTransactionLogKey(r, version).transactionalId;
}

export function decodeTxnValue(value: Uint8Array | null): TxnLogValue | null {
  if (value === null) return null;
  const r = new Reader(value);
  const version = r.readInt16("TransactionLogValue.version");
  const v = decodeTransactionLogValue(r, version);
  const partitions: TopicPartition[] = (v.transactionPartitions ?? []).flatMap((t) =>
    t.partitionIds.map((partition) => ({ topic: t.topic, partition })),
  );
  return {
    producerId: v.producerId,
    previousProducerId: v.previousProducerId,
    producerEpoch: v.producerEpoch,
    txnTimeoutMs: v.transactionTimeoutMs,
    state: v.transactionStatus as TxnStateId,
    partitions,
    txnStartTimestampMs: v.transactionStartTimestampMs,
    txnLastUpdateTimestampMs: v.transactionLastUpdateTimestampMs,
  };
}
