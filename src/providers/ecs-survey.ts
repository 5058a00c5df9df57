import {
  DescribeClustersCommand,
  DescribeServicesCommand,
  ListClustersCommand,
  ListServicesCommand,
  type ECSClient,
} from "@aws-sdk/client-ecs";
import { isManaged, TENANT_ID_KEY, type ObservedCluster, type ObservedService, type Tags } from "../tiers/model.js";
import { chunks, doing, errorName, wrapAwsError } from "./aws-errors.js";
import type { SurveyScope } from "../ports.js";
import type { SurveyReads } from "./ecs-snapshot.js";
import { mapCluster, mapService } from "./ecs-shapes.js";

/** ECS API limits on one call. */
const SERVICES_PER_DESCRIBE = 10;
const CLUSTERS_PER_DESCRIBE = 100;
const PAGE_SIZE = 100;
/** Clusters read at once: enough to keep ECS's read rate busy from one process, not to burst past it. */
const CLUSTERS_IN_PARALLEL = 4;

export interface Survey {
  /** Tenant ids owning managed resources (tags): the orphan sweep's input. */
  readonly owners: ReadonlySet<string>;
  /** What was read, for the observation snapshot (ecs-snapshot.ts). */
  readonly reads: SurveyReads;
}

/**
 * One resync's ECS reads, batched across tenants (docs/adr/0018): every
 * cluster (ListClusters, DescribeClusters by 100), then the services of the
 * shared clusters and of every managed cluster (ListServices pages,
 * DescribeServices by 10 of whatever tenant). About
 * ceil(clusters/100) + ceil(services/10) + list pages, where observing each
 * tenant costs 2-3 reads.
 *
 * With a scope (controllers sharing the fleet), a managed cluster whose
 * tenant tag is not covered is not listed, and a service whose name names
 * an owner not covered is not described: each controller reads its share,
 * and the shared clusters' list pages are all they read twice.
 *
 * The owners answer the orphan sweep: a tenant whose record was deleted while
 * the controller was down still owns tagged services or a tagged cluster.
 */
export async function surveyEcs(
  ecs: ECSClient,
  sharedClusters: readonly string[],
  now: () => number,
  scope?: SurveyScope,
): Promise<Survey> {
  const at = now();
  const clusters = await describeClusters(ecs, await listClusters(ecs));
  const shared = new Set(sharedClusters);
  const covered = (owner: string | undefined) => scope === undefined || owner === undefined || scope.covers(owner);
  const toList = clusters.filter((c) => shared.has(c.name) || (isManaged(c.tags) && covered(c.tags[TENANT_ID_KEY]))).map((c) => c.name);
  const toDescribe = (arn: string) => covered(scope?.ownerOfService(lastSegment(arn)));
  const services: ObservedService[] = [];
  const listedClusters: string[] = [];
  await inParallel(toList, CLUSTERS_IN_PARALLEL, async (cluster) => {
    const found = await servicesOf(ecs, cluster, toDescribe);
    if (found === undefined) return;
    listedClusters.push(cluster);
    services.push(...found);
  });

  const owners = new Set<string>();
  for (const s of services) if (s.status !== "INACTIVE") addOwner(owners, s.tags);
  for (const c of clusters) addOwner(owners, c.tags);
  return {
    owners,
    reads: { at, clusters, listedClusters, services, ...(scope !== undefined ? { covers: coversOf(scope) } : {}) },
  };
}

/**
 * The scope's test as a function of its own. Made here, not inside
 * surveyEcs: a closure made there shares that call's context with the
 * others made there, so the snapshot, which keeps the test, would keep every
 * service the survey read alive (24 MiB at 10,000 tenants, measured).
 */
function coversOf(scope: SurveyScope): (owner: string) => boolean {
  return (owner) => scope.covers(owner);
}

/** The services of a cluster that `describe` accepts, described; undefined when the cluster went away meanwhile. */
async function servicesOf(ecs: ECSClient, cluster: string, describe: (arn: string) => boolean): Promise<ObservedService[] | undefined> {
  const arns = await listServices(ecs, cluster);
  if (arns === undefined) return undefined;
  const out: ObservedService[] = [];
  for (const batch of chunks(arns.filter(describe), SERVICES_PER_DESCRIBE)) {
    let res;
    try {
      res = await ecs.send(new DescribeServicesCommand({ cluster, services: batch, include: ["TAGS"] }));
    } catch (err) {
      if (errorName(err) === "ClusterNotFoundException") return undefined;
      throw wrapAwsError(err, `describing services in cluster ${cluster}`);
    }
    // Hashes are the observe's to add: they come from the task definition cache at that time.
    for (const s of res.services ?? []) out.push(mapService(s, cluster, undefined));
    // A failure (MISSING) is a service deleted since the listing: absent, as the listing will say next time.
  }
  return out;
}

async function listServices(ecs: ECSClient, cluster: string): Promise<string[] | undefined> {
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
      // A shared cluster not bootstrapped yet, or a premium cluster deleted meanwhile.
      if (errorName(err) === "ClusterNotFoundException") return undefined;
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

/** Clusters that are not INACTIVE, with their tags. */
async function describeClusters(ecs: ECSClient, arns: readonly string[]): Promise<ObservedCluster[]> {
  const out: ObservedCluster[] = [];
  for (const batch of chunks(arns, CLUSTERS_PER_DESCRIBE)) {
    const res = await doing("describing clusters", ecs.send(new DescribeClustersCommand({ clusters: batch, include: ["TAGS"] })));
    for (const c of res.clusters ?? []) if (c.status !== "INACTIVE") out.push(mapCluster(c, c.clusterName ?? ""));
  }
  return out;
}

async function inParallel<T>(items: readonly T[], width: number, each: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async () => {
    // After one failure the others stop taking items: the caller has its answer.
    while (next < items.length && !failed) {
      const item = items[next++] as T;
      try {
        await each(item);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
}

function addOwner(owners: Set<string>, tags: Tags): void {
  const tenantId = tags[TENANT_ID_KEY];
  if (isManaged(tags) && tenantId !== undefined && tenantId !== "") owners.add(tenantId);
}

/** A service's name from its ARN, old format (service/name) or new (service/cluster/name). */
function lastSegment(arn: string): string {
  return arn.slice(arn.lastIndexOf("/") + 1);
}
