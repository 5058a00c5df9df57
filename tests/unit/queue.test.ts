import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ExponentialBackoff, WorkQueue, type Timers } from "../../src/reconciler/queue.js";
import type { InProgress, QueueMetricsProvider } from "../../src/reconciler/queue-metrics.js";

/** Deterministic timers: nothing fires until advance(). */
class ManualTimers implements Timers {
  #now = 1_000_000;
  #seq = 0;
  readonly #pending = new Map<number, { at: number; fn: () => void }>();

  now(): number {
    return this.#now;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.#seq;
    this.#pending.set(id, { at: this.#now + ms, fn });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.#pending.delete(handle as number);
  }
  get pending(): number {
    return this.#pending.size;
  }
  advance(ms: number): void {
    const until = this.#now + ms;
    for (;;) {
      const due = [...this.#pending.entries()].filter(([, t]) => t.at <= until).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.#pending.delete(due[0]);
      this.#now = due[1].at;
      due[1].fn();
    }
    this.#now = until;
  }
}

/** Whether a promise has settled, after letting microtasks run. */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  void p.then(() => (done = true));
  await new Promise((r) => setImmediate(r));
  return done;
}

function newQueue(random = () => 0.5) {
  const timers = new ManualTimers();
  const queue = new WorkQueue<string>({ timers, backoff: { baseMs: 1000, factor: 2, capMs: 300_000, random } });
  return { timers, queue };
}

describe("WorkQueue dedup and single processing", () => {
  it("collapses repeated adds of a waiting key into one", async () => {
    const { queue } = newQueue();
    queue.add("a");
    queue.add("a");
    queue.add("b");
    queue.add("a", "resync");
    expect(queue.len()).toBe(2);
    expect(await queue.get()).toBe("a");
    expect(await queue.get()).toBe("b");
    expect(queue.len()).toBe(0);
  });

  it("never hands a key being processed to a second worker; re-adds re-queue it exactly once after done", async () => {
    const { queue } = newQueue();
    queue.add("a");
    expect(await queue.get()).toBe("a");
    const second = queue.get();
    queue.add("a");
    queue.add("a");
    expect(queue.len()).toBe(0);
    expect(await settled(second)).toBe(false);
    queue.done("a");
    expect(await second).toBe("a");
    queue.done("a");
    expect(queue.len()).toBe(0);
    const third = queue.get();
    expect(await settled(third)).toBe(false);
    queue.shutDown();
    expect(await third).toBeUndefined();
  });

  it("keeps its guarantees under any interleaving of adds, gets and dones (property)", async () => {
    const keys = ["a", "b", "c"] as const;
    const op = fc.oneof(
      fc.record({ kind: fc.constant("add" as const), key: fc.constantFrom(...keys), fresh: fc.boolean() }),
      fc.record({ kind: fc.constant("get" as const), worker: fc.integer({ min: 0, max: 2 }) }),
      fc.record({ kind: fc.constant("done" as const), worker: fc.integer({ min: 0, max: 2 }) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 60 }), async (ops) => {
        const { queue } = newQueue();
        const held: (string | undefined)[] = [undefined, undefined, undefined];
        // Keys added since their last hand-out: each must be handed out again.
        const owed = new Set<string>();
        const take = async (w: number) => {
          if (queue.len() === 0) return;
          const key = await queue.get();
          expect(key).toBeDefined();
          expect(held).not.toContain(key);
          held[w] = key;
          owed.delete(key as string);
        };
        for (const o of ops) {
          if (o.kind === "add") {
            queue.add(o.key, o.fresh ? "fresh" : "resync");
            owed.add(o.key);
          } else if (o.kind === "get" && held[o.worker] === undefined) {
            await take(o.worker);
          } else if (o.kind === "done" && held[o.worker] !== undefined) {
            queue.done(held[o.worker] as string);
            held[o.worker] = undefined;
          }
        }
        // Drain: finish everything, then hand out and finish what is left.
        for (let w = 0; w < 3; w++) {
          const k = held[w];
          if (k !== undefined) queue.done(k);
          held[w] = undefined;
        }
        while (queue.len() > 0) {
          await take(0);
          queue.done(held[0] as string);
          held[0] = undefined;
        }
        expect([...owed]).toEqual([]);
      }),
      { numRuns: 200 },
    );
  });
});

describe("WorkQueue priorities", () => {
  it("serves fresh keys before resync keys, each in FIFO order", async () => {
    const { queue } = newQueue();
    queue.add("r1", "resync");
    queue.add("r2", "resync");
    queue.add("f1", "fresh");
    queue.add("f2");
    const order = [];
    for (let i = 0; i < 4; i++) order.push(await queue.get());
    expect(order).toEqual(["f1", "f2", "r1", "r2"]);
  });

  it("serves follow-ups of started work before fresh keys, and fresh before resync", async () => {
    const { queue } = newQueue();
    queue.add("r1", "resync");
    queue.add("f1", "fresh");
    queue.add("u1", "followUp");
    queue.add("f2", "fresh");
    queue.add("u2", "followUp");
    const order = [];
    for (let i = 0; i < 5; i++) order.push(await queue.get());
    expect(order).toEqual(["u1", "u2", "f1", "f2", "r1"]);
  });

  it("serves ECS hints after fresh keys and before resync keys; a hint promotes a waiting resync key", async () => {
    const { queue } = newQueue();
    queue.add("r1", "resync");
    queue.add("r2", "resync");
    queue.add("h1", "hint");
    queue.add("f1", "fresh");
    queue.add("r2", "hint");
    queue.add("f1", "hint");
    const order = [];
    for (let i = 0; i < 4; i++) order.push(await queue.get());
    expect(order).toEqual(["f1", "h1", "r2", "r1"]);
  });

  it("promotes a waiting fresh key that gets a follow-up add, and never demotes one", async () => {
    const { queue } = newQueue();
    queue.add("a", "fresh");
    queue.add("b", "fresh");
    queue.add("b", "followUp");
    queue.add("a", "resync");
    expect(queue.len()).toBe(2);
    expect(await queue.get()).toBe("b");
    expect(await queue.get()).toBe("a");
  });

  it("promotes a waiting resync key that gets a fresh add", async () => {
    const { queue } = newQueue();
    queue.add("r1", "resync");
    queue.add("r2", "resync");
    queue.add("r2", "fresh");
    expect(queue.len()).toBe(2);
    expect(await queue.get()).toBe("r2");
    expect(await queue.get()).toBe("r1");
  });

  it("does not demote a fresh key that gets a resync add", async () => {
    const { queue } = newQueue();
    queue.add("f", "fresh");
    queue.add("r", "resync");
    queue.add("f", "resync");
    expect(await queue.get()).toBe("f");
  });

  it("re-queues a key dirtied while processing with the highest priority it was added with", async () => {
    const { queue } = newQueue();
    queue.add("x", "resync");
    expect(await queue.get()).toBe("x");
    queue.add("y", "resync");
    queue.add("x", "resync");
    queue.add("x", "fresh");
    queue.done("x");
    expect(await queue.get()).toBe("x");
    expect(await queue.get()).toBe("y");
  });
});

describe("WorkQueue delays and backoff", () => {
  it("adds after the delay, and an earlier pending delay wins", async () => {
    const { queue, timers } = newQueue();
    queue.addAfter("a", 1000);
    timers.advance(999);
    expect(queue.len()).toBe(0);
    timers.advance(1);
    expect(queue.len()).toBe(1);

    queue.addAfter("b", 5000);
    queue.addAfter("b", 2000);
    queue.addAfter("c", 2000);
    queue.addAfter("c", 5000);
    timers.advance(2000);
    expect(queue.len()).toBe(3);
    expect(timers.pending).toBe(0);
  });

  it("adds at once when the delay is not positive", () => {
    const { queue, timers } = newQueue();
    queue.addAfter("a", 0);
    expect(queue.len()).toBe(1);
    expect(timers.pending).toBe(0);
  });

  it.each([
    { reason: "lowest jitter draw gives half the exponential delay", random: () => 0, expected: [500, 1000, 2000, 4000, 8000] },
    { reason: "highest jitter draw gives the full exponential delay", random: () => 0.999999, expected: [1000, 2000, 4000, 8000, 16000] },
  ])("backoff grows exponentially: $reason", ({ random, expected }) => {
    const backoff = new ExponentialBackoff({ baseMs: 1000, factor: 2, capMs: 300_000, random });
    expect(expected.map(() => backoff.next("k"))).toEqual(expected);
  });

  it("keeps every delay within [d/2, d] for d = min(cap, base * 2^n), and caps at 5 minutes", () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: 0, max: 0.999999, noNaN: true }), { minLength: 30, maxLength: 30 }), (draws) => {
        let i = 0;
        const backoff = new ExponentialBackoff({ baseMs: 1000, factor: 2, capMs: 300_000, random: () => draws[i++] ?? 0 });
        for (let n = 0; n < draws.length; n++) {
          const d = Math.min(300_000, 1000 * 2 ** n);
          const delay = backoff.next("k");
          expect(delay).toBeGreaterThanOrEqual(d / 2);
          expect(delay).toBeLessThanOrEqual(d);
        }
        expect(backoff.next("k")).toBeLessThanOrEqual(300_000);
      }),
    );
  });

  it("addRateLimited delays per key, counts requeues, and forget resets the backoff", async () => {
    const { queue, timers } = newQueue(() => 0);
    queue.addRateLimited("a");
    expect(queue.numRequeues("a")).toBe(1);
    timers.advance(499);
    expect(queue.len()).toBe(0);
    timers.advance(1);
    expect(await queue.get()).toBe("a");
    queue.done("a");

    queue.addRateLimited("a"); // second failure: 1000 ms
    timers.advance(999);
    expect(queue.len()).toBe(0);
    timers.advance(1);
    expect(queue.len()).toBe(1);
    expect(queue.numRequeues("a")).toBe(2);
    expect(queue.numRequeues("b")).toBe(0);

    queue.forget("a");
    expect(queue.numRequeues("a")).toBe(0);
    expect(await queue.get()).toBe("a");
    queue.done("a");
    queue.addRateLimited("a");
    timers.advance(500);
    expect(queue.len()).toBe(1);
  });
});

describe("WorkQueue shutdown", () => {
  it("unblocks waiting gets, clears timers and ignores later adds", async () => {
    const { queue, timers } = newQueue();
    const waiting = [queue.get(), queue.get()];
    queue.addAfter("later", 10_000);
    expect(timers.pending).toBe(1);
    queue.shutDown();
    expect(await Promise.all(waiting)).toEqual([undefined, undefined]);
    expect(timers.pending).toBe(0);
    queue.add("a");
    queue.addRateLimited("b");
    expect(queue.len()).toBe(0);
    expect(await queue.get()).toBeUndefined();
  });

  it("resolves a get whose signal aborts, leaving the queue usable", async () => {
    const { queue } = newQueue();
    const ac = new AbortController();
    const p = queue.get(ac.signal);
    ac.abort();
    expect(await p).toBeUndefined();
    queue.add("a");
    expect(await queue.get()).toBe("a");
  });

  it("with drain, hands out what waits and resolves once all of it is done", async () => {
    const { queue } = newQueue();
    queue.add("a");
    queue.add("b");
    expect(await queue.get()).toBe("a");
    const drained = queue.shutDownWithDrain();
    queue.add("c");
    queue.add("a"); // dirty while processing, but nothing will process it any more
    expect(await queue.get()).toBe("b");
    queue.done("a");
    expect(await settled(drained)).toBe(false);
    queue.done("b");
    await drained;
    expect(await queue.get()).toBeUndefined();
  });
});

/** A QueueMetricsProvider that records what the queue reports. */
function recordingMetrics() {
  const seen = { names: [] as string[], added: 0, depth: [] as number[], waited: [] as number[], worked: [] as number[], retried: 0 };
  let read: (() => InProgress) | undefined;
  const provider: QueueMetricsProvider = {
    forQueue(name, inProgress) {
      seen.names.push(name);
      read = inProgress;
      return {
        added: () => seen.added++,
        depth: (n) => seen.depth.push(n),
        waited: (s) => seen.waited.push(s),
        worked: (s) => seen.worked.push(s),
        retried: () => seen.retried++,
      };
    },
  };
  return { seen, provider, inProgress: () => read?.() };
}

describe("WorkQueue metrics", () => {
  it("reports adds, depth, time waiting and time worked as client-go's workqueue does, and the work in progress", async () => {
    const timers = new ManualTimers();
    const { seen, provider, inProgress } = recordingMetrics();
    const queue = new WorkQueue<string>({ timers, name: "tenant", metrics: provider });
    expect(seen.names).toEqual(["tenant"]);

    queue.add("a");
    queue.add("a"); // collapsed: not an add
    queue.add("b", "resync");
    expect(seen.added).toBe(2);
    expect(seen.depth.at(-1)).toBe(2);

    timers.advance(300);
    expect(await queue.get()).toBe("a");
    expect(seen.waited).toEqual([0.3]);
    expect(seen.depth.at(-1)).toBe(1);
    // Re-added while processing: an add, and it counts in the depth until handed out again.
    queue.add("a");
    expect(seen.added).toBe(3);
    expect(seen.depth.at(-1)).toBe(2);

    timers.advance(200);
    expect(inProgress()).toEqual({ unfinishedSeconds: 0.2, longestSeconds: 0.2 });
    expect(await queue.get()).toBe("b");
    expect(seen.waited[1]).toBeCloseTo(0.5, 9);
    timers.advance(100);
    const now = inProgress();
    expect(now?.unfinishedSeconds).toBeCloseTo(0.4, 9); // a: 0.3 s, b: 0.1 s
    expect(now?.longestSeconds).toBeCloseTo(0.3, 9);

    queue.done("a");
    expect(seen.worked).toHaveLength(1);
    expect(seen.worked[0]).toBeCloseTo(0.3, 9);
    expect(await queue.get()).toBe("a");
    // Its wait runs from the re-add (at 300 ms), not from the first add.
    expect(seen.waited[2]).toBeCloseTo(0.3, 9);
    queue.done("a");
    queue.done("b");
    expect(seen.worked).toHaveLength(3);
    expect(inProgress()).toEqual({ unfinishedSeconds: 0, longestSeconds: 0 });

    // Delayed adds are retries, as client-go counts them: backoff and requeue-after alike.
    queue.addAfter("c", 1000);
    queue.addRateLimited("d");
    expect(seen.retried).toBe(2);
    expect(seen.added).toBe(3); // not added yet
    timers.advance(1000);
    expect(seen.added).toBe(5);
    queue.shutDown();
    expect(seen.depth.at(-1)).toBe(0);
  });

  it("tells the delay its next backoff retry will wait, and then waits exactly that", async () => {
    const draws = [0.9, 0.1, 0.5];
    const { timers, queue } = newQueue(() => draws.shift() ?? 0);
    const first = queue.nextRetryDelay("a");
    expect(first).toBe(950); // d = 1000: 500 + 0.9 * 500
    expect(queue.nextRetryDelay("a")).toBe(first); // drawn once
    expect(queue.numRequeues("a")).toBe(0); // asking is not failing
    queue.addRateLimited("a");
    timers.advance(first - 1);
    expect(queue.len()).toBe(0);
    timers.advance(1);
    expect(queue.len()).toBe(1);
    expect(await queue.get()).toBe("a");
    queue.done("a");
    // The second retry: d = 2000, drawn 0.1.
    expect(queue.nextRetryDelay("a")).toBe(1100);
    queue.forget("a");
    // After forget, back to the first step (d = 1000), with a new draw.
    expect(queue.nextRetryDelay("a")).toBe(750);
  });
});
