import { describe, expect, it } from "vitest";
import { defaultCatalogue } from "../../src/apps/catalogue.js";
import { tenantRecordSchema } from "../../src/tenants/record.js";
import { desiredForTenant, desiredPool, footprintForPool, footprintForTenant, type TierSettings } from "../../src/tiers/desired.js";
import { diff, serviceConnectDifference } from "../../src/tiers/diff.js";
import {
  NOTHING,
  type Action,
  type AppContext,
  type DesiredServiceConnect,
  type DesiredState,
  type ObservedDeployment,
  type ObservedService,
  type ObservedState,
  type Plan,
} from "../../src/tiers/model.js";
import { objectContaining, stringContaining } from "../support/matchers.js";

const settings: TierSettings = {
  namePrefix: "saas",
  poolCluster: "saas-pool",
  advancedCluster: "saas-advanced",
  subnets: ["subnet-0a"],
  securityGroups: ["sg-0a"],
};
const ID = "3f2b9c1e-0d4a-4c8e-9a51-7f3e2d1c0b9a";
const PREMIUM = `saas-t-${ID}`;
const footprint = footprintForTenant(ID, settings);

function desired(fields: Record<string, unknown> = {}): DesiredState {
  const spec = tenantRecordSchema.parse({ tenantId: ID, tenantName: "Acme", tier: "advanced", ...fields });
  return desiredForTenant(spec, defaultCatalogue, settings);
}

const tdArn = (family: string, revision = 1) => `arn:aws:ecs:us-east-1:123456789012:task-definition/${family}:${revision}`;

function deployment(over: Partial<ObservedDeployment> = {}): ObservedDeployment {
  return {
    id: "ecs-svc/1",
    status: "PRIMARY",
    rolloutState: "COMPLETED",
    rolloutStateReason: undefined,
    desiredCount: 1,
    runningCount: 1,
    failedTasks: 0,
    taskDefinitionArn: "",
    ...over,
  };
}

const NS = { name: "saas-acme-0123456789ab", arn: "arn:aws:servicediscovery:us-east-1:123456789012:namespace/ns-1" };
const CONTEXT: AppContext = { region: "us-east-1", accountId: "123456789012", namespace: NS };

function desiredWithNamespace(fields: Record<string, unknown> = {}, context: AppContext = CONTEXT): DesiredState {
  const spec = tenantRecordSchema.parse({ tenantId: ID, tenantName: "Acme", tier: "advanced", ...fields });
  return desiredForTenant(spec, defaultCatalogue, settings, undefined, context);
}

/** What ECS reports for a desired Service Connect: the namespace as its ARN. */
const reported = (sc: DesiredServiceConnect) => ({ enabled: true, namespace: sc.namespace.arn, servers: sc.servers, log: sc.log });

/** The world as it looks once `d` has been applied and ECS has settled. */
function converged(d: DesiredState): ObservedState {
  return {
    clusters: d.clusters.map((c) => ({
      name: c.name,
      arn: `arn:aws:ecs:us-east-1:123456789012:cluster/${c.name}`,
      status: "ACTIVE",
      tags: c.tags,
    })),
    taskDefinitions: d.taskDefinitions.map((t) => ({
      family: t.family,
      arn: tdArn(t.family),
      revision: 1,
      contentHash: t.contentHash,
      tags: t.tags,
    })),
    services: d.services.map((s) => {
      const td = d.taskDefinitions.find((t) => t.family === s.taskDefinitionFamily);
      const arn = tdArn(s.taskDefinitionFamily);
      return {
        cluster: s.cluster,
        name: s.name,
        arn: `arn:aws:ecs:us-east-1:123456789012:service/${s.cluster}/${s.name}`,
        status: "ACTIVE",
        desiredCount: s.desiredCount,
        runningCount: s.desiredCount,
        taskDefinitionArn: arn,
        taskDefinitionContentHash: td?.contentHash,
        deployments: [deployment({ desiredCount: s.desiredCount, runningCount: s.desiredCount, taskDefinitionArn: arn })],
        ...(s.serviceConnect !== undefined ? { serviceConnect: reported(s.serviceConnect) } : {}),
        tags: s.tags,
      };
    }),
  };
}

/** Replaces the observed services matching `app` (and optionally a cluster). */
function withService(
  o: ObservedState,
  match: (s: ObservedService) => boolean,
  edit: (s: ObservedService) => ObservedService,
): ObservedState {
  return { ...o, services: o.services.map((s) => (match(s) ? edit(s) : s)) };
}

const app = (name: string) => (s: ObservedService) => s.name.endsWith(`-${name}`);
const kinds = (p: Plan) => p.actions.map((a) => a.kind);
const serviceOf = (a: Action) => ("service" in a ? a.service.name : "name" in a ? a.name : undefined);

function expectReasons(p: Plan): void {
  for (const a of p.actions) expect(a.reason.length, a.kind).toBeGreaterThan(0);
}

describe("diff: nothing to do", () => {
  it.each([
    { reason: "advanced tenant as desired", d: desired(), f: footprint },
    { reason: "premium tenant as desired", d: desired({ tier: "premium" }), f: footprint },
    { reason: "the pool as desired", d: desiredPool(defaultCatalogue, settings), f: footprintForPool(settings) },
    { reason: "an offboarded tenant with nothing left", d: NOTHING, f: footprint },
  ])("yields zero actions and converged: $reason", ({ d, f }) => {
    const p = diff(d, d === NOTHING ? { clusters: [], services: [], taskDefinitions: [] } : converged(d), f);
    expect(p).toEqual({ actions: [], waitingFor: [], problems: [], converged: true });
  });

  it("accepts rolloutState undefined when the counts match (no circuit breaker)", () => {
    const d = desired();
    const o = withService(
      converged(d),
      () => true,
      (s) => ({ ...s, deployments: s.deployments.map((dep) => ({ ...dep, rolloutState: undefined })) }),
    );
    expect(diff(d, o, footprint).converged).toBe(true);
  });

  it("recognises the running revision by arn when its content hash is unknown", () => {
    const d = desired();
    const o = withService(
      converged(d),
      () => true,
      (s) => ({ ...s, taskDefinitionContentHash: undefined }),
    );
    expect(diff(d, o, footprint)).toMatchObject({ actions: [], converged: true });
  });
});

describe("diff: exactly the needed calls", () => {
  it("makes one updateService with desiredCount only when a desiredCount changes", () => {
    const before = desired();
    const after = desired({ apps: { orders: { desiredCount: 3 } } });
    const p = diff(after, converged(before), footprint);
    expect(p.actions).toEqual([
      {
        kind: "updateService",
        cluster: "saas-advanced",
        name: `saas-t-${ID}-orders`,
        desiredCount: 3,
        reason: stringContaining("desiredCount 1 -> 3"),
      },
    ]);
    expect(p.converged).toBe(false);
  });

  it("registers and rolls out only the app whose version changed", () => {
    const before = desired();
    const after = desired({ apps: { users: { version: "2.0.0" } } });
    const p = diff(after, converged(before), footprint);
    expect(kinds(p)).toEqual(["registerTaskDefinition", "updateService"]);
    const [register, update] = p.actions;
    expect(register).toMatchObject({ kind: "registerTaskDefinition", taskDefinition: { family: `saas-t-${ID}-users` } });
    expect(update).toEqual({
      kind: "updateService",
      cluster: "saas-advanced",
      name: `saas-t-${ID}-users`,
      taskDefinitionFamily: `saas-t-${ID}-users`,
      reason: stringContaining("task definition"),
    });
    expect(update).not.toHaveProperty("desiredCount");
  });

  it("combines a desiredCount and a version change of one app into one update", () => {
    const p = diff(desired({ apps: { orders: { version: "9", desiredCount: 2 } } }), converged(desired()), footprint);
    expect(kinds(p)).toEqual(["registerTaskDefinition", "updateService"]);
    expect(p.actions[1]).toMatchObject({ desiredCount: 2, taskDefinitionFamily: `saas-t-${ID}-orders` });
  });

  it("moves a service whose content hash is unknown and whose arn is not the latest matching revision", () => {
    const d = desired();
    const o = withService(converged(d), app("orders"), (s) => ({
      ...s,
      taskDefinitionContentHash: undefined,
      taskDefinitionArn: tdArn(`saas-t-${ID}-orders`, 0),
    }));
    const p = diff(d, o, footprint);
    expect(p.actions).toEqual([
      objectContaining({ kind: "updateService", name: `saas-t-${ID}-orders`, taskDefinitionFamily: `saas-t-${ID}-orders` }),
    ]);
  });

  it("does not re-register when the latest revision already has the content, but still moves a service left behind", () => {
    const d = desired();
    const o = withService(converged(d), app("rproxy"), (s) => ({ ...s, taskDefinitionContentHash: "old" }));
    expect(kinds(diff(d, o, footprint))).toEqual(["updateService"]);
  });

  it("creates everything from nothing for an advanced tenant, task definitions before services", () => {
    const p = diff(desired(), { clusters: [], services: [], taskDefinitions: [] }, footprint);
    expect(kinds(p)).toEqual([...Array<string>(4).fill("registerTaskDefinition"), ...Array<string>(4).fill("createService")]);
    for (const a of p.actions) if (a.kind === "createService") expect(a.service.cluster).toBe("saas-advanced");
    expectReasons(p);
  });

  it("creates the cluster first for a premium tenant from nothing", () => {
    const p = diff(desired({ tier: "premium" }), { clusters: [], services: [], taskDefinitions: [] }, footprint);
    expect(kinds(p)).toEqual([
      "createCluster",
      ...Array<string>(4).fill("registerTaskDefinition"),
      ...Array<string>(4).fill("createService"),
    ]);
    expect(p.actions[0]).toMatchObject({ kind: "createCluster", cluster: { name: PREMIUM } });
    for (const a of p.actions) if (a.kind === "createService") expect(a.service.cluster).toBe(PREMIUM);
  });

  it("creates a service again once its deleted predecessor is INACTIVE", () => {
    const d = desired();
    const o = withService(converged(d), app("orders"), (s) => ({ ...s, status: "INACTIVE" }));
    expect(diff(d, o, footprint).actions).toEqual([
      objectContaining({ kind: "createService", service: objectContaining({ app: "orders" }) }),
    ]);
  });
});

describe("diff: Service Connect", () => {
  it("plans nothing when the services run the desired Service Connect", () => {
    const d = desiredWithNamespace();
    expect(diff(d, converged(d), footprint)).toEqual({ actions: [], waitingFor: [], problems: [], converged: true });
  });

  it("accepts the namespace reported by name as well as by ARN", () => {
    const d = desiredWithNamespace();
    const o = withService(
      converged(d),
      () => true,
      (s) => ({ ...s, serviceConnect: { ...s.serviceConnect!, namespace: NS.name } }),
    );
    expect(diff(d, o, footprint).actions).toEqual([]);
  });

  it("turns it on for every service once a namespace is given, with UpdateService only (task definitions but rproxy's unchanged), saying why", () => {
    const d = desiredWithNamespace();
    const before = converged(desiredWithNamespace({}, { region: "us-east-1", accountId: "123456789012" }));
    const p = diff(d, before, footprint);
    // rproxy reads NAMESPACE, so its task definition changes too; the others only change service.
    expect(kinds(p)).toEqual(["registerTaskDefinition", ...Array<string>(4).fill("updateService")]);
    const orders = p.actions.find((a) => a.kind === "updateService" && a.name.endsWith("-orders"));
    expect(orders).toEqual({
      kind: "updateService",
      cluster: "saas-advanced",
      name: `saas-t-${ID}-orders`,
      serviceConnect: {
        namespace: NS,
        servers: [{ portName: "orders", discoveryName: "orders-api", port: 3010, dnsName: `orders-api.${NS.name}.sc` }],
      },
      reason: stringContaining(`Service Connect: off -> on in namespace ${NS.name}`),
    });
    const rproxy = p.actions.find((a) => a.kind === "updateService" && a.name.endsWith("-rproxy"));
    expect(rproxy).toMatchObject({ taskDefinitionFamily: `saas-t-${ID}-rproxy`, serviceConnect: { namespace: NS, servers: [] } });
  });

  it("updates a service whose discovery name differs, and only that one", () => {
    const d = desiredWithNamespace();
    const o = withService(converged(d), app("users"), (s) => ({
      ...s,
      serviceConnect: { ...s.serviceConnect!, servers: [{ ...s.serviceConnect!.servers[0]!, discoveryName: "people" }] },
    }));
    const p = diff(d, o, footprint);
    expect(p.actions).toEqual([
      objectContaining({
        kind: "updateService",
        name: `saas-t-${ID}-users`,
        serviceConnect: objectContaining({ namespace: NS }),
        reason: stringContaining("servers"),
      }),
    ]);
    expect(p.actions[0]).not.toHaveProperty("taskDefinitionFamily");
    expect(p.actions[0]).not.toHaveProperty("desiredCount");
  });

  it("turns it off when the desired state has none but the service runs it", () => {
    const d = desired();
    const o = withService(converged(d), app("orders"), (s) => ({
      ...s,
      serviceConnect: { enabled: true, namespace: NS.arn, servers: [], log: undefined },
    }));
    expect(diff(d, o, footprint).actions).toEqual([
      objectContaining({ kind: "updateService", serviceConnect: "disable", reason: stringContaining("-> off") }),
    ]);
  });

  it.each([
    { reason: "equal", o: { enabled: true, namespace: NS.arn, servers: [], log: undefined }, differs: false },
    { reason: "reported disabled", o: { enabled: false, namespace: undefined, servers: [], log: undefined }, differs: true },
    { reason: "another namespace", o: { enabled: true, namespace: "arn:other", servers: [], log: undefined }, differs: true },
    {
      reason: "a proxy log configuration not wanted",
      o: { enabled: true, namespace: NS.arn, servers: [], log: { group: "g", streamPrefix: "p" } },
      differs: true,
    },
  ])("compares a client-only configuration: $reason", ({ o, differs }) => {
    expect(serviceConnectDifference({ namespace: NS, servers: [] }, o) !== undefined).toBe(differs);
  });

  it("combines a Service Connect change with a desiredCount change into one update", () => {
    const d = desiredWithNamespace({ apps: { users: { desiredCount: 2 } } });
    const before = converged(desiredWithNamespace());
    const o = withService(before, app("users"), ({ serviceConnect: _off, ...s }) => s);
    const users = diff(d, o, footprint).actions.filter((a) => "name" in a && a.name.endsWith("-users"));
    expect(users).toEqual([
      objectContaining({ kind: "updateService", desiredCount: 2, serviceConnect: objectContaining({ namespace: NS }) }),
    ]);
  });
});

describe("diff: waiting", () => {
  it("waits for a desired service that is still DRAINING from a deletion", () => {
    const d = desired();
    const o = withService(converged(d), app("orders"), (s) => ({ ...s, status: "DRAINING" }));
    const p = diff(d, o, footprint);
    expect(p.actions).toEqual([]);
    expect(p.waitingFor).toEqual([stringContaining("DRAINING")]);
    expect(p.converged).toBe(false);
  });

  it("waits for a premium cluster that is still provisioning and places nothing in it", () => {
    const d = desired({ tier: "premium" });
    const o = converged(d);
    const p = diff(d, { ...o, clusters: o.clusters.map((c) => ({ ...c, status: "PROVISIONING" })), services: [] }, footprint);
    expect(kinds(p)).toEqual([]);
    expect(p.waitingFor).toEqual([`cluster ${PREMIUM} is PROVISIONING`]);
  });

  it("waits while a deployment rolls out, saying how far it is", () => {
    const d = desired({ apps: { orders: { desiredCount: 3 } } });
    const o = withService(converged(d), app("orders"), (s) => ({
      ...s,
      runningCount: 1,
      deployments: [deployment({ rolloutState: "IN_PROGRESS", desiredCount: 3, runningCount: 1, taskDefinitionArn: s.taskDefinitionArn })],
    }));
    const p = diff(d, o, footprint);
    expect(p.actions).toEqual([]);
    expect(p.waitingFor).toEqual([stringContaining("1/3 tasks running")]);
  });

  it.each([
    {
      reason: "a task stopped after the rollout completed",
      rolloutState: "COMPLETED" as const,
      running: 1,
      primaryRunning: 2,
      says: "1/2 tasks running",
    },
    {
      reason: "no circuit breaker and the new deployment is short of tasks while the old one drains",
      rolloutState: undefined,
      running: 2,
      primaryRunning: 1,
      says: "rollout in progress",
    },
  ])(
    "is not steady until the primary deployment and the service run every desired task: $reason",
    ({ rolloutState, running, primaryRunning, says }) => {
      const d = desired({ apps: { rproxy: { desiredCount: 2 } } });
      const o = withService(converged(d), app("rproxy"), (s) => ({
        ...s,
        runningCount: running,
        deployments: [
          deployment({ rolloutState, desiredCount: 2, runningCount: primaryRunning, taskDefinitionArn: s.taskDefinitionArn }),
          ...(running > primaryRunning
            ? [
                deployment({
                  id: "ecs-svc/0",
                  status: "ACTIVE",
                  rolloutState,
                  runningCount: running - primaryRunning,
                  taskDefinitionArn: tdArn("old"),
                }),
              ]
            : []),
        ],
      }));
      const p = diff(d, o, footprint);
      expect(p.actions).toEqual([]);
      expect(p.waitingFor).toEqual([stringContaining(says)]);
      expect(p.converged).toBe(false);
    },
  );

  it("reports a FAILED rollout as a problem with its reason", () => {
    const d = desired({ apps: { users: { version: "crashloop" } } });
    const o = withService(converged(d), app("users"), (s) => ({
      ...s,
      runningCount: 0,
      deployments: [
        deployment({
          rolloutState: "FAILED",
          rolloutStateReason: "ECS deployment circuit breaker: tasks failed to start (crashloop)",
          runningCount: 0,
          failedTasks: 3,
          taskDefinitionArn: s.taskDefinitionArn,
        }),
      ],
    }));
    const p = diff(d, o, footprint);
    expect(p.actions).toEqual([]);
    expect(p.problems).toEqual([stringContaining("tasks failed to start (crashloop)")]);
    expect(p.converged).toBe(false);
  });

  it("does not redeploy a revision whose rollout failed and was rolled back", () => {
    const d = desired({ apps: { users: { version: "crashloop" } } });
    const family = `saas-t-${ID}-users`;
    const o = withService(converged(d), app("users"), (s) => ({
      ...s,
      taskDefinitionArn: tdArn(family, 0),
      taskDefinitionContentHash: "previous",
      deployments: [
        deployment({ taskDefinitionArn: tdArn(family, 0) }),
        deployment({
          id: "ecs-svc/2",
          status: "INACTIVE",
          rolloutState: "FAILED",
          rolloutStateReason: "circuit breaker",
          taskDefinitionArn: tdArn(family, 1),
        }),
      ],
    }));
    const p = diff(d, o, footprint);
    expect(p.actions).toEqual([]);
    expect(p.problems).toEqual([stringContaining("circuit breaker")]);
  });
});

describe("diff: deletions", () => {
  it("offboards a premium tenant: each service scaled to 0 then deleted, the cluster waits", () => {
    const o = converged(desired({ tier: "premium", apps: { products: { desiredCount: 0 } } }));
    const p = diff(NOTHING, o, footprint);
    const steps = p.actions.map(
      (a) => `${a.kind}:${serviceOf(a)?.replace(`saas-t-${ID}-`, "")}${a.kind === "updateService" ? `=${a.desiredCount}` : ""}`,
    );
    expect(steps).toEqual([
      "updateService:orders=0",
      "deleteService:orders",
      "deleteService:products", // already at 0: no scale-down call
      "updateService:users=0",
      "deleteService:users",
      "updateService:rproxy=0",
      "deleteService:rproxy",
    ]);
    expect(p.waitingFor).toEqual([stringContaining(`cluster ${PREMIUM} is not desired`)]);
    expectReasons(p);
  });

  it.each([
    { reason: "services still draining", status: "DRAINING" as const, kinds: [], waiting: 5 },
    { reason: "services all INACTIVE", status: "INACTIVE" as const, kinds: ["deleteCluster"], waiting: 0 },
  ])("deletes the premium cluster only once its services are gone: $reason", ({ status, kinds: expected, waiting }) => {
    const o = converged(desired({ tier: "premium" }));
    const p = diff(NOTHING, { ...o, services: o.services.map((s) => ({ ...s, status })) }, footprint);
    expect(kinds(p)).toEqual(expected);
    expect(p.waitingFor).toHaveLength(waiting);
    if (status === "INACTIVE") expect(p.actions[0]).toMatchObject({ kind: "deleteCluster", cluster: PREMIUM });
  });

  it("moves a tenant from advanced to premium: creates in its cluster, deletes from the shared one, reuses task definitions", () => {
    const p = diff(desired({ tier: "premium" }), converged(desired()), footprint);
    expect(kinds(p)).toEqual([
      "createCluster",
      ...Array<string>(4).fill("createService"),
      ...Array<string[]>(4).fill(["updateService", "deleteService"]).flat(),
    ]);
    for (const a of p.actions) {
      if (a.kind === "createService") expect(a.service.cluster).toBe(PREMIUM);
      if (a.kind === "updateService" || a.kind === "deleteService") expect(a.cluster).toBe("saas-advanced");
    }
  });

  it("moves a tenant from premium to advanced: the premium cluster waits for its services", () => {
    const p = diff(desired(), converged(desired({ tier: "premium" })), footprint);
    expect(kinds(p)).toEqual([
      ...Array<string>(4).fill("createService"),
      ...Array<string[]>(4).fill(["updateService", "deleteService"]).flat(),
    ]);
    expect(p.waitingFor).toEqual([stringContaining(`cluster ${PREMIUM}`)]);
  });

  it("moves a tenant from advanced to basic: removes its services, keeps nothing", () => {
    const p = diff(desired({ tier: "basic" }), converged(desired()), footprint);
    expect(kinds(p)).toEqual(Array<string[]>(4).fill(["updateService", "deleteService"]).flat());
  });
});

describe("diff: unmanaged resources are never touched", () => {
  const unmanaged = { owner: "someone-else" };

  it("reports, and leaves alone, an unmanaged service and cluster in the footprint", () => {
    const o = converged(desired({ tier: "premium" }));
    const p = diff(
      NOTHING,
      { ...o, clusters: o.clusters.map((c) => ({ ...c, tags: unmanaged })), services: o.services.map((s) => ({ ...s, tags: unmanaged })) },
      footprint,
    );
    expect(p.actions).toEqual([]);
    expect(p.problems).toHaveLength(5);
    expect(p.problems.join("\n")).toContain(`cluster ${PREMIUM} is not desired but is not managed`);
  });

  it("reports a desired service name held by an unmanaged service and makes no call on it", () => {
    const d = desired({ apps: { orders: { desiredCount: 4 } } });
    const o = withService(converged(desired()), app("orders"), (s) => ({ ...s, tags: unmanaged }));
    const p = diff(d, o, footprint);
    expect(p.actions).toEqual([]);
    expect(p.problems).toEqual([stringContaining("not managed")]);
  });

  it("places no services in a desired cluster name held by an unmanaged cluster", () => {
    const d = desired({ tier: "premium" });
    const o = converged(d);
    const p = diff(d, { ...o, clusters: o.clusters.map((c) => ({ ...c, tags: unmanaged })), services: [] }, footprint);
    expect(p.actions).toEqual([]);
    expect(p.problems).toEqual([stringContaining(`cluster ${PREMIUM} exists but is not managed`)]);
  });

  it("does not register into a family whose latest revision is unmanaged", () => {
    const d = desired({ apps: { orders: { version: "2" } } });
    const o = converged(desired());
    const p = diff(
      d,
      { ...o, taskDefinitions: o.taskDefinitions.map((t) => (t.family.endsWith("-orders") ? { ...t, tags: unmanaged } : t)) },
      footprint,
    );
    expect(p.actions).toEqual([]);
    expect(p.problems).toEqual([stringContaining(`saas-t-${ID}-orders`)]);
  });

  it("ignores observed services outside the footprint", () => {
    const d = desired();
    const o = converged(d);
    const stray = { ...o.services[0]!, cluster: "saas-advanced", name: "someone-elses-service" };
    expect(diff(d, { ...o, services: [...o.services, stray] }, footprint).converged).toBe(true);
  });
});
