import { pino } from "pino";
import { afterEach, describe, expect, it, vi } from "vitest";
import { Metrics } from "../../src/observability/metrics.js";
import { Manager } from "../../src/operator/manager.js";
import type { TenantReconciler } from "../../src/operator/tenant-reconciler.js";
import type { EcsPort, RawTenantItem, TenantChangeSource, TenantStore } from "../../src/ports.js";
import { InMemoryLeaseStore, LeaderLease } from "../../src/reconciler/lease.js";
import { InMemoryShardStore, ShardLeases } from "../../src/reconciler/shard-leases.js";
import { done } from "../../src/reconciler/result.js";
import { parseExposition, sample } from "../support/prom-text.js";

/** Generous: these machines are loaded; a wait's length proves nothing here. */
const SLOW = { timeout: 10_000 };

/** A table whose scan the test can break. */
class Store implements TenantStore {
  broken = false;
  readonly items: RawTenantItem[] = [{ tenantId: "a" }, { tenantId: "b" }];
  async *scan() {
    if (this.broken) throw Object.assign(new Error("scan throttled"), { name: "ProvisionedThroughputExceededException" });
    yield this.items;
  }
  async get() {
    return undefined;
  }
  async writeStatus() {
    return true;
  }
}

const changes: TenantChangeSource = { start: async () => {}, stop: async () => {} };
const ecs = { inventory: async () => new Set<string>() } as unknown as EcsPort;
const reconciler = {
  reconcile: async () => done(),
  noteRemoved: () => {},
  pendingRemovals: async () => [],
} as unknown as TenantReconciler;

let manager: Manager | undefined;
afterEach(async () => {
  await manager?.stop();
  manager = undefined;
});

function setup(store: Store, metrics?: Metrics) {
  let now = 1_000_000;
  const m = new Manager({
    store,
    changes,
    ecs,
    reconciler,
    lease: new LeaderLease({ store: new InMemoryLeaseStore(), holder: "me", durationMs: 15_000 }),
    shards: new ShardLeases({ store: new InMemoryShardStore(), holder: "me", count: 4, durationMs: 15_000 }),
    log: pino({ level: "silent" }),
    concurrency: 2,
    resyncMs: 3_600_000,
    sharedClusters: [],
    now: () => now,
    ...(metrics ? { queueMetrics: metrics } : {}),
  });
  manager = m;
  return { m, advance: (ms: number) => (now += ms) };
}

describe("Manager resync age", () => {
  it("is the time since the last resync that queued everything: it grows while resyncs fail and drops when one succeeds", async () => {
    const store = new Store();
    const { m, advance } = setup(store);
    expect(m.resyncAgeSeconds()).toBeUndefined(); // not leader yet
    await m.start();
    await vi.waitFor(() => expect(m.ready).toBe(true), SLOW);
    expect(m.resyncAgeSeconds()).toBe(0);
    advance(30_000);
    expect(m.resyncAgeSeconds()).toBe(30);
    store.broken = true;
    expect(await m.resyncNow()).toBe(false);
    advance(10_000);
    expect(m.resyncAgeSeconds()).toBe(40);
    store.broken = false;
    expect(await m.resyncNow()).toBe(true);
    expect(m.resyncAgeSeconds()).toBe(0);
    await m.stop();
    expect(m.resyncAgeSeconds()).toBeUndefined(); // a stopped controller does not resync
  });

  it("counts from the start of leadership while the initial sync keeps failing", async () => {
    const store = new Store();
    store.broken = true;
    const { m, advance } = setup(store);
    await m.start();
    await vi.waitFor(() => expect(m.role).toBe("leader"), SLOW);
    advance(90_000);
    expect(m.ready).toBe(false);
    expect(m.resyncAgeSeconds()).toBe(90);
  });

  it("names its queue 'tenant' in the workqueue metrics", async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    const { m } = setup(new Store(), metrics);
    await m.start();
    await vi.waitFor(() => expect(m.ready).toBe(true), SLOW);
    const text = parseExposition(await metrics.render());
    // The pool key and the two records, added by the initial resync.
    const worked = async () =>
      sample(parseExposition(await metrics.render()), "workqueue_work_duration_seconds", "workqueue_work_duration_seconds_count", {
        name: "tenant",
      });
    await vi.waitFor(async () => expect(await worked()).toBe(3), SLOW);
    expect(sample(text, "workqueue_adds_total", "workqueue_adds_total", { name: "tenant" })).toBe(3);
  });
});
