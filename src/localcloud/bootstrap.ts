import {
  CreateTableCommand,
  DescribeTableCommand,
  UpdateTableCommand,
  type DynamoDBClient,
  type TableDescription,
} from "@aws-sdk/client-dynamodb";
import {
  CreateSecurityGroupCommand,
  CreateSubnetCommand,
  CreateVpcCommand,
  DescribeSecurityGroupsCommand,
  DescribeSubnetsCommand,
  DescribeVpcsCommand,
  type EC2Client,
  type Tag as Ec2Tag,
} from "@aws-sdk/client-ec2";
import { CreateClusterCommand, DescribeClustersCommand, type ECSClient } from "@aws-sdk/client-ecs";
import {
  CreateListenerCommand,
  CreateLoadBalancerCommand,
  DescribeListenersCommand,
  DescribeLoadBalancersCommand,
  type ElasticLoadBalancingV2Client,
} from "@aws-sdk/client-elastic-load-balancing-v2";
import {
  CreateEventBusCommand,
  DescribeEventBusCommand,
  PutRuleCommand,
  PutTargetsCommand,
  type EventBridgeClient,
} from "@aws-sdk/client-eventbridge";
import { CreateQueueCommand, GetQueueAttributesCommand, SetQueueAttributesCommand, type SQSClient } from "@aws-sdk/client-sqs";
import { CreateBucketCommand, HeadBucketCommand, type BucketLocationConstraint, type S3Client } from "@aws-sdk/client-s3";
import type { AccountNames } from "../config.js";
import { ecsEventPattern } from "../tiers/ecs-event-hint.js";
import { MANAGED_BY_KEY, MANAGED_BY_VALUE } from "../tiers/model.js";

/**
 * Creates in the local cloud what a real account would already have before the
 * controller runs: network, ALB and listener, the tenants table with its
 * stream, the lease table, the event bus, the two shared clusters, the queue
 * ECS's events on the managed clusters reach the controller through (with
 * its rule on the default bus) and, when named, the bucket tenant data is
 * backed up to. Safe to
 * run again: everything is looked up first (network pieces by the tag
 * localcloud=ecs-tenant-operator), so a re-run reuses rather than duplicates.
 */

const LOCALCLOUD_TAG_KEY = "localcloud";
const LOCALCLOUD_TAG_VALUE = "ecs-tenant-operator";

export interface BootstrapClients {
  readonly ec2: EC2Client;
  readonly dynamodb: DynamoDBClient;
  readonly eventbridge: EventBridgeClient;
  readonly ecs: ECSClient;
  readonly elbv2: ElasticLoadBalancingV2Client;
  /** Needed only for a backup bucket; path-style (forcePathStyle), as moto serves every bucket on one host. */
  readonly s3?: S3Client;
  /** Needed for the ECS events queue; without it there is none (ecsEventsQueueUrl undefined). */
  readonly sqs?: SQSClient;
}

/** What the bootstrap names: the same names the controller reads (loadAccountNames), plus an optional backup bucket. */
export type BootstrapNames = AccountNames & {
  /** S3 bucket for tenant data backups; created when given. */
  readonly backupBucket?: string;
  /** Load balancers to make, each with its listener: the listener pool (LISTENER_ARNS). @default 1 */
  readonly albs?: number;
};

export interface BootstrapResult {
  readonly vpcId: string;
  /** Two subnets in two availability zones (an ALB needs two). */
  readonly subnets: readonly string[];
  readonly securityGroups: readonly string[];
  readonly loadBalancerArn: string;
  readonly loadBalancerDnsName: string;
  /** HTTP :80, default action a fixed 404; tenant routing rules hang off it. The first of listenerArns. */
  readonly listenerArn: string;
  /** One listener per load balancer made (`albs`), the first one's first: LISTENER_ARNS. */
  readonly listenerArns: readonly string[];
  readonly loadBalancerArns: readonly string[];
  readonly tenantsTable: string;
  readonly tenantsStreamArn: string;
  readonly leaseTable: string;
  readonly eventBusName: string;
  readonly poolClusterArn: string;
  readonly advancedClusterArn: string;
  /** Present when the names carried one. */
  readonly backupBucket?: string;
  /** ECS_EVENTS_QUEUE_URL: where the rule `<prefix>-ecs-events` on the default bus puts ECS's events. Present with an SQS client. */
  readonly ecsEventsQueueUrl?: string;
}

const VPC_CIDR = "10.40.0.0/16";
const SUBNET_CIDRS = ["10.40.1.0/24", "10.40.2.0/24"] as const;

export async function bootstrapAccount(clients: BootstrapClients, names: BootstrapNames): Promise<BootstrapResult> {
  const network = await step("network", () => ensureNetwork(clients.ec2, names));
  const [alb, tenants, leaseTable, eventBusName, clusters, backupBucket] = await Promise.all([
    step("load balancers", () => ensureLoadBalancers(clients.elbv2, names, network)),
    step(`table ${names.tenantsTable}`, () => ensureTenantsTable(clients.dynamodb, names.tenantsTable)),
    step(`table ${names.leaseTable}`, () => ensureLeaseTable(clients.dynamodb, names.leaseTable)),
    step(`event bus ${names.eventBusName}`, () => ensureEventBus(clients.eventbridge, names.eventBusName)),
    step("clusters", () => ensureClusters(clients.ecs, [names.poolCluster, names.advancedCluster])),
    names.backupBucket === undefined
      ? undefined
      : step(`bucket ${names.backupBucket}`, () => ensureBucket(clients.s3, names.backupBucket ?? "", names.region)),
  ]);
  const poolClusterArn = clusters.get(names.poolCluster) ?? "";
  const sqs = clients.sqs;
  const ecsEventsQueueUrl =
    sqs === undefined
      ? undefined
      : await step("ECS events queue", () => ensureEcsEventsQueue(sqs, clients.eventbridge, names, poolClusterArn));
  return {
    ...network,
    ...alb,
    tenantsTable: names.tenantsTable,
    tenantsStreamArn: tenants.streamArn,
    leaseTable,
    eventBusName,
    poolClusterArn,
    advancedClusterArn: clusters.get(names.advancedCluster) ?? "",
    ...(backupBucket !== undefined ? { backupBucket } : {}),
    ...(ecsEventsQueueUrl !== undefined ? { ecsEventsQueueUrl } : {}),
  };
}

/** Wraps a failure with the piece that failed, so "bootstrap failed" says what to look at. */
async function step<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw new Error(`local cloud bootstrap: ${what}: ${message}`, { cause: err });
  }
}

const localTags = (name: string): Ec2Tag[] => [
  { Key: LOCALCLOUD_TAG_KEY, Value: LOCALCLOUD_TAG_VALUE },
  { Key: "Name", Value: name },
];
const localFilter = { Name: `tag:${LOCALCLOUD_TAG_KEY}`, Values: [LOCALCLOUD_TAG_VALUE] };

async function ensureNetwork(
  ec2: EC2Client,
  names: BootstrapNames,
): Promise<{ vpcId: string; subnets: readonly string[]; securityGroups: readonly string[] }> {
  const vpcs = await ec2.send(new DescribeVpcsCommand({ Filters: [localFilter] }));
  let vpcId = vpcs.Vpcs?.[0]?.VpcId;
  if (vpcId === undefined) {
    const created = await ec2.send(
      new CreateVpcCommand({
        CidrBlock: VPC_CIDR,
        TagSpecifications: [{ ResourceType: "vpc", Tags: localTags(`${names.namePrefix}-local`) }],
      }),
    );
    vpcId = required(created.Vpc?.VpcId, "CreateVpc returned no VpcId");
  }

  const existing = await ec2.send(new DescribeSubnetsCommand({ Filters: [localFilter, { Name: "vpc-id", Values: [vpcId] }] }));
  const subnets: string[] = [];
  for (const [i, cidr] of SUBNET_CIDRS.entries()) {
    const found = existing.Subnets?.find((s) => s.CidrBlock === cidr)?.SubnetId;
    if (found !== undefined) {
      subnets.push(found);
      continue;
    }
    const created = await ec2.send(
      new CreateSubnetCommand({
        VpcId: vpcId,
        CidrBlock: cidr,
        AvailabilityZone: `${names.region}${i === 0 ? "a" : "b"}`,
        TagSpecifications: [{ ResourceType: "subnet", Tags: localTags(`${names.namePrefix}-local-${i + 1}`) }],
      }),
    );
    subnets.push(required(created.Subnet?.SubnetId, "CreateSubnet returned no SubnetId"));
  }

  const groupName = `${names.namePrefix}-local-tasks`;
  const groups = await ec2.send(
    new DescribeSecurityGroupsCommand({
      Filters: [
        { Name: "vpc-id", Values: [vpcId] },
        { Name: "group-name", Values: [groupName] },
      ],
    }),
  );
  let groupId = groups.SecurityGroups?.[0]?.GroupId;
  if (groupId === undefined) {
    const created = await ec2.send(
      new CreateSecurityGroupCommand({
        GroupName: groupName,
        Description: "tasks and load balancer of the local cloud",
        VpcId: vpcId,
        TagSpecifications: [{ ResourceType: "security-group", Tags: localTags(groupName) }],
      }),
    );
    groupId = required(created.GroupId, "CreateSecurityGroup returned no GroupId");
  }
  return { vpcId, subnets, securityGroups: [groupId] };
}

/** `<prefix>-local`, then `<prefix>-local-2`, ...: the first keeps the name it had before there could be several. */
async function ensureLoadBalancers(
  elbv2: ElasticLoadBalancingV2Client,
  names: BootstrapNames,
  network: { subnets: readonly string[]; securityGroups: readonly string[] },
): Promise<{
  loadBalancerArn: string;
  loadBalancerDnsName: string;
  listenerArn: string;
  listenerArns: readonly string[];
  loadBalancerArns: readonly string[];
}> {
  const made = [];
  for (let i = 1; i <= (names.albs ?? 1); i++) {
    made.push(await ensureLoadBalancer(elbv2, i === 1 ? `${names.namePrefix}-local` : `${names.namePrefix}-local-${i}`, network));
  }
  const first = made[0];
  if (first === undefined) throw new Error("albs must be at least 1");
  return {
    ...first,
    listenerArns: made.map((m) => m.listenerArn),
    loadBalancerArns: made.map((m) => m.loadBalancerArn),
  };
}

async function ensureLoadBalancer(
  elbv2: ElasticLoadBalancingV2Client,
  name: string,
  network: { subnets: readonly string[]; securityGroups: readonly string[] },
): Promise<{ loadBalancerArn: string; loadBalancerDnsName: string; listenerArn: string }> {
  let lb;
  try {
    lb = (await elbv2.send(new DescribeLoadBalancersCommand({ Names: [name] }))).LoadBalancers?.[0];
  } catch (err) {
    if (!isNamed(err, "LoadBalancerNotFoundException", "LoadBalancerNotFound")) throw err;
  }
  if (lb === undefined) {
    const created = await elbv2.send(
      new CreateLoadBalancerCommand({
        Name: name,
        Type: "application",
        Scheme: "internet-facing",
        Subnets: [...network.subnets],
        SecurityGroups: [...network.securityGroups],
        Tags: [{ Key: LOCALCLOUD_TAG_KEY, Value: LOCALCLOUD_TAG_VALUE }],
      }),
    );
    lb = created.LoadBalancers?.[0];
  }
  const loadBalancerArn = required(lb?.LoadBalancerArn, "CreateLoadBalancer returned no LoadBalancerArn");
  const listeners = await elbv2.send(new DescribeListenersCommand({ LoadBalancerArn: loadBalancerArn }));
  let listenerArn = listeners.Listeners?.find((l) => l.Port === 80)?.ListenerArn;
  if (listenerArn === undefined) {
    const created = await elbv2.send(
      new CreateListenerCommand({
        LoadBalancerArn: loadBalancerArn,
        Protocol: "HTTP",
        Port: 80,
        // Requests without a tenant rule get a plain 404 rather than some tenant's app.
        DefaultActions: [
          { Type: "fixed-response", FixedResponseConfig: { StatusCode: "404", ContentType: "text/plain", MessageBody: "unknown tenant" } },
        ],
      }),
    );
    listenerArn = required(created.Listeners?.[0]?.ListenerArn, "CreateListener returned no ListenerArn");
  }
  return { loadBalancerArn, loadBalancerDnsName: lb?.DNSName ?? "", listenerArn };
}

async function ensureTenantsTable(dynamodb: DynamoDBClient, table: string): Promise<{ streamArn: string }> {
  let description = await ensureTable(dynamodb, table, "tenantId", true);
  if (description.StreamSpecification?.StreamEnabled !== true || description.StreamSpecification.StreamViewType !== "NEW_AND_OLD_IMAGES") {
    // A table made by hand without the stream: the controller's watch needs it.
    description = required(
      (
        await dynamodb.send(
          new UpdateTableCommand({ TableName: table, StreamSpecification: { StreamEnabled: true, StreamViewType: "NEW_AND_OLD_IMAGES" } }),
        )
      ).TableDescription,
      "UpdateTable returned no description",
    );
  }
  return { streamArn: required(description.LatestStreamArn, `table ${table} has no stream`) };
}

async function ensureLeaseTable(dynamodb: DynamoDBClient, table: string): Promise<string> {
  await ensureTable(dynamodb, table, "pk", false);
  return table;
}

async function ensureTable(dynamodb: DynamoDBClient, table: string, key: string, stream: boolean): Promise<TableDescription> {
  try {
    const created = await dynamodb.send(
      new CreateTableCommand({
        TableName: table,
        AttributeDefinitions: [{ AttributeName: key, AttributeType: "S" }],
        KeySchema: [{ AttributeName: key, KeyType: "HASH" }],
        BillingMode: "PAY_PER_REQUEST",
        ...(stream ? { StreamSpecification: { StreamEnabled: true, StreamViewType: "NEW_AND_OLD_IMAGES" } } : {}),
      }),
    );
    return required(created.TableDescription, "CreateTable returned no description");
  } catch (err) {
    if (!isNamed(err, "ResourceInUseException")) throw err;
    const described = await dynamodb.send(new DescribeTableCommand({ TableName: table }));
    const description = required(described.Table, "DescribeTable returned no table");
    const partitionKey = description.KeySchema?.find((k) => k.KeyType === "HASH")?.AttributeName;
    if (partitionKey !== key)
      throw new Error(`table ${table} exists with partition key ${partitionKey ?? "?"}, expected ${key}`, { cause: err });
    return description;
  }
}

async function ensureEventBus(eventbridge: EventBridgeClient, name: string): Promise<string> {
  if (name === "default") return name;
  try {
    await eventbridge.send(new DescribeEventBusCommand({ Name: name }));
  } catch (err) {
    if (!isNamed(err, "ResourceNotFoundException")) throw err;
    await eventbridge.send(new CreateEventBusCommand({ Name: name }));
  }
  return name;
}

async function ensureBucket(s3: S3Client | undefined, bucket: string, region: string): Promise<string> {
  if (s3 === undefined) throw new Error("an S3 client (clients.s3) is needed to create a backup bucket");
  try {
    await s3.send(new HeadBucketCommand({ Bucket: bucket }));
    return bucket;
  } catch (err) {
    // HeadBucket has no body, so a missing bucket comes back as a bare 404 ("NotFound").
    if (!isNamed(err, "NotFound", "NoSuchBucket")) throw err;
  }
  try {
    // us-east-1 is the one region that refuses a LocationConstraint naming itself.
    await s3.send(
      new CreateBucketCommand({
        Bucket: bucket,
        ...(region === "us-east-1" ? {} : { CreateBucketConfiguration: { LocationConstraint: region as BucketLocationConstraint } }),
      }),
    );
  } catch (err) {
    // Created by a concurrent bootstrap in between.
    if (!isNamed(err, "BucketAlreadyOwnedByYou")) throw err;
  }
  return bucket;
}

/**
 * The queue `<prefix>-ecs-events` and the rule of the same name on the
 * account's default bus (where ECS sends its events) that fills it with the
 * managed clusters' task, deployment and service action events, with the
 * queue policy EventBridge needs to deliver (moto does not check it; AWS
 * does). The same pieces as deploy/operator.yaml. Every call is an upsert.
 */
async function ensureEcsEventsQueue(
  sqs: SQSClient,
  eventbridge: EventBridgeClient,
  names: BootstrapNames,
  clusterArn: string,
): Promise<string> {
  const name = `${names.namePrefix}-ecs-events`;
  // A hint older than an hour is worth less than the resync that has run since.
  const created = await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: { MessageRetentionPeriod: "3600" } }));
  const queueUrl = required(created.QueueUrl, `CreateQueue ${name} returned no QueueUrl`);
  const attributes = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ["QueueArn"] }));
  const queueArn = required(attributes.Attributes?.["QueueArn"], `queue ${name} has no QueueArn`);
  const arnHead = clusterArn.slice(0, clusterArn.indexOf("cluster/"));
  const rule = await eventbridge.send(
    new PutRuleCommand({
      Name: name,
      EventBusName: "default",
      EventPattern: JSON.stringify(ecsEventPattern(names, arnHead)),
      State: "ENABLED",
      Description: "ECS events on the tenant operator's clusters, as hints of which tenant to look at",
    }),
  );
  const ruleArn = required(rule.RuleArn, `PutRule ${name} returned no RuleArn`);
  const policy = {
    Version: "2012-10-17",
    Statement: [
      {
        Sid: "ecs-events",
        Effect: "Allow",
        Principal: { Service: "events.amazonaws.com" },
        Action: "sqs:SendMessage",
        Resource: queueArn,
        Condition: { ArnEquals: { "aws:SourceArn": ruleArn } },
      },
    ],
  };
  await sqs.send(new SetQueueAttributesCommand({ QueueUrl: queueUrl, Attributes: { Policy: JSON.stringify(policy) } }));
  const targets = await eventbridge.send(
    new PutTargetsCommand({ Rule: name, EventBusName: "default", Targets: [{ Id: "queue", Arn: queueArn }] }),
  );
  if ((targets.FailedEntryCount ?? 0) > 0) throw new Error(`PutTargets ${name}: ${targets.FailedEntries?.[0]?.ErrorMessage ?? "failed"}`);
  return queueUrl;
}

/** CreateCluster only for missing or INACTIVE clusters; moto replaces an existing cluster and would drop its tags. */
async function ensureClusters(ecs: ECSClient, names: readonly string[]): Promise<ReadonlyMap<string, string>> {
  const described = await ecs.send(new DescribeClustersCommand({ clusters: [...names] }));
  const arns = new Map<string, string>();
  for (const cluster of described.clusters ?? []) {
    if (cluster.status === "ACTIVE" && cluster.clusterName !== undefined && cluster.clusterArn !== undefined) {
      arns.set(cluster.clusterName, cluster.clusterArn);
    }
  }
  for (const name of names) {
    if (arns.has(name)) continue;
    const created = await ecs.send(
      new CreateClusterCommand({ clusterName: name, tags: [{ key: MANAGED_BY_KEY, value: MANAGED_BY_VALUE }] }),
    );
    arns.set(name, required(created.cluster?.clusterArn, `CreateCluster ${name} returned no ARN`));
  }
  return arns;
}

function isNamed(err: unknown, ...names: string[]): boolean {
  return err instanceof Error && names.includes(err.name);
}

function required<T>(value: T | undefined, message: string): T {
  if (value === undefined) throw new Error(message);
  return value;
}
