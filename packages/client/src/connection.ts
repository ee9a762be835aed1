// One TCP connection to one broker: size-prefixed frames, correlation ids, many requests in
// flight (the broker answers them in order; we match by correlation id all the same), a timeout
// per request, and ApiVersions negotiation on connect so that each request goes out at
// min(our highest version, the broker's highest version) of its API.
//
// A request that times out closes the connection (as the Java client does): the broker may be
// stuck, and every other request on it would wait behind the missing response anyway. All
// requests in flight then fail with a retriable error; callers decide whether to retry.

import { connect, type Socket } from "node:net";
import {
  API_SPECS_BY_KEY,
  ApiKey,
  decodeApiVersionsResponse,
  decodeResponseHeader,
  ErrorCode,
  encodeApiVersionsRequest,
  FrameReader,
  Reader,
  responseHeaderVersion,
  Writer,
  writeRequestHeader,
} from "@sluice/protocol";
import { ConnectionError, KafkaError, KafkaProtocolError, RequestTimeoutError } from "./errors.ts";

export interface ConnectionOptions {
  readonly clientId: string;
  /** request.timeout.ms */
  readonly requestTimeoutMs: number;
  /** socket.connection.setup.timeout.ms */
  readonly connectTimeoutMs: number;
}

interface Pending {
  readonly apiKey: number;
  readonly version: number;
  readonly resolve: (r: Reader) => void;
  readonly reject: (e: Error) => void;
  /** performance.now() by which the response must be in (Infinity without a request timeout). */
  readonly deadline: number;
}

const CLIENT_SOFTWARE_VERSION = "0.1.0";
/** Largest response frame accepted: far above fetch.max.bytes' default, far below memory limits. */
const RESPONSE_BYTES_MAX = 512 * 1024 * 1024;
/** A response's buffer is allocated whole up to this size on its size prefix, larger ones grow. */
const RESPONSE_BUFFER_START_BYTES = 8 * 1024 * 1024;

export class Connection {
  readonly host: string;
  readonly port: number;
  private readonly socket: Socket;
  private readonly opts: ConnectionOptions;
  private readonly pending = new Map<number, Pending>();
  private nextCorrelationId = 1;
  private closedError: Error | null = null;
  /** Broker's [min, max] version per API key. */
  private versions = new Map<number, [number, number]>();
  private readonly closeListeners: ((e: Error) => void)[] = [];
  /**
   * One timer for every request in flight, armed for the oldest one's deadline (requests are
   * answered in order, so the oldest is the first of `pending`): a timer per request cost a
   * setTimeout and a clearTimeout on every round trip. Left armed when the last response comes.
   */
  private timeoutTimer: NodeJS.Timeout | null = null;

  private constructor(host: string, port: number, socket: Socket, opts: ConnectionOptions) {
    this.host = host;
    this.port = port;
    this.socket = socket;
    this.opts = opts;
    socket.setNoDelay(true);
    socket.on("error", (e) => this.fail(new ConnectionError(`connection to ${host}:${port} failed: ${e.message}`, e)));
    socket.on("close", () => this.fail(new ConnectionError(`connection to ${host}:${port} was closed`)));
  }

  /** Connects and negotiates API versions. */
  static async open(host: string, port: number, opts: ConnectionOptions): Promise<Connection> {
    // Reads go straight into each response's own buffer (FrameReader, net.Socket onread): a
    // Fetch response is not copied out of Node's 64 KiB read buffers.
    let conn: Connection | null = null;
    const reader = new FrameReader({
      frameBytesMin: 4,
      frameBytesMax: RESPONSE_BYTES_MAX,
      frameBufferStartBytes: RESPONSE_BUFFER_START_BYTES,
      onFrame: (f) => conn?.onFrame(f),
      onBadSize: (size) => {
        const e = new ConnectionError(`bad response frame size ${size} from ${host}:${port}`);
        if (conn) conn.fail(e);
        else socket.destroy(e);
      },
    });
    const socket = connect({
      port,
      host,
      onread: {
        buffer: () => reader.nextTarget(),
        callback: (n: number, b: Uint8Array) => {
          reader.onRead(n, b as Buffer);
          return true; // false would pause the socket
        },
      },
    });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new ConnectionError(`connecting to ${host}:${port} timed out after ${opts.connectTimeoutMs} ms`));
      }, opts.connectTimeoutMs);
      socket.once("connect", () => {
        clearTimeout(timer);
        resolve();
      });
      socket.once("error", (e) => {
        clearTimeout(timer);
        reject(new ConnectionError(`cannot connect to ${host}:${port}: ${e.message}`, e));
      });
    });
    const c = new Connection(host, port, socket, opts);
    conn = c;
    try {
      await c.negotiate();
    } catch (e) {
      c.close();
      throw e;
    }
    return c;
  }

  get closed(): boolean {
    return this.closedError !== null;
  }

  /** Requests sent and not yet answered. */
  get inFlight(): number {
    return this.pending.size;
  }

  onClose(listener: (e: Error) => void): void {
    if (this.closedError) listener(this.closedError);
    else this.closeListeners.push(listener);
  }

  /**
   * ApiVersions at our highest version first; on UNSUPPORTED_VERSION the broker answers in the v0
   * format with its own range for ApiVersions (KIP-511): retry at min(that max, ours - 1).
   */
  private async negotiate(): Promise<void> {
    let version = API_SPECS_BY_KEY.get(ApiKey.ApiVersions)?.maxVersion ?? 3;
    for (let attempt = 0; attempt < 4; attempt++) {
      const r = await this.sendRaw(ApiKey.ApiVersions, version, (w) =>
        encodeApiVersionsRequest(
          w,
          { clientSoftwareName: "sluice-client", clientSoftwareVersion: CLIENT_SOFTWARE_VERSION },
          version,
        ),
      );
      const errorCode = r.remaining >= 2 ? r.view.getInt16(r.pos) : ErrorCode.NONE;
      if (errorCode === ErrorCode.UNSUPPORTED_VERSION) {
        const res = decodeApiVersionsResponse(r, 0);
        const own = res.apiKeys.find((k) => k.apiKey === ApiKey.ApiVersions);
        version = own ? Math.min(own.maxVersion, version - 1) : 0;
        continue;
      }
      const res = decodeApiVersionsResponse(r, version);
      if (res.errorCode !== ErrorCode.NONE) throw new KafkaProtocolError(res.errorCode, "ApiVersions");
      this.versions = new Map(res.apiKeys.map((k) => [k.apiKey, [k.minVersion, k.maxVersion]]));
      return;
    }
    throw new KafkaError("UNSUPPORTED_VERSION", `${this.host}:${this.port} did not agree on an ApiVersions version`, {
      errorCode: ErrorCode.UNSUPPORTED_VERSION,
    });
  }

  /** The broker's [min, max] for an API, or undefined when it does not serve it. */
  brokerRange(apiKey: number): readonly [number, number] | undefined {
    return this.versions.get(apiKey);
  }

  supports(apiKey: number): boolean {
    return this.versions.has(apiKey);
  }

  /** min(our max, broker max) for `apiKey`; UNSUPPORTED_VERSION when the ranges do not overlap. */
  version(apiKey: number, ourMin = 0, ourMax = API_SPECS_BY_KEY.get(apiKey)?.maxVersion ?? 0): number {
    const theirs = this.versions.get(apiKey);
    const name = API_SPECS_BY_KEY.get(apiKey)?.name ?? `API ${apiKey}`;
    if (!theirs)
      throw new KafkaError("UNSUPPORTED_VERSION", `broker ${this.host}:${this.port} does not serve ${name}`, {
        errorCode: ErrorCode.UNSUPPORTED_VERSION,
      });
    const v = Math.min(ourMax, theirs[1]);
    if (v < Math.max(ourMin, theirs[0])) {
      throw new KafkaError(
        "UNSUPPORTED_VERSION",
        `no common version of ${name}: ours ${ourMin}-${ourMax}, broker ${this.host}:${this.port} ${theirs[0]}-${theirs[1]}`,
        { errorCode: ErrorCode.UNSUPPORTED_VERSION },
      );
    }
    return v;
  }

  /**
   * Sends a request at the negotiated version (within [ourMin, ourMax]) and decodes the response.
   * With `expectResponse` false (Produce acks=0) it resolves with undefined once written.
   */
  async request<T>(
    apiKey: number,
    range: readonly [number, number],
    encode: (w: Writer, version: number) => void,
    decode: (r: Reader, version: number) => T,
  ): Promise<T> {
    const v = this.version(apiKey, range[0], range[1]);
    const r = await this.sendRaw(apiKey, v, (w) => encode(w, v));
    return decode(r, v);
  }

  /** Sends a request whose response is not awaited (Produce with acks=0). */
  sendNoResponse(apiKey: number, version: number, body: (w: Writer) => void): void {
    void this.sendRaw(apiKey, version, body, false);
  }

  /** Sends a request at an explicit version; resolves with a Reader at the response body. */
  send(apiKey: number, version: number, body: (w: Writer) => void): Promise<Reader> {
    return this.sendRaw(apiKey, version, body);
  }

  private sendRaw(apiKey: number, version: number, body: (w: Writer) => void, expectResponse = true): Promise<Reader> {
    if (this.closedError) return Promise.reject(this.closedError);
    const correlationId = this.nextCorrelationId;
    this.nextCorrelationId = (this.nextCorrelationId + 1) & 0x7fffffff;
    const w = new Writer();
    w.writeInt32(0); // size, patched below
    writeRequestHeader(w, {
      requestApiKey: apiKey,
      requestApiVersion: version,
      correlationId,
      clientId: this.opts.clientId,
    });
    body(w);
    const chunks = w.toChunks();
    const first = chunks[0]!;
    new DataView(first.buffer, first.byteOffset, 4).setInt32(0, w.length - 4);
    if (chunks.length === 1) this.socket.write(first);
    else {
      this.socket.cork();
      for (const c of chunks) this.socket.write(c);
      this.socket.uncork();
    }
    if (!expectResponse) return Promise.resolve(new Reader(new Uint8Array(0)));
    const timeoutMs = this.opts.requestTimeoutMs;
    const deadline = timeoutMs > 0 ? performance.now() + timeoutMs : Number.POSITIVE_INFINITY;
    if (timeoutMs > 0 && this.timeoutTimer === null)
      this.timeoutTimer = setTimeout(() => this.checkTimeouts(), timeoutMs);
    return new Promise((resolve, reject) => {
      this.pending.set(correlationId, { apiKey, version, resolve, reject, deadline });
    });
  }

  /** Fails the connection when its oldest request is past its deadline, else waits for that deadline. */
  private checkTimeouts(): void {
    this.timeoutTimer = null;
    if (this.closedError) return;
    for (const p of this.pending.values()) {
      if (p.deadline === Number.POSITIVE_INFINITY) return;
      const left = p.deadline - performance.now();
      if (left <= 0) {
        this.fail(
          new RequestTimeoutError(
            `${API_SPECS_BY_KEY.get(p.apiKey)?.name ?? p.apiKey} v${p.version} to ${this.host}:${this.port} got no response within ${this.opts.requestTimeoutMs} ms`,
          ),
        );
      } else this.timeoutTimer = setTimeout(() => this.checkTimeouts(), Math.ceil(left));
      return;
    }
  }

  private onFrame(frame: Buffer): void {
    const correlationId = frame.readInt32BE(0);
    const p = this.pending.get(correlationId);
    if (!p) {
      this.fail(new ConnectionError(`unexpected correlation id ${correlationId} from ${this.host}:${this.port}`));
      return;
    }
    this.pending.delete(correlationId);
    const r = new Reader(frame);
    try {
      decodeResponseHeader(r, responseHeaderVersion(p.apiKey, p.version));
      p.resolve(r);
    } catch (e) {
      p.reject(e as Error);
    }
  }

  private fail(e: Error): void {
    if (this.closedError) return;
    this.closedError = e;
    if (this.timeoutTimer) clearTimeout(this.timeoutTimer);
    this.timeoutTimer = null;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
    this.socket.destroy();
    for (const l of this.closeListeners.splice(0)) l(e);
  }

  close(): void {
    this.fail(new ConnectionError(`connection to ${this.host}:${this.port} was closed by the client`));
  }
}
