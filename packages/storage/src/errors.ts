// Operating errors of the storage layer: a stable `code`, a `cause`, and whether retrying helps.

export type StorageErrorCode =
  | "KAFKA_STORAGE_ERROR"
  | "CORRUPT_MESSAGE"
  | "INVALID_RECORD"
  | "OFFSET_OUT_OF_RANGE"
  | "MESSAGE_TOO_LARGE"
  | "LOG_CLOSED";

export class StorageError extends Error {
  readonly code: StorageErrorCode;
  readonly retriable: boolean;
  constructor(code: StorageErrorCode, message: string, opts: { cause?: unknown; retriable?: boolean } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = "StorageError";
    this.code = code;
    this.retriable = opts.retriable ?? code === "KAFKA_STORAGE_ERROR";
  }
}

export class OffsetOutOfRangeError extends StorageError {
  readonly logStartOffset: bigint;
  readonly logEndOffset: bigint;
  constructor(offset: bigint, logStartOffset: bigint, logEndOffset: bigint) {
    super("OFFSET_OUT_OF_RANGE", `offset ${offset} is outside [${logStartOffset}, ${logEndOffset}]`);
    this.logStartOffset = logStartOffset;
    this.logEndOffset = logEndOffset;
  }
}
