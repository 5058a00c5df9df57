import { randomUUID } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { APP_NAMES, type AppName } from "../../src/tenants/record.js";
import {
  HASH_LENGTH,
  poolLogGroupName,
  poolRoleName,
  poolServiceName,
  poolStackName,
  poolTableName,
  poolTargetGroupName,
  poolTaskDefinitionFamily,
  premiumClusterName,
  roleName,
  serviceName,
  siloTableName,
  stackName,
  targetGroupName,
  taskDefinitionFamily,
  tenantHash,
  tenantLogGroupName,
} from "../../src/tiers/naming.js";

const tenantIdArb = fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/);
const prefixArb = fc.stringMatching(/^[a-z][a-z0-9]{0,9}$/);
const appArb = fc.constantFrom(...APP_NAMES);

/** Each name kind with the AWS rule it must satisfy. */
const KINDS: readonly { kind: string; rule: RegExp; max: number; name: (prefix: string, id: string, app: AppName) => string }[] = [
  { kind: "premium cluster", rule: /^[A-Za-z0-9_-]+$/, max: 255, name: (p, id) => premiumClusterName(p, id) },
  { kind: "service", rule: /^[A-Za-z0-9_-]+$/, max: 255, name: serviceName },
  { kind: "task definition family", rule: /^[A-Za-z0-9_-]+$/, max: 255, name: taskDefinitionFamily },
  { kind: "stack", rule: /^[A-Za-z][A-Za-z0-9-]*$/, max: 128, name: (p, id) => stackName(p, id) },
  { kind: "target group", rule: /^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$/, max: 32, name: (p, id) => targetGroupName(p, id) },
  { kind: "task role", rule: /^[\w+=,.@-]+$/, max: 64, name: (p, id) => roleName(p, id, "task") },
  { kind: "execution role", rule: /^[\w+=,.@-]+$/, max: 64, name: (p, id) => roleName(p, id, "exec") },
  { kind: "orders table", rule: /^[A-Za-z0-9_.-]{3,}$/, max: 255, name: (p, id) => siloTableName(p, id, "orders") },
  { kind: "products table", rule: /^[A-Za-z0-9_.-]{3,}$/, max: 255, name: (p, id) => siloTableName(p, id, "products") },
  { kind: "log group", rule: /^[A-Za-z0-9_.#/-]+$/, max: 512, name: (p, id) => tenantLogGroupName(p, id) },
];

describe("naming rules", () => {
  it.each(KINDS)("$kind names satisfy the AWS charset and length for any valid tenant id and prefix", ({ rule, max, name }) => {
    fc.assert(
      fc.property(prefixArb, tenantIdArb, appArb, (prefix, id, app) => {
        const n = name(prefix, id, app);
        expect(n).toMatch(rule);
        expect(n.length).toBeLessThanOrEqual(max);
      }),
      { numRuns: 500 },
    );
  });

  it("uses the longest prefix and tenant id without exceeding any limit", () => {
    const prefix = "abcdefghij";
    for (const id of ["Z".repeat(64), "_".repeat(64), "-".repeat(64), `9${"a_".repeat(31)}b`]) {
      for (const { kind, rule, max, name } of KINDS) {
        const n = name(prefix, id, "products");
        expect(n.length, kind).toBeLessThanOrEqual(max);
        expect(n, kind).toMatch(rule);
      }
    }
  });

  it.each(KINDS)("$kind names never collide between distinct tenant ids", ({ name }) => {
    fc.assert(
      fc.property(prefixArb, fc.uniqueArray(tenantIdArb, { minLength: 2, maxLength: 50 }), appArb, (prefix, ids, app) => {
        const names = ids.map((id) => name(prefix, id, app));
        expect(new Set(names).size).toBe(ids.length);
      }),
      { numRuns: 200 },
    );
  });

  it("has no collisions across 100k random UUIDs for any name kind", () => {
    const ids = Array.from({ length: 100_000 }, () => randomUUID());
    expect(new Set(ids).size).toBe(ids.length);
    for (const { kind, name } of KINDS) {
      const names = new Set(ids.map((id) => name("saas", id, "orders")));
      expect(names.size, kind).toBe(ids.length);
    }
    // Target groups compare names case-insensitively: the lowered set must not shrink either.
    expect(new Set(ids.map((id) => targetGroupName("saas", id).toLowerCase())).size).toBe(ids.length);
  });

  it("keeps names of the same tenant apart across apps", () => {
    fc.assert(
      fc.property(prefixArb, tenantIdArb, (prefix, id) => {
        expect(new Set(APP_NAMES.map((app) => serviceName(prefix, id, app))).size).toBe(APP_NAMES.length);
        expect(new Set(APP_NAMES.map((app) => taskDefinitionFamily(prefix, id, app))).size).toBe(APP_NAMES.length);
      }),
    );
  });
});

describe("case-insensitive rules", () => {
  it("gives tenant ids differing only in case different target group and role names, even lowered", () => {
    fc.assert(
      fc.property(
        prefixArb,
        tenantIdArb.filter((id) => /[a-z]/i.test(id)),
        (prefix, id) => {
          const upper = id.toUpperCase();
          const lower = id.toLowerCase();
          fc.pre(upper !== lower);
          expect(targetGroupName(prefix, upper).toLowerCase()).not.toBe(targetGroupName(prefix, lower).toLowerCase());
          expect(roleName(prefix, upper, "task").toLowerCase()).not.toBe(roleName(prefix, lower, "task").toLowerCase());
          expect(stackName(prefix, upper).toLowerCase()).not.toBe(stackName(prefix, lower).toLowerCase());
        },
      ),
    );
  });

  it("tells apart ids that sanitise to the same text (a_b vs a-b)", () => {
    expect(stackName("saas", "a_b")).not.toBe(stackName("saas", "a-b"));
    expect(targetGroupName("saas", "a_b")).not.toBe(targetGroupName("saas", "a-b"));
  });

  it("hashes in lowercase base36 of fixed length", () => {
    fc.assert(
      fc.property(tenantIdArb, (id) => {
        expect(tenantHash(id)).toMatch(new RegExp(`^[0-9a-z]{${HASH_LENGTH}}$`));
      }),
    );
    expect(tenantHash("Acme")).not.toBe(tenantHash("acme"));
  });
});

describe("readability and determinism", () => {
  it("embeds the exact tenant id where the rule allows it", () => {
    fc.assert(
      fc.property(prefixArb, tenantIdArb, appArb, (prefix, id, app) => {
        expect(serviceName(prefix, id, app)).toContain(id);
        expect(premiumClusterName(prefix, id)).toContain(id);
        expect(taskDefinitionFamily(prefix, id, app)).toContain(id);
        expect(siloTableName(prefix, id, "orders")).toContain(id);
        expect(tenantLogGroupName(prefix, id)).toContain(id);
      }),
    );
  });

  it("keeps a recognisable part of a UUID in the shortened names", () => {
    const id = "3f2b9c1e-0d4a-4c8e-9a51-7f3e2d1c0b9a";
    expect(targetGroupName("abcdefghij", id)).toContain("3f2b9c1e");
    expect(targetGroupName("saas", id)).toContain("3f2b9c1e-0d4a");
    expect(stackName("saas", id)).toContain(id);
    expect(roleName("saas", id, "task")).toContain(id.slice(0, 30));
    expect(stackName("saas", "Acme_Corp")).toContain("Acme-Corp");
  });

  it("gives a stack name starting with a letter for a UUID starting with a digit", () => {
    expect(stackName("saas", "9f2b9c1e-0d4a-4c8e-9a51-7f3e2d1c0b9a")).toMatch(/^[A-Za-z]/);
  });

  it("is deterministic", () => {
    fc.assert(
      fc.property(prefixArb, tenantIdArb, appArb, (prefix, id, app) => {
        for (const { name } of KINDS) expect(name(prefix, id, app)).toBe(name(prefix, id, app));
      }),
    );
    expect(targetGroupName("saas", "acme")).toBe(`saas-acme-${tenantHash("acme")}`);
    expect(serviceName("saas", "acme", "orders")).toBe("saas-t-acme-orders");
  });
});

describe("pool names", () => {
  it("never equal a tenant's, even for a tenant called pool", () => {
    for (const app of APP_NAMES) {
      expect(poolServiceName("saas", app)).toBe(`saas-pool-${app}`);
      expect(poolTaskDefinitionFamily("saas", app)).not.toBe(taskDefinitionFamily("saas", "pool", app));
      expect(poolServiceName("saas", app)).not.toBe(serviceName("saas", "pool", app));
    }
    expect(poolTableName("saas", "orders")).not.toBe(siloTableName("saas", "pool", "orders"));
    expect(poolLogGroupName("saas")).not.toBe(tenantLogGroupName("saas", "pool"));
    expect(premiumClusterName("saas", "advanced")).not.toBe("saas-advanced");
    expect(premiumClusterName("saas", "pool")).not.toBe("saas-pool");
  });

  /** Each pool name kind with the AWS rule it must satisfy, and the tenant names of the same kind it must never meet. */
  const POOL_KINDS: readonly {
    kind: string;
    rule: RegExp;
    max: number;
    pool: (prefix: string) => string;
    tenant: (prefix: string, id: string) => string[];
    caseInsensitive: boolean;
  }[] = [
    {
      kind: "stack",
      rule: /^[A-Za-z][A-Za-z0-9-]*$/,
      max: 128,
      pool: poolStackName,
      tenant: (p, id) => [stackName(p, id)],
      caseInsensitive: false,
    },
    {
      kind: "target group",
      rule: /^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$/,
      max: 32,
      pool: poolTargetGroupName,
      tenant: (p, id) => [targetGroupName(p, id)],
      caseInsensitive: true,
    },
    ...(["task", "exec", "tenant-access"] as const).map((purpose) => ({
      kind: `${purpose} role`,
      rule: /^[\w+=,.@-]+$/,
      max: 64,
      pool: (p: string) => poolRoleName(p, purpose),
      tenant: (p: string, id: string) => [roleName(p, id, "task"), roleName(p, id, "exec")],
      caseInsensitive: true,
    })),
    {
      kind: "orders table",
      rule: /^[A-Za-z0-9_.-]{3,}$/,
      max: 255,
      pool: (p) => poolTableName(p, "orders"),
      tenant: (p, id) => [siloTableName(p, id, "orders")],
      caseInsensitive: false,
    },
    {
      kind: "products table",
      rule: /^[A-Za-z0-9_.-]{3,}$/,
      max: 255,
      pool: (p) => poolTableName(p, "products"),
      tenant: (p, id) => [siloTableName(p, id, "products")],
      caseInsensitive: false,
    },
    {
      kind: "log group",
      rule: /^[A-Za-z0-9_.#/-]+$/,
      max: 512,
      pool: poolLogGroupName,
      tenant: (p, id) => [tenantLogGroupName(p, id)],
      caseInsensitive: false,
    },
  ];

  it.each(POOL_KINDS)(
    "pool $kind: valid for every prefix, distinct per prefix, and never a tenant's",
    ({ rule, max, pool, tenant, caseInsensitive }) => {
      const norm = (n: string) => (caseInsensitive ? n.toLowerCase() : n);
      fc.assert(
        fc.property(prefixArb, prefixArb, tenantIdArb, (prefix, other, id) => {
          const n = pool(prefix);
          expect(n).toMatch(rule);
          expect(n.length).toBeLessThanOrEqual(max);
          if (other !== prefix) expect(norm(pool(other))).not.toBe(norm(n));
          for (const t of tenant(prefix, id)) expect(norm(t)).not.toBe(norm(n));
        }),
        { numRuns: 500 },
      );
      // The tenant ids most likely to collide: the pool's own words.
      for (const id of ["pool", "POOL", "pool-task", "pool-exec", "pool-tenant-access", "tenant-access", "task", "exec"]) {
        for (const t of tenant("abcdefghij", id)) expect(norm(t)).not.toBe(norm(pool("abcdefghij")));
      }
    },
  );

  it("pool roles are three distinct names, within IAM's 64 characters for the longest prefix", () => {
    const roles = (["task", "exec", "tenant-access"] as const).map((p) => poolRoleName("abcdefghij", p));
    expect(new Set(roles.map((r) => r.toLowerCase())).size).toBe(3);
    for (const r of roles) expect(r.length).toBeLessThanOrEqual(64);
    expect(poolTargetGroupName("abcdefghij").length).toBeLessThanOrEqual(32);
    expect(poolStackName("saas")).toBe("saas-pool");
  });
});
