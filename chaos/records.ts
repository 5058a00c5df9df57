import fc from "fast-check";
import { APP_NAMES, TIERS, validateRecord, type Tier } from "../src/tenants/record.js";

/**
 * Tenant records for chaos runs: plain valid fleets, odd but valid records,
 * and fuzzed invalid ones (fast-check), each invalid record checked against
 * the controller's own schema so that "invalid" is never a guess.
 */
export type RawRecord = Record<string, unknown>;

export interface PlannedRecord {
  readonly record: RawRecord;
  readonly tenantId: string;
  /** The tier a valid record converges to (lower case); undefined for an invalid one. */
  readonly tier: Tier | undefined;
  /** For an invalid record: what makes it so (badTier, oddId, ...). */
  readonly kind: string;
}

/** `count` valid tenants, 40% basic, 40% advanced, 20% premium, ids `<prefix>-<n>`. */
export function fleet(count: number, prefix: string): PlannedRecord[] {
  return Array.from({ length: count }, (_, i) => {
    const slot = i % 5;
    const tier: Tier = slot < 2 ? "basic" : slot < 4 ? "advanced" : "premium";
    const tenantId = `${prefix}-${String(i + 1).padStart(3, "0")}`;
    return {
      tenantId,
      tier,
      kind: "valid",
      record: { tenantId, tier, tenantName: `Chaos ${tenantId}`, tenantRegistrationId: `reg-${tenantId}` },
    };
  });
}

const oddText = fc.string({ unit: "grapheme", maxLength: 300 });
const longText = (min: number, max: number) => fc.integer({ min, max }).chain((n) => fc.constant("x".repeat(n)));

/**
 * Valid records a careless client could still write: ids at the edges of
 * the id rule, tiers in any case, unicode and long names, odd registration
 * ids, app overrides at their bounds. Ids are distinct ignoring case (two
 * that are not would be refused by design, not lost).
 */
export function oddValidRecords(count: number, seed: number, taken: Set<string>): PlannedRecord[] {
  const arb = fc.record(
    {
      tenantId: fc.oneof(fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/), fc.constantFrom("-", "_", "0", "A-", "_x_", "9".repeat(64))),
      tier: fc.constantFrom(...TIERS).chain((t) => fc.constantFrom(t, t.toUpperCase(), t[0]?.toUpperCase() + t.slice(1))),
      tenantName: fc.oneof(
        oddText.filter((s) => s.length > 0),
        longText(1000, 20_000),
      ),
      tenantRegistrationId: fc.oneof(oddText, longText(300, 3000)),
      apps: fc.dictionary(
        fc.constantFrom(...APP_NAMES),
        fc.record(
          {
            desiredCount: fc.integer({ min: 0, max: 4 }),
            version: fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/).filter((v) => !v.toLowerCase().includes("crashloop")),
          },
          { requiredKeys: [] },
        ),
        { maxKeys: 4 },
      ),
      suspended: fc.constant(false),
      sbtaws_active: fc.constant(true),
    },
    { requiredKeys: ["tenantId", "tier", "tenantName"] },
  );
  const out: PlannedRecord[] = [];
  for (const record of fc.sample(arb, { numRuns: count * 3, seed })) {
    if (out.length >= count) break;
    const id = record.tenantId;
    if (taken.has(id.toLowerCase())) continue;
    const v = validateRecord(record);
    if (!v.ok) continue;
    taken.add(id.toLowerCase());
    out.push({ record, tenantId: id, tier: v.spec.tier, kind: "oddValid" });
  }
  return out;
}

/** Any DynamoDB-writable value that is not a string. */
const notString = fc.oneof(
  fc.integer(),
  // Fractions DynamoDB can store (its numbers stop at 1e-130; fc.double reaches 5e-324).
  fc.integer({ min: -1_000_000, max: 1_000_000 }).map((n) => n / 64),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.integer(), { maxLength: 3 }),
  fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), fc.integer(), { maxKeys: 3 }),
);
const notBoolean = fc.oneof(fc.constantFrom("true", "false", "yes", "", 0, 1), fc.constant(null), fc.array(fc.boolean(), { maxLength: 2 }));
const notObject = fc.oneof(
  fc.string({ maxLength: 20 }),
  fc.integer(),
  fc.boolean(),
  fc.array(fc.string({ maxLength: 5 }), { maxLength: 3 }),
);
const badTier = fc.oneof(
  fc.constantFrom("gold", "", " basic", "basic ", "pool", "silo", "BASIC\n", "advanced_", "prem1um", "standard", "Basic Tier"),
  fc.string({ unit: "grapheme", maxLength: 40 }).filter((s) => !(TIERS as readonly string[]).includes(s.toLowerCase())),
  longText(50_000, 150_000),
);
const badCount = fc.oneof(
  fc.constantFrom(-1, 101, 1.5, 1e9, -0.5),
  fc.integer({ min: 101 }),
  fc.integer({ max: -1 }),
  fc.constantFrom("2", true, null),
);
const badVersion = fc.oneof(
  fc.constantFrom("", ".x", "-x", "has space", "a:b", "ver/1", "tag\n", "ünïcode"),
  longText(129, 100_000),
  fc.integer(),
);
const unknownApp = fc.oneof(
  fc.string({ unit: "grapheme", minLength: 1, maxLength: 30 }).filter((k) => !(APP_NAMES as readonly string[]).includes(k)),
  // A key this long comes back in the validation message: written twice into the status it would not fit in 400 KB.
  longText(20_000, 200_000),
);
const oddId = fc.oneof(
  fc.constantFrom("has space", "slash/id", "dot.id", "colon:id", "tab\tid", "new\nline", "emoji-🦄", "ünïcode", "quote'id", "star*"),
  fc.string({ unit: "grapheme", minLength: 1, maxLength: 40 }).filter((s) => !/^[A-Za-z0-9_-]{1,64}$/.test(s)),
  fc.integer({ min: 65, max: 1500 }).map((n) => "i".repeat(n)),
);

type Mutation = { readonly kind: string; readonly apply: (r: RawRecord) => RawRecord };
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  badTier.map((tier) => ({ kind: "badTier", apply: (r: RawRecord) => ({ ...r, tier }) })),
  notString.map((tier) => ({ kind: "tierWrongType", apply: (r: RawRecord) => ({ ...r, tier }) })),
  fc.constantFrom("tier", "tenantName").map((field) => ({
    kind: "missingField",
    apply: (r: RawRecord) => Object.fromEntries(Object.entries(r).filter(([k]) => k !== field)),
  })),
  fc.constant({ kind: "emptyName", apply: (r: RawRecord) => ({ ...r, tenantName: "" }) }),
  notString.map((tenantName) => ({ kind: "nameWrongType", apply: (r: RawRecord) => ({ ...r, tenantName }) })),
  fc
    .tuple(fc.constantFrom("sbtaws_active", "suspended"), notBoolean)
    .map(([field, value]) => ({ kind: "flagWrongType", apply: (r: RawRecord) => ({ ...r, [field]: value }) })),
  fc
    .tuple(
      fc.constantFrom("email", "tenantRegistrationId"),
      notString.filter((v) => v !== null),
    )
    .map(([field, value]) => ({ kind: "optionalWrongType", apply: (r: RawRecord) => ({ ...r, [field]: value }) })),
  notObject.map((apps) => ({ kind: "appsWrongType", apply: (r: RawRecord) => ({ ...r, apps }) })),
  unknownApp.map((app) => ({ kind: "unknownApp", apply: (r: RawRecord) => ({ ...r, apps: { [app]: { desiredCount: 1 } } }) })),
  // Thousands of problems in one record: one line each would not fit either.
  fc.integer({ min: 100, max: 3000 }).map((n) => ({
    kind: "manyUnknownApps",
    apply: (r: RawRecord) => ({ ...r, apps: Object.fromEntries(Array.from({ length: n }, (_, i) => [`app${i}`, { desiredCount: 1 }])) }),
  })),
  fc
    .tuple(fc.constantFrom(...APP_NAMES), badCount)
    .map(([app, desiredCount]) => ({ kind: "badDesiredCount", apply: (r: RawRecord) => ({ ...r, apps: { [app]: { desiredCount } } }) })),
  fc
    .tuple(fc.constantFrom(...APP_NAMES), badVersion)
    .map(([app, version]) => ({ kind: "badVersion", apply: (r: RawRecord) => ({ ...r, apps: { [app]: { version } } }) })),
  fc.constantFrom(...APP_NAMES).map((app) => ({
    kind: "extraOverrideKey",
    apply: (r: RawRecord) => ({ ...r, apps: { [app]: { desiredCount: 1, cpu: 512 } } }),
  })),
  oddId.map((id) => ({ kind: "oddId", apply: (r: RawRecord) => ({ ...r, tenantId: id }) })),
);

/**
 * `count` records the controller must refuse, each with a distinct id:
 * `<prefix>-<n>`, or for an odd id that id with `-<n>` added (still not a
 * valid id). Every one is checked against validateRecord.
 */
export function invalidRecords(count: number, seed: number, prefix: string): PlannedRecord[] {
  const arb = fc.tuple(fc.constantFrom(...TIERS), mutation);
  const out: PlannedRecord[] = [];
  let i = 0;
  for (const [tier, m] of fc.sample(arb, { numRuns: count * 3, seed })) {
    if (out.length >= count) break;
    i += 1;
    const base: RawRecord = { tenantId: `${prefix}-${i}`, tier, tenantName: `Invalid ${i}`, tenantRegistrationId: `reg-${prefix}-${i}` };
    const mutated = m.apply(base);
    if (m.kind === "oddId") mutated["tenantId"] = `${String(mutated["tenantId"])}-${i}`;
    if (validateRecord(mutated).ok) continue;
    out.push({ record: mutated, tenantId: String(mutated["tenantId"]), tier: undefined, kind: m.kind });
  }
  if (out.length < count) throw new Error(`only ${out.length} of ${count} invalid records generated; raise numRuns`);
  return out;
}

/** A valid record turned invalid in place (same id): the tenant's resources must stay. */
export function corrupt(record: RawRecord, seed: number): { record: RawRecord; kind: string } {
  // The id must stay the tenant's, so oddId mutations are skipped.
  for (const m of fc.sample(mutation, { numRuns: 50, seed })) {
    if (m.kind === "oddId") continue;
    const mutated = m.apply(record);
    if (!validateRecord(mutated).ok) return { record: mutated, kind: m.kind };
  }
  return { record: { ...record, tier: "gold" }, kind: "badTier" };
}
