import { describe, expect, it } from "vitest";
import type { DesiredRoute, ObservedRoute } from "../../src/ports.js";
import { decideRoute, routeCalls, type RouteStep } from "../../src/tiers/route-decide.js";

const LISTENER = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/saas/1/2";
const OTHER_LISTENER = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/saas-2/3/4";
const RULE = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/saas/1/2/99";
const TG = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/acme-rproxy/1";
const TG2 = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/acme-rproxy-2/2";

const forward = (priority = 7, targetGroupArn = TG): DesiredRoute => ({
  tenantId: "acme",
  listenerArn: LISTENER,
  priority,
  action: { kind: "forward", targetGroupArn },
});
const deny = (priority = 7): DesiredRoute => ({ tenantId: "acme", listenerArn: LISTENER, priority, action: { kind: "deny" } });
const observed = (over: Partial<ObservedRoute> = {}): ObservedRoute => ({
  ruleArn: RULE,
  listenerArn: LISTENER,
  tenantId: "acme",
  priority: 7,
  action: { kind: "forward", targetGroupArn: TG },
  managed: true,
  ...over,
});

describe("decideRoute", () => {
  const cases: {
    reason: string;
    desired: DesiredRoute | undefined;
    observed: ObservedRoute | undefined;
    kind: RouteStep["kind"];
    changes?: { action: boolean; priority: boolean };
    calls: string[];
    says: RegExp;
  }[] = [
    {
      reason: "a basic tenant without a rule is served by the pool: nothing to do",
      desired: undefined,
      observed: undefined,
      kind: "ready",
      calls: [],
      says: /pool/,
    },
    {
      reason: "a silo tenant without a rule gets one",
      desired: forward(),
      observed: undefined,
      kind: "create",
      calls: ["elasticloadbalancing:CreateRule"],
      says: /priority 7/,
    },
    {
      reason: "a suspended tenant without a rule gets a deny rule",
      desired: deny(),
      observed: undefined,
      kind: "create",
      calls: ["elasticloadbalancing:CreateRule"],
      says: /403/,
    },
    {
      reason: "a rule that already forwards to the right group at the right priority is left alone",
      desired: forward(),
      observed: observed(),
      kind: "ready",
      calls: [],
      says: /forwards to/,
    },
    {
      reason: "a deny rule already in place is left alone",
      desired: deny(),
      observed: observed({ action: { kind: "deny" } }),
      kind: "ready",
      calls: [],
      says: /403/,
    },
    {
      reason: "suspending a silo tenant flips its forward to a deny: one ModifyRule",
      desired: deny(),
      observed: observed(),
      kind: "update",
      changes: { action: true, priority: false },
      calls: ["elasticloadbalancing:ModifyRule"],
      says: /forward to .* -> deny/,
    },
    {
      reason: "resuming flips the deny back to a forward",
      desired: forward(),
      observed: observed({ action: { kind: "deny" } }),
      kind: "update",
      changes: { action: true, priority: false },
      calls: ["elasticloadbalancing:ModifyRule"],
      says: /deny \(403\) -> forward/,
    },
    {
      reason: "a tier move to a new target group re-points the forward",
      desired: forward(7, TG2),
      observed: observed(),
      kind: "update",
      changes: { action: true, priority: false },
      calls: ["elasticloadbalancing:ModifyRule"],
      says: /acme-rproxy-2/,
    },
    {
      reason: "an action the controller did not write (weighted forward, redirect) is replaced",
      desired: forward(),
      observed: observed({ action: { kind: "other" } }),
      kind: "update",
      changes: { action: true, priority: false },
      calls: ["elasticloadbalancing:ModifyRule"],
      says: /did not write/,
    },
    {
      reason: "only the priority differs: one SetRulePriorities and no ModifyRule",
      desired: forward(12),
      observed: observed(),
      kind: "update",
      changes: { action: false, priority: true },
      calls: ["elasticloadbalancing:SetRulePriorities"],
      says: /priority: 7 -> 12/,
    },
    {
      reason: "both differ: both calls",
      desired: deny(12),
      observed: observed(),
      kind: "update",
      changes: { action: true, priority: true },
      calls: ["elasticloadbalancing:ModifyRule", "elasticloadbalancing:SetRulePriorities"],
      says: /priority: 7 -> 12/,
    },
    {
      reason: "a resumed basic tenant's deny rule is removed so the pool serves it again",
      desired: undefined,
      observed: observed({ action: { kind: "deny" } }),
      kind: "delete",
      calls: ["elasticloadbalancing:DeleteRule"],
      says: /pool/,
    },
    {
      reason: "a silo tenant moved to basic loses its forward rule",
      desired: undefined,
      observed: observed(),
      kind: "delete",
      calls: ["elasticloadbalancing:DeleteRule"],
      says: /pool/,
    },
    {
      reason: "a rule on a listener the tenant is no longer placed on is deleted (a rule cannot move)",
      desired: forward(),
      observed: observed({ listenerArn: OTHER_LISTENER }),
      kind: "delete",
      calls: ["elasticloadbalancing:DeleteRule"],
      says: /placed on/,
    },
    {
      reason: "an unmanaged rule where we want one is in the way: terminal, no calls",
      desired: forward(),
      observed: observed({ managed: false }),
      kind: "fail",
      calls: [],
      says: /lacks managed-by/,
    },
    {
      reason: "an unmanaged rule that already matches is still not ours: terminal rather than ready",
      desired: forward(),
      observed: observed({ managed: false }),
      kind: "fail",
      calls: [],
      says: /by hand/,
    },
    {
      reason: "an unmanaged rule routes a tenant the pool should serve: terminal, never deleted",
      desired: undefined,
      observed: observed({ managed: false, action: { kind: "deny" } }),
      kind: "fail",
      calls: [],
      says: /pool should serve/,
    },
  ];

  for (const c of cases) {
    it(c.reason, () => {
      const step = decideRoute(c.desired, c.observed);
      expect(step.kind).toBe(c.kind);
      expect(step.reason).toMatch(c.says);
      if (c.changes !== undefined) {
        expect(step.kind === "update" ? step.changes : undefined).toEqual(c.changes);
      }
      if (step.kind === "fail") expect(step.terminal).toBe(true);
      const calls = routeCalls(step);
      expect(calls.map((x) => x.call)).toEqual(c.calls);
      for (const call of calls) expect(call.reason).toBe(step.reason);
    });
  }

  it("update and delete steps carry the observed rule they act on; create carries the desired one", () => {
    const o = observed();
    const up = decideRoute(deny(), o);
    expect(up.kind === "update" && up.observed).toBe(o);
    const del = decideRoute(undefined, o);
    expect(del.kind === "delete" && del.observed).toBe(o);
    const d = forward();
    const cr = decideRoute(d, undefined);
    expect(cr.kind === "create" && cr.desired).toBe(d);
    expect(routeCalls(cr)[0]?.target).toBe(`${LISTENER} priority 7`);
    expect(routeCalls(up)[0]?.target).toBe(RULE);
  });
});
