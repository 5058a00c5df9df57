/**
 * The resync period with ±10% jitter: controllers started together (a
 * deploy, a shard rebalance) drift apart instead of each sweeping ECS at the
 * same moment, every period, for good.
 */
export const RESYNC_JITTER = 0.1;

/** `ms` moved uniformly within ±RESYNC_JITTER of itself; random is uniform in [0, 1). */
export function jitteredResyncMs(ms: number, random: () => number = Math.random): number {
  return Math.round(ms * (1 - RESYNC_JITTER + 2 * RESYNC_JITTER * random()));
}
