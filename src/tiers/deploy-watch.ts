import type { AppName } from "../tenants/record.js";
import type { DeployRecord } from "../tenants/status.js";
import type { Action, DesiredService, DesiredState, ObservedService, ObservedState } from "./model.js";
import { serviceReadiness } from "./readiness.js";

/**
 * Watching our own deployments to their end, as pure functions.
 *
 * Every service runs with ECS's deployment circuit breaker and rollback: a
 * new task definition whose tasks fail to start is marked FAILED, and ECS
 * rolls the service back to the last deployment that completed. Once the
 * rollback is over, ECS drops the failed deployment from the service, so
 * the service simply runs its old revision again, and a diff that only
 * looked at the service would deploy the failing revision again, forever.
 *
 * So the controller remembers, per service, the content it deployed until
 * it sees the deployment finish (a ledger, kept in the tenant's status or,
 * for the pool, in the operator table). A service that, while a deployment
 * of ours is open, shows a FAILED deployment, or runs other content under a
 * deployment ECS started after ours, was failed by the circuit breaker. The
 * failure is kept while the same content is wanted: it is not deployed
 * again until the record or the catalogue changes.
 */

export type { DeployRecord };

/** Open and failed deployments, by service (`<cluster>/<name>`). */
export type DeployLedger = Readonly<Record<string, DeployRecord>>;

export interface DeployFailure {
  readonly service: string;
  readonly app: AppName;
  readonly image: string;
  readonly reason: string;
}

export interface Watch {
  readonly ledger: DeployLedger;
  /** Failures seen by this observation. */
  readonly newlyFailed: readonly DeployFailure[];
  /** Every failed deployment of content still wanted (new ones included), for the diff: do not deploy it again. */
  readonly blocked: ReadonlyMap<string, string>;
  readonly failures: readonly DeployFailure[];
  /** Services whose deployment of ours finished (steady on the content): their old revisions may be pruned. */
  readonly completed: readonly DesiredService[];
}

export const serviceKey = (cluster: string, name: string): string => `${cluster}/${name}`;

/** Reads the ledger against what ECS shows now. */
export function watchDeploys(ledger: DeployLedger, desired: DesiredState, observed: ObservedState, now: Date): Watch {
  const services = new Map(desired.services.map((s) => [serviceKey(s.cluster, s.name), s]));
  const hashes = new Map(desired.taskDefinitions.map((t) => [t.family, t.contentHash]));
  const seen = new Map(observed.services.map((o) => [serviceKey(o.cluster, o.name), o]));
  const next: Record<string, DeployRecord> = {};
  const newlyFailed: DeployFailure[] = [];
  const failures: DeployFailure[] = [];
  const blocked = new Map<string, string>();
  const completed: DesiredService[] = [];
  for (const [key, record] of Object.entries(ledger)) {
    const s = services.get(key);
    // No longer wanted, or wanted with other content: the record has nothing more to say.
    if (s === undefined || hashes.get(s.taskDefinitionFamily) !== record.contentHash) continue;
    let entry = record;
    if (entry.failed === undefined) {
      const o = seen.get(key);
      const outcome = o === undefined || o.status !== "ACTIVE" ? "open" : judge(o, entry);
      if (outcome === "completed") {
        completed.push(s);
        continue;
      }
      if (outcome !== "open") {
        entry = { ...entry, failed: { reason: outcome.failed, at: now.toISOString() } };
        newlyFailed.push({ service: key, app: s.app, image: entry.image, reason: outcome.failed });
      }
    }
    next[key] = entry;
    if (entry.failed !== undefined) {
      failures.push({ service: key, app: s.app, image: entry.image, reason: entry.failed.reason });
      blocked.set(key, failureMessage(s, entry));
    }
  }
  return { ledger: next, newlyFailed, blocked, failures, completed };
}

function judge(o: ObservedService, entry: DeployRecord): "open" | "completed" | { readonly failed: string } {
  const primary = o.deployments.find((d) => d.status === "PRIMARY");
  const failedDeployment = o.deployments.find((d) => d.rolloutState === "FAILED");
  if (o.taskDefinitionContentHash === entry.contentHash) {
    // Without rollback the service stays on the failed revision, with no task running.
    if (primary?.rolloutState === "FAILED") return { failed: primary.rolloutStateReason ?? "the deployment failed" };
    return serviceReadiness(o, { contentHash: entry.contentHash, arn: undefined }).kind === "steady" ? "completed" : "open";
  }
  if (failedDeployment !== undefined)
    return { failed: `${failedDeployment.rolloutStateReason ?? "the deployment failed"}; ECS rolled the service back` };
  // Our update not shown yet: the service still reports the deployment it had before.
  if (primary === undefined || primary.id === entry.replaced) return "open";
  const why =
    primary.rolloutStateReason !== undefined && /circuit breaker/i.test(primary.rolloutStateReason)
      ? primary.rolloutStateReason
      : undefined;
  return {
    failed: why ?? "ECS rolled the service back to its previous task definition (deployment circuit breaker)",
  };
}

function failureMessage(s: DesiredService, entry: DeployRecord): string {
  return `service ${s.name} in ${s.cluster}: ${entry.image} failed to deploy: ${entry.failed?.reason ?? "failed"}; the service keeps its previous task definition, and ${entry.image} is not deployed again until the record or the catalogue changes`;
}

/** Opens a record for every service the plan deploys new content to (create, or a new task definition). */
export function recordDeploys(
  ledger: DeployLedger,
  actions: readonly Action[],
  desired: DesiredState,
  observed: ObservedState,
  now: Date,
): DeployLedger {
  const next: Record<string, DeployRecord> = { ...ledger };
  const tds = new Map(desired.taskDefinitions.map((t) => [t.family, t]));
  for (const a of actions) {
    const target =
      a.kind === "createService"
        ? { cluster: a.service.cluster, name: a.service.name, family: a.taskDefinitionFamily }
        : a.kind === "updateService" && a.taskDefinitionFamily !== undefined
          ? { cluster: a.cluster, name: a.name, family: a.taskDefinitionFamily }
          : undefined;
    const td = target && tds.get(target.family);
    if (target === undefined || td === undefined) continue;
    const before = observed.services.find((o) => o.cluster === target.cluster && o.name === target.name && o.status === "ACTIVE");
    const replaced = before?.deployments.find((d) => d.status === "PRIMARY")?.id;
    next[serviceKey(target.cluster, target.name)] = {
      contentHash: td.contentHash,
      image: td.containers[0]?.image ?? td.family,
      startedAt: now.toISOString(),
      ...(replaced !== undefined ? { replaced } : {}),
    };
  }
  return next;
}

/** True when two ledgers say the same (so the status need not be written for it). */
export function sameLedger(a: DeployLedger | undefined, b: DeployLedger | undefined): boolean {
  return JSON.stringify(a ?? {}) === JSON.stringify(b ?? {});
}
