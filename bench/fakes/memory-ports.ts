import {
  type AdminResult,
  type BackupManifest,
  type CaseClaim,
  type CaseClaimPort,
  type CaptureCheckpoint,
  type ClaimResult,
  type DesiredRoute,
  type EventPublisher,
  type Fence,
  type IdentityPort,
  type InfraPort,
  type InfraRemoval,
  type InfraState,
  type NamespacePort,
  type ObservedRoute,
  type PoolInfraState,
  type RawTenantItem,
  type Removal,
  type RemovalLog,
  type RoutePort,
  type StatusEvent,
  type TableDigest,
  type TenantAdmin,
  type TenantChange,
  type TenantChangeSource,
  type TenantDataPort,
  type TenantInfra,
  type TenantStore,
  type UserPoolRef,
} from "../../src/ports.js";
import type { Priorities } from "../../src/operator/tenant-routes.js";
import type { Phase, TenantStatus } from "../../src/tenants/status.js";
import type { PoolInfra } from "../../src/tiers/model.js";
import { answerLater, Busy } from "./busy.js";

/**
 * The controller's non-ECS ports in process memory, each O(1) per call so a
 * 10,000-tenant fleet measures the controller and not the fakes. They keep
 * the promises of src/ports.ts that a converging fleet relies on (fenced
 * writes, idempotent ensures, conditional status writes) and count their
 * writes, so the benchmark can check what a pass changed.
 */

const ACCOUNT = "123456789012";
const REGION = "us-east-1";

/** A scan page: DynamoDB's 1 MB pages hold about this many tenant items. */
const SCAN_PAGE = 1000;

export class MemoryTenantStore implements TenantStore {
  readonly #items = new Map<string, RawTenantItem>();
  readonly #phases = new Map<string, Phase>();
  readonly #phaseCounts = new Map<Phase, number>();
  readonly #waiters: { readonly phase: Phase; readonly count: number; readonly resolve: () => void }[] = [];
  readonly busy: Busy;
  statusWrites = 0;
  gets = 0;

  constructor(busy: Busy = new Busy()) {
    this.busy = busy;
  }

  /** Puts a record as SBT writes it (no status yet). */
  put(item: RawTenantItem & { readonly tenantId: string }): void {
    this.#items.set(item.tenantId, item);
  }

  get size(): number {
    return this.#items.size;
  }

  async *scan(): AsyncIterable<readonly RawTenantItem[]> {
    let page: RawTenantItem[] = [];
    for (const item of this.#items.values()) {
      page.push(item);
      if (page.length === SCAN_PAGE) {
        await answerLater();
        yield page;
        page = [];
      }
    }
    if (page.length > 0) yield page;
  }

  async get(tenantId: string): Promise<RawTenantItem | undefined> {
    this.gets += 1;
    await answerLater();
    return this.busy.time(() => this.#items.get(tenantId));
  }

  async writeStatus(tenantId: string, status: TenantStatus, fence: Fence): Promise<boolean> {
    fence.assertHeld();
    await answerLater();
    return this.busy.time(() => {
      const item = this.#items.get(tenantId);
      if (item === undefined) return false;
      // A new object: what a reconcile read earlier is never changed under it.
      this.#items.set(tenantId, { ...item, status });
      this.statusWrites += 1;
      const before = this.#phases.get(tenantId);
      if (before !== status.phase) {
        if (before !== undefined) this.#phaseCounts.set(before, (this.#phaseCounts.get(before) ?? 0) - 1);
        this.#phaseCounts.set(status.phase, (this.#phaseCounts.get(status.phase) ?? 0) + 1);
        this.#phases.set(tenantId, status.phase);
        this.#wake();
      }
      return true;
    });
  }

  /** Tenants whose last written status has this phase. */
  count(phase: Phase): number {
    return this.#phaseCounts.get(phase) ?? 0;
  }

  /** Resolves once `count` tenants have this phase (checked at each phase change). */
  whenCount(phase: Phase, count: number): Promise<void> {
    if (this.count(phase) >= count) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ phase, count, resolve }));
  }

  #wake(): void {
    for (let i = this.#waiters.length - 1; i >= 0; i--) {
      const w = this.#waiters[i];
      if (w !== undefined && this.count(w.phase) >= w.count) {
        this.#waiters.splice(i, 1);
        w.resolve();
      }
    }
  }

  statusOf(tenantId: string): TenantStatus | undefined {
    return this.#items.get(tenantId)?.["status"] as TenantStatus | undefined;
  }
}

/**
 * The tenants table's stream: the harness announces the records it puts, in
 * pages as a shard iterator returns them, to every controller following it
 * (each controller reads the stream through its own follower, as each reads
 * DynamoDB Streams with its own iterators).
 */
export class MemoryChangeSource {
  readonly #following = new Set<(changes: readonly TenantChange[]) => void>();

  /** One controller's view of the stream. */
  follower(): TenantChangeSource {
    let mine: ((changes: readonly TenantChange[]) => void) | undefined;
    return {
      start: async (onChange) => {
        if (mine !== undefined) this.#following.delete(mine);
        mine = onChange;
        this.#following.add(onChange);
      },
      stop: async () => {
        if (mine !== undefined) this.#following.delete(mine);
        mine = undefined;
      },
    };
  }

  /** Controllers following the stream now: every one, each keeping the keys of its shards. */
  get followers(): number {
    return this.#following.size;
  }

  emit(changes: readonly TenantChange[]): void {
    for (const onChange of this.#following) onChange(changes);
  }
}

/** Tenant stacks that are complete as soon as they are asked for. */
export class MemoryInfra implements InfraPort {
  readonly #stacks = new Map<string, TenantInfra>();
  readonly busy: Busy;
  stacksCreated = 0;
  poolCreated = false;

  constructor(busy: Busy = new Busy()) {
    this.busy = busy;
  }

  async ensure(tenantId: string, _tier: "advanced" | "premium", fence: Fence): Promise<InfraState> {
    return this.busy.time(() => {
      let infra = this.#stacks.get(tenantId);
      if (infra === undefined) {
        fence.assertHeld();
        infra = siloInfra(tenantId);
        this.#stacks.set(tenantId, infra);
        this.stacksCreated += 1;
      }
      return { kind: "ready", infra };
    });
  }

  async remove(tenantId: string, fence: Fence): Promise<InfraRemoval> {
    if (this.#stacks.has(tenantId)) {
      fence.assertHeld();
      this.#stacks.delete(tenantId);
    }
    return { kind: "gone" };
  }

  async current(tenantId: string): Promise<TenantInfra | undefined> {
    return this.#stacks.get(tenantId);
  }

  async preview(): Promise<readonly []> {
    return [];
  }

  async ensurePool(fence: Fence): Promise<PoolInfraState> {
    if (!this.poolCreated) {
      fence.assertHeld();
      this.poolCreated = true;
    }
    return { kind: "ready", infra: POOL_INFRA };
  }

  async currentPool(): Promise<PoolInfra | undefined> {
    return this.poolCreated ? POOL_INFRA : undefined;
  }

  async previewPool(): Promise<readonly []> {
    return [];
  }
}

function siloInfra(tenantId: string): TenantInfra {
  const iam = `arn:aws:iam::${ACCOUNT}:role`;
  return {
    stackId: `arn:aws:cloudformation:${REGION}:${ACCOUNT}:stack/saas-tenant-${tenantId}/1`,
    taskRoleArn: `${iam}/saas-${tenantId}-task`,
    executionRoleArn: `${iam}/saas-${tenantId}-exec`,
    tenantAccessRoleArn: `${iam}/saas-${tenantId}-access`,
    ordersTableName: `saas-${tenantId}-orders`,
    productsTableName: `saas-${tenantId}-products`,
    logGroupName: `/ecs/saas/${tenantId}`,
    targetGroupArn: `arn:aws:elasticloadbalancing:${REGION}:${ACCOUNT}:targetgroup/saas-${tenantId}/1`,
  };
}

const POOL_INFRA: PoolInfra & { readonly stackId: string } = {
  stackId: `arn:aws:cloudformation:${REGION}:${ACCOUNT}:stack/saas-pool/1`,
  taskRoleArn: `arn:aws:iam::${ACCOUNT}:role/saas-pool-task`,
  executionRoleArn: `arn:aws:iam::${ACCOUNT}:role/saas-pool-exec`,
  tenantAccessRoleArn: `arn:aws:iam::${ACCOUNT}:role/saas-pool-access`,
  ordersTableName: "saas-pool-orders",
  productsTableName: "saas-pool-products",
  logGroupName: "/ecs/saas/pool",
  targetGroupArn: `arn:aws:elasticloadbalancing:${REGION}:${ACCOUNT}:targetgroup/saas-pool/1`,
};

/**
 * Tables that exist (the pooled ones). A converging fleet without tier moves
 * or offboardings only asks whether tables are there; a data move reaching
 * this fake is a benchmark bug, and says so.
 */
export class MemoryData implements TenantDataPort {
  readonly #tables: ReadonlySet<string>;

  constructor(tables: readonly string[]) {
    this.#tables = new Set(tables);
  }

  async tableStatus(table: string): Promise<string | undefined> {
    return this.#tables.has(table) ? "ACTIVE" : undefined;
  }

  async dropTable(table: string, fence: Fence): Promise<void> {
    if (this.#tables.has(table)) {
      fence.assertHeld();
      unused(`dropTable ${table}`);
    }
  }

  async openCapture(): Promise<CaptureCheckpoint> {
    return unused("openCapture");
  }
  async backfill(): Promise<{ readonly items: number }> {
    return unused("backfill");
  }
  async catchUp(): Promise<{ checkpoint: CaptureCheckpoint; applied: number; changedKeys: readonly string[] }> {
    return unused("catchUp");
  }
  async itemHashes(): Promise<ReadonlyMap<string, string>> {
    return unused("itemHashes");
  }
  async digest(): Promise<TableDigest> {
    return unused("digest");
  }
  async purge(): Promise<{ readonly deleted: number }> {
    return unused("purge");
  }
  async exportTenant(): Promise<BackupManifest> {
    return unused("exportTenant");
  }
  async exportExists(): Promise<boolean> {
    return unused("exportExists");
  }
  async restore(): Promise<Record<"orders" | "products", number>> {
    return unused("restore");
  }
}

function unused(what: string): never {
  throw new Error(`the scale benchmark onboards and resyncs only; ${what} was called (a tier move or offboarding in the benchmark?)`);
}

/** One listener's rules, indexed by ARN and by tenant. */
export class MemoryRoutes implements RoutePort {
  readonly rules = new Map<string, ObservedRoute>();
  readonly #byTenant = new Map<string, string>();
  readonly busy: Busy;
  writes = 0;
  #n = 0;

  constructor(busy: Busy = new Busy()) {
    this.busy = busy;
  }

  async observe(tenantId: string, listenerArn: string, knownRuleArn?: string): Promise<ObservedRoute | undefined> {
    return this.busy.time(() => {
      const known = knownRuleArn !== undefined ? this.rules.get(knownRuleArn) : undefined;
      if (known !== undefined) return known;
      const arn = this.#byTenant.get(`${listenerArn} ${tenantId}`);
      return arn === undefined ? undefined : this.rules.get(arn);
    });
  }

  async create(d: DesiredRoute, fence: Fence): Promise<string> {
    fence.assertHeld();
    return this.busy.time(() => {
      const ruleArn = `${d.listenerArn.replace(":listener/", ":listener-rule/")}/${++this.#n}`;
      this.rules.set(ruleArn, {
        ruleArn,
        listenerArn: d.listenerArn,
        tenantId: d.tenantId,
        priority: d.priority,
        action: d.action,
        managed: true,
      });
      this.#byTenant.set(`${d.listenerArn} ${d.tenantId}`, ruleArn);
      this.writes += 1;
      return ruleArn;
    });
  }

  async update(d: DesiredRoute, o: ObservedRoute, fence: Fence): Promise<void> {
    fence.assertHeld();
    this.rules.set(o.ruleArn, { ...o, priority: d.priority, action: d.action });
    this.writes += 1;
  }

  async delete(o: ObservedRoute, fence: Fence): Promise<void> {
    fence.assertHeld();
    this.rules.delete(o.ruleArn);
    this.#byTenant.delete(`${o.listenerArn} ${o.tenantId}`);
    this.writes += 1;
  }
}

/** Durable listener priorities: the next free number, never reused while held. */
export class MemoryPriorities implements Priorities {
  readonly #taken = new Map<string, number>();
  #next = 1;

  async get(tenantId: string): Promise<number | undefined> {
    return this.#taken.get(tenantId);
  }

  async allocate(tenantId: string, fence: Fence): Promise<number> {
    const have = this.#taken.get(tenantId);
    if (have !== undefined) return have;
    fence.assertHeld();
    const n = this.#next++;
    this.#taken.set(tenantId, n);
    return n;
  }

  async placement(tenantId: string): Promise<{ priority: number } | undefined> {
    const priority = this.#taken.get(tenantId);
    return priority === undefined ? undefined : { priority };
  }

  async place(tenantId: string, fence: Fence): Promise<{ priority: number }> {
    return { priority: await this.allocate(tenantId, fence) };
  }

  async release(tenantId: string, fence: Fence): Promise<boolean> {
    fence.assertHeld();
    return this.#taken.delete(tenantId);
  }
}

export class MemoryClaims implements CaseClaimPort {
  readonly #claims = new Map<string, CaseClaim>();
  readonly busy: Busy;
  writes = 0;

  constructor(busy: Busy = new Busy()) {
    this.busy = busy;
  }

  async claim(tenantId: string, fence: Fence, registrationId?: string): Promise<ClaimResult> {
    fence.assertHeld();
    const key = tenantId.toLowerCase();
    const holder = this.#claims.get(key);
    if (holder !== undefined && holder.tenantId !== tenantId) return { ok: false, holder: holder.tenantId };
    this.#claims.set(key, { tenantId, ...(registrationId !== undefined ? { registrationId } : {}) });
    this.writes += 1;
    return { ok: true };
  }

  async release(tenantId: string, fence: Fence): Promise<void> {
    fence.assertHeld();
    if (this.#claims.get(tenantId.toLowerCase())?.tenantId === tenantId) this.#claims.delete(tenantId.toLowerCase());
  }

  async get(tenantId: string): Promise<CaseClaim | undefined> {
    const c = this.#claims.get(tenantId.toLowerCase());
    return c?.tenantId === tenantId ? c : undefined;
  }

  async list(): Promise<readonly CaseClaim[]> {
    return this.busy.time(() => [...this.#claims.values()]);
  }
}

export class MemoryRemovals implements RemovalLog {
  readonly #items = new Map<string, Removal>();

  async record(removal: Removal, fence: Fence): Promise<Removal> {
    fence.assertHeld();
    const have = this.#items.get(removal.tenantId);
    if (have !== undefined) return have;
    this.#items.set(removal.tenantId, removal);
    return removal;
  }

  async get(tenantId: string): Promise<Removal | undefined> {
    return this.#items.get(tenantId);
  }

  async list(): Promise<readonly Removal[]> {
    return [...this.#items.values()];
  }

  async clear(tenantId: string, fence: Fence): Promise<void> {
    fence.assertHeld();
    this.#items.delete(tenantId);
  }

  get size(): number {
    return this.#items.size;
  }
}

/** Cloud Map namespaces, ready as soon as created. */
export class MemoryNamespaces implements NamespacePort {
  readonly #names = new Set<string>();
  readonly busy: Busy;
  writes = 0;

  constructor(busy: Busy = new Busy()) {
    this.busy = busy;
  }

  async ensure(
    name: string,
    _tags: Readonly<Record<string, string>>,
    fence: Fence,
  ): Promise<{ readonly kind: "ready"; readonly namespace: { name: string; id: string; arn: string } }> {
    return this.busy.time(() => {
      if (!this.#names.has(name)) {
        fence.assertHeld();
        this.#names.add(name);
        this.writes += 1;
      }
      return { kind: "ready", namespace: namespaceRef(name) };
    });
  }

  async find(name: string): Promise<{ name: string; id: string; arn: string } | undefined> {
    return this.#names.has(name) ? namespaceRef(name) : undefined;
  }

  async remove(name: string, fence: Fence): Promise<{ readonly kind: "gone" }> {
    fence.assertHeld();
    this.#names.delete(name);
    return { kind: "gone" };
  }
}

function namespaceRef(name: string) {
  return { name, id: `ns-${name}`, arn: `arn:aws:servicediscovery:${REGION}:${ACCOUNT}:namespace/ns-${name}` };
}

/** Cognito: the shared pool and tenants' own pools, their users by email. */
export class MemoryIdentity implements IdentityPort {
  readonly #pools = new Map<string, UserPoolRef>();
  readonly #users = new Map<string, Map<string, { tenantId: string; tier: string }>>();
  readonly busy: Busy;
  writes = 0;

  constructor(busy: Busy = new Busy()) {
    this.busy = busy;
  }

  async ensureSharedPool(fence: Fence): Promise<UserPoolRef> {
    return this.#ensure("shared", fence);
  }
  async findSharedPool(): Promise<UserPoolRef | undefined> {
    return this.#pools.get("shared");
  }
  async ensureTenantPool(tenantId: string, fence: Fence): Promise<UserPoolRef> {
    return this.#ensure(tenantId, fence);
  }
  async findTenantPool(tenantId: string): Promise<UserPoolRef | undefined> {
    return this.#pools.get(tenantId);
  }

  async ensureAdmin(pool: UserPoolRef, admin: TenantAdmin, fence: Fence): Promise<AdminResult> {
    return this.busy.time((): AdminResult => {
      let users = this.#users.get(pool.userPoolId);
      if (users === undefined) {
        users = new Map();
        this.#users.set(pool.userPoolId, users);
      }
      const existing = users.get(admin.email);
      if (existing !== undefined && existing.tenantId !== admin.tenantId) return { kind: "conflict", holder: existing.tenantId };
      if (existing?.tier !== admin.tier) {
        fence.assertHeld();
        users.set(admin.email, { tenantId: admin.tenantId, tier: admin.tier });
        this.writes += 1;
      }
      return { kind: "ok" };
    });
  }

  async removeTenantUsers(pool: UserPoolRef, tenantId: string, fence: Fence): Promise<void> {
    fence.assertHeld();
    const users = this.#users.get(pool.userPoolId);
    for (const [email, u] of users ?? []) if (u.tenantId === tenantId) users?.delete(email);
  }

  async deleteTenantPool(tenantId: string, fence: Fence): Promise<void> {
    fence.assertHeld();
    const pool = this.#pools.get(tenantId);
    if (pool !== undefined) {
      this.#pools.delete(tenantId);
      this.#users.delete(pool.userPoolId);
    }
  }

  issuer(pool: UserPoolRef): string {
    return `https://cognito-idp.${REGION}.amazonaws.com/${pool.userPoolId}`;
  }

  #ensure(owner: string, fence: Fence): UserPoolRef {
    return this.busy.time(() => {
      const have = this.#pools.get(owner);
      if (have !== undefined) return have;
      fence.assertHeld();
      const pool = { userPoolId: `${REGION}_${owner}`, appClientId: `client-${owner}` };
      this.#pools.set(owner, pool);
      this.writes += 1;
      return pool;
    });
  }
}

/** EventBridge: counts what was published, by detail type. */
export class MemoryEvents implements EventPublisher {
  readonly byType = new Map<string, number>();
  total = 0;

  async publish(events: readonly StatusEvent[]): Promise<void> {
    for (const e of events) this.byType.set(e.detailType, (this.byType.get(e.detailType) ?? 0) + 1);
    this.total += events.length;
  }
}
