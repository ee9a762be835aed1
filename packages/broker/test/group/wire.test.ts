// The group coordinator over the wire, every version pinned: FindCoordinator (batched keys v4+,
// transaction keys), the classic protocol (JoinGroup v0–v9, SyncGroup, Heartbeat, LeaveGroup),
// OffsetCommit v0–v9 / OffsetFetch v0–v9 (metadata round trip, generation checks, multi-group v8+,
// all offsets with null topics), ListGroups (state and type filters), DescribeGroups, DeleteGroups
// and OffsetDelete.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ErrorCode } from "@sluice/protocol";
import type { RunningBroker } from "../../src/index.ts";
import { createTopic, testBroker, WireClient } from "../helpers.ts";
import {
  DeleteGroups,
  DescribeGroups,
  FindCoordinator,
  Heartbeat,
  JoinGroup,
  LeaveGroup,
  ListGroups,
  OffsetCommit,
  OffsetDelete,
  OffsetFetch,
  SyncGroup,
  subscription,
} from "./group-apis.ts";

/** Joins (answering MEMBER_ID_REQUIRED for v4+) and syncs a one-member group at a JoinGroup version. */
async function joinAndSync(
  c: WireClient,
  groupId: string,
  joinVersion: number,
  topics: string[] = ["t"],
  opts: { groupInstanceId?: string | null; protocolType?: string } = {},
) {
  const join = (memberId: string) =>
    c.call(JoinGroup, joinVersion, {
      groupId,
      sessionTimeoutMs: 10_000,
      rebalanceTimeoutMs: 10_000,
      memberId,
      groupInstanceId: opts.groupInstanceId ?? null,
      protocolType: opts.protocolType ?? "consumer",
      protocols: [{ name: "range", metadata: subscription(topics) }],
    });
  let j = await join("");
  if (joinVersion >= 4 && opts.groupInstanceId == null) {
    assert.equal(j.errorCode, ErrorCode.MEMBER_ID_REQUIRED, `JoinGroup v${joinVersion}`);
    j = await join(j.memberId);
  }
  assert.equal(j.errorCode, ErrorCode.NONE, `JoinGroup v${joinVersion}`);
  assert.equal(j.leader, j.memberId);
  const syncVersion = Math.min(5, Math.max(0, joinVersion - 4));
  const s = await c.call(SyncGroup, syncVersion, {
    groupId,
    generationId: j.generationId,
    memberId: j.memberId,
    groupInstanceId: opts.groupInstanceId ?? null,
    protocolType: opts.protocolType ?? "consumer",
    protocolName: "range",
    assignments: [{ memberId: j.memberId, assignment: Buffer.from(`assigned-${groupId}`) }],
  });
  assert.equal(s.errorCode, ErrorCode.NONE, `SyncGroup v${syncVersion}`);
  assert.equal(Buffer.from(s.assignment).toString(), `assigned-${groupId}`);
  return { memberId: j.memberId, generationId: j.generationId, protocolName: j.protocolName };
}

describe("group coordinator over the wire", () => {
  let b: RunningBroker;
  let c: WireClient;
  before(async () => {
    b = await testBroker();
    c = await WireClient.connect(b.port);
    await createTopic(c, "t", 3);
    await createTopic(c, "u", 1);
  });
  after(async () => {
    c.close();
    await b.stop();
  });

  test("FindCoordinator v0–v6: this broker for groups and transactions; v4+ answers every batched key", async () => {
    for (let v = 0; v <= 3; v++) {
      const r = await c.call(FindCoordinator, v, { key: "g1", keyType: 0 });
      assert.equal(r.errorCode, ErrorCode.NONE, `v${v}`);
      assert.equal(r.nodeId, b.broker.context!.nodeId);
      assert.equal(r.port, b.port);
      if (v >= 1) assert.equal((await c.call(FindCoordinator, v, { key: "tx", keyType: 1 })).errorCode, ErrorCode.NONE);
    }
    for (let v = 4; v <= 6; v++) {
      const r = await c.call(FindCoordinator, v, { keyType: 0, coordinatorKeys: ["a", "b", "c"] });
      assert.deepEqual(
        r.coordinators.map((x) => [x.key, x.errorCode, x.port]),
        [
          ["a", 0, b.port],
          ["b", 0, b.port],
          ["c", 0, b.port],
        ],
        `v${v}`,
      );
      const t = await c.call(FindCoordinator, v, { keyType: 1, coordinatorKeys: ["tx-1", "tx-2"] });
      assert.deepEqual(
        t.coordinators.map((x) => [x.key, x.errorCode]),
        [
          ["tx-1", 0],
          ["tx-2", 0],
        ],
      );
    }
    assert.equal(
      (await c.call(FindCoordinator, 4, { keyType: 7, coordinatorKeys: ["x"] })).coordinators[0]?.errorCode,
      ErrorCode.INVALID_REQUEST,
    );
    // The internal topics exist from the first lookup: 50 compacted partitions each (Kafka's defaults).
    for (const name of ["__consumer_offsets", "__transaction_state"]) {
      const topic = b.broker.context!.topics.get(name);
      assert.ok(topic, name);
      assert.equal(topic.partitions.length, 50);
      assert.equal(topic.record.configs["cleanup.policy"], "compact");
    }
  });

  test("JoinGroup v0–v9 with SyncGroup, Heartbeat and LeaveGroup at matching versions", async () => {
    for (let v = 0; v <= 9; v++) {
      const groupId = `versions-${v}`;
      const m = await joinAndSync(c, groupId, v);
      assert.equal(m.generationId, 1);
      const hv = Math.min(4, Math.max(0, v - 5));
      assert.equal(
        (await c.call(Heartbeat, hv, { groupId, generationId: m.generationId, memberId: m.memberId })).errorCode,
        ErrorCode.NONE,
      );
      assert.equal(
        (await c.call(Heartbeat, hv, { groupId, generationId: m.generationId + 1, memberId: m.memberId })).errorCode,
        ErrorCode.ILLEGAL_GENERATION,
      );
      const lv = Math.min(5, Math.max(0, v - 4));
      const leave = await c.call(LeaveGroup, lv, {
        groupId,
        memberId: m.memberId,
        members: [{ memberId: m.memberId, groupInstanceId: null }],
      });
      assert.equal(leave.errorCode, ErrorCode.NONE);
      if (lv >= 3) assert.equal(leave.members[0]?.errorCode, ErrorCode.NONE);
      const d = await c.call(DescribeGroups, 0, { groups: [groupId] });
      assert.equal(d.groups[0]?.groupState, "Empty", `after LeaveGroup v${lv}`);
    }
  });

  test("JoinGroup with no protocol in common is INCONSISTENT_GROUP_PROTOCOL and leaves the group intact", async () => {
    const m = await joinAndSync(c, "no-common", 5);
    const r = await c.call(JoinGroup, 5, {
      groupId: "no-common",
      sessionTimeoutMs: 10_000,
      rebalanceTimeoutMs: 10_000,
      memberId: "",
      groupInstanceId: null,
      protocolType: "consumer",
      protocols: [{ name: "roundrobin", metadata: subscription(["t"]) }],
    });
    assert.equal(r.errorCode, ErrorCode.INCONSISTENT_GROUP_PROTOCOL);
    const d = await c.call(DescribeGroups, 5, { groups: ["no-common"] });
    assert.equal(d.groups[0]?.groupState, "Stable");
    assert.deepEqual(
      d.groups[0]?.members.map((x) => x.memberId),
      [m.memberId],
    );
    assert.equal(
      (await c.call(Heartbeat, 0, { groupId: "nobody", generationId: 1, memberId: "x" })).errorCode,
      ErrorCode.UNKNOWN_MEMBER_ID,
    );
  });

  test("OffsetCommit v0–v9 and OffsetFetch v0–v9: offsets, leader epochs and metadata round-trip", async () => {
    for (let v = 0; v <= 9; v++) {
      const groupId = `commit-v${v}`;
      const commit = await c.call(OffsetCommit, v, {
        groupId,
        generationIdOrMemberEpoch: -1,
        memberId: "",
        groupInstanceId: null,
        retentionTimeMs: -1n,
        topics: [
          {
            name: "t",
            partitions: [
              {
                partitionIndex: 0,
                committedOffset: 10n + BigInt(v),
                committedLeaderEpoch: 3,
                committedMetadata: `meta-${v}`,
              },
              { partitionIndex: 1, committedOffset: 20n, committedLeaderEpoch: -1, committedMetadata: null },
            ],
          },
          { name: "no-such-topic", partitions: [{ partitionIndex: 0, committedOffset: 1n }] },
        ],
      });
      assert.deepEqual(
        commit.topics.map((t) => t.partitions.map((p) => p.errorCode)),
        [[0, 0], [ErrorCode.UNKNOWN_TOPIC_OR_PARTITION]],
        `OffsetCommit v${v}`,
      );
      const fv = v;
      const fetched =
        fv >= 8
          ? (
              await c.call(OffsetFetch, fv, {
                groups: [{ groupId, topics: [{ name: "t", partitionIndexes: [0, 1, 2] }] }],
              })
            ).groups[0]!.topics
          : (await c.call(OffsetFetch, fv, { groupId, topics: [{ name: "t", partitionIndexes: [0, 1, 2] }] })).topics;
      const ps = fetched[0]!.partitions;
      assert.equal(ps[0]?.committedOffset, 10n + BigInt(v), `OffsetFetch v${fv}`);
      assert.equal(ps[0]?.metadata, `meta-${v}`);
      if (fv >= 5) assert.equal(ps[0]?.committedLeaderEpoch, v >= 6 ? 3 : -1, "leader epoch kept from v6 commits");
      assert.equal(ps[1]?.committedOffset, 20n);
      assert.equal(ps[1]?.metadata, "", "null metadata is stored as empty");
      assert.equal(ps[2]?.committedOffset, -1n, "no commit: -1");
      assert.equal(ps[2]?.errorCode, ErrorCode.NONE);
    }
  });

  test("OffsetFetch v8+: several groups in one request; null topics = every committed offset of the group", async () => {
    const r = await c.call(OffsetFetch, 8, {
      groups: [
        { groupId: "commit-v3", topics: null },
        { groupId: "commit-v7", topics: [{ name: "t", partitionIndexes: [0] }] },
        { groupId: "never-committed", topics: null },
      ],
      requireStable: true,
    });
    assert.deepEqual(
      r.groups.map((g) => [
        g.groupId,
        g.errorCode,
        g.topics.flatMap((t) => t.partitions.map((p) => `${t.name}-${p.partitionIndex}@${p.committedOffset}`)),
      ]),
      [
        ["commit-v3", 0, ["t-0@13", "t-1@20"]],
        ["commit-v7", 0, ["t-0@17"]],
        ["never-committed", 0, []],
      ],
    );
    const v2 = await c.call(OffsetFetch, 2, { groupId: "commit-v3", topics: null });
    assert.equal(v2.errorCode, ErrorCode.NONE);
    assert.equal(v2.topics[0]?.partitions.length, 2);
  });

  test("OffsetCommit generation checks: v0 into an active group is UNKNOWN_MEMBER_ID; stale generation, unknown member, unknown group", async () => {
    const m = await joinAndSync(c, "fenced", 5);
    const partitions = [{ partitionIndex: 0, committedOffset: 5n, committedMetadata: "" }];
    const code = async (v: number, generationIdOrMemberEpoch: number, memberId: string, groupId = "fenced") =>
      (
        await c.call(OffsetCommit, v, {
          groupId,
          generationIdOrMemberEpoch,
          memberId,
          topics: [{ name: "t", partitions }],
        })
      ).topics[0]!.partitions[0]!.errorCode;
    assert.equal(await code(0, -1, ""), ErrorCode.UNKNOWN_MEMBER_ID, "v0 has no generation: a groupless commit");
    for (const v of [1, 2, 5, 8, 9]) {
      assert.equal(await code(v, m.generationId, m.memberId), ErrorCode.NONE, `v${v}`);
      assert.equal(await code(v, m.generationId + 1, m.memberId), ErrorCode.ILLEGAL_GENERATION, `v${v}`);
      assert.equal(await code(v, m.generationId, "ghost"), ErrorCode.UNKNOWN_MEMBER_ID, `v${v}`);
      assert.equal(await code(v, -1, ""), ErrorCode.UNKNOWN_MEMBER_ID, `v${v}: simple commit into an active group`);
      assert.equal(await code(v, 4, "m", "no-such-group"), ErrorCode.ILLEGAL_GENERATION, `v${v}`);
    }
    const oversized = await c.call(OffsetCommit, 8, {
      groupId: "fenced",
      generationIdOrMemberEpoch: m.generationId,
      memberId: m.memberId,
      topics: [
        { name: "t", partitions: [{ partitionIndex: 1, committedOffset: 9n, committedMetadata: "x".repeat(5000) }] },
      ],
    });
    assert.equal(oversized.topics[0]?.partitions[0]?.errorCode, ErrorCode.OFFSET_METADATA_TOO_LARGE);
    const f = await c.call(OffsetFetch, 6, { groupId: "fenced", topics: [{ name: "t", partitionIndexes: [0, 1] }] });
    assert.deepEqual(
      f.topics[0]?.partitions.map((p) => p.committedOffset),
      [5n, -1n],
      "only the accepted commits landed",
    );
  });

  test("DescribeGroups reports state, protocol, members and assignments; unknown groups are Dead", async () => {
    const m = await joinAndSync(c, "described", 7, ["t", "u"]);
    const d = await c.call(DescribeGroups, 5, { groups: ["described", "never-existed"] });
    const g = d.groups[0]!;
    assert.equal(g.groupState, "Stable");
    assert.equal(g.protocolType, "consumer");
    assert.equal(g.protocolData, "range");
    assert.equal(g.members[0]?.memberId, m.memberId);
    assert.equal(g.members[0]?.clientId, "test");
    assert.deepEqual(Buffer.from(g.members[0]!.memberMetadata), subscription(["t", "u"]));
    assert.equal(Buffer.from(g.members[0]!.memberAssignment).toString(), "assigned-described");
    assert.deepEqual([d.groups[1]?.groupState, d.groups[1]?.errorCode, d.groups[1]?.members.length], ["Dead", 0, 0]);
  });

  test("ListGroups: every group; v4+ filters by state (case-insensitive), v5+ by type", async () => {
    const all = await c.call(ListGroups, 0, {});
    const ids = new Set(all.groups.map((g) => g.groupId));
    assert.ok(ids.has("described") && ids.has("versions-3") && ids.has("commit-v1"));
    const stable = await c.call(ListGroups, 4, { statesFilter: ["stable"] });
    assert.ok(stable.groups.length > 0);
    assert.ok(stable.groups.every((g) => g.groupState === "Stable"));
    assert.ok(stable.groups.some((g) => g.groupId === "described"));
    assert.ok(!stable.groups.some((g) => g.groupId === "versions-3"), "an Empty group is filtered out");
    const empty = await c.call(ListGroups, 4, { statesFilter: ["Empty"] });
    assert.ok(empty.groups.some((g) => g.groupId === "versions-3"));
    assert.ok(empty.groups.every((g) => g.groupState === "Empty"));
    const classic = await c.call(ListGroups, 5, { typesFilter: ["classic"] });
    assert.equal(classic.groups.length, all.groups.length);
    assert.ok(classic.groups.every((g) => g.groupType === "classic"));
    assert.equal((await c.call(ListGroups, 5, { typesFilter: ["consumer"] })).groups.length, 0);
  });

  test("OffsetDelete: GROUP_SUBSCRIBED_TO_TOPIC while the group consumes the topic; other topics' offsets deleted", async () => {
    const m = await joinAndSync(c, "od", 5, ["t"]);
    const commit = await c.call(OffsetCommit, 8, {
      groupId: "od",
      generationIdOrMemberEpoch: m.generationId,
      memberId: m.memberId,
      topics: [
        { name: "t", partitions: [{ partitionIndex: 0, committedOffset: 1n }] },
        { name: "u", partitions: [{ partitionIndex: 0, committedOffset: 2n }] },
      ],
    });
    assert.ok(commit.topics.every((t) => t.partitions.every((p) => p.errorCode === 0)));
    const r = await c.call(OffsetDelete, 0, {
      groupId: "od",
      topics: [
        { name: "t", partitions: [{ partitionIndex: 0 }] },
        { name: "u", partitions: [{ partitionIndex: 0 }] },
      ],
    });
    assert.equal(r.errorCode, ErrorCode.NONE);
    assert.deepEqual(
      r.topics.map((t) => t.partitions[0]?.errorCode),
      [ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC, ErrorCode.NONE],
    );
    const f = await c.call(OffsetFetch, 7, { groupId: "od", topics: null });
    assert.deepEqual(
      f.topics.map((t) => t.name),
      ["t"],
    );
    assert.equal(
      (await c.call(OffsetDelete, 0, { groupId: "nope", topics: [] })).errorCode,
      ErrorCode.GROUP_ID_NOT_FOUND,
    );
  });

  test("DeleteGroups: NON_EMPTY_GROUP with members; an Empty group and its offsets are removed; unknown is GROUP_ID_NOT_FOUND", async () => {
    const m = await joinAndSync(c, "doomed", 5);
    await c.call(OffsetCommit, 8, {
      groupId: "doomed",
      generationIdOrMemberEpoch: m.generationId,
      memberId: m.memberId,
      topics: [{ name: "t", partitions: [{ partitionIndex: 0, committedOffset: 3n }] }],
    });
    const busy = await c.call(DeleteGroups, 2, { groupsNames: ["doomed"] });
    assert.equal(busy.results[0]?.errorCode, ErrorCode.NON_EMPTY_GROUP);
    await c.call(LeaveGroup, 0, { groupId: "doomed", memberId: m.memberId });
    const r = await c.call(DeleteGroups, 0, { groupsNames: ["doomed", "never-was"] });
    assert.deepEqual(
      r.results.map((x) => [x.groupId, x.errorCode]),
      [
        ["doomed", ErrorCode.NONE],
        ["never-was", ErrorCode.GROUP_ID_NOT_FOUND],
      ],
    );
    const f = await c.call(OffsetFetch, 1, { groupId: "doomed", topics: [{ name: "t", partitionIndexes: [0] }] });
    assert.equal(f.topics[0]?.partitions[0]?.committedOffset, -1n);
    assert.ok(!(await c.call(ListGroups, 0, {})).groups.some((g) => g.groupId === "doomed"));
  });
});

test("offset.metadata.max.bytes sets the commit metadata limit; offsets.retention.check.interval.ms is a validated config", async () => {
  const broker = await testBroker({ "offset.metadata.max.bytes": "10", "offsets.retention.check.interval.ms": "1000" });
  const c = await WireClient.connect(broker.port);
  try {
    await createTopic(c, "meta", 1);
    const commit = async (metadata: string): Promise<number> =>
      (
        await c.call(OffsetCommit, 8, {
          groupId: "meta-group",
          generationIdOrMemberEpoch: -1,
          memberId: "",
          topics: [
            { name: "meta", partitions: [{ partitionIndex: 0, committedOffset: 1n, committedMetadata: metadata }] },
          ],
        })
      ).topics[0]!.partitions[0]!.errorCode;
    assert.equal(await commit("x".repeat(10)), ErrorCode.NONE);
    assert.equal(await commit("x".repeat(11)), ErrorCode.OFFSET_METADATA_TOO_LARGE);
  } finally {
    c.close();
    await broker.stop();
  }
  await assert.rejects(
    testBroker({ "offsets.retention.check.interval.ms": "0" }),
    /offsets\.retention\.check\.interval\.ms/,
  );
});
