// Consumer group membership, classic protocol, and offset storage.
//
// Joining: JoinGroup (answering MEMBER_ID_REQUIRED with the member id the coordinator handed
// out, KIP-394), the leader computes the assignment from every member's subscription, SyncGroup
// hands each member its partitions. The rebalance protocol is EAGER (revoke everything before
// joining) unless every configured assignor is cooperative (KIP-429: revoke only what moves, then
// rejoin at once), as in Java.
//
// Heartbeats run on their own timer, not from poll(): processing a slow batch does not stop them.
// The same timer enforces maxPollIntervalMs: a member that has not polled in time leaves the
// group (a static member just stops heartbeating and lets the session time out, KIP-345) so
// that its partitions go to others; its next poll() joins again.
//
// What the consumer must do on a rebalance (revoke, assign, lose partitions; call the user's
// listener; commit before giving partitions up) happens in poll(), through the GroupHost calls:
// the heartbeat timer only raises flags.

import {
  ApiKey,
  decodeHeartbeatResponse,
  decodeJoinGroupResponse,
  decodeLeaveGroupResponse,
  decodeOffsetCommitResponse,
  decodeOffsetFetchResponse,
  decodeSyncGroupResponse,
  ErrorCode,
  encodeHeartbeatRequest,
  encodeJoinGroupRequest,
  encodeLeaveGroupRequest,
  encodeOffsetCommitRequest,
  encodeOffsetFetchRequest,
  encodeSyncGroupRequest,
} from "@sluice/protocol";
import {
  type AssignorName,
  assign,
  decodeAssignment,
  decodeSubscription,
  encodeAssignment,
  encodeSubscription,
  type TopicPartition,
} from "./assignors.ts";
import { backoffMs, sleep } from "./backoff.ts";
import type { Cluster } from "./cluster.ts";
import type { Connection } from "./connection.ts";
import { type ItemResult, KafkaError, KafkaProtocolError, PartialFailureError } from "./errors.ts";

export interface GroupOptions {
  groupId: string;
  groupInstanceId: string | null;
  sessionTimeoutMs: number;
  /** max.poll.interval.ms doubles as the rebalance timeout, as in Java. */
  maxPollIntervalMs: number;
  heartbeatIntervalMs: number;
  assignors: readonly AssignorName[];
  retryBackoffMs: number;
  retryBackoffMaxMs: number;
  requireStable: boolean;
}

/** What the group needs from the consumer. */
export interface GroupHost {
  subscription(): string[];
  /** Partitions are given up; `lost` when another member may own them already (no commit then). */
  revoke(partitions: TopicPartition[], lost: boolean): Promise<void>;
  assigned(partitions: TopicPartition[]): Promise<void>;
  /** Partition counts for the leader's assignment (fresh metadata). */
  partitionCounts(topics: string[]): Promise<Map<string, number>>;
  lastPollMs(): number;
  /** Wake a poll() that waits for records: the group needs it. */
  wake(): void;
  warn(message: string): void;
}

export interface OffsetAndMetadata {
  topic: string;
  partition: number;
  offset: bigint;
  metadata?: string | null;
  leaderEpoch?: number;
}

const JOIN_VERSIONS: [number, number] = [0, 9];
const SYNC_VERSIONS: [number, number] = [0, 5];
const HEARTBEAT_VERSIONS: [number, number] = [0, 4];
const LEAVE_VERSIONS: [number, number] = [0, 5];
const OFFSET_COMMIT_VERSIONS: [number, number] = [2, 8];
const OFFSET_FETCH_VERSIONS: [number, number] = [1, 7];

const tpKey = (tp: TopicPartition): string => `${tp.topic}\u0000${tp.partition}`;

export class GroupMember {
  private readonly cluster: Cluster;
  private readonly o: GroupOptions;
  private readonly host: GroupHost;
  memberId = "";
  generationId = -1;
  /** Protocol chosen by the coordinator for the current generation. */
  protocolName: string | null = null;
  private owned: TopicPartition[] = [];
  private needsJoin = true;
  private lost = false;
  private joining: Promise<void> | null = null;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private stopped = false;
  private fatal: KafkaError | null = null;
  private readonly cooperative: boolean;

  constructor(cluster: Cluster, options: GroupOptions, host: GroupHost) {
    this.cluster = cluster;
    this.o = options;
    this.host = host;
    this.cooperative = options.assignors.length > 0 && options.assignors.every((a) => a === "cooperative-sticky");
  }

  get assignment(): TopicPartition[] {
    return [...this.owned];
  }

  get rebalanceNeeded(): boolean {
    return this.needsJoin || this.lost;
  }

  /** Asks for a rejoin (subscription changed). */
  requestRejoin(): void {
    this.needsJoin = true;
    this.host.wake();
  }

  private coordinator(): Promise<Connection> {
    return this.cluster.coordinator("group", this.o.groupId);
  }

  private onCoordinatorError(code: number): boolean {
    if (
      code === ErrorCode.NOT_COORDINATOR ||
      code === ErrorCode.COORDINATOR_NOT_AVAILABLE ||
      code === ErrorCode.COORDINATOR_LOAD_IN_PROGRESS
    ) {
      if (code !== ErrorCode.COORDINATOR_LOAD_IN_PROGRESS) this.cluster.invalidateCoordinator("group", this.o.groupId);
      return true;
    }
    return false;
  }

  /** Called from poll(): handles lost partitions and (re)joins when needed. */
  async ensureActive(): Promise<void> {
    if (this.fatal) throw this.fatal;
    if (!this.needsJoin && !this.lost) return;
    this.joining ??= this.rejoinLoop().finally(() => {
      this.joining = null;
    });
    await this.joining;
  }

  private async rejoinLoop(): Promise<void> {
    this.stopped = false;
    for (let attempt = 0; this.needsJoin || this.lost; attempt++) {
      if (this.lost) {
        const gone = this.owned;
        this.owned = [];
        this.lost = false;
        this.needsJoin = true;
        if (gone.length > 0) await this.host.revoke(gone, true);
      }
      // EAGER: give up everything before joining (commits first, in the host).
      if (!this.cooperative && this.owned.length > 0) {
        const gone = this.owned;
        this.owned = [];
        await this.host.revoke(gone, false);
      }
      try {
        await this.joinOnce();
        attempt = -1;
      } catch (e) {
        if (e instanceof KafkaError && !e.retriable) throw e;
        await sleep(backoffMs(Math.max(0, attempt), this.o.retryBackoffMs, this.o.retryBackoffMaxMs));
      }
    }
  }

  /** One JoinGroup + SyncGroup round; sets needsJoin again when another round is needed. */
  private async joinOnce(): Promise<void> {
    this.stopHeartbeat();
    const conn = await this.coordinator();
    const topics = this.host.subscription();
    // Owned partitions matter to sticky assignors only; eager ones get the plain v0 subscription,
    // which also lets a restarted static member rejoin with unchanged metadata (no rebalance).
    const sticky = this.o.assignors.some((a) => a === "sticky" || a === "cooperative-sticky");
    const metadata = encodeSubscription(
      { topics, ownedPartitions: this.owned, generationId: this.generationId },
      sticky ? 2 : 0,
    );
    const join = await conn.request(
      ApiKey.JoinGroup,
      JOIN_VERSIONS,
      (w, v) =>
        encodeJoinGroupRequest(
          w,
          {
            groupId: this.o.groupId,
            sessionTimeoutMs: this.o.sessionTimeoutMs,
            rebalanceTimeoutMs: this.o.maxPollIntervalMs,
            memberId: this.memberId,
            groupInstanceId: this.o.groupInstanceId,
            protocolType: "consumer",
            protocols: this.o.assignors.map((name) => ({ name, metadata })),
            reason: null,
          },
          v,
        ),
      decodeJoinGroupResponse,
    );
    const code = join.errorCode;
    if (code === ErrorCode.MEMBER_ID_REQUIRED) {
      this.memberId = join.memberId; // KIP-394: join again with the id the coordinator gave us
      return;
    }
    if (code === ErrorCode.UNKNOWN_MEMBER_ID) {
      this.memberId = "";
      return;
    }
    if (code === ErrorCode.FENCED_INSTANCE_ID) {
      this.fatal = new KafkaProtocolError(
        code,
        `JoinGroup ${this.o.groupId}: another consumer uses groupInstanceId ${this.o.groupInstanceId}`,
      );
      throw this.fatal;
    }
    if (code === ErrorCode.REBALANCE_IN_PROGRESS || this.onCoordinatorError(code)) return;
    if (code !== ErrorCode.NONE) throw new KafkaProtocolError(code, `JoinGroup ${this.o.groupId}`);
    this.memberId = join.memberId;
    this.generationId = join.generationId;
    this.protocolName = join.protocolName;
    let assignments: { memberId: string; assignment: Uint8Array }[] = [];
    if (join.leader === join.memberId && !join.skipAssignment) {
      const members = join.members.map((m) => ({
        ...decodeSubscription(m.metadata),
        memberId: m.memberId,
        groupInstanceId: m.groupInstanceId,
      }));
      const all = [...new Set(members.flatMap((m) => m.topics))];
      const counts = await this.host.partitionCounts(all);
      const strategy = (this.protocolName ?? this.o.assignors[0]) as AssignorName;
      const result = assign(strategy, members, counts);
      assignments = [...result].map(([memberId, parts]) => ({ memberId, assignment: encodeAssignment(parts) }));
    }
    const sync = await conn.request(
      ApiKey.SyncGroup,
      SYNC_VERSIONS,
      (w, v) =>
        encodeSyncGroupRequest(
          w,
          {
            groupId: this.o.groupId,
            generationId: this.generationId,
            memberId: this.memberId,
            groupInstanceId: this.o.groupInstanceId,
            protocolType: "consumer",
            protocolName: this.protocolName,
            assignments,
          },
          v,
        ),
      decodeSyncGroupResponse,
    );
    if (sync.errorCode === ErrorCode.UNKNOWN_MEMBER_ID) this.memberId = "";
    if (sync.errorCode === ErrorCode.FENCED_INSTANCE_ID) {
      this.fatal = new KafkaProtocolError(sync.errorCode, `SyncGroup ${this.o.groupId}`);
      throw this.fatal;
    }
    if (sync.errorCode !== ErrorCode.NONE) {
      if (
        sync.errorCode === ErrorCode.REBALANCE_IN_PROGRESS ||
        sync.errorCode === ErrorCode.ILLEGAL_GENERATION ||
        sync.errorCode === ErrorCode.UNKNOWN_MEMBER_ID ||
        this.onCoordinatorError(sync.errorCode)
      )
        return;
      throw new KafkaProtocolError(sync.errorCode, `SyncGroup ${this.o.groupId}`);
    }
    const assigned = decodeAssignment(sync.assignment).filter((tp) => topics.includes(tp.topic));
    const newKeys = new Set(assigned.map(tpKey));
    const oldKeys = new Set(this.owned.map(tpKey));
    const revoked = this.owned.filter((tp) => !newKeys.has(tpKey(tp)));
    const added = assigned.filter((tp) => !oldKeys.has(tpKey(tp)));
    this.needsJoin = false;
    this.startHeartbeat();
    if (revoked.length > 0) {
      this.owned = this.owned.filter((tp) => newKeys.has(tpKey(tp)));
      await this.host.revoke(revoked, false);
      // KIP-429: after revoking, join again so that the partitions can go to their new owners.
      if (this.cooperative) this.needsJoin = true;
    }
    this.owned = assigned;
    if (added.length > 0) await this.host.assigned(added);
  }

  // ---- heartbeats -------------------------------------------------------------------------

  private startHeartbeat(): void {
    this.stopHeartbeat();
    this.heartbeatTimer = setTimeout(() => void this.beat(), this.o.heartbeatIntervalMs);
    this.heartbeatTimer.unref();
  }

  private stopHeartbeat(): void {
    if (this.heartbeatTimer) clearTimeout(this.heartbeatTimer);
    this.heartbeatTimer = null;
  }

  private async beat(): Promise<void> {
    this.heartbeatTimer = null;
    // A join in progress restarts heartbeats when it completes.
    if (this.stopped || this.generationId < 0 || this.joining) return;
    const generation = this.generationId;
    if (Date.now() - this.host.lastPollMs() > this.o.maxPollIntervalMs) {
      this.host.warn(
        `consumer of group ${this.o.groupId} did not poll within maxPollIntervalMs (max.poll.interval.ms) ${this.o.maxPollIntervalMs} ms: leaving the group`,
      );
      await this.leave("consumer poll timeout has expired");
      this.lost = true;
      this.host.wake();
      return;
    }
    try {
      const conn = await this.coordinator();
      const res = await conn.request(
        ApiKey.Heartbeat,
        HEARTBEAT_VERSIONS,
        (w, v) =>
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
        decodeHeartbeatResponse,
      );
      // A rebalance that started meanwhile makes this answer stale.
      if (generation !== this.generationId || this.joining) return;
      const code = res.errorCode;
      if (code === ErrorCode.REBALANCE_IN_PROGRESS) {
        this.needsJoin = true;
        this.host.wake();
      } else if (
        code === ErrorCode.UNKNOWN_MEMBER_ID ||
        code === ErrorCode.ILLEGAL_GENERATION ||
        code === ErrorCode.FENCED_INSTANCE_ID
      ) {
        if (code === ErrorCode.UNKNOWN_MEMBER_ID) this.memberId = "";
        if (code === ErrorCode.FENCED_INSTANCE_ID)
          this.fatal = new KafkaProtocolError(code, `Heartbeat ${this.o.groupId}: fenced by another instance`);
        this.generationId = -1;
        this.lost = true;
        this.host.wake();
        return;
      } else this.onCoordinatorError(code);
    } catch {
      this.cluster.invalidateCoordinator("group", this.o.groupId);
    }
    if (!this.stopped && this.generationId === generation && this.heartbeatTimer === null && !this.joining)
      this.startHeartbeat();
  }

  /** Leaves the group (a static member only stops heartbeating). */
  async leave(reason = "the consumer is closing"): Promise<void> {
    this.stopped = true;
    this.stopHeartbeat();
    const memberId = this.memberId;
    this.generationId = -1;
    this.needsJoin = true;
    if (memberId === "" || this.o.groupInstanceId !== null) return;
    this.memberId = "";
    try {
      const conn = await this.coordinator();
      await conn.request(
        ApiKey.LeaveGroup,
        LEAVE_VERSIONS,
        (w, v) =>
          encodeLeaveGroupRequest(
            w,
            { groupId: this.o.groupId, memberId, members: [{ memberId, groupInstanceId: null, reason }] },
            v,
          ),
        decodeLeaveGroupResponse,
      );
    } catch {
      // The session timeout removes us anyway.
    }
  }

  /** Stops heartbeats without leaving (close of a static member, or shutdown). */
  stop(): void {
    this.stopped = true;
    this.stopHeartbeat();
  }

  // ---- offsets ----------------------------------------------------------------------------

  /**
   * Commits offsets (OffsetCommit). Inside the group it carries our generation, so a commit from
   * a member that was rebalanced out is refused (ILLEGAL_GENERATION) instead of overwriting the
   * new owner's progress. Coordinator moves are retried; partial failures throw with results.
   */
  async commit(offsets: readonly OffsetAndMetadata[], inGroup: boolean): Promise<void> {
    if (offsets.length === 0) return;
    const byTopic = new Map<string, OffsetAndMetadata[]>();
    for (const o of offsets) byTopic.set(o.topic, [...(byTopic.get(o.topic) ?? []), o]);
    for (let attempt = 0; ; attempt++) {
      const conn = await this.coordinator();
      const res = await conn.request(
        ApiKey.OffsetCommit,
        OFFSET_COMMIT_VERSIONS,
        (w, v) =>
          encodeOffsetCommitRequest(
            w,
            {
              groupId: this.o.groupId,
              generationIdOrMemberEpoch: inGroup ? this.generationId : -1,
              memberId: inGroup ? this.memberId : "",
              groupInstanceId: inGroup ? this.o.groupInstanceId : null,
              retentionTimeMs: -1n,
              topics: [...byTopic].map(([name, ps]) => ({
                name,
                partitions: ps.map((p) => ({
                  partitionIndex: p.partition,
                  committedOffset: p.offset,
                  committedLeaderEpoch: p.leaderEpoch ?? -1,
                  commitTimestamp: -1n,
                  committedMetadata: p.metadata ?? "",
                })),
              })),
            },
            v,
          ),
        decodeOffsetCommitResponse,
      );
      const results: ItemResult[] = [];
      let retry = false;
      let rejoin = false;
      for (const t of res.topics) {
        for (const p of t.partitions) {
          const code = p.errorCode;
          if (this.onCoordinatorError(code)) retry = true;
          if (code === ErrorCode.ILLEGAL_GENERATION || code === ErrorCode.UNKNOWN_MEMBER_ID) rejoin = true;
          results.push({
            item: `${t.name}-${p.partitionIndex}`,
            error:
              code === ErrorCode.NONE
                ? null
                : new KafkaProtocolError(code, `OffsetCommit ${t.name}-${p.partitionIndex}`),
          });
        }
      }
      if (retry && attempt < 10) {
        await sleep(backoffMs(attempt, this.o.retryBackoffMs, this.o.retryBackoffMaxMs));
        continue;
      }
      if (rejoin && inGroup) {
        this.lost = true;
        this.host.wake();
      }
      if (results.some((r) => r.error !== null)) {
        const first = results.find((r) => r.error !== null)!.error!;
        if (results.length === 1) throw first;
        throw new PartialFailureError(`OffsetCommit for group ${this.o.groupId}`, results);
      }
      return;
    }
  }

  /** Committed offsets (null where none), waiting out unstable offsets of open transactions. */
  async committed(
    parts: readonly TopicPartition[],
  ): Promise<Map<string, { offset: bigint; metadata: string | null; leaderEpoch: number } | null>> {
    const out = new Map<string, { offset: bigint; metadata: string | null; leaderEpoch: number } | null>();
    if (parts.length === 0) return out;
    const byTopic = new Map<string, number[]>();
    for (const p of parts) byTopic.set(p.topic, [...(byTopic.get(p.topic) ?? []), p.partition]);
    for (let attempt = 0; ; attempt++) {
      const conn = await this.coordinator();
      const res = await conn.request(
        ApiKey.OffsetFetch,
        OFFSET_FETCH_VERSIONS,
        (w, v) =>
          encodeOffsetFetchRequest(
            w,
            {
              groupId: this.o.groupId,
              topics: [...byTopic].map(([name, partitionIndexes]) => ({ name, partitionIndexes })),
              requireStable: this.o.requireStable,
            },
            v,
          ),
        decodeOffsetFetchResponse,
      );
      let retryCode: number = ErrorCode.NONE;
      if (res.errorCode !== ErrorCode.NONE) {
        if (!this.onCoordinatorError(res.errorCode))
          throw new KafkaProtocolError(res.errorCode, `OffsetFetch ${this.o.groupId}`);
        retryCode = res.errorCode;
      }
      for (const t of res.topics) {
        for (const p of t.partitions) {
          if (p.errorCode === ErrorCode.UNSTABLE_OFFSET_COMMIT) retryCode = p.errorCode;
          else if (p.errorCode !== ErrorCode.NONE && p.errorCode !== ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
            throw new KafkaProtocolError(p.errorCode, `OffsetFetch ${t.name}-${p.partitionIndex}`);
          out.set(
            `${t.name}\u0000${p.partitionIndex}`,
            p.committedOffset >= 0n
              ? { offset: p.committedOffset, metadata: p.metadata, leaderEpoch: p.committedLeaderEpoch }
              : null,
          );
        }
      }
      if (retryCode === ErrorCode.NONE) return out;
      if (attempt > 100) throw new KafkaProtocolError(retryCode, `OffsetFetch ${this.o.groupId}`);
      await sleep(backoffMs(attempt, this.o.retryBackoffMs, this.o.retryBackoffMaxMs));
    }
  }
}
