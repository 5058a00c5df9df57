import { BatchWriteItemCommand, DescribeTableCommand, DynamoDBClient, QueryCommand, type WriteRequest } from "@aws-sdk/client-dynamodb";
import {
  DescribeStreamCommand,
  DynamoDBStreamsClient,
  ExpiredIteratorException,
  GetRecordsCommand,
  GetShardIteratorCommand,
  TrimmedDataAccessException,
  type _Record,
  type Shard,
} from "@aws-sdk/client-dynamodb-streams";
import { S3Client } from "@aws-sdk/client-s3";
import { mockClient } from "aws-sdk-client-mock";
import { beforeEach, describe, expect, it } from "vitest";
import { writeBatch } from "../../src/data/batch-writer.js";
import { lineageOrder, tenantWrites } from "../../src/data/capture.js";
import { canonicalItem, exportLine, parseExportLine } from "../../src/data/dynamo-json.js";
import { CaptureLostError, DynamoTenantData } from "../../src/data/index.js";
import { parseS3Location } from "../../src/data/location.js";
import { backoffDelay, DEFAULT_RETRY, isRetryable } from "../../src/data/retry.js";
import type { Fence } from "../../src/ports.js";
import { TerminalError } from "../../src/errors.js";

const ddb = mockClient(DynamoDBClient);
const streamsMock = mockClient(DynamoDBStreamsClient);
const held: Fence = { assertHeld: () => undefined };
const FAST = { ...DEFAULT_RETRY, baseMs: 1, capMs: 2 };
const STREAM = "arn:aws:dynamodb:us-east-1:123456789012:table/pool-orders/stream/2024";

beforeEach(() => {
  ddb.reset();
  streamsMock.reset();
});

const mover = () =>
  new DynamoTenantData(
    new DynamoDBClient({ region: "us-east-1" }),
    new DynamoDBStreamsClient({ region: "us-east-1" }),
    new S3Client({ region: "us-east-1" }),
    { retry: FAST },
  );
const put = (id: string, tenantId = "a"): WriteRequest => ({ PutRequest: { Item: { tenantId: { S: tenantId }, orderId: { S: id } } } });

describe("writeBatch", () => {
  it("sends UnprocessedItems again until none is left, checking the fence before each call", async () => {
    const batch = ["1", "2", "3", "4"].map((id) => put(id));
    ddb
      .on(BatchWriteItemCommand)
      .resolvesOnce({ UnprocessedItems: { t: batch.slice(1) } })
      .resolvesOnce({ UnprocessedItems: { t: batch.slice(3) } })
      .resolvesOnce({ UnprocessedItems: { t: batch.slice(3) } })
      .resolves({ UnprocessedItems: {} });
    let checks = 0;
    await writeBatch(new DynamoDBClient({ region: "us-east-1" }), "t", batch, { assertHeld: () => void checks++ }, FAST);
    const sent = ddb.commandCalls(BatchWriteItemCommand).map((c) => c.args[0].input.RequestItems?.["t"]?.length);
    expect(sent).toEqual([4, 3, 1, 1]);
    expect(checks).toBe(4);
  });

  it.each([
    { reason: "ProvisionedThroughputExceededException", name: "ProvisionedThroughputExceededException" },
    { reason: "ThrottlingException", name: "ThrottlingException" },
  ])("backs off and retries the whole batch on $reason", async ({ name }) => {
    ddb
      .on(BatchWriteItemCommand)
      .rejectsOnce(Object.assign(new Error("slow down"), { name }))
      .resolves({});
    await writeBatch(new DynamoDBClient({ region: "us-east-1" }), "t", [put("1")], held, FAST);
    expect(ddb.commandCalls(BatchWriteItemCommand)).toHaveLength(2);
  });

  it("gives up on a batch that makes no progress after maxAttempts, and at once on a non-retryable error", async () => {
    ddb.on(BatchWriteItemCommand).resolves({ UnprocessedItems: { t: [put("1")] } });
    await expect(
      writeBatch(new DynamoDBClient({ region: "us-east-1" }), "t", [put("1")], held, { ...FAST, maxAttempts: 3 }),
    ).rejects.toThrow(/still unprocessed after 3 attempts/);
    ddb.reset();
    ddb
      .on(BatchWriteItemCommand)
      .rejects(Object.assign(new Error("bad key"), { name: "ValidationException", $metadata: { httpStatusCode: 400 } }));
    const err = await writeBatch(new DynamoDBClient({ region: "us-east-1" }), "t", [put("1")], held, FAST).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TerminalError);
    expect((err as Error).cause).toMatchObject({ name: "ValidationException" });
    expect(ddb.commandCalls(BatchWriteItemCommand)).toHaveLength(1);
  });

  it("ends a half-hour backoff at once when its signal aborts, throwing the signal's reason", async () => {
    ddb.on(BatchWriteItemCommand).resolves({ UnprocessedItems: { t: [put("1")] } });
    const halfHour = { ...DEFAULT_RETRY, baseMs: 3_600_000, capMs: 3_600_000, random: () => 0 };
    const stopping = new AbortController();
    const reason = new Error("controller stopping");
    const writing = writeBatch(new DynamoDBClient({ region: "us-east-1" }), "t", [put("1")], held, halfHour, stopping.signal);
    // Abort once the first attempt has been answered and the backoff has begun.
    while (ddb.commandCalls(BatchWriteItemCommand).length === 0) await new Promise((resolve) => setImmediate(resolve));
    stopping.abort(reason);
    const hung = new Promise<"hung">((resolve) => setTimeout(() => resolve("hung"), 20_000).unref());
    expect(await Promise.race([writing.catch((e: unknown) => e), hung])).toBe(reason);
    expect(ddb.commandCalls(BatchWriteItemCommand)).toHaveLength(1);
  });

  it("backs off exponentially with half the delay jittered, up to the cap", () => {
    const policy = { ...DEFAULT_RETRY, baseMs: 100, capMs: 1000 };
    expect([1, 2, 3, 4, 5].map((n) => backoffDelay({ ...policy, random: () => 0 }, n))).toEqual([50, 100, 200, 400, 500]);
    expect(backoffDelay({ ...policy, random: () => 0.999999 }, 3)).toBe(400);
  });
});

describe("backfill", () => {
  it("queries strongly consistently on the tenant, pages through, and writes batches of 25", async () => {
    const page = (from: number, n: number) =>
      Array.from({ length: n }, (_, i) => ({ tenantId: { S: "a" }, orderId: { S: `o${from + i}` } }));
    ddb
      .on(QueryCommand)
      .resolvesOnce({ Items: page(0, 30), LastEvaluatedKey: { tenantId: { S: "a" }, orderId: { S: "o29" } } })
      .resolvesOnce({ Items: page(30, 10) });
    ddb.on(BatchWriteItemCommand).resolves({});
    expect(await mover().backfill("a", "src", "dst", held)).toEqual({ items: 40 });
    const queries = ddb.commandCalls(QueryCommand).map((c) => c.args[0].input);
    expect(queries[0]).toMatchObject({ TableName: "src", ConsistentRead: true, ExpressionAttributeValues: { ":tenant": { S: "a" } } });
    expect(queries[1]?.ExclusiveStartKey).toEqual({ tenantId: { S: "a" }, orderId: { S: "o29" } });
    const sizes = ddb.commandCalls(BatchWriteItemCommand).map((c) => c.args[0].input.RequestItems?.["dst"]?.length);
    expect(sizes.sort()).toEqual([10, 25, 5].sort());
  });
});

function rec(
  seq: string,
  eventName: "INSERT" | "MODIFY" | "REMOVE",
  tenantId: string,
  orderId: string,
  extra: Record<string, unknown> = {},
): _Record {
  const keys = { tenantId: { S: tenantId }, orderId: { S: orderId } };
  return {
    eventName,
    dynamodb: {
      SequenceNumber: seq,
      Keys: keys,
      ...(eventName !== "REMOVE" ? { NewImage: { ...keys, v: { N: seq } } } : {}),
      ...(eventName !== "INSERT" ? { OldImage: keys } : {}),
      ...extra,
    },
  };
}

describe("tenantWrites", () => {
  it("keeps only the tenant's records, the last one per key, puts for new images and deletes for removes", () => {
    const records = [
      rec("1", "INSERT", "a", "o1"),
      rec("2", "INSERT", "b", "o1"),
      rec("3", "MODIFY", "a", "o1"),
      rec("4", "INSERT", "a", "o2"),
      rec("5", "REMOVE", "a", "o2"),
      rec("6", "MODIFY", "ab", "o3"),
      rec("7", "REMOVE", "a", "o4"),
    ];
    const w = tenantWrites(records, "a", "t");
    expect(w.records).toBe(5);
    expect(w.requests).toEqual([
      { PutRequest: { Item: { tenantId: { S: "a" }, orderId: { S: "o1" }, v: { N: "3" } } } },
      { DeleteRequest: { Key: { tenantId: { S: "a" }, orderId: { S: "o2" } } } },
      { DeleteRequest: { Key: { tenantId: { S: "a" }, orderId: { S: "o4" } } } },
    ]);
  });

  it("refuses a stream without new images rather than copying nothing", () => {
    const keysOnly: _Record = {
      eventName: "MODIFY",
      dynamodb: { SequenceNumber: "1", Keys: { tenantId: { S: "a" }, orderId: { S: "o" } }, StreamViewType: "KEYS_ONLY" },
    };
    expect(() => tenantWrites([keysOnly], "a", "t")).toThrow(/KEYS_ONLY/);
  });
});

const shard = (id: string, parent?: string, end?: string): Shard => ({
  ShardId: id,
  SequenceNumberRange: { StartingSequenceNumber: "0", ...(end !== undefined ? { EndingSequenceNumber: end } : {}) },
  ...(parent !== undefined ? { ParentShardId: parent } : {}),
});

describe("lineageOrder", () => {
  it.each([
    {
      reason: "children listed before their parents",
      shards: [shard("c1", "p"), shard("c2", "p"), shard("p", "g"), shard("g")],
      order: ["g", "p", "c1", "c2"],
    },
    { reason: "a parent that was trimmed away", shards: [shard("c", "gone"), shard("d")], order: ["c", "d"] },
    {
      reason: "two lineages, each in order",
      shards: [shard("x2", "x1"), shard("y2", "y1"), shard("y1"), shard("x1")],
      order: ["x1", "x2", "y1", "y2"],
    },
  ])("puts every parent before its children: $reason", ({ shards, order }) => {
    expect(lineageOrder(shards).map((s) => s.ShardId)).toEqual(order);
  });
});

describe("openCapture and catchUp", () => {
  beforeEach(() => {
    ddb.on(DescribeTableCommand).resolves({
      Table: {
        TableName: "pool-orders",
        LatestStreamArn: STREAM,
        StreamSpecification: { StreamEnabled: true, StreamViewType: "NEW_AND_OLD_IMAGES" },
      },
    });
    ddb.on(BatchWriteItemCommand).resolves({});
  });

  it("openCapture takes a closed shard's end and reads an open shard to its present end", async () => {
    streamsMock
      .on(DescribeStreamCommand)
      .resolves({ StreamDescription: { Shards: [shard("old", undefined, "50"), shard("new", "old"), shard("empty")] } });
    streamsMock.on(GetShardIteratorCommand, { ShardId: "new", ShardIteratorType: "TRIM_HORIZON" }).resolves({ ShardIterator: "it-new-0" });
    streamsMock
      .on(GetShardIteratorCommand, { ShardId: "empty", ShardIteratorType: "TRIM_HORIZON" })
      .resolves({ ShardIterator: "it-empty-0" });
    streamsMock
      .on(GetRecordsCommand, { ShardIterator: "it-new-0" })
      .resolves({ Records: [rec("60", "INSERT", "a", "o1"), rec("61", "INSERT", "b", "o1")], NextShardIterator: "it-new-1" });
    streamsMock
      .on(GetRecordsCommand, { ShardIterator: "it-new-1" })
      .resolves({ Records: [rec("62", "INSERT", "a", "o2")], NextShardIterator: "it-new-2" });
    streamsMock.on(GetRecordsCommand, { ShardIterator: "it-new-2" }).resolves({ Records: [], NextShardIterator: "it-new-3" });
    streamsMock.on(GetRecordsCommand, { ShardIterator: "it-empty-0" }).resolves({ Records: [], NextShardIterator: "it-empty-1" });
    const cp = await mover().openCapture("pool-orders");
    expect(cp).toEqual({ streamArn: STREAM, shards: { old: "50", new: "62", empty: "" } });
    // The closed shard is not read at all.
    expect(streamsMock.commandCalls(GetShardIteratorCommand, { ShardId: "old" })).toHaveLength(0);
  });

  it("catchUp reads parents before children, new shards from TRIM_HORIZON, known ones after their checkpoint, and writes the tenant's changes only", async () => {
    streamsMock.on(DescribeStreamCommand).resolves({
      StreamDescription: { Shards: [shard("child", "parent"), shard("parent", undefined, "20"), shard("done", undefined, "9")] },
    });
    streamsMock
      .on(GetShardIteratorCommand, { ShardId: "parent", ShardIteratorType: "AFTER_SEQUENCE_NUMBER", SequenceNumber: "10" })
      .resolves({ ShardIterator: "p" });
    streamsMock.on(GetShardIteratorCommand, { ShardId: "child", ShardIteratorType: "TRIM_HORIZON" }).resolves({ ShardIterator: "c" });
    streamsMock
      .on(GetRecordsCommand, { ShardIterator: "p" })
      .resolves({ Records: [rec("11", "INSERT", "a", "o1"), rec("20", "INSERT", "b", "o9")] });
    streamsMock
      .on(GetRecordsCommand, { ShardIterator: "c" })
      .resolves({ Records: [rec("21", "REMOVE", "a", "o1")], NextShardIterator: "c2" });
    streamsMock.on(GetRecordsCommand, { ShardIterator: "c2" }).resolves({ Records: [], NextShardIterator: "c3" });

    const out = await mover().catchUp("a", "pool-orders", "silo-orders", { streamArn: STREAM, shards: { parent: "10", done: "9" } }, held);
    expect(out).toMatchObject({ applied: 2, checkpoint: { streamArn: STREAM, shards: { parent: "20", child: "21", done: "9" } } });
    // One key changed (written, then deleted): named once, in the key form itemHashes uses.
    expect(out.changedKeys).toHaveLength(1);
    expect(out.changedKeys[0]).toContain("o1");
    const writes = ddb.commandCalls(BatchWriteItemCommand).map((c) => c.args[0].input.RequestItems?.["silo-orders"]);
    // The put from the parent lands before the child's delete of the same key.
    expect(writes).toEqual([
      [{ PutRequest: { Item: { tenantId: { S: "a" }, orderId: { S: "o1" }, v: { N: "11" } } } }],
      [{ DeleteRequest: { Key: { tenantId: { S: "a" }, orderId: { S: "o1" } } } }],
    ]);
    const order = streamsMock.commandCalls(GetShardIteratorCommand).map((c) => c.args[0].input.ShardId);
    expect(order).toEqual(["parent", "child"]);
  });

  it("replaces an expired iterator after the last record applied", async () => {
    streamsMock.on(DescribeStreamCommand).resolves({ StreamDescription: { Shards: [shard("s")] } });
    streamsMock
      .on(GetShardIteratorCommand, { ShardIteratorType: "AFTER_SEQUENCE_NUMBER", SequenceNumber: "5" })
      .resolves({ ShardIterator: "i0" });
    streamsMock
      .on(GetShardIteratorCommand, { ShardIteratorType: "AFTER_SEQUENCE_NUMBER", SequenceNumber: "6" })
      .resolves({ ShardIterator: "i2" });
    streamsMock
      .on(GetRecordsCommand, { ShardIterator: "i0" })
      .resolves({ Records: [rec("6", "INSERT", "a", "o1")], NextShardIterator: "i1" });
    streamsMock.on(GetRecordsCommand, { ShardIterator: "i1" }).rejects(new ExpiredIteratorException({ message: "expired", $metadata: {} }));
    streamsMock
      .on(GetRecordsCommand, { ShardIterator: "i2" })
      .resolves({ Records: [rec("7", "INSERT", "a", "o2")], NextShardIterator: "i3" });
    streamsMock.on(GetRecordsCommand, { ShardIterator: "i3" }).resolves({ Records: [], NextShardIterator: "i4" });
    const out = await mover().catchUp("a", "pool-orders", "silo", { streamArn: STREAM, shards: { s: "5" } }, held);
    expect(out).toMatchObject({ applied: 2, checkpoint: { streamArn: STREAM, shards: { s: "7" } } });
    expect(out.changedKeys).toHaveLength(2);
  });

  it("stops reading a stream that keeps giving records once its signal aborts, having applied the pages it read", async () => {
    streamsMock.on(DescribeStreamCommand).resolves({ StreamDescription: { Shards: [shard("s")] } });
    streamsMock.on(GetShardIteratorCommand).resolves({ ShardIterator: "i0" });
    const stopping = new AbortController();
    const reason = new Error("controller stopping");
    let n = 0;
    // A busy tenant: every page holds a change, so only the signal can end the read early.
    streamsMock.on(GetRecordsCommand).callsFake(() => {
      n += 1;
      if (n === 3) stopping.abort(reason);
      return { Records: [rec(String(5 + n), "INSERT", "a", `o${n}`)], NextShardIterator: `i${n}` };
    });
    ddb.on(BatchWriteItemCommand).resolves({});
    const reading = mover().catchUp("a", "pool-orders", "silo", { streamArn: STREAM, shards: { s: "5" } }, held, stopping.signal);
    const hung = new Promise<"hung">((resolve) => setTimeout(() => resolve("hung"), 20_000).unref());
    expect(await Promise.race([reading.catch((e: unknown) => e), hung])).toBe(reason);
    expect(n).toBe(3);
    expect(ddb.commandCalls(BatchWriteItemCommand)).toHaveLength(2); // pages 1 and 2; page 3 arrived after the abort
  });

  it("says the capture is lost when the checkpoint fell out of the stream's retention", async () => {
    streamsMock.on(DescribeStreamCommand).resolves({ StreamDescription: { Shards: [shard("s")] } });
    streamsMock.on(GetShardIteratorCommand).rejects(new TrimmedDataAccessException({ message: "trimmed", $metadata: {} }));
    await expect(mover().catchUp("a", "pool-orders", "silo", { streamArn: STREAM, shards: { s: "5" } }, held)).rejects.toBeInstanceOf(
      CaptureLostError,
    );
  });

  it("openCapture throws for a table without a stream", async () => {
    ddb.on(DescribeTableCommand).resolves({ Table: { TableName: "t" } });
    await expect(mover().openCapture("t")).rejects.toThrow(/has no stream/);
  });
});

describe("DynamoDB JSON", () => {
  const item = {
    tenantId: { S: "a" },
    n: { N: "123456789012345678901234567890" },
    b: { B: Uint8Array.from([0, 1, 254]) },
    ss: { SS: ["y", "x"] },
    bs: { BS: [Uint8Array.from([9])] },
    m: { M: { l: { L: [{ NULL: true }, { BOOL: false }, { NS: ["2", "1"] }] } } },
  };

  it("round-trips every type through an export line", () => {
    const back = parseExportLine(exportLine(item));
    expect(canonicalItem(back)).toBe(canonicalItem(item));
    expect(Buffer.from(back["b"]?.B ?? []).toString("hex")).toBe("0001fe");
    expect(back["n"]).toEqual({ N: "123456789012345678901234567890" });
  });

  it("gives equal canonical text for equal items whatever the order of attributes and set members", () => {
    const shuffled = { m: item.m, ss: { SS: ["x", "y"] }, bs: item.bs, b: item.b, n: item.n, tenantId: item.tenantId };
    expect(canonicalItem(shuffled)).toBe(canonicalItem(item));
    expect(canonicalItem({ ...item, n: { S: "123456789012345678901234567890" } })).not.toBe(canonicalItem(item));
  });

  it.each([
    { reason: "not JSON", line: "{", match: /not JSON/ },
    { reason: "no Item", line: '{"item":{}}', match: /expected \{"Item"/ },
    { reason: "an unknown type", line: '{"Item":{"a":{"X":"1"}}}', match: /unknown DynamoDB JSON type X/ },
    { reason: "two type keys", line: '{"Item":{"a":{"S":"1","N":"1"}}}', match: /exactly one type key/ },
  ])("rejects a line with $reason", ({ line, match }) => {
    expect(() => parseExportLine(line)).toThrow(match);
  });
});

describe("parseS3Location", () => {
  it.each([
    { text: "s3://bucket/prefix/", bucket: "bucket", prefix: "prefix/" },
    { text: "s3://bucket/a/b", bucket: "bucket", prefix: "a/b/" },
    { text: "s3://bucket", bucket: "bucket", prefix: "" },
    { text: "s3://bucket/", bucket: "bucket", prefix: "" },
  ])("reads $text", ({ text, bucket, prefix }) => {
    expect(parseS3Location(text)).toEqual({ bucket, prefix });
  });

  it.each(["bucket/prefix/", "s3://B/x", "s3://bucket//x", "https://bucket/x"])("rejects %s", (text) => {
    expect(() => parseS3Location(text)).toThrow(/S3 location|empty path segment/);
  });
});

describe("isRetryable", () => {
  it.each([
    { reason: "a DynamoDB throttle", err: Object.assign(new Error("x"), { name: "ProvisionedThroughputExceededException" }), retry: true },
    { reason: "a streams throttle", err: Object.assign(new Error("x"), { name: "LimitExceededException" }), retry: true },
    {
      reason: "a server error",
      err: Object.assign(new Error("x"), { name: "InternalServerError", $metadata: { httpStatusCode: 500 } }),
      retry: true,
    },
    { reason: "a reset connection", err: Object.assign(new Error("socket hang up"), { code: "ECONNRESET" }), retry: true },
    {
      reason: "a validation error",
      err: Object.assign(new Error("x"), { name: "ValidationException", $metadata: { httpStatusCode: 400 } }),
      retry: false,
    },
    {
      reason: "a missing table",
      err: Object.assign(new Error("x"), { name: "ResourceNotFoundException", $metadata: { httpStatusCode: 400 } }),
      retry: false,
    },
    { reason: "a bug of ours", err: new TypeError("undefined is not a function"), retry: false },
  ])("$reason: $retry", ({ err, retry }) => {
    expect(isRetryable(err)).toBe(retry);
  });
});
