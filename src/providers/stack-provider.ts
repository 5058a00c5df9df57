import {
  CreateStackCommand,
  DeleteStackCommand,
  DescribeStackEventsCommand,
  DescribeStacksCommand,
  UpdateStackCommand,
  type CloudFormationClient,
  type Stack,
  type StackEvent,
} from "@aws-sdk/client-cloudformation";
import { isManaged, type Tags } from "../tiers/model.js";
import type { Fence } from "../operator/ports.js";
import { errorName, httpStatusOf, isThrottle, messageOf, wrapAwsError } from "./aws-errors.js";

/**
 * CloudFormation stacks as a reconcile step: every call to ensure() or
 * remove() reads the stack once, makes at most one create, update or delete
 * call, and returns at once with where things stand. It never waits for a
 * stack operation; the caller requeues.
 *
 * Idempotency:
 * - ensure() creates only when DescribeStacks says the stack is absent; a
 *   create that races another one (AlreadyExistsException) is "in progress".
 * - ensure() updates only when the stack's `template-hash` tag differs from
 *   the desired hash, so a steady tenant costs one DescribeStacks.
 * - remove() of a stack that does not exist is "gone", and it never deletes a
 *   stack without managed-by=ecs-tenant-operator.
 *
 * ClientRequestToken is `<operation>-<first 16 hex of the hash>-<time>`: it
 * dedupes the SDK's own retries of one call (the SDK resends the same input),
 * and DescribeStackEvents echoes it, which tells which desired hash a failed
 * update was for. It is not the hash alone because CloudFormation rejects a
 * token already used on the stack (TokenAlreadyExistsException), so going back
 * to an earlier template, or re-creating after a rollback, needs a fresh one.
 */

export const TEMPLATE_HASH_TAG = "template-hash";

/** What a stack should be: tenantStackTemplate's output fits as is. */
export interface DesiredStack {
  readonly stackName: string;
  readonly templateBody: string;
  readonly parameters: Readonly<Record<string, string>>;
  /** Stack-level tags (managed-by, tenant-id, tier); the provider adds template-hash. */
  readonly tags: Tags;
  readonly hash: string;
}

export interface ObservedStack {
  readonly stackId: string;
  readonly status: string;
  readonly statusReason: string | undefined;
  readonly outputs: Readonly<Record<string, string>>;
  /** The `template-hash` tag: the desired hash the stack was last created or updated with. */
  readonly hashTag: string | undefined;
  readonly tags: Tags;
}

export type EnsureResult =
  | { readonly kind: "ready"; readonly stackId: string; readonly outputs: Readonly<Record<string, string>> }
  | { readonly kind: "inProgress"; readonly status: string }
  | {
      readonly kind: "failed";
      /** `<LogicalResourceId>: <ResourceStatusReason>` of the first failure, or CloudFormation's answer to the call. */
      readonly reason: string;
      /** The logical id of the resource that failed first, when known. */
      readonly resource: string | undefined;
      /** The stack's status, or undefined when the create or update call itself was refused. */
      readonly status: string | undefined;
      /**
       * True when nothing changes until the desired stack does (an update that
       * rolled back, a refused template, an unmanaged stack); false when the
       * provider is recovering (deleting a rolled-back create) and the caller
       * should come back after a backoff.
       */
      readonly terminal: boolean;
    };

export type RemoveResult =
  | { readonly kind: "gone" }
  | { readonly kind: "inProgress"; readonly status: string }
  | { readonly kind: "failed"; readonly reason: string; readonly resource: string | undefined; readonly status: string | undefined; readonly terminal: boolean };

/** Stable states from which an UpdateStack may start. */
const UPDATABLE = new Set(["CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "IMPORT_COMPLETE", "IMPORT_ROLLBACK_COMPLETE", "UPDATE_FAILED"]);
/** A create that failed: the stack holds nothing usable and can only be deleted. */
const DEAD_CREATE = new Set(["ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "CREATE_FAILED"]);
/** Events that are a consequence of another failure, not its cause. */
const CANCELLED = /^Resource (creation|update|deletion) cancelled/i;

export class StackProvider {
  readonly #cfn: CloudFormationClient;
  readonly #now: () => number;
  /**
   * Updates CloudFormation answered "No updates are to be performed" to, as
   * (observed hash -> desired hash) per stack, so they are not sent again on
   * every reconcile. Real CloudFormation never says so when the hash differs
   * (the hash tag itself changes); moto does for tags-only updates.
   */
  readonly #noop = new Map<string, { readonly from: string | undefined; readonly to: string }>();

  /** @param now clock for request tokens (tests pass a fixed one). */
  constructor(cfn: CloudFormationClient, options: { readonly now?: () => number } = {}) {
    this.#cfn = cfn;
    this.#now = options.now ?? Date.now;
  }

  /** One DescribeStacks. Undefined when the stack does not exist or is DELETE_COMPLETE. */
  async observe(stackName: string): Promise<ObservedStack | undefined> {
    let stack: Stack | undefined;
    try {
      stack = (await this.#cfn.send(new DescribeStacksCommand({ StackName: stackName }))).Stacks?.[0];
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw wrapAwsError(err, `describing stack ${stackName}`);
    }
    if (stack === undefined || stack.StackStatus === "DELETE_COMPLETE") return undefined;
    const tags = Object.fromEntries((stack.Tags ?? []).flatMap((t) => (t.Key !== undefined ? [[t.Key, t.Value ?? ""]] : [])));
    const outputs = Object.fromEntries(
      (stack.Outputs ?? []).flatMap((o) => (o.OutputKey !== undefined && o.OutputValue !== undefined ? [[o.OutputKey, o.OutputValue]] : [])),
    );
    return {
      stackId: stack.StackId ?? stackName,
      status: stack.StackStatus ?? "UNKNOWN",
      statusReason: stack.StackStatusReason,
      outputs,
      hashTag: tags[TEMPLATE_HASH_TAG],
      tags,
    };
  }

  /**
   * Moves the stack one step toward `desired` and says where it stands.
   * Calls: DescribeStacks, plus at most one of CreateStack, UpdateStack or
   * DeleteStack, plus DescribeStackEvents when reporting a failure.
   */
  async ensure(desired: DesiredStack, fence?: Fence): Promise<EnsureResult> {
    const name = desired.stackName;
    const observed = await this.observe(name);
    if (observed === undefined) return this.#create(desired, fence);
    if (!isManaged(observed.tags)) {
      return { kind: "failed", reason: `stack ${name} exists without managed-by=ecs-tenant-operator; not touching it`, resource: undefined, status: observed.status, terminal: true };
    }
    const status = observed.status;
    if (status.endsWith("_IN_PROGRESS")) return { kind: "inProgress", status };

    if (DEAD_CREATE.has(status)) {
      // Nothing can be updated in a stack whose create failed: delete it, and
      // the next reconcile after it is gone creates it again. The failure is
      // reported now so the caller backs off and shows why.
      const failure = await this.#failure(observed);
      await this.#delete(observed, fence);
      return { kind: "failed", reason: failure.reason, resource: failure.resource, status, terminal: false };
    }
    if (status === "DELETE_FAILED") {
      // Left half-deleted (a recovery delete that failed): retry the delete,
      // spaced by the caller's backoff; the stack is re-created once gone.
      const failure = await this.#failure(observed);
      await this.#delete(observed, fence);
      return { kind: "failed", reason: failure.reason, resource: failure.resource, status, terminal: false };
    }
    if (status === "UPDATE_ROLLBACK_FAILED" || status === "IMPORT_ROLLBACK_FAILED") {
      // Needs ContinueUpdateRollback with resources skipped: a person's call.
      const failure = await this.#failure(observed);
      return { kind: "failed", reason: failure.reason, resource: failure.resource, status, terminal: true };
    }
    if (!UPDATABLE.has(status)) {
      return { kind: "failed", reason: `stack ${name} is in unexpected status ${status}`, resource: undefined, status, terminal: true };
    }

    if (observed.hashTag === desired.hash) {
      // UPDATE_ROLLBACK_COMPLETE lands here too when the stack rolled back to
      // exactly what is desired now: it is then in the desired, stable state.
      return { kind: "ready", stackId: observed.stackId, outputs: observed.outputs };
    }
    const noop = this.#noop.get(name);
    if (noop !== undefined && noop.from === observed.hashTag && noop.to === desired.hash) {
      return { kind: "ready", stackId: observed.stackId, outputs: observed.outputs };
    }
    if (status === "UPDATE_ROLLBACK_COMPLETE" || status === "UPDATE_FAILED") {
      // Do not resend the update that just failed; a different desired hash
      // (the spec or template changed) gets its own attempt, and so does ours
      // after someone else's update failed (its token carries no hash of ours).
      const failure = await this.#failure(observed);
      if (failure.hashPrefix !== undefined && desired.hash.startsWith(failure.hashPrefix)) {
        return { kind: "failed", reason: failure.reason, resource: failure.resource, status, terminal: true };
      }
    }
    return this.#update(desired, observed, fence);
  }

  /**
   * Deletes the stack if it is managed. Calls: DescribeStacks, plus at most
   * one DeleteStack, plus DescribeStackEvents when a delete failed.
   */
  async remove(stackName: string, fence?: Fence): Promise<RemoveResult> {
    const observed = await this.observe(stackName);
    if (observed === undefined) {
      this.#noop.delete(stackName);
      return { kind: "gone" };
    }
    if (!isManaged(observed.tags)) {
      return { kind: "failed", reason: `stack ${stackName} exists without managed-by=ecs-tenant-operator; not deleting it`, resource: undefined, status: observed.status, terminal: true };
    }
    // A stack mid-operation cannot always be deleted (UPDATE_IN_PROGRESS
    // refuses); let the operation finish, then delete.
    if (observed.status.endsWith("_IN_PROGRESS")) return { kind: "inProgress", status: observed.status };
    if (observed.status === "DELETE_FAILED") {
      const failure = await this.#failure(observed);
      await this.#delete(observed, fence);
      return { kind: "failed", reason: failure.reason, resource: failure.resource, status: observed.status, terminal: false };
    }
    await this.#delete(observed, fence);
    return { kind: "inProgress", status: "DELETE_IN_PROGRESS" };
  }

  async #create(desired: DesiredStack, fence: Fence | undefined): Promise<EnsureResult> {
    fence?.assertHeld();
    try {
      await this.#cfn.send(
        new CreateStackCommand({
          StackName: desired.stackName,
          TemplateBody: desired.templateBody,
          Parameters: cfnParameters(desired.parameters),
          Tags: cfnTags(desired),
          // Named roles (RoleName) need the NAMED variant.
          Capabilities: ["CAPABILITY_NAMED_IAM"],
          ClientRequestToken: this.#token("create", desired.hash),
        }),
      );
    } catch (err) {
      // Another controller, or our own earlier attempt that DescribeStacks did not show yet.
      if (errorName(err) === "AlreadyExistsException" || errorName(err) === "TokenAlreadyExistsException") {
        return { kind: "inProgress", status: "CREATE_IN_PROGRESS" };
      }
      if (isRefusal(err)) return { kind: "failed", reason: `CreateStack refused: ${messageOf(err)}`, resource: undefined, status: undefined, terminal: true };
      throw wrapAwsError(err, `creating stack ${desired.stackName}`);
    }
    return { kind: "inProgress", status: "CREATE_IN_PROGRESS" };
  }

  async #update(desired: DesiredStack, observed: ObservedStack, fence: Fence | undefined): Promise<EnsureResult> {
    fence?.assertHeld();
    try {
      await this.#cfn.send(
        new UpdateStackCommand({
          StackName: observed.stackId,
          TemplateBody: desired.templateBody,
          Parameters: cfnParameters(desired.parameters),
          Tags: cfnTags(desired),
          Capabilities: ["CAPABILITY_NAMED_IAM"],
          ClientRequestToken: this.#token("update", desired.hash),
        }),
      );
    } catch (err) {
      const message = messageOf(err);
      if (errorName(err) === "ValidationError" && /No updates are to be performed/i.test(message)) {
        this.#noop.set(desired.stackName, { from: observed.hashTag, to: desired.hash });
        return { kind: "ready", stackId: observed.stackId, outputs: observed.outputs };
      }
      // Another operation started between our read and this call.
      if (errorName(err) === "ValidationError" && /IN_PROGRESS state/i.test(message)) return { kind: "inProgress", status: "UPDATE_IN_PROGRESS" };
      if (errorName(err) === "TokenAlreadyExistsException") return { kind: "inProgress", status: "UPDATE_IN_PROGRESS" };
      if (isRefusal(err)) return { kind: "failed", reason: `UpdateStack refused: ${message}`, resource: undefined, status: observed.status, terminal: true };
      throw wrapAwsError(err, `updating stack ${desired.stackName}`);
    }
    this.#noop.delete(desired.stackName);
    return { kind: "inProgress", status: "UPDATE_IN_PROGRESS" };
  }

  async #delete(observed: ObservedStack, fence: Fence | undefined): Promise<void> {
    fence?.assertHeld();
    try {
      // By id, so a stack re-created under the same name meanwhile is never hit.
      await this.#cfn.send(new DeleteStackCommand({ StackName: observed.stackId, ClientRequestToken: this.#token("delete", observed.hashTag ?? "0") }));
    } catch (err) {
      if (isMissing(err)) return;
      throw wrapAwsError(err, `deleting stack ${observed.stackId}`);
    }
  }

  /**
   * Why the latest operation failed: the earliest *_FAILED resource event of
   * that operation that is a cause rather than a cancellation. One
   * DescribeStackEvents page (newest first, 100 events) covers an operation
   * on a stack of this size.
   */
  async #failure(observed: ObservedStack): Promise<{ reason: string; resource: string | undefined; hashPrefix: string | undefined }> {
    let events: StackEvent[];
    try {
      events = (await this.#cfn.send(new DescribeStackEventsCommand({ StackName: observed.stackId }))).StackEvents ?? [];
    } catch (err) {
      throw wrapAwsError(err, `describing events of stack ${observed.stackId}`);
    }
    return failureFromEvents(events, observed);
  }

  #token(operation: "create" | "update" | "delete", hash: string): string {
    return `${operation}-${hash.slice(0, 16)}-${this.#now().toString(36)}`;
  }
}

/**
 * Pure part of the failure reading, exported for tests. `events` are newest
 * first, as DescribeStackEvents returns them.
 */
export function failureFromEvents(
  events: readonly StackEvent[],
  observed: Pick<ObservedStack, "stackId" | "status" | "statusReason">,
): { reason: string; resource: string | undefined; hashPrefix: string | undefined } {
  // The latest operation runs from the newest event back to the stack's own
  // CREATE/UPDATE/DELETE_IN_PROGRESS event that started it.
  const operation: StackEvent[] = [];
  let start: StackEvent | undefined;
  for (const event of events) {
    operation.push(event);
    if (isStackEvent(event, observed.stackId) && /^(CREATE|UPDATE|DELETE|IMPORT)_IN_PROGRESS$/.test(event.ResourceStatus ?? "")) {
      start = event;
      break;
    }
  }
  const failures = operation.filter((e) => (e.ResourceStatus ?? "").endsWith("_FAILED") && !isStackEvent(e, observed.stackId));
  const causes = failures.filter((e) => !CANCELLED.test(e.ResourceStatusReason ?? ""));
  // Oldest first: the first failure is the cause, later ones often follow from it.
  const first = causes[causes.length - 1] ?? failures[failures.length - 1];
  const token = start?.ClientRequestToken ?? first?.ClientRequestToken;
  const hashPrefix = token !== undefined ? /^(?:create|update)-([0-9a-f]{16})-/.exec(token)?.[1] : undefined;
  if (first !== undefined) {
    const resource = first.LogicalResourceId;
    return { reason: `${resource ?? "?"}: ${first.ResourceStatusReason ?? first.ResourceStatus ?? "failed"}`, resource, hashPrefix };
  }
  return { reason: `stack is ${observed.status}${observed.statusReason !== undefined ? `: ${observed.statusReason}` : ""}`, resource: undefined, hashPrefix };
}

function isStackEvent(event: StackEvent, stackId: string): boolean {
  return event.ResourceType === "AWS::CloudFormation::Stack" && (event.PhysicalResourceId === stackId || event.StackId === stackId);
}

/** DescribeStacks/DeleteStack of a stack that does not exist. */
function isMissing(err: unknown): boolean {
  return errorName(err) === "ValidationError" && /does not exist/i.test(messageOf(err));
}

/**
 * CloudFormation refusing the request itself (template format error, a bad
 * parameter, missing capability): retrying the same input cannot help.
 */
function isRefusal(err: unknown): boolean {
  if (isThrottle(err)) return false;
  const name = errorName(err);
  if (name === "ValidationError" || name === "InsufficientCapabilitiesException") return true;
  // moto rejects some templates while creating their resources and answers 4xx with the resource's own error.
  const status = httpStatusOf(err);
  return status !== undefined && status >= 400 && status < 500 && name !== "LimitExceededException";
}

function cfnParameters(parameters: Readonly<Record<string, string>>) {
  return Object.entries(parameters).map(([ParameterKey, ParameterValue]) => ({ ParameterKey, ParameterValue }));
}

function cfnTags(desired: DesiredStack) {
  return [...Object.entries(desired.tags).filter(([k]) => k !== TEMPLATE_HASH_TAG), [TEMPLATE_HASH_TAG, desired.hash] as const].map(([Key, Value]) => ({ Key, Value }));
}
