import { APP_NAMES } from "../src/tenants/record.js";
import { premiumClusterName, serviceName } from "../src/tiers/naming.js";
import type { BenchFixture } from "./fixture.js";
import { sleep } from "./fixture.js";

export const TIERS = ["basic", "advanced", "premium"] as const;
export type Tier = (typeof TIERS)[number];

/** A new tenant record as SBT would write it. */
export function tenantRecord(tenantId: string, tier: Tier): Record<string, unknown> {
  return { tenantId, tier, tenantName: `Bench ${tenantId}`, tenantRegistrationId: `reg-${tenantId}` };
}

/** The tenant's ECS services as the scheduler's model sees them (none for basic). */
export function tenantServices(fx: BenchFixture, tenantId: string, tier: Tier) {
  if (tier === "basic") return [];
  const prefix = fx.config.namePrefix;
  const cluster = tier === "advanced" ? fx.config.advancedCluster : premiumClusterName(prefix, tenantId);
  const names = new Set(APP_NAMES.map((app) => serviceName(prefix, tenantId, app)));
  return fx.cloud.control.snapshot().services.filter((s) => s.cluster === cluster && names.has(s.name) && s.status === "ACTIVE");
}

/**
 * What the scheduler's timing alone implies for a fresh deployment of
 * `desiredCount` tasks, in real milliseconds: the first task after
 * startDelayMs, each further one stepMs later, divided by the speed.
 */
export function impliedDeployMs(fx: BenchFixture, tier: Tier, desiredCount = 1): number {
  if (tier === "basic" || desiredCount === 0) return 0;
  const t = fx.settings.timing;
  return (t.startDelayMs + (desiredCount - 1) * t.stepMs) / fx.settings.speed;
}

/**
 * The pooled services (basic tier) are created by the first resync: wait until
 * every one has completed its rollout and the controller has gone quiet for
 * longer than a requeue, so measurements start on an idle, converged controller.
 */
export async function convergePool(fx: BenchFixture, timeoutMs = 60_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  const expected = APP_NAMES.length;
  for (;;) {
    const pool = fx.cloud.control.snapshot().services.filter((s) => s.cluster === fx.config.poolCluster && s.status === "ACTIVE");
    if (pool.length === expected && pool.every((s) => s.deployments[0]?.rolloutState === "COMPLETED" && s.deployments.length === 1)) break;
    if (performance.now() > deadline) throw new Error("the pooled services did not converge");
    await sleep(50);
  }
  await fx.waitQuiet(Math.round(fx.settings.pollMs * 1.5));
}
