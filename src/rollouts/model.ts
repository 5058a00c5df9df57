import { createHash } from "node:crypto";
import type { Catalogue } from "../apps/catalogue.js";
import { canonicalJson } from "../tenants/record.js";

/**
 * Fleet rollouts (docs/design.md "Contract: fleet rollouts"): the data the
 * pure planner (planner.ts) works on. A rollout moves the fleet from one app
 * catalogue to another in waves; it lives as one item in the operator table,
 * so a restart or a new leader continues it where it stood.
 */

export const ROLLOUT_STATES = ["Progressing", "Paused", "Halted", "Completed"] as const;
export type RolloutState = (typeof ROLLOUT_STATES)[number];

/** A rollout unit: a silo tenant's id, or the pool's reconcile key (":pool", which no tenant id can be). */
export type Unit = string;

export interface Wave {
  /** Tenant ids (and the pool's key), in rollout order. */
  readonly units: readonly Unit[];
  /** When its units were switched to the new catalogue. */
  readonly startedAt?: string;
  /** When every unit was deployed (or had failed): the bake starts. */
  readonly deployedAt?: string;
  /** When the bake ended and its units were asked to show they are still healthy. */
  readonly checkedAt?: string;
  /** When every deployed unit was seen healthy after the bake: the next wave may start. */
  readonly bakedAt?: string;
}

export interface UnitDone {
  readonly at: string;
  /** The unit turned out not to need the rollout (offboarded, moved to basic, record made invalid): it counts as done. */
  readonly skipped?: boolean;
}

export interface UnitFailure {
  readonly at: string;
  readonly reason: string;
  /** The tenant's provisionFailure naming the version was sent. */
  readonly announced?: boolean;
}

export interface Rollout {
  readonly id: string;
  /** Bumped by every write: writes are conditional on it (the controller and `tenantctl rollout` both write). */
  readonly version: number;
  readonly state: RolloutState;
  /** Why it is in its state, for people. */
  readonly reason: string;
  /** `tenantctl rollout abort`: every unit is back on its baseline; state Halted. */
  readonly aborted?: boolean;
  /** Hash of the catalogue every unit not listed in `baseline` starts from. */
  readonly from: string;
  /** Hash of the catalogue the rollout brings the fleet to (the catalogue record's). */
  readonly to: string;
  /** Every catalogue referred to, by hash. */
  readonly catalogues: Readonly<Record<string, Catalogue>>;
  /** Units whose starting catalogue is not `from` (they had reached a rollout this one superseded). */
  readonly baseline: Readonly<Record<Unit, string>>;
  readonly waves: readonly Wave[];
  readonly done: Readonly<Record<Unit, UnitDone>>;
  readonly failed: Readonly<Record<Unit, UnitFailure>>;
  /** Failures that no longer count against the budget: those before the last resume. */
  readonly forgiven: number;
  /** Units the new catalogue does not change (pinned versions, nothing of theirs differs). */
  readonly unaffected: number;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** How rollouts proceed (config ROLLOUT_*). */
export interface RolloutSettings {
  readonly waves: readonly WaveStep[];
  /** How long a deployed wave must stay healthy before the next starts. */
  readonly bakeMs: number;
  /** Failed units (since the last resume) that the rollout tolerates; one more halts it. */
  readonly maxFailures: number;
  /** A unit not healthy this long after its wave started (or its bake check began) has failed. */
  readonly timeoutMs: number;
}

/** One entry of ROLLOUT_WAVES: how many units the rollout has reached once the wave starts. */
export type WaveStep = { readonly kind: "count"; readonly n: number } | { readonly kind: "percent"; readonly p: number };

/** A unit's part in the current rollout, as the tenant reconcile sees it. */
export type Role =
  /** Not reached, or the rollout is over: it runs its baseline (or, once Completed, the new catalogue). */
  | "settled"
  /** Reached by a wave: it runs the new catalogue. */
  | "target"
  /** Failed in this rollout: back on its baseline. */
  | "failed";

export interface Assignment {
  /** Hash of the catalogue the unit runs now. */
  readonly hash: string;
  readonly role: Role;
}

/** Hash of a validated catalogue: equal content, equal hash, whatever the key order. */
export function catalogueHash(catalogue: Catalogue): string {
  return createHash("sha256").update(canonicalJson(catalogue)).digest("hex").slice(0, 16);
}

/** The rollout item of a fleet that never had one: everything on `catalogue`, nothing to do. */
export function initialRollout(catalogue: Catalogue, now: Date): Rollout {
  const hash = catalogueHash(catalogue);
  const at = now.toISOString();
  return {
    id: "initial",
    version: 0,
    state: "Completed",
    reason: "the catalogue as first seeded",
    from: hash,
    to: hash,
    catalogues: { [hash]: catalogue },
    baseline: {},
    waves: [],
    done: {},
    failed: {},
    forgiven: 0,
    unaffected: 0,
    createdAt: at,
    updatedAt: at,
  };
}
