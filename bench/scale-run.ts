import { loadavg } from "node:os";
import { bucketFor } from "../src/localcloud/throttling.js";
import type { TenantChange } from "../src/ports.js";
import type { ReconcileResult } from "../src/reconciler/result.js";
import { APP_NAMES, hashSpec } from "../src/tenants/record.js";
import { poolServiceName, premiumClusterName, serviceName } from "../src/tiers/naming.js";
import { ECS_READS } from "./fakes/fake-ecs.js";
import { PhaseProfiler } from "./scale-profile.js";
import { composeControllers, createCloud, SETTINGS, type ScaleCloud, type ScaleController } from "./scale-fleet.js";

/**
 * One run of the scale benchmark: N controllers on one in-memory cloud
 * (bench/scale-fleet.ts), the fleet onboarded from empty, then one full
 * resync pass over the converged fleet. Measures the controller's own cost:
 * the fakes answer at once, so wall time is CPU time on this machine, and
 * the API floors are computed from the calls counted.
 */

export const SCALE_TIERS = ["basic", "advanced", "premium"] as const;
export type ScaleTier = (typeof SCALE_TIERS)[number];
export type Mix = Readonly<Record<ScaleTier, number>>;

export interface ScaleOptions {
  readonly tenants: number;
  /** Tenants per tier; sums to `tenants`. */
  readonly mix: Mix;
  readonly controllers: number;
  /** Workers per controller (CONCURRENCY). */
  readonly concurrency: number;
  /** LEASE_SECONDS: how long a dead controller's leases hold its shards before the others take them over. @default 15 */
  readonly leaseSeconds?: number;
  /** ECS's buckets on the fake (the figures then measure the buckets, not the controller). */
  readonly throttle: boolean;
  /** pino level of the controllers (written to /dev/null). */
  readonly logLevel: string;
  /** Give up on a phase after this long. */
  readonly timeoutMs: number;
  /** A line of progress, for the console. */
  readonly progress?: (line: string) => void;
  /** Write a V8 CPU profile of each phase into this directory (bench/scale-profile.ts). */
  readonly cpuProfileDir?: string;
}

/** What one phase cost. */
export interface PhaseFigures {
  readonly wallMs: number;
  /** process.cpuUsage() over the phase (user + system), ms. */
  readonly cpuMs: number;
  /** Of which in the fakes' own bodies (bench/fakes/busy.ts). */
  readonly fakesMs: number;
  readonly reconciles: number;
  readonly results: Readonly<Record<string, number>>;
  /** Served by the fake ECS, by action. */
  readonly ecs: Readonly<Record<string, number>>;
  /** Sent by the controllers' EcsProviders, by action (must equal `ecs`). */
  readonly ecsSent: Readonly<Record<string, number>>;
  readonly ecsReads: number;
  readonly ecsWrites: number;
  readonly statusWrites: number;
  /** Writes to every other port (routes, claims, identity, namespaces, stacks). */
  readonly otherWrites: number;
  readonly events: Readonly<Record<string, number>>;
  /** Leases lost during the phase, all controllers (a starved renewal would show here). */
  readonly leaseLosses: number;
  /** Reconciles and ECS requests per controller, by holder; its role (the controller lease) and the shards it holds at the end. */
  readonly perController: Readonly<
    Record<string, { readonly reconciles: number; readonly ecs: number; readonly role: string; readonly shards: readonly number[] }>
  >;
}

export interface Floor {
  /** The bucket that binds, and how long its calls take at its documented rate after its burst. */
  readonly category: string;
  readonly calls: number;
  readonly seconds: number;
}

export interface MemoryFigures {
  readonly gc: boolean;
  /** RSS before the cloud and the controllers were made: Node, tsx and the modules loaded. */
  readonly baselineRssMiB: number;
  readonly rssMiB: number;
  readonly heapTotalMiB: number;
  readonly heapUsedMiB: number;
  /** heapUsed once the controllers are stopped and dropped: the fakes and the harness alone. */
  readonly heapWithoutControllersMiB: number;
  /** Whether the dropped controllers were indeed collected (else the figure above still holds them). */
  readonly controllersCollected: boolean;
  readonly externalMiB: number;
}

export interface ScaleResult {
  readonly options: Omit<ScaleOptions, "progress">;
  readonly onboarding: PhaseFigures & {
    readonly tenantsPerSecond: number;
    /** RegisterTaskDefinition at ECS's 1 a second (after the burst of 20). */
    readonly registrationFloor: Floor;
    /** The slowest bucket over every call of the phase. */
    readonly bindingFloor: Floor;
  };
  readonly memory: MemoryFigures;
  readonly resync: PhaseFigures & {
    /** Every ECS read at 20 a second, as one budget (the figure). */
    readonly readFloorSeconds: number;
    /** The slowest of ECS's read buckets (cluster, service and task definition reads each have 20 a second). */
    readonly bindingFloor: Floor;
    readonly cpuPerReconcileMs: number;
    readonly cpuPerReconcileWithoutFakesMs: number;
    /** The fakes' bodies of the pass run again back to back: their CPU, robust to a loaded machine. */
    readonly fakesReplay: { readonly calls: number; readonly cpuMs: number };
    /** Keys the pass reconciled more than once, and keys reconciled by more than one controller (both 0 when sound). */
    readonly duplicates: { readonly twice: number; readonly byTwoControllers: number };
  };
  /**
   * With more than one controller: the holder of the controller lease dies
   * (stops renewing and working, keeps its leases until they expire, as a
   * SIGKILL leaves them) and the others take its shards and the pool key
   * over, each reconciling the keys it gained once, with cold caches.
   */
  readonly takeover?: PhaseFigures & {
    readonly dead: string;
    /** The dead controller's shards, and the keys in them plus the pool key: what the others must reconcile. */
    readonly shardsMoved: number;
    readonly keys: number;
    /** From the death to every one of its shards held by another controller. */
    readonly leaseTakenAfterMs: number;
    /** The new holder of the controller lease. */
    readonly newLeader: string;
    readonly duplicates: { readonly twice: number; readonly byTwoControllers: number };
  };
  readonly converged: ConvergenceCheck;
  /** The machine's 1-minute load average at the start and at the end: above its cores, wall times stretch (CPU times do not). */
  readonly load: readonly [number, number];
}

/** What the fleet looks like at the end: the invariants the test asserts. */
export interface ConvergenceCheck {
  readonly ready: number;
  readonly servicesExpected: number;
  readonly servicesSteady: number;
  readonly premiumClusters: number;
  readonly leaders: number;
}

/** Integer counts per tier that sum to `tenants`, in proportion to the weights. */
export function mixOf(tenants: number, weights: Mix): Mix {
  const sum = weights.basic + weights.advanced + weights.premium;
  if (!(sum > 0)) throw new Error("the tier weights must not all be 0");
  const advanced = Math.round((tenants * weights.advanced) / sum);
  const premium = Math.round((tenants * weights.premium) / sum);
  return { basic: tenants - advanced - premium, advanced, premium };
}

/** The fleet's records, tiers interleaved the way SBT would write them (deterministic). */
/** One tenant of the benchmark's fleet: its id, tier and record as SBT writes it. */
export interface FleetRecord {
  readonly tenantId: string;
  readonly tier: ScaleTier;
  readonly record: Record<string, unknown>;
}

export function fleetRecords(mix: Mix): FleetRecord[] {
  const tiers: ScaleTier[] = SCALE_TIERS.flatMap((t) => Array<ScaleTier>(mix[t]).fill(t));
  // A seeded shuffle (mulberry32): the same fleet every run.
  let seed = 0x5eed;
  const random = () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  for (let i = tiers.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [tiers[i], tiers[j]] = [tiers[j] as ScaleTier, tiers[i] as ScaleTier];
  }
  return tiers.map((tier, i) => {
    const tenantId = `tenant-${String(i + 1).padStart(5, "0")}`;
    return {
      tenantId,
      tier,
      record: {
        tenantId,
        tier,
        tenantName: `Scale ${tenantId}`,
        email: `admin@${tenantId}.example.com`,
        tenantRegistrationId: `reg-${tenantId}`,
      },
    };
  });
}

export async function runScale(options: ScaleOptions): Promise<ScaleResult> {
  const loadBefore = loadavg()[0] ?? 0;
  collect();
  const baselineRss = process.memoryUsage().rss;
  const cloud = createCloud({ throttle: options.throttle });
  const m = await measure(cloud, options);
  // The controllers lived in measure()'s frame only: once it returned, they are garbage.
  await sleep(100);
  collect();
  const heapWithout = process.memoryUsage().heapUsed;
  const collected = m.dropped.every((w) => w.deref() === undefined);

  const mib = (n: number) => Math.round((n / 2 ** 20) * 10) / 10;
  const registrations = m.onboarded.ecs["RegisterTaskDefinition"] ?? 0;
  const { progress: _progress, cpuProfileDir: _dir, ...settings } = options;
  return {
    options: settings,
    onboarding: {
      ...m.onboarded,
      tenantsPerSecond: options.tenants / (m.onboarded.wallMs / 1000),
      registrationFloor: floorOf("RegisterTaskDefinition", registrations),
      bindingFloor: bindingFloor(m.onboarded.ecs),
    },
    memory: {
      gc: m.gc,
      baselineRssMiB: mib(baselineRss),
      rssMiB: mib(m.mem.rss),
      heapTotalMiB: mib(m.mem.heapTotal),
      heapUsedMiB: mib(m.mem.heapUsed),
      heapWithoutControllersMiB: mib(heapWithout),
      controllersCollected: collected,
      externalMiB: mib(m.mem.external),
    },
    resync: {
      ...m.pass,
      readFloorSeconds: m.pass.ecsReads / 20,
      bindingFloor: bindingFloor(Object.fromEntries(Object.entries(m.pass.ecs).filter(([a]) => ECS_READS.has(a)))),
      cpuPerReconcileMs: m.pass.cpuMs / m.pass.reconciles,
      cpuPerReconcileWithoutFakesMs: (m.pass.cpuMs - m.pass.fakesReplay.cpuMs) / m.pass.reconciles,
    },
    ...(m.takeover !== undefined ? { takeover: m.takeover } : {}),
    converged: m.converged,
    load: [loadBefore, loadavg()[0] ?? 0],
  };
}

/** The controllers' whole life: composed, started, measured, stopped. */
async function measure(cloud: ScaleCloud, options: ScaleOptions) {
  const say = options.progress ?? (() => {});
  const counter = new ReconcileCounter();
  const controllers: ScaleController[] = composeControllers(cloud, options.controllers, {
    concurrency: options.concurrency,
    logLevel: options.logLevel,
    ...(options.leaseSeconds !== undefined ? { leaseSeconds: options.leaseSeconds } : {}),
    onResult: (holder, key, result) => counter.record(holder, key, result),
  });
  try {
    // Each owns its share of the shards once balanced (rounds of LEASE/3; a stolen shard waits a lease); one holds the pool key.
    for (const c of controllers) await c.manager.start();
    await within(balanced(controllers), options.timeoutMs, () => `the shards were not balanced: ${shardLine(controllers)}`);
    const leader = await within(leaderOf(controllers), options.timeoutMs, "no controller became leader");
    await within(poolReady(cloud, counter), options.timeoutMs, "the pooled services did not converge");
    say(
      `${options.controllers} controller(s) up, shards ${shardLine(controllers)}, ${leader.holder} holds the pool; the pool is converged`,
    );

    // ---- 1. onboarding from empty
    const fleet = fleetRecords(options.mix);
    const profiler = new PhaseProfiler(options.cpuProfileDir);
    await profiler.start();
    const before = snapshot(cloud, controllers, counter);
    const readyAt = await onboardFleet(cloud, fleet, options.timeoutMs, say);
    const onboardingProfile = await profiler.stop(`onboarding-${options.controllers}c`);
    if (onboardingProfile !== undefined) say(`CPU profile of the onboarding: ${onboardingProfile}`);
    // Counted once quiet, so the reconcile that wrote the last Ready is in; timed to that write.
    await counter.quiet(1500);
    const onboarded = { ...figures(before, snapshot(cloud, controllers, counter), controllers), wallMs: readyAt - before.at };
    say(`onboarded ${fleet.length} in ${(onboarded.wallMs / 1000).toFixed(1)} s`);

    // ---- 2. steady state memory
    const gc = collect();
    const mem = process.memoryUsage();

    // ---- 3. one full resync pass
    const passStart = snapshot(cloud, controllers, counter);
    const target = counter.total + fleet.length + 1;
    const passed = counter.whenTotal(target);
    counter.beginPass();
    cloud.busy.record();
    await profiler.start();
    // Every controller is asked: each resyncs the shards it holds, and the controller lease's holder the pool key too.
    const listed = await Promise.all(controllers.map((c) => c.manager.resyncNow()));
    if (!listed.some(Boolean)) throw new Error("no controller could list the fleet for the resync");
    await within(passed, options.timeoutMs, () => `resync: ${counter.total - passStart.reconciles} of ${fleet.length + 1} reconciled`);
    const passEnd = snapshot(cloud, controllers, counter);
    const passProfile = await profiler.stop(`resync-${options.controllers}c`);
    if (passProfile !== undefined) say(`CPU profile of the resync pass: ${passProfile}`);
    const pass = {
      ...figures(passStart, passEnd, controllers),
      duplicates: counter.passDuplicates(),
      fakesReplay: cloud.busy.replay(),
    };
    await counter.quiet(500);
    const extra = counter.total - target;
    const depth = controllers.reduce((n, c) => n + c.manager.queueDepth, 0);
    if (extra !== 0 || depth !== 0)
      throw new Error(`the resync pass reconciled ${extra} keys more than the fleet and the pool; queue depth ${depth}`);
    say(`resync pass: ${pass.reconciles} reconciles in ${(pass.wallMs / 1000).toFixed(1)} s, ${pass.ecsReads} ECS reads`);

    // ---- 4. the controller lease's holder dies; the others take its shards and the pool over
    const takeover = controllers.length > 1 ? await takeOver(cloud, controllers, leader, counter, fleet, options) : undefined;
    if (takeover !== undefined)
      say(
        `takeover: ${takeover.shardsMoved} shards of ${takeover.dead} held by others after ${(takeover.leaseTakenAfterMs / 1000).toFixed(1)} s; their ${takeover.keys} keys reconciled in ${(takeover.wallMs / 1000).toFixed(1)} s with ${takeover.ecsReads} ECS reads`,
      );

    const converged = convergence(cloud, fleet, controllers.filter((c) => c.manager.role === "leader").length);
    return { onboarded, gc, mem, pass, takeover, converged, dropped: controllers.map((c) => new WeakRef(c.reconciler)) };
  } finally {
    for (const c of controllers) await c.manager.stop();
  }
}

/**
 * The controller lease's holder stops renewing and working, as a process
 * that froze or was SIGKILLed would (its leases stay until they expire);
 * timed from then until the others, holding its shards and the pool key,
 * have reconciled each of those keys once.
 */
async function takeOver(
  cloud: ScaleCloud,
  controllers: readonly ScaleController[],
  dead: ScaleController,
  counter: ReconcileCounter,
  fleet: readonly { readonly tenantId: string }[],
  options: ScaleOptions,
) {
  const moved = new Set(dead.shards.ownedShards());
  const keys = fleet.filter((f) => moved.has(dead.manager.ownership.shardOf(f.tenantId) ?? -1)).length + 1;
  const start = snapshot(cloud, controllers, counter);
  const passed = counter.whenTotal(counter.total + keys);
  counter.beginPass();
  // Leases kept, not released: its shards free up only when they expire. Its workers then drop every key they dequeue.
  await Promise.all([dead.shards.stop({ release: false }), dead.lease.stop({ release: false })]);
  const alive = controllers.filter((c) => c !== dead);
  const next = await within(
    (async () => {
      for (;;) {
        const found = alive.find((c) => c.manager.role === "leader");
        if (found !== undefined && [...moved].every((s) => alive.some((c) => c.shards.owns(s)))) return found;
        await sleep(20);
      }
    })(),
    options.timeoutMs,
    () => `the dead controller's shards and lease were not taken over: ${shardLine(controllers)}`,
  );
  const leaseTakenAfterMs = performance.now() - start.at;
  await within(passed, options.timeoutMs, () => `takeover: ${counter.total - start.reconciles} of ${keys} reconciled`);
  const figuresOf = figures(start, snapshot(cloud, controllers, counter), controllers);
  await counter.quiet(500);
  return {
    ...figuresOf,
    dead: dead.holder,
    shardsMoved: moved.size,
    keys,
    leaseTakenAfterMs,
    newLeader: next.holder,
    duplicates: counter.passDuplicates(),
  };
}

// ------------------------------------------------------------------ helpers

/** Reconciles of every controller, with waits on their count and on a quiet spell. */
export class ReconcileCounter {
  total = 0;
  lastAt = performance.now();
  readonly byKey = new Map<string, ReconcileResult["kind"]>();
  /** Since beginPass(): each key's reconciles and the controllers that ran them. */
  #pass = new Map<string, { count: number; holders: Set<string> }>();
  readonly #waiters: { readonly total: number; readonly resolve: () => void }[] = [];

  record(holder: string, key: string, result: ReconcileResult): void {
    this.total += 1;
    const mine = this.#pass.get(key) ?? { count: 0, holders: new Set<string>() };
    mine.count += 1;
    mine.holders.add(holder);
    this.#pass.set(key, mine);
    this.lastAt = performance.now();
    this.byKey.set(key, result.kind);
    for (let i = this.#waiters.length - 1; i >= 0; i--) {
      const w = this.#waiters[i];
      if (w !== undefined && this.total >= w.total) {
        this.#waiters.splice(i, 1);
        w.resolve();
      }
    }
  }

  beginPass(): void {
    this.#pass = new Map();
  }

  /** Keys reconciled more than once since beginPass(), and keys reconciled by more than one controller. */
  passDuplicates(): { readonly twice: number; readonly byTwoControllers: number } {
    let twice = 0;
    let byTwo = 0;
    for (const k of this.#pass.values()) {
      if (k.count > 1) twice += 1;
      if (k.holders.size > 1) byTwo += 1;
    }
    return { twice, byTwoControllers: byTwo };
  }

  whenTotal(total: number): Promise<void> {
    if (this.total >= total) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ total, resolve }));
  }

  /** Resolves once no reconcile has finished for `ms`. */
  async quiet(ms: number): Promise<void> {
    for (;;) {
      const idle = performance.now() - this.lastAt;
      if (idle >= ms) return;
      await sleep(ms - idle + 10);
    }
  }
}

interface Snapshot {
  readonly at: number;
  readonly cpu: NodeJS.CpuUsage;
  readonly fakesMs: number;
  readonly reconciles: number;
  readonly results: ReadonlyMap<string, ReadonlyMap<string, number>>;
  readonly served: ReadonlyMap<string, number>;
  readonly sent: ReadonlyMap<string, ReadonlyMap<string, number>>;
  readonly statusWrites: number;
  readonly otherWrites: number;
  readonly events: ReadonlyMap<string, number>;
  readonly leaseLosses: number;
}

function snapshot(cloud: ScaleCloud, controllers: readonly ScaleController[], counter: ReconcileCounter): Snapshot {
  return {
    at: performance.now(),
    cpu: process.cpuUsage(),
    fakesMs: cloud.busy.ms,
    reconciles: counter.total,
    results: new Map(controllers.map((c) => [c.holder, new Map(c.results)])),
    served: new Map(cloud.ecs.served),
    sent: new Map(controllers.map((c) => [c.holder, new Map(c.sent.sent)])),
    statusWrites: cloud.store.statusWrites,
    otherWrites: cloud.routes.writes + cloud.claims.writes + cloud.identity.writes + cloud.namespaces.writes + cloud.infra.stacksCreated,
    events: new Map(cloud.events.byType),
    leaseLosses: controllers.reduce((n, c) => n + c.leaseLosses.count, 0),
  };
}

function figures(a: Snapshot, b: Snapshot, controllers: readonly ScaleController[]): PhaseFigures {
  const ecs = diff(a.served, b.served);
  const sent: Record<string, number> = {};
  const perController: Record<string, { reconciles: number; ecs: number; role: string; shards: number[] }> = {};
  for (const c of controllers) {
    const mine = diff(a.sent.get(c.holder) ?? new Map(), b.sent.get(c.holder) ?? new Map());
    for (const [action, n] of Object.entries(mine)) sent[action] = (sent[action] ?? 0) + n;
    const results = diff(a.results.get(c.holder) ?? new Map(), b.results.get(c.holder) ?? new Map());
    perController[c.holder] = { reconciles: sum(results), ecs: sum(mine), role: c.manager.role, shards: c.shards.ownedShards() };
  }
  const results: Record<string, number> = {};
  for (const c of Object.values(controllers))
    for (const [kind, n] of Object.entries(diff(a.results.get(c.holder) ?? new Map(), b.results.get(c.holder) ?? new Map())))
      results[kind] = (results[kind] ?? 0) + n;
  const reads = Object.entries(ecs)
    .filter(([action]) => ECS_READS.has(action))
    .reduce((n, [, v]) => n + v, 0);
  return {
    wallMs: b.at - a.at,
    cpuMs: (b.cpu.user - a.cpu.user + b.cpu.system - a.cpu.system) / 1000,
    fakesMs: b.fakesMs - a.fakesMs,
    reconciles: b.reconciles - a.reconciles,
    results,
    ecs,
    ecsSent: sent,
    ecsReads: reads,
    ecsWrites: sum(ecs) - reads,
    statusWrites: b.statusWrites - a.statusWrites,
    otherWrites: b.otherWrites - a.otherWrites,
    events: diff(a.events, b.events),
    leaseLosses: b.leaseLosses - a.leaseLosses,
    perController,
  };
}

function diff(a: ReadonlyMap<string, number>, b: ReadonlyMap<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of [...b].sort(([x], [y]) => x.localeCompare(y))) {
    const d = v - (a.get(k) ?? 0);
    if (d !== 0) out[k] = d;
  }
  return out;
}

function sum(counts: Readonly<Record<string, number>>): number {
  return Object.values(counts).reduce((n, v) => n + v, 0);
}

/** How long `calls` of one action take at least at ECS's documented bucket: the burst at once, the rest at the rate. */
export function floorOf(action: string, calls: number): Floor {
  const bucket = bucketFor(action);
  if (bucket === undefined) return { category: action, calls, seconds: 0 };
  return { category: bucket.category, calls, seconds: Math.max(0, calls - bucket.spec.burst) / bucket.spec.rate };
}

/** The bucket that takes longest over the calls of a phase (actions sharing a bucket added up). */
export function bindingFloor(calls: Readonly<Record<string, number>>): Floor {
  const byCategory = new Map<string, { calls: number; burst: number; rate: number }>();
  for (const [action, n] of Object.entries(calls)) {
    const bucket = bucketFor(action);
    if (bucket === undefined) continue;
    const have = byCategory.get(bucket.category) ?? { calls: 0, burst: bucket.spec.burst, rate: bucket.spec.rate };
    byCategory.set(bucket.category, { ...have, calls: have.calls + n });
  }
  let worst: Floor = { category: "none", calls: 0, seconds: 0 };
  for (const [category, b] of byCategory) {
    const seconds = Math.max(0, b.calls - b.burst) / b.rate;
    if (seconds > worst.seconds || worst.category === "none") worst = { category, calls: b.calls, seconds };
  }
  return worst;
}

export function convergence(
  cloud: ScaleCloud,
  fleet: readonly { readonly tenantId: string; readonly tier: ScaleTier }[],
  leaders: number,
): ConvergenceCheck {
  let expected = APP_NAMES.length;
  let steady = countSteady(
    cloud,
    SETTINGS.poolCluster,
    APP_NAMES.map((app) => poolServiceName(SETTINGS.namePrefix, app)),
  );
  let premiumClusters = 0;
  for (const { tenantId, tier } of fleet) {
    if (tier === "basic") continue;
    const cluster = tier === "advanced" ? SETTINGS.advancedCluster : premiumClusterName(SETTINGS.namePrefix, tenantId);
    if (tier === "premium" && cloud.ecs.clusters.get(cluster)?.status === "ACTIVE") premiumClusters += 1;
    expected += APP_NAMES.length;
    steady += countSteady(
      cloud,
      cluster,
      APP_NAMES.map((app) => serviceName(SETTINGS.namePrefix, tenantId, app)),
    );
  }
  return {
    ready: cloud.store.count("Ready"),
    servicesExpected: expected,
    servicesSteady: steady,
    premiumClusters,
    leaders,
  };
}

/** Services that exist, ACTIVE, running their desired count on a revision that exists. */
function countSteady(cloud: ScaleCloud, cluster: string, names: readonly string[]): number {
  let n = 0;
  for (const name of names) {
    const s = cloud.ecs.services.get(`${cluster}/${name}`);
    if (s === undefined || s.status !== "ACTIVE" || s.desiredCount < 1) continue;
    const [family, revision] = s.taskDefinition.slice(s.taskDefinition.lastIndexOf("/") + 1).split(":");
    const known = cloud.ecs.families.get(family ?? "")?.some((r) => r.revision === Number(revision) && r.status === "ACTIVE");
    if (known === true) n += 1;
  }
  return n;
}

export function phaseLine(cloud: ScaleCloud): string {
  return ["Pending", "Provisioning", "Ready", "Degraded", "Failed"].map((p) => `${p} ${cloud.store.count(p as "Ready")}`).join(", ");
}

/** Every shard held by exactly one controller, each holding its fair share (32/N rounded either way), every one synced. */
async function balanced(controllers: readonly ScaleController[]): Promise<void> {
  const count = controllers[0]?.shards.count ?? 0;
  const low = Math.floor(count / controllers.length);
  const high = Math.ceil(count / controllers.length);
  for (;;) {
    const owned = controllers.map((c) => c.shards.ownedShards());
    const distinct = new Set(owned.flat()).size;
    const fair = owned.every((o) => o.length >= low && o.length <= high);
    if (distinct === count && owned.flat().length === count && fair && controllers.every((c) => c.manager.ready)) return;
    await sleep(50);
  }
}

function shardLine(controllers: readonly ScaleController[]): string {
  return controllers.map((c) => `${c.holder} ${c.shards.ownedShards().length}`).join(", ");
}

async function leaderOf(controllers: readonly ScaleController[]): Promise<ScaleController> {
  for (;;) {
    const leader = controllers.find((c) => c.manager.role === "leader" && c.manager.ready);
    if (leader !== undefined) return leader;
    await sleep(20);
  }
}

export async function poolReady(cloud: ScaleCloud, counter: ReconcileCounter): Promise<void> {
  for (;;) {
    const pool = [...cloud.ecs.services.values()].filter((s) => s.cluster.name === SETTINGS.poolCluster && s.status === "ACTIVE");
    if (pool.length === APP_NAMES.length && counter.byKey.get(":pool") === "done") break;
    await sleep(20);
  }
  await counter.quiet(300);
}

/** Runs a full GC when the process was started with --expose-gc; says whether it could. */
export function collect(): boolean {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) return false;
  gc();
  gc();
  return true;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export async function within<T>(work: Promise<T>, ms: number, what: string | (() => string)): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${typeof what === "string" ? what : what()} after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * SBT writes every record and the stream delivers them in pages of 100;
 * resolves when all are Ready, with the time of that moment
 * (performance.now()). Shared by the in-process and the split runs.
 */
export async function onboardFleet(
  cloud: ScaleCloud,
  fleet: readonly FleetRecord[],
  timeoutMs: number,
  say: (line: string) => void,
): Promise<number> {
  const changes: TenantChange[] = fleet.map((f) => ({
    tenantId: f.tenantId,
    kind: "upsert",
    newSpecHash: hashSpec(f.record),
    oldSpecHash: undefined,
  }));
  for (let i = 0; i < fleet.length; i += 100) {
    for (const f of fleet.slice(i, i + 100)) cloud.store.put(f.record as { tenantId: string });
    cloud.changes.emit(changes.slice(i, i + 100));
  }
  const ticker = setInterval(() => say(`  onboarding: ${cloud.store.count("Ready")} / ${fleet.length} Ready`), 5000);
  try {
    await within(cloud.store.whenCount("Ready", fleet.length), timeoutMs, () => `onboarding: ${phaseLine(cloud)}`);
  } finally {
    clearInterval(ticker);
  }
  return performance.now();
}
