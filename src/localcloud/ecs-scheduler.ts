import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "pino";
import { SimClock } from "./clock.js";
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
  type SimService,
  type SimState,
  type SimTiming,
} from "./ecs-simulation.js";
import { CloudFormationGaps, stackNameOf, withTagsInMetadata } from "./cloudformation-gaps.js";
import { splitBatchWrite, tablesNamed, withUnprocessed } from "./dynamodb-requests.js";
import { FifoMutex, isDynamoDbTarget, mustSerialize } from "./dynamodb-serializer.js";
import { FaultInjector, type FaultHit, type FaultRule } from "./faults.js";
import {
  awsError,
  describeRequest,
  forward,
  header,
  jsonAnswer,
  readBody,
  send,
  withJsonBody,
  type AwsRequest,
  type HttpAnswer,
} from "./proxy.js";
import { EcsThrottle } from "./throttling.js";

/**
 * The local ECS scheduler: an HTTP front door that passes every AWS call to
 * moto, except that it keeps its own model of ECS services over simulated time
 * (ecs-simulation.ts) and rewrites what moto gets wrong. It also enforces ECS's
 * throttles when asked, injects faults, counts calls, and offers a control API
 * under /_scheduler/. Tests, benchmarks and `npm start` use it; production never does.
 *
 * DynamoDB writes go to moto one at a time (dynamodb-serializer.ts), in both
 * modes: moto's conditional writes are not atomic otherwise. In "passthrough"
 * mode that, faults, throttling and the counts are all it adds: ECS and
 * CloudFormation reach moto untouched, for tests written against plain moto.
 *
 * Control API (JSON), on the same port:
 *   GET  /_scheduler/state                      simulated time, speed, services, faults, call counts
 *   POST /_scheduler/advance    {"ms": 5000}    push simulated time forward
 *   POST /_scheduler/speed      {"speed": 10}   simulated ms per real ms (0 freezes)
 *   POST /_scheduler/throttling {"enabled": true}
 *   POST /_scheduler/faults     [{"service":"ecs","action":"UpdateService","errorCode":"ServerException","count":2}]
 *                               [{"service":"dynamodb","resource":"copy-dst","unprocessedFraction":0.5}] (a throttled table)
 *   POST /_scheduler/reset      {"moto": false} forget services, faults, counts (and moto's data with moto: true)
 */

const ECS_TARGET = "AmazonEC2ContainerServiceV20141113";
const CONTROL_PREFIX = "/_scheduler/";

export interface EcsSchedulerOptions {
  /** moto's endpoint, e.g. http://127.0.0.1:5123. */
  readonly motoEndpoint: string;
  /** Port to serve on, on 127.0.0.1; 0 picks a free one. @default 4566 */
  readonly port?: number;
  /** Simulated milliseconds per real millisecond; 0 freezes time except for advance(). @default 10 */
  readonly speed?: number;
  /** Enforce ECS's documented throttles. @default false */
  readonly throttling?: boolean;
  readonly timing?: Partial<SimTiming>;
  readonly log?: Logger;
  /**
   * "simulate" models ECS services over simulated time and mends moto's
   * CloudFormation gaps; "passthrough" leaves ECS and CloudFormation to moto.
   * @default "simulate"
   */
  readonly mode?: SchedulerMode;
}

export type SchedulerMode = "simulate" | "passthrough";

export interface SchedulerSnapshot {
  readonly now: number;
  readonly speed: number;
  readonly throttling: boolean;
  readonly timing: SimTiming;
  readonly faults: readonly FaultRule[];
  readonly services: readonly (SimService & { readonly runningCount: number; readonly pendingCount: number })[];
  /** Calls received, by "service:Action" (e.g. "ecs:CreateService"), throttled and faulted ones included. */
  readonly calls: Readonly<Record<string, number>>;
  /** DynamoDB calls that went to moto one at a time (dynamodb-serializer.ts), since the last count reset. */
  readonly serializedDynamoDbCalls: number;
}

/** What tests, benchmarks and the local runner steer the scheduler with (also over HTTP under /_scheduler/). */
export interface SchedulerControl {
  /** Current simulated time, epoch milliseconds. */
  now(): number;
  advance(ms: number): void;
  setSpeed(speed: number): void;
  setThrottling(enabled: boolean): void;
  /** Replaces the fault rules; throws on a malformed rule. */
  setFaults(rules: readonly FaultRule[]): void;
  /** The model's view of one service (names or ARNs accepted), advanced to now. */
  service(cluster: string, name: string): SimService | undefined;
  snapshot(): SchedulerSnapshot;
  /** Calls received, by "service:Action". */
  calls(): Readonly<Record<string, number>>;
  /** ECS calls received, by action name. */
  ecsCalls(): Readonly<Record<string, number>>;
  resetCalls(): void;
  /** Forgets services, faults, counts and throttle state; with moto: true also empties moto. */
  reset(options?: { readonly moto?: boolean }): Promise<void>;
}

export interface EcsScheduler extends SchedulerControl {
  readonly endpoint: string;
  readonly port: number;
  close(): Promise<void>;
}

export async function startEcsScheduler(options: EcsSchedulerOptions): Promise<EcsScheduler> {
  const scheduler = new LocalEcsScheduler(options);
  await scheduler.listen(options.port ?? 4566);
  return scheduler;
}

class LocalEcsScheduler implements EcsScheduler {
  readonly #moto: { readonly host: string; readonly port: number };
  readonly #motoEndpoint: string;
  readonly #cfnGaps: CloudFormationGaps;
  readonly #clock: SimClock;
  readonly #timing: Partial<SimTiming>;
  readonly #throttle = new EcsThrottle();
  readonly #faults = new FaultInjector();
  readonly #calls = new Map<string, number>();
  /** Task definition ARN → whether one of its images is tagged crashloop. */
  readonly #crashloopByTaskDef = new Map<string, boolean>();
  /** Serialises writes to one service (or cluster), so two racing CreateService calls cannot both pass the check. */
  readonly #locks = new Map<string, Promise<void>>();
  readonly #dynamoDbWrites = new FifoMutex();
  #serializedDynamoDbCalls = 0;
  readonly #simulate: boolean;
  readonly #log: Logger | undefined;
  readonly #server: Server;
  #state: SimState;
  #throttling: boolean;
  #port = 0;

  constructor(options: EcsSchedulerOptions) {
    const url = new URL(options.motoEndpoint);
    this.#moto = { host: url.hostname, port: Number(url.port) };
    this.#motoEndpoint = options.motoEndpoint.replace(/\/$/, "");
    this.#cfnGaps = new CloudFormationGaps(this.#motoEndpoint, "us-east-1", options.log);
    this.#clock = new SimClock(options.speed ?? 10);
    this.#timing = options.timing ?? {};
    this.#state = initialState(this.#clock.now(), this.#timing);
    this.#throttling = options.throttling ?? false;
    this.#simulate = (options.mode ?? "simulate") === "simulate";
    this.#log = options.log;
    this.#server = createServer((req, res) => {
      this.#handle(req, res).catch((err: unknown) => {
        const message = err instanceof Error ? err.message : String(err);
        this.#log?.error({ err }, "local scheduler failed a request");
        if (!res.headersSent) send(res, jsonAnswer(500, { __type: "InternalFailure", message }));
        else res.destroy();
      });
    });
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  get port(): number {
    return this.#port;
  }

  listen(port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) =>
        reject(new Error(`local ECS scheduler cannot listen on 127.0.0.1:${port}: ${err.message}`, { cause: err }));
      this.#server.once("error", onError);
      this.#server.listen(port, "127.0.0.1", () => {
        this.#server.off("error", onError);
        this.#port = (this.#server.address() as AddressInfo).port;
        resolve();
      });
    });
  }

  close(): Promise<void> {
    this.#cfnGaps.close();
    return new Promise((resolve) => {
      if (!this.#server.listening) return resolve();
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }

  // ---- control ----

  now(): number {
    return this.#clock.now();
  }

  advance(ms: number): void {
    this.#clock.advance(ms);
  }

  setSpeed(speed: number): void {
    this.#clock.setSpeed(speed);
  }

  setThrottling(enabled: boolean): void {
    this.#throttling = enabled;
    this.#throttle.reset();
  }

  setFaults(rules: readonly FaultRule[]): void {
    this.#faults.setRules(rules);
  }

  service(cluster: string, name: string): SimService | undefined {
    return findService(this.#sync(), lastSegment(cluster), lastSegment(name));
  }

  snapshot(): SchedulerSnapshot {
    const state = this.#sync();
    return {
      now: state.now,
      speed: this.#clock.speed,
      throttling: this.#throttling,
      timing: state.timing,
      faults: this.#faults.rules(),
      services: Object.values(state.services).map((s) => ({ ...s, ...serviceCounts(s) })),
      calls: this.calls(),
      serializedDynamoDbCalls: this.#serializedDynamoDbCalls,
    };
  }

  calls(): Readonly<Record<string, number>> {
    return Object.fromEntries(this.#calls);
  }

  ecsCalls(): Readonly<Record<string, number>> {
    return Object.fromEntries([...this.#calls].filter(([k]) => k.startsWith("ecs:")).map(([k, v]) => [k.slice(4), v]));
  }

  resetCalls(): void {
    this.#calls.clear();
    this.#serializedDynamoDbCalls = 0;
  }

  async reset(options: { readonly moto?: boolean } = {}): Promise<void> {
    if (options.moto === true) {
      const res = await fetch(`${this.#motoEndpoint}/moto-api/reset`, { method: "POST" });
      if (!res.ok) throw new Error(`moto reset failed: HTTP ${res.status}`);
      // ARNs are handed out again from revision 1 after a moto reset.
      this.#crashloopByTaskDef.clear();
    }
    this.#state = clearServices(this.#sync());
    this.#faults.setRules([]);
    this.resetCalls();
    this.#throttle.reset();
  }

  // ---- request handling ----

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = req.url ?? "/";
    const body = await readBody(req);
    if (url.startsWith(CONTROL_PREFIX)) return send(res, await this.#control(req.method ?? "GET", url, body));

    const call = describeRequest(req.method ?? "GET", url, req.headers, body);
    const key = `${call.service}:${call.action}`;
    this.#calls.set(key, (this.#calls.get(key) ?? 0) + 1);
    const target = header(req.headers, "x-amz-target");
    const isEcs = call.protocol === "json" && (target ?? "").startsWith(`${ECS_TARGET}.`);
    const dynamoDbInput = call.service === "dynamodb" && call.protocol === "json" ? parseJson(call.body) : undefined;

    if (isEcs && this.#throttling && !this.#throttle.take(call.action)) {
      this.#log?.debug({ action: call.action }, "throttled");
      return send(res, awsError(call, "ThrottlingException", "Rate exceeded"));
    }
    const fault = this.#faults.hit(call.service, call.action, dynamoDbInput === undefined ? [] : tablesNamed(dynamoDbInput));
    if (fault !== undefined) {
      if (fault.latencyMs > 0) await sleep(fault.latencyMs);
      if (fault.error !== undefined) {
        this.#log?.debug({ service: call.service, action: call.action, code: fault.error.code }, "injected fault");
        return send(res, awsError(call, fault.error.code, fault.error.message, fault.error.status));
      }
    }
    if (isDynamoDbTarget(target)) return send(res, await this.#dynamoDb(call, dynamoDbInput, fault?.unprocessed));
    if (!this.#simulate) return send(res, await forward(this.#moto, call));
    if (call.service === "cloudformation" && call.action === "DeleteStack") return send(res, await this.#deleteStack(call));
    if (call.service === "cloudformation" && call.action === "UpdateStack") return send(res, await this.#updateStack(call));
    send(res, isEcs ? await this.#ecs(call) : await forward(this.#moto, call));
  }

  /** Writes one at a time (see dynamodb-serializer.ts); reads straight through. */
  #dynamoDb(call: AwsRequest, input: Record<string, unknown> | undefined, unprocessed: FaultHit["unprocessed"]): Promise<HttpAnswer> {
    const run = () =>
      unprocessed !== undefined && call.action === "BatchWriteItem" && input !== undefined
        ? this.#throttledBatchWrite(call, input, unprocessed)
        : forward(this.#moto, call);
    if (!mustSerialize(call.action)) return run();
    this.#serializedDynamoDbCalls += 1;
    return this.#dynamoDbWrites.run(run);
  }

  /** A throttled table writes part of a batch and hands the rest back; with nothing written it refuses the batch. */
  async #throttledBatchWrite(
    call: AwsRequest,
    input: Record<string, unknown>,
    unprocessed: NonNullable<FaultHit["unprocessed"]>,
  ): Promise<HttpAnswer> {
    const split = splitBatchWrite(
      input,
      unprocessed.fraction,
      (table) => unprocessed.resource === undefined || table === unprocessed.resource,
    );
    if (split.forward === undefined) {
      return awsError(
        call,
        "ProvisionedThroughputExceededException",
        "The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API.",
      );
    }
    if (Object.keys(split.unprocessed).length === 0) return forward(this.#moto, call);
    this.#log?.debug(
      { unprocessed: Object.fromEntries(Object.entries(split.unprocessed).map(([t, w]) => [t, w.length])) },
      "batch write partly throttled",
    );
    const answer = await forward(this.#moto, { ...call, body: Buffer.from(JSON.stringify(split.forward)) });
    const parsed = okJson(answer);
    return parsed === undefined ? answer : withJsonBody(answer, withUnprocessed(parsed, split.unprocessed));
  }

  /**
   * moto answers "No updates are to be performed" to an update that changes
   * only the stack's tags, and keeps the old tags; CloudFormation applies
   * them (and propagates them). The local cloud resends such an update with
   * the tags recorded in the template's Metadata, which moto sees as a change.
   */
  async #updateStack(call: AwsRequest): Promise<HttpAnswer> {
    const answer = await forward(this.#moto, call);
    if (answer.status < 400 || !answer.body.toString("utf8").includes("No updates are to be performed")) return answer;
    const retry = withTagsInMetadata(call.body);
    return retry === undefined ? answer : forward(this.#moto, { ...call, body: retry });
  }

  async #deleteStack(call: AwsRequest): Promise<HttpAnswer> {
    const name = stackNameOf(call.body);
    const cleanup = name === undefined ? undefined : await this.#cfnGaps.beforeDeleteStack(name);
    const answer = await forward(this.#moto, call);
    if (answer.status < 300) await cleanup?.();
    return answer;
  }

  async #ecs(call: AwsRequest): Promise<HttpAnswer> {
    let input: Record<string, unknown> | undefined;
    try {
      input = asRecord(JSON.parse(call.body.toString("utf8") || "{}"));
    } catch {
      input = undefined;
    }
    // Malformed input is moto's to reject, with ECS's own error.
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
  async #createService(call: AwsRequest, input: Record<string, unknown>): Promise<HttpAnswer> {
    const cluster = clusterName(input["cluster"]);
    const name = str(input["serviceName"]);
    if (name === undefined) return forward(this.#moto, call);
    const clientToken = str(input["clientToken"]);
    return this.#withLock(`service:${cluster}/${name}`, async () => {
      const decision = decideCreate(this.#sync(), cluster, name, clientToken);
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
      this.#state = createService(this.#sync(), {
        cluster,
        name,
        taskDefinition,
        desiredCount: num(service["desiredCount"]) ?? 0,
        clientToken,
        crashloop: taskDefinition === "" ? false : await this.#crashloop(call, taskDefinition),
        ...serviceConnectOf(input),
        ...deploymentConfigurationOf(input),
      });
      this.#log?.debug({ cluster, service: name, taskDefinition }, "service created; deployment started");
      return withJsonBody(answer, { ...parsed, service: this.#render(service) });
    });
  }

  async #updateService(call: AwsRequest, input: Record<string, unknown>): Promise<HttpAnswer> {
    const cluster = clusterName(input["cluster"]);
    const name = lastSegment(str(input["service"]) ?? "");
    return this.#withLock(`service:${cluster}/${name}`, async () => {
      if (!canUpdate(this.#sync(), cluster, name)) return awsError(call, "ServiceNotActiveException", "Service was not ACTIVE.");
      const answer = await forward(this.#moto, call);
      const parsed = okJson(answer);
      const service = parsed === undefined ? undefined : asRecord(parsed["service"]);
      if (service === undefined) return answer;
      const requested = str(input["taskDefinition"]);
      const resolved = requested === undefined ? undefined : await this.#resolveTaskDefinition(call, requested);
      this.#state = updateService(this.#sync(), {
        cluster,
        name,
        taskDefinition: resolved?.arn,
        desiredCount: num(input["desiredCount"]),
        forceNewDeployment: input["forceNewDeployment"] === true,
        crashloop: resolved?.crashloop ?? false,
        ...serviceConnectOf(input),
        ...deploymentConfigurationOf(input),
      });
      this.#log?.debug(
        { cluster, service: name, deployment: findService(this.#state, cluster, name)?.deployments[0]?.id },
        "service updated",
      );
      return withJsonBody(answer, { ...parsed, service: this.#render(service) });
    });
  }

  async #deleteService(call: AwsRequest, input: Record<string, unknown>): Promise<HttpAnswer> {
    const cluster = clusterName(input["cluster"]);
    const name = lastSegment(str(input["service"]) ?? "");
    return this.#withLock(`service:${cluster}/${name}`, async () => {
      const known = findService(this.#sync(), cluster, name);
      if (known !== undefined && known.status !== "ACTIVE") return awsError(call, "ServiceNotActiveException", "Service was not ACTIVE.");
      const answer = await forward(this.#moto, call);
      const parsed = okJson(answer);
      const service = parsed === undefined ? undefined : asRecord(parsed["service"]);
      if (service === undefined) return answer;
      this.#state = deleteService(this.#sync(), cluster, name);
      this.#log?.debug({ cluster, service: name }, "service deleted; draining");
      return withJsonBody(answer, { ...parsed, service: this.#render(service) });
    });
  }

  async #describeServices(call: AwsRequest): Promise<HttpAnswer> {
    const answer = await forward(this.#moto, call);
    const parsed = okJson(answer);
    if (parsed === undefined) return answer;
    this.#sync();
    return withJsonBody(answer, { ...parsed, services: asRecords(parsed["services"]).map((s) => this.#render(s)) });
  }

  /** ECS stops listing a service once it is INACTIVE; moto lists it forever. */
  async #listServices(call: AwsRequest, input: Record<string, unknown>): Promise<HttpAnswer> {
    const answer = await forward(this.#moto, call);
    const parsed = okJson(answer);
    if (parsed === undefined) return answer;
    const state = this.#sync();
    const cluster = clusterName(input["cluster"]);
    const arns = (Array.isArray(parsed["serviceArns"]) ? parsed["serviceArns"] : []).filter(
      (arn): arn is string => typeof arn === "string" && findService(state, cluster, lastSegment(arn))?.status !== "INACTIVE",
    );
    return withJsonBody(answer, { ...parsed, serviceArns: arns });
  }

  /** moto deletes a cluster whatever it holds; ECS refuses while services are ACTIVE or DRAINING. */
  async #deleteCluster(call: AwsRequest, input: Record<string, unknown>): Promise<HttpAnswer> {
    const cluster = clusterName(input["cluster"]);
    return this.#withLock(`cluster:${cluster}`, async () => {
      if (liveServicesIn(this.#sync(), cluster).length > 0) {
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
    for (const s of Object.values(this.#sync().services)) byCluster.set(s.cluster, [...(byCluster.get(s.cluster) ?? []), s]);
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

  // ---- helpers ----

  /** Replaces moto's counts and deployments with the model's, when the model knows the service. */
  #render(service: Record<string, unknown>): Record<string, unknown> {
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

  #sync(): SimState {
    this.#state = advanceTo(this.#state, this.#clock.now());
    return this.#state;
  }

  #remember(taskDefinition: Record<string, unknown> | undefined): { arn: string; crashloop: boolean } | undefined {
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
  async #motoEcs(call: AwsRequest, action: string, payload: unknown): Promise<Record<string, unknown>> {
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

  async #control(method: string, url: string, body: Buffer): Promise<HttpAnswer> {
    const path = url.slice(CONTROL_PREFIX.length).split("?")[0] ?? "";
    try {
      const input: unknown = body.length > 0 ? JSON.parse(body.toString("utf8")) : {};
      const field = (name: string): unknown => asRecord(input)?.[name];
      switch (`${method} ${path}`) {
        case "GET state":
          return jsonAnswer(200, this.snapshot());
        case "POST advance":
          this.advance(requireNumber(field("ms"), "ms"));
          return jsonAnswer(200, { now: this.now() });
        case "POST speed":
          this.setSpeed(requireNumber(field("speed"), "speed"));
          return jsonAnswer(200, { speed: this.#clock.speed });
        case "POST throttling": {
          const enabled = field("enabled");
          if (typeof enabled !== "boolean") throw new Error("enabled must be true or false");
          this.setThrottling(enabled);
          return jsonAnswer(200, { throttling: this.#throttling });
        }
        case "POST faults":
          this.setFaults(input as FaultRule[]);
          return jsonAnswer(200, { faults: this.#faults.rules() });
        case "POST reset":
          await this.reset({ moto: field("moto") === true });
          return jsonAnswer(200, { reset: true });
        default:
          return jsonAnswer(404, { error: `no control endpoint ${method} ${CONTROL_PREFIX}${path}` });
      }
    } catch (err) {
      return jsonAnswer(400, { error: err instanceof Error ? err.message : String(err) });
    }
  }
}

function parseJson(body: Buffer): Record<string, unknown> | undefined {
  try {
    return asRecord(JSON.parse(body.toString("utf8") || "{}"));
  } catch {
    return undefined;
  }
}

function okJson(answer: HttpAnswer): Record<string, unknown> | undefined {
  if (answer.status !== 200) return undefined;
  try {
    return asRecord(JSON.parse(answer.body.toString("utf8")));
  } catch {
    return undefined;
  }
}

function asRecord(value: unknown): Record<string, unknown> | undefined {
  return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

function asRecords(value: unknown): Record<string, unknown>[] {
  return Array.isArray(value) ? value.flatMap((v) => (asRecord(v) === undefined ? [] : [v as Record<string, unknown>])) : [];
}

function str(value: unknown): string | undefined {
  return typeof value === "string" && value.length > 0 ? value : undefined;
}

function num(value: unknown): number | undefined {
  return typeof value === "number" && Number.isFinite(value) ? value : undefined;
}

function requireNumber(value: unknown, name: string): number {
  if (typeof value !== "number" || !Number.isFinite(value)) throw new Error(`${name} must be a number`);
  return value;
}

/** ECS accepts a name or an ARN (…:cluster/name, …:service/cluster/name); the model keys by name. */
function lastSegment(nameOrArn: string): string {
  return nameOrArn.split("/").pop() ?? nameOrArn;
}

function clusterName(value: unknown): string {
  return lastSegment(str(value) ?? "default");
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * The Service Connect configuration a CreateService/UpdateService request
 * carries. moto drops it, so the model keeps it on the deployment it starts
 * and DescribeServices reports it there, as ECS does.
 */
function serviceConnectOf(input: Record<string, unknown>): { serviceConnectConfiguration?: Record<string, unknown> } {
  const config = asRecord(input["serviceConnectConfiguration"]);
  return config === undefined ? {} : { serviceConnectConfiguration: config };
}
