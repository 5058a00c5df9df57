import type { DesiredRoute, Fence, PlannedCall, RouteAction, RoutePort } from "../ports.js";
import { decideRoute, routeCalls } from "../tiers/route-decide.js";
import type { TenantStatus } from "../tenants/status.js";

/** The durable listener-rule priority of each tenant (PriorityAllocator). */
export interface Priorities {
  get(tenantId: string): Promise<number | undefined>;
  allocate(tenantId: string, fence: Fence): Promise<number>;
  release(tenantId: string, fence: Fence): Promise<boolean>;
}

export type RouteStatus = NonNullable<TenantStatus["route"]>;

/** Where the tenant's rule stands after one converge call. */
export type RouteOutcome =
  { readonly kind: "ready"; readonly route: RouteStatus | undefined } | { readonly kind: "blocked"; readonly reason: string };

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

  constructor(routes: RoutePort, priorities: Priorities, listenerArn: string) {
    this.#routes = routes;
    this.#priorities = priorities;
    this.#listenerArn = listenerArn;
  }

  /**
   * Makes the tenant's rule carry `action`, or removes it when undefined.
   * `known` is the rule recorded in the status: it makes the read one call,
   * and its absence with no action wanted means there is nothing to look at.
   */
  async converge(tenantId: string, action: RouteAction | undefined, known: RouteStatus | undefined, fence: Fence): Promise<RouteOutcome> {
    if (action === undefined && known === undefined) return { kind: "ready", route: undefined };
    const listenerArn = known?.listenerArn ?? this.#listenerArn;
    const observed = await this.#routes.observe(tenantId, listenerArn, known?.ruleArn);
    // Allocated before the rule exists and kept for the tenant's life: two
    // tenants can never race for one priority on the listener.
    const priority = action === undefined ? undefined : (known?.priority ?? (await this.#priorities.allocate(tenantId, fence)));
    const desired: DesiredRoute | undefined =
      action === undefined || priority === undefined ? undefined : { tenantId, listenerArn: this.#listenerArn, priority, action };
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
    const observed = await this.#routes.observe(tenantId, known?.listenerArn ?? this.#listenerArn, known?.ruleArn);
    const priority = action === undefined ? undefined : (known?.priority ?? (await this.#priorities.get(tenantId)) ?? 0);
    const desired: DesiredRoute | undefined =
      action === undefined || priority === undefined ? undefined : { tenantId, listenerArn: this.#listenerArn, priority, action };
    return routeCalls(decideRoute(desired, observed));
  }

  /** Removes whatever managed rule answers for the tenant, found by listing the listener (a deleted record left no status). */
  async removeAny(tenantId: string, fence: Fence): Promise<void> {
    const observed = await this.#routes.observe(tenantId, this.#listenerArn);
    if (observed !== undefined && observed.managed) await this.#routes.delete(observed, fence);
  }

  /** Frees the tenant's priority; only once its rule is gone (offboarding's last step). */
  async release(tenantId: string, fence: Fence): Promise<void> {
    await this.#priorities.release(tenantId, fence);
  }
}
