import { ClassifiedError, ConflictError, NotFoundError, TerminalError, TransientError } from "../errors.js";

/**
 * The boundary where AWS errors become our types (src/errors.ts,
 * docs/adr/0013). Adapters catch the SDK's error where they call AWS, may
 * answer a few codes themselves (a delete of something gone is success), and
 * wrap the rest with wrapAwsError, which adds what they were doing and
 * classifies once, by the tables below. Nothing past this point reads an AWS
 * error's name, status or message.
 */

/** Waiting helps: throttles, server faults, and resources still busy with something else. */
const TRANSIENT_CODES: ReadonlySet<string> = new Set([
  // Throttles. DynamoDB Streams throttles with LimitExceededException.
  "ThrottlingException",
  "Throttling",
  "TooManyRequestsException",
  "ProvisionedThroughputExceededException",
  "RequestLimitExceeded",
  "LimitExceededException",
  // Server side.
  "ServerException",
  "InternalServerError",
  "InternalFailure",
  "ServiceUnavailable",
  "ServiceUnavailableException",
  // Busy: services still draining, an operation still running.
  "ClusterContainsServicesException",
  "ClusterContainsTasksException",
  "UpdateInProgressException",
  // The SDK's own: a request that timed out or was cut off.
  "TimeoutError",
  "AbortError",
]);

const THROTTLE_CODES: ReadonlySet<string> = new Set([
  "ThrottlingException",
  "Throttling",
  "TooManyRequestsException",
  "ProvisionedThroughputExceededException",
  "RequestLimitExceeded",
]);

/** The resource is not there. */
const NOT_FOUND_CODES: ReadonlySet<string> = new Set([
  "ResourceNotFoundException",
  "NotFound",
  "NoSuchKey",
  "NoSuchBucket",
  "ClusterNotFoundException",
  "ServiceNotFoundException",
  "RuleNotFoundException",
  "RuleNotFound",
  "TargetGroupNotFoundException",
  "NamespaceNotFound",
  "UserNotFoundException",
]);

/** Someone else holds it, or a condition was not met. */
const CONFLICT_CODES: ReadonlySet<string> = new Set([
  "ConditionalCheckFailedException",
  "TransactionCanceledException",
  "PriorityInUseException",
  "PriorityInUse",
  "AlreadyExistsException",
  "TokenAlreadyExistsException",
  "ResourceInUseException",
  "NamespaceAlreadyExists",
]);

/** Transport trouble below HTTP: the request may not even have arrived. */
const NETWORK_CODES: ReadonlySet<string> = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "ENOTFOUND",
  "EAI_AGAIN",
  "UND_ERR_SOCKET",
]);

/** How the boundary sorts an AWS error; "terminal" covers every other refusal with an HTTP status. */
export type AwsErrorKind = "transient" | "terminal" | "notFound" | "conflict";

/**
 * The AWS error code: the name the SDK gives the error it throws. Read it
 * only on the error the SDK threw, where the adapter caught it.
 */
export function errorName(err: unknown): string {
  return err instanceof Error ? err.name : typeof err;
}

export function httpStatusOf(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
}

export function isThrottle(err: unknown): boolean {
  return THROTTLE_CODES.has(errorName(err)) || httpStatusOf(err) === 429;
}

/**
 * The one classification table. Undefined for an error that is neither an AWS
 * answer nor transport trouble (a bug of ours, a plain Error): callers decide
 * what that means to them.
 */
export function awsErrorKind(err: unknown): AwsErrorKind | undefined {
  if (!(err instanceof Error)) return undefined;
  const name = err.name;
  const status = httpStatusOf(err);
  const code = (err as { code?: unknown }).code;
  if (TRANSIENT_CODES.has(name) || isThrottle(err)) return "transient";
  if (status !== undefined && status >= 500) return "transient";
  if ((err as { $retryable?: unknown }).$retryable) return "transient";
  if (typeof code === "string" && NETWORK_CODES.has(code)) return "transient";
  if (NOT_FOUND_CODES.has(name) || status === 404) return "notFound";
  if (CONFLICT_CODES.has(name)) return "conflict";
  return status !== undefined ? "terminal" : undefined;
}

/**
 * Conditions that CloudFormation and ECS report only in a message, under a
 * code they use for many others (ValidationError, InvalidParameterException).
 * This is the one place a message is read: an AWS rewording shows up here and
 * in its tests (tests/unit/errors.test.ts), not as a silent misclassification elsewhere.
 */
const MESSAGE_CONDITIONS = {
  /** DescribeStacks or DeleteStack of a stack that does not exist. */
  stackMissing: { code: "ValidationError", text: /does not exist/i },
  /** UpdateStack that would change nothing. */
  stackUnchanged: { code: "ValidationError", text: /No updates are to be performed/i },
  /** UpdateStack while another operation runs on the stack. */
  stackBusy: { code: "ValidationError", text: /IN_PROGRESS state/i },
  /** CreateService of a name that exists, with other inputs than the clientToken's first request. */
  serviceNotIdempotent: { code: "InvalidParameterException", text: /not idempotent/i },
} as const;

export type MessageCondition = keyof typeof MESSAGE_CONDITIONS;

/** Whether the SDK's error is the named condition (see MESSAGE_CONDITIONS). */
export function isCondition(err: unknown, condition: MessageCondition): boolean {
  const c = MESSAGE_CONDITIONS[condition];
  return err instanceof Error && err.name === c.code && c.text.test(err.message);
}

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Adds `what` to the message and keeps the error as `cause`, classified: a
 * TransientError, TerminalError, NotFoundError or ConflictError by the table,
 * or, for one already classified (a LeaseLostError from a fence), one of its
 * kind. An error the table does not know stays unclassified (a plain Error):
 * the caller's policy decides (src/operator/errors.ts retries it).
 */
export function wrapAwsError(err: unknown, what: string): Error {
  const inner = err instanceof Error ? err : new Error(String(err));
  const message = `${what}: ${inner.name}: ${inner.message}`;
  const options = { cause: inner };
  if (inner instanceof ClassifiedError) {
    if (inner instanceof NotFoundError) return new NotFoundError(message, options);
    if (inner instanceof ConflictError) return new ConflictError(message, options);
    return inner.kind === "transient" ? new TransientError(message, options) : new TerminalError(message, options);
  }
  switch (awsErrorKind(inner)) {
    case "transient":
      return new TransientError(message, options);
    case "terminal":
      return new TerminalError(message, options);
    case "notFound":
      return new NotFoundError(message, options);
    case "conflict":
      return new ConflictError(message, options);
    case undefined:
      return new Error(message, options);
  }
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
