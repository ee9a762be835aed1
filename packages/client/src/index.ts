// @sluice/client: a Kafka client for Node.js (producer, consumer with manual assignment; groups and admin to come).
export { Cluster, parseBootstrap } from "./cluster.ts";
export { Connection } from "./connection.ts";
export { Consumer, type ConsumerOptions, type ConsumerRecord } from "./consumer.ts";
export * from "./errors.ts";
export { keyedPartition, murmur2, type Partitioner, StickyPartitioner } from "./partitioner.ts";
export { Producer, type ProducerOptions, type ProducerRecord, type RecordMetadata } from "./producer.ts";
