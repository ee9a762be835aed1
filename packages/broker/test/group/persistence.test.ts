// __consumer_offsets as tools see it, and group state across restarts: the records are in Kafka's
// coordinator-record schemas (checked byte by byte for the offset commit, and through the decoders
// generated from coordinator-records/ for the group metadata), deletions are tombstones, and a
// restarted broker reloads committed offsets and group membership from the topic.

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { ErrorCode, Reader } from "@sluice/protocol";
import { decodeGroupMetadataKey } from "@sluice/protocol/generated/coordinator/group-metadata-key.ts";
import { decodeGroupMetadataValue } from "@sluice/protocol/generated/coordinator/group-metadata-value.ts";
import { decodeRecords } from "@sluice/protocol/records/record-batch.ts";
import { partitionFor } from "../../src/group/persistence.ts";
import type { RunningBroker } from "../../src/index.ts";
import { createTopic, fetchOne, testBroker, WireClient } from "../helpers.ts";
import {
  DeleteGroups,
  DescribeGroups,
  JoinGroup,
  LeaveGroup,
  OffsetCommit,
  OffsetFetch,
  SyncGroup,
  subscription,
} from "./group-apis.ts";

interface Rec {
  key: Buffer;
  value: Buffer | null;
}

async function offsetsTopicRecords(c: WireClient, groupId: string): Promise<Rec[]> {
  const r = await fetchOne(c, "__consumer_offsets", partitionFor(groupId, 50), 0n);
  const p = r.responses[0]!.partitions[0]!;
  assert.equal(p.errorCode, ErrorCode.NONE);
  return decodeRecords(p.records!).flatMap((b) =>
    b.records.map((x) => ({ key: Buffer.from(x.key!), value: x.value === null ? null : Buffer.from(x.value) })),
  );
}

/** OffsetCommitKey v1 by hand: int16 version, string group, string topic, int32 partition. */
function offsetKeyOf(k: Buffer): { group: string; topic: string; partition: number } | null {
  if (k.readInt16BE(0) !== 1) return null;
  let p = 2;
  const str = (): string => {
    const n = k.readInt16BE(p);
    const s = k.toString("utf8", p + 2, p + 2 + n);
    p += 2 + n;
    return s;
  };
  const group = str();
  const topic = str();
  return { group, topic, partition: k.readInt32BE(p) };
}

async function joinAndSync(c: WireClient, groupId: string) {
  const join = (memberId: string) =>
    c.call(JoinGroup, 5, {
      groupId,
      sessionTimeoutMs: 30_000,
      rebalanceTimeoutMs: 30_000,
      memberId,
      groupInstanceId: null,
      protocolType: "consumer",
      protocols: [{ name: "range", metadata: subscription(["t"]) }],
    });
  const first = await join("");
  const j = await join(first.memberId);
  assert.equal(j.errorCode, ErrorCode.NONE);
  const s = await c.call(SyncGroup, 3, {
    groupId,
    generationId: j.generationId,
    memberId: j.memberId,
    assignments: [{ memberId: j.memberId, assignment: Buffer.from("A") }],
  });
  assert.equal(s.errorCode, ErrorCode.NONE);
  return j;
}

const commit = (
  c: WireClient,
  groupId: string,
  generation: number,
  memberId: string,
  offset: bigint,
  metadata: string,
) =>
  c.call(OffsetCommit, 8, {
    groupId,
    generationIdOrMemberEpoch: generation,
    memberId,
    topics: [
      {
        name: "t",
        partitions: [
          { partitionIndex: 0, committedOffset: offset, committedLeaderEpoch: 0, committedMetadata: metadata },
        ],
      },
    ],
  });

describe("__consumer_offsets persistence", () => {
  const dir = mkdtempSync(join(tmpdir(), "groups-persist-"));
  let b: RunningBroker | null = null;
  after(async () => {
    await b?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test("records in Kafka's schemas, tombstones for deletions, and state reloaded on restart", async () => {
    b = await testBroker({}, { logDir: dir });
    let c = await WireClient.connect(b.port);
    await createTopic(c, "t", 1);
    const live = await joinAndSync(c, "live");
    assert.equal(
      (await commit(c, "live", live.generationId, live.memberId, 42n, "where-we-were")).topics[0]?.partitions[0]
        ?.errorCode,
      0,
    );
    const gone = await joinAndSync(c, "gone");
    await commit(c, "gone", gone.generationId, gone.memberId, 7n, "");
    await c.call(LeaveGroup, 0, { groupId: "gone", memberId: gone.memberId });
    assert.equal((await c.call(DeleteGroups, 0, { groupsNames: ["gone"] })).results[0]?.errorCode, ErrorCode.NONE);

    const recs = await offsetsTopicRecords(c, "live");
    const offsetRec = recs.find((r) => offsetKeyOf(r.key)?.group === "live");
    assert.ok(offsetRec, "an OffsetCommitKey v1 record for the group");
    assert.deepEqual(offsetKeyOf(offsetRec.key), { group: "live", topic: "t", partition: 0 });
    // OffsetCommitValue v3: int16 version, int64 offset, int32 leaderEpoch, string metadata, int64 commitTimestamp.
    const v = offsetRec.value!;
    assert.equal(v.readInt16BE(0), 3);
    assert.equal(v.readBigInt64BE(2), 42n);
    assert.equal(v.readInt32BE(10), 0);
    assert.equal(v.toString("utf8", 16, 16 + v.readInt16BE(14)), "where-we-were");
    assert.equal(v.length, 16 + "where-we-were".length + 8);
    const groupRecs = recs.filter((r) => r.key.readInt16BE(0) === 2);
    const last = groupRecs
      .filter((r) => decodeGroupMetadataKey(new Reader(r.key.subarray(2)), 2).group === "live")
      .at(-1);
    assert.ok(last?.value, "a GroupMetadataKey v2 record with a value");
    const vr = new Reader(last.value.subarray(2));
    const gm = decodeGroupMetadataValue(vr, last.value.readInt16BE(0));
    assert.equal(vr.remaining, 0, "the value is exactly one GroupMetadataValue");
    assert.equal(gm.protocolType, "consumer");
    assert.equal(gm.generation, live.generationId);
    assert.equal(gm.protocol, "range");
    assert.equal(gm.leader, live.memberId);
    assert.deepEqual(
      gm.members.map((m) => [m.memberId, Buffer.from(m.assignment).toString()]),
      [[live.memberId, "A"]],
    );
    assert.ok(gm.currentStateTimestamp > 0n);

    const goneRecs = await offsetsTopicRecords(c, "gone");
    const goneOffsets = goneRecs.filter((r) => offsetKeyOf(r.key)?.group === "gone");
    assert.equal(goneOffsets.at(-1)?.value, null, "the deleted group's offset ends in a tombstone");
    const goneMeta = goneRecs.filter(
      (r) => r.key.readInt16BE(0) === 2 && decodeGroupMetadataKey(new Reader(r.key.subarray(2)), 2).group === "gone",
    );
    assert.equal(goneMeta.at(-1)?.value, null, "and so does its metadata");

    c.close();
    await b.stop();
    b = await testBroker({}, { logDir: dir });
    c = await WireClient.connect(b.port);
    const f = await c.call(OffsetFetch, 7, { groupId: "live", topics: [{ name: "t", partitionIndexes: [0] }] });
    assert.deepEqual(
      [f.topics[0]?.partitions[0]?.committedOffset, f.topics[0]?.partitions[0]?.metadata],
      [42n, "where-we-were"],
    );
    const d = await c.call(DescribeGroups, 5, { groups: ["live", "gone"] });
    assert.equal(d.groups[0]?.groupState, "Stable", "membership reloaded");
    assert.deepEqual(
      d.groups[0]?.members.map((m) => m.memberId),
      [live.memberId],
    );
    assert.equal(d.groups[1]?.groupState, "Dead", "the deleted group stays deleted");
    const fg = await c.call(OffsetFetch, 7, { groupId: "gone", topics: [{ name: "t", partitionIndexes: [0] }] });
    assert.equal(fg.topics[0]?.partitions[0]?.committedOffset, -1n);
    // The reloaded member carries on in its generation without rejoining.
    const again = await commit(c, "live", live.generationId, live.memberId, 43n, "");
    assert.equal(again.topics[0]?.partitions[0]?.errorCode, ErrorCode.NONE);
    c.close();
  });
});
