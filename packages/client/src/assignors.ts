// Partition assignment for consumer groups (classic protocol): the group leader decodes every
// member's subscription (ConsumerProtocolSubscription), computes who reads which partitions and
// sends it back through SyncGroup (ConsumerProtocolAssignment). Both formats are Kafka's
// (messages/ConsumerProtocol*.json, not flexible), so Java, librdkafka and kafkajs members can
// share a group with ours.
//
// Assignors, by their protocol names (the same as Java's and librdkafka's):
// - range: per topic, members sorted by id, consecutive ranges; the first members get one extra.
// - roundrobin: every topic-partition in order, dealt to subscribed members in turn.
// - sticky: balanced, and keeps each partition with its current owner where balance allows.
// - cooperative-sticky: sticky, with the incremental protocol (KIP-429): a partition that must
//   move is first only taken from its owner; the owner revokes it and rejoins, and the next
//   rebalance gives it to its new member. Nobody stops reading the partitions it keeps.

import { Reader, Writer } from "@sluice/protocol";

export type AssignorName = "range" | "roundrobin" | "sticky" | "cooperative-sticky";

export interface TopicPartition {
  topic: string;
  partition: number;
}

export interface Subscription {
  topics: string[];
  userData: Uint8Array | null;
  ownedPartitions: TopicPartition[];
  generationId: number;
  rackId: string | null;
}

export interface GroupMemberSubscription extends Subscription {
  memberId: string;
  groupInstanceId: string | null;
}

/** The subscription version we send: v2 carries owned partitions and the generation. */
const SUBSCRIPTION_VERSION = 2;

function writeTopicPartitions(w: Writer, parts: readonly TopicPartition[]): void {
  const byTopic = groupByTopic(parts);
  w.writeInt32(byTopic.size);
  for (const [topic, ps] of byTopic) {
    w.writeString(topic, false);
    w.writeInt32(ps.length);
    for (const p of ps) w.writeInt32(p);
  }
}

function readTopicPartitions(r: Reader): TopicPartition[] {
  const out: TopicPartition[] = [];
  const n = r.readArrayLength("topics", false, false, 6);
  for (let i = 0; i < n; i++) {
    const topic = r.readString("topic", false, false) as string;
    const m = r.readArrayLength("partitions", false, false, 4);
    for (let j = 0; j < m; j++) out.push({ topic, partition: r.readInt32("partition") });
  }
  return out;
}

export function groupByTopic(parts: readonly TopicPartition[]): Map<string, number[]> {
  const m = new Map<string, number[]>();
  for (const p of parts) {
    const list = m.get(p.topic);
    if (list) list.push(p.partition);
    else m.set(p.topic, [p.partition]);
  }
  for (const list of m.values()) list.sort((a, b) => a - b);
  return m;
}

export function encodeSubscription(
  s: Partial<Subscription> & { topics: string[] },
  version = SUBSCRIPTION_VERSION,
): Uint8Array {
  const w = new Writer();
  w.writeInt16(version);
  w.writeInt32(s.topics.length);
  for (const t of s.topics) w.writeString(t, false);
  w.writeBytes(s.userData ?? null, false);
  if (version >= 1) writeTopicPartitions(w, s.ownedPartitions ?? []);
  if (version >= 2) w.writeInt32(s.generationId ?? -1);
  if (version >= 3) w.writeString(s.rackId ?? null, false);
  return w.toBuffer();
}

/** Any version; fields of newer versions than we know are ignored (Kafka's rule for this schema). */
export function decodeSubscription(b: Uint8Array): Subscription {
  const r = new Reader(b);
  const version = r.readInt16("version");
  const n = r.readArrayLength("topics", false, false, 2);
  const topics = Array.from({ length: n }, () => r.readString("topic", false, false) as string);
  const out: Subscription = { topics, userData: null, ownedPartitions: [], generationId: -1, rackId: null };
  if (r.remaining === 0) return out;
  out.userData = r.readBytes("userData", false, true);
  if (version >= 1 && r.remaining > 0) out.ownedPartitions = readTopicPartitions(r);
  if (version >= 2 && r.remaining >= 4) out.generationId = r.readInt32("generationId");
  if (version >= 3 && r.remaining >= 2) out.rackId = r.readString("rackId", false, true);
  return out;
}

export function encodeAssignment(parts: readonly TopicPartition[], userData: Uint8Array | null = null): Uint8Array {
  const w = new Writer();
  w.writeInt16(0);
  writeTopicPartitions(w, parts);
  w.writeBytes(userData, false);
  return w.toBuffer();
}

export function decodeAssignment(b: Uint8Array): TopicPartition[] {
  if (b.length === 0) return [];
  const r = new Reader(b);
  r.readInt16("version");
  return readTopicPartitions(r);
}

const key = (tp: TopicPartition): string => `${tp.topic}\u0000${tp.partition}`;
const byMember = (a: { memberId: string }, b: { memberId: string }): number =>
  a.memberId < b.memberId ? -1 : a.memberId > b.memberId ? 1 : 0;

/** memberId → partitions. Every member of `members` has an entry (possibly empty). */
export type Assignment = Map<string, TopicPartition[]>;

export function assign(
  strategy: AssignorName,
  members: readonly GroupMemberSubscription[],
  partitionCounts: ReadonlyMap<string, number>,
): Assignment {
  switch (strategy) {
    case "range":
      return rangeAssign(members, partitionCounts);
    case "roundrobin":
      return roundRobinAssign(members, partitionCounts);
    case "sticky":
      return stickyAssign(members, partitionCounts, false);
    case "cooperative-sticky":
      return stickyAssign(members, partitionCounts, true);
  }
}

/** Range sorts static members by instance id (stable across restarts), as Java does. */
function rangeOrderKey(m: GroupMemberSubscription): string {
  return m.groupInstanceId ?? m.memberId;
}

function rangeAssign(members: readonly GroupMemberSubscription[], counts: ReadonlyMap<string, number>): Assignment {
  const out: Assignment = new Map(members.map((m) => [m.memberId, []]));
  const topics = [...new Set(members.flatMap((m) => m.topics))].sort();
  for (const topic of topics) {
    const subs = members
      .filter((m) => m.topics.includes(topic))
      .sort((a, b) => (rangeOrderKey(a) < rangeOrderKey(b) ? -1 : rangeOrderKey(a) > rangeOrderKey(b) ? 1 : 0));
    const n = counts.get(topic) ?? 0;
    const per = Math.floor(n / subs.length);
    const extra = n % subs.length;
    let p = 0;
    subs.forEach((m, i) => {
      const count = per + (i < extra ? 1 : 0);
      for (let k = 0; k < count; k++) out.get(m.memberId)!.push({ topic, partition: p++ });
    });
  }
  return out;
}

function roundRobinAssign(
  members: readonly GroupMemberSubscription[],
  counts: ReadonlyMap<string, number>,
): Assignment {
  const out: Assignment = new Map(members.map((m) => [m.memberId, []]));
  const sorted = [...members].sort(byMember);
  const topics = [...new Set(members.flatMap((m) => m.topics))].sort();
  let i = 0;
  for (const topic of topics) {
    for (let p = 0; p < (counts.get(topic) ?? 0); p++) {
      for (let tries = 0; tries < sorted.length; tries++) {
        const m = sorted[i++ % sorted.length]!;
        if (m.topics.includes(topic)) {
          out.get(m.memberId)!.push({ topic, partition: p });
          break;
        }
      }
    }
  }
  return out;
}

/**
 * Sticky assignment: keep valid ownership (a partition claimed by two members goes to the one
 * with the higher generation, then the first by id), give unowned partitions to the least loaded
 * eligible member, then move partitions from the most to the least loaded eligible member until
 * no two eligible members differ by more than one. With `cooperative`, a partition that changes
 * owner is left out of this round (its owner must revoke it first).
 */
function stickyAssign(
  members: readonly GroupMemberSubscription[],
  counts: ReadonlyMap<string, number>,
  cooperative: boolean,
): Assignment {
  const sorted = [...members].sort(byMember);
  const subscribed = new Map(sorted.map((m) => [m.memberId, new Set(m.topics)]));
  const all: TopicPartition[] = [];
  for (const topic of [...new Set(sorted.flatMap((m) => m.topics))].sort())
    for (let p = 0; p < (counts.get(topic) ?? 0); p++) all.push({ topic, partition: p });
  const exists = new Set(all.map(key));

  // 1. Valid previous owners.
  const previousOwner = new Map<string, { memberId: string; generation: number }>();
  for (const m of sorted) {
    for (const tp of m.ownedPartitions) {
      const k = key(tp);
      if (!exists.has(k) || !subscribed.get(m.memberId)!.has(tp.topic)) continue;
      const current = previousOwner.get(k);
      if (!current || m.generationId > current.generation)
        previousOwner.set(k, { memberId: m.memberId, generation: m.generationId });
    }
  }
  const owned = new Map<string, TopicPartition[]>(sorted.map((m) => [m.memberId, []]));
  const owner = new Map<string, string>();
  for (const tp of all) {
    const prev = previousOwner.get(key(tp));
    if (!prev) continue;
    owned.get(prev.memberId)!.push(tp);
    owner.set(key(tp), prev.memberId);
  }
  const eligible = (memberId: string, tp: TopicPartition): boolean => subscribed.get(memberId)!.has(tp.topic);

  // 2. Unowned partitions to the least loaded eligible member.
  for (const tp of all) {
    if (owner.has(key(tp))) continue;
    let best: string | null = null;
    for (const m of sorted) {
      if (!eligible(m.memberId, tp)) continue;
      if (best === null || owned.get(m.memberId)!.length < owned.get(best)!.length) best = m.memberId;
    }
    if (best === null) continue;
    owned.get(best)!.push(tp);
    owner.set(key(tp), best);
  }

  // 3. Balance: move from the most loaded to a less loaded eligible member while it narrows the gap.
  for (let guard = 0; guard < all.length * sorted.length + 1; guard++) {
    let moved = false;
    const byLoad = [...sorted].sort(
      (a, b) => owned.get(b.memberId)!.length - owned.get(a.memberId)!.length || byMember(a, b),
    );
    outer: for (const heavy of byLoad) {
      const mine = owned.get(heavy.memberId)!;
      for (const light of [...byLoad].reverse()) {
        if (owned.get(light.memberId)!.length + 1 >= mine.length) break;
        // Prefer moving a partition that was not the heavy member's before this rebalance.
        const candidates = mine.filter((tp) => eligible(light.memberId, tp));
        if (candidates.length === 0) continue;
        const tp = candidates.find((c) => previousOwner.get(key(c))?.memberId !== heavy.memberId) ?? candidates.at(-1)!;
        mine.splice(mine.indexOf(tp), 1);
        owned.get(light.memberId)!.push(tp);
        owner.set(key(tp), light.memberId);
        moved = true;
        break outer;
      }
    }
    if (!moved) break;
  }

  const out: Assignment = new Map();
  for (const m of sorted) {
    let parts = owned.get(m.memberId)!;
    if (cooperative) {
      // A partition taken from a member that still owns it waits for the next round.
      parts = parts.filter((tp) => {
        const prev = previousOwner.get(key(tp));
        return prev === undefined || prev.memberId === m.memberId;
      });
    }
    out.set(
      m.memberId,
      parts.sort((a, b) => (a.topic === b.topic ? a.partition - b.partition : a.topic < b.topic ? -1 : 1)),
    );
  }
  return out;
}
