import type {
  CreateClusterCommandInput,
  CreateServiceCommandInput,
  DeleteClusterCommandInput,
  DeleteServiceCommandInput,
  DescribeClustersCommandInput,
  DescribeServicesCommandInput,
  DescribeTaskDefinitionCommandInput,
  ECSClient,
  ListClustersCommandInput,
  ListServicesCommandInput,
  RegisterTaskDefinitionCommandInput,
  ServiceConnectConfiguration,
  Tag,
  UpdateServiceCommandInput,
} from "@aws-sdk/client-ecs";
import { bucketFor, EcsThrottle } from "../../src/localcloud/throttling.js";
import { answerLater, Busy } from "./busy.js";

/**
 * An ECS account in process memory, behind the one method of ECSClient the
 * provider uses (`send`), so the real EcsProvider runs on it with its real
 * read pattern. Deployments finish at once: a service is steady as soon as
 * it is created or updated. It keeps what the controller reads back
 * (names, tags, counts, revisions, Service Connect) and drops the rest
 * (container definitions, network settings): the benchmark measures the
 * controller's memory, and the fake's should stay small beside it.
 *
 * With `throttle`, each call first waits for a token of ECS's documented
 * bucket for its action (src/localcloud/throttling.ts), as the SDK's retries
 * would, so small runs can show what the buckets do to a controller.
 */

export const ECS_READS = new Set([
  "DescribeClusters",
  "DescribeServices",
  "DescribeTaskDefinition",
  "ListClusters",
  "ListServices",
  "ListTaskDefinitions",
  "ListTaskDefinitionFamilies",
  "ListTagsForResource",
]);

export interface FakeEcsOptions {
  readonly accountId?: string;
  readonly region?: string;
  /** Clusters that exist before the controller starts (the pool's and the advanced tier's, made by the bootstrap). */
  readonly sharedClusters?: readonly string[];
  /** Wait for a token of ECS's bucket before each call. @default none (unthrottled) */
  readonly throttle?: EcsThrottle;
  /** Where time spent in this fake is added. */
  readonly busy?: Busy;
}

interface FakeCluster {
  readonly name: string;
  readonly arn: string;
  status: "ACTIVE" | "INACTIVE";
  readonly tags: readonly Tag[];
}

interface FakeService {
  readonly cluster: FakeCluster;
  readonly name: string;
  readonly arn: string;
  status: "ACTIVE" | "INACTIVE";
  desiredCount: number;
  taskDefinition: string;
  serviceConnect: ServiceConnectConfiguration | undefined;
  readonly tags: readonly Tag[];
  readonly clientToken: string | undefined;
  readonly createdAt: Date;
  deployment: number;
}

interface FakeRevision {
  readonly arn: string;
  readonly revision: number;
  status: "ACTIVE" | "INACTIVE";
  readonly tags: readonly Tag[];
}

/** An error as the SDK raises it for an ECS error answer. */
function ecsError(name: string, message: string): Error {
  return Object.assign(new Error(message), { name, $fault: "client", $metadata: { httpStatusCode: 400 } });
}

export class FakeEcsClient {
  readonly #account: string;
  readonly #region: string;
  readonly #throttle: EcsThrottle | undefined;
  readonly busy: Busy;
  readonly clusters = new Map<string, FakeCluster>();
  /** `<cluster>/<name>`, in creation order (ListServices pages through it). */
  readonly services = new Map<string, FakeService>();
  /** Per cluster, its services in creation order. */
  readonly #byCluster = new Map<string, FakeService[]>();
  readonly families = new Map<string, FakeRevision[]>();
  /** Requests answered, by action (errors included: ECS counts them against the bucket too). */
  readonly served = new Map<string, number>();
  /** Calls that had to wait for a token. */
  throttledWaits = 0;
  #deployments = 0;

  constructor(options: FakeEcsOptions = {}) {
    this.#account = options.accountId ?? "123456789012";
    this.#region = options.region ?? "us-east-1";
    this.#throttle = options.throttle;
    this.busy = options.busy ?? new Busy();
    for (const name of options.sharedClusters ?? []) this.#createCluster({ clusterName: name, tags: [] });
  }

  /** The provider's view: an ECSClient (only `send` is used). */
  asClient(): ECSClient {
    return this as unknown as ECSClient;
  }

  async send(command: object): Promise<unknown> {
    const action = command.constructor.name.replace(/Command$/, "");
    if (this.#throttle !== undefined) await this.#waitForToken(this.#throttle, action);
    await answerLater();
    this.served.set(action, (this.served.get(action) ?? 0) + 1);
    const input = (command as { readonly input?: unknown }).input ?? {};
    return this.busy.time(() => this.#serve(action, input));
  }

  /** Every served request that only reads. */
  reads(): number {
    let n = 0;
    for (const [action, count] of this.served) if (ECS_READS.has(action)) n += count;
    return n;
  }

  async #waitForToken(throttle: EcsThrottle, action: string): Promise<void> {
    let waited = false;
    while (!throttle.take(action)) {
      waited = true;
      const rate = bucketFor(action)?.spec.rate ?? 1;
      await new Promise((resolve) => setTimeout(resolve, Math.ceil(1000 / rate)));
    }
    if (waited) this.throttledWaits += 1;
  }

  #serve(action: string, input: unknown): unknown {
    switch (action) {
      case "DescribeClusters":
        return this.#describeClusters(input as DescribeClustersCommandInput);
      case "DescribeServices":
        return this.#describeServices(input as DescribeServicesCommandInput);
      case "DescribeTaskDefinition":
        return this.#describeTaskDefinition(input as DescribeTaskDefinitionCommandInput);
      case "ListServices":
        return this.#listServices(input as ListServicesCommandInput);
      case "ListClusters":
        return this.#listClusters(input as ListClustersCommandInput);
      case "CreateCluster":
        return { cluster: this.#describeCluster(this.#createCluster(input as CreateClusterCommandInput), true) };
      case "DeleteCluster":
        return this.#deleteCluster(input as DeleteClusterCommandInput);
      case "RegisterTaskDefinition":
        return this.#register(input as RegisterTaskDefinitionCommandInput);
      case "CreateService":
        return this.#createService(input as CreateServiceCommandInput);
      case "UpdateService":
        return this.#updateService(input as UpdateServiceCommandInput);
      case "DeleteService":
        return this.#deleteService(input as DeleteServiceCommandInput);
      default:
        throw new Error(`the scale benchmark's fake ECS does not implement ${action}; add it to bench/fakes/fake-ecs.ts`);
    }
  }

  // ------------------------------------------------------------------ reads

  #describeClusters(input: DescribeClustersCommandInput) {
    const tags = input.include?.includes("TAGS") === true;
    const clusters = [];
    const failures = [];
    for (const ref of input.clusters ?? []) {
      const c = this.clusters.get(lastSegment(ref));
      if (c === undefined) failures.push({ arn: ref, reason: "MISSING" });
      else clusters.push(this.#describeCluster(c, tags));
    }
    return { clusters, failures };
  }

  #describeCluster(c: FakeCluster, tags: boolean) {
    return { clusterName: c.name, clusterArn: c.arn, status: c.status, ...(tags ? { tags: [...c.tags] } : {}) };
  }

  #describeServices(input: DescribeServicesCommandInput) {
    const cluster = this.#cluster(input.cluster);
    if (cluster === undefined || cluster.status !== "ACTIVE") throw ecsError("ClusterNotFoundException", "Cluster not found.");
    const refs = input.services ?? [];
    if (refs.length > 10) throw ecsError("InvalidParameterException", "services can have at most 10 items.");
    const tags = input.include?.includes("TAGS") === true;
    const services = [];
    const failures = [];
    for (const ref of refs) {
      const s = this.services.get(`${cluster.name}/${lastSegment(ref)}`);
      if (s === undefined) failures.push({ arn: ref, reason: "MISSING" });
      else services.push(this.#describeService(s, tags));
    }
    return { services, failures };
  }

  #describeService(s: FakeService, tags: boolean) {
    const running = s.status === "ACTIVE" ? s.desiredCount : 0;
    return {
      serviceName: s.name,
      serviceArn: s.arn,
      clusterArn: s.cluster.arn,
      status: s.status,
      desiredCount: s.desiredCount,
      runningCount: running,
      pendingCount: 0,
      taskDefinition: s.taskDefinition,
      createdAt: s.createdAt,
      deployments: [
        {
          id: `ecs-svc/${s.deployment}`,
          status: "PRIMARY",
          rolloutState: "COMPLETED",
          desiredCount: s.desiredCount,
          runningCount: running,
          failedTasks: 0,
          taskDefinition: s.taskDefinition,
          ...(s.serviceConnect !== undefined ? { serviceConnectConfiguration: s.serviceConnect } : {}),
        },
      ],
      ...(tags ? { tags: [...s.tags] } : {}),
    };
  }

  #describeTaskDefinition(input: DescribeTaskDefinitionCommandInput) {
    const ref = input.taskDefinition ?? "";
    const named = lastSegment(ref);
    const colon = named.lastIndexOf(":");
    const family = colon < 0 ? named : named.slice(0, colon);
    const revisions = this.families.get(family) ?? [];
    const found =
      colon < 0 ? revisions.findLast((r) => r.status === "ACTIVE") : revisions.find((r) => r.revision === Number(named.slice(colon + 1)));
    if (found === undefined) throw ecsError("ClientException", "Unable to describe task definition.");
    return {
      taskDefinition: { taskDefinitionArn: found.arn, family, revision: found.revision, status: found.status },
      ...(input.include?.includes("TAGS") === true ? { tags: [...found.tags] } : {}),
    };
  }

  #listServices(input: ListServicesCommandInput) {
    const cluster = this.#cluster(input.cluster);
    if (cluster === undefined || cluster.status !== "ACTIVE") throw ecsError("ClusterNotFoundException", "Cluster not found.");
    const all = (this.#byCluster.get(cluster.name) ?? []).filter((s) => s.status === "ACTIVE");
    return page(
      all.map((s) => s.arn),
      input.maxResults,
      input.nextToken,
      "serviceArns",
    );
  }

  #listClusters(input: ListClustersCommandInput) {
    const all = [...this.clusters.values()].filter((c) => c.status === "ACTIVE").map((c) => c.arn);
    return page(all, input.maxResults, input.nextToken, "clusterArns");
  }

  // ----------------------------------------------------------------- writes

  #createCluster(input: CreateClusterCommandInput): FakeCluster {
    const name = input.clusterName ?? "default";
    const existing = this.clusters.get(name);
    if (existing !== undefined && existing.status === "ACTIVE") return existing;
    const c: FakeCluster = {
      name,
      arn: `arn:aws:ecs:${this.#region}:${this.#account}:cluster/${name}`,
      status: "ACTIVE",
      tags: input.tags ?? [],
    };
    this.clusters.set(name, c);
    this.#byCluster.set(name, []);
    return c;
  }

  #deleteCluster(input: DeleteClusterCommandInput) {
    const c = this.#cluster(input.cluster);
    if (c === undefined || c.status !== "ACTIVE") throw ecsError("ClusterNotFoundException", "Cluster not found.");
    if ((this.#byCluster.get(c.name) ?? []).some((s) => s.status === "ACTIVE"))
      throw ecsError("ClusterContainsServicesException", "The Cluster cannot be deleted while Services are active.");
    c.status = "INACTIVE";
    return { cluster: this.#describeCluster(c, false) };
  }

  #register(input: RegisterTaskDefinitionCommandInput) {
    const family = input.family ?? "";
    const revisions = this.families.get(family) ?? [];
    const revision = (revisions.at(-1)?.revision ?? 0) + 1;
    const arn = `arn:aws:ecs:${this.#region}:${this.#account}:task-definition/${family}:${revision}`;
    revisions.push({ arn, revision, status: "ACTIVE", tags: input.tags ?? [] });
    this.families.set(family, revisions);
    return { taskDefinition: { taskDefinitionArn: arn, family, revision, status: "ACTIVE" }, tags: input.tags ?? [] };
  }

  #createService(input: CreateServiceCommandInput) {
    const cluster = this.#cluster(input.cluster);
    if (cluster === undefined || cluster.status !== "ACTIVE") throw ecsError("ClusterNotFoundException", "Cluster not found.");
    const name = input.serviceName ?? "";
    const key = `${cluster.name}/${name}`;
    const existing = this.services.get(key);
    if (existing !== undefined && existing.status === "ACTIVE") {
      if (existing.clientToken !== undefined && existing.clientToken === input.clientToken)
        return { service: this.#describeService(existing, true) };
      throw ecsError("InvalidParameterException", "Creation of service was not idempotent.");
    }
    const s: FakeService = {
      cluster,
      name,
      arn: `arn:aws:ecs:${this.#region}:${this.#account}:service/${cluster.name}/${name}`,
      status: "ACTIVE",
      desiredCount: input.desiredCount ?? 0,
      taskDefinition: this.#revisionArn(input.taskDefinition),
      serviceConnect: input.serviceConnectConfiguration,
      tags: input.tags ?? [],
      clientToken: input.clientToken,
      createdAt: new Date(),
      deployment: ++this.#deployments,
    };
    if (existing !== undefined) {
      const list = this.#byCluster.get(cluster.name) ?? [];
      list.splice(list.indexOf(existing), 1);
    }
    this.services.set(key, s);
    this.#byCluster.get(cluster.name)?.push(s);
    return { service: this.#describeService(s, true) };
  }

  #updateService(input: UpdateServiceCommandInput) {
    const s = this.#service(input.cluster, input.service);
    if (input.desiredCount !== undefined) s.desiredCount = input.desiredCount;
    if (input.taskDefinition !== undefined) s.taskDefinition = this.#revisionArn(input.taskDefinition);
    if (input.serviceConnectConfiguration !== undefined)
      s.serviceConnect = input.serviceConnectConfiguration.enabled === false ? undefined : input.serviceConnectConfiguration;
    if (input.taskDefinition !== undefined || input.serviceConnectConfiguration !== undefined) s.deployment = ++this.#deployments;
    return { service: this.#describeService(s, false) };
  }

  #deleteService(input: DeleteServiceCommandInput) {
    const s = this.#service(input.cluster, input.service);
    if (input.force !== true && s.desiredCount > 0)
      throw ecsError("InvalidParameterException", "The service cannot be stopped while it is scaled above 0.");
    s.status = "INACTIVE";
    return { service: this.#describeService(s, false) };
  }

  #service(clusterRef: string | undefined, serviceRef: string | undefined): FakeService {
    const cluster = this.#cluster(clusterRef);
    if (cluster === undefined || cluster.status !== "ACTIVE") throw ecsError("ClusterNotFoundException", "Cluster not found.");
    const s = this.services.get(`${cluster.name}/${lastSegment(serviceRef ?? "")}`);
    if (s === undefined) throw ecsError("ServiceNotFoundException", "Service not found.");
    if (s.status !== "ACTIVE") throw ecsError("ServiceNotActiveException", "Service was not ACTIVE.");
    return s;
  }

  #cluster(ref: string | undefined): FakeCluster | undefined {
    return this.clusters.get(lastSegment(ref ?? "default"));
  }

  /** A family name or an ARN, as the revision's ARN (the latest ACTIVE for a family). */
  #revisionArn(ref: string | undefined): string {
    const named = lastSegment(ref ?? "");
    const colon = named.lastIndexOf(":");
    const revisions = this.families.get(colon < 0 ? named : named.slice(0, colon)) ?? [];
    const found =
      colon < 0
        ? revisions.findLast((r) => r.status === "ACTIVE")
        : revisions.find((r) => r.revision === Number(named.slice(colon + 1)) && r.status === "ACTIVE");
    if (found === undefined) throw ecsError("ClientException", `TaskDefinition not found: ${ref ?? ""}`);
    return found.arn;
  }
}

/** The name at the end of an ARN (or the name itself). */
function lastSegment(ref: string): string {
  return ref.slice(ref.lastIndexOf("/") + 1);
}

/** A page of a List call: at most maxResults (ECS: 100 by default and at most), the next token an offset. */
function page<K extends string>(
  all: readonly string[],
  maxResults: number | undefined,
  nextToken: string | undefined,
  key: K,
): Record<K, string[]> & { nextToken?: string } {
  const size = Math.min(100, maxResults ?? 100);
  const from = nextToken === undefined ? 0 : Number(nextToken);
  const items = all.slice(from, from + size);
  const next = from + size < all.length ? { nextToken: String(from + size) } : {};
  return { [key]: items, ...next } as Record<K, string[]> & { nextToken?: string };
}
