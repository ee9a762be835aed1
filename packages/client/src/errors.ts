// One error hierarchy for the client: Kafka protocol errors carry the Kafka error name and code
// and whether retrying can help; operating errors (connection, timeout, configuration) have a
// stable `code` of their own.

import { ERRORS_BY_CODE } from "@sluice/protocol";

export class KafkaClientError extends Error {
  readonly code: string;
  readonly retriable: boolean;
  constructor(code: string, message: string, opts: { retriable?: boolean; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = "KafkaClientError";
    this.code = code;
    this.retriable = opts.retriable ?? false;
  }
}

/** An error code returned by a broker. */
export class KafkaProtocolError extends KafkaClientError {
  readonly errorCode: number;
  constructor(errorCode: number, context: string) {
    const info = ERRORS_BY_CODE.get(errorCode);
    const name = info?.name ?? `UNKNOWN_ERROR_${errorCode}`;
    super(name, `${context}: ${name} (${errorCode})`, { retriable: info?.retriable ?? false });
    this.name = "KafkaProtocolError";
    this.errorCode = errorCode;
  }
}

export class ConnectionError extends KafkaClientError {
  constructor(message: string, cause?: unknown) {
    super("CONNECTION_ERROR", message, { retriable: true, cause });
    this.name = "ConnectionError";
  }
}

export class RequestTimeoutError extends KafkaClientError {
  constructor(message: string) {
    super("REQUEST_TIMED_OUT", message, { retriable: true });
    this.name = "RequestTimeoutError";
  }
}

export class RecordTooLargeError extends KafkaClientError {
  constructor(size: number, max: number) {
    super("RECORD_TOO_LARGE", `record of ${size} bytes exceeds maxRequestSize (max.request.size) ${max}`);
    this.name = "RecordTooLargeError";
  }
}

export class BufferExhaustedError extends KafkaClientError {
  constructor(message: string) {
    super("BUFFER_EXHAUSTED", message, { retriable: true });
    this.name = "BufferExhaustedError";
  }
}
