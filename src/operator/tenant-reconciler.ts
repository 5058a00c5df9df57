import type { Logger } from "pino";
import type { Catalogue } from "../apps/catalogue.js";
import { failed, requeueAfter, done, type ReconcileContext, type ReconcileResult } from "../reconciler/result.js";
import { validateRecord, hashSpec, type TenantSpec } from "../tenants/record.js";
import { PHASES, type LastError, type Phase, type TenantStatus } from "../tenants/status.js";
import { homeOf, homeOfTables, poolTables, siloTables, tablesOf, type DataHome, type Tables } from "../tiers/data-home.js";
import {
  desiredForTenant,
  desiredPool,
  footprintForPool,
  footprintForTenant,
  poolNamespaceName,
  POOL_KEY,
  TENANT_REGISTRATION_ID_KEY,
  tenantNamespaceName,
  type TierSettings,
} from "../tiers/desired.js";
import { diff } from "../tiers/diff.js";
import { recordDeploys, sameLedger, watchDeploys, type DeployLedger, type Watch } from "../tiers/deploy-watch.js";
import { changesFor } from "../rollouts/changes.js";
import {
  MANAGED_BY_KEY,
  MANAGED_BY_VALUE,
  NOTHING,
  TENANT_ID_KEY,
  TIER_KEY,
  type AppContext,
  type DesiredState,
  type Footprint,
  type NamespaceInfo,
  type ObservedState,
  type Plan,
} from "../tiers/model.js";
import { describeError, errorType, InvalidRecordError, isLeaseLost, isRetryable, StackFailedError } from "./errors.js";
import {
  DATA_APPS,
  type ApplyOutcome,
  type CaseClaimPort,
  type IdentityPort,
  type NamespacePort,
  type Removal,
  type RemovalLog,
  type UserPoolRef,
  type CatalogueAssignment,
  type CatalogueSource,
  type DeployLedgerStore,
  type RevisionPort,
  type RolloutOutcome,
  type EcsPort,
  type EventPublisher,
  type Fence,
  type FenceFor,
  type InfraPort,
  type InfraRemoval,
  type PlannedCall,
  type RawTenantItem,
  type RouteAction,
  type StatusEvent,
  type TenantDataPort,
  type TenantInfra,
  type TenantStore,
} from "../ports.js";
import { decide, failureStatus, type DataFields, type OwnedArns, type Situation } from "./status-policy.js";
import { servingHome, siloTierNow, startMove, steerMove, describeMove } from "./tier-move.js";
import { TierMoveRunner } from "./tier-move-runner.js";
import type { TenantRoutes } from "./tenant-routes.js";

export interface TenantReconcilerOptions {
  readonly store: TenantStore;
  readonly ecs: EcsPort;
  readonly infra: InfraPort;
  /** Tenant items: tier moves, offboarding exports. */
  readonly data: TenantDataPort;
  /** Tenants' listener rules and their priorities. */
  readonly routes: TenantRoutes;
  /** Durable claims on lower-cased tenant ids. */
  readonly claims: CaseClaimPort;
  /** Deleted records whose offboarding is not finished (operator table). */
  readonly removals: RemovalLog;
  /** Cloud Map HTTP namespaces for Service Connect: one per silo tenant, one for the pool. */
  readonly namespaces: NamespacePort;
  /** Where the apps run: AWS_REGION and AWS_ACCOUNT_ID in their environment. */
  readonly account: { readonly region: string; readonly accountId: string };
  /** Cognito: the shared pool of basic tenants, silo tenants' own pools, admin users. */
  readonly identity: IdentityPort;
  /** Bucket of offboarding exports. */
  readonly backupBucket: string;
  /** The tenants' API, for SBT's tenantConfig (API_GATEWAY_URL). @default "" */
  readonly apiGatewayUrl?: string;
  /** How long a tier move drains the old tables' stream after its flip. @default 30000 */
  readonly drainMs?: number;
  readonly events: EventPublisher;
  /** The fence of every key without fenceFor (tests, a single leader). */
  readonly fence: Fence;
  /**
   * Each key's fence (its shard's lease; the pool key's is the controller
   * lease), asked once when the key's reconcile begins and used for all its
   * writes, so a term that ends mid-reconcile fences the rest of it.
   */
  readonly fenceFor?: FenceFor;
  /** The catalogue when there is no rollout source (tests, and a fallback): every key runs it. */
  readonly catalogue: Catalogue;
  /** The catalogue record and the fleet rollout (src/operator/rollout-executor.ts): each key's catalogue. */
  readonly catalogues?: CatalogueSource;
  /** Where the pool's open deployments are kept (it has no record); without it they are kept in memory. */
  readonly ledgers?: DeployLedgerStore;
  /** Revision hygiene after a deployment completes; without it nothing is pruned. */
  readonly revisions?: RevisionPort;
  /** Task definition revisions kept per family (REVISIONS_TO_KEEP). @default 5 */
  readonly revisionsToKeep?: number;
  readonly settings: TierSettings;
  readonly log: Logger;
  readonly now?: () => Date;
  /** How soon to look again after making changes; doubles while the tenant keeps waiting. @default 1000 */
  readonly pollMs?: number;
  /** Cap of that doubling: a rollout that takes minutes is looked at about twice a minute. @default 30000 */
  readonly maxPollMs?: number;
  /** How soon to look again at a tenant with a problem a person must fix. @default 60000 */
  readonly problemPollMs?: number;
  /** Consecutive retryable failures after which the tenant is reported Degraded. @default 5 */
  readonly degradeAfterFailures?: number;
}

/**
 * reconcile(tenantId): read the record, compute what should exist, read what
 * does exist, make the difference, and tell SBT. Level-triggered: it never
 * asks what event brought it here, so running it twice, or after a crash at
 * any line, converges on the same result.
 */
export class TenantReconciler {
  readonly #o: Required<Pick<TenantReconcilerOptions, "pollMs" | "maxPollMs" | "problemPollMs" | "degradeAfterFailures" | "drainMs">> &
    TenantReconcilerOptions;
  readonly #moves: TierMoveRunner;
  readonly #now: () => Date;
  /** Removals seen on the stream, until their reconcile records them in the RemovalLog (the durable copy). */
  readonly #noted = new Map<string, { readonly registrationId?: string; readonly removedAt: string }>();
  /** Consecutive reconciles that found a key only waiting on ECS: its next look comes later each time. */
  readonly #waits = new Map<string, number>();
  /** Last phase written per tenant and since when (epoch ms), for the tenants-by-phase and time-in-phase gauges. */
  readonly #phases = new Map<string, { readonly phase: Phase; readonly since: number }>();
  /** The pool's open deployments when no DeployLedgerStore keeps them. */
  #poolLedger: DeployLedger = {};
  /** The fence of each key being reconciled: the queue runs a key in one worker at a time. */
  readonly #fences = new Map<string, Fence>();

  constructor(options: TenantReconcilerOptions) {
    this.#o = { pollMs: 1000, maxPollMs: 30_000, problemPollMs: 60_000, degradeAfterFailures: 5, drainMs: 30_000, ...options };
    this.#now = options.now ?? (() => new Date());
    this.#moves = new TierMoveRunner(options.data);
  }

  /** Tenants by the phase this process last saw or wrote. */
  phaseCounts(): Record<Phase, number> {
    const counts = Object.fromEntries(PHASES.map((p) => [p, 0])) as Record<Phase, number>;
    for (const { phase } of this.#phases.values()) counts[phase] += 1;
    return counts;
  }

  /** Each tenant's phase as this process last saw or wrote it, and since when (epoch ms, from status.phaseSince). */
  phaseTimes(): readonly { readonly phase: Phase; readonly since: number }[] {
    return [...this.#phases.values()];
  }

  /** The stream saw the item removed: a deprovisionSuccess is owed once its resources are gone. */
  noteRemoved(tenantId: string, tenantRegistrationId: string | undefined): void {
    // Kept until the key's reconcile records it durably (RemovalLog).
    if (!this.#noted.has(tenantId))
      this.#noted.set(tenantId, {
        removedAt: this.#now().toISOString(),
        ...(tenantRegistrationId !== undefined ? { registrationId: tenantRegistrationId } : {}),
      });
  }

  /**
   * The queue's context says how many attempts in a row failed before this
   * one and what backoff comes next, for status.lastError; called without
   * one (a test, a one-off), a failure counts from the status alone.
   *
   * An aborted `signal` (the controller stopping) ends the long steps (copies,
   * exports, purges) at their next page or batch. Every step before has left
   * its checkpoint in the status, so the next leader resumes there; the abort
   * itself is no failure of the tenant's, so nothing is reported.
   */
  readonly reconcile = async (key: string, signal: AbortSignal, context?: ReconcileContext): Promise<ReconcileResult> => {
    this.#fences.set(key, this.#o.fenceFor?.(key) ?? this.#o.fence);
    try {
      return key === POOL_KEY ? await this.#reconcilePool() : await this.#reconcileTenant(key, signal, context);
    } catch (err) {
      if (signal.aborted) return failed(err instanceof Error ? err : new Error(String(err)), false);
      return this.#onError(key, err, context);
    } finally {
      this.#fences.delete(key);
    }
  };

  /** The fence of this key's reconcile under way (outside one: a fresh one, which refuses unless the key is owned). */
  #fence(key: string): Fence {
    return this.#fences.get(key) ?? this.#o.fenceFor?.(key) ?? this.#o.fence;
  }

  /**
   * What reconcile would do now for a key, without making any write
   * (`tenantctl plan`): the ECS plan, plus the infrastructure calls.
   */
  async planFor(key: string): Promise<{ plan: Plan; infraCalls: readonly PlannedCall[]; invalid?: string; noRecord?: true }> {
    if (key === POOL_KEY) {
      const [infraCalls, pool, users, namespace] = await Promise.all([
        this.#o.infra.previewPool(),
        this.#o.infra.currentPool(),
        this.#o.identity.findSharedPool(),
        this.#o.namespaces.find(poolNamespaceName(this.#o.settings.namePrefix)),
      ]);
      if (pool === undefined || namespace === undefined)
        return { plan: waiting(pool === undefined ? "the pool stack" : "the pool's namespace"), infraCalls };
      const context = this.#context(pool.tenantAccessRoleArn, users, namespace);
      const { catalogue } = await this.#assignment(POOL_KEY);
      const ledger = this.#o.ledgers !== undefined ? await this.#o.ledgers.get(POOL_KEY) : this.#poolLedger;
      const { plan } = await this.#plan(
        desiredPool(catalogue, this.#o.settings, pool, context),
        footprintForPool(this.#o.settings),
        ledger,
      );
      return { plan, infraCalls };
    }
    const item = await this.#o.store.get(key);
    const footprint = footprintForTenant(key, this.#o.settings);
    if (item === undefined)
      return { ...(await this.#plan(NOTHING, footprint)), infraCalls: await this.#o.infra.preview(key, undefined), noRecord: true };
    const v = validateRecord(item);
    if (!v.ok) return { plan: blocked(v.message), infraCalls: [], invalid: v.message };
    const { spec } = v;
    const previous = readStatus(item);
    const calls: PlannedCall[] = [];
    const notes: string[] = [];
    if (spec.sbtaws_active && previous?.caseClaimed !== true) {
      calls.push({
        call: "dynamodb:PutItem",
        target: `claim ${key.toLowerCase()}`,
        reason: "claim the tenant id ignoring case: the load balancer matches tenantPath without regard to case",
      });
    }
    if (
      spec.sbtaws_active &&
      previous?.identity === undefined &&
      spec.tier !== "basic" &&
      (await this.#o.identity.findTenantPool(key)) === undefined
    ) {
      calls.push({
        call: "cognito-idp:CreateUserPool",
        target: `the user pool of ${key}`,
        reason: "a tenant onboarded into a silo tier gets its own user pool and app client",
      });
    }
    // The same pure decisions #converge makes, without their writes.
    const prefix = this.#o.settings.namePrefix;
    const pool = poolTables(prefix);
    const desiredHome = homeOf(spec.tier);
    const currentHome = knownHome(previous, prefix, key, pool);
    let move = previous?.migration && steerMove(previous.migration, desiredHome);
    if (move === undefined && spec.sbtaws_active && currentHome !== undefined && currentHome !== desiredHome) {
      move = startMove(
        previous?.servingTier ?? (currentHome === "pool" ? "basic" : "advanced"),
        spec.tier,
        tablesOf(currentHome, prefix, key, pool),
        tablesOf(desiredHome, prefix, key, pool),
        this.#now(),
      );
      notes.push(
        `a tier move ${move.from} -> ${move.to} starts: the data is copied, verified, and routing flips before the old tier is retired`,
      );
    } else if (move !== undefined) notes.push(describeMove(move));
    const serving = servingHome(move, currentHome, desiredHome);
    const siloTier = spec.sbtaws_active ? siloTierNow(spec, move, serving) : undefined;
    calls.push(...(await this.#o.infra.preview(key, siloTier)));
    const infra = siloTier === undefined ? undefined : await this.#o.infra.current(key);
    const action: RouteAction | undefined = !spec.sbtaws_active
      ? undefined
      : spec.suspended
        ? { kind: "deny" }
        : serving === "silo" && infra
          ? { kind: "forward", targetGroupArn: infra.targetGroupArn }
          : undefined;
    calls.push(...(await this.#o.routes.preview(key, action, previous?.route)));
    if (!spec.sbtaws_active && previous?.backup === undefined)
      notes.push(
        `offboarding exports the tenant's items to s3://${this.#o.backupBucket}/offboarded/${key}/${v.specHash}/ before deleting them`,
      );
    const namespace = siloTier === undefined ? undefined : await this.#o.namespaces.find(tenantNamespaceName(prefix, key));
    const context = this.#context(infra?.tenantAccessRoleArn, previous?.identity, namespace);
    const { catalogue } = await this.#assignment(key);
    let { plan } =
      siloTier !== undefined && (infra === undefined || namespace === undefined)
        ? { plan: waiting(infra === undefined ? "the tenant's infrastructure stack" : "the tenant's namespace") }
        : await this.#plan(
            siloTier !== undefined ? desiredForTenant({ ...spec, tier: siloTier }, catalogue, this.#o.settings, infra, context) : NOTHING,
            footprint,
            previous?.deployments ?? {},
          );
    if (notes.length > 0) plan = { ...plan, waitingFor: [...notes, ...plan.waitingFor], converged: false };
    if (calls.length > 0) plan = { ...plan, converged: false };
    return { plan, infraCalls: calls };
  }

  /**
   * Observe and diff. Task definition families are read only to decide
   * registrations, so only the desired ones are looked at: a basic or
   * offboarded tenant costs no DescribeTaskDefinition at all.
   */
  async #plan(desired: DesiredState, footprint: Footprint, ledger: DeployLedger = {}) {
    const wanted = new Set(desired.taskDefinitions.map((t) => t.family));
    const observed = await this.#o.ecs.observe({
      ...footprint,
      taskDefinitionFamilies: footprint.taskDefinitionFamilies.filter((f) => wanted.has(f)),
    });
    // Our open deployments, judged before the diff: a revision ECS failed is not deployed again.
    const watch = watchDeploys(ledger, desired, observed, this.#now());
    return { plan: diff(desired, observed, footprint, { blocked: watch.blocked }), desired, observed, watch };
  }

  /** The catalogue the key runs now: the rollout's say, or the fixed one. */
  async #assignment(key: string): Promise<CatalogueAssignment> {
    return this.#o.catalogues !== undefined ? this.#o.catalogues.assignment(key) : { catalogue: this.#o.catalogue, hash: "" };
  }

  #reportOutcome(key: string, hash: string, outcome: RolloutOutcome): void {
    this.#o.catalogues?.report(key, hash, outcome);
  }

  /**
   * The fleet rollout failing on this key: found now (its deployment of the
   * rollout's catalogue failed: recorded before anything else), or recorded
   * earlier (a controller-side timeout) and not yet announced. The message
   * names the versions.
   */
  async #rolloutFailure(
    key: string,
    a: CatalogueAssignment,
    watch: Watch,
    overrides: TenantSpec["apps"] | undefined,
  ): Promise<{ readonly rolloutId: string; readonly message: string } | undefined> {
    const r = a.rollout;
    if (r === undefined || this.#o.catalogues === undefined) return undefined;
    const changes = changesFor(overrides, r.baseline, r.target);
    // Only what the rollout changed counts: a version the record pins that failed before is the record's problem.
    const changed = new Set(changes.map((c) => c.app));
    const failures = watch.failures.filter((f) => changed.has(f.app));
    let reason: string | undefined;
    if (r.role === "target" && failures.length > 0) {
      reason = failures.map((f) => `${f.image}: ${f.reason}`).join("; ");
      await this.#o.catalogues.fail(key, a.hash, reason, this.#fence(key));
    } else if (r.role === "failed" && r.failure !== undefined && !r.failure.announced) reason = r.failure.reason;
    if (reason === undefined) return undefined;
    const to = changes.map((c) => `${c.app} ${c.to}`).join(", ");
    const from = changes.map((c) => `${c.app} ${c.from}`).join(", ");
    this.#o.log.warn({ key, rollout: r.id, reason }, "fleet rollout failed on this key; it returns to its previous catalogue");
    return {
      rolloutId: r.id,
      message: `fleet rollout ${r.id}: ${to || "the new catalogue"} failed (${reason}); returning to ${from || "the previous catalogue"}`,
    };
  }

  /** Revision hygiene once deployments completed: old revisions of their families go (never one a service runs). */
  async #prune(watch: Watch, observed: ObservedState, key: string): Promise<void> {
    if (this.#o.revisions === undefined || watch.completed.length === 0) return;
    const keep = this.#o.revisionsToKeep ?? 5;
    // A family whose running revision number is within the count to keep has nothing older to prune: no call.
    const revisionRun = (cluster: string, name: string) =>
      Number(
        observed.services
          .find((o) => o.cluster === cluster && o.name === name)
          ?.taskDefinitionArn.split(":")
          .pop() ?? 0,
      );
    const families = [...new Set(watch.completed.filter((s) => revisionRun(s.cluster, s.name) > keep).map((s) => s.taskDefinitionFamily))];
    if (families.length === 0) return;
    const inUse = new Set(observed.services.flatMap((s) => [s.taskDefinitionArn, ...s.deployments.map((d) => d.taskDefinitionArn)]));
    try {
      const pruned = await this.#o.revisions.prune(families, keep, inUse, this.#fence(key));
      if (pruned.deregistered.length + pruned.deleted.length > 0)
        this.#o.log.info({ key, deregistered: pruned.deregistered, deleted: pruned.deleted }, "pruned old task definition revisions");
    } catch (err) {
      // Hygiene can wait for the next completed deployment; the reconcile's work is done.
      this.#o.log.warn({ key, families, err: describeError(err) }, "could not prune old task definition revisions");
    }
  }

  /**
   * The pool key: the pool stack first (pooled tables, roles, log group,
   * target group, catch-all rule), then the pooled services wired to it.
   */
  async #reconcilePool(): Promise<ReconcileResult> {
    // The shared user pool and the pool's namespace belong to the pool, like the pooled tables.
    const users = await this.#o.identity.ensureSharedPool(this.#fence(POOL_KEY));
    const namespace = await this.#o.namespaces.ensure(
      poolNamespaceName(this.#o.settings.namePrefix),
      { [MANAGED_BY_KEY]: MANAGED_BY_VALUE, [TIER_KEY]: "basic" },
      this.#fence(POOL_KEY),
    );
    if (namespace.kind !== "ready") return this.#next(POOL_KEY, waiting(namespace.reason), "pool namespace");
    const state = await this.#o.infra.ensurePool(this.#fence(POOL_KEY));
    if (state.kind !== "ready") {
      const plan = state.kind === "inProgress" ? waiting(state.status) : blocked(state.reason);
      if (state.kind === "failed" && !state.terminal) return failed(new Error(state.reason), false);
      return this.#next(POOL_KEY, plan, "pool stack");
    }
    const context = this.#context(state.infra.tenantAccessRoleArn, users, namespace.namespace);
    const assigned = await this.#assignment(POOL_KEY);
    const before = this.#o.ledgers !== undefined ? await this.#o.ledgers.get(POOL_KEY) : this.#poolLedger;
    const desired = desiredPool(assigned.catalogue, this.#o.settings, state.infra, context);
    const { plan, observed, watch } = await this.#plan(desired, footprintForPool(this.#o.settings), before);
    if (plan.actions.length > 0) await this.#o.ecs.apply(plan.actions, observed, this.#fence(POOL_KEY));
    this.#logPlan(POOL_KEY, plan);
    const ledger = recordDeploys(watch.ledger, plan.actions, desired, observed, this.#now());
    if (!sameLedger(ledger, before)) {
      if (this.#o.ledgers !== undefined) await this.#o.ledgers.put(POOL_KEY, ledger, this.#fence(POOL_KEY));
      else this.#poolLedger = ledger;
    }
    await this.#prune(watch, observed, POOL_KEY);
    const failure = await this.#rolloutFailure(POOL_KEY, assigned, watch, undefined);
    if (failure !== undefined) {
      // The pool has no record to show it: the rollout's status does.
      await this.#o.catalogues?.announced(POOL_KEY, failure.rolloutId, this.#fence(POOL_KEY));
      return requeueAfter(this.#o.pollMs, failure.message);
    }
    this.#reportOutcome(POOL_KEY, assigned.hash, plan.converged ? "healthy" : "waiting");
    return this.#next(POOL_KEY, plan, "pool converging");
  }

  async #reconcileTenant(tenantId: string, signal: AbortSignal, context: ReconcileContext | undefined): Promise<ReconcileResult> {
    const item = await this.#o.store.get(tenantId);
    // A tenant a rollout counted on that has nothing of its own to roll out any more: offboarded, invalid, refused.
    const notApplicable = () => this.#reportOutcome(tenantId, "", "notApplicable");
    if (item === undefined) {
      notApplicable();
      return this.#reconcileDeleted(tenantId, signal);
    }

    const previous = readStatus(item);
    const validation = validateRecord(item);
    if (!validation.ok) {
      // A bad record never changes or removes what the tenant already has: we
      // report and stop here, before observing or planning anything.
      const error = new InvalidRecordError(`invalid tenant record ${tenantId}: ${validation.message}`);
      await this.#report(
        tenantId,
        previous,
        validation.specHash,
        {
          kind: "invalid",
          message: validation.message,
          registrationId: typeof item["tenantRegistrationId"] === "string" ? item["tenantRegistrationId"] : undefined,
        },
        // No attempt is scheduled: only an edit of the record (or a resync) brings it back.
        this.#lastError(error, "terminal", previous, context, undefined),
      );
      notApplicable();
      return failed(error, true);
    }
    const t: Turn = { tenantId, spec: validation.spec, specHash: validation.specHash, previous, data: {}, context, signal };
    if (!t.spec.sbtaws_active) {
      notApplicable();
      return this.#offboard(t);
    }

    // ALB header matching ignores case, tenant ids do not: `Acme` and `acme`
    // would each receive the other's requests. The first to claim the
    // lower-cased id keeps it for its life; the other is refused, owning nothing.
    // A backup of an earlier offboarding stays for restores, but no longer
    // stands for the next offboarding, which must export anew.
    if (previous?.backup?.forSpecHash !== undefined) {
      const { forSpecHash: _done, ...kept } = previous.backup;
      t.data.backup = kept;
    }
    if (previous?.caseClaimed !== true) {
      const claim = await this.#o.claims.claim(tenantId, this.#fence(tenantId), t.spec.tenantRegistrationId);
      if (!claim.ok) {
        const message = `tenant id "${tenantId}" equals tenant "${claim.holder}" ignoring case; the load balancer matches the tenantPath header without regard to case, so the two could receive each other's requests. Choose a tenant id that differs from "${claim.holder}" in more than case.`;
        await this.#report(tenantId, previous, t.specHash, { kind: "refused", spec: t.spec, reason: "TenantIdCaseConflict", message });
        notApplicable();
        return requeueAfter(this.#o.problemPollMs, message);
      }
      t.data.caseClaimed = true;
    }
    const refused = await this.#ensureIdentity(t);
    if (refused !== undefined) {
      await this.#report(tenantId, previous, t.specHash, { kind: "refused", spec: t.spec, reason: "AdminEmailTaken", message: refused });
      notApplicable();
      return requeueAfter(this.#o.problemPollMs, refused);
    }
    return this.#converge(t);
  }

  /**
   * The tenant's user pool (its own for a tenant onboarded into a silo tier,
   * else the shared one) and its admin user. The pool is chosen once and kept
   * across tier moves: Cognito cannot move users with their passwords. Runs
   * before anything else is made, so an email another tenant holds in the
   * shared pool leaves this tenant with nothing. Settled tenants skip it.
   * Returns the refusal message, if refused.
   */
  async #ensureIdentity(t: Turn): Promise<string | undefined> {
    const { tenantId, spec, previous } = t;
    const settled =
      previous?.identity !== undefined &&
      previous.observedSpecHash === t.specHash &&
      (previous.phase === "Ready" || previous.phase === "Suspended");
    if (settled) return undefined;
    let identity = previous?.identity;
    if (identity === undefined) {
      const shared = spec.tier === "basic";
      const pool = shared
        ? await this.#o.identity.ensureSharedPool(this.#fence(tenantId))
        : await this.#o.identity.ensureTenantPool(tenantId, this.#fence(tenantId));
      identity = { ...pool, shared };
    }
    if (spec.email !== undefined && spec.email !== "") {
      const admin = await this.#o.identity.ensureAdmin(identity, { tenantId, tier: spec.tier, email: spec.email }, this.#fence(tenantId));
      if (admin.kind === "conflict") {
        return `email ${spec.email} already belongs to a user of tenant "${admin.holder}" in the shared user pool; a user pool holds an email once. Give this tenant another admin email, or offboard "${admin.holder}" first.`;
      }
    }
    t.data.identity = identity;
    return undefined;
  }

  /**
   * An active tenant: its tier's stack and services, its routing, its data
   * in the right home (moving it when the tier's home changed), suspension.
   * Order matters and each step says why.
   */
  async #converge(t: Turn): Promise<ReconcileResult> {
    const { tenantId, spec, previous } = t;
    const prefix = this.#o.settings.namePrefix;
    const pool = poolTables(prefix);
    const desiredHome = homeOf(spec.tier);
    const currentHome = knownHome(previous, prefix, tenantId, pool);

    // A move starts when the record's tier needs the other home; it is steered
    // (aborted before its flip) when the record changes its mind.
    let move = previous?.migration;
    if (move !== undefined) move = steerMove(move, desiredHome);
    else if (currentHome !== undefined && currentHome !== desiredHome) {
      const from = previous?.servingTier ?? (currentHome === "pool" ? "basic" : "advanced");
      move = startMove(
        from,
        spec.tier,
        tablesOf(currentHome, prefix, tenantId, pool),
        tablesOf(desiredHome, prefix, tenantId, pool),
        this.#now(),
      );
    }
    if (move !== previous?.migration) t.data.migration = move;
    const serving = servingHome(move, currentHome, desiredHome);
    const siloTier = siloTierNow(spec, move, serving);

    // A silo tenant's services need its stack's roles, tables and target
    // group: until the stack is ready, ECS is left as it is.
    let infra: TenantInfra | undefined;
    if (siloTier !== undefined) {
      const state = await this.#o.infra.ensure(tenantId, siloTier, this.#fence(tenantId));
      if (state.kind !== "ready") {
        const plan = state.kind === "inProgress" ? waiting(state.status) : blocked(state.reason);
        // A failed stack operation that another attempt may get past is a failed reconcile, retried with backoff.
        const retry = state.kind === "failed" && !state.terminal ? new StackFailedError(state.reason) : undefined;
        const lastError = retry && this.#lastError(retry, "transient", previous, t.context, t.context?.retryDelayMs());
        await this.#report(
          tenantId,
          previous,
          t.specHash,
          { kind: "planned", spec, plan, arns: previousArns(previous), data: t.data },
          lastError,
        );
        if (retry) return failed(retry, false);
        return this.#next(tenantId, plan, "infrastructure stack");
      }
      infra = state.infra;
    }

    const routeAction: RouteAction | undefined = spec.suspended
      ? { kind: "deny" }
      : serving === "silo" && infra
        ? { kind: "forward", targetGroupArn: infra.targetGroupArn }
        : undefined;
    let routeProblem: string | undefined;
    let routeRetry: Error | undefined;
    const route = async () => {
      const outcome = await this.#o.routes.converge(tenantId, routeAction, t.data.route ?? previous?.route, this.#fence(tenantId));
      if (outcome.kind === "blocked") {
        routeProblem = outcome.reason;
        routeRetry = outcome.retry;
      } else t.data.route = outcome.route;
    };
    // Suspension blocks routing before it scales to 0, so no request meets a stopping task.
    // A tenant's first rule goes before its services: ECS takes a target group only once a rule on
    // its placed listener attaches it to a load balancer (a tenant with no place waits, Degraded).
    if (spec.suspended || (t.data.route ?? previous?.route) === undefined) await route();

    // Service Connect needs the tenant's namespace before its services: made
    // without it, they would be updated once more when it appears.
    let namespace: NamespaceInfo | undefined;
    if (siloTier !== undefined) {
      const ns = await this.#o.namespaces.ensure(
        tenantNamespaceName(this.#o.settings.namePrefix, tenantId),
        { [MANAGED_BY_KEY]: MANAGED_BY_VALUE, [TENANT_ID_KEY]: tenantId, [TIER_KEY]: siloTier },
        this.#fence(tenantId),
      );
      if (ns.kind !== "ready") {
        const plan = waiting(ns.reason);
        await this.#report(tenantId, previous, t.specHash, { kind: "planned", spec, plan, arns: previousArns(previous), data: t.data });
        return this.#next(tenantId, plan, "namespace");
      }
      namespace = ns.namespace;
    }

    const footprint = footprintForTenant(tenantId, this.#o.settings);
    const identity = t.data.identity ?? previous?.identity;
    const context = this.#context(infra?.tenantAccessRoleArn, identity, namespace);
    const assigned = await this.#assignment(tenantId);
    const desired =
      siloTier !== undefined
        ? desiredForTenant({ ...spec, tier: siloTier }, assigned.catalogue, this.#o.settings, infra, context)
        : NOTHING;
    const planned = await this.#plan(desired, footprint, previous?.deployments ?? {});
    const { observed, watch } = planned;
    let plan = planned.plan;
    this.#logPlan(tenantId, plan);
    const outcome = plan.actions.length > 0 ? await this.#o.ecs.apply(plan.actions, observed, this.#fence(tenantId)) : undefined;
    // What this reconcile deployed is watched to its end; what ECS failed is not deployed again.
    const ledger = recordDeploys(watch.ledger, plan.actions, desired, observed, this.#now());
    if (!sameLedger(ledger, previous?.deployments)) t.data.deployments = Object.keys(ledger).length > 0 ? ledger : undefined;
    await this.#prune(watch, observed, tenantId);
    const rolloutFailure = siloTier === undefined ? undefined : await this.#rolloutFailure(tenantId, assigned, watch, spec.apps);
    if (rolloutFailure !== undefined) {
      const generic = new Set(watch.blocked.values());
      plan = { ...plan, problems: [...plan.problems.filter((p) => !generic.has(p)), rolloutFailure.message], converged: false };
    }

    // Resuming reverses suspension: tasks run again before requests are let in.
    // A tenant that never had a rule gets its forward at once (nothing to reverse).
    if (!spec.suspended && routeProblem === undefined && (plan.converged || (t.data.route ?? previous?.route) === undefined)) await route();
    if (routeProblem !== undefined) plan = { ...plan, problems: [...plan.problems, routeProblem], converged: false };

    // The data: a move under way advances as far as it can; otherwise the
    // tenant's tables are recorded once its home has them.
    if (move !== undefined && !spec.suspended) {
      const m = move;
      const result = await this.#moves.run(m, {
        tenantId,
        fence: this.#fence(tenantId),
        signal: t.signal,
        now: this.#now,
        drainMs: this.#o.drainMs,
        stillWanted: async () => {
          const item = await this.#o.store.get(tenantId);
          const v = item === undefined ? undefined : validateRecord(item);
          return v !== undefined && v.ok && v.spec.sbtaws_active && homeOf(v.spec.tier) === homeOf(m.to);
        },
        targetReady: async () => (homeOf(m.to) === "silo" ? infra !== undefined && plan.converged : this.#tablesActive(pool)),
        flipRouting: async () => {
          const action: RouteAction | undefined =
            homeOf(m.to) === "silo" ? (infra ? { kind: "forward", targetGroupArn: infra.targetGroupArn } : undefined) : undefined;
          if (homeOf(m.to) === "silo" && action === undefined) return false;
          const flipped = await this.#o.routes.converge(tenantId, action, t.data.route ?? previous?.route, this.#fence(tenantId));
          if (flipped.kind === "blocked") throw new Error(`switching routing: ${flipped.reason}`);
          t.data.route = flipped.route;
          return true;
        },
        // Only once this reconcile no longer wanted the silo's services (and they are gone) may its stack and tables go.
        siloGone: async () => siloTier === undefined && (await this.#removeSilo(t, plan)) === undefined,
        save: async (next, flipped) => {
          t.data.migration = next;
          if (flipped) {
            t.data.tables = flipped.tables;
            t.data.servingTier = flipped.servingTier;
          }
          await this.#saveProgress(t, next ? describeMove(next) : "tier move complete");
        },
      });
      if (result.kind === "wait") plan = { ...plan, waitingFor: [result.reason, ...plan.waitingFor], converged: false };
      else move = undefined;
    } else if (move === undefined) {
      const home = currentHome ?? desiredHome;
      if (previous?.tables === undefined) {
        const ready = home === "silo" ? infra !== undefined : await this.#tablesActive(pool);
        if (ready) t.data.tables = tablesOf(home, prefix, tenantId, pool);
        else plan = { ...plan, waitingFor: [...plan.waitingFor, "the pooled tables"], converged: false };
      }
      if (t.data.servingTier === undefined && previous?.servingTier !== spec.tier && (plan.converged || currentHome === undefined))
        t.data.servingTier = spec.tier;
      // Silo leftovers of a basic tenant (a move that retired or aborted; an
      // older version's stack) go once the silo does not serve: services
      // first, then the stack, then the retained tables.
      if (home === "pool" && plan.converged) {
        const pending = await this.#removeSilo(t, plan);
        if (pending !== undefined) plan = pending;
      }
    }

    const arns = ownedArns(desired, observed, outcome, infra?.stackId);
    // No listener with room: Degraded now, and retried with backoff (a place may free up; a restart with another listener makes one).
    const routeError = routeRetry && this.#lastError(routeRetry, "transient", previous, t.context, t.context?.retryDelayMs());
    await this.#report(
      tenantId,
      previous,
      t.specHash,
      {
        kind: "planned",
        spec,
        plan,
        arns,
        data: t.data,
        ...(rolloutFailure !== undefined ? { rolloutFailure: { rolloutId: rolloutFailure.rolloutId } } : {}),
      },
      routeError,
    );
    if (rolloutFailure !== undefined) {
      // Announced (the provisionFailure above): the next look runs the previous catalogue again.
      await this.#o.catalogues?.announced(tenantId, rolloutFailure.rolloutId, this.#fence(tenantId));
      return requeueAfter(this.#o.pollMs, rolloutFailure.message);
    }
    if (routeRetry !== undefined) return failed(routeRetry, false);
    this.#reportOutcome(tenantId, assigned.hash, siloTier === undefined ? "notApplicable" : plan.converged ? "healthy" : "waiting");
    if (move !== undefined && plan.waitingFor.length > 0 && plan.problems.length === 0 && plan.actions.length === 0) {
      // A move's steps wait on time (drain) or on data, not on ECS: look again soon, not with ECS's doubling backoff.
      return requeueAfter(this.#o.pollMs, plan.waitingFor[0] ?? "tier move");
    }
    return this.#next(tenantId, plan, "applied changes");
  }

  /**
   * Removes a silo side that no longer serves: the stack (whose tables are
   * retained by policy, so no stack operation can drop data), then the
   * tables themselves. Undefined once all is gone; else the plan to report.
   * Skipped for a tenant that settled at this spec without a stack.
   */
  async #removeSilo(t: Turn, plan: Plan, always = false): Promise<Plan | undefined> {
    const p = t.previous;
    const settled =
      !always &&
      p?.observedSpecHash === t.specHash &&
      p.stackArn === undefined &&
      p.migration === undefined &&
      t.data.migration === undefined &&
      (p.phase === "Ready" || p.phase === "Suspended" || p.phase === "Deprovisioned");
    if (settled) return undefined;
    if (!plan.converged) return plan;
    const removal = await this.#o.infra.remove(t.tenantId, this.#fence(t.tenantId));
    if (removal.kind !== "gone") return merge(plan, removal);
    // Cloud Map refuses while ECS still has the services' registrations in it.
    const ns = await this.#o.namespaces.remove(tenantNamespaceName(this.#o.settings.namePrefix, t.tenantId), this.#fence(t.tenantId));
    if (ns.kind !== "gone") return { ...plan, waitingFor: [...plan.waitingFor, ns.reason], converged: false };
    const silo = siloTables(this.#o.settings.namePrefix, t.tenantId);
    for (const app of DATA_APPS) await this.#o.data.dropTable(silo[app], this.#fence(t.tenantId));
    return undefined;
  }

  /** What the apps' environment is made of (src/tiers/desired.ts gives each container what its catalogue entry asks for). */
  #context(tenantAccessRoleArn: string | undefined, users: UserPoolRef | undefined, namespace: NamespaceInfo | undefined): AppContext {
    return {
      ...this.#o.account,
      ...(tenantAccessRoleArn !== undefined ? { tenantAccessRoleArn } : {}),
      ...(users !== undefined
        ? { identity: { userPoolId: users.userPoolId, appClientId: users.appClientId, issuer: this.#o.identity.issuer(users) } }
        : {}),
      ...(namespace !== undefined ? { namespace } : {}),
    };
  }

  async #tablesActive(tables: Tables): Promise<boolean> {
    for (const app of DATA_APPS) if ((await this.#o.data.tableStatus(tables[app])) !== "ACTIVE") return false;
    return true;
  }

  /** Writes a checkpoint of a multi-step operation (a move, an offboarding) as the tenant's status. */
  async #saveProgress(t: Turn, message: string): Promise<void> {
    const plan = waiting(message);
    await this.#report(t.tenantId, t.previous, t.specHash, {
      kind: "planned",
      spec: t.spec,
      plan,
      arns: previousArns(t.previous),
      data: t.data,
    });
    // Later writes in this reconcile compare against what was just written.
    const item = await this.#o.store.get(t.tenantId);
    t.previous = item ? readStatus(item) : t.previous;
  }

  /**
   * Offboarding (sbtaws_active=false): requests stop first (the rule goes),
   * then the services, then the data is exported, and only then deleted;
   * the stack, its retained tables, the priority and the id claim go last.
   */
  async #offboard(t: Turn): Promise<ReconcileResult> {
    const { tenantId, spec, previous } = t;
    const prefix = this.#o.settings.namePrefix;
    const pool = poolTables(prefix);
    if (previous?.phase === "Deprovisioned" && previous.observedSpecHash === t.specHash) return done();

    let plan: Plan;
    // Requests are refused (403) until the very end: with the rule gone the
    // pool's catch-all would take them, and writes could land after the purge.
    const routed = await this.#o.routes.converge(tenantId, { kind: "deny" }, previous?.route, this.#fence(tenantId));
    if (routed.kind === "blocked") plan = blocked(routed.reason);
    else {
      t.data.route = routed.route;
      ({ plan } = await this.#planAndApply(tenantId, NOTHING));
    }

    if (plan.converged && previous?.backup?.forSpecHash !== t.specHash) {
      // Exported from where the data lives now; a move under way has its
      // authoritative copy there too (the other side is a partial copy).
      // A fresh prefix per export: an earlier offboarding's export is never overwritten.
      const home = knownHome(previous, prefix, tenantId, pool) ?? homeOf(spec.tier);
      const tables = previous?.tables ?? tablesOf(home, prefix, tenantId, pool);
      const location = { bucket: this.#o.backupBucket, prefix: `offboarded/${tenantId}/${compactTime(this.#now())}/` };
      const manifest = await this.#o.data.exportTenant(tenantId, tables, location, this.#fence(tenantId), t.signal);
      // The checkpoint: from here on, deleting the tenant's data loses nothing.
      t.data.backup = {
        location: manifest.location,
        exportedAt: manifest.exportedAt,
        counts: { orders: manifest.tables.orders.itemCount, products: manifest.tables.products.itemCount },
        forSpecHash: t.specHash,
      };
      await this.#saveProgress(t, `exported to ${manifest.location}`);
    }
    if (plan.converged && previous?.identity !== undefined) {
      // After the export, like the data: the users go, and a pool of the tenant's own with them.
      const pool: UserPoolRef = previous.identity;
      await this.#o.identity.removeTenantUsers(pool, tenantId, this.#fence(tenantId));
      if (!previous.identity.shared) await this.#o.identity.deleteTenantPool(tenantId, this.#fence(tenantId));
      t.data.identity = undefined;
    }
    if (plan.converged) {
      // Both homes: a move interrupted by the offboarding may have left items on either side.
      for (const app of DATA_APPS)
        if ((await this.#o.data.tableStatus(pool[app])) !== undefined)
          await this.#o.data.purge(tenantId, pool[app], this.#fence(tenantId), t.signal);
      const pending = await this.#removeSilo(t, plan, true);
      if (pending !== undefined) plan = pending;
    }
    if (plan.converged) {
      const unrouted = await this.#o.routes.converge(tenantId, undefined, t.data.route ?? previous?.route, this.#fence(tenantId));
      if (unrouted.kind === "blocked") plan = blocked(unrouted.reason);
    }
    if (plan.converged) {
      await this.#o.routes.release(tenantId, this.#fence(tenantId));
      await this.#o.claims.release(tenantId, this.#fence(tenantId));
      t.data = { ...t.data, caseClaimed: undefined, tables: undefined, migration: undefined, servingTier: undefined, route: undefined };
    }
    await this.#report(tenantId, t.previous, t.specHash, {
      kind: "planned",
      spec,
      plan,
      arns: { serviceArns: [], taskDefinitionArns: [] },
      data: t.data,
    });
    return this.#next(tenantId, plan, "offboarding");
  }

  async #planAndApply(key: string, desired: DesiredState): Promise<{ plan: Plan }> {
    const { plan, observed } = await this.#plan(desired, footprintForTenant(key, this.#o.settings));
    this.#logPlan(key, plan);
    if (plan.actions.length > 0) await this.#o.ecs.apply(plan.actions, observed, this.#fence(key));
    return { plan };
  }

  /**
   * When to look again. Right after acting, soon; while only waiting on ECS
   * (a rollout takes minutes on real ECS), less and less often, so a fleet of
   * converging tenants does not spend ECS's read budget of ~20 calls/s on polling.
   */
  #next(key: string, plan: Plan, doing: string): ReconcileResult {
    if (plan.problems.length > 0) {
      this.#waits.delete(key);
      return requeueAfter(this.#o.problemPollMs, plan.problems.join("; "));
    }
    if (plan.converged) {
      this.#waits.delete(key);
      return done();
    }
    const waits = plan.actions.length > 0 ? 0 : (this.#waits.get(key) ?? 0);
    this.#waits.set(key, waits + 1);
    const ms = Math.min(this.#o.maxPollMs, this.#o.pollMs * 2 ** waits);
    return requeueAfter(ms, plan.actions.length > 0 ? doing : (plan.waitingFor[0] ?? "waiting"));
  }

  /** The item is gone: remove whatever the tenant still owns, then announce it once. */
  async #reconcileDeleted(tenantId: string, signal: AbortSignal): Promise<ReconcileResult> {
    this.#phases.delete(tenantId);
    const footprint = footprintForTenant(tenantId, this.#o.settings);
    const planned = await this.#plan(NOTHING, footprint);
    const observed = planned.observed;
    let plan = planned.plan;
    this.#logPlan(tenantId, plan);
    // Durable before anything is removed: a restart from here on still
    // finishes the offboarding and owes SBT its announcement (ADR 0003).
    let removal = await this.#o.removals.get(tenantId);
    const noted = this.#noted.get(tenantId);
    // The tenant's claim on its id lives until its offboarding ends: held
    // with no record, it says a removal is owed even when the stream's REMOVE
    // was seen only by a process that is gone (level, not edge).
    const claim = removal === undefined ? await this.#o.claims.get(tenantId) : undefined;
    if (removal === undefined && (noted !== undefined || claim !== undefined || plan.actions.length > 0)) {
      // The registration id survives the item on the claim and on the resources' tags.
      const registrationId = noted?.registrationId ?? claim?.registrationId ?? tagOf(observed, TENANT_REGISTRATION_ID_KEY);
      removal = await this.#o.removals.record(
        { tenantId, removedAt: noted?.removedAt ?? this.#now().toISOString(), ...(registrationId !== undefined ? { registrationId } : {}) },
        this.#fence(tenantId),
      );
    }
    this.#noted.delete(tenantId);
    if (plan.actions.length > 0) {
      await this.#o.ecs.apply(plan.actions, observed, this.#fence(tenantId));
    }
    let backup: StatusEvent["detail"]["backup"];
    if (plan.converged && removal !== undefined) {
      const removed = await this.#removeDeletedTenantData(removal, plan, signal);
      plan = removed.plan;
      backup = removed.backup;
    } else if (plan.converged) plan = merge(plan, await this.#o.infra.remove(tenantId, this.#fence(tenantId)));
    if (plan.problems.length > 0) {
      await this.#publish(tenantId, [
        deletedEvent(tenantId, removal?.registrationId, "sbt_aws_deprovisionFailure", plan.problems.join("; ")),
      ]);
    }
    if (!plan.converged) return this.#next(tenantId, plan, "removing resources");
    this.#waits.delete(tenantId);
    if (removal !== undefined) {
      // Announced, then forgotten: a crash in between announces twice (at least once), never not at all.
      const event = deletedEvent(
        tenantId,
        removal.registrationId,
        "sbt_aws_deprovisionSuccess",
        "tenant record deleted; all tenant resources removed",
      );
      await this.#publish(tenantId, [backup ? { ...event, detail: { ...event.detail, backup } } : event]);
      await this.#o.removals.clear(tenantId, this.#fence(tenantId));
    }
    return done();
  }

  /**
   * Tenants that may owe an offboarding: recorded removals, and every tenant
   * holding its id claim (the caller, a resync, leaves out those whose record
   * it saw; for the rest the reconcile reads the record and decides).
   */
  async pendingRemovals(): Promise<readonly string[]> {
    const [removals, claims] = await Promise.all([this.#o.removals.list(), this.#o.claims.list()]);
    return [...new Set([...removals.map((r) => r.tenantId), ...claims.map((c) => c.tenantId)])];
  }

  /**
   * A deleted record leaves no status saying where the data lives, so each
   * home that still holds the tenant's items is exported (once: an export
   * whose manifest exists is not written again, so a crash half-way through
   * the deletion can never replace a full export with a partial one), then
   * the items, the stack, the retained tables, the rule and the claims go.
   */
  async #removeDeletedTenantData(
    removal: Removal,
    plan: Plan,
    signal: AbortSignal,
  ): Promise<{ plan: Plan; backup: StatusEvent["detail"]["backup"] }> {
    const { tenantId } = removal;
    const prefix = this.#o.settings.namePrefix;
    const homes: [DataHome, Tables][] = [
      ["pool", poolTables(prefix)],
      ["silo", siloTables(prefix, tenantId)],
    ];
    let backup: StatusEvent["detail"]["backup"];
    for (const [home, tables] of homes) {
      if ((await this.#o.data.tableStatus(tables.orders)) === undefined || (await this.#o.data.tableStatus(tables.products)) === undefined)
        continue;
      const at = {
        bucket: this.#o.backupBucket,
        prefix: `offboarded/${tenantId}/deleted-${compactTime(new Date(removal.removedAt))}-${home}/`,
      };
      if (await this.#o.data.exportExists(at)) {
        backup ??= { location: `s3://${at.bucket}/${at.prefix}`, counts: {} };
        continue;
      }
      const [orders, products] = await Promise.all([
        this.#o.data.digest(tenantId, tables.orders, signal),
        this.#o.data.digest(tenantId, tables.products, signal),
      ]);
      if (orders.count + products.count === 0) continue;
      const manifest = await this.#o.data.exportTenant(tenantId, tables, at, this.#fence(tenantId), signal);
      backup ??= {
        location: manifest.location,
        counts: { orders: manifest.tables.orders.itemCount, products: manifest.tables.products.itemCount },
      };
    }
    const pool = poolTables(prefix);
    for (const app of DATA_APPS)
      if ((await this.#o.data.tableStatus(pool[app])) !== undefined)
        await this.#o.data.purge(tenantId, pool[app], this.#fence(tenantId), signal);
    await this.#o.routes.removeAny(tenantId, this.#fence(tenantId));
    // Its users: in the shared pool by its group, and its own pool if it had one.
    await this.#o.identity.removeTenantUsers(
      await this.#o.identity.ensureSharedPool(this.#fence(tenantId)),
      tenantId,
      this.#fence(tenantId),
    );
    await this.#o.identity.deleteTenantPool(tenantId, this.#fence(tenantId));
    const stack = await this.#o.infra.remove(tenantId, this.#fence(tenantId));
    if (stack.kind !== "gone") return { plan: merge(plan, stack), backup };
    const ns = await this.#o.namespaces.remove(tenantNamespaceName(prefix, tenantId), this.#fence(tenantId));
    if (ns.kind !== "gone") return { plan: { ...plan, waitingFor: [...plan.waitingFor, ns.reason], converged: false }, backup };
    const silo = siloTables(prefix, tenantId);
    for (const app of DATA_APPS) await this.#o.data.dropTable(silo[app], this.#fence(tenantId));
    await this.#o.routes.release(tenantId, this.#fence(tenantId));
    await this.#o.claims.release(tenantId, this.#fence(tenantId));
    return { plan, backup };
  }

  /** Writes the status the situation calls for (with lastError when this reconcile failed) and sends its events. */
  async #report(
    tenantId: string,
    previous: TenantStatus | undefined,
    specHash: string,
    situation: Situation,
    lastError?: LastError,
  ): Promise<void> {
    const decision = decide(
      {
        tenantId,
        specHash,
        previous,
        now: this.#now(),
        apiGatewayUrl: this.#o.apiGatewayUrl ?? "",
        ...(lastError !== undefined ? { lastError } : {}),
      },
      situation,
    );
    this.#track(tenantId, decision.status);
    // Events first, then the status that records them as sent: a crash in
    // between re-sends (at least once) rather than losing the announcement.
    await this.#publish(tenantId, decision.events);
    if (decision.changed) {
      const written = await this.#o.store.writeStatus(tenantId, decision.status, this.#fence(tenantId));
      if (!written) this.#o.log.info({ tenantId }, "record deleted while reconciling; status not written");
      else if (previous?.phase !== decision.status.phase) {
        this.#o.log.info(
          { tenantId, phase: decision.status.phase, from: previous?.phase, message: decision.status.message },
          "tenant phase changed",
        );
      }
    }
  }

  async #publish(tenantId: string, events: readonly StatusEvent[]): Promise<void> {
    if (events.length === 0) return;
    this.#fence(tenantId).assertHeld();
    await this.#o.events.publish(events);
  }

  #track(tenantId: string, status: TenantStatus): void {
    const since = status.phaseSince !== undefined ? Date.parse(status.phaseSince) : NaN;
    this.#phases.set(tenantId, { phase: status.phase, since: Number.isNaN(since) ? this.#now().getTime() : since });
  }

  /**
   * Every failure is written on the tenant (status.lastError: what, how many
   * in a row, when the next attempt is), one write per failed attempt, which
   * the backoff bounds. Transient trouble keeps the phase while the queue
   * retries; once it persists, or when it cannot go away by waiting, the
   * tenant is Degraded and SBT is told.
   */
  async #onError(key: string, err: unknown, context: ReconcileContext | undefined): Promise<ReconcileResult> {
    const error = err instanceof Error ? err : new Error(String(err));
    const retryable = isRetryable(err);
    let retries = (context?.failures ?? 0) + 1;
    // Without the lease no write may land; the leader will report what it sees.
    if (key !== POOL_KEY && !isLeaseLost(err)) {
      try {
        const item = await this.#o.store.get(key);
        const v = item ? validateRecord(item) : undefined;
        if (item && v?.ok) {
          const previous = readStatus(item);
          const lastError = retryable
            ? this.#lastError(error, "transient", previous, context, context?.retryDelayMs())
            : this.#lastError(error, "terminal", previous, context, this.#o.problemPollMs);
          retries = lastError.retries;
          if (!retryable || retries >= this.#o.degradeAfterFailures) {
            await this.#report(key, previous, v.specHash, { kind: "error", spec: v.spec, message: describeError(err) }, lastError);
          } else {
            await this.#writeFailure(key, previous, v.specHash, lastError);
          }
        }
      } catch (reportErr) {
        this.#o.log.warn({ key, err: describeError(reportErr) }, "could not report reconcile failure on the tenant");
      }
    }
    this.#o.log.warn({ key, err: describeError(err), retryable, consecutiveFailures: retries }, "reconcile failed");
    // Waiting cannot fix what is not retryable, but a person can without editing the record (a tag, a permission): look again slowly.
    return retryable ? failed(error, false) : failed(error, true, this.#o.problemPollMs);
  }

  /**
   * The failure of this attempt as status.lastError. Failed attempts in a
   * row: the queue's count, or the status's when that is higher (the queue
   * forgets on a terminal failure and at a new leader; a success clears the
   * status's). `retryInMs`: when the next attempt comes, if one is scheduled.
   */
  #lastError(
    error: Error,
    kind: LastError["kind"],
    previous: TenantStatus | undefined,
    context: ReconcileContext | undefined,
    retryInMs: number | undefined,
  ): LastError {
    const now = this.#now();
    return {
      message: error.message,
      kind,
      type: errorType(error),
      at: now.toISOString(),
      retries: Math.max(context?.failures ?? 0, previous?.lastError?.retries ?? 0) + 1,
      ...(retryInMs !== undefined ? { nextAttemptAt: new Date(now.getTime() + retryInMs).toISOString() } : {}),
    };
  }

  /** A failure that leaves the phase as it is: only lastError changes (no events: nothing new is known about the tenant). */
  async #writeFailure(tenantId: string, previous: TenantStatus | undefined, specHash: string, lastError: LastError): Promise<void> {
    const status = failureStatus({ specHash, previous, now: this.#now() }, lastError);
    this.#track(tenantId, status);
    const written = await this.#o.store.writeStatus(tenantId, status, this.#fence(tenantId));
    if (!written) this.#o.log.info({ tenantId }, "record deleted while reconciling; failure not written");
  }

  #logPlan(key: string, plan: Plan): void {
    if (plan.actions.length === 0) return;
    this.#o.log.info({ key, actions: plan.actions.map((a) => `${a.kind}: ${a.reason}`) }, "applying plan");
  }
}

/** 2026-11-30T12:00:00.123Z -> 20261130T120000123Z: sortable, and safe in an S3 key. */
function compactTime(at: Date): string {
  return at.toISOString().replace(/[-:.]/g, "");
}

/** One reconcile of one tenant: the record, the status it started from, and the data fields it sets. */
interface Turn {
  readonly tenantId: string;
  readonly spec: TenantSpec;
  readonly specHash: string;
  /** The status as last written (refreshed after each checkpoint). */
  previous: TenantStatus | undefined;
  data: DataFields;
  /** What the queue knows of earlier attempts, for a failure's lastError. */
  readonly context: ReconcileContext | undefined;
  /** Aborted when the controller stops: long data steps end early, at a checkpoint. */
  readonly signal: AbortSignal;
}

/**
 * Where the tenant's data lives now: what status.tables says; for a record
 * written by a version that kept no tables, a stack means silo; a tenant
 * never provisioned has no home yet.
 */
function knownHome(previous: TenantStatus | undefined, prefix: string, tenantId: string, pool: Tables): DataHome | undefined {
  if (previous?.tables !== undefined) return homeOfTables(previous.tables, prefix, tenantId, pool);
  if (previous?.stackArn !== undefined) return "silo";
  return undefined;
}

function readStatus(item: RawTenantItem): TenantStatus | undefined {
  const s = item["status"];
  return s !== null && typeof s === "object" && typeof (s as { phase?: unknown }).phase === "string" ? (s as TenantStatus) : undefined;
}

function previousArns(previous: TenantStatus | undefined): OwnedArns {
  return {
    serviceArns: previous?.serviceArns ?? [],
    taskDefinitionArns: previous?.taskDefinitionArns ?? [],
    ...(previous?.stackArn ? { stackArn: previous.stackArn } : {}),
    ...(previous?.clusterArn ? { clusterArn: previous.clusterArn } : {}),
  };
}

/** A plan with nothing to call that waits on something outside ECS. */
function waiting(what: string): Plan {
  return { actions: [], waitingFor: [what], problems: [], converged: false };
}

function blocked(problem: string): Plan {
  return { actions: [], waitingFor: [], problems: [problem], converged: false };
}

/** The ECS plan, extended with where the stack's removal stands. */
function merge(plan: Plan, removal: InfraRemoval): Plan {
  if (removal.kind === "gone") return plan;
  if (removal.kind === "inProgress") return { ...plan, waitingFor: [...plan.waitingFor, removal.status], converged: false };
  return { ...plan, problems: [...plan.problems, removal.reason], converged: false };
}

function ownedArns(
  desired: DesiredState,
  observed: ObservedState,
  outcome: ApplyOutcome | undefined,
  stackArn: string | undefined,
): OwnedArns {
  const wantedServices = new Set(desired.services.map((s) => `${s.cluster}/${s.name}`));
  const serviceArns = observed.services
    .filter((s) => s.status === "ACTIVE" && wantedServices.has(`${s.cluster}/${s.name}`))
    .map((s) => s.arn);
  const families = new Set(desired.taskDefinitions.map((t) => t.family));
  const registered = new Map(outcome?.registered ?? []);
  const taskDefinitionArns = [...families].flatMap((f) => {
    const arn = registered.get(f) ?? observed.taskDefinitions.find((t) => t.family === f)?.arn;
    return arn ? [arn] : [];
  });
  const created = outcome?.created ?? [];
  const clusterName = desired.clusters[0]?.name;
  const clusterArn =
    observed.clusters.find((c) => c.name === clusterName)?.arn ??
    created.find((a) => clusterName !== undefined && a.endsWith(`:cluster/${clusterName}`));
  return {
    ...(clusterArn ? { clusterArn } : {}),
    ...(stackArn ? { stackArn } : {}),
    serviceArns: [...new Set([...serviceArns, ...created.filter((a) => a.includes(":service/"))])],
    taskDefinitionArns,
  };
}

function tagOf(observed: ObservedState, key: string): string | undefined {
  for (const s of observed.services) if (s.tags[key]) return s.tags[key];
  return undefined;
}

function deletedEvent(
  tenantId: string,
  registrationId: string | undefined,
  detailType: "sbt_aws_deprovisionSuccess" | "sbt_aws_deprovisionFailure",
  reason: string,
): StatusEvent {
  return {
    detailType,
    detail: {
      tenantId,
      ...(registrationId !== undefined ? { tenantRegistrationId: registrationId } : {}),
      jobOutput: {
        tenantData: {},
        tenantRegistrationData: { registrationStatus: detailType === "sbt_aws_deprovisionSuccess" ? "Deleted" : "Failed" },
      },
      reason,
      specHash: hashSpec({ tenantId }),
      phase: detailType === "sbt_aws_deprovisionSuccess" ? "Deprovisioned" : "Degraded",
    },
  };
}
