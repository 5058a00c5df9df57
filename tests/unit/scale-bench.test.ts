import { RegisterTaskDefinitionCommand, DescribeServicesCommand, ListServicesCommand } from "@aws-sdk/client-ecs";
import { describe, expect, it } from "vitest";
import { FakeEcsClient } from "../../bench/fakes/fake-ecs.js";
import { parseScaleArgs } from "../../bench/scale-options.js";
import { bindingFloor, fleetRecords, floorOf, mixOf, runScale, type ScaleResult } from "../../bench/scale-run.js";
import { EcsThrottle } from "../../src/localcloud/throttling.js";
import { shardOf } from "../../src/reconciler/shards.js";

/**
 * The short version of `npm run bench:scale` (300 tenants): the benchmark's
 * invariants, never its timings. A fleet that did not converge, a call the
 * fake answered that the controllers did not send (or the reverse), a key
 * reconciled twice or by a controller not holding its shard, or a no-op
 * resync that writes would make every figure of BENCHMARKS.md wrong.
 */

const TENANTS = 300;
const mix = mixOf(TENANTS, { basic: 6, advanced: 3, premium: 1 });
const silo = mix.advanced + mix.premium;
const SHARDS = 32;
const allShards = Array.from({ length: SHARDS }, (_, i) => i);
const fleet = fleetRecords(mix);
const tenantsIn = (shards: readonly number[]) => fleet.filter((f) => shards.includes(shardOf(f.tenantId, SHARDS))).length;
const siloIn = (shards: readonly number[]) =>
  fleet.filter((f) => f.tier !== "basic" && shards.includes(shardOf(f.tenantId, SHARDS))).length;

function run(controllers: number): Promise<ScaleResult> {
  return runScale({
    tenants: TENANTS,
    mix,
    controllers,
    concurrency: 8,
    // Short, so balancing (rounds of LEASE/3, a stolen shard waits a lease) and the killed controller's expiry are quick.
    leaseSeconds: 2,
    throttle: false,
    logLevel: "silent",
    timeoutMs: 120_000,
  });
}

/** One 3-controller run, shared by the tests that read it. */
let three: Promise<ScaleResult> | undefined;
const runThree = () => (three ??= run(3));

function expectConvergedFleet(r: ScaleResult): void {
  expect(r.converged).toEqual({
    ready: TENANTS,
    servicesExpected: 4 * (silo + 1),
    servicesSteady: 4 * (silo + 1),
    premiumClusters: mix.premium,
    leaders: 1,
  });
  // Onboarding: every tenant announced once, every resource made once.
  const on = r.onboarding;
  expect(on.events["sbt_aws_provisionSuccess"]).toBe(TENANTS);
  expect(on.ecs["RegisterTaskDefinition"]).toBe(4 * silo);
  expect(on.ecs["CreateService"]).toBe(4 * silo);
  expect(on.ecs["CreateCluster"]).toBe(mix.premium);
  expect(on.ecs["UpdateService"]).toBeUndefined();
  expect(on.results["failed"]).toBeUndefined();
  // What the controllers sent is what the fake served, action by action.
  expect(on.ecsSent).toEqual(on.ecs);
  expect(on.registrationFloor).toEqual({ category: "taskDefinitionModify", calls: 4 * silo, seconds: 4 * silo - 20 });

  // One resync pass over the converged fleet: every key once, nothing written anywhere.
  const pass = r.resync;
  expect(pass.reconciles).toBe(TENANTS + 1);
  expect(pass.results).toEqual({ done: TENANTS + 1 });
  expect(pass.ecsSent).toEqual(pass.ecs);
  expect(pass.ecsWrites).toBe(0);
  expect(Object.keys(pass.ecs).every((a) => a.startsWith("Describe") || a.startsWith("List"))).toBe(true);
  expect(pass.ecsReads).toBe(Object.values(pass.ecs).reduce((n, v) => n + v, 0));
  // Controllers share the reads (docs/adr/0018): each lists the shared clusters and every cluster, but lists and
  // describes only its own tenants' premium clusters and services, so each service is described once in the pass.
  const n = r.options.controllers;
  const advancedServices = 4 * mix.advanced;
  expect(pass.ecs["ListServices"]).toBe(n * (Math.ceil(advancedServices / 100) + 1) + mix.premium);
  expect(pass.ecs["DescribeServices"]).toBeGreaterThanOrEqual(Math.ceil(advancedServices / 10) + mix.premium + 1);
  expect(pass.ecs["DescribeServices"]).toBeLessThanOrEqual(Math.ceil(advancedServices / 10) + (n - 1) + mix.premium + 1);
  expect(pass.duplicates).toEqual({ twice: 0, byTwoControllers: 0 });
  expect(pass.statusWrites).toBe(0);
  expect(pass.otherWrites).toBe(0);
  expect(pass.events).toEqual({});
  expect(pass.readFloorSeconds).toBe(pass.ecsReads / 20);
  expect(on.leaseLosses + pass.leaseLosses).toBe(0);
}

describe("scale benchmark (short version)", () => {
  it("one controller onboards the fleet from empty, and a resync pass over it reads and writes nothing else", async () => {
    const r = await run(1);
    expectConvergedFleet(r);
    expect(Object.keys(r.resync.perController)).toEqual(["controller-1"]);
    // Alone, it holds every shard and the pool key.
    expect(r.resync.perController["controller-1"]).toMatchObject({ role: "leader", shards: allShards, reconciles: TENANTS + 1 });
    expect(r.takeover).toBeUndefined();
  });

  it("three controllers share the shards: each reconciles exactly the keys of the shards it holds, once per pass", async () => {
    const r = await runThree();
    expectConvergedFleet(r);
    for (const phase of [r.onboarding, r.resync]) {
      const all = Object.values(phase.perController);
      // Balanced before anything was measured: 32 shards as 11 / 11 / 10, each held by one controller.
      expect(all.map((c) => c.shards.length).sort()).toEqual([10, 11, 11]);
      expect(all.flatMap((c) => c.shards).sort((a, b) => a - b)).toEqual(allShards);
      expect(all.filter((c) => c.role === "leader")).toHaveLength(1);
      for (const c of all) expect(c.reconciles).toBeGreaterThan(0);
      expect(all.reduce((n, c) => n + c.reconciles, 0)).toBe(phase.reconciles);
    }
    // The pass: each controller's reconciles are its shards' tenants, plus the pool key for the controller lease's holder.
    for (const c of Object.values(r.resync.perController)) expect(c.reconciles).toBe(tenantsIn(c.shards) + (c.role === "leader" ? 1 : 0));
  });

  it("a controller killed with its leases held: its shards and the pool move to the others, which reconcile its keys once without writing", async () => {
    const r = await runThree();
    const t = r.takeover;
    expect(t).toBeDefined();
    if (t === undefined) return;
    const before = r.resync.perController;
    // The harness kills the controller lease's holder, so the pool key moves too.
    expect(before[t.dead]?.role).toBe("leader");
    expect(t.newLeader).not.toBe(t.dead);
    const moved = before[t.dead]?.shards ?? [];
    expect(t.shardsMoved).toBe(moved.length);
    expect(t.keys).toBe(tenantsIn(moved) + 1);
    // Every key it held reconciled once, by one controller, and nothing else.
    expect(t.reconciles).toBe(t.keys);
    expect(t.duplicates).toEqual({ twice: 0, byTwoControllers: 0 });
    expect(t.perController[t.dead]).toMatchObject({ reconciles: 0, ecs: 0 });
    const survivors = Object.entries(t.perController).filter(([h]) => h !== t.dead);
    expect(survivors.flatMap(([, c]) => c.shards).sort((a, b) => a - b)).toEqual(allShards);
    for (const [h, c] of survivors) {
      const gained = c.shards.filter((s) => moved.includes(s));
      // What it kept from before is not reconciled again; what it gained is, once.
      expect(c.shards.filter((s) => !moved.includes(s))).toEqual(before[h]?.shards);
      expect(c.reconciles).toBe(tenantsIn(gained) + (h === t.newLeader ? 1 : 0));
    }
    expect(t.ecsSent).toEqual(t.ecs);
    expect(t.ecsWrites).toBe(0);
    expect(t.statusWrites).toBe(0);
    expect(t.otherWrites).toBe(0);
    expect(t.events).toEqual({});
    // The new owners' caches start cold for these tenants: each moved silo tenant's task definition families are described.
    expect(t.ecs["DescribeTaskDefinition"]).toBeGreaterThanOrEqual(4 * siloIn(moved));
    // The dead controller's controller lease is the only one lost: a survivor losing a shard would mean churn.
    expect(t.leaseLosses).toBe(1);
  });
});

describe("scale benchmark floors", () => {
  it("takes the burst at once and the rest at the bucket's rate", () => {
    expect(floorOf("RegisterTaskDefinition", 480)).toEqual({ category: "taskDefinitionModify", calls: 480, seconds: 460 });
    expect(floorOf("RegisterTaskDefinition", 5).seconds).toBe(0);
  });

  it("adds up actions sharing a bucket and reports the slowest bucket", () => {
    // serviceRead: 368 + 5 = 373 calls, burst 100, 20/s; clusterRead: 303, burst 50, 20/s.
    expect(bindingFloor({ DescribeClusters: 302, ListClusters: 1, DescribeServices: 368, ListServices: 5 })).toEqual({
      category: "serviceRead",
      calls: 373,
      seconds: 13.65,
    });
  });
});

describe("scale benchmark flags", () => {
  it("defaults to 10,000 tenants 6/3/1 and 1 then 3 controllers; --quick is 300", () => {
    const a = parseScaleArgs([]);
    expect(a.tenants).toBe(10_000);
    expect(a.mix).toEqual({ basic: 6000, advanced: 3000, premium: 1000 });
    expect(a.controllers).toEqual([1, 3]);
    expect(parseScaleArgs(["--quick"]).tenants).toBe(300);
  });

  it("reads tier counts that sum to --tenants as counts", () => {
    expect(parseScaleArgs(["--tenants", "10", "--basic", "7", "--advanced", "2", "--premium", "1"]).mix).toEqual({
      basic: 7,
      advanced: 2,
      premium: 1,
    });
  });

  it("names the bad flag and its fix", () => {
    expect(() => parseScaleArgs(["--tenants", "ten"])).toThrow("--tenants must be a number");
    expect(() => parseScaleArgs(["--controllers", "1,x"])).toThrow("--controllers must be a count or a comma-separated list");
    expect(() => parseScaleArgs(["--basic", "0", "--advanced", "0", "--premium", "0"])).toThrow("must not all be 0");
    expect(() => parseScaleArgs(["--log-level", "loud"])).toThrow("--log-level must be one of");
  });
});

describe("the scale benchmark's fake ECS", () => {
  it("refuses a DescribeServices of more than 10, as ECS does, and pages ListServices by 100", async () => {
    const ecs = new FakeEcsClient({ sharedClusters: ["c"] });
    const services = Array.from({ length: 11 }, (_, i) => `s${i}`);
    await expect(ecs.send(new DescribeServicesCommand({ cluster: "c", services }))).rejects.toThrow("at most 10");
    await expect(ecs.send(new DescribeServicesCommand({ cluster: "nope", services: ["s"] }))).rejects.toMatchObject({
      name: "ClusterNotFoundException",
    });
    const page = (await ecs.send(new ListServicesCommand({ cluster: "c" }))) as { serviceArns: string[]; nextToken?: string };
    expect(page).toEqual({ serviceArns: [] });
    expect(ecs.served.get("DescribeServices")).toBe(2);
    expect(ecs.reads()).toBe(3);
  });

  it("with ECS's buckets, waits for a token once the burst is spent", async () => {
    let now = 0;
    const ecs = new FakeEcsClient({ throttle: new EcsThrottle(() => now) });
    const register = (i: number) => ecs.send(new RegisterTaskDefinitionCommand({ family: `f${i}`, containerDefinitions: [] }));
    // RegisterTaskDefinition: burst 20, then 1 a second.
    await Promise.all(Array.from({ length: 20 }, (_, i) => register(i)));
    expect(ecs.throttledWaits).toBe(0);
    let done = false;
    const twentyFirst = register(20).then(() => (done = true));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(done).toBe(false);
    now += 1000;
    await twentyFirst;
    expect(ecs.throttledWaits).toBe(1);
    expect(ecs.served.get("RegisterTaskDefinition")).toBe(21);
  });
});
