// What handlers reach of the broker: its config, identity, topics and coordinators.

import type { Logger } from "pino";
import type { BrokerConfig } from "./config.ts";
import type { VersionRange } from "./handlers/18-api-versions.ts";
import type { TopicManager, TopicState } from "./topics.ts";

export interface Clock {
  nowMs(): number;
}

export interface BrokerContext {
  readonly config: BrokerConfig;
  readonly nodeId: number;
  /** The host and port clients are told to connect to. */
  readonly advertisedHost: string;
  readonly advertisedPort: number;
  readonly topics: TopicManager;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly logDirs: readonly string[];
  /** Creates a topic on first use when auto.create.topics.enable allows it; null otherwise. */
  autoCreateTopic(name: string): Promise<TopicState | null>;
  /** The APIs this broker serves with their version ranges (what ApiVersions advertises). */
  readonly apis: readonly VersionRange[];
  /** Services registered by the coordinators (group, transaction), by name. */
  readonly services: Map<string, unknown>;
}
