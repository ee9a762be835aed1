// Connection against a real Sluice broker behind a proxy that can hold responses back.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ApiKey, decodeMetadataResponse, encodeMetadataRequest } from "@sluice/protocol";
import { Connection } from "../src/connection.ts";
import { RequestTimeoutError } from "../src/errors.ts";
import { type RunningBroker, startProxiedBroker, type TestProxy } from "./helpers/util.ts";

describe("connection", () => {
  let slow: { broker: RunningBroker; proxy: TestProxy; bootstrap: string };
  before(async () => {
    slow = await startProxiedBroker();
  });
  after(async () => {
    await slow.proxy.close();
    await slow.broker.stop();
  });

  const metadata = (c: Connection) =>
    c.request(
      ApiKey.Metadata,
      [1, 12],
      (w, v) =>
        encodeMetadataRequest(
          w,
          { topics: [], allowAutoTopicCreation: false, includeTopicAuthorizedOperations: false },
          v,
        ),
      decodeMetadataResponse,
    );

  test("each request gets its whole requestTimeoutMs, counted from when it was sent", async () => {
    const timeoutMs = 400;
    const c = await Connection.open("127.0.0.1", slow.proxy.port, {
      clientId: "timeouts",
      requestTimeoutMs: timeoutMs,
      connectTimeoutMs: 10_000,
    });
    try {
      await metadata(c); // answered: no timeout
      await new Promise((r) => setTimeout(r, timeoutMs * 0.6));
      slow.proxy.stall();
      const sentAt = performance.now();
      let settledAt = -1;
      const late = metadata(c).finally(() => {
        settledAt = performance.now();
      });
      late.catch(() => {});
      // Past the first request's deadline, before this one's: it must still be waiting.
      await new Promise((r) => setTimeout(r, timeoutMs * 0.6));
      assert.equal(settledAt, -1, "a request failed before its own requestTimeoutMs had passed");
      await assert.rejects(late, RequestTimeoutError);
      assert.ok(settledAt - sentAt >= timeoutMs, `timed out after ${settledAt - sentAt} ms`);
      assert.ok(c.closed, "a timed-out request closes its connection");
      await assert.rejects(metadata(c));
    } finally {
      slow.proxy.release();
      c.close();
    }
  });
});
