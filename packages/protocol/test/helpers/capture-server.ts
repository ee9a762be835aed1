// A minimal Kafka-speaking TCP server that records every request frame a real client sends.
//
// It answers just enough for a producer to get going — ApiVersions, Metadata (every topic has one
// partition led by this server), Produce (success) and InitProducerId — so that tests can capture
// the exact bytes kcat, librdkafka and kafkajs put on the wire on connect and on produce.

import { createServer, type Server, type Socket } from "node:net";
import { API_SPECS } from "../../src/generated/api-keys.ts";
import { encodeApiVersionsResponse } from "../../src/generated/api-versions.ts";
import { encodeInitProducerIdResponse } from "../../src/generated/init-producer-id.ts";
import { decodeMetadataRequest, encodeMetadataResponse } from "../../src/generated/metadata.ts";
import { decodeProduceRequest, encodeProduceResponse } from "../../src/generated/produce.ts";
import { readRequestHeader, writeResponseHeader } from "../../src/header.ts";
import { Writer } from "../../src/primitives.ts";

export interface CapturedFrame {
  readonly apiKey: number;
  readonly apiVersion: number;
  /** The frame without its 4-byte size prefix. */
  readonly bytes: Buffer;
}

export interface CaptureServer {
  readonly port: number;
  readonly frames: CapturedFrame[];
  close(): Promise<void>;
}

const API_VERSIONS = 18;
const METADATA = 3;
const PRODUCE = 0;
const INIT_PRODUCER_ID = 22;
/** The versions this server can answer; the range is capped where librdkafka 2.0 stops. */
const SERVED = new Map<number, [number, number]>([
  [PRODUCE, [0, 9]],
  [METADATA, [0, 12]],
  [API_VERSIONS, [0, 3]],
  [INIT_PRODUCER_ID, [0, 4]],
  // Never answered, but librdkafka 2.0 only writes magic-v2 batches when Fetch 4 is advertised.
  [1, [0, 11]],
]);

export async function startCaptureServer(): Promise<CaptureServer> {
  const frames: CapturedFrame[] = [];
  const sockets = new Set<Socket>();
  let port = 0;
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    let pending = Buffer.alloc(0);
    socket.on("data", (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 4) {
        const size = pending.readInt32BE(0);
        if (pending.length < 4 + size) break;
        const frame = Buffer.from(pending.subarray(4, 4 + size));
        pending = pending.subarray(4 + size);
        const response = answer(frame, frames, port);
        if (response) socket.write(response);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no port");
  port = address.port;
  return {
    port,
    frames,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

function answer(frame: Buffer, frames: CapturedFrame[], port: number): Buffer | null {
  const { header, body } = readRequestHeader(frame);
  const apiKey = header.requestApiKey;
  const version = header.requestApiVersion;
  frames.push({ apiKey, apiVersion: version, bytes: frame });
  const w = new Writer();
  writeResponseHeader(w, apiKey, version, header.correlationId);
  switch (apiKey) {
    case API_VERSIONS: {
      const apiKeys = API_SPECS.filter((a) => SERVED.has(a.apiKey)).map((a) => {
        const [minVersion, maxVersion] = SERVED.get(a.apiKey)!;
        return { apiKey: a.apiKey, minVersion, maxVersion };
      });
      if (version > 3) encodeApiVersionsResponse(w, { errorCode: 35, apiKeys }, 0);
      else encodeApiVersionsResponse(w, { apiKeys }, version);
      break;
    }
    case METADATA: {
      const req = decodeMetadataRequest(body, version);
      const topics = (req.topics ?? []).map((t) => ({
        name: t.name,
        partitions: [{ partitionIndex: 0, leaderId: 1, replicaNodes: [1], isrNodes: [1] }],
      }));
      encodeMetadataResponse(
        w,
        { brokers: [{ nodeId: 1, host: "127.0.0.1", port }], clusterId: "capture", controllerId: 1, topics },
        version,
      );
      break;
    }
    case PRODUCE: {
      const req = decodeProduceRequest(body, version);
      if (req.acks === 0) return null;
      const responses = req.topicData.map((t) => ({
        name: t.name,
        partitionResponses: t.partitionData.map((p) => ({ index: p.index, baseOffset: 0n })),
      }));
      encodeProduceResponse(w, { responses }, version);
      break;
    }
    case INIT_PRODUCER_ID:
      encodeInitProducerIdResponse(w, { producerId: 1000n, producerEpoch: 0 }, version);
      break;
    default:
      return null;
  }
  const payload = w.toBuffer();
  const out = Buffer.allocUnsafe(4 + payload.length);
  out.writeInt32BE(payload.length, 0);
  payload.copy(out, 4);
  return out;
}
