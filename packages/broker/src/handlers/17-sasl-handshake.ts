// SaslHandshake (key 17), versions 0–1, and SaslAuthenticate (key 36), versions 0–2. No SASL
// mechanism is configured on this listener yet: the handshake answers
// UNSUPPORTED_SASL_MECHANISM with an empty mechanism list, and authentication ILLEGAL_SASL_STATE,
// so clients configured for SASL fail with a clear message instead of hanging.

import type {
  SaslAuthenticateRequest,
  SaslAuthenticateResponse,
  SaslHandshakeRequest,
  SaslHandshakeResponse,
} from "@sluice/protocol";
import {
  decodeSaslAuthenticateRequest,
  decodeSaslHandshakeRequest,
  ErrorCode,
  encodeSaslAuthenticateResponse,
  encodeSaslHandshakeResponse,
} from "@sluice/protocol";
import { defineHandler } from "./types.ts";

export const saslHandshakeHandler = defineHandler<SaslHandshakeRequest, SaslHandshakeResponse>({
  apiKey: 17,
  name: "SaslHandshake",
  minVersion: 0,
  maxVersion: 1,
  decode: (r, v) => decodeSaslHandshakeRequest(r, v),
  encode: (w, res, v) => encodeSaslHandshakeResponse(w, res, v),
  handle: () => ({ errorCode: ErrorCode.UNSUPPORTED_SASL_MECHANISM, mechanisms: [] }),
});

export const saslAuthenticateHandler = defineHandler<SaslAuthenticateRequest, SaslAuthenticateResponse>({
  apiKey: 36,
  name: "SaslAuthenticate",
  minVersion: 0,
  maxVersion: 2,
  decode: (r, v) => decodeSaslAuthenticateRequest(r, v),
  encode: (w, res, v) => encodeSaslAuthenticateResponse(w, res, v),
  handle: () => ({
    errorCode: ErrorCode.ILLEGAL_SASL_STATE,
    errorMessage: "SASL is not enabled on this listener",
    authBytes: new Uint8Array(0),
  }),
});
