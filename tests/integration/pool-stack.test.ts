import {
  CloudFormationClient,
  CreateStackCommand,
  DeleteStackCommand,
  DescribeStacksCommand,
  type Stack,
} from "@aws-sdk/client-cloudformation";
import { DescribeTableCommand, DynamoDBClient, GetItemCommand, PutItemCommand, ResourceNotFoundException } from "@aws-sdk/client-dynamodb";
import { DescribeRulesCommand, DescribeTargetGroupsCommand, TargetGroupNotFoundException } from "@aws-sdk/client-elastic-load-balancing-v2";
import { GetRoleCommand, GetRolePolicyCommand, IAMClient, NoSuchEntityException } from "@aws-sdk/client-iam";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { poolRoleName } from "../../src/tiers/naming.js";
import { poolStackOutputs, poolStackTemplate, type PoolInfra } from "../../src/tiers/pool-template.js";
import { tenantStackOutputs, tenantStackTemplate, type StackTemplate, type TenantStackOutputs } from "../../src/tiers/stack-template.js";
import { startTestCloud, type TestCloud } from "../support/localcloud.js";
import { localTarget } from "../../src/localcloud/index.js";
import { awsClient, RETRIES } from "../../src/providers/aws-clients.js";

/**
 * The pool stack and a tenant stack through plain CloudFormation calls in the
 * local cloud: what they create, and what a stack deletion keeps.
 */

let cloud: TestCloud;
let cfn: CloudFormationClient;
let dynamodb: DynamoDBClient;
let iam: IAMClient;
let pool: StackTemplate;
let tenant: StackTemplate;
let poolInfra: PoolInfra;
let tenantInfra: TenantStackOutputs;

const TENANT = "0b7e6d1c-8a59-4f3e-9d21-5c4b3a291807";

beforeAll(async () => {
  cloud = await startTestCloud();
  const target = localTarget(cloud.endpoint, cloud.config.region);
  cfn = awsClient(CloudFormationClient, target, RETRIES.standard);
  dynamodb = awsClient(DynamoDBClient, target, RETRIES.standard);
  iam = awsClient(IAMClient, target, RETRIES.standard);
  const prefix = cloud.config.namePrefix;
  pool = poolStackTemplate({ namePrefix: prefix, listenerArn: cloud.account.listenerArn, vpcId: cloud.account.vpcId });
  tenant = tenantStackTemplate({ tenantId: TENANT, tier: "advanced", namePrefix: prefix, vpcId: cloud.account.vpcId });
});

afterAll(async () => {
  cfn?.destroy();
  dynamodb?.destroy();
  iam?.destroy();
  await cloud?.stop();
});

async function createStack(t: StackTemplate): Promise<Stack> {
  await cfn.send(
    new CreateStackCommand({
      StackName: t.stackName,
      TemplateBody: t.templateBody,
      Parameters: Object.entries(t.parameters).map(([ParameterKey, ParameterValue]) => ({ ParameterKey, ParameterValue })),
      Tags: Object.entries(t.tags).map(([Key, Value]) => ({ Key, Value })),
      Capabilities: ["CAPABILITY_NAMED_IAM"],
    }),
  );
  return waitFor(t.stackName, "CREATE_COMPLETE");
}

async function waitFor(stackName: string, status: string): Promise<Stack> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    // By name while it exists; a deleted stack is described by its id only, so "gone" counts as DELETE_COMPLETE.
    let stack: Stack | undefined;
    try {
      stack = (await cfn.send(new DescribeStacksCommand({ StackName: stackName }))).Stacks?.[0];
    } catch (err) {
      if (status === "DELETE_COMPLETE" && /does not exist/.test(String(err)))
        return { StackName: stackName, StackStatus: "DELETE_COMPLETE" } as Stack;
      throw err;
    }
    if (stack?.StackStatus === status) return stack;
    if (stack?.StackStatus !== undefined && !stack.StackStatus.endsWith("_IN_PROGRESS")) {
      throw new Error(`stack ${stackName} is ${stack.StackStatus}, not ${status}: ${stack.StackStatusReason ?? ""}`);
    }
    if (Date.now() > deadline) throw new Error(`stack ${stackName} did not reach ${status}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const outputsOf = (stack: Stack) => Object.fromEntries((stack.Outputs ?? []).map((o) => [o.OutputKey ?? "", o.OutputValue ?? ""]));
/**
 * IAM returns policy documents URL-encoded JSON. moto 5.2.1 does too, except
 * for a role's inline policies created through CloudFormation (the Role's
 * Policies property): it keeps the parsed dict and GetRolePolicy returns its
 * Python repr (`{'Statement': [...]}`). No product code reads role policies
 * back, so the local cloud leaves that be; here the repr is read as what it
 * is. The documents of these stacks hold no quote characters, so swapping
 * the quotes is exact.
 */
function policyDoc(encoded: string | undefined): { Statement: Record<string, unknown>[] } {
  const text = decodeURIComponent(encoded ?? "");
  return JSON.parse(text.startsWith("{'") ? text.replace(/'/g, '"') : text) as { Statement: Record<string, unknown>[] };
}

async function tableExists(name: string): Promise<boolean> {
  try {
    await dynamodb.send(new DescribeTableCommand({ TableName: name }));
    return true;
  } catch (err) {
    if (err instanceof ResourceNotFoundException) return false;
    throw err;
  }
}

async function roleExists(name: string): Promise<boolean> {
  try {
    await iam.send(new GetRoleCommand({ RoleName: name }));
    return true;
  } catch (err) {
    if (err instanceof NoSuchEntityException) return false;
    throw err;
  }
}

describe("pool and tenant stacks in the local cloud", () => {
  it("both reach CREATE_COMPLETE with every output", async () => {
    const p = await createStack(pool);
    const infra = poolStackOutputs(outputsOf(p));
    if (infra === undefined) throw new Error(`pool outputs incomplete: ${JSON.stringify(p.Outputs)}`);
    poolInfra = infra;
    expect(poolInfra.ordersTableName).toBe(`${cloud.config.namePrefix}-pool-orders`);

    const t = await createStack(tenant);
    const tInfra = tenantStackOutputs(outputsOf(t));
    if (tInfra === undefined) throw new Error(`tenant outputs incomplete: ${JSON.stringify(t.Outputs)}`);
    tenantInfra = tInfra;
    expect(Object.fromEntries((t.Tags ?? []).map((x) => [x.Key, x.Value]))).toMatchObject({ "tenant-id": TENANT, tier: "advanced" });
  });

  it("every table, pooled and silo, streams NEW_AND_OLD_IMAGES under the shared key schema", async () => {
    const tables = [
      { name: poolInfra.ordersTableName, sortKey: "orderId" },
      { name: poolInfra.productsTableName, sortKey: "productId" },
      { name: tenantInfra.ordersTableName, sortKey: "orderId" },
      { name: tenantInfra.productsTableName, sortKey: "productId" },
    ];
    for (const { name, sortKey } of tables) {
      const table = (await dynamodb.send(new DescribeTableCommand({ TableName: name }))).Table;
      expect(table?.StreamSpecification, name).toEqual({ StreamEnabled: true, StreamViewType: "NEW_AND_OLD_IMAGES" });
      expect(table?.LatestStreamArn, name).toMatch(/^arn:aws:dynamodb:.+\/stream\//);
      expect(table?.KeySchema, name).toEqual([
        { AttributeName: "tenantId", KeyType: "HASH" },
        { AttributeName: sortKey, KeyType: "RANGE" },
      ]);
      expect(table?.BillingModeSummary?.BillingMode, name).toBe("PAY_PER_REQUEST");
    }
  });

  it("pool roles: the task role trusted by ECS, allowed only to open tenant-tagged sessions on the tenant-access role", async () => {
    const prefix = cloud.config.namePrefix;
    const task = (await iam.send(new GetRoleCommand({ RoleName: poolRoleName(prefix, "task") }))).Role;
    expect(task?.Arn).toBe(poolInfra.taskRoleArn);
    expect(policyDoc(task?.AssumeRolePolicyDocument).Statement).toEqual([
      expect.objectContaining({ Effect: "Allow", Principal: { Service: "ecs-tasks.amazonaws.com" }, Action: "sts:AssumeRole" }),
    ]);
    const grant = await iam.send(new GetRolePolicyCommand({ RoleName: poolRoleName(prefix, "task"), PolicyName: "assume-tenant-access" }));
    expect(policyDoc(grant.PolicyDocument).Statement).toEqual([
      expect.objectContaining({ Effect: "Allow", Action: ["sts:AssumeRole", "sts:TagSession"], Resource: poolInfra.tenantAccessRoleArn }),
    ]);

    const access = (await iam.send(new GetRoleCommand({ RoleName: poolRoleName(prefix, "tenant-access") }))).Role;
    expect(access?.Arn).toBe(poolInfra.tenantAccessRoleArn);
    expect(policyDoc(access?.AssumeRolePolicyDocument).Statement).toEqual([
      {
        Effect: "Allow",
        Principal: { AWS: poolInfra.taskRoleArn },
        Action: ["sts:AssumeRole", "sts:TagSession"],
        Condition: { Null: { "aws:RequestTag/tenant": "false" } },
      },
    ]);
    const items = await iam.send(new GetRolePolicyCommand({ RoleName: poolRoleName(prefix, "tenant-access"), PolicyName: "tenant-items" }));
    const [s] = policyDoc(items.PolicyDocument).Statement;
    expect(s?.["Condition"]).toEqual({
      "ForAllValues:StringEquals": { "dynamodb:LeadingKeys": ["${aws:PrincipalTag/tenant}"] },
      Null: { "dynamodb:LeadingKeys": "false" },
    });
    expect(s?.["Resource"]).toEqual([expect.stringMatching(/:table\/.+-pool-orders$/), expect.stringMatching(/:table\/.+-pool-products$/)]);

    const exec = (await iam.send(new GetRoleCommand({ RoleName: poolRoleName(prefix, "exec") }))).Role;
    expect(exec?.Arn).toBe(poolInfra.executionRoleArn);
  });

  it("the listener holds the pool's catch-all at 50000 and no rule from the tenant stack", async () => {
    const rules = (await cloud.clients.elbv2.send(new DescribeRulesCommand({ ListenerArn: cloud.account.listenerArn }))).Rules ?? [];
    const nonDefault = rules.filter((r) => !r.IsDefault);
    expect(nonDefault).toHaveLength(1);
    const [rule] = nonDefault;
    expect(rule?.Priority).toBe("50000");
    expect(rule?.Conditions?.[0]).toMatchObject({ Field: "path-pattern" });
    const paths = rule?.Conditions?.[0]?.PathPatternConfig?.Values ?? rule?.Conditions?.[0]?.Values;
    expect(paths).toEqual(["/*"]);
    expect(rule?.Actions?.[0]).toMatchObject({ Type: "forward", TargetGroupArn: poolInfra.targetGroupArn });

    const tgs =
      (
        await cloud.clients.elbv2.send(
          new DescribeTargetGroupsCommand({ TargetGroupArns: [poolInfra.targetGroupArn, tenantInfra.targetGroupArn] }),
        )
      ).TargetGroups ?? [];
    for (const tg of tgs)
      expect(tg).toMatchObject({ TargetType: "ip", Port: 8080, HealthCheckPath: "/health", VpcId: cloud.account.vpcId });
    expect(tgs).toHaveLength(2);
  });

  it("deleting the tenant stack keeps its tables and their items; the rest goes", async () => {
    const item = { tenantId: { S: TENANT }, orderId: { S: "order-1" }, total: { N: "42" } };
    await dynamodb.send(new PutItemCommand({ TableName: tenantInfra.ordersTableName, Item: item }));

    await cfn.send(new DeleteStackCommand({ StackName: tenant.stackName }));
    await waitFor(tenant.stackName, "DELETE_COMPLETE");

    // Retained: both tables, with the item.
    expect(await tableExists(tenantInfra.ordersTableName)).toBe(true);
    expect(await tableExists(tenantInfra.productsTableName)).toBe(true);
    const got = await dynamodb.send(
      new GetItemCommand({ TableName: tenantInfra.ordersTableName, Key: { tenantId: item.tenantId, orderId: item.orderId } }),
    );
    expect(got.Item).toEqual(item);
    // Deleted: what holds no data (so the delete really ran).
    const roleName = tenantInfra.taskRoleArn.split("/").pop()!;
    expect(await roleExists(roleName)).toBe(false);
    const tgs = await cloud.clients.elbv2
      .send(new DescribeTargetGroupsCommand({ TargetGroupArns: [tenantInfra.targetGroupArn] }))
      .then((r) => r.TargetGroups ?? [])
      .catch((err: unknown) => {
        if (err instanceof TargetGroupNotFoundException) return [];
        throw err;
      });
    expect(tgs).toEqual([]);
    // The pool is untouched.
    expect(await tableExists(poolInfra.ordersTableName)).toBe(true);
  });

  it("deleting the pool stack keeps the pooled tables and frees priority 50000 on the listener", async () => {
    await cfn.send(new DeleteStackCommand({ StackName: pool.stackName }));
    await waitFor(pool.stackName, "DELETE_COMPLETE");
    expect(await tableExists(poolInfra.ordersTableName)).toBe(true);
    expect(await tableExists(poolInfra.productsTableName)).toBe(true);
    expect(await roleExists(poolRoleName(cloud.config.namePrefix, "tenant-access"))).toBe(false);
    const rules = (await cloud.clients.elbv2.send(new DescribeRulesCommand({ ListenerArn: cloud.account.listenerArn }))).Rules ?? [];
    expect(rules.filter((r) => !r.IsDefault)).toEqual([]);
  });

  it("the local cloud's DeleteStack mending removes leftover rules and target groups, except those the template retains", async () => {
    const name = `${cloud.config.namePrefix}-gaps-check`;
    const template = {
      AWSTemplateFormatVersion: "2010-09-09",
      Parameters: { ListenerArn: { Type: "String" }, VpcId: { Type: "AWS::EC2::VPC::Id" } },
      Resources: {
        Kept: {
          Type: "AWS::ElasticLoadBalancingV2::TargetGroup",
          DeletionPolicy: "Retain",
          Properties: { Name: "gaps-kept", TargetType: "ip", Protocol: "HTTP", Port: 8080, VpcId: { Ref: "VpcId" } },
        },
        Dropped: {
          Type: "AWS::ElasticLoadBalancingV2::TargetGroup",
          Properties: { Name: "gaps-dropped", TargetType: "ip", Protocol: "HTTP", Port: 8080, VpcId: { Ref: "VpcId" } },
        },
        Rule: {
          Type: "AWS::ElasticLoadBalancingV2::ListenerRule",
          Properties: {
            ListenerArn: { Ref: "ListenerArn" },
            Priority: 1,
            Conditions: [{ Field: "path-pattern", PathPatternConfig: { Values: ["/gaps"] } }],
            Actions: [{ Type: "forward", TargetGroupArn: { Ref: "Dropped" } }],
          },
        },
      },
    };
    await cfn.send(
      new CreateStackCommand({
        StackName: name,
        TemplateBody: JSON.stringify(template),
        Parameters: [
          { ParameterKey: "ListenerArn", ParameterValue: cloud.account.listenerArn },
          { ParameterKey: "VpcId", ParameterValue: cloud.account.vpcId },
        ],
      }),
    );
    await waitFor(name, "CREATE_COMPLETE");
    await cfn.send(new DeleteStackCommand({ StackName: name }));
    await waitFor(name, "DELETE_COMPLETE");
    const tgNames = ((await cloud.clients.elbv2.send(new DescribeTargetGroupsCommand({}))).TargetGroups ?? []).map(
      (tg) => tg.TargetGroupName,
    );
    expect(tgNames).toContain("gaps-kept");
    expect(tgNames).not.toContain("gaps-dropped");
    const rules = (await cloud.clients.elbv2.send(new DescribeRulesCommand({ ListenerArn: cloud.account.listenerArn }))).Rules ?? [];
    expect(rules.filter((r) => !r.IsDefault)).toEqual([]);
  });
});
