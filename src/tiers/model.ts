import type { AppName } from "../tenants/record.js";

/**
 * The data the pure core works on: what should exist (Desired*), what does
 * exist (Observed*), and the calls that turn one into the other (Action).
 * Providers translate these to and from AWS shapes; nothing here imports the SDK.
 */
export type Tags = Readonly<Record<string, string>>;

export const MANAGED_BY_KEY = "managed-by";
export const MANAGED_BY_VALUE = "ecs-tenant-operator";
export const TENANT_ID_KEY = "tenant-id";
export const TIER_KEY = "tier";
export const APP_KEY = "app";
/** Tag on a task definition holding the hash of its content (DesiredTaskDefinition.contentHash). */
export const CONTENT_HASH_KEY = "content-hash";

export function isManaged(tags: Tags): boolean {
  return tags[MANAGED_BY_KEY] === MANAGED_BY_VALUE;
}

export interface PortMappingSpec {
  /** Service Connect refers to the port by this name (ServiceConnectServer.portName). */
  readonly name: string;
  readonly containerPort: number;
  readonly protocol: "tcp";
  /** Service Connect needs it to proxy at layer 7 (metrics, retries); absent is plain TCP. */
  readonly appProtocol?: "http" | "http2" | "grpc";
}

export interface ContainerSpec {
  readonly name: string;
  readonly image: string;
  readonly essential: boolean;
  readonly portMappings: readonly PortMappingSpec[];
  readonly environment: readonly { readonly name: string; readonly value: string }[];
  readonly logGroup?: string;
}

/** Fargate's platform; stated rather than left to the default so an image built for x86 never lands on ARM. */
export interface RuntimePlatform {
  readonly cpuArchitecture: "X86_64" | "ARM64";
  readonly operatingSystemFamily: "LINUX";
}

export interface DesiredTaskDefinition {
  readonly family: string;
  readonly app: AppName;
  readonly cpu: string;
  readonly memory: string;
  readonly runtimePlatform?: RuntimePlatform;
  readonly containers: readonly ContainerSpec[];
  readonly taskRoleArn?: string;
  readonly executionRoleArn?: string;
  readonly tags: Tags;
  /** Hash of everything above except tags; equal hash means no new revision is needed. */
  readonly contentHash: string;
}

export interface DesiredService {
  readonly cluster: string;
  readonly name: string;
  readonly app: AppName;
  readonly taskDefinitionFamily: string;
  readonly desiredCount: number;
  readonly subnets: readonly string[];
  readonly securityGroups: readonly string[];
  /** awsvpc assignPublicIp (ASSIGN_PUBLIC_IP): ENABLED only for subnets that reach ECR and the AWS APIs through an internet gateway. */
  readonly assignPublicIp: "ENABLED" | "DISABLED";
  readonly loadBalancer?: { readonly targetGroupArn: string; readonly containerName: string; readonly containerPort: number };
  /** Absent: Service Connect off (no namespace yet, or none wanted). */
  readonly serviceConnect?: DesiredServiceConnect;
  readonly tags: Tags;
}

/** A Cloud Map HTTP namespace as the services refer to it. */
export interface NamespaceInfo {
  readonly name: string;
  readonly arn: string;
}

/** One port a service offers to the namespace: reachable at dnsName:port. */
export interface ServiceConnectServer {
  /** The container port mapping's name. */
  readonly portName: string;
  readonly discoveryName: string;
  readonly port: number;
  /** `<discoveryName>.<namespace>.sc`, the name the reference's nginx proxies to. */
  readonly dnsName: string;
}

/**
 * A service's Service Connect configuration. `servers` is empty for a
 * client-only service (it resolves the others but offers nothing).
 */
export interface DesiredServiceConnect {
  readonly namespace: NamespaceInfo;
  readonly servers: readonly ServiceConnectServer[];
  /** The proxy's own log stream, awslogs to this group (the provider adds the region). */
  readonly log?: { readonly group: string; readonly streamPrefix: string };
}

/**
 * Service Connect as ECS reports it on the PRIMARY deployment. The namespace
 * is whatever ECS echoes (an ARN, or the name it was given).
 */
export interface ObservedServiceConnect {
  readonly enabled: boolean;
  readonly namespace: string | undefined;
  readonly servers: readonly ServiceConnectServer[];
  readonly log: { readonly group: string; readonly streamPrefix: string } | undefined;
}

/**
 * What the app containers are told, beyond the tenant's infrastructure
 * stack (SiloInfra/PoolInfra): the account and region, the tenant-scoped role
 * the token vending machine assumes, the identity provider and the Service
 * Connect namespace. identity and namespace are left out until they exist;
 * naming one that does not would make every task or request fail.
 */
export interface AppContext {
  readonly region: string;
  readonly accountId: string;
  /** IAM_ROLE_ARN. For the pool @default PoolInfra.tenantAccessRoleArn; a silo tenant has none until its stack makes one. */
  readonly tenantAccessRoleArn?: string;
  readonly identity?: AppIdentity;
  readonly namespace?: NamespaceInfo;
}

export interface AppIdentity {
  readonly userPoolId: string;
  readonly appClientId: string;
  /** https://cognito-idp.<region>.amazonaws.com/<userPoolId> (IdentityPort.issuer). */
  readonly issuer: string;
}

export interface DesiredCluster {
  readonly name: string;
  readonly tags: Tags;
}

/**
 * A silo tenant's wiring from its infrastructure stack (roles, tables, log
 * group, target group). The reconcile creates no services before the stack is
 * ready; callers that plan ECS alone (basic tenants, offboarding) pass none.
 */
export interface SiloInfra {
  readonly taskRoleArn: string;
  readonly executionRoleArn: string;
  readonly ordersTableName: string;
  readonly productsTableName: string;
  readonly logGroupName: string;
  readonly targetGroupArn: string;
}

/**
 * The pool's wiring from the pool stack: like a silo tenant's, plus the
 * tenant-access role that pooled services assume with the tenant as a
 * session tag (ABAC on dynamodb:LeadingKeys), as the reference architecture does.
 */
export interface PoolInfra extends SiloInfra {
  readonly tenantAccessRoleArn: string;
}

/** Everything one reconcile key should own. An offboarded tenant desires nothing. */
export interface DesiredState {
  readonly clusters: readonly DesiredCluster[];
  readonly taskDefinitions: readonly DesiredTaskDefinition[];
  readonly services: readonly DesiredService[];
}

export const NOTHING: DesiredState = { clusters: [], taskDefinitions: [], services: [] };

/**
 * Every place a key's resources can be, whatever its current tier, so a tier
 * change or an offboarding finds what the old tier left (names are deterministic).
 */
export interface Footprint {
  /**
   * The reconcile key the footprint belongs to. A footprint with one may be
   * answered once from the resync's observation snapshot (docs/adr/0018).
   */
  readonly owner?: string;
  /** Clusters that may hold the key's services, each with the service names to look for. */
  readonly serviceLocations: readonly { readonly cluster: string; readonly serviceNames: readonly string[] }[];
  /** Clusters the key may own outright (premium). */
  readonly ownedClusters: readonly string[];
  readonly taskDefinitionFamilies: readonly string[];
}

export type ServiceStatus = "ACTIVE" | "DRAINING" | "INACTIVE";

export interface ObservedDeployment {
  readonly id: string;
  readonly status: "PRIMARY" | "ACTIVE" | "INACTIVE";
  readonly rolloutState: "COMPLETED" | "IN_PROGRESS" | "FAILED" | undefined;
  readonly rolloutStateReason: string | undefined;
  readonly desiredCount: number;
  readonly runningCount: number;
  readonly failedTasks: number;
  readonly taskDefinitionArn: string;
}

export interface ObservedService {
  readonly cluster: string;
  readonly name: string;
  readonly arn: string;
  readonly status: ServiceStatus;
  readonly desiredCount: number;
  readonly runningCount: number;
  readonly taskDefinitionArn: string;
  /** Content hash of the task definition the service runs, when known (tag content-hash). */
  readonly taskDefinitionContentHash: string | undefined;
  readonly deployments: readonly ObservedDeployment[];
  /** From the PRIMARY deployment; absent when ECS reports none (Service Connect never enabled). */
  readonly serviceConnect?: ObservedServiceConnect;
  readonly tags: Tags;
  /**
   * When ECS created it (ISO time), where ECS says. With the ARN it names one
   * incarnation of the name: re-creating after an INACTIVE one must not look
   * like a retry of the earlier create (its clientToken differs).
   */
  readonly createdAt?: string;
}

export interface ObservedCluster {
  readonly name: string;
  readonly arn: string;
  readonly status: string; // ACTIVE, PROVISIONING, DEPROVISIONING, FAILED, INACTIVE
  readonly tags: Tags;
}

export interface ObservedTaskDefinition {
  readonly family: string;
  readonly arn: string;
  readonly revision: number;
  readonly contentHash: string | undefined;
  readonly tags: Tags;
}

export interface ObservedState {
  /** Only clusters that exist and are not INACTIVE. */
  readonly clusters: readonly ObservedCluster[];
  /** Services found at the footprint's locations, INACTIVE ones included (they are gone, but tell deletion is done). */
  readonly services: readonly ObservedService[];
  /** Latest ACTIVE revision per family, where one exists. */
  readonly taskDefinitions: readonly ObservedTaskDefinition[];
}

/** One AWS call the controller will make, with the reason a person reads in `tenantctl plan`. */
export type Action =
  | { readonly kind: "createCluster"; readonly cluster: DesiredCluster; readonly reason: string }
  | { readonly kind: "registerTaskDefinition"; readonly taskDefinition: DesiredTaskDefinition; readonly reason: string }
  | {
      readonly kind: "createService";
      readonly service: DesiredService;
      /** Resolved at apply time: the arn registered earlier in this plan, or the observed latest revision. */
      readonly taskDefinitionFamily: string;
      readonly reason: string;
    }
  | {
      readonly kind: "updateService";
      readonly cluster: string;
      readonly name: string;
      readonly desiredCount?: number;
      /** Set when the service must move to the family's current revision. */
      readonly taskDefinitionFamily?: string;
      /** Set when Service Connect must change: the whole new configuration, or "disable". */
      readonly serviceConnect?: DesiredServiceConnect | "disable";
      readonly reason: string;
    }
  | { readonly kind: "deleteService"; readonly cluster: string; readonly name: string; readonly reason: string }
  | { readonly kind: "deleteCluster"; readonly cluster: string; readonly reason: string };

export interface Plan {
  /** Calls in the order they must be made. */
  readonly actions: readonly Action[];
  /** Why the key is not converged yet even after the actions (deployments rolling, services draining). */
  readonly waitingFor: readonly string[];
  /** Failures that need a person or a spec change: a failed rollout, an unmanaged resource in the way. */
  readonly problems: readonly string[];
  /** True when nothing is to be done and nothing is awaited. */
  readonly converged: boolean;
}
