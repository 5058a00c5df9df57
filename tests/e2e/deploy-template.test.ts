import { readFileSync } from "node:fs";
import { join } from "node:path";
import {
  CloudFormationClient,
  CreateStackCommand,
  DeleteStackCommand,
  DescribeStacksCommand,
  type Parameter,
  type Stack,
} from "@aws-sdk/client-cloudformation";
import { DescribeTableCommand, DynamoDBClient, GetItemCommand } from "@aws-sdk/client-dynamodb";
import { CreateClusterCommand, DescribeServicesCommand, DescribeTaskDefinitionCommand, ECSClient, type Service } from "@aws-sdk/client-ecs";
import { GetPolicyCommand, GetPolicyVersionCommand, GetRoleCommand, IAMClient, ListAttachedRolePoliciesCommand } from "@aws-sdk/client-iam";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { startController, type RunningController } from "../../src/operator/run-controller.js";
import { eventually } from "../support/event-sink.js";
import { startTestCloud, type TestCloud } from "../support/localcloud.js";

/**
 * deploy/operator.yaml deployed with CreateStack into the local cloud (moto
 * behind the local ECS scheduler), as `aws cloudformation deploy` would on
 * AWS, then read back: the operator table, the controller's service (a DAEMON
 * by default, two Fargate replicas with LaunchMode=Fargate), the task role's
 * policies, the alarms and the dashboard; and a controller configured from
 * the deployed task definition runs against what the stack made.
 *
 * What moto 5.2.1 does not do, and how this test stands to it
 * (src/localcloud/cloudformation-gaps.ts has the details):
 * - AWS::CloudWatch::Alarm has no moto model. The local cloud puts the alarms
 *   after CreateStack from the template and parameters; the alarms read here
 *   are that, not moto's CloudFormation.
 * - moto's AWS::ECS::Service drops SchedulingStrategy, LaunchType and
 *   NetworkConfiguration; the local cloud creates the service again with
 *   them. No EC2 instance exists here, so the DAEMON service runs no task.
 * - moto's AWS::ECS::TaskDefinition keeps the container definitions only: its
 *   roles, network mode, CPU, memory and compatibilities are not checked here
 *   (tests/unit/deploy-template.test.ts checks them in the template).
 * - moto evaluates no IAM policy: the documents are read back, not enforced.
 */

const TEMPLATE = readFileSync(join(import.meta.dirname, "../../deploy/operator.yaml"), "utf8");
const CLUSTER = "ops";
const TOPIC = "arn:aws:sns:us-east-1:123456789012:operator-alarms";

let cloud: TestCloud;
let cfn: CloudFormationClient;
let ecs: ECSClient;
let iam: IAMClient;
let dynamodb: DynamoDBClient;
let daemon: Stack;

beforeAll(async () => {
  cloud = await startTestCloud({ speed: 200 });
  const base = { region: cloud.config.region, endpoint: cloud.endpoint, credentials: { accessKeyId: "test", secretAccessKey: "test" } };
  // No retries: a retried CreateStack would hide the first answer behind AlreadyExists.
  cfn = new CloudFormationClient({ ...base, maxAttempts: 1 });
  ecs = new ECSClient(base);
  iam = new IAMClient(base);
  dynamodb = new DynamoDBClient(base);
  // The existing cluster the controller runs in (an EC2 cluster on AWS).
  await ecs.send(new CreateClusterCommand({ clusterName: CLUSTER }));
  daemon = await deploy("ecs-tenant-operator-saas", { AlarmTopicArn: TOPIC });
}, 120_000);

afterAll(async () => {
  for (const c of [cfn, ecs, iam, dynamodb]) c?.destroy();
  await cloud?.stop();
});

function parameters(extra: Record<string, string>): Parameter[] {
  const given = {
    Image: "123456789012.dkr.ecr.us-east-1.amazonaws.com/ecs-tenant-operator:0.1.0",
    ClusterName: CLUSTER,
    TenantsTableName: cloud.config.tenantsTable,
    TenantsStreamArn: cloud.account.tenantsStreamArn,
    Subnets: cloud.account.subnets.join(","),
    SecurityGroups: cloud.account.securityGroups.join(","),
    VpcId: cloud.account.vpcId,
    ListenerArns: cloud.account.listenerArn,
    ...extra,
  };
  return Object.entries(given).map(([ParameterKey, ParameterValue]) => ({ ParameterKey, ParameterValue }));
}

/** CreateStack, then DescribeStacks until CREATE_COMPLETE (generous: these machines are slow and shared). */
async function deploy(name: string, extra: Record<string, string>): Promise<Stack> {
  await cfn.send(
    new CreateStackCommand({ StackName: name, TemplateBody: TEMPLATE, Parameters: parameters(extra), Capabilities: ["CAPABILITY_IAM"] }),
  );
  return eventually(
    async () => {
      const stack = (await cfn.send(new DescribeStacksCommand({ StackName: name }))).Stacks?.[0];
      if (stack?.StackStatus?.endsWith("FAILED") === true || stack?.StackStatus?.includes("ROLLBACK") === true)
        throw new Error(`${name}: ${stack.StackStatus} ${stack.StackStatusReason ?? ""}`);
      return stack?.StackStatus === "CREATE_COMPLETE" ? stack : undefined;
    },
    `${name} to be CREATE_COMPLETE`,
    60_000,
  );
}

const output = (stack: Stack, key: string): string => {
  const value = stack.Outputs?.find((o) => o.OutputKey === key)?.OutputValue;
  if (value === undefined) throw new Error(`stack ${stack.StackName ?? ""} has no output ${key}`);
  return value;
};

async function service(name: string): Promise<Service> {
  const s = (await ecs.send(new DescribeServicesCommand({ cluster: CLUSTER, services: [name] }))).services?.[0];
  if (s === undefined) throw new Error(`no service ${name} in ${CLUSTER}`);
  return s;
}

/** The environment of the controller's container, as the deployed task definition has it. */
async function deployedEnvironment(svc: Service): Promise<Record<string, string>> {
  const td = (await ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition: svc.taskDefinition ?? "" }))).taskDefinition;
  return Object.fromEntries((td?.containerDefinitions?.[0]?.environment ?? []).map((e) => [e.name ?? "", e.value ?? ""]));
}

/** A CloudWatch call to the local cloud in CloudWatch's JSON protocol (the SDK's CloudWatch client is no dependency here). */
async function cloudwatch<T>(action: string, input: unknown): Promise<T> {
  const res = await fetch(`${cloud.endpoint}/`, {
    method: "POST",
    headers: {
      "content-type": "application/x-amz-json-1.0",
      "x-amz-target": `GraniteServiceVersion20100801.${action}`,
      authorization: `AWS4-HMAC-SHA256 Credential=test/20260101/${cloud.config.region}/monitoring/aws4_request, SignedHeaders=host, Signature=0`,
    },
    body: JSON.stringify(input),
  });
  expect(res.status, `${action}: ${await res.clone().text()}`).toBe(200);
  return (await res.json()) as T;
}

interface Alarm {
  readonly AlarmName: string;
  readonly Namespace: string;
  readonly MetricName: string;
  readonly Dimensions: readonly { Name: string; Value: string }[];
  readonly AlarmActions: readonly string[];
  readonly TreatMissingData?: string;
}

const alarmsOf = async (prefix: string) =>
  (await cloudwatch<{ MetricAlarms: Alarm[] }>("DescribeAlarms", { AlarmNamePrefix: `${prefix}-operator-` })).MetricAlarms;

interface Statement {
  readonly Sid?: string;
  readonly Action: string | string[];
  readonly Resource: string | string[];
  readonly Condition?: Record<string, Record<string, string>>;
}

/** Every statement of the managed policies attached to a role, read back from IAM. */
async function attachedStatements(roleArn: string): Promise<Statement[]> {
  const roleName = roleArn.split("/").pop() ?? "";
  const attached = (await iam.send(new ListAttachedRolePoliciesCommand({ RoleName: roleName }))).AttachedPolicies ?? [];
  const statements: Statement[] = [];
  for (const p of attached) {
    const policy = (await iam.send(new GetPolicyCommand({ PolicyArn: p.PolicyArn }))).Policy;
    const version = await iam.send(new GetPolicyVersionCommand({ PolicyArn: p.PolicyArn, VersionId: policy?.DefaultVersionId }));
    const raw = version.PolicyVersion?.Document ?? "{}";
    // IAM returns the document URL-encoded.
    const doc = JSON.parse(raw.trimStart().startsWith("{") ? raw : decodeURIComponent(raw)) as { Statement: Statement[] };
    statements.push(...doc.Statement);
  }
  return statements;
}

const list = (x: string | string[]): string[] => (Array.isArray(x) ? x : [x]);

describe("deploy/operator.yaml in the local cloud, default parameters (a daemon)", () => {
  it("makes the operator table with the controller's key schema: pk (S), on demand", async () => {
    const table = (await dynamodb.send(new DescribeTableCommand({ TableName: output(daemon, "OperatorTableName") }))).Table;
    expect(table?.TableName).toBe("saas-operator");
    expect(table?.KeySchema).toEqual([{ AttributeName: "pk", KeyType: "HASH" }]);
    expect(table?.AttributeDefinitions).toEqual([{ AttributeName: "pk", AttributeType: "S" }]);
    expect(table?.BillingModeSummary?.BillingMode).toBe("PAY_PER_REQUEST");
  });

  it("runs the controller as a DAEMON service on the given cluster, `controller` with a node health check on /healthz", async () => {
    const svc = await service(output(daemon, "ServiceName"));
    expect(svc).toMatchObject({ serviceName: "saas-operator", schedulingStrategy: "DAEMON", launchType: "EC2", status: "ACTIVE" });
    expect(svc.clusterArn).toMatch(/:cluster\/ops$/);
    const td = (await ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition: svc.taskDefinition ?? "" }))).taskDefinition;
    const c = td?.containerDefinitions?.[0];
    expect(c?.command).toEqual(["controller"]);
    expect(c?.healthCheck?.command?.slice(0, 2)).toEqual(["CMD", "node"]);
    expect(c?.healthCheck?.command?.join(" ")).toContain("/healthz");
    expect(c?.stopTimeout).toBe(30);
    expect(c?.logConfiguration?.logDriver).toBe("awslogs");
    expect(c?.logConfiguration?.options?.["awslogs-group"]).toBe(output(daemon, "LogGroupName"));
  });

  it("configures the controller with the stack's own table, role and bucket, and EMF metrics on", async () => {
    const env = await deployedEnvironment(await service("saas-operator"));
    expect(env).toMatchObject({
      LEASE_TABLE: "saas-operator",
      TENANTS_TABLE: cloud.config.tenantsTable,
      TENANTS_STREAM_ARN: cloud.account.tenantsStreamArn,
      CFN_ROLE_ARN: output(daemon, "CfnServiceRoleArn"),
      BACKUP_BUCKET: output(daemon, "BackupBucketName"),
      SUBNETS: cloud.account.subnets.join(","),
      ASSIGN_PUBLIC_IP: "DISABLED",
      EMF_METRICS: "true",
      AWS_REGION: cloud.config.region,
    });
  });

  it("gives the task role PassRole on the tenant roles (to ECS tasks) and the CloudFormation service role (to CloudFormation) only", async () => {
    const statements = await attachedStatements(output(daemon, "TaskRoleArn"));
    expect(statements.length).toBeGreaterThan(20);
    const passes = statements.filter((s) => list(s.Action).includes("iam:PassRole"));
    expect(passes.map((s) => [list(s.Resource), s.Condition?.["StringEquals"]?.["iam:PassedToService"]])).toEqual([
      [["arn:aws:iam::123456789012:role/saas-*-task", "arn:aws:iam::123456789012:role/saas-*-exec"], "ecs-tasks.amazonaws.com"],
      [[output(daemon, "CfnServiceRoleArn")], "cloudformation.amazonaws.com"],
    ]);
    const createStack = statements.find((s) => list(s.Action).includes("cloudformation:CreateStack"));
    expect(createStack?.Condition?.["ArnEquals"]?.["cloudformation:RoleArn"]).toBe(output(daemon, "CfnServiceRoleArn"));
    const cfnRole = (await iam.send(new GetRoleCommand({ RoleName: output(daemon, "CfnServiceRoleArn").split("/").pop() }))).Role;
    const trust = JSON.parse(decodeURIComponent(cfnRole?.AssumeRolePolicyDocument ?? "{}")) as { Statement: { Principal: unknown }[] };
    expect(trust.Statement.map((s) => s.Principal)).toEqual([{ Service: "cloudformation.amazonaws.com" }]);
  });

  it("puts the alarms on the EMF metrics, namespace ECSTenantOperator and Operator=saas, notifying the topic", async () => {
    const alarms = await alarmsOf("saas");
    expect(alarms.map((a) => a.MetricName).sort()).toEqual(
      ["EventPublishFailures", "LeaseLost", "ReconcileErrors", "ResyncAgeSeconds", "StreamLagSeconds", "TenantsStuck"].sort(),
    );
    for (const a of alarms) {
      expect(a.Namespace).toBe("ECSTenantOperator");
      expect(a.Dimensions).toEqual([{ Name: "Operator", Value: "saas" }]);
      expect(a.AlarmActions).toEqual([TOPIC]);
    }
    expect(alarms.find((a) => a.MetricName === "ResyncAgeSeconds")?.TreatMissingData).toBe("breaching");
  });

  it("makes the dashboard, which shows every alarm", async () => {
    const dashboard = await cloudwatch<{ DashboardBody: string }>("GetDashboard", { DashboardName: "saas-operator" });
    const body = JSON.parse(dashboard.DashboardBody) as { widgets: { properties: { alarms?: string[] } }[] };
    const shown = body.widgets.flatMap((w) => w.properties.alarms ?? []).map((arn) => arn.split(":alarm:")[1]);
    expect(shown.sort()).toEqual((await alarmsOf("saas")).map((a) => a.AlarmName).sort());
  });

  it("a controller started with the deployed environment takes the lease in the stack's table and creates stacks as the service role", async () => {
    const env = await deployedEnvironment(await service("saas-operator"));
    const config = loadConfig({ ...env, ...cloud.env, LEASE_SECONDS: "3", HOLDER_ID: "deployed-1" });
    let controller: RunningController | undefined;
    try {
      controller = await startController(config, pino({ level: "silent" }), {
        http: false,
        pollMs: 100,
        maxPollMs: 400,
        streamPollMs: 100,
      });
      const lease = await eventually(
        async () => {
          const res = await dynamodb.send(new GetItemCommand({ TableName: "saas-operator", Key: { pk: { S: "lease#controller" } } }));
          return res.Item?.["holder"]?.S === "deployed-1" ? res.Item : undefined;
        },
        "the deployed controller to hold the lease in saas-operator",
        30_000,
      );
      expect(lease["holder"]?.S).toBe("deployed-1");
      // Its first reconcile makes the pool stack, with the template's CloudFormation role.
      const pool = await eventually(
        async () => (await cfn.send(new DescribeStacksCommand({ StackName: "saas-pool" })).catch(() => undefined))?.Stacks?.[0],
        "the pool stack",
        30_000,
      );
      expect(pool.RoleARN).toBe(output(daemon, "CfnServiceRoleArn"));
    } finally {
      await controller?.stop();
    }
  });
});

describe("LaunchMode=Fargate", () => {
  it("runs a REPLICA service of 2 on Fargate in the given subnets, with the configured public IP", async () => {
    const stack = await deploy("ecs-tenant-operator-far", { NamePrefix: "far", LaunchMode: "Fargate", AssignPublicIp: "ENABLED" });
    const svc = await service(output(stack, "ServiceName"));
    expect(svc).toMatchObject({ serviceName: "far-operator", schedulingStrategy: "REPLICA", launchType: "FARGATE", desiredCount: 2 });
    expect(svc.networkConfiguration?.awsvpcConfiguration).toMatchObject({
      subnets: [...cloud.account.subnets],
      securityGroups: [...cloud.account.securityGroups],
      assignPublicIp: "ENABLED",
    });
    expect((await deployedEnvironment(svc))["ASSIGN_PUBLIC_IP"]).toBe("ENABLED");
    // The two operators' alarms are apart, by their prefix.
    expect((await alarmsOf("far")).every((a) => a.Dimensions[0]?.Value === "far")).toBe(true);
    expect(await alarmsOf("far")).toHaveLength(6);
  });
});

describe("deleting the stack", () => {
  it("removes the alarms and the service, and keeps the operator table (priorities and claims are durable)", async () => {
    await cfn.send(new DeleteStackCommand({ StackName: "ecs-tenant-operator-saas" }));
    await eventually(
      async () => {
        const s = (await cfn.send(new DescribeStacksCommand({ StackName: daemon.StackId }))).Stacks?.[0];
        return s?.StackStatus === "DELETE_COMPLETE" ? s : undefined;
      },
      "the stack to be deleted",
      60_000,
    );
    expect(await alarmsOf("saas")).toEqual([]);
    expect((await service("saas-operator")).status).not.toBe("ACTIVE");
    const table = (await dynamodb.send(new DescribeTableCommand({ TableName: "saas-operator" }))).Table;
    expect(table?.TableStatus).toBe("ACTIVE");
    // The other operator's alarms are untouched.
    expect(await alarmsOf("far")).toHaveLength(6);
  });
});
