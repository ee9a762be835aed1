// Partitioners.
// - Keyed records go where Java's default partitioner and librdkafka's murmur2_random put them:
//   toPositive(murmur2(key)) % numPartitions, murmur2 being the 32-bit Murmur2 with seed
//   0x9747b28c (Kafka's Utils.murmur2), toPositive masking the sign bit.
// - Unkeyed records use uniform sticky partitioning (KIP-794): they stick to one partition until
//   at least batchSize bytes went to it, then move to another, so batches fill up instead of
//   every partition getting a tiny one. With adaptive partitioning (the default, as in Java) the
//   next partition is drawn with weights that favour partitions whose queues are short, so a
//   slow broker gets less.
// - A custom partitioner (partitioner.class) is a function of the record and partition count.

export interface PartitionerArgs {
  readonly topic: string;
  readonly key: Uint8Array | null;
  readonly value: Uint8Array | null;
  readonly partitionCount: number;
}

/** A custom partitioner: returns a partition in [0, partitionCount). */
export type Partitioner = (args: PartitionerArgs) => number;

export function murmur2(data: Uint8Array): number {
  const length = data.length;
  const m = 0x5bd1e995;
  let h = (0x9747b28c ^ length) | 0;
  const length4 = length >> 2;
  for (let i = 0; i < length4; i++) {
    const i4 = i << 2;
    let k = data[i4]! | (data[i4 + 1]! << 8) | (data[i4 + 2]! << 16) | (data[i4 + 3]! << 24);
    k = Math.imul(k, m);
    k ^= k >>> 24;
    k = Math.imul(k, m);
    h = Math.imul(h, m);
    h ^= k;
  }
  const rest = length & 3;
  const base = length & ~3;
  if (rest === 3) h ^= data[base + 2]! << 16;
  if (rest >= 2) h ^= data[base + 1]! << 8;
  if (rest >= 1) {
    h ^= data[base]!;
    h = Math.imul(h, m);
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h | 0;
}

/** Java's (and librdkafka murmur2_random's) partition for a key. */
export function keyedPartition(key: Uint8Array, numPartitions: number): number {
  return (murmur2(key) & 0x7fffffff) % numPartitions;
}

interface StickyState {
  partition: number;
  bytes: number;
}

/** KIP-794 uniform sticky partitioning for unkeyed records. */
export class StickyPartitioner {
  private readonly current = new Map<string, StickyState>();
  private readonly batchSize: number;
  private readonly adaptive: boolean;
  private readonly random: () => number;

  constructor(opts: { batchSize: number; adaptive: boolean; random?: () => number }) {
    this.batchSize = opts.batchSize;
    this.adaptive = opts.adaptive;
    this.random = opts.random ?? Math.random;
  }

  /**
   * The current sticky partition of `topic`, counting `bytes` more to it, or -1 when it is time
   * to choose a new one with partition(). Lets the caller skip working out `available` per record.
   */
  stick(topic: string, numPartitions: number, bytes: number): number {
    const s = this.current.get(topic);
    if (s === undefined || s.partition >= numPartitions || s.bytes >= this.batchSize) return -1;
    s.bytes += bytes;
    return s.partition;
  }

  /**
   * The partition for an unkeyed record of `bytes` bytes. `available` lists partitions with a
   * leader (all when empty); `queuedBytes(p)` is how much waits for partition p.
   */
  partition(
    topic: string,
    numPartitions: number,
    bytes: number,
    available: readonly number[],
    queuedBytes: (p: number) => number,
  ): number {
    let s = this.current.get(topic);
    if (s === undefined || s.partition >= numPartitions || s.bytes >= this.batchSize) {
      const next = this.next(numPartitions, available, queuedBytes, s?.partition);
      s = { partition: next, bytes: 0 };
      this.current.set(topic, s);
    }
    s.bytes += bytes;
    return s.partition;
  }

  private next(
    numPartitions: number,
    available: readonly number[],
    queuedBytes: (p: number) => number,
    previous: number | undefined,
  ): number {
    let candidates = available.length > 0 ? available : Array.from({ length: numPartitions }, (_, i) => i);
    if (candidates.length > 1 && previous !== undefined) candidates = candidates.filter((p) => p !== previous);
    if (!this.adaptive) return candidates[Math.floor(this.random() * candidates.length)]!;
    // Weight each partition by how much shorter its queue is than the longest (+1 so all can win).
    const queues = candidates.map(queuedBytes);
    const max = Math.max(...queues);
    const weights = queues.map((q) => max - q + 1);
    let r = this.random() * weights.reduce((a, b) => a + b, 0);
    for (let i = 0; i < candidates.length; i++) {
      r -= weights[i]!;
      if (r < 0) return candidates[i]!;
    }
    return candidates[candidates.length - 1]!;
  }
}
