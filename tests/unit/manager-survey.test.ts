import { InMemoryShardStore, ShardLeases } from "../../src/reconciler/shard-leases.js";
import { pino } from "pino";
import { afterEach, describe, expect, it, vi } from "vitest";
import { Manager } from "../../src/operator/manager.js";
import type { TenantReconciler } from "../../src/operator/tenant-reconciler.js";
import { serviceOwner } from "../../src/operator/key-ownership.js";
import type { EcsPort, SurveyScope, TenantChangeSource, TenantStore } from "../../src/ports.js";
import { shardLeaseName, shardOf } from "../../src/reconciler/shards.js";
import { POOL_KEY } from "../../src/tiers/desired.js";
import { InMemoryLeaseStore, LeaderLease } from "../../src/reconciler/lease.js";
import { done } from "../../src/reconciler/result.js";

/** Generous: these machines are loaded; a wait's length proves nothing here. */
const SLOW = { timeout: 10_000 };

const store: TenantStore = {
  async *scan() {
    yield [{ tenantId: "a" }, { tenantId: "b" }];
  },
  get: async () => undefined,
  writeStatus: async () => true,
};
const changes: TenantChangeSource = { start: async () => {}, stop: async () => {} };

let manager: Manager | undefined;
afterEach(async () => {
  await manager?.stop();
  manager = undefined;
});

function setup(survey: () => Promise<ReadonlySet<string>>) {
  const reconciled: { key: string; surveyed: boolean }[] = [];
  let surveyed = false;
  const ecs = {
    survey: async () => {
      const owners = await survey();
      surveyed = true;
      return owners;
    },
    forget: () => {},
  } as unknown as EcsPort;
  const reconciler = {
    reconcile: async (key: string) => {
      reconciled.push({ key, surveyed });
      return done();
    },
    noteRemoved: () => {},
    pendingRemovals: async () => [],
  } as unknown as TenantReconciler;
  manager = new Manager({
    store,
    changes,
    ecs,
    reconciler,
    lease: new LeaderLease({ store: new InMemoryLeaseStore(), holder: "me", durationMs: 15_000 }),
    shards: new ShardLeases({ store: new InMemoryShardStore(), holder: "me", count: 4, durationMs: 15_000 }),
    log: pino({ level: "silent" }),
    concurrency: 2,
    resyncMs: 3_600_000,
    sharedClusters: ["saas-advanced"],
  });
  return { m: manager, reconciled };
}

describe("Manager resync and the ECS survey", () => {
  it("surveys before it queues any key, so their reconciles observe from the survey's snapshot; orphans come from it", async () => {
    const { m, reconciled } = setup(async () => {
      await new Promise((r) => setTimeout(r, 50));
      return new Set(["a", "orphan"]);
    });
    await m.start();
    await vi.waitFor(() => expect(reconciled.map((r) => r.key).sort()).toEqual([":pool", "a", "b", "orphan"]), SLOW);
    expect(reconciled.every((r) => r.surveyed)).toBe(true);
  });

  it("still queues every record when the survey fails, and reports the resync failed", async () => {
    let fail = false;
    const { m, reconciled } = setup(async () => {
      if (fail) throw new Error("ListClusters throttled");
      return new Set<string>();
    });
    await m.start();
    await vi.waitFor(() => expect(m.ready).toBe(true), SLOW);
    await vi.waitFor(() => expect(reconciled).toHaveLength(3), SLOW);
    fail = true;
    expect(await m.resyncNow()).toBe(false);
    await vi.waitFor(() => expect(reconciled).toHaveLength(6), SLOW);
  });

  it("with serviceOwner, each pass surveys the services of the shards it queues, and the pool's only when it queues the pool key", async () => {
    const shardStore = new InMemoryShardStore();
    // Another live controller holds shards 2 and 3 for the whole test.
    await shardStore.ensureShardCount(4);
    await shardStore.heartbeat("other", Date.now() + 3_600_000, 4, []);
    for (const n of [2, 3]) await shardStore.tryAcquire(shardLeaseName(n), "other", 3_600_000, Date.now());
    const scopes: SurveyScope[] = [];
    const routeCovers: ((tenantId: string) => boolean)[] = [];
    const ecs = {
      survey: async (_shared: readonly string[], scope?: SurveyScope) => {
        if (scope !== undefined) scopes.push(scope);
        return new Set<string>();
      },
      forget: () => {},
    } as unknown as EcsPort;
    const reconciler = {
      reconcile: async () => done(),
      noteRemoved: () => {},
      pendingRemovals: async () => [],
    } as unknown as TenantReconciler;
    manager = new Manager({
      store,
      changes,
      ecs,
      reconciler,
      lease: new LeaderLease({ store: new InMemoryLeaseStore(), holder: "me", durationMs: 15_000 }),
      shards: new ShardLeases({ store: shardStore, holder: "me", count: 4, durationMs: 15_000 }),
      log: pino({ level: "silent" }),
      concurrency: 2,
      resyncMs: 3_600_000,
      sharedClusters: ["saas-advanced"],
      serviceOwner: serviceOwner("saas"),
      routeSurvey: async (covers) => {
        routeCovers.push(covers);
      },
    });
    await manager.start();
    await vi.waitFor(() => expect(manager?.role).toBe("leader"), SLOW);
    expect(await manager.resyncNow()).toBe(true);

    const ids = Array.from({ length: 40 }, (_, i) => `tenant-${i}`);
    const mine = ids.filter((id) => [0, 1].includes(shardOf(id, 4)));
    expect(mine.length).toBeGreaterThan(0);
    expect(mine.length).toBeLessThan(ids.length);
    // The full pass: shards 0 and 1, and the pool (this controller leads).
    const full = scopes.at(-1);
    expect(ids.filter((id) => full?.covers(id))).toEqual(mine);
    expect(full?.covers(POOL_KEY)).toBe(true);
    expect(full?.ownerOfService("saas-t-tenant-7-orders")).toBe("tenant-7");
    expect(full?.ownerOfService("saas-pool-orders")).toBe(POOL_KEY);
    expect(full?.ownerOfService("their-service")).toBeUndefined();
    // The listeners' rules are surveyed in the same pass, for the same tenants.
    expect(routeCovers).toHaveLength(scopes.length);
    expect(ids.filter((id) => routeCovers.at(-1)?.(id))).toEqual(mine);
    // The first pass synced the shards gained at start: theirs only, and not the pool.
    expect(ids.filter((id) => scopes[0]?.covers(id))).toEqual(mine);
    expect(scopes[0]?.covers(POOL_KEY)).toBe(false);
  });
});
