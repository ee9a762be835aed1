// Bad input over a real socket: each case gets Kafka's error code or a closed connection, and the
// broker keeps serving another client meanwhile.

import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { after, before, describe, test } from "node:test";
import {
  decodeApiVersionsResponse,
  decodeMetadataResponse,
  decodeProduceResponse,
  ErrorCode,
  encodeApiVersionsRequest,
  encodeMetadataRequest,
  encodeProduceRequest,
  Reader,
  Writer,
  writeRequestHeader,
} from "@sluice/protocol";
import { buildRecordBatch } from "@sluice/protocol/records/record-batch.ts";
import { type BrokerProcess, startBrokerProcess } from "../helpers/broker-process.ts";

class RawClient {
  private socket: Socket;
  private buf = Buffer.alloc(0);
  private waiters: ((b: Buffer) => void)[] = [];
  closed: Promise<void>;
  private correlation = 1;
  constructor(port: number) {
    this.socket = connect(port, "127.0.0.1");
    this.socket.on("error", () => {});
    this.closed = new Promise((r) => this.socket.on("close", () => r()));
    this.socket.on("data", (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      while (this.buf.length >= 4 && this.buf.length >= 4 + this.buf.readInt32BE(0)) {
        const size = this.buf.readInt32BE(0);
        const frame = this.buf.subarray(4, 4 + size);
        this.buf = this.buf.subarray(4 + size);
        this.waiters.shift()?.(frame);
      }
    });
  }
  ready(): Promise<void> {
    return new Promise((r) => this.socket.once("connect", () => r()));
  }
  sendRaw(bytes: Buffer): void {
    this.socket.write(bytes);
  }
  request(apiKey: number, version: number, body: (w: Writer) => void): Promise<Reader> {
    const w = new Writer();
    writeRequestHeader(w, {
      requestApiKey: apiKey,
      requestApiVersion: version,
      correlationId: this.correlation++,
      clientId: "raw",
    });
    body(w);
    const payload = w.toBuffer();
    const size = Buffer.alloc(4);
    size.writeInt32BE(payload.length);
    this.socket.write(Buffer.concat([size, payload]));
    return new Promise((resolve) => this.waiters.push((frame) => resolve(new Reader(frame))));
  }
  close(): void {
    this.socket.destroy();
  }
}

/** Skips the response header (v0: correlation id; v1: plus tagged fields). */
function body(r: Reader, flexibleHeader: boolean): Reader {
  r.readInt32("correlationId");
  if (flexibleHeader) r.readTaggedFields("header", () => false);
  return r;
}

describe("bad input over a real socket", () => {
  let broker: BrokerProcess;
  let healthy: RawClient;
  before(async () => {
    broker = await startBrokerProcess({
      config: {
        "auto.create.topics.enable": "false",
        "message.max.bytes": "2000",
        "socket.request.max.bytes": "100000",
      },
    });
    healthy = new RawClient(broker.port);
    await healthy.ready();
  });
  after(async () => {
    healthy.close();
    await broker.cleanup();
  });

  async function stillServing(): Promise<void> {
    const r = await healthy.request(18, 3, (w) =>
      encodeApiVersionsRequest(w, { clientSoftwareName: "t", clientSoftwareVersion: "1" }, 3),
    );
    assert.equal(decodeApiVersionsResponse(body(r, false), 3).errorCode, ErrorCode.NONE);
  }

  test("an oversize size prefix closes that connection only", async () => {
    const c = new RawClient(broker.port);
    await c.ready();
    const b = Buffer.alloc(4);
    b.writeInt32BE(200_000_000);
    c.sendRaw(b);
    await c.closed;
    await stillServing();
  });

  test("a truncated frame followed by a close leaves the broker serving", async () => {
    const c = new RawClient(broker.port);
    await c.ready();
    c.sendRaw(Buffer.from([0, 0, 0, 50, 0, 18, 0, 3]));
    c.close();
    await stillServing();
  });

  test("garbage in a frame closes that connection", async () => {
    const c = new RawClient(broker.port);
    await c.ready();
    c.sendRaw(Buffer.from([0, 0, 0, 6, 0, 3, 0, 9, 0xff, 0xff]));
    await c.closed;
    await stillServing();
  });

  test("an unknown API key closes the connection", async () => {
    const c = new RawClient(broker.port);
    await c.ready();
    void c.request(999, 0, () => {});
    await c.closed;
    await stillServing();
  });

  test("an unsupported ApiVersions version gets UNSUPPORTED_VERSION with the version list (KIP-511)", async () => {
    const r = await healthy.request(18, 99, () => {});
    const res = decodeApiVersionsResponse(body(r, false), 0);
    assert.equal(res.errorCode, ErrorCode.UNSUPPORTED_VERSION);
    const av = res.apiKeys.find((k) => k.apiKey === 18);
    assert.deepEqual([av?.minVersion, av?.maxVersion], [0, 4]);
  });

  test("an unsupported version of another API gets UNSUPPORTED_VERSION", async () => {
    const r = await healthy.request(3, 99, () => {});
    body(r, true);
    assert.equal(r.readInt16("errorCode"), ErrorCode.UNSUPPORTED_VERSION);
    await stillServing();
  });

  async function produce(records: Uint8Array, acks = -1, topic = "bad"): Promise<number> {
    const r = await healthy.request(0, 7, (w) =>
      encodeProduceRequest(
        w,
        { acks, timeoutMs: 5000, topicData: [{ name: topic, partitionData: [{ index: 0, records }] }] },
        7,
      ),
    );
    return decodeProduceResponse(body(r, false), 7).responses[0]!.partitionResponses[0]!.errorCode;
  }

  test("a nonexistent topic with auto-create off is UNKNOWN_TOPIC_OR_PARTITION (Metadata and Produce)", async () => {
    const r = await healthy.request(3, 4, (w) =>
      encodeMetadataRequest(w, { topics: [{ name: "nope" }], allowAutoTopicCreation: true }, 4),
    );
    assert.equal(decodeMetadataResponse(body(r, false), 4).topics[0]!.errorCode, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
    assert.equal(
      await produce(buildRecordBatch({ records: [{ value: Buffer.from("x") }] }), -1, "nope"),
      ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
    );
  });

  test("corrupt CRC, oversize batch and invalid acks get their error codes", async () => {
    // Create the topic through CreateTopics v0.
    await healthy.request(19, 0, (w) => {
      w.writeInt32(1);
      w.writeString("bad", false);
      w.writeInt32(1);
      w.writeInt16(1);
      w.writeInt32(0);
      w.writeInt32(0);
      w.writeInt32(5000);
    });
    const good = buildRecordBatch({ records: [{ value: Buffer.from("fine") }] });
    assert.equal(await produce(good), ErrorCode.NONE);
    const corrupt = Buffer.from(good);
    corrupt.writeUInt8(corrupt.readUInt8(corrupt.length - 1) ^ 0xff, corrupt.length - 1);
    assert.equal(await produce(corrupt), ErrorCode.CORRUPT_MESSAGE);
    const big = buildRecordBatch({ records: [{ value: Buffer.alloc(5000, 1) }] });
    assert.equal(await produce(big), ErrorCode.MESSAGE_TOO_LARGE);
    assert.equal(await produce(good, 2), ErrorCode.INVALID_REQUIRED_ACKS);
    await stillServing();
  });
});
