import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { defaultCatalogue } from "../../src/apps/catalogue.js";
import {
  LeaseLostError,
  type EventPublisher,
  type Fence,
  type InfraPort,
  type InfraRemoval,
  type InfraState,
  type RawTenantItem,
  type StatusEvent,
  type TenantDataPort,
  type TenantStore,
} from "../../src/ports.js";
import { TenantReconciler } from "../../src/operator/tenant-reconciler.js";
import { TenantRoutes } from "../../src/operator/tenant-routes.js";
import type { TenantStatus } from "../../src/tenants/status.js";
import { poolTables, siloTables } from "../../src/tiers/data-home.js";
import {
  ConvergingEcs,
  FakeClaims,
  FakeData,
  FakeIdentity,
  FakePriorities,
  FakeNamespaces,
  FakeRemovals,
  FakeRoutes,
} from "../support/fake-ports.js";
import { stringMatching } from "../support/matchers.js";

/**
 * The tenant's data through its life, against in-memory ports that keep
 * their promises: tier moves in every direction, crashes at every step,
 * reversals, suspension, case-insensitive id clashes, offboarding exports.
 */
const settings = {
  namePrefix: "saas",
  poolCluster: "saas-pool",
  advancedCluster: "saas-advanced",
  subnets: ["subnet-1"],
  securityGroups: ["sg-1"],
};
const LISTENER = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/alb/1/2";
const POOL = poolTables("saas");
const signal = new AbortController().signal;

class Store implements TenantStore {
  items = new Map<string, Record<string, unknown>>();
  async *scan() {
    yield [...this.items.values()];
  }
  async get(id: string): Promise<RawTenantItem | undefined> {
    const item = this.items.get(id);
    return item && structuredClone(item);
  }
  async writeStatus(id: string, status: TenantStatus, fence: Fence): Promise<boolean> {
    fence.assertHeld();
    const item = this.items.get(id);
    if (!item) return false;
    item["status"] = structuredClone(status);
    return true;
  }
  status(id: string): TenantStatus {
    return this.items.get(id)?.["status"] as TenantStatus;
  }
  edit(id: string, change: Record<string, unknown>): void {
    this.items.set(id, { ...this.items.get(id), ...change });
  }
}

/** Stacks that are ready at once and make the silo tables (retained when the stack goes). */
class Infra implements InfraPort {
  stacks = new Set<string>();
  calls: string[] = [];
  constructor(readonly data: FakeData) {}
  async ensure(tenantId: string, _tier: "advanced" | "premium", fence: Fence): Promise<InfraState> {
    fence.assertHeld();
    if (!this.stacks.has(tenantId)) this.calls.push(`create stack ${tenantId}`);
    this.stacks.add(tenantId);
    for (const t of Object.values(siloTables("saas", tenantId))) this.data.createTable(t);
    const arn = (k: string) => `arn:aws:iam::123456789012:role/${tenantId}-${k}`;
    return {
      kind: "ready",
      infra: {
        taskRoleArn: arn("task"),
        executionRoleArn: arn("exec"),
        tenantAccessRoleArn: arn("access"),
        ...{ ordersTableName: siloTables("saas", tenantId).orders, productsTableName: siloTables("saas", tenantId).products },
        logGroupName: `/ecs/${tenantId}`,
        targetGroupArn: `arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/${tenantId}/1`,
        stackId: `stack/${tenantId}`,
      },
    };
  }
  async remove(tenantId: string, fence: Fence): Promise<InfraRemoval> {
    fence.assertHeld();
    if (this.stacks.delete(tenantId)) this.calls.push(`delete stack ${tenantId}`);
    return { kind: "gone" };
  }
  async current() {
    return undefined;
  }
  async preview() {
    return [];
  }
  async currentPool() {
    return undefined;
  }
  async previewPool() {
    return [];
  }
  async ensurePool() {
    return { kind: "inProgress" as const, status: "not used here" };
  }
}

class Events implements EventPublisher {
  sent: StatusEvent[] = [];
  async publish(events: readonly StatusEvent[]) {
    this.sent.push(...events);
  }
  types(tenantId: string): string[] {
    return this.sent.filter((e) => e.detail.tenantId === tenantId && e.detailType !== "tenantStatusChanged").map((e) => e.detailType);
  }
}

/** One account's worth of fakes; `controller()` is a fresh process over the same world (a restart). */
function world(options: { drainMs?: number; degradeAfterFailures?: number } = {}) {
  const clock = { now: new Date("2026-11-30T12:00:00Z") };
  const store = new Store();
  const data = new FakeData();
  for (const t of Object.values(POOL)) data.createTable(t);
  const ecs = new ConvergingEcs();
  const infra = new Infra(data);
  const rules = new FakeRoutes();
  const priorities = new FakePriorities();
  const claims = new FakeClaims();
  const identity = new FakeIdentity();
  const removals = new FakeRemovals();
  const namespaces = new FakeNamespaces();
  const events = new Events();
  const fence: Fence = { assertHeld() {} };
  const controller = (dataPort: TenantDataPort = data, f: Fence = fence) =>
    new TenantReconciler({
      store,
      ecs,
      infra,
      events,
      fence: f,
      data: dataPort,
      claims,
      identity,
      removals,
      namespaces,
      account: { region: "us-east-1", accountId: "123456789012" },
      backupBucket: "backups",
      drainMs: options.drainMs ?? 0,
      ...(options.degradeAfterFailures !== undefined ? { degradeAfterFailures: options.degradeAfterFailures } : {}),
      now: () => clock.now,
      routes: new TenantRoutes(rules, priorities, LISTENER),
      catalogue: defaultCatalogue,
      settings,
      log: pino({ level: "silent" }),
      pollMs: 1,
      maxPollMs: 1,
    });
  return { store, data, ecs, infra, rules, priorities, claims, identity, removals, namespaces, events, controller, clock };
}

/** Reconciles until the key settles (done) or the budget runs out. */
async function settle(r: TenantReconciler, key: string, max = 40): Promise<void> {
  for (let i = 0; i < max; i++) {
    const result = await r.reconcile(key, signal);
    if (result.kind === "done") return;
    if (result.kind === "failed" && result.terminal) throw result.error;
  }
  throw new Error(`${key} did not settle in ${max} reconciles`);
}

const order = (tenantId: string, n: number, extra: Record<string, unknown> = {}) => ({ tenantId, orderId: `o-${n}`, total: n, ...extra });
const product = (tenantId: string, n: number) => ({ tenantId, productId: `p-${n}`, name: `P${n}` });

function seed(w: ReturnType<typeof world>, tables: { orders: string; products: string }, tenantId: string, n: number): void {
  for (let i = 0; i < n; i++) {
    w.data.write(tables.orders, order(tenantId, i));
    w.data.write(tables.products, product(tenantId, i));
  }
}

describe("tier moves", () => {
  it("moves a basic tenant to advanced: items copied, never another tenant's, pool copy retired after the flip, provisionSuccess only at the end", async () => {
    const w = world();
    const r = w.controller();
    w.store.items.set("acme", { tenantId: "acme", tier: "basic", tenantName: "Acme" });
    await settle(r, "acme");
    expect(w.store.status("acme")).toMatchObject({ phase: "Ready", tables: POOL });
    expect(w.rules.of("acme")).toBeUndefined(); // the pool's catch-all serves it
    seed(w, POOL, "acme", 30);
    seed(w, POOL, "other", 5);

    w.store.edit("acme", { tier: "advanced" });
    const silo = siloTables("saas", "acme");
    // First reconcile: silo provisioned, then the data steps run as far as they can.
    await r.reconcile("acme", signal);
    w.data.write(POOL.orders, order("acme", 100)); // written during the move, before the flip
    await settle(r, "acme");

    expect(w.data.items(silo.orders, "acme")).toHaveLength(31);
    expect(w.data.items(silo.products, "acme")).toHaveLength(30);
    expect(w.data.items(silo.orders, "other")).toEqual([]);
    expect(w.data.items(POOL.orders, "acme")).toEqual([]); // retired
    expect(w.data.items(POOL.orders, "other")).toHaveLength(5); // untouched
    const status = w.store.status("acme");
    expect(status).toMatchObject({ phase: "Ready", tables: silo, servingTier: "advanced" });
    expect(status.migration).toBeUndefined();
    expect(w.rules.of("acme")?.action).toEqual({
      kind: "forward",
      targetGroupArn: "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/acme/1",
    });
    expect(w.events.types("acme")).toEqual(["sbt_aws_provisionSuccess", "sbt_aws_provisionSuccess"]);
  });

  it("moves an advanced tenant to basic: the silo stays serving until the flip, then its stack and retained tables go", async () => {
    const w = world();
    const r = w.controller();
    w.store.items.set("globex", { tenantId: "globex", tier: "advanced", tenantName: "Globex" });
    await settle(r, "globex");
    const silo = siloTables("saas", "globex");
    expect(w.store.status("globex")).toMatchObject({ phase: "Ready", tables: silo });
    seed(w, silo, "globex", 40);
    w.data.remove(silo.orders, order("globex", 3));

    w.store.edit("globex", { tier: "basic" });
    await settle(r, "globex");
    expect(w.data.items(POOL.orders, "globex")).toHaveLength(39);
    expect(w.data.items(POOL.products, "globex")).toHaveLength(40);
    expect(w.data.tables.has(silo.orders)).toBe(false);
    expect(w.infra.stacks.has("globex")).toBe(false);
    expect(w.rules.of("globex")).toBeUndefined();
    expect(w.store.status("globex")).toMatchObject({ phase: "Ready", tables: POOL, servingTier: "basic" });
    // No silo service is left running.
    expect([...w.ecs.services.keys()].filter((k) => k.includes("globex"))).toEqual([]);
  });

  it("moves between advanced and premium without copying anything", async () => {
    const w = world();
    const r = w.controller();
    w.store.items.set("init", { tenantId: "init", tier: "advanced", tenantName: "Initech" });
    await settle(r, "init");
    seed(w, siloTables("saas", "init"), "init", 3);
    w.data.calls.length = 0;
    w.store.edit("init", { tier: "premium" });
    await settle(r, "init");
    expect(w.data.calls).toEqual([]);
    expect(w.store.status("init")).toMatchObject({ phase: "Ready", servingTier: "premium" });
    expect(w.store.status("init").migration).toBeUndefined();
  });

  it("carries a write in flight just after the flip into the new tables (drain)", async () => {
    const w = world({ drainMs: 30_000 });
    const r = w.controller();
    w.store.items.set("late", { tenantId: "late", tier: "basic", tenantName: "Late" });
    await settle(r, "late");
    seed(w, POOL, "late", 2);
    w.store.edit("late", { tier: "premium" });
    // Run until the flip has happened, then let an old-route write land on the pool.
    for (let i = 0; i < 20 && w.store.status("late").migration?.step !== "drain"; i++) await r.reconcile("late", signal);
    expect(w.store.status("late").migration?.step).toBe("drain");
    expect(w.store.status("late").tables).toEqual(siloTables("saas", "late")); // flipped
    w.data.write(POOL.orders, order("late", 77));
    expect((await r.reconcile("late", signal)).kind).toBe("requeueAfter"); // still draining
    expect(w.data.items(siloTables("saas", "late").orders, "late").map((i) => i.orderId)).toContain("o-77");
    w.clock.now = new Date(w.clock.now.getTime() + 31_000);
    await settle(r, "late");
    expect(w.store.status("late").migration).toBeUndefined();
    expect(w.data.items(siloTables("saas", "late").orders, "late").map((i) => i.orderId)).toContain("o-77");
  });

  it.each(["openCapture", "backfill", "catchUp", "itemHashes", "purge"] as const)(
    "survives a crash in %s: a restarted controller resumes and loses nothing",
    async (method) => {
      const w = world();
      w.store.items.set("crash", { tenantId: "crash", tier: "basic", tenantName: "Crash" });
      await settle(w.controller(), "crash");
      seed(w, POOL, "crash", 25);
      w.store.edit("crash", { tier: "advanced" });
      w.data.failNext = {
        method,
        error: Object.assign(new Error(`crash in ${method}`), { name: "InternalServerError", $metadata: { httpStatusCode: 500 } }),
      };
      const first = w.controller();
      for (let i = 0; i < 5 && w.data.failNext !== undefined; i++) await first.reconcile("crash", signal);
      expect(w.data.failNext).toBeUndefined(); // the crash happened
      w.data.write(POOL.orders, order("crash", 500)); // the app keeps writing to the pool meanwhile
      await settle(w.controller(), "crash"); // a new process over the same world
      const silo = siloTables("saas", "crash");
      expect(w.data.items(silo.orders, "crash")).toHaveLength(26);
      expect(w.data.items(silo.products, "crash")).toHaveLength(25);
      expect(w.data.items(POOL.orders, "crash")).toEqual([]);
      expect(w.store.status("crash")).toMatchObject({ phase: "Ready", tables: silo });
    },
  );

  it("a move reversed before its flip is aborted: the partial copy goes, the source never stopped serving", async () => {
    const w = world();
    const r = w.controller();
    w.store.items.set("rev", { tenantId: "rev", tier: "advanced", tenantName: "Rev" });
    await settle(r, "rev");
    const silo = siloTables("saas", "rev");
    seed(w, silo, "rev", 10);
    w.store.edit("rev", { tier: "basic" });
    // Stop after the backfill copied into the pool, before verify/flip.
    w.data.failNext = {
      method: "catchUp",
      error: Object.assign(new Error("slow"), { name: "InternalServerError", $metadata: { httpStatusCode: 500 } }),
    };
    await r.reconcile("rev", signal);
    expect(w.store.status("rev").migration?.step).toBe("catchup");
    expect(w.data.items(POOL.orders, "rev")).toHaveLength(10);

    w.store.edit("rev", { tier: "premium" });
    await settle(r, "rev");
    expect(w.data.items(POOL.orders, "rev")).toEqual([]); // the partial copy is gone
    expect(w.data.items(silo.orders, "rev")).toHaveLength(10); // the source kept everything
    expect(w.store.status("rev")).toMatchObject({ phase: "Ready", tables: silo, servingTier: "premium" });
    expect(w.store.status("rev").migration).toBeUndefined();
  });

  it("a move reversed after its flip drains, keeps its source, and moves the data back with nothing lost", async () => {
    const w = world();
    const r = w.controller();
    w.store.items.set("back", { tenantId: "back", tier: "basic", tenantName: "Back" });
    await settle(r, "back");
    seed(w, POOL, "back", 8);
    w.store.edit("back", { tier: "advanced" });
    for (let i = 0; i < 20 && w.store.status("back").migration?.step !== "drain"; i++) await r.reconcile("back", signal);
    const silo = siloTables("saas", "back");
    w.data.write(silo.orders, order("back", 900)); // a write through the new route
    w.data.remove(silo.orders, order("back", 0));
    w.store.edit("back", { tier: "basic" });
    await settle(r, "back");
    const ids = w.data
      .items(POOL.orders, "back")
      .map((i) => i.orderId)
      .sort();
    expect(ids).toContain("o-900");
    expect(ids).not.toContain("o-0");
    expect(ids).toHaveLength(8);
    expect(w.store.status("back")).toMatchObject({ phase: "Ready", tables: POOL });
    expect(w.data.tables.has(silo.orders)).toBe(false);
  });

  it("a failing step leaves the source serving and the tenant Degraded with the step named", async () => {
    const w = world();
    w.store.items.set("bad", { tenantId: "bad", tier: "basic", tenantName: "Bad" });
    const r = w.controller();
    await settle(r, "bad");
    seed(w, POOL, "bad", 3);
    w.store.edit("bad", { tier: "advanced" });
    const failing = new Proxy(w.data, {
      get(target, prop) {
        if (prop === "backfill") {
          return async () => {
            throw Object.assign(new Error("AccessDenied on the target"), {
              name: "AccessDeniedException",
              $metadata: { httpStatusCode: 400 },
            });
          };
        }
        const value: unknown = Reflect.get(target, prop, target);
        return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    }) as TenantDataPort;
    const broken = w.controller(failing);
    for (let i = 0; i < 3; i++) await broken.reconcile("bad", signal);
    const status = w.store.status("bad");
    expect(status.phase).toBe("Degraded");
    expect(status.message).toContain("backfill");
    expect(status.tables).toEqual(POOL); // still served from the pool
    expect(w.rules.of("bad")).toBeUndefined();
    expect(w.events.types("bad")).toContain("sbt_aws_provisionFailure");
  });

  it("stops a long backfill promptly when the controller stops, keeping the move's checkpoints and reporting nothing", async () => {
    // Degraded at the first failure: an abort taken for the tenant's failure would show at once.
    const w = world({ degradeAfterFailures: 1 });
    w.store.items.set("long", { tenantId: "long", tier: "basic", tenantName: "Long" });
    await settle(w.controller(), "long");
    seed(w, POOL, "long", 12);
    w.store.edit("long", { tier: "advanced" });
    let entered = (): void => undefined;
    const inBackfill = new Promise<void>((resolve) => (entered = resolve));
    // A copy that only ends when its signal aborts: one that ignored the signal would hang.
    const endless = new Proxy(w.data, {
      get(target, prop) {
        if (prop === "backfill") {
          return (_tenant: string, _source: string, _target: string, _fence: Fence, s?: AbortSignal) =>
            new Promise((_resolve, reject) => {
              entered();
              s?.addEventListener("abort", () => reject(s.reason as Error), { once: true });
            });
        }
        const value: unknown = Reflect.get(target, prop, target);
        return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    }) as TenantDataPort;
    const stopping = new AbortController();
    const r = w.controller(endless);
    // The first reconciles provision the silo; one of them goes on into the backfill and stays there.
    let running = r.reconcile("long", stopping.signal);
    for (let i = 0; i < 20 && (await Promise.race([running.then(() => "returned"), inBackfill.then(() => "copying")])) === "returned"; i++)
      running = r.reconcile("long", stopping.signal);
    await inBackfill;
    const saved = structuredClone(w.store.status("long").migration);
    expect(saved).toMatchObject({ step: "backfill", checkpoints: { orders: { shards: {} }, products: { shards: {} } } });
    stopping.abort(new Error("controller stopping"));
    const hung = new Promise<"hung">((resolve) => setTimeout(() => resolve("hung"), 20_000).unref());
    const result = await Promise.race([running, hung]);
    expect(result).toMatchObject({ kind: "failed", terminal: false });
    const status = w.store.status("long");
    expect(status.migration).toEqual(saved); // the capture's checkpoints survive the stop
    expect(status.phase).not.toBe("Degraded");
    expect(w.events.types("long")).not.toContain("sbt_aws_provisionFailure");

    // The next leader resumes at the backfill, from the same stream position, and loses nothing.
    await settle(w.controller(), "long");
    const silo = siloTables("saas", "long");
    expect(w.data.items(silo.orders, "long")).toHaveLength(12);
    expect(w.store.status("long")).toMatchObject({ phase: "Ready", tables: silo });
  });
});

describe("suspension", () => {
  it("suspends a basic tenant with a deny rule (the pool keeps serving others) and resumes it", async () => {
    const w = world();
    const r = w.controller();
    w.store.items.set("sb", { tenantId: "sb", tier: "basic", tenantName: "SB" });
    await settle(r, "sb");
    w.store.edit("sb", { suspended: true });
    await settle(r, "sb");
    expect(w.rules.of("sb")?.action).toEqual({ kind: "deny" });
    expect(w.store.status("sb").phase).toBe("Suspended");
    expect(w.events.types("sb")).toContain("sbt_aws_deactivateSuccess");
    w.store.edit("sb", { suspended: false });
    await settle(r, "sb");
    expect(w.rules.of("sb")).toBeUndefined();
    expect(w.store.status("sb").phase).toBe("Ready");
    expect(w.events.types("sb").at(-1)).toBe("sbt_aws_activateSuccess");
  });

  it("suspends a silo tenant: routing blocked first, then services scaled to 0; stack and data kept; resume reverses it", async () => {
    const w = world();
    const r = w.controller();
    w.store.items.set("ss", { tenantId: "ss", tier: "advanced", tenantName: "SS" });
    await settle(r, "ss");
    seed(w, siloTables("saas", "ss"), "ss", 4);
    w.rules.calls.length = 0;
    w.ecs.applied.length = 0;
    w.store.edit("ss", { suspended: true });
    await r.reconcile("ss", signal);
    // The deny went in before any service was scaled down.
    expect(w.rules.calls).toEqual(["update ss deny"]);
    expect(
      w.ecs.applied
        .flat()
        .filter((a) => a.kind === "updateService")
        .every((a) => a.kind === "updateService" && a.desiredCount === 0),
    ).toBe(true);
    await settle(r, "ss");
    expect(w.store.status("ss").phase).toBe("Suspended");
    expect([...w.ecs.services.values()].filter((s) => s.name.includes("-ss-")).every((s) => s.desiredCount === 0)).toBe(true);
    expect(w.infra.stacks.has("ss")).toBe(true);
    expect(w.data.items(siloTables("saas", "ss").orders, "ss")).toHaveLength(4);

    w.store.edit("ss", { suspended: false });
    await r.reconcile("ss", signal);
    // Services are back before the rule forwards again.
    expect(w.rules.of("ss")?.action.kind).toBe("deny");
    await settle(r, "ss");
    expect(w.rules.of("ss")?.action.kind).toBe("forward");
    expect(w.store.status("ss").phase).toBe("Ready");
  });
});

describe("tenant ids equal ignoring case", () => {
  it("refuses the second of Acme and acme with a clear message and gives it no rule", async () => {
    const w = world();
    const r = w.controller();
    w.store.items.set("Acme", { tenantId: "Acme", tier: "advanced", tenantName: "Acme Corp" });
    await settle(r, "Acme");
    w.store.items.set("acme", { tenantId: "acme", tier: "advanced", tenantName: "acme ltd" });
    const result = await r.reconcile("acme", signal);
    expect(result.kind).toBe("requeueAfter");
    const status = w.store.status("acme");
    expect(status.phase).toBe("Failed");
    expect(status.message).toContain('equals tenant "Acme" ignoring case');
    expect(w.rules.of("acme")).toBeUndefined();
    expect(w.infra.stacks.has("acme")).toBe(false);
    expect(w.events.types("acme")).toEqual(["sbt_aws_provisionFailure"]);
    expect(w.rules.of("Acme")?.action.kind).toBe("forward");
  });
});

describe("offboarding", () => {
  it.each(["basic", "premium"] as const)(
    "exports a %s tenant's items before deleting them, names the export, and a restore brings them back",
    async (tier) => {
      const w = world();
      const r = w.controller();
      w.store.items.set("off", { tenantId: "off", tier, tenantName: "Off", tenantRegistrationId: "reg-off" });
      await settle(r, "off");
      const tables = tier === "basic" ? POOL : siloTables("saas", "off");
      seed(w, tables, "off", 12);
      seed(w, POOL, "stay", 2);
      w.store.edit("off", { sbtaws_active: false });
      await settle(r, "off");
      const status = w.store.status("off");
      expect(status.phase).toBe("Deprovisioned");
      expect(status.backup).toMatchObject({
        location: stringMatching(/^s3:\/\/backups\/offboarded\/off\//),
        counts: { orders: 12, products: 12 },
      });
      expect(w.data.items(POOL.orders, "off")).toEqual([]);
      expect(w.data.tables.has(siloTables("saas", "off").orders)).toBe(false);
      expect(w.data.items(POOL.orders, "stay")).toHaveLength(2);
      expect(w.infra.stacks.has("off")).toBe(false);
      expect(w.claims.holders.has("off")).toBe(false);
      expect(w.priorities.taken.has("off")).toBe(false);
      const done = w.events.sent.find((e) => e.detailType === "sbt_aws_deprovisionSuccess");
      expect(done?.detail.backup?.location).toBe(status.backup?.location);
      // Export strictly before deletion.
      const exportAt = w.data.calls.findIndex((c) => c.startsWith("export"));
      const firstDelete = w.data.calls.findIndex((c) => c.startsWith("purge") || c.startsWith("drop"));
      expect(exportAt).toBeGreaterThanOrEqual(0);
      expect(exportAt).toBeLessThan(firstDelete);

      const url = new URL(status.backup?.location ?? "");
      await w.data.restore("off", { bucket: url.host, prefix: url.pathname.slice(1) }, POOL);
      expect(w.data.items(POOL.orders, "off")).toHaveLength(12);
    },
  );

  it("never re-exports over a finished export after a crash in the deletion", async () => {
    const w = world();
    w.store.items.set("once", { tenantId: "once", tier: "basic", tenantName: "Once" });
    await settle(w.controller(), "once");
    seed(w, POOL, "once", 5);
    w.store.edit("once", { sbtaws_active: false });
    w.data.failNext = {
      method: "purge",
      error: Object.assign(new Error("crash"), { name: "InternalServerError", $metadata: { httpStatusCode: 500 } }),
    };
    await w.controller().reconcile("once", signal);
    await settle(w.controller(), "once");
    expect(w.data.calls.filter((c) => c.startsWith("export"))).toHaveLength(1);
    expect(w.store.status("once").backup?.counts).toEqual({ orders: 5, products: 5 });
  });

  it("writes nothing without the lease", async () => {
    const w = world();
    w.store.items.set("nl", { tenantId: "nl", tier: "basic", tenantName: "NL" });
    const lost: Fence = {
      assertHeld() {
        throw new LeaseLostError();
      },
    };
    const result = await w.controller(w.data, lost).reconcile("nl", signal);
    expect(result.kind).toBe("failed");
    expect(w.store.items.get("nl")?.["status"]).toBeUndefined();
    expect(w.claims.holders.size).toBe(0);
  });
});

describe("identity", () => {
  it("gives a silo tenant its own pool and a basic tenant the shared one, with the admin user; tenantConfig goes to SBT", async () => {
    const w = world();
    const r = w.controller();
    w.store.items.set("own", { tenantId: "own", tier: "premium", tenantName: "Own", email: "admin@own.test" });
    w.store.items.set("shr", { tenantId: "shr", tier: "basic", tenantName: "Shr", email: "admin@shr.test" });
    await settle(r, "own");
    await settle(r, "shr");
    expect(w.store.status("own").identity).toMatchObject({ shared: false, userPoolId: w.identity.pools.get("own")?.userPoolId });
    expect(w.store.status("shr").identity).toMatchObject({ shared: true, userPoolId: w.identity.pools.get("shared")?.userPoolId });
    expect(w.identity.userOf("admin@own.test")).toMatchObject({ tenantId: "own", tier: "premium" });
    const success = w.events.sent.find((e) => e.detailType === "sbt_aws_provisionSuccess" && e.detail.tenantId === "own");
    const config = JSON.parse(String(success?.detail.jobOutput.tenantData["tenantConfig"])) as Record<string, string>;
    expect(config).toEqual({ userPoolId: w.identity.pools.get("own")?.userPoolId, appClientId: "client-own", apiGatewayUrl: "" });
  });

  it("refuses a second tenant whose admin email is taken in the shared pool, creating nothing for it", async () => {
    const w = world();
    const r = w.controller();
    w.store.items.set("first", { tenantId: "first", tier: "basic", tenantName: "First", email: "same@x.test" });
    await settle(r, "first");
    w.store.items.set("second", { tenantId: "second", tier: "advanced", tenantName: "Second", email: "same@x.test" });
    w.store.items.set("second", { tenantId: "second", tier: "basic", tenantName: "Second", email: "same@x.test" });
    expect((await r.reconcile("second", signal)).kind).toBe("requeueAfter");
    const status = w.store.status("second");
    expect(status.phase).toBe("Failed");
    expect(status.message).toContain('already belongs to a user of tenant "first"');
    expect(w.identity.userOf("same@x.test")?.tenantId).toBe("first");
    expect(w.rules.of("second")).toBeUndefined();
    expect(w.events.types("second")).toEqual(["sbt_aws_provisionFailure"]);
  });

  it("keeps the tenant's pool across a move and updates custom:tenantTier; offboarding removes the users and its own pool", async () => {
    const w = world();
    const r = w.controller();
    w.store.items.set("mv", { tenantId: "mv", tier: "basic", tenantName: "Mv", email: "a@mv.test" });
    await settle(r, "mv");
    const pool = w.store.status("mv").identity?.userPoolId;
    w.store.edit("mv", { tier: "advanced" });
    await settle(r, "mv");
    expect(w.store.status("mv").identity).toMatchObject({ userPoolId: pool, shared: true });
    expect(w.identity.userOf("a@mv.test")).toMatchObject({ tier: "advanced", pool });

    w.store.items.set("gone", { tenantId: "gone", tier: "premium", tenantName: "Gone", email: "a@gone.test" });
    await settle(r, "gone");
    w.store.edit("gone", { sbtaws_active: false });
    await settle(r, "gone");
    expect(w.identity.userOf("a@gone.test")).toBeUndefined();
    expect(w.identity.pools.has("gone")).toBe(false);
    expect(w.identity.pools.has("shared")).toBe(true);
    expect(w.store.status("gone").identity).toBeUndefined();
  });
});

describe("a deleted record", () => {
  it("is offboarded and announced even when the controller restarts before it is done: items exported and purged, once", async () => {
    const w = world();
    w.store.items.set("del", { tenantId: "del", tier: "basic", tenantName: "Del", tenantRegistrationId: "reg-del" });
    await settle(w.controller(), "del");
    seed(w, POOL, "del", 6);
    w.store.items.delete("del");
    const first = w.controller();
    first.noteRemoved("del", "reg-del");
    // The export fails once; then the process "dies" (a new one knows nothing in memory).
    w.data.failNext = {
      method: "exportTenant",
      error: Object.assign(new Error("crash"), { name: "InternalServerError", $metadata: { httpStatusCode: 500 } }),
    };
    await first.reconcile("del", signal);
    expect(w.removals.items.has("del")).toBe(true);

    const second = w.controller();
    expect(await second.pendingRemovals()).toEqual(["del"]); // what a resync enqueues
    await settle(second, "del");
    expect(w.data.items(POOL.orders, "del")).toEqual([]);
    const exports = [...w.data.exports.keys()].filter((k) => k.includes("/offboarded/del/deleted-"));
    expect(exports).toHaveLength(1);
    expect(w.data.exports.get(exports[0] ?? "")?.manifest.tables.orders.itemCount).toBe(6);
    const done = w.events.sent.filter((e) => e.detailType === "sbt_aws_deprovisionSuccess" && e.detail.tenantId === "del");
    expect(done).toHaveLength(1);
    expect(done[0]?.detail).toMatchObject({ tenantRegistrationId: "reg-del", backup: { location: exports[0] } });
    expect(w.removals.items.has("del")).toBe(false);
    await settle(second, "del");
    expect(w.events.sent.filter((e) => e.detailType === "sbt_aws_deprovisionSuccess" && e.detail.tenantId === "del")).toHaveLength(1);
  });
});

describe("a deleted record, the controller restarted before it reconciled the key", () => {
  it.each([
    { reason: "a basic tenant (nothing of its own in ECS to find)", tier: "basic" },
    { reason: "a silo tenant", tier: "advanced" },
  ] as const)("$reason is still offboarded and announced once, with its registration id", async ({ tier }) => {
    const w = world();
    w.store.items.set("lost", { tenantId: "lost", tier, tenantName: "Lost", tenantRegistrationId: "reg-lost" });
    await settle(w.controller(), "lost");
    const tables = w.store.status("lost").tables;
    if (tables === undefined) throw new Error("the tenant has no tables");
    seed(w, tables, "lost", 4);
    w.store.items.delete("lost");
    // The stream's REMOVE reached a process that died before the key's reconcile: what it noted in memory is gone.
    w.controller().noteRemoved("lost", "reg-lost");

    const next = w.controller();
    // A resync of the new leader scans the table (no record) and asks the reconciler what else is owed.
    expect(await next.pendingRemovals()).toContain("lost");
    await settle(next, "lost");
    const done = w.events.sent.filter((e) => e.detailType === "sbt_aws_deprovisionSuccess" && e.detail.tenantId === "lost");
    expect(done).toHaveLength(1);
    expect(done[0]?.detail.tenantRegistrationId).toBe("reg-lost");
    expect(w.data.items(POOL.orders, "lost")).toEqual([]);
    expect([...w.data.exports.keys()].some((k) => k.includes("/offboarded/lost/deleted-"))).toBe(true);
    // Owed no more: a later resync finds nothing, and the claim on the id is free for a new tenant.
    expect(await next.pendingRemovals()).not.toContain("lost");
    expect(w.claims.holders.has("lost")).toBe(false);
  });
});

describe("a tenant that never stops writing", () => {
  it("is moved all the same: verification leaves out the keys that changed while it read, and nothing is lost", async () => {
    const w = world({ drainMs: 0 });
    const r = w.controller();
    w.store.items.set("busy", { tenantId: "busy", tier: "basic", tenantName: "Busy" });
    await settle(r, "busy");
    seed(w, POOL, "busy", 10);
    let n = 1000;
    // Every read of the verification meets a fresh write on the source, as a busy application would.
    w.data.duringItemHashes = () => {
      const tables = w.store.status("busy").tables ?? POOL;
      w.data.write(tables.orders, order("busy", n++));
    };
    w.store.edit("busy", { tier: "advanced" });
    await settle(r, "busy", 20);
    w.data.duringItemHashes = undefined;
    const silo = siloTables("saas", "busy");
    expect(w.store.status("busy")).toMatchObject({ phase: "Ready", tables: silo });
    expect(w.store.status("busy").migration).toBeUndefined();
    expect(w.data.items(silo.orders, "busy")).toHaveLength(10 + (n - 1000));
  });

  it("does not flip a copy that differs where no write explains it", async () => {
    const w = world();
    const r = w.controller();
    w.store.items.set("bad-copy", { tenantId: "bad-copy", tier: "basic", tenantName: "Bad copy" });
    await settle(r, "bad-copy");
    seed(w, POOL, "bad-copy", 3);
    const silo = siloTables("saas", "bad-copy");
    // Something corrupts the target copy behind the mover's back, without a stream record on the source.
    w.data.duringItemHashes = () => {
      if (w.data.tables.has(silo.orders))
        w.data.tables.get(silo.orders)?.set("bad-copy#o-0", { tenantId: "bad-copy", orderId: "o-0", total: -1 });
    };
    w.store.edit("bad-copy", { tier: "advanced" });
    for (let i = 0; i < 4; i++) await r.reconcile("bad-copy", signal);
    expect(w.store.status("bad-copy").migration?.step).not.toBe("drain");
    expect(w.store.status("bad-copy").tables).toEqual(POOL);
    expect(w.store.status("bad-copy").migration?.verifyAttempts ?? 0).toBeGreaterThan(0);
  });
});

describe("a record changed while a reconcile copies", () => {
  it("is read again before the flip: a reversal during verification aborts the move instead of flipping it", async () => {
    const w = world();
    const r = w.controller();
    w.store.items.set("race", { tenantId: "race", tier: "basic", tenantName: "Race" });
    await settle(r, "race");
    seed(w, POOL, "race", 4);
    w.store.edit("race", { tier: "premium" });
    // The operator turns the move back while a reconcile is verifying.
    let reversed = false;
    w.data.duringItemHashes = () => {
      w.store.edit("race", { tier: "basic" });
      reversed = true;
      w.data.duringItemHashes = undefined;
    };
    for (let i = 0; i < 10 && !reversed; i++) await r.reconcile("race", signal);
    expect(reversed).toBe(true);
    expect(w.store.status("race").tables).toEqual(POOL); // never flipped
    expect(w.store.status("race").migration?.step).toBe("verify");
    expect(w.rules.of("race")).toBeUndefined();
    await settle(r, "race");
    expect(w.store.status("race")).toMatchObject({ phase: "Ready", tables: POOL });
    expect(w.data.items(POOL.orders, "race")).toHaveLength(4);
    expect(w.data.tables.has(siloTables("saas", "race").orders)).toBe(false);
  });
});
