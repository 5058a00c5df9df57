import { BatchWriteItemCommand, DeleteItemCommand, GetItemCommand, PutItemCommand, ScanCommand } from "@aws-sdk/client-dynamodb";
import { marshall, unmarshall } from "@aws-sdk/util-dynamodb";
import { pino } from "pino";
import { loadConfig, type Config } from "../src/config.js";
import type { SimTiming } from "../src/localcloud/ecs-simulation.js";
import { LOCAL_CREDENTIALS } from "../src/localcloud/index.js";
import { startController, type RunningController } from "../src/operator/run-controller.js";
import { diffSnapshots, type CallEvent, type CallSnapshot } from "../src/providers/call-counter.js";
import type { TenantStatus } from "../src/tenants/status.js";
import { startTestCloud, type TestCloud } from "../tests/support/localcloud.js";
import { setAttributes } from "../tests/support/records.js";

/**
 * One benchmark world: the local cloud (moto behind the local ECS scheduler,
 * on loopback, bootstrapped like a real account) and an in-process controller
 * built by the real composition root, so every figure goes through the real
 * SDK code path. Adds what the benchmarks need on top: call windows (the
 * scheduler's count of what reached ECS, and the controller's own counter),
 * quiet detection, and helpers to edit records.
 */

/** Everything that shapes the figures, printed next to them. */
export interface BenchSettings {
  /** Simulated ECS milliseconds per real millisecond. */
  readonly speed: number;
  readonly throttling: boolean;
  readonly timing: SimTiming;
  readonly concurrency: number;
  /** Controller tuning (ControllerTuning), production defaults unless overridden. */
  readonly pollMs: number;
  readonly maxPollMs: number;
  readonly streamPollMs: number;
  readonly resyncSeconds: number;
  readonly leaseSeconds: number;
}

export interface FixtureOptions {
  readonly speed: number;
  readonly throttling: boolean;
  readonly concurrency: number;
  readonly pollMs: number;
  readonly maxPollMs: number;
  readonly streamPollMs: number;
  /** More controller environment (ROLLOUT_*...). */
  readonly env?: Readonly<Record<string, string>>;
  /** Load balancers, one listener each (LISTENER_ARNS). @default 1 */
  readonly albs?: number;
}

/** Production defaults of ControllerTuning (src/operator/run-controller.ts). */
export const DEFAULT_TUNING = { pollMs: 1000, maxPollMs: 30_000, streamPollMs: 500 } as const;

/*
 * A long lease keeps renewals (UpdateItem on the lease table) out of the
 * measured windows, and a long resync keeps periodic resyncs out: the bench
 * triggers resyncs itself when it measures them.
 */
const LEASE_SECONDS = 600;
const RESYNC_SECONDS = 3600;

/** Calls seen in a window: what reached the ECS endpoint, and what the controller counted. */
export interface WindowCounts {
  /** The scheduler's count of ECS requests received (HTTP requests, retries and throttled ones included), by action. */
  readonly ecsReceived: Record<string, number>;
  /** The controller's CallCounter in the window (logical calls and HTTP attempts, keyed service:operation:outcome). */
  readonly controller: CallSnapshot;
  readonly reconciles: number;
  readonly ms: number;
}

export interface CallWindow {
  end(): Promise<WindowCounts>;
}

export class BenchFixture {
  readonly cloud: TestCloud;
  readonly controller: RunningController;
  readonly config: Config;
  readonly settings: BenchSettings;
  #lastActivity = performance.now();
  readonly #unsubscribe: () => void;

  private constructor(cloud: TestCloud, controller: RunningController, config: Config, settings: BenchSettings) {
    this.cloud = cloud;
    this.controller = controller;
    this.config = config;
    this.settings = settings;
    // The stream is polled all the time; only other calls mean the controller is working.
    this.#unsubscribe = controller.calls.onCall((e) => {
      if (e.service !== "streams") this.#lastActivity = performance.now();
    });
  }

  static async start(options: FixtureOptions): Promise<BenchFixture> {
    useLocalCredentials();
    const cloud = await startTestCloud({
      speed: options.speed,
      throttling: options.throttling,
      ...(options.albs !== undefined ? { albs: options.albs } : {}),
    });
    try {
      const config = loadConfig({
        ...cloud.env,
        CONCURRENCY: String(options.concurrency),
        LEASE_SECONDS: String(LEASE_SECONDS),
        RESYNC_SECONDS: String(RESYNC_SECONDS),
        LOG_LEVEL: "silent",
        ...options.env,
      });
      const log = pino({ level: process.env["BENCH_LOG_LEVEL"] ?? "silent" });
      const controller = await startController(config, log, {
        pollMs: options.pollMs,
        maxPollMs: options.maxPollMs,
        streamPollMs: options.streamPollMs,
        http: false,
        shutdownTimeoutMs: 5000,
      });
      const settings: BenchSettings = {
        speed: options.speed,
        throttling: options.throttling,
        timing: cloud.control.snapshot().timing,
        concurrency: config.concurrency,
        pollMs: options.pollMs,
        maxPollMs: options.maxPollMs,
        streamPollMs: options.streamPollMs,
        resyncSeconds: config.resyncSeconds,
        leaseSeconds: config.leaseSeconds,
      };
      return new BenchFixture(cloud, controller, config, settings);
    } catch (err) {
      await cloud.stop();
      throw new Error(`starting the benchmark world: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  }

  async stop(): Promise<void> {
    this.#unsubscribe();
    await this.controller.stop();
    await this.cloud.stop();
  }

  /** Subscribes to the controller's calls (CallEvent), returns the unsubscribe function. */
  onCall(listener: (event: CallEvent, at: number) => void): () => void {
    return this.controller.calls.onCall((e) => listener(e, performance.now()));
  }

  /** Starts counting; end() returns what happened since. */
  async window(): Promise<CallWindow> {
    const ecsBefore = this.cloud.control.ecsCalls();
    const ctrlBefore = this.controller.calls.snapshot();
    const reconcilesBefore = await this.reconciles();
    const started = performance.now();
    return {
      end: async () => {
        const ecsAfter = this.cloud.control.ecsCalls();
        const ecsReceived: Record<string, number> = {};
        for (const [action, n] of Object.entries(ecsAfter)) {
          const d = n - (ecsBefore[action] ?? 0);
          if (d !== 0) ecsReceived[action] = d;
        }
        return {
          ecsReceived,
          controller: diffSnapshots(ctrlBefore, this.controller.calls.snapshot()),
          reconciles: (await this.reconciles()) - reconcilesBefore,
          ms: performance.now() - started,
        };
      },
    };
  }

  /** Reconciles finished so far, whatever their result (from the controller's metrics). */
  async reconciles(): Promise<number> {
    const text = await this.controller.metrics.render();
    let sum = 0;
    for (const line of text.split("\n")) {
      if (line.startsWith("tenant_operator_reconcile_total{")) sum += Number(line.split(" ").pop() ?? 0);
    }
    return sum;
  }

  /**
   * Resolves once the controller has made no AWS call (stream polling aside)
   * for quietMs and nothing waits in its queue. A requeue delayed further than
   * quietMs is not seen: callers wait for a phase or a reconcile count first.
   */
  async waitQuiet(quietMs: number, timeoutMs = 60_000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const now = performance.now();
      if (now - this.#lastActivity >= quietMs && this.controller.manager.queueDepth === 0) return;
      if (now > deadline) throw new Error(`controller still busy after ${timeoutMs} ms`);
      await sleep(Math.max(10, Math.min(50, quietMs / 4)));
    }
  }

  /** Waits until at least n more reconciles than `from` have finished. */
  async waitReconciles(from: number, n: number, timeoutMs = 60_000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while ((await this.reconciles()) - from < n) {
      if (performance.now() > deadline) throw new Error(`fewer than ${n} reconciles after ${timeoutMs} ms`);
      await sleep(20);
    }
  }

  // ---- records ----

  async put(record: Record<string, unknown>): Promise<void> {
    await this.cloud.clients.dynamodb.send(
      new PutItemCommand({ TableName: this.config.tenantsTable, Item: marshall(record, { removeUndefinedValues: true }) }),
    );
  }

  /** Writes many records in BatchWriteItem calls of 25, all batches at once. */
  async putMany(records: readonly Record<string, unknown>[]): Promise<void> {
    const batches: Record<string, unknown>[][] = [];
    for (let i = 0; i < records.length; i += 25) batches.push(records.slice(i, i + 25));
    await Promise.all(
      batches.map(async (batch) => {
        let pending = batch.map((r) => ({ PutRequest: { Item: marshall(r, { removeUndefinedValues: true }) } }));
        while (pending.length > 0) {
          const res = await this.cloud.clients.dynamodb.send(
            new BatchWriteItemCommand({ RequestItems: { [this.config.tenantsTable]: pending } }),
          );
          pending = (res.UnprocessedItems?.[this.config.tenantsTable] ?? []).flatMap((w) =>
            w.PutRequest?.Item ? [{ PutRequest: { Item: w.PutRequest.Item } }] : [],
          );
        }
      }),
    );
  }

  update(tenantId: string, set: Record<string, unknown>): Promise<void> {
    return setAttributes(this.cloud.clients.dynamodb, this.config.tenantsTable, tenantId, set);
  }

  async remove(tenantId: string): Promise<void> {
    await this.cloud.clients.dynamodb.send(new DeleteItemCommand({ TableName: this.config.tenantsTable, Key: marshall({ tenantId }) }));
  }

  async status(tenantId: string): Promise<TenantStatus | undefined> {
    const res = await this.cloud.clients.dynamodb.send(
      new GetItemCommand({
        TableName: this.config.tenantsTable,
        Key: marshall({ tenantId }),
        ConsistentRead: true,
        ProjectionExpression: "#s",
        ExpressionAttributeNames: { "#s": "status" },
      }),
    );
    return res.Item ? (unmarshall(res.Item)["status"] as TenantStatus | undefined) : undefined;
  }

  /** Polls the record's status (GetItem, ConsistentRead) every everyMs until the check passes. */
  async waitForStatus(
    tenantId: string,
    check: (s: TenantStatus) => boolean,
    what: string,
    timeoutMs = 60_000,
    everyMs = 20,
  ): Promise<TenantStatus> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const s = await this.status(tenantId);
      if (s !== undefined && check(s)) return s;
      if (performance.now() > deadline)
        throw new Error(`timed out waiting for ${tenantId} ${what} (last phase ${s?.phase ?? "none"}: ${s?.message ?? ""})`);
      await sleep(everyMs);
    }
  }

  /** Phases of every record, by a consistent Scan. */
  async phases(): Promise<Record<string, number>> {
    const counts: Record<string, number> = {};
    let start: Record<string, import("@aws-sdk/client-dynamodb").AttributeValue> | undefined;
    do {
      const res = await this.cloud.clients.dynamodb.send(
        new ScanCommand({ TableName: this.config.tenantsTable, ConsistentRead: true, ...(start ? { ExclusiveStartKey: start } : {}) }),
      );
      for (const item of res.Items ?? []) {
        const phase = (unmarshall(item)["status"] as TenantStatus | undefined)?.phase ?? "none";
        counts[phase] = (counts[phase] ?? 0) + 1;
      }
      start = res.LastEvaluatedKey;
    } while (start !== undefined);
    return counts;
  }

  /** Real time (performance.now scale) of a simulated ECS instant, assuming speed did not change since. */
  realTimeOfSim(simMs: number): number {
    const speed = this.settings.speed;
    if (speed === 0) return Number.NaN;
    return performance.now() - (this.cloud.control.now() - simMs) / speed;
  }
}

/**
 * The controller's clients use the SDK's default credential chain: give it the
 * local cloud's throwaway keys, and never let it look for a profile or ask
 * instance metadata (a link-local address, off limits here).
 */
function useLocalCredentials(): void {
  for (const [k, v] of Object.entries(LOCAL_CREDENTIALS_ENV)) process.env[k] = v;
  process.env["AWS_EC2_METADATA_DISABLED"] = "true";
  delete process.env["AWS_PROFILE"];
}

const LOCAL_CREDENTIALS_ENV = {
  AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
  AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
} as const;

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
