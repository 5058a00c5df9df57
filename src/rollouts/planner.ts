import type { Catalogue } from "../apps/catalogue.js";
import type { Assignment, Rollout, RolloutSettings, RolloutState, Unit, UnitDone, UnitFailure, Wave } from "./model.js";
import { formWaves, type UnitInfo } from "./waves.js";

/**
 * The rollout planner: pure decisions on a rollout, from its state, what
 * the tenant reconciles reported and the time. The executor
 * (src/operator/rollout-executor.ts) reads and writes the rollout item,
 * enqueues units and publishes the wave events; everything it decides
 * comes from here.
 *
 * A unit's catalogue (assignment): the new one once a wave has reached it,
 * its baseline before that, its baseline again if it failed or the rollout
 * was aborted; everyone's the new one once the rollout is Completed.
 */

/** What a tenant reconcile last said about a unit, with the catalogue it reconciled against. */
export interface Report {
  /** Epoch ms. */
  readonly at: number;
  /** The catalogue it was reconciled against (any, for notApplicable). */
  readonly hash: string;
  /** healthy: converged and steady; waiting: still converging; notApplicable: nothing of its own to roll out any more. */
  readonly outcome: "healthy" | "waiting" | "notApplicable";
}

/** The wave event the executor publishes (detail-type tenant-operator_rolloutWave). */
export interface WaveEvent {
  readonly kind: "WaveStarted" | "WaveCompleted" | "Halted" | "Completed";
  /** 1-based; 0 for a rollout-level event with no wave. */
  readonly wave: number;
  readonly units: readonly Unit[];
  readonly reason: string;
}

export interface Step {
  readonly rollout: Rollout;
  readonly events: readonly WaveEvent[];
  /** Units to reconcile now: a wave started, or its bake check began. */
  readonly enqueue: readonly Unit[];
  /** True when anything changed that must be written. */
  readonly changed: boolean;
}

export function assignment(r: Rollout, unit: Unit): Assignment {
  if (r.state === "Completed" && r.aborted !== true) return { hash: r.to, role: "settled" };
  const base = r.baseline[unit] ?? r.from;
  if (r.failed[unit] !== undefined) return { hash: base, role: "failed" };
  if (r.aborted === true) return { hash: base, role: "settled" };
  if (startedUnits(r).has(unit)) return { hash: r.to, role: "target" };
  return { hash: base, role: "settled" };
}

/** Every unit a started wave has reached. */
export function startedUnits(r: Rollout): Set<Unit> {
  return new Set(r.waves.filter((w) => w.startedAt !== undefined).flatMap((w) => w.units));
}

/** Units the rollout knows by name: a superseding rollout carries their baselines over. */
export function knownUnits(r: Rollout): Set<Unit> {
  return new Set([...r.waves.flatMap((w) => w.units), ...Object.keys(r.baseline)]);
}

/**
 * Where a unit stands for a rollout that supersedes this one: what it was
 * confirmed running. A unit in flight (reached, not yet deployed) returns to
 * its baseline, so the next rollout starts from known ground.
 */
export function settledHash(r: Rollout, unit: Unit): string {
  if (r.state === "Completed" && r.aborted !== true) return r.to;
  const base = r.baseline[unit] ?? r.from;
  if (r.aborted === true || r.failed[unit] !== undefined) return base;
  const done = r.done[unit];
  return done !== undefined && done.skipped !== true ? r.to : base;
}

export interface NewRollout {
  readonly id: string;
  readonly now: Date;
  readonly target: { readonly hash: string; readonly catalogue: Catalogue };
  /** Silo tenants the new catalogue changes, measured against each one's settled catalogue. */
  readonly affected: readonly UnitInfo[];
  /** The pool's key when the pool's apps change, else undefined. */
  readonly pool: Unit | undefined;
  /** Units that do not change (counted for the status). */
  readonly unaffected: number;
  readonly settings: RolloutSettings;
}

/** Where every unit starts a rollout that supersedes `previous`: its default, and the units that differ from it. */
export function baselineAfter(previous: Rollout): { readonly from: string; readonly baseline: Record<Unit, string> } {
  const from = previous.state === "Completed" && previous.aborted !== true ? previous.to : previous.from;
  const baseline: Record<Unit, string> = {};
  for (const unit of knownUnits(previous)) {
    const hash = settledHash(previous, unit);
    if (hash !== from) baseline[unit] = hash;
  }
  return { from, baseline };
}

/**
 * A rollout to a new catalogue. It supersedes `previous` in order: units
 * confirmed on the previous rollout's catalogue keep it as their baseline,
 * units in flight return to theirs, and the new waves start from the first.
 */
export function createRollout(previous: Rollout, n: NewRollout): Rollout {
  const { from, baseline } = baselineAfter(previous);
  const at = n.now.toISOString();
  const waves = formWaves(n.affected, n.settings.waves, n.pool).map((units): Wave => ({ units }));
  const hashes = new Set([from, n.target.hash, ...Object.values(baseline)]);
  const catalogues: Record<string, Catalogue> = { [n.target.hash]: n.target.catalogue };
  for (const h of hashes) {
    const c = previous.catalogues[h];
    if (c !== undefined) catalogues[h] ??= c;
  }
  const nothing = waves.length === 0;
  return {
    id: n.id,
    version: previous.version + 1,
    state: nothing ? "Completed" : "Progressing",
    reason: nothing ? "the new catalogue changes no tenant and not the pool" : "starting",
    from,
    to: n.target.hash,
    catalogues,
    baseline,
    waves,
    done: {},
    failed: {},
    forgiven: 0,
    unaffected: n.unaffected,
    createdAt: at,
    updatedAt: at,
  };
}

/** Failures that count against the budget now. */
export function countedFailures(r: Rollout): number {
  return Object.keys(r.failed).length - r.forgiven;
}

/**
 * One step of the rollout at `now`: units reported healthy are done, units
 * past the timeout have failed, a deployed wave bakes and is then checked,
 * the budget may halt it, and the next wave starts when the last one baked.
 */
export function advance(r: Rollout, now: Date, reports: ReadonlyMap<Unit, Report>, settings: RolloutSettings): Step {
  if (r.state === "Completed" || r.aborted === true) return { rollout: r, events: [], enqueue: [], changed: false };
  const t = now.getTime();
  const at = now.toISOString();
  const done: Record<Unit, UnitDone> = { ...r.done };
  const failed: Record<Unit, UnitFailure> = { ...r.failed };
  const waves: Wave[] = [...r.waves];
  const events: WaveEvent[] = [];
  const enqueue: Unit[] = [];
  let changed = false;
  let state: RolloutState = r.state;
  let reason = r.reason;

  for (const [i, wave] of waves.entries()) {
    if (wave.startedAt === undefined) continue;
    const started = Date.parse(wave.startedAt);
    for (const unit of wave.units) {
      if (done[unit] !== undefined || failed[unit] !== undefined) continue;
      const report = reports.get(unit);
      if (
        report !== undefined &&
        report.at >= started &&
        (report.outcome === "notApplicable" || (report.outcome === "healthy" && report.hash === r.to))
      ) {
        done[unit] = { at, ...(report.outcome === "notApplicable" ? { skipped: true } : {}) };
        changed = true;
      } else if (t - started > settings.timeoutMs) {
        failed[unit] = {
          at,
          reason: `not healthy on the new catalogue within ${Math.round(settings.timeoutMs / 1000)} s of its wave's start (controller-side timeout)`,
        };
        changed = true;
      }
    }
    if (wave.deployedAt === undefined && wave.units.every((u) => done[u] !== undefined || failed[u] !== undefined)) {
      waves[i] = { ...wave, deployedAt: at };
      if (state === "Progressing")
        reason = `wave ${i + 1} of ${waves.length} deployed; baking until ${new Date(t + settings.bakeMs).toISOString()}`;
      changed = true;
    }
  }

  // The wave under way: bake, then check every deployed unit is still healthy.
  const current = lastStarted(waves);
  if (current !== undefined) {
    const [i, wave] = current;
    if (wave.deployedAt !== undefined && wave.bakedAt === undefined) {
      const bakeEnd = Date.parse(wave.deployedAt) + settings.bakeMs;
      const deployed = wave.units.filter((u) => done[u] !== undefined && done[u]?.skipped !== true && failed[u] === undefined);
      let checkedAt = wave.checkedAt;
      if (checkedAt === undefined && t >= bakeEnd) {
        checkedAt = at;
        waves[i] = { ...wave, checkedAt };
        enqueue.push(...deployed);
        if (state === "Progressing") reason = `wave ${i + 1} of ${waves.length} baked; checking its tenants are still healthy`;
        changed = true;
      }
      if (checkedAt !== undefined) {
        const checked = Date.parse(checkedAt);
        let pending = 0;
        for (const unit of deployed) {
          const report = reports.get(unit);
          if (
            report !== undefined &&
            report.at >= checked &&
            (report.outcome === "notApplicable" || (report.outcome === "healthy" && report.hash === r.to))
          )
            continue;
          if (t - checked > settings.timeoutMs) {
            failed[unit] = {
              at,
              reason: `not seen healthy within ${Math.round(settings.timeoutMs / 1000)} s after its wave's bake (controller-side timeout)`,
            };
            changed = true;
          } else pending += 1;
        }
        if (pending === 0) {
          waves[i] = { ...(waves[i] as Wave), bakedAt: at };
          events.push({ kind: "WaveCompleted", wave: i + 1, units: wave.units, reason: `wave ${i + 1} deployed and baked` });
          changed = true;
        }
      }
    }
  }

  const counted = Object.keys(failed).length - r.forgiven;
  if ((state === "Progressing" || state === "Paused") && counted > settings.maxFailures) {
    state = "Halted";
    reason = `halted: ${counted} failed unit(s) exceed the failure budget of ${settings.maxFailures} (ROLLOUT_MAX_FAILURES)`;
    events.push({ kind: "Halted", wave: current === undefined ? 0 : current[0] + 1, units: Object.keys(failed), reason });
    changed = true;
  }

  if (state === "Progressing") {
    const last = lastStarted(waves);
    if (last === undefined || last[1].bakedAt !== undefined) {
      const next = waves.findIndex((w) => w.startedAt === undefined);
      if (next === -1) {
        state = "Completed";
        reason = `every wave deployed and baked; ${Object.keys(failed).length} unit(s) failed and stayed on their previous catalogue`;
        events.push({ kind: "Completed", wave: waves.length, units: [], reason });
      } else {
        const wave = waves[next] as Wave;
        waves[next] = { ...wave, startedAt: at };
        enqueue.push(...wave.units);
        reason = `wave ${next + 1} of ${waves.length} deploying`;
        events.push({ kind: "WaveStarted", wave: next + 1, units: wave.units, reason });
      }
      changed = true;
    }
  }
  if (!changed) return { rollout: r, events, enqueue, changed };
  return {
    rollout: { ...r, state, reason, waves, done, failed, version: r.version + 1, updatedAt: at },
    events,
    enqueue,
    changed,
  };
}

function lastStarted(waves: readonly Wave[]): [number, Wave] | undefined {
  for (let i = waves.length - 1; i >= 0; i--) {
    const w = waves[i];
    if (w?.startedAt !== undefined) return [i, w];
  }
  return undefined;
}

/**
 * A unit failed on the new catalogue (its deployment FAILED or was rolled
 * back by ECS's circuit breaker). Undefined when there is nothing to record:
 * the unit is not a target of this rollout, or its failure is known.
 */
export function recordFailure(r: Rollout, unit: Unit, reason: string, now: Date): Rollout | undefined {
  if (assignment(r, unit).role !== "target") return undefined;
  const { [unit]: _done, ...done } = r.done;
  const at = now.toISOString();
  return { ...r, done, failed: { ...r.failed, [unit]: { at, reason } }, version: r.version + 1, updatedAt: at };
}

/** The failure was announced to SBT (the tenant's provisionFailure). */
export function recordAnnounced(r: Rollout, unit: Unit, now: Date): Rollout | undefined {
  const f = r.failed[unit];
  if (f === undefined || f.announced === true) return undefined;
  return { ...r, failed: { ...r.failed, [unit]: { ...f, announced: true } }, version: r.version + 1, updatedAt: now.toISOString() };
}

export type Command = "pause" | "resume" | "abort";

export class CommandRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CommandRefused";
  }
}

/**
 * `tenantctl rollout pause|resume|abort`. Pause holds the next wave (the one
 * under way finishes); resume goes on, forgiving the failures so far (a
 * resumed aborted rollout starts again from its first wave); abort returns
 * every unit to its baseline and halts.
 */
export function command(r: Rollout, cmd: Command, now: Date, by: string): Rollout {
  const at = now.toISOString();
  const next = (patch: Partial<Rollout>): Rollout => ({ ...r, ...patch, version: r.version + 1, updatedAt: at });
  if (r.state === "Completed" && r.aborted !== true)
    throw new CommandRefused(`rollout ${r.id} is Completed; there is nothing to ${cmd} (a catalogue change starts the next one)`);
  switch (cmd) {
    case "pause":
      if (r.state !== "Progressing")
        throw new CommandRefused(`rollout ${r.id} is ${r.state}, not Progressing; only a progressing rollout pauses`);
      return next({ state: "Paused", reason: `paused by ${by}: no new wave starts until resumed` });
    case "resume":
      if (r.aborted === true)
        return next({
          state: "Progressing",
          aborted: false,
          reason: `resumed by ${by} after an abort: starting again from the first wave`,
          waves: r.waves.map((w) => ({ units: w.units })),
          done: {},
          failed: {},
          forgiven: 0,
        });
      if (r.state === "Progressing") throw new CommandRefused(`rollout ${r.id} is already Progressing`);
      return next({
        state: "Progressing",
        reason: `resumed by ${by}; ${Object.keys(r.failed).length} earlier failure(s) no longer count against the budget`,
        forgiven: Object.keys(r.failed).length,
      });
    case "abort":
      if (r.aborted === true) throw new CommandRefused(`rollout ${r.id} is already aborted`);
      return next({ state: "Halted", aborted: true, reason: `aborted by ${by}: every tenant returns to its previous catalogue` });
  }
}

/** Counts for `tenantctl rollout status` and the wave events. */
export function progress(r: Rollout): { readonly total: number; readonly done: number; readonly failed: number; readonly pending: number } {
  const units = r.waves.flatMap((w) => w.units);
  const done = units.filter((u) => r.done[u] !== undefined && r.failed[u] === undefined).length;
  const failed = units.filter((u) => r.failed[u] !== undefined).length;
  return { total: units.length, done, failed, pending: units.length - done - failed };
}
