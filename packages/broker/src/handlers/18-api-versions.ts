// ApiVersions (key 18), versions 0–4. Lists every API this broker has a handler for, with the
// whole version range it serves. v3+ (flexible) carries client software name/version, which we
// accept and ignore. A request newer than v4 is answered per KIP-511 by the dispatcher: a v0-format
// body with UNSUPPORTED_VERSION and this list, so the client can retry at a version we know.

import type { ApiVersionsRequest, ApiVersionsResponse } from "@sluice/protocol";
import { decodeApiVersionsRequest, ErrorCode, encodeApiVersionsResponse } from "@sluice/protocol";
import { defineHandler } from "./types.ts";

export interface VersionRange {
  readonly apiKey: number;
  readonly minVersion: number;
  readonly maxVersion: number;
}

export const apiVersionsHandler = defineHandler<ApiVersionsRequest | null, ApiVersionsResponse>({
  apiKey: 18,
  name: "ApiVersions",
  minVersion: 0,
  maxVersion: 4,
  decode: (r, v) => decodeApiVersionsRequest(r, v),
  encode: (w, res, v) => encodeApiVersionsResponse(w, res, v),
  handle(req, ctx) {
    const apiKeys = ctx.broker.apis.map((a) => ({
      apiKey: a.apiKey,
      minVersion: a.minVersion,
      maxVersion: a.maxVersion,
    }));
    // req is null when the dispatcher answers an unsupported ApiVersions version (KIP-511).
    if (req === null || ctx.apiVersion > 4) return { errorCode: ErrorCode.UNSUPPORTED_VERSION, apiKeys };
    return { errorCode: ErrorCode.NONE, apiKeys, throttleTimeMs: 0 };
  },
});
