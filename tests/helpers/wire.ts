// A minimal Kafka wire client for interop tests: asks a broker which APIs it serves (so tests can
// skip what is not implemented yet, decided at run time) and reads a partition back independently
// of the client under test.

import { connect } from "node:net";
import {
  decodeApiVersionsResponse,
  decodeCreateTopicsResponse,
  decodeFetchResponse,
  encodeApiVersionsRequest,
  encodeCreateTopicsRequest,
  encodeFetchRequest,
  Reader,
  Writer,
  writeRequestHeader,
} from "@sluice/protocol";
import { decodeRecords, type Record as KafkaRecord } from "@sluice/protocol/records/record-batch.ts";

function parseBootstrap(bootstrap: string): { host: string; port: number } {
  const i = bootstrap.lastIndexOf(":");
  return { host: bootstrap.slice(0, i), port: Number(bootstrap.slice(i + 1)) };
}

/** A whole request frame: size prefix, request header, then the body `body` writes. */
export function requestFrame(
  apiKey: number,
  version: number,
  correlationId: number,
  clientId: string,
  body: (w: Writer) => void,
): Buffer {
  const w = new Writer();
  w.writeInt32(0);
  writeRequestHeader(w, { requestApiKey: apiKey, requestApiVersion: version, correlationId, clientId });
  body(w);
  const frame = w.toBuffer();
  frame.writeInt32BE(frame.length - 4, 0);
  return frame;
}

/** Sends one request on a fresh connection and returns the response body (after the v0 header). */
function roundTrip(bootstrap: string, apiKey: number, version: number, body: (w: Writer) => void): Promise<Reader> {
  const { host, port } = parseBootstrap(bootstrap);
  const frame = requestFrame(apiKey, version, 1, "interop", body);
  return new Promise((resolve, reject) => {
    const socket = connect(port, host, () => socket.write(frame));
    let buf = Buffer.alloc(0);
    socket.on("data", (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 4 && buf.length >= 4 + buf.readInt32BE(0)) {
        socket.destroy();
        const r = new Reader(buf.subarray(4, 4 + buf.readInt32BE(0)));
        r.readInt32("correlationId");
        resolve(r);
      }
    });
    socket.on("error", reject);
    socket.setTimeout(10_000, () => {
      socket.destroy();
      reject(new Error(`no response from ${bootstrap}`));
    });
  });
}

/** The API keys the broker advertises, with their [min, max] versions (ApiVersions v0). */
export async function servedApis(bootstrap: string): Promise<Map<number, [number, number]>> {
  const r = await roundTrip(bootstrap, 18, 0, (w) => encodeApiVersionsRequest(w, {}, 0));
  const res = decodeApiVersionsResponse(r, 0);
  return new Map(res.apiKeys.map((k) => [k.apiKey, [k.minVersion, k.maxVersion]]));
}

/** Group coordinator API keys (issue 5): FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit/Fetch. */
export const GROUP_API_KEYS = [8, 9, 10, 11, 12, 13, 14];

export async function servesGroups(bootstrap: string): Promise<boolean> {
  const apis = await servedApis(bootstrap);
  return GROUP_API_KEYS.every((k) => apis.has(k));
}

/** Every record of one partition from offset 0 up to the high watermark (Fetch v4, read_uncommitted). */
export async function readPartition(bootstrap: string, topic: string, partition: number): Promise<KafkaRecord[]> {
  const out: KafkaRecord[] = [];
  let offset = 0n;
  for (;;) {
    const r = await roundTrip(bootstrap, 1, 4, (w) =>
      encodeFetchRequest(
        w,
        {
          replicaId: -1,
          maxWaitMs: 0,
          minBytes: 0,
          maxBytes: 16 << 20,
          isolationLevel: 0,
          topics: [{ topic, partitions: [{ partition, fetchOffset: offset, partitionMaxBytes: 16 << 20 }] }],
        },
        4,
      ),
    );
    const p = decodeFetchResponse(r, 4).responses[0]!.partitions[0]!;
    if (p.errorCode !== 0) throw new Error(`fetch ${topic}-${partition}@${offset}: error ${p.errorCode}`);
    const records = p.records ? decodeRecords(p.records).flatMap((b) => b.records) : [];
    for (const rec of records) if (rec.offset >= offset) out.push(rec);
    if (records.length === 0 || offset >= p.highWatermark) return out;
    offset = records.at(-1)!.offset + 1n;
    if (offset >= p.highWatermark) return out;
  }
}

/** Creates a topic (CreateTopics v4); resolves with its error code (0 when created). */
export async function createTopic(bootstrap: string, name: string, numPartitions: number): Promise<number> {
  const r = await roundTrip(bootstrap, 19, 4, (w) =>
    encodeCreateTopicsRequest(w, { topics: [{ name, numPartitions, replicationFactor: 1 }], timeoutMs: 10_000 }, 4),
  );
  return decodeCreateTopicsResponse(r, 4).topics[0]!.errorCode;
}
