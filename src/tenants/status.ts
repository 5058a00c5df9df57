/**
 * The `status` attribute the controller writes on a tenant record
 * (docs/design.md "Contract: tenant record"). The controller writes nothing else.
 */
export const PHASES = ["Pending", "Provisioning", "Ready", "Degraded", "Failed", "Deprovisioning", "Deprovisioned"] as const;
export type Phase = (typeof PHASES)[number];

export interface Condition {
  readonly type: string; // Valid, Provisioned, Ready, Deprovisioned
  readonly status: "True" | "False" | "Unknown";
  readonly reason: string;
  readonly message: string;
  readonly lastTransitionTime: string;
}

export interface TenantStatus {
  readonly phase: Phase;
  readonly conditions: readonly Condition[];
  readonly observedSpecHash: string;
  readonly message: string;
  readonly lastReconciledAt: string;
  /** ARNs of what the controller owns for this tenant. */
  readonly clusterArn?: string;
  readonly serviceArns?: readonly string[];
  readonly taskDefinitionArns?: readonly string[];
  readonly stackArn?: string;
  /** `<outcome>:<specHash>` of the last SBT event sent, so each outcome is announced once per spec. */
  readonly announced?: string;
}

/** Keeps lastTransitionTime of a condition whose status did not change. */
export function mergeConditions(previous: readonly Condition[] | undefined, next: readonly Condition[]): Condition[] {
  return next.map((c) => {
    const old = previous?.find((p) => p.type === c.type);
    return old && old.status === c.status ? { ...c, lastTransitionTime: old.lastTransitionTime } : c;
  });
}
