import { createHash } from "node:crypto";
import { canonicalJson, type Tier } from "../tenants/record.js";
import { MANAGED_BY_KEY, MANAGED_BY_VALUE, TENANT_ID_KEY, TIER_KEY, type SiloInfra, type Tags } from "./model.js";
import { roleName, siloTableName, stackName as tenantStackName, targetGroupName, tenantLogGroupName } from "./naming.js";

/**
 * The per-tenant infrastructure stack (advanced and premium tiers) as a plain
 * CloudFormation JSON template, built by pure code: silo tables, the task role
 * with DynamoDB ABAC, the execution role, the log group, and the ALB target
 * group plus listener rule that route `tenantPath: <tenantId>` to the
 * tenant's rproxy.
 *
 * Tier change advanced <-> premium keeps the same stack: the tier appears in
 * no name and nowhere in the template body. It is only a stack-level tag
 * (which CloudFormation propagates to the resources), and it is part of the
 * hash, so a tier change costs one tags-only UpdateStack that replaces
 * nothing.
 *
 * Only resource types and properties that both CloudFormation and moto 5.2.1
 * accept are used. Properties moto ignores (PointInTimeRecoverySpecification,
 * TargetGroupAttributes, Tags on target groups) are still correct for AWS.
 */

/** The tenant-scoped principal tag that the task role's ABAC policy compares with the item's partition key. */
export const PRINCIPAL_TENANT_TAG = "tenant";
/** Header the shared listener routes on; its value is the tenant id. */
export const TENANT_HEADER = "tenantPath";
/** Port and health path of the rproxy container the target group points at. */
export const RPROXY_PORT = 8080;
export const RPROXY_HEALTH_PATH = "/health";
/** @default 30 */
export const DEFAULT_LOG_RETENTION_DAYS = 30;
/** ALB listener rule priorities are 1..50000. */
export const MIN_PRIORITY = 1;
export const MAX_PRIORITY = 50_000;

/** CloudWatch Logs accepts only these retention values. */
const RETENTION_DAYS = new Set([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653]);

/** Item actions the task role may perform, each limited to the tenant's own partition. */
export const ABAC_ITEM_ACTIONS = [
  "dynamodb:GetItem",
  "dynamodb:PutItem",
  "dynamodb:UpdateItem",
  "dynamodb:DeleteItem",
  "dynamodb:Query",
  "dynamodb:BatchGetItem",
  "dynamodb:BatchWriteItem",
] as const;

/** The stack's outputs, by key; task definitions and services read them. */
export const STACK_OUTPUT_KEYS = [
  "TaskRoleArn",
  "ExecutionRoleArn",
  "OrdersTableName",
  "ProductsTableName",
  "LogGroupName",
  "TargetGroupArn",
  "ListenerRuleArn",
] as const;
export type StackOutputKey = (typeof STACK_OUTPUT_KEYS)[number];

/** The stack's outputs: what a silo tenant's services are wired to, plus its listener rule. */
export interface TenantStackOutputs extends SiloInfra {
  readonly listenerRuleArn: string;
}

export interface TenantStackInput {
  readonly tenantId: string;
  /** advanced or premium; basic tenants have no stack. */
  readonly tier: Exclude<Tier, "basic">;
  readonly namePrefix: string;
  /** The shared ALB listener the tenant's rule hangs off. */
  readonly listenerArn: string;
  readonly vpcId: string;
  /** The tenant's listener-rule priority from the PriorityAllocator. */
  readonly priority: number;
  /** @default 30 */
  readonly logRetentionDays?: number;
}

export interface TenantStackTemplate {
  readonly stackName: string;
  readonly template: Readonly<Record<string, unknown>>;
  /** Canonical JSON (keys sorted, no whitespace) of `template`: the exact TemplateBody sent. */
  readonly templateBody: string;
  /** Stack parameters by key, values as CloudFormation takes them (strings). */
  readonly parameters: Readonly<Record<string, string>>;
  /** Stack-level tags: managed-by, tenant-id, tier. The provider adds the hash tag. */
  readonly tags: Tags;
  /** sha256 (hex) of templateBody, parameters and tags: equal hash means no UpdateStack is needed. */
  readonly hash: string;
}

/** Builds the tenant's stack. Throws on input that would make an invalid stack (a bug upstream, not a tenant's fault). */
export function tenantStackTemplate(input: TenantStackInput): TenantStackTemplate {
  const { tenantId, namePrefix: prefix } = input;
  const retention = input.logRetentionDays ?? DEFAULT_LOG_RETENTION_DAYS;
  if (!RETENTION_DAYS.has(retention)) throw new RangeError(`log retention ${retention} days is not one CloudWatch Logs accepts`);
  if (!Number.isInteger(input.priority) || input.priority < MIN_PRIORITY || input.priority > MAX_PRIORITY) {
    throw new RangeError(`listener rule priority ${input.priority} is outside ${MIN_PRIORITY}..${MAX_PRIORITY}`);
  }
  if ((input.tier as string) === "basic") throw new RangeError("basic tenants have no stack");

  // Tags written into the template: tenant-scoped but tier-free, so a tier
  // change leaves the template body, and with it every resource, untouched.
  const ownerTags = cfnTags({ [MANAGED_BY_KEY]: MANAGED_BY_VALUE, [TENANT_ID_KEY]: tenantId });
  const table = (name: string, sortKey: string) => ({
    Type: "AWS::DynamoDB::Table",
    Properties: {
      TableName: name,
      BillingMode: "PAY_PER_REQUEST",
      AttributeDefinitions: [
        { AttributeName: "tenantId", AttributeType: "S" },
        { AttributeName: sortKey, AttributeType: "S" },
      ],
      KeySchema: [
        { AttributeName: "tenantId", KeyType: "HASH" },
        { AttributeName: sortKey, KeyType: "RANGE" },
      ],
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      Tags: ownerTags,
    },
  });
  const ecsTasksTrust = {
    Version: "2012-10-17",
    Statement: [
      {
        Effect: "Allow",
        Principal: { Service: "ecs-tasks.amazonaws.com" },
        Action: "sts:AssumeRole",
        // Confused-deputy guard: only ECS acting for this account may assume it.
        Condition: { StringEquals: { "aws:SourceAccount": { Ref: "AWS::AccountId" } } },
      },
    ],
  };

  const template = {
    AWSTemplateFormatVersion: "2010-09-09",
    Description: `ecs-tenant-operator: infrastructure of tenant ${tenantId}`,
    Parameters: {
      ListenerArn: { Type: "String", Description: "Shared ALB listener the tenant's routing rule belongs to" },
      VpcId: { Type: "AWS::EC2::VPC::Id", Description: "VPC of the tenant's tasks (ip targets)" },
      Priority: { Type: "Number", MinValue: MIN_PRIORITY, MaxValue: MAX_PRIORITY, Description: "Listener rule priority, allocated per tenant" },
    },
    Resources: {
      OrdersTable: table(siloTableName(prefix, tenantId, "orders"), "orderId"),
      ProductsTable: table(siloTableName(prefix, tenantId, "products"), "productId"),
      LogGroup: {
        Type: "AWS::Logs::LogGroup",
        Properties: { LogGroupName: tenantLogGroupName(prefix, tenantId), RetentionInDays: retention, Tags: ownerTags },
      },
      TaskRole: {
        Type: "AWS::IAM::Role",
        Properties: {
          RoleName: roleName(prefix, tenantId, "task"),
          Description: `Task role of tenant ${tenantId}: its own partition of its silo tables only`,
          AssumeRolePolicyDocument: ecsTasksTrust,
          Policies: [
            {
              PolicyName: "tenant-items",
              PolicyDocument: {
                Version: "2012-10-17",
                Statement: [
                  {
                    Sid: "OwnPartitionOnly",
                    Effect: "Allow",
                    Action: [...ABAC_ITEM_ACTIONS],
                    Resource: [{ "Fn::GetAtt": ["OrdersTable", "Arn"] }, { "Fn::GetAtt": ["ProductsTable", "Arn"] }],
                    Condition: {
                      // A literal string, never inside Fn::Sub: IAM, not
                      // CloudFormation, resolves it from the role's tag below.
                      "ForAllValues:StringEquals": { "dynamodb:LeadingKeys": [`\${aws:PrincipalTag/${PRINCIPAL_TENANT_TAG}}`] },
                      // ForAllValues is true when the key is absent; demand it.
                      Null: { "dynamodb:LeadingKeys": "false" },
                    },
                  },
                ],
              },
            },
          ],
          Tags: [...ownerTags, { Key: PRINCIPAL_TENANT_TAG, Value: tenantId }],
        },
      },
      ExecutionRole: {
        Type: "AWS::IAM::Role",
        Properties: {
          RoleName: roleName(prefix, tenantId, "exec"),
          Description: `Task execution role of tenant ${tenantId}: pull images, write its log group`,
          AssumeRolePolicyDocument: ecsTasksTrust,
          // Inline rather than the AmazonECSTaskExecutionRolePolicy managed
          // policy: logs are limited to the tenant's own group.
          Policies: [
            {
              PolicyName: "task-execution",
              PolicyDocument: {
                Version: "2012-10-17",
                Statement: [
                  {
                    Sid: "PullImages",
                    Effect: "Allow",
                    Action: ["ecr:GetAuthorizationToken", "ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"],
                    Resource: "*",
                  },
                  {
                    Sid: "OwnLogGroup",
                    Effect: "Allow",
                    Action: ["logs:CreateLogStream", "logs:PutLogEvents"],
                    // The group's Arn attribute ends in ":*", which covers its streams.
                    Resource: { "Fn::GetAtt": ["LogGroup", "Arn"] },
                  },
                ],
              },
            },
          ],
          Tags: ownerTags,
        },
      },
      TargetGroup: {
        Type: "AWS::ElasticLoadBalancingV2::TargetGroup",
        Properties: {
          Name: targetGroupName(prefix, tenantId),
          TargetType: "ip",
          Protocol: "HTTP",
          Port: RPROXY_PORT,
          VpcId: { Ref: "VpcId" },
          HealthCheckProtocol: "HTTP",
          HealthCheckPath: RPROXY_HEALTH_PATH,
          HealthCheckIntervalSeconds: 15,
          HealthyThresholdCount: 2,
          UnhealthyThresholdCount: 3,
          Matcher: { HttpCode: "200" },
          // Fargate tasks drain fast; the 300 s default slows every rollout.
          TargetGroupAttributes: [{ Key: "deregistration_delay.timeout_seconds", Value: "30" }],
          Tags: ownerTags,
        },
      },
      ListenerRule: {
        // ListenerRule takes no Tags in CloudFormation; it goes with its stack.
        Type: "AWS::ElasticLoadBalancingV2::ListenerRule",
        Properties: {
          ListenerArn: { Ref: "ListenerArn" },
          Priority: { Ref: "Priority" },
          Conditions: [{ Field: "http-header", HttpHeaderConfig: { HttpHeaderName: TENANT_HEADER, Values: [tenantId] } }],
          Actions: [{ Type: "forward", TargetGroupArn: { Ref: "TargetGroup" } }],
        },
      },
    },
    Outputs: {
      TaskRoleArn: { Value: { "Fn::GetAtt": ["TaskRole", "Arn"] } },
      ExecutionRoleArn: { Value: { "Fn::GetAtt": ["ExecutionRole", "Arn"] } },
      OrdersTableName: { Value: { Ref: "OrdersTable" } },
      ProductsTableName: { Value: { Ref: "ProductsTable" } },
      LogGroupName: { Value: { Ref: "LogGroup" } },
      TargetGroupArn: { Value: { Ref: "TargetGroup" } },
      ListenerRuleArn: { Value: { Ref: "ListenerRule" } },
    } satisfies Record<StackOutputKey, unknown>,
  };

  const parameters = { ListenerArn: input.listenerArn, VpcId: input.vpcId, Priority: String(input.priority) };
  const tags: Tags = { [MANAGED_BY_KEY]: MANAGED_BY_VALUE, [TENANT_ID_KEY]: tenantId, [TIER_KEY]: input.tier };
  const templateBody = canonicalJson(template);
  return {
    stackName: tenantStackName(prefix, tenantId),
    template,
    templateBody,
    parameters,
    tags,
    hash: stackHash(templateBody, parameters, tags),
  };
}

/**
 * Hash of everything an UpdateStack would send. Canonical JSON makes it
 * independent of key order, so only a change of content changes it.
 */
export function stackHash(templateBody: string, parameters: Readonly<Record<string, string>>, tags: Tags): string {
  return createHash("sha256").update(canonicalJson({ templateBody, parameters, tags }), "utf8").digest("hex");
}

/**
 * Reads the typed outputs from a stack's outputs; undefined when one is
 * missing (a stack from an older template, or one still being created).
 */
export function tenantStackOutputs(outputs: Readonly<Record<string, string>>): TenantStackOutputs | undefined {
  const get = (key: StackOutputKey) => outputs[key];
  const values = {
    taskRoleArn: get("TaskRoleArn"),
    executionRoleArn: get("ExecutionRoleArn"),
    ordersTableName: get("OrdersTableName"),
    productsTableName: get("ProductsTableName"),
    logGroupName: get("LogGroupName"),
    targetGroupArn: get("TargetGroupArn"),
    listenerRuleArn: get("ListenerRuleArn"),
  };
  for (const v of Object.values(values)) if (v === undefined || v === "") return undefined;
  return values as TenantStackOutputs;
}

function cfnTags(tags: Tags): { Key: string; Value: string }[] {
  return Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));
}
