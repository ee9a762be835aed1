// Reusable buffers for large segment reads (Fetch from the page cache).
//
// Why: a consumer reading from disk makes the broker read ~1 MiB per Fetch into a fresh Buffer.
// Those buffers live until the response is written, get promoted out of V8's young generation and
// are only freed by mark-compact collections; measured on the consume bench, a fresh buffer per
// read meant a major GC every ~10 MB (23 % of the broker's time) and pooling them raised consume
// throughput by about half. See bench/RESULTS.md.
//
// Ownership: `acquire` lends a buffer. It comes back only through `release`, which the broker's
// connection calls once the socket has taken the bytes (the write callback). A lent buffer that is
// never released (a read whose result was dropped, a connection that closed mid-write) is simply
// garbage: the pool keeps no reference to lent buffers, so forgetting one is safe, while releasing
// one still in use would hand its bytes to another read — so release is only ever called by the
// one writer that owns the response, and a buffer already returned is ignored.

/** Smallest read served from the pool; smaller reads are cheap fresh allocations. */
export const POOLED_READ_BYTES_MIN = 64 * 1024;
/** Size classes are a power of two plus this slack, so a read of max.partition.fetch.bytes plus a
 * batch header (1 MiB + 61 B) fits the 1 MiB class rather than the 2 MiB one. */
const CLASS_SLACK_BYTES = 64 * 1024;
const CLASS_SHIFT_MIN = 16; // 64 KiB
const CLASS_SHIFT_MAX = 24; // 16 MiB
/** Bytes kept in free buffers, all classes together; beyond that a released buffer is left to
 * the GC. 64 MiB is the reads of a few dozen concurrent 1 MiB fetches. */
const FREE_BYTES_MAX = 64 * 1024 * 1024;

interface Owned {
  readonly cls: number;
  lent: boolean;
}

export class ReadBufferPool {
  private readonly free: Buffer[][] = [];
  /** Every pooled ArrayBuffer, lent or free; weak so that a dropped lent buffer is collected. */
  private readonly owned = new WeakMap<ArrayBufferLike, Owned>();
  private freeTotal = 0;
  /** Counters for tests and metrics. */
  reused = 0;
  allocated = 0;

  constructor() {
    for (let s = CLASS_SHIFT_MIN; s <= CLASS_SHIFT_MAX; s++) this.free.push([]);
  }

  /** A buffer of exactly `length` bytes (a view of a pooled one when the size is poolable). */
  acquire(length: number): Buffer {
    const cls = classOf(length);
    if (cls < 0) return Buffer.allocUnsafe(length);
    const list = this.free[cls]!;
    let buf = list.pop();
    if (buf === undefined) {
      // allocUnsafeSlow: an ArrayBuffer of its own (never a slice of Node's shared pool slab,
      // which would tie unrelated small buffers to this one's lifetime).
      buf = Buffer.allocUnsafeSlow(classBytes(cls));
      this.owned.set(buf.buffer, { cls, lent: true });
      this.allocated++;
    } else {
      this.freeTotal -= buf.length;
      const o = this.owned.get(buf.buffer)!;
      if (o.lent) throw new Error("invariant: a free pooled buffer is marked lent");
      o.lent = true;
      this.reused++;
    }
    return buf.subarray(0, length);
  }

  /** Whether `chunk` is a view of a buffer this pool has lent out. */
  isLent(chunk: Uint8Array): boolean {
    return this.owned.get(chunk.buffer)?.lent === true;
  }

  /**
   * Takes back the buffer `chunk` is a view of. Only the owner of the bytes may call it, once
   * nothing reads them any more; chunks that are not lent pool buffers are ignored.
   */
  release(chunk: Uint8Array): void {
    const o = this.owned.get(chunk.buffer);
    if (o === undefined || !o.lent) return;
    o.lent = false;
    const bytes = classBytes(o.cls);
    if (this.freeTotal + bytes > FREE_BYTES_MAX) return;
    this.free[o.cls]!.push(Buffer.from(chunk.buffer, 0, bytes));
    this.freeTotal += bytes;
  }

  /** Bytes held in free buffers. */
  get freeBytes(): number {
    return this.freeTotal;
  }
}

function classBytes(cls: number): number {
  return 2 ** (cls + CLASS_SHIFT_MIN) + CLASS_SLACK_BYTES;
}

function classOf(length: number): number {
  if (length < POOLED_READ_BYTES_MIN || length > classBytes(CLASS_SHIFT_MAX - CLASS_SHIFT_MIN)) return -1;
  let cls = 0;
  while (classBytes(cls) < length) cls++;
  return cls;
}

/** The pool segment reads use, shared by every log in the process. */
export const readBuffers = new ReadBufferPool();
