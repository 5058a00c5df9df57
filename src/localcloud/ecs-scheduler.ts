import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "pino";
import { CloudFormationHandler } from "./cloudformation-handler.js";
import { SimClock } from "./clock.js";
import { CONTROL_PREFIX, controlAnswer } from "./control-api.js";
import { DynamoDbHandler } from "./dynamodb-handler.js";
import { tablesNamed } from "./dynamodb-requests.js";
import { isDynamoDbTarget, ReadWriteGate } from "./dynamodb-serializer.js";
import { DynamoDbStreamsHandler, isStreamsTarget } from "./dynamodb-streams-handler.js";
import { ECS_TARGET, EcsApi } from "./ecs-api.js";
import { EcsEventPublisher } from "./ecs-events.js";
import { serviceCounts, type SimService, type SimTiming } from "./ecs-simulation.js";
import { FaultInjector, type FaultRule } from "./faults.js";
import { parseJson } from "./json.js";
import { awsError, describeRequest, forward, header, jsonAnswer, readBody, send, type Upstream } from "./proxy.js";
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
 *
 * This module is the front door: it counts, throttles and faults each call,
 * then routes it to control-api.ts, dynamodb-handler.ts,
 * cloudformation-handler.ts, ecs-api.ts or straight to moto.
 */

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
  /**
   * Publish ECS's events (task, deployment and service action) to moto's
   * default EventBridge bus as services move, the way ECS does (ecs-events.ts).
   * Ignored in passthrough mode. @default true
   */
  readonly ecsEvents?: boolean;
}

/** How often, in real time, the model is moved on by itself so that its events go out without a call to wait for. */
const EVENT_TICK_MS = 200;

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
  /** TransactWriteItems rehearsed on scratch tables since start (dynamodb-transactions.ts). */
  readonly rehearsedTransactions: number;
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
  readonly #moto: Upstream;
  readonly #motoEndpoint: string;
  readonly #clock: SimClock;
  readonly #ecs: EcsApi;
  readonly #dynamoDb: DynamoDbHandler;
  readonly #streams: DynamoDbStreamsHandler;
  readonly #cloudFormation: CloudFormationHandler;
  readonly #throttle = new EcsThrottle();
  readonly #faults = new FaultInjector();
  readonly #calls = new Map<string, number>();
  readonly #simulate: boolean;
  readonly #log: Logger | undefined;
  readonly #server: Server;
  readonly #events: EcsEventPublisher | undefined;
  #ticker: NodeJS.Timeout | undefined;
  #throttling: boolean;
  #port = 0;

  constructor(options: EcsSchedulerOptions) {
    const url = new URL(options.motoEndpoint);
    this.#moto = { host: url.hostname, port: Number(url.port) };
    this.#motoEndpoint = options.motoEndpoint.replace(/\/$/, "");
    this.#cloudFormation = new CloudFormationHandler(this.#moto, this.#motoEndpoint, "us-east-1", options.log);
    this.#clock = new SimClock(options.speed ?? 10);
    this.#simulate = (options.mode ?? "simulate") === "simulate";
    this.#events =
      this.#simulate && options.ecsEvents !== false
        ? new EcsEventPublisher({ motoEndpoint: this.#motoEndpoint, log: options.log })
        : undefined;
    this.#ecs = new EcsApi(this.#moto, this.#clock, options.timing ?? {}, options.log, this.#events);
    const transactionsApart = new ReadWriteGate();
    this.#dynamoDb = new DynamoDbHandler(this.#moto, options.log, transactionsApart);
    this.#streams = new DynamoDbStreamsHandler(this.#moto, { gate: transactionsApart });
    this.#throttling = options.throttling ?? false;
    this.#log = options.log;
    this.#server = createServer((req, res) => {
      this.#handle(req, res).catch((err: unknown) => {
        const message = err instanceof Error ? err.message : String(err);
        // A caller that went away (a long poll ended at shutdown) is owed nothing, and nothing went wrong for anyone.
        if (res.destroyed || req.socket.destroyed) this.#log?.debug({ err }, "local scheduler dropped a request its caller left");
        else this.#log?.error({ err }, "local scheduler failed a request");
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
        if (this.#events !== undefined) {
          // ECS announces a task when it starts, not when someone next asks about the service.
          this.#ticker = setInterval(() => this.#ecs.sync(), EVENT_TICK_MS);
          this.#ticker.unref();
        }
        resolve();
      });
    });
  }

  close(): Promise<void> {
    this.#cloudFormation.close();
    if (this.#ticker !== undefined) clearInterval(this.#ticker);
    this.#events?.close();
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
    return this.#ecs.service(cluster, name);
  }

  snapshot(): SchedulerSnapshot {
    const state = this.#ecs.sync();
    return {
      now: state.now,
      speed: this.#clock.speed,
      throttling: this.#throttling,
      timing: state.timing,
      faults: this.#faults.rules(),
      services: Object.values(state.services).map((s) => ({ ...s, ...serviceCounts(s) })),
      calls: this.calls(),
      serializedDynamoDbCalls: this.#dynamoDb.serializedCalls,
      rehearsedTransactions: this.#dynamoDb.rehearsedTransactions,
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
    this.#dynamoDb.resetCount();
  }

  async reset(options: { readonly moto?: boolean } = {}): Promise<void> {
    const moto = options.moto === true;
    if (moto) {
      const res = await fetch(`${this.#motoEndpoint}/moto-api/reset`, { method: "POST" });
      if (!res.ok) throw new Error(`moto reset failed: HTTP ${res.status}`);
      this.#dynamoDb.motoReset();
    }
    this.#ecs.clear(moto);
    this.#faults.setRules([]);
    this.resetCalls();
    this.#throttle.reset();
  }

  // ---- the front door ----

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = req.url ?? "/";
    const body = await readBody(req);
    if (url.startsWith(CONTROL_PREFIX)) {
      const settings = { speed: () => this.#clock.speed, throttling: () => this.#throttling, faults: () => this.#faults.rules() };
      return send(res, await controlAnswer(this, settings, req.method ?? "GET", url, body));
    }

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
    if (isDynamoDbTarget(target)) return send(res, await this.#dynamoDb.handle(call, dynamoDbInput, fault?.unprocessed));
    if (isStreamsTarget(target)) return send(res, await this.#streams.handle(call, dynamoDbInput));
    if (!this.#simulate) return send(res, await forward(this.#moto, call));
    if (this.#cloudFormation.mends(call)) return send(res, await this.#cloudFormation.handle(call));
    send(res, isEcs ? await this.#ecs.handle(call) : await forward(this.#moto, call));
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
