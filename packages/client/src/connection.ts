// One TCP connection to one broker: size-prefixed frames, correlation ids, many requests in
// flight (answered in order by the broker), a timeout per request, and ApiVersions negotiation on
// connect so that each request is sent at the highest version both sides know.

import { connect, type Socket } from "node:net";
import {
  API_SPECS_BY_KEY,
  decodeApiVersionsResponse,
  decodeResponseHeader,
  ErrorCode,
  encodeApiVersionsRequest,
  Reader,
  responseHeaderVersion,
  Writer,
  writeRequestHeader,
} from "@sluice/protocol";
import { ConnectionError, KafkaClientError, KafkaProtocolError, RequestTimeoutError } from "./errors.ts";

export interface ConnectionOptions {
  readonly clientId: string;
  /** request.timeout.ms (Java default 30000). */
  readonly requestTimeoutMs: number;
  /** socket.connection.setup.timeout.ms (Java default 10000). */
  readonly connectTimeoutMs: number;
}

interface Pending {
  readonly apiKey: number;
  readonly version: number;
  readonly resolve: (r: Reader) => void;
  readonly reject: (e: Error) => void;
  readonly timer: NodeJS.Timeout;
}

const API_VERSIONS = 18;
const CLIENT_SOFTWARE_VERSION = "0.1.0";

export class Connection {
  readonly host: string;
  readonly port: number;
  private readonly socket: Socket;
  private readonly opts: ConnectionOptions;
  private readonly pending = new Map<number, Pending>();
  private nextCorrelationId = 1;
  private buffered: Buffer[] = [];
  private bufferedBytes = 0;
  private closedError: Error | null = null;
  /** Broker's version range per API key. */
  private versions = new Map<number, [number, number]>();

  private constructor(host: string, port: number, socket: Socket, opts: ConnectionOptions) {
    this.host = host;
    this.port = port;
    this.socket = socket;
    this.opts = opts;
    socket.setNoDelay(true);
    socket.on("data", (d: Buffer) => this.onData(d));
    socket.on("error", (e) => this.fail(new ConnectionError(`connection to ${host}:${port} failed: ${e.message}`, e)));
    socket.on("close", () => this.fail(new ConnectionError(`connection to ${host}:${port} closed`)));
  }

  static async open(host: string, port: number, opts: ConnectionOptions): Promise<Connection> {
    const socket = connect(port, host);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new ConnectionError(`connecting to ${host}:${port} timed out`));
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
    await c.negotiate();
    return c;
  }

  get closed(): boolean {
    return this.closedError !== null;
  }

  /** ApiVersions v3 first; on UNSUPPORTED_VERSION retry at the broker's highest ApiVersions version. */
  private async negotiate(): Promise<void> {
    let version = 3;
    for (let attempt = 0; attempt < 3; attempt++) {
      const r = await this.sendRaw(API_VERSIONS, version, (w) =>
        encodeApiVersionsRequest(
          w,
          { clientSoftwareName: "sluice-client", clientSoftwareVersion: CLIENT_SOFTWARE_VERSION },
          version,
        ),
      );
      // An unsupported version is answered in the v0 format (KIP-511): the error code comes first.
      const errorCode = r.remaining >= 2 ? r.view.getInt16(r.pos) : ErrorCode.NONE;
      const res = decodeApiVersionsResponse(r, errorCode === ErrorCode.UNSUPPORTED_VERSION ? 0 : version);
      if (res.errorCode === ErrorCode.UNSUPPORTED_VERSION) {
        const own = res.apiKeys.find((k) => k.apiKey === API_VERSIONS);
        version = own ? Math.min(own.maxVersion, version - 1) : 0;
        continue;
      }
      if (res.errorCode !== ErrorCode.NONE) throw new KafkaProtocolError(res.errorCode, "ApiVersions");
      this.versions = new Map(res.apiKeys.map((k) => [k.apiKey, [k.minVersion, k.maxVersion]]));
      return;
    }
    throw new KafkaClientError("UNSUPPORTED_VERSION", `${this.host}:${this.port} does not answer ApiVersions`);
  }

  /** The highest version of `apiKey` both this client and the broker support. */
  version(apiKey: number, ourMin = 0, ourMax = API_SPECS_BY_KEY.get(apiKey)?.maxVersion ?? 0): number {
    const theirs = this.versions.get(apiKey);
    if (!theirs)
      throw new KafkaClientError(
        "UNSUPPORTED_VERSION",
        `broker ${this.host}:${this.port} does not support API ${apiKey}`,
      );
    const v = Math.min(ourMax, theirs[1]);
    if (v < Math.max(ourMin, theirs[0])) {
      throw new KafkaClientError(
        "UNSUPPORTED_VERSION",
        `no common version of API ${apiKey} with ${this.host}:${this.port}`,
      );
    }
    return v;
  }

  supports(apiKey: number): boolean {
    return this.versions.has(apiKey);
  }

  /**
   * Sends a request; resolves with a Reader positioned at the response body. With
   * `expectResponse` false (Produce acks=0) it resolves once the request is written.
   */
  send(apiKey: number, version: number, body: (w: Writer) => void, expectResponse = true): Promise<Reader> {
    return this.sendRaw(apiKey, version, body, expectResponse);
  }

  private sendRaw(apiKey: number, version: number, body: (w: Writer) => void, expectResponse = true): Promise<Reader> {
    if (this.closedError) return Promise.reject(this.closedError);
    const correlationId = this.nextCorrelationId;
    this.nextCorrelationId = (this.nextCorrelationId + 1) & 0x7fffffff;
    const w = new Writer();
    writeRequestHeader(w, {
      requestApiKey: apiKey,
      requestApiVersion: version,
      correlationId,
      clientId: this.opts.clientId,
    });
    body(w);
    const chunks = w.toChunks();
    const size = Buffer.allocUnsafe(4);
    size.writeInt32BE(w.length, 0);
    this.socket.cork();
    this.socket.write(size);
    for (const c of chunks) this.socket.write(c);
    this.socket.uncork();
    if (!expectResponse) return Promise.resolve(new Reader(new Uint8Array(0)));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(correlationId);
        reject(
          new RequestTimeoutError(
            `API ${apiKey} v${version} to ${this.host}:${this.port} timed out after ${this.opts.requestTimeoutMs} ms`,
          ),
        );
      }, this.opts.requestTimeoutMs);
      this.pending.set(correlationId, { apiKey, version, resolve, reject, timer });
    });
  }

  private onData(d: Buffer): void {
    this.buffered.push(d);
    this.bufferedBytes += d.length;
    while (this.bufferedBytes >= 4) {
      const all = this.buffered.length === 1 ? this.buffered[0]! : Buffer.concat(this.buffered, this.bufferedBytes);
      this.buffered = [all];
      const size = all.readInt32BE(0);
      if (size < 0) {
        this.fail(new ConnectionError(`negative frame size from ${this.host}:${this.port}`));
        return;
      }
      if (all.length < 4 + size) return;
      const frame = all.subarray(4, 4 + size);
      const rest = all.subarray(4 + size);
      this.buffered = rest.length > 0 ? [rest] : [];
      this.bufferedBytes = rest.length;
      this.onFrame(frame);
    }
  }

  private onFrame(frame: Buffer): void {
    const r = new Reader(frame);
    const correlationId = frame.readInt32BE(0);
    const p = this.pending.get(correlationId);
    if (!p) return; // a response to a request that already timed out
    this.pending.delete(correlationId);
    clearTimeout(p.timer);
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
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(e);
    }
    this.pending.clear();
    this.socket.destroy();
  }

  close(): void {
    this.fail(new ConnectionError(`connection to ${this.host}:${this.port} closed by the client`));
  }
}
