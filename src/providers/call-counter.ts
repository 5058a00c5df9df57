/**
 * Counts AWS API calls by service, operation and outcome, because the
 * controller's budget is API calls (docs/design.md "Spend API calls as if they
 * were money"): benchmarks diff snapshots, /metrics subscribes through onCall.
 *
 * Two kinds are counted apart:
 * - "call": one logical SDK call (`client.send`), whatever the retries;
 * - "attempt": one HTTP request, retries included. attempts - calls = retries.
 */
export type CallOutcome = "ok" | "throttled" | "error";
export type CallKind = "call" | "attempt";

export interface CallEvent {
  readonly kind: CallKind;
  /** Short service name given to createAwsClients: ecs, dynamodb, streams, eventbridge... */
  readonly service: string;
  /** API operation without the "Command" suffix: DescribeServices, PutItem... */
  readonly operation: string;
  readonly outcome: CallOutcome;
  readonly durationMs: number;
  /** Error name when outcome is not ok. */
  readonly errorName?: string;
}

/** Counts keyed `service:operation:outcome`. */
export type CallCounts = Readonly<Record<string, number>>;

export interface CallSnapshot {
  readonly calls: CallCounts;
  readonly attempts: CallCounts;
}

export interface CallFilter {
  readonly service?: string;
  readonly operation?: string;
  readonly outcome?: CallOutcome;
}

export type CallListener = (event: CallEvent) => void;

function callKey(service: string, operation: string, outcome: CallOutcome): string {
  return `${service}:${operation}:${outcome}`;
}

export class CallCounter {
  readonly #calls = new Map<string, number>();
  readonly #attempts = new Map<string, number>();
  readonly #listeners = new Set<CallListener>();

  record(event: CallEvent): void {
    const counts = event.kind === "call" ? this.#calls : this.#attempts;
    const key = callKey(event.service, event.operation, event.outcome);
    counts.set(key, (counts.get(key) ?? 0) + 1);
    for (const listener of this.#listeners) {
      // A broken metrics listener must never fail the AWS call it observes.
      try {
        listener(event);
      } catch {
        /* ignored on purpose */
      }
    }
  }

  /** Subscribes to every counted call and attempt; returns the unsubscribe function. */
  onCall(listener: CallListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** A frozen copy of the counts so far. */
  snapshot(): CallSnapshot {
    return { calls: Object.freeze(Object.fromEntries(this.#calls)), attempts: Object.freeze(Object.fromEntries(this.#attempts)) };
  }

  /** Total logical calls (or attempts) matching the filter, now. */
  total(filter: CallFilter = {}, kind: CallKind = "call"): number {
    return totalOf(this.snapshot(), filter, kind);
  }

  reset(): void {
    this.#calls.clear();
    this.#attempts.clear();
  }
}

/** What happened between two snapshots; keys whose count did not change are left out. */
export function diffSnapshots(before: CallSnapshot, after: CallSnapshot): CallSnapshot {
  return { calls: diffCounts(before.calls, after.calls), attempts: diffCounts(before.attempts, after.attempts) };
}

export function totalOf(snapshot: CallSnapshot, filter: CallFilter = {}, kind: CallKind = "call"): number {
  const counts = kind === "call" ? snapshot.calls : snapshot.attempts;
  let sum = 0;
  for (const [key, n] of Object.entries(counts)) {
    const [service, operation, outcome] = key.split(":");
    if (filter.service !== undefined && filter.service !== service) continue;
    if (filter.operation !== undefined && filter.operation !== operation) continue;
    if (filter.outcome !== undefined && filter.outcome !== outcome) continue;
    sum += n;
  }
  return sum;
}

function diffCounts(before: CallCounts, after: CallCounts): CallCounts {
  const out: Record<string, number> = {};
  for (const [key, n] of Object.entries(after)) {
    const d = n - (before[key] ?? 0);
    if (d !== 0) out[key] = d;
  }
  return Object.freeze(out);
}
