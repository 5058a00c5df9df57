import { breakdown, medianBreakdown, minusBreakdown, type CallBreakdown } from "./breakdown.js";
import type { BenchFixture } from "./fixture.js";
import { tenantRecord, type Tier } from "./tenants.js";

/**
 * API calls of each step of a tenant's life, one tenant alone in the table
 * (earlier ones are offboarded and deleted first), so that a resync's cost
 * can be attributed to it: the resync is measured with the tenant, and again
 * with no tenant at all, and the difference is the tenant's share.
 */
export const OPERATIONS = ["onboard", "resync", "scale", "version", "offboard", "deleteRecord"] as const;
export type Operation = (typeof OPERATIONS)[number];

export interface OperationSample {
  readonly tier: Tier;
  readonly tenantId: string;
  readonly ms: Readonly<Record<Operation, number>>;
  readonly calls: Readonly<Record<Operation, CallBreakdown>>;
  /** The resync with no tenant record: the pool's reconcile, the Scan and the orphan inventory. */
  readonly emptyResync: CallBreakdown;
}

export interface OperationSummary {
  readonly tier: Tier;
  readonly samples: number;
  readonly calls: Readonly<Record<Operation, CallBreakdown>>;
  readonly emptyResync: CallBreakdown;
}

const QUIET_MS = 300;

export async function measureLifecycle(fx: BenchFixture, tenantId: string, tier: Tier): Promise<OperationSample> {
  const emptyResync = await resync(fx, 1);

  const step = async (change: () => Promise<void>, settled: () => Promise<unknown>) => {
    await fx.waitQuiet(QUIET_MS);
    const window = await fx.window();
    await change();
    await settled();
    await fx.waitQuiet(QUIET_MS);
    const w = await window.end();
    return { calls: breakdown(w), ms: w.ms };
  };
  const hashChangedAndReady = async (previous: string | undefined) =>
    fx.waitForStatus(tenantId, (s) => s.phase === "Ready" && s.observedSpecHash !== previous, "to be Ready with the new spec");
  const hash = async () => (await fx.status(tenantId))?.observedSpecHash;

  const onboard = await step(
    () => fx.put(tenantRecord(tenantId, tier)),
    () => fx.waitForStatus(tenantId, (s) => s.phase === "Ready", "to be Ready"),
  );

  const resyncStarted = performance.now();
  const withTenant = await resync(fx, 2);
  const resyncMs = performance.now() - resyncStarted;

  let before = await hash();
  const scale = await step(
    () => fx.update(tenantId, { apps: { orders: { desiredCount: 2 } } }),
    () => hashChangedAndReady(before),
  );
  before = await hash();
  const version = await step(
    () => fx.update(tenantId, { apps: { orders: { desiredCount: 2, version: "1.0.1" } } }),
    () => hashChangedAndReady(before),
  );
  const offboard = await step(
    () => fx.update(tenantId, { sbtaws_active: false }),
    () => fx.waitForStatus(tenantId, (s) => s.phase === "Deprovisioned", "to be Deprovisioned"),
  );
  const reconciles = await fx.reconciles();
  const deleteRecord = await step(
    () => fx.remove(tenantId),
    () => fx.waitReconciles(reconciles, 1),
  );

  return {
    tier,
    tenantId,
    emptyResync,
    ms: {
      onboard: onboard.ms,
      resync: resyncMs,
      scale: scale.ms,
      version: version.ms,
      offboard: offboard.ms,
      deleteRecord: deleteRecord.ms,
    },
    calls: {
      onboard: onboard.calls,
      resync: minusBreakdown(withTenant, emptyResync),
      scale: scale.calls,
      version: version.calls,
      offboard: offboard.calls,
      deleteRecord: deleteRecord.calls,
    },
  };
}

/** A full resync (resyncNow), counted until its `keys` reconciles are done and the controller is quiet. */
async function resync(fx: BenchFixture, keys: number): Promise<CallBreakdown> {
  await fx.waitQuiet(QUIET_MS);
  const window = await fx.window();
  const from = await fx.reconciles();
  if (!(await fx.controller.manager.resyncNow())) throw new Error("resync did not run (not leader?)");
  await fx.waitReconciles(from, keys);
  await fx.waitQuiet(QUIET_MS);
  return breakdown(await window.end());
}

export function summarizeLifecycles(tier: Tier, samples: readonly OperationSample[]): OperationSummary {
  const calls = Object.fromEntries(OPERATIONS.map((op) => [op, medianBreakdown(samples.map((s) => s.calls[op]))])) as Record<
    Operation,
    CallBreakdown
  >;
  return { tier, samples: samples.length, calls, emptyResync: medianBreakdown(samples.map((s) => s.emptyResync)) };
}
