import {
  ClusterContainsServicesException,
  ClientException,
  CreateClusterCommand,
  CreateServiceCommand,
  DeleteClusterCommand,
  DeleteServiceCommand,
  DescribeClustersCommand,
  DescribeServicesCommand,
  DescribeTaskDefinitionCommand,
  ECSClient,
  InvalidParameterException,
  ListClustersCommand,
  ListServicesCommand,
  RegisterTaskDefinitionCommand,
  ServiceNotFoundException,
  UpdateServiceCommand,
  type Service,
} from "@aws-sdk/client-ecs";
import { mockClient } from "aws-sdk-client-mock";
import { beforeEach, describe, expect, it } from "vitest";
import { isRetryable } from "../../src/operator/errors.js";
import { LeaseLostError, UnmanagedResourceError, type Fence } from "../../src/ports.js";
import { EcsProvider, StaleObservationError } from "../../src/providers/ecs.js";
import { CLIENT_TOKEN_LENGTH } from "../../src/providers/ecs-shapes.js";
import type {
  Action,
  DesiredService,
  DesiredServiceConnect,
  DesiredTaskDefinition,
  Footprint,
  ObservedState,
} from "../../src/tiers/model.js";
import { TransientError } from "../../src/errors.js";

const REGION = "us-east-1";
const ACCOUNT = "123456789012";
const MANAGED = { "managed-by": "ecs-tenant-operator", "tenant-id": "t1", tier: "advanced" };

const ecsMock = mockClient(ECSClient);
let ecs: ECSClient;
let clock: number;
let provider: EcsProvider;

beforeEach(() => {
  ecsMock.reset();
  ecs = new ECSClient({ region: REGION });
  clock = 1_700_000_000_000;
  provider = new EcsProvider(ecs, { region: REGION, now: () => clock });
});

const clusterArn = (name: string) => `arn:aws:ecs:${REGION}:${ACCOUNT}:cluster/${name}`;
const serviceArn = (cluster: string, name: string) => `arn:aws:ecs:${REGION}:${ACCOUNT}:service/${cluster}/${name}`;
const tdArn = (family: string, rev: number) => `arn:aws:ecs:${REGION}:${ACCOUNT}:task-definition/${family}:${rev}`;
const tags = (t: Record<string, string>) => Object.entries(t).map(([key, value]) => ({ key, value }));

function fence(): Fence & { calls: number } {
  const f = { calls: 0, assertHeld: () => void f.calls++ };
  return f;
}

/** DescribeClusters answers every asked name as an ACTIVE managed cluster unless listed as missing. */
function clustersExist(missing: readonly string[] = []) {
  ecsMock.on(DescribeClustersCommand).callsFake((input: { clusters: string[] }) => ({
    clusters: input.clusters
      .filter((c) => !missing.includes(c))
      .map((c) => ({ clusterName: c, clusterArn: clusterArn(c), status: "ACTIVE", tags: tags(MANAGED) })),
    failures: input.clusters.filter((c) => missing.includes(c)).map((c) => ({ arn: clusterArn(c), reason: "MISSING" })),
  }));
}

function service(cluster: string, name: string, overrides: Partial<Service> = {}): Service {
  return {
    serviceName: name,
    serviceArn: serviceArn(cluster, name),
    clusterArn: clusterArn(cluster),
    status: "ACTIVE",
    desiredCount: 1,
    runningCount: 1,
    taskDefinition: tdArn("t1-orders", 1),
    deployments: [
      {
        id: "ecs-svc/1",
        status: "PRIMARY",
        rolloutState: "COMPLETED",
        desiredCount: 1,
        runningCount: 1,
        failedTasks: 0,
        taskDefinition: tdArn("t1-orders", 1),
      },
    ],
    tags: tags({ ...MANAGED, app: "orders" }),
    ...overrides,
  };
}

/** DescribeServices answers from `existing`; every other name is a MISSING failure. */
function servicesAre(existing: readonly Service[]) {
  ecsMock.on(DescribeServicesCommand).callsFake((input: { cluster: string; services: string[] }) => ({
    services: existing.filter((s) => input.services.includes(s.serviceName ?? "") && s.clusterArn === clusterArn(input.cluster)),
    failures: input.services
      .filter((n) => !existing.some((s) => s.serviceName === n && s.clusterArn === clusterArn(input.cluster)))
      .map((n) => ({ arn: serviceArn(input.cluster, n), reason: "MISSING" })),
  }));
}

function taskDefinitionsAre(defs: Record<string, { rev: number; hash: string | undefined }>) {
  ecsMock.on(DescribeTaskDefinitionCommand).callsFake((input: { taskDefinition: string }) => {
    const name = input.taskDefinition.split("/").pop() ?? "";
    const family = name.split(":")[0] ?? "";
    const def = defs[family];
    if (def === undefined)
      throw new ClientException({ message: "Unable to describe task definition.", $metadata: { httpStatusCode: 400 } });
    return {
      taskDefinition: { family, taskDefinitionArn: tdArn(family, def.rev), revision: def.rev, status: "ACTIVE" },
      tags: tags(def.hash === undefined ? MANAGED : { ...MANAGED, "content-hash": def.hash }),
    };
  });
}

const footprint = (names: readonly string[], extra: Partial<Footprint> = {}): Footprint => ({
  serviceLocations: [{ cluster: "saas-advanced", serviceNames: names }],
  ownedClusters: [],
  taskDefinitionFamilies: [],
  ...extra,
});

const desiredService = (overrides: Partial<DesiredService> = {}): DesiredService => ({
  cluster: "saas-advanced",
  name: "t1-orders",
  app: "orders",
  taskDefinitionFamily: "t1-orders",
  desiredCount: 1,
  subnets: ["subnet-0a"],
  securityGroups: ["sg-0a"],
  assignPublicIp: "DISABLED",
  tags: { ...MANAGED, app: "orders" },
  ...overrides,
});

const desiredTd: DesiredTaskDefinition = {
  family: "t1-orders",
  app: "orders",
  cpu: "256",
  memory: "512",
  containers: [
    {
      name: "orders",
      image: "repo/orders:1.0",
      essential: true,
      portMappings: [{ name: "http", containerPort: 3010, protocol: "tcp" }],
      environment: [{ name: "TENANT_ID", value: "t1" }],
    },
  ],
  tags: { ...MANAGED, app: "orders" },
  contentHash: "hash-v1",
};

const EMPTY: ObservedState = { clusters: [], services: [], taskDefinitions: [] };

describe("EcsProvider.observe batching", () => {
  it("describes 23 services in calls of 10, 10 and 3, with tags", async () => {
    clustersExist();
    servicesAre([]);
    const names = Array.from({ length: 23 }, (_, i) => `svc-${i}`);
    await provider.observe(footprint(names));
    const calls = ecsMock.commandCalls(DescribeServicesCommand).map((c) => c.args[0].input);
    expect(calls.map((c) => c.services?.length)).toEqual([10, 10, 3]);
    expect(calls.every((c) => c.include?.includes("TAGS") && c.cluster === "saas-advanced")).toBe(true);
    expect(calls.flatMap((c) => c.services)).toEqual(names);
  });

  it("describes clusters in batches of 100, each cluster once although named twice", async () => {
    clustersExist();
    servicesAre([]);
    const owned = Array.from({ length: 150 }, (_, i) => `c-${i}`);
    await provider.observe(footprint([], { ownedClusters: owned, serviceLocations: [{ cluster: "c-0", serviceNames: ["x"] }] }));
    const calls = ecsMock.commandCalls(DescribeClustersCommand).map((c) => c.args[0].input);
    expect(calls.map((c) => c.clusters?.length)).toEqual([100, 50]);
    expect(calls.every((c) => c.include?.includes("TAGS"))).toBe(true);
  });

  it("skips service locations whose cluster is missing or INACTIVE, and leaves INACTIVE clusters out", async () => {
    ecsMock.on(DescribeClustersCommand).resolves({
      clusters: [{ clusterName: "gone", clusterArn: clusterArn("gone"), status: "INACTIVE", tags: [] }],
      failures: [{ arn: clusterArn("never"), reason: "MISSING" }],
    });
    const observed = await provider.observe({
      serviceLocations: [
        { cluster: "gone", serviceNames: ["a"] },
        { cluster: "never", serviceNames: ["b"] },
      ],
      ownedClusters: [],
      taskDefinitionFamilies: [],
    });
    expect(ecsMock.commandCalls(DescribeServicesCommand)).toHaveLength(0);
    expect(observed.clusters).toEqual([]);
  });

  it("costs two calls in steady state once the task definitions are known", async () => {
    clustersExist();
    servicesAre([service("saas-advanced", "t1-orders")]);
    taskDefinitionsAre({ "t1-orders": { rev: 1, hash: "hash-v1" } });
    const fp = footprint(["t1-orders"], { taskDefinitionFamilies: ["t1-orders"] });
    const first = await provider.observe(fp);
    expect(first.services[0]?.taskDefinitionContentHash).toBe("hash-v1");
    const before = ecsMock.calls().length;
    await provider.observe(fp);
    expect(ecsMock.calls().length - before).toBe(2);
  });
});

describe("EcsProvider.observe mapping", () => {
  it("maps a DRAINING service with its deployments, rollout and failed tasks", async () => {
    clustersExist();
    servicesAre([
      service("saas-advanced", "t1-orders", {
        status: "DRAINING",
        runningCount: 2,
        deployments: [
          {
            id: "d2",
            status: "PRIMARY",
            rolloutState: "FAILED",
            rolloutStateReason: "circuit breaker",
            desiredCount: 2,
            runningCount: 0,
            failedTasks: 4,
            taskDefinition: tdArn("t1-orders", 2),
          },
          {
            id: "d1",
            status: "ACTIVE",
            rolloutState: "COMPLETED",
            desiredCount: 2,
            runningCount: 2,
            failedTasks: 0,
            taskDefinition: tdArn("t1-orders", 1),
          },
        ],
      }),
    ]);
    taskDefinitionsAre({ "t1-orders": { rev: 1, hash: "hash-v1" } });
    const observed = await provider.observe(footprint(["t1-orders"]));
    expect(observed.services).toHaveLength(1);
    const s = observed.services[0];
    expect(s?.status).toBe("DRAINING");
    expect(s?.runningCount).toBe(2);
    expect(s?.deployments.map((d) => [d.status, d.rolloutState, d.failedTasks])).toEqual([
      ["PRIMARY", "FAILED", 4],
      ["ACTIVE", "COMPLETED", 0],
    ]);
    expect(s?.deployments[0]?.rolloutStateReason).toBe("circuit breaker");
    expect(s?.tags["tenant-id"]).toBe("t1");
  });

  it("reports a family with no revision as absent and does not ask again", async () => {
    clustersExist();
    servicesAre([]);
    taskDefinitionsAre({});
    const fp = footprint([], { taskDefinitionFamilies: ["t1-orders"] });
    expect((await provider.observe(fp)).taskDefinitions).toEqual([]);
    await provider.observe(fp);
    expect(ecsMock.commandCalls(DescribeTaskDefinitionCommand)).toHaveLength(1);
  });

  it("does not describe a task definition it registered or already described", async () => {
    clustersExist();
    taskDefinitionsAre({ "t1-orders": { rev: 1, hash: "hash-v1" } });
    servicesAre([service("saas-advanced", "t1-orders")]);
    const fp = footprint(["t1-orders"], { taskDefinitionFamilies: ["t1-orders"] });
    await provider.observe(fp);
    await provider.observe(fp);
    expect(ecsMock.commandCalls(DescribeTaskDefinitionCommand)).toHaveLength(1);

    ecsMock
      .on(RegisterTaskDefinitionCommand)
      .resolves({ taskDefinition: { family: "t1-orders", taskDefinitionArn: tdArn("t1-orders", 2), revision: 2 } });
    await provider.apply(
      [{ kind: "registerTaskDefinition", taskDefinition: { ...desiredTd, contentHash: "hash-v2" }, reason: "image changed" }],
      EMPTY,
      fence(),
    );
    // The service now runs revision 2: its hash and the family's latest come from the register.
    servicesAre([service("saas-advanced", "t1-orders", { taskDefinition: tdArn("t1-orders", 2) })]);
    const observed = await provider.observe(fp);
    expect(ecsMock.commandCalls(DescribeTaskDefinitionCommand)).toHaveLength(1);
    expect(observed.taskDefinitions).toEqual([
      expect.objectContaining({ arn: tdArn("t1-orders", 2), revision: 2, contentHash: "hash-v2" }),
    ]);
    expect(observed.services[0]?.taskDefinitionContentHash).toBe("hash-v2");
  });

  it("describes the revision a service runs by arn when it is not the family's latest, once", async () => {
    clustersExist();
    taskDefinitionsAre({ "t1-orders": { rev: 3, hash: "hash-v3" } });
    ecsMock.on(DescribeTaskDefinitionCommand, { taskDefinition: tdArn("t1-orders", 1), include: ["TAGS"] }).resolves({
      taskDefinition: { family: "t1-orders", taskDefinitionArn: tdArn("t1-orders", 1), revision: 1, status: "ACTIVE" },
      tags: tags({ "content-hash": "hash-v1" }),
    });
    servicesAre([service("saas-advanced", "t1-orders")]);
    const fp = footprint(["t1-orders"], { taskDefinitionFamilies: ["t1-orders"] });
    expect((await provider.observe(fp)).services[0]?.taskDefinitionContentHash).toBe("hash-v1");
    await provider.observe(fp);
    const described = ecsMock.commandCalls(DescribeTaskDefinitionCommand).map((c) => c.args[0].input.taskDefinition);
    expect(described.sort()).toEqual(["t1-orders", tdArn("t1-orders", 1)].sort());
  });
});

describe("EcsProvider eventual consistency after create", () => {
  async function createOrders(): Promise<ObservedState> {
    clustersExist();
    servicesAre([]);
    taskDefinitionsAre({ "t1-orders": { rev: 1, hash: "hash-v1" } });
    const fp = footprint(["t1-orders"], { taskDefinitionFamilies: ["t1-orders"] });
    const before = await provider.observe(fp);
    ecsMock
      .on(CreateServiceCommand)
      .callsFake(
        (input: { serviceName: string; desiredCount: number; taskDefinition: string; tags: { key: string; value: string }[] }) => ({
          service: {
            serviceName: input.serviceName,
            serviceArn: serviceArn("saas-advanced", input.serviceName),
            status: "ACTIVE",
            desiredCount: input.desiredCount,
            runningCount: 0,
            taskDefinition: input.taskDefinition,
            tags: input.tags,
            deployments: [],
          },
        }),
      );
    await provider.apply(
      [{ kind: "createService", service: desiredService(), taskDefinitionFamily: "t1-orders", reason: "missing" }],
      before,
      fence(),
    );
    return provider.observe(fp);
  }

  it("reports a service DescribeServices calls MISSING right after its create as present and rolling out", async () => {
    const after = await createOrders();
    expect(after.services).toHaveLength(1);
    const s = after.services[0];
    expect(s).toMatchObject({
      name: "t1-orders",
      status: "ACTIVE",
      runningCount: 0,
      desiredCount: 1,
      taskDefinitionArn: tdArn("t1-orders", 1),
      taskDefinitionContentHash: "hash-v1",
    });
    expect(s?.deployments[0]).toMatchObject({ status: "PRIMARY", rolloutState: "IN_PROGRESS", runningCount: 0 });
    expect(s?.tags["managed-by"]).toBe("ecs-tenant-operator");
  });

  it("stops pretending after the grace period, so a service that really is gone is created again", async () => {
    await createOrders();
    clock += 31_000;
    const later = await provider.observe(footprint(["t1-orders"]));
    expect(later.services).toEqual([]);
  });

  it("tells a predecessor still shown as INACTIVE from our own service deleted behind our back", async () => {
    const created = new Date(1_700_000_000_000);
    ecsMock.on(CreateServiceCommand).resolves({
      service: {
        serviceName: "t1-orders",
        serviceArn: serviceArn("saas-advanced", "t1-orders"),
        status: "ACTIVE",
        desiredCount: 1,
        createdAt: created,
        deployments: [{ id: "ecs-svc/ours", status: "PRIMARY" }],
      },
    });
    clustersExist();
    taskDefinitionsAre({ "t1-orders": { rev: 1, hash: "hash-v1" } });
    const fp = footprint(["t1-orders"], { taskDefinitionFamilies: ["t1-orders"] });
    servicesAre([]);
    const before = await provider.observe(fp);
    await provider.apply(
      [{ kind: "createService", service: desiredService(), taskDefinitionFamily: "t1-orders", reason: "missing" }],
      before,
      fence(),
    );

    // ECS still shows the older, deleted service of that name: ours is on its way.
    servicesAre([service("saas-advanced", "t1-orders", { status: "INACTIVE", createdAt: new Date(created.getTime() - 60_000) })]);
    expect((await provider.observe(fp)).services[0]).toMatchObject({ status: "ACTIVE", runningCount: 0 });

    // Ours itself, deleted by someone else: it is gone, so the plan can create it again.
    servicesAre([service("saas-advanced", "t1-orders", { status: "INACTIVE", createdAt: created })]);
    expect((await provider.observe(fp)).services[0]?.status).toBe("INACTIVE");
  });

  it("forgets the created service once it is deleted", async () => {
    const after = await createOrders();
    ecsMock.on(DeleteServiceCommand).resolves({});
    await provider.apply([{ kind: "deleteService", cluster: "saas-advanced", name: "t1-orders", reason: "offboard" }], after, fence());
    expect((await provider.observe(footprint(["t1-orders"]))).services).toEqual([]);
  });
});

describe("EcsProvider.apply", () => {
  const observedWithTd: ObservedState = {
    clusters: [],
    services: [],
    taskDefinitions: [{ family: "t1-orders", arn: tdArn("t1-orders", 1), revision: 1, contentHash: "hash-v1", tags: {} }],
  };

  beforeEach(() => {
    ecsMock
      .on(CreateServiceCommand)
      .resolves({ service: { serviceName: "t1-orders", serviceArn: serviceArn("saas-advanced", "t1-orders") } });
  });

  it("creates a Fargate awsvpc service with zero-downtime deployments, circuit breaker with rollback, tags and the observed revision", async () => {
    const out = await provider.apply(
      [{ kind: "createService", service: desiredService(), taskDefinitionFamily: "t1-orders", reason: "missing" }],
      observedWithTd,
      fence(),
    );
    const input = ecsMock.commandCalls(CreateServiceCommand)[0]?.args[0].input;
    expect(input).toMatchObject({
      cluster: "saas-advanced",
      serviceName: "t1-orders",
      taskDefinition: tdArn("t1-orders", 1),
      launchType: "FARGATE",
      networkConfiguration: { awsvpcConfiguration: { subnets: ["subnet-0a"], securityGroups: ["sg-0a"], assignPublicIp: "DISABLED" } },
      deploymentConfiguration: {
        deploymentCircuitBreaker: { enable: true, rollback: true },
        minimumHealthyPercent: 100,
        maximumPercent: 200,
      },
      propagateTags: "SERVICE",
      enableECSManagedTags: true,
    });
    expect(input?.tags).toContainEqual({ key: "managed-by", value: "ecs-tenant-operator" });
    expect(input?.loadBalancers).toBeUndefined();
    expect(out.created).toEqual([serviceArn("saas-advanced", "t1-orders")]);
  });

  it("runs the revision registered earlier in the same apply, with content-hash tag and awslogs only when a log group is set", async () => {
    ecsMock
      .on(RegisterTaskDefinitionCommand)
      .resolves({ taskDefinition: { family: "t1-orders", taskDefinitionArn: tdArn("t1-orders", 2), revision: 2 } });
    const td = { ...desiredTd, containers: [{ ...desiredTd.containers[0]!, logGroup: "/saas/t1" }], taskRoleArn: "arn:aws:iam::1:role/t1" };
    const out = await provider.apply(
      [
        { kind: "registerTaskDefinition", taskDefinition: td, reason: "new" },
        { kind: "createService", service: desiredService(), taskDefinitionFamily: "t1-orders", reason: "missing" },
      ],
      observedWithTd,
      fence(),
    );
    const reg = ecsMock.commandCalls(RegisterTaskDefinitionCommand)[0]?.args[0].input;
    expect(reg).toMatchObject({
      family: "t1-orders",
      cpu: "256",
      memory: "512",
      networkMode: "awsvpc",
      requiresCompatibilities: ["FARGATE"],
      taskRoleArn: "arn:aws:iam::1:role/t1",
    });
    expect(reg?.executionRoleArn).toBeUndefined();
    expect(reg?.tags).toContainEqual({ key: "content-hash", value: "hash-v1" });
    expect(reg?.containerDefinitions?.[0]?.logConfiguration).toEqual({
      logDriver: "awslogs",
      options: { "awslogs-group": "/saas/t1", "awslogs-region": REGION, "awslogs-stream-prefix": "orders" },
    });
    expect(ecsMock.commandCalls(CreateServiceCommand)[0]?.args[0].input.taskDefinition).toBe(tdArn("t1-orders", 2));
    expect(out.registered.get("t1-orders")).toBe(tdArn("t1-orders", 2));

    ecsMock.resetHistory();
    await provider.apply([{ kind: "registerTaskDefinition", taskDefinition: desiredTd, reason: "new" }], EMPTY, fence());
    expect(
      ecsMock.commandCalls(RegisterTaskDefinitionCommand)[0]?.args[0].input.containerDefinitions?.[0]?.logConfiguration,
    ).toBeUndefined();
  });

  it("gives the tasks a public IP only when the service says ENABLED (ASSIGN_PUBLIC_IP), with its own clientToken", async () => {
    const create = (s: DesiredService): Action => ({
      kind: "createService",
      service: s,
      taskDefinitionFamily: "t1-orders",
      reason: "missing",
    });
    await provider.apply([create(desiredService({ assignPublicIp: "ENABLED" }))], observedWithTd, fence());
    await provider.apply([create(desiredService())], observedWithTd, fence());
    const inputs = ecsMock.commandCalls(CreateServiceCommand).map((c) => c.args[0].input);
    expect(inputs.map((i) => i.networkConfiguration?.awsvpcConfiguration?.assignPublicIp)).toEqual(["ENABLED", "DISABLED"]);
    // A create that differs only in the public IP is another request, not a retry of the first.
    expect(inputs[0]?.clientToken).not.toBe(inputs[1]?.clientToken);
  });

  it("sends the same clientToken when the same create is retried, and another when the spec differs", async () => {
    const create = (s: DesiredService): Action => ({
      kind: "createService",
      service: s,
      taskDefinitionFamily: "t1-orders",
      reason: "missing",
    });
    await provider.apply([create(desiredService())], observedWithTd, fence());
    await provider.apply([create(desiredService())], observedWithTd, fence());
    await provider.apply([create(desiredService({ desiredCount: 2 }))], observedWithTd, fence());
    const tokens = ecsMock.commandCalls(CreateServiceCommand).map((c) => c.args[0].input.clientToken ?? "");
    expect(tokens[0]).toBe(tokens[1]);
    expect(tokens[2]).not.toBe(tokens[0]);
    expect(tokens.every((t) => t.length > 0 && t.length <= CLIENT_TOKEN_LENGTH)).toBe(true);
  });

  it("uses another clientToken to re-create a service whose earlier incarnation is INACTIVE", async () => {
    clustersExist();
    taskDefinitionsAre({ "t1-orders": { rev: 1, hash: "hash-v1" } });
    servicesAre([service("saas-advanced", "t1-orders", { status: "INACTIVE", createdAt: new Date(1_600_000_000_000) })]);
    const withDead = await provider.observe(footprint(["t1-orders"], { taskDefinitionFamilies: ["t1-orders"] }));
    const create: Action = { kind: "createService", service: desiredService(), taskDefinitionFamily: "t1-orders", reason: "missing" };
    await provider.apply([create], observedWithTd, fence());
    await provider.apply([create], withDead, fence());
    const tokens = ecsMock.commandCalls(CreateServiceCommand).map((c) => c.args[0].input.clientToken);
    expect(tokens[1]).not.toBe(tokens[0]);
  });

  it("reads the earlier incarnation from the observed value itself, so a copy of it plans the same create", async () => {
    clustersExist();
    taskDefinitionsAre({ "t1-orders": { rev: 1, hash: "hash-v1" } });
    servicesAre([service("saas-advanced", "t1-orders", { status: "INACTIVE", createdAt: new Date(1_600_000_000_000) })]);
    const withDead = await provider.observe(footprint(["t1-orders"], { taskDefinitionFamilies: ["t1-orders"] }));
    expect(withDead.services[0]).toMatchObject({ status: "INACTIVE", createdAt: "2020-09-13T12:26:40.000Z" });
    // What a caller may do between observe and apply: copy, filter, serialise.
    const copied: ObservedState = JSON.parse(JSON.stringify(withDead)) as ObservedState;
    const create: Action = { kind: "createService", service: desiredService(), taskDefinitionFamily: "t1-orders", reason: "missing" };
    await provider.apply([create], withDead, fence());
    await provider.apply([create], copied, fence());
    await provider.apply([create], observedWithTd, fence());
    const tokens = ecsMock.commandCalls(CreateServiceCommand).map((c) => c.args[0].input.clientToken);
    expect(tokens[1]).toBe(tokens[0]);
    expect(tokens[2]).not.toBe(tokens[0]);
  });

  it("treats 'Creation of service was not idempotent' as the service already existing", async () => {
    ecsMock
      .on(CreateServiceCommand)
      .rejects(new InvalidParameterException({ message: "Creation of service was not idempotent.", $metadata: { httpStatusCode: 400 } }));
    const out = await provider.apply(
      [{ kind: "createService", service: desiredService(), taskDefinitionFamily: "t1-orders", reason: "missing" }],
      observedWithTd,
      fence(),
    );
    expect(out.created).toEqual([]);
  });

  it("updates only the fields in the action; a new task definition goes with the deployment configuration", async () => {
    ecsMock.on(UpdateServiceCommand).resolves({});
    const observed: ObservedState = { ...observedWithTd, services: [observedService()] };
    await provider.apply(
      [{ kind: "updateService", cluster: "saas-advanced", name: "t1-orders", desiredCount: 3, reason: "scale" }],
      observed,
      fence(),
    );
    await provider.apply(
      [{ kind: "updateService", cluster: "saas-advanced", name: "t1-orders", taskDefinitionFamily: "t1-orders", reason: "roll" }],
      observed,
      fence(),
    );
    const inputs = ecsMock.commandCalls(UpdateServiceCommand).map((c) => c.args[0].input);
    expect(inputs[0]).toEqual({ cluster: "saas-advanced", service: "t1-orders", desiredCount: 3 });
    // A service made before rollback was on gets it with its next deployment.
    expect(inputs[1]).toEqual({
      cluster: "saas-advanced",
      service: "t1-orders",
      taskDefinition: tdArn("t1-orders", 1),
      deploymentConfiguration: {
        deploymentCircuitBreaker: { enable: true, rollback: true },
        minimumHealthyPercent: 100,
        maximumPercent: 200,
      },
    });
  });

  it("refuses to update or delete what lacks managed-by, without calling ECS", async () => {
    const foreign = observedService({ tags: { team: "someone-else" } });
    const observed: ObservedState = {
      clusters: [{ name: "legacy", arn: clusterArn("legacy"), status: "ACTIVE", tags: {} }],
      services: [foreign],
      taskDefinitions: observedWithTd.taskDefinitions,
    };
    const cases: { reason: string; action: Action }[] = [
      { reason: "delete service", action: { kind: "deleteService", cluster: "saas-advanced", name: "t1-orders", reason: "x" } },
      {
        reason: "update service",
        action: { kind: "updateService", cluster: "saas-advanced", name: "t1-orders", desiredCount: 0, reason: "x" },
      },
      { reason: "delete cluster", action: { kind: "deleteCluster", cluster: "legacy", reason: "x" } },
    ];
    for (const c of cases) {
      await expect(provider.apply([c.action], observed, fence()), c.reason).rejects.toBeInstanceOf(UnmanagedResourceError);
    }
    expect(ecsMock.commandCalls(DeleteServiceCommand)).toHaveLength(0);
    expect(ecsMock.commandCalls(UpdateServiceCommand)).toHaveLength(0);
    expect(ecsMock.commandCalls(DeleteClusterCommand)).toHaveLength(0);
  });

  it("deletes with force=false and treats not-found and already-INACTIVE as done", async () => {
    ecsMock
      .on(DeleteServiceCommand)
      .rejects(new ServiceNotFoundException({ message: "Service not found.", $metadata: { httpStatusCode: 400 } }));
    const observed: ObservedState = { ...observedWithTd, services: [observedService({ desiredCount: 0 })] };
    await provider.apply([{ kind: "deleteService", cluster: "saas-advanced", name: "t1-orders", reason: "x" }], observed, fence());
    expect(ecsMock.commandCalls(DeleteServiceCommand)[0]?.args[0].input).toEqual({
      cluster: "saas-advanced",
      service: "t1-orders",
      force: false,
    });

    ecsMock.resetHistory();
    const inactive: ObservedState = { ...observedWithTd, services: [observedService({ status: "INACTIVE" })] };
    await provider.apply([{ kind: "deleteService", cluster: "saas-advanced", name: "t1-orders", reason: "x" }], inactive, fence());
    expect(ecsMock.commandCalls(DeleteServiceCommand)).toHaveLength(0);
  });

  it("surfaces ClusterContainsServicesException as a retryable error and a missing cluster as done", async () => {
    const observed: ObservedState = {
      clusters: [{ name: "saas-t1", arn: clusterArn("saas-t1"), status: "ACTIVE", tags: MANAGED }],
      services: [],
      taskDefinitions: [],
    };
    ecsMock
      .on(DeleteClusterCommand)
      .rejectsOnce(new ClusterContainsServicesException({ message: "still has services", $metadata: { httpStatusCode: 400 } }));
    const err = await provider
      .apply([{ kind: "deleteCluster", cluster: "saas-t1", reason: "x" }], observed, fence())
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransientError);
    expect((err as Error).cause).toBeInstanceOf(ClusterContainsServicesException);
    expect((err as Error).message).toContain("saas-t1");
    expect(isRetryable(err)).toBe(true);

    ecsMock
      .on(DeleteClusterCommand)
      .rejects(Object.assign(new Error("Cluster not found."), { name: "ClusterNotFoundException", $metadata: { httpStatusCode: 400 } }));
    await expect(provider.apply([{ kind: "deleteCluster", cluster: "saas-t1", reason: "x" }], observed, fence())).resolves.toBeDefined();
  });

  it("checks the fence before every write and stops at the first refusal", async () => {
    ecsMock.on(CreateClusterCommand).resolves({ cluster: { clusterArn: clusterArn("saas-t1") } });
    const f = fence();
    const actions: Action[] = [
      { kind: "createCluster", cluster: { name: "saas-t1", tags: MANAGED }, reason: "x" },
      { kind: "createService", service: desiredService(), taskDefinitionFamily: "t1-orders", reason: "x" },
    ];
    await provider.apply(actions, observedWithTd, f);
    expect(f.calls).toBe(2);
    expect(ecsMock.commandCalls(CreateClusterCommand)[0]?.args[0].input).toMatchObject({
      clusterName: "saas-t1",
      capacityProviders: ["FARGATE"],
    });

    ecsMock.resetHistory();
    let allowed = 1;
    const lost: Fence = {
      assertHeld: () => {
        if (allowed-- <= 0) throw new LeaseLostError();
      },
    };
    await expect(provider.apply(actions, observedWithTd, lost)).rejects.toBeInstanceOf(LeaseLostError);
    expect(ecsMock.commandCalls(CreateClusterCommand)).toHaveLength(1);
    expect(ecsMock.commandCalls(CreateServiceCommand)).toHaveLength(0);
  });

  it("asks for a fresh observe when a service to update was not observed", async () => {
    await expect(
      provider.apply(
        [{ kind: "updateService", cluster: "saas-advanced", name: "t1-orders", desiredCount: 1, reason: "x" }],
        EMPTY,
        fence(),
      ),
    ).rejects.toBeInstanceOf(StaleObservationError);
  });
});

describe("EcsProvider and Service Connect", () => {
  const NS = { name: "saas-t1-0123456789ab", arn: `arn:aws:servicediscovery:${REGION}:${ACCOUNT}:namespace/ns-1` };
  const SERVER: DesiredServiceConnect = {
    namespace: NS,
    servers: [{ portName: "orders", discoveryName: "orders-api", port: 3010, dnsName: `orders-api.${NS.name}.sc` }],
    log: { group: "/ecs/saas/tenant/t1", streamPrefix: "orders-sc" },
  };
  /** The request shape ECS takes for SERVER, and reports back on the deployment. */
  const SERVER_CONFIG = {
    enabled: true,
    namespace: NS.arn,
    services: [{ portName: "orders", discoveryName: "orders-api", clientAliases: [{ port: 3010, dnsName: `orders-api.${NS.name}.sc` }] }],
    logConfiguration: {
      logDriver: "awslogs" as const,
      options: { "awslogs-group": "/ecs/saas/tenant/t1", "awslogs-region": REGION, "awslogs-stream-prefix": "orders-sc" },
    },
  };
  const observedWithTd: ObservedState = {
    clusters: [],
    services: [],
    taskDefinitions: [{ family: "t1-orders", arn: tdArn("t1-orders", 1), revision: 1, contentHash: "hash-v1", tags: {} }],
  };

  it("creates a service with its serviceConnectConfiguration, and a client-only one with no services", async () => {
    ecsMock
      .on(CreateServiceCommand)
      .resolves({ service: { serviceName: "t1-orders", serviceArn: serviceArn("saas-advanced", "t1-orders") } });
    await provider.apply(
      [
        {
          kind: "createService",
          service: desiredService({ serviceConnect: SERVER }),
          taskDefinitionFamily: "t1-orders",
          reason: "missing",
        },
      ],
      observedWithTd,
      fence(),
    );
    await provider.apply(
      [
        {
          kind: "createService",
          service: desiredService({ name: "t1-rproxy", app: "rproxy", serviceConnect: { namespace: NS, servers: [] } }),
          taskDefinitionFamily: "t1-orders",
          reason: "missing",
        },
      ],
      observedWithTd,
      fence(),
    );
    const [server, client] = ecsMock.commandCalls(CreateServiceCommand).map((c) => c.args[0].input);
    expect(server?.serviceConnectConfiguration).toEqual(SERVER_CONFIG);
    expect(client?.serviceConnectConfiguration).toEqual({ enabled: true, namespace: NS.arn, services: [] });
    // A different Service Connect is a different create: another clientToken.
    await provider.apply(
      [{ kind: "createService", service: desiredService(), taskDefinitionFamily: "t1-orders", reason: "missing" }],
      observedWithTd,
      fence(),
    );
    const tokens = ecsMock.commandCalls(CreateServiceCommand).map((c) => c.args[0].input.clientToken);
    expect(tokens[2]).not.toBe(tokens[0]);
  });

  it("reads Service Connect back from the PRIMARY deployment", async () => {
    clustersExist();
    taskDefinitionsAre({ "t1-orders": { rev: 1, hash: "hash-v1" } });
    servicesAre([
      service("saas-advanced", "t1-orders", {
        deployments: [
          { id: "old", status: "ACTIVE", taskDefinition: tdArn("t1-orders", 1) },
          {
            id: "new",
            status: "PRIMARY",
            rolloutState: "IN_PROGRESS",
            taskDefinition: tdArn("t1-orders", 1),
            serviceConnectConfiguration: SERVER_CONFIG,
          },
        ],
      }),
      service("saas-advanced", "t1-users"),
    ]);
    const observed = await provider.observe(footprint(["t1-orders", "t1-users"]));
    expect(observed.services.find((s) => s.name === "t1-orders")?.serviceConnect).toEqual({
      enabled: true,
      namespace: NS.arn,
      servers: SERVER.servers,
      log: SERVER.log,
    });
    expect(observed.services.find((s) => s.name === "t1-users")).not.toHaveProperty("serviceConnect");
  });

  it("remembers the Service Connect of a service it just created while ECS still says MISSING", async () => {
    clustersExist();
    servicesAre([]);
    taskDefinitionsAre({ "t1-orders": { rev: 1, hash: "hash-v1" } });
    ecsMock.on(CreateServiceCommand).resolves({
      service: { serviceName: "t1-orders", serviceArn: serviceArn("saas-advanced", "t1-orders"), status: "ACTIVE", deployments: [] },
    });
    const fp = footprint(["t1-orders"], { taskDefinitionFamilies: ["t1-orders"] });
    await provider.apply(
      [
        {
          kind: "createService",
          service: desiredService({ serviceConnect: SERVER }),
          taskDefinitionFamily: "t1-orders",
          reason: "missing",
        },
      ],
      await provider.observe(fp),
      fence(),
    );
    expect((await provider.observe(fp)).services[0]?.serviceConnect).toMatchObject({
      enabled: true,
      namespace: NS.arn,
      servers: SERVER.servers,
    });
  });

  it("updates Service Connect whole, or turns it off", async () => {
    ecsMock.on(UpdateServiceCommand).resolves({});
    const observed: ObservedState = { ...observedWithTd, services: [observedService()] };
    await provider.apply(
      [{ kind: "updateService", cluster: "saas-advanced", name: "t1-orders", serviceConnect: SERVER, reason: "on" }],
      observed,
      fence(),
    );
    await provider.apply(
      [{ kind: "updateService", cluster: "saas-advanced", name: "t1-orders", serviceConnect: "disable", reason: "off" }],
      observed,
      fence(),
    );
    const inputs = ecsMock.commandCalls(UpdateServiceCommand).map((c) => c.args[0].input);
    expect(inputs[0]).toEqual({ cluster: "saas-advanced", service: "t1-orders", serviceConnectConfiguration: SERVER_CONFIG });
    expect(inputs[1]).toEqual({ cluster: "saas-advanced", service: "t1-orders", serviceConnectConfiguration: { enabled: false } });
  });

  it("registers the task definition with its runtimePlatform and http port mappings", async () => {
    ecsMock
      .on(RegisterTaskDefinitionCommand)
      .resolves({ taskDefinition: { family: "t1-orders", taskDefinitionArn: tdArn("t1-orders", 2), revision: 2 } });
    const td: DesiredTaskDefinition = {
      ...desiredTd,
      runtimePlatform: { cpuArchitecture: "X86_64", operatingSystemFamily: "LINUX" },
      containers: [
        { ...desiredTd.containers[0]!, portMappings: [{ name: "orders", containerPort: 3010, protocol: "tcp", appProtocol: "http" }] },
      ],
    };
    await provider.apply([{ kind: "registerTaskDefinition", taskDefinition: td, reason: "new" }], EMPTY, fence());
    const reg = ecsMock.commandCalls(RegisterTaskDefinitionCommand)[0]?.args[0].input;
    expect(reg?.runtimePlatform).toEqual({ cpuArchitecture: "X86_64", operatingSystemFamily: "LINUX" });
    expect(reg?.containerDefinitions?.[0]?.portMappings).toEqual([
      { name: "orders", containerPort: 3010, protocol: "tcp", appProtocol: "http" },
    ]);
  });
});

describe("EcsProvider.survey", () => {
  it("collects tenant ids of managed services (paginated) and managed clusters, ignoring foreign and INACTIVE ones", async () => {
    const arns = Array.from({ length: 12 }, (_, i) => serviceArn("saas-advanced", `s${i}`));
    // The premium cluster's services are listed too (the snapshot answers its observe); it holds none here.
    ecsMock.on(ListServicesCommand).resolves({ serviceArns: [] });
    ecsMock
      .on(ListServicesCommand, { cluster: "saas-advanced", maxResults: 100 })
      .resolves({ serviceArns: arns.slice(0, 7), nextToken: "p2" });
    ecsMock
      .on(ListServicesCommand, { cluster: "saas-advanced", maxResults: 100, nextToken: "p2" })
      .resolves({ serviceArns: arns.slice(7) });
    ecsMock.on(DescribeServicesCommand).callsFake((input: { services: string[] }) => ({
      services: input.services.map((arn) => {
        const i = Number(arn.split("/s").pop());
        if (i === 3) return { serviceArn: arn, status: "ACTIVE", tags: tags({ "tenant-id": "foreign" }) };
        if (i === 4) return { serviceArn: arn, status: "INACTIVE", tags: tags({ ...MANAGED, "tenant-id": "dead" }) };
        return { serviceArn: arn, status: "ACTIVE", tags: tags({ ...MANAGED, "tenant-id": `t${i % 2}` }) };
      }),
    }));
    ecsMock.on(ListClustersCommand).resolves({ clusterArns: [clusterArn("saas-advanced"), clusterArn("saas-p1")] });
    ecsMock.on(DescribeClustersCommand).resolves({
      clusters: [
        { clusterName: "saas-advanced", status: "ACTIVE", tags: tags({ "managed-by": "ecs-tenant-operator" }) },
        { clusterName: "saas-p1", status: "ACTIVE", tags: tags({ ...MANAGED, "tenant-id": "p1", tier: "premium" }) },
      ],
    });
    const tenants = await provider.survey(["saas-advanced"]);
    expect([...tenants].sort()).toEqual(["p1", "t0", "t1"]);
    expect(ecsMock.commandCalls(DescribeServicesCommand).map((c) => c.args[0].input.services?.length)).toEqual([10, 2]);
    expect(ecsMock.commandCalls(DescribeClustersCommand)[0]?.args[0].input.include).toEqual(["TAGS"]);
  });
});

function observedService(overrides: Partial<ObservedState["services"][number]> = {}): ObservedState["services"][number] {
  return {
    cluster: "saas-advanced",
    name: "t1-orders",
    arn: serviceArn("saas-advanced", "t1-orders"),
    status: "ACTIVE",
    desiredCount: 1,
    runningCount: 1,
    taskDefinitionArn: tdArn("t1-orders", 1),
    taskDefinitionContentHash: "hash-v1",
    deployments: [],
    tags: { ...MANAGED, app: "orders" },
    ...overrides,
  };
}
