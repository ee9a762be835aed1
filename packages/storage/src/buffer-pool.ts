// Reusable large buffers, reference-counted: the record bytes of produce requests (the request
// frame) and of Fetch reads from disk.
//
// Why: a fresh ~1 MiB Buffer per request or read is an mmap, page faults on first touch, and an
// ArrayBuffer that outlives V8's young generation (the tail cache and the socket keep it a while),
// so only mark-compact collections free it. Measured on the consume bench, a fresh buffer per read
// meant a major GC every ~10 MB (23 % of the broker's time); pooling raised consume throughput by
// about half. See bench/RESULTS.md.
//
// Ownership: `acquire` lends a buffer with one reference, owned by the caller. Whoever keeps a
// view beyond the moment it was handed one takes a reference (`retain`) and gives it back
// (`release`) when done: the connection for a request frame until the handler has finished, the
// log for a queued append until it is written, the tail cache for as long as it caches a chunk,
// a read of the tail cache for the chunks it returns, and the connection again for a response's
// record chunks until the socket has taken them. The buffer is reused once the count is zero.
// A reference never given back (a dropped read, a connection that closed mid-write) is safe: the
// pool keeps no strong reference to lent buffers, so the buffer is simply collected. Giving back
// a reference one does not hold is the one unsafe mistake (another holder's bytes get reused), so
// views that reach code outside this ownership chain are copies (TailCache.read).

/** Smallest buffer served from the pool; smaller ones are cheap fresh allocations. */
export const POOLED_BYTES_MIN = 64 * 1024;
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
  /** References held; 0 while the buffer is on the free list. */
  refs: number;
}

export class BufferPool {
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

  /** A buffer of exactly `length` bytes (a view of a pooled one, with one reference, when poolable). */
  acquire(length: number): Buffer {
    const cls = classOf(length);
    if (cls < 0) return Buffer.allocUnsafe(length);
    let buf = this.free[cls]!.pop();
    if (buf === undefined) {
      // allocUnsafeSlow: an ArrayBuffer of its own (never a slice of Node's shared pool slab).
      buf = Buffer.allocUnsafeSlow(classBytes(cls));
      this.owned.set(buf.buffer, { cls, refs: 1 });
      this.allocated++;
    } else {
      this.freeTotal -= buf.length;
      const o = this.owned.get(buf.buffer)!;
      if (o.refs !== 0) throw new Error("invariant: a free pooled buffer has references");
      o.refs = 1;
      this.reused++;
    }
    return buf.subarray(0, length);
  }

  /** Whether `chunk` is a view of a buffer this pool has lent out. */
  isLent(chunk: Uint8Array): boolean {
    return (this.owned.get(chunk.buffer)?.refs ?? 0) > 0;
  }

  /** Takes another reference to the lent buffer `chunk` is a view of; no-op for other chunks. */
  retain(chunk: Uint8Array): void {
    const o = this.owned.get(chunk.buffer);
    if (o === undefined) return;
    // A view of a free buffer means someone kept bytes they held no reference to.
    if (o.refs === 0) throw new Error("invariant: retain of a pooled buffer that is not lent");
    o.refs++;
  }

  /**
   * Gives back one reference to the buffer `chunk` is a view of; at zero the buffer is reused.
   * Only a holder of a reference may call it. Chunks that are not lent pool buffers are ignored.
   */
  release(chunk: Uint8Array): void {
    const o = this.owned.get(chunk.buffer);
    if (o === undefined || o.refs === 0) return;
    if (--o.refs > 0) return;
    const bytes = classBytes(o.cls);
    if (this.freeTotal + bytes > FREE_BYTES_MAX) {
      this.owned.delete(chunk.buffer); // left to the GC
      return;
    }
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
  if (length < POOLED_BYTES_MIN || length > classBytes(CLASS_SHIFT_MAX - CLASS_SHIFT_MIN)) return -1;
  let cls = 0;
  while (classBytes(cls) < length) cls++;
  return cls;
}

/** The pool shared by every connection and log in the process. */
export const bufferPool = new BufferPool();

/**
 * The bytes of a read's chunks as one Buffer the caller may keep without releasing anything:
 * pooled views are copied and their references given back; a single other chunk is returned as
 * a view (no copy), several are joined.
 */
export function detach(chunks: readonly Uint8Array[], pool: BufferPool = bufferPool): Buffer {
  if (chunks.length === 1 && !pool.isLent(chunks[0]!)) {
    const c = chunks[0]!;
    return Buffer.from(c.buffer, c.byteOffset, c.byteLength);
  }
  const out = chunks.length === 1 ? Buffer.from(chunks[0]!) : Buffer.concat(chunks);
  for (const c of chunks) pool.release(c);
  return out;
}
