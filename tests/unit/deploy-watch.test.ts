import { describe, expect, it } from "vitest";
import { defaultCatalogue, type Catalogue } from "../../src/apps/catalogue.js";
import { tenantRecordSchema } from "../../src/tenants/record.js";
import { desiredForTenant, footprintForTenant, type TierSettings } from "../../src/tiers/desired.js";
import { recordDeploys, watchDeploys, type DeployLedger } from "../../src/tiers/deploy-watch.js";
import { diff } from "../../src/tiers/diff.js";
import type { DesiredState, ObservedDeployment, ObservedService, ObservedState } from "../../src/tiers/model.js";

const settings: TierSettings = {
  namePrefix: "saas",
  poolCluster: "saas-pool",
  advancedCluster: "saas-advanced",
  subnets: ["subnet-0a"],
  securityGroups: ["sg-0a"],
};
const NOW = new Date("2026-12-01T10:00:00.000Z");
const spec = tenantRecordSchema.parse({ tenantId: "acme", tenantName: "Acme", tier: "advanced" });
const footprint = footprintForTenant("acme", settings);
const withOrders = (version: string): Catalogue => ({
  apps: { ...defaultCatalogue.apps, orders: { ...defaultCatalogue.apps.orders, version } },
});
const v1 = desiredForTenant(spec, withOrders("1.0.0"), settings);
const v2 = desiredForTenant(spec, withOrders("2.0.0"), settings);
const ORDERS = "saas-advanced/saas-t-acme-orders";
const ordersFamily = (d: DesiredState) => d.taskDefinitions.find((t) => t.app === "orders");
const arn = (revision: number) => `arn:aws:ecs:us-east-1:123456789012:task-definition/saas-t-acme-orders:${revision}`;

function dep(over: Partial<ObservedDeployment>): ObservedDeployment {
  return {
    id: "ecs-svc/1",
    status: "PRIMARY",
    rolloutState: "COMPLETED",
    rolloutStateReason: undefined,
    desiredCount: 1,
    runningCount: 1,
    failedTasks: 0,
    taskDefinitionArn: arn(1),
    ...over,
  };
}

/** Every service of `d` running its content at revision 1, except orders as given. */
function world(d: DesiredState, orders: Partial<ObservedService>, latestOrders?: { revision: number; hash: string }): ObservedState {
  return {
    clusters: [],
    taskDefinitions: d.taskDefinitions.map((t) => {
      const latest = t.app === "orders" && latestOrders !== undefined ? latestOrders : { revision: 1, hash: t.contentHash };
      return {
        family: t.family,
        arn: arn(latest.revision).replace("saas-t-acme-orders", t.family),
        revision: latest.revision,
        contentHash: latest.hash,
        tags: t.tags,
      };
    }),
    services: d.services.map((s) => {
      const td = d.taskDefinitions.find((t) => t.family === s.taskDefinitionFamily);
      const base: ObservedService = {
        cluster: s.cluster,
        name: s.name,
        arn: `arn:aws:ecs:us-east-1:123456789012:service/${s.cluster}/${s.name}`,
        status: "ACTIVE",
        desiredCount: s.desiredCount,
        runningCount: s.desiredCount,
        taskDefinitionArn: arn(1).replace("saas-t-acme-orders", s.taskDefinitionFamily),
        taskDefinitionContentHash: td?.contentHash,
        deployments: [dep({ taskDefinitionArn: arn(1).replace("saas-t-acme-orders", s.taskDefinitionFamily) })],
        tags: s.tags,
      };
      return s.app === "orders" ? { ...base, ...orders } : base;
    }),
  };
}

const h1 = ordersFamily(v1)?.contentHash ?? "";
const h2 = ordersFamily(v2)?.contentHash ?? "";

describe("the ledger of our deployments", () => {
  it("opens a record for each service the plan deploys new content to, with the deployment it replaces", () => {
    const before = world(v2, { taskDefinitionContentHash: h1 }, { revision: 1, hash: h1 });
    const plan = diff(v2, before, footprint);
    expect(plan.actions.map((a) => a.kind)).toEqual(["registerTaskDefinition", "updateService"]);
    const ledger = recordDeploys({}, plan.actions, v2, before, NOW);
    expect(ledger).toEqual({
      [ORDERS]: { contentHash: h2, image: "public.ecr.aws/saas-factory/orders:2.0.0", startedAt: NOW.toISOString(), replaced: "ecs-svc/1" },
    });
  });

  const open: DeployLedger = {
    [ORDERS]: { contentHash: h2, image: "orders:2.0.0", startedAt: NOW.toISOString(), replaced: "ecs-svc/1" },
  };

  it("closes the record once the service is steady on the content, and says so (for pruning)", () => {
    const w = watchDeploys(
      open,
      v2,
      world(v2, {
        taskDefinitionContentHash: h2,
        taskDefinitionArn: arn(2),
        deployments: [dep({ id: "ecs-svc/2", taskDefinitionArn: arn(2) })],
      }),
      NOW,
    );
    expect(w.ledger).toEqual({});
    expect(w.completed.map((s) => s.name)).toEqual(["saas-t-acme-orders"]);
    expect(w.failures).toEqual([]);
  });

  it("keeps it open while ECS still shows the deployment it replaced, or ours rolling", () => {
    const stale = watchDeploys(open, v2, world(v2, { taskDefinitionContentHash: h1 }), NOW);
    expect(stale.ledger).toEqual(open);
    expect(stale.newlyFailed).toEqual([]);
    const rolling = watchDeploys(
      open,
      v2,
      world(v2, {
        taskDefinitionContentHash: h2,
        deployments: [
          dep({ id: "ecs-svc/2", rolloutState: "IN_PROGRESS", runningCount: 0, taskDefinitionArn: arn(2) }),
          dep({ status: "ACTIVE" }),
        ],
      }),
      NOW,
    );
    expect(rolling.ledger).toEqual(open);
    expect(rolling.completed).toEqual([]);
  });

  it.each([
    {
      reason: "the failed deployment is still listed (rollback under way)",
      deployments: [
        dep({
          id: "ecs-svc/3",
          rolloutState: "IN_PROGRESS",
          rolloutStateReason: "ECS deployment circuit breaker: rolling back to deploymentId ecs-svc/1.",
        }),
        dep({
          id: "ecs-svc/2",
          status: "ACTIVE",
          rolloutState: "FAILED",
          rolloutStateReason: "ECS deployment circuit breaker: tasks failed to start.",
          taskDefinitionArn: arn(2),
        }),
      ],
      why: /tasks failed to start.*rolled the service back/,
    },
    {
      reason: "the rollback is over and ECS dropped the failed deployment",
      deployments: [dep({ id: "ecs-svc/3", rolloutStateReason: "ECS deployment ecs-svc/3 completed." })],
      why: /rolled the service back to its previous task definition/,
    },
  ])("marks it failed when ECS's circuit breaker rolled the service back: $reason", ({ deployments, why }) => {
    const observed = world(v2, { taskDefinitionContentHash: h1, deployments }, { revision: 2, hash: h2 });
    const w = watchDeploys(open, v2, observed, NOW);
    expect(w.newlyFailed).toHaveLength(1);
    expect(w.newlyFailed[0]).toMatchObject({ service: ORDERS, image: "orders:2.0.0" });
    expect(w.newlyFailed[0]?.reason).toMatch(why);
    expect(w.ledger[ORDERS]?.failed?.at).toBe(NOW.toISOString());
    // The diff does not deploy it again: a problem instead of an UpdateService.
    const plan = diff(v2, observed, footprint, { blocked: w.blocked });
    expect(plan.actions).toEqual([]);
    expect(plan.problems).toEqual([expect.stringContaining("orders:2.0.0 failed to deploy")]);
    // Later looks keep it failed (not newly), as long as the same content is wanted.
    const again = watchDeploys(w.ledger, v2, observed, new Date(NOW.getTime() + 60_000));
    expect(again.newlyFailed).toEqual([]);
    expect(again.failures).toHaveLength(1);
    expect(again.ledger).toEqual(w.ledger);
  });

  it("marks it failed when the deployment FAILED without a rollback", () => {
    const observed = world(v2, {
      taskDefinitionContentHash: h2,
      deployments: [
        dep({
          id: "ecs-svc/2",
          rolloutState: "FAILED",
          rolloutStateReason: "ECS deployment circuit breaker: tasks failed to start.",
          runningCount: 0,
        }),
      ],
    });
    expect(watchDeploys(open, v2, observed, NOW).newlyFailed).toHaveLength(1);
  });

  it("forgets a record, failed or not, once other content is wanted", () => {
    const failed: DeployLedger = { [ORDERS]: { ...open[ORDERS]!, failed: { reason: "x", at: NOW.toISOString() } } };
    const back = watchDeploys(failed, v1, world(v1, {}), NOW);
    expect(back.ledger).toEqual({});
    expect(back.blocked.size).toBe(0);
  });
});

describe("going back to a revision a service already runs", () => {
  it("registers nothing and updates nothing when every service of the family runs the wanted content", () => {
    // The family's latest revision (2) is the one that failed; the service was rolled back to revision 1, which v1 wants.
    const observed = world(v1, { taskDefinitionContentHash: h1 }, { revision: 2, hash: h2 });
    const plan = diff(v1, observed, footprint);
    expect(plan.actions).toEqual([]);
    expect(plan.converged).toBe(true);
  });

  it("registers anew when the service does not run it", () => {
    const observed = world(v1, { taskDefinitionContentHash: h2, taskDefinitionArn: arn(2) }, { revision: 2, hash: h2 });
    expect(diff(v1, observed, footprint).actions.map((a) => a.kind)).toEqual(["registerTaskDefinition", "updateService"]);
  });
});
