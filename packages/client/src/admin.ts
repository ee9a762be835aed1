// The admin client: topics, partitions, configs, offsets and records. Requests go to the
// controller (topic changes) or the partition leaders (offsets, record deletion). A call that
// fails for some items throws AdminError carrying the per-item results.

import {
  decodeCreatePartitionsResponse,
  decodeCreateTopicsResponse,
  decodeDeleteRecordsResponse,
  decodeDeleteTopicsResponse,
  decodeDescribeConfigsResponse,
  decodeDescribeGroupsResponse,
  decodeFindCoordinatorResponse,
  decodeIncrementalAlterConfigsResponse,
  decodeListGroupsResponse,
  decodeListOffsetsResponse,
  decodeMetadataResponse,
  decodeOffsetFetchResponse,
  ERRORS_BY_CODE,
  ErrorCode,
  encodeCreatePartitionsRequest,
  encodeCreateTopicsRequest,
  encodeDeleteRecordsRequest,
  encodeDeleteTopicsRequest,
  encodeDescribeConfigsRequest,
  encodeDescribeGroupsRequest,
  encodeFindCoordinatorRequest,
  encodeIncrementalAlterConfigsRequest,
  encodeListGroupsRequest,
  encodeListOffsetsRequest,
  encodeMetadataRequest,
  encodeOffsetFetchRequest,
  uuidToString,
} from "@sluice/protocol";
import { Cluster } from "./cluster.ts";
import { KafkaError } from "./errors.ts";

export interface AdminOptions {
  bootstrapServers: string | readonly string[];
  clientId?: string;
  /** request.timeout.ms (Java default 30000). */
  requestTimeoutMs?: number;
}

export interface ItemResult {
  name: string;
  errorCode: number;
  error: string | null;
  message: string | null;
}

/** Some items of an admin call failed; `results` has every item's outcome. */
export class AdminError extends KafkaError {
  readonly items: ItemResult[];
  constructor(what: string, results: ItemResult[]) {
    const failed = results.filter((r) => r.errorCode !== 0);
    super(
      "ADMIN_PARTIAL_FAILURE",
      `${what}: ${failed.map((f) => `${f.name}: ${f.error}${f.message ? ` (${f.message})` : ""}`).join("; ")}`,
    );
    this.name = "AdminError";
    this.items = results;
  }
}

export interface TopicDescription {
  name: string;
  topicId: string;
  internal: boolean;
  partitions: { partition: number; leader: number; replicas: number[]; isr: number[] }[];
}

export interface ConfigEntry {
  name: string;
  value: string | null;
  source: number;
  isDefault: boolean;
  readOnly: boolean;
}

const item = (name: string, errorCode: number, message: string | null): ItemResult => ({
  name,
  errorCode,
  error: errorCode === 0 ? null : (ERRORS_BY_CODE.get(errorCode)?.name ?? `ERROR_${errorCode}`),
  message,
});

function check(what: string, results: ItemResult[]): void {
  if (results.some((r) => r.errorCode !== 0)) throw new AdminError(what, results);
}

export class Admin {
  private readonly cluster: Cluster;
  private readonly timeoutMs: number;

  constructor(options: AdminOptions) {
    this.timeoutMs = options.requestTimeoutMs ?? 30000;
    this.cluster = new Cluster({
      bootstrapServers: options.bootstrapServers,
      clientId: options.clientId ?? "sluice-admin",
      requestTimeoutMs: this.timeoutMs,
      socketConnectionSetupTimeoutMs: 10000,
      reconnectBackoffMs: 50,
      reconnectBackoffMaxMs: 1000,
      retryBackoffMs: 100,
      retryBackoffMaxMs: 1000,
      metadataMaxAgeMs: 300000,
      allowAutoCreateTopics: false,
    });
  }

  async createTopics(
    topics: { name: string; numPartitions?: number; replicationFactor?: number; configs?: Record<string, string> }[],
    opts: { validateOnly?: boolean } = {},
  ): Promise<void> {
    const conn = await this.cluster.anyConnection();
    const v = conn.version(19, 0, 7);
    const r = await conn.send(19, v, (w) =>
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
          timeoutMs: this.timeoutMs,
          validateOnly: opts.validateOnly ?? false,
        },
        v,
      ),
    );
    check(
      "createTopics",
      decodeCreateTopicsResponse(r, v).topics.map((t) => item(t.name, t.errorCode, t.errorMessage)),
    );
  }

  async deleteTopics(names: string[]): Promise<void> {
    const conn = await this.cluster.anyConnection();
    const v = conn.version(20, 0, 6);
    const r = await conn.send(20, v, (w) =>
      encodeDeleteTopicsRequest(
        w,
        { topicNames: names, topics: names.map((name) => ({ name })), timeoutMs: this.timeoutMs },
        v,
      ),
    );
    check(
      "deleteTopics",
      decodeDeleteTopicsResponse(r, v).responses.map((t) => item(t.name ?? "", t.errorCode, t.errorMessage)),
    );
  }

  async createPartitions(topic: string, count: number): Promise<void> {
    const conn = await this.cluster.anyConnection();
    const v = conn.version(37, 0, 3);
    const r = await conn.send(37, v, (w) =>
      encodeCreatePartitionsRequest(
        w,
        { topics: [{ name: topic, count, assignments: null }], timeoutMs: this.timeoutMs, validateOnly: false },
        v,
      ),
    );
    check(
      "createPartitions",
      decodeCreatePartitionsResponse(r, v).results.map((t) => item(t.name, t.errorCode, t.errorMessage)),
    );
  }

  /** Every topic (null) or the named ones. */
  async describeTopics(names: string[] | null = null): Promise<TopicDescription[]> {
    const conn = await this.cluster.anyConnection();
    const v = conn.version(3, 1, 12);
    const r = await conn.send(3, v, (w) =>
      encodeMetadataRequest(
        w,
        { topics: names === null ? null : names.map((name) => ({ name })), allowAutoTopicCreation: false },
        v,
      ),
    );
    const res = decodeMetadataResponse(r, v);
    check(
      "describeTopics",
      res.topics.map((t) => item(t.name ?? "", t.errorCode, null)),
    );
    return res.topics.map((t) => ({
      name: t.name ?? "",
      topicId: uuidToString(t.topicId),
      internal: t.isInternal,
      partitions: t.partitions
        .map((p) => ({ partition: p.partitionIndex, leader: p.leaderId, replicas: p.replicaNodes, isr: p.isrNodes }))
        .sort((a, b) => a.partition - b.partition),
    }));
  }

  async listTopics(): Promise<string[]> {
    return (await this.describeTopics(null))
      .filter((t) => !t.internal)
      .map((t) => t.name)
      .sort();
  }

  /** Configs of a topic (resourceType 2) or broker (4). */
  async describeConfigs(resource: { type: "topic" | "broker"; name: string }): Promise<ConfigEntry[]> {
    const conn = await this.cluster.anyConnection();
    const v = conn.version(32, 1, 4);
    const r = await conn.send(32, v, (w) =>
      encodeDescribeConfigsRequest(
        w,
        {
          resources: [
            { resourceType: resource.type === "topic" ? 2 : 4, resourceName: resource.name, configurationKeys: null },
          ],
          includeSynonyms: false,
          includeDocumentation: false,
        },
        v,
      ),
    );
    const res = decodeDescribeConfigsResponse(r, v).results[0]!;
    check("describeConfigs", [item(resource.name, res.errorCode, res.errorMessage)]);
    return res.configs.map((c) => ({
      name: c.name,
      value: c.value,
      source: c.configSource,
      isDefault: c.configSource === 5,
      readOnly: c.readOnly,
    }));
  }

  /** IncrementalAlterConfigs: set (string) or delete (null) individual configs. */
  async alterConfigs(
    resource: { type: "topic" | "broker"; name: string },
    changes: Record<string, string | null>,
  ): Promise<void> {
    const conn = await this.cluster.anyConnection();
    const v = conn.version(44, 0, 1);
    const r = await conn.send(44, v, (w) =>
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
    );
    check(
      "alterConfigs",
      decodeIncrementalAlterConfigsResponse(r, v).responses.map((x) =>
        item(x.resourceName, x.errorCode, x.errorMessage),
      ),
    );
  }

  /** Offsets of every partition of a topic at "earliest", "latest" or a timestamp. */
  async listOffsets(
    topic: string,
    at: "earliest" | "latest" | bigint = "latest",
  ): Promise<{ partition: number; offset: bigint }[]> {
    const partitions = await this.cluster.partitionsOf(topic);
    const timestamp = at === "earliest" ? -2n : at === "latest" ? -1n : at;
    const byLeader = new Map<number, number[]>();
    for (const p of partitions) byLeader.set(p.leader, [...(byLeader.get(p.leader) ?? []), p.partition]);
    const out: { partition: number; offset: bigint }[] = [];
    for (const [leader, ps] of byLeader) {
      const conn = await this.cluster.connectionTo(leader);
      const v = conn.version(2, 1, 7);
      const r = await conn.send(2, v, (w) =>
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
      );
      for (const t of decodeListOffsetsResponse(r, v).topics) {
        check(
          "listOffsets",
          t.partitions.map((p) => item(`${topic}-${p.partitionIndex}`, p.errorCode, null)),
        );
        for (const p of t.partitions) out.push({ partition: p.partitionIndex, offset: p.offset });
      }
    }
    return out.sort((a, b) => a.partition - b.partition);
  }

  /** DeleteRecords: moves each partition's log start offset to `before`. */
  async deleteRecords(topic: string, before: Record<number, bigint>): Promise<void> {
    const partitions = await this.cluster.partitionsOf(topic);
    for (const [p, offset] of Object.entries(before)) {
      const leader = partitions.find((x) => x.partition === Number(p))?.leader ?? -1;
      if (leader < 0)
        throw new AdminError("deleteRecords", [item(`${topic}-${p}`, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, null)]);
      const conn = await this.cluster.connectionTo(leader);
      const v = conn.version(21, 0, 2);
      const r = await conn.send(21, v, (w) =>
        encodeDeleteRecordsRequest(
          w,
          { topics: [{ name: topic, partitions: [{ partitionIndex: Number(p), offset }] }], timeoutMs: this.timeoutMs },
          v,
        ),
      );
      for (const t of decodeDeleteRecordsResponse(r, v).topics)
        check(
          "deleteRecords",
          t.partitions.map((x) => item(`${topic}-${x.partitionIndex}`, x.errorCode, null)),
        );
    }
  }

  /** Consumer groups known to the brokers, with their state. */
  async listGroups(): Promise<{ groupId: string; protocolType: string; state: string }[]> {
    const conn = await this.cluster.anyConnection();
    const v = conn.version(16, 0, 4);
    const r = await conn.send(16, v, (w) => encodeListGroupsRequest(w, { statesFilter: [] }, v));
    const res = decodeListGroupsResponse(r, v);
    check("listGroups", [item("groups", res.errorCode, null)]);
    return res.groups
      .map((g) => ({ groupId: g.groupId, protocolType: g.protocolType, state: g.groupState }))
      .sort((a, b) => (a.groupId < b.groupId ? -1 : 1));
  }

  private async coordinatorFor(groupId: string) {
    const any = await this.cluster.anyConnection();
    const v = any.version(10, 1, 3);
    const r = await any.send(10, v, (w) => encodeFindCoordinatorRequest(w, { key: groupId, keyType: 0 }, v));
    const res = decodeFindCoordinatorResponse(r, v);
    check("findCoordinator", [item(groupId, res.errorCode, res.errorMessage)]);
    return this.cluster.connection(res.host, res.port);
  }

  /** A group's state and members (member id, client id, host). */
  async describeGroup(groupId: string): Promise<{
    groupId: string;
    state: string;
    protocol: string;
    members: { memberId: string; clientId: string; clientHost: string; groupInstanceId: string | null }[];
  }> {
    const conn = await this.coordinatorFor(groupId);
    const v = conn.version(15, 0, 4);
    const r = await conn.send(15, v, (w) =>
      encodeDescribeGroupsRequest(w, { groups: [groupId], includeAuthorizedOperations: false }, v),
    );
    const g = decodeDescribeGroupsResponse(r, v).groups[0]!;
    check("describeGroup", [item(groupId, g.errorCode, null)]);
    return {
      groupId,
      state: g.groupState,
      protocol: g.protocolData,
      members: g.members.map((m) => ({
        memberId: m.memberId,
        clientId: m.clientId,
        clientHost: m.clientHost,
        groupInstanceId: m.groupInstanceId,
      })),
    };
  }

  /** Committed offsets of a group (every partition it committed). */
  async groupOffsets(
    groupId: string,
  ): Promise<{ topic: string; partition: number; offset: bigint; metadata: string }[]> {
    const conn = await this.coordinatorFor(groupId);
    const v = conn.version(9, 2, 7);
    const r = await conn.send(9, v, (w) => encodeOffsetFetchRequest(w, { groupId, topics: null }, v));
    const res = decodeOffsetFetchResponse(r, v);
    check("groupOffsets", [item(groupId, res.errorCode, null)]);
    return res.topics
      .flatMap((t) =>
        t.partitions.map((p) => ({
          topic: t.name,
          partition: p.partitionIndex,
          offset: p.committedOffset,
          metadata: p.metadata ?? "",
        })),
      )
      .sort((a, b) => (a.topic === b.topic ? a.partition - b.partition : a.topic < b.topic ? -1 : 1));
  }

  close(): Promise<void> {
    return this.cluster.close();
  }
}
