/**
 * Small helpers shared by the AWS adapters: reading an SDK error's name and
 * status, and wrapping it with context without hiding what
 * src/operator/errors.ts classifies on (name, $metadata, $retryable).
 */

const THROTTLE_NAMES = new Set([
  "ThrottlingException",
  "Throttling",
  "TooManyRequestsException",
  "ProvisionedThroughputExceededException",
  "RequestLimitExceeded",
]);

export function errorName(err: unknown): string {
  return err instanceof Error ? err.name : typeof err;
}

export function httpStatusOf(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
}

export function isThrottle(err: unknown): boolean {
  return THROTTLE_NAMES.has(errorName(err)) || httpStatusOf(err) === 429;
}

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Adds `what` to the message and keeps the AWS error as `cause`. The wrapper
 * takes the inner error's name, $metadata and $retryable, so classifying it
 * (retryable or not) gives the same answer as classifying the original.
 */
export function wrapAwsError(err: unknown, what: string): Error {
  const inner = err instanceof Error ? err : new Error(String(err));
  const wrapped = new Error(`${what}: ${inner.name}: ${inner.message}`, { cause: inner });
  wrapped.name = inner.name;
  const meta = (inner as { $metadata?: unknown }).$metadata;
  if (meta !== undefined) Object.assign(wrapped, { $metadata: meta });
  const retryable = (inner as { $retryable?: unknown }).$retryable;
  if (retryable !== undefined) Object.assign(wrapped, { $retryable: retryable });
  return wrapped;
}

/** Awaits an AWS call, wrapping its error in what we were doing. */
export async function doing<T>(what: string, call: Promise<T>): Promise<T> {
  try {
    return await call;
  } catch (err) {
    throw wrapAwsError(err, what);
  }
}

/** A wait that an AbortSignal can cut short; resolves either way. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

/** Splits a list into chunks of at most `size`. */
export function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
