// Test helpers: an in-process broker and a minimal Kafka wire client that speaks any API at any
// version through the generated codecs, so that tests pin exact request versions and see raw
// responses (error codes included) rather than what a client library makes of them.

import { connect, type Socket } from "node:net";
import {
  ErrorCode,
  type FetchResponse,
  type Input,
  Reader,
  responseHeaderVersion,
  Writer,
  writeRequestHeader,
} from "@sluice/protocol";
import type { PartitionProduceResponse } from "@sluice/protocol/generated/produce.ts";
import { buildRecordBatch, type RecordInput } from "@sluice/protocol/records/record-batch.ts";
import { type RunningBroker, type StartBrokerOptions, startBroker } from "../src/index.ts";
import { type Api, CreateTopics, Fetch, Produce } from "./apis.ts";

interface Waiter {
  correlationId: number;
  resolve: (frame: Buffer) => void;
  reject: (e: Error) => void;
}

/** A raw connection: frames out, frames in, in order. */
export class WireClient {
  readonly socket: Socket;
  private buf: Buffer = Buffer.alloc(0);
  private readonly waiters: Waiter[] = [];
  private correlation = 1;
  /** Resolves when the broker (or we) closed the connection. */
  readonly closed: Promise<void>;
  isClosed = false;
  /** Correlation ids of the responses, in the order they arrived. */
  readonly arrived: number[] = [];

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on("error", () => {});
    this.closed = new Promise((resolve) =>
      socket.on("close", () => {
        this.isClosed = true;
        for (const w of this.waiters.splice(0)) w.reject(new Error("connection closed"));
        resolve();
      }),
    );
    socket.on("data", (d: Buffer) => this.onData(d));
  }

  static connect(port: number): Promise<WireClient> {
    return new Promise((resolve, reject) => {
      const s = connect(port, "127.0.0.1", () => resolve(new WireClient(s)));
      s.once("error", reject);
    });
  }

  private onData(d: Buffer): void {
    this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
    while (this.buf.length >= 4 && this.buf.length >= 4 + this.buf.readInt32BE(0)) {
      const size = this.buf.readInt32BE(0);
      const frame = this.buf.subarray(4, 4 + size);
      this.buf = this.buf.subarray(4 + size);
      const correlationId = frame.readInt32BE(0);
      this.arrived.push(correlationId);
      const i = this.waiters.findIndex((w) => w.correlationId === correlationId);
      if (i >= 0) this.waiters.splice(i, 1)[0]!.resolve(frame);
    }
  }

  /** Encodes a request frame (size prefix included) without sending it. */
  frame<Req>(a: Api<Req, unknown>, version: number, req: Input<Req>, correlationId = this.correlation++): Buffer {
    const w = new Writer();
    w.writeInt32(0);
    writeRequestHeader(w, { requestApiKey: a.key, requestApiVersion: version, correlationId, clientId: "test" });
    a.encode(w, req, version);
    const b = w.toBuffer();
    b.writeInt32BE(b.length - 4, 0);
    return b;
  }

  /** Sends a request and resolves with its decoded response. */
  async call<Req, Res>(a: Api<Req, Res>, version: number, req: Input<Req>): Promise<Res> {
    const correlationId = this.correlation++;
    const frame = this.frame(a, version, req, correlationId);
    const response = this.expect(correlationId);
    this.socket.write(frame);
    const r = new Reader(await response);
    r.readInt32("correlationId");
    if (responseHeaderVersion(a.key, version) >= 1) r.readTaggedFields("ResponseHeader", () => false);
    const res = a.decode(r, version);
    if (r.remaining !== 0) throw new Error(`${r.remaining} bytes left after the response body`);
    return res;
  }

  /** Sends a request that gets no response (Produce acks=0). */
  send<Req>(a: Api<Req, unknown>, version: number, req: Input<Req>): void {
    this.socket.write(this.frame(a, version, req));
  }

  /** Resolves with the raw frame (after the size prefix) of the response to `correlationId`. */
  expect(correlationId: number): Promise<Buffer> {
    return new Promise((resolve, reject) => this.waiters.push({ correlationId, resolve, reject }));
  }

  nextCorrelationId(): number {
    return this.correlation++;
  }

  write(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }

  close(): void {
    this.socket.destroy();
  }
}

/** A broker on a free port with a fresh data dir, quiet, no initial rebalance delay. */
export function testBroker(config: Record<string, string> = {}, opts: StartBrokerOptions = {}): Promise<RunningBroker> {
  return startBroker({ ...opts, config: { "group.initial.rebalance.delay.ms": "0", ...config } });
}

export function batch(values: string[], opts: { timestamp?: bigint; keys?: (string | null)[] } = {}): Buffer {
  const records: RecordInput[] = values.map((v, i) => {
    const key = opts.keys?.[i];
    return {
      value: Buffer.from(v),
      key: key === undefined || key === null ? null : Buffer.from(key),
      ...(opts.timestamp !== undefined ? { timestamp: opts.timestamp } : {}),
    };
  });
  return buildRecordBatch({ records });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Creates a topic (CreateTopics v4) and fails unless it was created. */
export async function createTopic(
  c: WireClient,
  name: string,
  numPartitions = 1,
  configs: Record<string, string> = {},
): Promise<void> {
  const res = await c.call(CreateTopics, 4, {
    topics: [
      {
        name,
        numPartitions,
        replicationFactor: 1,
        configs: Object.entries(configs).map(([n, value]) => ({ name: n, value })),
      },
    ],
    timeoutMs: 5000,
  });
  const code = res.topics[0]?.errorCode;
  if (code !== ErrorCode.NONE) throw new Error(`create ${name}: error ${code} ${res.topics[0]?.errorMessage}`);
}

/** Produces one partition's records and returns that partition's response. */
export async function produce(
  c: WireClient,
  topic: string,
  partition: number,
  records: Uint8Array,
  opts: { acks?: number; version?: number } = {},
): Promise<PartitionProduceResponse> {
  const version = opts.version ?? 9;
  const res = await c.call(Produce, version, {
    acks: opts.acks ?? -1,
    timeoutMs: 5000,
    topicData: [{ name: topic, partitionData: [{ index: partition, records }] }],
  });
  return res.responses[0]!.partitionResponses[0]!;
}

export interface FetchOptions {
  version?: number;
  maxWaitMs?: number;
  minBytes?: number;
  maxBytes?: number;
  partitionMaxBytes?: number;
  isolationLevel?: number;
}

/** Fetches one partition from `offset`. */
export function fetchOne(
  c: WireClient,
  topic: string,
  partition: number,
  offset: bigint,
  o: FetchOptions = {},
): Promise<FetchResponse> {
  return c.call(Fetch, o.version ?? 11, {
    replicaId: -1,
    maxWaitMs: o.maxWaitMs ?? 0,
    minBytes: o.minBytes ?? 1,
    maxBytes: o.maxBytes ?? 50 * 1024 * 1024,
    isolationLevel: o.isolationLevel ?? 0,
    sessionId: 0,
    sessionEpoch: -1,
    topics: [
      {
        topic,
        partitions: [{ partition, fetchOffset: offset, partitionMaxBytes: o.partitionMaxBytes ?? 1024 * 1024 }],
      },
    ],
  });
}
