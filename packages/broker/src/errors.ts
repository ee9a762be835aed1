// Maps operating errors of the layers below to Kafka error codes for responses.

import { ErrorCode } from "@sluice/protocol";
import { RecordsError } from "@sluice/protocol/records/errors.ts";
import { StorageError } from "@sluice/storage";

export function errorCodeOf(e: unknown): number {
  if (e instanceof StorageError) {
    const code = (ErrorCode as Record<string, number>)[e.code];
    return code ?? ErrorCode.KAFKA_STORAGE_ERROR;
  }
  if (e instanceof RecordsError)
    return (ErrorCode as Record<string, number>)[e.kafkaError] ?? ErrorCode.CORRUPT_MESSAGE;
  return ErrorCode.UNKNOWN_SERVER_ERROR;
}

export function errorMessageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
