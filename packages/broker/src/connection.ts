// One client connection: size-prefixed frames in, responses out in request order.
//
// Frames are cut by a FrameReader, which also chooses where each socket read goes (straight into
// a large frame's own buffer: @sluice/protocol frame-reader.ts, steer-reads.ts). Requests are
// decoded as soon as their frame is complete and handled concurrently; responses are queued in
// arrival order. Ready responses at the head of the queue are written once per
// event-loop turn (setImmediate), so the answers to every request that completed in this turn go
// out together: small ones copied into one buffer, large ones (record data) as they are, in one
// corked write — a loopback socket write costs far more than copying a few hundred bytes.
// Backpressure: at most `queued.max.requests` requests may be in flight, and while the socket's
// send buffer is over its high-water mark (a client not reading its responses) no new request is
// read; reading resumes when responses drain. A frame whose size prefix exceeds
// `socket.request.max.bytes`, a malformed header, or an unknown API key closes this connection
// only. Idle connections are closed after `connections.max.idle.ms`.

import type { Socket } from "node:net";
import {
  API_VERSIONS_KEY,
  ErrorCode,
  FrameReader,
  ProtocolDecodeError,
  readRequestHeader,
  Writer,
  writeResponseHeader,
} from "@sluice/protocol";
import { bufferPool } from "@sluice/storage";
import type { BrokerContext } from "./context.ts";
import { type AnyHandler, CloseConnection, type RequestContext } from "./handlers/types.ts";
import { allocateRequestFrame, steerReads } from "./steer-reads.ts";

export interface ConnectionLimits {
  readonly requestBytesMax: number;
  readonly inFlightMax: number;
  readonly idleMs: number;
}

interface Slot {
  done: boolean;
  chunks: Uint8Array[] | null;
}

/** Response chunks at least this large are written as they are; smaller ones are copied together. */
const WRITE_AS_IS_BYTES_MIN = 16 * 1024;

let nextConnectionId = 1;

export class Connection {
  readonly id = nextConnectionId++;
  private readonly socket: Socket;
  private readonly broker: BrokerContext;
  private readonly handlers: ReadonlyMap<number, AnyHandler>;
  private readonly limits: ConnectionLimits;
  private readonly reader: FrameReader;
  /** Complete frames not yet dispatched (reads already done when the in-flight limit was hit). */
  private ready: Buffer[] = [];
  private readonly aborter = new AbortController();
  private stopped = false;
  private readonly queue: Slot[] = [];
  private paused = false;
  /** Waiting for the socket's 'drain' (its send buffer was over the high-water mark). */
  private awaitingDrain = false;
  private flushScheduled = false;
  private closed = false;
  private readonly clientHost: string;
  private idleTimer: NodeJS.Timeout | null = null;
  private lastActiveMs = 0;
  private readonly onClose: (c: Connection) => void;
  /** Resolves when every queued response has been written (graceful shutdown). */
  private drainWaiters: (() => void)[] = [];

  constructor(
    socket: Socket,
    broker: BrokerContext,
    handlers: ReadonlyMap<number, AnyHandler>,
    limits: ConnectionLimits,
    onClose: (c: Connection) => void,
  ) {
    this.broker = broker;
    this.handlers = handlers;
    this.limits = limits;
    this.onClose = onClose;
    this.reader = new FrameReader({
      frameBytesMax: limits.requestBytesMax,
      allocate: allocateRequestFrame,
      onFrame: (f) => {
        this.ready.push(f);
        this.processFrames();
      },
      onBadSize: (size) => {
        this.broker.logger.warn({ connection: this.id, size }, "request size out of bounds; closing connection");
        this.close();
      },
    });
    // The socket to use from here on (the accepted one's handle may have moved into another).
    const s = steerReads(socket, this.reader, () => this.touch());
    this.socket = s;
    s.setNoDelay(true);
    // Read once: remoteAddress is a system call (getpeername) each time it is read.
    this.clientHost = s.remoteAddress ?? "";
    s.on("drain", () => this.onDrain());
    s.on("error", () => this.close());
    s.on("close", () => this.close());
    this.touch();
  }

  get inFlight(): number {
    return this.queue.length;
  }

  /**
   * Notes activity. The idle timer is not re-armed per chunk (Timeout.refresh re-inserts it into
   * the timer list, a cost on every read): when it fires it checks the time of the last activity
   * and waits out the rest.
   */
  private touch(): void {
    this.lastActiveMs = performance.now();
    if (this.idleTimer) return;
    this.armIdleTimer(this.limits.idleMs);
  }

  private armIdleTimer(ms: number): void {
    this.idleTimer = setTimeout(() => {
      this.idleTimer = null;
      if (this.closed) return;
      const idleMs = performance.now() - this.lastActiveMs;
      if (this.queue.length > 0) this.touch();
      else if (idleMs >= this.limits.idleMs) {
        this.broker.logger.debug({ connection: this.id }, "closing idle connection");
        this.close();
      } else this.armIdleTimer(this.limits.idleMs - idleMs);
    }, ms);
    this.idleTimer.unref();
  }

  /** Dispatches complete frames while fewer than `inFlightMax` requests are in flight. */
  private processFrames(): void {
    while (this.ready.length > 0 && !this.closed) {
      if (this.queue.length >= this.limits.inFlightMax || this.awaitingDrain) {
        this.pauseReading();
        return;
      }
      this.dispatch(this.ready.shift()!);
    }
  }

  private pauseReading(): void {
    if (this.paused) return;
    this.paused = true;
    this.socket.pause();
  }

  /**
   * Handles one request. A frame from the buffer pool is given back once its handler has finished
   * (answered or failed): whatever keeps its bytes longer has taken a reference of its own.
   */
  private dispatch(frame: Buffer): void {
    if (!bufferPool.isLent(frame)) {
      void this.handleFrame(frame);
      return;
    }
    const settled = this.handleFrame(frame);
    if (settled === null) bufferPool.release(frame);
    else void settled.finally(() => bufferPool.release(frame));
  }

  /** Decodes and handles a frame; returns the handler's promise when it answers asynchronously. */
  private handleFrame(frame: Buffer): Promise<void> | null {
    let decoded: ReturnType<typeof readRequestHeader>;
    try {
      decoded = readRequestHeader(frame);
    } catch {
      this.broker.logger.warn({ connection: this.id }, "malformed request header; closing connection");
      this.close();
      return null;
    }
    const { header, body } = decoded;
    const apiKey = header.requestApiKey;
    const version = header.requestApiVersion;
    const handler = this.handlers.get(apiKey);
    if (!handler) {
      this.broker.logger.warn({ connection: this.id, apiKey }, "unknown API key; closing connection");
      this.close();
      return null;
    }
    const ctx: RequestContext = {
      broker: this.broker,
      apiKey,
      apiVersion: version,
      correlationId: header.correlationId,
      clientId: header.clientId,
      connectionId: this.id,
      clientHost: this.clientHost,
      signal: this.aborter.signal,
    };
    const slot: Slot = { done: false, chunks: null };
    this.queue.push(slot);
    if (version < handler.minVersion || version > handler.maxVersion) {
      if (apiKey === API_VERSIONS_KEY) {
        // KIP-511: answer in the v0 format with our range so the client can retry.
        this.respondWith(slot, handler, handler.handle(null, ctx), 0, header.correlationId, apiKey);
        return null;
      }
      // The response header the client expects for the version it sent (with tagged fields when
      // that version is flexible), then the error code: all a body can say for a version we
      // cannot encode.
      const w = new Writer(16);
      writeResponseHeader(w, apiKey, version, header.correlationId);
      w.writeInt16(ErrorCode.UNSUPPORTED_VERSION);
      this.finish(slot, w.toChunks());
      return null;
    }
    let request: unknown;
    try {
      request = handler.decode(body, version);
    } catch (e) {
      const reason = e instanceof ProtocolDecodeError ? e.message : String(e);
      this.broker.logger.warn(
        { connection: this.id, apiKey, version, reason },
        "malformed request; closing connection",
      );
      this.close();
      return null;
    }
    let result: unknown;
    try {
      result = handler.handle(request, ctx);
    } catch (e) {
      this.fail(e, handler, version);
      return null;
    }
    if (result instanceof Promise) {
      return result.then(
        (res) => this.respondWith(slot, handler, res, version, header.correlationId, apiKey),
        (e) => this.fail(e, handler, version),
      );
    }
    this.respondWith(slot, handler, result, version, header.correlationId, apiKey);
    return null;
  }

  private respondWith(
    slot: Slot,
    handler: AnyHandler,
    res: unknown,
    version: number,
    correlationId: number,
    apiKey: number,
  ): void {
    if (this.closed) return;
    if (res === null && apiKey !== API_VERSIONS_KEY) {
      this.finish(slot, null);
      return;
    }
    const w = new Writer();
    writeResponseHeader(w, apiKey, version, correlationId);
    try {
      handler.encode(w, res, version);
    } catch (e) {
      this.fail(e, handler, version);
      return;
    }
    this.finish(slot, w.toChunks());
  }

  private fail(e: unknown, handler: AnyHandler, version: number): void {
    if (e instanceof CloseConnection) {
      this.broker.logger.debug(
        { connection: this.id, api: handler.name, version, reason: e.message },
        "closing connection",
      );
      this.close();
      return;
    }
    this.broker.logger.error(
      { err: e, connection: this.id, api: handler.name, version },
      "request failed; closing connection",
    );
    this.close();
  }

  private finish(slot: Slot, chunks: Uint8Array[] | null): void {
    slot.done = true;
    slot.chunks = chunks;
    if (slot !== this.queue[0] || this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.flushReady();
    });
  }

  /**
   * Writes every ready response at the head of the queue, in order, as one corked write. Record
   * data read into buffers lent by the storage read pool goes back to it once the socket has taken
   * the bytes (the callback of the last write: writes complete in order).
   */
  private flushReady(): void {
    if (this.closed) return;
    let corked = false;
    const lent: Uint8Array[] = [];
    // Each write is issued when the next one comes, so the last can carry the callback.
    let held: Uint8Array | null = null;
    const write = (b: Uint8Array): void => {
      if (held !== null) this.socket.write(held);
      held = b;
    };
    // Small pieces (size prefixes, headers, small bodies) are gathered and copied into one buffer.
    let small: Uint8Array[] = [];
    let smallBytes = 0;
    const writeSmall = (): void => {
      if (smallBytes === 0) return;
      write(small.length === 1 ? small[0]! : Buffer.concat(small, smallBytes));
      small = [];
      smallBytes = 0;
    };
    let n = 0;
    while (n < this.queue.length && this.queue[n]!.done) n++;
    const ready = this.queue.splice(0, n);
    for (const slot of ready) {
      if (slot.chunks === null) continue;
      let size = 0;
      for (const c of slot.chunks) size += c.byteLength;
      const prefix = Buffer.allocUnsafe(4);
      prefix.writeInt32BE(size, 0);
      small.push(prefix);
      smallBytes += 4;
      for (const c of slot.chunks) {
        if (c.byteLength > 0 && bufferPool.isLent(c)) lent.push(c);
        if (c.byteLength < WRITE_AS_IS_BYTES_MIN) {
          small.push(c);
          smallBytes += c.byteLength;
          continue;
        }
        if (!corked) {
          this.socket.cork();
          corked = true;
        }
        writeSmall();
        write(c);
      }
    }
    writeSmall();
    if (held !== null) {
      if (lent.length === 0) this.socket.write(held);
      else
        this.socket.write(held, (err) => {
          if (err) return; // the socket is gone; the buffers are left to the GC
          for (const c of lent) bufferPool.release(c);
        });
    }
    if (corked) this.socket.uncork();
    if (this.socket.writableNeedDrain) this.awaitingDrain = true;
    this.maybeResume();
    if (this.queue.length === 0) {
      for (const w of this.drainWaiters.splice(0)) w();
    }
  }

  private onDrain(): void {
    this.awaitingDrain = false;
    this.maybeResume();
  }

  /** Pauses reading while too many requests are in flight or responses are not being read. */
  private maybeResume(): void {
    if (!this.paused || this.stopped || this.closed) return;
    if (this.awaitingDrain || this.queue.length >= this.limits.inFlightMax) return;
    this.paused = false;
    this.socket.resume();
    this.processFrames();
  }

  /** Resolves once every request received so far has been answered. */
  drained(): Promise<void> {
    if (this.queue.length === 0 || this.closed) return Promise.resolve();
    return new Promise((r) => this.drainWaiters.push(r));
  }

  /** Stops reading new requests and ends long waits early (graceful shutdown). */
  stopReading(): void {
    this.stopped = true;
    this.pauseReading();
    this.aborter.abort();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.aborter.abort();
    this.socket.destroy();
    for (const w of this.drainWaiters.splice(0)) w();
    this.onClose(this);
  }
}
