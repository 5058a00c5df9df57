import type { Fence } from "../ports.js";

/**
 * One kind of external resource, driven the way crossplane-runtime drives an
 * ExternalClient: observe, let a pure function decide one step, execute that
 * step, and let the queue bring the key back. `tenantctl plan` runs the same
 * observe and decide, and renders the step instead of executing it, so what
 * plan prints and what the controller does cannot drift apart.
 *
 * Nothing here waits for an operation to finish: a step makes at most one
 * write, and "in progress" is an answer, not a loop.
 */

/** What a create, update or delete call did. Errors worth retrying (throttling, 5xx) are thrown, not returned. */
export type Accepted = {
  readonly kind: "accepted";
  /** The resource's own word for what it is now doing, e.g. CREATE_IN_PROGRESS. */
  readonly status: string;
};
/** The call found nothing to change: the observed resource is already as desired. */
export type Unchanged = { readonly kind: "unchanged" };
/** The service refused this input; sending it again cannot help, so the failure is terminal until the desired state changes. */
export type Refused = { readonly kind: "refused"; readonly reason: string };

/**
 * One kind of external resource. Every method is idempotent, because a
 * reconcile may run again at any point after a crash or a lost reply.
 */
export interface External<D, O> {
  /**
   * Reads only. Undefined when the resource does not exist (or is fully
   * deleted). `desired` is what the caller wants, or undefined when the
   * resource should not exist; an implementation may use it to skip reads
   * whose answer the decision would not look at, never to decide.
   */
  observe(key: string, desired?: D): Promise<O | undefined>;
  /**
   * Creates the resource. A resource that already exists is not an error:
   * it is "accepted" (someone's create, perhaps our own earlier one, is under
   * way or done; the next observe tells which). Calls fence.assertHeld() first.
   */
  create(desired: D, fence: Fence): Promise<Accepted | Refused>;
  /**
   * Moves an existing resource to `desired`. "unchanged" when the service
   * says there is nothing to change; "accepted" when another operation got
   * there first (the next observe tells). Calls fence.assertHeld() first.
   */
  update(desired: D, observed: O, fence: Fence): Promise<Accepted | Unchanged | Refused>;
  /**
   * Deletes the observed resource (by its unique id where one exists, so a
   * namesake created meanwhile is never hit). A resource already gone is
   * "accepted": the next observe says it is absent. Calls fence.assertHeld() first.
   */
  delete(observed: O, fence: Fence): Promise<Accepted | Refused>;
}

/** Why something failed. */
export interface Cause {
  readonly reason: string;
  /** The part of the resource that failed first (a stack's logical resource id), when known. */
  readonly resource?: string | undefined;
}

/** A failure as the caller reports it. */
export interface Failure extends Cause {
  /** True when nothing changes until the desired state does; false when trying again after a backoff can help. */
  readonly terminal: boolean;
}

/**
 * The one thing to do now. Every step carries a human `reason`: it is what
 * `tenantctl plan` prints, and for `fail` it is the failure reported.
 */
export type Step<D, O> =
  | { readonly kind: "create"; readonly desired: D; readonly reason: string }
  | { readonly kind: "update"; readonly desired: D; readonly observed: O; readonly reason: string }
  | {
      readonly kind: "delete";
      readonly observed: O;
      readonly reason: string;
      /**
       * Set when the delete clears a broken resource rather than removing an
       * unwanted one: the cause is reported at once as a retryable failure, so
       * the caller backs off and shows why, and the create follows once it is gone.
       */
      readonly recovering?: Cause | undefined;
    }
  /** The resource is busy with an operation of its own (`status`); look again later. */
  | { readonly kind: "wait"; readonly reason: string; readonly status: string }
  | ({ readonly kind: "fail" } & Failure)
  /** The resource exists as desired. */
  | { readonly kind: "ready"; readonly observed: O; readonly reason: string }
  /** The resource is not wanted and does not exist. */
  | { readonly kind: "gone"; readonly reason: string };

/** Where the resource stands after a step, for the caller's status and requeue. */
export type Outcome<O> =
  | { readonly kind: "ready"; readonly observed: O }
  | { readonly kind: "gone" }
  | { readonly kind: "inProgress"; readonly status: string }
  | { readonly kind: "failed"; readonly reason: string; readonly terminal: boolean; readonly resource: string | undefined };

/** Runs one step: at most one write. Throws what the External throws (retryable errors, a lost lease). */
export async function execute<D, O>(external: External<D, O>, step: Step<D, O>, fence: Fence): Promise<Outcome<O>> {
  switch (step.kind) {
    case "ready":
      return { kind: "ready", observed: step.observed };
    case "gone":
      return { kind: "gone" };
    case "wait":
      return { kind: "inProgress", status: step.status };
    case "fail":
      return { kind: "failed", reason: step.reason, terminal: step.terminal, resource: step.resource };
    case "create": {
      const r = await external.create(step.desired, fence);
      return r.kind === "refused" ? refused(r) : { kind: "inProgress", status: r.status };
    }
    case "update": {
      const r = await external.update(step.desired, step.observed, fence);
      if (r.kind === "unchanged") return { kind: "ready", observed: step.observed };
      return r.kind === "refused" ? refused(r) : { kind: "inProgress", status: r.status };
    }
    case "delete": {
      const r = await external.delete(step.observed, fence);
      if (r.kind === "refused") return refused(r);
      const failure = step.recovering;
      return failure === undefined
        ? { kind: "inProgress", status: r.status }
        : { kind: "failed", reason: failure.reason, terminal: false, resource: failure.resource };
    }
  }
}

function refused<O>(r: Refused): Outcome<O> {
  return { kind: "failed", reason: r.reason, terminal: true, resource: undefined };
}

/** Observe, then decide: the read-only half shared by reconcile and `tenantctl plan`. */
export async function observeAndDecide<D, O>(
  external: External<D, O>,
  key: string,
  desired: D | undefined,
  decide: (desired: D | undefined, observed: O | undefined) => Step<D, O>,
): Promise<{ readonly observed: O | undefined; readonly step: Step<D, O> }> {
  const observed = await external.observe(key, desired);
  return { observed, step: decide(desired, observed) };
}

/** The write call names of one kind, as `tenantctl plan` prints them (`service:Operation`). */
export interface CallNames {
  readonly create: string;
  readonly update: string;
  readonly delete: string;
}

/** A planned call; the same shape as PlannedCall in src/ports.ts. */
export interface PlannedWrite {
  readonly call: string;
  readonly target: string;
  readonly reason: string;
}

/**
 * The call a step would make, for `tenantctl plan`; undefined for steps that
 * make none (ready, gone, wait, fail), so a converged resource plans nothing.
 */
export function plannedCall<D, O>(step: Step<D, O>, target: string, calls: CallNames): PlannedWrite | undefined {
  switch (step.kind) {
    case "create":
    case "update":
    case "delete":
      return { call: calls[step.kind], target, reason: step.reason };
    case "ready":
    case "gone":
    case "wait":
    case "fail":
      return undefined;
  }
}
