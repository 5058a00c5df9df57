import { describe, expect, it } from "vitest";
import { BackupError, CaptureLostError } from "../../src/data/errors.js";
import { isRetryable as dataMoverRetries } from "../../src/data/retry.js";
import {
  causeChain,
  ConflictError,
  findCause,
  kindOf,
  LeaseLostError,
  NotFoundError,
  TerminalError,
  TransientError,
  UnmanagedResourceError,
} from "../../src/errors.js";
import { errorKind } from "../../src/operator/errors.js";
import { TierMoveStepError } from "../../src/operator/tier-move-runner.js";
import { awsErrorKind, isCondition, wrapAwsError } from "../../src/providers/aws-errors.js";
import { StaleObservationError } from "../../src/providers/ecs.js";
import { EventPublishError } from "../../src/providers/event-publisher.js";
import { PriorityInUseError } from "../../src/providers/listener-routes.js";
import type { MigrationStatus } from "../../src/tenants/status.js";

/** An error shaped as the SDK throws it: the AWS code as name, the HTTP status in $metadata. */
function aws(name: string, status?: number, extra: Record<string, unknown> = {}): Error {
  return Object.assign(new Error(`${name} happened`), {
    name,
    ...(status !== undefined ? { $metadata: { httpStatusCode: status } } : {}),
    ...extra,
  });
}

const move: MigrationStatus = {
  from: "basic",
  to: "premium",
  step: "backfill",
  startedAt: "2026-01-01T00:00:00.000Z",
  source: { orders: "pool-orders", products: "pool-products" },
  target: { orders: "silo-orders", products: "silo-products" },
};

describe("awsErrorKind: the boundary's one table", () => {
  it.each([
    { reason: "a throttle, named only (as some fakes and old SDKs give it)", err: aws("ThrottlingException"), want: "transient" },
    { reason: "DynamoDB's throttle", err: aws("ProvisionedThroughputExceededException", 400), want: "transient" },
    { reason: "DynamoDB Streams' throttle", err: aws("LimitExceededException", 400), want: "transient" },
    { reason: "any 429, whatever its name", err: aws("SomethingElse", 429), want: "transient" },
    { reason: "a server fault by status", err: aws("Whatever", 503), want: "transient" },
    { reason: "a server fault by name", err: aws("InternalFailure", 400), want: "transient" },
    { reason: "services still draining", err: aws("ClusterContainsServicesException", 400), want: "transient" },
    { reason: "marked retryable by the SDK", err: aws("Odd", 400, { $retryable: {} }), want: "transient" },
    { reason: "a reset connection", err: Object.assign(new Error("socket hang up"), { code: "ECONNRESET" }), want: "transient" },
    { reason: "a request the SDK timed out", err: aws("TimeoutError"), want: "transient" },
    { reason: "a missing table", err: aws("ResourceNotFoundException", 400), want: "notFound" },
    { reason: "an S3 HEAD of a missing key (404, no modelled name)", err: aws("Unknown", 404), want: "notFound" },
    { reason: "a failed condition", err: aws("ConditionalCheckFailedException", 400), want: "conflict" },
    { reason: "a listener priority held by another rule", err: aws("PriorityInUseException", 400), want: "conflict" },
    { reason: "a refused request", err: aws("ValidationException", 400), want: "terminal" },
    { reason: "access denied", err: aws("AccessDeniedException", 403), want: "terminal" },
    { reason: "a bug of ours: not an AWS answer", err: new TypeError("x is not a function"), want: undefined },
    { reason: "not an Error at all", err: "boom", want: undefined },
  ])("$reason: $want", ({ err, want }) => {
    expect(awsErrorKind(err)).toBe(want);
  });
});

describe("wrapAwsError: context added, classified, never pretending", () => {
  it.each([
    { reason: "a throttle", err: aws("ThrottlingException", 400), type: TransientError },
    { reason: "a refusal", err: aws("ValidationException", 400), type: TerminalError },
    { reason: "a missing resource", err: aws("ClusterNotFoundException", 400), type: NotFoundError },
    { reason: "a lost race", err: aws("TransactionCanceledException", 400), type: ConflictError },
    { reason: "a lease lost inside the wrapped call", err: new LeaseLostError(), type: TransientError },
    { reason: "an unmanaged resource inside the wrapped call", err: new UnmanagedResourceError("cluster c"), type: TerminalError },
  ])("$reason becomes a $type.name with the original as cause", ({ err, type }) => {
    const wrapped = wrapAwsError(err, "deleting cluster c");
    expect(wrapped).toBeInstanceOf(type);
    expect(wrapped.name).toBe(type.name);
    expect(wrapped.cause).toBe(err);
    expect(wrapped.message).toBe(`deleting cluster c: ${err.name}: ${err.message}`);
    expect(wrapped).not.toHaveProperty("$metadata");
  });

  it("leaves an error the table does not know unclassified, so the caller's policy decides", () => {
    const bug = new TypeError("x is not a function");
    const wrapped = wrapAwsError(bug, "reading");
    expect(kindOf(wrapped)).toBeUndefined();
    expect(wrapped.cause).toBe(bug);
  });

  it("keeps a wrapped LeaseLostError findable through the chain", () => {
    const lost = new LeaseLostError();
    const twice = wrapAwsError(wrapAwsError(lost, "inner"), "outer");
    expect(findCause(twice, LeaseLostError)).toBe(lost);
    expect(causeChain(twice)).toHaveLength(3);
  });
});

describe("errorKind: the operator's retry decision", () => {
  const throttled = wrapAwsError(aws("ThrottlingException", 400), "describing services");
  const refused = wrapAwsError(aws("AccessDeniedException", 400), "creating table");
  it.each([
    { reason: "a wrapped throttle", err: throttled, want: "transient" },
    { reason: "a wrapped refusal", err: refused, want: "terminal" },
    { reason: "an SDK error that escaped unwrapped is sorted by the same table", err: aws("ValidationException", 400), want: "terminal" },
    { reason: "a lost lease: the next leader carries on", err: new LeaseLostError(), want: "transient" },
    { reason: "someone else's resource", err: new UnmanagedResourceError("service s"), want: "terminal" },
    {
      reason: "a tier-move step judged by its throttled cause",
      err: new TierMoveStepError("backfill", move, throttled),
      want: "transient",
    },
    { reason: "a tier-move step judged by its refused cause", err: new TierMoveStepError("backfill", move, refused), want: "terminal" },
    {
      reason: "a tier-move step judged by an unwrapped 4xx cause",
      err: new TierMoveStepError("verify", move, aws("AccessDeniedException", 400)),
      want: "terminal",
    },
    {
      reason: "a tier-move step around an unmanaged table",
      err: new TierMoveStepError("retire", move, new UnmanagedResourceError("table t")),
      want: "terminal",
    },
    {
      reason: "the stream lost the checkpoint: the move starts over",
      err: new CaptureLostError("t", "s", { cause: aws("TrimmedDataAccessException", 400) }),
      want: "transient",
    },
    { reason: "a backup that cannot be restored as asked", err: new BackupError("no manifest"), want: "terminal" },
    { reason: "ECS changed since observed: observe again", err: new StaleObservationError("gone"), want: "transient" },
    { reason: "events still refused after retries", err: new EventPublishError([]), want: "transient" },
    {
      reason: "a priority the listener gives to another rule",
      err: new PriorityInUseError(7, "l", undefined, aws("PriorityInUseException", 400)),
      want: "terminal",
    },
    { reason: "a plain error: most likely transport trouble", err: new Error("socket closed"), want: "transient" },
    { reason: "not an Error at all", err: "boom", want: "transient" },
  ])("$reason: $want", ({ err, want }) => {
    expect(errorKind(err)).toBe(want);
  });

  it("stops at the outermost classified error, so a wrapper may overrule what it wraps", () => {
    const overruled = new TerminalError("the record names a tier that does not exist", { cause: aws("ThrottlingException", 400) });
    expect(errorKind(overruled)).toBe("terminal");
  });

  it("ends on a cycle of causes", () => {
    const a = new Error("a");
    const b = new Error("b", { cause: a });
    Object.assign(a, { cause: b });
    expect(causeChain(a)).toEqual([a, b]);
    expect(errorKind(a)).toBe("transient");
  });
});

describe("the data mover retries only what the table calls transient", () => {
  it.each([
    { reason: "a throttle", err: aws("ProvisionedThroughputExceededException"), want: true },
    { reason: "a refusal", err: aws("ValidationException", 400), want: false },
    { reason: "a bug of ours is thrown at once, not retried for a minute and a half", err: new TypeError("x"), want: false },
  ])("$reason: $want", ({ err, want }) => {
    expect(dataMoverRetries(err)).toBe(want);
  });
});

describe("isCondition: the one place a message is read", () => {
  it.each([
    {
      reason: "CloudFormation's missing stack",
      err: aws("ValidationError", 400),
      message: "Stack with id t-1 does not exist",
      condition: "stackMissing",
      want: true,
    },
    {
      reason: "CloudFormation's no-op update",
      err: aws("ValidationError", 400),
      message: "No updates are to be performed.",
      condition: "stackUnchanged",
      want: true,
    },
    {
      reason: "CloudFormation's busy stack",
      err: aws("ValidationError", 400),
      message: "Stack:arn:aws:cloudformation:us-east-1:1:stack/t/1 is in UPDATE_IN_PROGRESS state and can not be updated.",
      condition: "stackBusy",
      want: true,
    },
    {
      reason: "ECS's repeated name with other inputs",
      err: aws("InvalidParameterException", 400),
      message: "Creation of service was not idempotent.",
      condition: "serviceNotIdempotent",
      want: true,
    },
    {
      reason: "another ValidationError",
      err: aws("ValidationError", 400),
      message: "Template format error",
      condition: "stackMissing",
      want: false,
    },
    {
      reason: "the text under another code",
      err: aws("AccessDenied", 403),
      message: "Stack x does not exist",
      condition: "stackMissing",
      want: false,
    },
  ] as const)("$reason: $want", ({ err, message, condition, want }) => {
    expect(isCondition(Object.assign(err, { message }), condition)).toBe(want);
  });
});
