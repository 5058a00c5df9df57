import { CreateSecurityGroupCommand, CreateSubnetCommand, CreateVpcCommand } from "@aws-sdk/client-ec2";
import { CreateClusterCommand, DescribeServicesCommand } from "@aws-sdk/client-ecs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UnmanagedResourceError, type Fence } from "../../src/ports.js";
import { createAwsClients, type AwsClients } from "../../src/providers/aws-clients.js";
import { CallCounter, diffSnapshots, totalOf } from "../../src/providers/call-counter.js";
import { EcsProvider } from "../../src/providers/ecs.js";
import type { DesiredService, DesiredTaskDefinition, Footprint } from "../../src/tiers/model.js";
import { localAwsEnv, startMoto, type MotoServer } from "../support/moto.js";

const fence: Fence = { assertHeld: () => undefined };
const TENANT = { "managed-by": "ecs-tenant-operator", "tenant-id": "p1", tier: "premium" };

let moto: MotoServer;
let clients: AwsClients;
let counter: CallCounter;
let provider: EcsProvider;
let subnet: string;
let securityGroup: string;

beforeAll(async () => {
  moto = await startMoto();
  Object.assign(process.env, localAwsEnv(moto.endpoint));
  counter = new CallCounter();
  clients = createAwsClients({ region: "us-east-1", endpoint: moto.endpoint }, counter);
  // awsvpc services need a subnet and a security group that exist.
  const vpc = await clients.ec2.send(new CreateVpcCommand({ CidrBlock: "10.0.0.0/16" }));
  const sn = await clients.ec2.send(new CreateSubnetCommand({ VpcId: vpc.Vpc?.VpcId ?? "", CidrBlock: "10.0.1.0/24" }));
  const sg = await clients.ec2.send(
    new CreateSecurityGroupCommand({ GroupName: "tasks", Description: "tasks", VpcId: vpc.Vpc?.VpcId ?? "" }),
  );
  subnet = sn.Subnet?.SubnetId ?? "";
  securityGroup = sg.GroupId ?? "";
  provider = new EcsProvider(clients.ecs, { region: "us-east-1" });
});

afterAll(async () => {
  clients?.destroy();
  await moto?.stop();
});

const CLUSTER = "saas-p1";
const footprint: Footprint = {
  serviceLocations: [
    { cluster: CLUSTER, serviceNames: ["p1-orders"] },
    { cluster: "saas-advanced", serviceNames: ["p1-orders"] },
  ],
  ownedClusters: [CLUSTER],
  taskDefinitionFamilies: ["p1-orders"],
};

const td: DesiredTaskDefinition = {
  family: "p1-orders",
  app: "orders",
  cpu: "256",
  memory: "512",
  containers: [
    {
      name: "orders",
      image: "public.ecr.aws/demo/orders:1.0",
      essential: true,
      portMappings: [{ name: "http", containerPort: 3010, protocol: "tcp" }],
      environment: [{ name: "TENANT_ID", value: "p1" }],
    },
  ],
  tags: { ...TENANT, app: "orders" },
  contentHash: "content-v1",
};

const svc = (): DesiredService => ({
  cluster: CLUSTER,
  name: "p1-orders",
  app: "orders",
  taskDefinitionFamily: "p1-orders",
  desiredCount: 1,
  subnets: [subnet],
  securityGroups: [securityGroup],
  assignPublicIp: "DISABLED",
  tags: { ...TENANT, app: "orders" },
});

describe("EcsProvider against moto", () => {
  it("creates, observes, updates and deletes a tenant's cluster, task definition and service", async () => {
    expect(await provider.observe(footprint)).toEqual({ clusters: [], services: [], taskDefinitions: [] });

    const outcome = await provider.apply(
      [
        { kind: "createCluster", cluster: { name: CLUSTER, tags: TENANT }, reason: "premium tenant" },
        { kind: "registerTaskDefinition", taskDefinition: td, reason: "new" },
        { kind: "createService", service: svc(), taskDefinitionFamily: "p1-orders", reason: "missing" },
      ],
      { clusters: [], services: [], taskDefinitions: [] },
      fence,
    );
    const tdArn = outcome.registered.get("p1-orders");
    expect(tdArn).toMatch(/task-definition\/p1-orders:1$/);
    expect(outcome.created).toHaveLength(2);

    const observed = await provider.observe(footprint);
    expect(observed.clusters).toEqual([expect.objectContaining({ name: CLUSTER, status: "ACTIVE", tags: TENANT })]);
    expect(observed.taskDefinitions).toEqual([
      expect.objectContaining({ family: "p1-orders", arn: tdArn, revision: 1, contentHash: "content-v1" }),
    ]);
    expect(observed.services).toHaveLength(1);
    expect(observed.services[0]).toMatchObject({
      cluster: CLUSTER,
      name: "p1-orders",
      status: "ACTIVE",
      desiredCount: 1,
      taskDefinitionArn: tdArn,
      taskDefinitionContentHash: "content-v1",
    });
    expect(observed.services[0]?.tags).toMatchObject({ ...TENANT, app: "orders" });

    // The service was really created as asked, in the tenant's own subnet.
    const described = await clients.ecs.send(new DescribeServicesCommand({ cluster: CLUSTER, services: ["p1-orders"] }));
    expect(described.services?.[0]?.networkConfiguration?.awsvpcConfiguration?.subnets).toEqual([subnet]);
    expect(described.services?.[0]?.launchType).toBe("FARGATE");

    expect([...(await provider.survey(["saas-advanced"]))]).toEqual(["p1"]);

    // Steady state: DescribeClusters plus DescribeServices, nothing else.
    const before = counter.snapshot();
    await provider.observe(footprint);
    const delta = diffSnapshots(before, counter.snapshot());
    expect(delta.calls).toEqual({ "ecs:DescribeClusters:ok": 1, "ecs:DescribeServices:ok": 1 });

    await provider.apply(
      [{ kind: "updateService", cluster: CLUSTER, name: "p1-orders", desiredCount: 3, reason: "scale" }],
      observed,
      fence,
    );
    expect((await provider.observe(footprint)).services[0]?.desiredCount).toBe(3);

    // Register v2 and roll the service onto it.
    const v2 = await provider.apply(
      [{ kind: "registerTaskDefinition", taskDefinition: { ...td, contentHash: "content-v2" }, reason: "image" }],
      observed,
      fence,
    );
    const rolled = await provider.observe(footprint);
    expect(rolled.taskDefinitions[0]?.arn).toBe(v2.registered.get("p1-orders"));
    await provider.apply(
      [{ kind: "updateService", cluster: CLUSTER, name: "p1-orders", taskDefinitionFamily: "p1-orders", reason: "roll" }],
      rolled,
      fence,
    );
    expect((await provider.observe(footprint)).services[0]).toMatchObject({
      taskDefinitionArn: v2.registered.get("p1-orders"),
      taskDefinitionContentHash: "content-v2",
    });

    // Offboard: scale to 0, delete the service, then the cluster.
    const current = await provider.observe(footprint);
    await provider.apply(
      [
        { kind: "updateService", cluster: CLUSTER, name: "p1-orders", desiredCount: 0, reason: "offboard" },
        { kind: "deleteService", cluster: CLUSTER, name: "p1-orders", reason: "offboard" },
      ],
      current,
      fence,
    );
    const drained = await provider.observe(footprint);
    expect(drained.services.every((s) => s.status === "INACTIVE")).toBe(true);
    await provider.apply([{ kind: "deleteCluster", cluster: CLUSTER, reason: "offboard" }], drained, fence);
    const gone = await provider.observe(footprint);
    expect(gone.clusters).toEqual([]);
    expect(gone.services).toEqual([]);
    expect(await provider.survey(["saas-advanced"])).toEqual(new Set());

    // Deleting again is success: the state we want already holds.
    await expect(
      provider.apply(
        [
          { kind: "deleteService", cluster: CLUSTER, name: "p1-orders", reason: "again" },
          { kind: "deleteCluster", cluster: CLUSTER, reason: "again" },
        ],
        drained,
        fence,
      ),
    ).resolves.toBeDefined();
  });

  it("never deletes a cluster it did not create", async () => {
    await clients.ecs.send(new CreateClusterCommand({ clusterName: "someone-elses", tags: [{ key: "team", value: "other" }] }));
    const before = totalOf(counter.snapshot(), { operation: "DeleteCluster" });
    const observed = await provider.observe({ serviceLocations: [], ownedClusters: ["someone-elses"], taskDefinitionFamilies: [] });
    expect(observed.clusters).toHaveLength(1);
    await expect(
      provider.apply([{ kind: "deleteCluster", cluster: "someone-elses", reason: "x" }], observed, fence),
    ).rejects.toBeInstanceOf(UnmanagedResourceError);
    expect(
      (await provider.observe({ serviceLocations: [], ownedClusters: ["someone-elses"], taskDefinitionFamilies: [] })).clusters[0]?.status,
    ).toBe("ACTIVE");
    expect(totalOf(counter.snapshot(), { operation: "DeleteCluster" })).toBe(before);
  });
});
