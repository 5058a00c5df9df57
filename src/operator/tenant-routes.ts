import type { DesiredRoute, Fence, ObservedRoute, RouteAction, RoutePort } from "./ports.js";
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
  | { readonly kind: "ready"; readonly route: RouteStatus | undefined }
  | { readonly kind: "blocked"; readonly reason: string };

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
    if (observed !== undefined && !observed.managed) {
      return { kind: "blocked", reason: `listener rule ${observed.ruleArn} for tenant ${tenantId} lacks the tag managed-by=ecs-tenant-operator; remove it or tag it` };
    }
    if (action === undefined) {
      if (observed !== undefined) await this.#routes.delete(observed, fence);
      return { kind: "ready", route: undefined };
    }
    // Allocated before the rule exists and kept for the tenant's life: two
    // tenants can never race for one priority on the listener.
    const priority = known?.priority ?? (await this.#priorities.allocate(tenantId, fence));
    const desired: DesiredRoute = { tenantId, listenerArn, priority, action };
    if (observed === undefined) {
      const ruleArn = await this.#routes.create(desired, fence);
      return { kind: "ready", route: { listenerArn, priority, ruleArn } };
    }
    if (!sameAction(observed.action, action) || observed.priority !== priority) await this.#routes.update(desired, observed, fence);
    return { kind: "ready", route: { listenerArn, priority, ruleArn: observed.ruleArn } };
  }

  /** Frees the tenant's priority; only once its rule is gone (offboarding's last step). */
  async release(tenantId: string, fence: Fence): Promise<void> {
    await this.#priorities.release(tenantId, fence);
  }
}

export function sameAction(observed: ObservedRoute["action"], desired: RouteAction): boolean {
  if (observed.kind !== desired.kind) return false;
  return observed.kind !== "forward" || desired.kind !== "forward" || observed.targetGroupArn === desired.targetGroupArn;
}
