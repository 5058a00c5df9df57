import { pino } from "pino";
import { afterEach, describe, expect, it, vi } from "vitest";
import { Metrics } from "../../src/observability/metrics.js";
import { Manager } from "../../src/operator/manager.js";
import type { TenantReconciler } from "../../src/operator/tenant-reconciler.js";
import type { EcsPort, RawTenantItem, TenantChangeSource, TenantHintSource, TenantStore } from "../../src/ports.js";
import { InMemoryLeaseStore, LeaderLease } from "../../src/reconciler/lease.js";
import { jitteredResyncMs } from "../../src/reconciler/resync-jitter.js";
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
/** Keys whose survey snapshot the manager withdrew. */
const forgotten: string[] = [];
const ecs = { survey: async () => new Set<string>(), forget: (key: string) => void forgotten.push(key) } as unknown as EcsPort;
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

function setup(
  store: Store,
  metrics?: Metrics,
  extra: { hints?: TenantHintSource; reconcile?: (key: string) => Promise<ReturnType<typeof done>> } = {},
) {
  let now = 1_000_000;
  const m = new Manager({
    store,
    changes,
    ecs,
    reconciler: extra.reconcile ? ({ ...reconciler, reconcile: extra.reconcile } as unknown as TenantReconciler) : reconciler,
    lease: new LeaderLease({ store: new InMemoryLeaseStore(), holder: "me", durationMs: 15_000 }),
    shards: new ShardLeases({ store: new InMemoryShardStore(), holder: "me", count: 4, durationMs: 15_000 }),
    log: pino({ level: "silent" }),
    concurrency: 2,
    resyncMs: 3_600_000,
    sharedClusters: [],
    now: () => now,
    ...(metrics ? { queueMetrics: metrics } : {}),
    ...(extra.hints ? { hints: extra.hints } : {}),
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

/** A hint source the test fires by hand, recording its starts and stops. */
class Hints implements TenantHintSource {
  onHints: ((keys: readonly string[]) => void) | undefined;
  readonly calls: string[] = [];
  async start(onHints: (keys: readonly string[]) => void) {
    this.calls.push("start");
    this.onHints = onHints;
  }
  async stop() {
    this.calls.push("stop");
    this.onHints = undefined;
  }
}

describe("Manager hints", () => {
  it("runs the hint source while leading and reconciles the keys it names", async () => {
    const hints = new Hints();
    const reconciled: string[] = [];
    const { m } = setup(new Store(), undefined, {
      hints,
      reconcile: async (key) => {
        reconciled.push(key);
        return done();
      },
    });
    await m.start();
    await vi.waitFor(() => expect(m.ready).toBe(true), SLOW);
    await vi.waitFor(() => expect(reconciled).toHaveLength(3), SLOW); // the initial resync: pool, a, b
    expect(hints.calls).toEqual(["start"]);
    hints.onHints?.(["zed", "a"]);
    await vi.waitFor(() => expect(reconciled.slice(3).sort()).toEqual(["a", "zed"]), SLOW);
    // An event says ECS changed: the survey's answer for those keys must not be reused.
    expect(forgotten).toEqual(expect.arrayContaining(["zed", "a"]));
    await m.stop();
    expect(hints.calls).toEqual(["start", "stop"]);
  });
});

describe("jitteredResyncMs", () => {
  it("stays within ±10% of the period and spans it", () => {
    expect(jitteredResyncMs(300_000, () => 0)).toBe(270_000);
    expect(jitteredResyncMs(300_000, () => 0.5)).toBe(300_000);
    expect(jitteredResyncMs(300_000, () => 0.999999)).toBe(330_000);
  });
});
