import {
  CreateRuleCommand,
  DeleteRuleCommand,
  DescribeRulesCommand,
  DescribeTagsCommand,
  ElasticLoadBalancingV2Client,
  ModifyRuleCommand,
  PriorityInUseException,
  RuleNotFoundException,
  SetRulePrioritiesCommand,
  type Rule,
} from "@aws-sdk/client-elastic-load-balancing-v2";
import { mockClient } from "aws-sdk-client-mock";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { isRetryable } from "../../src/operator/errors.js";
import { LeaseLostError, UnmanagedResourceError, type DesiredRoute, type Fence, type ObservedRoute } from "../../src/ports.js";
import { fromActions, ListenerRoutes, listenerOf, PriorityInUseError } from "../../src/providers/listener-routes.js";
import { TerminalError, TransientError } from "../../src/errors.js";
import { anyArray } from "../support/matchers.js";

const elbMock = mockClient(ElasticLoadBalancingV2Client);
let elbv2: ElasticLoadBalancingV2Client;
beforeEach(() => {
  elbMock.reset();
  elbv2 = new ElasticLoadBalancingV2Client({ region: "us-east-1" });
});
afterEach(() => elbv2.destroy());

const LISTENER = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/saas/50dc6c495c0c9188/f2f7dc8efc522ab2";
const OTHER_LISTENER = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/saas-2/70dc6c495c0c9188/a2f7dc8efc522ab2";
const ruleArn = (id: string, listener = LISTENER) => `${listener.replace(":listener/", ":listener-rule/")}/${id}`;
const TG = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/acme/1";
const TG2 = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/acme-2/2";
const MANAGED = [
  { Key: "managed-by", Value: "ecs-tenant-operator" },
  { Key: "tenant-id", Value: "acme" },
];

const held: Fence = { assertHeld: () => undefined };
const lost: Fence = {
  assertHeld: () => {
    throw new LeaseLostError();
  },
};

function headerRule(
  id: string,
  priority: number,
  values: string[],
  actions: Rule["Actions"] = [{ Type: "forward", TargetGroupArn: TG }],
  listener = LISTENER,
): Rule {
  return {
    RuleArn: ruleArn(id, listener),
    Priority: String(priority),
    IsDefault: false,
    Conditions: [{ Field: "http-header", HttpHeaderConfig: { HttpHeaderName: "tenantPath", Values: values } }],
    Actions: actions,
  };
}

const DEFAULT_RULE: Rule = {
  RuleArn: ruleArn("default"),
  Priority: "default",
  IsDefault: true,
  Conditions: [],
  Actions: [{ Type: "fixed-response", FixedResponseConfig: { StatusCode: "404" } }],
};

function observed(over: Partial<ObservedRoute> = {}): ObservedRoute {
  return {
    ruleArn: ruleArn("r1"),
    listenerArn: LISTENER,
    tenantId: "acme",
    priority: 7,
    action: { kind: "forward", targetGroupArn: TG },
    managed: true,
    ...over,
  };
}
const desired = (over: Partial<DesiredRoute> = {}): DesiredRoute => ({
  tenantId: "acme",
  listenerArn: LISTENER,
  priority: 7,
  action: { kind: "forward", targetGroupArn: TG },
  ...over,
});

describe("ListenerRoutes.observe", () => {
  it("pages through the listener and picks the rule whose only condition is tenantPath == the exact id", async () => {
    const pages: Rule[][] = [
      [DEFAULT_RULE, headerRule("upper", 3, ["Acme"])],
      [
        headerRule("two-values", 4, ["acme", "other"]),
        {
          ...headerRule("two-conditions", 5, ["acme"]),
          Conditions: [
            ...(headerRule("x", 5, ["acme"]).Conditions ?? []),
            { Field: "path-pattern", PathPatternConfig: { Values: ["/x"] } },
          ],
        },
      ],
      [
        {
          ...headerRule("other-header", 6, ["acme"]),
          Conditions: [{ Field: "http-header", HttpHeaderConfig: { HttpHeaderName: "x-tenant", Values: ["acme"] } }],
        },
        headerRule("ours", 9, ["acme"]),
      ],
    ];
    elbMock.on(DescribeRulesCommand).callsFake((input: { Marker?: string }) => {
      const i = input.Marker === undefined ? 0 : Number(input.Marker);
      return { Rules: pages[i], ...(i + 1 < pages.length ? { NextMarker: String(i + 1) } : {}) };
    });
    elbMock.on(DescribeTagsCommand).resolves({ TagDescriptions: [{ ResourceArn: ruleArn("ours"), Tags: MANAGED }] });

    const routes = new ListenerRoutes(elbv2, { pageSize: 2 });
    const got = await routes.observe("acme", LISTENER);
    expect(got).toEqual({
      ruleArn: ruleArn("ours"),
      listenerArn: LISTENER,
      tenantId: "acme",
      priority: 9,
      action: { kind: "forward", targetGroupArn: TG },
      managed: true,
    });

    const calls = elbMock.commandCalls(DescribeRulesCommand).map((c) => c.args[0].input);
    expect(calls).toEqual([
      { ListenerArn: LISTENER, PageSize: 2 },
      { ListenerArn: LISTENER, PageSize: 2, Marker: "1" },
      { ListenerArn: LISTENER, PageSize: 2, Marker: "2" },
    ]);
    expect(elbMock.commandCalls(DescribeTagsCommand).map((c) => c.args[0].input)).toEqual([{ ResourceArns: [ruleArn("ours")] }]);
  });

  it("tells Acme from acme: the other-cased rule is not this tenant's", async () => {
    elbMock.on(DescribeRulesCommand).resolves({ Rules: [DEFAULT_RULE, headerRule("upper", 3, ["Acme"])] });
    const routes = new ListenerRoutes(elbv2);
    expect(await routes.observe("acme", LISTENER)).toBeUndefined();
    expect(elbMock.commandCalls(DescribeTagsCommand)).toHaveLength(0);
  });

  it("returns the lowest priority when several rules carry the header (the one ALB applies)", async () => {
    elbMock.on(DescribeRulesCommand).resolves({
      Rules: [
        headerRule("late", 40, ["acme"]),
        headerRule("early", 8, ["acme"], [{ Type: "fixed-response", FixedResponseConfig: { StatusCode: "403" } }]),
      ],
    });
    elbMock.on(DescribeTagsCommand).resolves({ TagDescriptions: [{ ResourceArn: ruleArn("early"), Tags: [] }] });
    const got = await new ListenerRoutes(elbv2).observe("acme", LISTENER);
    expect(got).toMatchObject({ ruleArn: ruleArn("early"), priority: 8, action: { kind: "deny" }, managed: false });
  });

  it("with a known ARN makes one DescribeRules(RuleArns) and no listing", async () => {
    elbMock.on(DescribeRulesCommand, { RuleArns: [ruleArn("r1")] }).resolves({ Rules: [headerRule("r1", 7, ["acme"])] });
    elbMock.on(DescribeTagsCommand).resolves({ TagDescriptions: [{ ResourceArn: ruleArn("r1"), Tags: MANAGED }] });
    const got = await new ListenerRoutes(elbv2).observe("acme", LISTENER, ruleArn("r1"));
    expect(got).toEqual(observed());
    expect(elbMock.commandCalls(DescribeRulesCommand)).toHaveLength(1);
  });

  it("falls back to the listing when the known rule is gone (RuleNotFound)", async () => {
    elbMock
      .on(DescribeRulesCommand, { RuleArns: [ruleArn("stale")] })
      .rejects(new RuleNotFoundException({ message: "One or more rules not found", $metadata: { httpStatusCode: 400 } }));
    elbMock.on(DescribeRulesCommand, { ListenerArn: LISTENER }).resolves({ Rules: [headerRule("new", 7, ["acme"])] });
    elbMock.on(DescribeTagsCommand).resolves({ TagDescriptions: [{ ResourceArn: ruleArn("new"), Tags: MANAGED }] });
    const got = await new ListenerRoutes(elbv2).observe("acme", LISTENER, ruleArn("stale"));
    expect(got?.ruleArn).toBe(ruleArn("new"));
    expect(elbMock.commandCalls(DescribeRulesCommand)).toHaveLength(2);
  });

  it("falls back to the listing when the known rule now matches another tenant", async () => {
    elbMock.on(DescribeRulesCommand, { RuleArns: [ruleArn("r1")] }).resolves({ Rules: [headerRule("r1", 7, ["globex"])] });
    elbMock.on(DescribeRulesCommand, { ListenerArn: LISTENER }).resolves({ Rules: [headerRule("r1", 7, ["globex"])] });
    expect(await new ListenerRoutes(elbv2).observe("acme", LISTENER, ruleArn("r1"))).toBeUndefined();
    expect(elbMock.commandCalls(DescribeRulesCommand)).toHaveLength(2);
  });

  it("reports a known rule on another listener with that listener, so the move can be seen", async () => {
    const arn = ruleArn("r9", OTHER_LISTENER);
    elbMock.on(DescribeRulesCommand, { RuleArns: [arn] }).resolves({ Rules: [headerRule("r9", 7, ["acme"], undefined, OTHER_LISTENER)] });
    elbMock.on(DescribeTagsCommand).resolves({ TagDescriptions: [{ ResourceArn: arn, Tags: MANAGED }] });
    const got = await new ListenerRoutes(elbv2).observe("acme", LISTENER, arn);
    expect(got?.listenerArn).toBe(OTHER_LISTENER);
  });

  it("treats a rule deleted between the listing and the tag read as absent", async () => {
    elbMock.on(DescribeRulesCommand).resolves({ Rules: [headerRule("r1", 7, ["acme"])] });
    elbMock.on(DescribeTagsCommand).rejects(new RuleNotFoundException({ message: "gone", $metadata: { httpStatusCode: 400 } }));
    expect(await new ListenerRoutes(elbv2).observe("acme", LISTENER)).toBeUndefined();
  });

  it("wraps other errors with what it was doing, classified, keeping the AWS error as cause", async () => {
    elbMock
      .on(DescribeRulesCommand)
      .rejects(Object.assign(new Error("slow down"), { name: "Throttling", $metadata: { httpStatusCode: 400 } }));
    const err = await new ListenerRoutes(elbv2).observe("acme", LISTENER).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransientError);
    expect((err as Error).cause).toMatchObject({ name: "Throttling" });
    expect((err as Error).message).toContain(LISTENER);
    expect(isRetryable(err)).toBe(true);
  });
});

describe("action mapping and ARNs", () => {
  const cases: { reason: string; actions: Rule["Actions"]; want: ObservedRoute["action"] }[] = [
    { reason: "a plain forward", actions: [{ Type: "forward", TargetGroupArn: TG }], want: { kind: "forward", targetGroupArn: TG } },
    {
      reason: "AWS's ForwardConfig form with one group",
      actions: [{ Type: "forward", ForwardConfig: { TargetGroups: [{ TargetGroupArn: TG, Weight: 1 }] } }],
      want: { kind: "forward", targetGroupArn: TG },
    },
    {
      reason: "a weighted forward to two groups is not ours",
      actions: [
        {
          Type: "forward",
          ForwardConfig: {
            TargetGroups: [
              { TargetGroupArn: TG, Weight: 1 },
              { TargetGroupArn: TG2, Weight: 1 },
            ],
          },
        },
      ],
      want: { kind: "other" },
    },
    {
      reason: "a fixed-response 403 is a deny",
      actions: [{ Type: "fixed-response", FixedResponseConfig: { StatusCode: "403", ContentType: "text/plain" } }],
      want: { kind: "deny" },
    },
    {
      reason: "a fixed-response 404 is not a deny",
      actions: [{ Type: "fixed-response", FixedResponseConfig: { StatusCode: "404" } }],
      want: { kind: "other" },
    },
    {
      reason: "a redirect is other",
      actions: [{ Type: "redirect", RedirectConfig: { StatusCode: "HTTP_301", Host: "x" } }],
      want: { kind: "other" },
    },
    {
      reason: "two actions (authenticate, forward) is other",
      actions: [{ Type: "authenticate-cognito" }, { Type: "forward", TargetGroupArn: TG }],
      want: { kind: "other" },
    },
    { reason: "no action is other", actions: [], want: { kind: "other" } },
  ];
  for (const c of cases) it(c.reason, () => expect(fromActions(c.actions ?? [])).toEqual(c.want));

  it("derives the listener from a rule ARN", () => {
    expect(listenerOf(ruleArn("abc"))).toBe(LISTENER);
  });
});

describe("ListenerRoutes.create", () => {
  it("creates the header rule with priority, action and ownership tags", async () => {
    elbMock.on(CreateRuleCommand).resolves({ Rules: [{ RuleArn: ruleArn("new") }] });
    const order: string[] = [];
    const fence: Fence = { assertHeld: () => void order.push("fence") };
    elbMock.on(CreateRuleCommand).callsFake(() => {
      order.push("create");
      return { Rules: [{ RuleArn: ruleArn("new") }] };
    });
    const arn = await new ListenerRoutes(elbv2).create(desired({ priority: 11 }), fence);
    expect(arn).toBe(ruleArn("new"));
    expect(order).toEqual(["fence", "create"]);
    expect(elbMock.commandCalls(CreateRuleCommand)[0]?.args[0].input).toEqual({
      ListenerArn: LISTENER,
      Priority: 11,
      Conditions: [{ Field: "http-header", HttpHeaderConfig: { HttpHeaderName: "tenantPath", Values: ["acme"] } }],
      Actions: [{ Type: "forward", TargetGroupArn: TG }],
      Tags: MANAGED,
    });
  });

  it("writes a deny as a plain-text fixed-response 403", async () => {
    elbMock.on(CreateRuleCommand).resolves({ Rules: [{ RuleArn: ruleArn("new") }] });
    await new ListenerRoutes(elbv2, { denyBody: "suspended" }).create(desired({ action: { kind: "deny" } }), held);
    expect(elbMock.commandCalls(CreateRuleCommand)[0]?.args[0].input.Actions).toEqual([
      { Type: "fixed-response", FixedResponseConfig: { StatusCode: "403", ContentType: "text/plain", MessageBody: "suspended" } },
    ]);
  });

  it("makes no call when the lease is lost", async () => {
    await expect(new ListenerRoutes(elbv2).create(desired(), lost)).rejects.toBeInstanceOf(LeaseLostError);
    expect(elbMock.commandCalls(CreateRuleCommand)).toHaveLength(0);
  });

  it("says which priority is in use and by which rule", async () => {
    elbMock
      .on(CreateRuleCommand)
      .rejects(new PriorityInUseException({ message: "The specified priority is in use.", $metadata: { httpStatusCode: 400 } }));
    elbMock.on(DescribeRulesCommand).resolves({ Rules: [headerRule("globex", 7, ["globex"])] });
    const err = await new ListenerRoutes(elbv2).create(desired(), held).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PriorityInUseError);
    const e = err as PriorityInUseError;
    expect(e.priority).toBe(7);
    expect(e.listenerArn).toBe(LISTENER);
    expect(e.holder).toBe(ruleArn("globex"));
    expect(e.message).toContain("priority 7");
    expect(isRetryable(e)).toBe(false);
  });

  it("returns the ARN when the rule at the priority is its own earlier create (answer lost)", async () => {
    elbMock.on(CreateRuleCommand).rejects(new PriorityInUseException({ message: "in use", $metadata: { httpStatusCode: 400 } }));
    elbMock.on(DescribeRulesCommand).resolves({ Rules: [headerRule("mine", 7, ["acme"])] });
    elbMock.on(DescribeTagsCommand).resolves({ TagDescriptions: [{ ResourceArn: ruleArn("mine"), Tags: MANAGED }] });
    expect(await new ListenerRoutes(elbv2).create(desired(), held)).toBe(ruleArn("mine"));
  });

  it("does not adopt an unmanaged rule with the tenant's header at the priority", async () => {
    elbMock.on(CreateRuleCommand).rejects(new PriorityInUseException({ message: "in use", $metadata: { httpStatusCode: 400 } }));
    elbMock.on(DescribeRulesCommand).resolves({ Rules: [headerRule("hand", 7, ["acme"])] });
    elbMock.on(DescribeTagsCommand).resolves({ TagDescriptions: [{ ResourceArn: ruleArn("hand"), Tags: [] }] });
    await expect(new ListenerRoutes(elbv2).create(desired(), held)).rejects.toBeInstanceOf(PriorityInUseError);
  });
});

describe("ListenerRoutes.update", () => {
  const cases: { reason: string; desired: DesiredRoute; observed: ObservedRoute; modify: boolean; priority: boolean }[] = [
    { reason: "nothing differs: no call", desired: desired(), observed: observed(), modify: false, priority: false },
    {
      reason: "only the action differs: ModifyRule only",
      desired: desired({ action: { kind: "deny" } }),
      observed: observed(),
      modify: true,
      priority: false,
    },
    {
      reason: "only the target group differs: ModifyRule only",
      desired: desired({ action: { kind: "forward", targetGroupArn: TG2 } }),
      observed: observed(),
      modify: true,
      priority: false,
    },
    {
      reason: "only the priority differs: SetRulePriorities only",
      desired: desired({ priority: 20 }),
      observed: observed(),
      modify: false,
      priority: true,
    },
    {
      reason: "both differ: both calls",
      desired: desired({ priority: 20, action: { kind: "deny" } }),
      observed: observed({ action: { kind: "other" } }),
      modify: true,
      priority: true,
    },
  ];
  for (const c of cases) {
    it(c.reason, async () => {
      elbMock.on(ModifyRuleCommand).resolves({});
      elbMock.on(SetRulePrioritiesCommand).resolves({});
      await new ListenerRoutes(elbv2).update(c.desired, c.observed, held);
      const modify = elbMock.commandCalls(ModifyRuleCommand).map((x) => x.args[0].input);
      const prio = elbMock.commandCalls(SetRulePrioritiesCommand).map((x) => x.args[0].input);
      expect(modify).toHaveLength(c.modify ? 1 : 0);
      expect(prio).toHaveLength(c.priority ? 1 : 0);
      if (c.modify) expect(modify[0]).toEqual({ RuleArn: c.observed.ruleArn, Actions: anyArray() });
      if (c.priority) expect(prio[0]).toEqual({ RulePriorities: [{ RuleArn: c.observed.ruleArn, Priority: c.desired.priority }] });
    });
  }

  it("refuses an unmanaged rule without any call", async () => {
    await expect(
      new ListenerRoutes(elbv2).update(desired({ action: { kind: "deny" } }), observed({ managed: false }), held),
    ).rejects.toBeInstanceOf(UnmanagedResourceError);
    expect(elbMock.calls()).toHaveLength(0);
  });

  it("refuses to 'update' a rule across listeners", async () => {
    await expect(new ListenerRoutes(elbv2).update(desired(), observed({ listenerArn: OTHER_LISTENER }), held)).rejects.toThrow(
      /cannot move between listeners/,
    );
    expect(elbMock.calls()).toHaveLength(0);
  });

  it("makes no write when the lease is lost", async () => {
    await expect(new ListenerRoutes(elbv2).update(desired({ action: { kind: "deny" } }), observed(), lost)).rejects.toBeInstanceOf(
      LeaseLostError,
    );
    expect(elbMock.calls()).toHaveLength(0);
  });

  it("names the priority when SetRulePriorities meets one in use", async () => {
    elbMock.on(SetRulePrioritiesCommand).rejects(new PriorityInUseException({ message: "in use", $metadata: { httpStatusCode: 400 } }));
    elbMock.on(DescribeRulesCommand).resolves({ Rules: [headerRule("globex", 20, ["globex"])] });
    const err = await new ListenerRoutes(elbv2).update(desired({ priority: 20 }), observed(), held).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PriorityInUseError);
    expect((err as PriorityInUseError).priority).toBe(20);
    expect((err as PriorityInUseError).holder).toBe(ruleArn("globex"));
  });
});

describe("ListenerRoutes.delete", () => {
  it("deletes a managed rule", async () => {
    elbMock.on(DeleteRuleCommand).resolves({});
    await new ListenerRoutes(elbv2).delete(observed(), held);
    expect(elbMock.commandCalls(DeleteRuleCommand).map((c) => c.args[0].input)).toEqual([{ RuleArn: ruleArn("r1") }]);
  });

  it("treats a rule already gone as deleted", async () => {
    elbMock
      .on(DeleteRuleCommand)
      .rejects(new RuleNotFoundException({ message: "The specified rule does not exist.", $metadata: { httpStatusCode: 400 } }));
    await expect(new ListenerRoutes(elbv2).delete(observed(), held)).resolves.toBeUndefined();
  });

  it("refuses an unmanaged rule without any call", async () => {
    await expect(new ListenerRoutes(elbv2).delete(observed({ managed: false }), held)).rejects.toBeInstanceOf(UnmanagedResourceError);
    expect(elbMock.calls()).toHaveLength(0);
  });

  it("makes no call when the lease is lost", async () => {
    await expect(new ListenerRoutes(elbv2).delete(observed(), lost)).rejects.toBeInstanceOf(LeaseLostError);
    expect(elbMock.calls()).toHaveLength(0);
  });

  it("wraps other failures, classified, keeping the AWS error as cause", async () => {
    elbMock.on(DeleteRuleCommand).rejects(Object.assign(new Error("denied"), { name: "AccessDenied", $metadata: { httpStatusCode: 403 } }));
    const err = await new ListenerRoutes(elbv2).delete(observed(), held).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TerminalError);
    expect((err as Error).cause).toMatchObject({ name: "AccessDenied" });
    expect((err as Error).message).toContain(ruleArn("r1"));
  });
});

describe("ListenerRoutes.survey", () => {
  /** A small account: 25 tenant rules and the catch-all on LISTENER, 2 tenant rules on OTHER_LISTENER; every rule managed. */
  interface Account {
    rules: Map<string, Rule[]>;
    /** Rule ARNs that DescribeTags no longer finds (deleted since the listing). */
    gone: Set<string>;
  }
  let account: Account;
  let clock: number;
  const tenants = Array.from({ length: 25 }, (_, i) => `t${i}`);

  function mockAccount(): void {
    elbMock
      .on(DescribeRulesCommand)
      .callsFake((input: { ListenerArn?: string; RuleArns?: string[]; PageSize?: number; Marker?: string }) => {
        if (input.RuleArns !== undefined) {
          const found = [...account.rules.values()].flat().filter((r) => input.RuleArns?.includes(r.RuleArn ?? ""));
          if (found.length === 0) throw new RuleNotFoundException({ message: "not found", $metadata: { httpStatusCode: 400 } });
          return { Rules: found };
        }
        const all = account.rules.get(input.ListenerArn ?? "") ?? [];
        const start = Number(input.Marker ?? 0);
        const end = start + (input.PageSize ?? 400);
        return { Rules: all.slice(start, end), ...(end < all.length ? { NextMarker: String(end) } : {}) };
      });
    elbMock.on(DescribeTagsCommand).callsFake((input: { ResourceArns: string[] }) => {
      if (input.ResourceArns.length > 20) throw new Error("more than 20 ResourceArns in one DescribeTags");
      if (input.ResourceArns.some((a) => account.gone.has(a)))
        throw new RuleNotFoundException({ message: "not found", $metadata: { httpStatusCode: 400 } });
      return {
        TagDescriptions: input.ResourceArns.map((arn) => {
          const tenant = [...account.rules.values()].flat().find((r) => r.RuleArn === arn)?.Conditions?.[0]?.HttpHeaderConfig?.Values?.[0];
          return { ResourceArn: arn, Tags: [MANAGED[0], { Key: "tenant-id", Value: tenant ?? "" }] };
        }),
      };
    });
  }

  beforeEach(() => {
    clock = 1_700_000_000_000;
    account = {
      rules: new Map([
        [
          LISTENER,
          [
            ...tenants.map((t, i) => headerRule(`r-${t}`, i + 1, [t])),
            {
              RuleArn: ruleArn("catch-all"),
              Priority: "50000",
              IsDefault: false,
              Conditions: [],
              Actions: [{ Type: "forward", TargetGroupArn: TG2 }],
            },
          ],
        ],
        [
          OTHER_LISTENER,
          [headerRule("r-x0", 1, ["x0"], undefined, OTHER_LISTENER), headerRule("r-x1", 2, ["x1"], undefined, OTHER_LISTENER)],
        ],
      ]),
      gone: new Set(),
    };
    mockAccount();
  });

  const routes = () => new ListenerRoutes(elbv2, { pageSize: 10, now: () => clock, snapshotMaxAgeMs: 60_000 });
  const elbCalls = () => elbMock.calls().length;

  it("reads each listener's rules page by page and the tenants' tags 20 at a time, then answers each tenant's observe once, as a live read would", async () => {
    const surveyed = routes();
    await surveyed.survey([LISTENER, OTHER_LISTENER]);
    // LISTENER: 26 rules in pages of 10 (3), OTHER_LISTENER: 1 page; 27 tenant rules tagged in 2 calls (20 + 7).
    expect(elbMock.commandCalls(DescribeRulesCommand)).toHaveLength(4);
    expect(elbMock.commandCalls(DescribeTagsCommand).map((c) => c.args[0].input.ResourceArns?.length)).toEqual([20, 7]);
    expect(elbMock.commandCalls(DescribeTagsCommand).flatMap((c) => c.args[0].input.ResourceArns)).not.toContain(ruleArn("catch-all"));

    const before = elbCalls();
    const byKnown = await surveyed.observe("t3", LISTENER, ruleArn("r-t3"));
    const byListing = await surveyed.observe("t7", LISTENER);
    const onOther = await surveyed.observe("x1", OTHER_LISTENER, ruleArn("r-x1", OTHER_LISTENER));
    expect(elbCalls()).toBe(before);
    // The same answers a process without the survey reads from ELB.
    const live = routes();
    expect(byKnown).toEqual(await live.observe("t3", LISTENER, ruleArn("r-t3")));
    expect(byListing).toEqual(await live.observe("t7", LISTENER));
    expect(onOther).toEqual(await live.observe("x1", OTHER_LISTENER, ruleArn("r-x1", OTHER_LISTENER)));
    expect(byKnown).toMatchObject({
      ruleArn: ruleArn("r-t3"),
      priority: 4,
      action: { kind: "forward", targetGroupArn: TG },
      managed: true,
    });

    // Spent: a requeue while converging reads live.
    const spent = elbCalls();
    await surveyed.observe("t3", LISTENER, ruleArn("r-t3"));
    expect(elbCalls()).toBe(spent + 2);
  });

  it("never answers for a tenant it did not cover, one without a rule, one written since, or once too old", async () => {
    const surveyed = routes();
    await surveyed.survey([LISTENER], (t) => t !== "t1");
    const tagged = elbMock.commandCalls(DescribeTagsCommand).flatMap((c) => c.args[0].input.ResourceArns);
    expect(tagged).not.toContain(ruleArn("r-t1"));
    let calls = elbCalls();
    const live = async (observe: () => Promise<unknown>) => {
      await observe();
      const made = elbCalls() - calls;
      calls = elbCalls();
      return made;
    };
    // Another controller's share.
    expect(await live(() => surveyed.observe("t1", LISTENER, ruleArn("r-t1")))).toBe(2);
    // No rule: "none" is never given (a create must not rest on an old read): the listener's 3 pages are read.
    expect(await live(() => surveyed.observe("nobody", LISTENER))).toBe(3);
    // A listener not read: OTHER_LISTENER's known rule.
    expect(await live(() => surveyed.observe("x0", LISTENER, ruleArn("r-x0", OTHER_LISTENER)))).toBe(2);
    // Written by this process since the survey.
    elbMock.on(ModifyRuleCommand).resolves({});
    const t5: ObservedRoute = {
      ruleArn: ruleArn("r-t5"),
      listenerArn: LISTENER,
      tenantId: "t5",
      priority: 6,
      action: { kind: "forward", targetGroupArn: TG },
      managed: true,
    };
    await surveyed.update({ tenantId: "t5", listenerArn: LISTENER, priority: 6, action: { kind: "deny" } }, t5, held);
    calls = elbCalls();
    expect(await live(() => surveyed.observe("t5", LISTENER, ruleArn("r-t5")))).toBe(2);
    // Any other covered tenant is still answered.
    expect(await live(() => surveyed.observe("t4", LISTENER, ruleArn("r-t4")))).toBe(0);
    // Older than the bound.
    clock += 60_001;
    expect(await live(() => surveyed.observe("t6", LISTENER, ruleArn("r-t6")))).toBe(2);
  });

  it("leaves a batch whose rule vanished before the tag read to live reads, and answers the rest", async () => {
    account.gone.add(ruleArn("r-t0"));
    const surveyed = routes();
    await surveyed.survey([LISTENER]);
    const before = elbCalls();
    // t0..t19 were one batch: unknown; t20..t24 the second: known.
    await surveyed.observe("t21", LISTENER, ruleArn("r-t21"));
    expect(elbCalls()).toBe(before);
    await surveyed.observe("t10", LISTENER, ruleArn("r-t10"));
    expect(elbCalls()).toBe(before + 2);
  });

  it("keeps nothing when a listener cannot be read, and reads live afterwards", async () => {
    elbMock
      .on(DescribeRulesCommand, { ListenerArn: OTHER_LISTENER })
      .rejects(Object.assign(new Error("Rate exceeded"), { name: "Throttling", $metadata: { httpStatusCode: 400 } }));
    const surveyed = routes();
    await expect(surveyed.survey([LISTENER, OTHER_LISTENER])).rejects.toThrow(/listing the rules of listener/);
    const before = elbCalls();
    await surveyed.observe("t3", LISTENER, ruleArn("r-t3"));
    expect(elbCalls()).toBe(before + 2);
  });
});
