// Maps operating errors of the layers below to Kafka error codes for responses.

import { ErrorCode } from "@sluice/protocol";
import { RecordsError } from "@sluice/protocol/records/errors.ts";
import { StorageError } from "@sluice/storage";

export function errorCodeOf(e: unknown): number {
  if (e instanceof StorageError) {
    // The partition went away under the request (topic deleted, broker stopping): the client
    // refreshes its metadata and retries, as after a leader change.
    if (e.code === "LOG_CLOSED") return ErrorCode.NOT_LEADER_OR_FOLLOWER;
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
