import { DynamoDBClient, ScanCommand } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureLeaseTable } from "../../src/providers/dynamodb-lease-store.js";
import { PriorityAllocator } from "../../src/providers/priority-allocator.js";
import { startMoto, type MotoServer } from "../support/moto.js";
import { localTarget } from "../../src/localcloud/index.js";
import { awsClient, RETRIES } from "../../src/providers/aws-clients.js";

const TABLE = "tenants-operator";
let moto: MotoServer;
let client: DynamoDBClient;

beforeAll(async () => {
  moto = await startMoto();
  client = awsClient(DynamoDBClient, localTarget(moto.endpoint), RETRIES.standard);
  serializeRequests(client);
  await ensureLeaseTable(client, TABLE);
});

afterAll(async () => {
  client?.destroy();
  await moto?.stop();
});

/**
 * moto's TransactWriteItems is not isolated: a cancelled transaction restores
 * a copy of the whole table taken when it started, undoing writes that other
 * requests made meanwhile (moto/dynamodb/models/__init__.py,
 * transact_write_items). Real DynamoDB isolates transactions, so here the
 * HTTP requests go to moto one at a time; the controllers still run
 * concurrently and race with stale views, and the unit tests check the races
 * against an isolated fake.
 */
function serializeRequests(c: DynamoDBClient): void {
  let tail: Promise<unknown> = Promise.resolve();
  c.middlewareStack.add(
    (next) => async (args) => {
      const run = tail.then(() => next(args));
      tail = run.catch(() => undefined);
      return run;
    },
    { step: "finalizeRequest", name: "serializeForMoto" },
  );
}

async function stored(): Promise<{ numbers: Map<number, string>; owners: Map<string, number> }> {
  const items = (await client.send(new ScanCommand({ TableName: TABLE, ConsistentRead: true }))).Items ?? [];
  const numbers = new Map<number, string>();
  const owners = new Map<string, number>();
  for (const item of items) {
    const pk = item["pk"]?.S ?? "";
    if (pk.startsWith("priority#")) numbers.set(Number(pk.slice("priority#".length)), item["tenantId"]?.S ?? "");
    if (pk.startsWith("priority-of#")) owners.set(pk.slice("priority-of#".length), Number(item["priority"]?.N));
  }
  return { numbers, owners };
}

describe("PriorityAllocator on moto", () => {
  it("50 tenants from 5 concurrent controllers get 50 distinct priorities, 1..50", async () => {
    const controllers = Array.from({ length: 5 }, () => new PriorityAllocator(client, TABLE));
    const tenants = Array.from({ length: 50 }, (_, i) => `tenant-${String(i).padStart(2, "0")}`);
    const got = await Promise.all(tenants.map((t, i) => controllers[i % controllers.length]!.allocate(t)));
    expect(new Set(got).size).toBe(50);
    expect([...got].sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));

    const { numbers, owners } = await stored();
    expect(owners.size).toBe(50);
    for (const [i, t] of tenants.entries()) {
      expect(owners.get(t)).toBe(got[i]);
      expect(numbers.get(got[i]!)).toBe(t);
    }
  });

  it("keeps a tenant's priority, frees it on release, and reuses it", async () => {
    const a = new PriorityAllocator(client, TABLE);
    const kept = await a.get("tenant-07");
    expect(kept).toBeDefined();
    expect(await a.allocate("tenant-07")).toBe(kept);
    expect(await a.release("tenant-07")).toBe(true);
    expect(await a.get("tenant-07")).toBeUndefined();
    expect((await stored()).numbers.has(kept!)).toBe(false);
    expect(await a.allocate("newcomer")).toBe(kept);
    expect(await a.release("tenant-07")).toBe(false);
  });

  it("two controllers allocating for one tenant at once agree", async () => {
    const got = await Promise.all([
      new PriorityAllocator(client, TABLE).allocate("contested"),
      new PriorityAllocator(client, TABLE).allocate("contested"),
    ]);
    expect(got[0]).toBe(got[1]);
    const { numbers, owners } = await stored();
    expect(numbers.get(got[0])).toBe("contested");
    expect(owners.size).toBe(numbers.size);
  });
});
