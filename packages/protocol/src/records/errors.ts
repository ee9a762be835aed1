// Errors raised while reading or building record batches (format: ./batch-header.ts and
// ./record-batch.ts). Each has a stable `code`, the Kafka error a broker answers with when the
// batch came from a client (`kafkaError`, a name of the generated ErrorCode table), and whether
// Kafka clients treat that error as retriable.

export type RecordsErrorCode =
  /** The bytes end before the structure they announce (a torn write, a cut-off fetch). */
  | "TRUNCATED"
  /** A structural rule is broken: lengths, counts, offset deltas, header keys. */
  | "CORRUPT_RECORD"
  | "CRC_MISMATCH"
  /** Message format v0/v1 (or an unknown magic): only v2 batches are supported. */
  | "UNSUPPORTED_MAGIC"
  /** Compression codec 5-7 in the attributes. */
  | "UNSUPPORTED_COMPRESSION"
  /** The decompressed records would exceed the caller's bound (a decompression bomb, or a bound set too low). */
  | "DECOMPRESSION_LIMIT"
  /** The compressed block is not valid for its codec. */
  | "DECOMPRESSION_FAILED"
  /** A writer was handed a buffer too small for what it must write (a caller bug). */
  | "BUFFER_TOO_SMALL";

export type RecordsKafkaError =
  | "CORRUPT_MESSAGE"
  | "INVALID_RECORD"
  | "UNSUPPORTED_COMPRESSION_TYPE"
  | "UNSUPPORTED_FOR_MESSAGE_FORMAT"
  | "UNKNOWN_SERVER_ERROR";

const KAFKA_ERROR: Record<RecordsErrorCode, RecordsKafkaError> = {
  TRUNCATED: "CORRUPT_MESSAGE",
  CORRUPT_RECORD: "CORRUPT_MESSAGE",
  CRC_MISMATCH: "CORRUPT_MESSAGE",
  // The Produce handler documents this answer for pre-0.11 message formats.
  UNSUPPORTED_MAGIC: "UNSUPPORTED_FOR_MESSAGE_FORMAT",
  UNSUPPORTED_COMPRESSION: "UNSUPPORTED_COMPRESSION_TYPE",
  // Not retriable: sending the same batch again cannot help.
  DECOMPRESSION_LIMIT: "INVALID_RECORD",
  DECOMPRESSION_FAILED: "CORRUPT_MESSAGE",
  BUFFER_TOO_SMALL: "UNKNOWN_SERVER_ERROR",
};

/** Kafka's retriable flag for each error we map to (CORRUPT_MESSAGE is retriable: bytes may break in transit). */
const RETRIABLE: Record<RecordsKafkaError, boolean> = {
  CORRUPT_MESSAGE: true,
  INVALID_RECORD: false,
  UNSUPPORTED_COMPRESSION_TYPE: false,
  UNSUPPORTED_FOR_MESSAGE_FORMAT: false,
  UNKNOWN_SERVER_ERROR: false,
};

export class RecordsError extends Error {
  readonly code: RecordsErrorCode;
  /** The Kafka error a broker returns for this problem. */
  readonly kafkaError: RecordsKafkaError;
  readonly retriable: boolean;
  constructor(code: RecordsErrorCode, message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = "RecordsError";
    this.code = code;
    this.kafkaError = KAFKA_ERROR[code];
    this.retriable = RETRIABLE[this.kafkaError];
  }
}
