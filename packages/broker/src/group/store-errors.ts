// Maps a failed write to __consumer_offsets to the error code the group APIs answer with, as Kafka's
// GroupMetadataManager does (storeOffsets / storeGroup callbacks): first the append's own error (as a
// Produce would get it, errors.ts), then the coordinator's translation of it, which tells the client
// to look the coordinator up again rather than exposing partition-level errors.

import { ErrorCode } from "@sluice/protocol";
import { errorCodeOf } from "../errors.ts";

/** The group's __consumer_offsets partition is not hosted here (or the topic could not be created). */
export class OffsetsPartitionMissingError extends Error {
  readonly code = "UNKNOWN_TOPIC_OR_PARTITION";
  constructor(partition: number) {
    super(`__consumer_offsets partition ${partition} missing`);
    this.name = "OffsetsPartitionMissingError";
  }
}

/**
 * The code for the requests whose records a failed append held. `commit`: OffsetCommit and
 * TxnOffsetCommit (a too-large batch is INVALID_COMMIT_OFFSET_SIZE); otherwise a group-metadata
 * write (SyncGroup), where it is UNKNOWN_SERVER_ERROR.
 */
export function storeErrorCode(e: unknown, kind: "commit" | "group"): number {
  const append = e instanceof OffsetsPartitionMissingError ? ErrorCode.UNKNOWN_TOPIC_OR_PARTITION : errorCodeOf(e);
  switch (append) {
    case ErrorCode.UNKNOWN_TOPIC_OR_PARTITION:
    case ErrorCode.NOT_ENOUGH_REPLICAS:
    case ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND:
      return ErrorCode.COORDINATOR_NOT_AVAILABLE;
    case ErrorCode.NOT_LEADER_OR_FOLLOWER:
    case ErrorCode.KAFKA_STORAGE_ERROR:
      return ErrorCode.NOT_COORDINATOR;
    case ErrorCode.REQUEST_TIMED_OUT:
      return kind === "group" ? ErrorCode.REBALANCE_IN_PROGRESS : ErrorCode.REQUEST_TIMED_OUT;
    case ErrorCode.MESSAGE_TOO_LARGE:
    case ErrorCode.RECORD_LIST_TOO_LARGE:
    case ErrorCode.INVALID_FETCH_SIZE:
      return kind === "commit" ? ErrorCode.INVALID_COMMIT_OFFSET_SIZE : ErrorCode.UNKNOWN_SERVER_ERROR;
    default:
      return append;
  }
}
