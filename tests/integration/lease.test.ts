import { DeleteTableCommand, DescribeTableCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { DynamoDbLeaseStore, ensureLeaseTable } from "../../src/providers/dynamodb-lease-store.js";
import { LeaderLease } from "../../src/reconciler/lease.js";
import { startMoto, type MotoServer } from "../support/moto.js";
import { localTarget } from "../../src/localcloud/index.js";
import { awsClient, RETRIES } from "../../src/providers/aws-clients.js";

const TABLE = "tenants-operator";
const D = 2000; // short, yet with headroom for a loaded 2-core CI machine

let moto: MotoServer;
let client: DynamoDBClient;
let store: DynamoDbLeaseStore;
const running: LeaderLease[] = [];

function newLease(holder: string, name: string): LeaderLease {
  const lease = new LeaderLease({ store, holder, durationMs: D, name });
  running.push(lease);
  return lease;
}

beforeAll(async () => {
  moto = await startMoto();
  client = awsClient(DynamoDBClient, localTarget(moto.endpoint), RETRIES.standard);
  await ensureLeaseTable(client, TABLE);
  store = new DynamoDbLeaseStore(client, TABLE);
});

afterAll(async () => {
  await Promise.all(running.map((l) => l.stop({ release: false })));
  client?.destroy();
  await moto?.stop();
});

describe("ensureLeaseTable", () => {
  it("creates the table once and is safe to call again, even concurrently", async () => {
    await Promise.all([ensureLeaseTable(client, "race-operator"), ensureLeaseTable(client, "race-operator")]);
    await ensureLeaseTable(client, "race-operator");
    const out = await client.send(new DescribeTableCommand({ TableName: "race-operator" }));
    expect(out.Table?.TableStatus).toBe("ACTIVE");
    expect(out.Table?.KeySchema).toEqual([{ AttributeName: "pk", KeyType: "HASH" }]);
    expect(out.Table?.BillingModeSummary?.BillingMode).toBe("PAY_PER_REQUEST");
    await client.send(new DeleteTableCommand({ TableName: "race-operator" }));
  });
});

describe("DynamoDbLeaseStore conditions", () => {
  it("grants, refuses, renews only with the right token, and releases keeping the token", async () => {
    const now = Date.now();
    const a = await store.tryAcquire("conditions", "a", 10_000, now);
    expect(a).toEqual({ acquired: true, holder: "a", expiresAt: now + 10_000, token: 1 });

    const b = await store.tryAcquire("conditions", "b", 10_000, now + 1);
    expect(b).toEqual({ acquired: false, holder: "a", expiresAt: now + 10_000, token: 1 });

    expect(await store.renew("conditions", "a", 1, 10_000, now + 2)).toBe(true);
    expect(await store.renew("conditions", "a", 7, 10_000, now + 2)).toBe(false);
    expect(await store.renew("conditions", "b", 1, 10_000, now + 2)).toBe(false);
    expect(await store.release("conditions", "b", 1)).toBe(false);
    expect(await store.release("conditions", "a", 1)).toBe(true);

    const b2 = await store.tryAcquire("conditions", "b", 10_000, now + 3);
    expect(b2).toMatchObject({ acquired: true, holder: "b", token: 2 });
    // a's old term is over: its token no longer renews even though a was holder once.
    expect(await store.renew("conditions", "a", 1, 10_000, now + 4)).toBe(false);
    // Expired: anyone may take it, and the token keeps growing.
    const c = await store.tryAcquire("conditions", "c", 10_000, now + 10_004);
    expect(c).toMatchObject({ acquired: true, holder: "c", token: 3 });
  });

  it("lets exactly one of 8 simultaneous racers win", async () => {
    const now = Date.now();
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => store.tryAcquire("race", `racer-${i}`, 10_000, now)));
    const winners = results.filter((r) => r.acquired);
    expect(winners).toHaveLength(1);
    const winner = winners[0]?.holder;
    for (const r of results.filter((x) => !x.acquired)) expect(r.holder).toBe(winner);
  });
});

describe("LeaderLease on DynamoDB", () => {
  it("elects exactly one of two, and the standby takes over within the lease duration after the leader dies", async () => {
    const a = newLease("a", "failover");
    const b = newLease("b", "failover");
    await Promise.all([a.start(), b.start()]);
    expect([a.isLeader, b.isLeader].filter(Boolean)).toHaveLength(1);

    // Renewals keep the same leader over several durations.
    const first = a.isLeader ? a : b;
    const second = a.isLeader ? b : a;
    await new Promise((r) => setTimeout(r, D * 1.5));
    expect(first.isLeader).toBe(true);
    expect(second.isLeader).toBe(false);
    expect(first.token).toBe(1);

    const killedAt = Date.now();
    await first.stop({ release: false });
    await vi.waitFor(() => expect(second.isLeader).toBe(true), { timeout: 2 * D, interval: 20 });
    const tookMs = Date.now() - killedAt;
    // The dead leader renewed at most a third of D before dying, so its lease
    // ends within D; the standby retries right after that expiry.
    expect(tookMs).toBeLessThan(D + 400);
    expect(second.token).toBe(2);
    expect(() => second.assertHeld()).not.toThrow();
    expect(() => first.assertHeld()).toThrow();
  });

  it("hands over at the standby's next attempt when the leader releases", async () => {
    const a = newLease("a", "release");
    await a.start();
    const b = newLease("b", "release");
    await b.start();
    expect(a.isLeader && !b.isLeader).toBe(true);
    const stoppedAt = Date.now();
    await a.stop();
    await vi.waitFor(() => expect(b.isLeader).toBe(true), { timeout: D, interval: 20 });
    expect(Date.now() - stoppedAt).toBeLessThan(D / 3 + 400);
  });

  it("never has two leaders among 8 instances started at once", async () => {
    const leases = Array.from({ length: 8 }, (_, i) => newLease(`node-${i}`, "eight"));
    await Promise.all(leases.map((l) => l.start()));
    let maxLeaders = 0;
    const until = Date.now() + D;
    while (Date.now() < until) {
      maxLeaders = Math.max(maxLeaders, leases.filter((l) => l.isLeader).length);
      await new Promise((r) => setTimeout(r, 25));
    }
    expect(leases.filter((l) => l.isLeader)).toHaveLength(1);
    expect(maxLeaders).toBe(1);
    await Promise.all(leases.map((l) => l.stop()));
  });
});
