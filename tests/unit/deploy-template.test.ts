import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve as resolvePath } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { configSchema, loadConfig } from "../../src/config.js";
import { evaluateConditions, parameterValues, parseTemplate, resolve, type ResolveContext } from "../../src/localcloud/cfn-template.js";
import { lintAll, readableFindings } from "../support/cfn-lint.js";
import { EMF_DIMENSION, EMF_METRICS, EMF_NAMESPACE } from "../../src/observability/emf.js";
import { ecsEventPattern } from "../../src/tiers/ecs-event-hint.js";

/**
 * deploy/operator.yaml, the template that deploys the controller: cfn-lint
 * finds nothing at any level; its task role allows exactly the AWS calls the
 * controller's code makes (read from the source, both ways); and what it
 * configures the controller with loads through the controller's own config.
 */

const ROOT = resolvePath(dirname(fileURLToPath(import.meta.url)), "../..");
const TEMPLATE_FILE = join(ROOT, "deploy/operator.yaml");
const body = readFileSync(TEMPLATE_FILE, "utf8");
const template = parseTemplate(body);

const ACCOUNT = "123456789012";
const GIVEN = {
  Image: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/ecs-tenant-operator:0.1.0",
  ClusterName: "ops",
  TenantsTableName: "TenantDetails",
  TenantsStreamArn: `arn:aws:dynamodb:eu-west-1:${ACCOUNT}:table/TenantDetails/stream/2026-01-01T00:00:00.000`,
  Subnets: "subnet-0a,subnet-0b",
  SecurityGroups: "sg-0a",
  VpcId: "vpc-0a",
  ListenerArns: [
    `arn:aws:elasticloadbalancing:eu-west-1:${ACCOUNT}:listener/app/shared/0123abcd/4567ef89`,
    `arn:aws:elasticloadbalancing:eu-west-1:${ACCOUNT}:listener/app/shared-2/0a0b0c0d/0e0f0a0b`,
  ].join(","),
};
const [FIRST_LISTENER, SECOND_LISTENER] = GIVEN.ListenerArns.split(",") as [string, string];
const ruleArns = (listener: string) => `${listener.replace(":listener/", ":listener-rule/")}/*`;

/** The template resolved as CloudFormation would with these parameters; physical ids are made up. */
function contextFor(given: Readonly<Record<string, string>>): ResolveContext {
  const refs: Record<string, string | readonly string[]> = {
    ...parameterValues(template, given),
    "AWS::Region": "eu-west-1",
    "AWS::AccountId": ACCOUNT,
    "AWS::Partition": "aws",
    "AWS::StackName": "ecs-tenant-operator",
  };
  const conditions = evaluateConditions(template, refs);
  const created = Object.entries(template.Resources).filter(([, r]) => r.Condition === undefined || conditions[r.Condition] === true);
  const prefix = String(refs["NamePrefix"]);
  const physical: Record<string, string> = Object.fromEntries(created.map(([id]) => [id, `${id.toLowerCase()}-physical`]));
  physical["OperatorTable"] = `${prefix}-operator`;
  // Ref of a queue is its URL.
  physical["EcsEventsQueue"] = `https://sqs.eu-west-1.amazonaws.com/${ACCOUNT}/${prefix}-ecs-events`;
  return {
    refs,
    conditions,
    resources: physical,
    attribute: (id, attribute) => {
      if (!(id in physical)) return undefined;
      if (id.endsWith("Role") && attribute === "Arn") return `arn:aws:iam::${ACCOUNT}:role/ecs-tenant-operator/${physical[id] ?? ""}`;
      if (id === "EcsEventsQueue" && attribute === "Arn") return `arn:aws:sqs:eu-west-1:${ACCOUNT}:${prefix}-ecs-events`;
      if (attribute === "Arn") return `arn:aws:service:eu-west-1:${ACCOUNT}:${physical[id] ?? ""}`;
      if (attribute === "Name") return physical[id];
      return undefined;
    },
  };
}

interface Statement {
  readonly Sid?: string;
  readonly Effect: string;
  readonly Action: string | readonly string[];
  readonly Resource: string | readonly string[];
  readonly Condition?: Record<string, Record<string, unknown>>;
}

const list = <T>(x: T | readonly T[]): readonly T[] => (Array.isArray(x) ? (x as readonly T[]) : [x as T]);

/** The statements of every policy attached to a role (managed policies naming it, and its inline ones). */
function statementsOf(roleId: string, ctx: ResolveContext): Statement[] {
  const docs: unknown[] = [];
  for (const r of Object.values(template.Resources)) {
    const props = r.Properties ?? {};
    if (r.Type === "AWS::IAM::ManagedPolicy" && list(props["Roles"]).some((x) => JSON.stringify(x) === JSON.stringify({ Ref: roleId })))
      docs.push(props["PolicyDocument"]);
  }
  for (const p of (template.Resources[roleId]?.Properties?.["Policies"] ?? []) as { PolicyDocument: unknown }[])
    docs.push(p.PolicyDocument);
  return docs.flatMap((d) => (resolve(d, ctx) as { Statement: Statement[] }).Statement);
}

describe("deploy/operator.yaml passes cfn-lint", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "deploy-lint-"));
  });
  afterAll(async () => {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it("exit code 0 and no finding of any level, informational and experimental rules included", async () => {
    const run = await lintAll([TEMPLATE_FILE]);
    expect(readableFindings(run)).toEqual([]);
    expect(run.code, run.stderr).toBe(0);
  });

  it("the run would see a finding: the operator table without its deletion policies is reported", async () => {
    // Guards the test above against passing vacuously (rules off, file skipped).
    const policies =
      "    DeletionPolicy: Retain\n    UpdateReplacePolicy: Retain\n    Properties:\n      TableName: !Sub ${NamePrefix}-operator";
    const broken = body.replace(policies, "    Properties:\n      TableName: !Sub ${NamePrefix}-operator");
    expect(broken).not.toBe(body);
    const file = join(dir, "control.yaml");
    await writeFile(file, broken, "utf8");
    const run = await lintAll([file]);
    expect(run.findings.map((f) => f.Rule.Id)).toContain("I3011");
    expect(run.code).not.toBe(0);
  });
});

// ---------------------------------------------------------------------------
// Every AWS call the controller makes, read from its source: the files the
// composition root (src/operator/run-controller.ts) imports, transitively.
// ---------------------------------------------------------------------------

/** IAM prefix of each SDK package the controller uses. */
const IAM_PREFIX: Readonly<Record<string, string>> = {
  "@aws-sdk/client-dynamodb": "dynamodb",
  "@aws-sdk/lib-dynamodb": "dynamodb",
  "@aws-sdk/client-dynamodb-streams": "dynamodb",
  "@aws-sdk/client-ecs": "ecs",
  "@aws-sdk/client-elastic-load-balancing-v2": "elasticloadbalancing",
  "@aws-sdk/client-cloudformation": "cloudformation",
  "@aws-sdk/client-cognito-identity-provider": "cognito-idp",
  "@aws-sdk/client-servicediscovery": "servicediscovery",
  "@aws-sdk/client-eventbridge": "events",
  "@aws-sdk/client-s3": "s3",
  "@aws-sdk/client-sqs": "sqs",
  "@aws-sdk/client-sts": "sts",
  "@aws-sdk/client-iam": "iam",
};

/** Commands whose IAM action is not their own name. */
const ACTION_OF: Readonly<Record<string, readonly string[]>> = {
  // lib-dynamodb's document commands.
  "dynamodb:Get": ["dynamodb:GetItem"],
  "dynamodb:Put": ["dynamodb:PutItem"],
  "dynamodb:Update": ["dynamodb:UpdateItem"],
  "dynamodb:Delete": ["dynamodb:DeleteItem"],
  "dynamodb:BatchWrite": ["dynamodb:BatchWriteItem"],
  "dynamodb:BatchGet": ["dynamodb:BatchGetItem"],
  // There is no TransactWriteItems action: each item is authorized as its own
  // operation, and the controller's transactions hold Put and Delete items,
  // and Update items where the source has them (checked below).
  "dynamodb:TransactWriteItems": ["dynamodb:PutItem", "dynamodb:DeleteItem"],
  // The tenant status write under a shard lease (src/providers/tenant-store.ts):
  // the status Update on the tenants table, a ConditionCheck on the lease item.
  "dynamodb:TransactWrite": ["dynamodb:UpdateItem", "dynamodb:ConditionCheckItem"],
  "s3:HeadObject": ["s3:GetObject"],
  "sqs:DeleteMessageBatch": ["sqs:DeleteMessage"],
  "sqs:ChangeMessageVisibilityBatch": ["sqs:ChangeMessageVisibility"],
  "s3:ListObjectsV2": ["s3:ListBucket"],
};

/**
 * Calls in a file the controller imports that the controller never makes,
 * each inside one function that nothing it imports uses.
 */
const NOT_THE_CONTROLLERS: Readonly<Record<string, { readonly file: string; readonly fn: string; readonly why: string }>> = {
  "dynamodb:CreateTable": {
    file: "src/providers/dynamodb-lease-store.ts",
    fn: "ensureLeaseTable",
    why: "tests make the operator table with it; on AWS the template makes it",
  },
};

/** Actions no command names, each needed by one the controller makes. */
const IMPLIED: Readonly<Record<string, string>> = {
  "ecs:TagResource": "tags sent with CreateCluster, CreateService and RegisterTaskDefinition",
  "elasticloadbalancing:AddTags": "tags sent with CreateRule",
  "iam:PassRole": "the roles in RegisterTaskDefinition, and RoleARN in CreateStack/UpdateStack/DeleteStack",
};

interface ControllerCalls {
  readonly files: readonly string[];
  /** IAM action -> the source files whose calls need it. */
  readonly actions: ReadonlyMap<string, readonly string[]>;
}

function controllerCalls(): ControllerCalls {
  const seen = new Set<string>();
  const queue = [join(ROOT, "src/operator/run-controller.ts")];
  const actions = new Map<string, string[]>();
  while (queue.length > 0) {
    const file = queue.pop() ?? "";
    if (seen.has(file)) continue;
    seen.add(file);
    const source = readFileSync(file, "utf8");
    for (const m of source.matchAll(/from "(\.{1,2}\/[^"]+)\.js"/g)) queue.push(resolvePath(dirname(file), `${m[1] ?? ""}.ts`));
    const packageOf = new Map<string, string>();
    for (const m of source.matchAll(/import\s*(?:type\s*)?\{([^}]*)\}\s*from\s*"(@aws-sdk\/[^"]+)"/g))
      for (const name of (m[1] ?? "").split(",")) packageOf.set(name.replace(/\btype\b/, "").trim(), m[2] ?? "");
    for (const m of source.matchAll(/new (\w+)Command\(/g)) {
      const command = m[1] ?? "";
      const pkg = packageOf.get(`${command}Command`);
      if (pkg === undefined) throw new Error(`${file}: ${command}Command is not imported from an @aws-sdk package`);
      const prefix = IAM_PREFIX[pkg];
      if (prefix === undefined) throw new Error(`${file}: no IAM prefix known for ${pkg}`);
      const key = `${prefix}:${command}`;
      const implied: string[] = [];
      if (command === "TransactWriteItems") {
        expect(source, `${file}: a transaction item other than Put, Delete or Update`).not.toMatch(/\bConditionCheck:/);
        if (/\bUpdate:/.test(source)) implied.push("dynamodb:UpdateItem");
      }
      for (const action of [...(ACTION_OF[key] ?? [key]), ...implied])
        actions.set(action, [...(actions.get(action) ?? []), file.slice(ROOT.length + 1)]);
    }
  }
  for (const [action, { file, fn }] of Object.entries(NOT_THE_CONTROLLERS)) {
    expect(actions.get(action), action).toEqual([file]);
    const importers = [...seen].filter((f) => new RegExp(`import[^;]*\\b${fn}\\b[^;]*from`).test(readFileSync(f, "utf8")));
    expect(importers, `${fn} is imported by controller code`).toEqual([]);
    actions.delete(action);
  }
  return { files: [...seen], actions };
}

describe("the task role allows what the controller calls, and nothing else", () => {
  const calls = controllerCalls();
  const ctx = contextFor(GIVEN);
  const statements = statementsOf("TaskRole", ctx);
  const granted = new Set(statements.flatMap((s) => list(s.Action)));

  it("reads the controller's calls from its source (the composition root and what it imports)", () => {
    expect(calls.files.length).toBeGreaterThan(20);
    // Spot checks that the reading works: a call from each kind of file.
    expect(calls.actions.get("dynamodb:UpdateItem")).toContain("src/providers/dynamodb-lease-store.ts");
    expect(calls.actions.get("cloudformation:CreateStack")).toEqual(["src/providers/stack-provider.ts"]);
    expect(calls.actions.get("dynamodb:DeleteTable")).toEqual(["src/data/tables.ts"]);
  });

  it("every call has a statement", () => {
    const missing = [...calls.actions.keys()].filter((a) => !granted.has(a));
    expect(missing).toEqual([]);
  });

  it("every action granted is one the code calls, or one a call needs (README's old DescribeStackResources is gone)", () => {
    const unused = [...granted].filter((a) => !calls.actions.has(a) && !(a in IMPLIED));
    expect(unused).toEqual([]);
    for (const a of Object.keys(IMPLIED)) expect(granted.has(a), a).toBe(true);
    expect(granted.has("cloudformation:DescribeStackResources")).toBe(false);
  });

  it("no wildcard actions; a statement on every resource ('*') only reads, or is conditioned", () => {
    const reads = /^[a-z-]+:(Describe|List|Get)/;
    for (const s of statements) {
      expect(s.Effect).toBe("Allow");
      for (const a of list(s.Action)) expect(a, s.Sid).not.toMatch(/\*/);
      if (list(s.Resource).includes("*")) {
        const writes = list(s.Action).filter((a) => !reads.test(a));
        if (writes.length > 0) expect(s.Condition ?? writes, `${s.Sid ?? "?"} writes on every resource`).not.toEqual(writes);
      }
    }
  });

  it("writes to existing resources need managed-by=ecs-tenant-operator where the API evaluates tags", () => {
    const tagged = (sid: string) => statements.find((s) => s.Sid === sid)?.Condition?.["StringEquals"]?.["aws:ResourceTag/managed-by"];
    for (const sid of [
      "DropSiloTables",
      "DeleteTenantClusters",
      "ChangeServices",
      "ChangeStacksAsServiceRole",
      "ChangeTenantRules",
      "ChangeManagedUserPools",
      "DeleteManagedNamespaces",
    ])
      expect(tagged(sid), sid).toBe("ecs-tenant-operator");
    const created = (sid: string) => statements.find((s) => s.Sid === sid)?.Condition?.["StringEquals"]?.["aws:RequestTag/managed-by"];
    for (const sid of [
      "CreateTenantClusters",
      "CreateServices",
      "RegisterTaskDefinitions",
      "CreateStacksAsServiceRole",
      "CreateTenantRules",
      "CreateUserPools",
      "CreateNamespaces",
    ])
      expect(created(sid), sid).toBe("ecs-tenant-operator");
  });

  it("iam:PassRole: the tenant and pool task/execution roles to ECS tasks, and the CloudFormation service role to CloudFormation only", () => {
    const passes = statements.filter((s) => list(s.Action).includes("iam:PassRole"));
    expect(passes.map((s) => [list(s.Resource), s.Condition])).toEqual([
      [
        [`arn:aws:iam::${ACCOUNT}:role/saas-*-task`, `arn:aws:iam::${ACCOUNT}:role/saas-*-exec`],
        { StringEquals: { "iam:PassedToService": "ecs-tasks.amazonaws.com" } },
      ],
      [
        [`arn:aws:iam::${ACCOUNT}:role/ecs-tenant-operator/cfnservicerole-physical`],
        { StringEquals: { "iam:PassedToService": "cloudformation.amazonaws.com" } },
      ],
    ]);
    // The template's own roles sit under a path, so no tenant-role pattern can match them.
    for (const id of ["TaskRole", "ExecutionRole", "CfnServiceRole"])
      expect(template.Resources[id]?.Properties?.["Path"], id).toBe("/ecs-tenant-operator/");
  });

  it("stacks are created, updated and deleted only as the CloudFormation service role", () => {
    for (const sid of ["CreateStacksAsServiceRole", "ChangeStacksAsServiceRole"]) {
      const s = statements.find((x) => x.Sid === sid);
      expect(s?.Condition?.["ArnEquals"]?.["cloudformation:RoleArn"], sid).toBe(
        `arn:aws:iam::${ACCOUNT}:role/ecs-tenant-operator/cfnservicerole-physical`,
      );
      expect(list(s?.Resource ?? [])).toEqual([`arn:aws:cloudformation:eu-west-1:${ACCOUNT}:stack/saas-*/*`]);
    }
  });

  it("the CloudFormation service role can never drop a table: only the controller does, after exporting", () => {
    const cfnActions = statementsOf("CfnServiceRole", ctx).flatMap((s) => list(s.Action));
    expect(cfnActions).toContain("dynamodb:CreateTable");
    expect(cfnActions).not.toContain("dynamodb:DeleteTable");
    expect(cfnActions.filter((a) => a.startsWith("iam:Pass"))).toEqual([]);
  });

  it("tenant rules on every listener of ListenerArns, the pool's catch-all on the first only", () => {
    const sid = (id: string) => list(statements.find((x) => x.Sid === id)?.Resource ?? []);
    expect(sid("CreateTenantRules")).toEqual([FIRST_LISTENER, SECOND_LISTENER]);
    expect(sid("TagRulesOnCreateOnly")).toEqual([ruleArns(FIRST_LISTENER), ruleArns(SECOND_LISTENER)]);
    expect(sid("ChangeTenantRules")).toEqual([ruleArns(FIRST_LISTENER), ruleArns(SECOND_LISTENER)]);
    const cfn = statementsOf("CfnServiceRole", ctx);
    const cfnSid = (id: string) => list(cfn.find((x) => x.Sid === id)?.Resource ?? []);
    expect(cfnSid("PoolCatchAllRule")).toEqual([FIRST_LISTENER]);
    expect(cfnSid("PoolCatchAllRuleChanges")).toEqual([ruleArns(FIRST_LISTENER)]);
  });

  it("the tenant record's spec stays SBT's: UpdateItem on the tenants table touches tenantId and status only", () => {
    const s = statements.find((x) => x.Sid === "WriteTenantStatusOnly");
    expect(list(s?.Resource ?? [])).toEqual([`arn:aws:dynamodb:eu-west-1:${ACCOUNT}:table/TenantDetails`]);
    expect(s?.Condition?.["ForAllValues:StringEquals"]?.["dynamodb:Attributes"]).toEqual(["tenantId", "status"]);
    const stream = statements.find((x) => x.Sid === "WatchTenantRecords");
    expect(list(stream?.Resource ?? [])).toEqual([GIVEN.TenantsStreamArn]);
  });
});

// ---------------------------------------------------------------------------
// The controller it runs
// ---------------------------------------------------------------------------

interface ContainerDefinition {
  readonly Command: readonly string[];
  readonly Environment: readonly { Name: string; Value: string }[];
  readonly HealthCheck: { readonly Command: readonly string[] };
  readonly LogConfiguration: { readonly LogDriver: string; readonly Options: Record<string, string> };
  readonly StopTimeout: number;
}

function container(ctx: ResolveContext): ContainerDefinition {
  const td = resolve(template.Resources["TaskDefinition"]?.Properties, ctx) as { ContainerDefinitions: ContainerDefinition[] };
  const c = td.ContainerDefinitions[0];
  if (c === undefined) throw new Error("no container");
  return c;
}

describe("the controller's task and service", () => {
  it("its environment loads through the controller's own config: every required variable set, values valid", () => {
    const ctx = contextFor(GIVEN);
    const env = Object.fromEntries(container(ctx).Environment.map((e) => [e.Name, e.Value]));
    const required = Object.entries(configSchema.shape)
      .filter(([, schema]) => !schema.safeParse(undefined).success)
      .map(([name]) => name);
    expect(required.sort()).toEqual(["SECURITY_GROUPS", "SUBNETS", "VPC_ID"]);
    for (const name of required) expect(env[name], name).toBeTruthy();
    // One of LISTENER_ARNS and LISTENER_ARN is required (checked after the schema): the template sets the list.
    expect(env["LISTENER_ARNS"]).toBe(GIVEN.ListenerArns);
    const config = loadConfig(env);
    expect(config).toMatchObject({
      region: "eu-west-1",
      tenantsTable: "TenantDetails",
      tenantsStreamArn: GIVEN.TenantsStreamArn,
      leaseTable: "saas-operator",
      subnets: ["subnet-0a", "subnet-0b"],
      securityGroups: ["sg-0a"],
      assignPublicIp: "DISABLED",
      listenerArn: FIRST_LISTENER,
      listenerArns: [FIRST_LISTENER, SECOND_LISTENER],
      tenantsPerListener: 90,
      cfnRoleArn: `arn:aws:iam::${ACCOUNT}:role/ecs-tenant-operator/cfnservicerole-physical`,
      backupBucket: "backupbucket-physical",
      poolCluster: "saas-pool",
      advancedCluster: "saas-advanced",
      ecsEventsQueueUrl: `https://sqs.eu-west-1.amazonaws.com/${ACCOUNT}/saas-ecs-events`,
    });
    // The metrics the alarms watch, on stdout through awslogs (BRIEF's contract).
    expect(env["EMF_METRICS"]).toBe("true");
    // Every other variable is one the controller reads.
    const known = new Set([...Object.keys(configSchema.shape), "EMF_METRICS", "EMF_INTERVAL_SECONDS", "STUCK_AFTER_SECONDS"]);
    expect(Object.keys(env).filter((n) => !known.has(n))).toEqual([]);
  });

  it("runs `tenantctl controller`, checks /healthz with node (the image has no curl), and logs through awslogs", () => {
    const c = container(contextFor(GIVEN));
    const dockerfile = readFileSync(join(ROOT, "Dockerfile"), "utf8");
    expect(dockerfile).toMatch(/^ENTRYPOINT \["node", "bin\/tenantctl\.js"\]$/m);
    expect(c.Command).toEqual(["controller"]);
    expect(c.HealthCheck.Command.slice(0, 3)).toEqual(["CMD", "node", "-e"]);
    expect(c.HealthCheck.Command[3]).toContain("http://127.0.0.1:8080/healthz");
    expect(c.LogConfiguration).toEqual({
      LogDriver: "awslogs",
      Options: { "awslogs-group": "loggroup-physical", "awslogs-region": "eu-west-1", "awslogs-stream-prefix": "controller" },
    });
    expect(c.StopTimeout).toBeGreaterThanOrEqual(25);
  });

  it("by default a DAEMON service on the given EC2 cluster; LaunchMode=Fargate makes a replica service of 2 instead", () => {
    const daemon = contextFor(GIVEN);
    expect(daemon.resources["DaemonService"]).toBeDefined();
    expect(daemon.resources["FargateService"]).toBeUndefined();
    expect(resolve(template.Resources["DaemonService"]?.Properties, daemon)).toMatchObject({
      Cluster: "ops",
      SchedulingStrategy: "DAEMON",
      LaunchType: "EC2",
    });
    expect(template.Resources["DaemonService"]?.Properties).not.toHaveProperty("DesiredCount");

    const fargate = contextFor({ ...GIVEN, LaunchMode: "Fargate", AssignPublicIp: "ENABLED" });
    expect(fargate.resources["DaemonService"]).toBeUndefined();
    expect(resolve(template.Resources["FargateService"]?.Properties, fargate)).toMatchObject({
      Cluster: "ops",
      SchedulingStrategy: "REPLICA",
      LaunchType: "FARGATE",
      DesiredCount: 2,
      NetworkConfiguration: {
        AwsvpcConfiguration: { Subnets: ["subnet-0a", "subnet-0b"], SecurityGroups: ["sg-0a"], AssignPublicIp: "ENABLED" },
      },
    });
    expect(resolve(template.Resources["TaskDefinition"]?.Properties, fargate)).toMatchObject({
      RequiresCompatibilities: ["FARGATE"],
      NetworkMode: "awsvpc",
    });
    expect(Object.fromEntries(container(fargate).Environment.map((e) => [e.Name, e.Value]))["ASSIGN_PUBLIC_IP"]).toBe("ENABLED");
  });

  it("the operator table has the key schema the controller and the local bootstrap use: pk (S), on demand", () => {
    const t = template.Resources["OperatorTable"]?.Properties;
    expect(t?.["KeySchema"]).toEqual([{ AttributeName: "pk", KeyType: "HASH" }]);
    expect(t?.["AttributeDefinitions"]).toEqual([{ AttributeName: "pk", AttributeType: "S" }]);
    expect(t?.["BillingMode"]).toBe("PAY_PER_REQUEST");
    const bootstrap = readFileSync(join(ROOT, "src/localcloud/bootstrap.ts"), "utf8");
    expect(bootstrap).toContain('ensureTable(dynamodb, table, "pk", false)');
  });
});

describe("ECS events reach the controller's queue", () => {
  const ctx = contextFor({ ...GIVEN, PoolClusterName: "shared-pool" });
  const queueArn = `arn:aws:sqs:eu-west-1:${ACCOUNT}:saas-ecs-events`;

  it("the rule on the default bus has the controller's own pattern (managed clusters only) and the queue as target", () => {
    const rule = resolve(template.Resources["EcsEventsRule"]?.Properties, ctx) as Record<string, unknown>;
    expect(rule).not.toHaveProperty("EventBusName"); // ECS sends to the default bus
    expect(rule["EventPattern"]).toEqual(
      ecsEventPattern(
        { namePrefix: "saas", poolCluster: "shared-pool", advancedCluster: "saas-advanced" },
        `arn:aws:ecs:eu-west-1:${ACCOUNT}:`,
      ),
    );
    expect(rule["Targets"]).toEqual([{ Id: "queue", Arn: queueArn }]);
  });

  it("the queue lets that rule alone send, and the controller only receive, delete and give back", () => {
    const policy = resolve(template.Resources["EcsEventsQueuePolicy"]?.Properties, ctx) as {
      Queues: string[];
      PolicyDocument: { Statement: Statement[] & { Principal: unknown }[] };
    };
    expect(policy.Queues).toEqual([`https://sqs.eu-west-1.amazonaws.com/${ACCOUNT}/saas-ecs-events`]);
    expect(policy.PolicyDocument.Statement).toEqual([
      {
        Sid: "EcsEventsRule",
        Effect: "Allow",
        Principal: { Service: "events.amazonaws.com" },
        Action: "sqs:SendMessage",
        Resource: queueArn,
        Condition: { ArnEquals: { "aws:SourceArn": `arn:aws:service:eu-west-1:${ACCOUNT}:ecseventsrule-physical` } },
      },
    ]);
    const hints = statementsOf("TaskRole", ctx).find((s) => s.Sid === "EcsEventHints");
    expect(hints).toMatchObject({ Action: ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"], Resource: queueArn });
  });
});

describe("alarms and dashboard on the EMF metric contract", () => {
  const ctx = contextFor({ ...GIVEN, AlarmTopicArn: `arn:aws:sns:eu-west-1:${ACCOUNT}:ops` });
  const alarms = Object.values(template.Resources)
    .filter((r) => r.Type === "AWS::CloudWatch::Alarm")
    .map((r) => resolve(r.Properties, ctx) as Record<string, unknown>);

  it("one alarm each for stuck tenants, reconcile errors, lost leases, stream lag and failed publishes, on namespace ECSTenantOperator and Operator=<prefix>", () => {
    const metrics = alarms.map((a) => a["MetricName"]);
    for (const m of ["TenantsStuck", "ReconcileErrors", "LeaseLost", "StreamLagSeconds", "EventPublishFailures"])
      expect(metrics).toContain(m);
    for (const a of alarms) {
      // The alarms watch what the controller emits (src/observability/emf.ts), not names of their own.
      expect(Object.keys(EMF_METRICS)).toContain(a["MetricName"]);
      expect(a["Namespace"]).toBe(EMF_NAMESPACE);
      expect(a["Dimensions"]).toEqual([{ Name: EMF_DIMENSION, Value: "saas" }]);
      expect(a["AlarmActions"]).toEqual([`arn:aws:sns:eu-west-1:${ACCOUNT}:ops`]);
    }
  });

  it("without an alarm topic the alarms have no actions", () => {
    const none = contextFor(GIVEN);
    for (const r of Object.values(template.Resources).filter((x) => x.Type === "AWS::CloudWatch::Alarm"))
      expect(resolve(r.Properties, none)).not.toHaveProperty("AlarmActions");
  });

  it("the dashboard is valid JSON that shows every alarm and every metric", () => {
    const dashboard = resolve(template.Resources["Dashboard"]?.Properties, ctx) as { DashboardBody: string };
    const parsed = JSON.parse(dashboard.DashboardBody) as { widgets: { properties: { alarms?: string[]; metrics?: string[][] } }[] };
    const shownAlarms = parsed.widgets.flatMap((w) => w.properties.alarms ?? []);
    expect(shownAlarms.sort()).toEqual(alarms.map((a) => `arn:aws:cloudwatch:eu-west-1:${ACCOUNT}:alarm:${String(a["AlarmName"])}`).sort());
    const shownMetrics = new Set(parsed.widgets.flatMap((w) => (w.properties.metrics ?? []).map((m) => m[1])));
    for (const m of Object.keys(EMF_METRICS)) expect(shownMetrics.has(m), m).toBe(true);
  });
});
