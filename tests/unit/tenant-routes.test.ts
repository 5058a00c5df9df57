import { describe, expect, it } from "vitest";
import type { Fence } from "../../src/ports.js";
import { TenantRoutes, type Priorities, type RoutePlacement } from "../../src/operator/tenant-routes.js";
import { ListenersFullError } from "../../src/providers/priority-allocator.js";
import { FakeRoutes } from "../support/fake-ports.js";

const FIRST = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/a/1/1";
const SECOND = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/b/2/2";
const held: Fence = { assertHeld: () => undefined };
const FULL = "all 2 listeners hold 2 tenants (TENANTS_PER_LISTENER); add a listener to LISTENER_ARNS";

/** Placements handed out as the test says: a listener per tenant, or none (every listener full). */
class ScriptedPlacements implements Priorities {
  readonly placed = new Map<string, RoutePlacement>();
  readonly calls: string[] = [];
  constructor(readonly plan: Readonly<Record<string, RoutePlacement | "full">>) {}
  async placement(tenantId: string) {
    return this.placed.get(tenantId);
  }
  async place(tenantId: string) {
    this.calls.push(`place ${tenantId}`);
    const have = this.placed.get(tenantId);
    if (have !== undefined) return have;
    const p = this.plan[tenantId];
    if (p === undefined || p === "full") throw new ListenersFullError(FULL);
    this.placed.set(tenantId, p);
    return p;
  }
  async release(tenantId: string) {
    return this.placed.delete(tenantId);
  }
  async proposal(tenantId: string) {
    const p = this.placed.get(tenantId) ?? this.plan[tenantId];
    return p === undefined || p === "full" ? { full: FULL } : p;
  }
}

const forward = { kind: "forward", targetGroupArn: "arn:tg/t" } as const;

describe("TenantRoutes on a listener pool", () => {
  it("puts the rule on the tenant's placed listener at its priority there, and reports both in the route", async () => {
    const rules = new FakeRoutes();
    const routes = new TenantRoutes(rules, new ScriptedPlacements({ t: { listenerArn: SECOND, priority: 7 } }), FIRST);
    const out = await routes.converge("t", forward, undefined, held);
    expect(out).toEqual({ kind: "ready", route: { listenerArn: SECOND, priority: 7, ruleArn: "rule/1" } });
    expect(rules.of("t")).toMatchObject({ listenerArn: SECOND, priority: 7, action: forward });
  });

  it("a placement without a listener (made before the pool) is on the first listener", async () => {
    const rules = new FakeRoutes();
    const routes = new TenantRoutes(rules, new ScriptedPlacements({ t: { priority: 3 } }), FIRST);
    const out = await routes.converge("t", { kind: "deny" }, undefined, held);
    expect(out).toMatchObject({ kind: "ready", route: { listenerArn: FIRST, priority: 3 } });
  });

  it("every listener full: blocked with the message and a retryable error, no rule made, nothing removed", async () => {
    const rules = new FakeRoutes();
    const routes = new TenantRoutes(rules, new ScriptedPlacements({ t: "full" }), FIRST);
    const out = await routes.converge("t", forward, undefined, held);
    expect(out.kind).toBe("blocked");
    if (out.kind !== "blocked") return;
    expect(out.reason).toContain("add a listener");
    expect(out.retry).toBeInstanceOf(ListenersFullError);
    expect(rules.calls).toEqual([]);
  });

  it("a tenant with a route keeps it without asking for a placement; without one, its rule is looked for on its placed listener", async () => {
    const rules = new FakeRoutes();
    const placements = new ScriptedPlacements({ t: { listenerArn: SECOND, priority: 4 } });
    const routes = new TenantRoutes(rules, placements, FIRST);
    const first = await routes.converge("t", forward, undefined, held);
    if (first.kind !== "ready" || first.route === undefined) throw new Error("expected a route");
    placements.calls.length = 0;
    expect(await routes.converge("t", forward, first.route, held)).toEqual(first);
    expect(placements.calls).toEqual([]);

    // The status write lost after CreateRule (a crash): the rule is found on the placed listener and kept, not made twice.
    rules.calls.length = 0;
    const again = await routes.converge("t", forward, undefined, held);
    expect(again).toEqual(first);
    expect(rules.calls).toEqual([]);
  });

  it("plan shows the listener and priority a tenant would be placed on, or that none has room", async () => {
    const routes = new TenantRoutes(
      new FakeRoutes(),
      new ScriptedPlacements({ t: { listenerArn: SECOND, priority: 2 }, u: "full" }),
      FIRST,
    );
    expect(await routes.preview("t", forward, undefined)).toEqual([
      expect.objectContaining({ call: "elasticloadbalancing:CreateRule", target: `${SECOND} priority 2` }),
    ]);
    expect(await routes.preview("u", forward, undefined)).toEqual([
      { call: "elasticloadbalancing:CreateRule", target: "no listener: every one is full", reason: FULL },
    ]);
  });

  it("removeAny looks for a deleted record's rule on the listener it was placed on", async () => {
    const rules = new FakeRoutes();
    const placements = new ScriptedPlacements({ t: { listenerArn: SECOND, priority: 1 } });
    const routes = new TenantRoutes(rules, placements, FIRST);
    await routes.converge("t", forward, undefined, held);
    await routes.removeAny("t", held);
    expect(rules.rules.size).toBe(0);
  });
});
