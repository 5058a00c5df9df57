import { createHash } from "node:crypto";
import { z } from "zod";
import { didYouMean } from "../suggest.js";

/**
 * The tenant record contract (docs/design.md "Contract: tenant record"), shaped like
 * SBT's TenantDetails item. Unknown attributes are kept by DynamoDB and ignored here.
 */
export const TIERS = ["basic", "advanced", "premium"] as const;
export type Tier = (typeof TIERS)[number];

export const APP_NAMES = ["orders", "products", "users", "rproxy"] as const;
export type AppName = (typeof APP_NAMES)[number];

export const tenantIdSchema = z
  .string({ error: "tenantId is required and must be a string" })
  .regex(/^[A-Za-z0-9_-]{1,64}$/, "tenantId must be 1 to 64 of A-Z a-z 0-9 _ -");

const appOverrideSchema = z
  .object({
    desiredCount: z
      .number({ error: "desiredCount must be a number" })
      .int("desiredCount must be a whole number")
      .min(0, "desiredCount must be 0 or more")
      .max(100, "desiredCount must be at most 100")
      .optional(),
    version: z
      .string({ error: "version must be a string" })
      .regex(
        /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/,
        "version must be a valid image tag: 1-128 of A-Z a-z 0-9 _ . - not starting with . or -",
      )
      .optional(),
  })
  .strict();

export type AppOverride = z.output<typeof appOverrideSchema>;

export const tenantRecordSchema = z.object({
  tenantId: tenantIdSchema,
  tier: z
    .string({ error: "tier is required: basic, advanced or premium" })
    .transform((t) => t.toLowerCase())
    .pipe(z.enum(TIERS, { error: "tier must be basic, advanced or premium (any case)" })),
  tenantName: z.string({ error: "tenantName is required and must be a string" }).min(1, "tenantName must not be empty"),
  email: z.string({ error: "email must be a string" }).optional(),
  tenantRegistrationId: z.string({ error: "tenantRegistrationId must be a string" }).optional(),
  sbtaws_active: z.boolean({ error: "sbtaws_active must be a boolean (true or false)" }).optional().default(true),
  suspended: z.boolean({ error: "suspended must be a boolean (true or false)" }).optional().default(false),
  /**
   * The tenant's place in fleet rollouts: lower rings get a new catalogue
   * version first; a tenant without one goes last (docs/design.md "Contract: fleet rollouts").
   */
  ring: z
    .number({ error: "ring must be a number (lower rings get new versions first)" })
    .int("ring must be a whole number")
    .min(0, "ring must be 0 or more")
    .max(1000, "ring must be at most 1000")
    .optional(),
  apps: z
    .record(z.string(), appOverrideSchema)
    .superRefine((apps, ctx) => {
      for (const key of Object.keys(apps)) {
        if (!(APP_NAMES as readonly string[]).includes(key)) {
          const hint = didYouMean(key, APP_NAMES);
          const keys = `apps keys must be one of ${APP_NAMES.join(", ")}`;
          ctx.addIssue({ code: "custom", path: [key], message: `unknown app "${clip(key)}"${hint ? `${hint} (${keys})` : `: ${keys}`}` });
        }
      }
    })
    .transform((apps) => apps as Partial<Record<AppName, AppOverride>>)
    .optional()
    .default({}),
});

export type TenantSpec = z.output<typeof tenantRecordSchema>;

/** One thing wrong with a record: where (the attribute path) and what, naming the field and the fix. */
export interface RecordIssue {
  readonly path: readonly (string | number)[];
  readonly message: string;
}

export type RecordValidation =
  | { readonly ok: true; readonly spec: TenantSpec; readonly specHash: string }
  | {
      readonly ok: false;
      readonly tenantId: string | undefined;
      readonly message: string;
      readonly issues: readonly RecordIssue[];
      readonly specHash: string;
    };

/**
 * What a record file may say: exactly the contract's attributes. The stored
 * item carries others (SBT's, `status`, `tenantctlApplied`) and is validated
 * tolerantly; a file a person writes is not, so `appz:` is a typo reported
 * with a suggestion rather than an attribute silently ignored.
 */
const strictRecordSchema = tenantRecordSchema.strict();

/** The attributes allowed at a path of a record: the record's own, or an app override's. */
function fieldsAt(path: readonly PropertyKey[]): readonly string[] {
  if (path.length === 0) return Object.keys(tenantRecordSchema.shape);
  if (path.length === 2 && path[0] === "apps") return Object.keys(appOverrideSchema.shape);
  return [];
}

/**
 * Validates a raw item (already unmarshalled from DynamoDB). The `status`
 * attribute and unknown attributes are ignored unless `strict` (a record
 * file); the error message names the offending field and the fix.
 */
export function validateRecord(item: Readonly<Record<string, unknown>>, options: { readonly strict?: boolean } = {}): RecordValidation {
  const specHash = hashSpec(item);
  const parsed = (options.strict === true ? strictRecordSchema : tenantRecordSchema).safeParse(item);
  if (parsed.success) return { ok: true, spec: parsed.data, specHash };
  const issues: RecordIssue[] = parsed.error.issues.flatMap((issue): RecordIssue[] => {
    if (issue.code === "unrecognized_keys") {
      return issue.keys.map((key) => {
        const path = [...issue.path.map((p) => (typeof p === "number" ? p : clip(String(p)))), clip(key)];
        const fields = fieldsAt(issue.path);
        const hint = didYouMean(key, fields);
        return {
          path,
          message: `unknown field "${path.join(".")}"${hint || (fields.length > 0 ? `: expected one of ${fields.join(", ")}` : "")}`,
        };
      });
    }
    const path = issue.path.map((p) => (typeof p === "number" ? p : clip(String(p))));
    const last = path[path.length - 1];
    // Messages already start with their field's name; prefix only the parents.
    if (last !== undefined && issue.message.startsWith(String(last))) {
      return [{ path, message: [...path.slice(0, -1), issue.message].join(".") }];
    }
    return [{ path, message: path.length === 0 ? issue.message : `${path.join(".")}: ${issue.message}` }];
  });
  // The message lands in the status (twice) and in SBT's failure event: a record
  // with huge or countless bad keys must still leave room for it in a 400 KB
  // item and a 256 KB event, or the tenant never shows Failed.
  const shown = issues.slice(0, MAX_PROBLEMS_SHOWN).map((i) => i.message);
  const more = issues.length - shown.length;
  const message = shown.join("; ") + (more > 0 ? `; and ${more} more problem${more === 1 ? "" : "s"}` : "");
  const tenantId = typeof item["tenantId"] === "string" ? item["tenantId"] : undefined;
  return { ok: false, tenantId, message, issues, specHash };
}

/** Problems a validation message lists; the rest are counted. */
const MAX_PROBLEMS_SHOWN = 10;
/** Characters of a record's own text (an app key) quoted in a message. */
const MAX_QUOTED = 64;

/** Input quoted in a message, cut short with its length when long. */
function clip(text: string): string {
  return text.length <= MAX_QUOTED ? text : `${text.slice(0, MAX_QUOTED)}… (${text.length} characters)`;
}

/** Attributes that make up the spec. `status` and unknown attributes are excluded on purpose. */
export const SPEC_FIELDS = [
  "tenantId",
  "tier",
  "tenantName",
  "email",
  "tenantRegistrationId",
  "sbtaws_active",
  "suspended",
  "ring",
  "apps",
] as const;

/**
 * Hash of the spec fields of a raw item, so a write of `status` alone (which
 * also produces a stream record) is recognised and does not cause a reconcile.
 */
export function hashSpec(item: Readonly<Record<string, unknown>>): string {
  const spec: Record<string, unknown> = {};
  for (const f of SPEC_FIELDS) if (item[f] !== undefined) spec[f] = item[f];
  return createHash("sha256").update(canonicalJson(spec)).digest("hex").slice(0, 16);
}

/** JSON with object keys sorted at every depth: equal data gives equal text. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value instanceof Set) return [...value].map(sortKeys).sort();
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[k];
      if (v !== undefined) out[k] = sortKeys(v);
    }
    return out;
  }
  return value;
}
