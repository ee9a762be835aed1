// Operating errors of the storage layer: a stable `code` (a Kafka error name where one fits, so the
// broker maps it straight to a response code), a `cause`, and whether retrying can help.
// Broken invariants are not reported here: they are assertions (bugs).

export type StorageErrorCode =
  /** An I/O failure (EIO, ENOSPC, a failed fsync): the operation did not happen; the log is consistent. */
  | "KAFKA_STORAGE_ERROR"
  /** Bytes that are not a valid record batch: from a client (CRC, structure) or found on disk. */
  | "CORRUPT_MESSAGE"
  /** A well-formed batch that breaks a rule (record count vs offsets, offsets going backwards). */
  | "INVALID_RECORD"
  | "OFFSET_OUT_OF_RANGE"
  /** A batch larger than max.message.bytes. */
  | "MESSAGE_TOO_LARGE"
  /** The log was closed (or deleted) before or during the operation. */
  | "LOG_CLOSED";

const RETRIABLE: Record<StorageErrorCode, boolean> = {
  KAFKA_STORAGE_ERROR: true,
  CORRUPT_MESSAGE: true,
  INVALID_RECORD: false,
  OFFSET_OUT_OF_RANGE: false,
  MESSAGE_TOO_LARGE: false,
  LOG_CLOSED: true,
};

export class StorageError extends Error {
  readonly code: StorageErrorCode;
  readonly retriable: boolean;
  constructor(code: StorageErrorCode, message: string, opts: { cause?: unknown; retriable?: boolean } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = "StorageError";
    this.code = code;
    this.retriable = opts.retriable ?? RETRIABLE[code];
  }
}

/** A fetch or DeleteRecords outside [logStartOffset, logEndOffset] (or the high watermark for DeleteRecords). */
export class OffsetOutOfRangeError extends StorageError {
  readonly offset: bigint;
  readonly logStartOffset: bigint;
  readonly logEndOffset: bigint;
  constructor(offset: bigint, logStartOffset: bigint, logEndOffset: bigint) {
    super("OFFSET_OUT_OF_RANGE", `offset ${offset} is outside [${logStartOffset}, ${logEndOffset}]`);
    this.name = "OffsetOutOfRangeError";
    this.offset = offset;
    this.logStartOffset = logStartOffset;
    this.logEndOffset = logEndOffset;
  }
}

/** Wraps an I/O failure as a retriable KAFKA_STORAGE_ERROR (a StorageError passes through unchanged). */
export function ioError(what: string, cause: unknown): StorageError {
  if (cause instanceof StorageError) return cause;
  const code = (cause as { code?: unknown } | null)?.code;
  const detail = typeof code === "string" ? code : ((cause as Error | null)?.message ?? String(cause));
  return new StorageError("KAFKA_STORAGE_ERROR", `${what}: ${detail}`, { cause });
}
