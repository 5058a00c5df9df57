import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { defaultCatalogue, type Catalogue } from "../../src/apps/catalogue.js";
import { RolloutExecutor } from "../../src/operator/rollout-executor.js";
import type { CatalogueRead, Fence, RawTenantItem, RolloutReport, RolloutStorePort, TenantStore } from "../../src/ports.js";
import { catalogueHash, type Rollout } from "../../src/rollouts/model.js";
import { command, type WaveEvent } from "../../src/rollouts/planner.js";
import { parseWaves } from "../../src/rollouts/waves.js";

const withOrders = (version: string): Catalogue => ({
  apps: { ...defaultCatalogue.apps, orders: { ...defaultCatalogue.apps.orders, version } },
});

/** The operator table's two items in memory, with the same conditional writes. */
class MemoryStore implements RolloutStorePort {
  catalogue: Catalogue | "invalid" | undefined;
  rollout: Rollout | undefined;
  malformed = false;
  writes = 0;
  async readCatalogue(): Promise<CatalogueRead> {
    if (this.catalogue === undefined) return { kind: "missing" };
    if (this.catalogue === "invalid") return { kind: "invalid", problem: "apps.orders.version: bad" };
    return { kind: "valid", catalogue: this.catalogue, hash: catalogueHash(this.catalogue), revision: 1 };
  }
  async seedCatalogue(catalogue: Catalogue): Promise<boolean> {
    if (this.catalogue !== undefined) return false;
    this.catalogue = catalogue;
    return true;
  }
  async readRollout(): Promise<Rollout | undefined> {
    if (this.malformed) throw new Error("the rollout item is malformed at waves: expected array");
    return this.rollout && structuredClone(this.rollout);
  }
  async writeRollout(rollout: Rollout, readVersion: number | undefined, fence?: Fence): Promise<boolean> {
    fence?.assertHeld();
    if ((this.rollout?.version ?? undefined) !== readVersion) return false;
    this.rollout = structuredClone(rollout);
    this.writes += 1;
    return true;
  }
}

/** With the shared reports of ADR 0016: a leader and its followers on one operator table. */
class SharingStore extends MemoryStore {
  readonly reports = new Map<string, RolloutReport>();
  async putReport(unit: string, report: RolloutReport): Promise<void> {
    const cur = this.reports.get(unit);
    if (cur === undefined || cur.at < report.at) this.reports.set(unit, report);
  }
  async readReports(units: readonly string[]): Promise<ReadonlyMap<string, RolloutReport>> {
    return new Map(units.flatMap((u) => (this.reports.has(u) ? [[u, this.reports.get(u)!] as const] : [])));
  }
}

class Tenants implements TenantStore {
  constructor(readonly items: RawTenantItem[]) {}
  async *scan() {
    yield this.items;
  }
  async get(id: string) {
    return this.items.find((i) => i["tenantId"] === id);
  }
  async writeStatus() {
    return true;
  }
}

const held: Fence = { assertHeld: () => undefined };
const settings = { waves: parseWaves("1,100%"), bakeMs: 0, maxFailures: 0, timeoutMs: 60_000 };
const tenants = new Tenants([
  { tenantId: "a", tier: "advanced", tenantName: "A", ring: 0 },
  { tenantId: "b", tier: "premium", tenantName: "B" },
  { tenantId: "pinned", tier: "advanced", tenantName: "P", apps: { orders: { version: "1.0.0" } } },
  { tenantId: "basic", tier: "basic", tenantName: "Basic" },
  { tenantId: "gone", tier: "advanced", tenantName: "Gone", sbtaws_active: false },
]);

const running: RolloutExecutor[] = [];
function executor(
  store: MemoryStore,
  extra: { events?: WaveEvent[]; enqueued?: string[][]; loadWaitMs?: number; onEnqueue?: (keys: readonly string[]) => void } = {},
) {
  const e = new RolloutExecutor({
    store,
    tenants,
    seed: withOrders("0.9.0"),
    settings,
    fence: held,
    log: pino({ level: "silent" }),
    holder: "test",
    tickMs: 20,
    ...(extra.loadWaitMs !== undefined ? { loadWaitMs: extra.loadWaitMs } : {}),
    events: { publish: async (_r, event) => void extra.events?.push(event) },
  });
  running.push(e);
  void e.start({
    enqueue: (keys) => {
      extra.enqueued?.push([...keys]);
      extra.onEnqueue?.(keys);
    },
    resync: () => undefined,
  });
  return e;
}
afterEach(async () => {
  for (const e of running.splice(0)) await e.stop();
});

async function until<T>(check: () => T | undefined, what: string, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("the rollout executor", () => {
  it("seeds the catalogue record from the file (or built-in) only when there is none, and starts Completed on it", async () => {
    const store = new MemoryStore();
    const e = executor(store);
    const a = await e.assignment("a");
    expect(a.catalogue.apps.orders.version).toBe("0.9.0");
    expect(store.catalogue).toEqual(withOrders("0.9.0"));
    expect(store.rollout).toMatchObject({ state: "Completed", id: "initial" });

    const existing = new MemoryStore();
    existing.catalogue = withOrders("1.0.0");
    expect((await executor(existing).assignment("a")).catalogue.apps.orders.version).toBe("1.0.0");
  });

  it("rolls a catalogue change out to the tenants it changes, canary first, and publishes each wave", async () => {
    const store = new MemoryStore();
    store.catalogue = withOrders("1.0.0");
    const events: WaveEvent[] = [];
    const enqueued: string[][] = [];
    const to = catalogueHash(withOrders("1.1.0"));
    // Plays the reconciler for the bake's check: a key enqueued again answers healthy (once it has deployed).
    const deployed = new Set<string>();
    const e: RolloutExecutor = executor(store, {
      events,
      enqueued,
      onEnqueue: (keys) => setTimeout(() => keys.filter((k) => deployed.has(k)).forEach((k) => e.report(k, to, "healthy")), 5),
    });
    await e.assignment("a");
    store.catalogue = withOrders("1.1.0");
    const started = await until(() => (store.rollout?.waves[0]?.startedAt !== undefined ? store.rollout : undefined), "wave 1");
    // Basic, offboarded and pinned tenants are no units; the pool is one, after the first ring.
    expect(started.waves.map((w) => w.units)).toEqual([["a"], [":pool"], ["b"]]);
    expect(started.unaffected).toBe(1);
    expect(enqueued.flat()).toContain("a");
    expect((await e.assignment("a")).rollout).toMatchObject({ role: "target" });
    expect((await e.assignment("b")).catalogue.apps.orders.version).toBe("1.0.0");

    const deploy = (key: string) => {
      deployed.add(key);
      e.report(key, to, "healthy");
    };
    // Deployed, but not yet seen healthy after its bake: the next wave waits.
    deploy("a");
    await until(() => (store.rollout?.waves[0]?.checkedAt !== undefined ? true : undefined), "wave 1's check");
    await until(() => (store.rollout?.waves[1]?.startedAt !== undefined ? true : undefined), "the pool's wave");
    deploy(":pool");
    await until(() => (store.rollout?.waves[2]?.startedAt !== undefined ? true : undefined), "wave 3");
    deploy("b");
    const done = await until(() => (store.rollout?.state === "Completed" ? store.rollout : undefined), "Completed");
    expect(Object.keys(done.done).sort()).toEqual([":pool", "a", "b"]);
    expect(events.map((x) => `${x.kind}:${x.wave}`)).toEqual([
      "WaveStarted:1",
      "WaveCompleted:1",
      "WaveStarted:2",
      "WaveCompleted:2",
      "WaveStarted:3",
      "WaveCompleted:3",
      "Completed:3",
    ]);
    expect((await e.assignment("new-tenant")).catalogue.apps.orders.version).toBe("1.1.0");
  });

  it("records a failure durably before it returns, halts past the budget, and the failed unit goes back", async () => {
    const store = new MemoryStore();
    store.catalogue = withOrders("1.0.0");
    const e = executor(store);
    await e.assignment("a");
    store.catalogue = withOrders("crashloop");
    await until(() => (store.rollout?.waves[0]?.startedAt !== undefined ? true : undefined), "wave 1");
    await e.fail("a", catalogueHash(withOrders("crashloop")), "ECS deployment circuit breaker: tasks failed to start.");
    expect(store.rollout?.failed["a"]?.reason).toMatch(/circuit breaker/);
    const a = await e.assignment("a");
    expect(a.catalogue.apps.orders.version).toBe("1.0.0");
    expect(a.rollout).toMatchObject({ role: "failed", failure: { announced: false } });
    await until(() => (store.rollout?.state === "Halted" ? true : undefined), "Halted");
    await e.announced("a", store.rollout?.id ?? "");
    expect(store.rollout?.failed["a"]?.announced).toBe(true);
    // A report for another catalogue (a superseded rollout's) records nothing.
    await e.fail("b", "some-other-hash", "x");
    expect(store.rollout?.failed["b"]).toBeUndefined();
  });

  it("goes on from a tenantctl command written in between (the conditional write is retried on the new item)", async () => {
    const store = new MemoryStore();
    store.catalogue = withOrders("1.0.0");
    const e = executor(store);
    await e.assignment("a");
    store.catalogue = withOrders("1.1.0");
    const r = await until(() => (store.rollout?.waves[0]?.startedAt !== undefined ? store.rollout : undefined), "wave 1");
    store.rollout = command(r, "pause", new Date(), "someone");
    e.report("a", catalogueHash(withOrders("1.1.0")), "healthy");
    await until(() => (store.rollout?.waves[0]?.checkedAt !== undefined ? true : undefined), "wave 1's check");
    e.report("a", catalogueHash(withOrders("1.1.0")), "healthy");
    await until(() => (store.rollout?.waves[0]?.bakedAt !== undefined ? true : undefined), "wave 1 baked while paused");
    await new Promise((res) => setTimeout(res, 100));
    expect(store.rollout).toMatchObject({ state: "Paused" });
    expect(store.rollout?.waves[1]?.startedAt).toBeUndefined();
  });

  it("puts a deleted catalogue record back from what the fleet runs, never from the file", async () => {
    const store = new MemoryStore();
    store.catalogue = withOrders("1.0.0");
    const e = executor(store);
    await e.assignment("a");
    store.catalogue = undefined;
    await until(() => (store.catalogue !== undefined ? true : undefined), "the record written back");
    expect(store.catalogue).toEqual(withOrders("1.0.0"));
    expect(store.rollout?.state).toBe("Completed");
  });

  it("ignores an invalid catalogue record", async () => {
    const store = new MemoryStore();
    store.catalogue = withOrders("1.0.0");
    const e = executor(store);
    await e.assignment("a");
    const before = store.writes;
    store.catalogue = "invalid";
    await new Promise((res) => setTimeout(res, 150));
    expect(store.writes).toBe(before);
    expect((await e.assignment("a")).catalogue.apps.orders.version).toBe("1.0.0");
  });

  it("fails a reconcile (retryably) rather than hang it when the rollout item cannot be read", async () => {
    const store = new MemoryStore();
    store.malformed = true;
    const e = executor(store, { loadWaitMs: 200 });
    await expect(e.assignment("a")).rejects.toThrow(/not loaded yet: .*malformed/);
  });

  it("steps waves on the reports of units other controllers own: a follower shares them, and queues its units for the bake's check", async () => {
    const store = new SharingStore();
    store.catalogue = withOrders("1.0.0");
    const to = catalogueHash(withOrders("1.1.0"));
    const leader = executor(store);
    await leader.assignment("a");
    // The follower owns every tenant here; the leader reconciles nothing of its own.
    const followed: string[][] = [];
    const follower = new RolloutExecutor({
      store,
      tenants,
      seed: withOrders("0.9.0"),
      settings,
      fence: {
        assertHeld: () => {
          throw new Error("a follower's ticks write nothing");
        },
      },
      log: pino({ level: "silent" }),
      holder: "follower",
      tickMs: 20,
    });
    running.push(follower);
    await follower.follow({ enqueue: (keys) => void followed.push([...keys]), resync: () => undefined });
    store.catalogue = withOrders("1.1.0");
    await until(() => (store.rollout?.waves[0]?.startedAt !== undefined ? true : undefined), "wave 1");
    // The follower learns of the wave from the item and queues the unit whose catalogue moved.
    await until(() => (followed.flat().includes("a") ? true : undefined), "the follower queues a");
    expect((await follower.assignment("a")).rollout).toMatchObject({ role: "target" });
    follower.report("a", to, "healthy");
    expect(store.reports.get("a")).toMatchObject({ hash: to, outcome: "healthy" });
    // The leader takes the shared report: the wave deploys, its check begins, and the follower queues a again.
    await until(() => (store.rollout?.waves[0]?.checkedAt !== undefined ? true : undefined), "wave 1's check");
    await until(() => (followed.filter((k) => k.includes("a")).length >= 2 ? true : undefined), "a queued for the check");
    follower.report("a", to, "healthy");
    await until(() => (store.rollout?.waves[0]?.bakedAt !== undefined ? true : undefined), "wave 1 baked on the follower's report");
    expect(store.rollout?.failed).toEqual({});
  });
});
