import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { canonicalJson } from "../../src/tenants/record.js";
import { POOL_STACK_OUTPUT_KEYS, poolStackOutputs, poolStackTemplate, type PoolStackInput } from "../../src/tiers/pool-template.js";
import { stackName, targetGroupName } from "../../src/tiers/naming.js";
import {
  ABAC_ITEM_ACTIONS,
  MAX_PRIORITY,
  MAX_TENANT_PRIORITY,
  POOL_CATCH_ALL_PRIORITY,
  stackHash,
  tenantStackTemplate,
} from "../../src/tiers/stack-template.js";

const base: PoolStackInput = {
  namePrefix: "saas",
  listenerArn: "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/saas/abc/def",
  vpcId: "vpc-0123456789abcdef0",
};

type Resource = { Type: string; DeletionPolicy?: string; UpdateReplacePolicy?: string; Properties: Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any -- template JSON is read loosely in assertions
function resources(input: PoolStackInput = base): Record<string, Resource> {
  return poolStackTemplate(input).template["Resources"] as Record<string, Resource>;
}
function resource(name: string, input: PoolStackInput = base): Resource {
  const r = resources(input)[name];
  if (r === undefined) throw new Error(`no resource ${name}`);
  return r;
}
const tagsOf = (r: Resource) =>
  Object.fromEntries(((r.Properties["Tags"] ?? []) as { Key: string; Value: string }[]).map((t) => [t.Key, t.Value]));
/** One IAM statement of the template, as the assertions read it. */
interface Statement {
  readonly Sid?: string;
  readonly Effect?: string;
  readonly Action?: string | readonly string[];
  readonly Resource?: unknown;
  readonly Principal?: unknown;
  readonly Condition?: Readonly<Record<string, unknown>>;
}
const statements = (doc: unknown): readonly Statement[] => (doc as { readonly Statement: readonly Statement[] }).Statement;
/** The statements of a role's inline policies. */
const policyStatements = (properties: Readonly<Record<string, unknown>>): readonly Statement[] =>
  (properties["Policies"] as readonly { readonly PolicyDocument: unknown }[]).flatMap((p) => statements(p.PolicyDocument));

describe("poolStackTemplate: contents", () => {
  it("holds exactly the pool's shared infrastructure", () => {
    const types = Object.fromEntries(Object.entries(resources()).map(([id, r]) => [id, r.Type]));
    expect(types).toEqual({
      OrdersTable: "AWS::DynamoDB::Table",
      ProductsTable: "AWS::DynamoDB::Table",
      LogGroup: "AWS::Logs::LogGroup",
      TaskRole: "AWS::IAM::Role",
      TaskRolePolicy: "AWS::IAM::Policy",
      TenantAccessRole: "AWS::IAM::Role",
      ExecutionRole: "AWS::IAM::Role",
      TargetGroup: "AWS::ElasticLoadBalancingV2::TargetGroup",
      CatchAllRule: "AWS::ElasticLoadBalancingV2::ListenerRule",
    });
  });

  it.each([
    { reason: "orders keyed by tenant then order", id: "OrdersTable", sortKey: "orderId", name: "saas-pool-orders" },
    { reason: "products keyed by tenant then product", id: "ProductsTable", sortKey: "productId", name: "saas-pool-products" },
  ])("pooled table: $reason, streamed and retained", ({ id, sortKey, name }) => {
    const r = resource(id);
    expect(r.Properties).toMatchObject({
      TableName: name,
      BillingMode: "PAY_PER_REQUEST",
      KeySchema: [
        { AttributeName: "tenantId", KeyType: "HASH" },
        { AttributeName: sortKey, KeyType: "RANGE" },
      ],
      AttributeDefinitions: [
        { AttributeName: "tenantId", AttributeType: "S" },
        { AttributeName: sortKey, AttributeType: "S" },
      ],
      StreamSpecification: { StreamViewType: "NEW_AND_OLD_IMAGES" },
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
    });
    expect(r.Properties["ProvisionedThroughput"]).toBeUndefined();
    expect(r.DeletionPolicy).toBe("Retain");
    expect(r.UpdateReplacePolicy).toBe("Retain");
  });

  it("keys the pooled tables exactly like a silo tenant's, so an item moves between tiers unchanged", () => {
    const silo = tenantStackTemplate({ tenantId: "acme", tier: "advanced", namePrefix: "saas", vpcId: base.vpcId }).template[
      "Resources"
    ] as Record<string, Resource>;
    for (const id of ["OrdersTable", "ProductsTable"]) {
      const { TableName: _p, Tags: _pt, ...pool } = resource(id).Properties;
      const { TableName: _s, Tags: _st, ...tenant } = silo[id]!.Properties;
      expect(pool, id).toEqual(tenant);
    }
  });

  it("task role: trusted by ECS tasks of this account only, and may do nothing but open a tenant-tagged session", () => {
    const role = resource("TaskRole").Properties;
    expect(statements(role["AssumeRolePolicyDocument"])).toEqual([
      {
        Effect: "Allow",
        Principal: { Service: "ecs-tasks.amazonaws.com" },
        Action: "sts:AssumeRole",
        Condition: { StringEquals: { "aws:SourceAccount": { Ref: "AWS::AccountId" } } },
      },
    ]);
    // Nothing inline, no tenant tag: a pooled task by itself reaches no tenant.
    expect(role["Policies"]).toBeUndefined();
    expect(tagsOf(resource("TaskRole"))["tenant"]).toBeUndefined();

    const grants = Object.values(resources()).filter((r) => r.Type === "AWS::IAM::Policy");
    expect(grants).toHaveLength(1);
    expect(grants[0]!.Properties["Roles"]).toEqual([{ Ref: "TaskRole" }]);
    expect(statements(grants[0]!.Properties["PolicyDocument"])).toEqual([
      {
        Sid: "TenantScopedSessionsOnly",
        Effect: "Allow",
        Action: ["sts:AssumeRole", "sts:TagSession"],
        Resource: { "Fn::GetAtt": ["TenantAccessRole", "Arn"] },
      },
    ]);
  });

  it("tenant-access role: assumable by the task role only, and only with a tenant session tag", () => {
    const trust = statements(resource("TenantAccessRole").Properties["AssumeRolePolicyDocument"]);
    expect(trust).toEqual([
      {
        Effect: "Allow",
        Principal: { AWS: { "Fn::GetAtt": ["TaskRole", "Arn"] } },
        Action: ["sts:AssumeRole", "sts:TagSession"],
        Condition: { Null: { "aws:RequestTag/tenant": "false" } },
      },
    ]);
    // The session tag is the only source of the principal tag.
    expect(tagsOf(resource("TenantAccessRole"))["tenant"]).toBeUndefined();
  });

  it("tenant-access role: item actions on the pooled tables, within the session's tenant partition", () => {
    const role = resource("TenantAccessRole").Properties;
    const all = policyStatements(role);
    expect(all).toHaveLength(1);
    const s = all[0]!;
    expect(s.Effect).toBe("Allow");
    expect([...(s.Action ?? [])].sort()).toEqual([...ABAC_ITEM_ACTIONS].sort());
    expect(s.Action).not.toContain("dynamodb:Scan");
    expect(s.Resource).toEqual([{ "Fn::GetAtt": ["OrdersTable", "Arn"] }, { "Fn::GetAtt": ["ProductsTable", "Arn"] }]);
    expect(s.Condition).toEqual({
      "ForAllValues:StringEquals": { "dynamodb:LeadingKeys": ["${aws:PrincipalTag/tenant}"] },
      Null: { "dynamodb:LeadingKeys": "false" },
    });
    expect(poolStackTemplate(base).templateBody).not.toContain("Fn::Sub");
  });

  it("no other statement in the stack grants DynamoDB", () => {
    const { TenantAccessRole: _, ...rest } = resources();
    expect(JSON.stringify(rest)).not.toContain("dynamodb:");
  });

  it("execution role: pull images and write the pool log group, nothing else", () => {
    const exec = resource("ExecutionRole").Properties;
    expect(exec["RoleName"]).toBe("saas-pool-exec");
    const all = policyStatements(exec);
    expect(all.map((s) => s.Sid)).toEqual(["PullImages", "OwnLogGroup"]);
    expect(all[1]?.Resource).toEqual({ "Fn::GetAtt": ["LogGroup", "Arn"] });
    expect(JSON.stringify(exec["Policies"])).not.toMatch(/dynamodb|sts:/);
  });

  it("log group: the pool's, with a retention (default 30 days, configurable)", () => {
    expect(resource("LogGroup").Properties).toMatchObject({ LogGroupName: "/ecs/saas/pool", RetentionInDays: 30 });
    expect(resource("LogGroup", { ...base, logRetentionDays: 7 }).Properties["RetentionInDays"]).toBe(7);
    expect(() => poolStackTemplate({ ...base, logRetentionDays: 31 })).toThrow(RangeError);
  });

  it("target group: ip targets on the rproxy port, health checked on /health", () => {
    expect(resource("TargetGroup").Properties).toMatchObject({
      Name: "saas-pool",
      TargetType: "ip",
      Protocol: "HTTP",
      Port: 8080,
      VpcId: { Ref: "VpcId" },
      HealthCheckPath: "/health",
    });
  });

  it("catch-all rule: every path, at the last priority, forwarding to the pool", () => {
    expect(resource("CatchAllRule").Properties).toEqual({
      ListenerArn: { Ref: "ListenerArn" },
      Priority: 50_000,
      Conditions: [{ Field: "path-pattern", PathPatternConfig: { Values: ["/*"] } }],
      Actions: [{ Type: "forward", TargetGroupArn: { Ref: "TargetGroup" } }],
    });
    const t = poolStackTemplate(base);
    expect(t.parameters).toEqual({ ListenerArn: base.listenerArn, VpcId: base.vpcId });
    expect(Object.keys(t.template["Parameters"] as object).sort()).toEqual(Object.keys(t.parameters).sort());
  });

  it("reserves the catch-all's priority: tenants' rules stop one below it", () => {
    expect(POOL_CATCH_ALL_PRIORITY).toBe(50_000);
    expect(POOL_CATCH_ALL_PRIORITY).toBe(MAX_PRIORITY);
    expect(MAX_TENANT_PRIORITY).toBe(49_999);
  });

  it("tags: managed-by and tier=basic on the stack and every taggable resource, no tenant-id", () => {
    const t = poolStackTemplate(base);
    expect(t.tags).toEqual({ "managed-by": "ecs-tenant-operator", tier: "basic" });
    for (const [id, r] of Object.entries(resources())) {
      // ListenerRule and IAM::Policy take no Tags in CloudFormation; they go with the stack.
      if (r.Type === "AWS::ElasticLoadBalancingV2::ListenerRule" || r.Type === "AWS::IAM::Policy") continue;
      expect(tagsOf(r), id).toEqual({ "managed-by": "ecs-tenant-operator", tier: "basic" });
    }
  });

  it("outputs everything the pooled services need", () => {
    const outputs = poolStackTemplate(base).template["Outputs"] as Record<string, unknown>;
    expect(Object.keys(outputs).sort()).toEqual([...POOL_STACK_OUTPUT_KEYS].sort());
    expect(outputs["TenantAccessRoleArn"]).toEqual({ Value: { "Fn::GetAtt": ["TenantAccessRole", "Arn"] } });
    const values = Object.fromEntries(POOL_STACK_OUTPUT_KEYS.map((k) => [k, `v-${k}`]));
    expect(poolStackOutputs(values)).toEqual({
      taskRoleArn: "v-TaskRoleArn",
      executionRoleArn: "v-ExecutionRoleArn",
      tenantAccessRoleArn: "v-TenantAccessRoleArn",
      ordersTableName: "v-OrdersTableName",
      productsTableName: "v-ProductsTableName",
      logGroupName: "v-LogGroupName",
      targetGroupArn: "v-TargetGroupArn",
    });
    for (const key of POOL_STACK_OUTPUT_KEYS) {
      const { [key]: _, ...missing } = values;
      expect(poolStackOutputs(missing), key).toBeUndefined();
      expect(poolStackOutputs({ ...values, [key]: "" }), key).toBeUndefined();
    }
  });
});

describe("poolStackTemplate: the StackProvider's shape", () => {
  it("named <prefix>-pool, body canonical, hash over body, parameters and tags", () => {
    const t = poolStackTemplate(base);
    expect(t.stackName).toBe("saas-pool");
    expect(t.templateBody).toBe(canonicalJson(t.template));
    expect(t.hash).toBe(stackHash(t.templateBody, t.parameters, t.tags));
    expect(poolStackTemplate({ vpcId: base.vpcId, listenerArn: base.listenerArn, namePrefix: "saas", logRetentionDays: 30 }).hash).toBe(
      t.hash,
    );
  });

  it.each([
    { reason: "prefix", change: { namePrefix: "prod" } },
    { reason: "listener", change: { listenerArn: `${base.listenerArn}x` } },
    { reason: "vpc", change: { vpcId: "vpc-0aaaaaaaaaaaaaaaa" } },
    { reason: "log retention", change: { logRetentionDays: 14 } },
  ])("hash changes with the $reason", ({ change }) => {
    expect(poolStackTemplate({ ...base, ...change }).hash).not.toBe(poolStackTemplate(base).hash);
  });
});

describe("poolStackTemplate: names valid under each AWS rule, for every prefix", () => {
  const prefixes = fc.stringMatching(/^[a-z][a-z0-9]{0,9}$/);
  const tenantIds = fc.oneof(fc.uuid(), fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/));

  it("and never a tenant's", () => {
    fc.assert(
      fc.property(prefixes, tenantIds, (namePrefix, tenantId) => {
        const t = poolStackTemplate({ ...base, namePrefix });
        const r = t.template["Resources"] as Record<string, Resource>;
        const p = (id: string, key: string) => String(r[id]?.Properties[key]);
        expect(t.stackName).toMatch(/^[A-Za-z][A-Za-z0-9-]{0,127}$/);
        for (const id of ["OrdersTable", "ProductsTable"]) expect(p(id, "TableName")).toMatch(/^[A-Za-z0-9_.-]{3,255}$/);
        const roles = ["TaskRole", "TenantAccessRole", "ExecutionRole"].map((id) => p(id, "RoleName"));
        for (const role of roles) expect(role).toMatch(/^[\w+=,.@-]{1,64}$/);
        expect(new Set(roles.map((x) => x.toLowerCase())).size).toBe(3);
        expect(p("LogGroup", "LogGroupName")).toMatch(/^[.\-_/#A-Za-z0-9]{1,512}$/);
        const tg = p("TargetGroup", "Name");
        expect(tg).toMatch(/^[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?$/);
        expect(tg).not.toMatch(/^internal-|--/);
        expect(t.stackName).not.toBe(stackName(namePrefix, tenantId));
        expect(tg.toLowerCase()).not.toBe(targetGroupName(namePrefix, tenantId).toLowerCase());
      }),
      { numRuns: 300 },
    );
  });
});
