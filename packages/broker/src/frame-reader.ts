// Cuts a connection's byte stream into size-prefixed request frames, choosing the buffer each
// socket read goes into (net.Socket's `onread`).
//
// Why: with Node's default reads, every read is a fresh 64 KiB buffer and a large frame is then
// copied out of those into its own buffer; on loopback that path costs ~0.5 ms of CPU per MB and
// feeds the GC, while reading straight into the frame costs ~0.15 ms/MB (measured). So once a
// frame's size prefix is known and the rest has not arrived, the next reads go straight into the
// frame's own buffer, exactly up to its end. Everything else (size prefixes, small frames, the
// start of a large one) is read into a staging buffer shared by every connection of the process:
// a read's bytes are always consumed before the callback returns (complete frames copied out,
// a partial one into its own buffer), and libuv performs one read and its callback at a time, so
// no two connections ever need the staging buffer at once.
//
// Memory follows the bytes actually received, never a size prefix alone: a frame's buffer starts
// at most FRAME_BUFFER_START_BYTES and doubles as it fills. Produce frames come from the buffer
// pool (buffer-pool.ts) so that their bytes can be kept by the log without a copy.

import { Socket, type SocketConstructorOpts } from "node:net";
import { ApiKey } from "@sluice/protocol";
import { bufferPool } from "@sluice/storage";

/** The staging buffer's size: the most a read of size prefixes and small frames returns. */
const STAGING_BYTES = 64 * 1024;
/** A large frame's buffer starts at this size (or its size, if smaller) and doubles as it fills. */
const FRAME_BUFFER_START_BYTES = 1024 * 1024;
/** Frames at least this large, of Produce requests, come from the buffer pool. */
const POOLED_FRAME_BYTES_MIN = 64 * 1024;

const staging = Buffer.allocUnsafeSlow(STAGING_BYTES);

export interface FrameReaderOptions {
  readonly requestBytesMax: number;
  /** A complete frame (after its size prefix), the reader's to keep. */
  readonly onFrame: (frame: Buffer) => void;
  /** A size prefix out of bounds: the stream cannot be cut any further. */
  readonly onBadSize: (size: number) => void;
}

export class FrameReader {
  private readonly opts: FrameReaderOptions;
  /** Up to 3 bytes of a size prefix that a read cut short. */
  private prefix = Buffer.alloc(4);
  private prefixBytes = 0;
  /** The frame being received: its size, its buffer (possibly still smaller) and the bytes in it. */
  private frameBytes = -1;
  private frame: Buffer | null = null;
  private filled = 0;
  private failed = false;

  constructor(opts: FrameReaderOptions) {
    this.opts = opts;
  }

  /** Where the next read goes: the rest of the frame being received, or the staging buffer. */
  nextTarget(): Buffer {
    const f = this.frame;
    if (f !== null && this.filled < f.length) return f.subarray(this.filled);
    return staging;
  }

  /** `n` bytes were read into `buf` (from nextTarget). */
  onRead(n: number, buf: Buffer): void {
    if (this.failed || n <= 0) return;
    if (buf !== staging) {
      // Straight into the frame's buffer, never past its end.
      this.filled += n;
      this.frameProgress();
      return;
    }
    this.consume(staging, 0, n);
  }

  /** The default read path's chunks (when reads cannot be steered): the same as reads into targets. */
  feed(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length && !this.failed) {
      const f = this.frame;
      if (f !== null && this.filled < f.length) {
        const k = Math.min(f.length - this.filled, chunk.length - off);
        chunk.copy(f, this.filled, off, off + k);
        this.filled += k;
        off += k;
        this.frameProgress();
      } else {
        this.consume(chunk, off, chunk.length);
        return;
      }
    }
  }

  /** Cuts frames out of src[from, to): complete ones are copied out, a partial one into its buffer. */
  private consume(src: Buffer, from: number, to: number): void {
    let p = from;
    while (p < to && !this.failed) {
      if (this.frame !== null) {
        const f = this.frame;
        const k = Math.min(f.length - this.filled, to - p);
        src.copy(f, this.filled, p, p + k);
        this.filled += k;
        p += k;
        this.frameProgress();
        continue;
      }
      // A size prefix, possibly split across reads.
      if (this.prefixBytes > 0 || to - p < 4) {
        const k = Math.min(4 - this.prefixBytes, to - p);
        src.copy(this.prefix, this.prefixBytes, p, p + k);
        this.prefixBytes += k;
        p += k;
        if (this.prefixBytes < 4) return;
        this.prefixBytes = 0;
        const taken = this.start(this.prefix.readInt32BE(0), src, p, to);
        if (taken < 0) return;
        p += taken;
        continue;
      }
      const taken = this.start(src.readInt32BE(p), src, p + 4, to);
      if (taken < 0) return;
      p += 4 + taken;
    }
  }

  /**
   * Begins a frame of `size` bytes whose first bytes are src[p, to). Returns how many of those it
   * took (the whole frame when it is all there, else none: the caller copies them in), or -1 when
   * the size is out of bounds.
   */
  private start(size: number, src: Buffer, p: number, to: number): number {
    if (size < 0 || size > this.opts.requestBytesMax) {
      this.failed = true;
      this.opts.onBadSize(size);
      return -1;
    }
    this.frameBytes = size;
    this.filled = 0;
    const here = to - p;
    const produce = here >= 2 && src.readInt16BE(p) === ApiKey.Produce;
    if (size <= here) {
      // Whole in this read: copied out (the staging buffer is reused by the next read).
      const frame = produce && size >= POOLED_FRAME_BYTES_MIN ? bufferPool.acquire(size) : Buffer.allocUnsafe(size);
      src.copy(frame, 0, p, p + size);
      this.frame = frame;
      this.filled = size;
      this.frameProgress();
      return size;
    }
    const initial = Math.min(size, Math.max(FRAME_BUFFER_START_BYTES, 2 * here));
    this.frame =
      produce && initial === size && size >= POOLED_FRAME_BYTES_MIN
        ? bufferPool.acquire(size)
        : Buffer.allocUnsafe(initial);
    return 0;
  }

  /** After bytes went into the frame: hands it over when complete, grows its buffer when full. */
  private frameProgress(): void {
    const f = this.frame!;
    if (this.filled < f.length) return;
    if (f.length < this.frameBytes) {
      // More of a large frame has arrived than its buffer holds: twice the size, the bytes moved.
      const bigger = Buffer.allocUnsafe(Math.min(this.frameBytes, 2 * f.length));
      f.copy(bigger, 0, 0, this.filled);
      this.frame = bigger;
      return;
    }
    this.frame = null;
    this.frameBytes = -1;
    this.filled = 0;
    this.opts.onFrame(f);
  }
}

/**
 * Makes an accepted socket's reads go into the reader's targets and returns the socket to use.
 * Node offers `onread` only for sockets built from options, so the accepted socket's handle is
 * moved into a new Socket built with it; the accepted one (never read from: the server accepts
 * with pauseOnConnect) is destroyed without its handle, which also settles the server's count of
 * connections. Where the handle cannot be moved (a Node without it), the reader is fed the
 * default read path's chunks instead: the same frames, with one more copy.
 */
export function steerReads(accepted: Socket, reader: FrameReader, onActivity: () => void): Socket {
  const holder = accepted as unknown as { _handle: unknown };
  const handle = holder._handle;
  if (handle !== null && typeof handle === "object") {
    let steered: Socket | null = null;
    try {
      steered = new Socket({
        handle,
        readable: true,
        writable: true,
        onread: {
          buffer: () => reader.nextTarget(),
          callback: (n: number, buf: Uint8Array) => {
            onActivity();
            reader.onRead(n, buf as Buffer);
          },
        },
      } as unknown as SocketConstructorOpts);
    } catch {
      steered = null;
    }
    if (steered !== null) {
      holder._handle = null;
      accepted.destroy();
      return steered;
    }
  }
  accepted.on("data", (d: Buffer) => {
    onActivity();
    reader.feed(d);
  });
  accepted.resume();
  return accepted;
}
