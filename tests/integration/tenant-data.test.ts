import {
  BatchWriteItemCommand,
  CreateTableCommand,
  DeleteItemCommand,
  DynamoDBClient,
  PutItemCommand,
  QueryCommand,
  UpdateItemCommand,
  type AttributeValue,
} from "@aws-sdk/client-dynamodb";
import { DynamoDBStreamsClient } from "@aws-sdk/client-dynamodb-streams";
import { marshall } from "@aws-sdk/util-dynamodb";
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { PassThrough } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { restoreCommand } from "../../src/cli/commands/restore.js";
import { BackupError, DynamoTenantData } from "../../src/data/index.js";
import { localTarget } from "../../src/localcloud/index.js";
import {
  LeaseLostError,
  SORT_KEYS,
  UnmanagedResourceError,
  type BackupLocation,
  type DataApp,
  type Fence,
  type TableSet,
} from "../../src/ports.js";
import { startTestCloud, type TestCloud } from "../support/localcloud.js";
import { awsClient, RETRIES } from "../../src/providers/aws-clients.js";

type Item = Record<string, AttributeValue>;

const held: Fence = { assertHeld: () => undefined };
const BUCKET = "tenant-backups";
// Fast backoff: the tests wait out injected throttles, not real ones.
const FAST = { baseMs: 5, capMs: 50 };

let cloud: TestCloud;
let dynamodb: DynamoDBClient;
let streams: DynamoDBStreamsClient;
let s3: S3Client;
let data: DynamoTenantData;
let tableCount = 0;

beforeAll(async () => {
  cloud = await startTestCloud();
  const target = localTarget(cloud.endpoint);
  dynamodb = awsClient(DynamoDBClient, target, RETRIES.standard);
  streams = awsClient(DynamoDBStreamsClient, target, RETRIES.standard);
  s3 = awsClient(S3Client, target, RETRIES.standard);
  data = new DynamoTenantData(dynamodb, streams, s3, { retry: FAST });
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
}, 120_000);

afterAll(async () => {
  dynamodb?.destroy();
  streams?.destroy();
  s3?.destroy();
  await cloud?.stop();
});

async function createTable(app: DataApp, tags?: Record<string, string>): Promise<string> {
  const name = `${app}-t${++tableCount}`;
  await dynamodb.send(
    new CreateTableCommand({
      TableName: name,
      AttributeDefinitions: [
        { AttributeName: "tenantId", AttributeType: "S" },
        { AttributeName: SORT_KEYS[app], AttributeType: "S" },
      ],
      KeySchema: [
        { AttributeName: "tenantId", KeyType: "HASH" },
        { AttributeName: SORT_KEYS[app], KeyType: "RANGE" },
      ],
      BillingMode: "PAY_PER_REQUEST",
      StreamSpecification: { StreamEnabled: true, StreamViewType: "NEW_AND_OLD_IMAGES" },
      ...(tags !== undefined ? { Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })) } : {}),
    }),
  );
  return name;
}

async function createTables(): Promise<TableSet> {
  return { orders: await createTable("orders"), products: await createTable("products") };
}

/** An item with every attribute type, so "moved unchanged" covers numbers, sets, maps and binary. */
function richItem(tenantId: string, app: DataApp, n: number, padding = 0): Item {
  return {
    tenantId: { S: tenantId },
    [SORT_KEYS[app]]: { S: `${app}-${String(n).padStart(5, "0")}` },
    quantity: { N: String(n) },
    price: { N: "12345678901234567890.123456789" },
    tags: { SS: ["red", `tag-${n % 7}`] },
    sizes: { NS: ["1", "2.5", String(n)] },
    blob: { B: Uint8Array.from([0, 255, n % 256, 7]) },
    blobs: { BS: [Uint8Array.from([1]), Uint8Array.from([2, n % 256])] },
    address: { M: { street: { S: "Main" }, zip: { N: "12345" }, geo: { L: [{ N: "1.5" }, { N: "-2" }] } } },
    lines: { L: [{ S: "a" }, { BOOL: true }, { NULL: true }, { M: { k: { S: "v" } } }] },
    active: { BOOL: n % 2 === 0 },
    nothing: { NULL: true },
    ...(padding > 0 ? { notes: { S: "x".repeat(padding) } } : {}),
  };
}

async function seed(table: string, items: readonly Item[]): Promise<void> {
  for (let i = 0; i < items.length; i += 25) {
    const out = await dynamodb.send(
      new BatchWriteItemCommand({ RequestItems: { [table]: items.slice(i, i + 25).map((Item) => ({ PutRequest: { Item } })) } }),
    );
    expect(out.UnprocessedItems?.[table] ?? []).toEqual([]);
  }
}

async function itemsOf(table: string, tenantId: string): Promise<Item[]> {
  const out: Item[] = [];
  let start: Item | undefined;
  do {
    const page = await dynamodb.send(
      new QueryCommand({
        TableName: table,
        ConsistentRead: true,
        KeyConditionExpression: "tenantId = :t",
        ExpressionAttributeValues: { ":t": { S: tenantId } },
        ...(start !== undefined ? { ExclusiveStartKey: start } : {}),
      }),
    );
    out.push(...(page.Items ?? []));
    start = page.LastEvaluatedKey;
  } while (start !== undefined);
  return out;
}

const keyOf = (item: Item, app: DataApp) => item[SORT_KEYS[app]]?.S;

describe("tier move: backfill and change capture", () => {
  let source: string;
  let target: string;
  const A = "tenant-a";
  const B = "tenant-b";
  // 5 KB each: 300 items are ~1.5 MB, more than one Query page.
  const aItems = Array.from({ length: 300 }, (_, i) => richItem(A, "orders", i, 5000));
  const bItems = Array.from({ length: 40 }, (_, i) => richItem(B, "orders", i));
  let checkpoint: Awaited<ReturnType<DynamoTenantData["openCapture"]>>;

  beforeAll(async () => {
    source = await createTable("orders");
    target = await createTable("orders");
    await seed(source, [...aItems, ...bItems]);
  });

  it("backfill copies every item of the tenant, over several pages and batches, and none of another tenant", async () => {
    checkpoint = await data.openCapture(source);
    expect(checkpoint.streamArn).toContain(`table/${source}/stream/`);
    // The seeding is history before the checkpoint: every shard points past it.
    expect(Object.values(checkpoint.shards).every((s) => s !== "")).toBe(true);

    const queries = cloud.control.snapshot().calls["dynamodb:Query"] ?? 0;
    const result = await data.backfill(A, source, target, held);
    expect(result.items).toBe(300);
    // ~1.6 MB of the tenant's items: DynamoDB's 1 MB page limit splits the read.
    expect((cloud.control.snapshot().calls["dynamodb:Query"] ?? 0) - queries).toBeGreaterThanOrEqual(2);
    const copied = await itemsOf(target, A);
    expect(copied).toHaveLength(300);
    expect(copied).toEqual(await itemsOf(source, A));
    expect(await itemsOf(target, B)).toEqual([]);
    expect(await data.digest(A, target)).toEqual(await data.digest(A, source));
  });

  it("catchUp replays puts, updates and deletes made during and after the backfill; a second catchUp applies nothing", async () => {
    const fresh = await createTable("orders");
    const opened = await data.openCapture(source);
    const during = data.backfill(A, source, fresh, held);
    // Changes racing the backfill: whichever side of its read they land, the capture must replay them.
    await dynamodb.send(new PutItemCommand({ TableName: source, Item: richItem(A, "orders", 9001) }));
    await dynamodb.send(new DeleteItemCommand({ TableName: source, Key: { tenantId: { S: A }, orderId: { S: "orders-00299" } } }));
    await during;
    // And after it.
    await dynamodb.send(
      new UpdateItemCommand({
        TableName: source,
        Key: { tenantId: { S: A }, orderId: { S: "orders-00001" } },
        UpdateExpression: "SET quantity = :q, tags = :t",
        ExpressionAttributeValues: { ":q": { N: "777" }, ":t": { SS: ["changed"] } },
      }),
    );
    await dynamodb.send(new DeleteItemCommand({ TableName: source, Key: { tenantId: { S: A }, orderId: { S: "orders-00000" } } }));
    await dynamodb.send(new PutItemCommand({ TableName: source, Item: richItem(A, "orders", 9002) }));
    // Another tenant's changes on the same stream are not copied.
    await dynamodb.send(new PutItemCommand({ TableName: source, Item: richItem(B, "orders", 9003) }));

    const first = await data.catchUp(A, source, fresh, opened, held);
    expect(first.applied).toBe(5);
    expect(await data.digest(A, fresh)).toEqual(await data.digest(A, source));
    const fresher = await itemsOf(fresh, A);
    expect(fresher.map((i) => keyOf(i, "orders"))).toContain("orders-09002");
    expect(fresher.map((i) => keyOf(i, "orders"))).not.toContain("orders-00000");
    expect(fresher.find((i) => keyOf(i, "orders") === "orders-00001")?.["quantity"]).toEqual({ N: "777" });
    expect(await itemsOf(fresh, B)).toEqual([]);

    const second = await data.catchUp(A, source, fresh, first.checkpoint, held);
    expect(second.applied).toBe(0);
    expect(second.checkpoint).toEqual(first.checkpoint);

    // The earlier move's target catches up from its older checkpoint too: it sees the same changes.
    const older = await data.catchUp(A, source, target, checkpoint, held);
    expect(older.applied).toBe(5);
    expect(await data.digest(A, target)).toEqual(await data.digest(A, source));
  });

  it("is safe to repeat after a crash: backfill twice, catchUp again from an older checkpoint, same final state", async () => {
    const expected = await data.digest(A, source);
    expect(await data.backfill(A, source, target, held)).toEqual({ items: expected.count });
    const again = await data.catchUp(A, source, target, checkpoint, held);
    expect(again.applied).toBe(5);
    expect(await data.digest(A, target)).toEqual(expected);
    expect(await itemsOf(target, B)).toEqual([]);
  });

  it("stops writing when the fence is lost, and when the signal aborts", async () => {
    const fresh = await createTable("orders");
    const lost: Fence = {
      assertHeld: () => {
        throw new LeaseLostError();
      },
    };
    await expect(data.backfill(A, source, fresh, lost)).rejects.toBeInstanceOf(LeaseLostError);
    expect(await itemsOf(fresh, A)).toEqual([]);
    const abort = new AbortController();
    abort.abort(new Error("shutting down"));
    await expect(data.backfill(A, source, fresh, held, abort.signal)).rejects.toThrow("shutting down");
    expect(await itemsOf(fresh, A)).toEqual([]);
  });

  it("purge deletes only the tenant's items; a missing table is nothing to delete", async () => {
    const bBefore = await data.digest(B, source);
    const aCount = (await data.digest(A, source)).count;
    expect(await data.purge(A, source, held)).toEqual({ deleted: aCount });
    expect(await data.digest(A, source)).toMatchObject({ count: 0 });
    expect(await data.digest(B, source)).toEqual(bBefore);
    expect(await data.purge(A, source, held)).toEqual({ deleted: 0 });
    expect(await data.purge(A, "no-such-table", held)).toEqual({ deleted: 0 });
  });

  it("backfills everything while the target throttles BatchWriteItem", async () => {
    const throttledSource = await createTable("orders");
    await seed(throttledSource, aItems.slice(0, 120));
    const fresh = await createTable("orders");
    // No SDK retries: every injected throttle reaches the mover's own backoff.
    const bare = awsClient(DynamoDBClient, localTarget(cloud.endpoint), RETRIES.none);
    try {
      const mover = new DynamoTenantData(bare, streams, s3, { retry: FAST });
      cloud.control.setFaults([
        { service: "dynamodb", action: "BatchWriteItem", errorCode: "ProvisionedThroughputExceededException", count: 5 },
      ]);
      const before = cloud.control.snapshot().calls["dynamodb:BatchWriteItem"] ?? 0;
      expect(await mover.backfill(A, throttledSource, fresh, held)).toEqual({ items: 120 });
      // Every injected throttle was hit, and each refused batch was sent again.
      expect(cloud.control.snapshot().faults).toEqual([]);
      expect((cloud.control.snapshot().calls["dynamodb:BatchWriteItem"] ?? 0) - before).toBe(Math.ceil(120 / 25) + 5);
      expect(await mover.digest(A, fresh)).toEqual(await mover.digest(A, throttledSource));
    } finally {
      cloud.control.setFaults([]);
      bare.destroy();
    }
  });
});

describe("offboarding export and restore", () => {
  const A = "tenant-x";
  const B = "tenant-y";
  let tables: TableSet;
  const at = (prefix: string): BackupLocation => ({ bucket: BUCKET, prefix });

  beforeAll(async () => {
    tables = await createTables();
    await seed(tables.orders, [
      ...Array.from({ length: 60 }, (_, i) => richItem(A, "orders", i, 3000)),
      ...Array.from({ length: 5 }, (_, i) => richItem(B, "orders", i)),
    ]);
    await seed(
      tables.products,
      Array.from({ length: 30 }, (_, i) => richItem(A, "products", i)),
    );
  });

  it("exports DynamoDB-export JSON lines and a manifest; restore into fresh tables gives equal digests, twice", async () => {
    // Objects close at 64 KB, so orders (~190 KB) spans several.
    const small = new DynamoTenantData(dynamodb, streams, s3, { retry: FAST, maxExportObjectBytes: 64 * 1024 });
    const manifest = await small.exportTenant(A, tables, at("backups/tenant-x/"), held);
    expect(manifest.tenantId).toBe(A);
    expect(manifest.location).toBe(`s3://${BUCKET}/backups/tenant-x/`);
    expect(manifest.tables.orders.itemCount).toBe(60);
    expect(manifest.tables.products.itemCount).toBe(30);
    expect(manifest.tables.orders.dataFiles.length).toBeGreaterThan(1);
    expect(manifest.tables.orders.dataFiles[0]).toBe("backups/tenant-x/data/orders-0.json");
    expect(manifest.tables.products.dataFiles).toEqual(["backups/tenant-x/data/products-0.json"]);

    const stored = JSON.parse(await text("backups/tenant-x/manifest.json")) as unknown;
    expect(stored).toEqual(manifest);
    const firstLine = (await text("backups/tenant-x/data/products-0.json")).split("\n")[0] ?? "";
    const line = JSON.parse(firstLine) as { Item: Record<string, unknown> };
    expect(Object.keys(line)).toEqual(["Item"]);
    expect(line.Item["tenantId"]).toEqual({ S: A });
    expect(line.Item["productId"]).toEqual({ S: "products-00000" });
    expect(line.Item["price"]).toEqual({ N: "12345678901234567890.123456789" });
    expect(line.Item["blob"]).toEqual({ B: Buffer.from([0, 255, 0, 7]).toString("base64") });
    expect(line.Item["sizes"]).toMatchObject({ NS: expect.arrayContaining(["1", "2.5"]) as unknown });

    const fresh = await createTables();
    expect(await data.restore(A, at("backups/tenant-x/"), fresh)).toEqual({ orders: 60, products: 30 });
    for (const app of ["orders", "products"] as const) expect(await data.digest(A, fresh[app])).toEqual(await data.digest(A, tables[app]));
    expect(await data.restore(A, at("backups/tenant-x/"), fresh)).toEqual({ orders: 60, products: 30 });
    for (const app of ["orders", "products"] as const) {
      expect(await data.digest(A, fresh[app])).toEqual(await data.digest(A, tables[app]));
      expect(await itemsOf(fresh[app], B)).toEqual([]);
    }
  });

  it("overwrites an export at the same prefix, leaving no stale data objects", async () => {
    const small = new DynamoTenantData(dynamodb, streams, s3, { retry: FAST, maxExportObjectBytes: 32 * 1024 });
    const big = await small.exportTenant(A, tables, at("again/"), held);
    expect(big.tables.orders.dataFiles.length).toBeGreaterThan(2);
    const one = await data.exportTenant(A, tables, at("again/"), held);
    expect(one.tables.orders.dataFiles).toEqual(["again/data/orders-0.json"]);
    const keys = ((await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: "again/" }))).Contents ?? []).map((o) => o.Key).sort();
    expect(keys).toEqual(["again/data/orders-0.json", "again/data/products-0.json", "again/manifest.json"]);
    const fresh = await createTables();
    expect(await data.restore(A, at("again/"), fresh)).toEqual({ orders: 60, products: 30 });
  });

  it("refuses a backup of another tenant, a line of another tenant, and a missing manifest, writing nothing", async () => {
    await data.exportTenant(A, tables, at("tampered/"), held);
    const fresh = await createTables();
    await expect(data.restore(B, at("tampered/"), fresh)).rejects.toBeInstanceOf(BackupError);

    const body = await text("tampered/data/products-0.json");
    const foreign = JSON.stringify({ Item: { tenantId: { S: B }, productId: { S: "p-leak" } } });
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: "tampered/data/products-0.json", Body: `${body}${foreign}\n` }));
    const manifest = JSON.parse(await text("tampered/manifest.json")) as { tables: { products: { itemCount: number } } };
    manifest.tables.products.itemCount += 1;
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: "tampered/manifest.json", Body: JSON.stringify(manifest) }));
    const refused = data.restore(A, at("tampered/"), fresh);
    await expect(refused).rejects.toBeInstanceOf(BackupError);
    await expect(refused).rejects.toThrow(/line 31: the item belongs to tenant tenant-y, not tenant-x/);
    expect(await itemsOf(fresh.orders, A)).toEqual([]);
    expect(await itemsOf(fresh.products, A)).toEqual([]);

    await expect(data.restore(A, at("nothing-here/"), fresh)).rejects.toThrow(/no export at s3:\/\/tenant-backups\/nothing-here\//);
  });
});

describe("tenantctl restore", () => {
  const run = async (args: string[]) => {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    let out = "";
    let err = "";
    stdout.on("data", (c: Buffer) => (out += c.toString()));
    stderr.on("data", (c: Buffer) => (err += c.toString()));
    const code = await restoreCommand.run(args, { stdout, stderr, stdin: new PassThrough(), env: cloud.env });
    return { code, out, err };
  };
  const putRecord = (item: Record<string, unknown>) =>
    dynamodb.send(new PutItemCommand({ TableName: cloud.config.tenantsTable, Item: marshall(item) }));

  it("loads an export into the tables named by the record's status.tables, idempotently, and says why when there are none", async () => {
    const tables = await createTables();
    await seed(
      tables.orders,
      Array.from({ length: 7 }, (_, i) => richItem("cli-t", "orders", i)),
    );
    await seed(
      tables.products,
      Array.from({ length: 3 }, (_, i) => richItem("cli-t", "products", i)),
    );
    await data.exportTenant("cli-t", tables, { bucket: BUCKET, prefix: "cli/cli-t/" }, held);

    await putRecord({ tenantId: "cli-t", tier: "basic", tenantName: "T" });
    const none = await run(["cli-t", "--from", `s3://${BUCKET}/cli/cli-t/`]);
    expect(none.code).toBe(1);
    expect(none.err).toMatch(/tenant\/cli-t has no status\.tables/);

    const current = await createTables();
    await putRecord({ tenantId: "cli-t", tier: "basic", tenantName: "T", status: { phase: "Ready", tables: current } });
    for (let round = 0; round < 2; round++) {
      const ok = await run(["cli-t", "--from", `s3://${BUCKET}/cli/cli-t`]);
      expect(ok.err).toBe("");
      expect(ok.code).toBe(0);
      expect(ok.out).toMatch(new RegExp(`orders\\s+${current.orders}\\s+7`));
      expect(ok.out).toMatch(new RegExp(`products\\s+${current.products}\\s+3`));
      for (const app of ["orders", "products"] as const)
        expect(await data.digest("cli-t", current[app])).toEqual(await data.digest("cli-t", tables[app]));
    }

    const missing = await run(["cli-t", "--from", `s3://${BUCKET}/cli/elsewhere/`]);
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/no export at s3:\/\/tenant-backups\/cli\/elsewhere\//);
  });
});

describe("tables", () => {
  it("dropTable refuses an untagged table, deletes a tagged one; a missing table is success", async () => {
    const untagged = await createTable("orders");
    await expect(data.dropTable(untagged, held)).rejects.toBeInstanceOf(UnmanagedResourceError);
    expect(await data.tableStatus(untagged)).toBe("ACTIVE");

    const other = await createTable("orders", { "managed-by": "someone-else" });
    await expect(data.dropTable(other, held)).rejects.toBeInstanceOf(UnmanagedResourceError);

    const owned = await createTable("orders", { "managed-by": "ecs-tenant-operator", "tenant-id": "t1" });
    await data.dropTable(owned, held);
    expect(await data.tableStatus(owned)).toBeUndefined();
    await data.dropTable(owned, held);
    expect(await data.tableStatus("never-existed")).toBeUndefined();
  });

  it("openCapture refuses a table without a stream", async () => {
    await dynamodb.send(
      new CreateTableCommand({
        TableName: "no-stream",
        AttributeDefinitions: [{ AttributeName: "tenantId", AttributeType: "S" }],
        KeySchema: [{ AttributeName: "tenantId", KeyType: "HASH" }],
        BillingMode: "PAY_PER_REQUEST",
      }),
    );
    await expect(data.openCapture("no-stream")).rejects.toThrow(/has no stream/);
  });
});

async function text(key: string): Promise<string> {
  const res = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return (await res.Body?.transformToString("utf8")) ?? "";
}
