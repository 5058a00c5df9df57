import { MANAGED_BY_KEY, MANAGED_BY_VALUE, TIER_KEY, type PoolInfra, type Tags } from "./model.js";
import { poolLogGroupName, poolRoleName, poolStackName, poolTableName, poolTargetGroupName } from "./naming.js";
import {
  appTable,
  cfnTags,
  checkedRetention,
  executionRole,
  finishTemplate,
  logGroup,
  POOL_CATCH_ALL_PRIORITY,
  rproxyTargetGroup,
  STACK_OUTPUT_KEYS,
  tenantIsolationRoles,
  tenantStackOutputs,
  wiringOutputs,
  type StackOutputKey,
  type StackTemplate,
} from "./stack-template.js";

export type { PoolInfra };

/**
 * The pool stack: the infrastructure every basic tenant shares, one per
 * deployment, owned by the controller under the pool key like the pooled
 * services. Built by pure code like the tenant stack (stack-template.ts) and
 * of the same shape, so the same StackProvider creates and updates it.
 *
 * - Pooled `orders` and `products` tables, keyed exactly like the silo ones
 *   so an item moves between tiers unchanged, with streams for tier moves and
 *   DeletionPolicy/UpdateReplacePolicy Retain (every basic tenant's data is in
 *   them).
 * - Tenant isolation as in the AWS SaaS Factory reference architecture: the
 *   pooled services' task role can touch no table. It may only assume the
 *   tenant-access role, tagging the session with `tenant=<tenantId>`; that
 *   role's trust demands the tag, and its ABAC policy limits every item
 *   action to the partition the tag names. A service that forgets the tag
 *   cannot assume the role at all, rather than reaching every tenant's items.
 * - The execution role (pull images, write the pool log group only) and the
 *   pool log group.
 * - The pool target group and a catch-all rule on the shared listener at the
 *   last priority: every request whose tenant has no rule of its own (basic
 *   tenants) goes to the pooled rproxy.
 */

/** Pool stack outputs, by key: the same wiring outputs as a silo tenant's stack. */
export const POOL_STACK_OUTPUT_KEYS = STACK_OUTPUT_KEYS;
export type PoolStackOutputKey = StackOutputKey;

export interface PoolStackInput {
  readonly namePrefix: string;
  /** The shared ALB listener the catch-all rule belongs to. */
  readonly listenerArn: string;
  /** VPC of the pooled tasks, where the pool target group registers ip targets. */
  readonly vpcId: string;
  /** @default 30 */
  readonly logRetentionDays?: number;
}

export type PoolStackTemplate = StackTemplate;

/** Builds the pool stack. Throws RangeError on input that would make an invalid stack. */
export function poolStackTemplate(input: PoolStackInput): PoolStackTemplate {
  const prefix = input.namePrefix;
  const retention = checkedRetention(input.logRetentionDays);
  const tags: Tags = { [MANAGED_BY_KEY]: MANAGED_BY_VALUE, [TIER_KEY]: "basic" };
  const ownerTags = cfnTags(tags);

  const template = {
    AWSTemplateFormatVersion: "2010-09-09",
    Description: "ecs-tenant-operator: infrastructure the basic tenants share",
    Parameters: {
      ListenerArn: { Type: "String", Description: "Shared ALB listener the catch-all rule belongs to" },
      VpcId: { Type: "AWS::EC2::VPC::Id", Description: "VPC of the pooled tasks (ip targets)" },
    },
    Resources: {
      OrdersTable: appTable(poolTableName(prefix, "orders"), "orderId", ownerTags),
      ProductsTable: appTable(poolTableName(prefix, "products"), "productId", ownerTags),
      LogGroup: logGroup(poolLogGroupName(prefix), retention, ownerTags),
      ...tenantIsolationRoles(
        { task: poolRoleName(prefix, "task"), access: poolRoleName(prefix, "tenant-access") },
        "the pooled services",
        ownerTags,
      ),
      ExecutionRole: executionRole(
        poolRoleName(prefix, "exec"),
        "Task execution role of the pooled services: pull images, write the pool log group",
        "LogGroup",
        ownerTags,
      ),
      TargetGroup: rproxyTargetGroup(poolTargetGroupName(prefix), ownerTags),
      CatchAllRule: {
        // ListenerRule takes no Tags in CloudFormation; it goes with its stack.
        Type: "AWS::ElasticLoadBalancingV2::ListenerRule",
        Properties: {
          ListenerArn: { Ref: "ListenerArn" },
          // Evaluated last: a tenant's own rule (forward or deny) always wins.
          Priority: POOL_CATCH_ALL_PRIORITY,
          Conditions: [{ Field: "path-pattern", PathPatternConfig: { Values: ["/*"] } }],
          Actions: [{ Type: "forward", TargetGroupArn: { Ref: "TargetGroup" } }],
        },
      },
    },
    Outputs: wiringOutputs() satisfies Record<PoolStackOutputKey, unknown>,
  };

  return finishTemplate(poolStackName(prefix), template, { ListenerArn: input.listenerArn, VpcId: input.vpcId }, tags);
}

/**
 * Reads the typed outputs from the pool stack's outputs; undefined when one
 * is missing (a stack from an older template, or one still being created).
 */
export function poolStackOutputs(outputs: Readonly<Record<string, string>>): PoolInfra | undefined {
  // A silo tenant's stack outputs the same wiring, tenant-access role included.
  return tenantStackOutputs(outputs);
}
