import { createHash } from "node:crypto";
import {
  DATA_APPS,
  SORT_KEYS,
  UnmanagedResourceError,
  type BackupLocation,
  type BackupManifest,
  type CaptureCheckpoint,
  type CaseClaim,
  type CaseClaimPort,
  type ClaimResult,
  type DataApp,
  type DesiredRoute,
  type Fence,
  type ObservedRoute,
  type RoutePort,
  type TableDigest,
  type TableSet,
  type TenantDataPort,
} from "../../src/ports.js";
import type {
  AdminResult,
  ApplyOutcome,
  EcsPort,
  IdentityPort,
  NamespacePort,
  Removal,
  RemovalLog,
  TenantAdmin,
  UserPoolRef,
} from "../../src/ports.js";
import type { Priorities } from "../../src/operator/tenant-routes.js";
import type {
  Action,
  DesiredServiceConnect,
  Footprint,
  ObservedCluster,
  ObservedService,
  ObservedServiceConnect,
  ObservedState,
  ObservedTaskDefinition,
  Tags,
} from "../../src/tiers/model.js";
import { canonicalJson } from "../../src/tenants/record.js";

type Item = Record<string, unknown> & { tenantId: string };
interface Change {
  readonly seq: number;
  readonly kind: "put" | "remove";
  readonly key: string;
  readonly item: Item;
}

/**
 * In-memory tables with a stream each, behaving as TenantDataPort promises:
 * the reconciler's unit tests run tier moves and offboardings against it.
 * `write`/`remove` play the tenant's application writing to a table.
 */
export class FakeData implements TenantDataPort {
  readonly tables = new Map<string, Map<string, Item>>();
  readonly streams = new Map<string, Change[]>();
  readonly unmanaged = new Set<string>();
  readonly exports = new Map<string, { manifest: BackupManifest; items: Record<DataApp, Item[]> }>();
  readonly calls: string[] = [];
  #seq = 0;
  /** Throws this before the named method's next call (crash injection). */
  failNext: { method: keyof TenantDataPort; error: Error } | undefined;

  createTable(name: string): void {
    if (!this.tables.has(name)) {
      this.tables.set(name, new Map());
      this.streams.set(name, []);
    }
  }

  write(table: string, item: Item): void {
    const t = this.#table(table);
    const key = keyOf(table, item);
    t.set(key, { ...item });
    this.#stream(table).push({ seq: ++this.#seq, kind: "put", key, item: { ...item } });
  }

  remove(table: string, item: Item): void {
    const key = keyOf(table, item);
    this.#table(table).delete(key);
    this.#stream(table).push({ seq: ++this.#seq, kind: "remove", key, item: { ...item } });
  }

  items(table: string, tenantId?: string): Item[] {
    return [...(this.tables.get(table)?.values() ?? [])].filter((i) => tenantId === undefined || i.tenantId === tenantId);
  }

  async openCapture(table: string): Promise<CaptureCheckpoint> {
    this.#fail("openCapture");
    this.calls.push(`openCapture ${table}`);
    const last = this.#stream(table).at(-1)?.seq ?? 0;
    return { streamArn: `stream/${table}`, shards: { shard0: String(last) } };
  }

  async backfill(tenantId: string, source: string, target: string, fence: Fence): Promise<{ items: number }> {
    this.#fail("backfill");
    fence.assertHeld();
    this.calls.push(`backfill ${source} -> ${target}`);
    const items = this.items(source, tenantId);
    for (const item of items) this.write(target, item);
    return { items: items.length };
  }

  async catchUp(tenantId: string, source: string, target: string, from: CaptureCheckpoint, fence: Fence) {
    this.#fail("catchUp");
    fence.assertHeld();
    const after = Number(from.shards["shard0"] ?? "0");
    let applied = 0;
    let last = after;
    const changedKeys = new Set<string>();
    for (const change of this.#stream(source)) {
      if (change.seq <= after) continue;
      last = change.seq;
      if (change.item.tenantId !== tenantId) continue;
      if (change.kind === "put") this.write(target, change.item);
      else this.remove(target, change.item);
      changedKeys.add(change.key);
      applied += 1;
    }
    return { checkpoint: { streamArn: from.streamArn, shards: { shard0: String(last) } }, applied, changedKeys: [...changedKeys] };
  }

  /** Runs before the hashes are read, e.g. the app writing while a verification reads. */
  duringItemHashes: (() => void) | undefined;

  async itemHashes(tenantId: string, table: string): Promise<ReadonlyMap<string, string>> {
    this.#fail("itemHashes");
    this.duringItemHashes?.();
    return new Map(this.items(table, tenantId).map((i) => [keyOf(table, i), createHash("sha256").update(canonicalJson(i)).digest("hex")]));
  }

  async digest(tenantId: string, table: string): Promise<TableDigest> {
    this.#fail("digest");
    const items = this.items(table, tenantId).sort((a, b) => keyOf(table, a).localeCompare(keyOf(table, b)));
    return { count: items.length, hash: createHash("sha256").update(canonicalJson(items)).digest("hex") };
  }

  async purge(tenantId: string, table: string, fence: Fence): Promise<{ deleted: number }> {
    this.#fail("purge");
    fence.assertHeld();
    const items = this.items(table, tenantId);
    for (const item of items) this.remove(table, item);
    if (items.length > 0) this.calls.push(`purge ${table}`);
    return { deleted: items.length };
  }

  async exportTenant(tenantId: string, tables: TableSet, to: BackupLocation, fence: Fence): Promise<BackupManifest> {
    this.#fail("exportTenant");
    fence.assertHeld();
    const location = `s3://${to.bucket}/${to.prefix}`;
    this.calls.push(`export ${location}`);
    const items = { orders: this.items(tables.orders, tenantId), products: this.items(tables.products, tenantId) };
    const manifest: BackupManifest = {
      tenantId,
      location,
      exportedAt: new Date(0).toISOString(),
      tables: {
        orders: { table: tables.orders, itemCount: items.orders.length, dataFiles: [`${to.prefix}data/orders-0.json`] },
        products: { table: tables.products, itemCount: items.products.length, dataFiles: [`${to.prefix}data/products-0.json`] },
      },
    };
    this.exports.set(location, { manifest, items });
    return manifest;
  }

  async exportExists(at: BackupLocation): Promise<boolean> {
    return this.exports.has(`s3://${at.bucket}/${at.prefix}`);
  }

  async restore(tenantId: string, from: BackupLocation, tables: TableSet): Promise<Record<DataApp, number>> {
    const exported = this.exports.get(`s3://${from.bucket}/${from.prefix}`);
    if (!exported) throw new Error("no export there");
    for (const app of DATA_APPS) for (const item of exported.items[app]) if (item.tenantId === tenantId) this.write(tables[app], item);
    return { orders: exported.items.orders.length, products: exported.items.products.length };
  }

  async tableStatus(table: string): Promise<string | undefined> {
    return this.tables.has(table) ? "ACTIVE" : undefined;
  }

  async dropTable(table: string, fence: Fence): Promise<void> {
    fence.assertHeld();
    if (!this.tables.has(table)) return;
    if (this.unmanaged.has(table)) throw new UnmanagedResourceError(table);
    this.calls.push(`drop ${table}`);
    this.tables.delete(table);
    this.streams.delete(table);
  }

  #table(name: string): Map<string, Item> {
    const t = this.tables.get(name);
    if (!t)
      throw Object.assign(new Error(`table ${name} does not exist`), {
        name: "ResourceNotFoundException",
        $metadata: { httpStatusCode: 400 },
      });
    return t;
  }

  #stream(name: string): Change[] {
    this.#table(name);
    return this.streams.get(name) ?? [];
  }

  #fail(method: keyof TenantDataPort): void {
    if (this.failNext?.method === method) {
      const { error } = this.failNext;
      this.failNext = undefined;
      throw error;
    }
  }
}

function appOf(table: string): DataApp {
  return table.endsWith("products") ? "products" : "orders";
}

function keyOf(table: string, item: Item): string {
  return `${item.tenantId}#${String(item[SORT_KEYS[appOf(table)]])}`;
}

/** An in-memory listener: rules keyed by ARN, with the tags the real provider reads. */
export class FakeRoutes implements RoutePort {
  readonly rules = new Map<string, ObservedRoute>();
  readonly calls: string[] = [];
  #n = 0;

  async observe(tenantId: string, listenerArn: string, knownRuleArn?: string): Promise<ObservedRoute | undefined> {
    if (knownRuleArn !== undefined && this.rules.has(knownRuleArn)) return this.rules.get(knownRuleArn);
    return [...this.rules.values()].find((r) => r.tenantId === tenantId && r.listenerArn === listenerArn);
  }

  async create(d: DesiredRoute, fence: Fence): Promise<string> {
    fence.assertHeld();
    const ruleArn = `rule/${++this.#n}`;
    this.rules.set(ruleArn, {
      ruleArn,
      listenerArn: d.listenerArn,
      tenantId: d.tenantId,
      priority: d.priority,
      action: d.action,
      managed: true,
    });
    this.calls.push(`create ${d.tenantId} ${d.action.kind}`);
    return ruleArn;
  }

  async update(d: DesiredRoute, o: ObservedRoute, fence: Fence): Promise<void> {
    fence.assertHeld();
    this.rules.set(o.ruleArn, { ...o, priority: d.priority, action: d.action });
    this.calls.push(`update ${d.tenantId} ${d.action.kind}`);
  }

  async delete(o: ObservedRoute, fence: Fence): Promise<void> {
    fence.assertHeld();
    this.rules.delete(o.ruleArn);
    this.calls.push(`delete ${o.tenantId}`);
  }

  of(tenantId: string): ObservedRoute | undefined {
    return [...this.rules.values()].find((r) => r.tenantId === tenantId);
  }
}

export class FakePriorities implements Priorities {
  readonly taken = new Map<string, number>();
  async get(tenantId: string) {
    return this.taken.get(tenantId);
  }
  async allocate(tenantId: string, fence: Fence) {
    fence.assertHeld();
    const have = this.taken.get(tenantId);
    if (have !== undefined) return have;
    const used = new Set(this.taken.values());
    let n = 1;
    while (used.has(n)) n += 1;
    this.taken.set(tenantId, n);
    return n;
  }
  async placement(tenantId: string) {
    const priority = await this.get(tenantId);
    return priority === undefined ? undefined : { priority };
  }
  async place(tenantId: string, fence: Fence) {
    return { priority: await this.allocate(tenantId, fence) };
  }
  async release(tenantId: string, fence: Fence) {
    fence.assertHeld();
    return this.taken.delete(tenantId);
  }
}

export class FakeClaims implements CaseClaimPort {
  readonly holders = new Map<string, string>();
  readonly registrations = new Map<string, string>();
  async claim(tenantId: string, fence: Fence, registrationId?: string): Promise<ClaimResult> {
    fence.assertHeld();
    const key = tenantId.toLowerCase();
    const holder = this.holders.get(key);
    if (holder !== undefined && holder !== tenantId) return { ok: false, holder };
    this.holders.set(key, tenantId);
    if (registrationId !== undefined) this.registrations.set(key, registrationId);
    else this.registrations.delete(key);
    return { ok: true };
  }
  async get(tenantId: string): Promise<CaseClaim | undefined> {
    if (this.holders.get(tenantId.toLowerCase()) !== tenantId) return undefined;
    const registrationId = this.registrations.get(tenantId.toLowerCase());
    return { tenantId, ...(registrationId !== undefined ? { registrationId } : {}) };
  }
  async list(): Promise<readonly CaseClaim[]> {
    return Promise.all([...this.holders.values()].map(async (id) => (await this.get(id)) ?? { tenantId: id }));
  }
  async release(tenantId: string, fence: Fence): Promise<void> {
    fence.assertHeld();
    if (this.holders.get(tenantId.toLowerCase()) === tenantId) {
      this.holders.delete(tenantId.toLowerCase());
      this.registrations.delete(tenantId.toLowerCase());
    }
  }
}

/**
 * An ECS in which whatever is applied is at once steady: services created
 * run their desired count, deleted ones vanish. Observed through the
 * footprint like the real provider, so tier moves can run end to end.
 */
export class ConvergingEcs implements EcsPort {
  readonly services = new Map<string, ObservedService>();
  readonly clusters = new Map<string, ObservedCluster>();
  readonly taskDefinitions = new Map<string, ObservedTaskDefinition>();
  readonly applied: Action[][] = [];

  async observe(footprint: Footprint): Promise<ObservedState> {
    const services = footprint.serviceLocations.flatMap((l) => l.serviceNames.flatMap((n) => this.services.get(`${l.cluster}/${n}`) ?? []));
    const clusters = footprint.ownedClusters.flatMap((c) => this.clusters.get(c) ?? []);
    const taskDefinitions = footprint.taskDefinitionFamilies.flatMap((f) => this.taskDefinitions.get(f) ?? []);
    return { services, clusters, taskDefinitions };
  }

  async apply(actions: readonly Action[], _o: ObservedState, fence: Fence): Promise<ApplyOutcome> {
    fence.assertHeld();
    this.applied.push([...actions]);
    const registered = new Map<string, string>();
    const created: string[] = [];
    for (const a of actions) {
      switch (a.kind) {
        case "createCluster":
          this.clusters.set(a.cluster.name, {
            name: a.cluster.name,
            arn: `arn:cluster/${a.cluster.name}`,
            status: "ACTIVE",
            tags: a.cluster.tags,
          });
          created.push(`arn:cluster/${a.cluster.name}`);
          break;
        case "registerTaskDefinition": {
          const t = a.taskDefinition;
          const revision = (this.taskDefinitions.get(t.family)?.revision ?? 0) + 1;
          const arn = `arn:task-definition/${t.family}:${revision}`;
          this.taskDefinitions.set(t.family, { family: t.family, arn, revision, contentHash: t.contentHash, tags: t.tags });
          registered.set(t.family, arn);
          break;
        }
        case "createService": {
          const s = a.service;
          this.services.set(
            `${s.cluster}/${s.name}`,
            this.#steady(s.cluster, s.name, s.desiredCount, a.taskDefinitionFamily, s.tags, observedConnect(s.serviceConnect)),
          );
          created.push(`arn:service/${s.cluster}/${s.name}`);
          break;
        }
        case "updateService": {
          const o = this.services.get(`${a.cluster}/${a.name}`);
          const connect =
            a.serviceConnect === undefined
              ? o?.serviceConnect
              : a.serviceConnect === "disable"
                ? undefined
                : observedConnect(a.serviceConnect);
          if (o)
            this.services.set(
              `${a.cluster}/${a.name}`,
              this.#steady(
                a.cluster,
                a.name,
                a.desiredCount ?? o.desiredCount,
                a.taskDefinitionFamily ?? familyOf(o.taskDefinitionArn),
                o.tags,
                connect,
              ),
            );
          break;
        }
        case "deleteService":
          this.services.delete(`${a.cluster}/${a.name}`);
          break;
        case "deleteCluster":
          this.clusters.delete(a.cluster);
          break;
      }
    }
    return { registered, created };
  }

  async survey(): Promise<ReadonlySet<string>> {
    return new Set();
  }

  forget(): void {}

  #steady(
    cluster: string,
    name: string,
    count: number,
    family: string,
    tags: Tags,
    serviceConnect: ObservedServiceConnect | undefined,
  ): ObservedService {
    const td = this.taskDefinitions.get(family);
    const arn = td?.arn ?? `arn:task-definition/${family}:1`;
    return {
      ...(serviceConnect !== undefined ? { serviceConnect } : {}),
      cluster,
      name,
      arn: `arn:service/${cluster}/${name}`,
      status: "ACTIVE",
      desiredCount: count,
      runningCount: count,
      taskDefinitionArn: arn,
      taskDefinitionContentHash: td?.contentHash,
      tags,
      deployments: [
        {
          id: "d",
          status: "PRIMARY",
          rolloutState: "COMPLETED",
          rolloutStateReason: undefined,
          desiredCount: count,
          runningCount: count,
          failedTasks: 0,
          taskDefinitionArn: arn,
        },
      ],
    };
  }
}

function observedConnect(d: DesiredServiceConnect | undefined): ObservedServiceConnect | undefined {
  return d && { enabled: true, namespace: d.namespace.arn, servers: d.servers, log: d.log };
}

function familyOf(arn: string): string {
  return arn.slice(arn.lastIndexOf("/") + 1).split(":")[0] ?? arn;
}

/** Cognito in memory: pools by owner ("shared" or a tenant id), users by email with their attributes. */
export class FakeIdentity implements IdentityPort {
  readonly pools = new Map<string, UserPoolRef>();
  readonly users = new Map<string, Map<string, { tenantId: string; tier: string }>>();
  readonly calls: string[] = [];

  async ensureSharedPool(fence: Fence): Promise<UserPoolRef> {
    return this.#ensure("shared", fence);
  }
  async ensureTenantPool(tenantId: string, fence: Fence): Promise<UserPoolRef> {
    return this.#ensure(tenantId, fence);
  }
  async findSharedPool(): Promise<UserPoolRef | undefined> {
    return this.pools.get("shared");
  }
  async findTenantPool(tenantId: string): Promise<UserPoolRef | undefined> {
    return this.pools.get(tenantId);
  }
  async ensureAdmin(pool: UserPoolRef, admin: TenantAdmin, fence: Fence): Promise<AdminResult> {
    fence.assertHeld();
    const users = this.users.get(pool.userPoolId) ?? new Map<string, { tenantId: string; tier: string }>();
    this.users.set(pool.userPoolId, users);
    const existing = users.get(admin.email);
    if (existing !== undefined && existing.tenantId !== admin.tenantId) return { kind: "conflict", holder: existing.tenantId };
    if (existing?.tier !== admin.tier) this.calls.push(`${existing ? "update" : "create"} ${admin.email} ${admin.tier}`);
    users.set(admin.email, { tenantId: admin.tenantId, tier: admin.tier });
    return { kind: "ok" };
  }
  async removeTenantUsers(pool: UserPoolRef, tenantId: string, fence: Fence): Promise<void> {
    fence.assertHeld();
    const users = this.users.get(pool.userPoolId);
    for (const [email, u] of users ?? []) if (u.tenantId === tenantId) users?.delete(email);
  }
  async deleteTenantPool(tenantId: string, fence: Fence): Promise<void> {
    fence.assertHeld();
    const pool = this.pools.get(tenantId);
    if (pool) {
      this.pools.delete(tenantId);
      this.users.delete(pool.userPoolId);
      this.calls.push(`delete pool ${tenantId}`);
    }
  }
  issuer(pool: UserPoolRef): string {
    return `https://cognito-idp.us-east-1.amazonaws.com/${pool.userPoolId}`;
  }
  userOf(email: string): { pool: string; tenantId: string; tier: string } | undefined {
    for (const [pool, users] of this.users) {
      const u = users.get(email);
      if (u) return { pool, ...u };
    }
    return undefined;
  }
  #ensure(owner: string, fence: Fence): UserPoolRef {
    const have = this.pools.get(owner);
    if (have) return have;
    fence.assertHeld();
    const pool = { userPoolId: `us-east-1_${owner}`, appClientId: `client-${owner}` };
    this.pools.set(owner, pool);
    this.calls.push(`create pool ${owner}`);
    return pool;
  }
}

export class FakeRemovals implements RemovalLog {
  readonly items = new Map<string, Removal>();
  async record(removal: Removal, fence: Fence): Promise<Removal> {
    fence.assertHeld();
    const have = this.items.get(removal.tenantId);
    if (have) return have;
    this.items.set(removal.tenantId, removal);
    return removal;
  }
  async get(tenantId: string) {
    return this.items.get(tenantId);
  }
  async list() {
    return [...this.items.values()];
  }
  async clear(tenantId: string, fence: Fence) {
    fence.assertHeld();
    this.items.delete(tenantId);
  }
}

/** Cloud Map in memory: ready at once, gone at once. */
export class FakeNamespaces implements NamespacePort {
  readonly names = new Set<string>();
  async ensure(name: string, _tags: Readonly<Record<string, string>>, fence: Fence) {
    if (!this.names.has(name)) {
      fence.assertHeld();
      this.names.add(name);
    }
    return {
      kind: "ready" as const,
      namespace: { name, id: `ns-${name}`, arn: `arn:aws:servicediscovery:us-east-1:123456789012:namespace/ns-${name}` },
    };
  }
  async find(name: string) {
    return this.names.has(name)
      ? { name, id: `ns-${name}`, arn: `arn:aws:servicediscovery:us-east-1:123456789012:namespace/ns-${name}` }
      : undefined;
  }
  async remove(name: string, fence: Fence) {
    fence.assertHeld();
    this.names.delete(name);
    return { kind: "gone" as const };
  }
}
