import type { Action, Footprint, ObservedState, SiloInfra } from "../tiers/model.js";
import type { TenantStatus } from "../tenants/status.js";

/**
 * The seams between the operator's reconcile logic and the AWS adapters in
 * src/providers. The reconcile logic is tested against fakes of these; the
 * providers are tested against aws-sdk-client-mock and moto.
 */

/** A raw tenant item, unmarshalled from DynamoDB, not yet validated. */
export type RawTenantItem = Readonly<Record<string, unknown>>;

/** Thrown by a fenced write when this controller no longer holds the lease. */
export class LeaseLostError extends Error {
  constructor(message = "leader lease lost") {
    super(message);
    this.name = "LeaseLostError";
  }
}

/** Checked before every write to AWS; throws LeaseLostError when not leader. */
export interface Fence {
  assertHeld(): void;
}

export interface ApplyOutcome {
  /** Task definition ARNs registered during this apply, by family. */
  readonly registered: ReadonlyMap<string, string>;
  /** ARNs of services and clusters created during this apply. */
  readonly created: readonly string[];
}

export interface EcsPort {
  /**
   * Reads everything at the footprint's locations, in batched Describe calls
   * (10 services, 100 clusters). Missing resources are simply absent.
   */
  observe(footprint: Footprint): Promise<ObservedState>;
  /**
   * Makes the plan's calls in order. Idempotent: CreateService carries a
   * clientToken derived from the service and its spec, so a retry after a
   * crash cannot duplicate; deleting what is already gone is success. Refuses
   * (throws UnmanagedResourceError) to update or delete anything without
   * managed-by=ecs-tenant-operator. Calls fence.assertHeld() before each write.
   */
  apply(actions: readonly Action[], observed: ObservedState, fence: Fence): Promise<ApplyOutcome>;
  /** Tenant ids owning managed resources in the given shared clusters or in managed clusters: the orphan sweep. */
  inventory(sharedClusters: readonly string[]): Promise<ReadonlySet<string>>;
}

export class UnmanagedResourceError extends Error {
  constructor(readonly resource: string) {
    super(`refusing to modify ${resource}: it lacks the tag managed-by=ecs-tenant-operator`);
    this.name = "UnmanagedResourceError";
  }
}

export interface TenantStore {
  /** Full table scan, page by page (used at start and on every resync). */
  scan(): AsyncIterable<readonly RawTenantItem[]>;
  /** Strongly consistent read of one item; undefined when the item does not exist. */
  get(tenantId: string): Promise<RawTenantItem | undefined>;
  /**
   * Writes only the `status` attribute (UpdateItem SET #status), on the
   * condition that the item still exists, so a status write never recreates
   * a deleted item. Returns false when the item is gone.
   */
  writeStatus(tenantId: string, status: TenantStatus, fence: Fence): Promise<boolean>;
}

/** A change seen on the tenants table's stream. */
export interface TenantChange {
  readonly tenantId: string;
  readonly kind: "upsert" | "remove";
  /** hashSpec of the new image (upsert) or old image (remove). */
  readonly newSpecHash: string | undefined;
  readonly oldSpecHash: string | undefined;
  /** For a remove: the phase the deleted item's status had (a Deprovisioned tenant was announced already). */
  readonly oldPhase?: string;
  /** For a remove: the deleted item's tenantRegistrationId, echoed in the deprovision event. */
  readonly oldRegistrationId?: string;
}

/** Follows DynamoDB Streams on the tenants table: every shard, renewed iterators, resumes after errors. */
export interface TenantChangeSource {
  start(onChange: (changes: readonly TenantChange[]) => void): Promise<void>;
  stop(): Promise<void>;
}

export const DETAIL_TYPES = [
  "sbt_aws_provisionSuccess",
  "sbt_aws_provisionFailure",
  "sbt_aws_deprovisionSuccess",
  "sbt_aws_deprovisionFailure",
  "tenantStatusChanged",
] as const;
export type DetailType = (typeof DETAIL_TYPES)[number];

/** The SBT status event (DESIGN.md "Contract: status events"). */
export interface StatusEvent {
  readonly detailType: DetailType;
  readonly detail: {
    readonly tenantId: string;
    readonly tenantRegistrationId?: string;
    readonly jobOutput: {
      readonly tenantData: Readonly<Record<string, unknown>>;
      readonly tenantRegistrationData: { readonly registrationStatus: "Created" | "Failed" | "Deleted" | "InProgress" };
    };
    readonly reason?: string;
    readonly specHash?: string;
    readonly phase?: string;
  };
}

export interface EventPublisher {
  /** PutEvents in batches of up to 10; failed entries are retried; throws if some still fail. */
  publish(events: readonly StatusEvent[]): Promise<void>;
}

/** What the tenant's infrastructure stack gives its task definitions and services. */
export interface TenantInfra extends SiloInfra {
  readonly stackId: string;
}

export type InfraState =
  | { readonly kind: "ready"; readonly infra: TenantInfra }
  | { readonly kind: "inProgress"; readonly status: string }
  | { readonly kind: "failed"; readonly reason: string; readonly terminal: boolean };

export type InfraRemoval =
  | { readonly kind: "gone" }
  | { readonly kind: "inProgress"; readonly status: string }
  | { readonly kind: "failed"; readonly reason: string; readonly terminal: boolean };

/** One call `tenantctl plan` lists for the infrastructure, with its reason. */
export interface PlannedCall {
  readonly call: string;
  readonly target: string;
  readonly reason: string;
}

/**
 * A tenant's non-ECS infrastructure (issue 3: one CloudFormation stack per
 * advanced or premium tenant, and its listener-rule priority). Never waits:
 * each call makes at most one create/update/delete and reports where it stands.
 */
export interface InfraPort {
  /** Allocates the priority (durably, once) and creates or updates the stack when its hash changed. */
  ensure(tenantId: string, tier: "advanced" | "premium", fence: Fence): Promise<InfraState>;
  /** Deletes the stack (only if managed), then frees the priority once the stack is gone. */
  remove(tenantId: string, fence: Fence): Promise<InfraRemoval>;
  /** The stack's outputs as they stand, if it is complete; reads only (for `tenantctl plan`). */
  current(tenantId: string): Promise<TenantInfra | undefined>;
  /** The calls ensure/remove would make now, making none (for `tenantctl plan`). */
  preview(tenantId: string, tier: "advanced" | "premium" | undefined): Promise<readonly PlannedCall[]>;
}
