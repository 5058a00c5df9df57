import { describe, expect, it } from "vitest";
import { CatalogueError, defaultCatalogue, loadCatalogue } from "../../src/apps/catalogue.js";
import { APP_NAMES, tenantIdSchema, tenantRecordSchema, type TenantSpec } from "../../src/tenants/record.js";
import { desiredForTenant, desiredPool, footprintForPool, footprintForTenant, hashContent, POOL_KEY, type TierSettings } from "../../src/tiers/desired.js";
import { APP_KEY, CONTENT_HASH_KEY, MANAGED_BY_KEY, MANAGED_BY_VALUE, NOTHING, TENANT_ID_KEY, TIER_KEY, type DesiredState } from "../../src/tiers/model.js";

const settings: TierSettings = {
  namePrefix: "saas",
  poolCluster: "saas-pool",
  advancedCluster: "saas-advanced",
  subnets: ["subnet-0a", "subnet-0b"],
  securityGroups: ["sg-0a"],
};
const UUID = "3f2b9c1e-0d4a-4c8e-9a51-7f3e2d1c0b9a";

function spec(fields: Record<string, unknown>): TenantSpec {
  return tenantRecordSchema.parse({ tenantId: UUID, tenantName: "Acme", tier: "advanced", ...fields });
}

function hashes(d: DesiredState): Record<string, string> {
  return Object.fromEntries(d.taskDefinitions.map((t) => [t.app, t.contentHash]));
}

describe("desiredForTenant", () => {
  it.each([
    { reason: "basic tenants are served by the pool, nothing of their own", fields: { tier: "BASIC" }, clusters: [], services: 0, serviceCluster: undefined },
    { reason: "an offboarded advanced tenant desires nothing", fields: { sbtaws_active: false }, clusters: [], services: 0, serviceCluster: undefined },
    { reason: "an offboarded premium tenant desires nothing, not even its cluster", fields: { tier: "premium", sbtaws_active: false }, clusters: [], services: 0, serviceCluster: undefined },
    { reason: "advanced: one service per app in the shared advanced cluster", fields: {}, clusters: [], services: 4, serviceCluster: "saas-advanced" },
    { reason: "premium: a dedicated cluster holding one service per app", fields: { tier: "premium" }, clusters: [`saas-t-${UUID}`], services: 4, serviceCluster: `saas-t-${UUID}` },
  ])("$reason", ({ fields, clusters, services, serviceCluster }) => {
    const d = desiredForTenant(spec(fields), defaultCatalogue, settings);
    expect(d.clusters.map((c) => c.name)).toEqual(clusters);
    expect(d.services).toHaveLength(services);
    expect(d.taskDefinitions).toHaveLength(services);
    if (services === 0) expect(d).toEqual(NOTHING);
    for (const s of d.services) expect(s.cluster).toBe(serviceCluster);
    expect(d.services.map((s) => s.app).sort()).toEqual(services === 0 ? [] : [...APP_NAMES].sort());
  });

  it("tags every resource per the ownership contract", () => {
    const s = spec({ tier: "PREMIUM", tenantRegistrationId: "reg-1" });
    const d = desiredForTenant(s, defaultCatalogue, settings);
    const base = { [MANAGED_BY_KEY]: MANAGED_BY_VALUE, [TENANT_ID_KEY]: UUID, [TIER_KEY]: "premium" };
    expect(d.clusters[0]?.tags).toMatchObject(base);
    expect(d.clusters[0]?.tags).not.toHaveProperty(APP_KEY);
    for (const svc of d.services) expect(svc.tags).toMatchObject({ ...base, [APP_KEY]: svc.app, "tenant-registration-id": "reg-1" });
    for (const td of d.taskDefinitions) {
      expect(td.tags).toMatchObject({ ...base, [APP_KEY]: td.app, [CONTENT_HASH_KEY]: td.contentHash });
    }
  });

  it("builds containers with the app's image, named http port and, without an app context, the earlier environment", () => {
    const d = desiredForTenant(spec({}), defaultCatalogue, settings);
    const orders = d.taskDefinitions.find((t) => t.app === "orders");
    const rproxy = d.taskDefinitions.find((t) => t.app === "rproxy");
    expect(orders).toMatchObject({ family: `saas-t-${UUID}-orders`, cpu: "256", memory: "512" });
    expect(orders?.containers).toEqual([
      {
        name: "orders",
        image: "public.ecr.aws/saas-factory/orders:1.0.0",
        essential: true,
        portMappings: [{ name: "orders", containerPort: 3010, protocol: "tcp", appProtocol: "http" }],
        environment: [
          { name: "APP", value: "orders" },
          { name: "TENANT_ID", value: UUID },
          { name: "TIER", value: "silo" },
        ],
      },
    ]);
    expect(rproxy?.containers[0]?.portMappings[0]?.containerPort).toBe(8080);
    const svc = d.services.find((s) => s.app === "orders");
    expect(svc).toMatchObject({ name: `saas-t-${UUID}-orders`, taskDefinitionFamily: `saas-t-${UUID}-orders`, desiredCount: 1, subnets: settings.subnets, securityGroups: settings.securityGroups });
  });

  it("applies a record's version and desiredCount overrides to that app only", () => {
    const d = desiredForTenant(spec({ apps: { users: { version: "2.1.0", desiredCount: 3 }, orders: { desiredCount: 0 } } }), defaultCatalogue, settings);
    const image = (app: string) => d.taskDefinitions.find((t) => t.app === app)?.containers[0]?.image;
    const count = (app: string) => d.services.find((s) => s.app === app)?.desiredCount;
    expect(image("users")).toBe("public.ecr.aws/saas-factory/users:2.1.0");
    expect(image("orders")).toBe("public.ecr.aws/saas-factory/orders:1.0.0");
    expect([count("users"), count("orders"), count("products"), count("rproxy")]).toEqual([3, 0, 1, 1]);
  });

  it("keeps every content hash when only desiredCount changes", () => {
    const before = desiredForTenant(spec({}), defaultCatalogue, settings);
    const after = desiredForTenant(spec({ apps: { orders: { desiredCount: 5 }, rproxy: { desiredCount: 2 } } }), defaultCatalogue, settings);
    expect(hashes(after)).toEqual(hashes(before));
  });

  it("changes exactly the overridden app's hash when its version changes", () => {
    const before = hashes(desiredForTenant(spec({}), defaultCatalogue, settings));
    const after = hashes(desiredForTenant(spec({ apps: { products: { version: "1.1.0" } } }), defaultCatalogue, settings));
    const changed = APP_NAMES.filter((app) => before[app] !== after[app]);
    expect(changed).toEqual(["products"]);
  });

  it("keeps task definitions (family and hash) across an advanced <-> premium move", () => {
    const advanced = desiredForTenant(spec({}), defaultCatalogue, settings);
    const premium = desiredForTenant(spec({ tier: "premium" }), defaultCatalogue, settings);
    expect(premium.taskDefinitions.map((t) => [t.family, t.contentHash])).toEqual(advanced.taskDefinitions.map((t) => [t.family, t.contentHash]));
  });

  it("hashes everything but the tags", () => {
    const d = desiredForTenant(spec({}), defaultCatalogue, settings);
    for (const td of d.taskDefinitions) {
      const { tags: _tags, contentHash, ...content } = td;
      expect(hashContent(content)).toBe(contentHash);
    }
    const other = desiredForTenant(spec({ tenantName: "Renamed", tenantRegistrationId: "r2" }), defaultCatalogue, settings);
    expect(hashes(other)).toEqual(hashes(d));
  });

  it("gives different tenants different families and hashes", () => {
    const a = desiredForTenant(spec({}), defaultCatalogue, settings);
    const b = desiredForTenant(spec({ tenantId: "other" }), defaultCatalogue, settings);
    expect(a.taskDefinitions[0]?.family).not.toBe(b.taskDefinitions[0]?.family);
    expect(a.taskDefinitions[0]?.contentHash).not.toBe(b.taskDefinitions[0]?.contentHash);
  });
});

describe("desiredPool", () => {
  it("runs each app once in the pool cluster, tagged without a tenant", () => {
    const d = desiredPool(defaultCatalogue, settings);
    expect(d.clusters).toEqual([]);
    expect(d.services.map((s) => [s.cluster, s.name])).toEqual(APP_NAMES.map((app) => ["saas-pool", `saas-pool-${app}`]));
    for (const r of [...d.services, ...d.taskDefinitions]) {
      expect(r.tags).toMatchObject({ [MANAGED_BY_KEY]: MANAGED_BY_VALUE, [TIER_KEY]: "basic", [APP_KEY]: r.app });
      expect(r.tags).not.toHaveProperty(TENANT_ID_KEY);
    }
    const env = d.taskDefinitions[0]?.containers[0]?.environment.map((e) => e.name);
    expect(env).not.toContain("TENANT_ID");
    expect(env).toContain("TIER");
  });
});

describe("footprints", () => {
  it("covers a tenant's services in both the advanced cluster and its premium cluster, whatever its tier", () => {
    const f = footprintForTenant(UUID, settings);
    const names = APP_NAMES.map((app) => `saas-t-${UUID}-${app}`);
    expect(f.serviceLocations).toEqual([
      { cluster: "saas-advanced", serviceNames: names },
      { cluster: `saas-t-${UUID}`, serviceNames: names },
    ]);
    expect(f.ownedClusters).toEqual([`saas-t-${UUID}`]);
    expect(f.taskDefinitionFamilies).toEqual(names);
    // Everything a tier desires is inside the footprint.
    for (const tier of ["advanced", "premium"]) {
      const d = desiredForTenant(spec({ tier }), defaultCatalogue, settings);
      for (const s of d.services) expect(f.serviceLocations.some((l) => l.cluster === s.cluster && l.serviceNames.includes(s.name))).toBe(true);
      for (const c of d.clusters) expect(f.ownedClusters).toContain(c.name);
    }
  });

  it("never lists a shared cluster as owned, even one configured under a premium-looking name", () => {
    const f = footprintForTenant("x", { ...settings, poolCluster: "saas-t-x" });
    expect(f.ownedClusters).toEqual([]);
  });

  it("covers the pool's services", () => {
    const f = footprintForPool(settings);
    expect(f.serviceLocations).toEqual([{ cluster: "saas-pool", serviceNames: APP_NAMES.map((a) => `saas-pool-${a}`) }]);
    expect(f.ownedClusters).toEqual([]);
  });
});

describe("POOL_KEY", () => {
  it("can never be a tenant id", () => {
    expect(tenantIdSchema.safeParse(POOL_KEY).success).toBe(false);
  });
});

describe("loadCatalogue", () => {
  const raw = JSON.parse(JSON.stringify(defaultCatalogue)) as { apps: Record<string, Record<string, unknown>> };

  it("accepts the default catalogue as JSON text and fills defaults", () => {
    const withoutSizes = JSON.parse(JSON.stringify(raw)) as typeof raw;
    for (const app of Object.values(withoutSizes.apps)) {
      delete app["cpu"];
      delete app["memory"];
    }
    expect(loadCatalogue(JSON.stringify(withoutSizes))).toEqual(defaultCatalogue);
  });

  it.each([
    { reason: "a tag in the repository", edit: { orders: { repository: "public.ecr.aws/saas-factory/orders:1.0" } }, field: "apps.orders.repository" },
    { reason: "a bad version", edit: { users: { version: ".bad" } }, field: "apps.users.version" },
    { reason: "a negative desiredCount", edit: { rproxy: { desiredCount: -1 } }, field: "apps.rproxy.desiredCount" },
    { reason: "memory that does not fit the cpu", edit: { products: { memory: "8192" } }, field: "apps.products.memory" },
    { reason: "an unknown field", edit: { orders: { replicas: 2 } }, field: "apps.orders" },
  ])("rejects $reason, naming the field", ({ edit, field }) => {
    const apps = { ...raw.apps };
    for (const [app, patch] of Object.entries(edit)) apps[app] = { ...apps[app], ...patch };
    expect(() => loadCatalogue({ apps })).toThrow(CatalogueError);
    expect(() => loadCatalogue({ apps })).toThrow(field);
  });

  it("rejects a catalogue missing an app, and text that is not JSON", () => {
    const { rproxy: _r, ...apps } = raw.apps;
    expect(() => loadCatalogue({ apps })).toThrow("apps.rproxy");
    expect(() => loadCatalogue("{not json")).toThrow(CatalogueError);
  });
});
