import {
  BatchWriteItemCommand,
  CreateTableCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  ScanCommand,
  TransactWriteItemsCommand,
  UpdateItemCommand,
  type WriteRequest,
} from "@aws-sdk/client-dynamodb";
import {
  DescribeStreamCommand,
  DynamoDBStreamsClient,
  GetRecordsCommand,
  GetShardIteratorCommand,
  type _Record,
} from "@aws-sdk/client-dynamodb-streams";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { localTarget, startLocalCloud, type LocalCloud } from "../../src/localcloud/index.js";
import { awsClient, RETRIES } from "../../src/providers/aws-clients.js";

/**
 * DynamoDB through the local cloud keeps DynamoDB's promises: a condition and
 * its write are one step, and conflicting transactions cancel each other.
 * moto alone breaks both under concurrency; that is moto's bug and not
 * asserted here, only that the local cloud mends it.
 */

let cloud: LocalCloud;
/** No SDK retries: each call's outcome is exactly what the local cloud answered. */
let ddb: DynamoDBClient;
let streams: DynamoDBStreamsClient;

async function createTable(name: string, stream = false): Promise<string | undefined> {
  const out = await ddb.send(
    new CreateTableCommand({
      TableName: name,
      AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }],
      KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }],
      BillingMode: "PAY_PER_REQUEST",
      ...(stream ? { StreamSpecification: { StreamEnabled: true, StreamViewType: "NEW_AND_OLD_IMAGES" } } : {}),
    }),
  );
  return out.TableDescription?.LatestStreamArn;
}

async function outcome(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return "ok";
  } catch (err) {
    return err instanceof Error ? err.name : String(err);
  }
}

async function keysIn(table: string): Promise<string[]> {
  const items = (await ddb.send(new ScanCommand({ TableName: table, ConsistentRead: true }))).Items ?? [];
  return items.map((i) => i["pk"]?.S ?? "").sort();
}

const put = (pk: string): WriteRequest => ({ PutRequest: { Item: { pk: { S: pk } } } });
const pks = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}-${String(i).padStart(2, "0")}`);

beforeAll(async () => {
  cloud = await startLocalCloud({ port: 0, speed: 0 });
  ddb = awsClient(DynamoDBClient, localTarget(cloud.endpoint), RETRIES.none);
  streams = awsClient(DynamoDBStreamsClient, localTarget(cloud.endpoint), RETRIES.none);
  await Promise.all([createTable("races"), createTable("copy-dst"), createTable("copy-other")]);
});

afterAll(async () => {
  ddb?.destroy();
  streams?.destroy();
  await cloud?.stop();
});

beforeEach(() => {
  cloud.scheduler.setFaults([]);
  cloud.scheduler.resetCalls();
});

describe("conditional writes are atomic", () => {
  it("8 concurrent conditional UpdateItems on one key have exactly one winner, in each of 30 trials", async () => {
    for (let trial = 0; trial < 30; trial++) {
      const key = { pk: { S: `lease-${trial}` } };
      const racers = Array.from({ length: 8 }, (_, i) => `racer-${i}`);
      const results = await Promise.all(
        racers.map((me) =>
          outcome(
            ddb.send(
              new UpdateItemCommand({
                TableName: "races",
                Key: key,
                UpdateExpression: "SET holder = :me ADD term :one",
                ConditionExpression: "attribute_not_exists(holder)",
                ExpressionAttributeValues: { ":me": { S: me }, ":one": { N: "1" } },
              }),
            ),
          ),
        ),
      );
      expect(
        results.filter((r) => r === "ok"),
        `trial ${trial}`,
      ).toHaveLength(1);
      expect(results.filter((r) => r !== "ok")).toEqual(Array(7).fill("ConditionalCheckFailedException"));
      const stored = (await ddb.send(new GetItemCommand({ TableName: "races", Key: key, ConsistentRead: true }))).Item;
      // One write happened: a second winner would have made the term 2.
      expect(stored?.["term"]).toEqual({ N: "1" });
      expect(stored?.["holder"]?.S).toBe(racers[results.indexOf("ok")]);
    }
    expect(cloud.scheduler.snapshot().serializedDynamoDbCalls).toBe(30 * 8);
  });

  it("in each of 30 trials, of 8 concurrent conflicting TransactWriteItems exactly one commits; the rest are cancelled by the condition and write nothing", async () => {
    for (let trial = 0; trial < 30; trial++) {
      const slot = `slot-${trial}`;
      const results = await Promise.all(
        Array.from({ length: 8 }, async (_, i) => {
          try {
            await ddb.send(
              new TransactWriteItemsCommand({
                TransactItems: [
                  {
                    Put: {
                      TableName: "races",
                      Item: { pk: { S: slot }, owner: { N: String(i) } },
                      ConditionExpression: "attribute_not_exists(pk)",
                    },
                  },
                  { Put: { TableName: "races", Item: { pk: { S: `${slot}-claim-${i}` } } } },
                ],
              }),
            );
            return { i, ok: true, reasons: [] as (string | undefined)[] };
          } catch (err) {
            const e = err as Error & { CancellationReasons?: { Code?: string }[] };
            expect(e.name).toBe("TransactionCanceledException");
            return { i, ok: false, reasons: (e.CancellationReasons ?? []).map((r) => r.Code) };
          }
        }),
      );
      const winners = results.filter((r) => r.ok);
      expect(winners, `trial ${trial}`).toHaveLength(1);
      for (const loser of results.filter((r) => !r.ok)) expect(loser.reasons[0]).toBe("ConditionalCheckFailed");
      const winner = winners[0]?.i;
      const stored = await ddb.send(new GetItemCommand({ TableName: "races", Key: { pk: { S: slot } }, ConsistentRead: true }));
      expect(stored.Item?.["owner"]).toEqual({ N: String(winner) });
      // A cancelled transaction leaves no trace: only the winner's claim exists.
      const claims = (await keysIn("races")).filter((k) => k.startsWith(`${slot}-claim-`));
      expect(claims).toEqual([`${slot}-claim-${winner}`]);
    }
  });
});

describe("table-scoped faults", () => {
  it("fail only the calls that name the table, whether by TableName, RequestItems or TransactItems", async () => {
    cloud.scheduler.setFaults([{ service: "dynamodb", resource: "copy-dst", errorCode: "ProvisionedThroughputExceededException" }]);
    expect(await outcome(ddb.send(new PutItemCommand({ TableName: "copy-dst", Item: { pk: { S: "x" } } })))).toBe(
      "ProvisionedThroughputExceededException",
    );
    expect(await outcome(ddb.send(new BatchWriteItemCommand({ RequestItems: { "copy-dst": [put("x")] } })))).toBe(
      "ProvisionedThroughputExceededException",
    );
    expect(
      await outcome(
        ddb.send(
          new TransactWriteItemsCommand({
            TransactItems: [
              { Put: { TableName: "copy-other", Item: { pk: { S: "t" } } } },
              { Put: { TableName: "copy-dst", Item: { pk: { S: "t" } } } },
            ],
          }),
        ),
      ),
    ).toBe("ProvisionedThroughputExceededException");
    expect(await outcome(ddb.send(new PutItemCommand({ TableName: "copy-other", Item: { pk: { S: "fine" } } })))).toBe("ok");
    // Reads of the table are throttled too.
    expect(await outcome(keysIn("copy-dst"))).toBe("ProvisionedThroughputExceededException");
    cloud.scheduler.setFaults([]);
    expect(await keysIn("copy-dst")).toEqual([]);
    expect(await keysIn("copy-other")).toEqual(["fine"]);
  });

  it("a throttled table writes only part of each BatchWriteItem and hands back the rest; resending UnprocessedItems completes the copy", async () => {
    cloud.scheduler.setFaults([{ service: "dynamodb", resource: "copy-dst", unprocessedFraction: 0.5 }]);
    const wanted = pks("item", 20);
    const first = await ddb.send(
      new BatchWriteItemCommand({ RequestItems: { "copy-dst": wanted.map(put), "copy-other": pks("side", 4).map(put) } }),
    );
    // Half of the throttled table's writes come back, the last ones; the other table is untouched.
    expect(Object.keys(first.UnprocessedItems ?? {})).toEqual(["copy-dst"]);
    expect(first.UnprocessedItems?.["copy-dst"]).toEqual(wanted.slice(10).map(put));
    expect(await keysIn("copy-dst")).toEqual(wanted.slice(0, 10));
    expect((await keysIn("copy-other")).filter((k) => k.startsWith("side-"))).toEqual(pks("side", 4));

    // What a copier does: resend what was not processed until nothing is left.
    let pending = first.UnprocessedItems ?? {};
    let rounds = 1;
    while (Object.keys(pending).length > 0) {
      pending = (await ddb.send(new BatchWriteItemCommand({ RequestItems: pending }))).UnprocessedItems ?? {};
      rounds += 1;
      expect(rounds).toBeLessThan(10);
    }
    expect(await keysIn("copy-dst")).toEqual(wanted);
    // 20 → 10 → 5 → 2 → 1 → 0 left over, rounding down.
    expect(rounds).toBe(5);
  });

  it("a batch with nothing left to write fails with ProvisionedThroughputExceededException, and other actions are not thinned", async () => {
    cloud.scheduler.setFaults([{ resource: "copy-dst", unprocessedFraction: 1, count: 1 }]);
    expect(await outcome(ddb.send(new PutItemCommand({ TableName: "copy-dst", Item: { pk: { S: "single" } } })))).toBe("ok");
    expect(await outcome(ddb.send(new BatchWriteItemCommand({ RequestItems: { "copy-dst": [put("all-1"), put("all-2")] } })))).toBe(
      "ProvisionedThroughputExceededException",
    );
    expect((await keysIn("copy-dst")).filter((k) => k.startsWith("all-"))).toEqual([]);
    // count: 1 retired the rule.
    const retry = await ddb.send(new BatchWriteItemCommand({ RequestItems: { "copy-dst": [put("all-1"), put("all-2")] } }));
    expect(retry.UnprocessedItems ?? {}).toEqual({});
    expect((await keysIn("copy-dst")).filter((k) => k.startsWith("all-"))).toEqual(["all-1", "all-2"]);
  });
});

describe("DynamoDB Streams through the local cloud", () => {
  async function shardOf(streamArn: string | undefined): Promise<string | undefined> {
    return (await streams.send(new DescribeStreamCommand({ StreamArn: streamArn }))).StreamDescription?.Shards?.[0]?.ShardId;
  }
  async function iteratorAt(
    streamArn: string | undefined,
    type: "TRIM_HORIZON" | "LATEST" | "AFTER_SEQUENCE_NUMBER" | "AT_SEQUENCE_NUMBER",
    sequence?: string,
  ): Promise<string | undefined> {
    const shard = await shardOf(streamArn);
    return (
      await streams.send(
        new GetShardIteratorCommand({
          StreamArn: streamArn,
          ShardId: shard,
          ShardIteratorType: type,
          ...(sequence !== undefined ? { SequenceNumber: sequence } : {}),
        }),
      )
    ).ShardIterator;
  }
  const putPk = (table: string, pk: string) => ddb.send(new PutItemCommand({ TableName: table, Item: { pk: { S: pk } } }));
  const pksOf = (records: readonly _Record[]) => records.map((r) => r.dynamodb?.Keys?.["pk"]?.S);

  it("DescribeStream, GetShardIterator and GetRecords reach moto and carry the records' images", async () => {
    const streamArn = await createTable("watched", true);
    expect(streamArn).toBeDefined();
    await ddb.send(new PutItemCommand({ TableName: "watched", Item: { pk: { S: "a" }, v: { N: "1" } } }));
    await ddb.send(
      new UpdateItemCommand({
        TableName: "watched",
        Key: { pk: { S: "a" } },
        UpdateExpression: "SET v = :two",
        ExpressionAttributeValues: { ":two": { N: "2" } },
      }),
    );
    cloud.scheduler.resetCalls();
    const iterator = await iteratorAt(streamArn, "TRIM_HORIZON");
    const records = (await streams.send(new GetRecordsCommand({ ShardIterator: iterator }))).Records ?? [];
    expect(records.map((r) => r.eventName)).toEqual(["INSERT", "MODIFY"]);
    expect(records[1]?.dynamodb?.NewImage?.["v"]).toEqual({ N: "2" });
    expect(records[1]?.dynamodb?.OldImage?.["v"]).toEqual({ N: "1" });
    expect(cloud.scheduler.calls()).toMatchObject({
      "dynamodb:DescribeStream": 1,
      "dynamodb:GetShardIterator": 1,
      "dynamodb:GetRecords": 1,
    });
  });

  it("an iterator is a position: LATEST starts after the last record, AT/AFTER_SEQUENCE_NUMBER at a record, Limit pages on", async () => {
    const streamArn = await createTable("positions", true);
    for (const pk of pks("p", 11)) await putPk("positions", pk);
    // LATEST: nothing of what is there, then exactly what comes after.
    const latest = await iteratorAt(streamArn, "LATEST");
    const empty = await streams.send(new GetRecordsCommand({ ShardIterator: latest }));
    expect(empty.Records).toEqual([]);
    await putPk("positions", "after-latest");
    const fresh = await streams.send(new GetRecordsCommand({ ShardIterator: empty.NextShardIterator }));
    expect(pksOf(fresh.Records ?? [])).toEqual(["after-latest"]);
    expect((await streams.send(new GetRecordsCommand({ ShardIterator: fresh.NextShardIterator }))).Records).toEqual([]);

    // TRIM_HORIZON in pages of 4: every record once, in order.
    const seen: (string | undefined)[] = [];
    let iterator = await iteratorAt(streamArn, "TRIM_HORIZON");
    for (let page = 0; page < 4; page++) {
      const res = await streams.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 4 }));
      seen.push(...pksOf(res.Records ?? []));
      iterator = res.NextShardIterator;
    }
    expect(seen).toEqual([...pks("p", 11), "after-latest"]);

    const all = (await streams.send(new GetRecordsCommand({ ShardIterator: await iteratorAt(streamArn, "TRIM_HORIZON") }))).Records ?? [];
    const third = all[2]?.dynamodb?.SequenceNumber;
    const at = await streams.send(
      new GetRecordsCommand({ ShardIterator: await iteratorAt(streamArn, "AT_SEQUENCE_NUMBER", third), Limit: 1 }),
    );
    expect(pksOf(at.Records ?? [])).toEqual(["p-02"]);
    const after = await streams.send(
      new GetRecordsCommand({ ShardIterator: await iteratorAt(streamArn, "AFTER_SEQUENCE_NUMBER", third), Limit: 1 }),
    );
    expect(pksOf(after.Records ?? [])).toEqual(["p-03"]);
  });

  it("an iterator handed out before a cancelled transaction still reads every later record, and none of the cancelled one's", async () => {
    const streamArn = await createTable("cancelled", true);
    await putPk("cancelled", "before");
    const latest = await iteratorAt(streamArn, "LATEST");
    const first = await streams.send(new GetRecordsCommand({ ShardIterator: latest }));
    expect(first.Records).toEqual([]);

    // Its first write lands, its second fails its condition. Sent to moto's own transactions, moto would put
    // back a copy of the table and stream (ADR 0019); rehearsed (ADR 0020), the real table never sees it.
    const cancelled = ddb.send(
      new TransactWriteItemsCommand({
        TransactItems: [
          { Put: { TableName: "cancelled", Item: { pk: { S: "phantom" } } } },
          { Put: { TableName: "cancelled", Item: { pk: { S: "before" } }, ConditionExpression: "attribute_not_exists(pk)" } },
        ],
      }),
    );
    expect(await outcome(cancelled)).toBe("TransactionCanceledException");
    await putPk("cancelled", "after-1");
    await putPk("cancelled", "after-2");

    const next = await streams.send(new GetRecordsCommand({ ShardIterator: first.NextShardIterator }));
    expect(pksOf(next.Records ?? [])).toEqual(["after-1", "after-2"]);
    expect(await keysIn("cancelled")).toEqual(["after-1", "after-2", "before"]);
  });
});
