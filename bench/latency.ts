import { breakdown, type CallBreakdown } from "./breakdown.js";
import type { BenchFixture } from "./fixture.js";
import { impliedDeployMs, tenantRecord, tenantServices, type Tier } from "./tenants.js";

/**
 * Latency of one onboarding on an idle controller, split where the time goes:
 * the controller noticing the record, ECS (the scheduler's simulated rollout),
 * and the controller noticing the rollout finished and writing Ready.
 * All times are real milliseconds from the PutItem's response.
 */
export interface LatencySample {
  readonly tier: Tier;
  readonly tenantId: string;
  /** Round trip of the bench's own PutItem (not counted in the rest). */
  readonly putMs: number;
  /** To the start of the controller's first ECS call. */
  readonly firstEcsMs: number;
  /** To the completion of the controller's last status write (the Ready one). */
  readonly readyWrittenMs: number;
  /** To the bench's GetItem (ConsistentRead, every 20 ms) first seeing Ready. */
  readonly readyPolledMs: number;
  /** From the first CreateService to the last rollout COMPLETED, per the scheduler's model (0 for basic). */
  readonly deployMs: number;
  /** What the scheduler's timing implies for one rollout (startDelay + steps) / speed. */
  readonly impliedDeployMs: number;
  /** From the last rollout COMPLETED to Ready written: the controller's detection delay. */
  readonly detectMs: number;
  /** readyWrittenMs - deployMs: time the controller itself adds. */
  readonly overheadMs: number;
  readonly calls: CallBreakdown;
}

const QUIET_MS = 300;

export async function measureOnboarding(fx: BenchFixture, tenantId: string, tier: Tier): Promise<LatencySample> {
  await fx.waitQuiet(QUIET_MS);
  let firstEcs: number | undefined;
  let lastStatusWrite: number | undefined;
  const off = fx.onCall((e, at) => {
    if (e.kind !== "call") return;
    if (e.service === "ecs" && firstEcs === undefined) firstEcs = at - e.durationMs;
    // The tenant store's status write; the lease's renewals are kept out by a long lease.
    if (e.service === "dynamodb" && e.outcome === "ok" && (e.operation === "Update" || e.operation === "UpdateItem")) lastStatusWrite = at;
  });
  try {
    const window = await fx.window();
    const before = performance.now();
    await fx.put(tenantRecord(tenantId, tier));
    const put = performance.now();
    await fx.waitForStatus(tenantId, (s) => s.phase === "Ready", "to be Ready", 60_000, 20);
    const polled = performance.now();
    // Lets the Ready write's own response (and anything after it) arrive.
    await fx.waitQuiet(QUIET_MS);
    const calls = breakdown(await window.end());

    const services = tenantServices(fx, tenantId, tier);
    let deployMs = 0;
    let doneAt = put;
    if (services.length > 0) {
      const created = Math.min(...services.map((s) => s.createdAt));
      const completed = Math.max(...services.map((s) => s.deployments[0]?.updatedAt ?? s.createdAt));
      deployMs = (completed - created) / fx.settings.speed;
      doneAt = fx.realTimeOfSim(completed);
    }
    const written = lastStatusWrite ?? polled;
    return {
      tier,
      tenantId,
      putMs: put - before,
      firstEcsMs: firstEcs === undefined ? Number.NaN : firstEcs - put,
      readyWrittenMs: written - put,
      readyPolledMs: polled - put,
      deployMs,
      impliedDeployMs: impliedDeployMs(fx, tier),
      detectMs: services.length > 0 ? written - doneAt : Number.NaN,
      overheadMs: written - put - deployMs,
      calls,
    };
  } finally {
    off();
  }
}
