import type { Action, Footprint, ObservedState, PoolInfra, SiloInfra } from "./tiers/model.js";
import type { Catalogue } from "./apps/catalogue.js";
import type { Rollout } from "./rollouts/model.js";
import type { WaveEvent } from "./rollouts/planner.js";
import type { DeployRecord, TenantStatus } from "./tenants/status.js";

/**
 * The seams between the operator's reconcile logic and the AWS adapters in
 * src/providers. The reconcile logic is tested against fakes of these; the
 * providers are tested against aws-sdk-client-mock and moto.
 */

/** A raw tenant item, unmarshalled from DynamoDB, not yet validated. */
export type RawTenantItem = Readonly<Record<string, unknown>>;

// The failures ports promise by type (LeaseLostError from a fence, UnmanagedResourceError from a refusal).
export { LeaseLostError, UnmanagedResourceError } from "./errors.js";

/** Checked before every write to AWS; throws LeaseLostError when not leader. */
export interface Fence {
  assertHeld(): void;
  /**
   * The lease term this fence stands for, when it has one: a DynamoDB write
   * can then be conditioned on the lease item still naming this holder and
   * token (a ConditionCheck in the same transaction), which holds even for a
   * process paused past its lease. Undefined: only assertHeld() guards.
   */
  term?(): FenceTerm | undefined;
}

/** A lease item `lease#<lease>` in the operator table, held by `holder` in its term `token`. */
export interface FenceTerm {
  readonly lease: string;
  readonly holder: string;
  readonly token: number;
}

/** The fence of each key's writes: its shard's lease, bound to the term current when the reconcile began. */
export type FenceFor = (key: string) => Fence;

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
  /**
   * The resync's reads, batched across tenants (docs/adr/0018): every cluster,
   * and the services of the shared clusters and of managed clusters. Answers
   * the tenant ids owning managed resources (the orphan sweep), and primes a
   * snapshot that answers the next observe of each key once, while young, so
   * the reconciles the resync queues read no ECS when nothing changed.
   */
  survey(sharedClusters: readonly string[], scope?: SurveyScope): Promise<ReadonlySet<string>>;
  /** The key changed behind our back (an ECS event): its next observe reads ECS, never the snapshot. */
  forget(tenantKey: string): void;
}

/**
 * What one controller's survey reads when controllers share the fleet
 * (docs/adr/0018): every cluster, but only the services of the owners it
 * covers, so N controllers together read the account about once.
 */
export interface SurveyScope {
  /** Whether this survey reads what the owner (a tenant id, or the pool key) has. Fixed for the survey's life. */
  covers(owner: string): boolean;
  /**
   * The owner a service's name says it belongs to; undefined when the name
   * says nothing, and the service is read anyway (it may be anyone's orphan).
   */
  ownerOfService(name: string): string | undefined;
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

/**
 * Keys worth a look now, from ECS's own events (docs/adr/0017-ecs-events-as-hints.md):
 * at least once, unordered, possibly about nothing that changed. A hint only
 * names a key; the reconcile reads ECS as always.
 */
export interface TenantHintSource {
  /**
   * onHints returns the keys it declines (another controller's shard): their
   * messages go back to the queue for another consumer instead of being deleted.
   */
  start(onHints: (keys: readonly string[]) => readonly string[] | void): Promise<void>;
  stop(): Promise<void>;
}

export const DETAIL_TYPES = [
  "sbt_aws_provisionSuccess",
  "sbt_aws_provisionFailure",
  "sbt_aws_deprovisionSuccess",
  "sbt_aws_deprovisionFailure",
  "sbt_aws_deactivateSuccess",
  "sbt_aws_deactivateFailure",
  "sbt_aws_activateSuccess",
  "sbt_aws_activateFailure",
  "tenantStatusChanged",
] as const;
export type DetailType = (typeof DETAIL_TYPES)[number];

/** The SBT status event (docs/design.md "Contract: status events"). */
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
    /** On sbt_aws_deprovisionSuccess: where offboarding exported the tenant's data. */
    readonly backup?: { readonly location: string; readonly counts: Readonly<Record<string, number>> };
  };
}

export interface EventPublisher {
  /** PutEvents in batches of up to 10; failed entries are retried; throws if some still fail. */
  publish(events: readonly StatusEvent[]): Promise<void>;
}

/** What the tenant's infrastructure stack gives its task definitions and services. */
export interface TenantInfra extends SiloInfra {
  readonly stackId: string;
  /** The role its services assume per tenant with a session tag (IAM_ROLE_ARN). */
  readonly tenantAccessRoleArn: string;
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

/** The pool's infrastructure stack: pooled tables, roles, log group, target group and the catch-all rule. */
export type PoolInfraState =
  | { readonly kind: "ready"; readonly infra: PoolInfra & { readonly stackId: string } }
  | { readonly kind: "inProgress"; readonly status: string }
  | { readonly kind: "failed"; readonly reason: string; readonly terminal: boolean };

/**
 * A tenant's non-ECS infrastructure (docs/adr/0005: one CloudFormation stack per
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
  /** Creates or updates the pool stack when its hash changed; never waits. */
  ensurePool(fence: Fence): Promise<PoolInfraState>;
  /** The pool stack's outputs as they stand, if it is complete; reads only (for `tenantctl plan`). */
  currentPool(): Promise<PoolInfra | undefined>;
  /** The pool stack's next call, making none (for `tenantctl plan`). */
  previewPool(): Promise<readonly PlannedCall[]>;
}

// ---------------------------------------------------------------------------
// Tenant data (docs/design.md "Contract: tenant data": tier moves, offboarding exports, restores).
// ---------------------------------------------------------------------------

/** The app tables that hold tenant data; every one has partition key tenantId. */
export const DATA_APPS = ["orders", "products"] as const;
export type DataApp = (typeof DATA_APPS)[number];
/** Sort key of each app table (docs/design.md "Contract: tenant data"). */
export const SORT_KEYS: Readonly<Record<DataApp, string>> = { orders: "orderId", products: "productId" };
/** Table names per app: the pooled tables, or one silo tenant's. */
export type TableSet = Readonly<Record<DataApp, string>>;

/**
 * A durable position on a table's stream, JSON-serialisable so it can be kept
 * in status.migration: for each shard, the sequence number of the last record
 * already applied ("" = nothing yet; read that shard from its start).
 * Shards that appear later (splits) are read from their start.
 */
export interface CaptureCheckpoint {
  readonly streamArn: string;
  readonly shards: Readonly<Record<string, string>>;
}

export interface TableDigest {
  readonly count: number;
  /** sha256 over the tenant's items in canonical JSON, ordered by key: equal items give an equal hash. */
  readonly hash: string;
}

export interface BackupLocation {
  readonly bucket: string;
  /** Ends with "/". */
  readonly prefix: string;
}

/** The manifest written last, beside the data objects (DynamoDB export shape). */
export interface BackupManifest {
  readonly tenantId: string;
  readonly location: string; // s3://bucket/prefix/
  readonly exportedAt: string;
  readonly tables: Readonly<Record<DataApp, { readonly table: string; readonly itemCount: number; readonly dataFiles: readonly string[] }>>;
}

/**
 * Moves one tenant's items between tables. Every method is idempotent and
 * safe to repeat after a crash; writes call fence.assertHeld() before each
 * batch. Throttling (ProvisionedThroughputExceeded, unprocessed items) is
 * absorbed with backoff, never surfaced as a failure while it clears.
 * An aborted `signal` (shutdown) ends a long call at its next page, batch or
 * backoff by throwing the signal's reason; what it wrote stays valid, since
 * each call is repeated from the caller's last checkpoint.
 */
export interface TenantDataPort {
  /** The source table's stream position now, before any copying: change capture starts here. Throws if the table has no stream. */
  openCapture(table: string): Promise<CaptureCheckpoint>;
  /** Copies every item of the tenant (paged Query on tenantId, BatchWriteItem) from source to target. Overwrites; copies nothing of other tenants. */
  backfill(tenantId: string, source: string, target: string, fence: Fence, signal?: AbortSignal): Promise<{ readonly items: number }>;
  /**
   * Applies to the target, in stream order, every change of the tenant's items
   * on the source's stream after the checkpoint (NewImage put, REMOVE delete),
   * up to the stream's present end; returns the checkpoint to resume from.
   */
  catchUp(
    tenantId: string,
    source: string,
    target: string,
    from: CaptureCheckpoint,
    fence: Fence,
    signal?: AbortSignal,
  ): Promise<{
    readonly checkpoint: CaptureCheckpoint;
    readonly applied: number;
    /** Keys (canonical JSON of the key attributes) it wrote or deleted. */ readonly changedKeys: readonly string[];
  }>;
  /** A hash of each of the tenant's items, by key (same key text as changedKeys): a verification can leave out keys that changed while it read. */
  itemHashes(tenantId: string, table: string, signal?: AbortSignal): Promise<ReadonlyMap<string, string>>;
  /** Count and content hash of the tenant's items in a table (strongly consistent Query). */
  digest(tenantId: string, table: string, signal?: AbortSignal): Promise<TableDigest>;
  /** Deletes every item of the tenant from a table; a missing table is nothing to delete. */
  purge(tenantId: string, table: string, fence: Fence, signal?: AbortSignal): Promise<{ readonly deleted: number }>;
  /** Writes the tenant's items to S3 as DynamoDB-export JSON lines plus manifest.json (written last). Overwrites. */
  exportTenant(tenantId: string, tables: TableSet, to: BackupLocation, fence: Fence, signal?: AbortSignal): Promise<BackupManifest>;
  /** True when an export's manifest exists at the location: an export that finished. */
  exportExists(at: BackupLocation): Promise<boolean>;
  /** Loads an export into the tables (puts; running it twice changes nothing more). */
  restore(tenantId: string, from: BackupLocation, tables: TableSet): Promise<Readonly<Record<DataApp, number>>>;
  /** Undefined when the table does not exist; else its status (ACTIVE, CREATING, DELETING...). */
  tableStatus(table: string): Promise<string | undefined>;
  /** Deletes a table the controller owns (tag managed-by); a missing one is success. Throws UnmanagedResourceError otherwise. */
  dropTable(table: string, fence: Fence): Promise<void>;
}

// ---------------------------------------------------------------------------
// Routing (docs/design.md "Contract: routing"): one listener rule per tenant
// that needs one, managed through the ELBv2 API so a flip is one call.
// ---------------------------------------------------------------------------

export type RouteAction = { readonly kind: "forward"; readonly targetGroupArn: string } | { readonly kind: "deny" };

export interface DesiredRoute {
  readonly tenantId: string;
  readonly listenerArn: string;
  readonly priority: number;
  readonly action: RouteAction;
}

export interface ObservedRoute {
  readonly ruleArn: string;
  readonly listenerArn: string;
  readonly tenantId: string;
  readonly priority: number;
  readonly action: RouteAction | { readonly kind: "other" };
  readonly managed: boolean;
}

/** The tenant's listener rule, matched on header tenantPath == tenantId (exact value). */
export interface RoutePort {
  /** Reads the tenant's rule: by ARN when known (one DescribeRules), else by listing the listener's rules. */
  observe(tenantId: string, listenerArn: string, knownRuleArn?: string): Promise<ObservedRoute | undefined>;
  /** CreateRule with the tenant's header condition and the managed-by/tenant-id tags. Returns the rule ARN. */
  create(desired: DesiredRoute, fence: Fence): Promise<string>;
  /** ModifyRule (actions) and SetRulePriorities as needed. Refuses an unmanaged rule. */
  update(desired: DesiredRoute, observed: ObservedRoute, fence: Fence): Promise<void>;
  /** DeleteRule; already gone is success. Refuses an unmanaged rule. */
  delete(observed: ObservedRoute, fence: Fence): Promise<void>;
  /**
   * The resync's batched reads of the listeners' rules (docs/adr/0018): they
   * answer the next observe of each covered tenant that has a rule, once,
   * while young. Absent: every observe reads live.
   */
  survey?(listenerArns: readonly string[], covers?: (tenantId: string) => boolean): Promise<void>;
}

/**
 * Durable claims in the operator table on a tenant id lower-cased: ALB header
 * matching ignores case. A claim lives from onboarding to the end of
 * offboarding, so it is also the durable mark of a tenant that still owes an
 * offboarding once its record is deleted (a restart forgets the stream's REMOVE).
 */
export type ClaimResult = { readonly ok: true } | { readonly ok: false; readonly holder: string };
export interface CaseClaim {
  readonly tenantId: string;
  /** The record's tenantRegistrationId when claimed, echoed to SBT if the record is deleted. */
  readonly registrationId?: string;
}
export interface CaseClaimPort {
  /** Claims lower(tenantId) for tenantId (conditional put); idempotent for the same holder. */
  claim(tenantId: string, fence: Fence, registrationId?: string): Promise<ClaimResult>;
  /** Releases the claim if tenantId holds it. */
  release(tenantId: string, fence: Fence): Promise<void>;
  /** The claim tenantId holds (undefined when none, or when another casing holds it). */
  get(tenantId: string): Promise<CaseClaim | undefined>;
  /** Every claim held (a resync compares them with the records). */
  list(): Promise<readonly CaseClaim[]>;
}

// ---------------------------------------------------------------------------
// The tenant's application (docs/design.md "Contract: the tenant's
// application"): identity in Cognito, service discovery in Cloud Map.
// ---------------------------------------------------------------------------

/** A Cognito user pool and the app client the tenant's users sign in with. */
export interface UserPoolRef {
  readonly userPoolId: string;
  readonly appClientId: string;
}

/** The tenant admin: the record's email, with the tenant's id and tier as custom attributes. */
export interface TenantAdmin {
  readonly tenantId: string;
  readonly tier: "basic" | "advanced" | "premium";
  readonly email: string;
}

export type AdminResult =
  | { readonly kind: "ok" }
  /** In a shared pool the email already belongs to another tenant's user: nothing was created. */
  | { readonly kind: "conflict"; readonly holder: string };

/**
 * Cognito for tenants, as the reference architecture provisions it: basic
 * tenants share the pool's user pool, silo tenants get their own. Every
 * method is idempotent; writes call fence.assertHeld() first.
 */
export interface IdentityPort {
  /** The shared pool of basic tenants (created once, with its app client and the custom attributes). */
  ensureSharedPool(fence: Fence): Promise<UserPoolRef>;
  /** The shared pool if it exists (reads only, for `tenantctl plan`). */
  findSharedPool(): Promise<UserPoolRef | undefined>;
  /** The tenant's own pool and app client (silo tenants). */
  ensureTenantPool(tenantId: string, fence: Fence): Promise<UserPoolRef>;
  /** The tenant's own pool if it exists (reads only). */
  findTenantPool(tenantId: string): Promise<UserPoolRef | undefined>;
  /** Creates the admin user and the tenant's group, or updates the user's custom:tenantTier; refuses an email of another tenant. */
  ensureAdmin(pool: UserPoolRef, admin: TenantAdmin, fence: Fence): Promise<AdminResult>;
  /** Deletes the tenant's users and group from a pool; absent ones are nothing to do. */
  removeTenantUsers(pool: UserPoolRef, tenantId: string, fence: Fence): Promise<void>;
  /** Deletes the tenant's own pool (never the shared one); absent is success. */
  deleteTenantPool(tenantId: string, fence: Fence): Promise<void>;
  /** The OIDC issuer of a pool: https://cognito-idp.<region>.amazonaws.com/<userPoolId>. */
  issuer(pool: UserPoolRef): string;
}

export interface NamespaceRef {
  readonly name: string;
  readonly id: string;
  readonly arn: string;
}

/** Cloud Map HTTP namespaces for Service Connect (one per silo tenant, one for the pool). */
export interface NamespacePort {
  /** Creates the namespace (tagged) if absent; Cloud Map creates asynchronously, so it may be in progress. */
  ensure(
    name: string,
    tags: Readonly<Record<string, string>>,
    fence: Fence,
  ): Promise<{ readonly kind: "ready"; readonly namespace: NamespaceRef } | { readonly kind: "inProgress"; readonly reason: string }>;
  /** The namespace if it exists; reads only (for `tenantctl plan`). */
  find(name: string): Promise<NamespaceRef | undefined>;
  /** Deletes a managed namespace (after the services using it are gone); absent is success. */
  remove(name: string, fence: Fence): Promise<{ readonly kind: "gone" } | { readonly kind: "inProgress"; readonly reason: string }>;
}

/** A tenant whose record was deleted, remembered until its offboarding is done. */
export interface Removal {
  readonly tenantId: string;
  readonly registrationId?: string;
  /** When the removal was first seen; names the offboarding export. ISO time. */
  readonly removedAt: string;
}

/**
 * Deleted records, kept durably (in the operator table) until everything
 * they owned is gone and SBT was told: a restart between the deletion and
 * the end of the offboarding must neither lose the announcement nor leave
 * the tenant's items in the pooled tables.
 */
export interface RemovalLog {
  /** Records a removal unless one is recorded already (the first time seen wins). */
  record(removal: Removal, fence: Fence): Promise<Removal>;
  get(tenantId: string): Promise<Removal | undefined>;
  /** Every pending removal (a resync enqueues them). */
  list(): Promise<readonly Removal[]>;
  /** Forgets a removal once its offboarding is done. */
  clear(tenantId: string, fence: Fence): Promise<void>;
}

// ---------------------------------------------------------------------------
// Fleet rollouts (docs/design.md "Contract: fleet rollouts"): the catalogue
// each reconcile key runs, and what its reconcile tells the rollout.
// ---------------------------------------------------------------------------

/** The catalogue a reconcile key (tenant id or the pool's key) runs now, and its part in the fleet rollout. */
export interface CatalogueAssignment {
  readonly catalogue: Catalogue;
  readonly hash: string;
  /** Present while a rollout has reached the key (target) or failed on it (failed). */
  readonly rollout?: {
    readonly id: string;
    readonly role: "target" | "failed";
    /** The catalogue it ran before the rollout (and returns to if it fails). */
    readonly baseline: Catalogue;
    /** The catalogue the rollout brings. */
    readonly target: Catalogue;
    readonly failure?: { readonly reason: string; readonly announced: boolean };
  };
}

/** What a reconcile concluded about its key, against the catalogue it was assigned. */
export type RolloutOutcome = "healthy" | "waiting" | "notApplicable";

export interface CatalogueSource {
  /** Waits until the catalogue and the rollout are known (a reconcile must not guess them). */
  assignment(key: string): Promise<CatalogueAssignment>;
  /** Remembered in memory; the rollout executor records it at its next step. */
  report(key: string, hash: string, outcome: RolloutOutcome): void;
  /** The key's deployment of the rollout's catalogue failed: recorded durably before it returns (under the key's fence, when given). */
  fail(key: string, hash: string, reason: string, fence?: Fence): Promise<void>;
  /** The key's provisionFailure for the rollout was sent. */
  announced(key: string, rolloutId: string, fence?: Fence): Promise<void>;
}

/** Open and failed deployments of a key with no tenant record to keep them in (the pool), in the operator table. */
export interface DeployLedgerStore {
  get(key: string): Promise<Readonly<Record<string, DeployRecord>>>;
  put(key: string, ledger: Readonly<Record<string, DeployRecord>>, fence: Fence): Promise<void>;
}

/** Revision hygiene: the last revisions of a task definition family are kept, older ones deregistered, then deleted. */
export interface RevisionPort {
  /**
   * Keeps the newest `keep` ACTIVE revisions of each family and any revision
   * in `inUse` (ARNs services or their deployments run); deregisters the
   * others, then deletes INACTIVE ones not in use. Returns what it did.
   */
  prune(
    families: readonly string[],
    keep: number,
    inUse: ReadonlySet<string>,
    fence: Fence,
  ): Promise<{ readonly deregistered: readonly string[]; readonly deleted: readonly string[] }>;
}

/** What the catalogue record holds when read: nothing, something invalid (ignored), or a catalogue. */
export type CatalogueRead =
  | { readonly kind: "missing" }
  | { readonly kind: "invalid"; readonly problem: string; readonly updatedAt?: string }
  | {
      readonly kind: "valid";
      readonly catalogue: Catalogue;
      readonly hash: string;
      readonly revision: number;
      readonly updatedAt?: string;
      readonly updatedBy?: string;
    };

/** The operator table's catalogue and rollout items (src/providers/rollout-store.ts). */
export interface RolloutStorePort {
  readCatalogue(): Promise<CatalogueRead>;
  seedCatalogue(catalogue: Catalogue, by: string, fence: Fence): Promise<boolean>;
  readRollout(): Promise<Rollout | undefined>;
  writeRollout(rollout: Rollout, readVersion: number | undefined, fence?: Fence): Promise<boolean>;
  /**
   * A unit's latest report, for the leader when another controller owns the
   * unit (ADR 0016); an older report never replaces a newer one.
   */
  putReport?(unit: string, report: RolloutReport): Promise<void>;
  /** The stored reports of these units (absent: none). */
  readReports?(units: readonly string[]): Promise<ReadonlyMap<string, RolloutReport>>;
}

/** What a reconcile reported to the rollout about its unit (src/rollouts/planner.ts Report). */
export interface RolloutReport {
  /** Epoch ms. */
  readonly at: number;
  readonly hash: string;
  readonly outcome: RolloutOutcome;
}

/** Publishes a wave event (detail-type tenant-operator_rolloutWave). */
export interface RolloutEventSink {
  publish(rollout: Rollout, event: WaveEvent): Promise<void>;
}
