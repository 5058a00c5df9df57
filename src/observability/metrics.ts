import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { CallCounter } from "../providers/call-counter.js";
import type { ReconcileResult } from "../reconciler/result.js";
import { PHASES, type Phase } from "../tenants/status.js";

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

export class Metrics {
  readonly #registry = new Registry();
  readonly #reconciles: Counter<"result">;
  readonly #duration: Histogram;
  readonly #queueDepth: Gauge;
  readonly #awsCalls: Counter<"service" | "action" | "outcome">;
  readonly #awsAttempts: Counter<"service" | "action" | "outcome">;
  readonly #tenants: Gauge<"phase">;
  readonly #leader: Gauge;

  constructor(options: { readonly defaultMetrics?: boolean } = {}) {
    const registers = [this.#registry];
    this.#reconciles = new Counter({
      name: "tenant_operator_reconcile_total",
      help: "Tenant reconciles by result: done, requeue (waiting on ECS), failed (retried with backoff), terminal (waits for the record to change).",
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
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.#registry });
  }

  /** The Content-Type of render()'s text (Prometheus text format 0.0.4). */
  get contentType(): string {
    return this.#registry.contentType;
  }

  observeReconcile(result: ReconcileResult, durationMs: number): void {
    this.#reconciles.inc({ result: outcomeOf(result) });
    this.#duration.observe(Math.max(0, durationMs) / 1000);
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
    this.#leader.set(leader ? 1 : 0);
  }

  /** The Prometheus text exposition of every metric. */
  render(): Promise<string> {
    return this.#registry.metrics();
  }
}
