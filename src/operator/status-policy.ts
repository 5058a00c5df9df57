import type { Phase, TenantStatus, Condition } from "../tenants/status.js";
import { mergeConditions } from "../tenants/status.js";
import type { Plan } from "../tiers/model.js";
import type { DetailType, StatusEvent } from "./ports.js";
import type { TenantSpec } from "../tenants/record.js";

/**
 * Pure decisions of a tenant reconcile: from what was found and done to the
 * status to write and the SBT events to send. Events are sent at least once:
 * each carries the spec hash it is about, and the status remembers which spec
 * hash was last announced so a resync does not announce it again.
 */
export interface Observation {
  readonly tenantId: string;
  readonly specHash: string;
  readonly previous: TenantStatus | undefined;
  readonly now: Date;
}

export type Situation =
  | { readonly kind: "invalid"; readonly message: string; readonly registrationId: string | undefined }
  | { readonly kind: "error"; readonly spec: TenantSpec; readonly message: string }
  | { readonly kind: "planned"; readonly spec: TenantSpec; readonly plan: Plan; readonly arns: OwnedArns };

export interface OwnedArns {
  readonly clusterArn?: string;
  readonly stackArn?: string;
  readonly serviceArns: readonly string[];
  readonly taskDefinitionArns: readonly string[];
}

export interface Decision {
  readonly status: TenantStatus;
  readonly events: readonly StatusEvent[];
  /** True when status differs from the previous one in anything but timestamps: worth a write. */
  readonly changed: boolean;
}

export function decide(obs: Observation, situation: Situation): Decision {
  const { phase, message, conditions } = phaseOf(situation);
  const prev = obs.previous;
  const at = obs.now.toISOString();
  const stamped: Condition[] = mergeConditions(
    prev?.conditions,
    conditions.map((c) => ({ ...c, lastTransitionTime: at })),
  );
  const events: StatusEvent[] = [];
  const spec = situation.kind === "invalid" ? undefined : situation.spec;
  const registrationId = situation.kind === "invalid" ? situation.registrationId : situation.spec.tenantRegistrationId;
  const tenantData = spec ? { tenantName: spec.tenantName, tier: spec.tier, ...(spec.email ? { email: spec.email } : {}) } : {};
  const event = (detailType: DetailType, registrationStatus: "Created" | "Failed" | "Deleted" | "InProgress", reason: string): StatusEvent => ({
    detailType,
    detail: {
      tenantId: obs.tenantId,
      ...(registrationId !== undefined ? { tenantRegistrationId: registrationId } : {}),
      jobOutput: { tenantData, tenantRegistrationData: { registrationStatus } },
      reason,
      specHash: obs.specHash,
      phase,
    },
  });

  // An announcement is owed once per spec hash and outcome; the marker in the
  // status says which (hash, outcome) was last announced.
  const announced = prev?.announced;
  let marker = announced;
  const owe = (outcome: string) => announced !== `${outcome}:${obs.specHash}`;
  const offboarding = spec?.sbtaws_active === false;
  if (phase === "Ready" && owe("ready")) {
    events.push(event("sbt_aws_provisionSuccess", "Created", "all services steady"));
    marker = `ready:${obs.specHash}`;
  } else if ((phase === "Failed" || phase === "Degraded") && !offboarding && owe("failed")) {
    events.push(event("sbt_aws_provisionFailure", "Failed", message));
    marker = `failed:${obs.specHash}`;
  } else if (phase === "Degraded" && offboarding && owe("deprovision-failed")) {
    events.push(event("sbt_aws_deprovisionFailure", "Failed", message));
    marker = `deprovision-failed:${obs.specHash}`;
  } else if (phase === "Deprovisioned" && owe("deprovisioned")) {
    events.push(event("sbt_aws_deprovisionSuccess", "Deleted", "all tenant resources removed"));
    marker = `deprovisioned:${obs.specHash}`;
  }
  if (prev?.phase !== phase) {
    events.push(event("tenantStatusChanged", phase === "Ready" ? "Created" : phase === "Failed" ? "Failed" : phase === "Deprovisioned" ? "Deleted" : "InProgress", `${prev?.phase ?? "New"} -> ${phase}: ${message}`));
  }

  const arns = situation.kind === "planned" ? situation.arns : undefined;
  const status: TenantStatus = {
    phase,
    conditions: stamped,
    observedSpecHash: obs.specHash,
    message,
    lastReconciledAt: at,
    ...(arns?.clusterArn ? { clusterArn: arns.clusterArn } : {}),
    ...(arns ? { serviceArns: [...arns.serviceArns].sort(), taskDefinitionArns: [...arns.taskDefinitionArns].sort() } : {}),
    ...(arns?.stackArn ? { stackArn: arns.stackArn } : {}),
    ...(marker !== undefined ? { announced: marker } : {}),
  };
  return { status, events, changed: prev === undefined || semantic(prev) !== semantic(status) };
}

function semantic(s: TenantStatus): string {
  const { lastReconciledAt: _at, conditions, ...rest } = s;
  return JSON.stringify({ ...rest, conditions: conditions.map(({ lastTransitionTime: _t, ...c }) => c) });
}

function cond(type: string, ok: boolean | "unknown", reason: string, message: string): Omit<Condition, "lastTransitionTime"> {
  return { type, status: ok === "unknown" ? "Unknown" : ok ? "True" : "False", reason, message };
}

function phaseOf(s: Situation): { phase: Phase; message: string; conditions: Omit<Condition, "lastTransitionTime">[] } {
  if (s.kind === "invalid") {
    return { phase: "Failed", message: `invalid tenant record: ${s.message}`, conditions: [cond("Valid", false, "InvalidRecord", s.message)] };
  }
  const valid = cond("Valid", true, "RecordValid", "");
  if (s.kind === "error") {
    const type = s.spec.sbtaws_active === false ? "Deprovisioned" : "Ready";
    return { phase: "Degraded", message: s.message, conditions: [valid, cond(type, false, "ReconcileError", s.message)] };
  }
  const { plan, spec } = s;
  const offboarding = spec.sbtaws_active === false;
  if (offboarding) {
    if (plan.problems.length > 0) {
      const m = plan.problems.join("; ");
      return { phase: "Degraded", message: m, conditions: [valid, cond("Deprovisioned", false, "Blocked", m)] };
    }
    if (plan.converged) return { phase: "Deprovisioned", message: "all tenant resources removed", conditions: [valid, cond("Deprovisioned", true, "Removed", "")] };
    const m = describeProgress(plan);
    return { phase: "Deprovisioning", message: m, conditions: [valid, cond("Deprovisioned", false, "Removing", m)] };
  }
  if (plan.problems.length > 0) {
    const m = plan.problems.join("; ");
    return { phase: "Degraded", message: m, conditions: [valid, cond("Ready", false, "Problem", m)] };
  }
  if (plan.converged) return { phase: "Ready", message: "all services steady", conditions: [valid, cond("Ready", true, "Steady", "")] };
  const m = describeProgress(plan);
  return { phase: "Provisioning", message: m, conditions: [valid, cond("Ready", false, "Converging", m)] };
}

/** A person's summary of what is going on: the calls being made, else the first thing awaited. */
export function describeProgress(plan: Plan): string {
  if (plan.actions.length > 0) {
    const counts = new Map<ActionKind, number>();
    for (const a of plan.actions) counts.set(a.kind, (counts.get(a.kind) ?? 0) + 1);
    return [...counts].map(([kind, n]) => SUMMARY[kind](n)).join(", ");
  }
  const [first, ...rest] = plan.waitingFor;
  return rest.length > 0 ? `${first ?? ""} (and ${rest.length} more)` : (first ?? "");
}

type ActionKind = Plan["actions"][number]["kind"];
const counted = (verb: string, one: string, many: string) => (n: number) => `${verb} ${n} ${n === 1 ? one : many}`;
const SUMMARY: Record<ActionKind, (n: number) => string> = {
  createCluster: counted("creating", "cluster", "clusters"),
  registerTaskDefinition: counted("registering", "task definition", "task definitions"),
  createService: counted("creating", "service", "services"),
  updateService: counted("updating", "service", "services"),
  deleteService: counted("deleting", "service", "services"),
  deleteCluster: counted("deleting", "cluster", "clusters"),
};
