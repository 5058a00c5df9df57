import type { Tier } from "../tenants/record.js";
import type { MigrationStatus, MigrationStep } from "../tenants/status.js";
import { homeOf, type DataHome, type Tables } from "../tiers/data-home.js";

/**
 * The pure half of a tier move: when one starts, when it turns around, which
 * home serves the tenant at each step, and which silo tier must keep running
 * meanwhile. The steps themselves (copying, verifying) are run by
 * TierMoveRunner; everything here is a function of the record and the status.
 *
 * A move only happens between data homes (pool <-> silo). advanced <->
 * premium share the silo tables and never move data.
 */

/** Steps before the routing flip: the source still serves and holds every item. */
const BEFORE_FLIP: ReadonlySet<MigrationStep> = new Set(["provision", "capture", "backfill", "catchup", "verify"]);

export function isBeforeFlip(step: MigrationStep): boolean {
  return BEFORE_FLIP.has(step);
}

export function startMove(from: Tier, to: Tier, source: Tables, target: Tables, now: Date): MigrationStatus {
  return { from, to, step: "provision", startedAt: now.toISOString(), source, target };
}

/**
 * What the record now asks of a move under way. A move reversed before its
 * flip is aborted (the source never stopped serving: drop the partial copy);
 * one reversed after its flip runs to the end of its drain, keeps its source,
 * and a new move brings the data back, so no write is lost either way.
 */
export function steerMove(move: MigrationStatus, desiredHome: DataHome): MigrationStatus {
  if (homeOf(move.to) === desiredHome) return move;
  if (isBeforeFlip(move.step)) return { ...move, step: "abort" };
  return move;
}

/** The home that serves requests now. */
export function servingHome(move: MigrationStatus | undefined, currentHome: DataHome | undefined, desiredHome: DataHome): DataHome {
  if (move === undefined) return currentHome ?? desiredHome;
  if (move.step === "flip" || move.step === "drain" || move.step === "retire") return homeOf(move.to);
  return homeOf(move.from);
}

/**
 * The silo tier whose stack and services must exist now, if any. During a
 * move the silo side (source or target) keeps running; once a move retires
 * or aborts its silo side, nothing silo is wanted unless the silo serves.
 */
export function siloTierNow(
  spec: { readonly tier: Tier },
  move: MigrationStatus | undefined,
  serving: DataHome,
): Exclude<Tier, "basic"> | undefined {
  const silo = [spec.tier, move?.to, move?.from].find((t): t is Exclude<Tier, "basic"> => t !== undefined && t !== "basic");
  if (move === undefined) return spec.tier === "basic" ? undefined : spec.tier;
  if (move.step === "retire" || move.step === "abort") return serving === "silo" ? silo : undefined;
  return silo;
}

/** A person's line about where a move stands, for the status message and `tenantctl get`. */
export function describeMove(move: MigrationStatus): string {
  const counts = move.counts;
  const copied = counts
    ? ` (${counts.orders.copied + counts.products.copied} items copied, ${counts.orders.applied + counts.products.applied} changes applied)`
    : "";
  return `moving ${move.from} -> ${move.to}: ${move.step}${copied}`;
}
