// The admin client: topics, partitions, configs, offsets, records and consumer groups. Topic
// changes go to the controller, offsets and record deletion to partition leaders, group calls to
// the group's coordinator. Retriable errors (a moving controller or coordinator, a connection
// lost) are retried with backoff. A call over several items that fails for some of them throws
// PartialFailureError, whose `results` hold every item's outcome (and value where it succeeded).

import {
  ApiKey,
  decodeCreatePartitionsResponse,
  decodeCreateTopicsResponse,
  decodeDeleteGroupsResponse,
  decodeDeleteRecordsResponse,
  decodeDeleteTopicsResponse,
  decodeDescribeConfigsResponse,
  decodeDescribeGroupsResponse,
  decodeIncrementalAlterConfigsResponse,
  decodeListGroupsResponse,
  decodeListOffsetsResponse,
  decodeMetadataResponse,
  decodeOffsetCommitResponse,
  decodeOffsetFetchResponse,
  ErrorCode,
  encodeCreatePartitionsRequest,
  encodeCreateTopicsRequest,
  encodeDeleteGroupsRequest,
  encodeDeleteRecordsRequest,
  encodeDeleteTopicsRequest,
  encodeDescribeConfigsRequest,
  encodeDescribeGroupsRequest,
  encodeIncrementalAlterConfigsRequest,
  encodeListGroupsRequest,
  encodeListOffsetsRequest,
  encodeMetadataRequest,
  encodeOffsetCommitRequest,
  encodeOffsetFetchRequest,
  uuidToString,
} from "@sluice/protocol";
import { decodeAssignment, type TopicPartition } from "./assignors.ts";
import { backoffMs, sleep } from "./backoff.ts";
import { Cluster } from "./cluster.ts";
import type { Connection } from "./connection.ts";
import { type ItemResult, KafkaError, KafkaProtocolError, PartialFailureError } from "./errors.ts";
import { ADMIN_OPTIONS, resolveOptions } from "./options.ts";

export interface AdminOptions {
  /** bootstrap.servers. Required. */
  bootstrapServers: string | readonly string[];
  /** client.id (default "sluice"). */
  clientId?: string;
  /** request.timeout.ms (default 30000). */
  requestTimeoutMs?: number;
  /** retry.backoff.ms (default 100). */
  retryBackoffMs?: number;
  /** retry.backoff.max.ms (default 1000). */
  retryBackoffMaxMs?: number;
  /** reconnect.backoff.ms (default 50). */
  reconnectBackoffMs?: number;
  /** reconnect.backoff.max.ms (default 1000). */
  reconnectBackoffMaxMs?: number;
  /** socket.connection.setup.timeout.ms (default 10000). */
  socketConnectionSetupTimeoutMs?: number;
  /** metadata.max.age.ms (default 300000). */
  metadataMaxAgeMs?: number;
}

export interface NewTopic {
  name: string;
  /** Default: the broker's num.partitions. */
  numPartitions?: number;
  /** Default: the broker's default.replication.factor. */
  replicationFactor?: number;
  configs?: Record<string, string>;
}

export interface TopicDescription {
  name: string;
  topicId: string;
  internal: boolean;
  partitions: { partition: number; leader: number; leaderEpoch: number; replicas: number[]; isr: number[] }[];
}

export interface ConfigEntry {
  name: string;
  value: string | null;
  /** Kafka's ConfigSource: 1 topic, 4 static broker, 5 default, ... */
  source: number;
  isDefault: boolean;
  readOnly: boolean;
  sensitive: boolean;
}

export type ConfigResource = { type: "topic" | "broker"; name: string };

export interface GroupDescription {
  groupId: string;
  state: string;
  protocolType: string;
  /** The assignor in use. */
  protocol: string;
  members: {
    memberId: string;
    groupInstanceId: string | null;
    clientId: string;
    clientHost: string;
    /** Decoded for consumer groups. */
    assignment: TopicPartition[];
  }[];
}

export interface GroupOffset {
  topic: string;
  partition: number;
  offset: bigint;
  metadata: string;
}

interface ResolvedAdminOptions {
  bootstrapServers: string | readonly string[];
  clientId: string;
  requestTimeoutMs: number;
  retryBackoffMs: number;
  retryBackoffMaxMs: number;
  reconnectBackoffMs: number;
  reconnectBackoffMaxMs: number;
  socketConnectionSetupTimeoutMs: number;
  metadataMaxAgeMs: number;
}

const RETRY_CODES = new Set<number>([
  ErrorCode.NOT_CONTROLLER,
  ErrorCode.NOT_COORDINATOR,
  ErrorCode.COORDINATOR_NOT_AVAILABLE,
  ErrorCode.COORDINATOR_LOAD_IN_PROGRESS,
  ErrorCode.NOT_LEADER_OR_FOLLOWER,
  ErrorCode.LEADER_NOT_AVAILABLE,
  ErrorCode.REQUEST_TIMED_OUT,
]);

const result = (item: string, errorCode: number, context: string, message?: string | null): ItemResult => ({
  item,
  error: errorCode === ErrorCode.NONE ? null : new KafkaProtocolError(errorCode, `${context} ${item}`, message),
});

function check(what: string, results: readonly ItemResult[]): void {
  const failed = results.filter((r) => r.error !== null);
  if (failed.length === 0) return;
  if (results.length === 1) throw failed[0]!.error!;
  throw new PartialFailureError(what, results);
}

/** Whether every failure in `results` is one a retry may fix. */
const retriable = (results: readonly ItemResult[]): boolean =>
  results.some((r) => r.error !== null) &&
  results.every((r) => r.error === null || (r.error.errorCode !== null && RETRY_CODES.has(r.error.errorCode)));

export class Admin {
  private readonly o: ResolvedAdminOptions;
  private readonly cluster: Cluster;

  constructor(options: AdminOptions) {
    this.o = resolveOptions<ResolvedAdminOptions>("admin", ADMIN_OPTIONS, options);
    this.cluster = new Cluster({ ...this.o, allowAutoCreateTopics: false });
  }

  /** Runs `call` until it succeeds or fails for a reason a retry cannot fix (bounded by requestTimeoutMs). */
  private async retrying<T>(call: () => Promise<{ value: T; results: ItemResult[] }>): Promise<T> {
    const deadline = Date.now() + this.o.requestTimeoutMs;
    for (let attempt = 0; ; attempt++) {
      let out: { value: T; results: ItemResult[] };
      try {
        out = await call();
      } catch (e) {
        // Connection-level failures are retried here; broker error codes through RETRY_CODES below.
        const connectionLevel =
          e instanceof KafkaError && !(e instanceof KafkaProtocolError) && !(e instanceof PartialFailureError);
        if (!connectionLevel || !(e as KafkaError).retriable || Date.now() > deadline) throw e;
        await sleep(backoffMs(attempt, this.o.retryBackoffMs, this.o.retryBackoffMaxMs));
        continue;
      }
      if (retriable(out.results) && Date.now() < deadline) {
        await this.cluster.refresh().catch(() => {});
        await sleep(backoffMs(attempt, this.o.retryBackoffMs, this.o.retryBackoffMaxMs));
        continue;
      }
      return out.value;
    }
  }

  // ---- topics -----------------------------------------------------------------------------

  async createTopics(topics: readonly NewTopic[], opts: { validateOnly?: boolean } = {}): Promise<void> {
    await this.retrying(async () => {
      const conn = await this.cluster.controllerConnection();
      const res = await conn.request(
        ApiKey.CreateTopics,
        [0, 7],
        (w, v) =>
          encodeCreateTopicsRequest(
            w,
            {
              topics: topics.map((t) => ({
                name: t.name,
                numPartitions: t.numPartitions ?? -1,
                replicationFactor: t.replicationFactor ?? -1,
                assignments: [],
                configs: Object.entries(t.configs ?? {}).map(([name, value]) => ({ name, value })),
              })),
              timeoutMs: this.o.requestTimeoutMs,
              validateOnly: opts.validateOnly ?? false,
            },
            v,
          ),
        decodeCreateTopicsResponse,
      );
      const results = res.topics.map((t) => result(t.name, t.errorCode, "createTopics", t.errorMessage));
      if (!retriable(results)) check("createTopics", results);
      return { value: undefined, results };
    });
  }

  async deleteTopics(names: readonly string[]): Promise<void> {
    await this.retrying(async () => {
      const conn = await this.cluster.controllerConnection();
      const res = await conn.request(
        ApiKey.DeleteTopics,
        [0, 6],
        (w, v) =>
          encodeDeleteTopicsRequest(
            w,
            { topicNames: [...names], topics: names.map((name) => ({ name })), timeoutMs: this.o.requestTimeoutMs },
            v,
          ),
        decodeDeleteTopicsResponse,
      );
      const results = res.responses.map((t) => result(t.name ?? "", t.errorCode, "deleteTopics", t.errorMessage));
      if (!retriable(results)) check("deleteTopics", results);
      for (const n of names) this.cluster.invalidate(n);
      return { value: undefined, results };
    });
  }

  /** Grows topics to `count` partitions each. */
  async createPartitions(topic: string, count: number): Promise<void>;
  async createPartitions(topics: readonly { topic: string; count: number }[]): Promise<void>;
  async createPartitions(a: string | readonly { topic: string; count: number }[], count?: number): Promise<void> {
    const list = typeof a === "string" ? [{ topic: a, count: count! }] : a;
    await this.retrying(async () => {
      const conn = await this.cluster.controllerConnection();
      const res = await conn.request(
        ApiKey.CreatePartitions,
        [0, 3],
        (w, v) =>
          encodeCreatePartitionsRequest(
            w,
            {
              topics: list.map((t) => ({ name: t.topic, count: t.count, assignments: null })),
              timeoutMs: this.o.requestTimeoutMs,
              validateOnly: false,
            },
            v,
          ),
        decodeCreatePartitionsResponse,
      );
      const results = res.results.map((t) => result(t.name, t.errorCode, "createPartitions", t.errorMessage));
      if (!retriable(results)) check("createPartitions", results);
      for (const t of list) this.cluster.invalidate(t.topic);
      return { value: undefined, results };
    });
  }

  /** Every topic (no argument) or the named ones. */
  async describeTopics(names: readonly string[] | null = null): Promise<TopicDescription[]> {
    return this.retrying(async () => {
      const conn = await this.cluster.anyConnection("admin");
      const res = await conn.request(
        ApiKey.Metadata,
        [1, 12],
        (w, v) =>
          encodeMetadataRequest(
            w,
            { topics: names === null ? null : names.map((name) => ({ name })), allowAutoTopicCreation: false },
            v,
          ),
        decodeMetadataResponse,
      );
      const descriptions = res.topics.map((t) => ({
        name: t.name ?? "",
        topicId: uuidToString(t.topicId),
        internal: t.isInternal,
        partitions: t.partitions
          .map((p) => ({
            partition: p.partitionIndex,
            leader: p.leaderId,
            leaderEpoch: p.leaderEpoch,
            replicas: p.replicaNodes,
            isr: p.isrNodes,
          }))
          .sort((x, y) => x.partition - y.partition),
      }));
      const results = res.topics.map((t, i) => ({
        ...result(t.name ?? "", t.errorCode, "describeTopics"),
        value: descriptions[i],
      }));
      check("describeTopics", results);
      return { value: descriptions, results: [] };
    });
  }

  /** Names of the topics (internal ones left out unless asked). */
  async listTopics(opts: { includeInternal?: boolean } = {}): Promise<string[]> {
    return (await this.describeTopics(null))
      .filter((t) => opts.includeInternal || !t.internal)
      .map((t) => t.name)
      .sort();
  }

  // ---- configs ----------------------------------------------------------------------------

  /** Configs of a topic or broker (every entry, with its source). */
  async describeConfigs(resource: ConfigResource): Promise<ConfigEntry[]> {
    return this.retrying(async () => {
      const conn = await this.cluster.anyConnection("admin");
      const res = await conn.request(
        ApiKey.DescribeConfigs,
        [1, 4],
        (w, v) =>
          encodeDescribeConfigsRequest(
            w,
            {
              resources: [
                {
                  resourceType: resource.type === "topic" ? 2 : 4,
                  resourceName: resource.name,
                  configurationKeys: null,
                },
              ],
              includeSynonyms: false,
              includeDocumentation: false,
            },
            v,
          ),
        decodeDescribeConfigsResponse,
      );
      const r = res.results[0];
      if (!r) throw new KafkaError("INVALID_RESPONSE", "DescribeConfigs answered no resource");
      const results = [result(resource.name, r.errorCode, "describeConfigs", r.errorMessage)];
      if (!retriable(results)) check("describeConfigs", results);
      return {
        value: r.configs.map((c) => ({
          name: c.name,
          value: c.value,
          source: c.configSource,
          isDefault: c.configSource === 5,
          readOnly: c.readOnly,
          sensitive: c.isSensitive,
        })),
        results,
      };
    });
  }

  /** IncrementalAlterConfigs: sets (string) or deletes, back to the default (null), each config given. */
  async alterConfigs(resource: ConfigResource, changes: Readonly<Record<string, string | null>>): Promise<void> {
    await this.retrying(async () => {
      const conn = await this.cluster.anyConnection("admin");
      const res = await conn.request(
        ApiKey.IncrementalAlterConfigs,
        [0, 1],
        (w, v) =>
          encodeIncrementalAlterConfigsRequest(
            w,
            {
              resources: [
                {
                  resourceType: resource.type === "topic" ? 2 : 4,
                  resourceName: resource.name,
                  configs: Object.entries(changes).map(([name, value]) => ({
                    name,
                    configOperation: value === null ? 1 : 0,
                    value,
                  })),
                },
              ],
              validateOnly: false,
            },
            v,
          ),
        decodeIncrementalAlterConfigsResponse,
      );
      const results = res.responses.map((x) => result(x.resourceName, x.errorCode, "alterConfigs", x.errorMessage));
      if (!retriable(results)) check("alterConfigs", results);
      return { value: undefined, results };
    });
  }

  // ---- offsets and records ----------------------------------------------------------------

  /** Offsets of every partition of a topic: "earliest", "latest", or the first at/after a timestamp (ms). */
  async listOffsets(
    topic: string,
    at: "earliest" | "latest" | bigint = "latest",
  ): Promise<{ partition: number; offset: bigint; timestamp: bigint }[]> {
    const timestamp = at === "earliest" ? -2n : at === "latest" ? -1n : at;
    return this.retrying(async () => {
      this.cluster.invalidate(topic);
      const partitions = await this.cluster.partitionsOf(topic, Date.now() + this.o.requestTimeoutMs);
      const byLeader = new Map<number, number[]>();
      for (const p of partitions) byLeader.set(p.leader, [...(byLeader.get(p.leader) ?? []), p.partition]);
      const out: { partition: number; offset: bigint; timestamp: bigint }[] = [];
      const results: ItemResult[] = [];
      for (const [leader, ps] of byLeader) {
        if (leader < 0) {
          for (const p of ps) results.push(result(`${topic}-${p}`, ErrorCode.LEADER_NOT_AVAILABLE, "listOffsets"));
          continue;
        }
        const conn = await this.cluster.connectionTo(leader, "admin");
        const res = await conn.request(
          ApiKey.ListOffsets,
          [1, 7],
          (w, v) =>
            encodeListOffsetsRequest(
              w,
              {
                replicaId: -1,
                isolationLevel: 0,
                topics: [
                  {
                    name: topic,
                    partitions: ps.map((partitionIndex) => ({ partitionIndex, timestamp, currentLeaderEpoch: -1 })),
                  },
                ],
              },
              v,
            ),
          decodeListOffsetsResponse,
        );
        for (const t of res.topics)
          for (const p of t.partitions) {
            results.push(result(`${topic}-${p.partitionIndex}`, p.errorCode, "listOffsets"));
            if (p.errorCode === ErrorCode.NONE)
              out.push({ partition: p.partitionIndex, offset: p.offset, timestamp: p.timestamp });
          }
      }
      if (!retriable(results)) check("listOffsets", results);
      return { value: out.sort((a, b) => a.partition - b.partition), results };
    });
  }

  /** DeleteRecords: moves each partition's log start offset up to `before` (exclusive). */
  async deleteRecords(topic: string, before: Readonly<Record<number, bigint>>): Promise<void> {
    await this.retrying(async () => {
      this.cluster.invalidate(topic);
      await this.cluster.partitionsOf(topic, Date.now() + this.o.requestTimeoutMs);
      const byLeader = new Map<number, { partitionIndex: number; offset: bigint }[]>();
      for (const [p, offset] of Object.entries(before)) {
        const leader = this.cluster.leaderOf(topic, Number(p));
        byLeader.set(leader, [...(byLeader.get(leader) ?? []), { partitionIndex: Number(p), offset }]);
      }
      const results: ItemResult[] = [];
      for (const [leader, partitions] of byLeader) {
        if (leader < 0) {
          for (const p of partitions)
            results.push(result(`${topic}-${p.partitionIndex}`, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, "deleteRecords"));
          continue;
        }
        const conn = await this.cluster.connectionTo(leader, "admin");
        const res = await conn.request(
          ApiKey.DeleteRecords,
          [0, 2],
          (w, v) =>
            encodeDeleteRecordsRequest(
              w,
              { topics: [{ name: topic, partitions }], timeoutMs: this.o.requestTimeoutMs },
              v,
            ),
          decodeDeleteRecordsResponse,
        );
        for (const t of res.topics)
          for (const x of t.partitions)
            results.push(result(`${topic}-${x.partitionIndex}`, x.errorCode, "deleteRecords"));
      }
      if (!retriable(results)) check("deleteRecords", results);
      return { value: undefined, results };
    });
  }

  // ---- consumer groups --------------------------------------------------------------------

  /** Groups known to the brokers, with their state. */
  async listGroups(): Promise<{ groupId: string; protocolType: string; state: string }[]> {
    return this.retrying(async () => {
      const conn = await this.cluster.anyConnection("admin");
      const res = await conn.request(
        ApiKey.ListGroups,
        [0, 4],
        (w, v) => encodeListGroupsRequest(w, { statesFilter: [], typesFilter: [] }, v),
        decodeListGroupsResponse,
      );
      const results = [result("groups", res.errorCode, "listGroups")];
      if (!retriable(results)) check("listGroups", results);
      return {
        value: res.groups
          .map((g) => ({ groupId: g.groupId, protocolType: g.protocolType, state: g.groupState }))
          .sort((a, b) => (a.groupId < b.groupId ? -1 : 1)),
        results,
      };
    });
  }

  private coordinatorFor(groupId: string): Promise<Connection> {
    return this.cluster.coordinator("group", groupId, Date.now() + this.o.requestTimeoutMs);
  }

  /** Groups' state and members (with each consumer member's assigned partitions). */
  async describeGroups(groupIds: readonly string[]): Promise<GroupDescription[]> {
    const out: GroupDescription[] = [];
    const results: ItemResult[] = [];
    for (const groupId of groupIds) {
      try {
        out.push(await this.describeGroup(groupId));
        results.push({ item: groupId, error: null, value: out.at(-1) });
      } catch (e) {
        results.push({ item: groupId, error: e instanceof KafkaError ? e : new KafkaError("UNKNOWN", String(e)) });
      }
    }
    check("describeGroups", results);
    return out;
  }

  async describeGroup(groupId: string): Promise<GroupDescription> {
    return this.retrying(async () => {
      const conn = await this.coordinatorFor(groupId);
      const res = await conn.request(
        ApiKey.DescribeGroups,
        [0, 5],
        (w, v) => encodeDescribeGroupsRequest(w, { groups: [groupId], includeAuthorizedOperations: false }, v),
        decodeDescribeGroupsResponse,
      );
      const g = res.groups[0];
      if (!g) throw new KafkaError("INVALID_RESPONSE", "DescribeGroups answered no group");
      const results = [result(groupId, g.errorCode, "describeGroup")];
      if (g.errorCode === ErrorCode.NOT_COORDINATOR) this.cluster.invalidateCoordinator("group", groupId);
      if (!retriable(results)) check("describeGroup", results);
      return {
        value: {
          groupId,
          state: g.groupState,
          protocolType: g.protocolType,
          protocol: g.protocolData,
          members: g.members.map((m) => {
            let assignment: TopicPartition[] = [];
            if (g.protocolType === "consumer") {
              try {
                assignment = decodeAssignment(m.memberAssignment);
              } catch {
                assignment = [];
              }
            }
            return {
              memberId: m.memberId,
              groupInstanceId: m.groupInstanceId,
              clientId: m.clientId,
              clientHost: m.clientHost,
              assignment,
            };
          }),
        },
        results,
      };
    });
  }

  /** Deletes empty groups (their committed offsets go too). */
  async deleteGroups(groupIds: readonly string[]): Promise<void> {
    const results: ItemResult[] = [];
    for (const groupId of groupIds) {
      try {
        await this.retrying(async () => {
          const conn = await this.coordinatorFor(groupId);
          const res = await conn.request(
            ApiKey.DeleteGroups,
            [0, 2],
            (w, v) => encodeDeleteGroupsRequest(w, { groupsNames: [groupId] }, v),
            decodeDeleteGroupsResponse,
          );
          const r = res.results.map((x) => result(x.groupId, x.errorCode, "deleteGroups"));
          if (r.some((x) => x.error?.errorCode === ErrorCode.NOT_COORDINATOR))
            this.cluster.invalidateCoordinator("group", groupId);
          if (!retriable(r)) check("deleteGroups", r);
          return { value: undefined, results: r };
        });
        results.push({ item: groupId, error: null });
      } catch (e) {
        results.push({ item: groupId, error: e instanceof KafkaError ? e : new KafkaError("UNKNOWN", String(e)) });
      }
    }
    check("deleteGroups", results);
  }

  /** Committed offsets of a group: every partition it committed, or only those given. */
  async listConsumerGroupOffsets(groupId: string, partitions?: readonly TopicPartition[]): Promise<GroupOffset[]> {
    return this.retrying(async () => {
      const conn = await this.coordinatorFor(groupId);
      const byTopic = new Map<string, number[]>();
      for (const p of partitions ?? []) byTopic.set(p.topic, [...(byTopic.get(p.topic) ?? []), p.partition]);
      const res = await conn.request(
        ApiKey.OffsetFetch,
        [2, 7],
        (w, v) =>
          encodeOffsetFetchRequest(
            w,
            {
              groupId,
              topics:
                partitions === undefined
                  ? null
                  : [...byTopic].map(([name, partitionIndexes]) => ({ name, partitionIndexes })),
              requireStable: false,
            },
            v,
          ),
        decodeOffsetFetchResponse,
      );
      const results = [result(groupId, res.errorCode, "listConsumerGroupOffsets")];
      if (res.errorCode === ErrorCode.NOT_COORDINATOR) this.cluster.invalidateCoordinator("group", groupId);
      if (!retriable(results)) check("listConsumerGroupOffsets", results);
      return {
        value: res.topics
          .flatMap((t) =>
            t.partitions.map((p) => ({
              topic: t.name,
              partition: p.partitionIndex,
              offset: p.committedOffset,
              metadata: p.metadata ?? "",
            })),
          )
          .sort((a, b) => (a.topic === b.topic ? a.partition - b.partition : a.topic < b.topic ? -1 : 1)),
        results,
      };
    });
  }

  /** Same as listConsumerGroupOffsets (the name the CLI uses). */
  groupOffsets(groupId: string): Promise<GroupOffset[]> {
    return this.listConsumerGroupOffsets(groupId);
  }

  /**
   * Sets a group's committed offsets (the group must have no active members, as in Java's
   * AdminClient.alterConsumerGroupOffsets).
   */
  async alterConsumerGroupOffsets(
    groupId: string,
    offsets: readonly { topic: string; partition: number; offset: bigint; metadata?: string }[],
  ): Promise<void> {
    await this.retrying(async () => {
      const conn = await this.coordinatorFor(groupId);
      const byTopic = new Map<
        string,
        { partitionIndex: number; committedOffset: bigint; committedMetadata: string }[]
      >();
      for (const o of offsets)
        byTopic.set(o.topic, [
          ...(byTopic.get(o.topic) ?? []),
          { partitionIndex: o.partition, committedOffset: o.offset, committedMetadata: o.metadata ?? "" },
        ]);
      const res = await conn.request(
        ApiKey.OffsetCommit,
        [2, 8],
        (w, v) =>
          encodeOffsetCommitRequest(
            w,
            {
              groupId,
              generationIdOrMemberEpoch: -1,
              memberId: "",
              groupInstanceId: null,
              retentionTimeMs: -1n,
              topics: [...byTopic].map(([name, partitions]) => ({
                name,
                partitions: partitions.map((p) => ({ ...p, committedLeaderEpoch: -1, commitTimestamp: -1n })),
              })),
            },
            v,
          ),
        decodeOffsetCommitResponse,
      );
      const results = res.topics.flatMap((t) =>
        t.partitions.map((p) => result(`${t.name}-${p.partitionIndex}`, p.errorCode, "alterConsumerGroupOffsets")),
      );
      if (results.some((r) => r.error?.errorCode === ErrorCode.NOT_COORDINATOR))
        this.cluster.invalidateCoordinator("group", groupId);
      if (!retriable(results)) check("alterConsumerGroupOffsets", results);
      return { value: undefined, results };
    });
  }

  /** Moves a group's offsets for every partition of `topic` to the earliest, latest, or a timestamp. */
  async resetOffsets(groupId: string, topic: string, to: "earliest" | "latest" | bigint): Promise<void> {
    const offsets = await this.listOffsets(topic, to);
    await this.alterConsumerGroupOffsets(
      groupId,
      offsets.map((o) => ({ topic, partition: o.partition, offset: o.offset })),
    );
  }

  close(): Promise<void> {
    return this.cluster.close();
  }
}
