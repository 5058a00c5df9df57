import { causeChain, ClassifiedError, type ErrorKind } from "../errors.js";
import { awsErrorKind } from "../providers/aws-errors.js";

/**
 * The operator's retry policy over the error kinds (src/errors.ts): transient
 * failures go back to the queue with backoff; terminal ones are reported on
 * the tenant and polled slowly. Decided by type, walking `cause`, so a
 * wrapper that adds context (a tier move's step) is judged by what it wraps.
 */
export function errorKind(err: unknown): ErrorKind {
  for (const e of causeChain(err)) {
    if (e instanceof ClassifiedError) return e.kind;
    // An SDK error that reached here unwrapped is sorted by the same table the boundary uses.
    const aws = awsErrorKind(e);
    if (aws !== undefined) return aws === "transient" ? "transient" : "terminal";
  }
  // Nothing in the chain says what it is: most likely transport trouble, and
  // a retry with backoff at least does not make a bug of ours worse.
  return "transient";
}

export function isRetryable(err: unknown): boolean {
  return errorKind(err) === "transient";
}

export function describeError(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}
