/**
 * Time spent inside the fakes' own (synchronous) bodies, so a benchmark can
 * tell the controller's CPU from the cost of the in-memory cloud it runs on.
 * Wall time of synchronous code on one thread is CPU time, give or take
 * preemption by the other processes on the machine.
 */
export class Busy {
  #ms = 0;
  #calls = 0;
  #recording: (() => unknown)[] | undefined;

  /** Runs fn, counting its duration as the fakes' time (and keeping it, while recording). */
  time<T>(fn: () => T): T {
    this.#recording?.push(fn);
    const started = performance.now();
    try {
      return fn();
    } finally {
      this.#ms += performance.now() - started;
      this.#calls += 1;
    }
  }

  get ms(): number {
    return this.#ms;
  }

  get calls(): number {
    return this.#calls;
  }

  /** Keeps every body run from now on, for replay(). Only for a stretch of reads: a replayed write would write again. */
  record(): void {
    this.#recording = [];
  }

  /**
   * Runs again, back to back, every body kept since record(), and returns
   * the CPU they took (process.cpuUsage, ms): the fakes' share of a pass
   * measured in CPU, which the timing above is not on a loaded machine.
   */
  replay(): { readonly calls: number; readonly cpuMs: number } {
    const bodies = this.#recording ?? [];
    this.#recording = undefined;
    const before = process.cpuUsage();
    for (const body of bodies) body();
    const used = process.cpuUsage(before);
    return { calls: bodies.length, cpuMs: (used.user + used.system) / 1000 };
  }
}

/**
 * Where a fake answers: in a later turn of the event loop, as a network
 * response would. Answering within the same microtask chain would let a
 * queue of ready keys run the workers back to back without ever reaching
 * the timers phase, which starves the lease renewal: an artefact no real
 * AWS call can produce.
 */
export function answerLater(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
