import { createHash } from "node:crypto";
import { APP_NAMES, tenantIdSchema, type AppName } from "../tenants/record.js";

/**
 * Deterministic AWS resource names from (namePrefix, tenantId, app).
 *
 * Inputs: namePrefix is 1-10 of [a-z0-9] starting with a letter (config.ts);
 * tenantId is 1-64 of [A-Za-z0-9_-] (record.ts), often a UUID that may start
 * with a digit; app names are lowercase letters.
 *
 * Two families of rules:
 * - Rules that admit every valid tenant id verbatim and are case-sensitive
 *   (ECS clusters, services and task definition families; DynamoDB tables;
 *   log groups) embed the exact tenant id. These names are injective by
 *   construction: the prefix has no hyphen, a fixed kind marker follows it
 *   ("t" for a tenant, "pool" for the pool), and the app, when present, is
 *   always the last hyphen-free segment.
 * - Rules that forbid a tenant-id character, cap the length below what a
 *   tenant id needs, or compare names case-insensitively (CloudFormation
 *   stacks, ALB target groups, IAM roles) ALWAYS carry a hash of the exact
 *   tenant id, plus a readable, sanitised slice of it. The choice is per kind,
 *   never per id, so a hashed name can never meet a verbatim one.
 *
 * Tenant ids are recovered from the tenant-id tag, never from names (a hashed
 * name cannot be reversed, and a prefix change would break any parser). The
 * one exception is tenantOfEcsName below, for ECS events, which carry no
 * tags, and for splitting a resync survey's reads between controllers: what
 * it finds is only a hint of which tenant to look at
 * (docs/adr/0017-ecs-events-as-hints.md) or who reads it (docs/adr/0018),
 * never a fact anything is decided on.
 */

/** The silo tables each tenant gets in its infrastructure stack. */
export type SiloTable = "orders" | "products";

/** Length of the case-insensitive hash suffix: 12 base36 characters, about 62 bits. */
export const HASH_LENGTH = 12;

const TENANT = "t";
const POOL = "pool";

// ECS: clusters, services and task definition families allow up to 255 of
// [A-Za-z0-9_-]; the longest name here is 10 + 3 + 64 + 1 + 8 = 86.

/** The dedicated cluster of a premium tenant. */
export function premiumClusterName(prefix: string, tenantId: string): string {
  return `${prefix}-${TENANT}-${tenantId}`;
}

/**
 * A tenant's service for an app. The same name is used in the advanced
 * cluster and in the tenant's premium cluster (service names are scoped to a
 * cluster), so a tier move is found by looking at both places.
 */
export function serviceName(prefix: string, tenantId: string, app: AppName): string {
  return `${prefix}-${TENANT}-${tenantId}-${app}`;
}

/**
 * A tenant's task definition family for an app. Families are account-wide,
 * hence the "t" marker that keeps tenant "pool" apart from the pool's families.
 */
export function taskDefinitionFamily(prefix: string, tenantId: string, app: AppName): string {
  return `${prefix}-${TENANT}-${tenantId}-${app}`;
}

/**
 * The tenant a premium cluster or a tenant service is named after, or
 * undefined for any other name (the pool's, another prefix's, a foreign
 * one). It inverts premiumClusterName and serviceName, which embed the id
 * verbatim: the prefix has no hyphen and the app is the last segment, so
 * the split is unambiguous. For hints only (see the module comment).
 */
export function tenantOfEcsName(prefix: string, name: string, kind: "cluster" | "service"): string | undefined {
  const head = `${prefix}-${TENANT}-`;
  if (!name.startsWith(head)) return undefined;
  let id = name.slice(head.length);
  if (kind === "service") {
    const cut = id.lastIndexOf("-");
    if (cut < 0 || !(APP_NAMES as readonly string[]).includes(id.slice(cut + 1))) return undefined;
    id = id.slice(0, cut);
  }
  return tenantIdSchema.safeParse(id).success ? id : undefined;
}

/** Whether the name is one of the pool's services (poolServiceName of some app). */
export function isPoolServiceName(prefix: string, name: string): boolean {
  return APP_NAMES.some((app) => poolServiceName(prefix, app) === name);
}

/** A pooled (basic tier) service, in the pool cluster. */
export function poolServiceName(prefix: string, app: AppName): string {
  return `${prefix}-${POOL}-${app}`;
}

export function poolTaskDefinitionFamily(prefix: string, app: AppName): string {
  return `${prefix}-${POOL}-${app}`;
}

// DynamoDB: 3-255 of [A-Za-z0-9_.-], case-sensitive; the tenant id fits verbatim.

export function siloTableName(prefix: string, tenantId: string, table: SiloTable): string {
  return `${prefix}-${TENANT}-${tenantId}-${table}`;
}

export function poolTableName(prefix: string, table: SiloTable): string {
  return `${prefix}-${POOL}-${table}`;
}

// CloudWatch Logs: 1-512 of [A-Za-z0-9_.#/-]. "/" cannot occur in a tenant id,
// so the tenant and pool groups live in separate path segments.

export function tenantLogGroupName(prefix: string, tenantId: string): string {
  return `/ecs/${prefix}/tenant/${tenantId}`;
}

export function poolLogGroupName(prefix: string): string {
  return `/ecs/${prefix}/pool`;
}

/**
 * CloudFormation: starts with a letter, [A-Za-z0-9-], at most 128. "_" is
 * allowed in a tenant id but not here, so the hash keeps "a_b" and "a-b" apart.
 * Longest: 10 + 1 + 64 + 1 + 12 = 88.
 */
export function stackName(prefix: string, tenantId: string): string {
  return `${prefix}-${readable(tenantId, 64, false)}-${tenantHash(tenantId)}`;
}

/**
 * ALB target group: at most 32 of [A-Za-z0-9-], not starting or ending with a
 * hyphen, and unique regardless of case. The readable part is what the budget
 * leaves (8 characters with a 10-character prefix: a UUID's first group).
 */
export function targetGroupName(prefix: string, tenantId: string): string {
  const budget = 32 - prefix.length - 2 - HASH_LENGTH;
  return `${prefix}-${readable(tenantId, budget, true)}-${tenantHash(tenantId)}`;
}

/**
 * IAM role: at most 64 of [A-Za-z0-9+=,.@_-], unique regardless of case.
 * `purpose` is a short lowercase word such as "task" or "exec".
 */
export function roleName(prefix: string, tenantId: string, purpose: "task" | "exec" | "access"): string {
  const budget = 64 - prefix.length - 3 - HASH_LENGTH - purpose.length;
  return `${prefix}-${readable(tenantId, budget, true)}-${tenantHash(tenantId)}-${purpose}`;
}

// The pool stack (src/tiers/pool-template.ts): one per deployment. Every
// name below is the prefix plus a fixed word, so it cannot meet a tenant's:
// tenant stacks, target groups and roles always end in a 12-character hash
// (roles then "-task" or "-exec"), and none of these fixed words is one.

/** The pool stack. Longest: 10 + 5 = 15. */
export function poolStackName(prefix: string): string {
  return `${prefix}-${POOL}`;
}

/** The pool's ALB target group. Longest: 15 of the 32 allowed. */
export function poolTargetGroupName(prefix: string): string {
  return `${prefix}-${POOL}`;
}

/**
 * The pool's IAM roles: the pooled services' task and execution roles, and
 * the tenant-access role the task role assumes with a tenant session tag.
 * Longest: 10 + 6 + 13 = 29 of the 64 allowed.
 */
export function poolRoleName(prefix: string, purpose: "task" | "exec" | "tenant-access"): string {
  return `${prefix}-${POOL}-${purpose}`;
}

/**
 * Hash of the exact tenant id (case and all), in lowercase base36 so that a
 * case-insensitive service still tells "Acme" from "acme".
 */
export function tenantHash(tenantId: string): string {
  const digest = createHash("sha256").update(tenantId, "utf8").digest();
  const n = digest.readBigUInt64BE(0) % 36n ** BigInt(HASH_LENGTH);
  return n.toString(36).padStart(HASH_LENGTH, "0");
}

/**
 * A recognisable slice of the tenant id within [A-Za-z0-9-]: underscores become
 * hyphens, runs of hyphens collapse and none is left at either end (the hash
 * follows, and the prefix precedes, so no "--" appears). Never empty: an id of
 * only "_" and "-" reads as "x". It is decoration; uniqueness comes from the hash.
 */
function readable(tenantId: string, max: number, lower: boolean): string {
  const cased = lower ? tenantId.toLowerCase() : tenantId;
  const cleaned = cased
    .replace(/[^A-Za-z0-9]+/g, "-")
    .slice(0, Math.max(1, max))
    .replace(/^-+|-+$/g, "");
  return cleaned === "" ? "x" : cleaned;
}
