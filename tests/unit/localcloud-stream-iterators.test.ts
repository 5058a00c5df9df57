import { describe, expect, it } from "vitest";
import { ReadWriteGate } from "../../src/localcloud/dynamodb-serializer.js";
import {
  decodeIterator,
  DynamoDbStreamsHandler,
  encodeIterator,
  isStreamsTarget,
  ITERATOR_LIFETIME_MS,
} from "../../src/localcloud/dynamodb-streams-handler.js";
import type { AwsRequest } from "../../src/localcloud/proxy.js";

const position = {
  streamArn: "arn:aws:dynamodb:us-east-1:123456789012:table/tenants/stream/2026-12-01T00:00:00.000",
  shardId: "shardId-00000001541626099285-f35f62ef",
  next: "1100000000017454423011",
  issuedAt: 1_796_000_000_000,
};

function getRecords(token: string): AwsRequest {
  return {
    method: "POST",
    url: "/",
    headers: { "x-amz-target": "DynamoDBStreams_20120810.GetRecords", "content-type": "application/x-amz-json-1.0" },
    body: Buffer.from(JSON.stringify({ ShardIterator: token })),
    service: "dynamodb",
    action: "GetRecords",
    protocol: "json",
  };
}

describe("local-cloud shard iterators", () => {
  it("carry their position, sequence numbers beyond 2^53 intact", () => {
    const token = encodeIterator(position);
    expect(decodeIterator(token)).toEqual(position);
    expect(decodeIterator(token)?.next).toBe("1100000000017454423011");
  });

  it("are told apart from moto's own iterators and from garbage", () => {
    expect(decodeIterator("arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/x|1|abc")).toBeUndefined();
    expect(decodeIterator("localcloud-iterator:not-base64-json")).toBeUndefined();
    expect(decodeIterator(encodeIterator({ ...position, next: "12e3" }))).toBeUndefined();
  });

  it("expire 15 minutes after they were handed out, answered here without asking moto", async () => {
    let now = position.issuedAt + ITERATOR_LIFETIME_MS + 1;
    // Nothing listens on this port: an answer proves the handler did not forward the call.
    const handler = new DynamoDbStreamsHandler({ host: "127.0.0.1", port: 9 }, { gate: new ReadWriteGate(), now: () => now });
    const token = encodeIterator(position);
    const answer = await handler.handle(getRecords(token), { ShardIterator: token });
    expect(answer.status).toBe(400);
    expect(JSON.parse(answer.body.toString("utf8"))).toMatchObject({ __type: "ExpiredIteratorException" });
    // One millisecond younger, it is read: it goes to moto (which is not there).
    now -= 2;
    await expect(handler.handle(getRecords(token), { ShardIterator: token })).rejects.toThrow(/did not answer/);
  });

  it("are kept for DynamoDB Streams calls only", () => {
    expect(isStreamsTarget("DynamoDBStreams_20120810.GetRecords")).toBe(true);
    expect(isStreamsTarget("DynamoDB_20120810.GetItem")).toBe(false);
    expect(isStreamsTarget(undefined)).toBe(false);
  });
});
