import type { Cause, Step } from "../reconciler/external.js";
import { isManaged, type Tags } from "./model.js";

/**
 * Every decision about a CloudFormation stack, in one pure function: the
 * controller executes what decideStack returns and `tenantctl plan` prints
 * it, so the two cannot disagree. Everything a decision depends on is in the
 * observation (including the last failure, read from DescribeStackEvents, and
 * the provider's "No updates are to be performed" memory); nothing is read on
 * the side.
 */

/** What a stack should be: tenantStackTemplate's output fits as is. */
export interface DesiredStack {
  readonly stackName: string;
  readonly templateBody: string;
  readonly parameters: Readonly<Record<string, string>>;
  /** Stack-level tags (managed-by, tenant-id, tier); the provider adds template-hash. */
  readonly tags: Tags;
  readonly hash: string;
}

/** Why the stack's latest operation failed, as read from its events. */
export interface StackFailure {
  /** `<LogicalResourceId>: <ResourceStatusReason>` of the first failure, or the stack's own status and reason. */
  readonly reason: string;
  /** The logical id of the resource that failed first, when known. */
  readonly resource: string | undefined;
  /**
   * First 16 hex of the desired hash the failed create or update was sent
   * for, from its ClientRequestToken; undefined when the operation was not
   * one of ours (someone else's update carries no hash of ours).
   */
  readonly hashPrefix: string | undefined;
}

export interface ObservedStack {
  readonly stackName: string;
  readonly stackId: string;
  readonly status: string;
  readonly statusReason: string | undefined;
  readonly outputs: Readonly<Record<string, string>>;
  /** The `template-hash` tag: the desired hash the stack was last created or updated with. */
  readonly hashTag: string | undefined;
  readonly tags: Tags;
  /**
   * The latest operation's failure. Read only when needsLastFailure says the
   * decision will look at it, so a healthy stack costs one DescribeStacks.
   */
  readonly lastFailure: StackFailure | undefined;
  /**
   * A desired hash for which UpdateStack answered "No updates are to be
   * performed" while the stack was at `hashTag`: that update is not sent
   * again. Real CloudFormation never says so when the hash differs (the hash
   * tag itself changes); moto does for tags-only updates.
   */
  readonly noUpdatesFor: string | undefined;
}

export type StackStep = Step<DesiredStack, ObservedStack>;

/** Stable states from which an UpdateStack may start. */
const UPDATABLE = new Set([
  "CREATE_COMPLETE",
  "UPDATE_COMPLETE",
  "UPDATE_ROLLBACK_COMPLETE",
  "IMPORT_COMPLETE",
  "IMPORT_ROLLBACK_COMPLETE",
  "UPDATE_FAILED",
]);
/** A create that failed: the stack holds nothing usable and can only be deleted. */
const DEAD_CREATE = new Set(["ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "CREATE_FAILED"]);
/** Rollbacks that stopped half-way: they need ContinueUpdateRollback with resources skipped, a person's call. */
const STUCK_ROLLBACK = new Set(["UPDATE_ROLLBACK_FAILED", "IMPORT_ROLLBACK_FAILED"]);
/** An update of ours may have failed here; sending the same one again would fail the same way. */
const FAILED_UPDATE = new Set(["UPDATE_ROLLBACK_COMPLETE", "UPDATE_FAILED"]);

/**
 * The one step that moves the stack toward `desired` (undefined: the stack
 * should not exist). Pure.
 */
export function decideStack(desired: DesiredStack | undefined, observed: ObservedStack | undefined): StackStep {
  if (observed === undefined) {
    return desired === undefined
      ? { kind: "gone", reason: "the stack does not exist" }
      : { kind: "create", desired, reason: "the stack does not exist" };
  }
  const { status } = observed;
  if (!isManaged(observed.tags)) {
    // Someone else's stack under our name: never ours to change or delete.
    return {
      kind: "fail",
      reason: `stack ${observed.stackName} exists without managed-by=ecs-tenant-operator; not ${desired === undefined ? "deleting" : "touching"} it`,
      terminal: true,
      resource: undefined,
    };
  }
  // A stack mid-operation refuses most calls (UpdateStack, and DeleteStack
  // while UPDATE_IN_PROGRESS); let CloudFormation finish first.
  if (status.endsWith("_IN_PROGRESS")) return { kind: "wait", reason: `CloudFormation is working on the stack (${status})`, status };

  if (desired === undefined) {
    if (status === "DELETE_FAILED") {
      // Spaced by the caller's backoff: whatever blocked the delete (a
      // resource still in use) may clear.
      const failure = failureOf(observed);
      return { kind: "delete", observed, reason: `the last delete failed (${failure.reason}); delete again`, recovering: causeOf(failure) };
    }
    return { kind: "delete", observed, reason: "the stack is no longer wanted" };
  }

  if (DEAD_CREATE.has(status)) {
    // Nothing can be updated in a stack whose create failed: delete it, and
    // the reconcile after it is gone creates it again.
    const failure = failureOf(observed);
    return { kind: "delete", observed, reason: `${status} (${failure.reason}): delete, then create again`, recovering: causeOf(failure) };
  }
  if (status === "DELETE_FAILED") {
    // Left half-deleted (a recovery delete that failed): retry the delete,
    // spaced by the caller's backoff; the stack is re-created once gone.
    const failure = failureOf(observed);
    return {
      kind: "delete",
      observed,
      reason: `DELETE_FAILED (${failure.reason}): delete again, then create`,
      recovering: causeOf(failure),
    };
  }
  if (STUCK_ROLLBACK.has(status)) {
    const failure = failureOf(observed);
    return { kind: "fail", reason: failure.reason, resource: failure.resource, terminal: true };
  }
  if (!UPDATABLE.has(status))
    return { kind: "fail", reason: `stack ${desired.stackName} is in unexpected status ${status}`, terminal: true, resource: undefined };

  if (observed.hashTag === desired.hash) {
    // UPDATE_ROLLBACK_COMPLETE lands here too when the stack rolled back to
    // exactly what is desired now: it is then in the desired, stable state.
    return { kind: "ready", observed, reason: "the stack is complete at the desired hash" };
  }
  if (observed.noUpdatesFor === desired.hash)
    return { kind: "ready", observed, reason: "CloudFormation found nothing to update for the desired hash" };
  if (FAILED_UPDATE.has(status)) {
    // Do not resend the update that just failed; a different desired hash
    // (the spec or template changed) gets its own attempt, and so does ours
    // after someone else's update failed (its token carries no hash of ours).
    const failure = observed.lastFailure;
    if (failure?.hashPrefix !== undefined && desired.hash.startsWith(failure.hashPrefix)) {
      return { kind: "fail", reason: failure.reason, resource: failure.resource, terminal: true };
    }
  }
  return {
    kind: "update",
    desired,
    observed,
    reason: `template, parameters or tags changed (hash ${short(observed.hashTag)} -> ${short(desired.hash)})`,
  };
}

/**
 * Whether decideStack will look at `lastFailure` for this stack, so observe()
 * reads DescribeStackEvents only then: a healthy stack, a stack rolled back to
 * exactly what is wanted, and a stack being removed (unless its delete
 * failed) cost no event read. Checked against decideStack in
 * tests/unit/stack-decide.test.ts.
 */
export function needsLastFailure(observed: Omit<ObservedStack, "lastFailure">, desired: DesiredStack | undefined): boolean {
  const { status } = observed;
  if (!isManaged(observed.tags) || status.endsWith("_IN_PROGRESS")) return false;
  if (desired === undefined) return status === "DELETE_FAILED";
  if (DEAD_CREATE.has(status) || status === "DELETE_FAILED" || STUCK_ROLLBACK.has(status)) return true;
  return FAILED_UPDATE.has(status) && observed.hashTag !== desired.hash && observed.noUpdatesFor !== desired.hash;
}

/** The reported failure: the events' answer, or the stack's own status when none was read. */
function failureOf(observed: ObservedStack): StackFailure {
  return observed.lastFailure ?? { reason: statusFailure(observed), resource: undefined, hashPrefix: undefined };
}

/** `stack is <STATUS>[: <StackStatusReason>]`, the fallback when no resource event names a cause. */
export function statusFailure(observed: Pick<ObservedStack, "status" | "statusReason">): string {
  return `stack is ${observed.status}${observed.statusReason !== undefined ? `: ${observed.statusReason}` : ""}`;
}

function causeOf(failure: StackFailure): Cause {
  return { reason: failure.reason, resource: failure.resource };
}

function short(hash: string | undefined): string {
  return hash === undefined ? "none" : hash.slice(0, 12);
}
