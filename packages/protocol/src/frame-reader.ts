// Cuts a connection's byte stream into size-prefixed Kafka frames (requests on the broker,
// responses in the client), choosing the buffer each socket read goes into (net.Socket's
// `onread`).
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
// Memory: a frame's buffer starts at most `frameBufferStartBytes` and doubles as it fills, so a
// broker's memory follows the bytes actually received, never a size prefix alone. `allocate`
// lets the owner choose where whole frames live (the broker takes Produce frames from its pool).

/** The staging buffer's size: the most a read of size prefixes and small frames returns. */
const STAGING_BYTES = 64 * 1024;

const staging = Buffer.allocUnsafeSlow(STAGING_BYTES);

export interface FrameReaderOptions {
  /** Largest frame accepted; a larger size prefix is reported to onBadSize. */
  readonly frameBytesMax: number;
  /** Smallest frame accepted (a response holds at least its correlation id); default 0. */
  readonly frameBytesMin?: number;
  /** A large frame's buffer starts at this size (or the frame's, if smaller); default 1 MiB. */
  readonly frameBufferStartBytes?: number;
  /**
   * The buffer for a whole frame of `size` bytes, given the frame's first bytes received so far
   * (`head`, possibly fewer than 2); default a fresh Buffer.
   */
  readonly allocate?: (size: number, head: Uint8Array) => Buffer;
  /** A complete frame (after its size prefix), the receiver's to keep. */
  readonly onFrame: (frame: Buffer) => void;
  /** A size prefix out of bounds: the stream cannot be cut any further. */
  readonly onBadSize: (size: number) => void;
}

const allocateFresh = (size: number): Buffer => Buffer.allocUnsafe(size);

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
  private readonly allocate: (size: number, head: Uint8Array) => Buffer;
  private readonly startBytes: number;

  constructor(opts: FrameReaderOptions) {
    this.opts = opts;
    this.allocate = opts.allocate ?? allocateFresh;
    this.startBytes = opts.frameBufferStartBytes ?? 1024 * 1024;
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
    this.consume(chunk, 0, chunk.length);
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
    if (size < (this.opts.frameBytesMin ?? 0) || size > this.opts.frameBytesMax) {
      this.failed = true;
      this.opts.onBadSize(size);
      return -1;
    }
    this.frameBytes = size;
    this.filled = 0;
    const here = to - p;
    const head = src.subarray(p, Math.min(to, p + 2));
    if (size <= here) {
      // Whole in this read: copied out (the staging buffer is reused by the next read).
      const frame = this.allocate(size, head);
      src.copy(frame, 0, p, p + size);
      this.frame = frame;
      this.filled = size;
      this.frameProgress();
      return size;
    }
    const initial = Math.min(size, Math.max(this.startBytes, 2 * here));
    this.frame = initial === size ? this.allocate(size, head) : Buffer.allocUnsafe(initial);
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
