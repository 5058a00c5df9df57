import { SurveyGeneration } from "./survey-generation.js";
import type { Rule } from "@aws-sdk/client-elastic-load-balancing-v2";
import type { Tags } from "../tiers/model.js";

/** What one resync's batched reads of the listeners saw (ListenerRoutes.survey). */
export interface RuleReads {
  /** When the reads began (epoch ms): the age of everything here counts from then. */
  readonly at: number;
  /** Every rule of each listener read to its last page, by listener ARN. */
  readonly rules: ReadonlyMap<string, readonly Rule[]>;
  /** Tags of the rules whose tenant the survey covered, by rule ARN. */
  readonly tags: ReadonlyMap<string, Tags>;
  /** The tenants whose rules' tags were read; absent: every tenant's. */
  readonly covers?: (tenantId: string) => boolean;
}

/** The snapshot's word on one tenant: its rule as a live observe would find it. */
export interface RuleAnswer {
  readonly rule: Rule;
  readonly listenerArn: string;
  readonly tags: Tags;
}

/**
 * The listener-rule twin of ObservationSnapshot (docs/adr/0018): what a
 * resync's survey of the listeners read, so the reconciles it queues observe
 * their rule without two ELB reads each. Same rules of use:
 * - given only while the reads are younger than `maxAgeMs`;
 * - once per tenant: a requeue while converging reads live;
 * - a write by this process to a rule or for a tenant, made since the survey
 *   began, withdraws the snapshot's word on them;
 * - never an answer about a listener not read to its end, or a tenant whose
 *   rules' tags were not read (another controller's share);
 * - never "no rule": the create that would follow must not rest on an old read.
 * `find` decides which rule is the tenant's, exactly as the live observe does.
 */
export class RuleSnapshot {
  readonly #maxAgeMs: number;
  readonly #now: () => number;
  readonly #generation = new SurveyGeneration();
  #reads: RuleReads | undefined;
  /** Tenants that had their answer, or were written for, since the survey began. */
  #spent = new Set<string>();
  /** Rules this process modified or deleted since the survey began. */
  #written = new Set<string>();

  constructor(maxAgeMs: number, now: () => number) {
    this.#maxAgeMs = maxAgeMs;
    this.#now = now;
  }

  /** A survey starts reading: from now on writes are kept. Returns the token prime() needs. */
  begin(): number {
    this.clear();
    return this.#generation.open();
  }

  /** The survey's reads, under its begin()'s token; ignored after another survey began or a clear. */
  prime(token: number, reads: RuleReads): void {
    if (this.#generation.accepts(token)) this.#reads = reads;
  }

  /** The survey under `token` failed: unless another began since, nothing is kept. */
  abandon(token: number): void {
    if (this.#generation.isLatest(token)) this.clear();
  }

  /**
   * The snapshot's answer for the tenant, once; undefined when it has none to
   * give and the caller reads ELB. `find` picks the tenant's rule from the
   * listener's rules and the known one, as the live observe would.
   */
  take(
    tenantId: string,
    listenerArn: string,
    knownRuleArn: string | undefined,
    find: (listenerRules: readonly Rule[], known: Rule | undefined) => { rule: Rule; listenerArn: string } | undefined,
    listenerOf: (ruleArn: string) => string,
  ): RuleAnswer | undefined {
    const reads = this.#reads;
    if (reads === undefined || this.#spent.has(tenantId)) return undefined;
    if (this.#now() - reads.at > this.#maxAgeMs) {
      this.clear();
      return undefined;
    }
    if (reads.covers !== undefined && !reads.covers(tenantId)) return undefined;
    const listenerRules = reads.rules.get(listenerArn);
    if (listenerRules === undefined) return undefined;
    let known: Rule | undefined;
    if (knownRuleArn !== undefined) {
      if (this.#written.has(knownRuleArn)) return undefined;
      const knownRules = reads.rules.get(listenerOf(knownRuleArn));
      // Its listener was not read: a live DescribeRules of the ARN settles it.
      if (knownRules === undefined) return undefined;
      known = knownRules.find((r) => r.RuleArn === knownRuleArn);
    }
    const found = find(listenerRules, known);
    // "No rule" is never answered from here: the reconcile would create one on the word of a read that may be old.
    const ruleArn = found?.rule.RuleArn;
    if (found === undefined || ruleArn === undefined || this.#written.has(ruleArn)) return undefined;
    const tags = reads.tags.get(ruleArn);
    if (tags === undefined) return undefined;
    this.#spent.add(tenantId);
    return { rule: found.rule, listenerArn: found.listenerArn, tags };
  }

  /** This process wrote for the tenant (created, modified or deleted its rule). */
  wrote(tenantId: string, ruleArn?: string): void {
    if (!this.#generation.collecting) return;
    this.#spent.add(tenantId);
    if (ruleArn !== undefined) this.#written.add(ruleArn);
  }

  clear(): void {
    this.#generation.close();
    this.#reads = undefined;
    this.#spent = new Set();
    this.#written = new Set();
  }
}
