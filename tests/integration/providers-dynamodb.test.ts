import { CreateTableCommand, DeleteItemCommand, GetItemCommand, PutItemCommand, UpdateItemCommand } from "@aws-sdk/client-dynamodb";
import { marshall, unmarshall } from "@aws-sdk/util-dynamodb";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { LeaseLostError, type Fence, type RawTenantItem, type TenantChange } from "../../src/ports.js";
import type { TenantStatus } from "../../src/tenants/status.js";
import { createAwsClients, type AwsClients } from "../../src/providers/aws-clients.js";
import { CallCounter } from "../../src/providers/call-counter.js";
import { DynamoTenantStore } from "../../src/providers/tenant-store.js";
import { DynamoStreamSource, isSpecChange } from "../../src/providers/tenant-stream.js";
import { localAwsEnv, startMoto, type MotoServer } from "../support/moto.js";

const TABLE = "tenants";
const held: Fence = { assertHeld: () => undefined };

let moto: MotoServer;
let clients: AwsClients;
let counter: CallCounter;
let store: DynamoTenantStore;

beforeAll(async () => {
  moto = await startMoto();
  Object.assign(process.env, localAwsEnv(moto.endpoint));
  counter = new CallCounter();
  clients = createAwsClients({ region: "us-east-1", endpoint: moto.endpoint }, counter);
  await clients.dynamodb.send(
    new CreateTableCommand({
      TableName: TABLE,
      AttributeDefinitions: [{ AttributeName: "tenantId", AttributeType: "S" }],
      KeySchema: [{ AttributeName: "tenantId", KeyType: "HASH" }],
      BillingMode: "PAY_PER_REQUEST",
      StreamSpecification: { StreamEnabled: true, StreamViewType: "NEW_AND_OLD_IMAGES" },
    }),
  );
  store = new DynamoTenantStore(clients.dynamodb, TABLE, { pageSize: 10 });
});

afterAll(async () => {
  clients?.destroy();
  await moto?.stop();
});

const put = (item: Record<string, unknown>) => clients.dynamodb.send(new PutItemCommand({ TableName: TABLE, Item: marshall(item) }));
const raw = async (tenantId: string) => {
  const res = await clients.dynamodb.send(new GetItemCommand({ TableName: TABLE, Key: marshall({ tenantId }), ConsistentRead: true }));
  return res.Item === undefined ? undefined : unmarshall(res.Item);
};

const status: TenantStatus = {
  phase: "Ready",
  conditions: [
    { type: "Ready", status: "True", reason: "ServicesStable", message: "all running", lastTransitionTime: "2024-01-01T00:00:00.000Z" },
  ],
  observedSpecHash: "abc",
  message: "ready",
  lastReconciledAt: "2024-01-01T00:00:00.000Z",
  serviceArns: ["arn:aws:ecs:us-east-1:123456789012:service/c/s"],
};

describe("DynamoTenantStore", () => {
  it("scans every item page by page, as plain JS values", async () => {
    for (let i = 0; i < 25; i++) {
      await put({
        tenantId: `scan-${String(i).padStart(2, "0")}`,
        tier: "basic",
        tenantName: `T${i}`,
        apps: { orders: { desiredCount: 2 } },
        sbtaws_active: true,
      });
    }
    const pages: (readonly RawTenantItem[])[] = [];
    for await (const page of store.scan()) pages.push(page);
    const items = pages.flat().filter((i) => String(i["tenantId"]).startsWith("scan-"));
    expect(pages.length).toBeGreaterThanOrEqual(3);
    expect(items).toHaveLength(25);
    expect(items[0]).toMatchObject({ apps: { orders: { desiredCount: 2 } }, sbtaws_active: true });
    expect(typeof (items[0]?.["apps"] as { orders: { desiredCount: unknown } }).orders.desiredCount).toBe("number");
  });

  it("gets an item, and undefined for one that does not exist", async () => {
    await put({ tenantId: "get-1", tier: "PREMIUM", tenantName: "G" });
    expect(await store.get("get-1")).toEqual({ tenantId: "get-1", tier: "PREMIUM", tenantName: "G" });
    expect(await store.get("nope")).toBeUndefined();
  });

  it("writes status and nothing else", async () => {
    await put({ tenantId: "ws-1", tier: "advanced", tenantName: "W", custom: "kept", apps: { users: { version: "2" } } });
    expect(await store.writeStatus("ws-1", status, held)).toBe(true);
    expect(await raw("ws-1")).toEqual({
      tenantId: "ws-1",
      tier: "advanced",
      tenantName: "W",
      custom: "kept",
      apps: { users: { version: "2" } },
      status,
    });
    // a second write replaces the status map, still leaving the spec alone
    expect(await store.writeStatus("ws-1", { ...status, phase: "Degraded" }, held)).toBe(true);
    expect(await raw("ws-1")).toMatchObject({ tier: "advanced", custom: "kept", status: { phase: "Degraded" } });
  });

  it("returns false for a deleted item and does not recreate it", async () => {
    await put({ tenantId: "ws-gone", tier: "basic", tenantName: "X" });
    await clients.dynamodb.send(new DeleteItemCommand({ TableName: TABLE, Key: marshall({ tenantId: "ws-gone" }) }));
    expect(await store.writeStatus("ws-gone", status, held)).toBe(false);
    expect(await raw("ws-gone")).toBeUndefined();
  });

  it("does not write once the lease is lost", async () => {
    await put({ tenantId: "ws-fenced", tier: "basic", tenantName: "F" });
    const before = counter.total({ service: "dynamodb", operation: "UpdateItem" });
    // Earlier tests' status writes went through the shared, instrumented client.
    expect(before).toBeGreaterThan(0);
    const lost: Fence = {
      assertHeld: () => {
        throw new LeaseLostError();
      },
    };
    await expect(store.writeStatus("ws-fenced", status, lost)).rejects.toBeInstanceOf(LeaseLostError);
    expect(counter.total({ service: "dynamodb", operation: "UpdateItem" })).toBe(before);
    expect((await raw("ws-fenced"))?.["status"]).toBeUndefined();
  });
});

describe("DynamoStreamSource on moto", () => {
  it("sees an insert, a modify and a remove made after start, and tells a status-only write apart", async () => {
    await put({ tenantId: "before-start", tier: "basic", tenantName: "B" });
    const changes: TenantChange[] = [];
    const source = new DynamoStreamSource(clients.dynamodb, clients.streams, TABLE, { pollIntervalMs: 20 });
    await source.start((c) => changes.push(...c));
    try {
      await put({ tenantId: "s-1", tier: "basic", tenantName: "S" });
      await clients.dynamodb.send(
        new UpdateItemCommand({
          TableName: TABLE,
          Key: marshall({ tenantId: "s-1" }),
          UpdateExpression: "SET tier = :t",
          ExpressionAttributeValues: marshall({ ":t": "premium" }),
        }),
      );
      await store.writeStatus("s-1", status, held);
      await clients.dynamodb.send(new DeleteItemCommand({ TableName: TABLE, Key: marshall({ tenantId: "s-1" }) }));

      await vi.waitFor(() => expect(changes).toHaveLength(4), { timeout: 10_000, interval: 50 });
      expect(changes.map((c) => [c.tenantId, c.kind, isSpecChange(c)])).toEqual([
        ["s-1", "upsert", true],
        ["s-1", "upsert", true],
        ["s-1", "upsert", false],
        ["s-1", "remove", true],
      ]);
      expect(changes[1]?.oldSpecHash).toBe(changes[0]?.newSpecHash);
      // The item written before start is the initial scan's business, not the stream's.
      expect(changes.some((c) => c.tenantId === "before-start")).toBe(false);
    } finally {
      await source.stop();
    }
  });
});
