// The group state machine on its own, with in-memory persistence: joins, syncs, fencing and the
// error codes Kafka returns, static membership, and no state damage from bad requests.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { E, GroupCoordinator, type GroupPersistence } from "../../src/group/coordinator.ts";
import { partitionFor } from "../../src/group/persistence.ts";

class MemoryStore implements GroupPersistence {
  groupWrites = 0;
  offsetWrites = 0;
  async storeGroup(): Promise<void> {
    this.groupWrites++;
  }
  async storeOffsets(): Promise<void> {
    this.offsetWrites++;
  }
  async removeGroup(): Promise<void> {}
}

// A short initial delay lets members that join together land in the same first generation.
const config = {
  minSessionTimeoutMs: 10,
  maxSessionTimeoutMs: 60_000,
  initialRebalanceDelayMs: 30,
  maxSize: 100,
  offsetsRetentionMs: 60_000,
  offsetMetadataMaxBytes: 100,
};
const proto = (name = "range", meta = "m") => [{ name, metadata: Buffer.from(meta) }];
const joinReq = (over: Partial<Parameters<GroupCoordinator["join"]>[0]> = {}) => ({
  groupId: "g",
  memberId: "",
  groupInstanceId: null,
  protocolType: "consumer",
  protocols: proto(),
  sessionTimeoutMs: 5_000,
  rebalanceTimeoutMs: 2_000,
  clientId: "c",
  clientHost: "h",
  requireKnownMemberId: false,
  ...over,
});

async function stableGroupOfTwo(c: GroupCoordinator) {
  const [a, b] = await Promise.all([c.join(joinReq()), c.join(joinReq())]);
  const leader = a!.members.length > 0 ? a! : b!;
  const follower = leader === a ? b! : a!;
  const assignments = [
    { memberId: leader.memberId, assignment: Buffer.from("L") },
    { memberId: follower.memberId, assignment: Buffer.from("F") },
  ];
  const [sl, sf] = await Promise.all([
    c.sync({
      groupId: "g",
      memberId: leader.memberId,
      generationId: leader.generationId,
      groupInstanceId: null,
      protocolType: null,
      protocolName: null,
      assignments,
    }),
    c.sync({
      groupId: "g",
      memberId: follower.memberId,
      generationId: follower.generationId,
      groupInstanceId: null,
      protocolType: null,
      protocolName: null,
      assignments: [],
    }),
  ]);
  return { leader, follower, sl, sf };
}

describe("group coordinator", () => {
  test("v4+ joins get MEMBER_ID_REQUIRED first, then join with the given id", async () => {
    const c = new GroupCoordinator({ ...config, initialRebalanceDelayMs: 0 }, new MemoryStore());
    const first = await c.join(joinReq({ requireKnownMemberId: true }));
    assert.equal(first.errorCode, E.MEMBER_ID_REQUIRED);
    assert.ok(first.memberId.length > 0);
    const second = await c.join(joinReq({ requireKnownMemberId: true, memberId: first.memberId }));
    assert.equal(second.errorCode, E.NONE);
    assert.equal(second.leader, first.memberId);
    assert.equal(second.generationId, 1);
    c.stop();
  });

  test("two members rebalance together; the leader's assignment reaches both; the group is Stable", async () => {
    const store = new MemoryStore();
    const c = new GroupCoordinator(config, store);
    const { leader, sl, sf } = await stableGroupOfTwo(c);
    assert.equal(leader.members.length, 2, "the leader sees every member's metadata");
    assert.deepEqual([Buffer.from(sl.assignment).toString(), Buffer.from(sf.assignment).toString()], ["L", "F"]);
    assert.equal(c.groups.get("g")?.state, "Stable");
    assert.equal(store.groupWrites, 1, "the assignment was persisted");
    c.stop();
  });

  test("stale generations, unknown members and unknown groups get Kafka's errors without changing state", async () => {
    const c = new GroupCoordinator(config, new MemoryStore());
    const { leader } = await stableGroupOfTwo(c);
    const gen = leader.generationId;
    assert.equal(c.heartbeat("g", leader.memberId, gen - 1, null), E.ILLEGAL_GENERATION);
    assert.equal(c.heartbeat("g", "nobody", gen, null), E.UNKNOWN_MEMBER_ID);
    assert.equal(c.heartbeat("no-such-group", "x", 1, null), E.UNKNOWN_MEMBER_ID);
    assert.equal(c.validateCommit("g", leader.memberId, gen + 5, null), E.ILLEGAL_GENERATION);
    assert.equal(c.validateCommit("g", "nobody", gen, null), E.UNKNOWN_MEMBER_ID);
    assert.equal(
      c.validateCommit("g", "", -1, null),
      E.UNKNOWN_MEMBER_ID,
      "a groupless commit into an active group is refused",
    );
    const s = await c.sync({
      groupId: "g",
      memberId: leader.memberId,
      generationId: gen + 1,
      groupInstanceId: null,
      protocolType: null,
      protocolName: null,
      assignments: [],
    });
    assert.equal(s.errorCode, E.ILLEGAL_GENERATION);
    assert.equal((await c.join(joinReq({ memberId: "ghost" }))).errorCode, E.UNKNOWN_MEMBER_ID);
    assert.equal(c.groups.get("g")?.state, "Stable");
    assert.equal(c.groups.get("g")?.generationId, gen);
    assert.equal(c.heartbeat("g", leader.memberId, gen, null), E.NONE);
    c.stop();
  });

  test("a join with no protocol in common is INCONSISTENT_GROUP_PROTOCOL", async () => {
    const c = new GroupCoordinator(config, new MemoryStore());
    await stableGroupOfTwo(c);
    assert.equal((await c.join(joinReq({ protocols: proto("roundrobin") }))).errorCode, E.INCONSISTENT_GROUP_PROTOCOL);
    assert.equal((await c.join(joinReq({ protocolType: "connect" }))).errorCode, E.INCONSISTENT_GROUP_PROTOCOL);
    assert.equal(c.groups.get("g")?.members.size, 2);
    c.stop();
  });

  test("session timeouts outside the broker's bounds are INVALID_SESSION_TIMEOUT", async () => {
    const c = new GroupCoordinator(config, new MemoryStore());
    assert.equal((await c.join(joinReq({ sessionTimeoutMs: 1 }))).errorCode, E.INVALID_SESSION_TIMEOUT);
    assert.equal((await c.join(joinReq({ sessionTimeoutMs: 120_000 }))).errorCode, E.INVALID_SESSION_TIMEOUT);
    assert.equal(c.groups.size, 0);
  });

  test("a new join during Stable puts heartbeats into REBALANCE_IN_PROGRESS; commits of the current generation still count", async () => {
    const c = new GroupCoordinator(config, new MemoryStore());
    const { leader } = await stableGroupOfTwo(c);
    void c.join(joinReq());
    assert.equal(c.groups.get("g")?.state, "PreparingRebalance");
    assert.equal(c.heartbeat("g", leader.memberId, leader.generationId, null), E.REBALANCE_IN_PROGRESS);
    // Kafka accepts commits in PreparingRebalance (members commit before rejoining, e.g. in onPartitionsRevoked).
    assert.equal(c.validateCommit("g", leader.memberId, leader.generationId, null), E.NONE);
    c.stop();
  });

  test("a member whose session expires is removed and the others rebalance", async () => {
    const c = new GroupCoordinator({ ...config, initialRebalanceDelayMs: 0 }, new MemoryStore());
    const a = await c.join(joinReq({ sessionTimeoutMs: 100 }));
    await c.sync({
      groupId: "g",
      memberId: a.memberId,
      generationId: a.generationId,
      groupInstanceId: null,
      protocolType: null,
      protocolName: null,
      assignments: [],
    });
    await new Promise((r) => setTimeout(r, 250));
    assert.equal(c.groups.get("g")?.members.size, 0);
    assert.equal(c.groups.get("g")?.state, "Empty");
    c.stop();
  });

  test("a static member that restarts gets its assignment back with no rebalance; the old id is fenced", async () => {
    const c = new GroupCoordinator(config, new MemoryStore());
    await Promise.all([
      c.join(joinReq({ groupInstanceId: "instance-1" })),
      c.join(joinReq({ groupInstanceId: "instance-2" })),
    ]);
    const g = c.groups.get("g")!;
    const gen = g.generationId;
    const leaderId = g.leaderId!;
    const assignments = [...g.members.keys()].map((id) => ({
      memberId: id,
      assignment: Buffer.from(`for-${g.members.get(id)!.groupInstanceId}`),
    }));
    await c.sync({
      groupId: "g",
      memberId: leaderId,
      generationId: gen,
      groupInstanceId: g.members.get(leaderId)!.groupInstanceId,
      protocolType: null,
      protocolName: null,
      assignments,
    });
    assert.equal(g.state, "Stable");
    const follower = [...g.members.values()].find((m) => m.memberId !== leaderId)!;
    const instance = follower.groupInstanceId!;
    const rejoin = await c.join(joinReq({ groupInstanceId: instance }));
    assert.equal(rejoin.errorCode, E.NONE);
    assert.equal(rejoin.generationId, gen, "no new generation: no rebalance");
    assert.equal(g.state, "Stable");
    const sync = await c.sync({
      groupId: "g",
      memberId: rejoin.memberId,
      generationId: gen,
      groupInstanceId: instance,
      protocolType: null,
      protocolName: null,
      assignments: [],
    });
    assert.equal(Buffer.from(sync.assignment).toString(), `for-${instance}`);
    assert.equal(
      c.heartbeat("g", follower.memberId, gen, instance),
      E.FENCED_INSTANCE_ID,
      "the old member id is fenced",
    );
    c.stop();
  });

  test("offset metadata over the limit is OFFSET_METADATA_TOO_LARGE; other partitions commit", async () => {
    const store = new MemoryStore();
    const c = new GroupCoordinator(config, store);
    const codes = await c.commitOffsets("solo", [
      { topic: "t", partition: 0, offset: 5n, leaderEpoch: -1, metadata: "x".repeat(200) },
      { topic: "t", partition: 1, offset: 6n, leaderEpoch: -1, metadata: "ok" },
    ]);
    assert.deepEqual(codes, [E.OFFSET_METADATA_TOO_LARGE, E.NONE]);
    assert.equal(c.fetchOffset("solo", "t", 0), undefined);
    assert.equal(c.fetchOffset("solo", "t", 1)?.metadata, "ok");
  });

  test("the coordinator partition follows Kafka's abs(hashCode) % partitions", () => {
    // Java: "abc".hashCode() == 96354, "a".hashCode() == 97; "polygenelubricants".hashCode() == Integer.MIN_VALUE (abs → 0).
    assert.equal(partitionFor("abc", 50), 96354 % 50);
    assert.equal(partitionFor("a", 50), 97 % 50);
    assert.equal(partitionFor("polygenelubricants", 50), 0);
    assert.equal(partitionFor("", 50), 0);
  });
});
