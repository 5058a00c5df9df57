import {
  CloudFormationClient,
  DescribeStackResourcesCommand,
  DescribeStacksCommand,
  GetTemplateCommand,
  type StackResource,
} from "@aws-sdk/client-cloudformation";
import { CreateServiceCommand, DeleteServiceCommand, ECSClient, type CreateServiceCommandInput } from "@aws-sdk/client-ecs";
import { DeleteRuleCommand, DeleteTargetGroupCommand, ElasticLoadBalancingV2Client } from "@aws-sdk/client-elastic-load-balancing-v2";
import { DeletePolicyCommand, DetachRolePolicyCommand, IAMClient } from "@aws-sdk/client-iam";
import type { Logger } from "pino";
import { awsClient, RETRIES } from "../providers/aws-clients.js";
import {
  evaluateConditions,
  parameterValues,
  parseTemplate,
  resolve,
  UnsupportedTemplateError,
  type CfnTemplate,
  type ResolveContext,
} from "./cfn-template.js";

/**
 * moto's DeleteStack leaves some of the stack's resources behind, listener
 * rules and target groups among them. On real AWS they go with the stack; in
 * the local cloud a leftover rule would keep its priority taken on the
 * listener (the pool stack's catch-all holds 50000), and a leftover target
 * group its name, so the stack could never be created again. The local cloud
 * deletes them as CloudFormation would, sparing any the template retains
 * (DeletionPolicy Retain, which moto itself honours for what it deletes).
 * This is a gap of the simulation, so it is mended here and never in
 * product code.
 *
 * moto 5.2.1 also skips or flattens what deploy/operator.yaml (the template
 * that deploys the controller) declares, and the local cloud makes it as
 * CloudFormation would, after moto's CreateStack or UpdateStack, from the
 * template and the stack's parameters (cfn-template.ts resolves them; a
 * construct it does not know fails the request rather than being guessed):
 * - AWS::CloudWatch::Alarm: moto has no model for it and creates nothing
 *   (DescribeStackResources lists the alarm without a type or id). The alarm
 *   is put with PutMetricAlarm, and deleted with the stack.
 * - AWS::ECS::Service: moto keeps the cluster, name, task definition and
 *   DesiredCount and drops SchedulingStrategy (always REPLICA), LaunchType
 *   (always EC2) and NetworkConfiguration. The service is created again
 *   through moto's ECS API with them (moto replaces a service of the same
 *   name), and deleted with the stack (moto's DeleteStack leaves it ACTIVE).
 *   A DAEMON service has no container instances here, so it runs nothing.
 * - AWS::IAM::ManagedPolicy attached to a role of the same stack: moto's
 *   DeleteStack deletes the role first, which IAM refuses (DeleteConflict:
 *   policies still attached), so the stack cannot be deleted; CloudFormation
 *   deletes the policy first, as it depends on the role. The local cloud
 *   detaches such policies before forwarding DeleteStack, and deletes them
 *   after (moto leaves managed policies behind).
 * Left as they are: moto's AWS::ECS::TaskDefinition keeps only the family,
 * container definitions, volumes and memory (no roles, network mode, CPU or
 * compatibilities), and moto ignores a role's ManagedPolicyArns.
 *
 * Checked against moto 5.2.1 and needing no mending: DeletionPolicy Retain
 * (moto skips such resources on DeleteStack; the tables of the tenant and
 * pool stacks survive) and a table's StreamSpecification (DescribeTable shows
 * the stream and its LatestStreamArn). Left as they are, since no product
 * code depends on them: moto ignores UpdateReplacePolicy and
 * PointInTimeRecoverySpecification, and GetRolePolicy returns a role's inline
 * policies created through CloudFormation as a Python dict repr, not
 * URL-encoded JSON.
 */
const LEFTOVER_TYPES = ["AWS::ElasticLoadBalancingV2::ListenerRule", "AWS::ElasticLoadBalancingV2::TargetGroup"] as const;

const ALARM = "AWS::CloudWatch::Alarm";
const SERVICE = "AWS::ECS::Service";

/** PutMetricAlarm takes these properties under the same names; any other is refused rather than dropped. */
const ALARM_PROPERTIES = new Set([
  "AlarmName",
  "AlarmDescription",
  "ActionsEnabled",
  "AlarmActions",
  "OKActions",
  "InsufficientDataActions",
  "Namespace",
  "MetricName",
  "Dimensions",
  "Statistic",
  "ExtendedStatistic",
  "Unit",
  "Period",
  "EvaluationPeriods",
  "DatapointsToAlarm",
  "Threshold",
  "ComparisonOperator",
  "TreatMissingData",
  "EvaluateLowSampleCountPercentile",
]);
const ALARM_NUMBERS = new Set(["Period", "EvaluationPeriods", "DatapointsToAlarm", "Threshold"]);

/** The AWS::ECS::Service properties the local cloud carries over to CreateService. */
const SERVICE_PROPERTIES = new Set([
  "ServiceName",
  "Cluster",
  "TaskDefinition",
  "DesiredCount",
  "LaunchType",
  "SchedulingStrategy",
  "PlatformVersion",
  "NetworkConfiguration",
  "DeploymentConfiguration",
  "EnableECSManagedTags",
  "PropagateTags",
  "Tags",
]);

export class CloudFormationGaps {
  readonly #cfn: CloudFormationClient;
  readonly #elbv2: ElasticLoadBalancingV2Client;
  readonly #ecs: ECSClient;
  readonly #iam: IAMClient;
  readonly #motoEndpoint: string;
  readonly #region: string;
  readonly #log: Logger | undefined;

  constructor(motoEndpoint: string, region: string, log?: Logger) {
    const moto = { endpoint: motoEndpoint, region, credentials: { accessKeyId: "test", secretAccessKey: "test" } };
    this.#cfn = awsClient(CloudFormationClient, moto, RETRIES.none);
    this.#elbv2 = awsClient(ElasticLoadBalancingV2Client, moto, RETRIES.none);
    this.#ecs = awsClient(ECSClient, moto, RETRIES.none);
    this.#iam = awsClient(IAMClient, moto, RETRIES.none);
    this.#motoEndpoint = motoEndpoint.replace(/\/$/, "");
    this.#region = region;
    this.#log = log;
  }

  /**
   * After moto created or updated the stack: puts its alarms and gives its
   * ECS services what moto dropped. `templateBody` is the request's, when it
   * had one; a body naming neither type costs nothing more.
   */
  async afterCreateOrUpdate(stackName: string, templateBody: string | undefined): Promise<void> {
    if (templateBody !== undefined && !mentionsMended(templateBody)) return;
    const body = templateBody ?? (await this.#cfn.send(new GetTemplateCommand({ StackName: stackName }))).TemplateBody ?? "";
    if (!mentionsMended(body)) return;
    const template = parseTemplate(body);
    const { ctx, resources } = await this.#context(stackName, template);
    for (const [id, r] of Object.entries(template.Resources)) {
      if (r.Condition !== undefined && ctx.conditions[r.Condition] !== true) continue;
      if (r.Type === ALARM) await this.#putAlarm(id, resolveProperties(r.Properties, ctx, ALARM_PROPERTIES, id));
      if (r.Type === SERVICE) {
        const physical = resources.find((x) => x.LogicalResourceId === id)?.PhysicalResourceId;
        await this.#ecs.send(
          new CreateServiceCommand(serviceInput(resolveProperties(r.Properties, ctx, SERVICE_PROPERTIES, id), physical)),
        );
        this.#log?.debug({ stack: stackName, service: id }, "gave moto's CloudFormation service its scheduling, launch type and network");
      }
    }
  }

  /** Reads what moto would leave behind; call before forwarding DeleteStack, then run the returned cleanup after it. */
  async beforeDeleteStack(stackName: string): Promise<() => Promise<void>> {
    let resources: { type: string; id: string }[] = [];
    let alarms: string[] = [];
    let policies: string[] = [];
    try {
      const res = await this.#cfn.send(new DescribeStackResourcesCommand({ StackName: stackName }));
      const body = await this.#templateBody(stackName);
      const retained = retainedLogicalIds(body);
      resources = (res.StackResources ?? []).flatMap((r) =>
        r.ResourceType &&
        r.PhysicalResourceId &&
        [...LEFTOVER_TYPES, SERVICE].includes(r.ResourceType) &&
        !retained.has(r.LogicalResourceId ?? "")
          ? [{ type: r.ResourceType, id: r.PhysicalResourceId }]
          : [],
      );
      alarms = mentionsMended(body) ? await this.#alarmNames(stackName, parseTemplate(body)) : [];
      const of = (type: string) =>
        (res.StackResources ?? []).flatMap((r) => (r.ResourceType === type && r.PhysicalResourceId ? [r.PhysicalResourceId] : []));
      policies = of("AWS::IAM::ManagedPolicy");
      for (const policy of policies)
        for (const role of of("AWS::IAM::Role"))
          await this.#quietly(() => this.#iam.send(new DetachRolePolicyCommand({ RoleName: role, PolicyArn: policy })), policy);
    } catch {
      return async () => {}; // no such stack: nothing will be left behind
    }
    return async () => {
      for (const policy of policies) await this.#quietly(() => this.#iam.send(new DeletePolicyCommand({ PolicyArn: policy })), policy);
      for (const r of resources.filter((x) => x.type === SERVICE)) {
        // …:service/<cluster>/<name>: moto's long ARN format names the cluster.
        const [, cluster, name] = r.id.split(":").pop()?.split("/") ?? [];
        await this.#quietly(() => this.#ecs.send(new DeleteServiceCommand({ cluster, service: name, force: true })), r.id);
      }
      if (alarms.length > 0) await this.#quietly(() => this.#cloudwatch("DeleteAlarms", { AlarmNames: alarms }), alarms.join(","));
      // Rules first: a target group still used by a rule cannot be deleted.
      for (const r of resources.filter((x) => x.type === LEFTOVER_TYPES[0]))
        await this.#quietly(() => this.#elbv2.send(new DeleteRuleCommand({ RuleArn: r.id })), r.id);
      for (const r of resources.filter((x) => x.type === LEFTOVER_TYPES[1]))
        await this.#quietly(() => this.#elbv2.send(new DeleteTargetGroupCommand({ TargetGroupArn: r.id })), r.id);
    };
  }

  async #templateBody(stackName: string): Promise<string> {
    return (await this.#cfn.send(new GetTemplateCommand({ StackName: stackName }))).TemplateBody ?? "";
  }

  /** The stack's parameters, conditions and resources, as CloudFormation resolves the template with them. */
  async #context(stackName: string, template: CfnTemplate): Promise<{ ctx: ResolveContext; resources: StackResource[] }> {
    const stack = (await this.#cfn.send(new DescribeStacksCommand({ StackName: stackName }))).Stacks?.[0];
    const resources = (await this.#cfn.send(new DescribeStackResourcesCommand({ StackName: stackName }))).StackResources ?? [];
    const given = Object.fromEntries(
      (stack?.Parameters ?? []).map((p) => [p.ParameterKey ?? "", motoParameterValue(p.ParameterValue ?? "")]),
    );
    const [, , , region, account] = (stack?.StackId ?? "").split(":");
    const refs = {
      ...parameterValues(template, given),
      "AWS::Region": region ?? this.#region,
      "AWS::AccountId": account ?? "",
      "AWS::Partition": "aws",
      "AWS::StackName": stack?.StackName ?? stackName,
      "AWS::StackId": stack?.StackId ?? "",
      "AWS::URLSuffix": "amazonaws.com",
    };
    const physical = Object.fromEntries(
      resources.flatMap((r) => (r.LogicalResourceId && r.PhysicalResourceId ? [[r.LogicalResourceId, r.PhysicalResourceId]] : [])),
    );
    return { ctx: { refs, resources: physical, conditions: evaluateConditions(template, refs) }, resources };
  }

  async #alarmNames(stackName: string, template: CfnTemplate): Promise<string[]> {
    const { ctx } = await this.#context(stackName, template);
    return Object.entries(template.Resources).flatMap(([id, r]) =>
      r.Type === ALARM && (r.Condition === undefined || ctx.conditions[r.Condition] === true)
        ? [String(resolveProperties(r.Properties, ctx, ALARM_PROPERTIES, id)["AlarmName"])]
        : [],
    );
  }

  async #putAlarm(id: string, props: Record<string, unknown>): Promise<void> {
    // CloudFormation names an alarm without AlarmName; none of ours lacks one.
    if (typeof props["AlarmName"] !== "string") throw new UnsupportedTemplateError(`alarm ${id} has no AlarmName`);
    const input = Object.fromEntries(Object.entries(props).map(([k, v]) => [k, ALARM_NUMBERS.has(k) ? Number(v) : v]));
    await this.#cloudwatch("PutMetricAlarm", input);
  }

  /**
   * A CloudWatch call to moto in its JSON protocol: the SDK's CloudWatch
   * client is not a dependency of the product, and two calls do not warrant one.
   */
  async #cloudwatch(action: string, input: unknown): Promise<void> {
    const res = await fetch(`${this.#motoEndpoint}/`, {
      method: "POST",
      headers: {
        "content-type": "application/x-amz-json-1.0",
        "x-amz-target": `GraniteServiceVersion20100801.${action}`,
        // moto routes by the credential scope's service; it checks no signature.
        authorization: `AWS4-HMAC-SHA256 Credential=test/20260101/${this.#region}/monitoring/aws4_request, SignedHeaders=host, Signature=0`,
      },
      body: JSON.stringify(input),
    });
    if (!res.ok) throw new Error(`local cloud: CloudWatch ${action} failed: HTTP ${res.status} ${await res.text()}`);
  }

  close(): void {
    this.#cfn.destroy();
    this.#elbv2.destroy();
    this.#ecs.destroy();
    this.#iam.destroy();
  }

  async #quietly(call: () => Promise<unknown>, id: string): Promise<void> {
    try {
      await call();
      this.#log?.debug({ resource: id }, "removed what moto's DeleteStack left behind");
    } catch {
      /* already gone */
    }
  }
}

/**
 * moto's DescribeStacks shows a list parameter (List<...>, CommaDelimitedList)
 * as a Python list's repr, ['a', 'b']; CloudFormation shows what was given, a,b.
 */
export function motoParameterValue(value: string): string {
  const repr = /^\[(.*)\]$/.exec(value);
  if (repr === null) return value;
  return (repr[1] ?? "")
    .split(",")
    .map((item) => item.trim().replace(/^'(.*)'$/, "$1"))
    .filter((item) => item !== "")
    .join(",");
}

function mentionsMended(body: string): boolean {
  return body.includes(ALARM) || body.includes(SERVICE);
}

/** A resource's properties resolved; a property the local cloud does not carry over is an error, not a silent drop. */
function resolveProperties(
  properties: Readonly<Record<string, unknown>> | undefined,
  ctx: ResolveContext,
  known: ReadonlySet<string>,
  id: string,
): Record<string, unknown> {
  const resolved = resolve(properties ?? {}, ctx) as Record<string, unknown>;
  const unknown = Object.keys(resolved).filter((k) => !known.has(k));
  if (unknown.length > 0) throw new UnsupportedTemplateError(`${id}: properties ${unknown.join(", ")}`);
  return resolved;
}

/** CreateService's input from AWS::ECS::Service properties: the same tree with camelCase keys. */
export function serviceInput(props: Record<string, unknown>, physicalId: string | undefined): CreateServiceCommandInput {
  const input = camelKeys(props) as CreateServiceCommandInput;
  return { ...input, serviceName: input.serviceName ?? physicalId?.split("/").pop() };
}

function camelKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(camelKeys);
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(
    Object.entries(value as Record<string, unknown>).map(([k, v]) => [k.charAt(0).toLowerCase() + k.slice(1), camelKeys(v)]),
  );
}

/** Logical ids with DeletionPolicy Retain in a template (JSON or YAML); none for one that cannot be read. */
export function retainedLogicalIds(templateBody: string): Set<string> {
  let resources: unknown;
  try {
    resources = parseTemplate(templateBody).Resources;
  } catch {
    return new Set();
  }
  if (resources === null || typeof resources !== "object") return new Set();
  return new Set(
    Object.entries(resources as Record<string, unknown>).flatMap(([id, r]) =>
      r !== null && typeof r === "object" && (r as Record<string, unknown>)["DeletionPolicy"] === "Retain" ? [id] : [],
    ),
  );
}

/** The StackName of a query-protocol DeleteStack request body. */
export function stackNameOf(body: Buffer): string | undefined {
  return new URLSearchParams(body.toString("utf8")).get("StackName") ?? undefined;
}

/** The TemplateBody of a query-protocol CreateStack or UpdateStack request body, when it has one. */
export function templateBodyOf(body: Buffer): string | undefined {
  return new URLSearchParams(body.toString("utf8")).get("TemplateBody") ?? undefined;
}

/**
 * A query-protocol UpdateStack body whose TemplateBody carries the request's
 * tags in its Metadata; undefined when the request has no tags or its
 * template is not JSON (nothing to mend then).
 */
export function withTagsInMetadata(body: Buffer): Buffer | undefined {
  const form = new URLSearchParams(body.toString("utf8"));
  const tags: string[] = [];
  for (let n = 1; form.has(`Tags.member.${n}.Key`); n++)
    tags.push(`${form.get(`Tags.member.${n}.Key`) ?? ""}=${form.get(`Tags.member.${n}.Value`) ?? ""}`);
  const templateBody = form.get("TemplateBody");
  if (tags.length === 0 || templateBody === null) return undefined;
  let template: Record<string, unknown>;
  try {
    template = JSON.parse(templateBody) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  const metadata = (template["Metadata"] ?? {}) as Record<string, unknown>;
  form.set("TemplateBody", JSON.stringify({ ...template, Metadata: { ...metadata, LocalCloudStackTags: tags.sort().join(",") } }));
  return Buffer.from(form.toString(), "utf8");
}
