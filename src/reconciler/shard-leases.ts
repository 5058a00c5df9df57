import type { Logger } from "pino";
import { LeaseLostError, type Fence, type FenceTerm } from "../ports.js";
import { InMemoryLeaseStore, type AcquireResult, type LeaseState, type LeaseStore } from "./lease.js";
import { systemTimers, type Timers } from "./queue.js";
import { decideBalance, isHeld, type BalanceDecision, type ShardLeaseView } from "./shard-balance.js";
import { allShards, shardLeaseName } from "./shards.js";

/** What the operator table says about every shard lease and every live controller. */
export interface ShardSnapshot {
  /** Index = shard; a missing item is a free lease with token 0. */
  readonly leases: readonly LeaseState[];
  /** Controllers' heartbeats: holder -> expiry (epoch ms). */
  readonly workers: ReadonlyMap<string, number>;
}

/** Where shard leases and controllers' heartbeats live: the operator table (src/providers/dynamodb-shard-store.ts). */
export interface ShardStore extends LeaseStore {
  /** Records the fleet's shard count once; returns the count recorded (the caller's if it was first). */
  ensureShardCount(count: number): Promise<number>;
  /**
   * The controller is alive until expiresAt; forgets the heartbeats of
   * `dead` controllers. False when the recorded shard count is not `count`.
   */
  heartbeat(holder: string, expiresAt: number, count: number, dead: readonly string[]): Promise<boolean>;
  /** The controller is gone (graceful stop). */
  leave(holder: string): Promise<void>;
  snapshot(count: number): Promise<ShardSnapshot>;
  /** Takes a lease its holder still holds, when holder and token still match; a new term (token + 1). */
  steal(name: string, holder: string, from: string, token: number, durationMs: number, now: number): Promise<AcquireResult>;
}

/** Controllers disagree on SHARD_COUNT: two of them would each own the same tenants. */
export class ShardCountMismatchError extends Error {
  constructor(
    readonly configured: number,
    readonly recorded: number,
  ) {
    super(
      `SHARD_COUNT is ${configured}, but the fleet's operator table records ${recorded} shards (item shards#config): ` +
        `every controller must use the same count, or two would own the same tenants. Set SHARD_COUNT=${recorded}; ` +
        `to change the count, stop every controller, delete the shards#config item, and start them with the new count.`,
    );
    this.name = "ShardCountMismatchError";
  }
}

export interface ShardLeasesOptions {
  readonly store: ShardStore;
  readonly holder: string;
  readonly count: number;
  /** Lease duration (LEASE_SECONDS). */
  readonly durationMs: number;
  /** Renewal and balancing round. @default durationMs / 3 */
  readonly roundMs?: number;
  /** A shard's fence refuses once no more than this is left of its lease. @default durationMs / 10 */
  readonly safetyMarginMs?: number;
  readonly timers?: Timers;
  readonly log?: Logger;
}

interface Held {
  readonly token: number;
  /** Local view: send time of the last successful acquisition or renewal plus the duration. */
  expiresAt: number;
  /**
   * No write before this (epoch ms): a stolen shard's previous holder may
   * believe it holds until its own last renewal plus the duration.
   */
  readonly activeFrom: number;
  announced: boolean;
}

/**
 * This controller's set of shard leases (ADR 0016). Every round (a third of
 * the lease) it renews what it holds, heartbeats, reads every lease and
 * heartbeat in one batch, and takes or steals as decideBalance says.
 * onAcquired fires once a shard may be written (after a stolen shard's wait);
 * onLost when a renewal is refused or cannot land before the lease's margin.
 */
export class ShardLeases {
  readonly #o: ShardLeasesOptions;
  readonly #timers: Timers;
  readonly #roundMs: number;
  readonly #marginMs: number;
  readonly #held = new Map<number, Held>();
  /** Free shards and when this process first saw them free. */
  readonly #freeSince = new Map<number, number>();
  readonly #acquired = new Set<(shard: number) => void>();
  readonly #lost = new Set<(shard: number, reason: string) => void>();
  #timer: unknown;
  #round: Promise<void> = Promise.resolve();
  #stopped = false;
  #started = false;
  #lastDecision: BalanceDecision | undefined;
  #alive = false;

  constructor(options: ShardLeasesOptions) {
    this.#o = options;
    this.#timers = options.timers ?? systemTimers;
    this.#roundMs = options.roundMs ?? Math.round(options.durationMs / 3);
    this.#marginMs = options.safetyMarginMs ?? Math.round(options.durationMs / 10);
    if (!(this.#roundMs > 0 && this.#roundMs < options.durationMs - this.#marginMs && this.#marginMs >= 0))
      throw new RangeError(
        `invalid shard lease timing: duration ${options.durationMs} ms, round ${this.#roundMs} ms, margin ${this.#marginMs} ms`,
      );
  }

  get holder(): string {
    return this.#o.holder;
  }

  get count(): number {
    return this.#o.count;
  }

  /** True once this controller's heartbeat was written: it counts among the live controllers. */
  get alive(): boolean {
    return this.#alive;
  }

  /** What the last round decided (target, live controllers), for diagnostics. */
  get lastDecision(): BalanceDecision | undefined {
    return this.#lastDecision;
  }

  onAcquired(listener: (shard: number) => void): () => void {
    this.#acquired.add(listener);
    return () => this.#acquired.delete(listener);
  }

  onLost(listener: (shard: number, reason: string) => void): () => void {
    this.#lost.add(listener);
    return () => this.#lost.delete(listener);
  }

  /** The shard may be written now: held, past a steal's wait, with more than the margin left. */
  owns(shard: number): boolean {
    const h = this.#held.get(shard);
    const now = this.#timers.now();
    return h !== undefined && now >= h.activeFrom && h.expiresAt - now > this.#marginMs;
  }

  /**
   * The shard's lease is this controller's as far as it knows (not lost),
   * even while owns() says no: a renewal running late may yet extend it, and
   * then no acquisition is announced to queue its keys again.
   */
  holds(shard: number): boolean {
    return this.#held.has(shard);
  }

  /** Shards announced as acquired and not lost, ascending. */
  ownedShards(): number[] {
    return [...this.#held.entries()]
      .filter(([, h]) => h.announced)
      .map(([s]) => s)
      .sort((a, b) => a - b);
  }

  /**
   * A fence for one reconcile of a key of `shard`: bound to the term held
   * now, it refuses once that term ends, even if the shard comes back in a
   * later term (the reconcile read the world under the old one).
   */
  fenceFor(shard: number): Fence {
    const token = this.#held.get(shard)?.token;
    const name = shardLeaseName(shard);
    const holder = this.#o.holder;
    return {
      assertHeld: () => {
        const h = this.#held.get(shard);
        if (token === undefined || h === undefined || h.token !== token)
          throw new LeaseLostError(`lease "${name}" is not held by ${holder}${token !== undefined ? ` in term ${token}` : ""}`);
        const now = this.#timers.now();
        if (now < h.activeFrom) throw new LeaseLostError(`lease "${name}" was taken over; writes start in ${h.activeFrom - now} ms`);
        const left = h.expiresAt - now;
        if (left <= this.#marginMs)
          throw new LeaseLostError(`lease "${name}" expires in ${left} ms, within the ${this.#marginMs} ms safety margin`);
      },
      term: (): FenceTerm | undefined => (token === undefined ? undefined : { lease: name, holder, token }),
    };
  }

  /**
   * Checks the fleet's shard count (throws ShardCountMismatchError), then
   * runs the first round, so owns() is meaningful when it resolves.
   */
  async start(): Promise<void> {
    if (this.#started) throw new Error("shard leases already started");
    this.#started = true;
    const recorded = await this.#o.store.ensureShardCount(this.#o.count);
    if (recorded !== this.#o.count) throw new ShardCountMismatchError(this.#o.count, recorded);
    this.#round = this.#step();
    await this.#round;
  }

  /** Stops the rounds and, unless `release: false` (a crash, as tests simulate it), releases every shard and the heartbeat. */
  async stop(options: { release?: boolean } = {}): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#timer !== undefined) this.#timers.clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#round;
    const held = [...this.#held.entries()];
    if (options.release ?? true) {
      await Promise.all(
        held.map(async ([shard, h]) => {
          try {
            await this.#o.store.release(shardLeaseName(shard), this.#o.holder, h.token);
          } catch (err) {
            this.#o.log?.warn({ shard, err: describe(err) }, "could not release shard lease; it expires instead");
          }
        }),
      );
      try {
        await this.#o.store.leave(this.#o.holder);
      } catch (err) {
        this.#o.log?.warn({ err: describe(err) }, "could not remove this controller's heartbeat; it expires instead");
      }
    }
    for (const [shard] of held) this.#lose(shard, "stopped");
  }

  async #step(): Promise<void> {
    if (this.#stopped) return;
    // Rounds keep their cadence from their starts: a slow round (a busy
    // table) must not push the next renewal towards the lease's margin.
    const started = this.#timers.now();
    try {
      await this.#renewAll();
      await this.#balance();
    } catch (err) {
      this.#o.log?.warn({ err: describe(err) }, "shard lease round failed; trying again next round");
    }
    this.#announce();
    if (this.#stopped) return;
    const delay = Math.max(10, started + this.#roundMs - this.#timers.now());
    this.#timer = this.#timers.setTimeout(() => {
      this.#timer = undefined;
      this.#round = this.#step();
    }, delay);
  }

  async #renewAll(): Promise<void> {
    await Promise.all(
      [...this.#held.entries()].map(async ([shard, h]) => {
        const sent = this.#timers.now();
        if (sent >= h.expiresAt - this.#marginMs) return this.#lose(shard, "lease expired before it could be renewed");
        let ok: boolean;
        try {
          ok = await this.#o.store.renew(shardLeaseName(shard), this.#o.holder, h.token, this.#o.durationMs, sent);
        } catch (err) {
          // Kept until its margin: the next round tries again.
          this.#o.log?.warn({ shard, err: describe(err) }, "could not renew shard lease; retrying next round");
          if (this.#timers.now() + this.#roundMs >= h.expiresAt - this.#marginMs)
            this.#lose(shard, "lease renewal kept failing until expiry");
          return;
        }
        if (!ok) return this.#lose(shard, "lease renewal refused: another controller took it");
        if (this.#held.get(shard) === h) h.expiresAt = sent + this.#o.durationMs;
      }),
    );
  }

  async #balance(): Promise<void> {
    const { store, holder, count, durationMs } = this.#o;
    const now = this.#timers.now();
    const snap = await store.snapshot(count);
    // Heartbeats expired for a whole lease are forgotten, so the item does not grow with every restart.
    const dead = [...snap.workers].filter(([h, exp]) => h !== holder && exp < now - durationMs).map(([h]) => h);
    if (!(await store.heartbeat(holder, now + durationMs, count, dead))) {
      const recorded = await store.ensureShardCount(count);
      throw new ShardCountMismatchError(count, recorded);
    }
    this.#alive = true;
    const workers = new Map(snap.workers);
    workers.set(holder, now + durationMs);
    const views: ShardLeaseView[] = allShards(count).map((shard) => {
      const l = snap.leases[shard];
      return { shard, holder: l?.holder, expiresAt: l?.expiresAt ?? 0, token: l?.token ?? 0 };
    });
    const longFree = new Set<number>();
    for (const v of views) {
      if (isHeld(v, now) || this.#held.has(v.shard)) this.#freeSince.delete(v.shard);
      else {
        const since = this.#freeSince.get(v.shard) ?? now;
        this.#freeSince.set(v.shard, since);
        if (now - since > this.#roundMs * 1.5) longFree.add(v.shard);
      }
    }
    const decision = decideBalance({ me: holder, now, leases: views, workers, owned: new Set(this.#held.keys()), longFree });
    this.#lastDecision = decision;
    await Promise.all(
      decision.take.map(async (shard) => {
        const sent = this.#timers.now();
        const r = await store.tryAcquire(shardLeaseName(shard), holder, durationMs, sent);
        if (r.acquired) this.#gain(shard, r.token, sent, sent);
      }),
    );
    if (decision.steal !== undefined && !this.#stopped) {
      const { shard, from, token } = decision.steal;
      const sent = this.#timers.now();
      const r = await store.steal(shardLeaseName(shard), holder, from, token, durationMs, sent);
      if (r.acquired) {
        this.#o.log?.info({ shard, from, target: decision.target }, "took a shard from an overloaded controller");
        // The previous holder learns at its next renewal and stops writing
        // by its own expiry at the latest: no write here before that.
        this.#gain(shard, r.token, sent, sent + durationMs);
      }
    }
  }

  #gain(shard: number, token: number, sent: number, activeFrom: number): void {
    if (this.#stopped) return;
    this.#held.set(shard, { token, expiresAt: sent + this.#o.durationMs, activeFrom, announced: false });
    this.#freeSince.delete(shard);
  }

  /** Shards that became writable since the last round are announced. */
  #announce(): void {
    for (const [shard, h] of this.#held) {
      if (h.announced || !this.owns(shard)) continue;
      h.announced = true;
      this.#o.log?.info({ shard, token: h.token }, "acquired shard lease");
      for (const l of this.#acquired) call(() => l(shard), this.#o.log);
    }
  }

  #lose(shard: number, reason: string): void {
    const h = this.#held.get(shard);
    if (h === undefined) return;
    this.#held.delete(shard);
    if (reason !== "stopped") this.#o.log?.warn({ shard, token: h.token, reason }, "lost shard lease");
    if (!h.announced) return;
    for (const l of this.#lost) call(() => l(shard, reason), this.#o.log);
  }
}

function call(fn: () => void, log: Logger | undefined): void {
  try {
    fn();
  } catch (err) {
    log?.error({ err: describe(err) }, "shard lease listener threw");
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A ShardStore in process memory: the lease items of InMemoryLeaseStore plus the fleet's count and heartbeats. */
export class InMemoryShardStore extends InMemoryLeaseStore implements ShardStore {
  readonly #workers = new Map<string, number>();
  #count: number | undefined;

  async ensureShardCount(count: number): Promise<number> {
    this.#count ??= count;
    return this.#count;
  }

  async heartbeat(holder: string, expiresAt: number, count: number, dead: readonly string[]): Promise<boolean> {
    if (this.#count !== count) return false;
    for (const d of dead) this.#workers.delete(d);
    this.#workers.set(holder, expiresAt);
    return true;
  }

  async leave(holder: string): Promise<void> {
    this.#workers.delete(holder);
  }

  async snapshot(count: number): Promise<ShardSnapshot> {
    return {
      leases: allShards(count).map((s) => this.peek(shardLeaseName(s)) ?? { holder: undefined, expiresAt: 0, token: 0 }),
      workers: new Map(this.#workers),
    };
  }
}
