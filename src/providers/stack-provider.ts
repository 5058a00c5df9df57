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
import type { Fence } from "../ports.js";
import {
  execute,
  observeAndDecide,
  type Accepted,
  type CallNames,
  type External,
  type Refused,
  type Unchanged,
} from "../reconciler/external.js";
import {
  decideStack,
  needsLastFailure,
  statusFailure,
  type DesiredStack,
  type ObservedStack,
  type StackFailure,
} from "../tiers/stack-decide.js";
import { errorName, httpStatusOf, isCondition, isThrottle, messageOf, wrapAwsError } from "./aws-errors.js";

/**
 * CloudFormation stacks as an External (src/reconciler/external.ts): observe,
 * create, update and delete each make one call, and decideStack
 * (src/tiers/stack-decide.ts) chooses between them. ensure() and remove() are
 * that pipeline: they read the stack once, make at most one create, update or
 * delete call, and return at once with where things stand. They never wait
 * for a stack operation; the caller requeues.
 *
 * Idempotency:
 * - create() of a stack that exists (AlreadyExistsException, or our own
 *   token already used) is "accepted": a create is under way or done.
 * - decideStack updates only when the stack's `template-hash` tag differs from
 *   the desired hash, so a steady tenant costs one DescribeStacks.
 * - delete() of a stack that is already gone is "accepted", and decideStack
 *   never deletes a stack without managed-by=ecs-tenant-operator.
 *
 * ClientRequestToken is `<operation>-<first 16 hex of the hash>-<time>`: it
 * dedupes the SDK's own retries of one call (the SDK resends the same input),
 * and DescribeStackEvents echoes it, which tells which desired hash a failed
 * update was for. It is not the hash alone because CloudFormation rejects a
 * token already used on the stack (TokenAlreadyExistsException), so going back
 * to an earlier template, or re-creating after a rollback, needs a fresh one.
 */

export const TEMPLATE_HASH_TAG = "template-hash";

export type { DesiredStack, ObservedStack, StackFailure } from "../tiers/stack-decide.js";

/** How `tenantctl plan` names the stack calls. */
export const STACK_CALLS: CallNames = {
  create: "cloudformation:CreateStack",
  update: "cloudformation:UpdateStack",
  delete: "cloudformation:DeleteStack",
};

export type EnsureResult =
  | { readonly kind: "ready"; readonly stackId: string; readonly outputs: Readonly<Record<string, string>> }
  | { readonly kind: "inProgress"; readonly status: string }
  | {
      readonly kind: "failed";
      /** `<LogicalResourceId>: <ResourceStatusReason>` of the first failure, or CloudFormation's answer to the call. */
      readonly reason: string;
      /** The logical id of the resource that failed first, when known. */
      readonly resource: string | undefined;
      /** The stack's status, or undefined when the create call itself was refused. */
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
  | {
      readonly kind: "failed";
      readonly reason: string;
      readonly resource: string | undefined;
      readonly status: string | undefined;
      readonly terminal: boolean;
    };

/** Events that are a consequence of another failure, not its cause. */
const CANCELLED = /^Resource (creation|update|deletion) cancelled/i;

/** For callers that hold no lease (tests, one-off tools). */
const UNFENCED: Fence = { assertHeld() {} };

export interface StackProviderOptions {
  /** Clock for request tokens (tests pass a fixed one). @default Date.now */
  readonly now?: () => number;
  /**
   * The CloudFormation service role (CFN_ROLE_ARN) sent as RoleARN with every
   * create, update and delete, so CloudFormation acts with that role's
   * permissions rather than the controller's. @default none
   */
  readonly roleArn?: string;
}

export class StackProvider implements External<DesiredStack, ObservedStack> {
  readonly #cfn: CloudFormationClient;
  readonly #now: () => number;
  /** Spread into CreateStack, UpdateStack and DeleteStack: empty when no service role is configured. */
  readonly #role: { readonly RoleARN?: string };
  /**
   * Updates CloudFormation answered "No updates are to be performed" to, as
   * (observed hash -> desired hash) per stack name. observe() hands it to
   * decideStack as ObservedStack.noUpdatesFor, so the same update is not sent
   * on every reconcile. Lost on restart, which costs one more such answer.
   */
  readonly #noop = new Map<string, { readonly from: string | undefined; readonly to: string }>();

  constructor(cfn: CloudFormationClient, options: StackProviderOptions = {}) {
    this.#cfn = cfn;
    this.#now = options.now ?? Date.now;
    this.#role = options.roleArn !== undefined ? { RoleARN: options.roleArn } : {};
  }

  /**
   * One DescribeStacks, plus one DescribeStackEvents when decideStack will
   * report or weigh the latest failure (needsLastFailure). Undefined when the
   * stack does not exist or is DELETE_COMPLETE.
   */
  async observe(stackName: string, desired?: DesiredStack): Promise<ObservedStack | undefined> {
    let stack: Stack | undefined;
    try {
      stack = (await this.#cfn.send(new DescribeStacksCommand({ StackName: stackName }))).Stacks?.[0];
    } catch (err) {
      if (!isMissing(err)) throw wrapAwsError(err, `describing stack ${stackName}`);
    }
    if (stack === undefined || stack.StackStatus === "DELETE_COMPLETE") {
      this.#noop.delete(stackName);
      return undefined;
    }
    const tags = Object.fromEntries((stack.Tags ?? []).flatMap((t) => (t.Key !== undefined ? [[t.Key, t.Value ?? ""]] : [])));
    const outputs = Object.fromEntries(
      (stack.Outputs ?? []).flatMap((o) =>
        o.OutputKey !== undefined && o.OutputValue !== undefined ? [[o.OutputKey, o.OutputValue]] : [],
      ),
    );
    const hashTag = tags[TEMPLATE_HASH_TAG];
    const noop = this.#noop.get(stackName);
    const seen = {
      stackName: stack.StackName ?? stackName,
      stackId: stack.StackId ?? stackName,
      status: stack.StackStatus ?? "UNKNOWN",
      statusReason: stack.StackStatusReason,
      outputs,
      hashTag,
      tags,
      noUpdatesFor: noop !== undefined && noop.from === hashTag ? noop.to : undefined,
    };
    return { ...seen, lastFailure: needsLastFailure(seen, desired) ? await this.#failure(seen) : undefined };
  }

  /** One CreateStack. */
  async create(desired: DesiredStack, fence: Fence): Promise<Accepted | Refused> {
    fence.assertHeld();
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
          ...this.#role,
        }),
      );
    } catch (err) {
      // Another controller, or our own earlier attempt that DescribeStacks did not show yet.
      if (errorName(err) === "AlreadyExistsException" || errorName(err) === "TokenAlreadyExistsException")
        return accepted("CREATE_IN_PROGRESS");
      if (isRefusal(err)) return { kind: "refused", reason: `CreateStack refused: ${messageOf(err)}` };
      throw wrapAwsError(err, `creating stack ${desired.stackName}`);
    }
    return accepted("CREATE_IN_PROGRESS");
  }

  /** One UpdateStack, by stack id. */
  async update(desired: DesiredStack, observed: ObservedStack, fence: Fence): Promise<Accepted | Unchanged | Refused> {
    fence.assertHeld();
    try {
      await this.#cfn.send(
        new UpdateStackCommand({
          StackName: observed.stackId,
          TemplateBody: desired.templateBody,
          Parameters: cfnParameters(desired.parameters),
          Tags: cfnTags(desired),
          Capabilities: ["CAPABILITY_NAMED_IAM"],
          ClientRequestToken: this.#token("update", desired.hash),
          ...this.#role,
        }),
      );
    } catch (err) {
      if (isCondition(err, "stackUnchanged")) {
        this.#noop.set(desired.stackName, { from: observed.hashTag, to: desired.hash });
        return { kind: "unchanged" };
      }
      // Another operation started between our read and this call.
      if (isCondition(err, "stackBusy")) return accepted("UPDATE_IN_PROGRESS");
      if (errorName(err) === "TokenAlreadyExistsException") return accepted("UPDATE_IN_PROGRESS");
      if (isRefusal(err)) return { kind: "refused", reason: `UpdateStack refused: ${messageOf(err)}` };
      throw wrapAwsError(err, `updating stack ${desired.stackName}`);
    }
    this.#noop.delete(desired.stackName);
    return accepted("UPDATE_IN_PROGRESS");
  }

  /** One DeleteStack, by stack id, so a stack re-created under the same name meanwhile is never hit. */
  async delete(observed: ObservedStack, fence: Fence): Promise<Accepted | Refused> {
    fence.assertHeld();
    try {
      await this.#cfn.send(
        new DeleteStackCommand({
          StackName: observed.stackId,
          ClientRequestToken: this.#token("delete", observed.hashTag ?? "0"),
          ...this.#role,
        }),
      );
    } catch (err) {
      if (!isMissing(err)) throw wrapAwsError(err, `deleting stack ${observed.stackId}`);
    }
    return accepted("DELETE_IN_PROGRESS");
  }

  /**
   * Moves the stack one step toward `desired` and says where it stands.
   * Calls: DescribeStacks, DescribeStackEvents when the stack is in a failed
   * state that matters, plus at most one of CreateStack, UpdateStack or DeleteStack.
   */
  async ensure(desired: DesiredStack, fence: Fence = UNFENCED): Promise<EnsureResult> {
    const { observed, step } = await observeAndDecide(this, desired.stackName, desired, decideStack);
    const outcome = await execute(this, step, fence);
    switch (outcome.kind) {
      case "ready":
        return { kind: "ready", stackId: outcome.observed.stackId, outputs: outcome.observed.outputs };
      case "inProgress":
        return outcome;
      case "failed":
        return { ...outcome, status: observed?.status };
      case "gone":
        throw new Error(`decideStack answered "gone" for a desired stack ${desired.stackName}`);
    }
  }

  /**
   * Deletes the stack if it is managed. Calls: DescribeStacks, plus at most
   * one DeleteStack, plus DescribeStackEvents when a delete failed.
   */
  async remove(stackName: string, fence: Fence = UNFENCED): Promise<RemoveResult> {
    const { observed, step } = await observeAndDecide(this, stackName, undefined, decideStack);
    const outcome = await execute(this, step, fence);
    switch (outcome.kind) {
      case "gone":
      case "inProgress":
        return outcome;
      case "failed":
        return { ...outcome, status: observed?.status };
      case "ready":
        throw new Error(`decideStack answered "ready" for an unwanted stack ${stackName}`);
    }
  }

  /**
   * Why the latest operation failed: the earliest *_FAILED resource event of
   * that operation that is a cause rather than a cancellation. One
   * DescribeStackEvents page (newest first, 100 events) covers an operation
   * on a stack of this size.
   */
  async #failure(observed: Pick<ObservedStack, "stackId" | "status" | "statusReason">): Promise<StackFailure> {
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

const accepted = (status: string): Accepted => ({ kind: "accepted", status });

/**
 * Pure part of the failure reading, exported for tests. `events` are newest
 * first, as DescribeStackEvents returns them.
 */
export function failureFromEvents(
  events: readonly StackEvent[],
  observed: Pick<ObservedStack, "stackId" | "status" | "statusReason">,
): StackFailure {
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
  return { reason: statusFailure(observed), resource: undefined, hashPrefix };
}

function isStackEvent(event: StackEvent, stackId: string): boolean {
  return event.ResourceType === "AWS::CloudFormation::Stack" && (event.PhysicalResourceId === stackId || event.StackId === stackId);
}

/** DescribeStacks/DeleteStack of a stack that does not exist. */
function isMissing(err: unknown): boolean {
  return isCondition(err, "stackMissing");
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
  return [...Object.entries(desired.tags).filter(([k]) => k !== TEMPLATE_HASH_TAG), [TEMPLATE_HASH_TAG, desired.hash] as const].map(
    ([Key, Value]) => ({ Key, Value }),
  );
}
