// Partitioners. Keyed records go where Java's default partitioner (and librdkafka's
// murmur2_random) put them: toPositive(murmur2(key)) % numPartitions, murmur2 being the 32-bit
// Murmur2 with seed 0x9747b28c. Unkeyed records stick to one partition per topic until a batch
// for it is sent, then move on (uniform sticky, KIP-794).

export type Partitioner = (topic: string, key: Uint8Array | null, numPartitions: number) => number;

export function murmur2(data: Uint8Array): number {
  const length = data.length;
  const m = 0x5bd1e995;
  let h = (0x9747b28c ^ length) | 0;
  const length4 = length >> 2;
  for (let i = 0; i < length4; i++) {
    const i4 = i << 2;
    let k =
      (data[i4]! & 0xff) |
      ((data[i4 + 1]! & 0xff) << 8) |
      ((data[i4 + 2]! & 0xff) << 16) |
      ((data[i4 + 3]! & 0xff) << 24);
    k = Math.imul(k, m);
    k ^= k >>> 24;
    k = Math.imul(k, m);
    h = Math.imul(h, m);
    h ^= k;
  }
  const rest = length & 3;
  const base = length & ~3;
  if (rest === 3) h ^= (data[base + 2]! & 0xff) << 16;
  if (rest >= 2) h ^= (data[base + 1]! & 0xff) << 8;
  if (rest >= 1) {
    h ^= data[base]! & 0xff;
    h = Math.imul(h, m);
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h | 0;
}

export function keyedPartition(key: Uint8Array, numPartitions: number): number {
  return (murmur2(key) & 0x7fffffff) % numPartitions;
}

/** Uniform sticky partitioning for unkeyed records; `onBatchSent` moves a topic to a new partition. */
export class StickyPartitioner {
  private readonly current = new Map<string, number>();

  partition(topic: string, numPartitions: number): number {
    let p = this.current.get(topic);
    if (p === undefined || p >= numPartitions) {
      p = Math.floor(Math.random() * numPartitions);
      this.current.set(topic, p);
    }
    return p;
  }

  onBatchSent(topic: string, partition: number, numPartitions: number): void {
    if (this.current.get(topic) !== partition || numPartitions < 2) return;
    let next = Math.floor(Math.random() * (numPartitions - 1));
    if (next >= partition) next++;
    this.current.set(topic, next);
  }
}
