// The transaction coordinator: the state of every transactional id, kept in `__transaction_state`.
//
// State machine (Kafka's TransactionState; the numbers are what the log records hold):
//   Empty(0) ──AddPartitions──▶ Ongoing(1) ──EndTxn(commit)──▶ PrepareCommit(2) ──markers──▶ CompleteCommit(4)
//                                        └──EndTxn(abort) / timeout──▶ PrepareAbort(3) ──markers──▶ CompleteAbort(5)
//   Complete* ──AddPartitions──▶ Ongoing;  Complete*/Empty ──InitProducerId──▶ Empty (epoch bumped)
//   Ongoing ──InitProducerId / timeout──▶ PrepareEpochFence(7) → PrepareAbort with the epoch bumped.
// Every transition is persisted (TxnLog.append) before it takes effect in memory, so a restart
// replays the log and finishes any transaction left in a Prepare state.
//
// Concurrency: operations on one transactional id are serialised through a per-id promise chain;
// different ids proceed independently. Time comes from the injected clock.

import assert from "node:assert/strict";

export const TxnState = {
  Empty: 0,
  Ongoing: 1,
  PrepareCommit: 2,
  PrepareAbort: 3,
  CompleteCommit: 4,
  CompleteAbort: 5,
  Dead: 6,
  PrepareEpochFence: 7,
} as const;
export type TxnStateId = (typeof TxnState)[keyof typeof TxnState];

export const TXN_STATE_NAMES: Readonly<Record<number, string>> = {
  0: "Empty",
  1: "Ongoing",
  2: "PrepareCommit",
  3: "PrepareAbort",
  4: "CompleteCommit",
  5: "CompleteAbort",
  6: "Dead",
  7: "PrepareEpochFence",
};

const EPOCH_MAX = 32767;

export interface TopicPartition {
  readonly topic: string;
  readonly partition: number;
}

export interface TransactionMetadata {
  readonly transactionalId: string;
  producerId: bigint;
  previousProducerId: bigint;
  producerEpoch: number;
  lastProducerEpoch: number;
  txnTimeoutMs: number;
  state: TxnStateId;
  /** Keyed "topic\u0000partition". */
  partitions: Map<string, TopicPartition>;
  txnStartTimestampMs: bigint;
  txnLastUpdateTimestampMs: bigint;
}

/** The record written to __transaction_state for one transactional id (null = tombstone). */
export interface TxnLogValue {
  readonly producerId: bigint;
  readonly previousProducerId: bigint;
  readonly producerEpoch: number;
  readonly txnTimeoutMs: number;
  readonly state: TxnStateId;
  readonly partitions: readonly TopicPartition[];
  readonly txnStartTimestampMs: bigint;
  readonly txnLastUpdateTimestampMs: bigint;
}

export interface TxnLog {
  append(transactionalId: string, value: TxnLogValue | null): Promise<void>;
}

export interface MarkerWriter {
  /** Writes a COMMIT/ABORT control batch to every partition; resolves when all are in the logs. */
  writeMarkers(
    producerId: bigint,
    producerEpoch: number,
    coordinatorEpoch: number,
    commit: boolean,
    partitions: readonly TopicPartition[],
  ): Promise<void>;
}

export interface ProducerIdAllocator {
  next(): Promise<bigint>;
}

export type TxnError =
  | "NONE"
  | "INVALID_TRANSACTION_TIMEOUT"
  | "CONCURRENT_TRANSACTIONS"
  | "PRODUCER_FENCED"
  | "INVALID_PRODUCER_ID_MAPPING"
  | "INVALID_TXN_STATE"
  | "TRANSACTIONAL_ID_NOT_FOUND"
  | "INVALID_PRODUCER_EPOCH";

export interface TxnCoordinatorConfig {
  /** transaction.max.timeout.ms (Kafka default 900000). */
  readonly transactionMaxTimeoutMs: number;
  /** transactional.id.expiration.ms (Kafka default 604800000). */
  readonly transactionalIdExpirationMs: number;
}

export interface Clock {
  nowMs(): number;
}

const isComplete = (s: TxnStateId): boolean => s === TxnState.CompleteCommit || s === TxnState.CompleteAbort;

const key = (tp: TopicPartition): string => `${tp.topic}\u0000${tp.partition}`;

export class TransactionCoordinator {
  private readonly txns = new Map<string, TransactionMetadata>();
  private readonly chains = new Map<string, Promise<unknown>>();
  private readonly config: TxnCoordinatorConfig;
  private readonly log: TxnLog;
  private readonly markers: MarkerWriter;
  private readonly ids: ProducerIdAllocator;
  private readonly clock: Clock;
  /** Bumped on every load; stamped on markers so stale coordinators' markers can be told apart. */
  coordinatorEpoch = 0;

  constructor(
    config: TxnCoordinatorConfig,
    log: TxnLog,
    markers: MarkerWriter,
    ids: ProducerIdAllocator,
    clock: Clock,
  ) {
    this.config = config;
    this.log = log;
    this.markers = markers;
    this.ids = ids;
    this.clock = clock;
  }

  get(transactionalId: string): TransactionMetadata | undefined {
    return this.txns.get(transactionalId);
  }

  list(): TransactionMetadata[] {
    return [...this.txns.values()];
  }

  /** Runs `fn` after every earlier operation on the same transactional id. */
  private serial<T>(transactionalId: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.chains.get(transactionalId) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const settled = next.catch(() => {});
    this.chains.set(transactionalId, settled);
    void settled.then(() => {
      if (this.chains.get(transactionalId) === settled) this.chains.delete(transactionalId);
    });
    return next;
  }

  private now(): bigint {
    return BigInt(this.clock.nowMs());
  }

  private async persist(m: TransactionMetadata, next: Partial<TransactionMetadata>): Promise<void> {
    const merged = { ...m, ...next };
    await this.log.append(m.transactionalId, {
      producerId: merged.producerId,
      previousProducerId: merged.previousProducerId,
      producerEpoch: merged.producerEpoch,
      txnTimeoutMs: merged.txnTimeoutMs,
      state: merged.state,
      partitions: [...merged.partitions.values()],
      txnStartTimestampMs: merged.txnStartTimestampMs,
      txnLastUpdateTimestampMs: merged.txnLastUpdateTimestampMs,
    });
    Object.assign(m, next);
  }

  /** InitProducerId for a transactional id (KIP-98, with KIP-360 epoch bumps). */
  initProducerId(
    transactionalId: string,
    txnTimeoutMs: number,
    expected?: { producerId: bigint; producerEpoch: number },
  ): Promise<{ error: TxnError; producerId: bigint; producerEpoch: number }> {
    const fail = (error: TxnError): { error: TxnError; producerId: bigint; producerEpoch: number } => ({
      error,
      producerId: -1n,
      producerEpoch: -1,
    });
    if (txnTimeoutMs <= 0 || txnTimeoutMs > this.config.transactionMaxTimeoutMs) {
      return Promise.resolve(fail("INVALID_TRANSACTION_TIMEOUT"));
    }
    return this.serial(transactionalId, async () => {
      const now = this.now();
      let m = this.txns.get(transactionalId);
      if (m === undefined || m.state === TxnState.Dead) {
        const producerId = await this.ids.next();
        m = {
          transactionalId,
          producerId,
          previousProducerId: -1n,
          producerEpoch: -1,
          lastProducerEpoch: -1,
          txnTimeoutMs,
          state: TxnState.Empty,
          partitions: new Map(),
          txnStartTimestampMs: -1n,
          txnLastUpdateTimestampMs: now,
        };
        await this.persist(m, { producerEpoch: 0, txnTimeoutMs });
        this.txns.set(transactionalId, m);
        return { error: "NONE", producerId: m.producerId, producerEpoch: m.producerEpoch };
      }
      if (expected && expected.producerId >= 0n) {
        // KIP-360 (Kafka's isValidProducerId): the producer sends the id and epoch it has. The
        // current id is checked for its epoch below; the previous id is a retry of a rotation to
        // a new id (its epoch was exhausted) whose answer was lost: answer it again.
        const retriedRotation = expected.producerId === m.previousProducerId && expected.producerEpoch >= EPOCH_MAX - 1;
        if (retriedRotation && (m.state === TxnState.Empty || isComplete(m.state)))
          return { error: "NONE", producerId: m.producerId, producerEpoch: m.producerEpoch };
        if (expected.producerId !== m.producerId) return fail("PRODUCER_FENCED");
        // Kafka's prepareIncrementProducerEpoch: the current epoch is bumped, the previous one is a
        // retry of a bump whose answer was lost (answered with the current epoch), older is fenced.
        if (expected.producerEpoch !== m.producerEpoch) {
          if (expected.producerEpoch === m.lastProducerEpoch && (m.state === TxnState.Empty || isComplete(m.state)))
            return { error: "NONE", producerId: m.producerId, producerEpoch: m.producerEpoch };
          return fail("PRODUCER_FENCED");
        }
      }
      switch (m.state) {
        case TxnState.PrepareCommit:
        case TxnState.PrepareAbort:
        case TxnState.PrepareEpochFence:
          return fail("CONCURRENT_TRANSACTIONS");
        case TxnState.Ongoing:
          // A new producer instance takes over: fence the old one and abort its transaction.
          // The client retries on CONCURRENT_TRANSACTIONS and then gets the bumped epoch.
          await this.abortWithEpochBump(m);
          return fail("CONCURRENT_TRANSACTIONS");
        default: {
          const bumped = await this.bumpEpoch(m);
          await this.persist(m, {
            ...bumped,
            txnTimeoutMs,
            state: TxnState.Empty,
            partitions: new Map(),
            txnStartTimestampMs: -1n,
            txnLastUpdateTimestampMs: now,
          });
          return { error: "NONE", producerId: m.producerId, producerEpoch: m.producerEpoch };
        }
      }
    });
  }

  /** The next epoch, or a new producer id once the epoch would overflow. */
  private async bumpEpoch(m: TransactionMetadata): Promise<Partial<TransactionMetadata>> {
    if (m.producerEpoch >= EPOCH_MAX - 1) {
      return {
        previousProducerId: m.producerId,
        lastProducerEpoch: m.producerEpoch,
        producerId: await this.ids.next(),
        producerEpoch: 0,
      };
    }
    return { lastProducerEpoch: m.producerEpoch, producerEpoch: m.producerEpoch + 1 };
  }

  private async abortWithEpochBump(m: TransactionMetadata): Promise<void> {
    // Kafka's prepareFenceProducerEpoch: the fencing epoch is never handed to a producer, so it
    // leaves no "last epoch" that a KIP-360 retry could claim.
    const bumped = { ...(await this.bumpEpoch(m)), lastProducerEpoch: -1 };
    await this.persist(m, { state: TxnState.PrepareEpochFence, txnLastUpdateTimestampMs: this.now() });
    await this.persist(m, { ...bumped, state: TxnState.PrepareAbort, txnLastUpdateTimestampMs: this.now() });
    await this.completeTransaction(m, false);
  }

  private validateProducer(m: TransactionMetadata | undefined, producerId: bigint, producerEpoch: number): TxnError {
    if (m === undefined || m.state === TxnState.Dead) return "INVALID_PRODUCER_ID_MAPPING";
    if (m.producerId !== producerId) return "INVALID_PRODUCER_ID_MAPPING";
    if (m.producerEpoch !== producerEpoch) return "PRODUCER_FENCED";
    return "NONE";
  }

  /** AddPartitionsToTxn / AddOffsetsToTxn: one error for the whole request, as Kafka gives. */
  addPartitions(
    transactionalId: string,
    producerId: bigint,
    producerEpoch: number,
    partitions: readonly TopicPartition[],
  ): Promise<TxnError> {
    return this.serial(transactionalId, async () => {
      const m = this.txns.get(transactionalId);
      const invalid = this.validateProducer(m, producerId, producerEpoch);
      if (invalid !== "NONE" || m === undefined) return invalid;
      if (
        m.state === TxnState.PrepareCommit ||
        m.state === TxnState.PrepareAbort ||
        m.state === TxnState.PrepareEpochFence
      ) {
        return "CONCURRENT_TRANSACTIONS";
      }
      const missing = partitions.filter((tp) => !m.partitions.has(key(tp)));
      if (missing.length === 0 && m.state === TxnState.Ongoing) return "NONE";
      const next = new Map(m.partitions);
      for (const tp of missing) next.set(key(tp), tp);
      const now = this.now();
      await this.persist(m, {
        state: TxnState.Ongoing,
        partitions: next,
        txnStartTimestampMs: m.state === TxnState.Ongoing ? m.txnStartTimestampMs : now,
        txnLastUpdateTimestampMs: now,
      });
      return "NONE";
    });
  }

  /** Whether `tp` is part of the ongoing transaction of this producer (KIP-890 verification). */
  isPartOfOngoingTransaction(
    transactionalId: string,
    producerId: bigint,
    producerEpoch: number,
    tp: TopicPartition,
  ): boolean {
    const m = this.txns.get(transactionalId);
    return (
      m !== undefined &&
      m.state === TxnState.Ongoing &&
      m.producerId === producerId &&
      m.producerEpoch === producerEpoch &&
      m.partitions.has(key(tp))
    );
  }

  endTxn(transactionalId: string, producerId: bigint, producerEpoch: number, commit: boolean): Promise<TxnError> {
    return this.serial(transactionalId, async () => {
      const m = this.txns.get(transactionalId);
      if (m === undefined) return "INVALID_PRODUCER_ID_MAPPING";
      if (m.producerId !== producerId) return "INVALID_PRODUCER_ID_MAPPING";
      // Strict epoch equality, as Kafka enforces for clients: a producer whose epoch was bumped
      // (fenced by a new instance, or its transaction timed out) is PRODUCER_FENCED.
      if (m.producerEpoch !== producerEpoch) return "PRODUCER_FENCED";
      // A retry of an EndTxn that already completed succeeds; the opposite outcome is refused.
      if (m.state === TxnState.CompleteCommit) return commit ? "NONE" : "INVALID_TXN_STATE";
      if (m.state === TxnState.CompleteAbort) return commit ? "INVALID_TXN_STATE" : "NONE";
      switch (m.state) {
        case TxnState.Ongoing:
          await this.persist(m, {
            state: commit ? TxnState.PrepareCommit : TxnState.PrepareAbort,
            txnLastUpdateTimestampMs: this.now(),
          });
          await this.completeTransaction(m, commit);
          return "NONE";
        case TxnState.PrepareCommit:
        case TxnState.PrepareAbort:
        case TxnState.PrepareEpochFence:
          return "CONCURRENT_TRANSACTIONS";
        default:
          return "INVALID_TXN_STATE";
      }
    });
  }

  /** Writes the markers of a transaction in a Prepare state and records its completion. */
  private async completeTransaction(m: TransactionMetadata, commit: boolean): Promise<void> {
    assert.ok(m.state === TxnState.PrepareCommit || m.state === TxnState.PrepareAbort);
    await this.markers.writeMarkers(m.producerId, m.producerEpoch, this.coordinatorEpoch, commit, [
      ...m.partitions.values(),
    ]);
    await this.persist(m, {
      state: commit ? TxnState.CompleteCommit : TxnState.CompleteAbort,
      partitions: new Map(),
      txnLastUpdateTimestampMs: this.now(),
    });
  }

  /** Aborts transactions open longer than their timeout (fencing the producer); returns how many. */
  async abortTimedOut(): Promise<number> {
    const now = this.now();
    const expired = [...this.txns.values()].filter(
      (m) => m.state === TxnState.Ongoing && m.txnStartTimestampMs + BigInt(m.txnTimeoutMs) < now,
    );
    await Promise.all(
      expired.map((m) =>
        this.serial(m.transactionalId, async () => {
          if (m.state === TxnState.Ongoing) await this.abortWithEpochBump(m);
        }),
      ),
    );
    return expired.length;
  }

  /** Removes transactional ids idle beyond transactional.id.expiration.ms (tombstones them). */
  async expireIds(): Promise<number> {
    const now = this.now();
    const limit = BigInt(this.config.transactionalIdExpirationMs);
    let n = 0;
    for (const m of [...this.txns.values()]) {
      const idle =
        m.state === TxnState.Empty || m.state === TxnState.CompleteCommit || m.state === TxnState.CompleteAbort;
      if (idle && now - m.txnLastUpdateTimestampMs > limit) {
        await this.serial(m.transactionalId, async () => {
          await this.log.append(m.transactionalId, null);
          this.txns.delete(m.transactionalId);
        });
        n++;
      }
    }
    return n;
  }

  /** Loads the state replayed from __transaction_state (last value per id) and finishes Prepare states. */
  async load(entries: ReadonlyMap<string, TxnLogValue | null>): Promise<void> {
    this.coordinatorEpoch++;
    this.txns.clear();
    for (const [transactionalId, v] of entries) {
      if (v === null) continue;
      this.txns.set(transactionalId, {
        transactionalId,
        producerId: v.producerId,
        previousProducerId: v.previousProducerId,
        producerEpoch: v.producerEpoch,
        lastProducerEpoch: -1,
        txnTimeoutMs: v.txnTimeoutMs,
        state: v.state,
        partitions: new Map(v.partitions.map((tp) => [key(tp), tp])),
        txnStartTimestampMs: v.txnStartTimestampMs,
        txnLastUpdateTimestampMs: v.txnLastUpdateTimestampMs,
      });
    }
    for (const m of this.txns.values()) {
      if (m.state === TxnState.PrepareCommit || m.state === TxnState.PrepareAbort) {
        await this.serial(m.transactionalId, () => this.completeTransaction(m, m.state === TxnState.PrepareCommit));
      } else if (m.state === TxnState.PrepareEpochFence) {
        await this.serial(m.transactionalId, async () => {
          // The fence was recorded but the bumped epoch was not: bump it now, then abort.
          await this.persist(m, { ...(await this.bumpEpoch(m)), state: TxnState.PrepareAbort });
          await this.completeTransaction(m, false);
        });
      }
    }
  }
}
