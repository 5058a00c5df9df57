import { causeChain, ClassifiedError, LeaseLostError, type ErrorKind } from "../errors.js";
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

/** True for the loss of the lease, wrapped or not: nothing may be written then. */
export function isLeaseLost(err: unknown): boolean {
  return causeChain(err).some((e) => e instanceof LeaseLostError);
}

/** The name an error is known by in status.lastError.type: wrappers (a tier move's step, a classification) go by what they wrap, the innermost cause. */
export function errorType(err: unknown): string {
  const root = causeChain(err).at(-1);
  return root instanceof Error ? root.name : typeof root;
}

/** A tenant record that fails validation: only an edit of the record helps. */
export class InvalidRecordError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InvalidTenantRecord";
  }
}

/** A stack operation CloudFormation reported failed, worth another attempt (a rollback that can be retried). */
export class StackFailedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StackOperationFailed";
  }
}
