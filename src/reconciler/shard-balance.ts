/**
 * Which shard leases a controller should take, as a pure function of what
 * the operator table says (ADR 0016), after the Kinesis Client Library's
 * lease taker: every live controller aims at ceil(shards / live) shards;
 * one below that takes free shards first and otherwise steals one shard per
 * round from the most loaded controller, and only from one above the target
 * by more than one. A controller at or above the target never takes, so a
 * balanced fleet makes no moves at all (no ping-pong).
 */

/** A shard lease as the store last showed it; a missing item is a free lease with token 0. */
export interface ShardLeaseView {
  readonly shard: number;
  readonly holder: string | undefined;
  /** Epoch ms (the holder's clock). */
  readonly expiresAt: number;
  readonly token: number;
}

export interface BalanceInput {
  readonly me: string;
  readonly now: number;
  /** One per shard. */
  readonly leases: readonly ShardLeaseView[];
  /** Controllers' heartbeats: holder -> expiry (epoch ms). */
  readonly workers: ReadonlyMap<string, number>;
  /** Shards this controller holds by its own renewals (the store may lag). */
  readonly owned: ReadonlySet<number>;
  /**
   * Free shards seen free for more than one round: a live controller that
   * does not take its share (stuck, or failing every write) must not leave
   * tenants without an owner, so these are taken even above the target.
   */
  readonly longFree?: ReadonlySet<number>;
}

export interface BalanceDecision {
  /** ceil(shards / live controllers). */
  readonly target: number;
  /** Live controllers, this one included, sorted. */
  readonly live: readonly string[];
  /** Free (never held, released or expired) shards to try to acquire, or ours in the store but not locally. */
  readonly take: readonly number[];
  /** At most one held shard to take from an overloaded controller. */
  readonly steal?: { readonly shard: number; readonly from: string; readonly token: number };
}

export function isHeld(lease: ShardLeaseView, now: number): boolean {
  return lease.holder !== undefined && lease.expiresAt >= now;
}

export function decideBalance(input: BalanceInput): BalanceDecision {
  const { me, now, leases, owned } = input;
  const live = new Set<string>([me]);
  for (const [holder, expiresAt] of input.workers) if (expiresAt >= now) live.add(holder);
  const target = Math.ceil(leases.length / live.size);

  const mine = new Set(owned);
  const reclaim: number[] = [];
  const loads = new Map<string, ShardLeaseView[]>();
  const free: number[] = [];
  for (const lease of leases) {
    if (owned.has(lease.shard)) continue;
    if (!isHeld(lease, now)) free.push(lease.shard);
    else if (lease.holder === me) {
      // Ours in the store, not locally (a renewal timed out): take it back before anyone else does.
      reclaim.push(lease.shard);
      mine.add(lease.shard);
    } else if (lease.holder !== undefined) {
      const list = loads.get(lease.holder) ?? [];
      list.push(lease);
      loads.set(lease.holder, list);
    }
  }

  // Each controller walks the free shards from its own starting point, so
  // several taking at once mostly try different ones.
  const start = rotation(me, leases.length);
  free.sort((a, b) => ((a - start + leases.length) % leases.length) - ((b - start + leases.length) % leases.length));
  const want = Math.max(0, target - mine.size);
  const take = [...reclaim, ...free.slice(0, want)];
  for (const shard of free.slice(want)) if (input.longFree?.has(shard)) take.push(shard);

  let steal: BalanceDecision["steal"];
  if (free.length === 0 && mine.size < target) {
    let victim: string | undefined;
    for (const [holder, list] of loads) {
      if (!live.has(holder)) continue; // its leases expire on their own
      const best = victim === undefined ? undefined : loads.get(victim);
      if (best === undefined || list.length > best.length || (list.length === best.length && holder < (victim ?? ""))) victim = holder;
    }
    const theirs = victim === undefined ? [] : (loads.get(victim) ?? []);
    if (victim !== undefined && theirs.length > target && theirs.length - mine.size > 1) {
      const lease = theirs.reduce((a, b) => (b.shard > a.shard ? b : a));
      steal = { shard: lease.shard, from: victim, token: lease.token };
    }
  }
  return { target, live: [...live].sort(), take, ...(steal ? { steal } : {}) };
}

/** A stable starting shard per controller (FNV-1a of its id). */
function rotation(holder: string, count: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < holder.length; i++) {
    h ^= holder.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return count === 0 ? 0 : h % count;
}
