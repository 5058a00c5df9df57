import { awsErrorKind, sleep, wrapAwsError } from "../providers/aws-errors.js";

/**
 * How the data mover waits out throttling. A tier move or an export must not
 * fail because the table is busy for a while (the port's contract), so every
 * throttle and every batch left unprocessed is retried with exponential
 * backoff and "equal jitter": the n-th wait is d/2 + random * d/2 where
 * d = min(cap, base * 2^n). The fixed half spaces retries out even when the
 * random half draws ~0; the random half keeps the concurrent batch writers,
 * throttled together, from coming back in lockstep.
 */
export interface RetryPolicy {
  /** First delay before jitter. @default 50 */
  readonly baseMs: number;
  /** Largest delay before jitter. @default 5000 */
  readonly capMs: number;
  /**
   * Consecutive attempts without progress before giving up, so a table that
   * stays throttled for minutes surfaces as an error rather than a hang.
   * @default 25 (with the defaults, about 1.5 minutes of waiting)
   */
  readonly maxAttempts: number;
  /** Uniform in [0, 1). @default Math.random */
  readonly random: () => number;
}

export const DEFAULT_RETRY: RetryPolicy = { baseMs: 50, capMs: 5000, maxAttempts: 25, random: Math.random };

/** The wait before retry number `attempt` (1-based). */
export function backoffDelay(policy: RetryPolicy, attempt: number): number {
  const d = Math.min(policy.capMs, policy.baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(d / 2 + policy.random() * (d / 2));
}

/**
 * Throttles and server-side or network faults: waiting helps (the boundary's
 * table, src/providers/aws-errors.ts). Anything else (a bad request, a
 * missing table, a bug of ours) does not, and is thrown at once rather than
 * retried for a minute and a half.
 */
export function isRetryable(err: unknown): boolean {
  return awsErrorKind(err) === "transient";
}

/**
 * Runs `call` until it succeeds, backing off on retryable errors; throws the
 * wrapped error once it is not retryable or maxAttempts is spent. An aborted
 * signal ends the wait and throws its reason.
 */
export async function withRetry<T>(what: string, policy: RetryPolicy, call: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    signal?.throwIfAborted();
    try {
      return await call();
    } catch (err) {
      // Aborted mid-call: the caller asked to stop, that is the error to see.
      signal?.throwIfAborted();
      if (!isRetryable(err) || attempt >= policy.maxAttempts) throw wrapAwsError(err, what);
      await sleep(backoffDelay(policy, attempt), signal);
    }
  }
}

/** The SDK's per-call options: an aborted signal cuts the HTTP request short. */
export function sendOptions(signal: AbortSignal | undefined): { abortSignal?: AbortSignal } {
  return signal !== undefined ? { abortSignal: signal } : {};
}

/** Waits before retry number `attempt`; throws the signal's reason if it was aborted. */
export async function backoff(policy: RetryPolicy, attempt: number, signal?: AbortSignal): Promise<void> {
  await sleep(backoffDelay(policy, attempt), signal);
  signal?.throwIfAborted();
}
