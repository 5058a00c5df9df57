import {
  isManaged,
  type Action,
  type DesiredService,
  type DesiredServiceConnect,
  type DesiredState,
  type DesiredTaskDefinition,
  type Footprint,
  type ObservedCluster,
  type ObservedService,
  type ObservedServiceConnect,
  type ObservedState,
  type ObservedTaskDefinition,
  type Plan,
} from "./model.js";
import { failedRolloutOf, runsWanted, serviceReadiness } from "./readiness.js";

/**
 * The calls that turn what exists into what should exist, as a pure function.
 * Level-based: it never asks whether the record was created, changed or
 * deleted, only compares the two states, so running it again after any
 * partial apply yields the rest of the work and, once done, zero actions.
 *
 * Safety rules, each preventing a specific harm:
 * - Nothing without managed-by=ecs-tenant-operator is ever updated or deleted,
 *   and a desired name held by such a resource is reported, not taken over.
 * - A service is only updated in the fields that differ, so an unchanged
 *   service is never redeployed (ECS service writes are the scarcest budget).
 *   Service Connect counts as a field: it is compared with what the PRIMARY
 *   deployment runs, and changed only when it differs.
 * - A revision the circuit breaker already failed is not deployed again; that
 *   would loop forever on a crashing image.
 * - A cluster is deleted only once none of its services is ACTIVE or DRAINING,
 *   since ECS refuses otherwise and the retry would burn cluster-write budget.
 */
export function diff(desired: DesiredState, observed: ObservedState, footprint: Footprint, options: DiffOptions = {}): Plan {
  const p = new PlanBuilder();
  const clusters = new Map(observed.clusters.map((c) => [c.name, c]));
  const services = new Map(observed.services.map((s) => [serviceKey(s.cluster, s.name), s]));
  const latest = new Map(observed.taskDefinitions.map((t) => [t.family, t]));

  const unusableClusters = planClusters(p, desired, clusters);
  const revisions = planTaskDefinitions(p, desired, latest, services);
  for (const s of desired.services) {
    if (unusableClusters.has(s.cluster)) continue;
    const key = serviceKey(s.cluster, s.name);
    planService(p, s, services.get(key), revisions.get(s.taskDefinitionFamily), options.blocked?.get(key));
  }
  planDeletions(p, desired, observed, footprint, clusters, services);
  return p.build();
}

export interface DiffOptions {
  /**
   * Services (`<cluster>/<name>`) whose deployment of the wanted content
   * failed earlier (src/tiers/deploy-watch.ts), with the problem to report:
   * the content is not deployed to them again.
   */
  readonly blocked?: ReadonlyMap<string, string>;
}

/** What the diff knows about a desired family: blocked, being registered in this plan, or current at `arn`. */
type Revision =
  | { readonly kind: "blocked" }
  | { readonly kind: "registering"; readonly taskDefinition: DesiredTaskDefinition }
  | { readonly kind: "current"; readonly taskDefinition: DesiredTaskDefinition; readonly arn: string };

/**
 * Creates missing clusters and returns the clusters services cannot go into
 * yet (another's cluster under our name, or one still provisioning).
 */
function planClusters(p: PlanBuilder, desired: DesiredState, clusters: ReadonlyMap<string, ObservedCluster>): Set<string> {
  const unusable = new Set<string>();
  for (const c of desired.clusters) {
    const o = clusters.get(c.name);
    if (o === undefined) {
      p.createClusters.push({ kind: "createCluster", cluster: c, reason: `cluster ${c.name} does not exist` });
    } else if (!isManaged(o.tags)) {
      p.problems.push(
        `cluster ${c.name} exists but is not managed by ecs-tenant-operator; it is left alone and no services are placed in it`,
      );
      unusable.add(c.name);
    } else if (o.status !== "ACTIVE") {
      p.waitingFor.push(`cluster ${c.name} is ${o.status}`);
      unusable.add(c.name);
    }
  }
  // Shared clusters (pool, advanced) are not ours to create, but one that is
  // observed and not ACTIVE cannot take services either.
  const own = new Set(desired.clusters.map((c) => c.name));
  for (const name of new Set(desired.services.map((s) => s.cluster))) {
    const o = clusters.get(name);
    if (!own.has(name) && o !== undefined && o.status !== "ACTIVE") {
      p.waitingFor.push(`cluster ${name} is ${o.status}`);
      unusable.add(name);
    }
  }
  return unusable;
}

/**
 * Registers a revision only when the family's latest one does not have the
 * desired content, and no service of the family already runs it: a tenant
 * that a failed rollout returns to its previous version, which ECS's circuit
 * breaker restored, needs neither a new revision nor an update.
 */
function planTaskDefinitions(
  p: PlanBuilder,
  desired: DesiredState,
  latest: ReadonlyMap<string, ObservedTaskDefinition>,
  services: ReadonlyMap<string, ObservedService>,
): Map<string, Revision> {
  const revisions = new Map<string, Revision>();
  for (const td of desired.taskDefinitions) {
    const o = latest.get(td.family);
    const running = runningRevision(td, desired, services);
    if (o !== undefined && !isManaged(o.tags)) {
      p.problems.push(`task definition family ${td.family} has an unmanaged latest revision ${o.arn}; not registering into it`);
      revisions.set(td.family, { kind: "blocked" });
    } else if (o !== undefined && o.contentHash === td.contentHash) {
      revisions.set(td.family, { kind: "current", taskDefinition: td, arn: o.arn });
    } else if (running !== undefined) {
      revisions.set(td.family, { kind: "current", taskDefinition: td, arn: running });
    } else {
      const reason =
        o === undefined
          ? `${td.family}: no revision yet`
          : `${td.family}: content changed (revision ${o.revision} has hash ${o.contentHash ?? "unknown"}, want ${td.contentHash})`;
      p.registers.push({ kind: "registerTaskDefinition", taskDefinition: td, reason });
      revisions.set(td.family, { kind: "registering", taskDefinition: td });
    }
  }
  return revisions;
}

/** The revision every desired service of the family runs, when they all exist and run the desired content. */
function runningRevision(
  td: DesiredTaskDefinition,
  desired: DesiredState,
  services: ReadonlyMap<string, ObservedService>,
): string | undefined {
  const users = desired.services.filter((s) => s.taskDefinitionFamily === td.family);
  const arns = new Set<string>();
  for (const s of users) {
    const o = services.get(serviceKey(s.cluster, s.name));
    if (o === undefined || o.status !== "ACTIVE" || o.taskDefinitionContentHash !== td.contentHash) return undefined;
    arns.add(o.taskDefinitionArn);
  }
  return arns.size === 1 ? [...arns][0] : undefined;
}

function planService(
  p: PlanBuilder,
  s: DesiredService,
  o: ObservedService | undefined,
  revision: Revision | undefined,
  blocked: string | undefined,
): void {
  const where = `service ${s.name} in ${s.cluster}`;
  if (revision === undefined) {
    p.problems.push(`${where}: its task definition family ${s.taskDefinitionFamily} is not in the desired state`);
    return;
  }
  if (revision.kind === "blocked") return; // reported with the family
  if (o === undefined || o.status === "INACTIVE") {
    const reason = o === undefined ? `${where} does not exist` : `${where} was deleted (INACTIVE); creating it again`;
    p.createServices.push({ kind: "createService", service: s, taskDefinitionFamily: s.taskDefinitionFamily, reason });
    return;
  }
  if (!isManaged(o.tags)) {
    p.problems.push(`${where} exists but is not managed by ecs-tenant-operator; it is left alone`);
    return;
  }
  if (o.status === "DRAINING") {
    p.waitingFor.push(`${where} is DRAINING; it can be created again once deleted`);
    return;
  }

  const wantedArn = revision.kind === "current" ? revision.arn : undefined;
  const wanted = { contentHash: revision.taskDefinition.contentHash, arn: wantedArn };
  const changes: string[] = [];
  let desiredCount: number | undefined;
  let taskDefinitionFamily: string | undefined;
  let serviceConnect: DesiredServiceConnect | "disable" | undefined;
  let rolloutFailed = false;
  if (o.desiredCount !== s.desiredCount) {
    desiredCount = s.desiredCount;
    changes.push(`desiredCount ${o.desiredCount} -> ${s.desiredCount}`);
  }
  if (!runsWanted(o, wanted)) {
    const failure = failedRolloutOf(o, wantedArn);
    if (blocked !== undefined) {
      rolloutFailed = true;
      p.problems.push(blocked);
    } else if (failure !== undefined) {
      rolloutFailed = true;
      p.problems.push(`${where}: rollout of ${wantedArn} failed: ${failure}; not deploying it again until the spec changes`);
    } else {
      taskDefinitionFamily = s.taskDefinitionFamily;
      changes.push(
        `task definition ${s.taskDefinitionFamily}: hash ${o.taskDefinitionContentHash ?? o.taskDefinitionArn} -> ${wanted.contentHash}`,
      );
    }
  }
  const connect = serviceConnectDifference(s.serviceConnect, o.serviceConnect);
  if (connect !== undefined) {
    // Service Connect lives on the service, not the task definition: only
    // UpdateService changes it, and ECS rolls the tasks to apply it.
    serviceConnect = s.serviceConnect ?? "disable";
    changes.push(`Service Connect: ${connect}`);
  }
  if (changes.length > 0) {
    p.updates.push({
      kind: "updateService",
      cluster: s.cluster,
      name: s.name,
      ...(desiredCount !== undefined ? { desiredCount } : {}),
      ...(taskDefinitionFamily !== undefined ? { taskDefinitionFamily } : {}),
      ...(serviceConnect !== undefined ? { serviceConnect } : {}),
      reason: `${where}: ${changes.join("; ")}`,
    });
    return; // readiness is judged on the next look, after ECS has taken the update
  }

  if (rolloutFailed) return;
  const readiness = serviceReadiness(o, wanted);
  if (readiness.kind === "progressing") p.waitingFor.push(readiness.reason);
  else if (readiness.kind === "failed") p.problems.push(readiness.reason);
}

/**
 * How the observed Service Connect differs from the desired one, in words
 * for `tenantctl plan`; undefined when they agree. ECS reports the namespace
 * as an ARN, so either the namespace's name or its ARN is a match; servers
 * are compared as a set.
 */
export function serviceConnectDifference(
  desired: DesiredServiceConnect | undefined,
  observed: ObservedServiceConnect | undefined,
): string | undefined {
  const on = observed !== undefined && observed.enabled;
  if (desired === undefined) return on ? `on in ${observed.namespace ?? "its namespace"} -> off` : undefined;
  if (!on) return `off -> on in namespace ${desired.namespace.name}`;
  const problems: string[] = [];
  if (observed.namespace !== desired.namespace.arn && observed.namespace !== desired.namespace.name) {
    problems.push(`namespace ${observed.namespace ?? "none"} -> ${desired.namespace.name}`);
  }
  const servers = (list: DesiredServiceConnect["servers"]) =>
    list.map((x) => `${x.portName}:${x.discoveryName}@${x.dnsName}:${x.port}`).sort();
  const [want, have] = [servers(desired.servers), servers(observed.servers)];
  if (want.join(",") !== have.join(",")) problems.push(`servers [${have.join(", ")}] -> [${want.join(", ")}]`);
  const log = (l: DesiredServiceConnect["log"]) => (l === undefined ? "none" : `${l.group} (${l.streamPrefix})`);
  if (log(desired.log) !== log(observed.log)) problems.push(`proxy logs ${log(observed.log)} -> ${log(desired.log)}`);
  return problems.length > 0 ? problems.join(", ") : undefined;
}

/**
 * Removes what exists in the footprint but is not desired: a tier move's
 * leftovers, an offboarded tenant, an app dropped from the catalogue.
 */
function planDeletions(
  p: PlanBuilder,
  desired: DesiredState,
  observed: ObservedState,
  footprint: Footprint,
  clusters: ReadonlyMap<string, ObservedCluster>,
  services: ReadonlyMap<string, ObservedService>,
): void {
  const wantedServices = new Set(desired.services.map((s) => serviceKey(s.cluster, s.name)));
  const seen = new Set<string>();
  for (const loc of footprint.serviceLocations) {
    for (const name of loc.serviceNames) {
      const key = serviceKey(loc.cluster, name);
      if (wantedServices.has(key) || seen.has(key)) continue;
      seen.add(key);
      const o = services.get(key);
      if (o === undefined || o.status === "INACTIVE") continue;
      const where = `service ${name} in ${loc.cluster}`;
      if (!isManaged(o.tags)) {
        p.problems.push(`${where} is not desired but is not managed by ecs-tenant-operator; it is left alone`);
      } else if (o.status === "DRAINING") {
        p.waitingFor.push(`${where} is draining`);
      } else {
        // ECS refuses to delete a service with tasks unless forced; scaling to
        // zero first lets them stop gracefully and the delete succeed.
        if (o.desiredCount > 0) {
          p.deletions.push({
            kind: "updateService",
            cluster: loc.cluster,
            name,
            desiredCount: 0,
            reason: `${where} is not desired: desiredCount ${o.desiredCount} -> 0 before deleting`,
          });
        }
        p.deletions.push({ kind: "deleteService", cluster: loc.cluster, name, reason: `${where} is not desired` });
      }
    }
  }

  const wantedClusters = new Set(desired.clusters.map((c) => c.name));
  for (const name of new Set(footprint.ownedClusters)) {
    const o = clusters.get(name);
    if (wantedClusters.has(name) || o === undefined) continue;
    if (!isManaged(o.tags)) {
      p.problems.push(`cluster ${name} is not desired but is not managed by ecs-tenant-operator; it is left alone`);
      continue;
    }
    const live = observed.services.filter((s) => s.cluster === name && (s.status === "ACTIVE" || s.status === "DRAINING"));
    if (live.length > 0) {
      p.waitingFor.push(
        `cluster ${name} is not desired; deleting it once its services are gone (${live.map((s) => `${s.name} ${s.status}`).join(", ")})`,
      );
    } else if (o.status !== "ACTIVE") {
      p.waitingFor.push(`cluster ${name} is ${o.status}`);
    } else {
      p.clusterDeletions.push({ kind: "deleteCluster", cluster: name, reason: `cluster ${name} is not desired and has no services left` });
    }
  }
}

function serviceKey(cluster: string, name: string): string {
  return `${cluster}/${name}`;
}

/** Collects actions by kind so the plan comes out in the order the calls must be made. */
class PlanBuilder {
  readonly createClusters: Action[] = [];
  readonly registers: Action[] = [];
  readonly createServices: Action[] = [];
  readonly updates: Action[] = [];
  /** Per service: scale to zero, then delete, kept together. */
  readonly deletions: Action[] = [];
  readonly clusterDeletions: Action[] = [];
  readonly waitingFor: string[] = [];
  readonly problems: string[] = [];

  build(): Plan {
    const actions = [
      ...this.createClusters,
      ...this.registers,
      ...this.createServices,
      ...this.updates,
      ...this.deletions,
      ...this.clusterDeletions,
    ];
    return {
      actions,
      waitingFor: [...this.waitingFor],
      problems: [...this.problems],
      converged: actions.length === 0 && this.waitingFor.length === 0 && this.problems.length === 0,
    };
  }
}
