/**
 * The local ECS scheduler's model of services and deployments, as a pure state
 * machine: every function takes a state (and the simulated time) and returns a
 * new state, so it is tested without a server, a clock or moto.
 *
 * It stands in for what moto does not model: moto never starts tasks, reports
 * running = desired the moment a service is updated, and forgets a deleted
 * service at once. Here tasks start one by one after a delay, a rolling
 * update drains the old deployment as the new one comes up, and a deleted
 * service drains before it turns INACTIVE.
 *
 * Images tagged `crashloop` never start a task. What follows is the service's
 * deployment circuit breaker (deploymentConfiguration.deploymentCircuitBreaker),
 * as ECS has it: without it the deployment keeps trying, IN_PROGRESS forever;
 * with it, once failedTasks reaches the threshold the deployment is FAILED
 * ("ECS deployment circuit breaker: tasks failed to start.") and launches no
 * more tasks; with rollback too, a new PRIMARY deployment of the last
 * COMPLETED deployment's task definition starts ("ECS deployment circuit
 * breaker: rolling back to deploymentId <id>."), the failed one stays listed
 * as ACTIVE until the rollback completes, and then it is gone.
 */

export type ServiceStatus = "ACTIVE" | "DRAINING" | "INACTIVE";
export type DeploymentStatus = "PRIMARY" | "ACTIVE";
export type RolloutState = "IN_PROGRESS" | "COMPLETED" | "FAILED";

export interface SimDeployment {
  readonly id: string;
  readonly status: DeploymentStatus;
  readonly taskDefinition: string;
  readonly desiredCount: number;
  readonly runningCount: number;
  readonly pendingCount: number;
  readonly failedTasks: number;
  readonly rolloutState: RolloutState;
  readonly rolloutStateReason: string;
  /** Its tasks never start: an image tagged `crashloop`. */
  readonly crashloop: boolean;
  /**
   * The Service Connect configuration the deployment runs, as the request
   * gave it (ECS reports it per deployment; moto drops it).
   */
  readonly serviceConnectConfiguration?: Readonly<Record<string, unknown>>;
  /** Simulated epoch milliseconds. */
  readonly createdAt: number;
  readonly updatedAt: number;
}

/** deploymentConfiguration.deploymentCircuitBreaker; ECS's default is off. */
export interface CircuitBreaker {
  readonly enable: boolean;
  readonly rollback: boolean;
}

/** The deployment configuration a request gave, as DescribeServices reports it (moto drops it). */
export interface DeploymentConfiguration {
  readonly deploymentCircuitBreaker: CircuitBreaker;
  readonly maximumPercent: number;
  readonly minimumHealthyPercent: number;
}

export const DEFAULT_DEPLOYMENT_CONFIGURATION: DeploymentConfiguration = {
  deploymentCircuitBreaker: { enable: false, rollback: false },
  maximumPercent: 200,
  minimumHealthyPercent: 100,
};

export interface SimService {
  readonly cluster: string;
  readonly name: string;
  readonly status: ServiceStatus;
  readonly deploymentConfiguration: DeploymentConfiguration;
  readonly desiredCount: number;
  readonly clientToken: string | undefined;
  /** The PRIMARY deployment first, then older ACTIVE ones still draining. */
  readonly deployments: readonly SimDeployment[];
  readonly createdAt: number;
  readonly deletedAt: number | undefined;
  /** When the next task starts, fails or stops; undefined when the service is at rest. */
  readonly nextStepAt: number | undefined;
}

/** Simulated durations, in milliseconds of simulated time. */
export interface SimTiming {
  /** From a deployment's start to its first task (image pull, ENI attachment). @default 5000 */
  readonly startDelayMs: number;
  /** Between two task starts, failures or stops of one service. @default 2000 */
  readonly stepMs: number;
  /** A deleted service stays DRAINING at least this long, even with no tasks. @default 10000 */
  readonly drainMs: number;
}

const DEFAULT_TIMING: SimTiming = { startDelayMs: 5_000, stepMs: 2_000, drainMs: 10_000 };

export interface SimState {
  readonly timing: SimTiming;
  /** Simulated time the state has been advanced to. */
  readonly now: number;
  /** Feeds deployment ids, so they are unique and reproducible. */
  readonly seq: number;
  readonly services: Readonly<Record<string, SimService>>;
}

export function initialState(now: number, timing: Partial<SimTiming> = {}): SimState {
  return { timing: { ...DEFAULT_TIMING, ...timing }, now, seq: 0, services: {} };
}

/** Cluster and service are names (not ARNs) here; the scheduler normalises. */
export function serviceKey(cluster: string, name: string): string {
  return `${cluster}/${name}`;
}

export function findService(state: SimState, cluster: string, name: string): SimService | undefined {
  return state.services[serviceKey(cluster, name)];
}

/** True when any container image carries the tag `crashloop` (digests and registry ports are ignored). */
export function isCrashloopImage(image: string): boolean {
  const withoutDigest = image.split("@")[0] ?? image;
  const lastSlash = withoutDigest.lastIndexOf("/");
  const lastColon = withoutDigest.lastIndexOf(":");
  return lastColon > lastSlash && withoutDigest.slice(lastColon + 1) === "crashloop";
}

/**
 * ECS's deployment circuit breaker: the failed-task threshold is half the
 * desired count, at least 3 and at most 200.
 */
export function failureThreshold(desiredCount: number): number {
  return Math.min(200, Math.max(3, Math.ceil(desiredCount / 2)));
}

export type CreateDecision =
  | { readonly kind: "create" }
  /** Same name and clientToken as a live service: ECS returns that service again. */
  | { readonly kind: "idempotent"; readonly service: SimService }
  /** Same name, other token, still ACTIVE or DRAINING: ECS refuses. */
  | { readonly kind: "conflict"; readonly service: SimService };

export function decideCreate(state: SimState, cluster: string, name: string, clientToken: string | undefined): CreateDecision {
  const existing = findService(state, cluster, name);
  if (existing === undefined || existing.status === "INACTIVE") return { kind: "create" };
  if (clientToken !== undefined && existing.clientToken === clientToken) return { kind: "idempotent", service: existing };
  return { kind: "conflict", service: existing };
}

/** ECS refuses UpdateService on a DRAINING or INACTIVE service (ServiceNotActiveException). */
export function canUpdate(state: SimState, cluster: string, name: string): boolean {
  const existing = findService(state, cluster, name);
  return existing === undefined || existing.status === "ACTIVE";
}

/** Services that keep a cluster from being deleted (ClusterContainsServicesException). */
export function liveServicesIn(state: SimState, cluster: string): readonly SimService[] {
  return Object.values(state.services).filter((s) => s.cluster === cluster && s.status !== "INACTIVE");
}

export interface CreateInput {
  readonly cluster: string;
  readonly name: string;
  readonly taskDefinition: string;
  readonly desiredCount: number;
  readonly clientToken: string | undefined;
  readonly crashloop: boolean;
  readonly serviceConnectConfiguration?: Readonly<Record<string, unknown>>;
  /** The request's deploymentConfiguration; ECS's defaults (circuit breaker off) without one. */
  readonly deploymentConfiguration?: Partial<DeploymentConfiguration>;
}

/** Records a service moto has just created, with its first deployment IN_PROGRESS and no task running. */
export function createService(state: SimState, input: CreateInput): SimState {
  const [id, seq] = nextDeploymentId(state.seq);
  const deployment = newDeployment(
    id,
    input.taskDefinition,
    input.desiredCount,
    input.crashloop,
    state.now,
    input.serviceConnectConfiguration,
  );
  const service: SimService = {
    cluster: input.cluster,
    name: input.name,
    status: "ACTIVE",
    deploymentConfiguration: { ...DEFAULT_DEPLOYMENT_CONFIGURATION, ...input.deploymentConfiguration },
    desiredCount: input.desiredCount,
    clientToken: input.clientToken,
    deployments: [deployment],
    createdAt: state.now,
    deletedAt: undefined,
    nextStepAt: state.now + state.timing.startDelayMs,
  };
  return withService({ ...state, seq }, service);
}

export interface UpdateInput {
  readonly cluster: string;
  readonly name: string;
  /** The resolved task definition ARN, when the request named one. */
  readonly taskDefinition: string | undefined;
  readonly desiredCount: number | undefined;
  readonly forceNewDeployment: boolean;
  /** Whether the (new) task definition's images crash; ignored without a new deployment. */
  readonly crashloop: boolean;
  /** A Service Connect configuration the request sent; a different one starts a deployment, as in ECS. */
  readonly serviceConnectConfiguration?: Readonly<Record<string, unknown>>;
  /** A deploymentConfiguration the request sent: it replaces the service's (fields it leaves out are kept). */
  readonly deploymentConfiguration?: Partial<DeploymentConfiguration>;
}

/**
 * A new task definition or forceNewDeployment starts a new PRIMARY deployment
 * and demotes the current one to ACTIVE, to be drained as the new one comes
 * up (ECS's rolling update at 100% minimum healthy). A desiredCount-only change
 * moves the PRIMARY deployment's target and leaves its rollout state alone.
 * Unknown services are left alone (moto created them before the model existed).
 */
export function updateService(state: SimState, input: UpdateInput): SimState {
  let service = findService(state, input.cluster, input.name);
  if (service === undefined || service.status !== "ACTIVE") return state;
  const primary = service.deployments[0];
  const desiredCount = input.desiredCount ?? service.desiredCount;
  const deploymentConfiguration = { ...service.deploymentConfiguration, ...input.deploymentConfiguration };
  const newTaskDefinition = input.taskDefinition !== undefined && input.taskDefinition !== primary?.taskDefinition;
  const connect = input.serviceConnectConfiguration ?? primary?.serviceConnectConfiguration;
  const newConnect =
    input.serviceConnectConfiguration !== undefined &&
    JSON.stringify(input.serviceConnectConfiguration) !== JSON.stringify(primary?.serviceConnectConfiguration);
  if (primary === undefined || newTaskDefinition || newConnect || input.forceNewDeployment) {
    const [id, seq] = nextDeploymentId(state.seq);
    const taskDefinition = input.taskDefinition ?? primary?.taskDefinition ?? "";
    const crashloop = input.taskDefinition !== undefined ? input.crashloop : (primary?.crashloop ?? false);
    const fresh = newDeployment(id, taskDefinition, desiredCount, crashloop, state.now, connect);
    // Drained-out deployments have nothing left to show; keep only those with tasks.
    const older = service.deployments
      .map((d): SimDeployment => ({ ...d, status: "ACTIVE", updatedAt: state.now }))
      .filter((d) => d.runningCount > 0);
    return withService(
      { ...state, seq },
      {
        ...service,
        deploymentConfiguration,
        desiredCount,
        deployments: [fresh, ...older],
        nextStepAt: state.now + state.timing.startDelayMs,
      },
    );
  }
  if (input.deploymentConfiguration !== undefined) {
    service = { ...service, deploymentConfiguration };
    if (desiredCount === service.desiredCount) return withService(state, service);
  }
  if (desiredCount === service.desiredCount) return state;
  const retargeted: SimDeployment = {
    ...primary,
    desiredCount,
    pendingCount: Math.max(0, desiredCount - primary.runningCount),
    updatedAt: state.now,
  };
  return withService(state, {
    ...service,
    desiredCount,
    deployments: [retargeted, ...service.deployments.slice(1)],
    nextStepAt: service.nextStepAt ?? state.now + state.timing.stepMs,
  });
}

/** Records a deletion moto accepted: the service drains its tasks, then turns INACTIVE. */
export function deleteService(state: SimState, cluster: string, name: string): SimState {
  const service = findService(state, cluster, name);
  if (service === undefined || service.status !== "ACTIVE") return state;
  return withService(state, {
    ...service,
    status: "DRAINING",
    desiredCount: 0,
    deletedAt: state.now,
    deployments: service.deployments.map((d) => ({ ...d, desiredCount: 0, pendingCount: 0, updatedAt: state.now })),
    nextStepAt: state.now + state.timing.stepMs,
  });
}

/** Sees each step of each service: the service before and after it, at its simulated time. */
export type StepObserver = (before: SimService, after: SimService, at: number) => void;

/**
 * Moves simulated time forward to `now`, applying every step due on the way in
 * time order, so the result does not depend on how the interval is cut up.
 * `onStep` sees every step, e.g. to tell what ECS would have announced.
 */
export function advanceTo(state: SimState, now: number, onStep?: StepObserver): SimState {
  if (now <= state.now) return state;
  const due = Object.entries(state.services).filter(([, s]) => s.nextStepAt !== undefined && s.nextStepAt <= now);
  // Most calls find nothing due; keep the services record as it is then (benchmarks hold thousands).
  if (due.length === 0) return { ...state, now };
  const services: Record<string, SimService> = { ...state.services };
  let seq = state.seq;
  for (const [key, service] of due) {
    let current = service;
    while (current.nextStepAt !== undefined && current.nextStepAt <= now) {
      const before = current;
      const at = current.nextStepAt;
      [current, seq] = step(current, at, state.timing, seq);
      onStep?.(before, current, at);
    }
    services[key] = current;
  }
  return { ...state, now, seq, services };
}

/** Forgets every service (the control API's reset). */
export function clearServices(state: SimState): SimState {
  return { ...state, services: {} };
}

/** Service-level counts as DescribeServices reports them. */
export function serviceCounts(service: SimService): { readonly runningCount: number; readonly pendingCount: number } {
  return {
    runningCount: service.deployments.reduce((n, d) => n + d.runningCount, 0),
    pendingCount: service.deployments.reduce((n, d) => n + d.pendingCount, 0),
  };
}

/** One step of one service at simulated time `at`: at most one task starts, fails or stops per deployment role. */
function step(service: SimService, at: number, timing: SimTiming, seq: number): [SimService, number] {
  if (service.status === "DRAINING") return [drainStep(service, at, timing), seq];
  if (service.status === "INACTIVE") return [{ ...service, nextStepAt: undefined }, seq];
  const [primary, ...older] = service.deployments;
  if (primary === undefined) return [{ ...service, nextStepAt: undefined }, seq];

  // Without rollback, ECS stops launching once the circuit breaker trips; the old tasks keep serving.
  if (primary.rolloutState === "FAILED") return [{ ...service, nextStepAt: undefined }, seq];
  let next = primary;
  let stopOld = false;
  if (next.crashloop && next.desiredCount > 0) {
    const failedTasks = next.failedTasks + 1;
    const breaker = service.deploymentConfiguration.deploymentCircuitBreaker;
    const tripped = breaker.enable && failedTasks >= failureThreshold(next.desiredCount);
    next = {
      ...next,
      failedTasks,
      pendingCount: tripped ? 0 : next.desiredCount,
      rolloutState: tripped ? "FAILED" : "IN_PROGRESS",
      rolloutStateReason: tripped ? "ECS deployment circuit breaker: tasks failed to start." : next.rolloutStateReason,
      updatedAt: at,
    };
    const previous = older.find((d) => d.rolloutState === "COMPLETED");
    if (tripped && breaker.rollback && previous !== undefined) return rollBack(service, next, older, previous, at, timing, seq);
  } else if (next.runningCount < next.desiredCount) {
    const runningCount = next.runningCount + 1;
    next = { ...next, runningCount, pendingCount: next.desiredCount - runningCount, updatedAt: at };
    const oldRunning = older.reduce((n, d) => n + d.runningCount, 0);
    // Rolling update: an old task stops once a new one is up and the service is over its desired count.
    stopOld = oldRunning > 0 && runningCount + oldRunning > next.desiredCount;
  } else if (next.runningCount > next.desiredCount) {
    next = { ...next, runningCount: next.runningCount - 1, pendingCount: 0, updatedAt: at };
  } else {
    stopOld = true;
  }

  const drained = stopOld ? stopOneTask(older, at) : older;
  const remaining = drained.filter((d) => d.runningCount > 0);
  if (next.rolloutState === "IN_PROGRESS" && next.runningCount === next.desiredCount && remaining.length === 0) {
    next = { ...next, rolloutState: "COMPLETED", rolloutStateReason: `ECS deployment ${next.id} completed.`, updatedAt: at };
  }
  const atRest =
    next.rolloutState === "FAILED" ||
    (next.rolloutState === "COMPLETED" && next.runningCount === next.desiredCount && remaining.length === 0);
  // A deployment the circuit breaker failed stays listed, with no task, until the rollback completes.
  const listed = next.rolloutState === "IN_PROGRESS" ? drained.filter((d) => d.runningCount > 0 || d.rolloutState === "FAILED") : remaining;
  return [{ ...service, deployments: [next, ...listed], nextStepAt: atRest ? undefined : at + timing.stepMs }, seq];
}

/**
 * The circuit breaker with rollback: the failed deployment turns ACTIVE
 * (FAILED, no task), and a new PRIMARY deployment of the last completed
 * deployment's task definition rolls the service back.
 */
function rollBack(
  service: SimService,
  failed: SimDeployment,
  older: readonly SimDeployment[],
  previous: SimDeployment,
  at: number,
  timing: SimTiming,
  seq: number,
): [SimService, number] {
  const [id, next] = nextDeploymentId(seq);
  const rollback: SimDeployment = {
    ...newDeployment(id, previous.taskDefinition, service.desiredCount, previous.crashloop, at, previous.serviceConnectConfiguration),
    rolloutStateReason: `ECS deployment circuit breaker: rolling back to deploymentId ${previous.id}.`,
  };
  const demoted: SimDeployment = { ...failed, status: "ACTIVE", desiredCount: 0, pendingCount: 0, updatedAt: at };
  return [{ ...service, deployments: [rollback, demoted, ...older], nextStepAt: at + timing.startDelayMs }, next];
}

function drainStep(service: SimService, at: number, timing: SimTiming): SimService {
  const deployments = stopOneTask(service.deployments, at);
  const running = deployments.reduce((n, d) => n + d.runningCount, 0);
  const drainEnds = (service.deletedAt ?? at) + timing.drainMs;
  if (running > 0) return { ...service, deployments, nextStepAt: at + timing.stepMs };
  if (at >= drainEnds) return { ...service, deployments, status: "INACTIVE", nextStepAt: undefined };
  return { ...service, deployments, nextStepAt: drainEnds };
}

/** Stops one task of the oldest deployment that still has one. */
function stopOneTask(deployments: readonly SimDeployment[], at: number): readonly SimDeployment[] {
  let index = -1;
  for (let i = deployments.length - 1; i >= 0; i--) {
    if ((deployments[i]?.runningCount ?? 0) > 0) {
      index = i;
      break;
    }
  }
  return deployments.map((d, i) => (i === index ? { ...d, runningCount: d.runningCount - 1, updatedAt: at } : d));
}

function newDeployment(
  id: string,
  taskDefinition: string,
  desiredCount: number,
  crashloop: boolean,
  now: number,
  serviceConnectConfiguration: Readonly<Record<string, unknown>> | undefined,
): SimDeployment {
  return {
    id,
    status: "PRIMARY",
    taskDefinition,
    desiredCount,
    runningCount: 0,
    pendingCount: desiredCount,
    failedTasks: 0,
    rolloutState: "IN_PROGRESS",
    rolloutStateReason: `ECS deployment ${id} in progress.`,
    crashloop,
    ...(serviceConnectConfiguration !== undefined ? { serviceConnectConfiguration } : {}),
    createdAt: now,
    updatedAt: now,
  };
}

/** ECS deployment ids look like ecs-svc/ followed by 19 digits. */
function nextDeploymentId(seq: number): [string, number] {
  const next = seq + 1;
  return [`ecs-svc/${String(next).padStart(19, "0")}`, next];
}

function withService(state: SimState, service: SimService): SimState {
  return { ...state, services: { ...state.services, [serviceKey(service.cluster, service.name)]: service } };
}

/**
 * The deploymentConfiguration of a CreateService/UpdateService request, in
 * the model's terms (moto ignores it). Empty when the request has none.
 */
export function deploymentConfigurationOf(input: Readonly<Record<string, unknown>>): {
  deploymentConfiguration?: Partial<DeploymentConfiguration>;
} {
  const raw = input["deploymentConfiguration"];
  if (raw === null || typeof raw !== "object") return {};
  const config = raw as Record<string, unknown>;
  const breaker = config["deploymentCircuitBreaker"] as Record<string, unknown> | undefined;
  const out: { -readonly [K in keyof DeploymentConfiguration]?: DeploymentConfiguration[K] } = {};
  if (breaker !== null && typeof breaker === "object")
    out.deploymentCircuitBreaker = { enable: breaker["enable"] === true, rollback: breaker["rollback"] === true };
  if (typeof config["maximumPercent"] === "number") out.maximumPercent = config["maximumPercent"];
  if (typeof config["minimumHealthyPercent"] === "number") out.minimumHealthyPercent = config["minimumHealthyPercent"];
  return { deploymentConfiguration: out };
}
