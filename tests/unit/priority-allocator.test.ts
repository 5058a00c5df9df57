import {
  DynamoDBClient,
  GetItemCommand,
  ScanCommand,
  TransactWriteItemsCommand,
  TransactionCanceledException,
  type AttributeValue,
  type GetItemCommandInput,
  type ScanCommandInput,
  type TransactWriteItem,
  type TransactWriteItemsCommandInput,
} from "@aws-sdk/client-dynamodb";
import { mockClient, type AwsClientStub } from "aws-sdk-client-mock";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { PrioritiesExhaustedError, PriorityAllocator } from "../../src/providers/priority-allocator.js";
import { TransientError } from "../../src/errors.js";

type Item = Record<string, AttributeValue>;

/**
 * An in-memory stand-in for the operator table with DynamoDB's guarantees
 * for what the allocator uses: strongly consistent reads, and transactions
 * that check every condition and apply every write with no other request in
 * between. Each request first yields a random number of turns, so concurrent
 * callers interleave the way they do against the real service. It also
 * answers TransactionConflict now and then, as DynamoDB may.
 */
class FakeTable {
  readonly items = new Map<string, Item>();
  conflictRate = 0;
  transactions = 0;
  scans = 0;
  pageSize = 100;

  install(mock: AwsClientStub<DynamoDBClient>): void {
    mock.on(GetItemCommand).callsFake(async (input: GetItemCommandInput) => {
      await jitter();
      const item = this.items.get(input.Key?.["pk"]?.S ?? "");
      return item === undefined ? {} : { Item: structuredClone(item) };
    });
    mock.on(ScanCommand).callsFake(async (input: ScanCommandInput) => {
      await jitter();
      this.scans++;
      expect(input.ConsistentRead).toBe(true);
      const prefix = input.ExpressionAttributeValues?.[":prefix"]?.S ?? "";
      expect(input.FilterExpression).toBe("begins_with(pk, :prefix)");
      const keys = [...this.items.keys()].sort();
      const from = input.ExclusiveStartKey === undefined ? 0 : keys.indexOf(input.ExclusiveStartKey["pk"]?.S ?? "") + 1;
      const page = keys.slice(from, from + this.pageSize);
      const last = page[page.length - 1];
      return {
        Items: page.filter((k) => k.startsWith(prefix)).map((k) => ({ pk: { S: k } })),
        ...(from + this.pageSize < keys.length && last !== undefined ? { LastEvaluatedKey: { pk: { S: last } } } : {}),
      };
    });
    mock.on(TransactWriteItemsCommand).callsFake(async (input: TransactWriteItemsCommandInput) => {
      await jitter();
      this.transactions++;
      const ops: TransactWriteItem[] = input.TransactItems ?? [];
      if (Math.random() < this.conflictRate) throw cancelled(ops.map(() => "TransactionConflict"));
      // Everything below runs without yielding: the transaction is atomic.
      const codes = ops.map((op) => (this.#holds(op) ? "None" : "ConditionalCheckFailed"));
      if (codes.some((c) => c !== "None")) throw cancelled(codes);
      for (const op of ops) {
        if (op.Put) this.items.set(op.Put.Item!["pk"]!.S!, structuredClone(op.Put.Item!));
        else if (op.Delete) this.items.delete(op.Delete.Key!["pk"]!.S!);
        else throw new Error("unexpected transaction item");
      }
      return {};
    });
  }

  /** Evaluates exactly the conditions the allocator writes; anything else fails the test. */
  #holds(op: TransactWriteItem): boolean {
    const spec = op.Put ?? op.Delete;
    if (spec === undefined) throw new Error("unexpected transaction item");
    const pk = (op.Put ? op.Put.Item! : op.Delete!.Key!)["pk"]!.S!;
    const existing = this.items.get(pk);
    const names = spec.ExpressionAttributeNames ?? {};
    const values = spec.ExpressionAttributeValues ?? {};
    const cond = spec.ConditionExpression;
    if (cond === undefined) return true;
    if (cond === "attribute_not_exists(pk)") return existing === undefined;
    const eq = /^(#\w+) = (:\w+)$/.exec(cond ?? "");
    if (eq !== null) {
      const attr = names[eq[1]!]!;
      const want = values[eq[2]!]!;
      return existing !== undefined && JSON.stringify(existing[attr]) === JSON.stringify(want);
    }
    throw new Error(`the fake does not know condition ${cond}`);
  }

  /** Both directions of every allocation agree, and no number has two owners. */
  allocations(): Map<string, number> {
    const byTenant = new Map<string, number>();
    const byNumber = new Map<number, string>();
    for (const [pk, item] of this.items) {
      if (pk.startsWith("priority-of#")) byTenant.set(pk.slice("priority-of#".length), Number(item["priority"]!.N));
      else if (pk.startsWith("priority#")) byNumber.set(Number(pk.slice("priority#".length)), item["tenantId"]!.S!);
    }
    expect(byNumber.size).toBe(byTenant.size);
    for (const [tenant, n] of byTenant) expect(byNumber.get(n)).toBe(tenant);
    return byTenant;
  }
}

function cancelled(codes: string[]): TransactionCanceledException {
  return new TransactionCanceledException({
    message: `Transaction cancelled [${codes.join(", ")}]`,
    $metadata: { httpStatusCode: 400 },
    CancellationReasons: codes.map((Code) => ({ Code })),
  });
}

async function jitter(): Promise<void> {
  for (let i = Math.floor(Math.random() * 4); i > 0; i--) await new Promise<void>((r) => setImmediate(r));
}

const ddbMock = mockClient(DynamoDBClient);
let table: FakeTable;
let client: DynamoDBClient;

beforeEach(() => {
  ddbMock.reset();
  table = new FakeTable();
  table.install(ddbMock);
  client = new DynamoDBClient({ region: "us-east-1" });
});
afterEach(() => client.destroy());

const allocator = (options: ConstructorParameters<typeof PriorityAllocator>[2] = {}) => new PriorityAllocator(client, "ops", options);

describe("PriorityAllocator", () => {
  it("gives the lowest free numbers, and the same number again to the same tenant", async () => {
    const a = allocator();
    expect(await a.allocate("t1")).toBe(1);
    expect(await a.allocate("t2")).toBe(2);
    expect(await a.allocate("t1")).toBe(1);
    expect(await a.get("t2")).toBe(2);
    expect(await a.get("nobody")).toBeUndefined();
    expect(table.allocations()).toEqual(
      new Map([
        ["t1", 1],
        ["t2", 2],
      ]),
    );
  });

  it("reuses a released number, and releasing twice is harmless", async () => {
    const a = allocator();
    for (const t of ["a", "b", "c"]) await a.allocate(t);
    expect(await a.release("b")).toBe(true);
    expect(await a.release("b")).toBe(false);
    expect(await a.get("b")).toBeUndefined();
    expect(await a.allocate("d")).toBe(2);
    expect(await a.allocate("e")).toBe(4);
    expect(table.allocations()).toEqual(
      new Map([
        ["a", 1],
        ["c", 3],
        ["d", 2],
        ["e", 4],
      ]),
    );
  });

  it("reuses a number another controller released once its view is rescanned", async () => {
    let now = 0;
    const mine = allocator({ rescanAfterMs: 1_000, now: () => now });
    const theirs = allocator();
    for (const t of ["a", "b", "c"]) await mine.allocate(t);
    await theirs.release("b");
    // Within the rescan interval the cached view still holds 2: a gap, never a duplicate.
    expect(await mine.allocate("d")).toBe(4);
    now += 1_000;
    expect(await mine.allocate("e")).toBe(2);
    table.allocations();
  });

  it("after losing a race to a stale view, rescans instead of walking up one number at a time", async () => {
    table.pageSize = 1_000;
    const stale = allocator();
    await stale.allocate("seed"); // scans now: {} then takes 1
    const other = allocator();
    for (let i = 0; i < 10; i++) await other.allocate(`x${i}`); // takes 2..11 behind stale's back
    const [transactions, scans] = [table.transactions, table.scans];
    expect(await stale.allocate("late")).toBe(12);
    expect(table.transactions - transactions).toBe(2); // 2 lost, 12 won
    expect(table.scans - scans).toBe(1);
  });

  it("no duplicates across 500 allocations from 8 concurrent workers (separate controllers)", async () => {
    table.conflictRate = 0.05;
    const workers = Array.from({ length: 8 }, () => allocator());
    const tenants = Array.from({ length: 500 }, (_, i) => `tenant-${i}`);
    const results = new Map<string, number>();
    let next = 0;
    await Promise.all(
      workers.map(async (w) => {
        while (next < tenants.length) {
          const t = tenants[next++]!;
          results.set(t, await w.allocate(t));
        }
      }),
    );
    const numbers = [...results.values()];
    expect(results.size).toBe(500);
    expect(new Set(numbers).size).toBe(500);
    expect(Math.min(...numbers)).toBeGreaterThanOrEqual(1);
    expect(Math.max(...numbers)).toBeLessThanOrEqual(500 + 8); // lowest free, give or take the racing workers' gaps
    expect(table.allocations()).toEqual(results);
  });

  it("two controllers allocating for the same tenant at once agree on one number", async () => {
    for (let round = 0; round < 20; round++) {
      const tenant = `same-${round}`;
      const got = await Promise.all(Array.from({ length: 4 }, () => allocator().allocate(tenant)));
      expect(new Set(got).size).toBe(1);
    }
    const all = table.allocations();
    expect(all.size).toBe(20);
    expect(new Set(all.values()).size).toBe(20);
  });

  it("concurrent allocate and release of many tenants keep the table consistent and reuse freed numbers", async () => {
    const workers = Array.from({ length: 4 }, () => allocator());
    await Promise.all(workers.map((w, i) => Promise.all(Array.from({ length: 25 }, (_, j) => w.allocate(`t-${i}-${j}`)))));
    await Promise.all(
      workers.map((w, i) =>
        Promise.all(Array.from({ length: 25 }, (_, j) => (j % 2 === 0 ? w.release(`t-${i}-${j}`) : Promise.resolve(true)))),
      ),
    );
    const afterRelease = table.allocations();
    expect(afterRelease.size).toBe(4 * 12);
    const fresh = allocator(); // scans, sees the holes
    const reused = await Promise.all(Array.from({ length: 52 }, (_, k) => fresh.allocate(`new-${k}`)));
    for (const n of reused) expect([...afterRelease.values()]).not.toContain(n);
    // Every hole is filled again: the 100 tenants hold exactly 1..100.
    const all = [...table.allocations().values()].sort((x, y) => x - y);
    expect(all).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
  });

  it("says so when every number is taken", async () => {
    const a = allocator({ min: 1, max: 3 });
    for (const t of ["a", "b", "c"]) await a.allocate(t);
    await expect(a.allocate("d")).rejects.toBeInstanceOf(PrioritiesExhaustedError);
    await a.release("a");
    expect(await a.allocate("d")).toBe(1);
  });

  it("reads every scan page", async () => {
    table.pageSize = 3;
    const first = allocator();
    for (let i = 0; i < 12; i++) await first.allocate(`t${i}`);
    const second = allocator();
    const scansBefore = table.scans;
    expect(await second.allocate("late")).toBe(13);
    expect(table.scans - scansBefore).toBeGreaterThan(1);
  });

  it("writes nothing when the fence says the lease is lost", async () => {
    const fence = {
      assertHeld() {
        throw new Error("lease lost");
      },
    };
    await expect(allocator().allocate("t", fence)).rejects.toThrow("lease lost");
    expect(table.transactions).toBe(0);
  });

  it("wraps AWS errors with what it was doing, classified, keeping the AWS error as cause", async () => {
    ddbMock
      .on(GetItemCommand)
      .rejects(
        Object.assign(new Error("slow down"), { name: "ProvisionedThroughputExceededException", $metadata: { httpStatusCode: 400 } }),
      );
    const err = await allocator()
      .allocate("t")
      .then(
        () => new Error("expected a failure"),
        (e: unknown) => e as Error,
      );
    expect(err).toBeInstanceOf(TransientError);
    expect(err.cause).toMatchObject({ name: "ProvisionedThroughputExceededException" });
    expect(err.message).toContain("tenant t");
  });
});
