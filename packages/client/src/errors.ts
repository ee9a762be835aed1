// One error hierarchy for the client. Every error the client throws or rejects with is a
// KafkaError: `code` is a stable name (the Kafka error name for errors a broker returned, such as
// NOT_LEADER_OR_FOLLOWER; a Kafka-style name for client-side conditions, such as
// REQUEST_TIMED_OUT or BUFFER_EXHAUSTED), `errorCode` the Kafka numeric code when there is one,
// `retriable` whether trying again may succeed, and `results` the per-item outcome of a call that
// failed only in part (an admin call over several topics, a batch of records).

import { ERRORS_BY_CODE } from "@sluice/protocol";

/** The outcome of one item of a call that acts on several (a topic, a partition, a record). */
export interface ItemResult<T = unknown> {
  /** What the item is: a topic name, "topic-partition", a record index. */
  readonly item: string;
  /** null when this item succeeded. */
  readonly error: KafkaError | null;
  /** The item's result when it succeeded. */
  readonly value?: T;
}

export interface KafkaErrorOptions {
  readonly errorCode?: number | null;
  readonly retriable?: boolean;
  readonly cause?: unknown;
  readonly results?: readonly ItemResult[];
}

export class KafkaError extends Error {
  /** Stable name of the condition: the Kafka error name, or a client condition. */
  readonly code: string;
  /** Kafka's numeric error code (e.g. 6 for NOT_LEADER_OR_FOLLOWER), null for client-only conditions. */
  readonly errorCode: number | null;
  readonly retriable: boolean;
  /** Per-item outcomes when the call failed only in part; empty otherwise. */
  readonly results: readonly ItemResult[];

  constructor(code: string, message: string, opts: KafkaErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = "KafkaError";
    this.code = code;
    this.errorCode = opts.errorCode ?? null;
    this.retriable = opts.retriable ?? false;
    this.results = opts.results ?? [];
  }
}

/** An error code a broker returned. */
export class KafkaProtocolError extends KafkaError {
  declare readonly errorCode: number;
  constructor(errorCode: number, context: string, brokerMessage?: string | null) {
    const info = ERRORS_BY_CODE.get(errorCode);
    const name = info?.name ?? `UNKNOWN_ERROR_CODE_${errorCode}`;
    super(name, `${context}: ${name} (${errorCode})${brokerMessage ? `: ${brokerMessage}` : ""}`, {
      errorCode,
      retriable: info?.retriable ?? false,
    });
    this.name = "KafkaProtocolError";
  }
}

/** The connection to a broker failed or was closed (Kafka's NETWORK_EXCEPTION). */
export class ConnectionError extends KafkaError {
  constructor(message: string, cause?: unknown) {
    super("NETWORK_EXCEPTION", message, { errorCode: 13, retriable: true, cause });
    this.name = "ConnectionError";
  }
}

/** No response within requestTimeoutMs (request.timeout.ms). */
export class RequestTimeoutError extends KafkaError {
  constructor(message: string) {
    super("REQUEST_TIMED_OUT", message, { errorCode: 7, retriable: true });
    this.name = "RequestTimeoutError";
  }
}

/** A record larger than maxRequestSize (max.request.size) or bufferMemory (buffer.memory). */
export class RecordTooLargeError extends KafkaError {
  constructor(size: number, max: number, option = "maxRequestSize (max.request.size)") {
    super("RECORD_TOO_LARGE", `a record of ${size} bytes is larger than ${option} ${max}`, { errorCode: 10 });
    this.name = "RecordTooLargeError";
  }
}

/** No buffer space within maxBlockMs (max.block.ms), or at once for trySend(). */
export class BufferExhaustedError extends KafkaError {
  constructor(message: string) {
    super("BUFFER_EXHAUSTED", message, { retriable: true });
    this.name = "BufferExhaustedError";
  }
}

/** A record not acknowledged within deliveryTimeoutMs (delivery.timeout.ms). */
export class DeliveryTimeoutError extends KafkaError {
  constructor(message: string, cause?: unknown) {
    super("DELIVERY_TIMEOUT", message, { retriable: true, cause });
    this.name = "DeliveryTimeoutError";
  }
}

/** Bad or inconsistent options. */
export class ConfigError extends KafkaError {
  constructor(message: string) {
    super("INVALID_CONFIG", message);
    this.name = "ConfigError";
  }
}

/** Some items of a call failed; `results` has every item's outcome. */
export class PartialFailureError extends KafkaError {
  constructor(what: string, results: readonly ItemResult[]) {
    const failed = results.filter((r) => r.error !== null);
    const first = failed[0]?.error;
    super(
      "PARTIAL_FAILURE",
      `${what}: ${failed.length} of ${results.length} failed: ${failed
        .slice(0, 5)
        .map((f) => `${f.item}: ${f.error?.message}`)
        .join("; ")}`,
      { results, retriable: failed.every((f) => f.error?.retriable === true), cause: first },
    );
    this.name = "PartialFailureError";
  }
}

/** The operation was cancelled (AbortSignal) or the client was closed while it waited. */
export class AbortedError extends KafkaError {
  constructor(message: string) {
    super("ABORTED", message);
    this.name = "AbortedError";
  }
}

/** The client was used after close(). */
export class ClosedError extends KafkaError {
  constructor(what: string) {
    super("CLIENT_CLOSED", `the ${what} is closed`);
    this.name = "ClosedError";
  }
}

/** A KafkaProtocolError for `errorCode`, or null for NONE (0). */
export function protocolError(errorCode: number, context: string, message?: string | null): KafkaProtocolError | null {
  return errorCode === 0 ? null : new KafkaProtocolError(errorCode, context, message);
}

export function isRetriable(e: unknown): boolean {
  return e instanceof KafkaError && e.retriable;
}
