/**
 * The `status` attribute the controller writes on a tenant record
 * (docs/design.md "Contract: tenant record"). The controller writes nothing else.
 */
export const PHASES = ["Pending", "Provisioning", "Ready", "Degraded", "Failed", "Suspended", "Deprovisioning", "Deprovisioned"] as const;
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
  /**
   * The tables holding the tenant's data now: the pooled tables for a basic
   * tenant, its silo tables otherwise. Changes only when the data is there
   * (at a tier move's routing flip), never ahead of it.
   */
  readonly tables?: Readonly<Record<"orders" | "products", string>>;
  /** The tier whose resources serve the tenant now; differs from the record's tier only during a move. */
  readonly servingTier?: "basic" | "advanced" | "premium";
  /** A tier move under way: where it stands, durably, so a crash at any step resumes there. */
  readonly migration?: MigrationStatus;
  /** The tenant's listener rule, once it has one (silo tiers, or any suspended tenant). */
  readonly route?: { readonly listenerArn: string; readonly priority: number; readonly ruleArn: string };
  /** The offboarding export, once written: `s3://bucket/prefix/` and item counts per table. */
  readonly backup?: {
    readonly location: string;
    readonly exportedAt: string;
    readonly counts: Readonly<Record<"orders" | "products", number>>;
    /** The offboarding spec it was taken for; cleared when the tenant is active again, so the next offboarding exports anew. */
    readonly forSpecHash?: string;
  };
  /** The tenant's Cognito user pool and app client: its own (silo at onboarding) or the shared pool's (basic); kept across tier moves. */
  readonly identity?: { readonly userPoolId: string; readonly appClientId: string; readonly shared: boolean };
  /**
   * New task definitions the controller deployed and has not yet seen
   * finish, and those ECS failed (circuit breaker), by service
   * `<cluster>/<name>`: a failed one is not deployed again while it is
   * wanted (src/tiers/deploy-watch.ts).
   */
  readonly deployments?: Readonly<Record<string, DeployRecord>>;
  /** True once the lower-cased tenant id is durably claimed for this tenant (routing cannot cross tenants). */
  readonly caseClaimed?: boolean;
  /** When the tenant entered its current phase, for "time in phase" and stuck-tenant alarms. */
  readonly phaseSince?: string;
  /**
   * The last failed reconcile of this tenant, transient or not, until one succeeds:
   * what failed, how it was classified, how many tries in a row failed, and when the next one is due.
   */
  readonly lastError?: LastError;
  /** The last SBT events sent about this tenant (at most RECENT_EVENTS_KEPT, oldest first), for `tenantctl describe` and `tenantctl events`. */
  readonly recentEvents?: readonly RecentEvent[];
  /**
   * The lease term the status was written under (shard lease, holder, fencing
   * token), set by the store on a fenced write: successive writes of one
   * tenant show its owners in order, never two at once (ADR 0016).
   */
  readonly writtenBy?: { readonly lease: string; readonly holder: string; readonly token: number };
}

/** One event the controller published about a tenant, as the tenant's status remembers it. */
export interface RecentEvent {
  /** The EventBridge detail-type, e.g. `sbt_aws_provisionSuccess`. */
  readonly detailType: string;
  /** When the controller decided to send it (ISO time). */
  readonly at: string;
  /** The event's reason, cut to RECENT_EVENT_REASON_CHARS. */
  readonly reason?: string;
}

/** Enough to see a tenant's last few transitions, small enough to keep the item far from DynamoDB's 400 KB. */
export const RECENT_EVENTS_KEPT = 10;
export const RECENT_EVENT_REASON_CHARS = 200;

/** A deployment of new task definition content to one service, from its start until ECS finishes it. */
export interface DeployRecord {
  /** Content hash of the task definition deployed. */
  readonly contentHash: string;
  /** Its image, for people: the version deployed. */
  readonly image: string;
  readonly startedAt: string;
  /** The PRIMARY deployment the service had before: seeing it still means ECS has not shown the update yet. */
  readonly replaced?: string;
  /** ECS failed it (a FAILED deployment, or its circuit breaker rolled the service back). */
  readonly failed?: { readonly reason: string; readonly at: string };
}

export interface LastError {
  readonly message: string;
  /** The error's class as the reconciler sorted it: `transient` (retried with backoff) or `terminal` (needs a fix). */
  readonly kind: "transient" | "terminal";
  /** The error type's name, e.g. `ThrottlingException`. */
  readonly type: string;
  readonly at: string;
  /** Failed attempts in a row, this one included. */
  readonly retries: number;
  /** When the controller tries again (its backoff), if it does on its own. */
  readonly nextAttemptAt?: string;
}

/** The steps of a tier move, in order; `abort` undoes a move reversed before its flip. */
export const MIGRATION_STEPS = ["provision", "capture", "backfill", "catchup", "verify", "flip", "drain", "retire", "abort"] as const;
export type MigrationStep = (typeof MIGRATION_STEPS)[number];

export interface MigrationStatus {
  readonly from: "basic" | "advanced" | "premium";
  readonly to: "basic" | "advanced" | "premium";
  readonly step: MigrationStep;
  readonly startedAt: string;
  readonly source: Readonly<Record<"orders" | "products", string>>;
  readonly target: Readonly<Record<"orders" | "products", string>>;
  /** Stream positions of the source tables: change capture resumes from here. */
  readonly checkpoints?: Readonly<
    Record<"orders" | "products", { readonly streamArn: string; readonly shards: Readonly<Record<string, string>> }>
  >;
  /** Items copied by the backfill, changes applied since, and the verified counts, per table. */
  readonly counts?: Readonly<
    Record<"orders" | "products", { readonly copied: number; readonly applied: number; readonly verified?: number }>
  >;
  /** Verifications that found source and target different (writes kept coming); each is followed by another catch-up. */
  readonly verifyAttempts?: number;
  readonly flippedAt?: string;
  /** Until when the source's stream is still drained into the target after the flip. */
  readonly drainUntil?: string;
}

/** Keeps lastTransitionTime of a condition whose status did not change. */
export function mergeConditions(previous: readonly Condition[] | undefined, next: readonly Condition[]): Condition[] {
  return next.map((c) => {
    const old = previous?.find((p) => p.type === c.type);
    return old && old.status === c.status ? { ...c, lastTransitionTime: old.lastTransitionTime } : c;
  });
}
