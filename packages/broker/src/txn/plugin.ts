// Plugs idempotence and transactions into the broker: InitProducerId, the transaction
// coordinator and its handlers, KIP-890 verification of transactional produce, and the periodic
// abort of timed-out transactions.

import type { BrokerPlugin } from "../broker.ts";
import type { BrokerContext } from "../context.ts";
import type { GroupCoordinator } from "../group/coordinator.ts";
import type { TxnProduceCheck } from "../handlers/00-produce.ts";
import { initProducerIdHandler } from "../handlers/22-init-producer-id.ts";
import { addPartitionsToTxnHandler } from "../handlers/24-add-partitions-to-txn.ts";
import { addOffsetsToTxnHandler } from "../handlers/25-add-offsets-to-txn.ts";
import { endTxnHandler } from "../handlers/26-end-txn.ts";
import { txnOffsetCommitHandler } from "../handlers/28-txn-offset-commit.ts";
import { describeProducersHandler } from "../handlers/61-describe-producers.ts";
import { describeTransactionsHandler } from "../handlers/65-describe-transactions.ts";
import { listTransactionsHandler } from "../handlers/66-list-transactions.ts";
import { FileProducerIdAllocator } from "./producer-id-allocator.ts";
import { LogMarkerWriter, TxnStateStore } from "./state-store.ts";
import { TransactionCoordinator } from "./transaction-coordinator.ts";

/** transaction.abort.timed.out.transaction.cleanup.interval.ms (Kafka: 10 s). */
const ABORT_CHECK_MS = 1_000;

export function transactionsPlugin(): BrokerPlugin {
  let timer: NodeJS.Timeout | null = null;
  return {
    handlers: () => [
      initProducerIdHandler,
      addPartitionsToTxnHandler,
      addOffsetsToTxnHandler,
      endTxnHandler,
      txnOffsetCommitHandler,
      describeProducersHandler,
      describeTransactionsHandler,
      listTransactionsHandler,
    ],
    async start(ctx: BrokerContext) {
      const cfg = ctx.config;
      const store = new TxnStateStore(
        ctx.topics,
        cfg.int("transaction.state.log.num.partitions"),
        cfg.int("transaction.state.log.segment.bytes"),
      );
      const ids = new FileProducerIdAllocator(ctx.logDirs[0]!);
      const coordinator = new TransactionCoordinator(
        {
          transactionMaxTimeoutMs: cfg.int("transaction.max.timeout.ms"),
          transactionalIdExpirationMs: cfg.int("transactional.id.expiration.ms"),
        },
        store,
        new LogMarkerWriter(ctx.topics, () => ctx.services.get("groups") as GroupCoordinator | undefined, ctx.logger),
        ids,
        ctx.clock,
      );
      await coordinator.load(await store.load());
      ctx.services.set("transactions", coordinator);
      ctx.services.set("txnStore", store);
      ctx.services.set("producerIds", ids);
      const check: TxnProduceCheck = (transactionalId, info, topic, partition) =>
        coordinator.isPartOfOngoingTransaction(transactionalId, info.producerId, info.producerEpoch, {
          topic,
          partition,
        });
      ctx.services.set("txnProduceCheck", check);
      timer = setInterval(() => {
        coordinator
          .abortTimedOut()
          .catch((e) => ctx.logger.error({ err: e }, "aborting timed-out transactions failed"));
        coordinator.expireIds().catch((e) => ctx.logger.error({ err: e }, "expiring transactional ids failed"));
        // producer.id.expiration.ms: forget idle producers (never those with an open transaction).
        const now = BigInt(ctx.clock.nowMs());
        const expiration = BigInt(cfg.int("producer.id.expiration.ms"));
        for (const t of ctx.topics.list()) for (const p of t.partitions) p.producers.expire(now, expiration);
      }, ABORT_CHECK_MS);
      timer.unref();
    },
    async stop() {
      if (timer) clearInterval(timer);
    },
  };
}
