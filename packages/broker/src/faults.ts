// Fault injection for tests, in the spirit of franz-go's kfake ControlKey: the next request(s) of
// an API key are answered with an error code, delayed, or cut off by closing the connection.
//
//   const broker = await startBroker();
//   broker.faults.next(ApiKey.Produce, { errorCode: ErrorCode.NOT_LEADER_OR_FOLLOWER });
//   broker.faults.next(ApiKey.Fetch, { delayMs: 500, count: 3 });
//   broker.faults.next(ApiKey.Heartbeat, { dropConnection: true });
//
// How it works: the broker's dispatch table is built with every handler wrapped (the
// `wrapHandler` option of Broker), so a fault sees the decoded request after the dispatcher has
// checked the version, and answers through the handler's own encoder: an injected error is a
// valid response of the version the client sent. Faults of one API key are consulted in the order
// they were added; the first whose `match` accepts the request (and whose count is not used up)
// applies to it. Requests of keys without a pending fault cost one Map lookup.
//
// Order of effects on a request that a fault hits: `delayMs` first (the request waits before it is
// handled; responses on the connection stay in request order, so later requests on the same
// connection wait too), then `dropConnection` ("beforeHandling" or true: closed without handling
// it; "afterHandling": handled, e.g. appended, then closed instead of answered — the outcome a
// client cannot know), else `errorCode` (answered with that error without handling it, so nothing
// is appended or committed), else the request is handled normally (a pure delay).
//
// Error responses are built per API, with the code in every top-level, topic and partition error
// field of the response: ERROR_RESPONSE_APIS lists the APIs supported. For the others, delays and
// dropped connections work; an errorCode is refused when the fault is added. A Produce with acks=0
// gets no response, so an injected error closes its connection, as Kafka does when an acks=0
// produce fails.

import type {
  FetchRequest,
  FetchResponse,
  FindCoordinatorRequest,
  FindCoordinatorResponse,
  Input,
  JoinGroupRequest,
  JoinGroupResponse,
  ListOffsetsRequest,
  ListOffsetsResponse,
  MetadataRequest,
  MetadataResponse,
  OffsetCommitRequest,
  OffsetCommitResponse,
  OffsetFetchRequest,
  OffsetFetchResponse,
  ProduceRequest,
  ProduceResponse,
} from "@sluice/protocol";
import { ApiKey } from "@sluice/protocol";
import { type AnyHandler, CloseConnection, type RequestContext } from "./handlers/types.ts";

export interface FaultSpec {
  /** Answer with this Kafka error code (ErrorCode.X) instead of handling the request. */
  readonly errorCode?: number;
  /** Wait this long before handling (or failing) the request. */
  readonly delayMs?: number;
  /**
   * Close the connection: `true` / "beforeHandling" without handling the request,
   * "afterHandling" after handling it (the response is lost).
   */
  readonly dropConnection?: boolean | "beforeHandling" | "afterHandling";
  /** How many matching requests this fault applies to (default 1; Infinity for all of them). */
  readonly count?: number;
  /** Only requests this accepts are hit (gets the decoded request of the API's type). */
  readonly match?: (request: unknown, ctx: RequestContext) => boolean;
}

/** A fault waiting for requests; returned by FaultInjector.next. */
export interface Fault {
  readonly apiKey: number;
  /** Requests this fault has hit so far. */
  readonly hits: number;
  /** Requests it will still hit (0 once used up or cancelled). */
  readonly remaining: number;
  /** Resolves when the fault is used up (or cancelled). */
  readonly done: Promise<void>;
  /** Removes the fault; requests are handled normally again. */
  cancel(): void;
}

type ErrorResponder = (
  req: unknown,
  errorCode: number,
  ctx: RequestContext,
  handler: AnyHandler,
) => unknown | Promise<unknown>;

/** Builds each API's error response from its request, for the version in ctx.apiVersion. */
const ERROR_RESPONSES: ReadonlyMap<number, ErrorResponder> = new Map<number, ErrorResponder>([
  [
    ApiKey.Produce,
    (r, errorCode): Input<ProduceResponse> | null => {
      const req = r as ProduceRequest;
      if (req.acks === 0) throw new CloseConnection("injected fault on an acks=0 produce");
      return {
        throttleTimeMs: 0,
        responses: req.topicData.map((t) => ({
          name: t.name,
          partitionResponses: t.partitionData.map((p) => ({
            index: p.index,
            errorCode,
            baseOffset: -1n,
            logAppendTimeMs: -1n,
            logStartOffset: -1n,
          })),
        })),
      };
    },
  ],
  [
    ApiKey.Fetch,
    (r, errorCode): Input<FetchResponse> => {
      const req = r as FetchRequest;
      return {
        throttleTimeMs: 0,
        errorCode,
        sessionId: 0,
        responses: req.topics.map((t) => ({
          topic: t.topic,
          topicId: t.topicId,
          partitions: t.partitions.map((p) => ({
            partitionIndex: p.partition,
            errorCode,
            highWatermark: -1n,
            lastStableOffset: -1n,
            logStartOffset: -1n,
            abortedTransactions: null,
            records: null,
          })),
        })),
      };
    },
  ],
  [
    ApiKey.ListOffsets,
    (r, errorCode): Input<ListOffsetsResponse> => {
      const req = r as ListOffsetsRequest;
      return {
        throttleTimeMs: 0,
        topics: req.topics.map((t) => ({
          name: t.name,
          partitions: t.partitions.map((p) => ({
            partitionIndex: p.partitionIndex,
            errorCode,
            timestamp: -1n,
            offset: -1n,
          })),
        })),
      };
    },
  ],
  [
    ApiKey.Metadata,
    // The real answer (brokers, topics, partitions; never auto-creating) with the error in every
    // topic and partition, so that clients keep the broker list.
    async (r, errorCode, ctx, handler): Promise<Input<MetadataResponse>> => {
      const req = r as MetadataRequest;
      const real = (await handler.handle({ ...req, allowAutoTopicCreation: false }, ctx)) as Input<MetadataResponse>;
      return {
        ...real,
        topics: (real.topics ?? []).map((t) => ({
          ...t,
          errorCode,
          partitions: (t.partitions ?? []).map((p) => ({ ...p, errorCode })),
        })),
      };
    },
  ],
  [
    ApiKey.OffsetCommit,
    (r, errorCode): Input<OffsetCommitResponse> => {
      const req = r as OffsetCommitRequest;
      return {
        throttleTimeMs: 0,
        topics: req.topics.map((t) => ({
          name: t.name,
          partitions: t.partitions.map((p) => ({ partitionIndex: p.partitionIndex, errorCode })),
        })),
      };
    },
  ],
  [
    ApiKey.OffsetFetch,
    (r, errorCode, ctx): Input<OffsetFetchResponse> => {
      const req = r as OffsetFetchRequest;
      const partitions = (ts: readonly { name: string; partitionIndexes: readonly number[] }[] | null) =>
        (ts ?? []).map((t) => ({
          name: t.name,
          partitions: t.partitionIndexes.map((partitionIndex) => ({
            partitionIndex,
            committedOffset: -1n,
            committedLeaderEpoch: -1,
            metadata: "",
            errorCode,
          })),
        }));
      if (ctx.apiVersion >= 8)
        return {
          throttleTimeMs: 0,
          groups: req.groups.map((g) => ({ groupId: g.groupId, topics: partitions(g.topics), errorCode })),
        };
      return { throttleTimeMs: 0, errorCode, topics: partitions(req.topics) };
    },
  ],
  [
    ApiKey.FindCoordinator,
    (r, errorCode, ctx): Input<FindCoordinatorResponse> => {
      const req = r as FindCoordinatorRequest;
      const none = { nodeId: -1, host: "", port: -1, errorCode, errorMessage: "injected fault" };
      if (ctx.apiVersion >= 4)
        return { throttleTimeMs: 0, coordinators: req.coordinatorKeys.map((key) => ({ key, ...none })) };
      return { throttleTimeMs: 0, ...none };
    },
  ],
  [
    ApiKey.JoinGroup,
    (r, errorCode, ctx): Input<JoinGroupResponse> => ({
      throttleTimeMs: 0,
      errorCode,
      generationId: -1,
      // Nullable from v7 only (Kafka answers "" before).
      protocolType: ctx.apiVersion >= 7 ? null : "",
      protocolName: ctx.apiVersion >= 7 ? null : "",
      leader: "",
      memberId: (r as JoinGroupRequest).memberId,
      members: [],
    }),
  ],
  [ApiKey.Heartbeat, (_r, errorCode) => ({ throttleTimeMs: 0, errorCode })],
  [ApiKey.SyncGroup, (_r, errorCode) => ({ throttleTimeMs: 0, errorCode, assignment: new Uint8Array(0) })],
  [ApiKey.LeaveGroup, (_r, errorCode) => ({ throttleTimeMs: 0, errorCode, members: [] })],
  [ApiKey.InitProducerId, (_r, errorCode) => ({ throttleTimeMs: 0, errorCode, producerId: -1n, producerEpoch: -1 })],
  [ApiKey.EndTxn, (_r, errorCode) => ({ throttleTimeMs: 0, errorCode })],
  [ApiKey.AddOffsetsToTxn, (_r, errorCode) => ({ throttleTimeMs: 0, errorCode })],
]);

/** API keys whose requests can be answered with an injected error code. */
export const ERROR_RESPONSE_APIS: readonly number[] = [...ERROR_RESPONSES.keys()].sort((a, b) => a - b);

interface PendingFault {
  readonly apiKey: number;
  readonly spec: FaultSpec;
  remaining: number;
  hits: number;
  resolveDone: () => void;
}

const sleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const onAbort = () => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });

/** The faults of one broker. */
export class FaultInjector {
  private readonly byKey = new Map<number, PendingFault[]>();

  /** Makes the next `count` (default 1) requests of `apiKey` that `match` accepts fail as `spec` says. */
  next(apiKey: number, spec: FaultSpec): Fault {
    const count = spec.count ?? 1;
    if (!(count === Number.POSITIVE_INFINITY || (Number.isInteger(count) && count > 0)))
      throw new RangeError(`fault count must be a positive integer or Infinity, got ${count}`);
    if (spec.errorCode === undefined && spec.delayMs === undefined && !spec.dropConnection)
      throw new TypeError("a fault needs errorCode, delayMs or dropConnection");
    if (spec.delayMs !== undefined && !(Number.isFinite(spec.delayMs) && spec.delayMs >= 0))
      throw new RangeError(`delayMs must be a non-negative number, got ${spec.delayMs}`);
    if (spec.errorCode !== undefined && !ERROR_RESPONSES.has(apiKey))
      throw new TypeError(
        `error injection is not supported for API key ${apiKey}; supported: ${ERROR_RESPONSE_APIS.join(", ")} (delayMs and dropConnection work for every API)`,
      );
    let resolveDone!: () => void;
    const done = new Promise<void>((r) => {
      resolveDone = r;
    });
    const f: PendingFault = { apiKey, spec, remaining: count, hits: 0, resolveDone };
    const list = this.byKey.get(apiKey) ?? [];
    list.push(f);
    this.byKey.set(apiKey, list);
    return {
      apiKey,
      get hits() {
        return f.hits;
      },
      get remaining() {
        return f.remaining;
      },
      done,
      cancel: () => this.remove(f),
    };
  }

  /** Removes every pending fault. */
  clear(): void {
    for (const list of [...this.byKey.values()]) for (const f of [...list]) this.remove(f);
  }

  /** The pending faults' count, over all API keys. */
  get pending(): number {
    let n = 0;
    for (const list of this.byKey.values()) n += list.length;
    return n;
  }

  private remove(f: PendingFault): void {
    f.remaining = 0;
    const list = this.byKey.get(f.apiKey);
    if (list) {
      const i = list.indexOf(f);
      if (i >= 0) list.splice(i, 1);
      if (list.length === 0) this.byKey.delete(f.apiKey);
    }
    f.resolveDone();
  }

  /** Takes one hit of the first pending fault that applies to this request, if any. */
  private take(apiKey: number, req: unknown, ctx: RequestContext): FaultSpec | null {
    const list = this.byKey.get(apiKey);
    if (!list) return null;
    for (const f of list) {
      if (f.spec.match && !f.spec.match(req, ctx)) continue;
      f.hits++;
      f.remaining--;
      if (f.remaining <= 0) this.remove(f);
      return f.spec;
    }
    return null;
  }

  /** The handler with this injector's faults in front of it (Broker's wrapHandler option). */
  wrap(handler: AnyHandler): AnyHandler {
    const apply = async (spec: FaultSpec, req: unknown, ctx: RequestContext): Promise<unknown> => {
      if (spec.delayMs !== undefined && spec.delayMs > 0) {
        await sleep(spec.delayMs, ctx.signal);
        if (ctx.signal.aborted) throw new CloseConnection("connection closed during an injected delay");
      }
      if (spec.dropConnection === true || spec.dropConnection === "beforeHandling")
        throw new CloseConnection("injected fault: connection dropped");
      if (spec.dropConnection === "afterHandling") {
        await handler.handle(req, ctx);
        throw new CloseConnection("injected fault: connection dropped after handling");
      }
      if (spec.errorCode !== undefined) return ERROR_RESPONSES.get(handler.apiKey)!(req, spec.errorCode, ctx, handler);
      return handler.handle(req, ctx);
    };
    return {
      apiKey: handler.apiKey,
      name: handler.name,
      minVersion: handler.minVersion,
      maxVersion: handler.maxVersion,
      decode: (r, v) => handler.decode(r, v),
      encode: (w, res, v) => handler.encode(w, res, v),
      handle: (req, ctx) => {
        const spec = this.byKey.size === 0 ? null : this.take(handler.apiKey, req, ctx);
        return spec === null ? handler.handle(req, ctx) : apply(spec, req, ctx);
      },
    };
  }
}
