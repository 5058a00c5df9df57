/**
 * Which listener of the pool a tenant's rule goes on (docs/adr/0015-listener-pool.md).
 * Pure: the allocator (src/providers/priority-allocator.ts) reads the counts,
 * asks here, and claims the answer in one conditional write.
 *
 * A placement is kept for the tenant's life: only a tenant without one is
 * placed, on the listener with the fewest tenants among those with room
 * (config order breaks ties), so new load balancers take the new tenants
 * and the load spreads. The first listener's ALB also holds the pool's
 * target group, so it takes one tenant fewer when the per-listener bound
 * would otherwise reach the ALB's 100.
 */

/** An ALB holds at most 100 target groups (an AWS quota). */
export const ALB_TARGET_GROUPS = 100;

export interface PlacementInput {
  /** LISTENER_ARNS, in order; the first holds the pool's catch-all rule. */
  readonly listeners: readonly string[];
  /** Tenants placed on each listener now; a listener missing here holds none. */
  readonly counts: ReadonlyMap<string, number>;
  /** TENANTS_PER_LISTENER. */
  readonly perListener: number;
  /** Listeners to pass over this time (e.g. one whose priorities are all taken). */
  readonly skip?: ReadonlySet<string>;
}

export type PlacementChoice =
  { readonly kind: "place"; readonly listenerArn: string; readonly capacity: number } | { readonly kind: "full"; readonly message: string };

/** How many tenants the listener at `index` of the pool takes. */
export function capacityOf(index: number, perListener: number): number {
  return index === 0 ? Math.min(perListener, ALB_TARGET_GROUPS - 1) : Math.min(perListener, ALB_TARGET_GROUPS);
}

export function choosePlacement(input: PlacementInput): PlacementChoice {
  let best: { listenerArn: string; count: number; capacity: number } | undefined;
  for (const [i, listenerArn] of input.listeners.entries()) {
    if (input.skip?.has(listenerArn) === true) continue;
    const count = input.counts.get(listenerArn) ?? 0;
    const capacity = capacityOf(i, input.perListener);
    if (count >= capacity) continue;
    if (best === undefined || count < best.count) best = { listenerArn, count, capacity };
  }
  if (best !== undefined) return { kind: "place", listenerArn: best.listenerArn, capacity: best.capacity };
  return { kind: "full", message: listenersFullMessage(input.listeners.length, input.perListener) };
}

/** What a person reads when no listener has room: the bound, and the way out. */
export function listenersFullMessage(listeners: number, perListener: number): string {
  const all = listeners === 1 ? "the only listener holds" : `all ${listeners} listeners hold`;
  return `${all} ${perListener} tenants (TENANTS_PER_LISTENER); add a listener to LISTENER_ARNS (an ALB holds at most ${ALB_TARGET_GROUPS} target groups)`;
}
