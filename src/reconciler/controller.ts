import { setMaxListeners } from "node:events";
import type { Logger } from "pino";
import type { Priority, WorkQueue } from "./queue.js";
import { failed, type ReconcileContext, type ReconcileResult, type Reconciler } from "./result.js";

export interface ControllerOptions<K extends string> {
  /** The controller owns it from start(): stop() shuts it down. */
  readonly queue: WorkQueue<K>;
  readonly reconciler: Reconciler<K>;
  /** Workers, i.e. reconciles in flight at most (config CONCURRENCY). */
  readonly concurrency: number;
  readonly log?: Logger;
  /** Called after each reconcile, for metrics; a throw here is logged, not fatal. */
  readonly onResult?: (key: K, result: ReconcileResult, durationMs: number) => void;
  /**
   * After stop()'s bound passes and in-flight signals are aborted, how long to
   * wait for those reconciles to notice before resolving anyway. @default 1000
   */
  readonly abortGraceMs?: number;
  /** @default Date.now */
  readonly now?: () => number;
}

export interface StopOptions {
  /** How long in-flight reconciles may run on before their signals abort. */
  readonly timeoutMs: number;
}

/**
 * N workers pulling keys from a WorkQueue and calling the reconciler, the
 * way controller-runtime's controller does. The queue guarantees one worker
 * per key; the controller turns each ReconcileResult into a queue action
 * (see result.ts).
 */
export class Controller<K extends string = string> {
  readonly #o: ControllerOptions<K>;
  readonly #now: () => number;
  /** Every idle worker waits on this one signal, so it may carry one listener per worker (Node warns past 10). */
  readonly #stopWaiting = new AbortController();
  readonly #inFlight = new Map<K, AbortController>();
  #workers: Promise<void>[] = [];
  #started = false;
  #stopping: Promise<void> | undefined;

  constructor(options: ControllerOptions<K>) {
    if (!Number.isInteger(options.concurrency) || options.concurrency < 1) {
      throw new RangeError(`controller concurrency must be a whole number of at least 1, got ${options.concurrency}`);
    }
    this.#o = options;
    this.#now = options.now ?? Date.now;
    setMaxListeners(options.concurrency + 1, this.#stopWaiting.signal);
  }

  /** Reconciles running now. */
  get inFlight(): number {
    return this.#inFlight.size;
  }

  /** Starts the workers; returns at once. */
  start(): void {
    if (this.#started) throw new Error("controller already started");
    this.#started = true;
    for (let i = 0; i < this.#o.concurrency; i++) this.#workers.push(this.#work());
  }

  enqueue(keys: Iterable<K>, priority: Priority = "fresh"): void {
    for (const key of keys) this.#o.queue.add(key, priority);
  }

  /**
   * Stops taking keys (the queue shuts down, dropping what waits: the next
   * leader's resync finds it), waits up to timeoutMs for in-flight reconciles,
   * then aborts their signals and gives them abortGraceMs to return.
   * Resolves in any case; calling it again returns the same promise.
   */
  stop(options: StopOptions): Promise<void> {
    this.#stopping ??= this.#stop(options.timeoutMs);
    return this.#stopping;
  }

  async #stop(timeoutMs: number): Promise<void> {
    this.#stopWaiting.abort();
    this.#o.queue.shutDown();
    const all = Promise.all(this.#workers).then(() => true);
    if (await within(all, timeoutMs)) return;
    const keys = [...this.#inFlight.keys()];
    this.#o.log?.warn({ keys, timeoutMs }, "reconciles still running at stop; aborting them");
    for (const ac of this.#inFlight.values()) ac.abort(new Error("controller stopping"));
    if (!(await within(all, this.#o.abortGraceMs ?? 1000))) {
      this.#o.log?.error({ keys: [...this.#inFlight.keys()] }, "reconciles ignored their abort signal; leaving them behind");
    }
  }

  async #work(): Promise<void> {
    for (;;) {
      const key = await this.#o.queue.get(this.#stopWaiting.signal);
      if (key === undefined) return;
      try {
        await this.#reconcileOne(key);
      } catch (err) {
        // Only a throwing logger gets here; a worker must outlive it.
        this.#o.log?.error({ key, err }, "worker error");
      } finally {
        this.#o.queue.done(key);
      }
    }
  }

  async #reconcileOne(key: K): Promise<void> {
    const ac = new AbortController();
    this.#inFlight.set(key, ac);
    const started = this.#now();
    const queue = this.#o.queue;
    const context: ReconcileContext = { failures: queue.numRequeues(key), retryDelayMs: () => queue.nextRetryDelay(key) };
    let result: ReconcileResult;
    try {
      result = await this.#o.reconciler(key, ac.signal, context);
    } catch (err) {
      // A reconciler should return failed(); a throw is unexpected, so it
      // is logged loudly, but it is still only worth a retry with backoff.
      this.#o.log?.warn({ key, err }, "reconciler threw; retrying with backoff");
      result = failed(err instanceof Error ? err : new Error(String(err)), false);
    } finally {
      this.#inFlight.delete(key);
    }
    const durationMs = this.#now() - started;
    this.#apply(key, result);
    this.#o.log?.debug({ key, result: result.kind, durationMs }, "reconciled");
    try {
      this.#o.onResult?.(key, result, durationMs);
    } catch (err) {
      this.#o.log?.warn({ key, err }, "onResult hook threw");
    }
  }

  #apply(key: K, result: ReconcileResult): void {
    const queue = this.#o.queue;
    switch (result.kind) {
      case "done":
        queue.forget(key);
        return;
      case "requeueAfter":
        // Waiting on AWS is progress, not failure: no backoff growth.
        queue.forget(key);
        // Work under way (a rollout, a stack) is finished before new work is started.
        queue.addAfter(key, Math.max(0, result.ms), "followUp");
        return;
      case "failed":
        if (result.terminal) {
          // Backoff cannot help; the key's next change or resync brings it
          // back, or a slow look again when the reconciler asks for one.
          queue.forget(key);
          if (result.retryAfterMs !== undefined) queue.addAfter(key, Math.max(0, result.retryAfterMs), "fresh");
        } else {
          queue.addRateLimited(key);
        }
        return;
    }
  }
}

/** True if p settles within ms. */
async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([p.then(() => true as const), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
