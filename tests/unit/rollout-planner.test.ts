import { describe, expect, it } from "vitest";
import { defaultCatalogue, type Catalogue } from "../../src/apps/catalogue.js";
import { catalogueHash, initialRollout, type Rollout, type RolloutSettings } from "../../src/rollouts/model.js";
import {
  advance,
  assignment,
  baselineAfter,
  command,
  CommandRefused,
  createRollout,
  progress,
  recordAnnounced,
  recordFailure,
  type Report,
} from "../../src/rollouts/planner.js";
import { changesFor, describeChanges } from "../../src/rollouts/changes.js";
import { parseWaves } from "../../src/rollouts/waves.js";

const T0 = Date.parse("2026-12-01T10:00:00.000Z");
const at = (ms: number) => new Date(T0 + ms);
const withVersion = (c: Catalogue, app: "orders" | "users", version: string): Catalogue => ({
  apps: { ...c.apps, [app]: { ...c.apps[app], version } },
});
const A = defaultCatalogue;
const B = withVersion(A, "orders", "1.5.0");
const C = withVersion(B, "orders", "1.6.0");
const [hA, hB, hC] = [catalogueHash(A), catalogueHash(B), catalogueHash(C)];

const settings: RolloutSettings = { waves: parseWaves("1,50%,100%"), bakeMs: 10_000, maxFailures: 0, timeoutMs: 60_000 };
const units = ["t1", "t2", "t3", "t4"].map((key) => ({ key }));

function start(s: RolloutSettings = settings, to = { hash: hB, catalogue: B }, from: Rollout = initialRollout(A, at(-1000))): Rollout {
  return createRollout(from, { id: "r1", now: at(0), target: to, affected: units, pool: ":pool", unaffected: 2, settings: s });
}
const healthy = (hash: string, ms: number): Report => ({ at: T0 + ms, hash, outcome: "healthy" });
const reportsOf = (entries: [string, Report][]) => new Map(entries);

/** Runs a rollout to where every unit of the wave that started at `startMs` is deployed, baked and checked. */
function passWave(r: Rollout, wave: readonly string[], startMs: number, s: RolloutSettings = settings): { rollout: Rollout; ms: number } {
  const deployed = advance(r, at(startMs + 1000), reportsOf(wave.map((u) => [u, healthy(hB, startMs + 500)])), s).rollout;
  const checking = advance(deployed, at(startMs + 1000 + s.bakeMs), new Map(), s).rollout;
  const ms = startMs + 2000 + s.bakeMs;
  return { rollout: checking, ms };
}

describe("a rollout's waves", () => {
  it("start with the canary: only its tenant gets the new catalogue, and it is reconciled", () => {
    const r = start();
    expect(r.state).toBe("Progressing");
    expect(r.waves.map((w) => w.units)).toEqual([["t1"], [":pool"], ["t2"], ["t3", "t4"]]);
    const s = advance(r, at(0), new Map(), settings);
    expect(s.enqueue).toEqual(["t1"]);
    expect(s.events).toEqual([expect.objectContaining({ kind: "WaveStarted", wave: 1, units: ["t1"] })]);
    expect(assignment(s.rollout, "t1")).toEqual({ hash: hB, role: "target" });
    expect(assignment(s.rollout, "t2")).toEqual({ hash: hA, role: "settled" });
    expect(assignment(s.rollout, ":pool")).toEqual({ hash: hA, role: "settled" });
    expect(assignment(s.rollout, "new-tenant")).toEqual({ hash: hA, role: "settled" });
    expect(s.rollout.version).toBe(r.version + 1);
  });

  it("count a unit done only on a healthy report against the new catalogue made after its wave started", () => {
    const r = advance(start(), at(0), new Map(), settings).rollout;
    const stale = reportsOf([["t1", healthy(hB, -1)]]);
    const other = reportsOf([["t1", healthy(hA, 500)]]);
    const waiting = reportsOf([["t1", { at: T0 + 500, hash: hB, outcome: "waiting" }]]);
    for (const reports of [stale, other, waiting]) expect(advance(r, at(1000), reports, settings).rollout.done).toEqual({});
    const s = advance(r, at(1000), reportsOf([["t1", healthy(hB, 500)]]), settings);
    expect(Object.keys(s.rollout.done)).toEqual(["t1"]);
    expect(s.rollout.waves[0]?.deployedAt).toBe(at(1000).toISOString());
  });

  it("bake: the next wave waits the bake time, then for every deployed unit to be seen healthy again", () => {
    let r = advance(start(), at(0), new Map(), settings).rollout;
    r = advance(r, at(1000), reportsOf([["t1", healthy(hB, 500)]]), settings).rollout;
    const baking = advance(r, at(10_999), new Map(), settings);
    expect(baking.changed).toBe(false);
    const check = advance(r, at(11_000), new Map(), settings);
    expect(check.enqueue).toEqual(["t1"]);
    expect(check.rollout.waves[0]?.checkedAt).toBe(at(11_000).toISOString());
    expect(check.rollout.waves[1]?.startedAt).toBeUndefined();
    // A report from before the check does not count; one after it does, and the pool's wave starts.
    expect(
      advance(check.rollout, at(12_000), reportsOf([["t1", healthy(hB, 10_000)]]), settings).rollout.waves[1]?.startedAt,
    ).toBeUndefined();
    const next = advance(check.rollout, at(12_000), reportsOf([["t1", healthy(hB, 11_500)]]), settings);
    expect(next.events.map((e) => [e.kind, e.wave])).toEqual([
      ["WaveCompleted", 1],
      ["WaveStarted", 2],
    ]);
    expect(next.enqueue).toEqual([":pool"]);
    expect(assignment(next.rollout, ":pool").hash).toBe(hB);
  });

  it("complete once the last wave baked: everyone, tenants onboarded meanwhile too, runs the new catalogue", () => {
    let r = advance(start(), at(0), new Map(), settings).rollout;
    let ms = 0;
    for (const wave of [["t1"], [":pool"], ["t2"], ["t3", "t4"]]) {
      const passed = passWave(r, wave, ms);
      const s = advance(passed.rollout, at(passed.ms), reportsOf(wave.map((u) => [u, healthy(hB, passed.ms - 500)])), settings);
      r = s.rollout;
      ms = passed.ms;
    }
    expect(r.state).toBe("Completed");
    expect(progress(r)).toEqual({ total: 5, done: 5, failed: 0, pending: 0 });
    expect(assignment(r, "new-tenant")).toEqual({ hash: hB, role: "settled" });
    expect(advance(r, at(ms + 100_000), new Map(), settings).changed).toBe(false);
  });

  it("time out a unit that never gets healthy: it fails and, with no budget, halts the rollout", () => {
    const r = advance(start(), at(0), new Map(), settings).rollout;
    expect(advance(r, at(60_000), new Map(), settings).changed).toBe(false);
    const s = advance(r, at(60_001), new Map(), settings);
    expect(s.rollout.failed["t1"]?.reason).toMatch(/controller-side timeout/);
    expect(s.rollout.state).toBe("Halted");
    expect(s.events.map((e) => e.kind)).toEqual(["Halted"]);
    expect(assignment(s.rollout, "t1")).toEqual({ hash: hA, role: "failed" });
  });

  it("mark a skipped unit done without checking it after the bake", () => {
    let r = advance(start(), at(0), new Map(), settings).rollout;
    r = advance(r, at(1000), reportsOf([["t1", { at: T0 + 500, hash: hB, outcome: "notApplicable" }]]), settings).rollout;
    expect(r.done["t1"]).toEqual({ at: at(1000).toISOString(), skipped: true });
    const s = advance(r, at(11_000), new Map(), settings);
    // Nothing to check: the bake ends at once and the next wave (the pool) starts.
    expect(s.enqueue).toEqual([":pool"]);
    expect(s.rollout.waves[0]?.bakedAt).toBeDefined();
  });
});

describe("failures and the budget", () => {
  it("a failure within the budget lets the rollout go on; the failed unit stays on its baseline", () => {
    const lenient = { ...settings, maxFailures: 1 };
    let r = advance(start(lenient), at(0), new Map(), lenient).rollout;
    r = recordFailure(r, "t1", "ECS deployment circuit breaker: tasks failed to start.", at(500)) as Rollout;
    expect(r.failed["t1"]?.reason).toMatch(/circuit breaker/);
    const s = advance(r, at(1000), new Map(), lenient);
    expect(s.rollout.state).toBe("Progressing");
    expect(s.rollout.waves[0]?.deployedAt).toBeDefined();
    expect(assignment(s.rollout, "t1").hash).toBe(hA);
    // The next failure passes the budget.
    const after = passWave(s.rollout, [], 1000, lenient).rollout;
    expect(after.waves[1]?.startedAt).toBeDefined();
    const halted = advance(recordFailure(after, ":pool", "rolled back", at(20_000)) as Rollout, at(20_001), new Map(), lenient);
    expect(halted.rollout.state).toBe("Halted");
    expect(halted.rollout.reason).toMatch(/2 failed unit\(s\) exceed the failure budget of 1/);
    expect(assignment(halted.rollout, "t2")).toEqual({ hash: hA, role: "settled" });
  });

  it("records a failure once, only for a unit the rollout reached, and its announcement once", () => {
    const r = advance(start(), at(0), new Map(), settings).rollout;
    expect(recordFailure(r, "t2", "x", at(1))).toBeUndefined();
    const failed = recordFailure(r, "t1", "x", at(1)) as Rollout;
    expect(recordFailure(failed, "t1", "again", at(2))).toBeUndefined();
    const announced = recordAnnounced(failed, "t1", at(3)) as Rollout;
    expect(announced.failed["t1"]?.announced).toBe(true);
    expect(recordAnnounced(announced, "t1", at(4))).toBeUndefined();
  });

  it("a halted rollout starts no wave; resume forgives the failures so far", () => {
    let r = advance(start(), at(0), new Map(), settings).rollout;
    r = advance(recordFailure(r, "t1", "x", at(1)) as Rollout, at(2), new Map(), settings).rollout;
    expect(r.state).toBe("Halted");
    expect(advance(r, at(100_000), new Map(), settings).rollout.waves[1]?.startedAt).toBeUndefined();
    const resumed = command(r, "resume", at(200_000), "alice");
    expect(resumed).toMatchObject({ state: "Progressing", forgiven: 1 });
    const s = advance(resumed, at(200_001), new Map(), settings);
    expect(s.rollout.state).toBe("Progressing");
    expect(s.rollout.waves[0]?.bakedAt).toBeDefined();
    expect(s.rollout.waves[1]?.startedAt).toBeDefined();
  });
});

describe("pause, resume, abort", () => {
  it("pause holds the next wave; resume starts it", () => {
    let r = advance(start(), at(0), new Map(), settings).rollout;
    r = command(r, "pause", at(100), "bob");
    expect(r.state).toBe("Paused");
    expect(r.reason).toContain("bob");
    r = advance(r, at(1000), reportsOf([["t1", healthy(hB, 500)]]), settings).rollout;
    r = advance(r, at(12_000), new Map(), settings).rollout;
    r = advance(r, at(13_000), reportsOf([["t1", healthy(hB, 12_500)]]), settings).rollout;
    expect(r.waves[0]?.bakedAt).toBeDefined();
    expect(r.waves[1]?.startedAt).toBeUndefined();
    const s = advance(command(r, "resume", at(20_000), "bob"), at(20_000), new Map(), settings);
    expect(s.rollout.waves[1]?.startedAt).toBeDefined();
  });

  it("abort returns every unit to its baseline; resume starts again from the first wave", () => {
    let r = advance(start(), at(0), new Map(), settings).rollout;
    r = advance(r, at(1000), reportsOf([["t1", healthy(hB, 500)]]), settings).rollout;
    const aborted = command(r, "abort", at(2000), "carol");
    expect(aborted).toMatchObject({ state: "Halted", aborted: true });
    expect(assignment(aborted, "t1")).toEqual({ hash: hA, role: "settled" });
    expect(advance(aborted, at(100_000), new Map(), settings).changed).toBe(false);
    const again = command(aborted, "resume", at(3000), "carol");
    expect(again).toMatchObject({ state: "Progressing", aborted: false, done: {}, failed: {} });
    expect(again.waves.every((w) => w.startedAt === undefined)).toBe(true);
  });

  it("refuses what makes no sense, saying why", () => {
    const r = advance(start(), at(0), new Map(), settings).rollout;
    expect(() => command(r, "resume", at(1), "x")).toThrow(CommandRefused);
    expect(() => command(command(r, "pause", at(1), "x"), "pause", at(2), "x")).toThrow(/not Progressing/);
    expect(() => command(initialRollout(A, at(0)), "abort", at(1), "x")).toThrow(/Completed; there is nothing to abort/);
  });
});

describe("a catalogue change during a rollout", () => {
  it("supersedes it in order: confirmed units keep the newer catalogue as baseline, units in flight go back", () => {
    const lenient = { ...settings, waves: parseWaves("3"), maxFailures: 5 };
    let r = advance(start(lenient), at(0), new Map(), lenient).rollout; // t1, t2, t3 started
    r = advance(r, at(500), reportsOf([["t1", healthy(hB, 400)]]), lenient).rollout;
    r = recordFailure(r, "t2", "x", at(600)) as Rollout;
    expect(baselineAfter(r)).toEqual({ from: hA, baseline: { t1: hB } });
    const next = createRollout(r, {
      id: "r2",
      now: at(1000),
      target: { hash: hC, catalogue: C },
      affected: units,
      pool: undefined,
      unaffected: 0,
      settings: lenient,
    });
    expect(next).toMatchObject({ id: "r2", from: hA, to: hC, baseline: { t1: hB }, state: "Progressing", done: {}, failed: {} });
    expect(Object.keys(next.catalogues).sort()).toEqual([hA, hB, hC].sort());
    expect(assignment(next, "t1").hash).toBe(hB);
    expect(assignment(next, "t3").hash).toBe(hA);
    expect(next.version).toBe(r.version + 1);
  });

  it("after a completed rollout starts from its catalogue; with nothing changed it is Completed at once", () => {
    const done: Rollout = { ...start(), state: "Completed" };
    const next = createRollout(done, {
      id: "r2",
      now: at(1),
      target: { hash: hC, catalogue: C },
      affected: [],
      pool: undefined,
      unaffected: 7,
      settings,
    });
    expect(next).toMatchObject({ from: hB, to: hC, state: "Completed", baseline: {}, unaffected: 7 });
  });
});

describe("what a catalogue change changes", () => {
  it("names the apps whose settings differ, and leaves out pinned ones", () => {
    expect(describeChanges(changesFor(undefined, A, B))).toBe("orders 1.0.0 -> 1.5.0");
    expect(changesFor({ orders: { version: "1.2.0" } }, A, B)).toEqual([]);
    expect(changesFor({ orders: { desiredCount: 3 } }, A, B)).toEqual([{ app: "orders", from: "1.0.0", to: "1.5.0" }]);
    const bigger: Catalogue = { apps: { ...A.apps, users: { ...A.apps.users, memory: "1024" } } };
    expect(describeChanges(changesFor(undefined, A, bigger))).toBe("users 1.0.0 (settings changed)");
  });
});
