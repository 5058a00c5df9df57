import type { Phase, TenantStatus, Condition, LastError, RecentEvent } from "../tenants/status.js";
import { mergeConditions, RECENT_EVENT_REASON_CHARS, RECENT_EVENTS_KEPT } from "../tenants/status.js";
import type { Plan } from "../tiers/model.js";
import type { DetailType, StatusEvent } from "../ports.js";
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
  /** API_GATEWAY_URL: the tenant's API, for SBT's tenantConfig. @default "" */
  readonly apiGatewayUrl?: string;
  /** This reconcile's failure, if it failed; absent, a previous one is cleared (the reconcile got through). */
  readonly lastError?: LastError;
}

export type Situation =
  | { readonly kind: "invalid"; readonly message: string; readonly registrationId: string | undefined }
  | { readonly kind: "error"; readonly spec: TenantSpec; readonly message: string }
  /** A valid record that cannot be served as it stands (a tenant id equal to another's ignoring case). */
  | { readonly kind: "refused"; readonly spec: TenantSpec; readonly reason: string; readonly message: string }
  | {
      readonly kind: "planned";
      readonly spec: TenantSpec;
      readonly plan: Plan;
      readonly arns: OwnedArns;
      readonly data?: DataFields;
      /** The plan's problem is this fleet rollout failing on the tenant: its provisionFailure is owed once per rollout. */
      readonly rolloutFailure?: { readonly rolloutId: string };
    };

/**
 * The status fields about the tenant's data and routing. They are carried
 * over from the previous status unless the situation sets them: losing a
 * migration checkpoint or a backup location to an error report would be
 * losing the way back to the data.
 */
const DATA_KEYS = ["tables", "servingTier", "migration", "route", "backup", "caseClaimed", "identity", "deployments"] as const;
/** Set to undefined (present, but undefined) to clear one. */
export type DataFields = { -readonly [K in (typeof DATA_KEYS)[number]]?: TenantStatus[K] | undefined };

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
  const data = dataFields(prev, situation.kind === "planned" ? situation.data : undefined);
  const spec = situation.kind === "invalid" ? undefined : situation.spec;
  const registrationId = situation.kind === "invalid" ? situation.registrationId : situation.spec.tenantRegistrationId;
  // SBT's tenant-registration service PATCHes the registration with
  // jobOutput.tenantData; tenantConfig, a JSON string, is what its web app
  // reads to sign the tenant's users in.
  const identity = data.identity;
  const tenantConfig =
    identity &&
    JSON.stringify({ userPoolId: identity.userPoolId, appClientId: identity.appClientId, apiGatewayUrl: obs.apiGatewayUrl ?? "" });
  const tenantData = spec
    ? {
        tenantName: spec.tenantName,
        tier: spec.tier,
        ...(spec.email ? { email: spec.email } : {}),
        ...(tenantConfig ? { tenantConfig } : {}),
      }
    : {};
  const event = (
    detailType: DetailType,
    registrationStatus: "Created" | "Failed" | "Deleted" | "InProgress",
    reason: string,
  ): StatusEvent => ({
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
  const suspending = spec?.suspended === true && !offboarding;
  const resuming = !suspending && announced?.startsWith("suspended:") === true;
  if (phase === "Ready" && owe("ready")) {
    // Coming back from a suspension is an activation; anything else, a provisioning.
    if (resuming) events.push(event("sbt_aws_activateSuccess", "Created", "tenant resumed: routing restored, services running"));
    else events.push(event("sbt_aws_provisionSuccess", "Created", "all services steady"));
    marker = `ready:${obs.specHash}`;
  } else if (phase === "Suspended" && owe("suspended")) {
    events.push(event("sbt_aws_deactivateSuccess", "Created", "tenant suspended: requests refused (403), services scaled to 0; data kept"));
    marker = `suspended:${obs.specHash}`;
  } else if ((phase === "Failed" || phase === "Degraded") && suspending && owe("deactivate-failed")) {
    events.push(event("sbt_aws_deactivateFailure", "Failed", message));
    marker = `deactivate-failed:${obs.specHash}`;
  } else if ((phase === "Failed" || phase === "Degraded") && resuming && owe("activate-failed")) {
    events.push(event("sbt_aws_activateFailure", "Failed", message));
    marker = `activate-failed:${obs.specHash}`;
  } else if ((phase === "Failed" || phase === "Degraded") && !offboarding && owe(failedOutcome(situation))) {
    events.push(event("sbt_aws_provisionFailure", "Failed", message));
    marker = `${failedOutcome(situation)}:${obs.specHash}`;
  } else if (phase === "Degraded" && offboarding && owe("deprovision-failed")) {
    events.push(event("sbt_aws_deprovisionFailure", "Failed", message));
    marker = `deprovision-failed:${obs.specHash}`;
  } else if (phase === "Deprovisioned" && owe("deprovisioned")) {
    const success = event("sbt_aws_deprovisionSuccess", "Deleted", "all tenant resources removed");
    const backup = data.backup;
    events.push(
      backup ? { ...success, detail: { ...success.detail, backup: { location: backup.location, counts: backup.counts } } } : success,
    );
    marker = `deprovisioned:${obs.specHash}`;
  }
  if (prev?.phase !== phase) {
    events.push(
      event(
        "tenantStatusChanged",
        phase === "Ready" ? "Created" : phase === "Failed" ? "Failed" : phase === "Deprovisioned" ? "Deleted" : "InProgress",
        `${prev?.phase ?? "New"} -> ${phase}: ${message}`,
      ),
    );
  }

  const arns = situation.kind === "planned" ? situation.arns : undefined;
  const recentEvents = remember(prev?.recentEvents, events, at);
  const status: TenantStatus = {
    phase,
    conditions: stamped,
    observedSpecHash: obs.specHash,
    message,
    lastReconciledAt: at,
    // A status written before phaseSince existed starts counting at its next write.
    phaseSince: prev?.phase === phase ? (prev.phaseSince ?? at) : at,
    ...(obs.lastError !== undefined ? { lastError: obs.lastError } : {}),
    ...(arns?.clusterArn ? { clusterArn: arns.clusterArn } : {}),
    ...(arns ? { serviceArns: [...arns.serviceArns].sort(), taskDefinitionArns: [...arns.taskDefinitionArns].sort() } : {}),
    ...(arns?.stackArn ? { stackArn: arns.stackArn } : {}),
    ...(marker !== undefined ? { announced: marker } : {}),
    ...(recentEvents.length > 0 ? { recentEvents } : {}),
    ...data,
  };
  return { status, events, changed: prev === undefined || semantic(prev) !== semantic(status) };
}

/**
 * The status after a failed reconcile that is not reported as a phase of its
 * own (a transient failure below the Degraded threshold): the previous status
 * untouched, spec hash and announcements included, so nothing is announced
 * and nothing looks observed that was not, plus lastError. A tenant never
 * reported before is Pending, so `tenantctl` shows why it is not progressing.
 */
export function failureStatus(obs: Pick<Observation, "specHash" | "previous" | "now">, lastError: LastError): TenantStatus {
  const prev = obs.previous;
  const at = obs.now.toISOString();
  if (prev !== undefined) return { ...prev, phaseSince: prev.phaseSince ?? at, lastError };
  const message = `first reconcile failed; retrying: ${lastError.type}: ${lastError.message}`;
  return {
    phase: "Pending",
    conditions: [
      { ...cond("Valid", true, "RecordValid", ""), lastTransitionTime: at },
      { ...cond("Ready", "unknown", "ReconcileError", message), lastTransitionTime: at },
    ],
    observedSpecHash: obs.specHash,
    message,
    lastReconciledAt: at,
    phaseSince: at,
    lastError,
  };
}

/**
 * The tenant's last few events, this decision's appended: written with the
 * status, which is written after the events are sent, so the list never
 * shows an event that was not published (a crash in between re-sends it).
 */
function remember(previous: readonly RecentEvent[] | undefined, events: readonly StatusEvent[], at: string): RecentEvent[] {
  const added = events.map((e): RecentEvent => ({
    detailType: e.detailType,
    at,
    ...(e.detail.reason ? { reason: e.detail.reason.slice(0, RECENT_EVENT_REASON_CHARS) } : {}),
  }));
  return [...(previous ?? []), ...added].slice(-RECENT_EVENTS_KEPT);
}

/** A rollout's failure is announced once per rollout, even when the record did not change between two of them. */
function failedOutcome(s: Situation): string {
  return s.kind === "planned" && s.rolloutFailure !== undefined ? `failed@${s.rolloutFailure.rolloutId}` : "failed";
}

/** The previous data fields, overridden by the ones the situation sets (an explicit undefined clears one). */
function dataFields(prev: TenantStatus | undefined, next: DataFields | undefined): Pick<TenantStatus, (typeof DATA_KEYS)[number]> {
  const out: Record<string, unknown> = {};
  for (const key of DATA_KEYS) {
    const value = next !== undefined && key in next ? next[key] : prev?.[key];
    if (value !== undefined) out[key] = value;
  }
  return out;
}

function semantic(s: TenantStatus): string {
  // writtenBy says who wrote it, not what the tenant is: a new owner alone is no reason to write.
  const { lastReconciledAt: _at, writtenBy: _by, conditions, ...rest } = s;
  return JSON.stringify({ ...rest, conditions: conditions.map(({ lastTransitionTime: _t, ...c }) => c) });
}

function cond(type: string, ok: boolean | "unknown", reason: string, message: string): Omit<Condition, "lastTransitionTime"> {
  return { type, status: ok === "unknown" ? "Unknown" : ok ? "True" : "False", reason, message };
}

function phaseOf(s: Situation): { phase: Phase; message: string; conditions: Omit<Condition, "lastTransitionTime">[] } {
  if (s.kind === "invalid") {
    return {
      phase: "Failed",
      message: `invalid tenant record: ${s.message}`,
      conditions: [cond("Valid", false, "InvalidRecord", s.message)],
    };
  }
  const valid = cond("Valid", true, "RecordValid", "");
  if (s.kind === "refused") {
    return { phase: "Failed", message: s.message, conditions: [valid, cond("Ready", false, s.reason, s.message)] };
  }
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
    if (plan.converged)
      return {
        phase: "Deprovisioned",
        message: "all tenant resources removed",
        conditions: [valid, cond("Deprovisioned", true, "Removed", "")],
      };
    const m = describeProgress(plan);
    return { phase: "Deprovisioning", message: m, conditions: [valid, cond("Deprovisioned", false, "Removing", m)] };
  }
  if (plan.problems.length > 0) {
    const m = plan.problems.join("; ");
    return { phase: "Degraded", message: m, conditions: [valid, cond("Ready", false, "Problem", m)] };
  }
  if (spec.suspended) {
    if (plan.converged)
      return {
        phase: "Suspended",
        message: "suspended: requests refused, services scaled to 0; data, stacks and clusters kept",
        conditions: [valid, cond("Ready", false, "Suspended", "")],
      };
    const m = describeProgress(plan);
    return { phase: "Provisioning", message: `suspending: ${m}`, conditions: [valid, cond("Ready", false, "Suspending", m)] };
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
