// The handler registry: one line per API. Only APIs listed here (and those the coordinators'
// plugins add: src/group/plugin.ts, src/txn/plugin.ts) are advertised in ApiVersions.

import { produceHandler } from "./00-produce.ts";
import { fetchHandler } from "./01-fetch.ts";
import { listOffsetsHandler } from "./02-list-offsets.ts";
import { metadataHandler } from "./03-metadata.ts";
import { saslAuthenticateHandler, saslHandshakeHandler } from "./17-sasl-handshake.ts";
import { apiVersionsHandler, type VersionRange } from "./18-api-versions.ts";
import { createTopicsHandler } from "./19-create-topics.ts";
import { deleteTopicsHandler } from "./20-delete-topics.ts";
import { deleteRecordsHandler } from "./21-delete-records.ts";
import { offsetForLeaderEpochHandler } from "./23-offset-for-leader-epoch.ts";
import { describeConfigsHandler } from "./32-describe-configs.ts";
import { alterConfigsHandler } from "./33-alter-configs.ts";
import { describeLogDirsHandler } from "./35-describe-log-dirs.ts";
import { createPartitionsHandler } from "./37-create-partitions.ts";
import { incrementalAlterConfigsHandler } from "./44-incremental-alter-configs.ts";
import { describeClusterHandler } from "./60-describe-cluster.ts";
import type { AnyHandler } from "./types.ts";

const CORE: readonly AnyHandler[] = [
  produceHandler,
  fetchHandler,
  listOffsetsHandler,
  metadataHandler,
  saslHandshakeHandler,
  apiVersionsHandler,
  createTopicsHandler,
  deleteTopicsHandler,
  deleteRecordsHandler,
  offsetForLeaderEpochHandler,
  describeConfigsHandler,
  alterConfigsHandler,
  describeLogDirsHandler,
  saslAuthenticateHandler,
  createPartitionsHandler,
  incrementalAlterConfigsHandler,
  describeClusterHandler,
];

/** Builds the dispatch table from the core handlers and those added by coordinators. */
export function buildRegistry(extra: readonly AnyHandler[] = []): Map<number, AnyHandler> {
  const all = [...CORE, ...extra];
  const map = new Map<number, AnyHandler>();
  for (const h of all) {
    if (map.has(h.apiKey)) throw new Error(`two handlers for API key ${h.apiKey}`);
    map.set(h.apiKey, h);
  }
  return map;
}

/** What ApiVersions advertises: every API with a handler, its whole served range, by key. */
export function servedApis(registry: ReadonlyMap<number, AnyHandler>): VersionRange[] {
  return [...registry.values()]
    .map((h) => ({ apiKey: h.apiKey, minVersion: h.minVersion, maxVersion: h.maxVersion }))
    .sort((a, b) => a.apiKey - b.apiKey);
}
