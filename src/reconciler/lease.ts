import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import type { Logger } from "pino";
import { LeaseLostError, type Fence, type FenceTerm } from "../ports.js";
import { systemTimers, type Timers } from "./queue.js";

/** A lease as a store last saw it. Times are epoch milliseconds. */
export interface LeaseState {
  /** Undefined when nobody holds it (never taken, or released). */
  readonly holder: string | undefined;
  readonly expiresAt: number;
  /** The fencing token: incremented by every successful acquisition, never reused. */
  readonly token: number;
}

export interface AcquireResult extends LeaseState {
  /** True when `holder` is now the caller; otherwise the state is the current holder's, if known. */
  readonly acquired: boolean;
}

/**
 * Where the lease lives. Every method is a single atomic conditional write,
 * so two controllers racing cannot both win. A lost race is an answer
 * (false / acquired: false), not an error; errors mean "could not ask".
 */
export interface LeaseStore {
  /**
   * Takes the lease when it does not exist, has expired (expiresAt < now) or
   * is already the caller's; sets expiresAt = now + durationMs and increments
   * the token.
   */
  tryAcquire(name: string, holder: string, durationMs: number, now: number): Promise<AcquireResult>;
  /**
   * Extends the lease to now + durationMs when holder and token still match
   * (nobody acquired it since, even if it had expired). False otherwise.
   */
  renew(name: string, holder: string, token: number, durationMs: number, now: number): Promise<boolean>;
  /**
   * Gives the lease up at once (expires it, keeping the token so it stays
   * monotonic) when holder and token still match. False otherwise.
   */
  release(name: string, holder: string, token: number): Promise<boolean>;
}

/** A LeaseStore in process memory: for tests and for a single local controller. */
export class InMemoryLeaseStore implements LeaseStore {
  readonly #leases = new Map<string, LeaseState>();

  async tryAcquire(name: string, holder: string, durationMs: number, now: number): Promise<AcquireResult> {
    const cur = this.#leases.get(name);
    if (cur && cur.holder !== undefined && cur.holder !== holder && cur.expiresAt >= now) {
      return { acquired: false, ...cur };
    }
    const next: LeaseState = { holder, expiresAt: now + durationMs, token: (cur?.token ?? 0) + 1 };
    this.#leases.set(name, next);
    return { acquired: true, ...next };
  }

  /** Takes a lease its holder still holds, when holder and token still match: a new term (ShardStore.steal). */
  async steal(name: string, holder: string, from: string, token: number, durationMs: number, now: number): Promise<AcquireResult> {
    const cur = this.#leases.get(name);
    if (!cur || cur.holder !== from || cur.token !== token)
      return { acquired: false, ...(cur ?? { holder: undefined, expiresAt: 0, token: 0 }) };
    const next: LeaseState = { holder, expiresAt: now + durationMs, token: cur.token + 1 };
    this.#leases.set(name, next);
    return { acquired: true, ...next };
  }

  async renew(name: string, holder: string, token: number, durationMs: number, now: number): Promise<boolean> {
    const cur = this.#leases.get(name);
    if (!cur || cur.holder !== holder || cur.token !== token) return false;
    this.#leases.set(name, { ...cur, expiresAt: now + durationMs });
    return true;
  }

  async release(name: string, holder: string, token: number): Promise<boolean> {
    const cur = this.#leases.get(name);
    if (!cur || cur.holder !== holder || cur.token !== token) return false;
    this.#leases.set(name, { holder: undefined, expiresAt: 0, token: cur.token });
    return true;
  }

  /** What the store holds now, for tests and diagnostics. */
  peek(name: string): LeaseState | undefined {
    return this.#leases.get(name);
  }
}

export interface LeaderLeaseOptions {
  readonly store: LeaseStore;
  /** This controller's identity; see defaultHolderId(). */
  readonly holder: string;
  /** How long an acquisition or renewal lasts (config LEASE_SECONDS). */
  readonly durationMs: number;
  /** @default "controller" */
  readonly name?: string;
  /** Interval between renewals while leader. @default durationMs / 3 */
  readonly renewEveryMs?: number;
  /** Interval between acquisition attempts while standby. @default durationMs / 3 */
  readonly retryEveryMs?: number;
  /**
   * The lease counts as held only while more than this remains before
   * expiry, to cover clock skew between hosts and the time between the
   * fence check and the write it guards. @default durationMs / 10
   */
  readonly safetyMarginMs?: number;
  readonly timers?: Timers;
  readonly log?: Logger;
}

export interface StopLeaseOptions {
  /**
   * Release the lease so a standby takes over at once. false only stops
   * renewing (a crash, as tests simulate it). @default true
   */
  readonly release?: boolean;
}

/** hostname-pid-random: unique per process, readable in the lease item. */
export function defaultHolderId(): string {
  return `${hostname()}-${process.pid}-${randomBytes(3).toString("hex")}`;
}

/**
 * Leader election on a LeaseStore, after client-go's leaderelection: a
 * standby tries to acquire every retryEveryMs (and right after the current
 * holder's expiry when it knows it); the leader renews every renewEveryMs and
 * loses leadership when a renewal is refused or cannot complete before the
 * lease would expire.
 *
 * Expiry times come from the local clock of whoever writes them. That is
 * sound only while clock skew between hosts is far below the lease duration
 * and the safety margin (seconds versus NTP's milliseconds); see ADR 0004.
 */
export class LeaderLease implements Fence {
  readonly #store: LeaseStore;
  readonly #name: string;
  readonly #holder: string;
  readonly #durationMs: number;
  readonly #renewEveryMs: number;
  readonly #retryEveryMs: number;
  readonly #marginMs: number;
  readonly #timers: Timers;
  readonly #log: Logger | undefined;
  readonly #acquiredListeners = new Set<(token: number) => void>();
  readonly #lostListeners = new Set<(reason: string) => void>();

  #leader = false;
  #token: number | undefined;
  /** Local view of our lease's expiry: the send time of the last successful write plus the duration. */
  #expiresAt = 0;
  #timer: unknown;
  #step: Promise<void> | undefined;
  #started = false;
  #stopped = false;
  #stopping: Promise<void> | undefined;

  constructor(options: LeaderLeaseOptions) {
    const d = options.durationMs;
    this.#store = options.store;
    this.#name = options.name ?? "controller";
    this.#holder = options.holder;
    this.#durationMs = d;
    this.#renewEveryMs = options.renewEveryMs ?? Math.round(d / 3);
    this.#retryEveryMs = options.retryEveryMs ?? Math.round(d / 3);
    this.#marginMs = options.safetyMarginMs ?? Math.round(d / 10);
    this.#timers = options.timers ?? systemTimers;
    this.#log = options.log;
    // A renewal must have time to happen, and to be retried, before the margin.
    if (!(
      d > 0 &&
      this.#marginMs >= 0 &&
      this.#marginMs < d / 2 &&
      this.#renewEveryMs > 0 &&
      this.#renewEveryMs < d - this.#marginMs &&
      this.#retryEveryMs > 0
    )) {
      throw new RangeError(
        `invalid lease timing: duration ${d} ms, renew every ${this.#renewEveryMs} ms, retry every ${this.#retryEveryMs} ms, safety margin ${this.#marginMs} ms`,
      );
    }
  }

  /**
   * Leader with time left on the lease. The time check matters on a loaded
   * machine: a renewal stuck behind a busy event loop must not leave this
   * process believing it leads after a standby may have taken over.
   */
  get isLeader(): boolean {
    return this.#leader && this.#expiresAt - this.#timers.now() > this.#marginMs;
  }

  /** Leader as far as this process knows, even while a late renewal leaves less than the safety margin (isLeader says no). */
  get holdsTerm(): boolean {
    return this.#leader;
  }

  get holder(): string {
    return this.#holder;
  }

  /** The fencing token of the current (or last) acquisition; grows with each one. */
  get token(): number | undefined {
    return this.#token;
  }

  /** Registers a listener; returns a function that removes it. */
  onAcquired(listener: (token: number) => void): () => void {
    this.#acquiredListeners.add(listener);
    return () => this.#acquiredListeners.delete(listener);
  }

  /** Registers a listener; returns a function that removes it. */
  onLost(listener: (reason: string) => void): () => void {
    this.#lostListeners.add(listener);
    return () => this.#lostListeners.delete(listener);
  }

  /** Throws LeaseLostError unless this holder's lease is valid with the safety margin left. */
  assertHeld(): void {
    if (!this.#leader) throw new LeaseLostError(`lease "${this.#name}" is not held by ${this.#holder}`);
    const left = this.#expiresAt - this.#timers.now();
    if (left <= this.#marginMs) {
      throw new LeaseLostError(`lease "${this.#name}" expires in ${left} ms, within the ${this.#marginMs} ms safety margin`);
    }
  }

  /** The current term, while leader: status writes condition on it (src/providers/tenant-store.ts). */
  term(): FenceTerm | undefined {
    return this.#leader && this.#token !== undefined ? { lease: this.#name, holder: this.#holder, token: this.#token } : undefined;
  }

  /** Starts the loop; resolves after the first acquisition attempt, so isLeader is meaningful then. */
  async start(): Promise<void> {
    if (this.#started) throw new Error("lease already started");
    this.#started = true;
    this.#step = this.#run();
    await this.#step;
  }

  /** Stops the loop; by default releases the lease so a standby takes over at once. Idempotent. */
  stop(options: StopLeaseOptions = {}): Promise<void> {
    this.#stopping ??= this.#stop(options.release ?? true);
    return this.#stopping;
  }

  async #stop(release: boolean): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) this.#timers.clearTimeout(this.#timer);
    this.#timer = undefined;
    // An attempt in flight may yet make us leader; let it land (bounded by
    // the lease duration) so the release below sees it.
    if (this.#step)
      await this.#bounded(
        this.#step.then(() => true),
        this.#durationMs,
      );
    if (!this.#leader) return;
    if (release && this.#token !== undefined) {
      try {
        const released = await this.#bounded(this.#store.release(this.#name, this.#holder, this.#token), this.#durationMs);
        if (released !== true) this.#log?.warn({ lease: this.#name }, "lease was not ours to release any more");
      } catch (err) {
        // The lease then simply expires; a standby waits out the duration.
        this.#log?.warn({ lease: this.#name, err }, "could not release lease");
      }
    }
    this.#lose("stopped");
  }

  async #run(): Promise<void> {
    if (this.#stopped) return;
    let nextMs: number;
    try {
      nextMs = this.#leader ? await this.#renew() : await this.#acquire();
    } catch (err) {
      // Only a throwing listener gets here; keep the loop alive.
      this.#log?.error({ lease: this.#name, err }, "lease loop error");
      nextMs = this.#retryEveryMs;
    }
    if (this.#stopped) return;
    this.#timer = this.#timers.setTimeout(() => {
      this.#timer = undefined;
      this.#step = this.#run();
    }, nextMs);
  }

  /** One acquisition attempt; returns the delay before the next step. */
  async #acquire(): Promise<number> {
    const sent = this.#timers.now();
    let r: AcquireResult;
    try {
      r = await this.#store.tryAcquire(this.#name, this.#holder, this.#durationMs, sent);
    } catch (err) {
      this.#log?.warn({ lease: this.#name, err }, "could not try to acquire lease; retrying");
      return this.#retryEveryMs;
    }
    if (r.acquired) {
      this.#leader = true;
      this.#token = r.token;
      this.#expiresAt = sent + this.#durationMs;
      this.#log?.info({ lease: this.#name, holder: this.#holder, token: r.token }, "acquired leader lease");
      for (const l of this.#acquiredListeners) this.#call(() => l(r.token));
      return this.#renewEveryMs;
    }
    // Try again right after the holder's expiry if that comes before the
    // usual retry, so a crashed leader is replaced within one duration.
    const untilExpiry = r.expiresAt - this.#timers.now() + 1;
    return Math.max(10, Math.min(this.#retryEveryMs, untilExpiry));
  }

  /** One renewal attempt; returns the delay before the next step. */
  async #renew(): Promise<number> {
    const token = this.#token;
    const sent = this.#timers.now();
    // Past this point assertHeld() refuses anyway; a late renewal is no use.
    const deadline = this.#expiresAt - this.#marginMs;
    if (token === undefined || sent >= deadline) {
      this.#lose("lease expired before it could be renewed");
      return this.#retryEveryMs;
    }
    let outcome: boolean | "timeout" | "error";
    try {
      outcome = await this.#bounded(this.#store.renew(this.#name, this.#holder, token, this.#durationMs, sent), deadline - sent);
    } catch (err) {
      this.#log?.warn({ lease: this.#name, err }, "could not renew lease; retrying");
      outcome = "error";
    }
    if (outcome === true) {
      this.#expiresAt = sent + this.#durationMs;
      return this.#renewEveryMs;
    }
    if (outcome === false) {
      this.#lose("lease renewal refused: another holder took it");
      return this.#retryEveryMs;
    }
    const left = deadline - this.#timers.now();
    if (left <= 0) {
      this.#lose(outcome === "timeout" ? "lease renewal did not complete before expiry" : "lease renewal kept failing until expiry");
      return this.#retryEveryMs;
    }
    return Math.min(left, Math.max(10, Math.round(this.#renewEveryMs / 4)));
  }

  #lose(reason: string): void {
    if (!this.#leader) return;
    this.#leader = false;
    this.#log?.warn({ lease: this.#name, holder: this.#holder, token: this.#token, reason }, "lost leader lease");
    for (const l of this.#lostListeners) this.#call(() => l(reason));
  }

  #call(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.#log?.error({ lease: this.#name, err }, "lease listener threw");
    }
  }

  /** p's value, or "timeout" if it takes longer than ms. */
  async #bounded<T>(p: Promise<T>, ms: number): Promise<T | "timeout"> {
    let handle: unknown;
    const timeout = new Promise<"timeout">((resolve) => {
      handle = this.#timers.setTimeout(() => resolve("timeout"), Math.max(0, ms));
    });
    try {
      return await Promise.race([p, timeout]);
    } finally {
      this.#timers.clearTimeout(handle);
    }
  }
}
