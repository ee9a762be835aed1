// @sluice/client: a Kafka client for Node.js: producer (batching, idempotence, transactions),
// consumer (manual assignment and consumer groups) and admin.
export {
  Admin,
  type AdminOptions,
  type ConfigEntry,
  type ConfigResource,
  type GroupDescription,
  type GroupOffset,
  type NewTopic,
  type TopicDescription,
} from "./admin.ts";
export {
  type AssignorName,
  assign,
  decodeAssignment,
  decodeSubscription,
  encodeAssignment,
  encodeSubscription,
  type TopicPartition,
} from "./assignors.ts";
export { Cluster, parseBootstrap } from "./cluster.ts";
export { Connection } from "./connection.ts";
export {
  Consumer,
  type ConsumerOptions,
  type ConsumerRecord,
  type EachBatchPayload,
  type EachMessagePayload,
  type RebalanceListener,
  type RunOptions,
} from "./consumer.ts";
export * from "./errors.ts";
export { fromJavaProperties, parseJavaProperties } from "./options.ts";
export { keyedPartition, murmur2, type Partitioner, type PartitionerArgs, StickyPartitioner } from "./partitioner.ts";
export {
  type ConsumerGroupMetadata,
  type Message,
  Producer,
  type ProducerOptions,
  type ProducerRecord,
  type RecordMetadata,
  type SendOptions,
  Transaction,
} from "./producer.ts";
