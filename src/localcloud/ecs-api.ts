import type { Logger } from "pino";
import type { SimClock } from "./clock.js";
import { ecsEventsOf, TaskLedger, type EcsEventPublisher, type ServiceIdentity } from "./ecs-events.js";
import {
  advanceTo,
  canUpdate,
  clearServices,
  createService,
  decideCreate,
  deleteService,
  deploymentConfigurationOf,
  findService,
  initialState,
  isCrashloopImage,
  liveServicesIn,
  serviceCounts,
  updateService,
  serviceKey,
  type SimService,
  type SimState,
  type SimTiming,
  type StepObserver,
} from "./ecs-simulation.js";
import { asRecord, asRecords, clusterName, lastSegment, num, okJson, parseJson, str, type Json } from "./json.js";
import { awsError, forward, jsonAnswer, withJsonBody, type AwsRequest, type HttpAnswer, type Upstream } from "./proxy.js";

/** The X-Amz-Target prefix of ECS's JSON API. */
export const ECS_TARGET = "AmazonEC2ContainerServiceV20141113";

/**
 * The ECS API over the simulation (ecs-simulation.ts): each call goes to moto
 * for the resource itself, and the model supplies what moto lacks, namely
 * deployments that roll out over simulated time, ECS's idempotency and
 * ACTIVE checks, and the counts that follow from them.
 */
export class EcsApi {
  readonly #moto: Upstream;
  readonly #clock: SimClock;
  readonly #log: Logger | undefined;
  /** Task definition ARN → whether one of its images is tagged crashloop. */
  readonly #crashloopByTaskDef = new Map<string, boolean>();
  /** Serialises writes to one service (or cluster), so two racing CreateService calls cannot both pass the check. */
  readonly #locks = new Map<string, Promise<void>>();
  #state: SimState;
  /** Where ECS's events go (ecs-events.ts); undefined: announced nowhere. */
  readonly #events: EcsEventPublisher | undefined;
  /** Each service's ARNs, from moto's answers, for its events. */
  readonly #identities = new Map<string, ServiceIdentity>();
  readonly #tasks = new TaskLedger();
  readonly #onStep: StepObserver | undefined;

  constructor(moto: Upstream, clock: SimClock, timing: Partial<SimTiming>, log: Logger | undefined, events?: EcsEventPublisher) {
    this.#moto = moto;
    this.#clock = clock;
    this.#log = log;
    this.#state = initialState(clock.now(), timing);
    this.#events = events;
    this.#onStep = events === undefined ? undefined : (before, after, at) => this.#announce(before, after, at);
  }

  /** The model advanced to the clock's now. */
  sync(): SimState {
    this.#state = advanceTo(this.#state, this.#clock.now(), this.#onStep);
    return this.#state;
  }

  /** Publishes what ECS would say about this change of the service. */
  #announce(before: SimService | undefined, after: SimService | undefined, at: number): void {
    if (this.#events === undefined || after === undefined || after === before) return;
    const identity = this.#identities.get(serviceKey(after.cluster, after.name));
    if (identity !== undefined) this.#events.publish(ecsEventsOf(before, after, at, identity, this.#tasks));
  }

  /** Sets the state after a call changed `cluster/name`, announcing the change. */
  #commit(next: SimState, cluster: string, name: string, service: Json): void {
    const serviceArn = str(service["serviceArn"]);
    const clusterArn = str(service["clusterArn"]);
    if (serviceArn !== undefined && clusterArn !== undefined) this.#identities.set(serviceKey(cluster, name), { serviceArn, clusterArn });
    const before = findService(this.#state, cluster, name);
    this.#state = next;
    this.#announce(before, findService(next, cluster, name), next.now);
  }

  /** The model's view of one service (names or ARNs accepted), advanced to now. */
  service(cluster: string, name: string): SimService | undefined {
    return findService(this.sync(), lastSegment(cluster), lastSegment(name));
  }

  /** Forgets every service; with motoReset also the task definitions, whose ARNs moto hands out again from revision 1. */
  clear(motoReset: boolean): void {
    if (motoReset) this.#crashloopByTaskDef.clear();
    this.#identities.clear();
    this.#tasks.clear();
    this.#state = clearServices(this.sync());
  }

  async handle(call: AwsRequest): Promise<HttpAnswer> {
    // Malformed input is moto's to reject, with ECS's own error.
    const input = parseJson(call.body);
    if (input === undefined) return forward(this.#moto, call);
    switch (call.action) {
      case "CreateService":
        return this.#createService(call, input);
      case "UpdateService":
        return this.#updateService(call, input);
      case "DeleteService":
        return this.#deleteService(call, input);
      case "DescribeServices":
        return this.#describeServices(call);
      case "ListServices":
        return this.#listServices(call, input);
      case "DeleteCluster":
        return this.#deleteCluster(call, input);
      case "DescribeClusters":
        return this.#describeClusters(call);
      case "RegisterTaskDefinition":
        return this.#registerTaskDefinition(call);
      default:
        return forward(this.#moto, call);
    }
  }

  /**
   * moto silently replaces a service of the same name; ECS returns the same
   * service for a repeated clientToken and refuses otherwise.
   */
  async #createService(call: AwsRequest, input: Json): Promise<HttpAnswer> {
    const cluster = clusterName(input["cluster"]);
    const name = str(input["serviceName"]);
    if (name === undefined) return forward(this.#moto, call);
    const clientToken = str(input["clientToken"]);
    return this.#withLock(`service:${cluster}/${name}`, async () => {
      const decision = decideCreate(this.sync(), cluster, name, clientToken);
      if (decision.kind === "idempotent") {
        const described = await this.#motoEcs(call, "DescribeServices", { cluster, services: [name] });
        const service = asRecords(described["services"])[0];
        if (service !== undefined) return jsonAnswer(200, { service: this.#render(service) }, "application/x-amz-json-1.1");
      }
      if (decision.kind !== "create") return awsError(call, "InvalidParameterException", "Creation of service was not idempotent.");
      if (findService(this.#state, cluster, name) === undefined && (await this.#motoHasActiveService(call, cluster, name))) {
        // Created before this scheduler started: its token is unknown, so it cannot be the same request.
        return awsError(call, "InvalidParameterException", "Creation of service was not idempotent.");
      }
      const answer = await forward(this.#moto, call);
      const parsed = okJson(answer);
      const service = parsed === undefined ? undefined : asRecord(parsed["service"]);
      if (service === undefined) return answer;
      const taskDefinition = str(service["taskDefinition"]) ?? "";
      const crashloop = taskDefinition === "" ? false : await this.#crashloop(call, taskDefinition);
      const next = createService(this.sync(), {
        cluster,
        name,
        taskDefinition,
        desiredCount: num(service["desiredCount"]) ?? 0,
        clientToken,
        crashloop,
        ...serviceConnectOf(input),
        ...deploymentConfigurationOf(input),
      });
      this.#commit(next, cluster, name, service);
      this.#log?.debug({ cluster, service: name, taskDefinition }, "service created; deployment started");
      return withJsonBody(answer, { ...parsed, service: this.#render(service) });
    });
  }

  async #updateService(call: AwsRequest, input: Json): Promise<HttpAnswer> {
    const cluster = clusterName(input["cluster"]);
    const name = lastSegment(str(input["service"]) ?? "");
    return this.#withLock(`service:${cluster}/${name}`, async () => {
      if (!canUpdate(this.sync(), cluster, name)) return awsError(call, "ServiceNotActiveException", "Service was not ACTIVE.");
      const answer = await forward(this.#moto, call);
      const parsed = okJson(answer);
      const service = parsed === undefined ? undefined : asRecord(parsed["service"]);
      if (service === undefined) return answer;
      const requested = str(input["taskDefinition"]);
      const resolved = requested === undefined ? undefined : await this.#resolveTaskDefinition(call, requested);
      const next = updateService(this.sync(), {
        cluster,
        name,
        taskDefinition: resolved?.arn,
        desiredCount: num(input["desiredCount"]),
        forceNewDeployment: input["forceNewDeployment"] === true,
        crashloop: resolved?.crashloop ?? false,
        ...serviceConnectOf(input),
        ...deploymentConfigurationOf(input),
      });
      this.#commit(next, cluster, name, service);
      this.#log?.debug(
        { cluster, service: name, deployment: findService(this.#state, cluster, name)?.deployments[0]?.id },
        "service updated",
      );
      return withJsonBody(answer, { ...parsed, service: this.#render(service) });
    });
  }

  async #deleteService(call: AwsRequest, input: Json): Promise<HttpAnswer> {
    const cluster = clusterName(input["cluster"]);
    const name = lastSegment(str(input["service"]) ?? "");
    return this.#withLock(`service:${cluster}/${name}`, async () => {
      const known = findService(this.sync(), cluster, name);
      if (known !== undefined && known.status !== "ACTIVE") return awsError(call, "ServiceNotActiveException", "Service was not ACTIVE.");
      const answer = await forward(this.#moto, call);
      const parsed = okJson(answer);
      const service = parsed === undefined ? undefined : asRecord(parsed["service"]);
      if (service === undefined) return answer;
      this.#commit(deleteService(this.sync(), cluster, name), cluster, name, service);
      this.#log?.debug({ cluster, service: name }, "service deleted; draining");
      return withJsonBody(answer, { ...parsed, service: this.#render(service) });
    });
  }

  async #describeServices(call: AwsRequest): Promise<HttpAnswer> {
    const answer = await forward(this.#moto, call);
    const parsed = okJson(answer);
    if (parsed === undefined) return answer;
    this.sync();
    return withJsonBody(answer, { ...parsed, services: asRecords(parsed["services"]).map((s) => this.#render(s)) });
  }

  /** ECS stops listing a service once it is INACTIVE; moto lists it forever. */
  async #listServices(call: AwsRequest, input: Json): Promise<HttpAnswer> {
    const answer = await forward(this.#moto, call);
    const parsed = okJson(answer);
    if (parsed === undefined) return answer;
    const state = this.sync();
    const cluster = clusterName(input["cluster"]);
    const arns = (Array.isArray(parsed["serviceArns"]) ? parsed["serviceArns"] : []).filter(
      (arn): arn is string => typeof arn === "string" && findService(state, cluster, lastSegment(arn))?.status !== "INACTIVE",
    );
    return withJsonBody(answer, { ...parsed, serviceArns: arns });
  }

  /** moto deletes a cluster whatever it holds; ECS refuses while services are ACTIVE or DRAINING. */
  async #deleteCluster(call: AwsRequest, input: Json): Promise<HttpAnswer> {
    const cluster = clusterName(input["cluster"]);
    return this.#withLock(`cluster:${cluster}`, async () => {
      if (liveServicesIn(this.sync(), cluster).length > 0) {
        return awsError(call, "ClusterContainsServicesException", "The Cluster cannot be deleted while Services are active.");
      }
      return forward(this.#moto, call);
    });
  }

  /** Cluster counters from the model, for clusters whose services it knows. */
  async #describeClusters(call: AwsRequest): Promise<HttpAnswer> {
    const answer = await forward(this.#moto, call);
    const parsed = okJson(answer);
    if (parsed === undefined) return answer;
    const byCluster = new Map<string, SimService[]>();
    for (const s of Object.values(this.sync().services)) byCluster.set(s.cluster, [...(byCluster.get(s.cluster) ?? []), s]);
    const clusters = asRecords(parsed["clusters"]).map((c) => {
      const services = byCluster.get(str(c["clusterName"]) ?? "") ?? [];
      if (services.length === 0) return c;
      const counts = services.map(serviceCounts);
      return {
        ...c,
        activeServicesCount: services.filter((s) => s.status === "ACTIVE").length,
        runningTasksCount: counts.reduce((n, x) => n + x.runningCount, 0),
        pendingTasksCount: counts.reduce((n, x) => n + x.pendingCount, 0),
      };
    });
    return withJsonBody(answer, { ...parsed, clusters });
  }

  async #registerTaskDefinition(call: AwsRequest): Promise<HttpAnswer> {
    const answer = await forward(this.#moto, call);
    const parsed = okJson(answer);
    if (parsed !== undefined) this.#remember(asRecord(parsed["taskDefinition"]));
    return answer;
  }

  /** Replaces moto's counts and deployments with the model's, when the model knows the service. */
  #render(service: Json): Json {
    const cluster = lastSegment(str(service["clusterArn"]) ?? "default");
    const sim = findService(this.#state, cluster, str(service["serviceName"]) ?? "");
    if (sim === undefined) return service;
    const template = asRecords(service["deployments"])[0] ?? {};
    const primary = sim.deployments[0];
    return {
      ...service,
      status: sim.status,
      desiredCount: sim.desiredCount,
      ...serviceCounts(sim),
      taskDefinition: primary?.taskDefinition ?? service["taskDefinition"],
      deploymentConfiguration: sim.deploymentConfiguration,
      deployments: sim.deployments.map((d) => ({
        ...template,
        id: d.id,
        status: d.status,
        taskDefinition: d.taskDefinition,
        desiredCount: d.desiredCount,
        pendingCount: d.pendingCount,
        runningCount: d.runningCount,
        failedTasks: d.failedTasks,
        rolloutState: d.rolloutState,
        rolloutStateReason: d.rolloutStateReason,
        ...(d.serviceConnectConfiguration !== undefined ? { serviceConnectConfiguration: d.serviceConnectConfiguration } : {}),
        createdAt: d.createdAt / 1000,
        updatedAt: d.updatedAt / 1000,
      })),
    };
  }

  #remember(taskDefinition: Json | undefined): { arn: string; crashloop: boolean } | undefined {
    const arn = str(taskDefinition?.["taskDefinitionArn"]);
    if (taskDefinition === undefined || arn === undefined) return undefined;
    const crashloop = asRecords(taskDefinition["containerDefinitions"]).some((c) => isCrashloopImage(str(c["image"]) ?? ""));
    this.#crashloopByTaskDef.set(arn, crashloop);
    return { arn, crashloop };
  }

  async #crashloop(call: AwsRequest, taskDefinitionArn: string): Promise<boolean> {
    return (await this.#resolveTaskDefinition(call, taskDefinitionArn))?.crashloop ?? false;
  }

  /** A family, family:revision or ARN, resolved to its ARN and images (remembered, else asked of moto). */
  async #resolveTaskDefinition(call: AwsRequest, ref: string): Promise<{ arn: string; crashloop: boolean } | undefined> {
    const known = this.#crashloopByTaskDef.get(ref);
    if (known !== undefined) return { arn: ref, crashloop: known };
    const described = await this.#motoEcs(call, "DescribeTaskDefinition", { taskDefinition: ref });
    return this.#remember(asRecord(described["taskDefinition"]));
  }

  async #motoHasActiveService(call: AwsRequest, cluster: string, name: string): Promise<boolean> {
    const described = await this.#motoEcs(call, "DescribeServices", { cluster, services: [name] });
    return asRecords(described["services"]).some((s) => s["status"] === "ACTIVE");
  }

  /** A call of the scheduler's own to moto, signed like the client's (moto routes by the credential scope). */
  async #motoEcs(call: AwsRequest, action: string, payload: unknown): Promise<Json> {
    const internal: AwsRequest = {
      ...call,
      action,
      url: "/",
      method: "POST",
      headers: { ...call.headers, "x-amz-target": `${ECS_TARGET}.${action}`, "content-type": "application/x-amz-json-1.1" },
      body: Buffer.from(JSON.stringify(payload)),
    };
    const answer = await forward(this.#moto, internal);
    return okJson(answer) ?? {};
  }

  async #withLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.#locks.get(key) ?? Promise.resolve();
    let release = () => {};
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = previous.then(() => mine);
    this.#locks.set(key, tail);
    await previous;
    try {
      return await fn();
    } finally {
      release();
      if (this.#locks.get(key) === tail) this.#locks.delete(key);
    }
  }
}

/**
 * The Service Connect configuration a CreateService/UpdateService request
 * carries. moto drops it, so the model keeps it on the deployment it starts
 * and DescribeServices reports it there, as ECS does.
 */
function serviceConnectOf(input: Json): { serviceConnectConfiguration?: Record<string, unknown> } {
  const config = asRecord(input["serviceConnectConfiguration"]);
  return config === undefined ? {} : { serviceConnectConfiguration: config };
}
