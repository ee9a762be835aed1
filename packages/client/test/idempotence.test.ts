// 10 000 concurrent idempotent send() calls through a proxy that cuts connections mid-request and
// drops responses the broker already acted on: every record is stored exactly once, and each
// partition keeps send() order.

import assert from "node:assert/strict";
import { test } from "node:test";
import { decodeRecords } from "@sluice/protocol/records/record-batch.ts";
import { Producer } from "../src/producer.ts";
import { silent, startProxiedBroker } from "./helpers/util.ts";

test("10 000 concurrent idempotent sends with connections cut: exactly once, in order", {
  timeout: 90_000,
}, async () => {
  const { broker, proxy, bootstrap } = await startProxiedBroker(
    { cutEveryBytes: 60_000, responseCutProbability: 0.05, cutsMax: 12 },
    { "num.partitions": "4" },
  );
  try {
    // The topic is made in the broker itself: the broker advertises the proxy, so an admin client
    // would go through it, and a CreateTopics whose answer the proxy dropped is retried and fails
    // with TOPIC_ALREADY_EXISTS (as in Java) — not what this test is about.
    await broker.broker.context!.topics.create("cut", 4, {});
    const producer = new Producer({
      bootstrapServers: bootstrap,
      lingerMs: 2,
      batchSize: 4096,
      retryBackoffMs: 20,
      reconnectBackoffMs: 10,
      requestTimeoutMs: 5000,
      ...silent,
    });
    const n = 10_000;
    const sent = await Promise.all(
      Array.from({ length: n }, (_, i) => producer.send({ topic: "cut", partition: i % 4, value: String(i) })),
    );
    await producer.close();
    assert.ok(proxy.cuts > 0, "the proxy really cut connections");
    for (let p = 0; p < 4; p++) {
      const part = broker.broker.context!.topics.partition("cut", p)!;
      const values = decodeRecords((await part.log.read(0n, 1 << 26)).records).flatMap((b) =>
        b.records.map((r) => Number(Buffer.from(r.value!).toString())),
      );
      const expected = Array.from({ length: n / 4 }, (_, i) => i * 4 + p);
      assert.deepEqual(values, expected, `partition ${p}: exactly once and in order`);
      const offsets = sent.filter((m) => m.partition === p).map((m) => Number(m.offset));
      assert.deepEqual(
        offsets,
        Array.from({ length: n / 4 }, (_, i) => i),
        `partition ${p}: offsets reported`,
      );
    }
  } finally {
    await proxy.close();
    await broker.stop();
  }
});
