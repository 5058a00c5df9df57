import { createHash } from "node:crypto";
import { resolveApp, type Catalogue, type ResolvedApp } from "../apps/catalogue.js";
import type { Config } from "../config.js";
import { APP_NAMES, canonicalJson, type AppName, type TenantSpec, type Tier } from "../tenants/record.js";
import {
  APP_KEY,
  CONTENT_HASH_KEY,
  MANAGED_BY_KEY,
  MANAGED_BY_VALUE,
  NOTHING,
  TENANT_ID_KEY,
  TIER_KEY,
  type ContainerSpec,
  type DesiredService,
  type DesiredState,
  type DesiredTaskDefinition,
  type Footprint,
  type PoolInfra,
  type SiloInfra,
  type Tags,
} from "./model.js";
import { poolServiceName, poolTaskDefinitionFamily, premiumClusterName, serviceName, taskDefinitionFamily } from "./naming.js";

/**
 * What each tier wants to exist in ECS, as pure functions of the tenant spec,
 * the app catalogue and the settings. The diff decides which calls that takes.
 *
 * Decisions:
 * - A task definition's content does not depend on desiredCount (that lives
 *   on the service), so scaling never registers a revision.
 * - Nor does it depend on advanced vs premium: both are siloed the same way
 *   (dedicated services, the tenant's own tables), and the family name is the
 *   same in both, so a move between them reuses the registered revisions and
 *   only recreates the services. The container therefore gets TIER=silo (or
 *   TIER=pool in the pool), the isolation model it must code against; the
 *   record's tier is in the tags. A revision's `tier` tag records the tier at
 *   registration and is not rewritten by a move.
 * - Service Connect (a namespace per tenant) and the container log group come
 *   with the tenant's infrastructure stack; until that exists they are left
 *   out, since naming a namespace or log group that does not exist would make
 *   every task fail to start. Adding them later changes every content hash,
 *   which is one deliberate fleet rollout.
 */

export type TierSettings = Pick<Config, "namePrefix" | "poolCluster" | "advancedCluster" | "subnets" | "securityGroups">;

/**
 * The reconcile key of the pooled services. It contains ":", which a tenant
 * id cannot, so it never names a tenant.
 */
export const POOL_KEY = ":pool";

/** Tag naming the SBT registration, so an offboarding after the item is deleted can still echo it. */
export const TENANT_REGISTRATION_ID_KEY = "tenant-registration-id";

/** The isolation model a container is told about in TIER (see the module comment). */
export type Isolation = "pool" | "silo";

export function desiredForTenant(spec: TenantSpec, catalogue: Catalogue, settings: TierSettings, infra?: SiloInfra): DesiredState {
  if (!spec.sbtaws_active) return NOTHING;
  switch (spec.tier) {
    case "basic":
      // Basic tenants are served by the pool (desiredPool); nothing in ECS is theirs alone.
      return NOTHING;
    case "advanced":
      return siloed(spec, catalogue, settings, settings.advancedCluster, [], infra);
    case "premium": {
      const cluster = premiumClusterName(settings.namePrefix, spec.tenantId);
      return siloed(spec, catalogue, settings, cluster, [{ name: cluster, tags: tenantTags(spec, "premium") }], infra);
    }
  }
}

function siloed(spec: TenantSpec, catalogue: Catalogue, settings: TierSettings, cluster: string, clusters: DesiredState["clusters"], infra: SiloInfra | undefined): DesiredState {
  const prefix = settings.namePrefix;
  const apps = APP_NAMES.map((name) => resolveApp(catalogue, name, spec.apps[name]));
  const env = { TENANT_ID: spec.tenantId, ...(infra ? { ORDERS_TABLE: infra.ordersTableName, PRODUCTS_TABLE: infra.productsTableName } : {}) };
  const wiring: Wiring | undefined = infra && { taskRoleArn: infra.taskRoleArn, executionRoleArn: infra.executionRoleArn, logGroup: infra.logGroupName };
  const taskDefinitions = apps.map((app) =>
    taskDefinition(taskDefinitionFamily(prefix, spec.tenantId, app.name), app, "silo", env, { ...tenantTags(spec, spec.tier), [APP_KEY]: app.name }, wiring),
  );
  const services = apps.map(
    (app): DesiredService => ({
      cluster,
      name: serviceName(prefix, spec.tenantId, app.name),
      app: app.name,
      taskDefinitionFamily: taskDefinitionFamily(prefix, spec.tenantId, app.name),
      // A suspended tenant keeps its services, stack and data, with no task running.
      desiredCount: spec.suspended ? 0 : app.desiredCount,
      subnets: settings.subnets,
      securityGroups: settings.securityGroups,
      // The rproxy is the tenant's entry point: the ALB's tenant rule forwards to it.
      ...(infra && app.name === "rproxy" ? { loadBalancer: { targetGroupArn: infra.targetGroupArn, containerName: app.name, containerPort: app.containerPort } } : {}),
      tags: { ...tenantTags(spec, spec.tier), [APP_KEY]: app.name },
    }),
  );
  return { clusters, taskDefinitions, services };
}

/** The pooled services that serve every basic tenant: once, in the pool cluster, with no tenant-id tag. */
export function desiredPool(catalogue: Catalogue, settings: TierSettings, infra?: PoolInfra): DesiredState {
  const prefix = settings.namePrefix;
  const apps = APP_NAMES.map((name) => resolveApp(catalogue, name, undefined));
  const tags = (app: AppName): Tags => ({ [MANAGED_BY_KEY]: MANAGED_BY_VALUE, [TIER_KEY]: "basic", [APP_KEY]: app });
  // Pooled services reach tenant data only through the tenant-access role,
  // assumed per request with the tenant as a session tag.
  const env = infra ? { ORDERS_TABLE: infra.ordersTableName, PRODUCTS_TABLE: infra.productsTableName, IAM_ROLE_ARN: infra.tenantAccessRoleArn } : {};
  const wiring: Wiring | undefined = infra && { taskRoleArn: infra.taskRoleArn, executionRoleArn: infra.executionRoleArn, logGroup: infra.logGroupName };
  return {
    clusters: [],
    taskDefinitions: apps.map((app) => taskDefinition(poolTaskDefinitionFamily(prefix, app.name), app, "pool", env, tags(app.name), wiring)),
    services: apps.map((app) => ({
      cluster: settings.poolCluster,
      name: poolServiceName(prefix, app.name),
      app: app.name,
      taskDefinitionFamily: poolTaskDefinitionFamily(prefix, app.name),
      desiredCount: app.desiredCount,
      subnets: settings.subnets,
      securityGroups: settings.securityGroups,
      // The pool's rproxy serves every tenant without a rule of its own (the catch-all rule).
      ...(infra && app.name === "rproxy" ? { loadBalancer: { targetGroupArn: infra.targetGroupArn, containerName: app.name, containerPort: app.containerPort } } : {}),
      tags: tags(app.name),
    })),
  };
}

/**
 * Every place a tenant's resources may be, whatever its tier now: its
 * services in the advanced cluster and in its premium cluster, that cluster,
 * and its families. A shared cluster is never listed as owned, even if
 * configured under a name that looks like a premium cluster's.
 */
export function footprintForTenant(tenantId: string, settings: TierSettings): Footprint {
  const prefix = settings.namePrefix;
  const premium = premiumClusterName(prefix, tenantId);
  const serviceNames = APP_NAMES.map((app) => serviceName(prefix, tenantId, app));
  const shared = new Set([settings.advancedCluster, settings.poolCluster]);
  const clusters = [...new Set([settings.advancedCluster, premium])];
  return {
    serviceLocations: clusters.map((cluster) => ({ cluster, serviceNames })),
    ownedClusters: shared.has(premium) ? [] : [premium],
    taskDefinitionFamilies: APP_NAMES.map((app) => taskDefinitionFamily(prefix, tenantId, app)),
  };
}

export function footprintForPool(settings: TierSettings): Footprint {
  const prefix = settings.namePrefix;
  return {
    serviceLocations: [{ cluster: settings.poolCluster, serviceNames: APP_NAMES.map((app) => poolServiceName(prefix, app)) }],
    ownedClusters: [],
    taskDefinitionFamilies: APP_NAMES.map((app) => poolTaskDefinitionFamily(prefix, app)),
  };
}

function tenantTags(spec: TenantSpec, tier: Tier): Tags {
  return {
    [MANAGED_BY_KEY]: MANAGED_BY_VALUE,
    [TENANT_ID_KEY]: spec.tenantId,
    [TIER_KEY]: tier,
    ...(spec.tenantRegistrationId !== undefined && spec.tenantRegistrationId !== "" ? { [TENANT_REGISTRATION_ID_KEY]: spec.tenantRegistrationId } : {}),
  };
}

interface Wiring {
  readonly taskRoleArn: string;
  readonly executionRoleArn: string;
  readonly logGroup: string;
}

function taskDefinition(family: string, app: ResolvedApp, isolation: Isolation, env: Readonly<Record<string, string>>, tags: Tags, wiring?: Wiring): DesiredTaskDefinition {
  const container: ContainerSpec = {
    name: app.name,
    image: app.image,
    essential: true,
    ...(wiring ? { logGroup: wiring.logGroup } : {}),
    // Named after the app so Service Connect can refer to it by that name later.
    portMappings: [{ name: app.name, containerPort: app.containerPort, protocol: "tcp" }],
    environment: Object.entries({ ...env, TIER: isolation, APP: app.name })
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, value]) => ({ name, value })),
  };
  const content = {
    family,
    app: app.name,
    cpu: app.cpu,
    memory: app.memory,
    containers: [container],
    ...(wiring ? { taskRoleArn: wiring.taskRoleArn, executionRoleArn: wiring.executionRoleArn } : {}),
  };
  const contentHash = hashContent(content);
  return { ...content, tags: { ...tags, [CONTENT_HASH_KEY]: contentHash }, contentHash };
}

/** Hash of a task definition's content (everything but tags); equal content gives an equal hash. */
export function hashContent(content: Omit<DesiredTaskDefinition, "tags" | "contentHash">): string {
  return createHash("sha256").update(canonicalJson(content)).digest("hex").slice(0, 16);
}
