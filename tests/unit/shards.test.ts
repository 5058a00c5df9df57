import { describe, expect, it } from "vitest";
import { LeaseLostError } from "../../src/ports.js";
import { decideBalance, type ShardLeaseView } from "../../src/reconciler/shard-balance.js";
import { InMemoryShardStore, ShardCountMismatchError, ShardLeases } from "../../src/reconciler/shard-leases.js";
import { shardOf } from "../../src/reconciler/shards.js";
import type { Timers } from "../../src/reconciler/queue.js";

describe("shardOf", () => {
  it("is stable, in range, and the same for ids that differ only in case", () => {
    expect(shardOf("Acme", 32)).toBe(shardOf("acme", 32));
    expect(shardOf("ACME-corp", 7)).toBe(shardOf("acme-CORP", 7));
    // Pinned: a change of hash would move every tenant to another shard at an upgrade.
    expect([shardOf("tenant-1", 32), shardOf("tenant-2", 32), shardOf("acme", 32)]).toEqual([19, 21, 13]);
    for (let i = 0; i < 200; i++) {
      const s = shardOf(`t-${i}`, 32);
      expect(Number.isInteger(s) && s >= 0 && s < 32).toBe(true);
    }
    expect(() => shardOf("a", 0)).toThrow(RangeError);
  });

  it("spreads ids evenly enough over the shards", () => {
    const counts = new Array<number>(32).fill(0);
    for (let i = 0; i < 3200; i++) counts[shardOf(`tenant-${i}`, 32)]! += 1;
    // 100 per shard expected; a string hash that clusters (e.g. on the suffix) would leave some near 0.
    expect(Math.min(...counts)).toBeGreaterThan(55);
    expect(Math.max(...counts)).toBeLessThan(150);
  });
});

/** A fleet's leases as the balancer sees them: shard -> holder. */
function fleet(count: number, holders: (string | undefined)[], now: number, expiresAt = now + 10_000): ShardLeaseView[] {
  return Array.from({ length: count }, (_, shard) => ({
    shard,
    holder: holders[shard],
    expiresAt: holders[shard] ? expiresAt : 0,
    token: 1,
  }));
}

function workers(names: string[], now: number): Map<string, number> {
  return new Map(names.map((n) => [n, now + 10_000]));
}

/** Runs balancing rounds of every controller against one leases array until nothing moves; returns loads and moves. */
function simulate(count: number, controllers: string[], start: (string | undefined)[], maxRounds = 200) {
  const now = 1_000_000;
  const holders = [...start];
  let moves = 0;
  let steals = 0;
  for (let round = 0; round < maxRounds; round++) {
    let moved = false;
    for (const me of controllers) {
      const owned = new Set(holders.flatMap((h, s) => (h === me ? [s] : [])));
      const d = decideBalance({ me, now, leases: fleet(count, holders, now), workers: workers(controllers, now), owned });
      for (const s of d.take) {
        if (holders[s] !== undefined) continue; // another controller took it this round: the store's condition would refuse
        holders[s] = me;
        moved = true;
        moves++;
      }
      if (d.steal) {
        expect(holders[d.steal.shard]).toBe(d.steal.from);
        holders[d.steal.shard] = me;
        moved = true;
        moves++;
        steals++;
      }
    }
    if (!moved) break;
  }
  const loads = Object.fromEntries(controllers.map((c) => [c, holders.filter((h) => h === c).length]));
  return { holders, loads, moves, steals };
}

describe("decideBalance", () => {
  it("makes no move at all in a balanced fleet (11/11/10 of 32)", () => {
    const now = 1000;
    const holders = Array.from({ length: 32 }, (_, s) => (s < 11 ? "a" : s < 22 ? "b" : "c"));
    for (const me of ["a", "b", "c"]) {
      const owned = new Set(holders.flatMap((h, s) => (h === me ? [s] : [])));
      const d = decideBalance({ me, now, leases: fleet(32, holders, now), workers: workers(["a", "b", "c"], now), owned });
      expect(d.target).toBe(11);
      expect(d.take).toEqual([]);
      expect(d.steal).toBeUndefined();
    }
  });

  it("never steals when the most loaded is at the target, nor when the imbalance is one", () => {
    const now = 1000;
    // 2 controllers, 5 shards: target 3; a has 3, b has 2: b is below target but a is not above it.
    const holders = ["a", "a", "a", "b", "b"];
    const d = decideBalance({ me: "b", now, leases: fleet(5, holders, now), workers: workers(["a", "b"], now), owned: new Set([3, 4]) });
    expect(d.target).toBe(3);
    expect(d.steal).toBeUndefined();
  });

  it("takes free shards before stealing, and steals one per round from the most loaded only", () => {
    const now = 1000;
    const holders: (string | undefined)[] = [...Array<string>(20).fill("a"), ...Array<string>(10).fill("b"), undefined, undefined];
    const d = decideBalance({ me: "c", now, leases: fleet(32, holders, now), workers: workers(["a", "b", "c"], now), owned: new Set() });
    expect([...d.take].sort((x, y) => x - y)).toEqual([30, 31]);
    expect(d.steal).toBeUndefined(); // free shards first
    const full = holders.map((h) => h ?? "b");
    const s = decideBalance({ me: "c", now, leases: fleet(32, full, now), workers: workers(["a", "b", "c"], now), owned: new Set() });
    expect(s.take).toEqual([]);
    expect(s.steal?.from).toBe("a");
  });

  it("converges from one controller to three without a single move back", () => {
    const all = Array<string>(32).fill("a");
    const { loads, steals, holders } = simulate(32, ["a", "b", "c"], all);
    expect(Object.values(loads).sort()).toEqual([10, 11, 11]);
    // Every move was a steal from an overloaded controller: 21 moves for 21 shards, none undone.
    expect(steals).toBe(21);
    expect(holders.filter((h) => h === "a")).toHaveLength(11);
    // And the converged fleet stays put.
    const again = simulate(32, ["a", "b", "c"], holders);
    expect(again.moves).toBe(0);
  });

  it("converges from three to two after one dies: its expired shards are shared, nothing else moves", () => {
    const now = 1_000_000;
    const holders = Array.from({ length: 32 }, (_, s) => (s < 11 ? "a" : s < 22 ? "b" : "c"));
    // c died: its leases expired, its heartbeat too.
    const leases = fleet(32, holders, now).map((l) => (l.holder === "c" ? { ...l, expiresAt: now - 1 } : l));
    const live = new Map([
      ["a", now + 10_000],
      ["b", now + 10_000],
      ["c", now - 1],
    ]);
    const da = decideBalance({ me: "a", now, leases, workers: live, owned: new Set(holders.flatMap((h, s) => (h === "a" ? [s] : []))) });
    expect(da.live).toEqual(["a", "b"]);
    expect(da.target).toBe(16);
    expect(da.take).toHaveLength(5);
    expect(da.take.every((s) => s >= 22)).toBe(true);
    expect(da.steal).toBeUndefined();
    // Both take as the balancer says (a first; b finds what is left): 16/16.
    const after = holders.map((h, s) => (h === "c" ? (da.take.includes(s) ? "a" : undefined) : h));
    const { loads, steals } = simulate(32, ["a", "b"], after);
    expect(loads).toEqual({ a: 16, b: 16 });
    expect(steals).toBe(0);
  });

  it("takes a long-free shard even at its target, so a stuck live controller cannot leave tenants unowned", () => {
    const now = 1000;
    // 3 live, target 1 each of 3; "stuck" takes nothing; a and b hold one each.
    const holders: (string | undefined)[] = ["a", "b", undefined];
    const base = { me: "a", now, leases: fleet(3, holders, now), workers: workers(["a", "b", "stuck"], now), owned: new Set([0]) };
    expect(decideBalance(base).take).toEqual([]);
    expect(decideBalance({ ...base, longFree: new Set([2]) }).take).toEqual([2]);
  });
});

/** A clock the test moves; timers never fire by themselves (rounds are driven by hand through start()). */
function manualTimers(): Timers & { advance(ms: number): void; fire(): Promise<void> } {
  let now = 1_000_000;
  let pending: { fn: () => void; at: number }[] = [];
  return {
    now: () => now,
    setTimeout: (fn, ms) => {
      const t = { fn, at: now + ms };
      pending.push(t);
      return t;
    },
    clearTimeout: (h) => {
      pending = pending.filter((t) => t !== h);
    },
    advance: (ms) => {
      now += ms;
    },
    async fire() {
      const due = pending.filter((t) => t.at <= now);
      pending = pending.filter((t) => t.at > now);
      for (const t of due) t.fn();
      // Let the round's promises settle.
      for (let i = 0; i < 20; i++) await Promise.resolve();
    },
  };
}

describe("ShardLeases", () => {
  it("refuses to start with a SHARD_COUNT other than the fleet's, naming the variable", async () => {
    const store = new InMemoryShardStore();
    const timers = manualTimers();
    const a = new ShardLeases({ store, holder: "a", count: 8, durationMs: 9000, timers });
    await a.start();
    const b = new ShardLeases({ store, holder: "b", count: 16, durationMs: 9000, timers });
    await expect(b.start()).rejects.toThrow(ShardCountMismatchError);
    await expect(new ShardLeases({ store, holder: "c", count: 4, durationMs: 9000, timers }).start()).rejects.toThrow(/SHARD_COUNT=8/);
    await a.stop();
  });

  it("a renewal completing late: owns() says no meanwhile, holds() stays yes, and the shard comes back unannounced", async () => {
    // The Manager must not drop a key in that window: no acquisition would queue it again.
    let gate: (() => void) | undefined;
    class SlowRenewals extends InMemoryShardStore {
      override async renew(name: string, holder: string, token: number, durationMs: number, now: number): Promise<boolean> {
        await new Promise<void>((resolve) => (gate = resolve));
        return super.renew(name, holder, token, durationMs, now);
      }
    }
    const timers = manualTimers();
    const a = new ShardLeases({ store: new SlowRenewals(), holder: "a", count: 1, durationMs: 9000, timers });
    await a.start();
    const announced: number[] = [];
    a.onAcquired((shard) => announced.push(shard));
    timers.advance(3000);
    await timers.fire(); // the renewal is sent, before the margin, and hangs
    timers.advance(5500); // now within the margin of the old expiry
    expect(a.owns(0)).toBe(false);
    expect(a.holds(0)).toBe(true);
    gate?.();
    for (let i = 0; i < 20; i++) await Promise.resolve();
    expect(a.owns(0)).toBe(true);
    expect(announced).toEqual([]);
    void a.stop();
  });

  it("a key of a lost shard cannot write: its fence refuses once the shard is taken, even after it comes back", async () => {
    const store = new InMemoryShardStore();
    const timers = manualTimers();
    const a = new ShardLeases({ store, holder: "a", count: 2, durationMs: 9000, timers });
    await a.start();
    expect(a.ownedShards()).toEqual([0, 1]);
    const fence = a.fenceFor(0);
    expect(() => fence.assertHeld()).not.toThrow();
    expect(fence.term?.()).toEqual({ lease: "shard-0", holder: "a", token: 1 });

    // a is paused past its lease; b takes the expired shard 0 (a new term).
    timers.advance(9001);
    expect(() => fence.assertHeld()).toThrow(LeaseLostError); // locally expired already
    const taken = await store.tryAcquire("shard-0", "b", 9000, timers.now());
    expect(taken).toMatchObject({ acquired: true, token: 2 });
    // a wakes: its next round loses both (expired before renewal), then takes shard 1 back (free) but not shard 0.
    await timers.fire();
    expect(a.ownedShards()).toEqual([1]);
    expect(() => fence.assertHeld()).toThrow(LeaseLostError);
    expect(() => a.fenceFor(0).assertHeld()).toThrow(LeaseLostError);

    // Even when a gets shard 0 again (b releases), the fence of the old term stays refused.
    await store.release("shard-0", "b", 2);
    timers.advance(3000);
    await timers.fire();
    expect(a.ownedShards()).toEqual([0, 1]);
    expect(a.fenceFor(0).term?.()).toMatchObject({ token: 3 });
    expect(() => fence.assertHeld()).toThrow(/not held by a in term 1/);
    await a.stop();
  });

  it("a stolen shard is written by its taker only after the previous holder's lease would have run out", async () => {
    const store = new InMemoryShardStore();
    const timers = manualTimers();
    const a = new ShardLeases({ store, holder: "a", count: 4, durationMs: 9000, timers });
    await a.start();
    expect(a.ownedShards()).toEqual([0, 1, 2, 3]);
    const b = new ShardLeases({ store, holder: "b", count: 4, durationMs: 9000, timers });
    const gained: number[] = [];
    b.onAcquired((s) => gained.push(s));
    await b.start(); // target 2: nothing free, a holds 4 > 2: b steals one
    const stolen = [0, 1, 2, 3].find((s) => store.peek(`shard-${s}`)?.holder === "b");
    expect(stolen).toBeDefined();
    expect(b.owns(stolen!)).toBe(false); // a may still believe it holds it
    expect(() => b.fenceFor(stolen!).assertHeld()).toThrow(/taken over/);
    expect(gained).toEqual([]);
    // a's next round: its renewal of that shard is refused; it loses it.
    const lost: number[] = [];
    a.onLost((s) => lost.push(s));
    timers.advance(3000);
    await timers.fire();
    expect(lost).toEqual([stolen]);
    // After a whole lease, b writes.
    timers.advance(6001);
    await timers.fire();
    expect(b.owns(stolen!)).toBe(true);
    expect(gained).toContain(stolen);
    await a.stop();
    await b.stop();
  });

  it("a graceful stop releases every shard and the heartbeat at once", async () => {
    const store = new InMemoryShardStore();
    const timers = manualTimers();
    const a = new ShardLeases({ store, holder: "a", count: 3, durationMs: 9000, timers });
    await a.start();
    await a.stop();
    for (const s of [0, 1, 2]) expect(store.peek(`shard-${s}`)?.holder).toBeUndefined();
    expect((await store.snapshot(3)).workers.has("a")).toBe(false);
    const b = new ShardLeases({ store, holder: "b", count: 3, durationMs: 9000, timers });
    await b.start(); // no wait for an expiry
    expect(b.ownedShards()).toEqual([0, 1, 2]);
    await b.stop();
  });
});
