import { CloudFormationClient, DescribeStackResourcesCommand, DescribeStacksCommand } from "@aws-sdk/client-cloudformation";
import { DescribeTableCommand, DynamoDBClient, ResourceNotFoundException } from "@aws-sdk/client-dynamodb";
import { DescribeRulesCommand, DescribeTargetGroupsCommand } from "@aws-sdk/client-elastic-load-balancing-v2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_RETRY } from "../../src/data/retry.js";
import { dropTable } from "../../src/data/tables.js";
import { instrumentClient } from "../../src/providers/aws-clients.js";
import { CallCounter } from "../../src/providers/call-counter.js";
import { StackProvider, TEMPLATE_HASH_TAG, type EnsureResult } from "../../src/providers/stack-provider.js";
import { STACK_OUTPUT_KEYS, tenantStackOutputs, tenantStackTemplate, type TenantStackInput } from "../../src/tiers/stack-template.js";
import { startTestCloud, type TestCloud } from "../support/localcloud.js";
import { localTarget } from "../../src/localcloud/index.js";
import { awsClient, RETRIES } from "../../src/providers/aws-clients.js";

let cloud: TestCloud;
let cfn: CloudFormationClient;
let dynamodb: DynamoDBClient;
let counter: CallCounter;
let stacks: StackProvider;

beforeAll(async () => {
  cloud = await startTestCloud();
  const target = localTarget(cloud.endpoint, cloud.config.region);
  cfn = awsClient(CloudFormationClient, target, RETRIES.standard);
  dynamodb = awsClient(DynamoDBClient, target, RETRIES.standard);
  counter = new CallCounter();
  instrumentClient(cfn, "cloudformation", counter);
  stacks = new StackProvider(cfn);
});

afterAll(async () => {
  cfn?.destroy();
  dynamodb?.destroy();
  await cloud?.stop();
});

function input(tenantId: string, extra: Partial<TenantStackInput> = {}): TenantStackInput {
  return { tenantId, tier: "advanced", namePrefix: cloud.config.namePrefix, vpcId: cloud.account.vpcId, ...extra };
}

/** What the reconcile loop does: call ensure() again after a short delay until it settles. */
async function converge(run: () => Promise<EnsureResult>, limit = 20): Promise<EnsureResult> {
  for (let i = 0; i < limit; i++) {
    const r = await run();
    if (r.kind !== "inProgress") return r;
    await new Promise((res) => setTimeout(res, 20));
  }
  throw new Error("stack did not settle");
}

const cfnCalls = (operation?: string) => counter.total({ service: "cloudformation", ...(operation !== undefined ? { operation } : {}) });

describe("tenant stacks on moto", () => {
  const tenants = ["0b7e6d1c-8a59-4f3e-9d21-5c4b3a291807", "f81d4fae-7dec-11d0-a765-00a0c91e6bf6", "Tenant_With-Mixed_Case"];

  it("reach CREATE_COMPLETE with every output, and no listener rule (the controller keeps tenants' rules)", async () => {
    for (const tenantId of tenants) {
      const t = tenantStackTemplate(input(tenantId));
      const result = await converge(() => stacks.ensure(t));
      if (result.kind !== "ready") throw new Error(`not ready: ${JSON.stringify(result)}`);
      const outputs = tenantStackOutputs(result.outputs);
      expect(outputs, tenantId).toBeDefined();
      expect(Object.keys(result.outputs).sort()).toEqual([...STACK_OUTPUT_KEYS].sort());

      const described = (await cfn.send(new DescribeStacksCommand({ StackName: t.stackName }))).Stacks?.[0];
      expect(described?.StackStatus).toBe("CREATE_COMPLETE");
      const tags = Object.fromEntries((described?.Tags ?? []).map((x) => [x.Key ?? "", x.Value]));
      expect(tags).toMatchObject({
        "managed-by": "ecs-tenant-operator",
        "tenant-id": tenantId,
        tier: "advanced",
        [TEMPLATE_HASH_TAG]: t.hash,
      });

      const table = (await dynamodb.send(new DescribeTableCommand({ TableName: outputs!.ordersTableName }))).Table;
      expect(table?.KeySchema).toEqual([
        { AttributeName: "tenantId", KeyType: "HASH" },
        { AttributeName: "orderId", KeyType: "RANGE" },
      ]);
      expect(table?.BillingModeSummary?.BillingMode).toBe("PAY_PER_REQUEST");
      // A tier move replays from the stream what was written during its copy.
      expect(table?.StreamSpecification).toEqual({ StreamEnabled: true, StreamViewType: "NEW_AND_OLD_IMAGES" });
      expect(table?.LatestStreamArn).toBeDefined();

      const tg = (await cloud.clients.elbv2.send(new DescribeTargetGroupsCommand({ TargetGroupArns: [outputs!.targetGroupArn] })))
        .TargetGroups?.[0];
      expect(tg).toMatchObject({ TargetType: "ip", HealthCheckPath: "/health", Port: 8080 });

      // Routing is the controller's (TenantRoutes, one ELBv2 call per flip):
      // the stack holds no rule, and nothing on the listener points at the
      // target group until the controller adds the tenant's rule.
      const resources = (await cfn.send(new DescribeStackResourcesCommand({ StackName: t.stackName }))).StackResources ?? [];
      expect(resources.map((r) => r.ResourceType).sort()).toEqual([
        "AWS::DynamoDB::Table",
        "AWS::DynamoDB::Table",
        "AWS::ElasticLoadBalancingV2::TargetGroup",
        "AWS::IAM::Policy",
        "AWS::IAM::Role",
        "AWS::IAM::Role",
        "AWS::IAM::Role",
        "AWS::Logs::LogGroup",
      ]);
      expect(resources.every((r) => r.ResourceStatus === "CREATE_COMPLETE")).toBe(true);
      expect(Object.keys(t.parameters)).toEqual(["VpcId"]);
      const rules = (await cloud.clients.elbv2.send(new DescribeRulesCommand({ ListenerArn: cloud.account.listenerArn }))).Rules ?? [];
      const forwardsHere = rules.filter((r) => JSON.stringify(r.Actions ?? []).includes(outputs!.targetGroupArn));
      expect(forwardsHere).toEqual([]);
    }
  });

  it("a steady stack costs one DescribeStacks per reconcile and no write", async () => {
    const t = tenantStackTemplate(input(tenants[0]!));
    const before = cfnCalls();
    for (let i = 0; i < 3; i++) expect((await stacks.ensure(t)).kind).toBe("ready");
    expect(cfnCalls() - before).toBe(3);
    expect(cfnCalls("UpdateStack")).toBe(0);
  });

  it("updates in place when an input changes, and the hash tag follows", async () => {
    const t = tenantStackTemplate(input(tenants[1]!, { logRetentionDays: 90 }));
    const updatesBefore = cfnCalls("UpdateStack");
    const result = await converge(() => stacks.ensure(t));
    expect(result.kind).toBe("ready");
    expect(cfnCalls("UpdateStack") - updatesBefore).toBe(1);
    const observed = await stacks.observe(t.stackName);
    expect(observed?.hashTag).toBe(t.hash);
    expect(observed?.status).toBe("UPDATE_COMPLETE");
  });

  it("a tier change keeps the stack: one tags-only update, no create, no delete", async () => {
    const advanced = tenantStackTemplate(input(tenants[2]!));
    const premium = tenantStackTemplate(input(tenants[2]!, { tier: "premium" }));
    expect(premium.templateBody).toBe(advanced.templateBody);
    const stackId = (await stacks.observe(advanced.stackName))?.stackId;
    const updatesBefore = cfnCalls("UpdateStack");
    expect(await converge(() => stacks.ensure(premium))).toMatchObject({ kind: "ready", stackId });
    expect(await stacks.ensure(premium)).toMatchObject({ kind: "ready", stackId });
    expect(cfnCalls("UpdateStack") - updatesBefore).toBe(1);
    expect(cfnCalls("CreateStack")).toBe(tenants.length);
    expect(cfnCalls("DeleteStack")).toBe(0);
    const observed = await stacks.observe(premium.stackName);
    expect(observed?.tags).toMatchObject({ tier: "premium", [TEMPLATE_HASH_TAG]: premium.hash });
  });

  it("reports a stack CloudFormation refuses, with the reason, and creates nothing", async () => {
    // The VPC is a required parameter without a default: CloudFormation
    // refuses the CreateStack itself ("Parameters: [VpcId] must have values").
    // Other refusals moto does answer (an unknown VPC, a parameter the
    // template does not declare) leave a half-made stack behind that makes
    // later CloudFormation calls on this server fail, so they are not provoked here.
    const t = tenantStackTemplate(input("doomed-1"));
    const { VpcId: _, ...withoutVpc } = t.parameters;
    const creates = cfnCalls("CreateStack");
    const refused = await stacks.ensure({ ...t, parameters: withoutVpc });
    expect(refused).toMatchObject({ kind: "failed", terminal: true });
    expect(refused.kind === "failed" && refused.reason).toMatch(/^CreateStack refused: .*VpcId/);
    expect(cfnCalls("CreateStack") - creates).toBe(1);
    expect(await stacks.observe(t.stackName)).toBeUndefined();
  });

  it("removes a stack: gone once deleted, its tables kept until the controller drops them, then it can be made again", async () => {
    const tenantId = tenants[0]!;
    const t = tenantStackTemplate(input(tenantId));
    const first = (await stacks.observe(t.stackName))!;
    const outputs = tenantStackOutputs(first.outputs)!;
    const before = cfnCalls();
    const seen: string[] = [];
    for (;;) {
      const r = await stacks.remove(t.stackName);
      seen.push(r.kind);
      if (r.kind !== "inProgress") break;
    }
    // moto deletes synchronously: DescribeStacks + DeleteStack, then DescribeStacks says it is gone.
    expect(seen).toEqual(["inProgress", "gone"]);
    expect(cfnCalls() - before).toBe(3);
    expect(await stacks.observe(t.stackName)).toBeUndefined();
    await expect(
      cloud.clients.elbv2.send(new DescribeTargetGroupsCommand({ TargetGroupArns: [outputs.targetGroupArn] })),
    ).rejects.toMatchObject({ name: "TargetGroupNotFoundException" });

    // DeletionPolicy Retain: deleting the stack drops no tenant data; only
    // the controller does, after exporting or copying it.
    for (const table of [outputs.ordersTableName, outputs.productsTableName]) {
      expect((await dynamodb.send(new DescribeTableCommand({ TableName: table }))).Table?.TableStatus, table).toBe("ACTIVE");
    }
    for (const table of [outputs.ordersTableName, outputs.productsTableName])
      await dropTable(dynamodb, table, { assertHeld() {} }, DEFAULT_RETRY);
    await expect(dynamodb.send(new DescribeTableCommand({ TableName: outputs.ordersTableName }))).rejects.toBeInstanceOf(
      ResourceNotFoundException,
    );

    // With the tables dropped the names are free: a re-onboarded tenant gets a new stack of the same name.
    const again = await converge(() => stacks.ensure(t));
    expect(again).toMatchObject({ kind: "ready" });
    expect(again.kind === "ready" && again.stackId).not.toBe(first.stackId);
    expect(again.kind === "ready" && tenantStackOutputs(again.outputs)?.ordersTableName).toBe(outputs.ordersTableName);
  });
});
