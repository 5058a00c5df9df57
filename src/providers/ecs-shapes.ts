import { createHash } from "node:crypto";
import type {
  Cluster,
  ContainerDefinition,
  Deployment,
  LogConfiguration,
  Service,
  ServiceConnectConfiguration,
  Tag,
} from "@aws-sdk/client-ecs";
import { canonicalJson } from "../tenants/record.js";
import {
  CONTENT_HASH_KEY,
  type ContainerSpec,
  type DesiredService,
  type DesiredServiceConnect,
  type DesiredTaskDefinition,
  type ObservedCluster,
  type ObservedDeployment,
  type ObservedService,
  type ObservedServiceConnect,
  type ServiceStatus,
  type Tags,
} from "../tiers/model.js";

/**
 * Pure translations between the model (src/tiers/model.ts) and ECS API
 * shapes, kept apart from the provider so they are tested without a client.
 */

/** ECS accepts a clientToken of up to 36 ASCII characters. */
export const CLIENT_TOKEN_LENGTH = 36;

export function toEcsTags(tags: Tags): Tag[] {
  return Object.entries(tags)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([key, value]) => ({ key, value }));
}

export function fromEcsTags(tags: readonly Tag[] | undefined): Tags {
  const out: Record<string, string> = {};
  for (const t of tags ?? []) if (t.key !== undefined) out[t.key] = t.value ?? "";
  return out;
}

export function mapCluster(c: Cluster, fallbackName: string): ObservedCluster {
  return {
    name: c.clusterName ?? fallbackName,
    arn: c.clusterArn ?? "",
    status: c.status ?? "ACTIVE",
    tags: fromEcsTags(c.tags),
  };
}

export function mapService(s: Service, cluster: string, contentHash: string | undefined): ObservedService {
  // Service Connect is per deployment; the PRIMARY one is what the service is becoming.
  const deployments = s.deployments ?? [];
  const primary = deployments.find((d) => d.status === "PRIMARY") ?? deployments[0];
  const connect = primary?.serviceConnectConfiguration;
  return {
    cluster,
    name: s.serviceName ?? "",
    arn: s.serviceArn ?? "",
    status: serviceStatus(s.status),
    desiredCount: s.desiredCount ?? 0,
    runningCount: s.runningCount ?? 0,
    taskDefinitionArn: s.taskDefinition ?? "",
    taskDefinitionContentHash: contentHash,
    deployments: deployments.map(mapDeployment),
    ...(connect !== undefined ? { serviceConnect: mapServiceConnect(connect) } : {}),
    tags: fromEcsTags(s.tags),
    ...(s.createdAt !== undefined ? { createdAt: s.createdAt.toISOString() } : {}),
  };
}

function mapServiceConnect(c: ServiceConnectConfiguration): ObservedServiceConnect {
  const options = c.logConfiguration?.logDriver === "awslogs" ? c.logConfiguration.options : undefined;
  const group = options?.["awslogs-group"];
  return {
    enabled: c.enabled === true,
    namespace: c.namespace,
    servers: (c.services ?? []).map((s) => {
      const alias = s.clientAliases?.[0];
      return {
        portName: s.portName ?? "",
        discoveryName: s.discoveryName ?? s.portName ?? "",
        port: alias?.port ?? 0,
        dnsName: alias?.dnsName ?? "",
      };
    }),
    log: group === undefined ? undefined : { group, streamPrefix: options?.["awslogs-stream-prefix"] ?? "" },
  };
}

/**
 * The request shape of a desired Service Connect. Each server gets one
 * client alias, its dnsName:port, which is what other apps call.
 */
export function serviceConnectConfiguration(c: DesiredServiceConnect, region: string): ServiceConnectConfiguration {
  return {
    enabled: true,
    namespace: c.namespace.arn,
    services: c.servers.map((s) => ({
      portName: s.portName,
      discoveryName: s.discoveryName,
      clientAliases: [{ port: s.port, dnsName: s.dnsName }],
    })),
    ...(c.log !== undefined ? { logConfiguration: awsLogs(c.log.group, region, c.log.streamPrefix) } : {}),
  };
}

/** What observe will read back once ECS has taken `c`: for a service only this process knows of yet. */
export function expectedServiceConnect(c: DesiredServiceConnect): ObservedServiceConnect {
  return { enabled: true, namespace: c.namespace.arn, servers: c.servers, log: c.log };
}

function awsLogs(group: string, region: string, streamPrefix: string): LogConfiguration {
  return { logDriver: "awslogs", options: { "awslogs-group": group, "awslogs-region": region, "awslogs-stream-prefix": streamPrefix } };
}

function mapDeployment(d: Deployment): ObservedDeployment {
  return {
    id: d.id ?? "",
    status: d.status === "PRIMARY" || d.status === "ACTIVE" ? d.status : "INACTIVE",
    rolloutState:
      d.rolloutState === "COMPLETED" || d.rolloutState === "IN_PROGRESS" || d.rolloutState === "FAILED" ? d.rolloutState : undefined,
    rolloutStateReason: d.rolloutStateReason,
    desiredCount: d.desiredCount ?? 0,
    runningCount: d.runningCount ?? 0,
    failedTasks: d.failedTasks ?? 0,
    taskDefinitionArn: d.taskDefinition ?? "",
  };
}

function serviceStatus(status: string | undefined): ServiceStatus {
  // ECS documents exactly these three; anything else is read as still present.
  return status === "DRAINING" || status === "INACTIVE" ? status : "ACTIVE";
}

/**
 * What a just-created service looks like while DescribeServices still says
 * MISSING (ECS is eventually consistent): present, rolling out, nothing
 * running, so the plan waits instead of creating it a second time.
 */
export function creatingService(created: ObservedService): ObservedService {
  const deployments: ObservedDeployment[] =
    created.deployments.length > 0
      ? created.deployments.map((d) => ({ ...d, runningCount: 0, rolloutState: d.rolloutState ?? "IN_PROGRESS" }))
      : [
          {
            id: "creating",
            status: "PRIMARY",
            rolloutState: "IN_PROGRESS",
            rolloutStateReason: "service was just created",
            desiredCount: created.desiredCount,
            runningCount: 0,
            failedTasks: 0,
            taskDefinitionArn: created.taskDefinitionArn,
          },
        ];
  return { ...created, status: "ACTIVE", runningCount: 0, deployments };
}

export function containerDefinitions(td: DesiredTaskDefinition, region: string): ContainerDefinition[] {
  return td.containers.map((c) => containerDefinition(c, td.app, region));
}

function containerDefinition(c: ContainerSpec, app: string, region: string): ContainerDefinition {
  return {
    name: c.name,
    image: c.image,
    essential: c.essential,
    portMappings: c.portMappings.map((p) => ({
      name: p.name,
      containerPort: p.containerPort,
      protocol: p.protocol,
      ...(p.appProtocol !== undefined ? { appProtocol: p.appProtocol } : {}),
    })),
    environment: c.environment.map((e) => ({ name: e.name, value: e.value })),
    // awslogs needs a group that exists; the tenant stack creates it, so the
    // driver is only configured when the desired state names one.
    ...(c.logGroup !== undefined ? { logConfiguration: awsLogs(c.logGroup, region, app) } : {}),
  };
}

/** The task definition's tags, always carrying its content hash so observe can compare without reading the content. */
export function taskDefinitionTags(td: DesiredTaskDefinition): Tag[] {
  return toEcsTags({ ...td.tags, [CONTENT_HASH_KEY]: td.contentHash });
}

/**
 * The CreateService clientToken: the same service, spec and task definition
 * give the same token, so a retry after a crash is answered with the service
 * the first call created instead of a second one. `replaces` distinguishes a
 * re-creation after a delete (a dead service of the same name) from a retry.
 */
export function clientTokenFor(service: DesiredService, taskDefinitionArn: string, replaces: string | undefined): string {
  const input = canonicalJson({
    cluster: service.cluster,
    name: service.name,
    taskDefinitionArn,
    desiredCount: service.desiredCount,
    subnets: service.subnets,
    securityGroups: service.securityGroups,
    assignPublicIp: service.assignPublicIp,
    loadBalancer: service.loadBalancer,
    serviceConnect: service.serviceConnect,
    tags: service.tags,
    replaces,
  });
  return createHash("sha256").update(input).digest("hex").slice(0, CLIENT_TOKEN_LENGTH);
}
