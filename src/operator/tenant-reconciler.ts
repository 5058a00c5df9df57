import type { Logger } from "pino";
import type { Catalogue } from "../apps/catalogue.js";
import { failed, requeueAfter, done, type ReconcileResult } from "../reconciler/result.js";
import { validateRecord, hashSpec } from "../tenants/record.js";
import { PHASES, type Phase, type TenantStatus } from "../tenants/status.js";
import { desiredForTenant, desiredPool, footprintForPool, footprintForTenant, POOL_KEY, TENANT_REGISTRATION_ID_KEY, type TierSettings } from "../tiers/desired.js";
import { diff } from "../tiers/diff.js";
import { NOTHING, type DesiredState, type Footprint, type ObservedState, type Plan } from "../tiers/model.js";
import { describeError, isRetryable } from "./errors.js";
import type { ApplyOutcome, EcsPort, EventPublisher, Fence, InfraPort, InfraRemoval, PlannedCall, RawTenantItem, StatusEvent, TenantInfra, TenantStore } from "./ports.js";
import { decide, type OwnedArns, type Situation } from "./status-policy.js";

export interface TenantReconcilerOptions {
  readonly store: TenantStore;
  readonly ecs: EcsPort;
  readonly infra: InfraPort;
  readonly events: EventPublisher;
  readonly fence: Fence;
  readonly catalogue: Catalogue;
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

/** What one reconcile did, for `tenantctl plan`, logs and tests. */
export interface ReconcileReport {
  readonly key: string;
  readonly plan: Plan | undefined;
  readonly outcome: ApplyOutcome | undefined;
}

/**
 * reconcile(tenantId): read the record, compute what should exist, read what
 * does exist, make the difference, and tell SBT. Level-triggered: it never
 * asks what event brought it here, so running it twice, or after a crash at
 * any line, converges on the same result.
 */
export class TenantReconciler {
  readonly #o: Required<Pick<TenantReconcilerOptions, "pollMs" | "maxPollMs" | "problemPollMs" | "degradeAfterFailures">> & TenantReconcilerOptions;
  readonly #now: () => Date;
  /** Keys whose record was deleted and whose deprovisionSuccess is still owed. Lost on restart; see ADR 0003. */
  readonly #removed = new Map<string, string | undefined>();
  readonly #failures = new Map<string, number>();
  /** Consecutive reconciles that found a key only waiting on ECS: its next look comes later each time. */
  readonly #waits = new Map<string, number>();
  /** Last phase written per tenant, for the tenants-by-phase gauge. */
  readonly #phases = new Map<string, Phase>();

  constructor(options: TenantReconcilerOptions) {
    this.#o = { pollMs: 1000, maxPollMs: 30_000, problemPollMs: 60_000, degradeAfterFailures: 5, ...options };
    this.#now = options.now ?? (() => new Date());
  }

  /** Tenants by the phase this process last saw or wrote. */
  phaseCounts(): Record<Phase, number> {
    const counts = Object.fromEntries(PHASES.map((p) => [p, 0])) as Record<Phase, number>;
    for (const phase of this.#phases.values()) counts[phase] += 1;
    return counts;
  }

  /** The stream saw the item removed: a deprovisionSuccess is owed once its resources are gone. */
  noteRemoved(tenantId: string, tenantRegistrationId: string | undefined): void {
    this.#removed.set(tenantId, tenantRegistrationId);
  }

  readonly reconcile = async (key: string, _signal: AbortSignal): Promise<ReconcileResult> => {
    try {
      const result = key === POOL_KEY ? await this.#reconcilePool() : await this.#reconcileTenant(key);
      this.#failures.delete(key);
      return result;
    } catch (err) {
      return this.#onError(key, err);
    }
  };

  /**
   * What reconcile would do now for a key, without making any write
   * (`tenantctl plan`): the ECS plan, plus the infrastructure calls.
   */
  async planFor(key: string): Promise<{ plan: Plan; infraCalls: readonly PlannedCall[]; invalid?: string; noRecord?: true }> {
    if (key === POOL_KEY) return { ...(await this.#planPool()), infraCalls: [] };
    const item = await this.#o.store.get(key);
    const footprint = footprintForTenant(key, this.#o.settings);
    const v = item === undefined ? undefined : validateRecord(item);
    if (v !== undefined && !v.ok) {
      return { plan: blocked(v.message), infraCalls: [], invalid: v.message };
    }
    const spec = v?.spec;
    const siloTier = spec?.sbtaws_active && spec.tier !== "basic" ? spec.tier : undefined;
    const infraCalls = await this.#o.infra.preview(key, siloTier);
    if (spec === undefined || siloTier === undefined) {
      const { plan } = await this.#plan(spec ? desiredForTenant(spec, this.#o.catalogue, this.#o.settings) : NOTHING, footprint);
      return { plan, infraCalls, ...(item === undefined ? { noRecord: true as const } : {}) };
    }
    const infra = await this.#o.infra.current(key);
    if (infra === undefined) return { plan: waiting("the tenant's infrastructure stack"), infraCalls };
    return { plan: (await this.#plan(desiredForTenant(spec, this.#o.catalogue, this.#o.settings, infra), footprint)).plan, infraCalls };
  }

  /**
   * Observe and diff. Task definition families are read only to decide
   * registrations, so only the desired ones are looked at: a basic or
   * offboarded tenant costs no DescribeTaskDefinition at all.
   */
  async #plan(desired: DesiredState, footprint: Footprint) {
    const wanted = new Set(desired.taskDefinitions.map((t) => t.family));
    const observed = await this.#o.ecs.observe({ ...footprint, taskDefinitionFamilies: footprint.taskDefinitionFamilies.filter((f) => wanted.has(f)) });
    return { plan: diff(desired, observed, footprint), desired, observed };
  }

  async #planPool() {
    return this.#plan(desiredPool(this.#o.catalogue, this.#o.settings), footprintForPool(this.#o.settings));
  }

  async #reconcilePool(): Promise<ReconcileResult> {
    const { plan, observed } = await this.#planPool();
    if (plan.actions.length > 0) await this.#o.ecs.apply(plan.actions, observed, this.#o.fence);
    this.#logPlan(POOL_KEY, plan);
    return this.#next(POOL_KEY, plan, "pool converging");
  }

  async #reconcileTenant(tenantId: string): Promise<ReconcileResult> {
    const item = await this.#o.store.get(tenantId);
    if (item === undefined) return this.#reconcileDeleted(tenantId);

    const previous = readStatus(item);
    const validation = validateRecord(item);
    if (!validation.ok) {
      // A bad record never changes or removes what the tenant already has: we
      // report and stop here, before observing or planning anything.
      await this.#report(tenantId, previous, validation.specHash, {
        kind: "invalid",
        message: validation.message,
        registrationId: typeof item["tenantRegistrationId"] === "string" ? item["tenantRegistrationId"] : undefined,
      });
      return failed(new Error(`invalid tenant record ${tenantId}: ${validation.message}`), true);
    }

    const { spec, specHash } = validation;
    const footprint = footprintForTenant(tenantId, this.#o.settings);
    const siloTier = spec.sbtaws_active && spec.tier !== "basic" ? spec.tier : undefined;

    // A silo tenant's services need its stack's roles, tables and target
    // group: until the stack is ready, ECS is left as it is.
    let infra: TenantInfra | undefined;
    if (siloTier !== undefined) {
      const state = await this.#o.infra.ensure(tenantId, siloTier, this.#o.fence);
      if (state.kind !== "ready") {
        const plan = state.kind === "inProgress" ? waiting(state.status) : blocked(state.reason);
        // ECS is untouched meanwhile, so what the tenant owns is what the status already says.
        await this.#report(tenantId, previous, specHash, { kind: "planned", spec, plan, arns: previousArns(previous) });
        // A failed create is deleted and tried again: the queue's per-key backoff spaces the attempts.
        if (state.kind === "failed" && !state.terminal) return failed(new Error(state.reason), false);
        return this.#next(tenantId, plan, "infrastructure stack");
      }
      infra = state.infra;
    }

    const desired = desiredForTenant(spec, this.#o.catalogue, this.#o.settings, infra);
    let { plan, observed } = await this.#plan(desired, footprint);
    this.#logPlan(tenantId, plan);
    const outcome = plan.actions.length > 0 ? await this.#o.ecs.apply(plan.actions, observed, this.#o.fence) : undefined;

    // Services first, then the stack (and with it the listener rule), then the
    // priority. A tenant that settled at this spec owning no stack is not asked
    // again: for a fleet of basic tenants that is two calls saved per resync.
    const settledWithoutStack = previous?.observedSpecHash === specHash && previous.stackArn === undefined && (previous.phase === "Ready" || previous.phase === "Deprovisioned");
    if (siloTier === undefined && plan.converged && !settledWithoutStack) plan = merge(plan, await this.#o.infra.remove(tenantId, this.#o.fence));

    const arns = ownedArns(desired, observed, outcome, infra?.stackId);
    await this.#report(tenantId, previous, specHash, { kind: "planned", spec, plan, arns });
    return this.#next(tenantId, plan, "applied changes");
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
  async #reconcileDeleted(tenantId: string): Promise<ReconcileResult> {
    this.#phases.delete(tenantId);
    const footprint = footprintForTenant(tenantId, this.#o.settings);
    let { plan, observed } = await this.#plan(NOTHING, footprint);
    this.#logPlan(tenantId, plan);
    if (plan.actions.length > 0 || this.#removed.has(tenantId)) {
      // The registration id survives the item on the resources' tags.
      this.#removed.set(tenantId, this.#removed.get(tenantId) ?? tagOf(observed, TENANT_REGISTRATION_ID_KEY));
    }
    if (plan.actions.length > 0) {
      await this.#o.ecs.apply(plan.actions, observed, this.#o.fence);
    }
    if (plan.converged) plan = merge(plan, await this.#o.infra.remove(tenantId, this.#o.fence));
    if (plan.problems.length > 0) {
      await this.#publish([deletedEvent(tenantId, this.#removed.get(tenantId), "sbt_aws_deprovisionFailure", plan.problems.join("; "))]);
    }
    if (!plan.converged) return this.#next(tenantId, plan, "removing resources");
    this.#waits.delete(tenantId);
    if (this.#removed.has(tenantId)) {
      await this.#publish([deletedEvent(tenantId, this.#removed.get(tenantId), "sbt_aws_deprovisionSuccess", "tenant record deleted; all tenant resources removed")]);
      this.#removed.delete(tenantId);
    }
    return done();
  }

  async #report(tenantId: string, previous: TenantStatus | undefined, specHash: string, situation: Situation): Promise<void> {
    const decision = decide({ tenantId, specHash, previous, now: this.#now() }, situation);
    this.#phases.set(tenantId, decision.status.phase);
    // Events first, then the status that records them as sent: a crash in
    // between re-sends (at least once) rather than losing the announcement.
    await this.#publish(decision.events);
    if (decision.changed) {
      const written = await this.#o.store.writeStatus(tenantId, decision.status, this.#o.fence);
      if (!written) this.#o.log.info({ tenantId }, "record deleted while reconciling; status not written");
      else if (previous?.phase !== decision.status.phase) {
        this.#o.log.info({ tenantId, phase: decision.status.phase, from: previous?.phase, message: decision.status.message }, "tenant phase changed");
      }
    }
  }

  async #publish(events: readonly StatusEvent[]): Promise<void> {
    if (events.length === 0) return;
    this.#o.fence.assertHeld();
    await this.#o.events.publish(events);
  }

  async #onError(key: string, err: unknown): Promise<ReconcileResult> {
    const error = err instanceof Error ? err : new Error(String(err));
    const retryable = isRetryable(err);
    const count = (this.#failures.get(key) ?? 0) + 1;
    this.#failures.set(key, count);
    this.#o.log.warn({ key, err: describeError(err), retryable, consecutiveFailures: count }, "reconcile failed");
    // Transient trouble is the queue's business (backoff). Once it persists,
    // or when it cannot go away by waiting, the tenant and SBT are told.
    if (key !== POOL_KEY && (!retryable || count >= this.#o.degradeAfterFailures)) {
      try {
        const item = await this.#o.store.get(key);
        const v = item ? validateRecord(item) : undefined;
        if (item && v?.ok) {
          await this.#report(key, readStatus(item), v.specHash, { kind: "error", spec: v.spec, message: describeError(err) });
        }
      } catch (reportErr) {
        this.#o.log.warn({ key, err: describeError(reportErr) }, "could not report reconcile failure on the tenant");
      }
    }
    return retryable ? failed(error, false) : requeueAfter(this.#o.problemPollMs, describeError(err));
  }

  #logPlan(key: string, plan: Plan): void {
    if (plan.actions.length === 0) return;
    this.#o.log.info({ key, actions: plan.actions.map((a) => `${a.kind}: ${a.reason}`) }, "applying plan");
  }
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

function ownedArns(desired: DesiredState, observed: ObservedState, outcome: ApplyOutcome | undefined, stackArn: string | undefined): OwnedArns {
  const wantedServices = new Set(desired.services.map((s) => `${s.cluster}/${s.name}`));
  const serviceArns = observed.services.filter((s) => s.status === "ACTIVE" && wantedServices.has(`${s.cluster}/${s.name}`)).map((s) => s.arn);
  const families = new Set(desired.taskDefinitions.map((t) => t.family));
  const registered = new Map(outcome?.registered ?? []);
  const taskDefinitionArns = [...families].flatMap((f) => {
    const arn = registered.get(f) ?? observed.taskDefinitions.find((t) => t.family === f)?.arn;
    return arn ? [arn] : [];
  });
  const created = outcome?.created ?? [];
  const clusterName = desired.clusters[0]?.name;
  const clusterArn =
    observed.clusters.find((c) => c.name === clusterName)?.arn ?? created.find((a) => clusterName !== undefined && a.endsWith(`:cluster/${clusterName}`));
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

function deletedEvent(tenantId: string, registrationId: string | undefined, detailType: "sbt_aws_deprovisionSuccess" | "sbt_aws_deprovisionFailure", reason: string): StatusEvent {
  return {
    detailType,
    detail: {
      tenantId,
      ...(registrationId !== undefined ? { tenantRegistrationId: registrationId } : {}),
      jobOutput: { tenantData: {}, tenantRegistrationData: { registrationStatus: detailType === "sbt_aws_deprovisionSuccess" ? "Deleted" : "Failed" } },
      reason,
      specHash: hashSpec({ tenantId }),
      phase: detailType === "sbt_aws_deprovisionSuccess" ? "Deprovisioned" : "Degraded",
    },
  };
}
