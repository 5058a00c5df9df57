import type { DesiredRoute, ObservedRoute, PlannedCall, RouteAction } from "../ports.js";

/**
 * What one tenant's listener rule needs next (docs/design.md "Contract:
 * routing"), decided once from the desired and the observed rule: the
 * reconciler executes the step and `tenantctl plan` prints it, so the two
 * cannot disagree. Pure; every step carries the reason plan shows.
 *
 * desired undefined means "this tenant should have no rule of its own" (a
 * basic tenant that is not suspended: the pool's catch-all serves it).
 */
export type RouteStep =
  | { readonly kind: "create"; readonly desired: DesiredRoute; readonly reason: string }
  | {
      readonly kind: "update";
      readonly desired: DesiredRoute;
      readonly observed: ObservedRoute;
      /** Which of the rule's two mutable parts differ: each is one call (ModifyRule, SetRulePriorities). */
      readonly changes: { readonly action: boolean; readonly priority: boolean };
      readonly reason: string;
    }
  | { readonly kind: "delete"; readonly observed: ObservedRoute; readonly reason: string }
  | { readonly kind: "ready"; readonly observed: ObservedRoute | undefined; readonly reason: string }
  /** Nothing the controller may do fixes it: a rule it does not own answers for the tenant's header. */
  | { readonly kind: "fail"; readonly observed: ObservedRoute; readonly terminal: true; readonly reason: string };

export function decideRoute(desired: DesiredRoute | undefined, observed: ObservedRoute | undefined): RouteStep {
  if (observed !== undefined && !observed.managed) {
    // Whether we want a rule or not, one we do not own decides where this
    // tenant's requests go; changing or removing it is a person's call
    // (ownership contract), and until then the tenant is not routed as specified.
    const wanted = desired === undefined ? "the pool should serve the tenant" : `the tenant should ${describeAction(desired.action)}`;
    return {
      kind: "fail",
      observed,
      terminal: true,
      reason: `listener rule ${observed.ruleArn} matches header tenantPath=${observed.tenantId} but lacks managed-by=ecs-tenant-operator; ${wanted}, so it must be removed or tagged by hand`,
    };
  }
  if (desired === undefined) {
    if (observed === undefined)
      return { kind: "ready", observed, reason: "no rule wanted and none exists: the pool's catch-all serves the tenant" };
    return {
      kind: "delete",
      observed,
      reason: `the tenant needs no rule of its own (the pool serves it); the rule would still ${describeAction(observed.action)}`,
    };
  }
  if (observed === undefined) {
    return {
      kind: "create",
      desired,
      reason: `no rule for header tenantPath=${desired.tenantId}: create one at priority ${desired.priority} to ${describeAction(desired.action)}`,
    };
  }
  if (observed.listenerArn !== desired.listenerArn) {
    // A rule cannot move between listeners. Removing the old one first means a
    // short gap on the old listener but never two rules for the tenant that
    // nothing tracks; the next decision (observed undefined) creates the new one.
    return {
      kind: "delete",
      observed,
      reason: `the tenant's rule is on listener ${observed.listenerArn} but the tenant is placed on ${desired.listenerArn}: delete it, then create it there`,
    };
  }
  const action = !sameAction(desired.action, observed.action);
  const priority = desired.priority !== observed.priority;
  if (!action && !priority)
    return {
      kind: "ready",
      observed,
      reason: `the rule at priority ${observed.priority} already ${describeAction(observed.action, "present")}`,
    };
  const parts = [
    ...(action ? [`action: ${describeAction(observed.action, "noun")} -> ${describeAction(desired.action, "noun")}`] : []),
    ...(priority ? [`priority: ${observed.priority} -> ${desired.priority}`] : []),
  ];
  return { kind: "update", desired, observed, changes: { action, priority }, reason: parts.join("; ") };
}

/** The ELBv2 calls a step makes, for `tenantctl plan`; ready and fail make none. */
export function routeCalls(step: RouteStep): readonly PlannedCall[] {
  switch (step.kind) {
    case "create":
      return [
        {
          call: "elasticloadbalancing:CreateRule",
          target: `${step.desired.listenerArn} priority ${step.desired.priority}`,
          reason: step.reason,
        },
      ];
    case "update":
      return [
        ...(step.changes.action ? [{ call: "elasticloadbalancing:ModifyRule", target: step.observed.ruleArn, reason: step.reason }] : []),
        ...(step.changes.priority
          ? [{ call: "elasticloadbalancing:SetRulePriorities", target: step.observed.ruleArn, reason: step.reason }]
          : []),
      ];
    case "delete":
      return [{ call: "elasticloadbalancing:DeleteRule", target: step.observed.ruleArn, reason: step.reason }];
    case "ready":
    case "fail":
      return [];
  }
}

/** True when the observed action already does what the desired one asks; "other" never does. */
export function sameAction(desired: RouteAction, observed: ObservedRoute["action"]): boolean {
  if (desired.kind === "deny") return observed.kind === "deny";
  return observed.kind === "forward" && observed.targetGroupArn === desired.targetGroupArn;
}

function describeAction(action: ObservedRoute["action"], form: "verb" | "present" | "noun" = "verb"): string {
  switch (action.kind) {
    case "forward":
      return form === "noun"
        ? `forward to ${action.targetGroupArn}`
        : `${form === "present" ? "forwards" : "forward"} to ${action.targetGroupArn}`;
    case "deny":
      return form === "noun" ? "deny (403)" : `${form === "present" ? "answers" : "answer"} 403 (suspended)`;
    case "other":
      return form === "noun"
        ? "an action the controller did not write"
        : `${form === "present" ? "does" : "do"} something the controller did not write`;
  }
}
