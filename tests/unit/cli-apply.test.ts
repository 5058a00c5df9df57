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

describe("a record file is strict: unknown fields are typos", () => {
  it("names the field, its line and the field meant", () => {
    const text = ["tenantId: acme", "tier: basic", "tenantName: Acme", "appz:", "  orders: { desiredCount: 1 }", ""].join("\n");
    const parsed = parseRecords(text);
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    const r = checkRecords(parsed.records, parsed.locate);
    expect(r.records).toEqual([]);
    expect(r.problems).toEqual(['record 1 (tenant acme) line 4: unknown field "appz": did you mean "apps"?']);
  });

  it("finds typos inside app overrides and in app names, in lists and later documents, each at its own line", () => {
    const text = [
      "- tenantId: a",
      "  tier: basic",
      "  tenantName: A",
      "---",
      "tenantId: b",
      "tier: advanced",
      "tenantname: B",
      "apps:",
      "  ordrs: {}",
      "  users: { desiredcount: 2 }",
      "",
    ].join("\n");
    const parsed = parseRecords(text);
    if (!parsed.ok) throw new Error(parsed.message);
    const r = checkRecords(parsed.records, parsed.locate);
    expect(r.problems).toHaveLength(4);
    expect(r.problems).toContain('record 2 (tenant b) line 7: unknown field "tenantname": did you mean "tenantName"?');
    // The required field is missing: reported where the record starts.
    expect(r.problems).toContain("record 2 (tenant b) line 5: tenantName is required and must be a string");
    expect(r.problems).toContain(
      'record 2 (tenant b) line 9: apps.ordrs: unknown app "ordrs": did you mean "orders"? (apps keys must be one of orders, products, users, rproxy)',
    );
    expect(r.problems).toContain('record 2 (tenant b) line 10: unknown field "apps.users.desiredcount": did you mean "desiredCount"?');
  });

  it("locates fields in JSON too, and lists the fields when nothing is close", () => {
    const text =
      '[\n  {"tenantId": "a", "tier": "basic", "tenantName": "A"},\n  {"tenantId": "b", "tier": "basic", "tenantName": "B",\n   "colour": "red"}\n]';
    const parsed = parseRecords(text);
    if (!parsed.ok) throw new Error(parsed.message);
    const r = checkRecords(parsed.records, parsed.locate);
    expect(r.problems).toEqual([
      'record 2 (tenant b) line 4: unknown field "colour": expected one of tenantId, tier, tenantName, email, tenantRegistrationId, sbtaws_active, suspended, ring, apps',
    ]);
  });

  it("accepts every field of the record contract, and ignores the status and tenantctlApplied that get -o yaml shows", () => {
    const full = {
      tenantId: "a",
      tier: "BASIC",
      tenantName: "A",
      email: "a@a.test",
      tenantRegistrationId: "reg",
      sbtaws_active: true,
      suspended: false,
      apps: { orders: { desiredCount: 1, version: "1.0" } },
    };
    const r = checkRecords([{ ...full, status: { phase: "Ready" }, [LAST_APPLIED]: ["tier"] }]);
    expect(r.problems).toEqual([]);
    expect(r.records).toEqual([full]);
  });

  it("rejects SBT's own extra attributes in a file (the stored record may have them; a file may not)", () => {
    const r = checkRecords([{ ...{ tenantId: "a", tier: "basic", tenantName: "A" }, sbtaws_tenantConfig: "x" }]);
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0]).toMatch(/^record 1 \(tenant a\): unknown field "sbtaws_tenantConfig"/);
  });
});
