// Plugs the group coordinator into the broker: its handlers, loading __consumer_offsets at start,
// and the periodic expiry of old offsets (every offsets.retention.check.interval.ms).

import type { BrokerPlugin } from "../broker.ts";
import { toSafeNumber } from "../config.ts";
import type { BrokerContext } from "../context.ts";
import { offsetCommitHandler } from "../handlers/08-offset-commit.ts";
import { offsetFetchHandler } from "../handlers/09-offset-fetch.ts";
import { findCoordinatorHandler } from "../handlers/10-find-coordinator.ts";
import { joinGroupHandler } from "../handlers/11-join-group.ts";
import { heartbeatHandler } from "../handlers/12-heartbeat.ts";
import { leaveGroupHandler } from "../handlers/13-leave-group.ts";
import { syncGroupHandler } from "../handlers/14-sync-group.ts";
import { describeGroupsHandler } from "../handlers/15-describe-groups.ts";
import { listGroupsHandler } from "../handlers/16-list-groups.ts";
import { deleteGroupsHandler } from "../handlers/42-delete-groups.ts";
import { offsetDeleteHandler } from "../handlers/47-offset-delete.ts";
import { GroupCoordinator } from "./coordinator.ts";
import { OffsetsTopicStore } from "./persistence.ts";

export function groupCoordinatorPlugin(): BrokerPlugin {
  let coordinator: GroupCoordinator | null = null;
  let timer: NodeJS.Timeout | null = null;
  return {
    handlers: () => [
      offsetCommitHandler,
      offsetFetchHandler,
      findCoordinatorHandler,
      joinGroupHandler,
      heartbeatHandler,
      leaveGroupHandler,
      syncGroupHandler,
      describeGroupsHandler,
      listGroupsHandler,
      deleteGroupsHandler,
      offsetDeleteHandler,
    ],
    async start(ctx: BrokerContext) {
      const cfg = ctx.config;
      const store = new OffsetsTopicStore(
        ctx.topics,
        cfg.int("offsets.topic.num.partitions"),
        cfg.int("offsets.topic.segment.bytes"),
        ctx.logger,
      );
      coordinator = new GroupCoordinator(
        {
          minSessionTimeoutMs: cfg.int("group.min.session.timeout.ms"),
          maxSessionTimeoutMs: cfg.int("group.max.session.timeout.ms"),
          initialRebalanceDelayMs: cfg.int("group.initial.rebalance.delay.ms"),
          maxSize: cfg.int("group.max.size"),
          offsetsRetentionMs: cfg.int("offsets.retention.minutes") * 60_000,
          offsetMetadataMaxBytes: cfg.int("offset.metadata.max.bytes"),
        },
        store,
        () => ctx.clock.nowMs(),
      );
      await store.load(coordinator);
      coordinator.startTimers();
      ctx.services.set("groups", coordinator);
      ctx.services.set("offsetsStore", store);
      const c = coordinator;
      // setInterval takes at most 2^31 - 1 ms (a longer delay would become 1 ms).
      const everyMs = Math.min(toSafeNumber(cfg.get("offsets.retention.check.interval.ms")), 2 ** 31 - 1);
      timer = setInterval(() => {
        c.expireOffsets().catch((e) => ctx.logger.error({ err: e }, "offset expiry failed"));
      }, everyMs);
      timer.unref();
    },
    async stop() {
      if (timer) clearInterval(timer);
      coordinator?.stop();
    },
  };
}
