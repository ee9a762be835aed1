// __consumer_offsets is compacted by the broker's own background passes: many commits of one
// group's offset leave (after the cleaner ran) about one record per key, the latest offset
// survives, and a restarted broker loads it from the compacted log.

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { ErrorCode } from "@sluice/protocol";
import { decodeRecords } from "@sluice/protocol/records/record-batch.ts";
import { partitionFor } from "../../src/group/persistence.ts";
import type { RunningBroker } from "../../src/index.ts";
import { createTopic, fetchOne, sleep, testBroker, WireClient } from "../helpers.ts";
import { OffsetCommit, OffsetFetch } from "./group-apis.ts";

const COMMITS = 300;
const config = {
  "offsets.topic.segment.bytes": "2048", // many small segments: only sealed ones are compacted
  "log.retention.check.interval.ms": "100", // the retention + compaction pass
};

interface LogView {
  offsets: bigint[];
  highWatermark: bigint;
}

/** The offsets of every record in the group's __consumer_offsets partition, oldest first. */
async function offsetsLog(c: WireClient, groupId: string): Promise<LogView> {
  const partition = partitionFor(groupId, 50);
  const out: bigint[] = [];
  let highWatermark = -1n;
  let next = 0n;
  for (let i = 0; i < 10_000; i++) {
    const p = (await fetchOne(c, "__consumer_offsets", partition, next)).responses[0]!.partitions[0]!;
    assert.equal(p.errorCode, ErrorCode.NONE);
    highWatermark = p.highWatermark;
    const batches = p.records && p.records.length > 0 ? decodeRecords(p.records) : [];
    if (batches.length === 0) break;
    for (const b of batches) {
      for (const r of b.records) out.push(r.offset);
      next = b.header.baseOffset + BigInt(b.header.lastOffsetDelta) + 1n;
    }
    if (next >= p.highWatermark) break;
  }
  return { offsets: out, highWatermark };
}

const commit = (c: WireClient, offset: bigint) =>
  c.call(OffsetCommit, 8, {
    groupId: "compacted",
    generationIdOrMemberEpoch: -1, // a group that only stores offsets (no members)
    memberId: "",
    topics: [
      {
        name: "t",
        partitions: [{ partitionIndex: 0, committedOffset: offset, committedLeaderEpoch: -1, committedMetadata: "m" }],
      },
    ],
  });

const fetched = async (c: WireClient): Promise<bigint | undefined> =>
  (await c.call(OffsetFetch, 7, { groupId: "compacted", topics: [{ name: "t", partitionIndexes: [0] }] })).topics[0]
    ?.partitions[0]?.committedOffset;

describe("__consumer_offsets compaction", () => {
  const dir = mkdtempSync(join(tmpdir(), "offsets-compaction-"));
  let b: RunningBroker | null = null;
  after(async () => {
    await b?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test("repeated commits are compacted away; the latest offset survives and is reloaded", async () => {
    b = await testBroker(config, { logDir: dir });
    let c = await WireClient.connect(b.port);
    await createTopic(c, "t", 1);
    for (let i = 1; i <= COMMITS; i++) {
      const r = await commit(c, BigInt(i));
      assert.equal(r.topics[0]?.partitions[0]?.errorCode, ErrorCode.NONE);
    }
    // The cleaner runs in the background (every 100 ms here) while and after we commit.
    let log = await offsetsLog(c, "compacted");
    assert.ok(log.highWatermark >= BigInt(COMMITS), "every commit was appended as a record");
    for (let waited = 0; waited < 15_000 && log.offsets.length > COMMITS / 10; waited += 200) {
      await sleep(200);
      log = await offsetsLog(c, "compacted");
    }
    assert.ok(
      log.offsets.length <= COMMITS / 10,
      `the cleaner removed superseded commits (${log.offsets.length} left)`,
    );
    assert.equal(log.offsets.at(-1), log.highWatermark - 1n, "offsets are preserved: the last commit's record is kept");
    for (let i = 1; i < log.offsets.length; i++) assert.ok(log.offsets[i]! > log.offsets[i - 1]!, "offsets ascend");
    assert.equal(await fetched(c), BigInt(COMMITS));

    c.close();
    await b.stop();
    b = await testBroker(config, { logDir: dir });
    c = await WireClient.connect(b.port);
    assert.equal(await fetched(c), BigInt(COMMITS), "the compacted log reloads the latest commit");
    c.close();
  });
});
