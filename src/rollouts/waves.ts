import type { Unit, WaveStep } from "./model.js";

/**
 * How a rollout cuts the fleet into waves, as pure functions.
 *
 * ROLLOUT_WAVES lists, wave by wave, how many units the rollout has reached
 * once that wave starts: a count ("1") or a share of the silo tenants
 * ("10%"), each more than the one before. "1,10%,50%,100%" is a canary of
 * one tenant, then a tenth of the fleet, half, and all. A list that does not
 * reach 100% gets a last wave with the rest. A step that would add no one
 * (10% of 4 tenants after a canary of 1) is left out.
 */
export const DEFAULT_WAVES = "1,10%,50%,100%";

export class WaveSpecError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "WaveSpecError";
  }
}

/** Parses ROLLOUT_WAVES; the error names the entry and the fix. */
export function parseWaves(spec: string): WaveStep[] {
  const entries = spec
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (entries.length === 0) throw new WaveSpecError(`must list at least one wave, such as ${DEFAULT_WAVES}`);
  if (entries.length > 20) throw new WaveSpecError("must list at most 20 waves");
  const steps = entries.map((entry): WaveStep => {
    const percent = /^(\d{1,3})%$/.exec(entry);
    if (percent !== null) {
      const p = Number(percent[1]);
      if (p < 1 || p > 100) throw new WaveSpecError(`"${entry}": a share must be 1% to 100%`);
      return { kind: "percent", p };
    }
    if (/^\d{1,6}$/.test(entry) && Number(entry) >= 1) return { kind: "count", n: Number(entry) };
    throw new WaveSpecError(`"${entry}" is neither a number of tenants (such as 1) nor a share (such as 10%); use e.g. ${DEFAULT_WAVES}`);
  });
  // Counts and shares are only comparable for a given fleet, but two of the same kind can be checked now.
  for (let i = 1; i < steps.length; i++) {
    const [a, b] = [steps[i - 1], steps[i]];
    if (a?.kind === b?.kind && a !== undefined && b !== undefined && value(b) <= value(a))
      throw new WaveSpecError(`"${entries[i] ?? ""}" must reach more tenants than "${entries[i - 1] ?? ""}" before it`);
  }
  return steps;
}

const value = (s: WaveStep): number => (s.kind === "count" ? s.n : s.p);

/** The step back as text, for `tenantctl rollout status`. */
export function formatWaves(steps: readonly WaveStep[]): string {
  return steps.map((s) => (s.kind === "count" ? String(s.n) : `${s.p}%`)).join(",");
}

export interface UnitInfo {
  readonly key: Unit;
  /** The record's ring: lower first; none goes last. */
  readonly ring?: number;
}

/** Rollout order: ring (none last), then id, by code point so every process agrees. */
export function orderUnits(units: readonly UnitInfo[]): UnitInfo[] {
  return [...units].sort((a, b) => {
    const ra = a.ring ?? Number.POSITIVE_INFINITY;
    const rb = b.ring ?? Number.POSITIVE_INFINITY;
    if (ra !== rb) return ra < rb ? -1 : 1;
    return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
  });
}

/**
 * The waves of a rollout over the silo tenants it changes, plus the pool
 * when it changes too. The pool serves every basic tenant, so it waits
 * until the first ring has the new version: it forms its own wave right
 * after the wave that completes the lowest ring given on any record (after
 * the first wave when no record has a ring). With no silo tenant to
 * change, the pool is the only wave.
 */
export function formWaves(silo: readonly UnitInfo[], steps: readonly WaveStep[], pool: Unit | undefined): Unit[][] {
  const ordered = orderUnits(silo);
  const n = ordered.length;
  const waves: Unit[][] = [];
  let reached = 0;
  for (const step of [...steps, { kind: "percent", p: 100 } as const]) {
    const target = Math.min(n, step.kind === "count" ? step.n : Math.ceil((step.p * n) / 100));
    if (target <= reached) continue;
    waves.push(ordered.slice(reached, target).map((u) => u.key));
    reached = target;
  }
  if (pool === undefined) return waves;
  const rings = ordered.flatMap((u) => (u.ring === undefined ? [] : [u.ring]));
  // Index (in rollout order) of the last tenant of the first ring.
  const lastOfFirstRing = rings.length === 0 ? 0 : ordered.filter((u) => u.ring === Math.min(...rings)).length - 1;
  let covered = 0;
  let after = 0;
  for (const [i, wave] of waves.entries()) {
    covered += wave.length;
    if (covered > lastOfFirstRing) {
      after = i + 1;
      break;
    }
  }
  return [...waves.slice(0, after), [pool], ...waves.slice(after)];
}
