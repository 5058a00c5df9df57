import { DescribeStacksCommand } from "@aws-sdk/client-cloudformation";
import { GetItemCommand } from "@aws-sdk/client-dynamodb";
import { DescribeServicesCommand, DescribeTaskDefinitionCommand } from "@aws-sdk/client-ecs";
import { DescribeRulesCommand } from "@aws-sdk/client-elastic-load-balancing-v2";
import { marshall } from "@aws-sdk/util-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CallEvent } from "../../src/providers/call-counter.js";
import { premiumClusterName, serviceName, stackName, taskDefinitionFamily } from "../../src/tiers/naming.js";
import { eventually } from "../support/event-sink.js";
import { startHarness, type OperatorHarness } from "../support/operator.js";

/**
 * Issue 3 against moto behind the local scheduler: each advanced or premium
 * tenant gets its CloudFormation stack, its outputs flow into the task
 * definitions and the rproxy's target group, and offboarding removes
 * services, then the stack, then the listener-rule priority.
 */
let h: OperatorHarness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.stop();
});

async function stack(tenantId: string) {
  try {
    const res = await h.clients.cloudformation.send(new DescribeStacksCommand({ StackName: stackName(h.config.namePrefix, tenantId) }));
    return res.Stacks?.[0];
  } catch {
    return undefined;
  }
}
const outputsOf = (s: Awaited<ReturnType<typeof stack>>): Record<string, string | undefined> =>
  Object.fromEntries((s?.Outputs ?? []).map((o) => [o.OutputKey ?? "", o.OutputValue]));
async function priorityOf(tenantId: string): Promise<number | undefined> {
  const res = await h.clients.dynamodb.send(
    new GetItemCommand({ TableName: h.config.leaseTable, Key: marshall({ pk: `priority-of#${tenantId}` }), ConsistentRead: true }),
  );
  const v = res.Item?.["priority"]?.N;
  return v === undefined ? undefined : Number(v);
}

describe("tenant infrastructure stacks", () => {
  it.each([
    { tenantId: "stk-adv", tier: "advanced" },
    { tenantId: "stk-prem", tier: "premium" },
  ])("brings a $tier tenant to Ready with its stack's outputs in its task definitions and target group", async ({ tenantId, tier }) => {
    await h.put({ tenantId, tier, tenantName: `Stack ${tier}` });
    const status = await h.waitForPhase(tenantId, "Ready");
    const s = await stack(tenantId);
    expect(s?.StackStatus).toBe("CREATE_COMPLETE");
    expect(status.stackArn).toBe(s?.StackId);
    const out = outputsOf(s);
    for (const key of [
      "TaskRoleArn",
      "ExecutionRoleArn",
      "TenantAccessRoleArn",
      "OrdersTableName",
      "ProductsTableName",
      "LogGroupName",
      "TargetGroupArn",
    ])
      expect(out[key]).toBeTruthy();

    const td = await h.clients.ecs.send(
      new DescribeTaskDefinitionCommand({ taskDefinition: taskDefinitionFamily(h.config.namePrefix, tenantId, "orders") }),
    );
    expect(td.taskDefinition?.taskRoleArn).toBe(out["TaskRoleArn"]);
    expect(td.taskDefinition?.executionRoleArn).toBe(out["ExecutionRoleArn"]);
    const env = Object.fromEntries((td.taskDefinition?.containerDefinitions?.[0]?.environment ?? []).map((e) => [e.name ?? "", e.value]));
    // What the reference images read: their own table, and the role to assume with the tenant as session tag.
    expect(env).toMatchObject({
      TABLE_NAME: out["OrdersTableName"],
      IAM_ROLE_ARN: out["TenantAccessRoleArn"],
      AWS_REGION: h.config.region,
      REQUEST_TAG_KEYS_MAPPING_ATTRIBUTES: '{"tenant":"custom:tenantId"}',
    });
    expect(td.taskDefinition?.containerDefinitions?.[0]?.logConfiguration?.options?.["awslogs-group"]).toBe(out["LogGroupName"]);

    const cluster = tier === "premium" ? premiumClusterName(h.config.namePrefix, tenantId) : h.config.advancedCluster;
    const svc = await h.clients.ecs.send(
      new DescribeServicesCommand({ cluster, services: [serviceName(h.config.namePrefix, tenantId, "rproxy")] }),
    );
    expect(svc.services?.[0]?.loadBalancers?.[0]).toMatchObject({
      targetGroupArn: out["TargetGroupArn"],
      containerName: "rproxy",
      containerPort: 8080,
    });

    // The listener rule routes the tenant's header at its durable priority.
    const priority = await priorityOf(tenantId);
    expect(priority).toBeGreaterThanOrEqual(1);
    const rules = await h.clients.elbv2.send(new DescribeRulesCommand({ ListenerArn: h.config.listenerArn }));
    const rule = rules.Rules?.find((r) => r.Priority === String(priority));
    expect(rule?.Actions?.[0]?.TargetGroupArn).toBe(out["TargetGroupArn"]);
    expect(JSON.stringify(rule?.Conditions)).toContain(tenantId);
  });

  it("keeps the same stack when a tenant moves from advanced to premium", async () => {
    await h.put({ tenantId: "stk-move", tier: "advanced", tenantName: "Mover" });
    await h.waitForPhase("stk-move", "Ready");
    const before = await stack("stk-move");
    await h.update("stk-move", { tier: "premium" });
    await eventually(async () => {
      const s = await h.status("stk-move");
      return s?.phase === "Ready" && s.clusterArn !== undefined ? s : undefined;
    }, "stk-move Ready as premium");
    const after = await stack("stk-move");
    expect(after?.StackId).toBe(before?.StackId);
    expect(after?.Tags?.find((t) => t.Key === "tier")?.Value).toBe("premium");
  });

  it("offboards services first, then the stack, then frees the priority", async () => {
    await h.put({ tenantId: "stk-off", tier: "advanced", tenantName: "Leaver" });
    await h.waitForPhase("stk-off", "Ready");
    const priority = await priorityOf("stk-off");
    const calls: CallEvent[] = [];
    const unsubscribe = h.controller.calls.onCall((e) => {
      if (e.kind === "call" && e.outcome === "ok") calls.push(e);
    });
    await h.update("stk-off", { sbtaws_active: false });
    await h.waitForPhase("stk-off", "Deprovisioned");
    unsubscribe();

    const order = calls.map((c) => `${c.service}:${c.operation}`);
    const lastServiceDelete = order.lastIndexOf("ecs:DeleteService");
    const stackDelete = order.indexOf("cloudformation:DeleteStack");
    const release = order.lastIndexOf("dynamodb:TransactWriteItems");
    expect(lastServiceDelete).toBeGreaterThanOrEqual(0);
    expect(stackDelete).toBeGreaterThan(lastServiceDelete);
    expect(release).toBeGreaterThan(stackDelete);
    const gone = await stack("stk-off");
    expect(gone === undefined || gone.StackStatus === "DELETE_COMPLETE").toBe(true);
    expect(await priorityOf("stk-off")).toBeUndefined();

    // The freed priority goes to the next tenant, and its stack is created fine.
    await h.put({ tenantId: "stk-next", tier: "advanced", tenantName: "Next" });
    await h.waitForPhase("stk-next", "Ready");
    expect(await priorityOf("stk-next")).toBe(priority);
  });
});

describe("a stack that fails", () => {
  it("leaves the tenant Degraded with the reason, and the controller keeps serving others", async () => {
    // A second controller whose VPC does not exist: every tenant stack's target group is refused.
    await h.controller.stop();
    h.controller = await h.startController({ VPC_ID: "vpc-00000000000000000" });
    await h.put({ tenantId: "stk-bad", tier: "advanced", tenantName: "Doomed" });
    await h.put({ tenantId: "stk-fine", tier: "basic", tenantName: "Fine" });
    const degraded = await h.waitForPhase("stk-bad", "Degraded");
    expect(degraded.message).toMatch(/stack .*stk-bad/);
    expect(degraded.message.toLowerCase()).toContain("vpc");
    await h.waitForPhase("stk-fine", "Ready");
    const failure = await eventually(async () => {
      const e = await h.sink.of("stk-bad", "sbt_aws_provisionFailure");
      return e.length > 0 ? e : undefined;
    }, "provisionFailure for the failed stack");
    expect(String(failure[0]?.detail["reason"]).toLowerCase()).toContain("vpc");
  });
});
