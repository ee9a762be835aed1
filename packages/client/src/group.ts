// Consumer group membership (classic protocol): find the coordinator, join (answering
// MEMBER_ID_REQUIRED), assign as leader (range or roundrobin), sync, heartbeat on a timer of its
// own (not tied to message processing), rejoin when the coordinator asks, and leave when poll()
// is not called within maxPollIntervalMs so that the partitions move to other members.

import {
  decodeFindCoordinatorResponse,
  decodeHeartbeatResponse,
  decodeJoinGroupResponse,
  decodeLeaveGroupResponse,
  decodeOffsetCommitResponse,
  decodeOffsetFetchResponse,
  decodeSyncGroupResponse,
  ErrorCode,
  encodeFindCoordinatorRequest,
  encodeHeartbeatRequest,
  encodeJoinGroupRequest,
  encodeLeaveGroupRequest,
  encodeOffsetCommitRequest,
  encodeOffsetFetchRequest,
  encodeSyncGroupRequest,
  Reader,
  Writer,
} from "@sluice/protocol";
import type { Cluster } from "./cluster.ts";
import type { Connection } from "./connection.ts";
import { KafkaProtocolError } from "./errors.ts";

export type AssignmentStrategy = "range" | "roundrobin";

export interface GroupOptions {
  groupId: string;
  groupInstanceId: string | null;
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  heartbeatIntervalMs: number;
  strategy: AssignmentStrategy;
  clientId: string;
}

export interface TopicPartitionOffset {
  topic: string;
  partition: number;
  offset: bigint | null;
}

// ---- consumer protocol (ConsumerProtocolSubscription / Assignment, version 0) ------------------

export function encodeSubscription(topics: readonly string[]): Uint8Array {
  const w = new Writer();
  w.writeInt16(0);
  w.writeInt32(topics.length);
  for (const t of topics) w.writeString(t, false);
  w.writeBytes(null, false);
  return w.toBuffer();
}

export function decodeSubscription(b: Uint8Array): string[] {
  const r = new Reader(b);
  r.readInt16("version");
  const n = r.readArrayLength("topics", false, false, 2);
  return Array.from({ length: n }, () => r.readString("topic", false, false) as string);
}

export function encodeAssignment(parts: Map<string, number[]>): Uint8Array {
  const w = new Writer();
  w.writeInt16(0);
  w.writeInt32(parts.size);
  for (const [topic, ps] of parts) {
    w.writeString(topic, false);
    w.writeInt32(ps.length);
    for (const p of ps) w.writeInt32(p);
  }
  w.writeBytes(null, false);
  return w.toBuffer();
}

export function decodeAssignment(b: Uint8Array): { topic: string; partition: number }[] {
  if (b.length === 0) return [];
  const r = new Reader(b);
  r.readInt16("version");
  const out: { topic: string; partition: number }[] = [];
  const n = r.readArrayLength("topics", false, false, 2);
  for (let i = 0; i < n; i++) {
    const topic = r.readString("topic", false, false) as string;
    const m = r.readArrayLength("partitions", false, false, 4);
    for (let j = 0; j < m; j++) out.push({ topic, partition: r.readInt32("partition") });
  }
  return out;
}

/** Leader-side assignment: member id → topic → partitions. */
export function assign(
  strategy: AssignmentStrategy,
  members: { memberId: string; topics: string[] }[],
  partitionCounts: Map<string, number>,
): Map<string, Map<string, number[]>> {
  const out = new Map(members.map((m) => [m.memberId, new Map<string, number[]>()]));
  const sorted = [...members].sort((a, b) => (a.memberId < b.memberId ? -1 : 1));
  const topics = [...new Set(members.flatMap((m) => m.topics))].sort();
  const give = (memberId: string, topic: string, p: number): void => {
    const m = out.get(memberId)!;
    m.set(topic, [...(m.get(topic) ?? []), p]);
  };
  if (strategy === "range") {
    for (const topic of topics) {
      const subs = sorted.filter((m) => m.topics.includes(topic));
      const n = partitionCounts.get(topic) ?? 0;
      const per = Math.floor(n / subs.length);
      const extra = n % subs.length;
      let p = 0;
      subs.forEach((m, i) => {
        const count = per + (i < extra ? 1 : 0);
        for (let k = 0; k < count; k++) give(m.memberId, topic, p++);
      });
    }
  } else {
    let i = 0;
    for (const topic of topics) {
      for (let p = 0; p < (partitionCounts.get(topic) ?? 0); p++) {
        for (let tries = 0; tries < sorted.length; tries++) {
          const m = sorted[i++ % sorted.length]!;
          if (m.topics.includes(topic)) {
            give(m.memberId, topic, p);
            break;
          }
        }
      }
    }
  }
  return out;
}

export class GroupMember {
  private readonly cluster: Cluster;
  private readonly o: GroupOptions;
  private memberId = "";
  private generationId = -1;
  private coordinatorConn: Connection | null = null;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private joining: Promise<void> | null = null;
  private topics: string[] = [];
  private stopped = false;
  needsRejoin = false;
  assignment: { topic: string; partition: number }[] = [];
  /** Called when the coordinator asks for a rejoin (heartbeat error): the consumer rejoins at once. */
  onRejoinNeeded: () => void = () => {};

  constructor(cluster: Cluster, options: GroupOptions) {
    this.cluster = cluster;
    this.o = options;
  }

  get member(): { memberId: string; generationId: number } {
    return { memberId: this.memberId, generationId: this.generationId };
  }

  private async coordinator(): Promise<Connection> {
    if (this.coordinatorConn && !this.coordinatorConn.closed) return this.coordinatorConn;
    const any = await this.cluster.anyConnection();
    const v = any.version(10, 1, 3);
    const r = await any.send(10, v, (w) => encodeFindCoordinatorRequest(w, { key: this.o.groupId, keyType: 0 }, v));
    const res = decodeFindCoordinatorResponse(r, v);
    if (res.errorCode !== ErrorCode.NONE) throw new KafkaProtocolError(res.errorCode, "FindCoordinator");
    this.coordinatorConn = await this.cluster.connection(res.host, res.port);
    return this.coordinatorConn;
  }

  /** Joins (or rejoins) the group for `topics`; resolves with the new assignment. */
  join(topics: string[]): Promise<void> {
    this.topics = topics;
    this.stopped = false;
    this.joining ??= this.doJoin().finally(() => {
      this.joining = null;
    });
    return this.joining;
  }

  private async doJoin(): Promise<void> {
    this.stopHeartbeat();
    for (let attempt = 0; ; attempt++) {
      const conn = await this.coordinator();
      const jv = conn.version(11, 1, 7);
      const jr = await conn.send(11, jv, (w) =>
        encodeJoinGroupRequest(
          w,
          {
            groupId: this.o.groupId,
            sessionTimeoutMs: this.o.sessionTimeoutMs,
            rebalanceTimeoutMs: this.o.rebalanceTimeoutMs,
            memberId: this.memberId,
            groupInstanceId: this.o.groupInstanceId,
            protocolType: "consumer",
            protocols: [{ name: this.o.strategy, metadata: encodeSubscription(this.topics) }],
          },
          jv,
        ),
      );
      const join = decodeJoinGroupResponse(jr, jv);
      if (join.errorCode === ErrorCode.MEMBER_ID_REQUIRED) {
        this.memberId = join.memberId;
        continue;
      }
      if (join.errorCode === ErrorCode.UNKNOWN_MEMBER_ID || join.errorCode === ErrorCode.ILLEGAL_GENERATION) {
        this.memberId = "";
        continue;
      }
      if (join.errorCode === ErrorCode.REBALANCE_IN_PROGRESS && attempt < 20) continue;
      if (join.errorCode !== ErrorCode.NONE) throw new KafkaProtocolError(join.errorCode, "JoinGroup");
      this.memberId = join.memberId;
      this.generationId = join.generationId;
      let assignments: { memberId: string; assignment: Uint8Array }[] = [];
      if (join.leader === join.memberId) {
        const members = join.members.map((m) => ({ memberId: m.memberId, topics: decodeSubscription(m.metadata) }));
        const all = [...new Set(members.flatMap((m) => m.topics))];
        await this.cluster.refresh(all);
        const counts = new Map(all.map((t) => [t, this.cluster.partitions(t)?.length ?? 0]));
        assignments = [...assign(this.o.strategy, members, counts)].map(([memberId, parts]) => ({
          memberId,
          assignment: encodeAssignment(parts),
        }));
      }
      const sv = conn.version(14, 0, 3);
      const sr = await conn.send(14, sv, (w) =>
        encodeSyncGroupRequest(
          w,
          {
            groupId: this.o.groupId,
            generationId: this.generationId,
            memberId: this.memberId,
            groupInstanceId: this.o.groupInstanceId,
            assignments,
          },
          sv,
        ),
      );
      const sync = decodeSyncGroupResponse(sr, sv);
      if (sync.errorCode === ErrorCode.REBALANCE_IN_PROGRESS || sync.errorCode === ErrorCode.ILLEGAL_GENERATION)
        continue;
      if (sync.errorCode === ErrorCode.UNKNOWN_MEMBER_ID) {
        this.memberId = "";
        continue;
      }
      if (sync.errorCode !== ErrorCode.NONE) throw new KafkaProtocolError(sync.errorCode, "SyncGroup");
      this.assignment = decodeAssignment(sync.assignment);
      this.needsRejoin = false;
      this.startHeartbeat();
      return;
    }
  }

  private startHeartbeat(): void {
    this.stopHeartbeat();
    this.heartbeatTimer = setInterval(() => void this.heartbeat(), this.o.heartbeatIntervalMs);
    this.heartbeatTimer.unref();
  }

  private stopHeartbeat(): void {
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = null;
  }

  private async heartbeat(): Promise<void> {
    if (this.stopped || this.joining) return;
    try {
      const conn = await this.coordinator();
      const v = conn.version(12, 0, 3);
      const r = await conn.send(12, v, (w) =>
        encodeHeartbeatRequest(
          w,
          {
            groupId: this.o.groupId,
            generationId: this.generationId,
            memberId: this.memberId,
            groupInstanceId: this.o.groupInstanceId,
          },
          v,
        ),
      );
      const code = decodeHeartbeatResponse(r, v).errorCode;
      if (code === ErrorCode.UNKNOWN_MEMBER_ID) this.memberId = "";
      if (code !== ErrorCode.NONE) {
        this.needsRejoin = true;
        this.onRejoinNeeded();
      }
    } catch {
      this.coordinatorConn = null;
    }
  }

  async committed(parts: { topic: string; partition: number }[]): Promise<TopicPartitionOffset[]> {
    const conn = await this.coordinator();
    const v = conn.version(9, 1, 7);
    const byTopic = new Map<string, number[]>();
    for (const p of parts) byTopic.set(p.topic, [...(byTopic.get(p.topic) ?? []), p.partition]);
    const r = await conn.send(9, v, (w) =>
      encodeOffsetFetchRequest(
        w,
        {
          groupId: this.o.groupId,
          topics: [...byTopic].map(([name, partitionIndexes]) => ({ name, partitionIndexes })),
        },
        v,
      ),
    );
    const res = decodeOffsetFetchResponse(r, v);
    return res.topics.flatMap((t) =>
      t.partitions.map((p) => ({
        topic: t.name,
        partition: p.partitionIndex,
        offset: p.committedOffset >= 0n ? p.committedOffset : null,
      })),
    );
  }

  async commit(offsets: { topic: string; partition: number; offset: bigint }[]): Promise<void> {
    if (offsets.length === 0) return;
    const conn = await this.coordinator();
    const v = conn.version(8, 2, 7);
    const byTopic = new Map<string, { partitionIndex: number; committedOffset: bigint }[]>();
    for (const o of offsets)
      byTopic.set(o.topic, [
        ...(byTopic.get(o.topic) ?? []),
        { partitionIndex: o.partition, committedOffset: o.offset },
      ]);
    const r = await conn.send(8, v, (w) =>
      encodeOffsetCommitRequest(
        w,
        {
          groupId: this.o.groupId,
          generationIdOrMemberEpoch: this.generationId,
          memberId: this.memberId,
          groupInstanceId: this.o.groupInstanceId,
          retentionTimeMs: -1n,
          topics: [...byTopic].map(([name, partitions]) => ({
            name,
            partitions: partitions.map((p) => ({ ...p, committedLeaderEpoch: -1, committedMetadata: "" })),
          })),
        },
        v,
      ),
    );
    for (const t of decodeOffsetCommitResponse(r, v).topics) {
      for (const p of t.partitions) {
        if (
          p.errorCode === ErrorCode.REBALANCE_IN_PROGRESS ||
          p.errorCode === ErrorCode.ILLEGAL_GENERATION ||
          p.errorCode === ErrorCode.UNKNOWN_MEMBER_ID
        )
          this.needsRejoin = true;
        if (p.errorCode !== ErrorCode.NONE)
          throw new KafkaProtocolError(p.errorCode, `OffsetCommit ${t.name}-${p.partitionIndex}`);
      }
    }
  }

  /** Leaves the group (LeaveGroup) so that its partitions are reassigned at once. */
  async leave(): Promise<void> {
    this.stopped = true;
    this.stopHeartbeat();
    this.assignment = [];
    if (this.memberId === "") return;
    try {
      const conn = await this.coordinator();
      const v = conn.version(13, 0, 2);
      const r = await conn.send(13, v, (w) =>
        encodeLeaveGroupRequest(w, { groupId: this.o.groupId, memberId: this.memberId }, v),
      );
      decodeLeaveGroupResponse(r, v);
    } catch {
      // The session timeout removes us anyway.
    }
    this.memberId = "";
    this.generationId = -1;
  }
}
