import type { ObservedService } from "./model.js";

/**
 * Whether a service that exists and runs what we want has finished rolling
 * out. Kept apart from the diff because it reads ECS's deployment model
 * (PRIMARY deployment, rolloutState, the circuit breaker), not our desired state.
 */
export type Readiness =
  | { readonly kind: "steady" }
  | { readonly kind: "progressing"; readonly reason: string }
  /** The deployment circuit breaker gave up: waiting will not help, a person or a spec change must. */
  | { readonly kind: "failed"; readonly reason: string };

/** What the service should be running: the desired content hash and, when one exists, the revision that has it. */
export interface WantedRevision {
  readonly contentHash: string;
  readonly arn: string | undefined;
}

export function serviceReadiness(service: ObservedService, want: WantedRevision): Readiness {
  const where = `service ${service.name} in ${service.cluster}`;
  const primary = service.deployments.find((d) => d.status === "PRIMARY");
  if (primary === undefined) return { kind: "progressing", reason: `${where}: no primary deployment yet` };
  if (primary.rolloutState === "FAILED") {
    return {
      kind: "failed",
      reason: `${where}: rollout failed (${primary.failedTasks} tasks failed): ${primary.rolloutStateReason ?? "no reason given"}`,
    };
  }
  if (!runsWanted(service, want)) return { kind: "progressing", reason: `${where}: not yet running the wanted task definition` };
  // Without the circuit breaker ECS reports no rolloutState; then the counts alone tell.
  const rolledOut =
    primary.rolloutState === "COMPLETED" || (primary.rolloutState === undefined && primary.runningCount === primary.desiredCount);
  if (rolledOut && service.runningCount === service.desiredCount) return { kind: "steady" };
  return {
    kind: "progressing",
    reason: `${where}: ${service.runningCount}/${service.desiredCount} tasks running, rollout ${primary.rolloutState ?? "in progress"}`,
  };
}

/** The content hash tag is authoritative; the arn is the fallback for a revision observed without tags. */
export function runsWanted(service: ObservedService, want: WantedRevision): boolean {
  if (service.taskDefinitionContentHash !== undefined) return service.taskDefinitionContentHash === want.contentHash;
  return want.arn !== undefined && service.taskDefinitionArn === want.arn;
}

/**
 * A deployment of exactly this revision that the circuit breaker failed (it may
 * have been rolled back since). Moving the service to it again would only fail
 * again, so the diff reports it instead of redeploying in a loop.
 */
export function failedRolloutOf(service: ObservedService, arn: string | undefined): string | undefined {
  if (arn === undefined) return undefined;
  const d = service.deployments.find((dep) => dep.taskDefinitionArn === arn && dep.rolloutState === "FAILED");
  return d === undefined ? undefined : (d.rolloutStateReason ?? "no reason given");
}
