// Fetch (key 1), versions 0–17 (consumers; follower fetches come with replication).
// v1+: throttle time. v3+: request maxBytes (fetch.max.bytes). v4+: isolation level, last stable
// offset and aborted transactions. v5+: logStartOffset. v7+: fetch sessions (KIP-227) — this
// broker creates none: a full fetch (session epoch 0 or -1) is answered with sessionId 0 ("no
// session"), so clients keep sending full requests; an incremental fetch (epoch > 0) can only name
// a session we do not have and gets FETCH_SESSION_ID_NOT_FOUND. v9+: currentLeaderEpoch (FENCED/UNKNOWN_LEADER_EPOCH checks). v11+: rack id (ignored).
// v12+: flexible. v13+: topics by id. v15+: replica state.
//
// Long poll: when less than minBytes is available the request waits up to maxWaitMs and is woken
// by appends to any partition it asks for (never by polling on a timer). A fetch that starts in
// the middle of a batch returns that whole batch; the first partition with data always returns
// at least one batch even past the size limits, so a consumer can never get stuck.

import type { FetchRequest, FetchResponse, Input } from "@sluice/protocol";
import {
  CHUNK_BYTES_MIN,
  decodeFetchRequest,
  ErrorCode,
  encodeFetchResponse,
  RecordChunks,
  uuidFromString,
  uuidToString,
} from "@sluice/protocol";
import type { FetchableTopicResponse, PartitionData } from "@sluice/protocol/generated/fetch.ts";
import { downConvertBatches } from "@sluice/protocol/records/legacy.ts";
import { detach, OffsetOutOfRangeError } from "@sluice/storage";
import { errorCodeOf } from "../errors.ts";
import type { PartitionState, TopicState } from "../topics.ts";
import { defineHandler, type RequestContext } from "./types.ts";

const READ_COMMITTED = 1;

interface Wanted {
  topic: TopicState | undefined;
  topicName: string;
  topicId: Uint8Array;
  partition: number;
  fetchOffset: bigint;
  partitionMaxBytes: number;
  currentLeaderEpoch: number;
}

async function readPartitions(
  wanted: Wanted[],
  req: FetchRequest,
  ctx: RequestContext,
): Promise<{ topics: Input<FetchableTopicResponse>[]; bytes: number }> {
  const v = ctx.apiVersion;
  const maxBytes = v >= 3 ? req.maxBytes : 0x7fffffff;
  let total = 0;
  let first = true;
  const byTopic = new Map<string, Input<FetchableTopicResponse> & { partitions: Input<PartitionData>[] }>();
  for (const w of wanted) {
    const key = w.topicName || uuidToString(w.topicId);
    let t = byTopic.get(key);
    if (!t) {
      t = { topic: w.topicName, topicId: w.topicId, partitions: [] };
      byTopic.set(key, t);
    }
    const p: PartitionState | undefined = w.topic?.partitions[w.partition];
    if (!p) {
      t.partitions.push({
        partitionIndex: w.partition,
        errorCode: v >= 13 && !w.topic ? ErrorCode.UNKNOWN_TOPIC_ID : ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        highWatermark: -1n,
        lastStableOffset: -1n,
        logStartOffset: -1n,
        records: null,
      });
      continue;
    }
    const log = p.log;
    const hw = log.highWatermark;
    const lso = p.producers.lastStableOffset(hw);
    const base = {
      partitionIndex: w.partition,
      highWatermark: hw,
      lastStableOffset: lso,
      logStartOffset: log.logStartOffset,
    };
    if (w.currentLeaderEpoch >= 0 && w.currentLeaderEpoch !== p.leaderEpoch) {
      const code =
        w.currentLeaderEpoch < p.leaderEpoch ? ErrorCode.FENCED_LEADER_EPOCH : ErrorCode.UNKNOWN_LEADER_EPOCH;
      t.partitions.push({ ...base, errorCode: code, records: null });
      continue;
    }
    if (v <= 3 && !downConversionEnabled(p, ctx)) {
      t.partitions.push({ ...base, errorCode: ErrorCode.UNSUPPORTED_VERSION, records: null });
      continue;
    }
    const limit = req.isolationLevel === READ_COMMITTED && v >= 4 ? lso : hw;
    const budget = Math.min(w.partitionMaxBytes, Math.max(0, maxBytes - total));
    try {
      // Several chunks when the read spans appends in the tail cache: written as they are (no merge).
      const r = await log.readChunks(w.fetchOffset, budget, { maxOffset: limit, minOneMessage: first });
      total += r.byteLength;
      if (r.byteLength > 0) first = false;
      let records: Uint8Array | RecordChunks;
      if (v <= 3) {
        // Fetch v0-v3 clients read only message formats v0/v1 (v2+ requests carry v1): converted
        // down from the stored v2 batches, as Kafka 3.x does.
        records = r.byteLength === 0 ? new Uint8Array(0) : downConvertBatches(detach(r.chunks), v <= 1 ? 0 : 1);
      } else {
        const chunks = r.chunks.map(ownSmall);
        records = chunks.length === 1 ? chunks[0]! : new RecordChunks(chunks);
      }
      const aborted =
        req.isolationLevel === READ_COMMITTED && v >= 4 && r.byteLength > 0
          ? log
              .collectAbortedTxns(w.fetchOffset, limit)
              .map((a) => ({ producerId: a.producerId, firstOffset: a.firstOffset }))
          : null;
      t.partitions.push({ ...base, errorCode: ErrorCode.NONE, abortedTransactions: aborted, records });
    } catch (e) {
      const code = e instanceof OffsetOutOfRangeError ? ErrorCode.OFFSET_OUT_OF_RANGE : errorCodeOf(e);
      t.partitions.push({ ...base, errorCode: code, records: null });
    }
  }
  return { topics: [...byTopic.values()], bytes: total };
}

/**
 * Resolves when the high watermark of any of the partitions moves (new data became visible to
 * consumers), when one is truncated, when the request is abandoned (connection closed, broker
 * stopping), or after `ms`. Woken by the log's events, never by polling: an append alone is not
 * enough, because the data is visible only once the high watermark passes it.
 */
function waitForData(partitions: PartitionState[], ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      for (const p of partitions) {
        p.log.off("highWatermark", finish);
        p.log.off("truncate", finish);
      }
      signal.removeEventListener("abort", finish);
      resolve();
    };
    const timer = setTimeout(finish, ms);
    for (const p of partitions) {
      p.log.on("highWatermark", finish);
      p.log.on("truncate", finish);
    }
    signal.addEventListener("abort", finish);
  });
}

export const fetchHandler = defineHandler<FetchRequest, FetchResponse>({
  apiKey: 1,
  name: "Fetch",
  minVersion: 0,
  maxVersion: 17,
  decode: (r, v) => decodeFetchRequest(r, v),
  encode: (w, res, v) => encodeFetchResponse(w, res, v),
  async handle(req, ctx) {
    if (ctx.apiVersion >= 7 && req.sessionEpoch > 0) {
      return { throttleTimeMs: 0, errorCode: ErrorCode.FETCH_SESSION_ID_NOT_FOUND, sessionId: 0, responses: [] };
    }
    const topics = ctx.broker.topics;
    const wanted: Wanted[] = [];
    for (const t of req.topics) {
      const topic = ctx.apiVersion >= 13 ? topics.getById(uuidToString(t.topicId)) : topics.get(t.topic);
      for (const p of t.partitions) {
        wanted.push({
          topic,
          topicName: ctx.apiVersion >= 13 ? "" : t.topic,
          topicId: topic && ctx.apiVersion >= 13 ? uuidFromString(topic.record.id) : t.topicId,
          partition: p.partition,
          fetchOffset: p.fetchOffset,
          partitionMaxBytes: p.partitionMaxBytes,
          currentLeaderEpoch: p.currentLeaderEpoch,
        });
      }
    }
    let result = await readPartitions(wanted, req, ctx);
    const deadline = ctx.broker.clock.nowMs() + req.maxWaitMs;
    const hasError = result.topics.some((t) => (t.partitions ?? []).some((p) => (p.errorCode ?? 0) !== 0));
    while (result.bytes < req.minBytes && !hasError) {
      const left = deadline - ctx.broker.clock.nowMs();
      if (left <= 0) break;
      const parts = wanted.flatMap((w) => (w.topic?.partitions[w.partition] ? [w.topic.partitions[w.partition]!] : []));
      if (parts.length === 0) break;
      await waitForData(parts, left, ctx.signal);
      if (ctx.signal.aborted) break;
      result = await readPartitions(wanted, req, ctx);
    }
    return { throttleTimeMs: 0, errorCode: ErrorCode.NONE, sessionId: 0, responses: result.topics };
  },
});

/**
 * A chunk the response encoder will copy (below its CHUNK_BYTES_MIN) never reaches the socket as
 * itself, so the connection could not give back the reference a pooled view comes with (see
 * @sluice/storage buffer-pool.ts): such a chunk is copied here and its reference returned now.
 */
/** message.downconversion.enable (topic) or log.message.downconversion.enable (broker). */
function downConversionEnabled(p: PartitionState, ctx: RequestContext): boolean {
  const topic = ctx.broker.topics.get(p.topic)?.record.configs["message.downconversion.enable"];
  return (topic ?? ctx.broker.config.get("log.message.downconversion.enable")) !== "false";
}

function ownSmall(c: Uint8Array): Uint8Array {
  return c.byteLength >= CHUNK_BYTES_MIN ? c : detach([c]);
}
