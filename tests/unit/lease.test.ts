import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { LeaseLostError } from "../../src/ports.js";
import { InMemoryLeaseStore, LeaderLease, type LeaseStore } from "../../src/reconciler/lease.js";

const D = 3000; // lease duration; renew and retry every 1000, safety margin 300

/** An in-memory store whose renewals can be made to fail, hang or be refused. */
class FlakyStore extends InMemoryLeaseStore {
  renewMode: "ok" | "throw" | "hang" | "refuse" = "ok";
  override async renew(name: string, holder: string, token: number, durationMs: number, now: number): Promise<boolean> {
    if (this.renewMode === "throw") throw new Error("connection reset");
    if (this.renewMode === "hang") return new Promise<boolean>(() => {});
    if (this.renewMode === "refuse") return false;
    return super.renew(name, holder, token, durationMs, now);
  }
}

function lease(store: LeaseStore, holder: string) {
  const l = new LeaderLease({ store, holder, durationMs: D });
  const events: string[] = [];
  l.onAcquired((token) => events.push(`acquired:${token}`));
  l.onLost((reason) => events.push(`lost:${reason}`));
  return { l, events };
}

beforeEach(() => {
  vi.useFakeTimers({ now: 1_700_000_000_000 });
});
afterEach(() => {
  vi.useRealTimers();
});

describe("LeaderLease election", () => {
  it("lets exactly one of two candidates lead, and keeps it leading while it renews", async () => {
    const store = new InMemoryLeaseStore();
    const a = lease(store, "a");
    const b = lease(store, "b");
    await Promise.all([a.l.start(), b.l.start()]);
    expect([a.l.isLeader, b.l.isLeader].filter(Boolean)).toHaveLength(1);
    const leader = a.l.isLeader ? a : b;
    const standby = a.l.isLeader ? b : a;
    expect(leader.l.token).toBe(1);

    await vi.advanceTimersByTimeAsync(10 * D);
    expect(leader.l.isLeader).toBe(true);
    expect(standby.l.isLeader).toBe(false);
    expect(standby.events).toEqual([]);
    expect(leader.events).toEqual(["acquired:1"]);
    expect(() => leader.l.assertHeld()).not.toThrow();
    expect(() => standby.l.assertHeld()).toThrow(LeaseLostError);
    await Promise.all([a.l.stop(), b.l.stop()]);
  });

  it("hands over to the standby once the holder stops renewing and its lease expires", async () => {
    const store = new InMemoryLeaseStore();
    const a = lease(store, "a");
    await a.l.start();
    const b = lease(store, "b");
    await b.l.start();
    expect(b.l.isLeader).toBe(false);

    await vi.advanceTimersByTimeAsync(500);
    await a.l.stop({ release: false }); // a crash: no release, no more renewals
    const expiresAt = store.peek("controller")?.expiresAt ?? 0;
    expect(store.peek("controller")?.holder).toBe("a");

    await vi.advanceTimersByTimeAsync(expiresAt - Date.now() - 1);
    expect(b.l.isLeader).toBe(false);
    await vi.advanceTimersByTimeAsync(50);
    expect(b.l.isLeader).toBe(true);
    expect(b.l.token).toBe(2);
    expect(store.peek("controller")?.holder).toBe("b");
    await b.l.stop();
  });

  it("lets the standby in at its next attempt when the holder releases, without waiting for expiry", async () => {
    const store = new InMemoryLeaseStore();
    const a = lease(store, "a");
    await a.l.start();
    const b = lease(store, "b");
    await b.l.start();
    await vi.advanceTimersByTimeAsync(100);
    const expiresAt = store.peek("controller")?.expiresAt ?? 0;

    await a.l.stop();
    expect(a.events).toEqual(["acquired:1", "lost:stopped"]);
    expect(store.peek("controller")?.holder).toBeUndefined();
    await vi.advanceTimersByTimeAsync(D / 3);
    expect(b.l.isLeader).toBe(true);
    expect(Date.now()).toBeLessThan(expiresAt - D / 2);
    await b.l.stop();
  });

  it("increments the fencing token on every acquisition", async () => {
    const store = new InMemoryLeaseStore();
    const tokens: number[] = [];
    for (const holder of ["a", "b", "a"]) {
      const { l } = lease(store, holder);
      await l.start();
      tokens.push(l.token ?? -1);
      await l.stop();
    }
    expect(tokens).toEqual([1, 2, 3]);
  });
});

describe("LeaderLease loss", () => {
  it.each([
    { reason: "a refused renewal (someone else took it) loses at once", mode: "refuse" as const, lostBy: D / 3 + 1 },
    { reason: "renewals that keep failing lose when the margin is reached", mode: "throw" as const, lostBy: D - D / 10 + 1 },
    { reason: "a renewal that hangs loses when the margin is reached", mode: "hang" as const, lostBy: D - D / 10 + 1 },
  ])("$reason", async ({ mode, lostBy }) => {
    const store = new FlakyStore();
    const a = lease(store, "a");
    await a.l.start();
    expect(() => a.l.assertHeld()).not.toThrow();
    store.renewMode = mode;

    await vi.advanceTimersByTimeAsync(D / 3 - 1);
    expect(a.l.isLeader).toBe(true);
    await vi.advanceTimersByTimeAsync(lostBy - D / 3 + 1);
    expect(a.l.isLeader).toBe(false);
    expect(() => a.l.assertHeld()).toThrow(LeaseLostError);
    expect(a.events).toHaveLength(2);
    expect(a.events[1]).toMatch(/^lost:/);
    await a.l.stop();
  });

  it("refuses the fence within the safety margin even before the loop notices", async () => {
    const store = new FlakyStore();
    const a = lease(store, "a");
    await a.l.start();
    store.renewMode = "hang";
    await vi.advanceTimersByTimeAsync(D - D / 10 - 10);
    expect(() => a.l.assertHeld()).not.toThrow();
    // Freeze the loop's timers but let the clock move: a paused event loop.
    vi.setSystemTime(Date.now() + 20);
    expect(a.l.isLeader).toBe(false); // the flag agrees with the fence
    expect(() => a.l.assertHeld()).toThrow(LeaseLostError);
    // stop waits for the hanging renewal, up to its deadline.
    const stopped = a.l.stop({ release: false });
    await vi.advanceTimersByTimeAsync(D);
    await stopped;
    expect(a.l.isLeader).toBe(false);
  });

  it("reacquires after a transient loss when nobody else took over", async () => {
    const store = new FlakyStore();
    const a = lease(store, "a");
    await a.l.start();
    store.renewMode = "throw";
    await vi.advanceTimersByTimeAsync(D);
    expect(a.l.isLeader).toBe(false);
    store.renewMode = "ok";
    await vi.advanceTimersByTimeAsync(D / 3 + 1);
    expect(a.l.isLeader).toBe(true);
    expect(a.l.token).toBe(2);
    expect(a.events.map((e) => e.split(":")[0])).toEqual(["acquired", "lost", "acquired"]);
    await a.l.stop();
  });

  it("keeps standing by while the store is unreachable, and starts anyway", async () => {
    const store: LeaseStore = {
      tryAcquire: async () => {
        throw new Error("ECONNREFUSED");
      },
      renew: async () => false,
      release: async () => false,
    };
    const a = lease(store, "a");
    await a.l.start();
    expect(a.l.isLeader).toBe(false);
    await vi.advanceTimersByTimeAsync(5 * D);
    expect(a.events).toEqual([]);
    await a.l.stop();
  });

  it("rejects timings that leave no room to renew", () => {
    const store = new InMemoryLeaseStore();
    expect(() => new LeaderLease({ store, holder: "a", durationMs: 1000, renewEveryMs: 950 })).toThrow(RangeError);
    expect(() => new LeaderLease({ store, holder: "a", durationMs: 1000, safetyMarginMs: 600 })).toThrow(RangeError);
  });
});
