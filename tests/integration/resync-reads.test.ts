import { DescribeServicesCommand, ListClustersCommand, ListServicesCommand, UpdateServiceCommand } from "@aws-sdk/client-ecs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { diffSnapshots, totalOf, type CallSnapshot } from "../../src/providers/call-counter.js";
import type { RunningController } from "../../src/operator/run-controller.js";
import { serviceName } from "../../src/tiers/naming.js";
import { eventually } from "../support/event-sink.js";
import { startHarness, type OperatorHarness } from "../support/operator.js";

/**
 * One resync pass over Ready tenants (docs/adr/0018): its ECS reads are the
 * survey's batches, not 2-3 per tenant, and drift made before the pass is
 * still repaired by it. RESYNC_READS_REPORT=1 prints the calls per service.
 */
const TENANTS = [
  ...["b1", "b2", "b3", "b4"].map((id) => ({ id, tier: "basic" })),
  ...["a1", "a2", "a3", "a4"].map((id) => ({ id, tier: "advanced" })),
  ...["p1", "p2", "p3", "p4"].map((id) => ({ id, tier: "premium" })),
];
/** The tenants plus the pool key. */
const KEYS = TENANTS.length + 1;

let h: OperatorHarness;
beforeAll(async () => {
  h = await startHarness();
  const started = Date.now();
  for (const t of TENANTS) await h.put({ tenantId: t.id, tier: t.tier, tenantName: t.id });
  await Promise.all(TENANTS.map((t) => h.waitForPhase(t.id, "Ready", 240_000)));
  if (process.env["RESYNC_READS_REPORT"] === "1") console.log(`${TENANTS.length} tenants Ready in ${Date.now() - started} ms`);
}, 300_000);
afterAll(async () => {
  await h?.stop();
});

/** Calls reconciles make; the lease, the stream and the rollout tick call DynamoDB all the time. */
function reconcileCalls(snapshot: CallSnapshot): number {
  return Object.entries(snapshot.calls)
    .filter(([key]) => !key.startsWith("dynamodb:") && !key.startsWith("streams:"))
    .reduce((sum, [, n]) => sum + n, 0);
}

/** Waits until the controller has nothing queued and no reconcile made a call for a while: the pass and what it queued are done. */
async function quiet(c: RunningController): Promise<void> {
  let last = -1;
  let stableSince = Date.now();
  await eventually(
    async () => {
      const n = reconcileCalls(c.calls.snapshot());
      if (n !== last || c.manager.queueDepth > 0) {
        last = n;
        stableSince = Date.now();
        return undefined;
      }
      return Date.now() - stableSince > 2000 ? true : undefined;
    },
    "the controller to go quiet",
    60_000,
    200,
  );
}

async function pass(c: RunningController): Promise<CallSnapshot> {
  await quiet(c);
  const before = c.calls.snapshot();
  expect(await c.manager.resyncNow()).toBe(true);
  await quiet(c);
  return diffSnapshots(before, c.calls.snapshot());
}

function report(label: string, delta: CallSnapshot): void {
  if (process.env["RESYNC_READS_REPORT"] === "1") console.log(label, JSON.stringify(delta.calls, null, 1));
}

/** What ECS holds: the bound on a batched pass is computed from it, not guessed. */
async function account(): Promise<{ clusters: number; describeBatches: number }> {
  const ecs = h.clients.ecs;
  const clusters = (await ecs.send(new ListClustersCommand({}))).clusterArns ?? [];
  let describeBatches = 0;
  for (const arn of clusters) {
    const services = (await ecs.send(new ListServicesCommand({ cluster: arn }))).serviceArns ?? [];
    describeBatches += Math.ceil(services.length / 10);
  }
  return { clusters: clusters.length, describeBatches };
}

describe("a resync pass over Ready tenants", () => {
  it("reads ECS in batches across tenants, and still repairs drift made before it", async () => {
    const { clusters, describeBatches } = await account();
    const c = h.controller;
    // Behind the controller's back, before the pass: one advanced tenant's service scaled.
    const drifted = serviceName(h.config.namePrefix, "a2", "orders");
    const ecs = h.clients.ecs;
    const desired = (await ecs.send(new DescribeServicesCommand({ cluster: h.config.advancedCluster, services: [drifted] }))).services?.[0]
      ?.desiredCount;
    await quiet(c);
    await ecs.send(new UpdateServiceCommand({ cluster: h.config.advancedCluster, service: drifted, desiredCount: (desired ?? 1) + 2 }));

    const delta = await pass(c);
    report("resync pass with drift", delta);
    const ecsCalls = (operation: string) => totalOf(delta, { service: "ecs", operation });

    // Repaired by that very pass: the snapshot showed the drift to a2's reconcile.
    const after = await ecs.send(new DescribeServicesCommand({ cluster: h.config.advancedCluster, services: [drifted] }));
    expect(after.services?.[0]?.desiredCount).toBe(desired);
    expect(ecsCalls("UpdateService")).toBe(1);

    // The survey: one ListClusters page, ceil(clusters/100) DescribeClusters, a ListServices page and
    // ceil(services/10) DescribeServices per listed cluster. Beyond it, only a2's requeues while its
    // scale-down converges read live: one DescribeClusters and one DescribeServices each (its premium
    // cluster does not exist). No other key read ECS.
    const requeues = ecsCalls("DescribeClusters") - Math.ceil(clusters / 100);
    expect(requeues).toBeGreaterThanOrEqual(0);
    expect(ecsCalls("DescribeServices")).toBe(describeBatches + requeues);
    expect(ecsCalls("ListClusters")).toBe(1);
    expect(ecsCalls("ListServices")).toBeLessThanOrEqual(clusters);

    // Nothing drifted: the survey's reads only.
    const steady = await pass(c);
    report("resync pass, nothing drifted", steady);
    expect(totalOf(steady, { service: "ecs", operation: "DescribeClusters" })).toBe(Math.ceil(clusters / 100));
    expect(totalOf(steady, { service: "ecs", operation: "DescribeServices" })).toBe(describeBatches);
    expect(totalOf(steady, { service: "ecs", operation: "UpdateService" })).toBe(0);
    // The listener's rules too: one DescribeRules page and one DescribeTags for the 8 silo tenants' rules (up to 20),
    // where each tenant's observe read its rule and its tags.
    const silo = TENANTS.filter((t) => t.tier !== "basic").length;
    expect(totalOf(steady, { operation: "DescribeRules" })).toBe(1);
    expect(totalOf(steady, { operation: "DescribeTags" })).toBe(Math.ceil(silo / 20));
    // The per-tenant path needs at least one of each per key.
    expect(totalOf(steady, { service: "ecs", operation: "DescribeClusters" })).toBeLessThan(KEYS);
    expect(totalOf(steady, { service: "ecs", operation: "DescribeServices" })).toBeLessThan(KEYS);
  }, 240_000);

  it("after a restart, the first pass reads each silo family's latest revision once, and no more on the next", async () => {
    await h.controller.stop();
    const c = await h.startController();
    h.controller = c;
    await eventually(async () => (c.manager.ready ? true : undefined), "the new controller to lead", 60_000);
    await quiet(c);
    const first = diffSnapshots({ calls: {}, attempts: {} }, c.calls.snapshot());
    report("first pass after a restart", first);
    const silo = TENANTS.filter((t) => t.tier !== "basic").length;
    // 4 families per silo tenant and 4 for the pool, at most once each.
    expect(totalOf(first, { service: "ecs", operation: "DescribeTaskDefinition" })).toBeLessThanOrEqual((silo + 1) * 4);
    const second = await pass(c);
    report("second pass after a restart", second);
    expect(totalOf(second, { service: "ecs", operation: "DescribeTaskDefinition" })).toBe(0);
  }, 240_000);
});
