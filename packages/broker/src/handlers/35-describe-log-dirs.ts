// DescribeLogDirs (key 35), versions 0–4: the log dir with the size of each partition (all
// partitions when topics is null). v3+: top-level error code. v4+: total and usable bytes.

import { statfs } from "node:fs/promises";
import type { DescribeLogDirsRequest, DescribeLogDirsResponse } from "@sluice/protocol";
import { decodeDescribeLogDirsRequest, ErrorCode, encodeDescribeLogDirsResponse } from "@sluice/protocol";
import { defineHandler } from "./types.ts";

export const describeLogDirsHandler = defineHandler<DescribeLogDirsRequest, DescribeLogDirsResponse>({
  apiKey: 35,
  name: "DescribeLogDirs",
  minVersion: 0,
  maxVersion: 4,
  decode: (r, v) => decodeDescribeLogDirsRequest(r, v),
  encode: (w, res, v) => encodeDescribeLogDirsResponse(w, res, v),
  async handle(req, ctx) {
    const b = ctx.broker;
    const wanted =
      req.topics === null
        ? b.topics.list().map((t) => ({ topic: t.record.name, partitions: t.partitions.map((p) => p.partition) }))
        : req.topics;
    const topics = wanted.flatMap((w) => {
      const t = b.topics.get(w.topic);
      if (!t) return [];
      const partitions = w.partitions.flatMap((i) => {
        const p = t.partitions[i];
        return p
          ? [{ partitionIndex: i, partitionSize: BigInt(p.log.sizeBytes), offsetLag: 0n, isFutureKey: false }]
          : [];
      });
      return [{ name: w.topic, partitions }];
    });
    const dir = b.logDirs[0]!;
    let totalBytes = -1n;
    let usableBytes = -1n;
    try {
      const s = await statfs(dir);
      totalBytes = BigInt(s.blocks) * BigInt(s.bsize);
      usableBytes = BigInt(s.bavail) * BigInt(s.bsize);
    } catch {
      // Sizes stay unknown (-1).
    }
    return {
      throttleTimeMs: 0,
      errorCode: ErrorCode.NONE,
      results: [{ errorCode: ErrorCode.NONE, logDir: dir, topics, totalBytes, usableBytes }],
    };
  },
});
