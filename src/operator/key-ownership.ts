import type { Fence } from "../ports.js";
import type { LeaderLease } from "../reconciler/lease.js";
import type { ShardLeases } from "../reconciler/shard-leases.js";
import { shardOf } from "../reconciler/shards.js";
import { POOL_KEY } from "../tiers/desired.js";
import { isPoolServiceName, tenantOfEcsName } from "../tiers/naming.js";

/**
 * Which lease owns a key (ADR 0016): the pool key belongs to the controller
 * lease (fleet-wide work, one owner), every tenant to its shard's lease.
 */
export class KeyOwnership {
  constructor(
    readonly lease: LeaderLease,
    readonly shards: ShardLeases,
  ) {}

  /** The key's shard; undefined for the pool key. */
  shardOf(key: string): number | undefined {
    return key === POOL_KEY ? undefined : shardOf(key, this.shards.count);
  }

  /** This controller may reconcile the key now. */
  owns(key: string): boolean {
    const shard = this.shardOf(key);
    return shard === undefined ? this.lease.isLeader : this.shards.owns(shard);
  }

  /**
   * The key's lease is not lost, though it may not be valid this instant
   * (owns() false while a renewal runs late): its keys must wait, not be dropped.
   */
  holds(key: string): boolean {
    const shard = this.shardOf(key);
    return shard === undefined ? this.lease.holdsTerm : this.shards.holds(shard);
  }

  /** The fence of one reconcile of the key (TenantReconcilerOptions.fenceFor). */
  readonly fenceFor = (key: string): Fence => {
    const shard = this.shardOf(key);
    return shard === undefined ? this.lease : this.shards.fenceFor(shard);
  };
}

/**
 * The key a service's name says it belongs to: the pool key for the pool's
 * services, a tenant id for a tenant's, undefined for any other name. It
 * only splits a survey's reads between controllers (ManagerOptions.serviceOwner);
 * what a service is, is still decided by its tags.
 */
export function serviceOwner(prefix: string): (serviceName: string) => string | undefined {
  return (name) => (isPoolServiceName(prefix, name) ? POOL_KEY : tenantOfEcsName(prefix, name, "service"));
}
