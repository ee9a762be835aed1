// Shared helpers of the group handlers: the coordinator is registered as the "groups" service.
import type { BrokerContext } from "../context.ts";
import type { GroupCoordinator } from "./coordinator.ts";
import type { OffsetsTopicStore } from "./persistence.ts";

export function groups(b: BrokerContext): GroupCoordinator {
  const g = b.services.get("groups") as GroupCoordinator | undefined;
  if (!g) throw new Error("group coordinator is not running");
  return g;
}

export function offsetsStore(b: BrokerContext): OffsetsTopicStore {
  return b.services.get("offsetsStore") as OffsetsTopicStore;
}
