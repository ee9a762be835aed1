// Operating errors of the layers below, mapped to the Kafka error codes handlers answer with.

import assert from "node:assert/strict";
import { test } from "node:test";
import { ErrorCode } from "@sluice/protocol";
import { RecordsError } from "@sluice/protocol/records/errors.ts";
import { OffsetOutOfRangeError, StorageError } from "@sluice/storage";
import { errorCodeOf } from "../src/errors.ts";

test("storage and record errors map to Kafka's codes; anything else is UNKNOWN_SERVER_ERROR", () => {
  assert.equal(errorCodeOf(new StorageError("MESSAGE_TOO_LARGE", "big")), ErrorCode.MESSAGE_TOO_LARGE);
  assert.equal(errorCodeOf(new StorageError("KAFKA_STORAGE_ERROR", "EIO")), ErrorCode.KAFKA_STORAGE_ERROR);
  assert.equal(errorCodeOf(new StorageError("LOG_CLOSED", "deleted")), ErrorCode.NOT_LEADER_OR_FOLLOWER);
  assert.equal(errorCodeOf(new OffsetOutOfRangeError(9n, 0n, 1n)), ErrorCode.OFFSET_OUT_OF_RANGE);
  assert.equal(errorCodeOf(new RecordsError("CRC_MISMATCH", "crc")), ErrorCode.CORRUPT_MESSAGE);
  assert.equal(errorCodeOf(new RecordsError("UNSUPPORTED_MAGIC", "v1")), ErrorCode.UNSUPPORTED_FOR_MESSAGE_FORMAT);
  assert.equal(errorCodeOf(new Error("bug")), ErrorCode.UNKNOWN_SERVER_ERROR);
});
