import { describe, expect, it } from "vitest";
import { CatalogueError, defaultCatalogue, loadCatalogue } from "../../src/apps/catalogue.js";
import { APP_NAMES, tenantIdSchema, tenantRecordSchema, validateRecord, type TenantSpec } from "../../src/tenants/record.js";
import {
  desiredForTenant,
  desiredPool,
  footprintForPool,
  footprintForTenant,
  hashContent,
  poolNamespaceName,
  POOL_KEY,
  tagValue,
  tenantNamespaceName,
  type TierSettings,
} from "../../src/tiers/desired.js";
import {
  APP_KEY,
  CONTENT_HASH_KEY,
  MANAGED_BY_KEY,
  MANAGED_BY_VALUE,
  NOTHING,
  TENANT_ID_KEY,
  TIER_KEY,
  type AppContext,
  type DesiredState,
  type PoolInfra,
  type SiloInfra,
} from "../../src/tiers/model.js";

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
    {
      reason: "basic tenants are served by the pool, nothing of their own",
      fields: { tier: "BASIC" },
      clusters: [],
      services: 0,
      serviceCluster: undefined,
    },
    {
      reason: "an offboarded advanced tenant desires nothing",
      fields: { sbtaws_active: false },
      clusters: [],
      services: 0,
      serviceCluster: undefined,
    },
    {
      reason: "an offboarded premium tenant desires nothing, not even its cluster",
      fields: { tier: "premium", sbtaws_active: false },
      clusters: [],
      services: 0,
      serviceCluster: undefined,
    },
    {
      reason: "advanced: one service per app in the shared advanced cluster",
      fields: {},
      clusters: [],
      services: 4,
      serviceCluster: "saas-advanced",
    },
    {
      reason: "premium: a dedicated cluster holding one service per app",
      fields: { tier: "premium" },
      clusters: [`saas-t-${UUID}`],
      services: 4,
      serviceCluster: `saas-t-${UUID}`,
    },
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
    expect(svc).toMatchObject({
      name: `saas-t-${UUID}-orders`,
      taskDefinitionFamily: `saas-t-${UUID}-orders`,
      desiredCount: 1,
      subnets: settings.subnets,
      securityGroups: settings.securityGroups,
      assignPublicIp: "DISABLED",
    });
  });

  it("gives every service, silo and pooled, the configured public IP setting", () => {
    const open = { ...settings, assignPublicIp: "ENABLED" as const };
    const silo = desiredForTenant(spec({ tier: "premium" }), defaultCatalogue, open);
    const pool = desiredPool(defaultCatalogue, open);
    const all = [...silo.services, ...pool.services];
    expect(all.length).toBe(8);
    expect(new Set(all.map((s) => s.assignPublicIp))).toEqual(new Set(["ENABLED"]));
  });

  it("applies a record's version and desiredCount overrides to that app only", () => {
    const d = desiredForTenant(
      spec({ apps: { users: { version: "2.1.0", desiredCount: 3 }, orders: { desiredCount: 0 } } }),
      defaultCatalogue,
      settings,
    );
    const image = (app: string) => d.taskDefinitions.find((t) => t.app === app)?.containers[0]?.image;
    const count = (app: string) => d.services.find((s) => s.app === app)?.desiredCount;
    expect(image("users")).toBe("public.ecr.aws/saas-factory/users:2.1.0");
    expect(image("orders")).toBe("public.ecr.aws/saas-factory/orders:1.0.0");
    expect([count("users"), count("orders"), count("products"), count("rproxy")]).toEqual([3, 0, 1, 1]);
  });

  it("keeps every content hash when only desiredCount changes", () => {
    const before = desiredForTenant(spec({}), defaultCatalogue, settings);
    const after = desiredForTenant(
      spec({ apps: { orders: { desiredCount: 5 }, rproxy: { desiredCount: 2 } } }),
      defaultCatalogue,
      settings,
    );
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
    expect(premium.taskDefinitions.map((t) => [t.family, t.contentHash])).toEqual(
      advanced.taskDefinitions.map((t) => [t.family, t.contentHash]),
    );
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

const SILO: SiloInfra = {
  taskRoleArn: "arn:aws:iam::123456789012:role/task",
  executionRoleArn: "arn:aws:iam::123456789012:role/exec",
  ordersTableName: "saas-t-x-orders",
  productsTableName: "saas-t-x-products",
  logGroupName: "/ecs/saas/tenant/x",
  targetGroupArn: "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/saas-x/1",
};
const POOL: PoolInfra = {
  ...SILO,
  ordersTableName: "saas-pool-orders",
  productsTableName: "saas-pool-products",
  logGroupName: "/ecs/saas/pool",
  tenantAccessRoleArn: "arn:aws:iam::123456789012:role/saas-pool-tenant-access",
};
const IDENTITY = {
  userPoolId: "us-east-1_AbC",
  appClientId: "client-1",
  issuer: "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AbC",
};
const NAMESPACE = { name: "saas-acme-0123456789ab", arn: "arn:aws:servicediscovery:us-east-1:123456789012:namespace/ns-1" };
const CONTEXT: AppContext = {
  region: "us-east-1",
  accountId: "123456789012",
  tenantAccessRoleArn: "arn:aws:iam::123456789012:role/tenant-x-access",
  identity: IDENTITY,
  namespace: NAMESPACE,
};

const { tenantAccessRoleArn: _role, ...POOL_CONTEXT } = CONTEXT;
const { namespace: _namespace, ...NO_NAMESPACE } = CONTEXT;

const envOf = (d: DesiredState, app: string) =>
  Object.fromEntries(d.taskDefinitions.find((t) => t.app === app)?.containers[0]?.environment.map((e) => [e.name, e.value]) ?? []);

describe("the reference images' environment (with an AppContext)", () => {
  const base = {
    AWS_REGION: "us-east-1",
    AWS_ACCOUNT_ID: "123456789012",
    COGNITO_USER_POOL_ID: "us-east-1_AbC",
    COGNITO_CLIENT_ID: "client-1",
    COGNITO_REGION: "us-east-1",
  };
  const vending = (role: string) => ({
    IAM_ROLE_ARN: role,
    REQUEST_TAG_KEYS_MAPPING_ATTRIBUTES: '{"tenant":"custom:tenantId"}',
    IDP_DETAILS: '{"issuer":"https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AbC","audience":"client-1"}',
  });

  it.each([
    {
      reason: "silo",
      d: () => desiredForTenant(spec({}), defaultCatalogue, settings, SILO, CONTEXT),
      tables: SILO,
      role: "arn:aws:iam::123456789012:role/tenant-x-access",
    },
    {
      reason: "pool, the tenant-access role from the pool stack",
      d: () => desiredPool(defaultCatalogue, settings, POOL, POOL_CONTEXT),
      tables: POOL,
      role: POOL.tenantAccessRoleArn,
    },
  ])("gives each container exactly what its image reads: $reason", ({ d, tables, role }) => {
    const desired = d();
    expect(envOf(desired, "orders")).toEqual({ ...base, TABLE_NAME: tables.ordersTableName, ...vending(role) });
    expect(envOf(desired, "products")).toEqual({ ...base, TABLE_NAME: tables.productsTableName, ...vending(role) });
    expect(envOf(desired, "users")).toEqual(base);
    expect(envOf(desired, "rproxy")).toEqual({ ...base, NAMESPACE: NAMESPACE.name });
    // Sorted by name, so the hash does not depend on the catalogue's order.
    for (const td of desired.taskDefinitions) {
      const names = td.containers[0]?.environment.map((e) => e.name) ?? [];
      expect(names).toEqual([...names].sort());
    }
  });

  it("leaves out what does not exist yet: no identity, no namespace, no stack", () => {
    const d = desiredForTenant(spec({}), defaultCatalogue, settings, undefined, { region: "eu-west-1", accountId: "111122223333" });
    expect(envOf(d, "orders")).toEqual({
      AWS_REGION: "eu-west-1",
      AWS_ACCOUNT_ID: "111122223333",
      REQUEST_TAG_KEYS_MAPPING_ATTRIBUTES: '{"tenant":"custom:tenantId"}',
    });
    expect(envOf(d, "rproxy")).toEqual({ AWS_REGION: "eu-west-1", AWS_ACCOUNT_ID: "111122223333" });
    for (const s of d.services) expect(s).not.toHaveProperty("serviceConnect");
  });

  it("follows a catalogue entry that asks for other variables and another table", () => {
    const custom = loadCatalogue({
      apps: {
        ...structuredClone(defaultCatalogue.apps),
        users: { ...defaultCatalogue.apps.users, storage: "products", environment: ["TABLE_NAME", "NAMESPACE"] },
      },
    });
    expect(envOf(desiredForTenant(spec({}), custom, settings, SILO, CONTEXT), "users")).toEqual({
      TABLE_NAME: SILO.productsTableName,
      NAMESPACE: NAMESPACE.name,
    });
  });

  it("gives every service Service Connect in the namespace: orders, products, users as <app>-api on 3010, rproxy as a client", () => {
    const d = desiredForTenant(spec({}), defaultCatalogue, settings, SILO, CONTEXT);
    const sc = (app: string) => d.services.find((s) => s.app === app)?.serviceConnect;
    for (const app of ["orders", "products", "users"]) {
      expect(sc(app)).toEqual({
        namespace: NAMESPACE,
        servers: [{ portName: app, discoveryName: `${app}-api`, port: 3010, dnsName: `${app}-api.${NAMESPACE.name}.sc` }],
        log: { group: SILO.logGroupName, streamPrefix: `${app}-sc` },
      });
      // The port Service Connect names exists in the task definition, speaking http.
      const port = d.taskDefinitions.find((t) => t.app === app)?.containers[0]?.portMappings[0];
      expect(port).toEqual({ name: app, containerPort: 3010, protocol: "tcp", appProtocol: "http" });
    }
    expect(sc("rproxy")).toEqual({ namespace: NAMESPACE, servers: [], log: { group: SILO.logGroupName, streamPrefix: "rproxy-sc" } });
    const pool = desiredPool(defaultCatalogue, settings, POOL, { ...CONTEXT, namespace: { name: "saas-pool", arn: "arn:ns/pool" } });
    expect(pool.services.find((s) => s.app === "orders")?.serviceConnect?.servers[0]?.dnsName).toBe("orders-api.saas-pool.sc");
  });

  it("hashes runtimePlatform with the content; Service Connect changes the services, not the task definitions (but rproxy's NAMESPACE)", () => {
    const legacy = desiredForTenant(spec({}), defaultCatalogue, settings, SILO);
    for (const td of legacy.taskDefinitions)
      expect(td.runtimePlatform).toEqual({ cpuArchitecture: "X86_64", operatingSystemFamily: "LINUX" });
    const { runtimePlatform: _rp, tags: _t, contentHash, ...withoutPlatform } = legacy.taskDefinitions[0]!;
    expect(hashContent(withoutPlatform)).not.toBe(contentHash);
    // Service Connect is the services' business: the task definitions do not change with it.
    const withNs = hashes(desiredForTenant(spec({}), defaultCatalogue, settings, SILO, CONTEXT));
    const withoutNs = hashes(desiredForTenant(spec({}), defaultCatalogue, settings, SILO, NO_NAMESPACE));
    expect(APP_NAMES.filter((a) => withNs[a] !== withoutNs[a])).toEqual(["rproxy"]); // only rproxy reads NAMESPACE
  });
});

describe("namespace names", () => {
  it.each([
    { reason: "a uuid", id: UUID },
    { reason: "case and underscores, which DNS does not tell apart", id: "Acme_Corp" },
    { reason: "64 characters", id: "a".repeat(64) },
    { reason: "nothing readable", id: "__" },
  ])("is one lowercase DNS label with the tenant's hash: $reason", ({ id }) => {
    const name = tenantNamespaceName("saas", id);
    expect(name).toMatch(/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/);
    expect(name.length).toBeLessThanOrEqual(63);
    expect(name).toMatch(/-[a-z0-9]{12}$/);
  });

  it("keeps tenants that differ only by case or _/- apart, and apart from the pool", () => {
    const names = ["Acme", "acme", "a_b", "a-b", "pool"].map((id) => tenantNamespaceName("saas", id));
    expect(new Set(names).size).toBe(names.length);
    expect(names).not.toContain(poolNamespaceName("saas"));
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
      for (const s of d.services)
        expect(f.serviceLocations.some((l) => l.cluster === s.cluster && l.serviceNames.includes(s.name))).toBe(true);
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

  it("accepts the default catalogue as JSON text and fills defaults, per app, for a catalogue of the earlier format", () => {
    const withoutSizes = JSON.parse(JSON.stringify(raw)) as typeof raw;
    for (const app of Object.values(withoutSizes.apps)) {
      delete app["cpu"];
      delete app["memory"];
      delete app["serviceConnect"];
      delete app["storage"];
      delete app["environment"];
    }
    expect(loadCatalogue(JSON.stringify(withoutSizes))).toEqual(defaultCatalogue);
    expect(loadCatalogue(JSON.stringify(raw))).toEqual(defaultCatalogue);
  });

  it("defaults to what the reference images read", () => {
    const { orders, products, users, rproxy } = defaultCatalogue.apps;
    expect([orders.serviceConnect, products.serviceConnect, users.serviceConnect, rproxy.serviceConnect]).toEqual([
      { discoveryName: "orders-api" },
      { discoveryName: "products-api" },
      { discoveryName: "users-api" },
      "client",
    ]);
    expect([orders.storage, products.storage, users.storage, rproxy.storage]).toEqual(["orders", "products", "none", "none"]);
    const common = ["AWS_REGION", "AWS_ACCOUNT_ID", "COGNITO_USER_POOL_ID", "COGNITO_CLIENT_ID", "COGNITO_REGION"];
    expect([...orders.environment].sort()).toEqual(
      [...common, "TABLE_NAME", "IAM_ROLE_ARN", "REQUEST_TAG_KEYS_MAPPING_ATTRIBUTES", "IDP_DETAILS"].sort(),
    );
    expect([...users.environment].sort()).toEqual([...common].sort());
    expect([...rproxy.environment].sort()).toEqual([...common, "NAMESPACE"].sort());
  });

  it.each([
    {
      reason: "a tag in the repository",
      edit: { orders: { repository: "public.ecr.aws/saas-factory/orders:1.0" } },
      field: "apps.orders.repository",
    },
    { reason: "a bad version", edit: { users: { version: ".bad" } }, field: "apps.users.version" },
    { reason: "a negative desiredCount", edit: { rproxy: { desiredCount: -1 } }, field: "apps.rproxy.desiredCount" },
    { reason: "memory that does not fit the cpu", edit: { products: { memory: "8192" } }, field: "apps.products.memory" },
    { reason: "an unknown field", edit: { orders: { replicas: 2 } }, field: "apps.orders" },
    {
      reason: "an environment variable the platform does not fill",
      edit: { orders: { environment: ["PATH"] } },
      field: "apps.orders.environment",
    },
    { reason: "a variable named twice", edit: { orders: { environment: ["AWS_REGION", "AWS_REGION"] } }, field: "apps.orders.environment" },
    { reason: "TABLE_NAME without a storage", edit: { users: { environment: ["TABLE_NAME"] } }, field: "apps.users.environment" },
    { reason: "an unknown storage", edit: { users: { storage: "users" } }, field: "apps.users.storage" },
    {
      reason: "a discovery name that is not a DNS label",
      edit: { orders: { serviceConnect: { discoveryName: "Orders API" } } },
      field: "apps.orders.serviceConnect",
    },
    {
      reason: "two servers under one discovery name",
      edit: { users: { serviceConnect: { discoveryName: "orders-api" } } },
      field: "apps.users.serviceConnect.discoveryName",
    },
  ])("rejects $reason, naming the field", ({ edit, field }) => {
    const apps = { ...raw.apps };
    for (const [app, patch] of Object.entries(edit as Record<string, Record<string, unknown>>)) apps[app] = { ...apps[app], ...patch };
    expect(() => loadCatalogue({ apps })).toThrow(CatalogueError);
    expect(() => loadCatalogue({ apps })).toThrow(field);
  });

  it("rejects a catalogue missing an app, and text that is not JSON", () => {
    const { rproxy: _r, ...apps } = raw.apps;
    expect(() => loadCatalogue({ apps })).toThrow("apps.rproxy");
    expect(() => loadCatalogue("{not json")).toThrow(CatalogueError);
  });
});

describe("tag values from records", () => {
  it.each([
    { reason: "a UUID stays as it is", input: "3f2c9a6e-1b2d-4c5e-8f90-0a1b2c3d4e5f", output: "3f2c9a6e-1b2d-4c5e-8f90-0a1b2c3d4e5f" },
    { reason: "characters ECS refuses become _", input: "reg#1;drop<table>", output: "reg_1_drop_table_" },
    { reason: "allowed punctuation is kept", input: "a b_c.d:e/f=g+h-i@j", output: "a b_c.d:e/f=g+h-i@j" },
    { reason: "a value over 256 characters is cut to 256", input: "x".repeat(300), output: "x".repeat(256) },
  ])("$reason", ({ input, output }) => {
    expect(tagValue(input)).toBe(output);
  });

  it("never puts an unfit registration id on a service", () => {
    const spec = validateRecord({ tenantId: "tv", tier: "advanced", tenantName: "TV", tenantRegistrationId: `${"é#".repeat(200)}` });
    if (!spec.ok) throw new Error(spec.message);
    const d = desiredForTenant(spec.spec, defaultCatalogue, settings);
    for (const svc of d.services) {
      const value = svc.tags["tenant-registration-id"] ?? "";
      expect(value.length).toBeLessThanOrEqual(256);
      expect(value).toMatch(/^[\p{L}\p{N} _.:/=+\-@]*$/u);
    }
  });
});
