import { createHash } from "node:crypto";

/**
 * Tenants are spread over a fixed number of shards; each shard has one lease
 * (ADR 0016). The count is part of the fleet's identity: two controllers
 * computing shards with different counts would each believe they own the
 * same tenant, so it is written once in the operator table and checked.
 */

/** SHARD_COUNT's default: 32 spreads a fleet evenly over up to ~10 controllers for 32 lease writes per renewal round. */
export const DEFAULT_SHARD_COUNT = 32;
/** One BatchGetItem reads every shard lease plus the shard config item (100 keys at most). */
export const MAX_SHARD_COUNT = 96;

/**
 * The shard of a tenant id. Lower-cased first: ids are claimed
 * case-insensitively (`Acme` and `acme` contend for one claim), so both
 * spellings must be reconciled by the same owner. SHA-256 rather than a
 * string hash: stable across Node versions and processes, and even.
 */
export function shardOf(tenantId: string, count: number): number {
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`shard count must be a positive whole number, got ${count}`);
  const digest = createHash("sha256").update(tenantId.toLowerCase(), "utf8").digest();
  return digest.readUInt32BE(0) % count;
}

/** The lease name of a shard: the item `lease#shard-<n>` in the operator table. */
export function shardLeaseName(shard: number): string {
  return `shard-${shard}`;
}

/** The shard of a lease name, or undefined for another lease. */
export function shardOfLeaseName(name: string): number | undefined {
  const m = /^shard-(\d+)$/.exec(name);
  return m ? Number(m[1]) : undefined;
}

/** 0..count-1. */
export function allShards(count: number): number[] {
  return Array.from({ length: count }, (_, i) => i);
}
