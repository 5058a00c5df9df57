import { pino } from "pino";
import { describe, expect, it, vi } from "vitest";
import { defaultCatalogue } from "../../src/apps/catalogue.js";
import { TenantReconciler, type TenantReconcilerOptions } from "../../src/operator/tenant-reconciler.js";
import { Controller } from "../../src/reconciler/controller.js";
import { WorkQueue, type Timers } from "../../src/reconciler/queue.js";
import type { ReconcileResult } from "../../src/reconciler/result.js";
import {
  LeaseLostError,
  UnmanagedResourceError,
  type InfraPort,
  type InfraRemoval,
  type InfraState,
  type TenantInfra,
  type ApplyOutcome,
  type EcsPort,
  type EventPublisher,
  type Fence,
  type RawTenantItem,
  type StatusEvent,
  type TenantStore,
} from "../../src/ports.js";
import type { TenantStatus } from "../../src/tenants/status.js";
import type { Action, ObservedState } from "../../src/tiers/model.js";
import { desiredForTenant, tenantNamespaceName } from "../../src/tiers/desired.js";
import { validateRecord } from "../../src/tenants/record.js";
import { TenantRoutes } from "../../src/operator/tenant-routes.js";
import { poolTables, siloTables } from "../../src/tiers/data-home.js";
import { FakeClaims, FakeData, FakeIdentity, FakePriorities, FakeNamespaces, FakeRemovals, FakeRoutes } from "../support/fake-ports.js";
import { stringContaining } from "../support/matchers.js";

/** Generous: these machines are loaded; a wait's length proves nothing here. */
const SLOW = { timeout: 10_000 };

const settings = {
  namePrefix: "saas",
  poolCluster: "saas-pool",
  advancedCluster: "saas-advanced",
  subnets: ["subnet-1"],
  securityGroups: ["sg-1"],
};
const empty: ObservedState = { clusters: [], services: [], taskDefinitions: [] };
const LISTENER = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/alb/1/2";

class FakeStore implements TenantStore {
  items = new Map<string, Record<string, unknown>>();
  writes: TenantStatus[] = [];
  failWrites = false;
  async *scan() {
    yield [...this.items.values()];
  }
  async get(id: string): Promise<RawTenantItem | undefined> {
    return this.items.get(id);
  }
  async writeStatus(id: string, status: TenantStatus, fence: Fence): Promise<boolean> {
    fence.assertHeld();
    if (this.failWrites) throw Object.assign(new Error("boom"), { name: "InternalServerError", $metadata: { httpStatusCode: 500 } });
    const item = this.items.get(id);
    if (!item) return false;
    item["status"] = status;
    this.writes.push(status);
    return true;
  }
}

/** An ECS that converges at once: whatever was applied is observed steady next time. */
class FakeEcs implements EcsPort {
  applied: Action[][] = [];
  observed: ObservedState = empty;
  fail: Error | undefined;
  async observe(): Promise<ObservedState> {
    if (this.fail) throw this.fail;
    return this.observed;
  }
  async apply(actions: readonly Action[], _o: ObservedState, fence: Fence): Promise<ApplyOutcome> {
    fence.assertHeld();
    this.applied.push([...actions]);
    return { registered: new Map(), created: [] };
  }
  async survey() {
    return new Set<string>();
  }
  forget() {}
}

const INFRA: TenantInfra = {
  taskRoleArn: "arn:aws:iam::123456789012:role/task",
  executionRoleArn: "arn:aws:iam::123456789012:role/exec",
  tenantAccessRoleArn: "arn:aws:iam::123456789012:role/access",
  ordersTableName: "orders-t",
  productsTableName: "products-t",
  logGroupName: "/ecs/t",
  targetGroupArn: "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/t/1",
  stackId: "arn:aws:cloudformation:us-east-1:123456789012:stack/t/1",
};

/** Infrastructure whose state the test sets; records the order of calls. */
class FakeInfra implements InfraPort {
  state: InfraState = { kind: "ready", infra: INFRA };
  removal: InfraRemoval = { kind: "gone" };
  calls: string[] = [];
  constructor(readonly data: FakeData) {}
  async ensure(tenantId: string, _tier: "advanced" | "premium", fence: Fence): Promise<InfraState> {
    fence.assertHeld();
    this.calls.push(`ensure ${tenantId}`);
    // The stack makes the tenant's silo tables (and retains them when it goes).
    if (this.state.kind === "ready") for (const t of Object.values(siloTables("saas", tenantId))) this.data.createTable(t);
    return this.state;
  }
  async currentPool() {
    return undefined;
  }
  async previewPool() {
    return [];
  }
  async ensurePool() {
    return { kind: "ready" as const, infra: { ...INFRA, tenantAccessRoleArn: "arn:aws:iam::123456789012:role/access", stackId: "pool" } };
  }
  async remove(tenantId: string, fence: Fence): Promise<InfraRemoval> {
    fence.assertHeld();
    this.calls.push(`remove ${tenantId}`);
    return this.removal;
  }
  async current() {
    return this.state.kind === "ready" ? this.state.infra : undefined;
  }
  async preview() {
    return [];
  }
}

class FakeEvents implements EventPublisher {
  sent: StatusEvent[] = [];
  async publish(events: readonly StatusEvent[]) {
    this.sent.push(...events);
  }
}

function setup(leader = true, options: Partial<TenantReconcilerOptions> = {}) {
  const store = new FakeStore();
  const ecs = new FakeEcs();
  const events = new FakeEvents();
  const data = new FakeData();
  for (const t of Object.values(poolTables("saas"))) data.createTable(t);
  const infra = new FakeInfra(data);
  const ruleApi = new FakeRoutes();
  const claims = new FakeClaims();
  const fence: Fence & { leader: boolean } = {
    leader,
    assertHeld() {
      if (!this.leader) throw new LeaseLostError();
    },
  };
  const routes = new TenantRoutes(ruleApi, new FakePriorities(), LISTENER);
  const r = new TenantReconciler({
    store,
    ecs,
    infra,
    events,
    fence,
    data,
    routes,
    claims,
    identity: new FakeIdentity(),
    removals: new FakeRemovals(),
    namespaces: new FakeNamespaces(),
    account: { region: "us-east-1", accountId: "123456789012" },
    backupBucket: "backups",
    drainMs: 0,
    catalogue: defaultCatalogue,
    settings,
    log: pino({ level: "silent" }),
    degradeAfterFailures: 3,
    ...options,
  });
  return { store, ecs, events, fence, infra, data, ruleApi, claims, r };
}
const signal = new AbortController().signal;

/** Observed state in which every desired resource exists and is steady. */
function steady(record: Record<string, unknown>): ObservedState {
  const v = validateRecord(record);
  if (!v.ok) throw new Error(v.message);
  // What the reconciler passes: the fakes' deterministic pool and namespace.
  const id = v.spec.tenantId;
  const namespaceName = tenantNamespaceName("saas", id);
  const context = {
    region: "us-east-1",
    accountId: "123456789012",
    tenantAccessRoleArn: INFRA.tenantAccessRoleArn,
    identity: {
      userPoolId: `us-east-1_${id}`,
      appClientId: `client-${id}`,
      issuer: `https://cognito-idp.us-east-1.amazonaws.com/us-east-1_${id}`,
    },
    namespace: { name: namespaceName, arn: `arn:aws:servicediscovery:us-east-1:123456789012:namespace/ns-${namespaceName}` },
  };
  const d = desiredForTenant(v.spec, defaultCatalogue, settings, v.spec.tier === "basic" ? undefined : INFRA, context);
  return {
    clusters: d.clusters.map((c) => ({ name: c.name, arn: `arn:cluster/${c.name}`, status: "ACTIVE", tags: c.tags })),
    taskDefinitions: d.taskDefinitions.map((t) => ({
      family: t.family,
      arn: `arn:td/${t.family}:1`,
      revision: 1,
      contentHash: t.contentHash,
      tags: t.tags,
    })),
    services: d.services.map((s) => {
      const td = d.taskDefinitions.find((t) => t.family === s.taskDefinitionFamily);
      const arn = `arn:td/${s.taskDefinitionFamily}:1`;
      return {
        cluster: s.cluster,
        name: s.name,
        arn: `arn:svc/${s.name}`,
        status: "ACTIVE" as const,
        desiredCount: s.desiredCount,
        runningCount: s.desiredCount,
        taskDefinitionArn: arn,
        taskDefinitionContentHash: td?.contentHash,
        tags: s.tags,
        ...(s.serviceConnect
          ? {
              serviceConnect: {
                enabled: true,
                namespace: s.serviceConnect.namespace.arn,
                servers: s.serviceConnect.servers,
                log: s.serviceConnect.log,
              },
            }
          : {}),
        deployments: [
          {
            id: "d1",
            status: "PRIMARY" as const,
            rolloutState: "COMPLETED" as const,
            rolloutStateReason: undefined,
            desiredCount: s.desiredCount,
            runningCount: s.desiredCount,
            failedTasks: 0,
            taskDefinitionArn: arn,
          },
        ],
      };
    }),
  };
}

describe("TenantReconciler", () => {
  it("reports an invalid record without observing or changing anything", async () => {
    const { store, ecs, events, r } = setup();
    store.items.set("t1", { tenantId: "t1", tier: "platinum", tenantName: "T" });
    ecs.fail = new Error("observe must not be called");
    const result = await r.reconcile("t1", signal);
    expect(result).toMatchObject({ kind: "failed", terminal: true });
    expect(ecs.applied).toEqual([]);
    expect(store.writes.at(-1)?.phase).toBe("Failed");
    expect(events.sent.map((e) => e.detailType)).toContain("sbt_aws_provisionFailure");
  });

  it("provisions, waits, then reports Ready and provisionSuccess exactly once", async () => {
    const { store, ecs, events, r } = setup();
    const record = { tenantId: "t2", tier: "advanced", tenantName: "T2" };
    store.items.set("t2", { ...record });
    expect((await r.reconcile("t2", signal)).kind).toBe("requeueAfter");
    expect(ecs.applied[0]?.filter((a) => a.kind === "createService")).toHaveLength(4);
    expect(store.writes.at(-1)?.phase).toBe("Provisioning");

    ecs.observed = steady(record);
    expect((await r.reconcile("t2", signal)).kind).toBe("done");
    expect(store.writes.at(-1)?.phase).toBe("Ready");
    const writes = store.writes.length;
    await r.reconcile("t2", signal);
    expect(store.writes.length).toBe(writes); // nothing changed: no write
    expect(events.sent.filter((e) => e.detailType === "sbt_aws_provisionSuccess")).toHaveLength(1);
    expect(r.phaseCounts().Ready).toBe(1);
  });

  it("re-sends an event whose status write failed (at least once), then stops", async () => {
    const { store, ecs, events, r } = setup();
    const record = { tenantId: "t3", tier: "advanced", tenantName: "T3" };
    store.items.set("t3", { ...record });
    ecs.observed = steady(record);
    store.failWrites = true;
    expect((await r.reconcile("t3", signal)).kind).toBe("failed");
    store.failWrites = false;
    await r.reconcile("t3", signal);
    await r.reconcile("t3", signal);
    expect(events.sent.filter((e) => e.detailType === "sbt_aws_provisionSuccess")).toHaveLength(2);
  });

  it("makes no write at all without the lease", async () => {
    const { store, ecs, events, fence, r } = setup(false);
    store.items.set("t4", { tenantId: "t4", tier: "premium", tenantName: "T4" });
    const result = await r.reconcile("t4", signal);
    expect(result).toMatchObject({ kind: "failed", terminal: false });
    expect(ecs.applied).toEqual([]);
    expect(store.writes).toEqual([]);
    expect(events.sent).toEqual([]);
    fence.leader = true;
    expect((await r.reconcile("t4", signal)).kind).toBe("requeueAfter");
  });

  it("reports persistent retryable trouble as Degraded after the threshold", async () => {
    const { store, ecs, events, r } = setup();
    store.items.set("t5", { tenantId: "t5", tier: "advanced", tenantName: "T5" });
    ecs.fail = Object.assign(new Error("Rate exceeded"), { name: "ThrottlingException", $metadata: { httpStatusCode: 400 } });
    for (let i = 0; i < 2; i++) expect((await r.reconcile("t5", signal)).kind).toBe("failed");
    // Below the threshold only lastError is written: a tenant never reported is Pending, and SBT hears nothing.
    expect(store.writes.map((w) => w.phase)).toEqual(["Pending", "Pending"]);
    expect(store.writes.at(-1)?.lastError).toMatchObject({ kind: "transient", type: "ThrottlingException", retries: 2 });
    expect(events.sent).toEqual([]);
    await r.reconcile("t5", signal);
    expect(store.writes.at(-1)).toMatchObject({ phase: "Degraded", lastError: { retries: 3 } });
    expect(events.sent.map((e) => e.detailType)).toContain("sbt_aws_provisionFailure");
  });

  it("announces the deletion of a removed item once its resources are gone", async () => {
    const { events, ecs, r } = setup();
    const record = { tenantId: "t6", tier: "advanced", tenantName: "T6", tenantRegistrationId: "reg-6" };
    ecs.observed = steady(record);
    expect((await r.reconcile("t6", signal)).kind).toBe("requeueAfter");
    expect(ecs.applied[0]?.filter((a) => a.kind === "deleteService")).toHaveLength(4);
    ecs.observed = empty;
    expect((await r.reconcile("t6", signal)).kind).toBe("done");
    await r.reconcile("t6", signal);
    const deleted = events.sent.filter((e) => e.detailType === "sbt_aws_deprovisionSuccess");
    expect(deleted).toHaveLength(1);
    expect(deleted[0]?.detail.tenantRegistrationId).toBe("reg-6");
  });

  it("touches no ECS resource until the tenant's stack is ready, and wires its outputs in", async () => {
    const { store, ecs, infra, r } = setup();
    store.items.set("s1", { tenantId: "s1", tier: "premium", tenantName: "S1" });
    infra.state = { kind: "inProgress", status: "stack saas-s1 CREATE_IN_PROGRESS" };
    expect((await r.reconcile("s1", signal)).kind).toBe("requeueAfter");
    expect(ecs.applied).toEqual([]);
    expect(store.writes.at(-1)).toMatchObject({ phase: "Provisioning", message: stringContaining("CREATE_IN_PROGRESS") });

    infra.state = { kind: "ready", infra: INFRA };
    await r.reconcile("s1", signal);
    const registered = ecs.applied[0]?.flatMap((a) => (a.kind === "registerTaskDefinition" ? [a.taskDefinition] : [])) ?? [];
    expect(registered).toHaveLength(4);
    const env = (app: string) =>
      Object.fromEntries(registered.find((t) => t.app === app)?.containers[0]?.environment.map((e) => [e.name, e.value]) ?? []);
    for (const td of registered) {
      expect(td).toMatchObject({ taskRoleArn: INFRA.taskRoleArn, executionRoleArn: INFRA.executionRoleArn });
      expect(td.containers[0]?.logGroup).toBe(INFRA.logGroupName);
      // What the reference images read, from the tenant's own pool (premium at onboarding).
      expect(env(td.app)).toMatchObject({
        AWS_REGION: "us-east-1",
        AWS_ACCOUNT_ID: "123456789012",
        COGNITO_USER_POOL_ID: "us-east-1_s1",
        COGNITO_CLIENT_ID: "client-s1",
      });
    }
    expect(env("orders")).toMatchObject({
      TABLE_NAME: "orders-t",
      IAM_ROLE_ARN: INFRA.tenantAccessRoleArn,
      REQUEST_TAG_KEYS_MAPPING_ATTRIBUTES: '{"tenant":"custom:tenantId"}',
    });
    expect(env("products")).toMatchObject({ TABLE_NAME: "products-t", IAM_ROLE_ARN: INFRA.tenantAccessRoleArn });
    expect(env("rproxy")["NAMESPACE"]).toBe(tenantNamespaceName("saas", "s1"));
    const rproxy = ecs.applied[0]?.find((a) => a.kind === "createService" && a.service.app === "rproxy");
    expect(rproxy?.kind === "createService" && rproxy.service.loadBalancer?.targetGroupArn).toBe(INFRA.targetGroupArn);
    const orders = ecs.applied[0]?.find((a) => a.kind === "createService" && a.service.app === "orders");
    expect(orders?.kind === "createService" && orders.service.serviceConnect?.servers.map((x) => x.discoveryName)).toEqual(["orders-api"]);
    expect(rproxy?.kind === "createService" && rproxy.service.serviceConnect?.servers).toEqual([]);
  });

  it("reports a failed stack as Degraded with its reason, and retries a failed create with backoff", async () => {
    const { store, ecs, infra, events, r } = setup();
    store.items.set("s2", { tenantId: "s2", tier: "advanced", tenantName: "S2" });
    infra.state = { kind: "failed", reason: "stack saas-s2 ROLLBACK_COMPLETE: OrdersTable: Table already exists", terminal: false };
    expect(await r.reconcile("s2", signal)).toMatchObject({ kind: "failed", terminal: false });
    expect(ecs.applied).toEqual([]);
    expect(store.writes.at(-1)).toMatchObject({
      phase: "Degraded",
      message: stringContaining("OrdersTable: Table already exists"),
    });
    // The same write carries the failed attempt.
    expect(store.writes).toHaveLength(1);
    expect(store.writes[0]?.lastError).toMatchObject({ kind: "transient", type: "StackOperationFailed", retries: 1 });
    const failure = events.sent.find((e) => e.detailType === "sbt_aws_provisionFailure");
    expect(failure?.detail.reason).toContain("OrdersTable");
  });

  it("offboards services first, then the stack, and is Deprovisioned only when the stack is gone", async () => {
    const { store, ecs, infra, r } = setup();
    const record = { tenantId: "s3", tier: "advanced", tenantName: "S3", sbtaws_active: false };
    store.items.set("s3", { ...record });
    ecs.observed = steady({ ...record, sbtaws_active: true });
    await r.reconcile("s3", signal);
    expect(infra.calls).toEqual([]); // services still there: the stack stays
    ecs.observed = empty;
    infra.removal = { kind: "inProgress", status: "stack saas-s3 DELETE_IN_PROGRESS" };
    expect((await r.reconcile("s3", signal)).kind).toBe("requeueAfter");
    expect(infra.calls).toEqual(["remove s3"]);
    expect(store.writes.at(-1)?.phase).toBe("Deprovisioning");
    infra.removal = { kind: "gone" };
    expect((await r.reconcile("s3", signal)).kind).toBe("done");
    expect(store.writes.at(-1)?.phase).toBe("Deprovisioned");
  });

  it("asks for a stack's removal after a move to basic, but not on every resync of a settled basic tenant", async () => {
    const { store, infra, ecs, r } = setup();
    store.items.set("b1", { tenantId: "b1", tier: "advanced", tenantName: "B1" });
    await r.reconcile("b1", signal); // advanced: stack ensured
    store.items.set("b1", { ...store.items.get("b1"), tier: "basic" });
    // The move copies the data, flips routing, then retires the silo: services first, then the stack.
    ecs.observed = steady({ tenantId: "b1", tier: "advanced", tenantName: "B1" });
    await r.reconcile("b1", signal);
    expect(infra.calls).not.toContain("remove b1");
    ecs.observed = empty;
    for (let i = 0; i < 5 && store.writes.at(-1)?.phase !== "Ready"; i++) await r.reconcile("b1", signal);
    expect(infra.calls.filter((c) => c === "remove b1")).toHaveLength(1);
    expect(store.writes.at(-1)?.phase).toBe("Ready");
    await r.reconcile("b1", signal);
    await r.reconcile("b1", signal);
    expect(infra.calls.filter((c) => c === "remove b1")).toHaveLength(1);
  });
});

/** Queue timers that fire only on advance(), on the same clock the reconciler reads. */
class ManualTimers implements Timers {
  #now: number;
  #seq = 0;
  readonly pending = new Map<number, { at: number; fn: () => void }>();
  constructor(start: number) {
    this.#now = start;
  }
  now(): number {
    return this.#now;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    this.pending.set(++this.#seq, { at: this.#now + ms, fn });
    return this.#seq;
  }
  clearTimeout(handle: unknown): void {
    this.pending.delete(handle as number);
  }
  /** Runs the one pending timer, moving the clock to it; returns its delay. */
  fireNext(): number {
    const [id, t] = [...this.pending].sort((a, b) => a[1].at - b[1].at)[0] ?? [];
    if (id === undefined || t === undefined) throw new Error("no timer pending");
    const delay = t.at - this.#now;
    this.pending.delete(id);
    this.#now = t.at;
    t.fn();
    return delay;
  }
  nextAt(): number | undefined {
    return [...this.pending.values()].map((t) => t.at).sort((a, b) => a - b)[0];
  }
}

describe("status.lastError", () => {
  const throttle = () => Object.assign(new Error("Rate exceeded"), { name: "ThrottlingException", $metadata: { httpStatusCode: 400 } });

  it("after 5 transient ECS failures shows retries 5 and the queue's next attempt; the next success clears it", async () => {
    const timers = new ManualTimers(Date.parse("2026-11-30T12:00:00.000Z"));
    const { store, ecs, events, r } = setup(true, { now: () => new Date(timers.now()), degradeAfterFailures: 5 });
    store.items.set("e1", { tenantId: "e1", tier: "advanced", tenantName: "E1" });
    const queue = new WorkQueue<string>({ timers, backoff: { random: () => 0.5 } });
    const results: ReconcileResult[] = [];
    const controller = new Controller<string>({ queue, reconciler: r.reconcile, concurrency: 1, onResult: (_k, res) => results.push(res) });
    ecs.fail = throttle();
    controller.start();
    controller.enqueue(["e1"]);
    for (let n = 1; n <= 5; n++) {
      await vi.waitFor(() => expect(results).toHaveLength(n), SLOW);
      const lastError = store.writes.at(-1)?.lastError;
      expect(lastError).toMatchObject({ kind: "transient", type: "ThrottlingException", message: "Rate exceeded", retries: n });
      // nextAttemptAt is when the queue's timer is actually due.
      expect(lastError?.at).toBe(new Date(timers.now()).toISOString());
      expect(lastError?.nextAttemptAt).toBe(new Date(timers.nextAt() ?? 0).toISOString());
      if (n < 5) timers.fireNext();
    }
    const status = store.writes.at(-1);
    expect(status?.lastError?.retries).toBe(5);
    expect(Date.parse(status?.lastError?.nextAttemptAt ?? "")).toBeGreaterThan(timers.now());
    // d = 1000 * 2^4, equal jitter at 0.5: 12 s.
    expect(Date.parse(status?.lastError?.nextAttemptAt ?? "") - timers.now()).toBe(12_000);
    // One write per failed attempt; below the threshold the phase stayed, at it the tenant is Degraded and SBT told.
    expect(store.writes.map((w) => `${w.phase}:${w.lastError?.retries}`)).toEqual([
      "Pending:1",
      "Pending:2",
      "Pending:3",
      "Pending:4",
      "Degraded:5",
    ]);
    expect(events.sent.map((e) => e.detailType)).toContain("sbt_aws_provisionFailure");

    ecs.fail = undefined;
    expect(timers.fireNext()).toBe(12_000);
    await vi.waitFor(() => expect(results).toHaveLength(6), SLOW);
    expect(results[5]?.kind).toBe("requeueAfter");
    expect(store.writes.at(-1)?.phase).toBe("Provisioning");
    expect(store.writes.at(-1)).not.toHaveProperty("lastError");
    expect(store.items.get("e1")?.["status"]).not.toHaveProperty("lastError");
    await controller.stop({ timeoutMs: 1000 });
  });

  it("keeps the phase of a tenant that had one, and sends nothing, while a transient failure is retried", async () => {
    const { store, ecs, events, r } = setup();
    const record = { tenantId: "e2", tier: "advanced", tenantName: "E2" };
    store.items.set("e2", { ...record });
    ecs.observed = steady(record);
    expect((await r.reconcile("e2", signal)).kind).toBe("done");
    const ready = store.writes.at(-1);
    const sent = events.sent.length;
    ecs.fail = throttle();
    await r.reconcile("e2", signal, { failures: 0, retryDelayMs: () => 750 });
    const failedOnce = store.writes.at(-1);
    expect(failedOnce).toEqual({ ...ready, lastError: expect.objectContaining({ retries: 1, kind: "transient" }) as unknown });
    expect(events.sent).toHaveLength(sent);
    expect(Date.parse(failedOnce?.lastError?.nextAttemptAt ?? "") - Date.parse(failedOnce?.lastError?.at ?? "")).toBe(750);
  });

  it("records a terminal failure, retried slowly, counting on from the status (the queue forgets terminal failures)", async () => {
    const { store, ecs, r } = setup(true, { problemPollMs: 60_000 });
    store.items.set("e3", { tenantId: "e3", tier: "advanced", tenantName: "E3" });
    ecs.fail = new UnmanagedResourceError("service saas-e3-orders");
    const first = await r.reconcile("e3", signal, { failures: 0, retryDelayMs: () => 1000 });
    expect(first).toMatchObject({ kind: "failed", terminal: true, retryAfterMs: 60_000 });
    const status = store.writes.at(-1);
    expect(status?.phase).toBe("Degraded");
    expect(status?.lastError).toMatchObject({ kind: "terminal", type: "UnmanagedResourceError", retries: 1 });
    expect(Date.parse(status?.lastError?.nextAttemptAt ?? "") - Date.parse(status?.lastError?.at ?? "")).toBe(60_000);
    await r.reconcile("e3", signal, { failures: 0, retryDelayMs: () => 1000 });
    expect(store.writes.at(-1)?.lastError?.retries).toBe(2);
  });

  it("records an invalid record as a terminal failure with no attempt scheduled", async () => {
    const { store, r } = setup();
    store.items.set("e4", { tenantId: "e4", tier: "platinum", tenantName: "E4" });
    await r.reconcile("e4", signal, { failures: 0, retryDelayMs: () => 1000 });
    const lastError = store.writes.at(-1)?.lastError;
    expect(lastError).toMatchObject({ kind: "terminal", type: "InvalidTenantRecord", retries: 1 });
    expect(lastError?.message).toContain("e4");
    expect(lastError).not.toHaveProperty("nextAttemptAt");
  });

  it("keeps phaseSince while the phase holds and tells the time in phase of each tenant", async () => {
    let now = Date.parse("2026-11-30T12:00:00.000Z");
    const { store, ecs, r } = setup(true, { now: () => new Date(now) });
    const record = { tenantId: "e5", tier: "advanced", tenantName: "E5" };
    store.items.set("e5", { ...record });
    await r.reconcile("e5", signal);
    expect(store.writes.at(-1)).toMatchObject({ phase: "Provisioning", phaseSince: "2026-11-30T12:00:00.000Z" });
    now += 5_000;
    await r.reconcile("e5", signal);
    expect(store.writes.at(-1)?.phaseSince).toBe("2026-11-30T12:00:00.000Z");
    now += 5_000;
    ecs.observed = steady(record);
    await r.reconcile("e5", signal);
    expect(store.writes.at(-1)).toMatchObject({ phase: "Ready", phaseSince: "2026-11-30T12:00:10.000Z" });
    expect(r.phaseTimes()).toEqual([{ phase: "Ready", since: now }]);
  });
});

describe("TenantReconciler per-key fence", () => {
  it("fences each key by its own lease: a key of a lost shard writes nothing while other keys go on", async () => {
    const owned = new Set(["mine"]);
    const asked: string[] = [];
    const fenceFor = (key: string): Fence => {
      asked.push(key);
      return {
        assertHeld: () => {
          if (!owned.has(key)) throw new LeaseLostError(`shard of ${key} is not held`);
        },
      };
    };
    const { store, ecs, events, r } = setup(true, { fenceFor });
    store.items.set("mine", { tenantId: "mine", tier: "basic", tenantName: "M" });
    store.items.set("theirs", { tenantId: "theirs", tier: "basic", tenantName: "T" });
    const result = await r.reconcile("theirs", signal);
    expect(result).toMatchObject({ kind: "failed" });
    expect(store.writes).toHaveLength(0);
    expect(ecs.applied).toEqual([]);
    expect(events.sent).toEqual([]);
    expect((await r.reconcile("mine", signal)).kind).not.toBe("failed");
    expect(store.writes.length).toBeGreaterThan(0);
    // One fence per reconcile, asked when it begins.
    expect(asked).toEqual(["theirs", "mine"]);
  });

  it("keeps the fence a reconcile began with: a term that ends mid-reconcile fences the rest of it", async () => {
    let term = 1;
    const fenceFor = (): Fence => {
      const mine = term;
      return {
        assertHeld: () => {
          if (term !== mine) throw new LeaseLostError(`term ${mine} ended`);
        },
      };
    };
    const { store, ecs, r } = setup(true, { fenceFor });
    store.items.set("t9", { tenantId: "t9", tier: "advanced", tenantName: "T9" });
    // The term changes between the ECS apply and the status write.
    const apply = ecs.apply.bind(ecs);
    ecs.apply = async (...args) => {
      const out = await apply(...args);
      term = 2;
      return out;
    };
    const result = await r.reconcile("t9", signal);
    expect(result).toMatchObject({ kind: "failed" });
    expect(ecs.applied).toHaveLength(1);
    expect(store.writes).toHaveLength(0);
  });
});
