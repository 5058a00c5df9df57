import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { CallCounter } from "../providers/call-counter.js";
import type { HintCounts } from "../providers/ecs-event-queue.js";
import type { InProgress, QueueMetrics, QueueMetricsProvider } from "../reconciler/queue-metrics.js";
import type { ReconcileResult } from "../reconciler/result.js";
import { PHASES, type Phase } from "../tenants/status.js";
import type { EmfValues } from "./emf.js";

/**
 * The controller's Prometheus metrics, served on /metrics. Its own Registry
 * rather than prom-client's global one, so two controllers in one process
 * (tests, the local default) never mix their series.
 */

export type ReconcileOutcome = "done" | "requeue" | "failed" | "terminal";

/** The result label of a reconcile: terminal failures apart, since they wait for an edit, not a retry. */
export function outcomeOf(result: ReconcileResult): ReconcileOutcome {
  switch (result.kind) {
    case "done":
      return "done";
    case "requeueAfter":
      return "requeue";
    case "failed":
      return result.terminal ? "terminal" : "failed";
  }
}

/** Phases a tenant may stay in for good; any other one held too long means the tenant is stuck. */
export const SETTLED_PHASES: readonly Phase[] = ["Ready", "Suspended", "Deprovisioned"];

/** Oldest time in each phase (0 for a phase nobody is in) and tenants stuck outside the settled phases. */
export function phaseAges(
  tenants: Iterable<{ readonly phase: Phase; readonly since: number }>,
  nowMs: number,
  stuckAfterMs: number,
): { readonly oldestSeconds: Record<Phase, number>; readonly stuck: number } {
  const oldestSeconds = Object.fromEntries(PHASES.map((p) => [p, 0])) as Record<Phase, number>;
  let stuck = 0;
  for (const { phase, since } of tenants) {
    const ms = Math.max(0, nowMs - since);
    oldestSeconds[phase] = Math.max(oldestSeconds[phase], ms / 1000);
    if (!SETTLED_PHASES.includes(phase) && ms > stuckAfterMs) stuck += 1;
  }
  return { oldestSeconds, stuck };
}

/**
 * client-go's workqueue buckets (controller-runtime's too): 10 ns to 1000 s
 * by powers of ten, so a latency panel built for another controller fits ours.
 */
const WORKQUEUE_BUCKETS = Array.from({ length: 12 }, (_, i) => Number(`1e${i - 8}`));

export class Metrics implements QueueMetricsProvider {
  readonly #registry = new Registry();
  readonly #reconciles: Counter<"result">;
  readonly #duration: Histogram;
  readonly #queueDepth: Gauge;
  readonly #awsCalls: Counter<"service" | "action" | "outcome">;
  readonly #awsAttempts: Counter<"service" | "action" | "outcome">;
  readonly #tenants: Gauge<"phase">;
  readonly #leader: Gauge;
  readonly #phaseOldest: Gauge<"phase">;
  readonly #stuck: Gauge;
  readonly #streamLag: Gauge;
  readonly #resyncAge: Gauge;
  readonly #publishFailures: Counter;
  readonly #leaseLost: Counter;
  readonly #hints: Readonly<Record<keyof HintCounts, Counter>>;
  readonly #shardsOwned: Gauge;
  readonly #shardsSynced: Gauge;
  readonly #shardOwned: Gauge<"shard">;
  readonly #shardAcquired: Counter;
  readonly #shardLost: Counter;
  #ownsShards = false;
  readonly #wqAdds: Counter<"name">;
  readonly #wqDepth: Gauge<"name">;
  readonly #wqLatency: Histogram<"name">;
  readonly #wqWork: Histogram<"name">;
  readonly #wqRetries: Counter<"name">;
  /** Work in progress of each named queue, read at collection. */
  readonly #inProgress = new Map<string, () => InProgress>();
  #isLeader = false;
  /** Gauges as last refreshed, for the EMF line (undefined: not known, left out). */
  #gauges: { stuck?: number | undefined; streamLagSeconds?: number | undefined; resyncAgeSeconds?: number | undefined } = {};
  /** Counts since the last EMF line. */
  #interval = { reconciles: 0, reconcileErrors: 0, leaseLost: 0, eventPublishFailures: 0 };

  constructor(options: { readonly defaultMetrics?: boolean } = {}) {
    const registers = [this.#registry];
    this.#reconciles = new Counter({
      name: "tenant_operator_reconcile_total",
      help: "Tenant reconciles by result: done, requeue (waiting on ECS), failed (retried with backoff), terminal (backoff cannot help: waits for a change, or a slow look again).",
      labelNames: ["result"],
      registers,
    });
    // Every result starts at 0, so rate() works from the first scrape.
    for (const result of ["done", "requeue", "failed", "terminal"] as const) this.#reconciles.inc({ result }, 0);
    this.#duration = new Histogram({
      name: "tenant_operator_reconcile_duration_seconds",
      help: "Time of one tenant reconcile, observe through apply.",
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
    this.#queueDepth = new Gauge({ name: "tenant_operator_queue_depth", help: "Tenant keys waiting in the work queue.", registers });
    this.#awsCalls = new Counter({
      name: "tenant_operator_aws_calls_total",
      help: "Logical AWS API calls (one per SDK send, retries included in it) by service, action and final outcome: ok, throttled, error.",
      labelNames: ["service", "action", "outcome"],
      registers,
    });
    this.#awsAttempts = new Counter({
      name: "tenant_operator_aws_attempts_total",
      help: "AWS HTTP requests, retries counted one by one, by service, action and outcome; throttled here and ok in calls means the SDK retried past a throttle.",
      labelNames: ["service", "action", "outcome"],
      registers,
    });
    this.#tenants = new Gauge({
      name: "tenant_operator_tenants",
      help: "Tenants by the phase in their status.",
      labelNames: ["phase"],
      registers,
    });
    for (const phase of PHASES) this.#tenants.set({ phase }, 0);
    this.#leader = new Gauge({
      name: "tenant_operator_leader",
      help: "1 while this controller holds the leader lease, else 0.",
      registers,
    });
    this.#leader.set(0);
    this.#phaseOldest = new Gauge({
      name: "tenant_operator_tenants_phase_oldest_seconds",
      help: "Longest time any tenant has been in the phase (from status.phaseSince); 0 when no tenant is in it.",
      labelNames: ["phase"],
      registers,
    });
    for (const phase of PHASES) this.#phaseOldest.set({ phase }, 0);
    this.#stuck = new Gauge({
      name: "tenant_operator_tenants_stuck",
      help: "Tenants outside Ready, Suspended and Deprovisioned for longer than STUCK_AFTER_SECONDS.",
      registers,
    });
    this.#stuck.set(0);
    this.#streamLag = new Gauge({
      name: "tenant_operator_stream_lag_seconds",
      help: "How far behind the tenants table's stream the controller reads: age of the last record read, 0 when caught up (grows while reading fails).",
      registers,
    });
    this.#resyncAge = new Gauge({
      name: "tenant_operator_resync_age_seconds",
      help: "Seconds since the last full resync completed (since leadership began if none has yet); 0 when not leader.",
      registers,
    });
    this.#publishFailures = new Counter({
      name: "tenant_operator_event_publish_failures_total",
      help: "SBT status events EventBridge did not take: entries still refused after retries, and the entries of a PutEvents call that failed.",
      registers,
    });
    this.#publishFailures.inc(0);
    this.#leaseLost = new Counter({
      name: "tenant_operator_lease_lost_total",
      help: "Times this controller lost the leader lease while leading (a graceful release is not counted).",
      registers,
    });
    this.#leaseLost.inc(0);
    const hint = (outcome: keyof HintCounts, help: string) => {
      const counter = new Counter({ name: `tenant_operator_ecs_event_hints_${outcome}_total`, help, registers });
      counter.inc(0);
      return counter;
    };
    this.#hints = {
      received: hint("received", "Messages read from the ECS event queue (ECS_EVENTS_QUEUE_URL)."),
      enqueued: hint("enqueued", "ECS events that named a managed tenant or the pool, whose key was queued for a look."),
      ignored: hint("ignored", "Well-formed ECS events about no managed service (another cluster, a standalone task)."),
      malformed: hint("malformed", "Messages on the ECS event queue that were no ECS event; deleted, not retried."),
      declined: hint("declined", "ECS events about another controller's shard, returned to the queue for it."),
    };
    this.#shardsOwned = new Gauge({ name: "tenant_operator_shards_owned", help: "Shards whose lease this controller holds.", registers });
    this.#shardsOwned.set(0);
    this.#shardsSynced = new Gauge({
      name: "tenant_operator_shards_synced",
      help: "Owned shards whose initial sync (their tenants queued) is done; ready when it equals shards_owned.",
      registers,
    });
    this.#shardsSynced.set(0);
    this.#shardOwned = new Gauge({
      name: "tenant_operator_shard_owned",
      help: "Per shard: 1 while this controller holds its lease, else 0.",
      labelNames: ["shard"],
      registers,
    });
    this.#shardAcquired = new Counter({
      name: "tenant_operator_shard_acquisitions_total",
      help: "Shard leases this controller acquired (free, expired, or taken from an overloaded controller).",
      registers,
    });
    this.#shardAcquired.inc(0);
    this.#shardLost = new Counter({
      name: "tenant_operator_shard_losses_total",
      help: "Shard leases this controller lost while running (taken over, or not renewed in time); a graceful release is not counted.",
      registers,
    });
    this.#shardLost.inc(0);

    // client-go's workqueue metrics, with controller-runtime's names and help.
    const name = ["name"] as const;
    this.#wqAdds = new Counter({
      name: "workqueue_adds_total",
      help: "Total number of adds handled by workqueue",
      labelNames: name,
      registers,
    });
    this.#wqDepth = new Gauge({ name: "workqueue_depth", help: "Current depth of workqueue", labelNames: name, registers });
    this.#wqLatency = new Histogram({
      name: "workqueue_queue_duration_seconds",
      help: "How long in seconds an item stays in workqueue before being requested",
      labelNames: name,
      buckets: WORKQUEUE_BUCKETS,
      registers,
    });
    this.#wqWork = new Histogram({
      name: "workqueue_work_duration_seconds",
      help: "How long in seconds processing an item from workqueue takes.",
      labelNames: name,
      buckets: WORKQUEUE_BUCKETS,
      registers,
    });
    const inProgress = this.#inProgress;
    // Read at collection from each queue's work in progress, as client-go updates them on a ticker.
    new Gauge({
      name: "workqueue_unfinished_work_seconds",
      help: "How many seconds of work has been done that is in progress and hasn't been observed by work_duration. Large values indicate stuck threads. One can deduce the number of stuck threads by observing the rate at which this increases.",
      labelNames: name,
      registers,
      collect() {
        for (const [queue, read] of inProgress) this.set({ name: queue }, read().unfinishedSeconds);
      },
    });
    new Gauge({
      name: "workqueue_longest_running_processor_seconds",
      help: "How many seconds has the longest running processor for workqueue been running.",
      labelNames: name,
      registers,
      collect() {
        for (const [queue, read] of inProgress) this.set({ name: queue }, read().longestSeconds);
      },
    });
    this.#wqRetries = new Counter({
      name: "workqueue_retries_total",
      help: "Total number of retries handled by workqueue",
      labelNames: name,
      registers,
    });
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.#registry });
  }

  /** The workqueue_* series of one queue (QueueMetricsProvider), each at 0 from the start. */
  forQueue(name: string, inProgress: () => InProgress): QueueMetrics {
    const labels = { name };
    this.#inProgress.set(name, inProgress);
    this.#wqAdds.inc(labels, 0);
    this.#wqRetries.inc(labels, 0);
    this.#wqDepth.set(labels, 0);
    this.#wqLatency.zero(labels);
    this.#wqWork.zero(labels);
    return {
      added: () => this.#wqAdds.inc(labels),
      depth: (n) => this.#wqDepth.set(labels, n),
      waited: (s) => this.#wqLatency.observe(labels, s),
      worked: (s) => this.#wqWork.observe(labels, s),
      retried: () => this.#wqRetries.inc(labels),
    };
  }

  /** The Content-Type of render()'s text (Prometheus text format 0.0.4). */
  get contentType(): string {
    return this.#registry.contentType;
  }

  observeReconcile(result: ReconcileResult, durationMs: number): void {
    this.#reconciles.inc({ result: outcomeOf(result) });
    this.#duration.observe(Math.max(0, durationMs) / 1000);
    this.#interval.reconciles += 1;
    if (result.kind === "failed") this.#interval.reconcileErrors += 1;
  }

  /** Events EventBridge did not take. */
  eventPublishFailed(events: number): void {
    if (!(events > 0)) return;
    this.#publishFailures.inc(events);
    this.#interval.eventPublishFailures += events;
  }

  /** Where the ECS event queue counts what it read (src/providers/ecs-event-queue.ts). */
  get hintCounts(): HintCounts {
    const c = this.#hints;
    return {
      received: (n) => c.received.inc(n),
      enqueued: (n) => c.enqueued.inc(n),
      ignored: (n) => c.ignored.inc(n),
      malformed: (n) => c.malformed.inc(n),
      declined: (n) => c.declined.inc(n),
    };
  }

  /** The lease was lost while leading (not released on a graceful stop). */
  leaseLost(): void {
    this.#leaseLost.inc();
    this.#interval.leaseLost += 1;
  }

  shardAcquired(): void {
    this.#shardAcquired.inc();
  }

  shardLost(): void {
    this.#shardLost.inc();
  }

  /** The shard gauges: every shard of the fleet is 0 or 1, so a lost one drops to 0 rather than vanish. */
  setShards(count: number, owned: readonly number[], synced: readonly number[]): void {
    const mine = new Set(owned);
    for (let shard = 0; shard < count; shard++) this.#shardOwned.set({ shard: String(shard) }, mine.has(shard) ? 1 : 0);
    this.#shardsOwned.set(mine.size);
    this.#shardsSynced.set(synced.length);
    this.#ownsShards = mine.size > 0;
  }

  /** Time in phase from each tenant's phaseSince: the oldest per phase, and how many are stuck. */
  setPhaseTimes(tenants: Iterable<{ readonly phase: Phase; readonly since: number }>, nowMs: number, stuckAfterMs: number): void {
    const { oldestSeconds, stuck } = phaseAges(tenants, nowMs, stuckAfterMs);
    for (const phase of PHASES) this.#phaseOldest.set({ phase }, oldestSeconds[phase]);
    this.#stuck.set(stuck);
    this.#gauges.stuck = stuck;
  }

  /** Undefined when not reading the stream (not leader): the gauge shows 0 and the EMF line leaves it out. */
  setStreamLag(seconds: number | undefined): void {
    this.#streamLag.set(seconds ?? 0);
    this.#gauges.streamLagSeconds = seconds;
  }

  /** Undefined when not leader: the gauge shows 0 and the EMF line leaves it out. */
  setResyncAge(seconds: number | undefined): void {
    this.#resyncAge.set(seconds ?? 0);
    this.#gauges.resyncAgeSeconds = seconds;
  }

  /**
   * The values of one EMF line: the counts since the previous call (which
   * it resets) and, while leader, the gauges as last set. A standby leaves
   * its gauges out rather than send zeros that would dilute the leader's
   * in an average; its counts (0, or a lease just lost) sum harmlessly.
   */
  takeEmfValues(): EmfValues {
    const counts = this.#interval;
    this.#interval = { reconciles: 0, reconcileErrors: 0, leaseLost: 0, eventPublishFailures: 0 };
    const g = this.#gauges;
    return {
      Reconciles: counts.reconciles,
      ReconcileErrors: counts.reconcileErrors,
      LeaseLost: counts.leaseLost,
      EventPublishFailures: counts.eventPublishFailures,
      ...(this.#reports() && g.stuck !== undefined ? { TenantsStuck: g.stuck } : {}),
      ...(this.#reports() && g.streamLagSeconds !== undefined ? { StreamLagSeconds: g.streamLagSeconds } : {}),
      ...(this.#reports() && g.resyncAgeSeconds !== undefined ? { ResyncAgeSeconds: g.resyncAgeSeconds } : {}),
    };
  }

  /** Gauges about tenants come from a controller that reconciles some: the leader, or one owning shards (ADR 0016). */
  #reports(): boolean {
    return this.#isLeader || this.#ownsShards;
  }

  setQueueDepth(n: number): void {
    this.#queueDepth.set(n);
  }

  /**
   * Counts every AWS call and attempt the counter sees from now on. Returns the
   * unsubscribe function. Attach one counter once: attaching the same counter
   * twice would count each call twice.
   */
  attachCallCounter(counter: CallCounter): () => void {
    return counter.onCall((event) => {
      const labels = { service: event.service, action: event.operation, outcome: event.outcome };
      (event.kind === "call" ? this.#awsCalls : this.#awsAttempts).inc(labels);
    });
  }

  /** Sets every phase: phases missing from `counts` drop to 0 rather than keep a stale value. */
  setTenantsByPhase(counts: Readonly<Partial<Record<Phase, number>>>): void {
    for (const phase of PHASES) this.#tenants.set({ phase }, counts[phase] ?? 0);
  }

  setLeader(leader: boolean): void {
    this.#isLeader = leader;
    this.#leader.set(leader ? 1 : 0);
  }

  /** The Prometheus text exposition of every metric. */
  render(): Promise<string> {
    return this.#registry.metrics();
  }
}
