/**
 * Simulated time for the local ECS scheduler: it runs at `speed` times real
 * time (so the local default converges in seconds rather than minutes) and can
 * be pushed forward explicitly (so tests need not wait at all). It starts at
 * the real epoch time, so timestamps it produces look like ECS's.
 */
export class SimClock {
  readonly #realNow: () => number;
  /** Simulated time at the last anchor, and the real time of that anchor. */
  #anchorSim: number;
  #anchorReal: number;
  #speed: number;

  /** @param speed simulated milliseconds per real millisecond; 0 freezes time except for advance(). */
  constructor(speed: number, realNow: () => number = Date.now) {
    this.#realNow = realNow;
    this.#anchorReal = realNow();
    this.#anchorSim = this.#anchorReal;
    this.#speed = checkSpeed(speed);
  }

  now(): number {
    return this.#anchorSim + (this.#realNow() - this.#anchorReal) * this.#speed;
  }

  get speed(): number {
    return this.#speed;
  }

  /** Changes the rate from now on; time already elapsed keeps the old rate. */
  setSpeed(speed: number): void {
    this.#reanchor();
    this.#speed = checkSpeed(speed);
  }

  advance(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`advance needs a non-negative number of milliseconds, got ${ms}`);
    this.#reanchor();
    this.#anchorSim += ms;
  }

  #reanchor(): void {
    const sim = this.now();
    this.#anchorReal = this.#realNow();
    this.#anchorSim = sim;
  }
}

function checkSpeed(speed: number): number {
  if (!Number.isFinite(speed) || speed < 0) throw new RangeError(`speed must be a non-negative number, got ${speed}`);
  return speed;
}
