import { randomBytes } from "node:crypto";
import { EventBridgeClient, PutEventsCommand, type PutEventsRequestEntry } from "@aws-sdk/client-eventbridge";
import type { Logger } from "pino";
import { awsClient, RETRIES } from "../providers/aws-clients.js";
import { failureThreshold, serviceKey, type SimDeployment, type SimService } from "./ecs-simulation.js";

/**
 * What ECS announces on the account's default EventBridge bus (source
 * aws.ecs) as the local scheduler's services move: "ECS Task State Change"
 * for each task that starts or stops, "ECS Deployment State Change" when a
 * deployment starts, completes or fails, "ECS Service Action" when a service
 * reaches a steady state or cannot start tasks. The shapes are ECS's
 * (docs/adr/0017-ecs-events-as-hints.md), so an EventBridge rule written for
 * ECS matches them in moto as it would in AWS.
 *
 * The model counts tasks rather than keeping them, so tasks get ARNs here:
 * one per start, and a stop names the oldest task still running in that
 * deployment. Publishing is best effort, as ECS's delivery is to us: a failed
 * PutEvents is logged and the events are dropped; nothing waits on it.
 */

export const ECS_SOURCE = "aws.ecs";

/** Failed starts after which ECS calls a service's task start impaired: the circuit breaker's smallest threshold. */
const IMPAIRED_AFTER = failureThreshold(0);

/** Where a service lives, from moto's answer to the call that created it. */
export interface ServiceIdentity {
  readonly serviceArn: string;
  readonly clusterArn: string;
}

/** One event, ready for PutEvents, and the region whose default bus takes it. */
export interface EcsEvent {
  readonly region: string;
  readonly entry: PutEventsRequestEntry;
}

/** Task ids of each running deployment, so a stop names a task a start announced. */
export class TaskLedger {
  readonly #running = new Map<string, string[]>();

  start(service: string, deploymentId: string): string {
    const id = randomBytes(16).toString("hex");
    const key = `${service}#${deploymentId}`;
    const ids = this.#running.get(key) ?? [];
    ids.push(id);
    this.#running.set(key, ids);
    return id;
  }

  /** The oldest task of the deployment (a made-up one when the model started it before anyone listened). */
  stop(service: string, deploymentId: string): string {
    const key = `${service}#${deploymentId}`;
    const ids = this.#running.get(key);
    const id = ids?.shift() ?? randomBytes(16).toString("hex");
    if (ids?.length === 0) this.#running.delete(key);
    return id;
  }

  /** A task that failed to start: it never ran, so it is not kept. */
  failed(): string {
    return randomBytes(16).toString("hex");
  }

  clear(): void {
    this.#running.clear();
  }
}

/**
 * The events one change of a service makes ECS send: `before` is undefined
 * for a service just created. Pure but for the ledger's task ids.
 */
export function ecsEventsOf(
  before: SimService | undefined,
  after: SimService,
  at: number,
  identity: ServiceIdentity,
  tasks: TaskLedger,
): EcsEvent[] {
  const arn = parseArn(identity.serviceArn);
  if (arn === undefined) return [];
  const out: EcsEvent[] = [];
  const time = new Date(at);
  const iso = time.toISOString();
  const key = serviceKey(after.cluster, after.name);
  const event = (detailType: string, resources: string[], detail: Record<string, unknown>): void => {
    out.push({
      region: arn.region,
      entry: { Source: ECS_SOURCE, DetailType: detailType, Resources: resources, Detail: JSON.stringify(detail), Time: time },
    });
  };
  const deployment = (d: SimDeployment, eventName: string, eventType: "INFO" | "ERROR") =>
    event("ECS Deployment State Change", [identity.serviceArn], {
      eventType,
      eventName,
      deploymentId: d.id,
      updatedAt: iso,
      reason: d.rolloutStateReason,
    });
  const task = (d: SimDeployment, id: string, how: "RUNNING" | "STOPPED" | "FAILED") => {
    const taskArn = `arn:${arn.partition}:ecs:${arn.region}:${arn.account}:task/${after.cluster}/${id}`;
    const stopped = how !== "RUNNING";
    event("ECS Task State Change", [taskArn], {
      clusterArn: identity.clusterArn,
      taskArn,
      taskDefinitionArn: d.taskDefinition,
      group: `service:${after.name}`,
      startedBy: d.id,
      launchType: "FARGATE",
      availabilityZone: `${arn.region}a`,
      connectivity: stopped ? undefined : "CONNECTED",
      lastStatus: stopped ? "STOPPED" : "RUNNING",
      desiredStatus: stopped ? "STOPPED" : "RUNNING",
      createdAt: iso,
      updatedAt: iso,
      ...(how === "RUNNING" ? { startedAt: iso, version: 2 } : {}),
      ...(how === "STOPPED"
        ? {
            stopCode: "ServiceSchedulerInitiated",
            stoppedReason: `Scaling activity initiated by (deployment ${d.id})`,
            stoppingAt: iso,
            stoppedAt: iso,
            version: 5,
          }
        : {}),
      ...(how === "FAILED"
        ? { stopCode: "EssentialContainerExited", stoppedReason: "Essential container in task exited", stoppedAt: iso, version: 3 }
        : {}),
    });
  };

  // In the order ECS tells it: tasks first, then what they amount to.
  const previous = new Map((before?.deployments ?? []).map((d) => [d.id, d]));
  const started: SimDeployment[] = [];
  const settledDeployments: SimDeployment[] = [];
  let impaired = false;
  for (const d of after.deployments) {
    const was = previous.get(d.id);
    previous.delete(d.id);
    if (was === undefined) started.push(d);
    const running = d.runningCount - (was?.runningCount ?? 0);
    for (let i = 0; i < running; i++) task(d, tasks.start(key, d.id), "RUNNING");
    for (let i = 0; i < -running; i++) task(d, tasks.stop(key, d.id), "STOPPED");
    const failed = d.failedTasks - (was?.failedTasks ?? 0);
    for (let i = 0; i < failed; i++) task(d, tasks.failed(), "FAILED");
    if (was !== undefined && was.rolloutState !== d.rolloutState) settledDeployments.push(d);
    if ((was?.failedTasks ?? 0) < IMPAIRED_AFTER && d.failedTasks >= IMPAIRED_AFTER) impaired = true;
  }
  // A deployment drained out of the list: its last tasks stopped in this step.
  for (const d of previous.values()) for (let i = 0; i < d.runningCount; i++) task(d, tasks.stop(key, d.id), "STOPPED");
  if (impaired)
    event("ECS Service Action", [identity.serviceArn], {
      eventType: "WARN",
      eventName: "SERVICE_TASK_START_IMPAIRED",
      clusterArn: identity.clusterArn,
      createdAt: iso,
    });
  for (const d of settledDeployments) {
    if (d.rolloutState === "COMPLETED") deployment(d, "SERVICE_DEPLOYMENT_COMPLETED", "INFO");
    if (d.rolloutState === "FAILED") deployment(d, "SERVICE_DEPLOYMENT_FAILED", "ERROR");
  }
  // A rollback starts once the failed deployment is announced.
  for (const d of started) deployment(d, "SERVICE_DEPLOYMENT_IN_PROGRESS", "INFO");

  const settled = before !== undefined && before.nextStepAt !== undefined && after.nextStepAt === undefined;
  if (settled && after.status === "ACTIVE" && after.deployments[0]?.rolloutState !== "FAILED")
    event("ECS Service Action", [identity.serviceArn], {
      eventType: "INFO",
      eventName: "SERVICE_STEADY_STATE",
      clusterArn: identity.clusterArn,
      createdAt: iso,
    });
  return out;
}

function parseArn(arn: string): { partition: string; region: string; account: string } | undefined {
  const [scheme, partition, service, region, account] = arn.split(":");
  if (scheme !== "arn" || service !== "ecs" || partition === undefined || region === undefined || account === undefined) return undefined;
  return { partition, region, account };
}

export interface EcsEventPublisherOptions {
  /** moto's endpoint: the events go straight to its EventBridge, not through the scheduler's front door. */
  readonly motoEndpoint: string;
  readonly log?: Logger | undefined;
  /** Events kept while PutEvents lags; past it the oldest are dropped (and counted). @default 10000 */
  readonly maxPending?: number;
}

/** PutEvents's limit. */
const BATCH = 10;

/**
 * Sends events to the default bus in batches of ten, one call at a time, in
 * the order they were made, without ever making the caller wait.
 */
export class EcsEventPublisher {
  readonly #o: EcsEventPublisherOptions;
  readonly #clients = new Map<string, EventBridgeClient>();
  #pending: EcsEvent[] = [];
  #sending: Promise<void> | undefined;
  #dropped = 0;
  #published = 0;

  constructor(options: EcsEventPublisherOptions) {
    this.#o = options;
  }

  /** Events sent so far, and events dropped (failed calls, overflow). */
  get counts(): { readonly published: number; readonly dropped: number } {
    return { published: this.#published, dropped: this.#dropped };
  }

  publish(events: readonly EcsEvent[]): void {
    if (events.length === 0) return;
    this.#pending.push(...events);
    const max = this.#o.maxPending ?? 10_000;
    if (this.#pending.length > max) {
      const over = this.#pending.length - max;
      this.#pending = this.#pending.slice(over);
      this.#dropped += over;
      this.#o.log?.warn({ dropped: over }, "ECS events are made faster than moto takes them; dropping the oldest");
    }
    this.#sending ??= this.#drain().finally(() => (this.#sending = undefined));
  }

  /** Resolves once everything published so far has been sent (or dropped). */
  async flush(): Promise<void> {
    while (this.#sending !== undefined) await this.#sending;
  }

  close(): void {
    this.#pending = [];
    for (const c of this.#clients.values()) c.destroy();
    this.#clients.clear();
  }

  async #drain(): Promise<void> {
    while (this.#pending.length > 0) {
      const region = this.#pending[0]?.region ?? "";
      let n = 0;
      while (n < BATCH && n < this.#pending.length && this.#pending[n]?.region === region) n++;
      const batch = this.#pending.splice(0, n);
      try {
        const out = await this.#client(region).send(new PutEventsCommand({ Entries: batch.map((e) => e.entry) }));
        const failed = out.FailedEntryCount ?? 0;
        this.#published += batch.length - failed;
        this.#dropped += failed;
        if (failed > 0) this.#o.log?.warn({ failed, codes: out.Entries?.map((e) => e.ErrorCode) }, "moto refused some ECS events");
      } catch (err) {
        this.#dropped += batch.length;
        this.#o.log?.warn({ err, events: batch.length }, "could not publish ECS events to moto's EventBridge");
      }
    }
  }

  #client(region: string): EventBridgeClient {
    let client = this.#clients.get(region);
    if (client === undefined) {
      client = awsClient(
        EventBridgeClient,
        { region, endpoint: this.#o.motoEndpoint, credentials: { accessKeyId: "test", secretAccessKey: "test" } },
        RETRIES.none,
      );
      this.#clients.set(region, client);
    }
    return client;
  }
}
