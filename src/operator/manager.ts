import type { Logger } from "pino";
import { Controller } from "../reconciler/controller.js";
import type { LeaderLease } from "../reconciler/lease.js";
import { WorkQueue } from "../reconciler/queue.js";
import type { QueueMetricsProvider } from "../reconciler/queue-metrics.js";
import { done, requeueAfter, type ReconcileResult, type Reconciler } from "../reconciler/result.js";
import type { ShardLeases } from "../reconciler/shard-leases.js";
import { POOL_KEY } from "../tiers/desired.js";
import { describeError, isLeaseLost } from "./errors.js";
import type { EcsPort, SurveyScope, TenantChange, TenantChangeSource, TenantHintSource, TenantStore } from "../ports.js";
import { jitteredResyncMs } from "../reconciler/resync-jitter.js";
import type { TenantReconciler } from "./tenant-reconciler.js";
import type { LeaderContext } from "./rollout-executor.js";
import { KeyOwnership } from "./key-ownership.js";

/** Work that runs only while this process leads (the rollout executor), started and stopped with the controller lease. */
export interface LeaderTask {
  start(ctx: LeaderContext): Promise<void>;
  stop(): Promise<void>;
  /** What it does while another controller leads (the rollout executor follows the rollout read-only). */
  follow?(ctx: LeaderContext): Promise<void>;
}

export interface ManagerOptions {
  readonly store: TenantStore;
  readonly changes: TenantChangeSource;
  readonly ecs: EcsPort;
  readonly reconciler: TenantReconciler;
  /** The controller lease: fleet-wide work (the pool key, leaderTasks). */
  readonly lease: LeaderLease;
  /** This controller's shard leases: which tenants it reconciles. */
  readonly shards: ShardLeases;
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
  /**
   * The owner (tenant id or pool key) a service's name says it belongs to
   * (serviceOwner in key-ownership.ts). Given, each resync's survey reads
   * only the services of the keys that resync queues; absent, it reads the
   * whole account. @default absent
   */
  readonly serviceOwner?: (serviceName: string) => string | undefined;
  /**
   * The listeners' batched rule reads (TenantRoutes.survey), made alongside
   * each resync's ECS survey for the tenants that pass queues. A failure
   * only means those observes read live. @default none
   */
  readonly routeSurvey?: (covers: (tenantId: string) => boolean) => Promise<void>;
}

/** The work queue's name in its metrics, as controller-runtime names a queue after its controller. */
export const QUEUE_NAME = "tenant";

/** How soon a key whose lease renewal runs late is looked at again. */
const LEASE_RECHECK_MS = 1000;

/** How soon a failed initial sync or resync is tried again. */
const RESYNC_RETRY_MS = 5000;

/** The controller lease's role: "leader" runs the fleet-wide work; every role but "stopped" reconciles its shards. */
export type Role = "starting" | "standby" | "leader" | "stopped";

/**
 * Wires sources (stream, resync timer, orphan sweep) to the work queue and
 * the workers (ADR 0016). The workers run from start to stop; a key is
 * queued and reconciled only while this controller owns it: its shard's
 * lease (the pool key: the controller lease). A shard gained is synced (its
 * tenants, removals and orphans queued); a shard lost drops its keys at
 * dequeue, and its reconciles under way fail at their next fenced write.
 */
export class Manager {
  readonly #o: ManagerOptions;
  readonly #owner: KeyOwnership;
  readonly #queue: WorkQueue<string>;
  readonly #controller: Controller<string>;
  #role: Role = "starting";
  #resyncTimer: NodeJS.Timeout | undefined;
  /** Owned shards whose initial sync is done. */
  readonly #synced = new Set<number>();
  /** Shards gained and not yet synced: one scan serves all that arrive together. */
  readonly #toSync = new Set<number>();
  #changesStarted = false;
  /** When this process began owning shards, and when a resync last queued them all (epoch ms). */
  #owningSince: number | undefined;
  #lastResyncAt: number | undefined;
  #transition: Promise<void> = Promise.resolve();
  readonly #listeners = new Set<(role: Role) => void>();

  constructor(options: ManagerOptions) {
    this.#o = options;
    this.#owner = new KeyOwnership(options.lease, options.shards);
    this.#queue = new WorkQueue<string>({ name: QUEUE_NAME, ...(options.queueMetrics ? { metrics: options.queueMetrics } : {}) });
    this.#controller = new Controller<string>({
      queue: this.#queue,
      reconciler: this.#reconcile,
      concurrency: options.concurrency,
      log: options.log,
      ...(options.onResult ? { onResult: options.onResult } : {}),
    });
  }

  get role(): Role {
    return this.#role;
  }

  /** Which lease owns each key, and each key's fence. */
  get ownership(): KeyOwnership {
    return this.#owner;
  }

  /**
   * Ready once every owned shard finished its initial sync; a controller
   * owning none is ready as a standby once its heartbeat counts it live.
   */
  get ready(): boolean {
    if (this.#role === "starting" || this.#role === "stopped" || !this.#o.shards.alive) return false;
    return this.#o.shards.ownedShards().every((s) => this.#synced.has(s));
  }

  /** Owned shards with their initial sync done, for the per-shard gauges. */
  syncedShards(): number[] {
    return this.#o.shards.ownedShards().filter((s) => this.#synced.has(s));
  }

  get queueDepth(): number {
    return this.#queue.len();
  }

  /**
   * Seconds since a resync last queued every owned tenant, counted from no
   * earlier than when this process began owning shards. Undefined while it
   * owns none: it has nothing to resync.
   */
  resyncAgeSeconds(): number | undefined {
    if (this.#owningSince === undefined || this.#o.shards.ownedShards().length === 0) return undefined;
    const since = Math.max(this.#owningSince, this.#lastResyncAt ?? 0);
    return Math.max(0, this.#now() - since) / 1000;
  }

  #now(): number {
    return (this.#o.now ?? Date.now)();
  }

  onRoleChange(listener: (role: Role) => void): void {
    this.#listeners.add(listener);
  }

  async start(): Promise<void> {
    const { lease, shards } = this.#o;
    this.#controller.start();
    // The stream starts before any scan: a change made during a scan is then
    // seen by both, and the queue collapses the duplicate.
    await this.#startChanges();
    // An SQS message reaches one controller: keys of other shards go back to the queue for their owners.
    await this.#o.hints?.start((keys) => {
      const declined: string[] = [];
      for (const key of keys) {
        if (this.#role === "stopped" || !this.#owner.holds(key)) {
          declined.push(key);
          continue;
        }
        // ECS says this key changed: what the last survey read of it is stale.
        this.#o.ecs.forget(key);
        this.#queue.add(key, "hint");
      }
      return declined;
    });
    // The transition queue logs its own failures and never rejects, so nothing awaits these.
    lease.onAcquired(() => void this.#enqueueTransition(() => this.#lead()));
    lease.onLost(() => void this.#enqueueTransition(() => this.#standBy("lease lost")));
    shards.onAcquired((shard) => {
      this.#toSync.add(shard);
      this.#owningSince ??= this.#now();
      void this.#enqueueTransition(() => this.#syncGained());
    });
    shards.onLost((shard, reason) => {
      this.#synced.delete(shard);
      this.#toSync.delete(shard);
      if (shards.ownedShards().length === 0) this.#owningSince = undefined;
      if (reason !== "stopped")
        this.#o.log.warn({ shard, reason }, "shard lost; its keys are dropped here and reconciled by its next owner");
    });
    // Throws on a SHARD_COUNT the fleet does not use: better no controller than two owners.
    await shards.start();
    await lease.start();
    if (!lease.isLeader && this.#role === "starting") await this.#enqueueTransition(() => this.#standBy("another controller leads"));
    this.#scheduleResync(jitteredResyncMs(this.#o.resyncMs, this.#o.random));
  }

  /** Stops taking keys, lets in-flight reconciles finish within the bound, releases the shards and the lease. */
  async stop(): Promise<void> {
    await this.#enqueueTransition(async () => {
      if (this.#resyncTimer) clearTimeout(this.#resyncTimer);
      this.#resyncTimer = undefined;
      await this.#o.changes.stop();
      this.#changesStarted = false;
      await this.#o.hints?.stop();
      await this.#controller.stop({ timeoutMs: this.#o.shutdownTimeoutMs ?? 20_000 });
      // After the workers: a reconcile finishing its work still gets its catalogue.
      for (const task of this.#o.leaderTasks ?? []) await task.stop();
      this.#setRole("stopped");
    });
    await this.#o.shards.stop();
    await this.#o.lease.stop();
  }

  /** Enqueue keys as fresh work (a user edit), e.g. from `tenantctl` or tests; keys of other controllers' shards are left to them. */
  enqueue(tenantIds: readonly string[]): void {
    for (const id of tenantIds) this.#add(id, "fresh");
  }

  /** Runs a full resync of the owned shards now (a person's "look at everything again"). */
  async resyncNow(): Promise<boolean> {
    return this.#resync();
  }

  #add(key: string, priority: "fresh" | "resync"): void {
    // holds, not owns: a key added while a renewal runs late waits at dequeue instead of being lost.
    if (this.#role !== "stopped" && this.#owner.holds(key)) this.#queue.add(key, priority);
  }

  /** Owned keys only, checked again at dequeue: the shard may have moved since the key was queued. */
  readonly #reconcile: Reconciler<string> = async (key, signal, context) => {
    if (!this.#owner.owns(key)) return this.#waitOrDrop(key);
    const result = await this.#o.reconciler.reconcile(key, signal, context);
    // Fenced out: no failure of the tenant's. Either the lease moved on (its new owner carries on) or its renewal runs late.
    if (result.kind === "failed" && isLeaseLost(result.error) && !this.#owner.owns(key)) return this.#waitOrDrop(key);
    return result;
  };

  /**
   * A key this controller may not reconcile now. Dropped when its lease is
   * lost (regaining it queues the shard's keys again); looked at again soon
   * when the lease is only late in its renewal, which announces nothing.
   */
  #waitOrDrop(key: string): ReconcileResult {
    if (this.#owner.holds(key)) return requeueAfter(LEASE_RECHECK_MS, "waiting for the lease's renewal");
    this.#o.log.info({ key }, "reconcile stopped: its shard's lease moved to another controller");
    return done();
  }

  #enqueueTransition(step: () => Promise<void>): Promise<void> {
    this.#transition = this.#transition.then(step).catch((err: unknown) => {
      this.#o.log.error({ err: describeError(err) }, "manager transition failed");
    });
    return this.#transition;
  }

  #context(): LeaderContext {
    return {
      // Behind fresh record edits: a rollout never delays what a person just asked for.
      enqueue: (keys) => {
        for (const key of keys) this.#add(key, "resync");
      },
      resync: () => void this.#resync(),
    };
  }

  async #lead(): Promise<void> {
    if (this.#role === "stopped" || this.#role === "leader") return;
    // The message tools look for (chaos/controllers.ts); the work it starts now is the fleet-wide part.
    this.#o.log.info({ work: "pool, rollout" }, "acquired leader lease; starting reconcilers");
    for (const task of this.#o.leaderTasks ?? []) {
      if (this.#role === "standby") await task.stop();
      await task.start(this.#context());
    }
    this.#setRole("leader");
    this.#queue.add(POOL_KEY, "resync");
  }

  async #standBy(reason: string): Promise<void> {
    if (this.#role === "stopped" || this.#role === "standby") return;
    if (this.#role === "leader") this.#o.log.warn({ reason, work: "pool, rollout" }, "not leader; standing by");
    for (const task of this.#o.leaderTasks ?? []) {
      if (this.#role === "leader") await task.stop();
      await task.follow?.(this.#context());
    }
    this.#setRole("standby");
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

  #onChanges(changes: readonly TenantChange[]): void {
    for (const change of changes) {
      // Every controller reads the whole stream; each keeps the keys of its shards.
      if (!this.#owner.holds(change.tenantId)) continue;
      // Our own status writes come back on the stream with an unchanged spec.
      if (change.kind === "upsert" && change.newSpecHash !== undefined && change.newSpecHash === change.oldSpecHash) continue;
      // A tenant purged after it was Deprovisioned was announced then; any other deletion is announced once its resources are gone.
      if (change.kind === "remove" && change.oldPhase !== "Deprovisioned")
        this.#o.reconciler.noteRemoved(change.tenantId, change.oldRegistrationId);
      this.#add(change.tenantId, "fresh");
    }
  }

  /** The shards gained since the last sync: one pass queues their keys. */
  async #syncGained(): Promise<void> {
    const shards = [...this.#toSync].filter((s) => this.#o.shards.owns(s));
    this.#toSync.clear();
    if (shards.length === 0) return;
    const ok = await this.#resync(new Set(shards));
    for (const s of shards) if (ok && this.#o.shards.owns(s)) this.#synced.add(s);
    if (!ok) for (const s of shards) this.#toSync.add(s); // the next resync (soon: RESYNC_RETRY_MS) tries again
    if (!ok) this.#rescheduleResync(RESYNC_RETRY_MS);
  }

  /**
   * Level-triggered safety net: every record of the given (else every
   * owned) shard, and tenants of those shards whose record vanished while
   * nobody watched. Returns false when it could not list them all.
   */
  async #resync(only?: ReadonlySet<number>): Promise<boolean> {
    if (this.#role === "stopped") return false;
    const started = this.#now();
    const inScope = (id: string) => {
      const shard = this.#owner.shardOf(id);
      return shard !== undefined && this.#o.shards.holds(shard) && (only === undefined || only.has(shard));
    };
    const seen = new Set<string>();
    let queued = 0;
    try {
      // Before any key is queued: their reconciles then observe from what it read (docs/adr/0018).
      const covers = this.#covers(only);
      const routes = this.#o.routeSurvey?.(covers).catch((err: unknown) => {
        this.#o.log.warn({ err: describeError(err) }, "could not survey the listeners' rules; this pass reads each tenant's rule");
      });
      const survey = await this.#o.ecs.survey(this.#o.sharedClusters, this.#surveyScope(covers)).then(
        (owners) => ({ owners }),
        (err: unknown) => ({ err }),
      );
      await routes;
      // The pool is the controller lease's key, looked at by a full resync.
      if (only === undefined && this.#role === "leader") this.#queue.add(POOL_KEY, "resync");
      for await (const page of this.#o.store.scan()) {
        for (const item of page) {
          const id = item["tenantId"];
          if (typeof id === "string" && id.length > 0) {
            seen.add(id);
            if (inScope(id)) {
              this.#queue.add(id, "resync");
              queued += 1;
            }
          }
        }
      }
      // Deleted records whose offboarding a restart interrupted.
      for (const id of await this.#o.reconciler.pendingRemovals()) if (!seen.has(id) && inScope(id)) this.#queue.add(id, "resync");
      if ("err" in survey) throw survey.err;
      const orphans = [...survey.owners].filter((id) => !seen.has(id) && inScope(id));
      for (const id of orphans) this.#queue.add(id, "resync");
      if (only === undefined) this.#lastResyncAt = this.#now();
      this.#o.log.info(
        { tenants: queued, orphans: orphans.length, shards: only ? [...only] : this.#o.shards.ownedShards(), ms: this.#now() - started },
        only ? "shards gained: their keys queued" : "resync queued",
      );
      return true;
    } catch (err) {
      this.#o.log.error({ err: describeError(err) }, "resync failed; retrying soon");
      return false;
    }
  }

  /**
   * The keys a pass queues, hence what its surveys read when controllers
   * share the fleet: the tenants of the shards it covers, frozen as they are
   * now (a shard gained meanwhile gets a pass of its own), and the pool key
   * when it queues it. Another controller reads the rest.
   */
  #covers(only?: ReadonlySet<number>): (owner: string) => boolean {
    const shards = new Set<number>();
    for (let s = 0; s < this.#o.shards.count; s++) if (this.#o.shards.holds(s) && (only === undefined || only.has(s))) shards.add(s);
    const pool = only === undefined && this.#role === "leader";
    return (owner) => {
      const shard = this.#owner.shardOf(owner);
      return shard === undefined ? pool : shards.has(shard);
    };
  }

  /** The ECS survey's scope: names split its reads only when the controller knows how services are named. */
  #surveyScope(covers: (owner: string) => boolean): SurveyScope | undefined {
    const ownerOfService = this.#o.serviceOwner;
    return ownerOfService === undefined ? undefined : { covers, ownerOfService };
  }

  #scheduleResync(delay = this.#o.resyncMs): void {
    if (this.#role === "stopped") return;
    this.#resyncTimer = setTimeout(() => {
      void (async () => {
        await this.#startChanges();
        if (this.#toSync.size > 0) await this.#enqueueTransition(() => this.#syncGained());
        const ok = await this.#resync();
        // Jittered, so controllers started together do not survey ECS in step.
        this.#scheduleResync(ok ? jitteredResyncMs(this.#o.resyncMs, this.#o.random) : Math.min(this.#o.resyncMs, RESYNC_RETRY_MS));
      })();
    }, delay);
    this.#resyncTimer.unref();
  }

  #rescheduleResync(delay: number): void {
    if (this.#resyncTimer) clearTimeout(this.#resyncTimer);
    this.#scheduleResync(delay);
  }

  #setRole(role: Role): void {
    this.#role = role;
    for (const l of this.#listeners) l(role);
  }
}
