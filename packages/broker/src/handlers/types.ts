// The contract between the dispatcher and the per-API handler files.
//
// A handler declares the API key and the contiguous version range it serves, decodes the request
// body, handles it, and encodes the response. Kafka protocol errors are data: a handler returns
// them in the response (per partition, per topic or top level) and never throws them through the
// dispatcher. A thrown exception is a bug or an I/O failure: the dispatcher logs it and closes the
// connection, as Kafka does for requests it cannot process (CloseConnection closes it quietly).
// Returning null sends no response (Produce with acks=0).
//
// Writing one: a file `handlers/<key>-<name>.ts` exporting `defineHandler<XRequest, XResponse>({
// apiKey, name, minVersion, maxVersion, decode: decodeXRequest, encode: encodeXResponse, handle })`
// whose opening comment states the versions served and what differs per version; then one line in
// the registry (handlers/index.ts, or a coordinator's plugin). `handle` gets the decoded request and
// a RequestContext (ctx.apiVersion for per-version behaviour, ctx.broker for config, topics and
// partitions, services) and returns a plain object literal (`Input<XResponse>`: omitted fields take
// their defaults and fields a version lacks are dropped by the encoder). The dispatcher has already
// answered versions outside [minVersion, maxVersion] with UNSUPPORTED_VERSION and closed the
// connection on bodies that do not decode.

import type { Input, Reader, Writer } from "@sluice/protocol";
import type { BrokerContext } from "../context.ts";

/**
 * Thrown by a handler to close the client's connection instead of answering, where Kafka does so
 * on purpose (a failed acks=0 produce: the producer has no other way to notice). Not a bug: the
 * dispatcher logs it at debug level.
 */
export class CloseConnection extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = "CloseConnection";
  }
}

export interface RequestContext {
  readonly broker: BrokerContext;
  readonly apiKey: number;
  readonly apiVersion: number;
  readonly correlationId: number;
  readonly clientId: string | null;
  /** Unique per connection; e.g. for client-specific state. */
  readonly connectionId: number;
  readonly clientHost: string;
  /** Aborted when the connection closes or the broker stops: long waits (Fetch) end early. */
  readonly signal: AbortSignal;
}

export interface Handler<Req, Res> {
  readonly apiKey: number;
  readonly name: string;
  readonly minVersion: number;
  readonly maxVersion: number;
  decode(r: Reader, version: number): Req;
  encode(w: Writer, res: Input<Res>, version: number): void;
  /** Returns the response, or null when none is sent (Produce with acks=0). */
  handle(req: Req, ctx: RequestContext): Promise<Input<Res> | null> | Input<Res> | null;
}

/** A handler with its request/response types erased, as the registry stores it. */
export interface AnyHandler {
  readonly apiKey: number;
  readonly name: string;
  readonly minVersion: number;
  readonly maxVersion: number;
  decode(r: Reader, version: number): unknown;
  encode(w: Writer, res: unknown, version: number): void;
  handle(req: unknown, ctx: RequestContext): Promise<unknown> | unknown;
}

export function defineHandler<Req, Res>(h: Handler<Req, Res>): AnyHandler {
  return h as unknown as AnyHandler;
}
