// @sluice/client: a Kafka client for Node.js (producer, consumer with manual assignment, admin; consumer groups to come).
export { Admin, AdminError, type AdminOptions, type ConfigEntry, type TopicDescription } from "./admin.ts";
export { Cluster, parseBootstrap } from "./cluster.ts";
export { Connection } from "./connection.ts";
export { Consumer, type ConsumerOptions, type ConsumerRecord } from "./consumer.ts";
export * from "./errors.ts";
export { keyedPartition, murmur2, type Partitioner, StickyPartitioner } from "./partitioner.ts";
export { Producer, type ProducerOptions, type ProducerRecord, type RecordMetadata } from "./producer.ts";
