// Request and response headers, and the choice of header version per API version.
//
// Request header v0 (only ControlledShutdown v0) has no client id; v1 adds client_id as a
// non-compact nullable string; v2 (flexible requests) adds a tagged-field section, while
// client_id stays non-compact. Response header v1 (flexible responses) adds tagged fields,
// except that ApiVersions responses always use header v0 so that a client that sent a version
// the broker does not know can still read the error.

import { isFlexibleVersion } from "./generated/api-keys.ts";
import type { RequestHeader } from "./generated/headers.ts";
import { decodeRequestHeader, encodeRequestHeader, encodeResponseHeader } from "./generated/headers.ts";
import type { Writer } from "./primitives.ts";
import { DecodeError, ProtocolDecodeError, Reader } from "./primitives.ts";

export const API_VERSIONS_KEY = 18;
const CONTROLLED_SHUTDOWN_KEY = 7;

export function requestHeaderVersion(apiKey: number, apiVersion: number): number {
  if (apiKey === CONTROLLED_SHUTDOWN_KEY && apiVersion === 0) return 0;
  return isFlexibleVersion(apiKey, apiVersion) ? 2 : 1;
}

export function responseHeaderVersion(apiKey: number, apiVersion: number): number {
  if (apiKey === API_VERSIONS_KEY) return 0;
  return isFlexibleVersion(apiKey, apiVersion) ? 1 : 0;
}

export interface DecodedRequestHeader {
  readonly header: RequestHeader;
  readonly headerVersion: number;
  /** Reader positioned at the start of the request body. */
  readonly body: Reader;
}

/**
 * Decodes the header of one request frame (the bytes after the size prefix). An API key the
 * specs do not know is decoded with header v1, so the caller still learns the correlation id.
 */
export function readRequestHeader(frame: Uint8Array, reader?: Reader): DecodedRequestHeader {
  const r = reader ?? new Reader(frame);
  if (r.remaining < 4) throw new ProtocolDecodeError("RequestHeader", 0, "requestApiKey", "frame shorter than 4 bytes");
  const apiKey = r.view.getInt16(r.pos);
  const apiVersion = r.view.getInt16(r.pos + 2);
  const headerVersion = requestHeaderVersion(apiKey, apiVersion);
  const header = decodeRequestHeader(r, headerVersion);
  return { header, headerVersion, body: r };
}

export function writeRequestHeader(w: Writer, header: RequestHeader): void {
  encodeRequestHeader(w, header, requestHeaderVersion(header.requestApiKey, header.requestApiVersion));
}

export function writeResponseHeader(w: Writer, apiKey: number, apiVersion: number, correlationId: number): void {
  encodeResponseHeader(w, { correlationId }, responseHeaderVersion(apiKey, apiVersion));
}

export { DecodeError };
