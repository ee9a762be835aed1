// Shared helpers of the transaction handlers.
import { ErrorCode } from "@sluice/protocol";
import type { BrokerContext } from "../context.ts";
import type { FileProducerIdAllocator } from "./producer-id-allocator.ts";
import type { TxnStateStore } from "./state-store.ts";
import type { TransactionCoordinator, TxnError } from "./transaction-coordinator.ts";

export function txns(b: BrokerContext): TransactionCoordinator {
  const t = b.services.get("transactions") as TransactionCoordinator | undefined;
  if (!t) throw new Error("transaction coordinator is not running");
  return t;
}

export function txnStore(b: BrokerContext): TxnStateStore {
  return b.services.get("txnStore") as TxnStateStore;
}

export function producerIds(b: BrokerContext): FileProducerIdAllocator {
  return b.services.get("producerIds") as FileProducerIdAllocator;
}

/**
 * The error code for a client at `version`: PRODUCER_FENCED (90) exists only from the API version
 * given in `fencedFrom` (KIP-588); older clients get INVALID_PRODUCER_EPOCH, as Kafka answers them.
 */
export function txnErrorCode(e: TxnError, version: number, fencedFrom: number): number {
  if (e === "PRODUCER_FENCED" && version < fencedFrom) return ErrorCode.INVALID_PRODUCER_EPOCH;
  return ErrorCode[e];
}
