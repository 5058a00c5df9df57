import {
  DescribeClustersCommand,
  DescribeServicesCommand,
  ListClustersCommand,
  ListServicesCommand,
  type ECSClient,
} from "@aws-sdk/client-ecs";
import { isManaged, TENANT_ID_KEY, type Tags } from "../tiers/model.js";
import { chunks, doing, errorName, wrapAwsError } from "./aws-errors.js";
import { fromEcsTags } from "./ecs-shapes.js";

/** ECS API limits on one call. */
const SERVICES_PER_DESCRIBE = 10;
const CLUSTERS_PER_DESCRIBE = 100;
const PAGE_SIZE = 100;

/**
 * The orphan sweep's input (EcsPort.inventory): ids of tenants that own
 * managed resources, read from tags, so a tenant whose record was deleted
 * while the controller was down is still found and offboarded. Looks at the
 * services of the shared clusters and at every cluster (premium tenants own
 * theirs). Costs one List per 100 and one Describe per 10 services or 100
 * clusters; meant for resync, not for every reconcile.
 */
export async function findTenantsWithResources(ecs: ECSClient, sharedClusters: readonly string[]): Promise<ReadonlySet<string>> {
  const tenants = new Set<string>();
  for (const cluster of new Set(sharedClusters)) {
    const arns = await listServices(ecs, cluster);
    for (const batch of chunks(arns, SERVICES_PER_DESCRIBE)) {
      const res = await doing(
        `describing services in cluster ${cluster}`,
        ecs.send(new DescribeServicesCommand({ cluster, services: batch, include: ["TAGS"] })),
      );
      for (const s of res.services ?? []) if (s.status !== "INACTIVE") addTenant(tenants, fromEcsTags(s.tags));
    }
  }
  for (const batch of chunks(await listClusters(ecs), CLUSTERS_PER_DESCRIBE)) {
    const res = await doing(
      "describing clusters for the inventory",
      ecs.send(new DescribeClustersCommand({ clusters: batch, include: ["TAGS"] })),
    );
    for (const c of res.clusters ?? []) if (c.status !== "INACTIVE") addTenant(tenants, fromEcsTags(c.tags));
  }
  return tenants;
}

async function listServices(ecs: ECSClient, cluster: string): Promise<string[]> {
  const arns: string[] = [];
  let nextToken: string | undefined;
  do {
    try {
      const res = await ecs.send(
        new ListServicesCommand({ cluster, maxResults: PAGE_SIZE, ...(nextToken !== undefined ? { nextToken } : {}) }),
      );
      arns.push(...(res.serviceArns ?? []));
      nextToken = res.nextToken;
    } catch (err) {
      // A shared cluster not bootstrapped yet holds nobody's services.
      if (errorName(err) === "ClusterNotFoundException") return [];
      throw wrapAwsError(err, `listing services in cluster ${cluster}`);
    }
  } while (nextToken !== undefined);
  return arns;
}

async function listClusters(ecs: ECSClient): Promise<string[]> {
  const arns: string[] = [];
  let nextToken: string | undefined;
  do {
    const res = await doing(
      "listing clusters",
      ecs.send(new ListClustersCommand({ maxResults: PAGE_SIZE, ...(nextToken !== undefined ? { nextToken } : {}) })),
    );
    arns.push(...(res.clusterArns ?? []));
    nextToken = res.nextToken;
  } while (nextToken !== undefined);
  return arns;
}

function addTenant(tenants: Set<string>, tags: Tags): void {
  const tenantId = tags[TENANT_ID_KEY];
  if (isManaged(tags) && tenantId !== undefined && tenantId !== "") tenants.add(tenantId);
}
