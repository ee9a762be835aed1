// @sluice/protocol: the Kafka wire protocol. Generated message codecs (one module per API under
// ./generated/), wire primitives, headers and framing. Record batches live in ./records/.

export * from "./frame-reader.ts";
export * from "./generated/index.ts";
export * from "./header.ts";
export * from "./primitives.ts";
