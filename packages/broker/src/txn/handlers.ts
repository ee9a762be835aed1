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

export function txnErrorCode(e: TxnError): number {
  return ErrorCode[e];
}
