import { DescribeServicesCommand, DescribeTaskDefinitionCommand } from "@aws-sdk/client-ecs";
import { GetRoleCommand, IAMClient } from "@aws-sdk/client-iam";
import { ListNamespacesCommand, ServiceDiscoveryClient } from "@aws-sdk/client-servicediscovery";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { localTarget } from "../../src/localcloud/index.js";
import { poolNamespaceName, tenantNamespaceName } from "../../src/tiers/desired.js";
import {
  poolServiceName,
  poolTaskDefinitionFamily,
  premiumClusterName,
  serviceName,
  taskDefinitionFamily,
} from "../../src/tiers/naming.js";
import { eventually } from "../support/event-sink.js";
import { startHarness, type OperatorHarness } from "../support/operator.js";
import { awsClient, RETRIES } from "../../src/providers/aws-clients.js";

/**
 * The reference architecture's images must run unchanged: every container
 * gets the environment they read, Service Connect runs in the tenant's (or
 * the pool's) Cloud Map namespace, and IAM_ROLE_ARN names a role that the
 * task role may assume with the tenant as session tag. Checked through the
 * local AWS, silo and pooled alike.
 */
let h: OperatorHarness;
let iam: IAMClient;
let cloudmap: ServiceDiscoveryClient;
beforeAll(async () => {
  h = await startHarness();
  const target = localTarget(h.cloud.endpoint, h.config.region);
  iam = awsClient(IAMClient, target, RETRIES.standard);
  cloudmap = awsClient(ServiceDiscoveryClient, target, RETRIES.standard);
});
afterAll(async () => {
  iam?.destroy();
  cloudmap?.destroy();
  await h?.stop();
});

async function taskDefinition(family: string) {
  const td = (await h.clients.ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition: family }))).taskDefinition;
  const env = Object.fromEntries((td?.containerDefinitions?.[0]?.environment ?? []).map((e) => [e.name ?? "", e.value ?? ""]));
  return { td, env };
}

/** The role's trust lets `taskRoleArn` call sts:AssumeRole and sts:TagSession, only with a tenant session tag. */
async function expectAssumableWithTag(roleArn: string, taskRoleArn: string) {
  const role = (await iam.send(new GetRoleCommand({ RoleName: roleArn.split("/").pop() }))).Role;
  const trust = JSON.parse(decodeURIComponent(role?.AssumeRolePolicyDocument ?? "{}")) as {
    Statement: { Principal: { AWS: string }; Action: string[]; Condition: Record<string, Record<string, string>> }[];
  };
  expect(trust.Statement).toHaveLength(1);
  const [s] = trust.Statement;
  expect(s?.Principal.AWS).toBe(taskRoleArn);
  expect([...(s?.Action ?? [])].sort()).toEqual(["sts:AssumeRole", "sts:TagSession"]);
  expect(s?.Condition["Null"]).toEqual({ "aws:RequestTag/tenant": "false" });
}

describe("the reference images' environment, Service Connect and the tenant-access role", () => {
  it("a silo tenant: its own namespace with Service Connect, the env each image reads, an assumable tenant-access role", async () => {
    await h.put({ tenantId: "parity-silo", tier: "premium", tenantName: "Parity", email: "admin@parity.test" });
    const status = await h.waitForPhase("parity-silo", "Ready");
    const namespace = tenantNamespaceName(h.config.namePrefix, "parity-silo");
    const namespaces = (await cloudmap.send(new ListNamespacesCommand({}))).Namespaces ?? [];
    const namespaceArn = namespaces.find((n) => n.Name === namespace)?.Arn;
    expect(namespaceArn).toBeDefined();

    const cluster = premiumClusterName(h.config.namePrefix, "parity-silo");
    const services =
      (
        await h.clients.ecs.send(
          new DescribeServicesCommand({
            cluster,
            services: ["orders", "products", "users", "rproxy"].map((a) => serviceName(h.config.namePrefix, "parity-silo", a as "orders")),
          }),
        )
      ).services ?? [];
    for (const svc of services) {
      const sc = svc.deployments?.find((d) => d.status === "PRIMARY")?.serviceConnectConfiguration;
      expect(sc?.enabled, svc.serviceName).toBe(true);
      expect(sc?.namespace).toBe(namespaceArn);
      const app = svc.serviceName?.split("-").pop();
      if (app === "rproxy")
        expect(sc?.services ?? []).toEqual([]); // client only
      else expect(sc?.services?.[0]?.discoveryName).toBe(`${app}-api`);
    }

    const orders = await taskDefinition(taskDefinitionFamily(h.config.namePrefix, "parity-silo", "orders"));
    expect(orders.td?.runtimePlatform).toMatchObject({ cpuArchitecture: "X86_64", operatingSystemFamily: "LINUX" });
    expect(orders.env).toMatchObject({
      AWS_REGION: h.config.region,
      AWS_ACCOUNT_ID: "123456789012",
      COGNITO_REGION: h.config.region,
      COGNITO_USER_POOL_ID: status.identity?.userPoolId,
      COGNITO_CLIENT_ID: status.identity?.appClientId,
      REQUEST_TAG_KEYS_MAPPING_ATTRIBUTES: '{"tenant":"custom:tenantId"}',
    });
    expect(orders.env["TABLE_NAME"]).toBe(status.tables?.orders);
    expect(JSON.parse(orders.env["IDP_DETAILS"] ?? "{}")).toMatchObject({ audience: status.identity?.appClientId });
    await expectAssumableWithTag(orders.env["IAM_ROLE_ARN"] ?? "", orders.td?.taskRoleArn ?? "");

    const rproxy = await taskDefinition(taskDefinitionFamily(h.config.namePrefix, "parity-silo", "rproxy"));
    expect(rproxy.env["NAMESPACE"]).toBe(namespace);
  });

  it("the pool: its namespace, the shared user pool in every container, and the pooled tenant-access role", async () => {
    const namespace = poolNamespaceName(h.config.namePrefix);
    await eventually(
      async () => {
        const svc = (
          await h.clients.ecs.send(
            new DescribeServicesCommand({ cluster: h.config.poolCluster, services: [poolServiceName(h.config.namePrefix, "orders")] }),
          )
        ).services?.[0];
        return svc?.deployments?.find((d) => d.status === "PRIMARY")?.serviceConnectConfiguration?.enabled ? svc : undefined;
      },
      "pooled orders with Service Connect",
      60_000,
      250,
    );
    const orders = await taskDefinition(poolTaskDefinitionFamily(h.config.namePrefix, "orders"));
    expect(orders.env["TABLE_NAME"]).toBe(`${h.config.namePrefix}-pool-orders`);
    expect(orders.env["COGNITO_USER_POOL_ID"]).toBeTruthy();
    await expectAssumableWithTag(orders.env["IAM_ROLE_ARN"] ?? "", orders.td?.taskRoleArn ?? "");
    const rproxy = await taskDefinition(poolTaskDefinitionFamily(h.config.namePrefix, "rproxy"));
    expect(rproxy.env["NAMESPACE"]).toBe(namespace);
  });
});
