// The group and transaction APIs the coordinator tests speak (request encoder + response decoder).

import {
  decodeAddOffsetsToTxnResponse,
  decodeAddPartitionsToTxnResponse,
  decodeDeleteGroupsResponse,
  decodeDescribeGroupsResponse,
  decodeDescribeProducersResponse,
  decodeDescribeTransactionsResponse,
  decodeEndTxnResponse,
  decodeFindCoordinatorResponse,
  decodeHeartbeatResponse,
  decodeInitProducerIdResponse,
  decodeJoinGroupResponse,
  decodeLeaveGroupResponse,
  decodeListGroupsResponse,
  decodeListTransactionsResponse,
  decodeOffsetCommitResponse,
  decodeOffsetDeleteResponse,
  decodeOffsetFetchResponse,
  decodeSyncGroupResponse,
  decodeTxnOffsetCommitResponse,
  encodeAddOffsetsToTxnRequest,
  encodeAddPartitionsToTxnRequest,
  encodeDeleteGroupsRequest,
  encodeDescribeGroupsRequest,
  encodeDescribeProducersRequest,
  encodeDescribeTransactionsRequest,
  encodeEndTxnRequest,
  encodeFindCoordinatorRequest,
  encodeHeartbeatRequest,
  encodeInitProducerIdRequest,
  encodeJoinGroupRequest,
  encodeLeaveGroupRequest,
  encodeListGroupsRequest,
  encodeListTransactionsRequest,
  encodeOffsetCommitRequest,
  encodeOffsetDeleteRequest,
  encodeOffsetFetchRequest,
  encodeSyncGroupRequest,
  encodeTxnOffsetCommitRequest,
} from "@sluice/protocol";
import { api } from "../apis.ts";

export const OffsetCommit = api(8, encodeOffsetCommitRequest, decodeOffsetCommitResponse);
export const OffsetFetch = api(9, encodeOffsetFetchRequest, decodeOffsetFetchResponse);
export const FindCoordinator = api(10, encodeFindCoordinatorRequest, decodeFindCoordinatorResponse);
export const JoinGroup = api(11, encodeJoinGroupRequest, decodeJoinGroupResponse);
export const Heartbeat = api(12, encodeHeartbeatRequest, decodeHeartbeatResponse);
export const LeaveGroup = api(13, encodeLeaveGroupRequest, decodeLeaveGroupResponse);
export const SyncGroup = api(14, encodeSyncGroupRequest, decodeSyncGroupResponse);
export const DescribeGroups = api(15, encodeDescribeGroupsRequest, decodeDescribeGroupsResponse);
export const ListGroups = api(16, encodeListGroupsRequest, decodeListGroupsResponse);
export const InitProducerId = api(22, encodeInitProducerIdRequest, decodeInitProducerIdResponse);
export const AddPartitionsToTxn = api(24, encodeAddPartitionsToTxnRequest, decodeAddPartitionsToTxnResponse);
export const AddOffsetsToTxn = api(25, encodeAddOffsetsToTxnRequest, decodeAddOffsetsToTxnResponse);
export const EndTxn = api(26, encodeEndTxnRequest, decodeEndTxnResponse);
export const TxnOffsetCommit = api(28, encodeTxnOffsetCommitRequest, decodeTxnOffsetCommitResponse);
export const DeleteGroups = api(42, encodeDeleteGroupsRequest, decodeDeleteGroupsResponse);
export const OffsetDelete = api(47, encodeOffsetDeleteRequest, decodeOffsetDeleteResponse);
export const DescribeProducers = api(61, encodeDescribeProducersRequest, decodeDescribeProducersResponse);
export const DescribeTransactions = api(65, encodeDescribeTransactionsRequest, decodeDescribeTransactionsResponse);
export const ListTransactions = api(66, encodeListTransactionsRequest, decodeListTransactionsResponse);

/** Consumer protocol subscription metadata (version 0: topics, null user data). */
export function subscription(topics: string[]): Buffer {
  const head = Buffer.alloc(6);
  head.writeInt32BE(topics.length, 2);
  const parts = [head];
  for (const t of topics) {
    const len = Buffer.alloc(2);
    len.writeInt16BE(Buffer.byteLength(t));
    parts.push(len, Buffer.from(t));
  }
  parts.push(Buffer.alloc(4, 0xff));
  return Buffer.concat(parts);
}
