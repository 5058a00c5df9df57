import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CreateClusterCommand, CreateServiceCommand, DeleteServiceCommand, UpdateServiceCommand } from "@aws-sdk/client-ecs";
import { afterAll, beforeAll, expect, it } from "vitest";
import { MANAGED_BY, OPERATOR, TENANT_ID } from "../../chaos/audit.js";
import { fleet } from "../../chaos/records.js";
import { killLeaders, killRounds, World } from "../../chaos/scenarios.js";
import { serviceName } from "../../src/tiers/naming.js";

/**
 * The short version of `npm run chaos` (RELIABILITY.md): a local AWS from
 * `tenantctl local --no-controller`, `tenantctl controller` processes
 * configured from nothing but its export line, three kill -9 rounds while ten
 * tenants onboard, then two controllers and the leader killed. The auditor
 * reads the result through the SDK: nothing lost, duplicated or orphaned, no
 * look-alike written, and the standby took over within the lease. Then it is
 * shown one of each fault, so a blind auditor cannot pass.
 */
const LEASE_SECONDS = 3;
let world: World;

beforeAll(async () => {
  world = await World.start("ci", {
    logDir: mkdtempSync(join(tmpdir(), "chaos-ci-")),
    seed: 20261130,
    settleTimeoutMs: 150_000,
    leaseSeconds: LEASE_SECONDS,
    ...(process.env["CHAOS_PROGRESS"] ? { progress: (l: string) => process.stderr.write(`${l}\n`) } : {}),
  });
}, 120_000);

afterAll(async () => {
  await world?.close();
}, 60_000);

it("loses, duplicates and orphans nothing and writes no look-alike through kill -9 rounds and a leader kill", async () => {
  const records = fleet(10, "ci");
  await world.seedLookalikes(["ghost-a", "ghost-b", "ghost-c", "ghost-d"], "ci-003");
  await world.write(records);

  const kills = await killRounds(world, { rounds: 3, maxKillDelayMs: 1500, leaseSeconds: LEASE_SECONDS });
  expect(kills).toHaveLength(3);
  // The kills landed while tenants were still onboarding, or they prove little.
  expect(kills[0]?.notReady).toBeGreaterThan(0);

  const { samples, maxLeaders } = await killLeaders(world, { controllers: 2, kills: 1, leaseSeconds: LEASE_SECONDS, writesPerKill: 2 }, []);
  expect(samples).toHaveLength(1);
  const [takeover] = samples;
  // The standby leads within the lease (plus the write that takes it, with a loaded machine's margin)...
  expect(takeover?.toLeaseMs).toBeLessThan(LEASE_SECONDS * 1000 + 5000);
  // ...and is reconciling soon after: one reconcile on a busy 2-core machine, generously.
  expect(takeover?.toReconcileMs).toBeLessThan(LEASE_SECONDS * 1000 + 60_000);
  expect(maxLeaders).toBe(1);

  expect(await world.settle(150_000)).toBeDefined();
  const report = await world.audit();
  expect(report.lost).toEqual([]);
  expect(report.duplicates).toEqual([]);
  expect(report.orphans).toEqual([]);
  expect(report.unmanagedWrites).toEqual([]);
  // What was read: 12 records (6 basic, 4 advanced, 2 premium); 4 pooled services and 4 for each silo tenant;
  // a stack and a user pool for each silo tenant and the pool; the 2 shared clusters and 2 premium ones.
  expect(report.counts).toMatchObject({ records: 12, service: 28, stack: 7, userPool: 7, namespace: 7, rule: 6, cluster: 4 });

  // One of each fault, made by hand with every controller stopped: the auditor sees each.
  await world.fleet.stopAll();
  const ecs = world.cloud.clients.ecs;
  const config = world.cloud.config;
  const lookalike = world.lookalikes?.seeded.find((l) => l.kind === "service");
  await ecs.send(new UpdateServiceCommand({ cluster: lookalike?.cluster, service: lookalike?.name, desiredCount: 3 }));
  await ecs.send(
    new DeleteServiceCommand({ cluster: config.advancedCluster, service: serviceName(config.namePrefix, "ci-003", "users"), force: true }),
  );
  const tags = (tenantId: string) => [
    { key: MANAGED_BY, value: OPERATOR },
    { key: TENANT_ID, value: tenantId },
    { key: "app", value: "orders" },
  ];
  await ecs.send(
    new CreateServiceCommand({
      cluster: config.poolCluster,
      serviceName: "second-orders-of-ci-004",
      taskDefinition: "chaos-handmade",
      desiredCount: 0,
      launchType: "FARGATE",
      networkConfiguration: { awsvpcConfiguration: { subnets: [...config.subnets], securityGroups: [...config.securityGroups] } },
      tags: tags("ci-004"),
    }),
  );
  await ecs.send(new CreateClusterCommand({ clusterName: "left-behind", tags: tags("nobody") }));
  const seen = await world.audit();
  expect(seen.unmanagedWrites.map((f) => f.what)).toEqual([expect.stringContaining(lookalike?.name ?? "?")]);
  expect(seen.lost).toEqual([{ tenantId: "ci-003", what: expect.stringContaining("no ACTIVE users service") as string }]);
  expect(seen.duplicates).toEqual([{ tenantId: "ci-004", what: expect.stringContaining("second-orders-of-ci-004") as string }]);
  expect(seen.orphans).toEqual([{ tenantId: "nobody", what: expect.stringContaining("left-behind") as string }]);
}, 300_000);
