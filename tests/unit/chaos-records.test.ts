import { describe, expect, it } from "vitest";
import { corrupt, fleet, invalidRecords, oddValidRecords } from "../../chaos/records.js";
import { validateRecord } from "../../src/tenants/record.js";

/**
 * The chaos fuzz's records (chaos/records.ts): what it calls invalid must be
 * invalid by the controller's own schema, and what it calls valid, valid and
 * distinct ignoring case, or its "lost" and "not reported" figures mean nothing.
 */
describe("chaos records", () => {
  it("generates invalid records the schema refuses, with distinct ids, of every kind", () => {
    const records = invalidRecords(250, 7, "inv");
    expect(records).toHaveLength(250);
    expect(new Set(records.map((r) => r.tenantId)).size).toBe(250);
    for (const r of records) {
      expect(validateRecord(r.record).ok, JSON.stringify(r.record).slice(0, 200)).toBe(false);
      expect(r.tier).toBeUndefined();
    }
    expect(new Set(records.map((r) => r.kind))).toEqual(
      new Set([
        "badTier",
        "tierWrongType",
        "missingField",
        "emptyName",
        "nameWrongType",
        "flagWrongType",
        "optionalWrongType",
        "appsWrongType",
        "unknownApp",
        "manyUnknownApps",
        "badDesiredCount",
        "badVersion",
        "extraOverrideKey",
        "oddId",
      ]),
    );
    // The same seed gives the same records.
    expect(invalidRecords(50, 7, "inv")).toEqual(records.slice(0, 50));
  });

  it("generates odd valid records the schema accepts, distinct ignoring case from each other and from what is taken", () => {
    const taken = new Set(fleet(20, "v").map((r) => r.tenantId.toLowerCase()));
    const before = new Set(taken);
    const records = oddValidRecords(60, 3, taken);
    expect(records.length).toBeGreaterThan(40);
    const lower = records.map((r) => r.tenantId.toLowerCase());
    expect(new Set(lower).size).toBe(records.length);
    for (const id of lower) expect(before.has(id)).toBe(false);
    for (const r of records) {
      const v = validateRecord(r.record);
      expect(v.ok).toBe(true);
      if (v.ok) expect(r.tier).toBe(v.spec.tier);
    }
  });

  it("corrupts a valid record in place: same id, now invalid", () => {
    for (const [i, r] of fleet(30, "c").entries()) {
      const broken = corrupt(r.record, i);
      expect(broken.record["tenantId"]).toBe(r.tenantId);
      expect(validateRecord(broken.record).ok).toBe(false);
    }
  });
});
