// Idempotent producer under connection cuts: confluent-kafka-python sends 10 000 records through
// a proxy that cuts the link in the middle of requests and drops responses to requests the broker
// already handled; retried batches must be deduplicated by the broker: no duplicates, no gaps,
// order kept.

import assert from "node:assert/strict";
import { createServer } from "node:net";
import { test } from "node:test";
import { hasConfluentKafka, PYTHON, run, startBrokerProcess } from "../helpers/broker-process.ts";
import { startCuttingProxy } from "../helpers/cutting-proxy.ts";

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

test("idempotent producer with connections cut mid-request: no duplicates, no gaps, order kept", {
  skip: !hasConfluentKafka() && "python3-confluent-kafka is not installed",
  timeout: 120_000,
}, async () => {
  const brokerPort = await freePort();
  // The proxy must exist first: the broker advertises the proxy's address, so every connection goes through it.
  const proxy = await startCuttingProxy(brokerPort, {
    cutsMax: 16,
    bytesMin: 20_000,
    bytesMax: 120_000,
    responseCutProbability: 0.03,
  });
  const broker = await startBrokerProcess({
    port: brokerPort,
    config: { "advertised.listeners": `PLAINTEXT://127.0.0.1:${proxy.port}` },
  });
  try {
    const produce = `
import sys
from confluent_kafka import Producer
p = Producer({"bootstrap.servers": sys.argv[1], "enable.idempotence": True, "acks": "all", "linger.ms": 5,
              "batch.num.messages": 200, "message.timeout.ms": 90000, "retry.backoff.ms": 50, "reconnect.backoff.ms": 20})
errors = []
for i in range(10000):
    while True:
        try:
            p.produce("idem", value=b"%d" % i, partition=0, on_delivery=lambda e, m: e and errors.append(str(e)))
            break
        except BufferError:
            p.poll(0.05)
    p.poll(0)
left = p.flush(90)
print("left", left, "errors", len(errors), errors[:3])
sys.exit(0 if left == 0 and not errors else 1)
`;
    const produced = await run(PYTHON, ["-c", produce, `127.0.0.1:${proxy.port}`], { timeoutMs: 110_000 });
    assert.equal(produced.status, 0, `${produced.stdout}\n${produced.stderr.slice(-2000)}`);
    assert.ok(proxy.cuts > 0, "the proxy really cut connections");
    const consume = `
import sys, json
from confluent_kafka import Consumer, TopicPartition
c = Consumer({"bootstrap.servers": sys.argv[1], "group.id": "unused", "enable.auto.commit": False})
c.assign([TopicPartition("idem", 0, 0)])
out = []
idle = 0
while idle < 3:
    m = c.poll(1)
    if m is None: idle += 1; continue
    if m.error(): continue
    out.append(int(m.value()))
c.close()
print(json.dumps(out))
`;
    // Read straight from the broker (the proxy only carries the producer's traffic).
    const consumed = await run(PYTHON, ["-c", consume, `127.0.0.1:${proxy.port}`], { timeoutMs: 60_000 });
    assert.equal(consumed.status, 0, consumed.stderr);
    const values = JSON.parse(consumed.stdout.trim().split("\n").at(-1)!) as number[];
    assert.equal(values.length, 10_000, `no duplicates and no gaps (got ${values.length}, cuts ${proxy.cuts})`);
    assert.deepEqual(
      values,
      Array.from({ length: 10_000 }, (_, i) => i),
      "order kept",
    );
  } finally {
    await broker.cleanup();
    await proxy.close();
  }
});
