/**
 * A work queue of keys with controller-runtime's (client-go's) guarantees:
 * - a key waits at most once: repeated adds collapse;
 * - a key is handed to one worker at a time: adding a key that is being
 *   processed marks it dirty, and `done` puts it back once;
 * - four priorities, served in order: follow-ups of work already started
 *   (a requeue while ECS converges), then fresh keys (a stream change, a user
 *   edit), then hints (an ECS event: something may have drifted), then bulk
 *   resync keys; a waiting key added again at a higher
 *   priority is promoted. Follow-ups first means a wave of onboardings
 *   finishes tenants one by one instead of all of them near the end;
 *   follow-ups are delayed adds, so they cannot starve the others;
 * - delayed adds and per-key exponential backoff with jitter.
 * Keys are opaque; the queue knows nothing of tenants or AWS.
 */

import type { InProgress, QueueMetrics, QueueMetricsProvider } from "./queue-metrics.js";

/** In the order they are served. */
const PRIORITIES = ["followUp", "fresh", "hint", "resync"] as const;
export type Priority = (typeof PRIORITIES)[number];
const rank = (p: Priority): number => PRIORITIES.indexOf(p);

/** Time and timers, injectable so tests control them. */
export interface Timers {
  now(): number;
  /** Schedules fn; the returned handle goes to clearTimeout. Must not keep the process alive. */
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/**
 * The real clock. Global timers are looked up at call time so that test fake
 * timers installed after import still apply. Timers are unref'd: a pending
 * retry is no reason for the process to stay up.
 */
export const systemTimers: Timers = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return t;
  },
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export interface BackoffOptions {
  /** First delay before jitter. @default 1000 */
  readonly baseMs?: number;
  /** Growth per consecutive failure. @default 2 */
  readonly factor?: number;
  /** Largest delay before jitter. @default 300000 (5 minutes) */
  readonly capMs?: number;
  /** Uniform in [0, 1). @default Math.random */
  readonly random?: () => number;
}

/**
 * Per-key exponential backoff with "equal jitter": the n-th retry waits
 * d/2 + random * d/2 where d = min(cap, base * factor^n). Half the delay is
 * fixed so a key failing in a tight loop still spaces its attempts out (full
 * jitter could draw ~0 repeatedly); the other half spreads a burst of keys
 * that failed together (a throttle) so they do not come back in lockstep.
 */
export class ExponentialBackoff<K extends string = string> {
  readonly #baseMs: number;
  readonly #factor: number;
  readonly #capMs: number;
  readonly #random: () => number;
  readonly #failures = new Map<K, number>();
  /** Delays drawn by peek() and not used yet: next() returns exactly what peek() promised. */
  readonly #drawn = new Map<K, number>();

  constructor(options: BackoffOptions = {}) {
    this.#baseMs = options.baseMs ?? 1000;
    this.#factor = options.factor ?? 2;
    this.#capMs = options.capMs ?? 300_000;
    this.#random = options.random ?? Math.random;
    if (!(this.#baseMs > 0 && this.#factor >= 1 && this.#capMs >= this.#baseMs)) {
      throw new RangeError(`invalid backoff: base ${this.#baseMs} ms, factor ${this.#factor}, cap ${this.#capMs} ms`);
    }
  }

  /** The delay before the key's next retry; counts one more failure. */
  next(key: K): number {
    const delay = this.peek(key);
    this.#drawn.delete(key);
    this.#failures.set(key, this.failures(key) + 1);
    return delay;
  }

  /**
   * The delay next(key) will return, without counting a failure: drawn once
   * and kept, so what a reconcile reports as its next attempt is the wait
   * the queue then applies, jitter included.
   */
  peek(key: K): number {
    const drawn = this.#drawn.get(key);
    if (drawn !== undefined) return drawn;
    // Math.pow overflows to Infinity long after the cap; min() handles that.
    const ceiling = Math.min(this.#capMs, this.#baseMs * Math.pow(this.#factor, this.failures(key)));
    const half = ceiling / 2;
    const delay = Math.round(half + this.#random() * half);
    this.#drawn.set(key, delay);
    return delay;
  }

  forget(key: K): void {
    this.#failures.delete(key);
    this.#drawn.delete(key);
  }

  failures(key: K): number {
    return this.#failures.get(key) ?? 0;
  }
}

export interface WorkQueueOptions {
  readonly timers?: Timers;
  readonly backoff?: BackoffOptions;
  /** The queue's name in its metrics (label `name`), e.g. the controller's: "tenant". @default "default" */
  readonly name?: string;
  /** Where the queue reports adds, depth, waits, work and retries. @default none */
  readonly metrics?: QueueMetricsProvider;
}

const NO_METRICS: QueueMetrics = { added() {}, depth() {}, waited() {}, worked() {}, retried() {} };

interface Delayed {
  readonly at: number;
  readonly handle: unknown;
}

interface Waiter<K> {
  readonly resolve: (key: K | undefined) => void;
  readonly detach: () => void;
}

export class WorkQueue<K extends string = string> {
  readonly #timers: Timers;
  readonly #backoff: ExponentialBackoff<K>;
  // Waiting keys by priority. Sets keep insertion order (FIFO) and allow
  // O(1) removal, which promotion needs.
  readonly #waiting: Readonly<Record<Priority, Set<K>>> = {
    followUp: new Set<K>(),
    fresh: new Set<K>(),
    hint: new Set<K>(),
    resync: new Set<K>(),
  };
  /** Keys that need processing (waiting, or re-added while processing), with their priority. */
  readonly #dirty = new Map<K, Priority>();
  readonly #processing = new Set<K>();
  readonly #delayed = new Map<K, Delayed>();
  readonly #waiters: Waiter<K>[] = [];
  #shuttingDown = false;
  #draining = false;
  readonly #drained: (() => void)[] = [];
  readonly #metrics: QueueMetrics;
  /** When each dirty key was added, for its wait; kept from the first add until it is handed out. */
  readonly #addedAt = new Map<K, number>();
  /** When each key being processed was handed out, for its work time and the work in progress. */
  readonly #startedAt = new Map<K, number>();

  constructor(options: WorkQueueOptions = {}) {
    this.#timers = options.timers ?? systemTimers;
    this.#backoff = new ExponentialBackoff<K>(options.backoff);
    this.#metrics = options.metrics?.forQueue(options.name ?? "default", () => this.inProgress()) ?? NO_METRICS;
  }

  /** Marks the key as needing work. @param priority @default "fresh" */
  add(key: K, priority: Priority = "fresh"): void {
    if (this.#shuttingDown) return;
    const queued = this.#dirty.get(key);
    if (queued !== undefined) {
      if (rank(priority) < rank(queued)) {
        this.#dirty.set(key, priority);
        // A processing key is in no set; done() will use the new priority.
        if (this.#waiting[queued].delete(key)) this.#waiting[priority].add(key);
      }
      return;
    }
    this.#dirty.set(key, priority);
    this.#addedAt.set(key, this.#timers.now());
    this.#metrics.added();
    this.#metrics.depth(this.#dirty.size);
    // Never hand a key to a second worker: it goes back in on done().
    if (this.#processing.has(key)) return;
    this.#enqueue(key, priority);
  }

  /** Adds the key after `ms`. When the key already has a pending delayed add, the earlier one wins. */
  addAfter(key: K, ms: number, priority: Priority = "fresh"): void {
    if (this.#shuttingDown) return;
    if (!(ms > 0)) {
      this.add(key, priority);
      return;
    }
    this.#metrics.retried();
    const at = this.#timers.now() + ms;
    const pending = this.#delayed.get(key);
    if (pending !== undefined) {
      if (pending.at <= at) return;
      this.#timers.clearTimeout(pending.handle);
    }
    const handle = this.#timers.setTimeout(() => {
      this.#delayed.delete(key);
      this.add(key, priority);
    }, ms);
    this.#delayed.set(key, { at, handle });
  }

  /** Adds the key after its backoff delay, which grows with each call until forget(key). */
  addRateLimited(key: K): void {
    if (this.#shuttingDown) return;
    this.addAfter(key, this.#backoff.next(key));
  }

  /** Resets the key's backoff (it succeeded, or failed for a reason retries cannot fix). */
  forget(key: K): void {
    this.#backoff.forget(key);
  }

  /** How many times addRateLimited was called since the last forget. */
  numRequeues(key: K): number {
    return this.#backoff.failures(key);
  }

  /** The delay the key's next addRateLimited will apply (the same one: it is drawn once). */
  nextRetryDelay(key: K): number {
    return this.#backoff.peek(key);
  }

  /** Work handed out and not done yet, as of now. */
  inProgress(): InProgress {
    const now = this.#timers.now();
    let unfinished = 0;
    let longest = 0;
    for (const started of this.#startedAt.values()) {
      const s = Math.max(0, now - started) / 1000;
      unfinished += s;
      longest = Math.max(longest, s);
    }
    return { unfinishedSeconds: unfinished, longestSeconds: longest };
  }

  /**
   * The next key to process, waiting for one if none is ready. Resolves
   * undefined once the queue shuts down (or drains) or the signal aborts.
   * The caller must call done(key) when finished with it.
   */
  get(signal?: AbortSignal): Promise<K | undefined> {
    const key = this.#take();
    if (key !== undefined) return Promise.resolve(key);
    if (this.#shuttingDown || signal?.aborted) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const onAbort = (): void => {
        const i = this.#waiters.indexOf(waiter);
        if (i >= 0) this.#waiters.splice(i, 1);
        resolve(undefined);
      };
      const waiter: Waiter<K> = {
        resolve,
        detach: () => signal?.removeEventListener("abort", onAbort),
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#waiters.push(waiter);
    });
  }

  /** Ends processing of the key; if it was added meanwhile, it waits again (once). */
  done(key: K): void {
    if (!this.#processing.delete(key)) return;
    const started = this.#startedAt.get(key);
    this.#startedAt.delete(key);
    if (started !== undefined) this.#metrics.worked(Math.max(0, this.#timers.now() - started) / 1000);
    const priority = this.#dirty.get(key);
    if (priority !== undefined) this.#enqueue(key, priority);
    this.#checkDrained();
  }

  /** Keys waiting to be handed out (not those being processed or delayed). */
  len(): number {
    return PRIORITIES.reduce((n, p) => n + this.#waiting[p].size, 0);
  }

  /** Keys handed out and not yet done. */
  processing(): number {
    return this.#processing.size;
  }

  get shuttingDown(): boolean {
    return this.#shuttingDown;
  }

  /**
   * Stops the queue at once: adds are ignored, waiting and delayed keys are
   * dropped (level-triggered: the next resync finds them again), pending
   * timers are cleared, and every get() resolves undefined.
   */
  shutDown(): void {
    this.#shuttingDown = true;
    this.#clearDelayed();
    for (const p of PRIORITIES) this.#waiting[p].clear();
    this.#dirty.clear();
    this.#addedAt.clear();
    this.#metrics.depth(0);
    for (const w of this.#waiters.splice(0)) {
      w.detach();
      w.resolve(undefined);
    }
    this.#checkDrained();
  }

  /**
   * Stops accepting adds (delayed ones are dropped) but keeps handing out
   * the keys already waiting; resolves when none waits and none is processing.
   */
  shutDownWithDrain(): Promise<void> {
    this.#shuttingDown = true;
    this.#draining = true;
    this.#clearDelayed();
    // Re-adds of keys in flight are not kept: nothing would process them.
    for (const key of this.#processing) {
      this.#dirty.delete(key);
      this.#addedAt.delete(key);
    }
    this.#metrics.depth(this.#dirty.size);
    const drained = new Promise<void>((resolve) => this.#drained.push(resolve));
    if (this.len() === 0) {
      for (const w of this.#waiters.splice(0)) {
        w.detach();
        w.resolve(undefined);
      }
    }
    this.#checkDrained();
    return drained;
  }

  #enqueue(key: K, priority: Priority): void {
    this.#waiting[priority].add(key);
    const waiter = this.#waiters.shift();
    if (waiter === undefined) return;
    const next = this.#take();
    waiter.detach();
    waiter.resolve(next);
  }

  #take(): K | undefined {
    const set = PRIORITIES.map((p) => this.#waiting[p]).find((w) => w.size > 0);
    if (set === undefined) return undefined;
    const first = set.values().next();
    if (first.done === true) return undefined;
    const key = first.value;
    set.delete(key);
    this.#dirty.delete(key);
    this.#processing.add(key);
    const now = this.#timers.now();
    const added = this.#addedAt.get(key);
    this.#addedAt.delete(key);
    if (added !== undefined) this.#metrics.waited(Math.max(0, now - added) / 1000);
    this.#startedAt.set(key, now);
    this.#metrics.depth(this.#dirty.size);
    return key;
  }

  #clearDelayed(): void {
    for (const d of this.#delayed.values()) this.#timers.clearTimeout(d.handle);
    this.#delayed.clear();
  }

  #checkDrained(): void {
    if (!this.#draining) return;
    if (this.len() === 0) {
      for (const w of this.#waiters.splice(0)) {
        w.detach();
        w.resolve(undefined);
      }
    }
    if (this.len() === 0 && this.#processing.size === 0) {
      for (const resolve of this.#drained.splice(0)) resolve();
    }
  }
}
