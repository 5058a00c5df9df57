/**
 * Time spent inside the fakes' own (synchronous) bodies, so a benchmark can
 * tell the controller's CPU from the cost of the in-memory cloud it runs on.
 * Wall time of synchronous code on one thread is CPU time, give or take
 * preemption by the other processes on the machine.
 */
export class Busy {
  #ms = 0;
  #calls = 0;

  /** Runs fn, counting its duration as the fakes' time. */
  time<T>(fn: () => T): T {
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
