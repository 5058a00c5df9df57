import { describe, expect, it } from "vitest";
import { checkRecords, LAST_APPLIED, parseRecords, sameAsStored } from "../../src/cli/commands/apply.js";

describe("parseRecords", () => {
  it.each([
    { reason: "one JSON object", text: '{"tenantId":"a","tier":"basic","tenantName":"A"}', ids: ["a"] },
    { reason: "a JSON list", text: '[{"tenantId":"a"},{"tenantId":"b"}]', ids: ["a", "b"] },
    { reason: "a YAML list", text: "- tenantId: a\n- tenantId: b\n", ids: ["a", "b"] },
    { reason: "several YAML documents, a trailing empty one skipped", text: "tenantId: a\n---\ntenantId: b\n---\n", ids: ["a", "b"] },
  ])("reads $reason", ({ text, ids }) => {
    const r = parseRecords(text);
    expect(r.ok).toBe(true);
    if (r.ok) expect(r.records.map((x) => (x as { tenantId: string }).tenantId)).toEqual(ids);
  });

  it("reports where the syntax is wrong", () => {
    const r = parseRecords("tenantId: a\ntier: [basic\n");
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.message).toMatch(/^not valid JSON or YAML \(line \d+, column \d+\)/);
  });

  it("rejects a duplicate key rather than keeping the last one silently", () => {
    expect(parseRecords("tenantId: a\ntenantId: b\n").ok).toBe(false);
  });
});

describe("checkRecords", () => {
  const valid = { tenantId: "a", tier: "basic", tenantName: "A" };

  it("keeps valid records without their status", () => {
    const r = checkRecords([{ ...valid, status: { phase: "Ready" } }]);
    expect(r.problems).toEqual([]);
    expect(r.records).toEqual([valid]);
  });

  it("reports every bad record by position and id, naming the field", () => {
    const r = checkRecords([valid, { ...valid, tenantId: "b", apps: { orders: { desiredCount: -1 } } }, "text", { ...valid }]);
    expect(r.problems).toHaveLength(3);
    expect(r.problems[0]).toMatch(/^record 2 \(tenant b\): apps\.orders\.desiredCount must be 0 or more/);
    expect(r.problems[1]).toMatch(/^record 3: must be a mapping/);
    expect(r.problems[2]).toMatch(/^record 4 \(tenant a\): duplicate tenantId, also in record 1/);
  });
});

describe("sameAsStored", () => {
  // Applied before by tenantctl (tier, tenantName, apps); email and sbtaws_active are SBT's.
  const stored = {
    tenantId: "a",
    tier: "basic",
    tenantName: "A",
    apps: { orders: { desiredCount: 2, version: "1" } },
    status: { phase: "Ready" },
    sbtaws_tenantConfig: "x",
    email: "ops@a.test",
    sbtaws_active: false,
    [LAST_APPLIED]: ["apps", "tenantName", "tier"],
  };

  it.each([
    {
      reason: "same spec, keys in another order, status and others' attributes ignored",
      desired: { tenantName: "A", tenantId: "a", tier: "basic", apps: { orders: { version: "1", desiredCount: 2 } } },
      same: true,
    },
    {
      reason: "a changed field",
      desired: { tenantId: "a", tier: "premium", tenantName: "A", apps: { orders: { desiredCount: 2, version: "1" } } },
      same: false,
    },
    { reason: "a field the last apply set and the file drops", desired: { tenantId: "a", tier: "basic", tenantName: "A" }, same: false },
    {
      reason: "SBT's attributes the file does not name are none of its business",
      desired: { tenantId: "a", tier: "basic", tenantName: "A", apps: { orders: { desiredCount: 2, version: "1" } } },
      same: true,
    },
    { reason: "a new attribute in the file", desired: { ...stored, status: undefined, [LAST_APPLIED]: undefined, extra: 1 }, same: false },
  ])("$reason", ({ desired, same }) => {
    const { status: _s, ...d } = desired as Record<string, unknown>;
    expect(sameAsStored(stored, d)).toBe(same);
  });
});
