// The APIs the broker tests speak, as request encoder + response decoder pairs.

import type { Input, Reader, Writer } from "@sluice/protocol";
import {
  decodeAlterConfigsResponse,
  decodeApiVersionsResponse,
  decodeCreatePartitionsResponse,
  decodeCreateTopicsResponse,
  decodeDeleteRecordsResponse,
  decodeDeleteTopicsResponse,
  decodeDescribeClusterResponse,
  decodeDescribeConfigsResponse,
  decodeDescribeLogDirsResponse,
  decodeFetchResponse,
  decodeIncrementalAlterConfigsResponse,
  decodeListOffsetsResponse,
  decodeMetadataResponse,
  decodeOffsetForLeaderEpochResponse,
  decodeProduceResponse,
  decodeSaslAuthenticateResponse,
  decodeSaslHandshakeResponse,
  encodeAlterConfigsRequest,
  encodeApiVersionsRequest,
  encodeCreatePartitionsRequest,
  encodeCreateTopicsRequest,
  encodeDeleteRecordsRequest,
  encodeDeleteTopicsRequest,
  encodeDescribeClusterRequest,
  encodeDescribeConfigsRequest,
  encodeDescribeLogDirsRequest,
  encodeFetchRequest,
  encodeIncrementalAlterConfigsRequest,
  encodeListOffsetsRequest,
  encodeMetadataRequest,
  encodeOffsetForLeaderEpochRequest,
  encodeProduceRequest,
  encodeSaslAuthenticateRequest,
  encodeSaslHandshakeRequest,
} from "@sluice/protocol";

/** One API's request encoder and response decoder. */
export interface Api<Req, Res> {
  readonly key: number;
  readonly encode: (w: Writer, v: Input<Req>, version: number) => void;
  readonly decode: (r: Reader, version: number) => Res;
}

export function api<Req, Res>(
  key: number,
  encode: (w: Writer, v: Input<Req>, version: number) => void,
  decode: (r: Reader, version: number) => Res,
): Api<Req, Res> {
  return { key, encode, decode };
}

export const Produce = api(0, encodeProduceRequest, decodeProduceResponse);
export const Fetch = api(1, encodeFetchRequest, decodeFetchResponse);
export const ListOffsets = api(2, encodeListOffsetsRequest, decodeListOffsetsResponse);
export const Metadata = api(3, encodeMetadataRequest, decodeMetadataResponse);
export const SaslHandshake = api(17, encodeSaslHandshakeRequest, decodeSaslHandshakeResponse);
export const ApiVersions = api(18, encodeApiVersionsRequest, decodeApiVersionsResponse);
export const CreateTopics = api(19, encodeCreateTopicsRequest, decodeCreateTopicsResponse);
export const DeleteTopics = api(20, encodeDeleteTopicsRequest, decodeDeleteTopicsResponse);
export const DeleteRecords = api(21, encodeDeleteRecordsRequest, decodeDeleteRecordsResponse);
export const OffsetForLeaderEpoch = api(23, encodeOffsetForLeaderEpochRequest, decodeOffsetForLeaderEpochResponse);
export const DescribeConfigs = api(32, encodeDescribeConfigsRequest, decodeDescribeConfigsResponse);
export const AlterConfigs = api(33, encodeAlterConfigsRequest, decodeAlterConfigsResponse);
export const DescribeLogDirs = api(35, encodeDescribeLogDirsRequest, decodeDescribeLogDirsResponse);
export const SaslAuthenticate = api(36, encodeSaslAuthenticateRequest, decodeSaslAuthenticateResponse);
export const CreatePartitions = api(37, encodeCreatePartitionsRequest, decodeCreatePartitionsResponse);
export const IncrementalAlterConfigs = api(
  44,
  encodeIncrementalAlterConfigsRequest,
  decodeIncrementalAlterConfigsResponse,
);
export const DescribeCluster = api(60, encodeDescribeClusterRequest, decodeDescribeClusterResponse);
