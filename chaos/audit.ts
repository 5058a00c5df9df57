import { CreateStackCommand, DescribeStacksCommand, type CloudFormationClient, type Stack } from "@aws-sdk/client-cloudformation";
import {
  CreateUserPoolCommand,
  DescribeUserPoolCommand,
  ListGroupsCommand,
  ListUserPoolClientsCommand,
  ListUserPoolsCommand,
  type CognitoIdentityProviderClient,
} from "@aws-sdk/client-cognito-identity-provider";
import { ScanCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import {
  CreateClusterCommand,
  CreateServiceCommand,
  DescribeClustersCommand,
  DescribeServicesCommand,
  ListClustersCommand,
  ListServicesCommand,
  RegisterTaskDefinitionCommand,
  type ECSClient,
  type Tag as EcsTag,
} from "@aws-sdk/client-ecs";
import {
  CreateRuleCommand,
  DescribeRulesCommand,
  DescribeTagsCommand,
  type ElasticLoadBalancingV2Client,
} from "@aws-sdk/client-elastic-load-balancing-v2";
import {
  CreateHttpNamespaceCommand,
  GetNamespaceCommand,
  ListNamespacesCommand,
  ListTagsForResourceCommand,
  type ServiceDiscoveryClient,
} from "@aws-sdk/client-servicediscovery";
import { unmarshall } from "@aws-sdk/util-dynamodb";
import type { Config } from "../src/config.js";
import { tenantPoolName } from "../src/providers/cognito-identity.js";
import { tenantNamespaceName } from "../src/tiers/desired.js";
import { premiumClusterName, serviceName, stackName } from "../src/tiers/naming.js";
import { APP_NAMES, hashSpec, type Tier } from "../src/tenants/record.js";
import type { TenantStatus } from "../src/tenants/status.js";

/**
 * The chaos auditor: reads the local cloud's state through the AWS SDK, the
 * way a user with read access would (Scan, List*, Describe*, tags), and
 * judges it against what the tenant records say. It knows resources by their
 * ownership tags (docs/design.md "Contract: ownership tags"), never by the
 * controller's memory, so it is as valid after a kill -9 as after a clean stop.
 *
 * Findings, each a list so a report can say exactly what:
 * - lost: a valid record that is not Ready for its current spec, or is
 *   Ready without what its tier needs (services, cluster, stack, rule,
 *   namespace, user pool); an invalid record that is not Failed with a
 *   message; a Failed record that lost what it had (torn down).
 * - duplicates: two live resources of one kind for one owner (two ECS
 *   services for one tenant and app, two stacks, two user pools...).
 * - orphans: managed resources tagged for a tenant that should own no such
 *   resource (no record, an invalid record, a basic tenant, another tier).
 * - unmanagedWrites: look-alike resources without the managed-by tag whose
 *   state changed between two snapshots.
 */
export const MANAGED_BY = "managed-by";
export const OPERATOR = "ecs-tenant-operator";
export const TENANT_ID = "tenant-id";

export interface AuditClients {
  readonly dynamodb: DynamoDBClient;
  readonly ecs: ECSClient;
  readonly cloudformation: CloudFormationClient;
  readonly elbv2: ElasticLoadBalancingV2Client;
  readonly servicediscovery: ServiceDiscoveryClient;
  readonly cognito: CognitoIdentityProviderClient;
}

export type AuditNames = Pick<
  Config,
  "tenantsTable" | "namePrefix" | "poolCluster" | "advancedCluster" | "listenerArn" | "subnets" | "securityGroups"
> &
  Partial<Pick<Config, "listenerArns">>;

/** What a record should have come to. */
export type Expectation =
  /** A valid record: Ready for its current spec, owning what its tier needs. */
  | { readonly kind: "ready"; readonly tier: Tier }
  /** An invalid record: Failed with a message; it keeps what it had as `keeps` (a once-valid tenant), else owns nothing. */
  | { readonly kind: "failed"; readonly keeps?: Tier };

export type ResourceKind = "service" | "cluster" | "stack" | "rule" | "namespace" | "userPool";

export interface Resource {
  readonly kind: ResourceKind;
  /** ARN, id or name: what identifies it to a user. */
  readonly id: string;
  readonly name: string;
  readonly tags: Readonly<Record<string, string>>;
  /** Live: ACTIVE service or cluster, a stack not deleted, any rule, namespace or pool that exists. */
  readonly live: boolean;
  /** ECS services: their cluster's name. */
  readonly cluster?: string;
  /** ECS services: ACTIVE (DRAINING services are live but on their way out). */
  readonly active?: boolean;
  /** Stacks: CREATE_COMPLETE or UPDATE_COMPLETE. */
  readonly complete?: boolean;
  /** Rules: the action type of their first action (forward, fixed-response). */
  readonly action?: string;
}

export interface Inventory {
  readonly records: ReadonlyMap<string, Record<string, unknown>>;
  readonly resources: readonly Resource[];
}

export interface Finding {
  readonly tenantId: string;
  readonly what: string;
}

export interface AuditReport {
  readonly lost: readonly Finding[];
  readonly duplicates: readonly Finding[];
  readonly orphans: readonly Finding[];
  readonly unmanagedWrites: readonly Finding[];
  /** What was read, for the report: records, and live managed resources by kind. */
  readonly counts: Readonly<Record<string, number>>;
}

/** What each tier owns per tenant (besides its records' status). */
const OWNS: Readonly<Record<Tier, ReadonlySet<ResourceKind>>> = {
  basic: new Set(),
  advanced: new Set(["service", "stack", "rule", "namespace", "userPool"]),
  premium: new Set(["service", "cluster", "stack", "rule", "namespace", "userPool"]),
};

// ---- reading the world ----

export async function readInventory(clients: AuditClients, names: AuditNames): Promise<Inventory> {
  const [records, ecs, stacks, rules, namespaces, userPools] = await Promise.all([
    readRecords(clients.dynamodb, names.tenantsTable),
    readEcs(clients.ecs),
    readStacks(clients.cloudformation),
    // Every listener of the pool: a tenant's rule is on the one it is placed on.
    Promise.all((names.listenerArns ?? [names.listenerArn]).map((l) => readRules(clients.elbv2, l))).then((all) => all.flat()),
    readNamespaces(clients.servicediscovery),
    readUserPools(clients.cognito),
  ]);
  return { records, resources: [...ecs, ...stacks, ...rules, ...namespaces, ...userPools] };
}

async function readRecords(ddb: DynamoDBClient, table: string): Promise<Map<string, Record<string, unknown>>> {
  const out = new Map<string, Record<string, unknown>>();
  let start: Record<string, import("@aws-sdk/client-dynamodb").AttributeValue> | undefined;
  do {
    const page = await ddb.send(
      new ScanCommand({ TableName: table, ConsistentRead: true, ...(start ? { ExclusiveStartKey: start } : {}) }),
    );
    for (const item of page.Items ?? []) {
      const record = unmarshall(item);
      out.set(String(record["tenantId"]), record);
    }
    start = page.LastEvaluatedKey;
  } while (start !== undefined);
  return out;
}

function ecsTags(tags: readonly EcsTag[] | undefined): Record<string, string> {
  return Object.fromEntries((tags ?? []).flatMap((t) => (t.key !== undefined ? [[t.key, t.value ?? ""]] : [])));
}

async function readEcs(ecs: ECSClient): Promise<Resource[]> {
  const out: Resource[] = [];
  const clusterArns: string[] = [];
  let token: string | undefined;
  do {
    const page = await ecs.send(new ListClustersCommand({ maxResults: 100, ...(token ? { nextToken: token } : {}) }));
    clusterArns.push(...(page.clusterArns ?? []));
    token = page.nextToken;
  } while (token !== undefined);
  const clusters: { name: string; active: boolean }[] = [];
  for (const batch of chunks(clusterArns, 100)) {
    const res = await ecs.send(new DescribeClustersCommand({ clusters: batch, include: ["TAGS"] }));
    for (const c of res.clusters ?? []) {
      const name = c.clusterName ?? "";
      const active = c.status === "ACTIVE";
      clusters.push({ name, active });
      out.push({ kind: "cluster", id: c.clusterArn ?? name, name, tags: ecsTags(c.tags), live: active, active });
    }
  }
  for (const cluster of clusters.filter((c) => c.active)) {
    const arns: string[] = [];
    let next: string | undefined;
    do {
      const page = await ecs.send(
        new ListServicesCommand({ cluster: cluster.name, maxResults: 100, ...(next ? { nextToken: next } : {}) }),
      );
      arns.push(...(page.serviceArns ?? []));
      next = page.nextToken;
    } while (next !== undefined);
    for (const batch of chunks(arns, 10)) {
      const res = await ecs.send(new DescribeServicesCommand({ cluster: cluster.name, services: batch, include: ["TAGS"] }));
      for (const s of res.services ?? []) {
        out.push({
          kind: "service",
          id: s.serviceArn ?? "",
          name: s.serviceName ?? "",
          tags: ecsTags(s.tags),
          live: s.status !== "INACTIVE",
          active: s.status === "ACTIVE",
          cluster: cluster.name,
        });
      }
    }
  }
  return out;
}

async function readStacks(cfn: CloudFormationClient): Promise<Resource[]> {
  const stacks: Stack[] = [];
  let token: string | undefined;
  do {
    const page = await cfn.send(new DescribeStacksCommand(token ? { NextToken: token } : {}));
    stacks.push(...(page.Stacks ?? []));
    token = page.NextToken;
  } while (token !== undefined);
  return stacks.map((s) => ({
    kind: "stack" as const,
    id: s.StackId ?? s.StackName ?? "",
    name: s.StackName ?? "",
    tags: Object.fromEntries((s.Tags ?? []).map((t) => [t.Key ?? "", t.Value ?? ""])),
    live: s.StackStatus !== "DELETE_COMPLETE",
    complete: s.StackStatus === "CREATE_COMPLETE" || s.StackStatus === "UPDATE_COMPLETE",
  }));
}

async function readRules(elbv2: ElasticLoadBalancingV2Client, listenerArn: string): Promise<Resource[]> {
  const rules: { arn: string; priority: string; action: string; header: string }[] = [];
  let marker: string | undefined;
  do {
    const page = await elbv2.send(
      new DescribeRulesCommand({ ListenerArn: listenerArn, PageSize: 400, ...(marker ? { Marker: marker } : {}) }),
    );
    for (const r of page.Rules ?? []) {
      const header = r.Conditions?.find((c) => c.Field === "http-header")?.HttpHeaderConfig?.Values?.[0] ?? "";
      rules.push({ arn: r.RuleArn ?? "", priority: r.Priority ?? "", action: r.Actions?.[0]?.Type ?? "", header });
    }
    marker = page.NextMarker;
  } while (marker !== undefined);
  const tags = new Map<string, Record<string, string>>();
  for (const batch of chunks(
    rules.filter((r) => r.priority !== "default").map((r) => r.arn),
    20,
  )) {
    const res = await elbv2.send(new DescribeTagsCommand({ ResourceArns: batch }));
    for (const d of res.TagDescriptions ?? [])
      tags.set(d.ResourceArn ?? "", Object.fromEntries((d.Tags ?? []).map((t) => [t.Key ?? "", t.Value ?? ""])));
  }
  return rules
    .filter((r) => r.priority !== "default")
    .map((r) => ({
      kind: "rule" as const,
      id: r.arn,
      name: `priority ${r.priority} tenantPath=${r.header}`,
      tags: tags.get(r.arn) ?? {},
      live: true,
      action: r.action,
    }));
}

async function readNamespaces(sd: ServiceDiscoveryClient): Promise<Resource[]> {
  const out: Resource[] = [];
  let token: string | undefined;
  do {
    const page = await sd.send(new ListNamespacesCommand({ MaxResults: 100, ...(token ? { NextToken: token } : {}) }));
    for (const ns of page.Namespaces ?? []) {
      const tags = await sd.send(new ListTagsForResourceCommand({ ResourceARN: ns.Arn ?? "" }));
      out.push({
        kind: "namespace",
        id: ns.Id ?? "",
        name: ns.Name ?? "",
        tags: Object.fromEntries((tags.Tags ?? []).map((t) => [t.Key ?? "", t.Value ?? ""])),
        live: true,
      });
    }
    token = page.NextToken;
  } while (token !== undefined);
  return out;
}

async function readUserPools(cognito: CognitoIdentityProviderClient): Promise<Resource[]> {
  const out: Resource[] = [];
  let token: string | undefined;
  do {
    const page = await cognito.send(new ListUserPoolsCommand({ MaxResults: 60, ...(token ? { NextToken: token } : {}) }));
    for (const p of page.UserPools ?? []) {
      const described = await cognito.send(new DescribeUserPoolCommand({ UserPoolId: p.Id ?? "" }));
      out.push({ kind: "userPool", id: p.Id ?? "", name: p.Name ?? "", tags: described.UserPool?.UserPoolTags ?? {}, live: true });
    }
    token = page.NextToken;
  } while (token !== undefined);
  return out;
}

// ---- judging it ----

const isManaged = (r: Resource) => r.tags[MANAGED_BY] === OPERATOR;

/**
 * Judges the inventory against the expectations (one per record the run
 * wrote). `before` is the look-alikes' snapshot taken before the
 * controllers ran; pass the look-alikes to compare them now.
 */
export async function audit(
  clients: AuditClients,
  names: AuditNames,
  expected: ReadonlyMap<string, Expectation>,
  lookalikes?: { readonly seeded: readonly Lookalike[]; readonly before: ReadonlyMap<string, string> },
): Promise<AuditReport> {
  const inventory = await readInventory(clients, names);
  const report = judge(inventory, names, expected);
  const unmanagedWrites: Finding[] = [];
  if (lookalikes !== undefined) {
    const after = await snapshotLookalikes(clients, lookalikes.seeded);
    for (const l of lookalikes.seeded) {
      const was = lookalikes.before.get(l.id);
      const now = after.get(l.id);
      if (was !== now) unmanagedWrites.push({ tenantId: l.shadows, what: `${l.kind} ${l.name}: ${was ?? "absent"} -> ${now ?? "absent"}` });
    }
  }
  return { ...report, unmanagedWrites };
}

/** The pure part of the audit: an inventory against expectations. */
export function judge(
  inventory: Inventory,
  names: Pick<AuditNames, "advancedCluster" | "poolCluster">,
  expected: ReadonlyMap<string, Expectation>,
): Omit<AuditReport, "unmanagedWrites"> {
  const lost: Finding[] = [];
  const duplicates: Finding[] = [];
  const orphans: Finding[] = [];
  const managed = inventory.resources.filter((r) => r.live && isManaged(r));
  const byTenant = new Map<string, Resource[]>();
  for (const r of managed) {
    const owner = r.tags[TENANT_ID];
    if (owner !== undefined) byTenant.set(owner, [...(byTenant.get(owner) ?? []), r]);
  }

  // Records.
  const poolApps = new Set(
    managed
      .filter((r) => r.kind === "service" && r.active === true && r.cluster === names.poolCluster && r.tags[TENANT_ID] === undefined)
      .map((r) => r.tags["app"]),
  );
  for (const [tenantId, want] of expected) {
    const record = inventory.records.get(tenantId);
    const status = record?.["status"] as Partial<TenantStatus> | undefined;
    const owned = byTenant.get(tenantId) ?? [];
    if (record === undefined) {
      lost.push({ tenantId, what: "record is gone" });
      continue;
    }
    if (want.kind === "ready") {
      const problems: string[] = [];
      if (status?.phase !== "Ready") problems.push(`phase ${status?.phase ?? "none"} (${status?.message ?? ""})`);
      else if (status.observedSpecHash !== hashSpec(record)) problems.push("Ready for an older spec");
      problems.push(...missing(want.tier, owned, names));
      if (want.tier === "basic") for (const app of APP_NAMES) if (!poolApps.has(app)) problems.push(`no ACTIVE pooled ${app} service`);
      if (problems.length > 0) lost.push({ tenantId, what: problems.join("; ") });
    } else {
      if (status?.phase !== "Failed" || (status.message ?? "") === "")
        lost.push({ tenantId, what: `invalid record not reported: phase ${status?.phase ?? "none"}` });
      if (want.keeps !== undefined) {
        const gone = missing(want.keeps, owned, names);
        if (gone.length > 0) lost.push({ tenantId, what: `torn down while its record was invalid: ${gone.join("; ")}` });
      }
    }
  }

  // Duplicates: one owner, one kind (and app), more than one live resource.
  const groups = new Map<string, Resource[]>();
  for (const r of managed) {
    if (r.kind === "service" && r.active !== true) continue;
    const owner = r.tags[TENANT_ID] ?? ":pool";
    if (owner === ":pool" && (r.kind === "cluster" || r.kind === "rule")) continue; // shared clusters; the pool's catch-all and rules are the pool stack's
    const key = `${owner}\u0000${r.kind}${r.kind === "service" ? `/${r.tags["app"] ?? r.name}` : ""}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  for (const [key, rs] of groups) {
    if (rs.length < 2) continue;
    const [owner = "", kind = ""] = key.split("\u0000");
    duplicates.push({
      tenantId: owner,
      what: `${rs.length} live ${kind}: ${rs.map((r) => (r.cluster ? `${r.cluster}/${r.name}` : r.name)).join(", ")}`,
    });
  }

  // Orphans: tagged for a tenant that should own no such resource.
  for (const [tenantId, rs] of byTenant) {
    const want = expected.get(tenantId);
    const tier = want === undefined ? undefined : want.kind === "ready" ? want.tier : want.keeps;
    const allowed = tier === undefined ? new Set<ResourceKind>() : OWNS[tier];
    for (const r of rs) {
      if (r.kind === "service" && r.active !== true && tier !== undefined) continue;
      if (!allowed.has(r.kind))
        orphans.push({
          tenantId,
          what: `${r.kind} ${r.cluster ? `${r.cluster}/` : ""}${r.name} (${want === undefined ? "no record" : want.kind === "failed" ? "invalid record" : `a ${tier} tenant`})`,
        });
    }
  }

  const counts: Record<string, number> = { records: inventory.records.size };
  for (const r of managed) counts[r.kind] = (counts[r.kind] ?? 0) + 1;
  return { lost, duplicates, orphans, counts };
}

/** What a tenant of `tier` should own and does not. */
function missing(tier: Tier, owned: readonly Resource[], names: Pick<AuditNames, "advancedCluster">): string[] {
  const out: string[] = [];
  const kinds = OWNS[tier];
  if (kinds.size === 0) return out;
  const cluster = tier === "premium" ? owned.find((r) => r.kind === "cluster")?.name : names.advancedCluster;
  if (tier === "premium" && cluster === undefined) out.push("no cluster");
  for (const app of APP_NAMES) {
    const ok = owned.some((r) => r.kind === "service" && r.active === true && r.tags["app"] === app && r.cluster === cluster);
    if (!ok) out.push(`no ACTIVE ${app} service${cluster ? ` in ${cluster}` : ""}`);
  }
  if (!owned.some((r) => r.kind === "stack" && r.complete === true)) out.push("no complete stack");
  if (!owned.some((r) => r.kind === "rule" && r.action === "forward")) out.push("no forwarding listener rule");
  if (!owned.some((r) => r.kind === "namespace")) out.push("no namespace");
  if (!owned.some((r) => r.kind === "userPool")) out.push("no user pool");
  return out;
}

export function totals(report: AuditReport): { lost: number; duplicates: number; orphans: number; unmanagedWrites: number } {
  return {
    lost: report.lost.length,
    duplicates: report.duplicates.length,
    orphans: report.orphans.length,
    unmanagedWrites: report.unmanagedWrites.length,
  };
}

// ---- look-alikes ----

/** A resource without managed-by, named or tagged like a tenant's, that no controller may write. */
export interface Lookalike {
  readonly kind: ResourceKind;
  /** What identifies it for a snapshot: ARN, id, or cluster/name. */
  readonly id: string;
  readonly name: string;
  readonly cluster?: string;
  /** The tenant id it imitates. */
  readonly shadows: string;
}

export interface LookalikeTargets {
  /** Ids with no record (or an invalid one): resources named for them lie in the controller's path. */
  readonly ghosts: readonly string[];
  /** A valid advanced tenant of the run: a service named like its own, elsewhere, and one tagged for it but not managed. */
  readonly neighbour: string;
}

/**
 * Seeds look-alikes: for each kind the controller owns, one that a
 * controller matching by name or by tenant-id tag alone would take for its
 * own. Created through the same endpoint, before any controller runs.
 */
export async function seedLookalikes(clients: AuditClients, names: AuditNames, targets: LookalikeTargets): Promise<Lookalike[]> {
  const prefix = names.namePrefix;
  const ghost = (i: number) => targets.ghosts[i % targets.ghosts.length] ?? "ghost";
  const out: Lookalike[] = [];
  const td = await clients.ecs.send(
    new RegisterTaskDefinitionCommand({
      family: "chaos-handmade",
      containerDefinitions: [{ name: "web", image: "nginx:1.27", memory: 128 }],
      requiresCompatibilities: ["FARGATE"],
      networkMode: "awsvpc",
      cpu: "256",
      memory: "512",
    }),
  );
  const taskDefinition = td.taskDefinition?.taskDefinitionArn ?? "chaos-handmade";
  const net = { awsvpcConfiguration: { subnets: [...names.subnets], securityGroups: [...names.securityGroups] } };
  const service = async (cluster: string, name: string, shadows: string, tags: Record<string, string>) => {
    await clients.ecs.send(
      new CreateServiceCommand({
        cluster,
        serviceName: name,
        taskDefinition,
        desiredCount: 1,
        launchType: "FARGATE",
        networkConfiguration: net,
        ...(Object.keys(tags).length > 0 ? { tags: Object.entries(tags).map(([key, value]) => ({ key, value })) } : {}),
      }),
    );
    out.push({ kind: "service", id: `${cluster}/${name}`, name, cluster, shadows });
  };
  const g0 = ghost(0);
  const g1 = ghost(1);
  // Named exactly as a ghost tenant's orders service would be, untagged.
  await service(names.advancedCluster, serviceName(prefix, g0, "orders"), g0, {});
  // Tagged for a ghost tenant, and named so, but not managed: an inventory by tenant-id alone would offboard it.
  await service(names.advancedCluster, serviceName(prefix, g1, "users"), g1, { [TENANT_ID]: g1, app: "users", tier: "advanced" });
  // A live tenant's name, in the pool cluster, untagged.
  await service(names.poolCluster, serviceName(prefix, targets.neighbour, "orders"), targets.neighbour, {});
  // Tagged for a live tenant and app by someone else.
  await service(names.advancedCluster, `${serviceName(prefix, targets.neighbour, "orders")}-legacy`, targets.neighbour, {
    [MANAGED_BY]: "someone-else",
    [TENANT_ID]: targets.neighbour,
    app: "orders",
  });

  const g2 = ghost(2);
  const cluster = premiumClusterName(prefix, g2);
  const created = await clients.ecs.send(new CreateClusterCommand({ clusterName: cluster, tags: [{ key: TENANT_ID, value: g2 }] }));
  out.push({ kind: "cluster", id: created.cluster?.clusterArn ?? cluster, name: cluster, shadows: g2 });

  const g3 = ghost(3);
  const stack = stackName(prefix, g3);
  const s = await clients.cloudformation.send(
    new CreateStackCommand({
      StackName: stack,
      TemplateBody: JSON.stringify({ Resources: { Handle: { Type: "AWS::CloudFormation::WaitConditionHandle" } } }),
      Tags: [{ Key: TENANT_ID, Value: g3 }],
    }),
  );
  out.push({ kind: "stack", id: s.StackId ?? stack, name: stack, shadows: g3 });

  const g4 = ghost(4);
  const rule = await clients.elbv2.send(
    new CreateRuleCommand({
      ListenerArn: names.listenerArn,
      Priority: 49_000,
      Conditions: [{ Field: "http-header", HttpHeaderConfig: { HttpHeaderName: "tenantPath", Values: [g4] } }],
      Actions: [
        { Type: "fixed-response", FixedResponseConfig: { StatusCode: "200", ContentType: "text/plain", MessageBody: "hand-made" } },
      ],
      Tags: [{ Key: TENANT_ID, Value: g4 }],
    }),
  );
  const ruleArn = rule.Rules?.[0]?.RuleArn ?? "";
  out.push({ kind: "rule", id: ruleArn, name: `priority 49000 tenantPath=${g4}`, shadows: g4 });

  const g5 = ghost(5);
  const nsName = tenantNamespaceName(prefix, g5);
  await clients.servicediscovery.send(
    new CreateHttpNamespaceCommand({ Name: nsName, CreatorRequestId: `chaos-${nsName}`, Tags: [{ Key: TENANT_ID, Value: g5 }] }),
  );
  const ns = await findNamespace(clients.servicediscovery, nsName);
  out.push({ kind: "namespace", id: ns ?? nsName, name: nsName, shadows: g5 });

  const g6 = ghost(6);
  const poolName = tenantPoolName(prefix, g6);
  const pool = await clients.cognito.send(new CreateUserPoolCommand({ PoolName: poolName, UserPoolTags: { [TENANT_ID]: g6 } }));
  out.push({ kind: "userPool", id: pool.UserPool?.Id ?? poolName, name: poolName, shadows: g6 });
  return out;
}

async function findNamespace(sd: ServiceDiscoveryClient, name: string): Promise<string | undefined> {
  for (let attempt = 0; attempt < 50; attempt++) {
    let token: string | undefined;
    do {
      const page = await sd.send(new ListNamespacesCommand({ MaxResults: 100, ...(token ? { NextToken: token } : {}) }));
      const hit = page.Namespaces?.find((n) => n.Name === name);
      if (hit?.Id !== undefined) return hit.Id;
      token = page.NextToken;
    } while (token !== undefined);
    await new Promise((r) => setTimeout(r, 100));
  }
  return undefined;
}

/**
 * The state of each look-alike as a canonical string: what a write would
 * change (counts, task definition, deployments, tags, priority, actions,
 * status, last update), not what time alone changes (running counts).
 * Absent from the map: the resource is gone.
 */
export async function snapshotLookalikes(clients: AuditClients, lookalikes: readonly Lookalike[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const l of lookalikes) {
    const state = await lookalikeState(clients, l);
    if (state !== undefined) out.set(l.id, JSON.stringify(state));
  }
  return out;
}

async function lookalikeState(clients: AuditClients, l: Lookalike): Promise<unknown> {
  switch (l.kind) {
    case "service": {
      const res = await clients.ecs.send(new DescribeServicesCommand({ cluster: l.cluster, services: [l.name], include: ["TAGS"] }));
      const s = res.services?.[0];
      if (s === undefined) return undefined;
      return {
        status: s.status,
        desiredCount: s.desiredCount,
        taskDefinition: s.taskDefinition,
        deployments: (s.deployments ?? []).map((d) => [d.id, d.taskDefinition, d.desiredCount]),
        tags: sortedTags(ecsTags(s.tags)),
      };
    }
    case "cluster": {
      const res = await clients.ecs.send(new DescribeClustersCommand({ clusters: [l.id], include: ["TAGS"] }));
      const c = res.clusters?.[0];
      return c === undefined ? undefined : { status: c.status, tags: sortedTags(ecsTags(c.tags)) };
    }
    case "stack": {
      try {
        const res = await clients.cloudformation.send(new DescribeStacksCommand({ StackName: l.id }));
        const s = res.Stacks?.[0];
        return s === undefined
          ? undefined
          : {
              status: s.StackStatus,
              updated: s.LastUpdatedTime?.toISOString(),
              tags: (s.Tags ?? []).map((t) => `${t.Key}=${t.Value}`).sort(),
            };
      } catch (err) {
        if (err instanceof Error && /does not exist/.test(err.message)) return undefined;
        throw err;
      }
    }
    case "rule": {
      try {
        const res = await clients.elbv2.send(new DescribeRulesCommand({ RuleArns: [l.id] }));
        const r = res.Rules?.[0];
        if (r === undefined) return undefined;
        const tags = await clients.elbv2.send(new DescribeTagsCommand({ ResourceArns: [l.id] }));
        return {
          priority: r.Priority,
          actions: r.Actions,
          conditions: r.Conditions,
          tags: (tags.TagDescriptions?.[0]?.Tags ?? []).map((t) => `${t.Key}=${t.Value}`).sort(),
        };
      } catch (err) {
        if (err instanceof Error && err.name === "RuleNotFoundException") return undefined;
        throw err;
      }
    }
    case "namespace": {
      try {
        const res = await clients.servicediscovery.send(new GetNamespaceCommand({ Id: l.id }));
        const ns = res.Namespace;
        if (ns === undefined) return undefined;
        const tags = await clients.servicediscovery.send(new ListTagsForResourceCommand({ ResourceARN: ns.Arn ?? "" }));
        return { name: ns.Name, description: ns.Description, tags: (tags.Tags ?? []).map((t) => `${t.Key}=${t.Value}`).sort() };
      } catch (err) {
        if (err instanceof Error && err.name === "NamespaceNotFound") return undefined;
        throw err;
      }
    }
    case "userPool": {
      try {
        const res = await clients.cognito.send(new DescribeUserPoolCommand({ UserPoolId: l.id }));
        const p = res.UserPool;
        if (p === undefined) return undefined;
        const clientsRes = await clients.cognito.send(new ListUserPoolClientsCommand({ UserPoolId: l.id, MaxResults: 60 }));
        const groups = await clients.cognito.send(new ListGroupsCommand({ UserPoolId: l.id }));
        return {
          name: p.Name,
          modified: p.LastModifiedDate?.toISOString(),
          tags: sortedTags(p.UserPoolTags ?? {}),
          clients: (clientsRes.UserPoolClients ?? []).map((c) => c.ClientName).sort(),
          groups: (groups.Groups ?? []).map((g) => g.GroupName).sort(),
        };
      } catch (err) {
        if (err instanceof Error && err.name === "ResourceNotFoundException") return undefined;
        throw err;
      }
    }
  }
}

function sortedTags(tags: Readonly<Record<string, string>>): string[] {
  return Object.entries(tags)
    .map(([k, v]) => `${k}=${v}`)
    .sort();
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
