import { describe, expect, it } from "vitest";
import { hashSpec, validateRecord } from "../../src/tenants/record.js";

describe("validateRecord", () => {
  const valid = { tenantId: "3f2b9c1e-0d4a-4c8e-9a51-7f3e2d1c0b9a", tier: "BASIC", tenantName: "Acme" };

  it.each([
    { reason: "SBT sends upper-case tiers", item: { ...valid, tier: "PREMIUM" }, tier: "premium" },
    { reason: "UUID ids starting with a digit are fine", item: valid, tier: "basic" },
    {
      reason: "unknown attributes are kept and ignored",
      item: { ...valid, tier: "advanced", sbtaws_tenantConfig: "x", status: { phase: "Ready" } },
      tier: "advanced",
    },
  ])("accepts: $reason", ({ item, tier }) => {
    const v = validateRecord(item);
    expect(v.ok).toBe(true);
    if (v.ok) {
      expect(v.spec.tier).toBe(tier);
      expect(v.spec.sbtaws_active).toBe(true);
    }
  });

  it.each([
    { reason: "missing tier", item: { tenantId: "t1", tenantName: "A" }, field: "tier", fix: "basic, advanced or premium" },
    { reason: "unknown tier", item: { ...valid, tier: "gold" }, field: "tier", fix: "basic, advanced or premium" },
    { reason: "bad tenantId", item: { ...valid, tenantId: "has space" }, field: "tenantId", fix: "A-Z a-z 0-9 _ -" },
    { reason: "tenantId too long", item: { ...valid, tenantId: "x".repeat(65) }, field: "tenantId", fix: "1 to 64" },
    { reason: "missing tenantName", item: { tenantId: "t1", tier: "basic" }, field: "tenantName", fix: "required" },
    { reason: "sbtaws_active as string", item: { ...valid, sbtaws_active: "false" }, field: "sbtaws_active", fix: "boolean" },
    {
      reason: "negative desiredCount",
      item: { ...valid, apps: { orders: { desiredCount: -1 } } },
      field: "apps.orders.desiredCount",
      fix: "0 or more",
    },
    {
      reason: "unknown app",
      item: { ...valid, apps: { billing: { desiredCount: 1 } } },
      field: "apps",
      fix: "orders, products, users, rproxy",
    },
    {
      reason: "bad version tag",
      item: { ...valid, apps: { users: { version: "-bad tag" } } },
      field: "apps.users.version",
      fix: "image tag",
    },
  ])("rejects $reason, naming the field and the fix", ({ item, field, fix }) => {
    const v = validateRecord(item);
    expect(v.ok).toBe(false);
    if (!v.ok) {
      expect(v.message).toContain(field);
      expect(v.message).toContain(fix);
    }
  });
});

describe("validateRecord messages stay small whatever the record holds", () => {
  // The message is written into the status twice and sent in SBT's failure
  // event; found by the chaos fuzz (RELIABILITY.md): a 200 KB app key or
  // thousands of unknown apps made the status write exceed DynamoDB's 400 KB
  // item limit, so the record never showed Failed.
  const base = { tenantId: "t1", tier: "basic", tenantName: "A" };

  it("quotes a huge unknown app key by its start and length", () => {
    const key = `billing${"k".repeat(200_000)}`;
    const v = validateRecord({ ...base, apps: { [key]: { desiredCount: 1 } } });
    expect(v.ok).toBe(false);
    if (!v.ok) {
      expect(v.message.length).toBeLessThan(1000);
      expect(v.message).toContain('unknown app "billingkkk');
      expect(v.message).toContain("(200007 characters)");
      expect(v.message).toContain("orders, products, users, rproxy");
    }
  });

  it("clips a huge key in the path of a nested problem", () => {
    const v = validateRecord({ ...base, apps: { ["x".repeat(50_000)]: { desiredCount: -1 } } });
    expect(v.ok).toBe(false);
    if (!v.ok) {
      expect(v.message.length).toBeLessThan(1000);
      expect(v.message).toContain("(50000 characters)");
    }
  });

  it("lists the first problems and counts the rest", () => {
    const apps = Object.fromEntries(Array.from({ length: 8000 }, (_, i) => [`app${i}`, {}]));
    const v = validateRecord({ ...base, tier: "gold", apps });
    expect(v.ok).toBe(false);
    if (!v.ok) {
      expect(v.message.length).toBeLessThan(2000);
      expect(v.message).toContain("tier must be basic, advanced or premium");
      expect(v.message).toContain('unknown app "app0"');
      expect(v.message).toMatch(/; and 7991 more problems$/);
    }
  });

  it("leaves a short message as it was", () => {
    const v = validateRecord({ ...base, tier: "gold", apps: { billing: {} } });
    expect(v.ok).toBe(false);
    if (!v.ok)
      expect(v.message).toBe(
        'tier must be basic, advanced or premium (any case); apps.billing: unknown app "billing": apps keys must be one of orders, products, users, rproxy',
      );
  });
});

describe("hashSpec", () => {
  const item = { tenantId: "t1", tier: "basic", tenantName: "A", apps: { orders: { desiredCount: 2, version: "1" } } };
  it("ignores status and unknown attributes, and key order", () => {
    const reordered = { apps: { orders: { version: "1", desiredCount: 2 } }, tenantName: "A", tier: "basic", tenantId: "t1" };
    expect(hashSpec({ ...item, status: { phase: "Ready" }, other: 1 })).toBe(hashSpec(reordered));
  });
  it("changes when a spec field changes", () => {
    expect(hashSpec({ ...item, tier: "premium" })).not.toBe(hashSpec(item));
    expect(hashSpec({ ...item, apps: { orders: { desiredCount: 3, version: "1" } } })).not.toBe(hashSpec(item));
  });
});

describe("validateRecord strictness", () => {
  const valid = { tenantId: "t1", tier: "basic", tenantName: "A" };
  it("the controller stays tolerant of attributes SBT and others add to the stored item", () => {
    const stored = {
      ...valid,
      email: "a@x.test",
      sbtaws_tenantConfig: "x",
      tenantctlApplied: ["tier"],
      status: { phase: "Ready" },
      appz: {},
    };
    expect(validateRecord(stored).ok).toBe(true);
  });
  it("strict (a record file) reports each unknown attribute with a suggestion and its path", () => {
    const v = validateRecord({ ...valid, appz: {} }, { strict: true });
    expect(v.ok).toBe(false);
    if (!v.ok) expect(v.issues).toEqual([{ path: ["appz"], message: 'unknown field "appz": did you mean "apps"?' }]);
  });
});
