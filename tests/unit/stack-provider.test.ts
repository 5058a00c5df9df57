import {
  AlreadyExistsException,
  CloudFormationClient,
  CreateStackCommand,
  DeleteStackCommand,
  DescribeStackEventsCommand,
  DescribeStacksCommand,
  UpdateStackCommand,
  type Stack,
  type StackEvent,
} from "@aws-sdk/client-cloudformation";
import { mockClient } from "aws-sdk-client-mock";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { StackProvider, TEMPLATE_HASH_TAG, failureFromEvents, type DesiredStack } from "../../src/providers/stack-provider.js";
import { CloudFormationTenantInfra } from "../../src/providers/tenant-infra.js";
import { loadConfig } from "../../src/config.js";
import { tenantInfra } from "../../src/operator/run-controller.js";
import { poolStackTemplate } from "../../src/tiers/pool-template.js";
import { tenantStackTemplate } from "../../src/tiers/stack-template.js";
import { TransientError } from "../../src/errors.js";

const cfnMock = mockClient(CloudFormationClient);
let cfn: CloudFormationClient;
beforeEach(() => {
  cfnMock.reset();
  cfn = new CloudFormationClient({ region: "us-east-1" });
});
afterEach(() => cfn.destroy());

const NOW = 1_700_000_000_000;
const desired: DesiredStack = tenantStackTemplate({
  tenantId: "acme",
  tier: "advanced",
  namePrefix: "saas",
  vpcId: "vpc-0123456789abcdef0",
});
const LISTENER_ARN = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/saas/1/2";
const STACK_ID = `arn:aws:cloudformation:us-east-1:123456789012:stack/${desired.stackName}/11111111-2222-3333-4444-555555555555`;
const OUTPUTS = { TaskRoleArn: "arn:aws:iam::123456789012:role/task", TargetGroupArn: "arn:tg" };

function stack(status: string, overrides: { hash?: string | undefined; managed?: boolean; reason?: string } = {}): Stack {
  const hash = "hash" in overrides ? overrides.hash : desired.hash;
  const tags = [
    ...(overrides.managed === false ? [] : [{ Key: "managed-by", Value: "ecs-tenant-operator" }]),
    { Key: "tenant-id", Value: "acme" },
    ...(hash !== undefined ? [{ Key: TEMPLATE_HASH_TAG, Value: hash }] : []),
  ];
  return {
    StackId: STACK_ID,
    StackName: desired.stackName,
    StackStatus: status as Stack["StackStatus"],
    CreationTime: new Date(NOW),
    Tags: tags,
    Outputs: Object.entries(OUTPUTS).map(([OutputKey, OutputValue]) => ({ OutputKey, OutputValue })),
    ...(overrides.reason !== undefined ? { StackStatusReason: overrides.reason } : {}),
  };
}

function cfnError(name: string, message: string, status = 400): Error {
  return Object.assign(new Error(message), { name, $metadata: { httpStatusCode: status }, $fault: "client" });
}
const missing = () => cfnError("ValidationError", `Stack with id ${desired.stackName} does not exist`);

/** Events of one operation, oldest first in the arguments, returned newest first as the API does. */
function events(token: string, ...list: [string, string, string, string?][]): StackEvent[] {
  return list
    .map(([LogicalResourceId, ResourceType, ResourceStatus, ResourceStatusReason], i) => ({
      StackId: STACK_ID,
      EventId: `e${i}`,
      StackName: desired.stackName,
      LogicalResourceId,
      ResourceType,
      ResourceStatus: ResourceStatus as StackEvent["ResourceStatus"],
      ...(ResourceStatusReason !== undefined ? { ResourceStatusReason } : {}),
      PhysicalResourceId: ResourceType === "AWS::CloudFormation::Stack" ? STACK_ID : `phys-${LogicalResourceId}`,
      ClientRequestToken: token,
      Timestamp: new Date(NOW + i * 1000),
    }))
    .reverse();
}
const STACK = "AWS::CloudFormation::Stack";

const writes = () => ({
  create: cfnMock.commandCalls(CreateStackCommand).length,
  update: cfnMock.commandCalls(UpdateStackCommand).length,
  delete: cfnMock.commandCalls(DeleteStackCommand).length,
});
const provider = () => new StackProvider(cfn, { now: () => NOW });

describe("StackProvider.ensure", () => {
  it("creates an absent stack with tags, the hash tag, named-IAM capability and a hash-derived token", async () => {
    cfnMock.on(DescribeStacksCommand).rejects(missing());
    cfnMock.on(CreateStackCommand).resolves({ StackId: STACK_ID });
    expect(await provider().ensure(desired)).toEqual({ kind: "inProgress", status: "CREATE_IN_PROGRESS" });
    const input = cfnMock.commandCalls(CreateStackCommand)[0]!.args[0].input;
    expect(input.StackName).toBe(desired.stackName);
    expect(input.TemplateBody).toBe(desired.templateBody);
    expect(input.Capabilities).toEqual(["CAPABILITY_NAMED_IAM"]);
    // The tenant's listener rule is the controller's (TenantRoutes), so no listener or priority goes in.
    expect(input.Parameters).toEqual([{ ParameterKey: "VpcId", ParameterValue: "vpc-0123456789abcdef0" }]);
    expect(input.Tags).toEqual([
      { Key: "managed-by", Value: "ecs-tenant-operator" },
      { Key: "tenant-id", Value: "acme" },
      { Key: "tier", Value: "advanced" },
      { Key: TEMPLATE_HASH_TAG, Value: desired.hash },
    ]);
    expect(input.ClientRequestToken).toBe(`create-${desired.hash.slice(0, 16)}-${NOW.toString(36)}`);
    expect(input.ClientRequestToken).toMatch(/^[a-zA-Z0-9][-a-zA-Z0-9]{0,127}$/);
  });

  it.each([
    {
      reason: "a create that raced another one",
      error: new AlreadyExistsException({ message: "exists", $metadata: {} }),
      want: { kind: "inProgress" },
    },
    {
      reason: "a template CloudFormation refuses",
      error: cfnError("ValidationError", "Template format error: Unresolved resource dependencies [Nope]"),
      want: {
        kind: "failed",
        terminal: true,
        reason: "CreateStack refused: Template format error: Unresolved resource dependencies [Nope]",
      },
    },
  ])("CreateStack answering $reason", async ({ error, want }) => {
    cfnMock.on(DescribeStacksCommand).rejects(missing());
    cfnMock.on(CreateStackCommand).rejects(error);
    expect(await provider().ensure(desired)).toMatchObject(want);
  });

  it("throws throttling, wrapped with the stack as a TransientError, for the caller's backoff", async () => {
    cfnMock.on(DescribeStacksCommand).rejects(cfnError("Throttling", "Rate exceeded"));
    const err = await provider()
      .ensure(desired)
      .then(
        () => new Error("expected a failure"),
        (e: unknown) => e as Error,
      );
    expect(err).toBeInstanceOf(TransientError);
    expect(err.cause).toMatchObject({ name: "Throttling" });
    expect(err.message).toContain(desired.stackName);
  });

  it.each([
    "CREATE_IN_PROGRESS",
    "UPDATE_IN_PROGRESS",
    "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS",
    "UPDATE_ROLLBACK_IN_PROGRESS",
    "ROLLBACK_IN_PROGRESS",
    "DELETE_IN_PROGRESS",
  ])("%s: in progress, no write, never waits", async (status) => {
    cfnMock.on(DescribeStacksCommand).resolves({ Stacks: [stack(status, { hash: "old" })] });
    expect(await provider().ensure(desired)).toEqual({ kind: "inProgress", status });
    expect(writes()).toEqual({ create: 0, update: 0, delete: 0 });
    expect(cfnMock.calls()).toHaveLength(1);
  });

  it.each(["CREATE_COMPLETE", "UPDATE_COMPLETE"])("%s with the desired hash: ready with outputs, one DescribeStacks", async (status) => {
    cfnMock.on(DescribeStacksCommand).resolves({ Stacks: [stack(status)] });
    expect(await provider().ensure(desired)).toEqual({ kind: "ready", stackId: STACK_ID, outputs: OUTPUTS });
    expect(cfnMock.calls()).toHaveLength(1);
  });

  it("updates a stack whose hash tag differs, by stack id, with the new hash tag", async () => {
    cfnMock.on(DescribeStacksCommand).resolves({ Stacks: [stack("CREATE_COMPLETE", { hash: "old" })] });
    cfnMock.on(UpdateStackCommand).resolves({ StackId: STACK_ID });
    expect(await provider().ensure(desired)).toEqual({ kind: "inProgress", status: "UPDATE_IN_PROGRESS" });
    const input = cfnMock.commandCalls(UpdateStackCommand)[0]!.args[0].input;
    expect(input.StackName).toBe(STACK_ID);
    expect(input.Tags).toContainEqual({ Key: TEMPLATE_HASH_TAG, Value: desired.hash });
    expect(input.Capabilities).toEqual(["CAPABILITY_NAMED_IAM"]);
    expect(input.ClientRequestToken).toMatch(new RegExp(`^update-${desired.hash.slice(0, 16)}-`));
  });

  it('"No updates are to be performed" is success, and is not asked again', async () => {
    cfnMock.on(DescribeStacksCommand).resolves({ Stacks: [stack("UPDATE_COMPLETE", { hash: "old" })] });
    cfnMock.on(UpdateStackCommand).rejects(cfnError("ValidationError", "No updates are to be performed."));
    const p = provider();
    expect(await p.ensure(desired)).toEqual({ kind: "ready", stackId: STACK_ID, outputs: OUTPUTS });
    expect(await p.ensure(desired)).toEqual({ kind: "ready", stackId: STACK_ID, outputs: OUTPUTS });
    expect(writes().update).toBe(1);
  });

  it("tier change advanced -> premium: the same stack, updated in place (no delete, no create)", async () => {
    const premium = tenantStackTemplate({ tenantId: "acme", tier: "premium", namePrefix: "saas", vpcId: "vpc-0123456789abcdef0" });
    expect(premium.stackName).toBe(desired.stackName);
    cfnMock.on(DescribeStacksCommand).resolves({ Stacks: [stack("UPDATE_COMPLETE")] });
    cfnMock.on(UpdateStackCommand).resolves({ StackId: STACK_ID });
    expect(await provider().ensure(premium)).toMatchObject({ kind: "inProgress" });
    expect(writes()).toEqual({ create: 0, update: 1, delete: 0 });
    const input = cfnMock.commandCalls(UpdateStackCommand)[0]!.args[0].input;
    expect(input.TemplateBody).toBe(desired.templateBody);
    expect(input.Tags).toContainEqual({ Key: "tier", Value: "premium" });
  });

  it("ROLLBACK_COMPLETE after a failed create: reports the first failure, deletes, then creates again once gone", async () => {
    cfnMock
      .on(DescribeStacksCommand)
      .resolvesOnce({ Stacks: [stack("ROLLBACK_COMPLETE")] })
      .rejects(missing());
    cfnMock.on(DescribeStackEventsCommand).resolves({
      StackEvents: events(
        `create-${desired.hash.slice(0, 16)}-x`,
        [desired.stackName, STACK, "CREATE_IN_PROGRESS", "User Initiated"],
        ["OrdersTable", "AWS::DynamoDB::Table", "CREATE_IN_PROGRESS"],
        ["TargetGroup", "AWS::ElasticLoadBalancingV2::TargetGroup", "CREATE_FAILED", "A target group with the same name 'x' exists"],
        ["OrdersTable", "AWS::DynamoDB::Table", "CREATE_FAILED", "Resource creation cancelled"],
        [desired.stackName, STACK, "ROLLBACK_IN_PROGRESS", "The following resource(s) failed to create: [TargetGroup, OrdersTable]."],
        ["OrdersTable", "AWS::DynamoDB::Table", "DELETE_COMPLETE"],
        [desired.stackName, STACK, "ROLLBACK_COMPLETE"],
      ),
    });
    cfnMock.on(DeleteStackCommand).resolves({});
    cfnMock.on(CreateStackCommand).resolves({ StackId: STACK_ID });
    const p = provider();
    expect(await p.ensure(desired)).toEqual({
      kind: "failed",
      reason: "TargetGroup: A target group with the same name 'x' exists",
      resource: "TargetGroup",
      status: "ROLLBACK_COMPLETE",
      terminal: false,
    });
    expect(writes()).toEqual({ create: 0, update: 0, delete: 1 });
    expect(cfnMock.commandCalls(DeleteStackCommand)[0]!.args[0].input.StackName).toBe(STACK_ID);
    expect(await p.ensure(desired)).toEqual({ kind: "inProgress", status: "CREATE_IN_PROGRESS" });
    expect(writes()).toEqual({ create: 1, update: 0, delete: 1 });
  });

  describe("UPDATE_ROLLBACK_COMPLETE", () => {
    const failedUpdate = (hash: string) =>
      events(
        `update-${hash.slice(0, 16)}-x`,
        [desired.stackName, STACK, "UPDATE_IN_PROGRESS", "User Initiated"],
        ["TaskRole", "AWS::IAM::Role", "UPDATE_FAILED", "Policy document is malformed"],
        [desired.stackName, STACK, "UPDATE_ROLLBACK_IN_PROGRESS"],
        [desired.stackName, STACK, "UPDATE_ROLLBACK_COMPLETE"],
      );

    it("for the desired hash: failed with the resource and reason, no new update", async () => {
      cfnMock.on(DescribeStacksCommand).resolves({ Stacks: [stack("UPDATE_ROLLBACK_COMPLETE", { hash: "previous" })] });
      cfnMock.on(DescribeStackEventsCommand).resolves({ StackEvents: failedUpdate(desired.hash) });
      expect(await provider().ensure(desired)).toEqual({
        kind: "failed",
        reason: "TaskRole: Policy document is malformed",
        resource: "TaskRole",
        status: "UPDATE_ROLLBACK_COMPLETE",
        terminal: true,
      });
      expect(writes()).toEqual({ create: 0, update: 0, delete: 0 });
    });

    it("for an older hash: a new desired hash gets its own update", async () => {
      cfnMock.on(DescribeStacksCommand).resolves({ Stacks: [stack("UPDATE_ROLLBACK_COMPLETE", { hash: "previous" })] });
      cfnMock.on(DescribeStackEventsCommand).resolves({ StackEvents: failedUpdate("f".repeat(64)) });
      cfnMock.on(UpdateStackCommand).resolves({ StackId: STACK_ID });
      expect(await provider().ensure(desired)).toEqual({ kind: "inProgress", status: "UPDATE_IN_PROGRESS" });
      expect(writes().update).toBe(1);
    });

    it("rolled back to exactly what is desired now: ready", async () => {
      cfnMock.on(DescribeStacksCommand).resolves({ Stacks: [stack("UPDATE_ROLLBACK_COMPLETE")] });
      expect(await provider().ensure(desired)).toMatchObject({ kind: "ready", outputs: OUTPUTS });
      expect(cfnMock.commandCalls(DescribeStackEventsCommand)).toHaveLength(0);
    });
  });

  it("DELETE_FAILED: failed with the resource and reason, the delete retried", async () => {
    cfnMock.on(DescribeStacksCommand).resolves({ Stacks: [stack("DELETE_FAILED")] });
    cfnMock.on(DescribeStackEventsCommand).resolves({
      StackEvents: events(
        "delete-x",
        [desired.stackName, STACK, "DELETE_IN_PROGRESS", "User Initiated"],
        [
          "TargetGroup",
          "AWS::ElasticLoadBalancingV2::TargetGroup",
          "DELETE_FAILED",
          "Target group is currently in use by a listener or a rule",
        ],
        [desired.stackName, STACK, "DELETE_FAILED", "The following resource(s) failed to delete: [TargetGroup]."],
      ),
    });
    cfnMock.on(DeleteStackCommand).resolves({});
    expect(await provider().ensure(desired)).toEqual({
      kind: "failed",
      reason: "TargetGroup: Target group is currently in use by a listener or a rule",
      resource: "TargetGroup",
      status: "DELETE_FAILED",
      terminal: false,
    });
    expect(writes()).toEqual({ create: 0, update: 0, delete: 1 });
  });

  it("never touches a stack without managed-by", async () => {
    cfnMock.on(DescribeStacksCommand).resolves({ Stacks: [stack("ROLLBACK_COMPLETE", { managed: false, hash: "old" })] });
    expect(await provider().ensure(desired)).toMatchObject({ kind: "failed", terminal: true });
    expect(await provider().remove(desired.stackName)).toMatchObject({ kind: "failed", terminal: true });
    expect(writes()).toEqual({ create: 0, update: 0, delete: 0 });
  });

  it("makes no write when the fence says the lease is lost", async () => {
    cfnMock.on(DescribeStacksCommand).rejects(missing());
    const fence = {
      assertHeld() {
        throw new Error("lease lost");
      },
    };
    await expect(provider().ensure(desired, fence)).rejects.toThrow("lease lost");
    expect(writes().create).toBe(0);
  });
});

describe("StackProvider and the CloudFormation service role (CFN_ROLE_ARN)", () => {
  const ROLE = "arn:aws:iam::123456789012:role/ecs-tenant-operator/saas-cfn";

  /** One create, one update and one delete through a provider with the given options. */
  async function createUpdateDelete(options: { roleArn?: string }) {
    const p = new StackProvider(cfn, { now: () => NOW, ...options });
    cfnMock
      .on(DescribeStacksCommand)
      .rejectsOnce(missing())
      .resolves({ Stacks: [stack("CREATE_COMPLETE", { hash: "older" })] });
    cfnMock.on(CreateStackCommand).resolves({ StackId: STACK_ID });
    cfnMock.on(UpdateStackCommand).resolves({ StackId: STACK_ID });
    cfnMock.on(DeleteStackCommand).resolves({});
    await p.ensure(desired);
    await p.ensure(desired);
    await p.remove(desired.stackName);
    return {
      create: cfnMock.commandCalls(CreateStackCommand).map((c) => c.args[0].input),
      update: cfnMock.commandCalls(UpdateStackCommand).map((c) => c.args[0].input),
      delete: cfnMock.commandCalls(DeleteStackCommand).map((c) => c.args[0].input),
    };
  }

  it("sends RoleARN with every create, update and delete when configured", async () => {
    const calls = await createUpdateDelete({ roleArn: ROLE });
    expect([calls.create.length, calls.update.length, calls.delete.length]).toEqual([1, 1, 1]);
    for (const input of [...calls.create, ...calls.update, ...calls.delete]) expect(input.RoleARN).toBe(ROLE);
  });

  it("sends no RoleARN at all when none is configured, so CloudFormation uses the caller's credentials", async () => {
    const calls = await createUpdateDelete({});
    expect([calls.create.length, calls.update.length, calls.delete.length]).toEqual([1, 1, 1]);
    for (const input of [...calls.create, ...calls.update, ...calls.delete]) expect("RoleARN" in input).toBe(false);
  });

  it("is wired from the config: tenantInfra passes CFN_ROLE_ARN to the stacks it creates", async () => {
    const base = {
      SUBNETS: "subnet-0a",
      SECURITY_GROUPS: "sg-0a",
      LISTENER_ARN: LISTENER_ARN,
      VPC_ID: "vpc-0123456789abcdef0",
    };
    cfnMock.on(DescribeStacksCommand).rejects(missing());
    cfnMock.on(CreateStackCommand).resolves({ StackId: STACK_ID });
    const infra = (env: Record<string, string>) => tenantInfra(loadConfig({ ...base, ...env }), { cloudformation: cfn });
    await infra({ CFN_ROLE_ARN: ROLE }).ensurePool({ assertHeld() {} });
    await infra({}).ensurePool({ assertHeld() {} });
    const roles = cfnMock.commandCalls(CreateStackCommand).map((c) => c.args[0].input.RoleARN);
    expect(roles).toEqual([ROLE, undefined]);
  });
});

describe("StackProvider.remove", () => {
  it.each([
    { reason: "absent", describe: () => cfnMock.on(DescribeStacksCommand).rejects(missing()), want: { kind: "gone" }, deletes: 0 },
    {
      reason: "DELETE_COMPLETE",
      describe: () => cfnMock.on(DescribeStacksCommand).resolves({ Stacks: [stack("DELETE_COMPLETE")] }),
      want: { kind: "gone" },
      deletes: 0,
    },
    {
      reason: "being deleted",
      describe: () => cfnMock.on(DescribeStacksCommand).resolves({ Stacks: [stack("DELETE_IN_PROGRESS")] }),
      want: { kind: "inProgress", status: "DELETE_IN_PROGRESS" },
      deletes: 0,
    },
    {
      reason: "being updated",
      describe: () => cfnMock.on(DescribeStacksCommand).resolves({ Stacks: [stack("UPDATE_IN_PROGRESS")] }),
      want: { kind: "inProgress", status: "UPDATE_IN_PROGRESS" },
      deletes: 0,
    },
    {
      reason: "complete",
      describe: () => cfnMock.on(DescribeStacksCommand).resolves({ Stacks: [stack("UPDATE_COMPLETE")] }),
      want: { kind: "inProgress", status: "DELETE_IN_PROGRESS" },
      deletes: 1,
    },
    {
      reason: "rolled back",
      describe: () => cfnMock.on(DescribeStacksCommand).resolves({ Stacks: [stack("UPDATE_ROLLBACK_COMPLETE")] }),
      want: { kind: "inProgress", status: "DELETE_IN_PROGRESS" },
      deletes: 1,
    },
  ])("$reason", async ({ describe: arrange, want, deletes }) => {
    arrange();
    cfnMock.on(DeleteStackCommand).resolves({});
    expect(await provider().remove(desired.stackName)).toEqual(want);
    expect(writes().delete).toBe(deletes);
  });
});

describe("what real CloudFormation does over a tenant's life (calls counted)", () => {
  /**
   * A scripted CloudFormation: operations take a few reads to finish, as on
   * AWS (moto finishes every operation within the call, so the polls are
   * counted here).
   */
  function scriptedCloudFormation(readsPerOperation = 2) {
    let current: { status: string; hash: string | undefined; reads: number } | undefined;
    cfnMock.on(DescribeStacksCommand).callsFake(() => {
      if (current === undefined) throw missing();
      if (current.status.endsWith("_IN_PROGRESS") && ++current.reads > readsPerOperation) {
        current =
          current.status === "DELETE_IN_PROGRESS" ? undefined : { ...current, status: current.status.replace("_IN_PROGRESS", "_COMPLETE") };
        if (current === undefined) throw missing();
      }
      return { Stacks: [stack(current.status, { hash: current.hash })] };
    });
    cfnMock.on(CreateStackCommand).callsFake((input: { Tags: { Key: string; Value: string }[] }) => {
      if (current !== undefined) throw new AlreadyExistsException({ message: "exists", $metadata: {} });
      current = { status: "CREATE_IN_PROGRESS", hash: input.Tags.find((t) => t.Key === TEMPLATE_HASH_TAG)?.Value, reads: 0 };
      return { StackId: STACK_ID };
    });
    cfnMock.on(DeleteStackCommand).callsFake(() => {
      if (current !== undefined) current = { ...current, status: "DELETE_IN_PROGRESS", reads: 0 };
      return {};
    });
  }
  const count = () => cfnMock.calls().length;

  it("create: 2 calls, then 1 per poll; steady: 1 per reconcile; delete: 2, then 1 per poll", async () => {
    scriptedCloudFormation(2);
    const p = provider();
    const seen: string[] = [];
    for (;;) {
      const r = await p.ensure(desired);
      seen.push(r.kind);
      if (r.kind === "ready") break;
    }
    let calls = count();
    expect(seen).toEqual(["inProgress", "inProgress", "inProgress", "ready"]);
    expect(calls).toBe(2 + 1 + 1 + 1); // Describe+Create, two polls in progress, the ready read

    for (let i = 0; i < 5; i++) expect((await p.ensure(desired)).kind).toBe("ready");
    expect(count() - calls).toBe(5);
    calls = count();

    const removal: string[] = [];
    for (;;) {
      const r = await p.remove(desired.stackName);
      removal.push(r.kind);
      if (r.kind === "gone") break;
    }
    expect(removal).toEqual(["inProgress", "inProgress", "inProgress", "gone"]);
    expect(count() - calls).toBe(2 + 1 + 1 + 1);
    expect(writes()).toEqual({ create: 1, update: 0, delete: 1 });
  });
});

describe("failureFromEvents", () => {
  it("reads only the latest operation, skipping cancellations", () => {
    const older = events(
      "update-aaaaaaaaaaaaaaaa-1",
      [desired.stackName, STACK, "UPDATE_IN_PROGRESS", "User Initiated"],
      ["ProductsTable", "AWS::DynamoDB::Table", "UPDATE_FAILED", "old failure"],
      [desired.stackName, STACK, "UPDATE_ROLLBACK_COMPLETE"],
    );
    const latest = events(
      "update-bbbbbbbbbbbbbbbb-2",
      [desired.stackName, STACK, "UPDATE_IN_PROGRESS", "User Initiated"],
      ["LogGroup", "AWS::Logs::LogGroup", "UPDATE_FAILED", "Resource update cancelled"],
      ["TaskRole", "AWS::IAM::Role", "UPDATE_FAILED", "new failure"],
      [desired.stackName, STACK, "UPDATE_ROLLBACK_COMPLETE"],
    );
    expect(
      failureFromEvents([...latest, ...older], { stackId: STACK_ID, status: "UPDATE_ROLLBACK_COMPLETE", statusReason: undefined }),
    ).toEqual({
      reason: "TaskRole: new failure",
      resource: "TaskRole",
      hashPrefix: "bbbbbbbbbbbbbbbb",
    });
  });

  it("falls back to the stack's own reason", () => {
    expect(failureFromEvents([], { stackId: STACK_ID, status: "DELETE_FAILED", statusReason: "something" })).toMatchObject({
      reason: "stack is DELETE_FAILED: something",
      resource: undefined,
    });
  });
});

describe("tenantctl plan and the controller decide alike", () => {
  /** The same settings as `desired`, so the infra's template is `desired` exactly. */
  const infra = () =>
    new CloudFormationTenantInfra(provider(), { namePrefix: "saas", listenerArn: LISTENER_ARN, vpcId: desired.parameters["VpcId"]! });
  const held = { assertHeld() {} };
  const failedOp = (operation: "create" | "update" | "delete") =>
    events(
      `${operation}-${desired.hash.slice(0, 16)}-x`,
      [desired.stackName, STACK, `${operation.toUpperCase()}_IN_PROGRESS`, "User Initiated"],
      ["TaskRole", "AWS::IAM::Role", `${operation.toUpperCase()}_FAILED`, "Policy document is malformed"],
    );
  const stackWrites = () =>
    cfnMock
      .calls()
      .map((c) => (c.args[0] as { constructor: { name: string } }).constructor.name.replace(/Command$/, ""))
      .filter((name) => ["CreateStack", "UpdateStack", "DeleteStack"].includes(name))
      .map((name) => `cloudformation:${name}`);

  it.each([
    {
      reason: "absent",
      arrange: () => cfnMock.on(DescribeStacksCommand).rejects(missing()),
      tier: "advanced" as const,
      call: "cloudformation:CreateStack",
    },
    {
      reason: "steady",
      arrange: () => cfnMock.on(DescribeStacksCommand).resolves({ Stacks: [stack("CREATE_COMPLETE")] }),
      tier: "advanced" as const,
      call: undefined,
    },
    {
      reason: "hash changed",
      arrange: () => cfnMock.on(DescribeStacksCommand).resolves({ Stacks: [stack("UPDATE_COMPLETE", { hash: "old" })] }),
      tier: "advanced" as const,
      call: "cloudformation:UpdateStack",
    },
    {
      reason: "busy",
      arrange: () => cfnMock.on(DescribeStacksCommand).resolves({ Stacks: [stack("UPDATE_IN_PROGRESS", { hash: "old" })] }),
      tier: "advanced" as const,
      call: undefined,
    },
    {
      reason: "dead create",
      arrange: () => {
        cfnMock.on(DescribeStacksCommand).resolves({ Stacks: [stack("ROLLBACK_COMPLETE")] });
        cfnMock.on(DescribeStackEventsCommand).resolves({ StackEvents: failedOp("create") });
      },
      tier: "advanced" as const,
      call: "cloudformation:DeleteStack",
    },
    {
      reason: "failed delete of a wanted stack",
      arrange: () => {
        cfnMock.on(DescribeStacksCommand).resolves({ Stacks: [stack("DELETE_FAILED")] });
        cfnMock.on(DescribeStackEventsCommand).resolves({ StackEvents: failedOp("delete") });
      },
      tier: "advanced" as const,
      call: "cloudformation:DeleteStack",
    },
    {
      // The old preview listed an UpdateStack here that ensure never sent.
      reason: "rolled back after our update for this hash",
      arrange: () => {
        cfnMock.on(DescribeStacksCommand).resolves({ Stacks: [stack("UPDATE_ROLLBACK_COMPLETE", { hash: "previous" })] });
        cfnMock.on(DescribeStackEventsCommand).resolves({ StackEvents: failedOp("update") });
      },
      tier: "advanced" as const,
      call: undefined,
    },
    {
      reason: "stuck rollback",
      arrange: () => {
        cfnMock.on(DescribeStacksCommand).resolves({ Stacks: [stack("UPDATE_ROLLBACK_FAILED", { hash: "previous" })] });
        cfnMock.on(DescribeStackEventsCommand).resolves({ StackEvents: failedOp("update") });
      },
      tier: "advanced" as const,
      call: undefined,
    },
    {
      reason: "unmanaged",
      arrange: () => cfnMock.on(DescribeStacksCommand).resolves({ Stacks: [stack("CREATE_COMPLETE", { managed: false, hash: "old" })] }),
      tier: "advanced" as const,
      call: undefined,
    },
    {
      reason: "offboarded, stack complete",
      arrange: () => cfnMock.on(DescribeStacksCommand).resolves({ Stacks: [stack("CREATE_COMPLETE")] }),
      tier: undefined,
      call: "cloudformation:DeleteStack",
    },
    {
      reason: "offboarded, stack busy",
      arrange: () => cfnMock.on(DescribeStacksCommand).resolves({ Stacks: [stack("UPDATE_IN_PROGRESS")] }),
      tier: undefined,
      call: undefined,
    },
    {
      reason: "offboarded, stack unmanaged",
      arrange: () => cfnMock.on(DescribeStacksCommand).resolves({ Stacks: [stack("CREATE_COMPLETE", { managed: false })] }),
      tier: undefined,
      call: undefined,
    },
    {
      reason: "offboarded, delete failed",
      arrange: () => {
        cfnMock.on(DescribeStacksCommand).resolves({ Stacks: [stack("DELETE_FAILED")] });
        cfnMock.on(DescribeStackEventsCommand).resolves({ StackEvents: failedOp("delete") });
      },
      tier: undefined,
      call: "cloudformation:DeleteStack",
    },
    {
      reason: "offboarded, stack gone",
      arrange: () => cfnMock.on(DescribeStacksCommand).rejects(missing()),
      tier: undefined,
      call: undefined,
    },
  ])("$reason: plan lists exactly the stack write the controller then makes", async ({ arrange, tier, call }) => {
    arrange();
    cfnMock.on(CreateStackCommand).resolves({ StackId: STACK_ID });
    cfnMock.on(UpdateStackCommand).resolves({ StackId: STACK_ID });
    cfnMock.on(DeleteStackCommand).resolves({});

    const planned = (await infra().preview("acme", tier)).filter((c) => c.call.startsWith("cloudformation:"));
    expect(stackWrites()).toEqual([]);
    expect(planned.map((c) => c.call)).toEqual(call === undefined ? [] : [call]);
    expect(planned.every((c) => c.target === desired.stackName && c.reason.length > 0)).toBe(true);

    await (tier === undefined ? infra().remove("acme", held) : infra().ensure("acme", tier, held));
    expect(stackWrites()).toEqual(planned.map((c) => c.call));
  });
});

describe("tenantctl plan :pool and the controller decide alike", () => {
  const pool = poolStackTemplate({ namePrefix: "saas", listenerArn: LISTENER_ARN, vpcId: "vpc-0123456789abcdef0" });
  const infra = () =>
    new CloudFormationTenantInfra(provider(), { namePrefix: "saas", listenerArn: LISTENER_ARN, vpcId: "vpc-0123456789abcdef0" });
  const POOL_ID = `arn:aws:cloudformation:us-east-1:123456789012:stack/${pool.stackName}/11111111-2222-3333-4444-555555555555`;
  const poolStack = (status: string, hash: string): Stack => ({
    StackId: POOL_ID,
    StackName: pool.stackName,
    StackStatus: status as Stack["StackStatus"],
    CreationTime: new Date(NOW),
    Tags: [
      { Key: "managed-by", Value: "ecs-tenant-operator" },
      { Key: "tier", Value: "basic" },
      { Key: TEMPLATE_HASH_TAG, Value: hash },
    ],
    Outputs: [],
  });

  it("the pool stack carries the shared listener (its catch-all rule), unlike a tenant's", () => {
    expect(pool.parameters).toEqual({ ListenerArn: LISTENER_ARN, VpcId: "vpc-0123456789abcdef0" });
    expect(pool.stackName).not.toBe(desired.stackName);
  });

  it.each([
    { reason: "absent", arrange: () => cfnMock.on(DescribeStacksCommand).rejects(missing()), call: "cloudformation:CreateStack" },
    {
      reason: "hash changed",
      arrange: () => cfnMock.on(DescribeStacksCommand).resolves({ Stacks: [poolStack("UPDATE_COMPLETE", "old")] }),
      call: "cloudformation:UpdateStack",
    },
    {
      reason: "busy",
      arrange: () => cfnMock.on(DescribeStacksCommand).resolves({ Stacks: [poolStack("CREATE_IN_PROGRESS", "old")] }),
      call: undefined,
    },
  ])("$reason: previewPool lists exactly the write ensurePool then makes", async ({ arrange, call }) => {
    arrange();
    cfnMock.on(CreateStackCommand).resolves({ StackId: POOL_ID });
    cfnMock.on(UpdateStackCommand).resolves({ StackId: POOL_ID });
    const planned = await infra().previewPool();
    expect(writes()).toEqual({ create: 0, update: 0, delete: 0 });
    expect(planned.map((c) => c.call)).toEqual(call === undefined ? [] : [call]);
    expect(planned.every((c) => c.target === pool.stackName)).toBe(true);

    expect(await infra().ensurePool({ assertHeld() {} })).toMatchObject({ kind: "inProgress" });
    const sent = [...cfnMock.commandCalls(CreateStackCommand), ...cfnMock.commandCalls(UpdateStackCommand)];
    expect(sent.map((c) => c.args[0].input.StackName)).toEqual(
      call === undefined ? [] : [call === "cloudformation:CreateStack" ? pool.stackName : POOL_ID],
    );
    expect(sent.every((c) => c.args[0].input.TemplateBody === pool.templateBody)).toBe(true);
  });
});
