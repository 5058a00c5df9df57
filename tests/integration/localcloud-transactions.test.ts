import {
  CreateTableCommand,
  DeleteTableCommand,
  DynamoDBClient,
  ListTablesCommand,
  PutItemCommand,
  ScanCommand,
  TransactWriteItemsCommand,
  TransactionCanceledException,
  type AttributeValue,
  type TransactWriteItem,
} from "@aws-sdk/client-dynamodb";
import { DescribeStreamCommand, DynamoDBStreamsClient, GetRecordsCommand, GetShardIteratorCommand } from "@aws-sdk/client-dynamodb-streams";
import { afterAll, beforeAll, expect, it } from "vitest";
import { scratchName } from "../../src/localcloud/dynamodb-transactions.js";
import { localTarget, startLocalCloud, type LocalCloud } from "../../src/localcloud/index.js";
import { awsClient, RETRIES } from "../../src/providers/aws-clients.js";

/**
 * TransactWriteItems through the local cloud is rehearsed on scratch tables
 * (src/localcloud/dynamodb-transactions.ts) instead of run by moto, whose
 * transactions copy the whole table and stream first. The rehearsal must
 * change nothing a client can see: the same script of transactions, sent once
 * through the local cloud and once to moto directly, gives the same answers,
 * the same items and the same stream.
 */

let cloud: LocalCloud;
let viaCloud: { ddb: DynamoDBClient; streams: DynamoDBStreamsClient };
let viaMoto: { ddb: DynamoDBClient; streams: DynamoDBStreamsClient };

beforeAll(async () => {
  cloud = await startLocalCloud({ port: 0, speed: 0 });
  const clients = (endpoint: string) => ({
    ddb: awsClient(DynamoDBClient, localTarget(endpoint), RETRIES.none),
    streams: awsClient(DynamoDBStreamsClient, localTarget(endpoint), RETRIES.none),
  });
  viaCloud = clients(cloud.endpoint);
  viaMoto = clients(cloud.motoEndpoint);
});

afterAll(async () => {
  for (const c of [viaCloud, viaMoto]) {
    c?.ddb.destroy();
    c?.streams.destroy();
  }
  await cloud?.stop();
});

const S = (s: string): AttributeValue => ({ S: s });
const N = (n: number): AttributeValue => ({ N: String(n) });

async function createTables(ddb: DynamoDBClient, items: string, leases: string): Promise<string | undefined> {
  const made = await ddb.send(
    new CreateTableCommand({
      TableName: items,
      AttributeDefinitions: [
        { AttributeName: "pk", AttributeType: "S" },
        { AttributeName: "sk", AttributeType: "S" },
      ],
      KeySchema: [
        { AttributeName: "pk", KeyType: "HASH" },
        { AttributeName: "sk", KeyType: "RANGE" },
      ],
      BillingMode: "PAY_PER_REQUEST",
      StreamSpecification: { StreamEnabled: true, StreamViewType: "NEW_AND_OLD_IMAGES" },
    }),
  );
  await ddb.send(
    new CreateTableCommand({
      TableName: leases,
      AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }],
      KeySchema: [{ AttributeName: "id", KeyType: "HASH" }],
      BillingMode: "PAY_PER_REQUEST",
    }),
  );
  return made.TableDescription?.LatestStreamArn;
}

/** The script: commits, cancellations by a condition on either table, a validation error, creates by update, deletes. */
function script(items: string, leases: string): TransactWriteItem[][] {
  const a = { pk: S("t#a"), sk: S("status") };
  const leaseHeldBy = (holder: string): TransactWriteItem => ({
    ConditionCheck: {
      TableName: leases,
      Key: { id: S("shard-1") },
      ConditionExpression: "holder = :h",
      ExpressionAttributeValues: { ":h": S(holder) },
    },
  });
  return [
    [
      { Put: { TableName: items, Item: { ...a, n: N(1), phase: S("Provisioning") }, ConditionExpression: "attribute_not_exists(pk)" } },
      { Put: { TableName: leases, Item: { id: S("shard-1"), holder: S("me"), token: N(1) } } },
    ],
    [
      {
        Put: {
          TableName: items,
          Item: { ...a, n: N(9) },
          ConditionExpression: "attribute_not_exists(pk)",
          ReturnValuesOnConditionCheckFailure: "ALL_OLD",
        },
      },
      { Put: { TableName: leases, Item: { id: S("shard-2"), holder: S("me") } } },
    ],
    [
      leaseHeldBy("me"),
      {
        Update: {
          TableName: items,
          Key: a,
          UpdateExpression: "SET n = n + :one, phase = :p ADD tags :t",
          ExpressionAttributeValues: { ":one": N(1), ":p": S("Ready"), ":t": { SS: ["x", "y"] } },
        },
      },
    ],
    [
      leaseHeldBy("someone-else"),
      { Update: { TableName: items, Key: a, UpdateExpression: "SET phase = :p", ExpressionAttributeValues: { ":p": S("Lost") } } },
    ],
    [
      { Update: { TableName: items, Key: a, UpdateExpression: "SET phase = :p", ExpressionAttributeValues: { ":p": S("Twice") } } },
      { Delete: { TableName: items, Key: a } },
    ],
    [
      {
        Update: {
          TableName: items,
          Key: { pk: S("t#b"), sk: S("status") },
          UpdateExpression: "SET phase = :p",
          ExpressionAttributeValues: { ":p": S("New") },
        },
      },
      {
        Update: {
          TableName: leases,
          Key: { id: S("shard-1") },
          UpdateExpression: "ADD #t :one",
          ExpressionAttributeNames: { "#t": "token" },
          ExpressionAttributeValues: { ":one": N(1) },
        },
      },
    ],
    [
      { Delete: { TableName: items, Key: a, ConditionExpression: "n = :two", ExpressionAttributeValues: { ":two": N(2) } } },
      { Put: { TableName: items, Item: { pk: S("t#c"), sk: S("status"), phase: S("Moved") } } },
    ],
    [
      { ConditionCheck: { TableName: items, Key: { pk: S("t#gone"), sk: S("status") }, ConditionExpression: "attribute_exists(pk)" } },
      { Delete: { TableName: items, Key: { pk: S("t#b"), sk: S("status") } } },
    ],
  ];
}

interface StreamRecord {
  readonly event: string | undefined;
  readonly keys: Record<string, unknown> | undefined;
  readonly old: Record<string, unknown> | undefined;
  readonly new: Record<string, unknown> | undefined;
}

interface Observed {
  readonly answers: unknown[];
  readonly items: unknown[];
  readonly leases: unknown[];
  readonly stream: StreamRecord[];
}

async function play(via: typeof viaCloud, items: string, leases: string): Promise<Observed> {
  const streamArn = await createTables(via.ddb, items, leases);
  const answers: unknown[] = [];
  for (const transaction of script(items, leases)) {
    try {
      await via.ddb.send(new TransactWriteItemsCommand({ TransactItems: transaction }));
      answers.push("committed");
    } catch (err) {
      answers.push(
        err instanceof TransactionCanceledException
          ? { cancelled: (err.CancellationReasons ?? []).map((r) => ({ code: r.Code, item: r.Item })) }
          : { error: (err as Error).name, message: (err as Error).message.split(items).join("ITEMS").split(leases).join("LEASES") },
      );
    }
  }
  const scan = async (table: string) =>
    ((await via.ddb.send(new ScanCommand({ TableName: table, ConsistentRead: true }))).Items ?? []).sort((x, y) =>
      JSON.stringify(x).localeCompare(JSON.stringify(y)),
    );
  const shard = (await via.streams.send(new DescribeStreamCommand({ StreamArn: streamArn }))).StreamDescription?.Shards?.[0]?.ShardId;
  const iterator = (
    await via.streams.send(new GetShardIteratorCommand({ StreamArn: streamArn, ShardId: shard, ShardIteratorType: "TRIM_HORIZON" }))
  ).ShardIterator;
  const records = (await via.streams.send(new GetRecordsCommand({ ShardIterator: iterator }))).Records ?? [];
  return {
    answers,
    items: await scan(items),
    leases: await scan(leases),
    stream: records.map((r) => ({ event: r.eventName, keys: r.dynamodb?.Keys, old: r.dynamodb?.OldImage, new: r.dynamodb?.NewImage })),
  };
}

it("the same transactions give the same answers and items as moto's own transactions, and the stream DynamoDB would give", async () => {
  const before = cloud.scheduler.snapshot().rehearsedTransactions;
  const rehearsed = await play(viaCloud, "rehearsed-items", "rehearsed-leases");
  expect(cloud.scheduler.snapshot().rehearsedTransactions - before).toBe(8);
  const byMoto = await play(viaMoto, "moto-items", "moto-leases");

  // The script is not trivial: it commits, cancels on either table, and is refused.
  expect(rehearsed.answers.filter((a) => a === "committed")).toHaveLength(4);
  expect(rehearsed.answers[1]).toEqual({
    cancelled: [
      { code: "ConditionalCheckFailed", item: { pk: S("t#a"), sk: S("status"), n: N(1), phase: S("Provisioning") } },
      { code: "None", item: undefined },
    ],
  });
  expect(rehearsed.answers[4]).toMatchObject({ error: "ValidationException" });
  // One record per item a committed transaction wrote, as DynamoDB streams them.
  const k = (pk: string) => ({ pk: S(pk), sk: S("status") });
  expect(rehearsed.stream.map((r) => [r.event, r.keys])).toEqual([
    ["INSERT", k("t#a")],
    ["MODIFY", k("t#a")],
    ["INSERT", k("t#b")],
    ["REMOVE", k("t#a")],
    ["INSERT", k("t#c")],
  ]);
  expect(rehearsed.stream[1]).toMatchObject({
    old: { n: N(1), phase: S("Provisioning") },
    new: { n: N(2), phase: S("Ready"), tags: { SS: ["x", "y"] } },
  });

  expect({ ...rehearsed, stream: undefined }).toEqual({ ...byMoto, stream: undefined });
  // moto's own transaction streams an update that creates an item twice: first an INSERT of the bare key.
  const bareKeyInsert = (r: StreamRecord) => r.event === "INSERT" && Object.keys(r.new ?? {}).length === 2;
  expect(byMoto.stream.filter(bareKeyInsert)).toHaveLength(1);
  expect(rehearsed.stream).toEqual(byMoto.stream.filter((r) => !bareKeyInsert(r)));
});

it("leaves its scratch tables empty and out of ListTables, and makes them again for a table made anew", async () => {
  await play(viaCloud, "scratch-items", "scratch-leases");
  const scratch = scratchName("scratch-items");
  // Only moto directly shows the scratch table; it holds nothing between transactions.
  expect((await viaMoto.ddb.send(new ListTablesCommand({}))).TableNames).toContain(scratch);
  expect((await viaMoto.ddb.send(new ScanCommand({ TableName: scratch }))).Count).toBe(0);
  const listed = (await viaCloud.ddb.send(new ListTablesCommand({}))).TableNames ?? [];
  expect(listed).toContain("scratch-items");
  expect(listed.filter((t) => t.endsWith(".localcloud-transaction"))).toEqual([]);

  // The table is made again with another key: the next transaction works on the new key schema.
  await viaCloud.ddb.send(new DeleteTableCommand({ TableName: "scratch-items" }));
  await viaCloud.ddb.send(
    new CreateTableCommand({
      TableName: "scratch-items",
      AttributeDefinitions: [{ AttributeName: "tenant", AttributeType: "S" }],
      KeySchema: [{ AttributeName: "tenant", KeyType: "HASH" }],
      BillingMode: "PAY_PER_REQUEST",
    }),
  );
  await viaCloud.ddb.send(new PutItemCommand({ TableName: "scratch-items", Item: { tenant: S("t1"), v: N(1) } }));
  await viaCloud.ddb.send(
    new TransactWriteItemsCommand({
      TransactItems: [
        {
          Update: {
            TableName: "scratch-items",
            Key: { tenant: S("t1") },
            UpdateExpression: "SET v = v + :one",
            ConditionExpression: "v = :one",
            ExpressionAttributeValues: { ":one": N(1) },
          },
        },
      ],
    }),
  );
  expect((await viaCloud.ddb.send(new ScanCommand({ TableName: "scratch-items" }))).Items).toEqual([{ tenant: S("t1"), v: N(2) }]);
});
