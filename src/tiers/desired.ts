import { createHash } from "node:crypto";
import { resolveApp, type AppEnvironmentName, type Catalogue, type ResolvedApp } from "../apps/catalogue.js";
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
  type AppContext,
  type ContainerSpec,
  type DesiredServiceConnect,
  type DesiredService,
  type DesiredState,
  type DesiredTaskDefinition,
  type Footprint,
  type NamespaceInfo,
  type PoolInfra,
  type RuntimePlatform,
  type SiloInfra,
  type Tags,
} from "./model.js";
import { poolServiceName, poolTaskDefinitionFamily, premiumClusterName, serviceName, taskDefinitionFamily, tenantHash } from "./naming.js";

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
 * - The container log group comes with the tenant's infrastructure stack, the
 *   Service Connect namespace and the identity provider with the AppContext;
 *   until they exist they are left out, since naming a namespace, log group
 *   or user pool that does not exist would make every task or request fail.
 *   Adding them later changes the content hashes (or, for Service Connect,
 *   the services), which is one deliberate rollout.
 * - Given an AppContext, each container gets exactly the variables its
 *   catalogue entry asks for (the reference images' by default) and nothing
 *   else: TENANT_ID, TIER and APP are read by no reference image, so they
 *   are gone, and a pooled image learns the tenant from the caller's token.
 *   Without one (callers not yet passing it) the containers keep the earlier
 *   variables: TENANT_ID, the tables as ORDERS_TABLE/PRODUCTS_TABLE, TIER, APP.
 * - Every task definition states runtimePlatform X86_64/LINUX (the reference
 *   images are built for x86) and names its port with appProtocol http, which
 *   Service Connect needs; both are in the content hash.
 */

export type TierSettings = Pick<Config, "namePrefix" | "poolCluster" | "advancedCluster" | "subnets" | "securityGroups"> &
  Partial<Pick<Config, "assignPublicIp">>;

/**
 * The reconcile key of the pooled services. It contains ":", which a tenant
 * id cannot, so it never names a tenant.
 */
export const POOL_KEY = ":pool";

/** Tag naming the SBT registration, so an offboarding after the item is deleted can still echo it. */
export const TENANT_REGISTRATION_ID_KEY = "tenant-registration-id";

/** The isolation model a container is told about in TIER (see the module comment). */
export type Isolation = "pool" | "silo";

/** The platform every task definition states (see the module comment). */
const RUNTIME_PLATFORM: RuntimePlatform = { cpuArchitecture: "X86_64", operatingSystemFamily: "LINUX" };

/**
 * REQUEST_TAG_KEYS_MAPPING_ATTRIBUTES: the token vending machine tags the
 * assumed role's session `tenant=<the token's custom:tenantId>`.
 */
export const REQUEST_TAG_KEYS_MAPPING = JSON.stringify({ tenant: "custom:tenantId" });

/**
 * A silo tenant's Cloud Map namespace. It ends up in DNS names
 * (`orders-api.<namespace>.sc`), which ignore case and allow no "_", so it
 * carries the hash of the exact tenant id after a readable lowercase slice.
 * Longest: 10 + 1 + 38 + 1 + 12 = 62, one DNS label.
 */
export function tenantNamespaceName(prefix: string, tenantId: string): string {
  const readable = tenantId
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .slice(0, 38)
    .replace(/^-+|-+$/g, "");
  return `${prefix}-${readable === "" ? "x" : readable}-${tenantHash(tenantId)}`;
}

/** The pool's namespace. A tenant's always ends in a 12-character hash, which "pool" is not. */
export function poolNamespaceName(prefix: string): string {
  return `${prefix}-pool`;
}

export function desiredForTenant(
  spec: TenantSpec,
  catalogue: Catalogue,
  settings: TierSettings,
  infra?: SiloInfra,
  context?: AppContext,
): DesiredState {
  if (!spec.sbtaws_active) return NOTHING;
  switch (spec.tier) {
    case "basic":
      // Basic tenants are served by the pool (desiredPool); nothing in ECS is theirs alone.
      return NOTHING;
    case "advanced":
      return siloed(spec, catalogue, settings, settings.advancedCluster, [], infra, context);
    case "premium": {
      const cluster = premiumClusterName(settings.namePrefix, spec.tenantId);
      return siloed(spec, catalogue, settings, cluster, [{ name: cluster, tags: tenantTags(spec, "premium") }], infra, context);
    }
  }
}

function siloed(
  spec: TenantSpec,
  catalogue: Catalogue,
  settings: TierSettings,
  cluster: string,
  clusters: DesiredState["clusters"],
  infra: SiloInfra | undefined,
  context: AppContext | undefined,
): DesiredState {
  const prefix = settings.namePrefix;
  const apps = APP_NAMES.map((name) => resolveApp(catalogue, name, spec.apps[name]));
  const legacy = {
    TENANT_ID: spec.tenantId,
    ...(infra ? { ORDERS_TABLE: infra.ordersTableName, PRODUCTS_TABLE: infra.productsTableName } : {}),
  };
  const env = (app: ResolvedApp) =>
    context ? environmentOf(app, context, infra, context.tenantAccessRoleArn) : legacyEnvironment(legacy, "silo", app);
  const wiring: Wiring | undefined = infra && {
    taskRoleArn: infra.taskRoleArn,
    executionRoleArn: infra.executionRoleArn,
    logGroup: infra.logGroupName,
  };
  const taskDefinitions = apps.map((app) =>
    taskDefinition(
      taskDefinitionFamily(prefix, spec.tenantId, app.name),
      app,
      env(app),
      { ...tenantTags(spec, spec.tier), [APP_KEY]: app.name },
      wiring,
    ),
  );
  const namespace = context?.namespace;
  const services = apps.map((app): DesiredService => ({
    cluster,
    name: serviceName(prefix, spec.tenantId, app.name),
    app: app.name,
    taskDefinitionFamily: taskDefinitionFamily(prefix, spec.tenantId, app.name),
    // A suspended tenant keeps its services, stack and data, with no task running.
    desiredCount: spec.suspended ? 0 : app.desiredCount,
    subnets: settings.subnets,
    securityGroups: settings.securityGroups,
    assignPublicIp: settings.assignPublicIp ?? "DISABLED",
    // The rproxy is the tenant's entry point: the ALB's tenant rule forwards to it.
    ...(infra && app.name === "rproxy"
      ? { loadBalancer: { targetGroupArn: infra.targetGroupArn, containerName: app.name, containerPort: app.containerPort } }
      : {}),
    ...(namespace ? { serviceConnect: serviceConnectOf(app, namespace, infra?.logGroupName) } : {}),
    tags: { ...tenantTags(spec, spec.tier), [APP_KEY]: app.name },
  }));
  return { clusters, taskDefinitions, services };
}

/** The pooled services that serve every basic tenant: once, in the pool cluster, with no tenant-id tag. */
export function desiredPool(catalogue: Catalogue, settings: TierSettings, infra?: PoolInfra, context?: AppContext): DesiredState {
  const prefix = settings.namePrefix;
  const apps = APP_NAMES.map((name) => resolveApp(catalogue, name, undefined));
  const tags = (app: AppName): Tags => ({ [MANAGED_BY_KEY]: MANAGED_BY_VALUE, [TIER_KEY]: "basic", [APP_KEY]: app });
  // Pooled services reach tenant data only through the tenant-access role,
  // assumed per request with the tenant as a session tag.
  const legacy = infra
    ? { ORDERS_TABLE: infra.ordersTableName, PRODUCTS_TABLE: infra.productsTableName, IAM_ROLE_ARN: infra.tenantAccessRoleArn }
    : {};
  const env = (app: ResolvedApp) =>
    context
      ? environmentOf(app, context, infra, context.tenantAccessRoleArn ?? infra?.tenantAccessRoleArn)
      : legacyEnvironment(legacy, "pool", app);
  const wiring: Wiring | undefined = infra && {
    taskRoleArn: infra.taskRoleArn,
    executionRoleArn: infra.executionRoleArn,
    logGroup: infra.logGroupName,
  };
  const namespace = context?.namespace;
  return {
    clusters: [],
    taskDefinitions: apps.map((app) => taskDefinition(poolTaskDefinitionFamily(prefix, app.name), app, env(app), tags(app.name), wiring)),
    services: apps.map((app) => ({
      cluster: settings.poolCluster,
      name: poolServiceName(prefix, app.name),
      app: app.name,
      taskDefinitionFamily: poolTaskDefinitionFamily(prefix, app.name),
      desiredCount: app.desiredCount,
      subnets: settings.subnets,
      securityGroups: settings.securityGroups,
      assignPublicIp: settings.assignPublicIp ?? "DISABLED",
      // The pool's rproxy serves every tenant without a rule of its own (the catch-all rule).
      ...(infra && app.name === "rproxy"
        ? { loadBalancer: { targetGroupArn: infra.targetGroupArn, containerName: app.name, containerPort: app.containerPort } }
        : {}),
      ...(namespace ? { serviceConnect: serviceConnectOf(app, namespace, infra?.logGroupName) } : {}),
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
    owner: tenantId,
    serviceLocations: clusters.map((cluster) => ({ cluster, serviceNames })),
    ownedClusters: shared.has(premium) ? [] : [premium],
    taskDefinitionFamilies: APP_NAMES.map((app) => taskDefinitionFamily(prefix, tenantId, app)),
  };
}

export function footprintForPool(settings: TierSettings): Footprint {
  const prefix = settings.namePrefix;
  return {
    owner: POOL_KEY,
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
    ...(spec.tenantRegistrationId !== undefined && tagValue(spec.tenantRegistrationId) !== ""
      ? { [TENANT_REGISTRATION_ID_KEY]: tagValue(spec.tenantRegistrationId) }
      : {}),
  };
}

/**
 * A value taken from a record, made fit for an AWS tag: at most 256
 * characters of letters, digits, spaces and _ . : / = + - @. A record's
 * registration id is SBT's to choose; refused tag values would make every
 * write for the tenant fail, so other characters become "_". The tag is only
 * a fallback for echoing it (the record and the removal log keep it whole).
 */
export function tagValue(value: string): string {
  return value.replace(/[^\p{L}\p{N} _.:/=+\-@]/gu, "_").slice(0, 256);
}

interface Wiring {
  readonly taskRoleArn: string;
  readonly executionRoleArn: string;
  readonly logGroup: string;
}

/**
 * The standard variables an app asks for, each with its value where it is
 * known (see AppContext for what may be missing). Sorted by name, so the
 * content hash does not depend on the catalogue's order.
 */
function environmentOf(
  app: ResolvedApp,
  context: AppContext,
  infra: SiloInfra | undefined,
  roleArn: string | undefined,
): Readonly<Record<string, string>> {
  const identity = context.identity;
  const tables = infra && { orders: infra.ordersTableName, products: infra.productsTableName };
  const values: Readonly<Record<AppEnvironmentName, string | undefined>> = {
    TABLE_NAME: app.storage === "none" ? undefined : tables?.[app.storage],
    COGNITO_USER_POOL_ID: identity?.userPoolId,
    COGNITO_CLIENT_ID: identity?.appClientId,
    // With no pool to name, the region alone would only build a broken issuer.
    COGNITO_REGION: identity && context.region,
    AWS_REGION: context.region,
    AWS_ACCOUNT_ID: context.accountId,
    IAM_ROLE_ARN: roleArn,
    REQUEST_TAG_KEYS_MAPPING_ATTRIBUTES: REQUEST_TAG_KEYS_MAPPING,
    // The shape the reference's tenant-service stack writes: issuer, then audience (the app client).
    IDP_DETAILS: identity && JSON.stringify({ issuer: identity.issuer, audience: identity.appClientId }),
    NAMESPACE: context.namespace?.name,
  };
  const out: Record<string, string> = {};
  for (const name of app.environment) {
    const value = values[name];
    if (value !== undefined) out[name] = value;
  }
  return out;
}

/** The variables containers got before AppContext existed (see the module comment). */
function legacyEnvironment(
  env: Readonly<Record<string, string>>,
  isolation: Isolation,
  app: ResolvedApp,
): Readonly<Record<string, string>> {
  return { ...env, TIER: isolation, APP: app.name };
}

/**
 * The app's part in its namespace: a server under its discovery name on its
 * container port (named after the app), or a client only.
 */
function serviceConnectOf(app: ResolvedApp, namespace: NamespaceInfo, logGroup: string | undefined): DesiredServiceConnect {
  const role = app.serviceConnect;
  return {
    namespace: { name: namespace.name, arn: namespace.arn },
    servers:
      role === "client"
        ? []
        : [
            {
              portName: app.name,
              discoveryName: role.discoveryName,
              port: app.containerPort,
              dnsName: `${role.discoveryName}.${namespace.name}.sc`,
            },
          ],
    // The proxy's logs go where the app's do, apart by stream prefix.
    ...(logGroup !== undefined ? { log: { group: logGroup, streamPrefix: `${app.name}-sc` } } : {}),
  };
}

function taskDefinition(
  family: string,
  app: ResolvedApp,
  env: Readonly<Record<string, string>>,
  tags: Tags,
  wiring?: Wiring,
): DesiredTaskDefinition {
  const container: ContainerSpec = {
    name: app.name,
    image: app.image,
    essential: true,
    ...(wiring ? { logGroup: wiring.logGroup } : {}),
    // Named after the app: Service Connect refers to the port by this name.
    portMappings: [{ name: app.name, containerPort: app.containerPort, protocol: "tcp", appProtocol: "http" }],
    environment: Object.entries(env)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([name, value]) => ({ name, value })),
  };
  const content = {
    family,
    app: app.name,
    cpu: app.cpu,
    memory: app.memory,
    runtimePlatform: RUNTIME_PLATFORM,
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
