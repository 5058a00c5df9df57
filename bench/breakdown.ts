import type { CallCounts } from "../src/providers/call-counter.js";
import { median, medianCounts } from "./stats.js";
import type { WindowCounts } from "./fixture.js";

/** A window's calls, split the way the report shows them. */
export interface CallBreakdown {
  /** ECS requests that reached the endpoint (the scheduler's count), by action. */
  readonly ecs: Record<string, number>;
  /** ECS logical calls the controller made (CallCounter "call"), by action, all outcomes. */
  readonly ecsCalls: Record<string, number>;
  /** ECS HTTP attempts the controller made (CallCounter "attempt"), by action; should equal `ecs`. */
  readonly ecsAttempts: Record<string, number>;
  readonly ecsThrottledAttempts: number;
  /** Throttled ECS attempts by action. */
  readonly ecsThrottledByAction: Record<string, number>;
  readonly ecsThrottledCalls: number;
  /**
   * Logical calls to every other service, by service then operation:
   * dynamodb (tenant table, lease table), streams (background polling of the
   * tenants table's stream, mostly independent of the work done),
   * eventbridge, cloudformation...
   */
  readonly other: Record<string, Record<string, number>>;
  readonly reconciles: number;
  /** Whether the scheduler and the controller agree on every ECS action's count. */
  readonly crossCheck: boolean;
}

export function breakdown(w: WindowCounts): CallBreakdown {
  const calls = w.controller.calls;
  const attempts = w.controller.attempts;
  const ecsAttempts = byOperation(attempts, "ecs");
  return {
    ecs: w.ecsReceived,
    ecsCalls: byOperation(calls, "ecs"),
    ecsAttempts,
    ecsThrottledAttempts: countOutcome(attempts, "ecs", "throttled"),
    ecsThrottledByAction: byOperation(attempts, "ecs", "throttled"),
    ecsThrottledCalls: countOutcome(calls, "ecs", "throttled"),
    other: otherServices(calls),
    reconciles: w.reconciles,
    crossCheck: sameCounts(w.ecsReceived, ecsAttempts),
  };
}

function byOperation(counts: CallCounts, service: string, outcome?: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [key, n] of Object.entries(counts)) {
    const [s, op, o] = key.split(":");
    if (s !== service || op === undefined || (outcome !== undefined && o !== outcome)) continue;
    out[op] = (out[op] ?? 0) + n;
  }
  return out;
}

function otherServices(counts: CallCounts): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  for (const [key, n] of Object.entries(counts)) {
    const [s, op] = key.split(":");
    if (s === undefined || op === undefined || s === "ecs") continue;
    const ops = (out[s] ??= {});
    ops[op] = (ops[op] ?? 0) + n;
  }
  return out;
}

function countOutcome(counts: CallCounts, service: string, outcome: string): number {
  let sum = 0;
  for (const [key, n] of Object.entries(counts)) {
    const [s, , o] = key.split(":");
    if (s === service && o === outcome) sum += n;
  }
  return sum;
}

function sameCounts(a: Readonly<Record<string, number>>, b: Readonly<Record<string, number>>): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const k of keys) if ((a[k] ?? 0) !== (b[k] ?? 0)) return false;
  return true;
}

/** Subtracts a baseline, per key; keys that end at 0 are dropped. */
export function minusCounts(a: Readonly<Record<string, number>>, b: Readonly<Record<string, number>>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const d = (a[k] ?? 0) - (b[k] ?? 0);
    if (d !== 0) out[k] = d;
  }
  return out;
}

/** One breakdown minus another (a measured resync minus the empty resync), field by field. */
export function minusBreakdown(a: CallBreakdown, b: CallBreakdown): CallBreakdown {
  const other: Record<string, Record<string, number>> = {};
  for (const s of new Set([...Object.keys(a.other), ...Object.keys(b.other)])) {
    const d = minusCounts(a.other[s] ?? {}, b.other[s] ?? {});
    if (Object.keys(d).length > 0) other[s] = d;
  }
  return {
    ecs: minusCounts(a.ecs, b.ecs),
    ecsCalls: minusCounts(a.ecsCalls, b.ecsCalls),
    ecsAttempts: minusCounts(a.ecsAttempts, b.ecsAttempts),
    ecsThrottledAttempts: a.ecsThrottledAttempts - b.ecsThrottledAttempts,
    ecsThrottledByAction: minusCounts(a.ecsThrottledByAction, b.ecsThrottledByAction),
    ecsThrottledCalls: a.ecsThrottledCalls - b.ecsThrottledCalls,
    other,
    reconciles: a.reconciles - b.reconciles,
    crossCheck: a.crossCheck && b.crossCheck,
  };
}

/** Per-key medians over samples of the same operation. */
export function medianBreakdown(samples: readonly CallBreakdown[]): CallBreakdown {
  if (samples.length === 0) throw new RangeError("median of no breakdowns");
  const services = new Set(samples.flatMap((s) => Object.keys(s.other)));
  const other: Record<string, Record<string, number>> = {};
  for (const s of [...services].sort()) other[s] = medianCounts(samples.map((x) => x.other[s] ?? {}));
  return {
    ecs: medianCounts(samples.map((s) => s.ecs)),
    ecsCalls: medianCounts(samples.map((s) => s.ecsCalls)),
    ecsAttempts: medianCounts(samples.map((s) => s.ecsAttempts)),
    ecsThrottledAttempts: median(samples.map((s) => s.ecsThrottledAttempts)),
    ecsThrottledByAction: medianCounts(samples.map((s) => s.ecsThrottledByAction)),
    ecsThrottledCalls: median(samples.map((s) => s.ecsThrottledCalls)),
    other,
    reconciles: median(samples.map((s) => s.reconciles)),
    crossCheck: samples.every((s) => s.crossCheck),
  };
}
