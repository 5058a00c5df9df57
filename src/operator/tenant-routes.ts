import type { DesiredRoute, Fence, PlannedCall, RouteAction, RoutePort } from "../ports.js";
import { decideRoute, routeCalls } from "../tiers/route-decide.js";
import type { TenantStatus } from "../tenants/status.js";
import { ListenersFullError } from "../providers/priority-allocator.js";

/**
 * Where a tenant's rule lives, durably: its listener and its priority there
 * (PriorityAllocator). A listener left out (or empty) is the first one: a
 * placement made before the listener pool existed.
 */
export interface RoutePlacement {
  readonly listenerArn?: string;
  readonly priority: number;
}

/** The durable placement of each tenant's rule (PriorityAllocator). */
export interface Priorities {
  placement(tenantId: string): Promise<RoutePlacement | undefined>;
  /** The tenant's placement, made now if it has none; throws ListenersFullError when no listener has room. */
  place(tenantId: string, fence: Fence): Promise<RoutePlacement>;
  release(tenantId: string, fence: Fence): Promise<boolean>;
  /** What place() would answer now, claiming nothing (`tenantctl plan`). */
  proposal?(tenantId: string): Promise<RoutePlacement | { readonly full: string }>;
}

export type RouteStatus = NonNullable<TenantStatus["route"]>;

/** Where the tenant's rule stands after one converge call. */
export type RouteOutcome =
  | { readonly kind: "ready"; readonly route: RouteStatus | undefined }
  /** `retry` set: waiting may fix it (every listener full), so the reconcile is retried with backoff. */
  | { readonly kind: "blocked"; readonly reason: string; readonly retry?: Error };

/**
 * A tenant's listener rule: a forward to its target group (silo tiers), a
 * fixed-response 403 (suspended, any tier), or none at all (basic tenants,
 * served by the pool's catch-all). One rule per tenant for its whole life,
 * at a durable priority, so flipping where a tenant is served is a single
 * ModifyRule, CreateRule or DeleteRule.
 */
export class TenantRoutes {
  readonly #routes: RoutePort;
  readonly #priorities: Priorities;
  readonly #listenerArn: string;

  readonly #listeners: readonly string[];

  /** @param listeners every listener of the pool (LISTENER_ARNS); the first is `listenerArn`. */
  constructor(routes: RoutePort, priorities: Priorities, listenerArn: string, listeners: readonly string[] = [listenerArn]) {
    this.#routes = routes;
    this.#priorities = priorities;
    this.#listenerArn = listenerArn;
    this.#listeners = listeners;
  }

  /** A resync's batched read of every listener's rules, for the covered tenants (RoutePort.survey). */
  async survey(covers?: (tenantId: string) => boolean): Promise<void> {
    await this.#routes.survey?.(this.#listeners, covers);
  }

  /**
   * Makes the tenant's rule carry `action`, or removes it when undefined.
   * `known` is the rule recorded in the status: it makes the read one call,
   * and its absence with no action wanted means there is nothing to look at.
   */
  async converge(tenantId: string, action: RouteAction | undefined, known: RouteStatus | undefined, fence: Fence): Promise<RouteOutcome> {
    if (action === undefined && known === undefined) return { kind: "ready", route: undefined };
    // Placed before the rule exists and kept for the tenant's life: two
    // tenants can never race for one priority, nor over-fill a listener.
    let placed: { listenerArn: string; priority: number } | undefined;
    if (action !== undefined) {
      try {
        placed = known ?? this.#resolve(await this.#priorities.place(tenantId, fence));
      } catch (err) {
        // Nothing is undone for it: the tenant waits, Degraded, for a place.
        if (err instanceof ListenersFullError) return { kind: "blocked", reason: err.message, retry: err };
        throw err;
      }
    }
    const observed = await this.#routes.observe(tenantId, known?.listenerArn ?? placed?.listenerArn ?? this.#listenerArn, known?.ruleArn);
    const desired: DesiredRoute | undefined =
      action === undefined || placed === undefined
        ? undefined
        : { tenantId, listenerArn: placed.listenerArn, priority: placed.priority, action };
    const step = decideRoute(desired, observed);
    switch (step.kind) {
      case "fail":
        return { kind: "blocked", reason: step.reason };
      case "ready":
        return {
          kind: "ready",
          route:
            step.observed && desired
              ? { listenerArn: step.observed.listenerArn, priority: step.observed.priority, ruleArn: step.observed.ruleArn }
              : undefined,
        };
      case "delete":
        await this.#routes.delete(step.observed, fence);
        // A rule on another listener is created on ours at the next look.
        return desired === undefined ? { kind: "ready", route: undefined } : this.converge(tenantId, action, undefined, fence);
      case "create": {
        const ruleArn = await this.#routes.create(step.desired, fence);
        return { kind: "ready", route: { listenerArn: step.desired.listenerArn, priority: step.desired.priority, ruleArn } };
      }
      case "update":
        await this.#routes.update(step.desired, step.observed, fence);
        return {
          kind: "ready",
          route: { listenerArn: step.desired.listenerArn, priority: step.desired.priority, ruleArn: step.observed.ruleArn },
        };
    }
  }

  /** The calls converge would make now, making none (`tenantctl plan`). */
  async preview(tenantId: string, action: RouteAction | undefined, known: RouteStatus | undefined): Promise<readonly PlannedCall[]> {
    if (action === undefined && known === undefined) return [];
    let placed: { listenerArn: string; priority: number } | undefined;
    if (action !== undefined) {
      const proposed = known ?? (await this.#proposal(tenantId));
      if ("full" in proposed)
        return [{ call: "elasticloadbalancing:CreateRule", target: "no listener: every one is full", reason: proposed.full }];
      placed = proposed;
    }
    const observed = await this.#routes.observe(tenantId, known?.listenerArn ?? placed?.listenerArn ?? this.#listenerArn, known?.ruleArn);
    const desired: DesiredRoute | undefined =
      action === undefined || placed === undefined
        ? undefined
        : { tenantId, listenerArn: placed.listenerArn, priority: placed.priority, action };
    return routeCalls(decideRoute(desired, observed));
  }

  /** Removes whatever managed rule answers for the tenant, found by listing the listener (a deleted record left no status). */
  async removeAny(tenantId: string, fence: Fence): Promise<void> {
    const placed = await this.#priorities.placement(tenantId);
    const observed = await this.#routes.observe(tenantId, placed === undefined ? this.#listenerArn : this.#resolve(placed).listenerArn);
    if (observed !== undefined && observed.managed) await this.#routes.delete(observed, fence);
  }

  /** Frees the tenant's placement (its priority and its place on the listener); only once its rule is gone (offboarding's last step). */
  async release(tenantId: string, fence: Fence): Promise<void> {
    await this.#priorities.release(tenantId, fence);
  }

  async #proposal(tenantId: string): Promise<{ listenerArn: string; priority: number } | { readonly full: string }> {
    const proposed = this.#priorities.proposal
      ? await this.#priorities.proposal(tenantId)
      : ((await this.#priorities.placement(tenantId)) ?? { priority: 0 });
    return "full" in proposed ? proposed : this.#resolve(proposed);
  }

  #resolve(p: RoutePlacement): { listenerArn: string; priority: number } {
    return { listenerArn: p.listenerArn !== undefined && p.listenerArn !== "" ? p.listenerArn : this.#listenerArn, priority: p.priority };
  }
}
