// Real bytes from real clients: kcat, confluent-kafka-python (both librdkafka) and kafkajs connect
// to a capture server and produce with each codec. Every request they send must decode, and
// re-encoding the decoded header and body must give back exactly the bytes they sent.

import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { ProduceRequest } from "../src/generated/produce.ts";
import { readRequestHeader, writeRequestHeader } from "../src/header.ts";
import { Writer } from "../src/primitives.ts";
import { decodeRecords } from "../src/records/record-batch.ts";
import { type CapturedFrame, type CaptureServer, startCaptureServer } from "./helpers/capture-server.ts";
import { requestCodec } from "./helpers/codec-lookup.ts";

const PRODUCE = 0;
const CODECS = ["none", "gzip", "snappy", "lz4", "zstd"] as const;
const hasKcat = spawnSync("kcat", ["-V"]).status === 0;
const hasPython =
  existsSync("/usr/bin/python3") && spawnSync("/usr/bin/python3", ["-c", "import confluent_kafka"]).status === 0;

/** Frames captured from every client, by client name, for the checks below and the fuzz test. */
export const captured = new Map<string, CapturedFrame[]>();

async function assertReencodes(frame: CapturedFrame): Promise<unknown> {
  const { header, body } = readRequestHeader(frame.bytes);
  const codec = await requestCodec(frame.apiKey);
  const decoded = codec.decode(body, frame.apiVersion);
  assert.equal(body.remaining, 0, `${codec.name} v${frame.apiVersion}: trailing bytes`);
  const w = new Writer();
  writeRequestHeader(w, header);
  codec.encode(w, decoded, frame.apiVersion);
  assert.deepEqual(w.toBuffer(), frame.bytes, `${codec.name} v${frame.apiVersion} re-encodes to the same bytes`);
  return decoded;
}

/** Runs a client process without blocking the event loop (the capture server lives in this process). */
function run(
  cmd: string,
  args: string[],
  input: string,
  timeoutMs: number,
): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["pipe", "ignore", "pipe"], timeout: timeoutMs });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    child.on("error", reject);
    child.on("close", (status) => resolve({ status, stderr }));
    // A child that exits without reading its input closes the pipe (EPIPE); its exit status tells.
    child.stdin.on("error", () => {});
    child.stdin.end(input);
  });
}

async function kcatProduce(port: number, codec: string): Promise<void> {
  const r = await run(
    "kcat",
    [
      "-b",
      `127.0.0.1:${port}`,
      "-P",
      "-t",
      `cap-${codec}`,
      "-K:",
      "-z",
      codec,
      "-H",
      "h1=v1",
      "-X",
      "api.version.request=true",
    ],
    "k1:value-one\nk2:value-two\n",
    20_000,
  );
  assert.equal(r.status, 0, `kcat failed: ${r.stderr}`);
}

async function pythonProduce(port: number, codec: string): Promise<void> {
  const script = `
import sys
from confluent_kafka import Producer
p = Producer({"bootstrap.servers": "127.0.0.1:${port}", "compression.type": "${codec}", "acks": "all", "linger.ms": 5})
for i in range(3):
    p.produce("py-${codec}", key=b"key%d" % i, value=b"py-value-%d" % i, headers=[("h", b"x")])
left = p.flush(15)
sys.exit(1 if left else 0)
`;
  const r = await run("/usr/bin/python3", ["-c", script], "", 30_000);
  assert.equal(r.status, 0, `python producer failed: ${r.stderr}`);
}

async function kafkajsProduce(port: number, codec: string): Promise<void> {
  const { Kafka, CompressionTypes, logLevel } = (await import("kafkajs")).default;
  const kafka = new Kafka({ clientId: "capture", brokers: [`127.0.0.1:${port}`], logLevel: logLevel.NOTHING });
  const producer = kafka.producer();
  await producer.connect();
  await producer.send({
    topic: `js-${codec}`,
    compression: codec === "gzip" ? CompressionTypes.GZIP : CompressionTypes.None,
    messages: [
      { key: "a", value: "js-one", headers: { h: "1" } },
      { key: "b", value: "js-two" },
    ],
  });
  await producer.disconnect();
}

describe("real client bytes decode and re-encode exactly", () => {
  let server: CaptureServer;
  before(async () => {
    server = await startCaptureServer();
  });
  after(async () => {
    await server.close();
    // SLUICE_WRITE_FIXTURES=1 refreshes the frames the fuzz test mutates.
    if (process.env.SLUICE_WRITE_FIXTURES === "1") {
      const out = [...captured].flatMap(([client, frames]) =>
        frames.map((f) => ({ client, apiKey: f.apiKey, apiVersion: f.apiVersion, hex: f.bytes.toString("hex") })),
      );
      writeFileSync(join(import.meta.dirname, "fixtures/client-frames.json"), `${JSON.stringify(out, null, 1)}\n`);
    }
  });

  /** Checks every frame re-encodes, and returns the records produced, as "topic key=value h=v" lines. */
  const check = async (client: string): Promise<string[]> => {
    const frames = server.frames.splice(0);
    captured.set(client, frames);
    assert.ok(
      frames.some((f) => f.apiKey === PRODUCE),
      `${client} sent a Produce request`,
    );
    const lines: string[] = [];
    for (const f of frames) {
      const decoded = await assertReencodes(f);
      if (f.apiKey !== PRODUCE) continue;
      for (const t of (decoded as ProduceRequest).topicData) {
        for (const p of t.partitionData) {
          for (const batch of decodeRecords(p.records ?? new Uint8Array(0))) {
            for (const r of batch.records) {
              const headers = r.headers.map((h) => ` ${h.key}=${Buffer.from(h.value ?? []).toString()}`).join("");
              lines.push(
                `${t.name} ${Buffer.from(r.key ?? []).toString()}=${Buffer.from(r.value ?? []).toString()}${headers}`,
              );
            }
          }
        }
      }
    }
    return lines.sort();
  };

  test("kcat (librdkafka) with every codec", { skip: !hasKcat && "kcat is not installed" }, async () => {
    for (const codec of CODECS) await kcatProduce(server.port, codec);
    const expected = CODECS.flatMap((c) => [`cap-${c} k1=value-one h1=v1`, `cap-${c} k2=value-two h1=v1`]).sort();
    assert.deepEqual(await check("kcat"), expected);
  });

  test("confluent-kafka-python with every codec", {
    skip: !hasPython && "python3-confluent-kafka is not installed",
  }, async () => {
    for (const codec of CODECS) await pythonProduce(server.port, codec);
    const expected = CODECS.flatMap((c) => [0, 1, 2].map((i) => `py-${c} key${i}=py-value-${i} h=x`)).sort();
    assert.deepEqual(await check("python"), expected);
  });

  test("kafkajs with gzip and without compression", async () => {
    for (const codec of ["none", "gzip"]) await kafkajsProduce(server.port, codec);
    const expected = ["none", "gzip"].flatMap((c) => [`js-${c} a=js-one h=1`, `js-${c} b=js-two`]).sort();
    assert.deepEqual(await check("kafkajs"), expected);
  });
});
