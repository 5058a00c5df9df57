import { describe, expect, it } from "vitest";
import { formWaves, orderUnits, parseWaves, WaveSpecError } from "../../src/rollouts/waves.js";

const tenants = (n: number, ring?: (i: number) => number | undefined) =>
  Array.from({ length: n }, (_, i) => {
    const r = ring?.(i);
    return { key: `t${String(i).padStart(3, "0")}`, ...(r !== undefined ? { ring: r } : {}) };
  });

describe("ROLLOUT_WAVES", () => {
  it("reads counts and shares", () => {
    expect(parseWaves("1, 10%,50%,100%")).toEqual([
      { kind: "count", n: 1 },
      { kind: "percent", p: 10 },
      { kind: "percent", p: 50 },
      { kind: "percent", p: 100 },
    ]);
  });

  it.each([
    { spec: "", problem: /at least one wave/ },
    { spec: "0", problem: /"0" is neither/ },
    { spec: "ten", problem: /"ten" is neither/ },
    { spec: "150%", problem: /1% to 100%/ },
    { spec: "0%", problem: /1% to 100%/ },
    { spec: "5,3", problem: /"3" must reach more tenants than "5"/ },
    { spec: "50%,50%", problem: /must reach more/ },
  ])("refuses $spec, naming the entry", ({ spec, problem }) => {
    expect(() => parseWaves(spec)).toThrow(WaveSpecError);
    expect(() => parseWaves(spec)).toThrow(problem);
  });
});

describe("waves", () => {
  const steps = parseWaves("1,10%,50%,100%");

  it("grow cumulatively over the fleet: a canary, a tenth, half, all", () => {
    const waves = formWaves(tenants(100), steps, undefined);
    expect(waves.map((w) => w.length)).toEqual([1, 9, 40, 50]);
    expect(waves.flat()).toEqual(tenants(100).map((t) => t.key));
  });

  it("leave out steps that would add no one, and always end with everyone", () => {
    expect(formWaves(tenants(4), steps, undefined).map((w) => w.length)).toEqual([1, 1, 2]);
    expect(formWaves(tenants(5), parseWaves("2"), undefined).map((w) => w.length)).toEqual([2, 3]);
    expect(formWaves(tenants(1), steps, undefined)).toEqual([["t000"]]);
    expect(formWaves([], steps, undefined)).toEqual([]);
  });

  it("order tenants by ring, lower first, none last, then by id", () => {
    const order = orderUnits([{ key: "b" }, { key: "a", ring: 2 }, { key: "c", ring: 0 }, { key: "d", ring: 2 }, { key: "A" }]);
    expect(order.map((u) => u.key)).toEqual(["c", "a", "d", "A", "b"]);
  });

  it("put the pool in a wave of its own after the canary when no record has a ring", () => {
    const waves = formWaves(tenants(20), steps, ":pool");
    expect(waves.map((w) => w.length)).toEqual([1, 1, 1, 8, 10]);
    expect(waves[1]).toEqual([":pool"]);
  });

  it("put the pool right after the wave that completes the first ring", () => {
    // Ring 0 is t000-t002: the waves of 1, 2 and 10 tenants reach it all at the third, and the pool follows that one.
    const waves = formWaves(
      tenants(20, (i) => (i < 3 ? 0 : i < 6 ? 1 : undefined)),
      steps,
      ":pool",
    );
    expect(waves.map((w) => w.length)).toEqual([1, 1, 8, 1, 10]);
    expect(waves[2]?.[0]).toBe("t002");
    expect(waves[3]).toEqual([":pool"]);
  });

  it("make the pool the only wave when no silo tenant changes", () => {
    expect(formWaves([], steps, ":pool")).toEqual([[":pool"]]);
  });
});
