import { bucketFor } from "../src/localcloud/throttling.js";
import { breakdown, type CallBreakdown } from "./breakdown.js";
import { BenchFixture, sleep, type BenchSettings, type FixtureOptions } from "./fixture.js";
import { convergePool, tenantRecord, type Tier } from "./tenants.js";

/**
 * Many tenants written at once into an idle, converged controller (a fresh
 * local cloud per run, so runs do not share moto's state or ECS's buckets),
 * timed until the controller has written Ready for every one.
 */
export interface Mix {
  readonly basic: number;
  readonly advanced: number;
  readonly premium: number;
}

export interface ThroughputResult {
  readonly label: string;
  readonly settings: BenchSettings;
  readonly mix: Mix;
  readonly tenants: number;
  /** From the write of the first record to the controller's Ready for all (undefined if it timed out). */
  readonly allReadyMs: number | undefined;
  readonly halfReadyMs: number | undefined;
  readonly p90ReadyMs: number | undefined;
  /** Time to write the records (BatchWriteItem, 25 a call, all at once). */
  readonly writeMs: number;
  readonly readyAtEnd: number;
  /** Phases by a consistent Scan at the end. */
  readonly phases: Record<string, number>;
  readonly calls: CallBreakdown;
  /**
   * With throttling on: the least time ECS's buckets allow for the successful
   * calls this run made (full buckets at the start), and the bucket that binds.
   */
  readonly bucketBound: { readonly category: string; readonly ms: number } | undefined;
}

/** Splits n tenants as 40% basic, 40% advanced, 20% premium. */
export function defaultMix(n: number): Mix {
  const basic = Math.round(n * 0.4);
  const advanced = Math.round(n * 0.4);
  return { basic, advanced, premium: n - basic - advanced };
}

/**
 * Load balancers enough for the mix's silo tenants at the default
 * TENANTS_PER_LISTENER (90): with one, tenant 91 would wait Degraded ("add a
 * listener") and the run would time out.
 */
export function albsFor(mix: Mix): number {
  return Math.max(1, Math.ceil((mix.advanced + mix.premium) / 90));
}

export async function measureThroughput(
  label: string,
  options: FixtureOptions,
  mix: Mix,
  timeoutMs: number,
  log: (line: string) => void,
): Promise<ThroughputResult> {
  const fx = await BenchFixture.start({ albs: albsFor(mix), ...options });
  try {
    await convergePool(fx);
    const records: Record<string, unknown>[] = [];
    const add = (tier: Tier, count: number) => {
      for (let i = 0; i < count; i++) records.push(tenantRecord(`tp-${tier.slice(0, 3)}-${String(i).padStart(3, "0")}`, tier));
    };
    add("basic", mix.basic);
    add("advanced", mix.advanced);
    add("premium", mix.premium);
    const n = records.length;

    // Full buckets at the start, as for a controller that has been idle a while.
    if (options.throttling) fx.cloud.control.setThrottling(true);
    const window = await fx.window();
    const started = performance.now();
    await fx.putMany(records);
    const writeMs = performance.now() - started;

    let half: number | undefined;
    let p90: number | undefined;
    let all: number | undefined;
    let lastLog = performance.now();
    for (;;) {
      // The controller's own record of the phases it wrote: free to read, unlike a Scan.
      const ready = fx.controller.reconciler.phaseCounts().Ready;
      const now = performance.now();
      if (half === undefined && ready >= n / 2) half = now - started;
      if (p90 === undefined && ready >= n * 0.9) p90 = now - started;
      if (ready >= n) {
        all = now - started;
        break;
      }
      if (now - started > timeoutMs) break;
      if (now - lastLog > 15_000) {
        log(`  ${label}: ${ready}/${n} Ready after ${Math.round((now - started) / 1000)} s`);
        lastLog = now;
      }
      await sleep(50);
    }
    await fx.waitQuiet(300, 30_000).catch(() => undefined);
    const calls = breakdown(await window.end());
    const phases = await fx.phases();
    return {
      label,
      settings: fx.settings,
      mix,
      tenants: n,
      allReadyMs: all,
      halfReadyMs: half,
      p90ReadyMs: p90,
      writeMs,
      readyAtEnd: phases["Ready"] ?? 0,
      phases,
      calls,
      bucketBound: options.throttling ? bucketBound(calls) : undefined,
    };
  } finally {
    await fx.stop();
  }
}

/** The slowest bucket: (successful calls - burst) / rate, over ECS's documented categories. */
function bucketBound(calls: CallBreakdown): { category: string; ms: number } | undefined {
  const ok = new Map<string, { n: number; burst: number; rate: number }>();
  for (const [action, attempts] of Object.entries(calls.ecsAttempts)) {
    const bucket = bucketFor(action);
    if (bucket === undefined) continue;
    // Throttled attempts took no token; only the ones that passed did.
    const passed = attempts - (calls.ecsThrottledByAction[action] ?? 0);
    const cur = ok.get(bucket.category) ?? { n: 0, burst: bucket.spec.burst, rate: bucket.spec.rate };
    ok.set(bucket.category, { ...cur, n: cur.n + passed });
  }
  let worst: { category: string; ms: number } | undefined;
  for (const [category, b] of ok) {
    const ms = (Math.max(0, b.n - b.burst) / b.rate) * 1000;
    if (worst === undefined || ms > worst.ms) worst = { category, ms };
  }
  return worst;
}
