import { InMemoryShardStore, ShardLeases } from "../../src/reconciler/shard-leases.js";
import { pino } from "pino";
import { afterEach, describe, expect, it, vi } from "vitest";
import { Manager } from "../../src/operator/manager.js";
import type { TenantReconciler } from "../../src/operator/tenant-reconciler.js";
import type { EcsPort, TenantChangeSource, TenantStore } from "../../src/ports.js";
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
});
