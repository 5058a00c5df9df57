import {
  CreateClusterCommand,
  CreateServiceCommand,
  DeleteClusterCommand,
  DeleteServiceCommand,
  DescribeClustersCommand,
  DescribeServicesCommand,
  DescribeTaskDefinitionCommand,
  RegisterTaskDefinitionCommand,
  UpdateServiceCommand,
  type ECSClient,
  type Service,
} from "@aws-sdk/client-ecs";
import type { ApplyOutcome, EcsPort, Fence, SurveyScope } from "../ports.js";
import { UnmanagedResourceError } from "../ports.js";
import { TransientError } from "../errors.js";
import {
  CONTENT_HASH_KEY,
  isManaged,
  type Action,
  type DesiredCluster,
  type DesiredService,
  type DesiredTaskDefinition,
  type Footprint,
  type ObservedCluster,
  type ObservedService,
  type ObservedState,
  type ObservedTaskDefinition,
} from "../tiers/model.js";
import { chunks, doing, errorName, isCondition, wrapAwsError } from "./aws-errors.js";
import { RecentCreates, TaskDefinitionCache } from "./ecs-cache.js";
import { ObservationSnapshot, type SnapshotView } from "./ecs-snapshot.js";
import { surveyEcs } from "./ecs-survey.js";
import {
  clientTokenFor,
  containerDefinitions,
  creatingService,
  expectedServiceConnect,
  fromEcsTags,
  mapCluster,
  mapService,
  serviceConnectConfiguration,
  taskDefinitionTags,
  toEcsTags,
} from "./ecs-shapes.js";

/**
 * Zero-downtime deployments: the old tasks keep serving until the new ones
 * are healthy (100 % minimum, up to 200 % during the deployment; the
 * reference architecture's 0 % stops a tenant's only task first), and a
 * deployment whose tasks fail to start is failed by the circuit breaker,
 * which rolls the service back to its last completed deployment. The
 * controller sees the rollback (src/tiers/deploy-watch.ts) and does not
 * deploy the failed revision again.
 */
export const DEPLOYMENT_CONFIGURATION = {
  deploymentCircuitBreaker: { enable: true, rollback: true },
  maximumPercent: 200,
  minimumHealthyPercent: 100,
} as const;

/** ECS API limits on one Describe call. */
const SERVICES_PER_DESCRIBE = 10;
const CLUSTERS_PER_DESCRIBE = 100;

export interface EcsProviderOptions {
  /** Region written into awslogs options of container definitions. */
  readonly region: string;
  /**
   * How long a service this process created is reported as "creating" while
   * DescribeServices still answers MISSING. @default 30000
   */
  readonly createGraceMs?: number;
  /**
   * How long what a resync's survey read answers the observes that follow it
   * (docs/adr/0018): about half the resync interval. @default 60000
   */
  readonly snapshotMaxAgeMs?: number;
  /** Create clusters with the FARGATE capacity provider. @default true */
  readonly fargateCapacityProvider?: boolean;
  /** @default Date.now */
  readonly now?: () => number;
}

/** The service moved or vanished between observe and apply: transient, as a fresh observe will plan again. */
export class StaleObservationError extends TransientError {}

/**
 * EcsPort on the ECS API (SDK v3). Reads are batched at ECS's limits and task
 * definitions are remembered in process, so a steady-state observe of one
 * tenant costs DescribeClusters plus one DescribeServices per cluster; the
 * first observe of a key after a resync's survey costs none (ecs-snapshot.ts).
 *
 * Idempotency, call by call:
 * - CreateCluster: ECS returns the existing cluster for an existing name.
 * - RegisterTaskDefinition: only planned when the content hash changed; a
 *   repeat adds a harmless revision.
 * - CreateService: clientToken from the spec; "not idempotent" means the
 *   name exists already, which is the state we wanted.
 * - UpdateService: sends only the fields the plan changes. Service Connect
 *   is sent whole (ECS replaces it), or `enabled: false` to turn it off.
 * - DeleteService/DeleteCluster: "not found" and INACTIVE are success.
 */
export class EcsProvider implements EcsPort {
  readonly #ecs: ECSClient;
  readonly #region: string;
  readonly #fargate: boolean;
  readonly #now: () => number;
  readonly #taskDefs = new TaskDefinitionCache();
  readonly #recent: RecentCreates;
  readonly #snapshot: ObservationSnapshot;
  /** Observations the snapshot answered: a create planned from one looks at ECS first (see #createService). */
  readonly #fromSnapshot = new WeakSet<ObservedState>();

  constructor(ecs: ECSClient, options: EcsProviderOptions) {
    this.#ecs = ecs;
    this.#region = options.region;
    this.#fargate = options.fargateCapacityProvider ?? true;
    this.#now = options.now ?? Date.now;
    this.#recent = new RecentCreates(options.createGraceMs ?? 30_000, this.#now);
    this.#snapshot = new ObservationSnapshot(options.snapshotMaxAgeMs ?? 60_000, this.#now);
  }

  /**
   * Forgets what this process remembers of ECS. Call on becoming leader: a
   * previous leader may have registered revisions this process has not seen.
   */
  invalidateCaches(): void {
    this.#taskDefs.clear();
    this.#recent.clear();
    this.#snapshot.clear();
  }

  /** A hint that the key changed behind our back (an ECS event): its next observe reads ECS, not the snapshot. */
  forget(tenantKey: string): void {
    this.#snapshot.forget(tenantKey);
  }

  // ---------------------------------------------------------------- observe

  async observe(footprint: Footprint): Promise<ObservedState> {
    // Names this process created lately are ECS's to settle when not listed live: a listing may lag behind.
    const view = this.#snapshot.take(footprint, (cluster, name) => this.#recent.get(cluster, name) !== undefined);
    return view !== undefined ? this.#observeFrom(view, footprint) : this.#observeLive(footprint);
  }

  async #observeFrom(view: SnapshotView, footprint: Footprint): Promise<ObservedState> {
    const taskDefinitions = await this.#latestTaskDefinitions(unique(footprint.taskDefinitionFamilies));
    const running = view.services.filter((s) => s.status !== "INACTIVE" && s.taskDefinitionArn !== "");
    await this.#learnHashes(unique(running.map((s) => s.taskDefinitionArn)));
    const observed: ObservedState = {
      clusters: view.clusters,
      services: view.services.map((s) => ({ ...s, taskDefinitionContentHash: this.#hashOf(s.taskDefinitionArn || undefined) })),
      taskDefinitions,
    };
    this.#fromSnapshot.add(observed);
    return observed;
  }

  async #observeLive(footprint: Footprint): Promise<ObservedState> {
    const clusterNames = unique([...footprint.ownedClusters, ...footprint.serviceLocations.map((l) => l.cluster)]);
    const clusters = await this.#describeClusters(clusterNames);
    const live = new Map(clusters.map((c) => [c.name, c]));

    const namesByCluster = new Map<string, string[]>();
    for (const loc of footprint.serviceLocations) {
      // A cluster that is missing or INACTIVE holds no services worth a call.
      if (!live.has(loc.cluster)) continue;
      namesByCluster.set(loc.cluster, unique([...(namesByCluster.get(loc.cluster) ?? []), ...loc.serviceNames]));
    }

    // Families and services are read in parallel. Hashes of the revisions
    // services run are looked up after both: usually the family's latest
    // (just cached) is that revision, and no DescribeTaskDefinition is needed.
    const [taskDefinitions, rawByCluster] = await Promise.all([
      this.#latestTaskDefinitions(unique(footprint.taskDefinitionFamilies)),
      Promise.all([...namesByCluster].map(async ([cluster, names]) => ({ cluster, ...(await this.#describeServices(cluster, names)) }))),
    ]);

    const services: ObservedService[] = [];
    // Dead services need no hash: nothing will be compared against them.
    const running = rawByCluster.flatMap((r) => r.found.filter((s) => s.status !== "INACTIVE"));
    const arns = unique(running.map((s) => s.taskDefinition ?? "").filter((a) => a !== ""));
    await this.#learnHashes(arns);
    for (const { cluster, found, missing } of rawByCluster) {
      for (const s of found) {
        const name = s.serviceName ?? "";
        const recent = this.#recent.get(cluster, name);
        if (s.status === "INACTIVE") {
          // ECS may still show the previous, deleted service of this name
          // right after we created its successor.
          if (recent !== undefined) {
            const deploymentIds = (s.deployments ?? []).flatMap((d) => (d.id ? [d.id] : []));
            if (this.#recent.isPredecessor(cluster, name, { createdAt: s.createdAt?.getTime(), deploymentIds })) {
              services.push(creatingService(recent));
              continue;
            }
            // It is the service we created, deleted since behind our back.
            this.#recent.forget(cluster, name);
          }
        }
        services.push(mapService(s, cluster, this.#hashOf(s.taskDefinition)));
      }
      for (const name of missing) {
        const recent = this.#recent.get(cluster, name);
        if (recent !== undefined) services.push(creatingService(recent));
      }
    }

    return { clusters, services, taskDefinitions };
  }

  async #describeClusters(names: readonly string[]): Promise<ObservedCluster[]> {
    const out: ObservedCluster[] = [];
    for (const batch of chunks(names, CLUSTERS_PER_DESCRIBE)) {
      const res = await doing(
        `describing clusters ${batch.join(",")}`,
        this.#ecs.send(new DescribeClustersCommand({ clusters: batch, include: ["TAGS"] })),
      );
      for (const c of res.clusters ?? []) {
        if (c.status === "INACTIVE") continue;
        out.push(mapCluster(c, c.clusterName ?? ""));
      }
    }
    return out;
  }

  async #describeServices(cluster: string, names: readonly string[]): Promise<{ found: Service[]; missing: string[] }> {
    const found: Service[] = [];
    const missing: string[] = [];
    for (const batch of chunks(names, SERVICES_PER_DESCRIBE)) {
      let res;
      try {
        res = await this.#ecs.send(new DescribeServicesCommand({ cluster, services: batch, include: ["TAGS"] }));
      } catch (err) {
        // Deleted between DescribeClusters and now: nothing lives there.
        if (errorName(err) === "ClusterNotFoundException") return { found: [], missing: [...names] };
        throw wrapAwsError(err, `describing services ${batch.join(",")} in cluster ${cluster}`);
      }
      found.push(...(res.services ?? []));
      const seen = new Set(found.map((s) => s.serviceName));
      // Failures (reason MISSING) name services that do not exist, or that
      // ECS does not show yet; the caller decides which.
      for (const n of batch) if (!seen.has(n)) missing.push(n);
    }
    return { found, missing };
  }

  async #latestTaskDefinitions(families: readonly string[]): Promise<ObservedTaskDefinition[]> {
    const result = await Promise.all(
      families.map(async (family) => {
        const cached = this.#taskDefs.latest(family);
        if (cached !== undefined) return cached;
        const latest = await this.#describeLatest(family);
        this.#taskDefs.setLatest(family, latest);
        return latest;
      }),
    );
    return result.filter((td): td is ObservedTaskDefinition => td !== null);
  }

  /** DescribeTaskDefinition by family answers the latest ACTIVE revision. */
  async #describeLatest(family: string): Promise<ObservedTaskDefinition | null> {
    const described = await this.#describeTaskDefinition(family);
    if (described === null || described.status === "INACTIVE") return null;
    return described.td;
  }

  async #describeTaskDefinition(familyOrArn: string): Promise<{ td: ObservedTaskDefinition; status: string } | null> {
    try {
      const res = await this.#ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition: familyOrArn, include: ["TAGS"] }));
      const t = res.taskDefinition;
      if (t?.taskDefinitionArn === undefined) return null;
      const tags = fromEcsTags(res.tags);
      return {
        td: {
          family: t.family ?? familyOrArn,
          arn: t.taskDefinitionArn,
          revision: t.revision ?? 0,
          contentHash: tags[CONTENT_HASH_KEY],
          tags,
        },
        status: t.status ?? "ACTIVE",
      };
    } catch (err) {
      // ECS answers ClientException "Unable to describe task definition." for a family with no revisions.
      if (errorName(err) === "ClientException") return null;
      throw wrapAwsError(err, `describing task definition ${familyOrArn}`);
    }
  }

  /** Fills the arn -> content hash cache for the revisions services run and the cache does not know. */
  async #learnHashes(arns: readonly string[]): Promise<void> {
    const unknown = arns.filter((a) => this.#taskDefs.hash(a) === undefined);
    await Promise.all(
      unknown.map(async (arn) => {
        const described = await this.#describeTaskDefinition(arn);
        if (described !== null) this.#taskDefs.setHash(arn, described.td.contentHash);
      }),
    );
  }

  #hashOf(arn: string | undefined): string | undefined {
    if (arn === undefined) return undefined;
    return this.#taskDefs.hash(arn) ?? undefined;
  }

  // ------------------------------------------------------------------ apply

  async apply(actions: readonly Action[], observed: ObservedState, fence: Fence): Promise<ApplyOutcome> {
    const registered = new Map<string, string>();
    const created: string[] = [];
    for (const action of actions) {
      // Before every write: a controller that lost the lease must not act,
      // even halfway through a plan.
      fence.assertHeld();
      // Before the call: whatever it does, the snapshot's word on the resource is old now.
      if (action.kind === "createCluster") this.#snapshot.wroteCluster(action.cluster.name);
      else if (action.kind === "deleteCluster") this.#snapshot.wroteCluster(action.cluster);
      else if (action.kind === "createService") this.#snapshot.wroteService(action.service.cluster, action.service.name);
      else if (action.kind !== "registerTaskDefinition") this.#snapshot.wroteService(action.cluster, action.name);
      switch (action.kind) {
        case "createCluster":
          created.push(await this.#createCluster(action.cluster));
          break;
        case "registerTaskDefinition":
          registered.set(action.taskDefinition.family, await this.#register(action.taskDefinition));
          break;
        case "createService": {
          const arn = await this.#createService(
            action.service,
            this.#resolveTaskDefinition(action.taskDefinitionFamily, registered, observed),
            observed,
          );
          if (arn !== undefined) created.push(arn);
          break;
        }
        case "updateService":
          await this.#updateService(action, registered, observed);
          break;
        case "deleteService":
          await this.#deleteService(action.cluster, action.name, observed);
          break;
        case "deleteCluster":
          await this.#deleteCluster(action.cluster, observed);
          break;
      }
    }
    return { registered, created };
  }

  async #createCluster(cluster: DesiredCluster): Promise<string> {
    const res = await doing(
      `creating cluster ${cluster.name}`,
      this.#ecs.send(
        new CreateClusterCommand({
          clusterName: cluster.name,
          tags: toEcsTags(cluster.tags),
          ...(this.#fargate
            ? { capacityProviders: ["FARGATE"], defaultCapacityProviderStrategy: [{ capacityProvider: "FARGATE", weight: 1 }] }
            : {}),
        }),
      ),
    );
    return res.cluster?.clusterArn ?? "";
  }

  async #register(td: DesiredTaskDefinition): Promise<string> {
    const res = await doing(
      `registering task definition ${td.family}`,
      this.#ecs.send(
        new RegisterTaskDefinitionCommand({
          family: td.family,
          containerDefinitions: containerDefinitions(td, this.#region),
          cpu: td.cpu,
          memory: td.memory,
          networkMode: "awsvpc",
          requiresCompatibilities: ["FARGATE"],
          ...(td.runtimePlatform !== undefined ? { runtimePlatform: { ...td.runtimePlatform } } : {}),
          ...(td.taskRoleArn !== undefined ? { taskRoleArn: td.taskRoleArn } : {}),
          ...(td.executionRoleArn !== undefined ? { executionRoleArn: td.executionRoleArn } : {}),
          tags: taskDefinitionTags(td),
        }),
      ),
    );
    const t = res.taskDefinition;
    if (t?.taskDefinitionArn === undefined) throw new Error(`registering task definition ${td.family}: ECS returned no arn`);
    this.#taskDefs.setLatest(td.family, {
      family: td.family,
      arn: t.taskDefinitionArn,
      revision: t.revision ?? 0,
      contentHash: td.contentHash,
      tags: { ...td.tags, [CONTENT_HASH_KEY]: td.contentHash },
    });
    return t.taskDefinitionArn;
  }

  #resolveTaskDefinition(family: string, registered: ReadonlyMap<string, string>, observed: ObservedState): string {
    const arn =
      registered.get(family) ?? observed.taskDefinitions.find((t) => t.family === family)?.arn ?? this.#taskDefs.latest(family)?.arn;
    if (arn === undefined) throw new StaleObservationError(`no ACTIVE revision of task definition family ${family} to run`);
    return arn;
  }

  async #createService(service: DesiredService, taskDefinitionArn: string, observed: ObservedState): Promise<string | undefined> {
    let dead: ObservedService | undefined;
    if (this.#fromSnapshot.has(observed)) {
      // A listing leaves out INACTIVE services, whose incarnation the clientToken must name; and a service
      // listed absent may exist by now. One read settles both (a create is rare; a no-op resync makes none).
      const { found } = await this.#describeServices(service.cluster, [service.name]);
      const live = found.find((s) => s.serviceName === service.name);
      // Someone else's, or ours appearing: the next observe reads it live and plans against it.
      if (live !== undefined && live.status !== "INACTIVE") return undefined;
      dead = live === undefined ? undefined : mapService(live, service.cluster, undefined);
    } else {
      // The earlier incarnation of the name, if ECS still shows it INACTIVE: this create is not a retry of its.
      dead = observed.services.find((s) => s.cluster === service.cluster && s.name === service.name && s.status === "INACTIVE");
    }
    const replaces = dead === undefined ? undefined : `${dead.arn}@${dead.createdAt ?? ""}`;
    try {
      const res = await this.#ecs.send(
        new CreateServiceCommand({
          cluster: service.cluster,
          serviceName: service.name,
          taskDefinition: taskDefinitionArn,
          desiredCount: service.desiredCount,
          launchType: "FARGATE",
          networkConfiguration: {
            awsvpcConfiguration: {
              subnets: [...service.subnets],
              securityGroups: [...service.securityGroups],
              assignPublicIp: service.assignPublicIp,
            },
          },
          ...(service.loadBalancer !== undefined ? { loadBalancers: [{ ...service.loadBalancer }] } : {}),
          ...(service.serviceConnect !== undefined
            ? { serviceConnectConfiguration: serviceConnectConfiguration(service.serviceConnect, this.#region) }
            : {}),
          deploymentConfiguration: DEPLOYMENT_CONFIGURATION,
          tags: toEcsTags(service.tags),
          propagateTags: "SERVICE",
          enableECSManagedTags: true,
          clientToken: clientTokenFor(service, taskDefinitionArn, replaces),
        }),
      );
      const s = res.service;
      const created = mapService(s ?? {}, service.cluster, this.#taskDefs.hash(taskDefinitionArn) ?? undefined);
      // What the next observe must see while ECS still says MISSING, so the
      // plan neither creates the service again nor "enables" its Service Connect.
      const connect =
        created.serviceConnect ?? (service.serviceConnect !== undefined ? expectedServiceConnect(service.serviceConnect) : undefined);
      this.#recent.remember(
        {
          ...created,
          name: service.name,
          desiredCount: service.desiredCount,
          taskDefinitionArn,
          ...(connect !== undefined ? { serviceConnect: connect } : {}),
          tags: Object.keys(created.tags).length > 0 ? created.tags : service.tags,
        },
        s?.createdAt?.getTime(),
      );
      return created.arn;
    } catch (err) {
      // A service of that name exists (made by an earlier attempt with other
      // inputs, or still visible only to ECS): the next observe sees it.
      if (isCondition(err, "serviceNotIdempotent")) return undefined;
      this.#taskDefs.forgetFamily(service.taskDefinitionFamily);
      throw wrapAwsError(err, `creating service ${service.name} in cluster ${service.cluster}`);
    }
  }

  async #updateService(
    action: Extract<Action, { kind: "updateService" }>,
    registered: ReadonlyMap<string, string>,
    observed: ObservedState,
  ): Promise<void> {
    const current = this.#managedService(action.cluster, action.name, observed);
    if (current === undefined)
      throw new StaleObservationError(
        `service ${action.name} in cluster ${action.cluster} was not observed; observe again before updating`,
      );
    const taskDefinition =
      action.taskDefinitionFamily !== undefined
        ? this.#resolveTaskDefinition(action.taskDefinitionFamily, registered, observed)
        : undefined;
    try {
      await this.#ecs.send(
        new UpdateServiceCommand({
          cluster: action.cluster,
          service: action.name,
          ...(action.desiredCount !== undefined ? { desiredCount: action.desiredCount } : {}),
          // Every deployment carries it, so a service made before rollback was on gets it with its next deployment.
          ...(taskDefinition !== undefined ? { taskDefinition, deploymentConfiguration: DEPLOYMENT_CONFIGURATION } : {}),
          ...(action.serviceConnect === "disable"
            ? { serviceConnectConfiguration: { enabled: false } }
            : action.serviceConnect !== undefined
              ? { serviceConnectConfiguration: serviceConnectConfiguration(action.serviceConnect, this.#region) }
              : {}),
        }),
      );
    } catch (err) {
      if (action.taskDefinitionFamily !== undefined) this.#taskDefs.forgetFamily(action.taskDefinitionFamily);
      const name = errorName(err);
      if (name === "ServiceNotFoundException" || name === "ServiceNotActiveException") {
        throw new StaleObservationError(`updating service ${action.name} in cluster ${action.cluster}: ${name}; it changed since observed`);
      }
      throw wrapAwsError(err, `updating service ${action.name} in cluster ${action.cluster}`);
    }
    this.#recent.update(action.cluster, action.name, (s) => {
      const { serviceConnect: _previous, ...rest } = s;
      const connect =
        action.serviceConnect === undefined
          ? s.serviceConnect
          : action.serviceConnect === "disable"
            ? undefined
            : expectedServiceConnect(action.serviceConnect);
      return {
        ...rest,
        ...(action.desiredCount !== undefined ? { desiredCount: action.desiredCount } : {}),
        ...(taskDefinition !== undefined ? { taskDefinitionArn: taskDefinition } : {}),
        ...(connect !== undefined ? { serviceConnect: connect } : {}),
      };
    });
  }

  async #deleteService(cluster: string, name: string, observed: ObservedState): Promise<void> {
    // Absent or already INACTIVE: the state we want.
    if (this.#managedService(cluster, name, observed) === undefined) return;
    try {
      // force=false: the plan scales to 0 first, and ECS refuses to delete a
      // service that still has a desired count, which guards against a plan bug.
      await this.#ecs.send(new DeleteServiceCommand({ cluster, service: name, force: false }));
    } catch (err) {
      const n = errorName(err);
      if (n !== "ServiceNotFoundException" && n !== "ServiceNotActiveException" && n !== "ClusterNotFoundException") {
        throw wrapAwsError(err, `deleting service ${name} in cluster ${cluster}`);
      }
    }
    this.#recent.forget(cluster, name);
  }

  async #deleteCluster(name: string, observed: ObservedState): Promise<void> {
    const current = observed.clusters.find((c) => c.name === name);
    if (current === undefined || current.status === "INACTIVE") return;
    if (!isManaged(current.tags)) throw new UnmanagedResourceError(`cluster ${name}`);
    try {
      await this.#ecs.send(new DeleteClusterCommand({ cluster: name }));
    } catch (err) {
      if (errorName(err) === "ClusterNotFoundException") return;
      // ClusterContainsServices/TasksException wrap as transient: services are still draining.
      throw wrapAwsError(err, `deleting cluster ${name}`);
    }
  }

  /**
   * The observed, not INACTIVE service of that name, after checking it is
   * ours. undefined when there is none; throws when it is not managed.
   */
  #managedService(cluster: string, name: string, observed: ObservedState): ObservedService | undefined {
    const current = observed.services.find((s) => s.cluster === cluster && s.name === name && s.status !== "INACTIVE");
    if (current === undefined) return undefined;
    if (!isManaged(current.tags)) throw new UnmanagedResourceError(`service ${name} in cluster ${cluster}`);
    return current;
  }

  // ----------------------------------------------------------------- survey

  /**
   * The resync's batched reads (ecs-survey.ts): primes the snapshot the
   * observes that follow use, and answers the tenants owning managed resources.
   */
  async survey(sharedClusters: readonly string[], scope?: SurveyScope): Promise<ReadonlySet<string>> {
    const token = this.#snapshot.begin();
    try {
      const { owners, reads } = await surveyEcs(this.#ecs, sharedClusters, this.#now, scope);
      this.#snapshot.prime(token, reads);
      return owners;
    } catch (err) {
      // Only its own: a survey begun since goes on collecting.
      this.#snapshot.abandon(token);
      throw err;
    }
  }
}

function unique<T>(items: readonly T[]): T[] {
  return [...new Set(items)];
}
