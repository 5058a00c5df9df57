import { describe, expect, it } from "vitest";
import { parseScaleArgs } from "../../bench/scale-options.js";
import { mixOf } from "../../bench/scale-run.js";
import { runScaleSplit, type SplitResult } from "../../bench/scale-split.js";

/**
 * The short version of `npm run bench:scale -- --controller-process` (200
 * tenants): one controller in a child process, on proxies of the fakes held
 * here. Its figures are only worth anything if the controller there does what
 * the in-process one does (every tenant Ready, the pool converged, each
 * resource made once, a no-op pass), if every request it sent is one the
 * fakes served (nothing lost or doubled on the channel), and if the memory
 * reported is the child's, not this process's.
 */

const TENANTS = 200;
const mix = mixOf(TENANTS, { basic: 6, advanced: 3, premium: 1 });
const silo = mix.advanced + mix.premium;

let run: Promise<SplitResult> | undefined;
const split = () =>
  (run ??= runScaleSplit({
    tenants: TENANTS,
    mix,
    concurrency: 8,
    // Short, so the single controller takes its 32 shards in one quick round.
    leaseSeconds: 2,
    throttle: false,
    logLevel: "silent",
    timeoutMs: 120_000,
  }));

describe("scale benchmark, one controller in its own process (short version)", () => {
  it("onboards the fleet through the proxies: every tenant Ready, the pool and every service converged, each made once", async () => {
    const r = await split();
    expect(r.converged).toEqual({
      ready: TENANTS,
      servicesExpected: 4 * (silo + 1),
      servicesSteady: 4 * (silo + 1),
      premiumClusters: mix.premium,
      leaders: 1,
    });
    const on = r.onboarding;
    expect(on.events["sbt_aws_provisionSuccess"]).toBe(TENANTS);
    expect(on.ecs["RegisterTaskDefinition"]).toBe(4 * silo);
    expect(on.ecs["CreateService"]).toBe(4 * silo);
    expect(on.ecs["CreateCluster"]).toBe(mix.premium);
    expect(on.results["failed"]).toBeUndefined();
    expect(on.leaseLosses).toBe(0);
  }, 120_000);

  it("the fakes served exactly what the child's controller sent, and the pass reconciles each key once writing nothing", async () => {
    const r = await split();
    // The child's EcsProvider counts what it sends; the fake here counts what it serves.
    expect(r.onboarding.ecsSent).toEqual(r.onboarding.ecs);
    expect(r.resync.ecsSent).toEqual(r.resync.ecs);
    expect(r.resync.reconciles).toBe(TENANTS + 1);
    expect(r.resync.results).toEqual({ done: TENANTS + 1 });
    expect(r.resync.ecsWrites).toBe(0);
    expect(r.resync.statusWrites).toBe(0);
    expect(r.resync.otherWrites).toBe(0);
    expect(r.resync.events).toEqual({});
    expect(r.resync.leaseLosses).toBe(0);
    // Every call the child made was answered here, once: ECS calls and status writes one round trip each.
    expect(r.ipc.answered).toBe(r.ipc.roundTrips);
    // Over the whole run (start, pool and both phases): one ecs.send round trip per request sent and served, one
    // store.writeStatus round trip per status the fake wrote.
    expect(r.totals.ecsSent).toBe(r.totals.ecsServed);
    expect(r.ipc.byCall["ecs.send"]).toBe(r.totals.ecsServed);
    expect(r.ipc.byCall["store.writeStatus"]).toBe(r.totals.statusWrites);
    expect(r.ipc.byCall["changes.start"]).toBe(1);
    // The records were announced in pages of 100, and scanned by the child once at start and once for the pass.
    expect(r.ipc.notes["to the controller: changes"]).toBe(Math.ceil(TENANTS / 100));
    expect(r.ipc.byCall["iter.open"]).toBe(2);
    expect(r.onboarding.roundTrips + r.resync.roundTrips).toBeLessThanOrEqual(r.ipc.roundTrips);
  }, 120_000);

  it("reports the child's memory: another process than this one and the fakes', after a GC, at each point", async () => {
    const r = await split();
    const cp = r.controllerProcess;
    expect(cp.pid).not.toBe(process.pid);
    expect(r.parentProcess.pid).toBe(process.pid);
    expect(cp.gc).toBe(true);
    for (const p of [cp.started, cp.composed, cp.onboarded, cp.resynced, cp.cachesDropped]) {
      expect(p.rssMiB).toBeGreaterThan(0);
      expect(p.heapUsedMiB).toBeGreaterThan(0);
      expect(p.heapUsedMiB).toBeLessThanOrEqual(p.heapTotalMiB);
    }
    // The modules load after the first point, so the composed controller's heap is larger; its CPU only grows.
    expect(cp.composed.heapUsedMiB).toBeGreaterThan(cp.started.heapUsedMiB);
    expect(cp.resynced.cpuUserMs).toBeGreaterThanOrEqual(cp.onboarded.cpuUserMs);
    expect(cp.onboarded.cpuUserMs).toBeGreaterThan(cp.composed.cpuUserMs);
  }, 120_000);
});

describe("scale benchmark flags: --controller-process", () => {
  it("runs one controller, and refuses a count or a profile it would not honour", () => {
    const a = parseScaleArgs(["--controller-process", "--tenants", "10000"]);
    expect(a.controllerProcess).toBe(true);
    expect(a.controllers).toEqual([1]);
    expect(a.mix).toEqual({ basic: 6000, advanced: 3000, premium: 1000 });
    expect(parseScaleArgs(["--controller-process", "--controllers", "1"]).controllers).toEqual([1]);
    expect(parseScaleArgs(["--controller-process", "--compiled"]).compiled).toBe(true);
    expect(() => parseScaleArgs(["--controller-process", "--controllers", "3"])).toThrow(
      "--controller-process runs exactly one controller",
    );
    expect(() => parseScaleArgs(["--controller-process", "--cpu-profile", "/tmp/p"])).toThrow(
      "--cpu-profile profiles the in-process run only",
    );
    expect(() => parseScaleArgs(["--compiled"])).toThrow("--compiled applies to --controller-process");
    expect(parseScaleArgs([]).controllerProcess).toBe(false);
  });
});
