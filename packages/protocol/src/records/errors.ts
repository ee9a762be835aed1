// Errors raised while reading or building record batches. Each has a stable `code` and the Kafka
// error name a broker answers with when the batch came from a client.

export type RecordsErrorCode =
  | "TRUNCATED"
  | "CORRUPT_RECORD"
  | "CRC_MISMATCH"
  | "UNSUPPORTED_MAGIC"
  | "UNSUPPORTED_COMPRESSION"
  | "DECOMPRESSION_LIMIT"
  | "DECOMPRESSION_FAILED";

const KAFKA_ERROR: Record<RecordsErrorCode, string> = {
  TRUNCATED: "CORRUPT_MESSAGE",
  CORRUPT_RECORD: "CORRUPT_MESSAGE",
  CRC_MISMATCH: "CORRUPT_MESSAGE",
  UNSUPPORTED_MAGIC: "UNSUPPORTED_FOR_MESSAGE_FORMAT",
  UNSUPPORTED_COMPRESSION: "UNSUPPORTED_COMPRESSION_TYPE",
  DECOMPRESSION_LIMIT: "CORRUPT_MESSAGE",
  DECOMPRESSION_FAILED: "CORRUPT_MESSAGE",
};

export class RecordsError extends Error {
  readonly code: RecordsErrorCode;
  /** The Kafka error a broker returns for this problem. */
  readonly kafkaError: string;
  constructor(code: RecordsErrorCode, message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = "RecordsError";
    this.code = code;
    this.kafkaError = KAFKA_ERROR[code];
  }
}
