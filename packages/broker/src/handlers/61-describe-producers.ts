// DescribeProducers (key 61), version 0: the active producers of each partition (id, epoch, last
// sequence and timestamp, coordinator epoch, start offset of the open transaction).

import type { DescribeProducersRequest, DescribeProducersResponse } from "@sluice/protocol";
import { decodeDescribeProducersRequest, ErrorCode, encodeDescribeProducersResponse } from "@sluice/protocol";
import { defineHandler } from "./types.ts";

export const describeProducersHandler = defineHandler<DescribeProducersRequest, DescribeProducersResponse>({
  apiKey: 61,
  name: "DescribeProducers",
  minVersion: 0,
  maxVersion: 0,
  decode: (r, v) => decodeDescribeProducersRequest(r, v),
  encode: (w, res, v) => encodeDescribeProducersResponse(w, res, v),
  handle(req, ctx) {
    return {
      throttleTimeMs: 0,
      topics: req.topics.map((t) => ({
        name: t.name,
        partitions: t.partitionIndexes.map((partitionIndex) => {
          const p = ctx.broker.topics.partition(t.name, partitionIndex);
          if (!p)
            return {
              partitionIndex,
              errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
              errorMessage: null,
              activeProducers: [],
            };
          return {
            partitionIndex,
            errorCode: ErrorCode.NONE,
            errorMessage: null,
            activeProducers: [...p.producers.entries()].map((e) => ({
              producerId: e.producerId,
              producerEpoch: e.producerEpoch,
              lastSequence: e.batches.at(-1)?.lastSeq ?? -1,
              lastTimestamp: e.lastTimestampMs,
              coordinatorEpoch: e.coordinatorEpoch,
              currentTxnStartOffset: e.currentTxnFirstOffset ?? -1n,
            })),
          };
        }),
      })),
    };
  },
});
