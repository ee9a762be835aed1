// The classic consumer-group coordinator: membership, rebalances and committed offsets.
//
// State machine (Kafka's GroupMetadata states, reported by DescribeGroups):
//   Empty ──join──▶ PreparingRebalance ──all joined / rebalance timeout──▶ CompletingRebalance
//   CompletingRebalance ──leader's SyncGroup──▶ Stable ──join / leave / member expiry──▶ PreparingRebalance
//   any ──last member gone──▶ Empty;  Empty ──DeleteGroups / offsets expired──▶ Dead
// Errors are Kafka's, where Kafka gives them: UNKNOWN_MEMBER_ID for members the group does not
// know, ILLEGAL_GENERATION for a stale generation, REBALANCE_IN_PROGRESS when a rebalance must be
// joined first, MEMBER_ID_REQUIRED for the first join of a v4+ client, FENCED_INSTANCE_ID when a
// static member's id was taken over, INCONSISTENT_GROUP_PROTOCOL when protocols do not match.
//
// Timers: each member's session expires unless it heartbeats (or joins/syncs) within its session
// timeout; a rebalance completes when every member has rejoined or the largest rebalance timeout
// (the consumers' max.poll.interval.ms) passes, removing members that did not rejoin. A new empty
// group waits group.initial.rebalance.delay.ms (extended while members keep arriving).
//
// Persistence: every completed rebalance and every offset commit is written to
// __consumer_offsets (see persistence.ts) before it is acknowledged; `load` replays that log.

import { randomUUID } from "node:crypto";
import { storeErrorCode } from "./store-errors.ts";

export type GroupState = "Empty" | "PreparingRebalance" | "CompletingRebalance" | "Stable" | "Dead";

export interface Protocol {
  readonly name: string;
  readonly metadata: Uint8Array;
}

export interface JoinResult {
  errorCode: number;
  generationId: number;
  protocolType: string | null;
  protocolName: string | null;
  leader: string;
  memberId: string;
  members: { memberId: string; groupInstanceId: string | null; metadata: Uint8Array }[];
}

export interface SyncResult {
  errorCode: number;
  protocolType: string | null;
  protocolName: string | null;
  assignment: Uint8Array;
}

export interface Member {
  readonly memberId: string;
  groupInstanceId: string | null;
  clientId: string;
  clientHost: string;
  rebalanceTimeoutMs: number;
  sessionTimeoutMs: number;
  protocolType: string;
  protocols: Protocol[];
  assignment: Uint8Array;
  joinWaiter: ((r: JoinResult) => void) | null;
  syncWaiter: ((r: SyncResult) => void) | null;
  sessionTimer: NodeJS.Timeout | null;
  /** Joined during the current rebalance (Kafka's isNew), so that it expires quickly if it vanishes. */
  isNew: boolean;
}

export interface CommittedOffset {
  offset: bigint;
  leaderEpoch: number;
  metadata: string;
  commitTimestampMs: bigint;
  /** Set only by v2–v4 commits with an explicit retention time (OffsetCommitValue v1). */
  expireTimestampMs?: bigint;
}

export interface Group {
  readonly groupId: string;
  state: GroupState;
  generationId: number;
  protocolType: string | null;
  protocolName: string | null;
  leaderId: string | null;
  members: Map<string, Member>;
  /** Member ids handed out with MEMBER_ID_REQUIRED that have not joined yet. */
  pendingMembers: Set<string>;
  /** group.instance.id → member id. */
  staticMembers: Map<string, string>;
  offsets: Map<string, CommittedOffset>;
  rebalanceTimer: NodeJS.Timeout | null;
  initialDelayDeadlineMs: number;
  stateTimestampMs: number;
}

export interface GroupPersistence {
  storeGroup(g: Group): Promise<void>;
  storeOffsets(
    groupId: string,
    offsets: { topic: string; partition: number; value: CommittedOffset | null }[],
  ): Promise<void>;
  removeGroup(groupId: string): Promise<void>;
}

export interface GroupConfig {
  minSessionTimeoutMs: number;
  maxSessionTimeoutMs: number;
  initialRebalanceDelayMs: number;
  maxSize: number;
  offsetsRetentionMs: number;
  offsetMetadataMaxBytes: number;
}

export const E = {
  NONE: 0,
  UNKNOWN_SERVER_ERROR: -1,
  OFFSET_METADATA_TOO_LARGE: 12,
  COORDINATOR_LOAD_IN_PROGRESS: 14,
  ILLEGAL_GENERATION: 22,
  INCONSISTENT_GROUP_PROTOCOL: 23,
  INVALID_GROUP_ID: 24,
  UNKNOWN_MEMBER_ID: 25,
  INVALID_SESSION_TIMEOUT: 26,
  REBALANCE_IN_PROGRESS: 27,
  NON_EMPTY_GROUP: 68,
  GROUP_ID_NOT_FOUND: 69,
  MEMBER_ID_REQUIRED: 79,
  FENCED_INSTANCE_ID: 82,
  GROUP_MAX_SIZE_REACHED: 81,
  GROUP_SUBSCRIBED_TO_TOPIC: 86,
} as const;

export const offsetKey = (topic: string, partition: number): string => `${topic}\u0000${partition}`;

export function splitOffsetKey(k: string): { topic: string; partition: number } {
  const i = k.lastIndexOf("\u0000");
  return { topic: k.slice(0, i), partition: Number(k.slice(i + 1)) };
}

export class GroupCoordinator {
  readonly groups = new Map<string, Group>();
  /** Transactional offset commits awaiting their transaction's marker, by producer id. */
  readonly pendingTxnOffsets = new Map<bigint, Map<string, Map<string, CommittedOffset>>>();
  private readonly config: GroupConfig;
  private readonly store: GroupPersistence;
  private readonly now: () => number;
  private stopped = false;

  constructor(config: GroupConfig, store: GroupPersistence, now: () => number = Date.now) {
    this.config = config;
    this.store = store;
    this.now = now;
  }

  private getOrCreate(groupId: string): Group {
    let g = this.groups.get(groupId);
    if (!g || g.state === "Dead") {
      g = {
        groupId,
        state: "Empty",
        generationId: 0,
        protocolType: null,
        protocolName: null,
        leaderId: null,
        members: new Map(),
        pendingMembers: new Set(),
        staticMembers: new Map(),
        offsets: g?.offsets ?? new Map(),
        rebalanceTimer: null,
        initialDelayDeadlineMs: 0,
        stateTimestampMs: this.now(),
      };
      this.groups.set(groupId, g);
    }
    return g;
  }

  private transition(g: Group, state: GroupState): void {
    g.state = state;
    g.stateTimestampMs = this.now();
  }

  // ---- join ---------------------------------------------------------------------------------------

  join(req: {
    groupId: string;
    memberId: string;
    groupInstanceId: string | null;
    protocolType: string;
    protocols: Protocol[];
    sessionTimeoutMs: number;
    rebalanceTimeoutMs: number;
    clientId: string;
    clientHost: string;
    requireKnownMemberId: boolean;
  }): Promise<JoinResult> {
    const fail = (errorCode: number, memberId = req.memberId): Promise<JoinResult> =>
      Promise.resolve({
        errorCode,
        generationId: -1,
        protocolType: null,
        protocolName: null,
        leader: "",
        memberId,
        members: [],
      });
    if (req.groupId === "") return fail(E.INVALID_GROUP_ID);
    if (
      req.sessionTimeoutMs < this.config.minSessionTimeoutMs ||
      req.sessionTimeoutMs > this.config.maxSessionTimeoutMs
    ) {
      return fail(E.INVALID_SESSION_TIMEOUT);
    }
    const existing = this.groups.get(req.groupId);
    if (req.memberId !== "" && (!existing || existing.state === "Dead")) return fail(E.UNKNOWN_MEMBER_ID);
    const g = this.getOrCreate(req.groupId);
    if (!this.protocolsCompatible(g, req.protocolType, req.protocols)) return fail(E.INCONSISTENT_GROUP_PROTOCOL);

    if (req.memberId === "") {
      const memberId = `${req.clientId || "member"}-${randomUUID()}`;
      if (req.groupInstanceId !== null) return this.joinStatic(g, req, memberId);
      if (req.requireKnownMemberId) {
        // KIP-394: hand out the id first; the member must rejoin with it.
        g.pendingMembers.add(memberId);
        this.schedulePendingExpiry(g, memberId, req.sessionTimeoutMs);
        return fail(E.MEMBER_ID_REQUIRED, memberId);
      }
      if (g.members.size >= this.config.maxSize) return fail(E.GROUP_MAX_SIZE_REACHED);
      return this.addMemberAndRebalance(g, req, memberId);
    }

    if (g.pendingMembers.has(req.memberId)) {
      g.pendingMembers.delete(req.memberId);
      if (g.members.size >= this.config.maxSize) return fail(E.GROUP_MAX_SIZE_REACHED);
      return this.addMemberAndRebalance(g, req, req.memberId);
    }
    const m = g.members.get(req.memberId);
    if (!m) return fail(E.UNKNOWN_MEMBER_ID);
    if (req.groupInstanceId !== null && g.staticMembers.get(req.groupInstanceId) !== req.memberId)
      return fail(E.FENCED_INSTANCE_ID);
    this.touch(g, m);
    switch (g.state) {
      case "PreparingRebalance":
        return this.updateMemberAndAwaitJoin(g, m, req);
      case "CompletingRebalance":
      case "Stable": {
        const changed = !sameProtocols(m.protocols, req.protocols);
        if (changed || (g.state === "Stable" && m.memberId === g.leaderId)) {
          // The leader rejoining (e.g. subscription change) or new protocols: rebalance.
          const p = this.updateMemberAndAwaitJoin(g, m, req);
          this.prepareRebalance(g);
          return p;
        }
        return Promise.resolve(this.joinResult(g, m));
      }
      default:
        return fail(E.UNKNOWN_MEMBER_ID);
    }
  }

  private joinStatic(g: Group, req: Parameters<GroupCoordinator["join"]>[0], newMemberId: string): Promise<JoinResult> {
    const instanceId = req.groupInstanceId!;
    const oldId = g.staticMembers.get(instanceId);
    const old = oldId ? g.members.get(oldId) : undefined;
    if (!old) {
      const p = this.addMemberAndRebalance(g, req, newMemberId);
      g.staticMembers.set(instanceId, newMemberId);
      return p;
    }
    // A known static member restarted: it takes its old place under a new id; the old id is fenced.
    g.members.delete(old.memberId);
    if (old.sessionTimer) clearTimeout(old.sessionTimer);
    old.joinWaiter?.({
      errorCode: E.FENCED_INSTANCE_ID,
      generationId: -1,
      protocolType: null,
      protocolName: null,
      leader: "",
      memberId: old.memberId,
      members: [],
    });
    old.syncWaiter?.({
      errorCode: E.FENCED_INSTANCE_ID,
      protocolType: null,
      protocolName: null,
      assignment: new Uint8Array(0),
    });
    const m: Member = {
      ...old,
      memberId: newMemberId,
      joinWaiter: null,
      syncWaiter: null,
      sessionTimer: null,
      isNew: false,
    };
    m.clientId = req.clientId;
    m.clientHost = req.clientHost;
    m.sessionTimeoutMs = req.sessionTimeoutMs;
    m.rebalanceTimeoutMs = req.rebalanceTimeoutMs;
    g.members.set(newMemberId, m);
    g.staticMembers.set(instanceId, newMemberId);
    if (g.leaderId === old.memberId) g.leaderId = newMemberId;
    this.touch(g, m);
    if (g.state === "Stable" && sameProtocols(old.protocols, req.protocols)) {
      // No rebalance: the member gets its previous assignment on SyncGroup. A returning leader
      // receives the member list as usual; in Stable its SyncGroup assignments are not applied,
      // it simply gets its own assignment back (Kafka answers v9+ with skipAssignment instead).
      this.storeGroupInBackground(g);
      return Promise.resolve(this.joinResult(g, m));
    }
    m.protocols = req.protocols;
    const p = this.awaitJoin(m);
    if (g.state !== "PreparingRebalance") this.prepareRebalance(g);
    else this.maybeCompleteJoin(g);
    return p;
  }

  private addMemberAndRebalance(
    g: Group,
    req: Parameters<GroupCoordinator["join"]>[0],
    memberId: string,
  ): Promise<JoinResult> {
    const m: Member = {
      memberId,
      groupInstanceId: req.groupInstanceId,
      clientId: req.clientId,
      clientHost: req.clientHost,
      rebalanceTimeoutMs: req.rebalanceTimeoutMs,
      sessionTimeoutMs: req.sessionTimeoutMs,
      protocolType: req.protocolType,
      protocols: req.protocols,
      assignment: new Uint8Array(0),
      joinWaiter: null,
      syncWaiter: null,
      sessionTimer: null,
      isNew: true,
    };
    if (g.members.size === 0) g.protocolType = req.protocolType;
    g.members.set(memberId, m);
    if (req.groupInstanceId !== null) g.staticMembers.set(req.groupInstanceId, memberId);
    const p = this.awaitJoin(m);
    this.touch(g, m);
    if (g.state === "PreparingRebalance") {
      if (g.initialDelayDeadlineMs > 0) this.extendInitialDelay(g);
      else this.maybeCompleteJoin(g);
    } else this.prepareRebalance(g);
    return p;
  }

  private updateMemberAndAwaitJoin(
    g: Group,
    m: Member,
    req: Parameters<GroupCoordinator["join"]>[0],
  ): Promise<JoinResult> {
    m.protocols = req.protocols;
    m.rebalanceTimeoutMs = req.rebalanceTimeoutMs;
    m.sessionTimeoutMs = req.sessionTimeoutMs;
    const p = this.awaitJoin(m);
    this.maybeCompleteJoin(g);
    return p;
  }

  private awaitJoin(m: Member): Promise<JoinResult> {
    // A member joins again while an earlier join is pending (a client retry): answer the old one.
    m.joinWaiter?.({
      errorCode: E.UNKNOWN_MEMBER_ID,
      generationId: -1,
      protocolType: null,
      protocolName: null,
      leader: "",
      memberId: m.memberId,
      members: [],
    });
    return new Promise((resolve) => {
      m.joinWaiter = resolve;
    });
  }

  private protocolsCompatible(g: Group, protocolType: string, protocols: Protocol[]): boolean {
    if (protocolType === "" || protocols.length === 0) return false;
    if (g.members.size === 0) return true;
    if (g.protocolType !== protocolType) return false;
    const names = new Set(protocols.map((p) => p.name));
    return this.candidateProtocols(g).some((c) => names.has(c));
  }

  /** Protocols every member supports. */
  private candidateProtocols(g: Group): string[] {
    let candidates: string[] | null = null;
    for (const m of g.members.values()) {
      const names = m.protocols.map((p) => p.name);
      candidates = candidates === null ? names : candidates.filter((c) => names.includes(c));
    }
    return candidates ?? [];
  }

  /** Each member votes for its most preferred candidate; the most votes wins (ties: first seen). */
  private selectProtocol(g: Group): string {
    const candidates = this.candidateProtocols(g);
    const votes = new Map<string, number>();
    for (const m of g.members.values()) {
      const choice = m.protocols.find((p) => candidates.includes(p.name))?.name;
      if (choice) votes.set(choice, (votes.get(choice) ?? 0) + 1);
    }
    let best = candidates[0] ?? "";
    for (const [name, n] of votes) if (n > (votes.get(best) ?? 0)) best = name;
    return best;
  }

  private prepareRebalance(g: Group): void {
    if (g.state === "CompletingRebalance") {
      // Members waiting for their assignment must rejoin.
      for (const m of g.members.values()) {
        m.syncWaiter?.({
          errorCode: E.REBALANCE_IN_PROGRESS,
          protocolType: null,
          protocolName: null,
          assignment: new Uint8Array(0),
        });
        m.syncWaiter = null;
      }
    }
    const wasEmpty = g.state === "Empty";
    this.transition(g, "PreparingRebalance");
    if (g.rebalanceTimer) clearTimeout(g.rebalanceTimer);
    const timeout = Math.max(0, ...[...g.members.values()].map((m) => m.rebalanceTimeoutMs));
    if (wasEmpty && this.config.initialRebalanceDelayMs > 0) {
      g.initialDelayDeadlineMs = this.now() + Math.max(timeout, this.config.initialRebalanceDelayMs);
      this.extendInitialDelay(g);
      return;
    }
    g.initialDelayDeadlineMs = 0;
    g.rebalanceTimer = this.timer(() => this.completeJoin(g), timeout);
    this.maybeCompleteJoin(g);
  }

  /** Kafka's InitialDelayedJoin: wait the delay again while new members keep arriving, up to the rebalance timeout. */
  private extendInitialDelay(g: Group): void {
    if (g.rebalanceTimer) clearTimeout(g.rebalanceTimer);
    const wait = Math.min(this.config.initialRebalanceDelayMs, Math.max(0, g.initialDelayDeadlineMs - this.now()));
    g.rebalanceTimer = this.timer(() => {
      g.initialDelayDeadlineMs = 0;
      this.completeJoin(g);
    }, wait);
  }

  private maybeCompleteJoin(g: Group): void {
    if (g.state !== "PreparingRebalance" || g.initialDelayDeadlineMs > 0) return;
    for (const m of g.members.values()) if (m.joinWaiter === null) return;
    if (g.pendingMembers.size > 0) return;
    this.completeJoin(g);
  }

  private completeJoin(g: Group): void {
    if (g.state !== "PreparingRebalance" || this.stopped) return;
    if (g.rebalanceTimer) clearTimeout(g.rebalanceTimer);
    g.rebalanceTimer = null;
    // Members that did not rejoin in time are removed (static ones too: Kafka does the same).
    for (const m of [...g.members.values()]) {
      if (m.joinWaiter === null) this.removeMember(g, m);
    }
    g.pendingMembers.clear();
    g.generationId++;
    if (g.members.size === 0) {
      this.transition(g, "Empty");
      g.protocolName = null;
      g.leaderId = null;
      this.storeGroupInBackground(g);
      return;
    }
    g.protocolName = this.selectProtocol(g);
    if (g.leaderId === null || !g.members.has(g.leaderId)) g.leaderId = g.members.keys().next().value ?? null;
    this.transition(g, "CompletingRebalance");
    for (const m of g.members.values()) {
      const waiter = m.joinWaiter;
      m.joinWaiter = null;
      m.isNew = false;
      this.touch(g, m);
      waiter?.(this.joinResult(g, m));
    }
  }

  private joinResult(g: Group, m: Member): JoinResult {
    const isLeader = m.memberId === g.leaderId;
    return {
      errorCode: E.NONE,
      generationId: g.generationId,
      protocolType: g.protocolType,
      protocolName: g.protocolName,
      leader: g.leaderId ?? "",
      memberId: m.memberId,
      members: isLeader
        ? [...g.members.values()].map((x) => ({
            memberId: x.memberId,
            groupInstanceId: x.groupInstanceId,
            metadata: x.protocols.find((p) => p.name === g.protocolName)?.metadata ?? new Uint8Array(0),
          }))
        : [],
    };
  }

  // ---- sync -------------------------------------------------------------------------------------

  sync(req: {
    groupId: string;
    memberId: string;
    generationId: number;
    groupInstanceId: string | null;
    protocolType: string | null;
    protocolName: string | null;
    assignments: { memberId: string; assignment: Uint8Array }[];
  }): Promise<SyncResult> {
    const fail = (errorCode: number): Promise<SyncResult> =>
      Promise.resolve({ errorCode, protocolType: null, protocolName: null, assignment: new Uint8Array(0) });
    const g = this.groups.get(req.groupId);
    if (!g || g.state === "Dead") return fail(E.UNKNOWN_MEMBER_ID);
    const m = g.members.get(req.memberId);
    if (!m) return fail(E.UNKNOWN_MEMBER_ID);
    if (req.groupInstanceId !== null && g.staticMembers.get(req.groupInstanceId) !== req.memberId)
      return fail(E.FENCED_INSTANCE_ID);
    if (req.generationId !== g.generationId) return fail(E.ILLEGAL_GENERATION);
    if (
      (req.protocolType !== null && req.protocolType !== g.protocolType) ||
      (req.protocolName !== null && req.protocolName !== g.protocolName)
    ) {
      return fail(E.INCONSISTENT_GROUP_PROTOCOL);
    }
    this.touch(g, m);
    switch (g.state) {
      case "PreparingRebalance":
        return fail(E.REBALANCE_IN_PROGRESS);
      case "Stable":
        return Promise.resolve(this.syncResult(g, m));
      case "CompletingRebalance": {
        const p = new Promise<SyncResult>((resolve) => {
          m.syncWaiter = resolve;
        });
        if (m.memberId === g.leaderId) void this.completeSync(g, req.assignments);
        return p;
      }
      default:
        return fail(E.UNKNOWN_MEMBER_ID);
    }
  }

  /**
   * A group-metadata write nobody waits for (a static member rejoining, the group going Empty):
   * Kafka only logs its failure; the next write of the group supersedes it.
   */
  private storeGroupInBackground(g: Group): void {
    this.store.storeGroup(g).catch(() => {});
  }

  private async completeSync(g: Group, assignments: { memberId: string; assignment: Uint8Array }[]): Promise<void> {
    const generation = g.generationId;
    const given = new Map(assignments.map((a) => [a.memberId, a.assignment]));
    for (const m of g.members.values()) m.assignment = given.get(m.memberId) ?? new Uint8Array(0);
    try {
      await this.store.storeGroup(g);
    } catch (e) {
      if (g.state === "CompletingRebalance" && g.generationId === generation) {
        const errorCode = storeErrorCode(e, "group");
        for (const m of g.members.values()) {
          m.syncWaiter?.({
            errorCode,
            protocolType: null,
            protocolName: null,
            assignment: new Uint8Array(0),
          });
          m.syncWaiter = null;
        }
        this.prepareRebalance(g);
      }
      return;
    }
    if (g.state !== "CompletingRebalance" || g.generationId !== generation) return;
    this.transition(g, "Stable");
    for (const m of g.members.values()) {
      m.syncWaiter?.(this.syncResult(g, m));
      m.syncWaiter = null;
    }
  }

  private syncResult(g: Group, m: Member): SyncResult {
    return { errorCode: E.NONE, protocolType: g.protocolType, protocolName: g.protocolName, assignment: m.assignment };
  }

  // ---- heartbeat, leave, expiry -------------------------------------------------------------

  heartbeat(groupId: string, memberId: string, generationId: number, groupInstanceId: string | null): number {
    const g = this.groups.get(groupId);
    if (!g || g.state === "Dead") return E.UNKNOWN_MEMBER_ID;
    // A static member whose instance id was taken over is fenced before anything else (as Kafka does).
    if (
      groupInstanceId !== null &&
      g.staticMembers.has(groupInstanceId) &&
      g.staticMembers.get(groupInstanceId) !== memberId
    )
      return E.FENCED_INSTANCE_ID;
    const m = g.members.get(memberId);
    if (!m) return E.UNKNOWN_MEMBER_ID;
    if (generationId !== g.generationId) return E.ILLEGAL_GENERATION;
    this.touch(g, m);
    return g.state === "PreparingRebalance" ? E.REBALANCE_IN_PROGRESS : E.NONE;
  }

  leave(
    groupId: string,
    members: { memberId: string; groupInstanceId: string | null }[],
  ): { errorCode: number; members: { memberId: string; groupInstanceId: string | null; errorCode: number }[] } {
    const g = this.groups.get(groupId);
    if (!g || g.state === "Dead") {
      return {
        errorCode: E.UNKNOWN_MEMBER_ID,
        members: members.map((x) => ({ ...x, errorCode: E.UNKNOWN_MEMBER_ID })),
      };
    }
    const results = members.map((x) => {
      const id = x.groupInstanceId !== null ? (g.staticMembers.get(x.groupInstanceId) ?? null) : x.memberId;
      // An instance id the group does not know is UNKNOWN_MEMBER_ID; a known one under another member id is fenced.
      if (x.groupInstanceId !== null && id !== null && x.memberId !== "" && id !== x.memberId)
        return { ...x, errorCode: E.FENCED_INSTANCE_ID };
      const m = id === null ? undefined : g.members.get(id);
      if (!m) {
        if (id !== null && g.pendingMembers.delete(id)) return { ...x, errorCode: E.NONE };
        return { ...x, errorCode: E.UNKNOWN_MEMBER_ID };
      }
      this.removeMemberAndRebalance(g, m);
      return { ...x, errorCode: E.NONE };
    });
    return { errorCode: E.NONE, members: results };
  }

  private removeMember(g: Group, m: Member): void {
    if (m.sessionTimer) clearTimeout(m.sessionTimer);
    m.sessionTimer = null;
    g.members.delete(m.memberId);
    if (m.groupInstanceId !== null && g.staticMembers.get(m.groupInstanceId) === m.memberId)
      g.staticMembers.delete(m.groupInstanceId);
    m.joinWaiter?.({
      errorCode: E.UNKNOWN_MEMBER_ID,
      generationId: -1,
      protocolType: null,
      protocolName: null,
      leader: "",
      memberId: m.memberId,
      members: [],
    });
    m.joinWaiter = null;
    m.syncWaiter?.({
      errorCode: E.UNKNOWN_MEMBER_ID,
      protocolType: null,
      protocolName: null,
      assignment: new Uint8Array(0),
    });
    m.syncWaiter = null;
    if (g.leaderId === m.memberId) g.leaderId = null;
  }

  private removeMemberAndRebalance(g: Group, m: Member): void {
    this.removeMember(g, m);
    switch (g.state) {
      case "Stable":
      case "CompletingRebalance":
        this.prepareRebalance(g);
        break;
      case "PreparingRebalance":
        if (g.members.size === 0 && g.initialDelayDeadlineMs > 0) {
          g.initialDelayDeadlineMs = 0;
          this.completeJoin(g);
        } else this.maybeCompleteJoin(g);
        break;
      default:
        break;
    }
  }

  /** Restarts the member's session timer. */
  private touch(g: Group, m: Member): void {
    if (this.stopped) return;
    if (m.sessionTimer) clearTimeout(m.sessionTimer);
    m.sessionTimer = this.timer(() => {
      m.sessionTimer = null;
      // A member waiting in a join is kept until the rebalance completes or times out.
      if (m.joinWaiter !== null) return;
      if (g.members.get(m.memberId) === m) this.removeMemberAndRebalance(g, m);
    }, m.sessionTimeoutMs);
  }

  private schedulePendingExpiry(g: Group, memberId: string, ms: number): void {
    this.timer(() => {
      if (g.pendingMembers.delete(memberId)) this.maybeCompleteJoin(g);
    }, ms);
  }

  private timer(fn: () => void, ms: number): NodeJS.Timeout {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  }

  // ---- offsets ----------------------------------------------------------------------------------

  /**
   * Validates an OffsetCommit's membership (Kafka's GroupCoordinator.doCommitOffsets): a commit
   * with a negative generation into an Empty (or unknown) group is a simple commit from outside
   * group management; a generation for a group the coordinator does not know is from an older
   * generation (ILLEGAL_GENERATION); commits are accepted in Stable and in PreparingRebalance (the
   * member learns of the rebalance from its heartbeat) but not in CompletingRebalance.
   */
  validateCommit(groupId: string, memberId: string, generationId: number, groupInstanceId: string | null): number {
    const g = this.groups.get(groupId);
    if (!g || g.state === "Dead") return generationId < 0 ? E.NONE : E.ILLEGAL_GENERATION;
    if (this.isStaticMemberFenced(g, memberId, groupInstanceId)) return E.FENCED_INSTANCE_ID;
    if (generationId < 0 && g.state === "Empty") return E.NONE;
    const m = g.members.get(memberId);
    if (!m) return E.UNKNOWN_MEMBER_ID;
    if (generationId !== g.generationId) return E.ILLEGAL_GENERATION;
    if (g.state === "CompletingRebalance") return E.REBALANCE_IN_PROGRESS;
    this.touch(g, m);
    return E.NONE;
  }

  /**
   * Validates a TxnOffsetCommit (KIP-447, Kafka's doTxnCommitOffsets): membership is checked only
   * when the producer sent it — a known member id, and the generation when it is not negative.
   */
  validateTxnCommit(groupId: string, memberId: string, generationId: number, groupInstanceId: string | null): number {
    const g = this.groups.get(groupId);
    if (!g || g.state === "Dead") return memberId === "" ? E.NONE : E.UNKNOWN_MEMBER_ID;
    if (this.isStaticMemberFenced(g, memberId, groupInstanceId)) return E.FENCED_INSTANCE_ID;
    if (memberId !== "" && !g.members.has(memberId)) return E.UNKNOWN_MEMBER_ID;
    if (generationId >= 0 && generationId !== g.generationId) return E.ILLEGAL_GENERATION;
    return E.NONE;
  }

  private isStaticMemberFenced(g: Group, memberId: string, groupInstanceId: string | null): boolean {
    return (
      groupInstanceId !== null &&
      g.staticMembers.has(groupInstanceId) &&
      g.staticMembers.get(groupInstanceId) !== memberId
    );
  }

  async commitOffsets(
    groupId: string,
    offsets: {
      topic: string;
      partition: number;
      offset: bigint;
      leaderEpoch: number;
      metadata: string | null;
      /** OffsetCommit v2–v4 retentionTimeMs; -1 (or absent) = offsets.retention.minutes. */
      retentionTimeMs?: bigint;
    }[],
  ): Promise<number[]> {
    const g = this.getOrCreate(groupId);
    const now = BigInt(this.now());
    const codes: number[] = [];
    const accepted: { topic: string; partition: number; value: CommittedOffset }[] = [];
    for (const o of offsets) {
      const metadata = o.metadata ?? "";
      if (Buffer.byteLength(metadata) > this.config.offsetMetadataMaxBytes) {
        codes.push(E.OFFSET_METADATA_TOO_LARGE);
        continue;
      }
      codes.push(E.NONE);
      accepted.push({
        topic: o.topic,
        partition: o.partition,
        value: {
          offset: o.offset,
          leaderEpoch: o.leaderEpoch,
          metadata,
          commitTimestampMs: now,
          ...(o.retentionTimeMs !== undefined && o.retentionTimeMs >= 0n
            ? { expireTimestampMs: now + o.retentionTimeMs }
            : {}),
        },
      });
    }
    if (accepted.length > 0) {
      try {
        await this.store.storeOffsets(groupId, accepted);
      } catch (e) {
        // The append holding these records failed: nothing of this request is committed.
        const code = storeErrorCode(e, "commit");
        return codes.map((c) => (c === E.NONE ? code : c));
      }
      for (const a of accepted) g.offsets.set(offsetKey(a.topic, a.partition), a.value);
    }
    return codes;
  }

  /** Records offsets committed inside a transaction: visible only once the transaction commits. */
  addPendingTxnOffsets(
    producerId: bigint,
    groupId: string,
    offsets: { topic: string; partition: number; value: CommittedOffset }[],
  ): void {
    let byGroup = this.pendingTxnOffsets.get(producerId);
    if (!byGroup) {
      byGroup = new Map();
      this.pendingTxnOffsets.set(producerId, byGroup);
    }
    let pending = byGroup.get(groupId);
    if (!pending) {
      pending = new Map();
      byGroup.set(groupId, pending);
    }
    for (const o of offsets) pending.set(offsetKey(o.topic, o.partition), o.value);
  }

  /** A transaction marker reached __consumer_offsets: apply (commit) or drop (abort) its offsets. */
  completeTxnOffsets(producerId: bigint, commit: boolean): void {
    const byGroup = this.pendingTxnOffsets.get(producerId);
    if (!byGroup) return;
    this.pendingTxnOffsets.delete(producerId);
    if (!commit) return;
    for (const [groupId, offsets] of byGroup) {
      const g = this.getOrCreate(groupId);
      for (const [k, v] of offsets) g.offsets.set(k, v);
    }
  }

  /** Whether a transactional commit for this partition is pending (OffsetFetch requireStable). */
  hasPendingTxnOffset(groupId: string, topic: string, partition: number): boolean {
    for (const byGroup of this.pendingTxnOffsets.values())
      if (byGroup.get(groupId)?.has(offsetKey(topic, partition))) return true;
    return false;
  }

  fetchOffset(groupId: string, topic: string, partition: number): CommittedOffset | undefined {
    return this.groups.get(groupId)?.offsets.get(offsetKey(topic, partition));
  }

  /**
   * Topics the group's members are subscribed to (from consumer protocol metadata), or null when
   * the coordinator cannot tell (not a consumer group, no protocol chosen yet, unreadable
   * metadata): Kafka then treats every topic as subscribed.
   */
  subscribedTopics(g: Group): Set<string> | null {
    if (g.protocolType !== "consumer" || g.protocolName === null) return null;
    const topics = new Set<string>();
    for (const m of g.members.values()) {
      const meta = m.protocols.find((p) => p.name === g.protocolName)?.metadata;
      const parsed = meta ? parseSubscription(meta) : null;
      if (parsed === null) return null;
      for (const t of parsed) topics.add(t);
    }
    return topics;
  }

  /**
   * OffsetDelete (Kafka's handleDeleteOffsets): any partition of an Empty group; of an active
   * consumer group only topics it is not subscribed to (GROUP_SUBSCRIBED_TO_TOPIC otherwise); an
   * active group of another protocol type is NON_EMPTY_GROUP.
   */
  async deleteOffsets(
    groupId: string,
    partitions: { topic: string; partition: number }[],
  ): Promise<{ errorCode: number; codes: number[] }> {
    const g = this.groups.get(groupId);
    if (!g || g.state === "Dead") return { errorCode: E.GROUP_ID_NOT_FOUND, codes: [] };
    let subscribed: (topic: string) => boolean = () => false;
    if (g.state !== "Empty") {
      if (g.protocolType !== "consumer") return { errorCode: E.NON_EMPTY_GROUP, codes: [] };
      const topics = this.subscribedTopics(g);
      subscribed = (t) => topics === null || topics.has(t);
    }
    const codes = partitions.map((p) => (subscribed(p.topic) ? E.GROUP_SUBSCRIBED_TO_TOPIC : E.NONE));
    const removed = partitions.filter((p, i) => codes[i] === E.NONE && g.offsets.has(offsetKey(p.topic, p.partition)));
    if (removed.length > 0) {
      try {
        await this.store.storeOffsets(
          groupId,
          removed.map((p) => ({ ...p, value: null })),
        );
      } catch (e) {
        // Nothing removed: the tombstones are not in the log. Kafka answers the group's error.
        return { errorCode: storeErrorCode(e, "group"), codes: [] };
      }
      for (const p of removed) g.offsets.delete(offsetKey(p.topic, p.partition));
    }
    return { errorCode: E.NONE, codes };
  }

  /**
   * DeleteGroups: an Empty group goes Dead; a tombstone for every committed offset and for the
   * group metadata is written, so neither a restart nor compaction brings the group back.
   */
  async deleteGroup(groupId: string): Promise<number> {
    const g = this.groups.get(groupId);
    if (!g || g.state === "Dead") return E.GROUP_ID_NOT_FOUND;
    if (g.state !== "Empty") return E.NON_EMPTY_GROUP;
    try {
      await this.store.storeOffsets(
        groupId,
        [...g.offsets.keys()].map((k) => ({ ...splitOffsetKey(k), value: null })),
      );
      await this.store.removeGroup(groupId);
    } catch (e) {
      // The group stays as it is in memory; whatever tombstones did land only remove what the
      // delete was removing anyway, and the client is told to retry (Kafka's mapping).
      return storeErrorCode(e, "group");
    }
    this.transition(g, "Dead");
    this.groups.delete(groupId);
    return E.NONE;
  }

  /**
   * Removes offsets past offsets.retention.minutes (Kafka's GroupMetadata.removeExpiredOffsets,
   * KIP-211): in an Empty group, once the retention has passed since the group became Empty; in a
   * group without protocol type (commits only), since each offset's commit; in a Stable consumer
   * group, since the commit, for topics no member subscribes to. An explicit retention time (v2–v4
   * commits) sets the offset's own expiry. Offsets of an open transaction stay. An Empty group left
   * without offsets goes Dead and is tombstoned. Returns how many offsets were removed.
   */
  async expireOffsets(): Promise<number> {
    const now = BigInt(this.now());
    const retention = BigInt(this.config.offsetsRetentionMs);
    let n = 0;
    const failures: unknown[] = [];
    for (const g of [...this.groups.values()]) {
      try {
        n += await this.expireGroupOffsets(g, now, retention);
      } catch (e) {
        // A failed write to __consumer_offsets: this group is tried again at the next pass, and
        // the other groups still expire now.
        failures.push(e);
      }
    }
    if (failures.length > 0) throw new AggregateError(failures, `offset expiry failed for ${failures.length} group(s)`);
    return n;
  }

  /** expireOffsets for one group; returns how many offsets it removed. */
  private async expireGroupOffsets(g: Group, now: bigint, retention: bigint): Promise<number> {
    let base: ((o: CommittedOffset) => bigint) | null = null;
    let keep: Set<string> | null = null;
    if (g.protocolType !== null && g.state === "Empty") base = () => BigInt(g.stateTimestampMs);
    else if (g.protocolType === null) base = (o) => o.commitTimestampMs;
    else if (g.protocolType === "consumer" && g.state === "Stable") {
      keep = this.subscribedTopics(g);
      if (keep !== null) base = (o) => o.commitTimestampMs;
    }
    if (base === null) return 0;
    const baseOf = base;
    const expired = [...g.offsets].filter(([k, v]) => {
      const { topic, partition } = splitOffsetKey(k);
      if (keep?.has(topic) || this.hasPendingTxnOffset(g.groupId, topic, partition)) return false;
      return v.expireTimestampMs !== undefined ? now >= v.expireTimestampMs : now - baseOf(v) >= retention;
    });
    if (expired.length > 0) {
      await this.store.storeOffsets(
        g.groupId,
        expired.map(([k]) => ({ ...splitOffsetKey(k), value: null })),
      );
      for (const [k] of expired) g.offsets.delete(k);
    }
    if (g.state === "Empty" && g.offsets.size === 0 && !this.hasPendingTxnOffsets(g.groupId)) {
      await this.store.removeGroup(g.groupId);
      this.transition(g, "Dead");
      this.groups.delete(g.groupId);
    }
    return expired.length;
  }

  private hasPendingTxnOffsets(groupId: string): boolean {
    for (const byGroup of this.pendingTxnOffsets.values()) if (byGroup.has(groupId)) return true;
    return false;
  }

  // ---- loading ----------------------------------------------------------------------------------

  /** Restores a group from its persisted metadata (members get fresh session timers). */
  restoreGroup(v: {
    groupId: string;
    currentStateTimestamp: bigint;
    protocolType: string;
    generation: number;
    protocol: string | null;
    leader: string | null;
    members: {
      memberId: string;
      groupInstanceId: string | null;
      clientId: string;
      clientHost: string;
      rebalanceTimeout: number;
      sessionTimeout: number;
      subscription: Uint8Array;
      assignment: Uint8Array;
    }[];
  }): void {
    const g = this.getOrCreate(v.groupId);
    for (const m of g.members.values()) if (m.sessionTimer) clearTimeout(m.sessionTimer);
    g.members.clear();
    g.staticMembers.clear();
    g.generationId = v.generation;
    g.protocolType = v.protocolType === "" ? null : v.protocolType;
    g.protocolName = v.protocol;
    g.leaderId = v.leader;
    for (const x of v.members) {
      const m: Member = {
        memberId: x.memberId,
        groupInstanceId: x.groupInstanceId,
        clientId: x.clientId,
        clientHost: x.clientHost,
        rebalanceTimeoutMs: x.rebalanceTimeout,
        sessionTimeoutMs: x.sessionTimeout,
        protocolType: v.protocolType,
        protocols: [{ name: v.protocol ?? "", metadata: x.subscription }],
        assignment: x.assignment,
        joinWaiter: null,
        syncWaiter: null,
        sessionTimer: null,
        isNew: false,
      };
      g.members.set(x.memberId, m);
      if (x.groupInstanceId !== null) g.staticMembers.set(x.groupInstanceId, x.memberId);
    }
    this.transition(g, g.members.size > 0 ? "Stable" : "Empty");
    // When the group entered its state (the base of offset expiry for an Empty group).
    if (v.currentStateTimestamp >= 0n) g.stateTimestampMs = Number(v.currentStateTimestamp);
  }

  restoreOffset(groupId: string, topic: string, partition: number, value: CommittedOffset | null): void {
    const g = this.getOrCreate(groupId);
    if (value === null) g.offsets.delete(offsetKey(topic, partition));
    else g.offsets.set(offsetKey(topic, partition), value);
  }

  removeRestoredGroup(groupId: string): void {
    const g = this.groups.get(groupId);
    if (g && g.offsets.size === 0) this.groups.delete(groupId);
    else if (g) {
      g.members.clear();
      this.transition(g, "Empty");
    }
  }

  /** Starts session timers of restored members (after loading). */
  startTimers(): void {
    for (const g of this.groups.values()) for (const m of g.members.values()) this.touch(g, m);
  }

  stop(): void {
    this.stopped = true;
    for (const g of this.groups.values()) {
      if (g.rebalanceTimer) clearTimeout(g.rebalanceTimer);
      for (const m of g.members.values()) if (m.sessionTimer) clearTimeout(m.sessionTimer);
    }
  }
}

function sameProtocols(a: Protocol[], b: Protocol[]): boolean {
  return (
    a.length === b.length &&
    a.every((p, i) => p.name === b[i]!.name && Buffer.compare(p.metadata, b[i]!.metadata) === 0)
  );
}

/** Topics of a consumer protocol subscription (version int16, topics array of int16 strings, ...); null if unreadable. */
export function parseSubscription(meta: Uint8Array): string[] | null {
  try {
    const b = Buffer.from(meta.buffer, meta.byteOffset, meta.byteLength);
    let p = 2;
    const n = b.readInt32BE(p);
    p += 4;
    const topics: string[] = [];
    for (let i = 0; i < n && i < 100_000; i++) {
      const len = b.readInt16BE(p);
      p += 2;
      topics.push(b.toString("utf8", p, p + len));
      p += len;
    }
    return topics;
  } catch {
    return null;
  }
}
