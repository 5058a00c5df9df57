import fc from "fast-check";
import { canonicalJson } from "../../src/tenants/record.js";
import { describe, expect, it } from "vitest";
import {
  ABAC_ITEM_ACTIONS,
  STACK_OUTPUT_KEYS,
  tenantStackOutputs,
  tenantStackTemplate,
  type TenantStackInput,
} from "../../src/tiers/stack-template.js";

const UUID = "3f2a9c1e-7b4d-4e2a-9f1c-0a1b2c3d4e5f";
const base: TenantStackInput = {
  tenantId: UUID,
  tier: "advanced",
  namePrefix: "saas",
  vpcId: "vpc-0123456789abcdef0",
};

type Resource = { Type: string; DeletionPolicy?: string; UpdateReplacePolicy?: string; Properties: Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any -- template JSON is read loosely in assertions
function resources(input: TenantStackInput = base): Record<string, Resource> {
  return tenantStackTemplate(input).template["Resources"] as Record<string, Resource>;
}
function resource(name: string, input: TenantStackInput = base): Resource {
  const r = resources(input)[name];
  if (r === undefined) throw new Error(`no resource ${name}`);
  return r;
}
const tagsOf = (r: Resource) => Object.fromEntries((r.Properties["Tags"] as { Key: string; Value: string }[]).map((t) => [t.Key, t.Value]));
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

describe("tenantStackTemplate: contents", () => {
  it("holds exactly the tenant's infrastructure", () => {
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
    });
  });

  it.each([
    { reason: "orders keyed by tenant then order", id: "OrdersTable", sortKey: "orderId", name: `saas-t-${UUID}-orders` },
    { reason: "products keyed by tenant then product", id: "ProductsTable", sortKey: "productId", name: `saas-t-${UUID}-products` },
  ])("silo table: $reason", ({ id, sortKey, name }) => {
    const p = resource(id).Properties;
    expect(p["TableName"]).toBe(name);
    expect(p["KeySchema"]).toEqual([
      { AttributeName: "tenantId", KeyType: "HASH" },
      { AttributeName: sortKey, KeyType: "RANGE" },
    ]);
    expect(p["AttributeDefinitions"]).toEqual([
      { AttributeName: "tenantId", AttributeType: "S" },
      { AttributeName: sortKey, AttributeType: "S" },
    ]);
    expect(p["BillingMode"]).toBe("PAY_PER_REQUEST");
    expect(p["ProvisionedThroughput"]).toBeUndefined();
    expect(p["PointInTimeRecoverySpecification"]).toEqual({ PointInTimeRecoveryEnabled: true });
    // A tier move replays writes made during the copy from the stream, deletes included.
    expect(p["StreamSpecification"]).toEqual({ StreamViewType: "NEW_AND_OLD_IMAGES" });
    // No stack operation may drop the tenant's data: only the controller does, after exporting or copying it.
    expect(resource(id).DeletionPolicy).toBe("Retain");
    expect(resource(id).UpdateReplacePolicy).toBe("Retain");
  });

  it("log group: deleted with the stack, explicitly, so its name is free when the stack comes back", () => {
    expect(resource("LogGroup").DeletionPolicy).toBe("Delete");
    expect(resource("LogGroup").UpdateReplacePolicy).toBe("Delete");
  });

  it("task role: may only assume the tenant-access role, with a tenant session tag (IAM_ROLE_ARN, as the reference images do)", () => {
    expect(resource("TaskRole").Properties["Policies"]).toBeUndefined();
    const grant = resource("TaskRolePolicy").Properties;
    expect(grant["Roles"]).toEqual([{ Ref: "TaskRole" }]);
    expect(statements(grant["PolicyDocument"])).toEqual([
      {
        Sid: "TenantScopedSessionsOnly",
        Effect: "Allow",
        Action: ["sts:AssumeRole", "sts:TagSession"],
        Resource: { "Fn::GetAtt": ["TenantAccessRole", "Arn"] },
      },
    ]);
    const trust = statements(resource("TenantAccessRole").Properties["AssumeRolePolicyDocument"]);
    expect(trust).toEqual([
      {
        Effect: "Allow",
        Principal: { AWS: { "Fn::GetAtt": ["TaskRole", "Arn"] } },
        Action: ["sts:AssumeRole", "sts:TagSession"],
        Condition: { Null: { "aws:RequestTag/tenant": "false" } },
      },
    ]);
  });

  it("tenant-access role: item actions on the two tables only, within the session's own partition", () => {
    const role = resource("TenantAccessRole").Properties;
    const all = policyStatements(role);
    expect(all).toHaveLength(1);
    const s = all[0]!;
    expect(s.Effect).toBe("Allow");
    expect([...(s.Action ?? [])].sort()).toEqual([...ABAC_ITEM_ACTIONS].sort());
    expect(s.Action).not.toContain("dynamodb:Scan");
    expect(s.Resource).toEqual([{ "Fn::GetAtt": ["OrdersTable", "Arn"] }, { "Fn::GetAtt": ["ProductsTable", "Arn"] }]);
    expect(s.Condition?.["ForAllValues:StringEquals"]).toEqual({ "dynamodb:LeadingKeys": ["${aws:PrincipalTag/tenant}"] });
    expect(s.Condition?.["Null"]).toEqual({ "dynamodb:LeadingKeys": "false" });
    // The principal tag comes from the session alone, never from a role tag.
    expect(tagsOf(resource("TenantAccessRole"))["tenant"]).toBeUndefined();
  });

  it("never lets CloudFormation substitute the principal-tag variable", () => {
    const { templateBody } = tenantStackTemplate(base);
    expect(templateBody).not.toContain("Fn::Sub");
    expect(templateBody).toContain('"${aws:PrincipalTag/tenant}"');
  });

  it("roles are assumable by ECS tasks only", () => {
    for (const id of ["TaskRole", "ExecutionRole"]) {
      expect(statements(resource(id).Properties["AssumeRolePolicyDocument"])).toEqual([
        expect.objectContaining({ Effect: "Allow", Principal: { Service: "ecs-tasks.amazonaws.com" }, Action: "sts:AssumeRole" }),
      ]);
    }
    const exec = JSON.stringify(resource("ExecutionRole").Properties["Policies"]);
    expect(exec).toContain('"Resource":{"Fn::GetAtt":["LogGroup","Arn"]}');
    expect(exec).not.toContain("dynamodb");
  });

  it("log group: per tenant, with a retention (default 30 days, configurable)", () => {
    expect(resource("LogGroup").Properties).toMatchObject({ LogGroupName: `/ecs/saas/tenant/${UUID}`, RetentionInDays: 30 });
    expect(resource("LogGroup", { ...base, logRetentionDays: 90 }).Properties["RetentionInDays"]).toBe(90);
  });

  it("target group: ip targets on the rproxy port, health checked on /health", () => {
    expect(resource("TargetGroup").Properties).toMatchObject({
      TargetType: "ip",
      Protocol: "HTTP",
      Port: 8080,
      VpcId: { Ref: "VpcId" },
      HealthCheckPath: "/health",
    });
  });

  it("no listener rule: the controller manages each tenant's rule through the ELBv2 API", () => {
    const t = tenantStackTemplate(base);
    expect(Object.values(resources()).map((r) => r.Type)).not.toContain("AWS::ElasticLoadBalancingV2::ListenerRule");
    expect(t.parameters).toEqual({ VpcId: base.vpcId });
    expect(Object.keys(t.template["Parameters"] as object).sort()).toEqual(Object.keys(t.parameters).sort());
    expect(t.templateBody).not.toMatch(/ListenerArn|Priority|ListenerRule/);
  });

  it("outputs everything task definitions and services need", () => {
    const outputs = tenantStackTemplate(base).template["Outputs"] as Record<string, unknown>;
    expect(Object.keys(outputs).sort()).toEqual([...STACK_OUTPUT_KEYS].sort());
    const values = Object.fromEntries(STACK_OUTPUT_KEYS.map((k) => [k, `v-${k}`]));
    expect(tenantStackOutputs(values)).toEqual({
      taskRoleArn: "v-TaskRoleArn",
      executionRoleArn: "v-ExecutionRoleArn",
      tenantAccessRoleArn: "v-TenantAccessRoleArn",
      ordersTableName: "v-OrdersTableName",
      productsTableName: "v-ProductsTableName",
      logGroupName: "v-LogGroupName",
      targetGroupArn: "v-TargetGroupArn",
    });
    expect(tenantStackOutputs({ ...values, TargetGroupArn: "" })).toBeUndefined();
    const { TargetGroupArn: _, ...missing } = values;
    expect(tenantStackOutputs(missing)).toBeUndefined();
  });

  it("tags: the stack carries managed-by, tenant-id and tier; every taggable resource managed-by and tenant-id", () => {
    const t = tenantStackTemplate(base);
    expect(t.tags).toEqual({ "managed-by": "ecs-tenant-operator", "tenant-id": UUID, tier: "advanced" });
    for (const [id, r] of Object.entries(resources())) {
      if (r.Type === "AWS::IAM::Policy") continue; // not taggable
      expect(tagsOf(r), id).toMatchObject({ "managed-by": "ecs-tenant-operator", "tenant-id": UUID });
    }
  });

  it.each([
    { reason: "basic tenants have no stack", input: { ...base, tier: "basic" as never } },
    { reason: "retention CloudWatch does not accept", input: { ...base, logRetentionDays: 31 } },
  ])("refuses: $reason", ({ input }) => {
    expect(() => tenantStackTemplate(input)).toThrow(RangeError);
  });
});

describe("tenantStackTemplate: tier change advanced <-> premium", () => {
  it("keeps the stack, its template and every name; only the tier tag (and so the hash) changes", () => {
    const a = tenantStackTemplate(base);
    const p = tenantStackTemplate({ ...base, tier: "premium" });
    expect(p.stackName).toBe(a.stackName);
    expect(p.templateBody).toBe(a.templateBody);
    expect(p.parameters).toEqual(a.parameters);
    expect(p.tags).toEqual({ ...a.tags, tier: "premium" });
    expect(p.hash).not.toBe(a.hash);
    expect(a.templateBody).not.toMatch(/advanced|premium/);
  });
});

describe("tenantStackTemplate: hash", () => {
  it("is the same for the same inputs, whatever their key order", () => {
    const reordered: TenantStackInput = { vpcId: base.vpcId, namePrefix: "saas", tier: "advanced", tenantId: UUID };
    expect(tenantStackTemplate(reordered).hash).toBe(tenantStackTemplate(base).hash);
    expect(tenantStackTemplate({ ...base, logRetentionDays: 30 }).hash).toBe(tenantStackTemplate(base).hash);
  });

  it.each([
    { reason: "tenant", change: { tenantId: "acme" } },
    { reason: "tier", change: { tier: "premium" as const } },
    { reason: "prefix", change: { namePrefix: "prod" } },
    { reason: "vpc", change: { vpcId: "vpc-0aaaaaaaaaaaaaaaa" } },
    { reason: "log retention", change: { logRetentionDays: 14 } },
  ])("changes with the $reason", ({ change }) => {
    expect(tenantStackTemplate({ ...base, ...change }).hash).not.toBe(tenantStackTemplate(base).hash);
  });

  it("templateBody is canonical JSON of the template", () => {
    const t = tenantStackTemplate(base);
    expect(t.templateBody).toBe(canonicalJson(t.template));
    expect(JSON.parse(t.templateBody)).toEqual(t.template);
    expect(canonicalJson({ b: 1, a: { d: [2, { f: 1, e: 0 }], c: 3 } })).toBe('{"a":{"c":3,"d":[2,{"e":0,"f":1}]},"b":1}');
  });
});

describe("tenantStackTemplate: names valid under each AWS rule", () => {
  const tenantIds = fc.oneof(fc.uuid(), fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/));
  const prefixes = fc.stringMatching(/^[a-z][a-z0-9]{0,9}$/);

  function names(tenantId: string, namePrefix: string) {
    const t = tenantStackTemplate({ ...base, tenantId, namePrefix });
    const r = t.template["Resources"] as Record<string, Resource>;
    const p = (id: string, key: string) => String(r[id]?.Properties[key]);
    return {
      stack: t.stackName,
      orders: p("OrdersTable", "TableName"),
      products: p("ProductsTable", "TableName"),
      taskRole: p("TaskRole", "RoleName"),
      execRole: p("ExecutionRole", "RoleName"),
      logGroup: p("LogGroup", "LogGroupName"),
      targetGroup: p("TargetGroup", "Name"),
    };
  }

  it("for UUIDs and every valid tenant id", () => {
    fc.assert(
      fc.property(tenantIds, prefixes, (tenantId, prefix) => {
        const n = names(tenantId, prefix);
        expect(n.stack).toMatch(/^[A-Za-z][A-Za-z0-9-]{0,127}$/);
        for (const table of [n.orders, n.products]) expect(table).toMatch(/^[A-Za-z0-9_.-]{3,255}$/);
        for (const role of [n.taskRole, n.execRole]) expect(role).toMatch(/^[\w+=,.@-]{1,64}$/);
        expect(n.logGroup).toMatch(/^[.\-_/#A-Za-z0-9]{1,512}$/);
        expect(n.targetGroup).toMatch(/^[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?$/);
        expect(n.targetGroup).not.toMatch(/^internal-|--/);
        expect(n.taskRole).not.toBe(n.execRole);
      }),
      { numRuns: 300 },
    );
  });

  it("never collide between tenants (case-insensitively where AWS compares so)", () => {
    fc.assert(
      fc.property(tenantIds, tenantIds, (a, b) => {
        fc.pre(a !== b);
        const na = names(a, "saas");
        const nb = names(b, "saas");
        expect(na.stack).not.toBe(nb.stack);
        expect(na.orders).not.toBe(nb.orders);
        expect(na.logGroup).not.toBe(nb.logGroup);
        expect(na.targetGroup.toLowerCase()).not.toBe(nb.targetGroup.toLowerCase());
        expect(na.taskRole.toLowerCase()).not.toBe(nb.taskRole.toLowerCase());
      }),
      { numRuns: 300 },
    );
    // Ids differing only in case or in _ versus -.
    expect(names("Acme", "saas").targetGroup.toLowerCase()).not.toBe(names("acme", "saas").targetGroup.toLowerCase());
    expect(names("a_b", "saas").stack).not.toBe(names("a-b", "saas").stack);
  });
});
