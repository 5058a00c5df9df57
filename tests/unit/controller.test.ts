import { describe, expect, it, vi } from "vitest";
import { Controller } from "../../src/reconciler/controller.js";
import { WorkQueue, type Timers } from "../../src/reconciler/queue.js";
import { done, failed, requeueAfter, type ReconcileResult, type Reconciler } from "../../src/reconciler/result.js";

/** Generous: these machines are loaded; a wait's length proves nothing here. */
const SLOW = { timeout: 10_000 };

/** Queue timers that only fire on advance(), so retries happen when the test says. */
class ManualTimers implements Timers {
  #now = 0;
  #seq = 0;
  readonly pending = new Map<number, { at: number; fn: () => void }>();
  now(): number {
    return this.#now;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    this.pending.set(++this.#seq, { at: this.#now + ms, fn });
    return this.#seq;
  }
  clearTimeout(handle: unknown): void {
    this.pending.delete(handle as number);
  }
  advance(ms: number): void {
    this.#now += ms;
    for (const [id, t] of [...this.pending].sort((a, b) => a[1].at - b[1].at)) {
      if (t.at > this.#now) continue;
      this.pending.delete(id);
      t.fn();
    }
  }
  delays(): number[] {
    return [...this.pending.values()].map((t) => t.at - this.#now);
  }
}

function deferred<T = void>() {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function setup(reconciler: Reconciler, concurrency = 2) {
  const timers = new ManualTimers();
  const queue = new WorkQueue<string>({ timers, backoff: { baseMs: 1000, factor: 2, capMs: 60_000, random: () => 0 } });
  const results: { key: string; result: ReconcileResult }[] = [];
  const controller = new Controller<string>({
    queue,
    reconciler,
    concurrency,
    onResult: (key, result) => results.push({ key, result }),
  });
  return { timers, queue, controller, results };
}

describe("Controller concurrency", () => {
  it("never runs more than N reconciles at once, and runs every key", async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    const seen: string[] = [];
    const { controller } = setup(async (key) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await sleep(3);
      seen.push(key);
      inFlight--;
      return done();
    }, 3);
    controller.start();
    controller.enqueue(Array.from({ length: 20 }, (_, i) => `t${i}`));
    await vi.waitFor(() => expect(seen).toHaveLength(20));
    expect(maxInFlight).toBe(3);
    expect(new Set(seen).size).toBe(20);
    await controller.stop({ timeoutMs: 1000 });
  });

  it("rejects a concurrency below 1", () => {
    expect(() => setup(async () => done(), 0)).toThrow(RangeError);
  });
});

describe("Controller result handling", () => {
  const cases: { reason: string; result: ReconcileResult; forget: boolean; addAfter?: number; rateLimited: boolean }[] = [
    { reason: "done forgets the backoff and requeues nothing", result: done(), forget: true, rateLimited: false },
    {
      reason: "requeueAfter forgets the backoff and looks again later",
      result: requeueAfter(7000, "waiting on ECS"),
      forget: true,
      addAfter: 7000,
      rateLimited: false,
    },
    {
      reason: "a retryable failure requeues with backoff",
      result: failed(new Error("throttled")),
      forget: false,
      addAfter: 500,
      rateLimited: true,
    },
    {
      reason: "a terminal failure forgets and does not requeue",
      result: failed(new Error("bad record"), true),
      forget: true,
      rateLimited: false,
    },
  ];

  it.each(cases)("$reason", async ({ result, forget, addAfter, rateLimited }) => {
    const { queue, controller, results } = setup(async () => result);
    const spies = {
      forget: vi.spyOn(queue, "forget"),
      addAfter: vi.spyOn(queue, "addAfter"),
      addRateLimited: vi.spyOn(queue, "addRateLimited"),
    };
    controller.start();
    controller.enqueue(["k"]);
    await vi.waitFor(() => expect(results).toHaveLength(1), SLOW);
    expect(results[0]).toEqual({ key: "k", result });
    expect(spies.forget.mock.calls.length > 0).toBe(forget);
    expect(spies.addRateLimited.mock.calls.length > 0).toBe(rateLimited);
    if (addAfter === undefined) expect(spies.addAfter).not.toHaveBeenCalled();
    else if (rateLimited) expect(spies.addAfter).toHaveBeenCalledWith("k", addAfter);
    // Work under way is followed up ahead of new work.
    else expect(spies.addAfter).toHaveBeenCalledWith("k", addAfter, "followUp");
    await controller.stop({ timeoutMs: 1000 });
  });

  it("retries a throwing reconciler with growing backoff, then resets it on success", async () => {
    let calls = 0;
    const { timers, queue, controller, results } = setup(async () => {
      calls++;
      if (calls <= 2) throw new Error(`boom ${calls}`);
      return done();
    });
    controller.start();
    controller.enqueue(["k"]);
    await vi.waitFor(() => expect(results).toHaveLength(1), SLOW);
    expect(results[0]?.result).toMatchObject({ kind: "failed", terminal: false, error: { message: "boom 1" } });
    expect(timers.delays()).toEqual([500]);

    timers.advance(499);
    await sleep(5);
    expect(calls).toBe(1);
    timers.advance(1);
    await vi.waitFor(() => expect(results).toHaveLength(2));
    expect(timers.delays()).toEqual([1000]);
    expect(queue.numRequeues("k")).toBe(2);

    timers.advance(1000);
    await vi.waitFor(() => expect(results).toHaveLength(3));
    expect(results[2]?.result).toEqual(done());
    expect(queue.numRequeues("k")).toBe(0);
    expect(timers.pending.size).toBe(0);
    await controller.stop({ timeoutMs: 1000 });
  });

  it("does not retry a terminal failure until the key is added again", async () => {
    let calls = 0;
    const { timers, controller, results } = setup(async () => {
      calls++;
      return failed(new Error("invalid tier"), true);
    });
    controller.start();
    controller.enqueue(["k"]);
    await vi.waitFor(() => expect(results).toHaveLength(1), SLOW);
    timers.advance(3_600_000);
    await sleep(5);
    expect(calls).toBe(1);
    expect(timers.pending.size).toBe(0);
    controller.enqueue(["k"]);
    await vi.waitFor(() => expect(calls).toBe(2), SLOW);
    await controller.stop({ timeoutMs: 1000 });
  });

  it("comes back after a terminal failure's retryAfterMs, without growing the backoff", async () => {
    let calls = 0;
    const { timers, queue, controller, results } = setup(async () => {
      calls++;
      return failed(new Error("resource not ours"), true, 60_000);
    });
    controller.start();
    controller.enqueue(["k"]);
    await vi.waitFor(() => expect(results).toHaveLength(1), SLOW);
    expect(timers.delays()).toEqual([60_000]);
    expect(queue.numRequeues("k")).toBe(0);
    timers.advance(60_000);
    await vi.waitFor(() => expect(calls).toBe(2), SLOW);
    expect(timers.delays()).toEqual([60_000]); // the same slow pace, not a backoff
    await controller.stop({ timeoutMs: 1000 });
  });

  it("hands each reconcile the failures in a row before it and the backoff the queue then applies", async () => {
    const seen: { failures: number; retryDelayMs: number }[] = [];
    let calls = 0;
    const timers = new ManualTimers();
    const draws = [0.2, 0.6, 0.4, 0.8];
    const queue = new WorkQueue<string>({ timers, backoff: { baseMs: 1000, factor: 2, capMs: 60_000, random: () => draws.shift() ?? 0 } });
    const results: ReconcileResult[] = [];
    const controller = new Controller<string>({
      queue,
      concurrency: 1,
      reconciler: async (_key, _signal, context) => {
        calls++;
        seen.push({ failures: context.failures, retryDelayMs: context.retryDelayMs() });
        return calls <= 3 ? failed(new Error(`throttled ${calls}`)) : done();
      },
      onResult: (_k, r) => results.push(r),
    });
    controller.start();
    controller.enqueue(["k"]);
    for (let n = 1; n <= 3; n++) {
      await vi.waitFor(() => expect(results).toHaveLength(n), SLOW);
      // What the reconcile was told is the delay now pending.
      expect(timers.delays()).toEqual([seen[n - 1]?.retryDelayMs]);
      timers.advance(seen[n - 1]?.retryDelayMs ?? 0);
    }
    await vi.waitFor(() => expect(results).toHaveLength(4), SLOW);
    expect(seen.map((s) => s.failures)).toEqual([0, 1, 2, 3]);
    // Equal jitter: d/2 + draw * d/2 for d = 1000, 2000, 4000.
    expect(seen.slice(0, 3).map((s) => s.retryDelayMs)).toEqual([600, 1600, 2800]);
    controller.enqueue(["k"]);
    await vi.waitFor(() => expect(seen).toHaveLength(5), SLOW);
    expect(seen[4]?.failures).toBe(0); // a success resets the count
    await controller.stop({ timeoutMs: 1000 });
  });

  it("survives an onResult hook that throws", async () => {
    const timers = new ManualTimers();
    const queue = new WorkQueue<string>({ timers });
    const seen: string[] = [];
    const controller = new Controller<string>({
      queue,
      concurrency: 1,
      reconciler: async (key) => {
        seen.push(key);
        return done();
      },
      onResult: () => {
        throw new Error("metrics broke");
      },
    });
    controller.start();
    controller.enqueue(["a", "b"]);
    await vi.waitFor(() => expect(seen).toEqual(["a", "b"]));
    await controller.stop({ timeoutMs: 1000 });
  });
});

describe("Controller stop", () => {
  it("stops taking keys and waits for in-flight reconciles", async () => {
    const gate = deferred();
    const started: string[] = [];
    const { controller, queue } = setup(async (key) => {
      started.push(key);
      await gate.promise;
      return done();
    }, 1);
    controller.start();
    controller.enqueue(["a", "b"]);
    await vi.waitFor(() => expect(started).toEqual(["a"]));
    let stopped = false;
    const stopping = controller.stop({ timeoutMs: 5000 }).then(() => (stopped = true));
    await sleep(20);
    expect(stopped).toBe(false);
    expect(controller.inFlight).toBe(1);
    gate.resolve();
    await stopping;
    expect(started).toEqual(["a"]);
    expect(queue.shuttingDown).toBe(true);
    expect(controller.inFlight).toBe(0);
  });

  it("aborts in-flight reconciles after the bound and resolves", async () => {
    let signal: AbortSignal | undefined;
    const { controller } = setup(async (_key, s) => {
      signal = s;
      await new Promise((resolve) => s.addEventListener("abort", resolve));
      return failed(new Error("aborted"));
    }, 1);
    controller.start();
    controller.enqueue(["slow"]);
    await vi.waitFor(() => expect(signal).toBeDefined());
    const t0 = Date.now();
    await controller.stop({ timeoutMs: 60 });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(55);
    expect(signal?.aborted).toBe(true);
    expect(controller.inFlight).toBe(0);
  });

  it("resolves even when a reconcile ignores its abort signal", async () => {
    const timers = new ManualTimers();
    const queue = new WorkQueue<string>({ timers });
    const controller = new Controller<string>({
      queue,
      concurrency: 1,
      abortGraceMs: 20,
      reconciler: () => new Promise<ReconcileResult>(() => {}),
    });
    controller.start();
    controller.enqueue(["stuck"]);
    await vi.waitFor(() => expect(controller.inFlight).toBe(1));
    const t0 = Date.now();
    await controller.stop({ timeoutMs: 20 });
    expect(Date.now() - t0).toBeLessThan(1000);
  });
});
