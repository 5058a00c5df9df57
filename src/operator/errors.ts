import { LeaseLostError, UnmanagedResourceError } from "../ports.js";
import { TierMoveStepError } from "./tier-move-runner.js";

/**
 * Sorting errors into those that go away by waiting (retry with backoff) and
 * those that need a person or a spec change (report on the tenant, retry slowly).
 */
const RETRYABLE_NAMES = new Set([
  "ThrottlingException",
  "Throttling",
  "TooManyRequestsException",
  "ProvisionedThroughputExceededException",
  "RequestLimitExceeded",
  "ServerException",
  "InternalServerError",
  "InternalFailure",
  "ServiceUnavailable",
  "ServiceUnavailableException",
  "LimitExceededException",
  "ClusterContainsServicesException",
  "ClusterContainsTasksException",
  "UpdateInProgressException",
  "TimeoutError",
  "AbortError",
]);

const NETWORK_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "ENOTFOUND", "EAI_AGAIN", "UND_ERR_SOCKET"]);

export function isRetryable(err: unknown): boolean {
  // Wrappers that add context (a tier move's step) are judged by what they wrap.
  if (err instanceof TierMoveStepError) return isRetryable(err.cause);
  if (err instanceof LeaseLostError) return true;
  if (err instanceof UnmanagedResourceError) return false;
  if (!(err instanceof Error)) return true;
  if (RETRYABLE_NAMES.has(err.name)) return true;
  const meta = (err as { $metadata?: { httpStatusCode?: number }; $retryable?: unknown; code?: string }).$metadata;
  if (meta?.httpStatusCode !== undefined && meta.httpStatusCode >= 500) return true;
  if ((err as { $retryable?: unknown }).$retryable) return true;
  const code = (err as { code?: string }).code;
  if (code !== undefined && NETWORK_CODES.has(code)) return true;
  // An error without an AWS status code is most likely transport trouble.
  return meta?.httpStatusCode === undefined;
}

export function describeError(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}

/** True for the loss of the lease, wrapped or not: nothing may be written then. */
export function isLeaseLost(err: unknown): boolean {
  if (err instanceof TierMoveStepError) return isLeaseLost(err.cause);
  return err instanceof LeaseLostError;
}

/** The name an error is known by in status.lastError.type: a wrapper (a tier move's step) goes by what it wraps. */
export function errorType(err: unknown): string {
  if (err instanceof TierMoveStepError) return errorType(err.cause);
  return err instanceof Error ? err.name : typeof err;
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
