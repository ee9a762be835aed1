// The coordinators that plug into the broker (each adds its handlers and background work).
import type { BrokerPlugin } from "./broker.ts";
import { groupCoordinatorPlugin } from "./group/plugin.ts";

export function defaultPlugins(): BrokerPlugin[] {
  return [groupCoordinatorPlugin()];
}
