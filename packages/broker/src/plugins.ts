// The coordinators that plug into the broker (each adds its handlers and background work).
import type { BrokerPlugin } from "./broker.ts";
import { groupCoordinatorPlugin } from "./group/plugin.ts";
import { transactionsPlugin } from "./txn/plugin.ts";

export function defaultPlugins(): BrokerPlugin[] {
  // Groups first: the transaction coordinator writes markers that settle transactional offsets.
  return [groupCoordinatorPlugin(), transactionsPlugin()];
}
