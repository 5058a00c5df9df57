import type { Logger } from "pino";
import { Controller } from "../reconciler/controller.js";
import type { LeaderLease } from "../reconciler/lease.js";
import { WorkQueue } from "../reconciler/queue.js";
import type { QueueMetricsProvider } from "../reconciler/queue-metrics.js";
import { jitteredResyncMs } from "../reconciler/resync-jitter.js";
import type { ReconcileResult } from "../reconciler/result.js";
import { POOL_KEY } from "../tiers/desired.js";
import { describeError } from "./errors.js";
import type { EcsPort, TenantChange, TenantChangeSource, TenantHintSource, TenantStore } from "../ports.js";
import type { TenantReconciler } from "./tenant-reconciler.js";
import type { LeaderContext } from "./rollout-executor.js";

/** Work that runs only while this process leads (the rollout executor), started and stopped with the reconcilers. */
export interface LeaderTask {
  start(ctx: LeaderContext): Promise<void>;
  stop(): Promise<void>;
}

export interface ManagerOptions {
  readonly store: TenantStore;
  readonly changes: TenantChangeSource;
  readonly ecs: EcsPort;
  readonly reconciler: TenantReconciler;
  readonly lease: LeaderLease;
  readonly log: Logger;
  readonly concurrency: number;
  readonly resyncMs: number;
  /** Clusters shared by many tenants, swept for orphans at each resync. */
  readonly sharedClusters: readonly string[];
  /** Called after every reconcile (metrics). */
  readonly onResult?: (key: string, result: ReconcileResult, durationMs: number) => void;
  /** Bound on waiting for in-flight reconciles at shutdown. @default 20000 */
  readonly shutdownTimeoutMs?: number;
  /** Where the work queue (named "tenant") reports its workqueue_* metrics. @default none */
  readonly queueMetrics?: QueueMetricsProvider;
  /** @default Date.now */
  readonly now?: () => number;
  readonly leaderTasks?: readonly LeaderTask[];
  /** ECS events naming keys to look at, queued behind fresh edits (docs/adr/0017-ecs-events-as-hints.md). @default none */
  readonly hints?: TenantHintSource;
  /** Draws the resync's jitter. @default Math.random */
  readonly random?: () => number;
}

/** The work queue's name in its metrics, as controller-runtime names a queue after its controller. */
export const QUEUE_NAME = "tenant";

/** How soon a failed initial sync or resync is tried again. */
const RESYNC_RETRY_MS = 5000;

export type Role = "starting" | "standby" | "leader" | "stopped";

/**
 * Wires sources (stream, resync timer, orphan sweep) to the work queue and the
 * workers, and runs them only while this process holds the leader lease, the
 * way controller-runtime's manager starts its controllers after election.
 */
export class Manager {
  readonly #o: ManagerOptions;
  #role: Role = "starting";
  #queue: WorkQueue<string> | undefined;
  #controller: Controller<string> | undefined;
  #resyncTimer: NodeJS.Timeout | undefined;
  #synced = false;
  #changesStarted = false;
  /** When this process began leading, and when a resync last queued everything (epoch ms). */
  #leadingSince: number | undefined;
  #lastResyncAt: number | undefined;
  #transition: Promise<void> = Promise.resolve();
  readonly #listeners = new Set<(role: Role) => void>();

  constructor(options: ManagerOptions) {
    this.#o = options;
  }

  get role(): Role {
    return this.#role;
  }

  /** Ready: a leader once its initial sync is done; a standby once it has tried for the lease. */
  get ready(): boolean {
    return this.#role === "standby" || (this.#role === "leader" && this.#synced);
  }

  get queueDepth(): number {
    return this.#queue?.len() ?? 0;
  }

  /**
   * Seconds since a resync last queued every tenant, counted from no earlier
   * than the start of this leadership (a failing initial sync ages from
   * there). Undefined unless leader: a standby does not resync.
   */
  resyncAgeSeconds(): number | undefined {
    if (this.#role !== "leader" || this.#leadingSince === undefined) return undefined;
    const since = Math.max(this.#leadingSince, this.#lastResyncAt ?? 0);
    return Math.max(0, this.#now() - since) / 1000;
  }

  #now(): number {
    return (this.#o.now ?? Date.now)();
  }

  onRoleChange(listener: (role: Role) => void): void {
    this.#listeners.add(listener);
  }

  async start(): Promise<void> {
    const lease = this.#o.lease;
    // The transition queue logs its own failures and never rejects, so nothing awaits these.
    lease.onAcquired(() => void this.#enqueueTransition(() => this.#lead()));
    lease.onLost(() => void this.#enqueueTransition(() => this.#standBy("lease lost")));
    await lease.start();
    if (!lease.isLeader && this.#role === "starting") this.#setRole("standby");
  }

  /** Stops taking keys, lets in-flight reconciles finish within the bound, releases the lease. */
  async stop(): Promise<void> {
    await this.#enqueueTransition(async () => {
      await this.#stopLeading();
      this.#setRole("stopped");
    });
    await this.#o.lease.stop();
  }

  /** Enqueue keys as fresh work (a user edit), e.g. from `tenantctl` or tests. */
  enqueue(tenantIds: readonly string[]): void {
    for (const id of tenantIds) this.#queue?.add(id, "fresh");
  }

  /** Runs a full resync now (a person's "look at everything again"); a no-op unless leader. */
  async resyncNow(): Promise<boolean> {
    return this.#resync();
  }

  #enqueueTransition(step: () => Promise<void>): Promise<void> {
    this.#transition = this.#transition.then(step).catch((err: unknown) => {
      this.#o.log.error({ err: describeError(err) }, "manager transition failed");
    });
    return this.#transition;
  }

  async #lead(): Promise<void> {
    if (this.#role === "stopped" || this.#role === "leader") return;
    this.#o.log.info("acquired leader lease; starting reconcilers");
    const queue = new WorkQueue<string>({ name: QUEUE_NAME, ...(this.#o.queueMetrics ? { metrics: this.#o.queueMetrics } : {}) });
    const controller = new Controller<string>({
      queue,
      reconciler: this.#o.reconciler.reconcile,
      concurrency: this.#o.concurrency,
      log: this.#o.log,
      ...(this.#o.onResult ? { onResult: this.#o.onResult } : {}),
    });
    this.#queue = queue;
    this.#controller = controller;
    this.#synced = false;
    this.#leadingSince = this.#now();
    this.#setRole("leader");
    // Before the workers: their reconciles wait for what these tasks load (the rollout's catalogues).
    for (const task of this.#o.leaderTasks ?? [])
      await task.start({
        // Behind fresh record edits: a rollout never delays what a person just asked for.
        enqueue: (keys) => {
          for (const key of keys) queue.add(key, "resync");
        },
        resync: () => void this.#resync(),
      });
    controller.start();
    // The stream starts before the scan: a change made during the scan is then
    // seen by both, and the queue collapses the duplicate; started after, it
    // could fall between the two and wait for the next resync.
    await this.#startChanges();
    await this.#o.hints?.start((keys) => {
      for (const key of keys) {
        // ECS says this key changed: what the last survey read of it is stale.
        this.#o.ecs.forget(key);
        queue.add(key, "hint");
      }
    });
    this.#synced = await this.#resync();
    this.#scheduleResync();
  }

  async #startChanges(): Promise<void> {
    if (this.#changesStarted) return;
    try {
      await this.#o.changes.start((changes) => this.#onChanges(changes));
      this.#changesStarted = true;
    } catch (err) {
      // Without the stream we still converge, at resync pace; each resync tries again.
      this.#o.log.error({ err: describeError(err) }, "could not start following the tenants table stream; retrying at the next resync");
    }
  }

  async #standBy(reason: string): Promise<void> {
    if (this.#role === "stopped") return;
    this.#o.log.warn({ reason }, "not leader; standing by");
    await this.#stopLeading();
    this.#setRole("standby");
  }

  async #stopLeading(): Promise<void> {
    if (this.#resyncTimer) clearTimeout(this.#resyncTimer);
    this.#resyncTimer = undefined;
    await this.#o.changes.stop();
    this.#changesStarted = false;
    await this.#o.hints?.stop();
    await this.#controller?.stop({ timeoutMs: this.#o.shutdownTimeoutMs ?? 20_000 });
    // After the workers: a reconcile finishing its work still gets its catalogue.
    for (const task of this.#o.leaderTasks ?? []) await task.stop();
    this.#controller = undefined;
    this.#queue = undefined;
    this.#synced = false;
    this.#leadingSince = undefined;
  }

  #onChanges(changes: readonly TenantChange[]): void {
    for (const change of changes) {
      // Our own status writes come back on the stream with an unchanged spec.
      if (change.kind === "upsert" && change.newSpecHash !== undefined && change.newSpecHash === change.oldSpecHash) continue;
      // A tenant purged after it was Deprovisioned was announced then; any other deletion is announced once its resources are gone.
      if (change.kind === "remove" && change.oldPhase !== "Deprovisioned")
        this.#o.reconciler.noteRemoved(change.tenantId, change.oldRegistrationId);
      this.#queue?.add(change.tenantId, "fresh");
    }
  }

  /**
   * Level-triggered safety net: every record, the pool, and tenants whose
   * record vanished while nobody watched. Returns false when it could not
   * list them all (the next attempt comes sooner).
   */
  async #resync(): Promise<boolean> {
    const queue = this.#queue;
    if (!queue) return false;
    const started = this.#now();
    const seen = new Set<string>();
    try {
      // Before any key is queued: their reconciles then observe from what it read (docs/adr/0018).
      const survey = await this.#o.ecs.survey(this.#o.sharedClusters).then(
        (owners) => ({ owners }),
        (err: unknown) => ({ err }),
      );
      queue.add(POOL_KEY, "resync");
      for await (const page of this.#o.store.scan()) {
        for (const item of page) {
          const id = item["tenantId"];
          if (typeof id === "string" && id.length > 0) {
            seen.add(id);
            queue.add(id, "resync");
          }
        }
      }
      // Deleted records whose offboarding a restart interrupted.
      for (const id of await this.#o.reconciler.pendingRemovals()) if (!seen.has(id)) queue.add(id, "resync");
      if ("err" in survey) throw survey.err;
      const orphans = [...survey.owners].filter((id) => !seen.has(id));
      for (const id of orphans) queue.add(id, "resync");
      this.#lastResyncAt = this.#now();
      this.#o.log.info({ tenants: seen.size, orphans: orphans.length, ms: this.#lastResyncAt - started }, "resync queued");
      return true;
    } catch (err) {
      this.#o.log.error({ err: describeError(err) }, "resync failed; retrying soon");
      return false;
    }
  }

  #scheduleResync(): void {
    const delay = this.#synced ? jitteredResyncMs(this.#o.resyncMs, this.#o.random) : Math.min(this.#o.resyncMs, RESYNC_RETRY_MS);
    this.#resyncTimer = setTimeout(() => {
      void (async () => {
        await this.#startChanges();
        const ok = await this.#resync();
        if (ok) this.#synced = true;
        if (this.#role === "leader") this.#scheduleResync();
      })();
    }, delay);
    this.#resyncTimer.unref();
  }

  #setRole(role: Role): void {
    this.#role = role;
    for (const l of this.#listeners) l(role);
  }
}
