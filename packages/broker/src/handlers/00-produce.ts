// Produce (key 0), versions 0–11. The log stores record batches of magic v2 only: a legacy message
// set (magic v0/v1) in a v0–v2 request is converted to one v2 batch (Kafka 3.x's up-conversion);
// in a v3+ request, where Kafka allows only v2, it is INVALID_RECORD (Kafka's ProduceRequest check).
// v1+: throttle time. v2+: logAppendTimeMs. v3+: transactionalId. v5+: logStartOffset.
// v8+: recordErrors and errorMessage. v9+: flexible. v10+: currentLeader / nodeEndpoints (tagged).
// acks must be -1, 0 or 1 (INVALID_REQUIRED_ACKS otherwise); acks=0 gets no response, and if any
// partition failed the connection is closed so that the producer notices (Kafka's behaviour). Records
// are decoded only when a config needs it: keys on compacted topics and per-record timestamps under
// message.timestamp.difference.max.ms, both reported per record (RecordErrors, v8+). On a single
// node acks=-1 is answered once the batch is in the log (and fsynced when fsync-before-ack is on):
// the only in-sync replica has it — unless min.insync.replicas asks for more in-sync replicas than
// there are (NOT_ENOUGH_REPLICAS, nothing appended), as Kafka refuses acks=all writes then.
//
// Idempotence: batches with a producer id go through the partition's producer state: a retried
// batch is answered with its original offsets and not appended again; sequence gaps and stale
// epochs get OUT_OF_ORDER_SEQUENCE_NUMBER / INVALID_PRODUCER_EPOCH. Appends of batches with a
// producer id are serialised per partition (serialAppend) so that the check and the append are
// atomic. Batches without one (plain producers) need no check: while nothing serialised is queued
// for the partition they are handed to the log at once, so that requests arriving together are
// written together (the log coalesces queued appends into one write) instead of one write per
// request. Either way appends reach the log in the order the requests arrived.
//
// Hot path: the request's record bytes are views into the received frame (never copied); a
// request whose partitions all fail validation is answered without a promise.

import type { Input, ProduceRequest, ProduceResponse } from "@sluice/protocol";
import { decodeProduceRequest, ErrorCode, encodeProduceResponse } from "@sluice/protocol";
import type { PartitionProduceResponse } from "@sluice/protocol/generated/produce.ts";
import {
  type BatchPosition,
  isControlBatch,
  isTransactional,
  iterateBatches,
  lastOffsetOf,
  readBatchHeader,
  setMaxTimestamp,
  timestampTypeOf,
} from "@sluice/protocol/records/batch-header.ts";
import { RecordsError } from "@sluice/protocol/records/errors.ts";
import { isLegacyMessageSet, readLegacyMessageSet } from "@sluice/protocol/records/legacy.ts";
import { buildRecordBatch, parseRecordBatch } from "@sluice/protocol/records/record-batch.ts";
import type { AppendInfo } from "@sluice/storage";
import { toSafeNumber } from "../config.ts";
import { errorCodeOf, errorMessageOf } from "../errors.ts";
import { appendChainIdle, type PartitionState, serialAppend } from "../topics.ts";
import { snapshotOnNewSegment } from "../txn/producer-snapshots.ts";
import type { ProducerBatchInfo } from "../txn/producer-state.ts";
import { CloseConnection, defineHandler, type RequestContext } from "./types.ts";

export { serialAppend } from "../topics.ts";

export function producerInfo(b: BatchPosition): ProducerBatchInfo {
  return {
    producerId: b.header.producerId,
    producerEpoch: b.header.producerEpoch,
    baseSequence: b.header.baseSequence,
    lastOffsetDelta: b.header.lastOffsetDelta,
    isTransactional: isTransactional(b.header.attributes),
    isControl: isControlBatch(b.header.attributes),
    maxTimestampMs: b.header.maxTimestamp,
  };
}

/** A hook the transaction coordinator installs to verify transactional produce (KIP-890). */
export type TxnProduceCheck = (
  transactionalId: string,
  info: ProducerBatchInfo,
  topic: string,
  partition: number,
) => boolean;

function failure(index: number, errorCode: number, message: string | null): Input<PartitionProduceResponse> {
  return { index, errorCode, baseOffset: -1n, logAppendTimeMs: -1n, logStartOffset: -1n, errorMessage: message };
}

interface RecordsInvalid {
  errorCode: number;
  message: string;
  recordErrors: { batchIndex: number; batchIndexErrorMessage: string }[];
}

/** Records per batch above which per-record errors are summarised (bounds the response). */
const RECORD_ERRORS_MAX = 100;

/**
 * The checks that need the records themselves, done only when a config asks for them (the hot
 * path never decodes records): keys on compacted topics, and each record's CreateTime timestamp
 * when `message.timestamp.difference.max.ms` is set. Like Kafka, a failure rejects the whole
 * partition's data and lists the offending records by their index in the batch (RecordErrors).
 */
function validateRecords(
  p: PartitionState,
  batches: BatchPosition[],
  records: Uint8Array,
  ctx: RequestContext,
): RecordsInvalid | null {
  // cleanup.policy is "delete", "compact" or "compact,delete".
  const compacted = p.log.config["cleanup.policy"].includes("compact");
  const diffMs =
    p.log.config["message.timestamp.type"] === "CreateTime"
      ? toSafeNumber(
          ctx.broker.topics.get(p.topic)?.record.configs["message.timestamp.difference.max.ms"] ??
            ctx.broker.config.get("log.message.timestamp.difference.max.ms"),
        )
      : Number.MAX_SAFE_INTEGER;
  const checkTimestamps = diffMs < Number.MAX_SAFE_INTEGER;
  if (!compacted && !checkTimestamps) return null;
  const maxDiff = BigInt(diffMs);
  const now = BigInt(ctx.broker.clock.nowMs());
  const recordErrors: RecordsInvalid["recordErrors"] = [];
  let errorCode: number = ErrorCode.NONE;
  let message = "";
  for (const b of batches) {
    let parsed: ReturnType<typeof parseRecordBatch>;
    try {
      parsed = parseRecordBatch(records, b.position, {
        verifyCrc: true,
        maxDecompressedBytes: decompressionBound(p),
      });
    } catch (e) {
      return { errorCode: errorCodeOf(e), message: errorMessageOf(e), recordErrors: [] };
    }
    parsed.records.forEach((r, i) => {
      let problem: string | null = null;
      if (compacted && r.key === null) {
        problem = "compacted topic cannot accept a record without a key";
        errorCode = ErrorCode.INVALID_RECORD;
      } else if (checkTimestamps && timestampTypeOf(b.header.attributes) === 0) {
        const d = r.timestamp - now;
        if ((d < 0n ? -d : d) > maxDiff) {
          problem = `timestamp ${r.timestamp} is more than ${maxDiff} ms from the broker's clock`;
          if (errorCode === ErrorCode.NONE) errorCode = ErrorCode.INVALID_TIMESTAMP;
        }
      }
      if (problem === null) return;
      message ||= problem;
      if (recordErrors.length < RECORD_ERRORS_MAX)
        recordErrors.push({ batchIndex: i, batchIndexErrorMessage: problem });
    });
  }
  return errorCode === ErrorCode.NONE ? null : { errorCode, message, recordErrors };
}

type PartitionResult = Input<PartitionProduceResponse>;

/** How far a client's compressed records may expand when the broker decodes them (a bomb's bound). */
function decompressionBound(p: PartitionState): number {
  return Math.max(p.log.config["max.message.bytes"] * 64, 64 * 1024 * 1024);
}

/** A legacy message set as one v2 batch with the wrappers' codec (or none), CRCs checked. */
function upConvert(p: PartitionState, records: Uint8Array): Uint8Array {
  const set = readLegacyMessageSet(records, decompressionBound(p));
  return buildRecordBatch({ records: set.records, compression: set.compression });
}

/**
 * Kafka's broker recomputes a CreateTime batch's maxTimestamp from its records (LogValidator);
 * this broker trusts the header, which the time index, ListOffsets by time and retention.ms are
 * built from, except where it is plainly wrong: below the batch's first timestamp (sarama 1.22
 * writes -1). Such a batch's CRC is checked, its records decoded, and maxTimestamp and CRC
 * rewritten in the request's own buffer; `batches` gets the new headers. Returns the error that
 * refuses the partition's data, or null.
 */
function fixMaxTimestamps(p: PartitionState, batches: BatchPosition[], records: Uint8Array): unknown {
  if (p.log.config["message.timestamp.type"] !== "CreateTime") return null; // the log stamps them
  for (let i = 0; i < batches.length; i++) {
    const { header, position } = batches[i]!;
    if (header.maxTimestamp >= header.baseTimestamp || timestampTypeOf(header.attributes) !== 0) continue;
    try {
      const parsed = parseRecordBatch(records, position, {
        verifyCrc: true,
        maxDecompressedBytes: decompressionBound(p),
      });
      let max = -1n;
      for (const r of parsed.records) if (r.timestamp > max) max = r.timestamp;
      setMaxTimestamp(records, position, max);
      batches[i] = { position, header: readBatchHeader(records, position) };
    } catch (e) {
      return e;
    }
  }
  return null;
}

function producePartition(
  p: PartitionState,
  index: number,
  records: Uint8Array,
  transactionalId: string | null,
  ctx: RequestContext,
): PartitionResult | Promise<PartitionResult> {
  let batches: BatchPosition[];
  try {
    // Message formats v0/v1 (only Produce v0-v2 may carry them) become one v2 batch, as Kafka
    // 3.x converts them; the log stores v2 only.
    if (isLegacyMessageSet(records)) {
      if (ctx.apiVersion >= 3)
        return failure(
          index,
          ErrorCode.INVALID_RECORD,
          `Produce v${ctx.apiVersion} carries record batches of magic 2 only`,
        );
      records = upConvert(p, records);
    }
    batches = [...iterateBatches(records)];
  } catch (e) {
    const code = e instanceof RecordsError ? errorCodeOf(e) : ErrorCode.CORRUPT_MESSAGE;
    return failure(index, code, errorMessageOf(e));
  }
  if (batches.length === 0) return failure(index, ErrorCode.CORRUPT_MESSAGE, "no record batch");
  const fixed = fixMaxTimestamps(p, batches, records);
  if (fixed !== null) return failure(index, errorCodeOf(fixed), errorMessageOf(fixed));
  const invalid = validateRecords(p, batches, records, ctx);
  if (invalid) return { ...failure(index, invalid.errorCode, invalid.message), recordErrors: invalid.recordErrors };
  let plain = true;
  for (const b of batches) {
    if (isControlBatch(b.header.attributes))
      return failure(index, ErrorCode.INVALID_RECORD, "clients may not produce control batches");
    if (b.header.producerId >= 0n || isTransactional(b.header.attributes)) plain = false;
  }
  // Batches without a producer id: nothing to check, the log orders and coalesces the appends.
  if (plain && appendChainIdle(p)) return appendAndAnswer(p, index, records);
  return appendChecked(p, index, records, batches, transactionalId, ctx);
}

/**
 * Appends as leader and answers for the partition; `onAppended` (the producer state's update) runs
 * before the high watermark moves. A failure, of the append or of `onAppended`, is the answer.
 */
async function appendAndAnswer(
  p: PartitionState,
  index: number,
  records: Uint8Array,
  onAppended?: (appended: AppendInfo) => void,
): Promise<PartitionResult> {
  try {
    const appended = await p.log.appendAsLeader(records, p.leaderEpoch);
    onAppended?.(appended);
    // The log clamps the high watermark to the end of the acknowledged appends.
    await p.log.updateHighWatermark(p.log.logEndOffset);
    return {
      index,
      errorCode: ErrorCode.NONE,
      baseOffset: appended.baseOffset,
      logAppendTimeMs: appended.logAppendTimeMs,
      logStartOffset: appended.logStartOffset,
    };
  } catch (e) {
    return failure(index, errorCodeOf(e), errorMessageOf(e));
  }
}

/** Batches with a producer id: the producer-state check and the append run as one serialised step. */
function appendChecked(
  p: PartitionState,
  index: number,
  records: Uint8Array,
  batches: BatchPosition[],
  transactionalId: string | null,
  ctx: RequestContext,
): Promise<PartitionResult> {
  const infos = batches.map(producerInfo);
  const txnCheck = ctx.broker.services.get("txnProduceCheck") as TxnProduceCheck | undefined;
  return serialAppend(p, async () => {
    for (const info of infos) {
      if (info.producerId < 0n) continue;
      if (info.isTransactional) {
        if (transactionalId === null)
          return failure(index, ErrorCode.INVALID_TXN_STATE, "transactional batch without a transactional id");
        if (txnCheck && !txnCheck(transactionalId, info, p.topic, p.partition)) {
          return failure(index, ErrorCode.INVALID_TXN_STATE, "partition was not added to the transaction");
        }
      }
      const check = p.producers.check(info);
      if (check.kind === "duplicate") {
        return {
          index,
          errorCode: ErrorCode.NONE,
          baseOffset: check.batch.firstOffset,
          logAppendTimeMs: -1n,
          logStartOffset: p.log.logStartOffset,
        };
      }
      if (check.kind === "error") {
        ctx.broker.logger.debug({ topic: p.topic, partition: p.partition, reason: check.message }, "produce refused");
        return failure(index, ErrorCode[check.error], check.message);
      }
    }
    return appendAndAnswer(p, index, records, (appended) => {
      appended.batches.forEach((b, i) => {
        p.producers.apply(infos[i]!, b.header.baseOffset, lastOffsetOf(b.header));
      });
      snapshotOnNewSegment(p, appended.lastOffset + 1n, ctx.broker.logger);
    });
  });
}

/** Checks that need no log: acks, the partition, internal topics, min.insync.replicas, empty data. */
function precheck(
  req: ProduceRequest,
  name: string,
  pd: { index: number; records: Uint8Array | null },
  ctx: RequestContext,
): PartitionResult | PartitionState {
  if (req.acks !== -1 && req.acks !== 0 && req.acks !== 1)
    return failure(pd.index, ErrorCode.INVALID_REQUIRED_ACKS, `acks=${req.acks} is not -1, 0 or 1`);
  const topic = ctx.broker.topics.get(name);
  const p = topic?.partitions[pd.index];
  if (!topic || !p)
    return failure(pd.index, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `unknown partition ${name}-${pd.index}`);
  if (topic.record.internal)
    return failure(pd.index, ErrorCode.INVALID_TOPIC_EXCEPTION, `${name} is an internal topic`);
  if (req.acks === -1) {
    const isr = topic.record.states?.[pd.index]?.isr.length ?? 1;
    const minIsr = Number(topic.record.configs["min.insync.replicas"] ?? ctx.broker.config.get("min.insync.replicas"));
    if (isr < minIsr)
      return failure(
        pd.index,
        ErrorCode.NOT_ENOUGH_REPLICAS,
        `${isr} in-sync replica(s), fewer than min.insync.replicas=${minIsr}`,
      );
  }
  if (pd.records === null || pd.records.length === 0) return failure(pd.index, ErrorCode.CORRUPT_MESSAGE, "no records");
  return p;
}

export const produceHandler = defineHandler<ProduceRequest, ProduceResponse>({
  apiKey: 0,
  name: "Produce",
  minVersion: 0,
  maxVersion: 11,
  decode: (r, v) => decodeProduceRequest(r, v),
  encode: (w, res, v) => encodeProduceResponse(w, res, v),
  handle(req, ctx) {
    const responses: { name: string; partitionResponses: PartitionResult[] }[] = [];
    const pending: Promise<void>[] = [];
    for (const t of req.topicData) {
      const partitionResponses: PartitionResult[] = [];
      responses.push({ name: t.name, partitionResponses });
      for (const pd of t.partitionData) {
        const p = precheck(req, t.name, pd, ctx);
        const r = "log" in p ? producePartition(p, pd.index, pd.records!, req.transactionalId, ctx) : p;
        const at = partitionResponses.length;
        partitionResponses.push(r instanceof Promise ? failure(pd.index, ErrorCode.UNKNOWN_SERVER_ERROR, null) : r);
        // A partition that fails unexpectedly is answered for itself: the request as a whole
        // settles only once every partition has (its frame's buffer goes back to the pool then,
        // and a partition still queued behind earlier appends has not taken its own reference).
        if (r instanceof Promise)
          pending.push(
            r.then(
              (res) => {
                partitionResponses[at] = res;
              },
              (e) => {
                ctx.broker.logger.error({ err: e, topic: t.name, partition: pd.index }, "produce failed");
                partitionResponses[at] = failure(pd.index, errorCodeOf(e), errorMessageOf(e));
              },
            ),
          );
      }
    }
    const answer = (): Input<ProduceResponse> | null => {
      if (req.acks !== 0) return { responses, throttleTimeMs: 0 };
      // No response; a failure closes the connection so that the producer notices (as Kafka does).
      const failed = responses.some((t) => t.partitionResponses.some((p) => (p.errorCode ?? 0) !== ErrorCode.NONE));
      if (failed) throw new CloseConnection("an acks=0 produce failed");
      return null;
    };
    if (pending.length === 0) return answer();
    return (pending.length === 1 ? pending[0]! : Promise.all(pending)).then(answer);
  },
});
