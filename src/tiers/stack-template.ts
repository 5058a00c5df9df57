import { createHash } from "node:crypto";
import { canonicalJson, type Tier } from "../tenants/record.js";
import { MANAGED_BY_KEY, MANAGED_BY_VALUE, TENANT_ID_KEY, TIER_KEY, type SiloInfra, type Tags } from "./model.js";
import { roleName, siloTableName, stackName as tenantStackName, targetGroupName, tenantLogGroupName } from "./naming.js";

/**
 * The per-tenant infrastructure stack (advanced and premium tiers) as a plain
 * CloudFormation JSON template, built by pure code: silo tables, the task role
 * with DynamoDB ABAC, the execution role, the log group, and the ALB target
 * group of the tenant's rproxy.
 *
 * The listener rule that routes `tenantPath: <tenantId>` to that target group
 * is not in the stack: the controller manages every tenant's rule itself
 * through the ELBv2 API (RoutePort in src/ports.ts), so a routing
 * flip during a tier move is one ModifyRule, and a suspended tenant of any
 * tier gets a deny rule without a stack to hang it on.
 *
 * The tables are kept when the stack goes or replaces them (DeletionPolicy
 * and UpdateReplacePolicy Retain): no stack operation may drop tenant data,
 * only the controller, after it exported or copied the items. Their streams
 * (NEW_AND_OLD_IMAGES) let a tier move capture writes made during the copy.
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
const PRINCIPAL_TENANT_TAG = "tenant";
/** Header the shared listener routes on; its value is the tenant id. */
export const TENANT_HEADER = "tenantPath";
/** Port and health path of the rproxy container the target group points at. */
const RPROXY_PORT = 8080;
const RPROXY_HEALTH_PATH = "/health";
/** @default 30 */
const DEFAULT_LOG_RETENTION_DAYS = 30;
/** ALB listener rule priorities are 1..50000. */
export const MIN_PRIORITY = 1;
export const MAX_PRIORITY = 50_000;
/**
 * The pool stack's catch-all rule takes the last priority, so it is evaluated
 * after every tenant's own rule and serves whoever has none (basic tenants).
 */
export const POOL_CATCH_ALL_PRIORITY = MAX_PRIORITY;
/** Tenants' rules take 1..49999; the PriorityAllocator never hands out the catch-all's number. */
export const MAX_TENANT_PRIORITY = POOL_CATCH_ALL_PRIORITY - 1;

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
  "TenantAccessRoleArn",
  "OrdersTableName",
  "ProductsTableName",
  "LogGroupName",
  "TargetGroupArn",
] as const;
export type StackOutputKey = (typeof STACK_OUTPUT_KEYS)[number];

/** The stack's outputs: what a silo tenant's services (and its listener rule) are wired to. */
export interface TenantStackOutputs extends SiloInfra {
  /** The role the services assume per tenant (IAM_ROLE_ARN), as the pool's. */
  readonly tenantAccessRoleArn: string;
}

export interface TenantStackInput {
  readonly tenantId: string;
  /** advanced or premium; basic tenants have no stack. */
  readonly tier: Exclude<Tier, "basic">;
  readonly namePrefix: string;
  /** VPC of the tenant's tasks, where its target group registers ip targets. */
  readonly vpcId: string;
  /** @default 30 */
  readonly logRetentionDays?: number;
}

/** A stack as StackProvider creates and updates it: the tenant stacks and the pool stack alike. */
export interface StackTemplate {
  readonly stackName: string;
  readonly template: Readonly<Record<string, unknown>>;
  /** Canonical JSON (keys sorted, no whitespace) of `template`: the exact TemplateBody sent. */
  readonly templateBody: string;
  /** Stack parameters by key, values as CloudFormation takes them (strings). */
  readonly parameters: Readonly<Record<string, string>>;
  /** Stack-level tags: managed-by, tier, and tenant-id on a tenant's stack. The provider adds the hash tag. */
  readonly tags: Tags;
  /** sha256 (hex) of templateBody, parameters and tags: equal hash means no UpdateStack is needed. */
  readonly hash: string;
}

export type TenantStackTemplate = StackTemplate;

/** Builds the tenant's stack. Throws on input that would make an invalid stack (a bug upstream, not a tenant's fault). */
export function tenantStackTemplate(input: TenantStackInput): TenantStackTemplate {
  const { tenantId, namePrefix: prefix } = input;
  const retention = checkedRetention(input.logRetentionDays);
  if ((input.tier as string) === "basic") throw new RangeError("basic tenants have no stack");

  // Tags written into the template: tenant-scoped but tier-free, so a tier
  // change leaves the template body, and with it every resource, untouched.
  const ownerTags = cfnTags({ [MANAGED_BY_KEY]: MANAGED_BY_VALUE, [TENANT_ID_KEY]: tenantId });

  const template = {
    AWSTemplateFormatVersion: "2010-09-09",
    Description: `ecs-tenant-operator: infrastructure of tenant ${tenantId}`,
    Parameters: {
      VpcId: { Type: "AWS::EC2::VPC::Id", Description: "VPC of the tenant's tasks (ip targets)" },
    },
    Resources: {
      OrdersTable: appTable(siloTableName(prefix, tenantId, "orders"), "orderId", ownerTags),
      ProductsTable: appTable(siloTableName(prefix, tenantId, "products"), "productId", ownerTags),
      LogGroup: logGroup(tenantLogGroupName(prefix, tenantId), retention, ownerTags),
      ...tenantIsolationRoles(
        { task: roleName(prefix, tenantId, "task"), access: roleName(prefix, tenantId, "access") },
        `tenant ${tenantId}`,
        ownerTags,
      ),
      ExecutionRole: executionRole(
        roleName(prefix, tenantId, "exec"),
        `Task execution role of tenant ${tenantId}: pull images, write its log group`,
        "LogGroup",
        ownerTags,
      ),
      TargetGroup: rproxyTargetGroup(targetGroupName(prefix, tenantId), ownerTags),
    },
    Outputs: wiringOutputs() satisfies Record<StackOutputKey, unknown>,
  };

  const parameters = { VpcId: input.vpcId };
  const tags: Tags = { [MANAGED_BY_KEY]: MANAGED_BY_VALUE, [TENANT_ID_KEY]: tenantId, [TIER_KEY]: input.tier };
  return finishTemplate(tenantStackName(prefix, tenantId), template, parameters, tags);
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
    tenantAccessRoleArn: get("TenantAccessRoleArn"),
    ordersTableName: get("OrdersTableName"),
    productsTableName: get("ProductsTableName"),
    logGroupName: get("LogGroupName"),
    targetGroupArn: get("TargetGroupArn"),
  };
  return allPresent(values);
}

// ---------------------------------------------------------------------------
// Building blocks shared with the pool stack (pool-template.ts), so a silo
// tenant and the pool can never drift apart in keys, streams, retention,
// trust or health checks.
// ---------------------------------------------------------------------------

export type CfnTag = { readonly Key: string; readonly Value: string };

export function cfnTags(tags: Tags): CfnTag[] {
  return Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));
}

/** The log retention to use; throws on one CloudWatch Logs would refuse. */
export function checkedRetention(days: number | undefined): number {
  const retention = days ?? DEFAULT_LOG_RETENTION_DAYS;
  if (!RETENTION_DAYS.has(retention)) throw new RangeError(`log retention ${retention} days is not one CloudWatch Logs accepts`);
  return retention;
}

/**
 * An app table as docs/design.md "Contract: tenant data" fixes it: partition
 * key tenantId, the app's sort key, so an item moves between tiers unchanged.
 */
export function appTable(name: string, sortKey: string, tags: readonly CfnTag[]) {
  return {
    Type: "AWS::DynamoDB::Table",
    // Only the controller drops tenant data, after exporting or copying it;
    // neither a stack deletion nor a replacing update may (cfn-lint I3011).
    DeletionPolicy: "Retain",
    UpdateReplacePolicy: "Retain",
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
      // A tier move copies the table, then replays from the stream what was
      // written meanwhile; both images let it apply deletes as well as puts.
      StreamSpecification: { StreamViewType: "NEW_AND_OLD_IMAGES" },
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      Tags: tags,
    },
  };
}

export function logGroup(name: string, retentionDays: number, tags: readonly CfnTag[]) {
  return {
    Type: "AWS::Logs::LogGroup",
    // Delete, stated rather than left to the default (cfn-lint I3011): logs
    // are no tenant data, expire after the retention anyway, and a retained
    // group would keep its deterministic name taken, so the stack could never
    // be created again (a tenant moving back to a silo tier, a re-onboarding).
    DeletionPolicy: "Delete",
    UpdateReplacePolicy: "Delete",
    Properties: { LogGroupName: name, RetentionInDays: retentionDays, Tags: tags },
  };
}

/** Trust for roles that ECS tasks take on. */
function ecsTasksTrust() {
  return {
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
}

/**
 * Item actions on the given tables (logical ids), each limited to the
 * partition named by the caller's `tenant` principal tag: the role's own tag
 * for a silo task role, the session tag for the pool's tenant-access role.
 */
function abacItemsPolicy(tableLogicalIds: readonly string[]) {
  return {
    Version: "2012-10-17",
    Statement: [
      {
        Sid: "OwnPartitionOnly",
        Effect: "Allow",
        Action: [...ABAC_ITEM_ACTIONS],
        Resource: tableLogicalIds.map((id) => ({ "Fn::GetAtt": [id, "Arn"] })),
        Condition: {
          // A literal string, never inside Fn::Sub: IAM, not
          // CloudFormation, resolves it from the caller's tag.
          "ForAllValues:StringEquals": { "dynamodb:LeadingKeys": [`\${aws:PrincipalTag/${PRINCIPAL_TENANT_TAG}}`] },
          // ForAllValues is true when the key is absent; demand it.
          Null: { "dynamodb:LeadingKeys": "false" },
        },
      },
    ],
  };
}

/** A task execution role that may pull images and write one log group (logical id) only. */
export function executionRole(name: string, description: string, logGroupLogicalId: string, tags: readonly CfnTag[]) {
  return {
    Type: "AWS::IAM::Role",
    Properties: {
      RoleName: name,
      Description: description,
      AssumeRolePolicyDocument: ecsTasksTrust(),
      // Inline rather than the AmazonECSTaskExecutionRolePolicy managed
      // policy: logs are limited to the one group.
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
                Resource: { "Fn::GetAtt": [logGroupLogicalId, "Arn"] },
              },
            ],
          },
        },
      ],
      Tags: tags,
    },
  };
}

/** The ALB target group of an rproxy service (ip targets in the VpcId parameter's VPC). */
export function rproxyTargetGroup(name: string, tags: readonly CfnTag[]) {
  return {
    Type: "AWS::ElasticLoadBalancingV2::TargetGroup",
    Properties: {
      Name: name,
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
      Tags: tags,
    },
  };
}

/** The template as sent (canonical JSON) and the hash of all an UpdateStack would send. */
export function finishTemplate(
  stackName: string,
  template: Readonly<Record<string, unknown>>,
  parameters: Readonly<Record<string, string>>,
  tags: Tags,
): StackTemplate {
  const templateBody = canonicalJson(template);
  return { stackName, template, templateBody, parameters, tags, hash: stackHash(templateBody, parameters, tags) };
}

/** The values when every one is a non-empty string, else undefined. */
function allPresent<T extends Record<string, string | undefined>>(values: T): { [K in keyof T]: string } | undefined {
  for (const v of Object.values(values)) if (v === undefined || v === "") return undefined;
  return values as { [K in keyof T]: string };
}

/**
 * The task role and the tenant-access role, as the reference architecture
 * isolates tenants: the services' task role may only assume the access role,
 * tagging the session with the tenant (`IAM_ROLE_ARN` in their environment);
 * the access role trusts only that role, only with the tag, and allows items
 * of the tagged tenant's partition alone (ABAC on dynamodb:LeadingKeys).
 * Silo tenants and the pool use the same pair, so the reference images run
 * unchanged in every tier.
 */
export function tenantIsolationRoles(names: { readonly task: string; readonly access: string }, who: string, tags: readonly CfnTag[]) {
  return {
    TaskRole: {
      Type: "AWS::IAM::Role",
      Properties: {
        RoleName: names.task,
        Description: `Task role of ${who}: may only assume the tenant-access role, tagged with a tenant`,
        AssumeRolePolicyDocument: ecsTasksTrust(),
        // No principal tag and no policy of its own: what it may do comes
        // from TaskRolePolicy alone.
        Tags: tags,
      },
    },
    // A separate policy rather than an inline one on TaskRole: the grant
    // names TenantAccessRole, whose trust names TaskRole, and inline
    // policies both ways would be a circular dependency.
    TaskRolePolicy: {
      Type: "AWS::IAM::Policy",
      Properties: {
        PolicyName: "assume-tenant-access",
        Roles: [{ Ref: "TaskRole" }],
        PolicyDocument: {
          Version: "2012-10-17",
          Statement: [
            {
              Sid: "TenantScopedSessionsOnly",
              Effect: "Allow",
              Action: ["sts:AssumeRole", "sts:TagSession"],
              Resource: { "Fn::GetAtt": ["TenantAccessRole", "Arn"] },
            },
          ],
        },
      },
    },
    TenantAccessRole: {
      Type: "AWS::IAM::Role",
      Properties: {
        RoleName: names.access,
        Description: `Assumed by the services of ${who} per tenant: that tenant's partition of the tables only`,
        AssumeRolePolicyDocument: {
          Version: "2012-10-17",
          Statement: [
            {
              Effect: "Allow",
              Principal: { AWS: { "Fn::GetAtt": ["TaskRole", "Arn"] } },
              // TagSession is what lets the caller set the session tag the
              // ABAC policy reads as aws:PrincipalTag/tenant.
              Action: ["sts:AssumeRole", "sts:TagSession"],
              // A session without the tag would leave the policy variable
              // unresolved; refuse it at the door rather than rely on that.
              Condition: { Null: { [`aws:RequestTag/${PRINCIPAL_TENANT_TAG}`]: "false" } },
            },
          ],
        },
        Policies: [{ PolicyName: "tenant-items", PolicyDocument: abacItemsPolicy(["OrdersTable", "ProductsTable"]) }],
        // Deliberately no `tenant` tag: the session tag is the only source.
        Tags: tags,
      },
    },
  };
}

/** The outputs services are wired from, the same in a silo tenant's stack and the pool's (same logical ids). */
export function wiringOutputs() {
  return {
    TaskRoleArn: { Value: { "Fn::GetAtt": ["TaskRole", "Arn"] } },
    ExecutionRoleArn: { Value: { "Fn::GetAtt": ["ExecutionRole", "Arn"] } },
    TenantAccessRoleArn: { Value: { "Fn::GetAtt": ["TenantAccessRole", "Arn"] } },
    OrdersTableName: { Value: { Ref: "OrdersTable" } },
    ProductsTableName: { Value: { Ref: "ProductsTable" } },
    LogGroupName: { Value: { Ref: "LogGroup" } },
    TargetGroupArn: { Value: { Ref: "TargetGroup" } },
  };
}
