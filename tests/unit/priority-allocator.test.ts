import {
  ConditionalCheckFailedException,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  ScanCommand,
  TransactWriteItemsCommand,
  TransactionCanceledException,
  type AttributeValue,
  type GetItemCommandInput,
  type PutItemCommandInput,
  type ScanCommandInput,
  type TransactWriteItem,
  type TransactWriteItemsCommandInput,
} from "@aws-sdk/client-dynamodb";
import { mockClient, type AwsClientStub } from "aws-sdk-client-mock";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ListenersFullError, PrioritiesExhaustedError, PriorityAllocator } from "../../src/providers/priority-allocator.js";
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
        else if (op.Update) this.#update(op.Update);
        else throw new Error("unexpected transaction item");
      }
      return {};
    });
    mock.on(PutItemCommand).callsFake(async (input: PutItemCommandInput) => {
      await jitter();
      const pk = input.Item?.["pk"]?.S ?? "";
      expect(input.ConditionExpression).toBe("attribute_not_exists(pk)");
      if (this.items.has(pk)) throw new ConditionalCheckFailedException({ message: "exists", $metadata: {} });
      this.items.set(pk, structuredClone(input.Item!));
      return {};
    });
  }

  /** The one update the allocator makes: a listener's count plus or minus one. */
  #update(u: NonNullable<TransactWriteItem["Update"]>): void {
    expect(u.UpdateExpression).toBe("SET #tenants = #tenants + :delta");
    const pk = u.Key!["pk"]!.S!;
    const item = this.items.get(pk)!;
    const delta = Number(u.ExpressionAttributeValues![":delta"]!.N);
    this.items.set(pk, { ...item, tenants: { N: String(Number(item["tenants"]!.N) + delta) } });
  }

  /** Evaluates exactly the conditions the allocator writes; anything else fails the test. */
  #holds(op: TransactWriteItem): boolean {
    const spec = op.Put ?? op.Delete ?? op.Update;
    if (spec === undefined) throw new Error("unexpected transaction item");
    const pk = (op.Put ? op.Put.Item! : (op.Delete ?? op.Update)!.Key!)["pk"]!.S!;
    const existing = this.items.get(pk);
    const names = spec.ExpressionAttributeNames ?? {};
    const values = spec.ExpressionAttributeValues ?? {};
    const cond = spec.ConditionExpression;
    if (cond === undefined) return true;
    if (cond === "attribute_not_exists(pk)") return existing === undefined;
    const bound = /^attribute_exists\(pk\) AND #tenants ([<>]) :bound$/.exec(cond);
    if (bound !== null) {
      if (existing === undefined) return false;
      const have = Number(existing["tenants"]!.N);
      const limit = Number(values[":bound"]!.N);
      return bound[1] === "<" ? have < limit : have > limit;
    }
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

const L1 = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/a/1/1";
const L2 = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/b/2/2";

/** Every placement in the table, both directions checked, and each listener's count against its numbers. */
function placements(): Map<string, { listenerArn: string; priority: number }> {
  const owners = new Map<string, { listenerArn: string; priority: number }>();
  const numbers = new Map<string, string>();
  const counts = new Map<string, number>();
  for (const [pk, item] of table.items) {
    if (pk.startsWith("priority-of#"))
      owners.set(pk.slice("priority-of#".length), { listenerArn: item["listenerArn"]?.S ?? L1, priority: Number(item["priority"]!.N) });
    else if (pk.startsWith("listener-tenants#")) counts.set(pk.slice("listener-tenants#".length), Number(item["tenants"]!.N));
    else if (pk.startsWith("priority#")) {
      const rest = pk.slice("priority#".length);
      const hash = rest.lastIndexOf("#");
      numbers.set(hash < 0 ? `${L1} ${rest}` : `${rest.slice(0, hash)} ${rest.slice(hash + 1)}`, item["tenantId"]!.S!);
    }
  }
  expect(numbers.size).toBe(owners.size);
  for (const [tenant, p] of owners) expect(numbers.get(`${p.listenerArn} ${p.priority}`), tenant).toBe(tenant);
  for (const [listener, n] of counts) expect([...owners.values()].filter((p) => p.listenerArn === listener).length, listener).toBe(n);
  return owners;
}

describe("PriorityAllocator with a listener pool", () => {
  const pool = (perListener: number, extra: ConstructorParameters<typeof PriorityAllocator>[2] = {}) =>
    allocator({ listeners: [L1, L2], perListener, ...extra });

  it("places on the listener with the fewest tenants, numbers per listener; a placement is kept; the first listener keeps the old item names", async () => {
    const a = pool(3);
    expect(await a.place("t1")).toEqual({ listenerArn: L1, priority: 1 });
    expect(await a.place("t2")).toEqual({ listenerArn: L2, priority: 1 });
    expect(await a.place("t3")).toEqual({ listenerArn: L1, priority: 2 });
    expect(await a.place("t1")).toEqual({ listenerArn: L1, priority: 1 });
    expect(await a.placement("t2")).toEqual({ listenerArn: L2, priority: 1 });
    expect([...table.items.keys()].filter((k) => k.startsWith("priority#")).sort()).toEqual(
      ["priority#1", "priority#2", `priority#${L2}#1`].sort(),
    );
    placements();
  });

  it("every listener full: ListenersFullError saying to add a listener, nothing written; a release frees the place", async () => {
    const a = pool(2);
    for (const t of ["a", "b", "c", "d"]) await a.place(t);
    const transactions = table.transactions;
    const err = await a.place("e").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ListenersFullError);
    expect(err).toBeInstanceOf(TransientError);
    expect((err as Error).message).toBe(
      "all 2 listeners hold 2 tenants (TENANTS_PER_LISTENER); add a listener to LISTENER_ARNS (an ALB holds at most 100 target groups)",
    );
    expect(table.transactions).toBe(transactions);
    expect(await a.proposal("e")).toEqual({ full: (err as Error).message });
    expect(await a.placement("e")).toBeUndefined();

    const bOn = (await a.placement("b"))!;
    expect(await a.release("b")).toBe(true);
    expect(await a.proposal("e")).toEqual(bOn);
    expect(await a.place("e")).toEqual(bOn);
    expect(placements().size).toBe(4);
  });

  it("racing controllers never over-fill a listener: 30 tenants, 8 workers, room for 20", async () => {
    table.conflictRate = 0.05;
    const workers = Array.from({ length: 8 }, () => pool(10));
    const tenants = Array.from({ length: 30 }, (_, i) => `t-${i}`);
    let next = 0;
    const full: string[] = [];
    await Promise.all(
      workers.map(async (w) => {
        while (next < tenants.length) {
          const t = tenants[next++]!;
          await w.place(t).catch((e: unknown) => {
            if (!(e instanceof ListenersFullError)) throw e;
            full.push(t);
          });
        }
      }),
    );
    const placed = placements();
    expect(placed.size).toBe(20);
    expect(full.length).toBe(10);
    for (const l of [L1, L2]) {
      const on = [...placed.values()].filter((p) => p.listenerArn === l);
      expect(on.length, l).toBe(10);
      expect(new Set(on.map((p) => p.priority)).size).toBe(10);
    }
    expect(Number(table.items.get(`listener-tenants#${L1}`)!["tenants"]!.N)).toBe(10);
    expect(Number(table.items.get(`listener-tenants#${L2}`)!["tenants"]!.N)).toBe(10);
  });

  it("after an upgrade from one listener: old placements stay on the first, are counted, and are released with the count", async () => {
    // What a single-listener controller left: numbers and owners without a listener, and no counts.
    for (const [t, n] of [
      ["old-1", 1],
      ["old-2", 2],
    ] as const) {
      table.items.set(`priority#${n}`, { pk: { S: `priority#${n}` }, tenantId: { S: t } });
      table.items.set(`priority-of#${t}`, { pk: { S: `priority-of#${t}` }, priority: { N: String(n) }, tenantId: { S: t } });
    }
    const a = pool(3);
    expect(await a.placement("old-1")).toEqual({ listenerArn: L1, priority: 1 });
    // L1 holds 2 already, so the new tenants go to L2 until it holds as many.
    expect(await a.place("new-1")).toEqual({ listenerArn: L2, priority: 1 });
    expect(await a.place("new-2")).toEqual({ listenerArn: L2, priority: 2 });
    expect(await a.place("new-3")).toEqual({ listenerArn: L1, priority: 3 });
    expect(Number(table.items.get(`listener-tenants#${L1}`)!["tenants"]!.N)).toBe(3);
    placements();

    // A release before any count exists seeds the count (the leaver included), then takes one off.
    table.items.delete(`listener-tenants#${L1}`);
    expect(await pool(3).release("old-2")).toBe(true);
    expect(Number(table.items.get(`listener-tenants#${L1}`)!["tenants"]!.N)).toBe(2);
    expect(placements().size).toBe(4);
  });
});
