// Group coordinator rules beyond join/sync: where commits are accepted (Kafka's doCommitOffsets),
// the rebalance timeout, the state machine as DescribeGroups would report it, batch leaves,
// offset expiry (KIP-211) under a controlled clock, OffsetDelete and DeleteGroups tombstones.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  type CommittedOffset,
  E,
  type Group,
  GroupCoordinator,
  type GroupPersistence,
} from "../../src/group/coordinator.ts";

interface Write {
  groupId: string;
  topic: string;
  partition: number;
  value: CommittedOffset | null;
}

class RecordingStore implements GroupPersistence {
  groups: { groupId: string; state: string; members: number }[] = [];
  offsets: Write[] = [];
  removed: string[] = [];
  async storeGroup(g: Group): Promise<void> {
    this.groups.push({ groupId: g.groupId, state: g.state, members: g.members.size });
  }
  async storeOffsets(
    groupId: string,
    offsets: { topic: string; partition: number; value: CommittedOffset | null }[],
  ): Promise<void> {
    for (const o of offsets) this.offsets.push({ groupId, ...o });
  }
  async removeGroup(groupId: string): Promise<void> {
    this.removed.push(groupId);
  }
}

const config = {
  minSessionTimeoutMs: 10,
  maxSessionTimeoutMs: 60_000,
  initialRebalanceDelayMs: 0,
  maxSize: 100,
  offsetsRetentionMs: 60_000,
  offsetMetadataMaxBytes: 100,
};

/** Consumer protocol subscription metadata (version 0, topics, no user data). */
function subscription(topics: string[]): Buffer {
  const parts = [Buffer.from([0, 0]), Buffer.alloc(4)];
  parts[1]!.writeInt32BE(topics.length);
  for (const t of topics) {
    const len = Buffer.alloc(2);
    len.writeInt16BE(Buffer.byteLength(t));
    parts.push(len, Buffer.from(t));
  }
  parts.push(Buffer.alloc(4, 0xff)); // null user data
  return Buffer.concat(parts);
}

const joinReq = (over: Partial<Parameters<GroupCoordinator["join"]>[0]> = {}) => ({
  groupId: "g",
  memberId: "",
  groupInstanceId: null,
  protocolType: "consumer",
  protocols: [{ name: "range", metadata: subscription(["t"]) }],
  sessionTimeoutMs: 5_000,
  rebalanceTimeoutMs: 2_000,
  clientId: "c",
  clientHost: "h",
  requireKnownMemberId: false,
  ...over,
});

const syncReq = (
  memberId: string,
  generationId: number,
  assignments: { memberId: string; assignment: Buffer }[] = [],
) => ({
  groupId: "g",
  memberId,
  generationId,
  groupInstanceId: null,
  protocolType: null,
  protocolName: null,
  assignments,
});

/** One member, synced: a Stable group of generation 1. */
async function stableOfOne(c: GroupCoordinator, over: Partial<Parameters<GroupCoordinator["join"]>[0]> = {}) {
  const j = await c.join(joinReq(over));
  assert.equal(j.errorCode, E.NONE);
  const s = await c.sync(syncReq(j.memberId, j.generationId, [{ memberId: j.memberId, assignment: Buffer.from("A") }]));
  assert.equal(s.errorCode, E.NONE);
  return j;
}

const commit = (c: GroupCoordinator, groupId: string, topic: string, partition: number, offset: bigint) =>
  c.commitOffsets(groupId, [{ topic, partition, offset, leaderEpoch: -1, metadata: "" }]);

describe("offset commit validation (Kafka's doCommitOffsets)", () => {
  test("a generation for a group the coordinator does not know is ILLEGAL_GENERATION; generation -1 is a simple commit", () => {
    const c = new GroupCoordinator(config, new RecordingStore());
    assert.equal(c.validateCommit("unknown", "m", 3, null), E.ILLEGAL_GENERATION);
    assert.equal(c.validateCommit("unknown", "", -1, null), E.NONE);
    assert.equal(c.validateCommit("unknown", "anyone", -1, null), E.NONE);
  });

  test("CompletingRebalance refuses commits with REBALANCE_IN_PROGRESS; Stable accepts them", async () => {
    const c = new GroupCoordinator(config, new RecordingStore());
    const j = await c.join(joinReq());
    assert.equal(c.groups.get("g")?.state, "CompletingRebalance");
    assert.equal(c.validateCommit("g", j.memberId, j.generationId, null), E.REBALANCE_IN_PROGRESS);
    await c.sync(syncReq(j.memberId, j.generationId, []));
    assert.equal(c.validateCommit("g", j.memberId, j.generationId, null), E.NONE);
    assert.equal(c.validateCommit("g", j.memberId, j.generationId - 1, null), E.ILLEGAL_GENERATION);
    assert.equal(c.validateCommit("g", "", -1, null), E.UNKNOWN_MEMBER_ID, "no simple commits into an active group");
    c.stop();
  });

  test("a static member's old id is fenced on commit", async () => {
    const c = new GroupCoordinator(config, new RecordingStore());
    const j = await stableOfOne(c, { groupInstanceId: "i-1" });
    const again = await c.join(joinReq({ groupInstanceId: "i-1" }));
    assert.notEqual(again.memberId, j.memberId);
    assert.equal(c.validateCommit("g", j.memberId, j.generationId, "i-1"), E.FENCED_INSTANCE_ID);
    c.stop();
  });

  test("TxnOffsetCommit checks membership only when the producer sent it (KIP-447)", async () => {
    const c = new GroupCoordinator(config, new RecordingStore());
    const j = await stableOfOne(c);
    assert.equal(c.validateTxnCommit("g", "", -1, null), E.NONE, "no member given: not checked");
    assert.equal(c.validateTxnCommit("g", j.memberId, j.generationId, null), E.NONE);
    assert.equal(c.validateTxnCommit("g", "ghost", -1, null), E.UNKNOWN_MEMBER_ID);
    assert.equal(c.validateTxnCommit("g", j.memberId, j.generationId + 1, null), E.ILLEGAL_GENERATION);
    assert.equal(c.validateTxnCommit("other", "", -1, null), E.NONE);
    c.stop();
  });
});

describe("rebalances and states", () => {
  test("the state machine: Empty → PreparingRebalance → CompletingRebalance → Stable → PreparingRebalance → Empty", async () => {
    const c = new GroupCoordinator({ ...config, initialRebalanceDelayMs: 20 }, new RecordingStore());
    const states: string[] = [];
    const p = c.join(joinReq());
    states.push(c.groups.get("g")!.state);
    const j = await p;
    states.push(c.groups.get("g")!.state);
    await c.sync(syncReq(j.memberId, j.generationId, []));
    states.push(c.groups.get("g")!.state);
    const second = c.join(joinReq());
    states.push(c.groups.get("g")!.state);
    const l = c.leave("g", [{ memberId: j.memberId, groupInstanceId: null }]);
    assert.equal(l.members[0]?.errorCode, E.NONE);
    const s = await second;
    c.leave("g", [{ memberId: s.memberId, groupInstanceId: null }]);
    states.push(c.groups.get("g")!.state);
    assert.deepEqual(states, ["PreparingRebalance", "CompletingRebalance", "Stable", "PreparingRebalance", "Empty"]);
    c.stop();
  });

  test("a member that does not rejoin within the rebalance timeout is removed; the others get the next generation", async () => {
    const c = new GroupCoordinator({ ...config, initialRebalanceDelayMs: 30 }, new RecordingStore());
    const [a, b] = await Promise.all([
      c.join(joinReq({ rebalanceTimeoutMs: 150 })),
      c.join(joinReq({ rebalanceTimeoutMs: 150 })),
    ]);
    const leader = a!.members.length > 0 ? a! : b!;
    const follower = leader === a ? b! : a!;
    await Promise.all([
      c.sync(syncReq(leader.memberId, leader.generationId, [])),
      c.sync(syncReq(follower.memberId, follower.generationId, [])),
    ]);
    // A third member triggers a rebalance; only the leader rejoins (the follower stopped polling).
    const third = c.join(joinReq({ rebalanceTimeoutMs: 150 }));
    const rejoin = c.join(joinReq({ memberId: leader.memberId, rebalanceTimeoutMs: 150 }));
    const [t, r] = await Promise.all([third, rejoin]);
    assert.equal(t.errorCode, E.NONE);
    assert.equal(r.generationId, leader.generationId + 1);
    const g = c.groups.get("g")!;
    assert.deepEqual([...g.members.keys()].sort(), [leader.memberId, t.memberId].sort());
    assert.equal(c.heartbeat("g", follower.memberId, r.generationId, null), E.UNKNOWN_MEMBER_ID);
    c.stop();
  });

  test("group.initial.rebalance.delay.ms: members arriving during the delay share the first generation", async () => {
    const c = new GroupCoordinator({ ...config, initialRebalanceDelayMs: 80 }, new RecordingStore());
    const first = c.join(joinReq());
    await new Promise((r) => setTimeout(r, 40));
    assert.equal(c.groups.get("g")?.state, "PreparingRebalance", "still waiting");
    const second = c.join(joinReq());
    const [a, b] = await Promise.all([first, second]);
    assert.equal(a.generationId, 1);
    assert.equal(b.generationId, 1);
    assert.equal(a.leader, b.leader);
    c.stop();
  });

  test("protocol selection: the protocol most members prefer among those all support", async () => {
    const c = new GroupCoordinator({ ...config, initialRebalanceDelayMs: 30 }, new RecordingStore());
    const m = (names: string[]) => names.map((name) => ({ name, metadata: subscription(["t"]) }));
    const rs = await Promise.all([
      c.join(joinReq({ protocols: m(["cooperative-sticky", "range"]) })),
      c.join(joinReq({ protocols: m(["range", "cooperative-sticky"]) })),
      c.join(joinReq({ protocols: m(["range", "cooperative-sticky", "roundrobin"]) })),
    ]);
    assert.ok(rs.every((r) => r.protocolName === "range"));
    c.stop();
  });

  test("LeaveGroup v3+ batch: members by id and static members by instance id, each answered", async () => {
    const c = new GroupCoordinator({ ...config, initialRebalanceDelayMs: 30 }, new RecordingStore());
    const [a] = await Promise.all([c.join(joinReq()), c.join(joinReq({ groupInstanceId: "static-1" }))]);
    const r = c.leave("g", [
      { memberId: "wrong-id", groupInstanceId: "static-1" },
      { memberId: a!.memberId, groupInstanceId: null },
      { memberId: "", groupInstanceId: "static-1" },
      { memberId: "ghost", groupInstanceId: null },
      { memberId: "", groupInstanceId: "never-joined" },
    ]);
    assert.deepEqual(
      r.members.map((x) => x.errorCode),
      [E.FENCED_INSTANCE_ID, E.NONE, E.NONE, E.UNKNOWN_MEMBER_ID, E.UNKNOWN_MEMBER_ID],
    );
    assert.equal(c.groups.get("g")?.members.size, 0);
    assert.equal(c.leave("nope", [{ memberId: "x", groupInstanceId: null }]).errorCode, E.UNKNOWN_MEMBER_ID);
    c.stop();
  });
});

describe("offset retention (offsets.retention.minutes, KIP-211)", () => {
  test("an Empty group's offsets expire once the retention has passed since it became Empty, then the group is tombstoned", async () => {
    let now = 1_000_000;
    const store = new RecordingStore();
    const c = new GroupCoordinator(config, store, () => now);
    const j = await stableOfOne(c);
    await commit(c, "g", "t", 0, 5n);
    now += 120_000; // well past the retention since the commit, but the group is Stable and subscribed
    assert.equal(await c.expireOffsets(), 0);
    c.leave("g", [{ memberId: j.memberId, groupInstanceId: null }]);
    assert.equal(c.groups.get("g")?.state, "Empty");
    now += 59_000;
    assert.equal(await c.expireOffsets(), 0, "not yet: retention counts from when the group became Empty");
    now += 1_000;
    assert.equal(await c.expireOffsets(), 1);
    assert.deepEqual(store.offsets.at(-1), { groupId: "g", topic: "t", partition: 0, value: null });
    assert.deepEqual(store.removed, ["g"], "the group is gone: Dead and tombstoned");
    assert.equal(c.groups.has("g"), false);
    c.stop();
  });

  test("a group that only stores offsets (no protocol type) expires each offset from its own commit time", async () => {
    let now = 0;
    const c = new GroupCoordinator(config, new RecordingStore(), () => now);
    await commit(c, "simple", "t", 0, 1n);
    now = 30_000;
    await commit(c, "simple", "t", 1, 2n);
    now = 60_000;
    assert.equal(await c.expireOffsets(), 1);
    assert.equal(c.fetchOffset("simple", "t", 0), undefined);
    assert.equal(c.fetchOffset("simple", "t", 1)?.offset, 2n);
    now = 90_000;
    assert.equal(await c.expireOffsets(), 1);
    assert.equal(c.groups.has("simple"), false);
  });

  test("a Stable consumer group keeps offsets of subscribed topics and expires those of others", async () => {
    let now = 0;
    const c = new GroupCoordinator(config, new RecordingStore(), () => now);
    await stableOfOne(c);
    await commit(c, "g", "t", 0, 1n);
    await commit(c, "g", "old-topic", 0, 1n);
    now = 61_000;
    assert.equal(await c.expireOffsets(), 1);
    assert.equal(c.fetchOffset("g", "t", 0)?.offset, 1n);
    assert.equal(c.fetchOffset("g", "old-topic", 0), undefined);
    c.stop();
  });

  test("an explicit retention time (OffsetCommit v2–v4) is the offset's own expiry", async () => {
    let now = 0;
    const c = new GroupCoordinator(config, new RecordingStore(), () => now);
    await c.commitOffsets("simple", [
      { topic: "t", partition: 0, offset: 1n, leaderEpoch: -1, metadata: "", retentionTimeMs: 1_000n },
      { topic: "t", partition: 1, offset: 1n, leaderEpoch: -1, metadata: "", retentionTimeMs: -1n },
    ]);
    now = 1_000;
    assert.equal(await c.expireOffsets(), 1);
    assert.equal(c.fetchOffset("simple", "t", 0), undefined);
    assert.ok(c.fetchOffset("simple", "t", 1));
  });

  test("offsets of an open transaction do not expire", async () => {
    let now = 0;
    const c = new GroupCoordinator(config, new RecordingStore(), () => now);
    await commit(c, "simple", "t", 0, 1n);
    c.addPendingTxnOffsets(9n, "simple", [
      { topic: "t", partition: 0, value: { offset: 2n, leaderEpoch: -1, metadata: "", commitTimestampMs: 0n } },
    ]);
    now = 120_000;
    assert.equal(await c.expireOffsets(), 0);
    c.completeTxnOffsets(9n, true);
    assert.equal(c.fetchOffset("simple", "t", 0)?.offset, 2n);
  });
});

describe("OffsetDelete and DeleteGroups", () => {
  test("OffsetDelete: subscribed topics of an active consumer group are GROUP_SUBSCRIBED_TO_TOPIC, others are deleted", async () => {
    const store = new RecordingStore();
    const c = new GroupCoordinator(config, store);
    await stableOfOne(c);
    await commit(c, "g", "t", 0, 1n);
    await commit(c, "g", "u", 0, 1n);
    const r = await c.deleteOffsets("g", [
      { topic: "t", partition: 0 },
      { topic: "u", partition: 0 },
    ]);
    assert.deepEqual(r, { errorCode: E.NONE, codes: [E.GROUP_SUBSCRIBED_TO_TOPIC, E.NONE] });
    assert.ok(c.fetchOffset("g", "t", 0));
    assert.equal(c.fetchOffset("g", "u", 0), undefined);
    assert.deepEqual(store.offsets.at(-1), { groupId: "g", topic: "u", partition: 0, value: null }, "a tombstone");
    assert.equal((await c.deleteOffsets("nope", [{ topic: "t", partition: 0 }])).errorCode, E.GROUP_ID_NOT_FOUND);
    c.stop();
  });

  test("OffsetDelete on an active group of another protocol type is NON_EMPTY_GROUP", async () => {
    const c = new GroupCoordinator(config, new RecordingStore());
    await stableOfOne(c, { protocolType: "connect", protocols: [{ name: "default", metadata: Buffer.from("x") }] });
    await commit(c, "g", "t", 0, 1n);
    assert.equal((await c.deleteOffsets("g", [{ topic: "t", partition: 0 }])).errorCode, E.NON_EMPTY_GROUP);
    assert.ok(c.fetchOffset("g", "t", 0));
    c.stop();
  });

  test("DeleteGroups: NON_EMPTY_GROUP while members remain; an Empty group's offsets and metadata are tombstoned", async () => {
    const store = new RecordingStore();
    const c = new GroupCoordinator(config, store);
    const j = await stableOfOne(c);
    await commit(c, "g", "t", 0, 1n);
    await commit(c, "g", "t", 1, 2n);
    assert.equal(await c.deleteGroup("g"), E.NON_EMPTY_GROUP);
    c.leave("g", [{ memberId: j.memberId, groupInstanceId: null }]);
    store.offsets = [];
    assert.equal(await c.deleteGroup("g"), E.NONE);
    assert.deepEqual(
      store.offsets.map((o) => [o.topic, o.partition, o.value]),
      [
        ["t", 0, null],
        ["t", 1, null],
      ],
    );
    assert.deepEqual(store.removed, ["g"]);
    assert.equal(c.fetchOffset("g", "t", 0), undefined);
    assert.equal(await c.deleteGroup("g"), E.GROUP_ID_NOT_FOUND);
    c.stop();
  });
});
