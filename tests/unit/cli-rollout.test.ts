import { PassThrough, Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { CatalogueError, defaultCatalogue } from "../../src/apps/catalogue.js";
import type { Io } from "../../src/cli/command.js";
import { applyEdits } from "../../src/cli/commands/catalogue.js";
import { describeRollout, statusView } from "../../src/cli/commands/rollout.js";
import { main } from "../../src/cli/tenantctl.js";
import { catalogueHash, initialRollout, type Rollout } from "../../src/rollouts/model.js";
import { advance, createRollout, recordFailure } from "../../src/rollouts/planner.js";
import { parseWaves } from "../../src/rollouts/waves.js";

async function run(...args: string[]): Promise<{ code: number; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let err = "";
  stderr.on("data", (d: Buffer) => (err += d.toString()));
  // No endpoint is reached: every case here fails before any AWS call.
  const io: Io = { stdout, stderr, stdin: Readable.from([""]), env: { AWS_REGION: "us-east-1" } };
  return { code: await main(args, io), stderr: err };
}

describe("tenantctl catalogue set", () => {
  it("changes only what it names, and validates the result with the controller's rules", () => {
    const next = applyEdits(defaultCatalogue, [
      { app: "orders", field: "version", value: "1.5.0" },
      { app: "users", field: "desiredCount", value: "2" },
    ]);
    expect(next.apps.orders.version).toBe("1.5.0");
    expect(next.apps.users.desiredCount).toBe(2);
    expect(next.apps.products).toEqual(defaultCatalogue.apps.products);
    expect(() => applyEdits(defaultCatalogue, [{ app: "orders", field: "version", value: "-bad" }])).toThrow(CatalogueError);
    expect(() => applyEdits(defaultCatalogue, [{ app: "orders", field: "version", value: "-bad" }])).toThrow(/apps\.orders\.version/);
    expect(() => applyEdits(defaultCatalogue, [{ app: "orders", field: "desiredCount", value: "many" }])).toThrow(/desiredCount/);
  });

  it.each([
    { args: ["catalogue", "set"], problem: /set needs APP=VERSION/ },
    { args: ["catalogue", "set", "billing=1.0"], problem: /unknown app "billing"/ },
    { args: ["catalogue", "set", "orders"], problem: /not APP=VERSION/ },
    { args: ["catalogue", "set", "orders.cpu=512"], problem: /not APP=VERSION or APP\.FIELD=VALUE/ },
    { args: ["catalogue", "frobnicate"], problem: /unknown subcommand "frobnicate"/ },
    { args: ["rollout", "restart"], problem: /unknown subcommand "restart"/ },
  ])("refuses $args with a usage error", async ({ args, problem }) => {
    const { code, stderr } = await run(...args);
    expect(code).toBe(2);
    expect(stderr).toMatch(problem);
  });
});

describe("tenantctl rollout status", () => {
  const A = defaultCatalogue;
  const B = { apps: { ...A.apps, orders: { ...A.apps.orders, version: "1.5.0" } } };
  const settings = { waves: parseWaves("1,100%"), bakeMs: 0, maxFailures: 0, timeoutMs: 60_000 };
  const now = new Date("2026-12-01T10:00:00.000Z");
  let r: Rollout = createRollout(initialRollout(A, now), {
    id: "r-1",
    now,
    target: { hash: catalogueHash(B), catalogue: B },
    affected: [{ key: "t1" }, { key: "t2" }, { key: "t3" }],
    pool: ":pool",
    unaffected: 4,
    settings,
  });
  r = advance(r, now, new Map(), settings).rollout;
  r = recordFailure(r, "t1", "ECS deployment circuit breaker: tasks failed to start.", now) as Rollout;
  r = advance(r, new Date(now.getTime() + 1000), new Map(), settings).rollout;

  it("gives waves, tenants done, failed and pending, and the state, as data", () => {
    const view = statusView(r, undefined, catalogueHash(B));
    expect(view).toMatchObject({
      id: "r-1",
      state: "Halted",
      changes: "orders 1.0.0 -> 1.5.0",
      counts: { total: 4, done: 0, failed: 1, pending: 3, unaffected: 4 },
      failed: { t1: { reason: "ECS deployment circuit breaker: tasks failed to start." } },
    });
    expect(view.waves.map((w) => [w.wave, w.state, w.failed, w.pending])).toEqual([
      [1, "Baked", ["t1"], []],
      [2, "Pending", [], [":pool"]],
      [3, "Pending", [], ["t2", "t3"]],
    ]);
    expect(statusView(r, undefined, "another").catalogue).toMatch(/catalogue record changed/);
    expect(statusView(r, "apps.orders.version: bad", undefined).catalogue).toMatch(/invalid and ignored: apps\.orders\.version/);
  });

  it("reads as a table for people", () => {
    const text = describeRollout(statusView(r, undefined, undefined), new Date(now.getTime() + 60_000));
    expect(text).toMatch(/Rollout:\s+r-1 \(Halted\)/);
    expect(text).toMatch(/0 done, 1 failed, 3 pending of 4/);
    expect(text).toMatch(/the pool/);
    expect(text).toMatch(/Failed:[\s\S]*t1[\s\S]*tasks failed to start/);
  });
});
