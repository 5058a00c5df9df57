import {
  CreateRuleCommand,
  DeleteRuleCommand,
  DescribeRulesCommand,
  DescribeTagsCommand,
  ModifyRuleCommand,
  SetRulePrioritiesCommand,
  type Action,
  type ElasticLoadBalancingV2Client,
  type Rule,
  type Tag,
} from "@aws-sdk/client-elastic-load-balancing-v2";
import { ConflictError } from "../errors.js";
import { UnmanagedResourceError, type DesiredRoute, type Fence, type ObservedRoute, type RouteAction, type RoutePort } from "../ports.js";
import { isManaged, MANAGED_BY_KEY, MANAGED_BY_VALUE, TENANT_ID_KEY, type Tags } from "../tiers/model.js";
import { sameAction } from "../tiers/route-decide.js";
import { TENANT_HEADER } from "../tiers/stack-template.js";
import { errorName, wrapAwsError } from "./aws-errors.js";
import { RuleSnapshot } from "./rule-snapshot.js";

/**
 * Each tenant's rule on the shared listener (docs/design.md "Contract:
 * routing"), managed through the ELBv2 API so that a routing flip during a
 * tier move or a suspension is one call.
 *
 * A tenant's rule is the one whose only condition is the http-header
 * `tenantPath` with exactly one value, the tenant id. ALB compares header
 * values ignoring case, but we compare exactly, so tenants `Acme` and `acme`
 * are told apart here (claiming ids case-insensitively is CaseClaims' job).
 *
 * Idempotency:
 * - create(): a retry of a CreateRule that had in fact succeeded meets its
 *   own rule at the priority (PriorityInUse); when that rule is the tenant's
 *   and managed, its ARN is returned instead of an error.
 * - update(): ModifyRule only when the action differs, SetRulePriorities only
 *   when the priority differs; a steady tenant costs no write.
 * - delete(): a rule already gone (RuleNotFound) is success.
 * - update() and delete() refuse (UnmanagedResourceError) a rule without
 *   managed-by=ecs-tenant-operator; every write calls fence.assertHeld() first.
 */

export interface ListenerRoutesOptions {
  /** Rules per DescribeRules page when listing a listener. @default 400 (the API maximum) */
  readonly pageSize?: number;
  /** How long a survey's reads answer observes (docs/adr/0018): about half the resync interval. @default 60000 */
  readonly snapshotMaxAgeMs?: number;
  /** @default Date.now */
  readonly now?: () => number;
  /** Body of the 403 a suspended tenant's requests get. @default "tenant suspended" */
  readonly denyBody?: string;
}

/**
 * CreateRule or SetRulePriorities met a rule already at the priority: a
 * conflict (terminal) until the allocator and the listener agree again.
 */
export class PriorityInUseError extends ConflictError {
  /** @param holder ARN of the rule holding the priority, when it could be read. */
  constructor(
    readonly priority: number,
    readonly listenerArn: string,
    readonly holder: string | undefined,
    cause: unknown,
  ) {
    super(
      `listener rule priority ${priority} on ${listenerArn} is in use${holder !== undefined ? ` by rule ${holder}` : ""}; the priority allocator and the listener disagree`,
      { cause },
    );
  }
}

/** ResourceArns per DescribeTags (the API maximum). */
const TAGS_PER_DESCRIBE = 20;

export class ListenerRoutes implements RoutePort {
  readonly #elbv2: ElasticLoadBalancingV2Client;
  readonly #pageSize: number;
  readonly #denyBody: string;
  readonly #now: () => number;
  readonly #snapshot: RuleSnapshot;

  constructor(elbv2: ElasticLoadBalancingV2Client, options: ListenerRoutesOptions = {}) {
    this.#elbv2 = elbv2;
    this.#pageSize = options.pageSize ?? 400;
    this.#denyBody = options.denyBody ?? "tenant suspended";
    this.#now = options.now ?? Date.now;
    this.#snapshot = new RuleSnapshot(options.snapshotMaxAgeMs ?? 60_000, this.#now);
  }

  /**
   * A resync's reads of the listeners, batched across tenants (docs/adr/0018):
   * each listener's rules (DescribeRules pages of up to 400), then the tags of
   * the covered tenants' rules, 20 per DescribeTags. About
   * listeners + ceil(tenant rules / 20) reads instead of 2 per tenant; the
   * next observe of each covered tenant with a rule is answered from them once.
   */
  async survey(listenerArns: readonly string[], covers?: (tenantId: string) => boolean): Promise<void> {
    const token = this.#snapshot.begin();
    try {
      const at = this.#now();
      const rules = new Map<string, readonly Rule[]>();
      for (const listenerArn of listenerArns) rules.set(listenerArn, await this.#listRules(listenerArn));
      const toTag = [...rules.values()].flat().filter((r) => {
        const tenant = tenantOfRule(r);
        return r.RuleArn !== undefined && tenant !== undefined && (covers === undefined || covers(tenant));
      });
      const tags = new Map<string, Tags>();
      for (let i = 0; i < toTag.length; i += TAGS_PER_DESCRIBE) {
        const batch = toTag.slice(i, i + TAGS_PER_DESCRIBE).map((r) => r.RuleArn ?? "");
        for (const [arn, t] of await this.#tagsOf(batch)) tags.set(arn, t);
      }
      this.#snapshot.prime(token, { at, rules, tags, ...(covers !== undefined ? { covers } : {}) });
    } catch (err) {
      this.#snapshot.abandon(token);
      throw err;
    }
  }

  /**
   * Calls: with a known ARN, one DescribeRules(RuleArns); else (or when that
   * rule is gone or no longer the tenant's) DescribeRules(ListenerArn) page by
   * page; then one DescribeTags for the rule found.
   *
   * A known rule on another listener is still returned (with its listener), so
   * the caller can see the tenant moved and remove it. When several rules on
   * the listener carry the tenant's header, the lowest priority is returned:
   * that is the one ALB applies.
   */
  async observe(tenantId: string, listenerArn: string, knownRuleArn?: string): Promise<ObservedRoute | undefined> {
    const answer = this.#snapshot.take(
      tenantId,
      listenerArn,
      knownRuleArn,
      (listenerRules, known) => findRule(tenantId, listenerArn, listenerRules, known),
      listenerOf,
    );
    if (answer !== undefined) return observedRoute(tenantId, answer.rule, answer.listenerArn, answer.tags);
    let found: { rule: Rule; listenerArn: string } | undefined;
    if (knownRuleArn !== undefined) {
      const rule = await this.#describeOne(knownRuleArn);
      // A rule whose header was edited to another tenant is not this tenant's any more.
      if (rule !== undefined && isTenantRule(rule, tenantId)) found = { rule, listenerArn: listenerOf(knownRuleArn) };
    }
    found ??= findRule(tenantId, listenerArn, await this.#listRules(listenerArn), undefined);
    if (found === undefined) return undefined;
    const tags = await this.#tags(found.rule.RuleArn ?? "");
    // Deleted between the two reads: as good as never found.
    if (tags === undefined) return undefined;
    return observedRoute(tenantId, found.rule, found.listenerArn, tags);
  }

  /** One CreateRule (plus a listing when the priority is taken, to say by whom). */
  async create(desired: DesiredRoute, fence: Fence): Promise<string> {
    fence.assertHeld();
    this.#snapshot.wrote(desired.tenantId);
    try {
      const out = await this.#elbv2.send(
        new CreateRuleCommand({
          ListenerArn: desired.listenerArn,
          Priority: desired.priority,
          Conditions: [{ Field: "http-header", HttpHeaderConfig: { HttpHeaderName: TENANT_HEADER, Values: [desired.tenantId] } }],
          Actions: this.#toActions(desired.action),
          Tags: [
            { Key: MANAGED_BY_KEY, Value: MANAGED_BY_VALUE },
            { Key: TENANT_ID_KEY, Value: desired.tenantId },
          ],
        }),
      );
      const arn = out.Rules?.[0]?.RuleArn;
      if (arn === undefined) throw new Error("CreateRule returned no RuleArn");
      return arn;
    } catch (err) {
      if (!isPriorityInUse(err))
        throw wrapAwsError(
          err,
          `creating the listener rule of tenant ${desired.tenantId} at priority ${desired.priority} on ${desired.listenerArn}`,
        );
      const holder = (await this.#listRules(desired.listenerArn)).find((r) => Number(r.Priority) === desired.priority);
      if (holder?.RuleArn !== undefined && isTenantRule(holder, desired.tenantId)) {
        const tags = await this.#tags(holder.RuleArn);
        // Our own earlier CreateRule whose answer was lost; the caller's next
        // observe compares its action like any other.
        if (tags !== undefined && isManaged(tags) && tags[TENANT_ID_KEY] === desired.tenantId) return holder.RuleArn;
      }
      throw new PriorityInUseError(desired.priority, desired.listenerArn, holder?.RuleArn, err);
    }
  }

  /** ModifyRule when the action differs, then SetRulePriorities when the priority does: the flip first, as it is what matters. */
  async update(desired: DesiredRoute, observed: ObservedRoute, fence: Fence): Promise<void> {
    if (!observed.managed) throw new UnmanagedResourceError(`listener rule ${observed.ruleArn} (header tenantPath=${observed.tenantId})`);
    if (observed.listenerArn !== desired.listenerArn) {
      throw new Error(
        `listener rule ${observed.ruleArn} is on ${observed.listenerArn}, not ${desired.listenerArn}: a rule cannot move between listeners (delete it and create a new one)`,
      );
    }
    if (!sameAction(desired.action, observed.action)) {
      fence.assertHeld();
      this.#snapshot.wrote(desired.tenantId, observed.ruleArn);
      try {
        await this.#elbv2.send(new ModifyRuleCommand({ RuleArn: observed.ruleArn, Actions: this.#toActions(desired.action) }));
      } catch (err) {
        throw wrapAwsError(
          err,
          `changing the action of listener rule ${observed.ruleArn} (tenant ${desired.tenantId}) to ${desired.action.kind}`,
        );
      }
    }
    if (desired.priority !== observed.priority) {
      fence.assertHeld();
      this.#snapshot.wrote(desired.tenantId, observed.ruleArn);
      try {
        await this.#elbv2.send(
          new SetRulePrioritiesCommand({ RulePriorities: [{ RuleArn: observed.ruleArn, Priority: desired.priority }] }),
        );
      } catch (err) {
        if (isPriorityInUse(err)) {
          const holder = (await this.#listRules(desired.listenerArn)).find((r) => Number(r.Priority) === desired.priority);
          throw new PriorityInUseError(desired.priority, desired.listenerArn, holder?.RuleArn, err);
        }
        throw wrapAwsError(
          err,
          `moving listener rule ${observed.ruleArn} (tenant ${desired.tenantId}) from priority ${observed.priority} to ${desired.priority}`,
        );
      }
    }
  }

  /** One DeleteRule; a rule already gone is success. */
  async delete(observed: ObservedRoute, fence: Fence): Promise<void> {
    if (!observed.managed) throw new UnmanagedResourceError(`listener rule ${observed.ruleArn} (header tenantPath=${observed.tenantId})`);
    fence.assertHeld();
    this.#snapshot.wrote(observed.tenantId, observed.ruleArn);
    try {
      await this.#elbv2.send(new DeleteRuleCommand({ RuleArn: observed.ruleArn }));
    } catch (err) {
      if (isRuleNotFound(err)) return;
      throw wrapAwsError(err, `deleting listener rule ${observed.ruleArn} (tenant ${observed.tenantId})`);
    }
  }

  #toActions(action: RouteAction): Action[] {
    if (action.kind === "forward") return [{ Type: "forward", TargetGroupArn: action.targetGroupArn }];
    return [{ Type: "fixed-response", FixedResponseConfig: { StatusCode: "403", ContentType: "text/plain", MessageBody: this.#denyBody } }];
  }

  async #describeOne(ruleArn: string): Promise<Rule | undefined> {
    try {
      const out = await this.#elbv2.send(new DescribeRulesCommand({ RuleArns: [ruleArn] }));
      return out.Rules?.[0];
    } catch (err) {
      // The ARN in status can outlive the rule (deleted by hand, or by us before a crash).
      if (isRuleNotFound(err)) return undefined;
      throw wrapAwsError(err, `describing listener rule ${ruleArn}`);
    }
  }

  async #listRules(listenerArn: string): Promise<Rule[]> {
    const rules: Rule[] = [];
    let marker: string | undefined;
    do {
      let page;
      try {
        page = await this.#elbv2.send(
          new DescribeRulesCommand({
            ListenerArn: listenerArn,
            PageSize: this.#pageSize,
            ...(marker !== undefined ? { Marker: marker } : {}),
          }),
        );
      } catch (err) {
        throw wrapAwsError(err, `listing the rules of listener ${listenerArn}`);
      }
      rules.push(...(page.Rules ?? []));
      marker = page.NextMarker;
    } while (marker !== undefined && marker !== "");
    return rules;
  }

  /**
   * Tags of up to 20 rules, by ARN. One rule deleted since the listing fails
   * the whole call (RuleNotFound): then none of the batch is known, and
   * those tenants' observes read live.
   */
  async #tagsOf(ruleArns: readonly string[]): Promise<Map<string, Tags>> {
    const tags = new Map<string, Tags>();
    let out;
    try {
      out = await this.#elbv2.send(new DescribeTagsCommand({ ResourceArns: [...ruleArns] }));
    } catch (err) {
      if (isRuleNotFound(err)) return tags;
      throw wrapAwsError(err, `reading the tags of ${ruleArns.length} listener rules`);
    }
    for (const d of out.TagDescriptions ?? []) if (d.ResourceArn !== undefined) tags.set(d.ResourceArn, tagsOf(d.Tags));
    return tags;
  }

  /** The rule's tags; undefined when the rule no longer exists. */
  async #tags(ruleArn: string): Promise<Tags | undefined> {
    let out;
    try {
      out = await this.#elbv2.send(new DescribeTagsCommand({ ResourceArns: [ruleArn] }));
    } catch (err) {
      if (isRuleNotFound(err)) return undefined;
      throw wrapAwsError(err, `reading the tags of listener rule ${ruleArn}`);
    }
    const description = out.TagDescriptions?.find((d) => d.ResourceArn === ruleArn) ?? out.TagDescriptions?.[0];
    return tagsOf(description?.Tags);
  }
}

function tagsOf(tags: readonly Tag[] | undefined): Tags {
  return Object.fromEntries((tags ?? []).flatMap((t) => (t.Key !== undefined ? [[t.Key, t.Value ?? ""]] : [])));
}

/**
 * The tenant's rule as observe() finds it: the known rule while it is still
 * the tenant's (on whichever listener), else the lowest-priority rule on the
 * listener carrying the tenant's header (the one ALB applies).
 */
function findRule(
  tenantId: string,
  listenerArn: string,
  listenerRules: readonly Rule[],
  known: Rule | undefined,
): { rule: Rule; listenerArn: string } | undefined {
  // A rule whose header was edited to another tenant is not this tenant's any more.
  if (known?.RuleArn !== undefined && isTenantRule(known, tenantId)) return { rule: known, listenerArn: listenerOf(known.RuleArn) };
  const rule = lowestPriority(listenerRules.filter((r) => isTenantRule(r, tenantId)));
  return rule === undefined ? undefined : { rule, listenerArn };
}

function observedRoute(tenantId: string, rule: Rule, listenerArn: string, tags: Tags): ObservedRoute {
  return {
    ruleArn: rule.RuleArn ?? "",
    listenerArn,
    tenantId,
    priority: Number(rule.Priority),
    action: fromActions(rule.Actions ?? []),
    managed: isManaged(tags),
  };
}

/** The tenant a rule is for: the value of its one tenantPath header condition; undefined for any other rule. */
function tenantOfRule(rule: Rule): string | undefined {
  const value = rule.Conditions?.[0]?.HttpHeaderConfig?.Values?.[0];
  return value !== undefined && isTenantRule(rule, value) ? value : undefined;
}

/** Exactly one condition, http-header tenantPath (names ignore case, as in HTTP), with exactly the value tenantId. */
function isTenantRule(rule: Rule, tenantId: string): boolean {
  if (rule.IsDefault === true) return false;
  const conditions = rule.Conditions ?? [];
  if (conditions.length !== 1) return false;
  const c = conditions[0];
  if (c?.Field !== "http-header") return false;
  const name = c.HttpHeaderConfig?.HttpHeaderName;
  const values = c.HttpHeaderConfig?.Values ?? [];
  return name?.toLowerCase() === TENANT_HEADER.toLowerCase() && values.length === 1 && values[0] === tenantId;
}

/** forward to one target group, fixed-response 403, or "other" (weighted forwards, redirects, several actions...). */
export function fromActions(actions: readonly Action[]): ObservedRoute["action"] {
  if (actions.length !== 1) return { kind: "other" };
  const a = actions[0];
  if (a?.Type === "forward") {
    // AWS answers a single-group forward with both forms; weighted forwards list several groups.
    const groups = a.ForwardConfig?.TargetGroups ?? [];
    if (groups.length > 1) return { kind: "other" };
    const arn = a.TargetGroupArn ?? groups[0]?.TargetGroupArn;
    return arn !== undefined ? { kind: "forward", targetGroupArn: arn } : { kind: "other" };
  }
  if (a?.Type === "fixed-response" && a.FixedResponseConfig?.StatusCode === "403") return { kind: "deny" };
  return { kind: "other" };
}

/**
 * The listener a rule belongs to, from the rule's ARN (DescribeRules does not
 * return it): `...:listener-rule/app/<lb>/<lb-id>/<listener-id>/<rule-id>`
 * belongs to `...:listener/app/<lb>/<lb-id>/<listener-id>`.
 */
export function listenerOf(ruleArn: string): string {
  return ruleArn.replace(":listener-rule/", ":listener/").replace(/\/[^/]+$/, "");
}

function lowestPriority(rules: readonly Rule[]): Rule | undefined {
  let best: Rule | undefined;
  for (const r of rules) if (best === undefined || Number(r.Priority) < Number(best.Priority)) best = r;
  return best;
}

function isRuleNotFound(err: unknown): boolean {
  const name = errorName(err);
  return name === "RuleNotFoundException" || name === "RuleNotFound";
}

function isPriorityInUse(err: unknown): boolean {
  const name = errorName(err);
  return name === "PriorityInUseException" || name === "PriorityInUse";
}
