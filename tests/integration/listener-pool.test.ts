import { DescribeStacksCommand } from "@aws-sdk/client-cloudformation";
import { GetItemCommand } from "@aws-sdk/client-dynamodb";
import { DescribeServicesCommand } from "@aws-sdk/client-ecs";
import { DescribeListenersCommand, DescribeRulesCommand } from "@aws-sdk/client-elastic-load-balancing-v2";
import { marshall } from "@aws-sdk/util-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TenantStatus } from "../../src/tenants/status.js";
import { serviceName, stackName } from "../../src/tiers/naming.js";
import { eventually } from "../support/event-sink.js";
import { startHarness, type OperatorHarness } from "../support/operator.js";

/**
 * Issue 11's listener pool against moto behind the local scheduler: with
 * TENANTS_PER_LISTENER at 2 and two of the three load balancers' listeners
 * in LISTENER_ARNS, silo tenants spread over both, each rule on its own
 * listener forwarding to its own target group; one tenant too many is
 * Degraded ("add a listener") with nothing undone; offboarding frees a
 * place another tenant then takes; a restart with the third listener
 * places the next one there.
 */
let h: OperatorHarness;
let L1: string;
let L2: string;
let L3: string;

beforeAll(async () => {
  h = await startHarness({ TENANTS_PER_LISTENER: "2" }, { albs: 3, listeners: 2 });
  [L1, L2, L3] = h.cloud.account.listenerArns as [string, string, string];
}, 60_000);

afterAll(async () => {
  await h?.stop();
});

const silo = (tenantId: string) => ({
  tenantId,
  tier: "advanced",
  tenantName: `Pool ${tenantId}`,
  tenantRegistrationId: `reg-${tenantId}`,
});

async function targetGroupOf(tenantId: string): Promise<string | undefined> {
  const res = await h.clients.cloudformation.send(new DescribeStacksCommand({ StackName: stackName(h.config.namePrefix, tenantId) }));
  return res.Stacks?.[0]?.Outputs?.find((o) => o.OutputKey === "TargetGroupArn")?.OutputValue;
}

/** The rules carrying the tenant's header, on one listener. */
async function rulesFor(listenerArn: string, tenantId: string) {
  const rules = (await h.clients.elbv2.send(new DescribeRulesCommand({ ListenerArn: listenerArn }))).Rules ?? [];
  return rules.filter((r) => JSON.stringify(r.Conditions ?? []).includes(`"${tenantId}"`));
}

async function counted(listenerArn: string): Promise<number | undefined> {
  const res = await h.clients.dynamodb.send(
    new GetItemCommand({ TableName: h.config.leaseTable, Key: marshall({ pk: `listener-tenants#${listenerArn}` }), ConsistentRead: true }),
  );
  const n = res.Item?.["tenants"]?.N;
  return n === undefined ? undefined : Number(n);
}

/** Routing holds: the rule is on the placed listener only, at the placed priority, forwarding to the target group the tenant's service is in. */
async function expectRouted(tenantId: string, status: TenantStatus): Promise<void> {
  const route = status.route;
  expect(route, `${tenantId} has a route`).toBeDefined();
  if (route === undefined) return;
  const tg = await targetGroupOf(tenantId);
  expect(tg).toBeTruthy();
  const here = await rulesFor(route.listenerArn, tenantId);
  expect(here.map((r) => [r.RuleArn, r.Priority, r.Actions?.[0]?.TargetGroupArn])).toEqual([[route.ruleArn, String(route.priority), tg]]);
  for (const other of [L1, L2, L3].filter((l) => l !== route.listenerArn)) expect(await rulesFor(other, tenantId)).toEqual([]);
  const svc = await h.clients.ecs.send(
    new DescribeServicesCommand({ cluster: h.config.advancedCluster, services: [serviceName(h.config.namePrefix, tenantId, "rproxy")] }),
  );
  expect(svc.services?.[0]?.loadBalancers?.[0]?.targetGroupArn).toBe(tg);
}

describe("the listener pool", () => {
  it("spreads silo tenants over the listeners, two each; the fifth is Degraded with 'add a listener' and keeps its stack", async () => {
    // Three load balancers, each with its own listener.
    const lbs = await Promise.all(
      h.cloud.account.loadBalancerArns.map(
        async (arn) => (await h.clients.elbv2.send(new DescribeListenersCommand({ LoadBalancerArn: arn }))).Listeners ?? [],
      ),
    );
    expect(lbs.map((ls) => ls.map((l) => l.ListenerArn))).toEqual([[L1], [L2], [L3]]);
    expect(h.config.listenerArns).toEqual([L1, L2]);

    const ids = ["lp-a", "lp-b", "lp-c", "lp-d", "lp-e"];
    for (const id of ids) await h.put(silo(id));
    const statuses = await eventually(
      async () => {
        const all = await Promise.all(ids.map((id) => h.status(id)));
        const ready = all.filter((s) => s?.phase === "Ready");
        const degraded = all.filter((s) => s?.phase === "Degraded");
        return ready.length === 4 && degraded.length === 1 ? all : undefined;
      },
      "four tenants Ready and one Degraded",
      90_000,
    );
    const byListener = new Map<string, string[]>();
    for (const [i, s] of statuses.entries()) {
      const id = ids[i] ?? "";
      if (s?.phase !== "Ready") continue;
      await expectRouted(id, s);
      const l = s.route?.listenerArn ?? "";
      byListener.set(l, [...(byListener.get(l) ?? []), id]);
    }
    expect([...byListener.keys()].sort()).toEqual([L1, L2].sort());
    expect([...byListener.values()].map((v) => v.length)).toEqual([2, 2]);
    // Priorities are per listener: each listener's first tenant has 1.
    expect(new Set(statuses.filter((s) => s?.phase === "Ready").map((s) => s?.route?.priority))).toEqual(new Set([1, 2]));
    expect([await counted(L1), await counted(L2)]).toEqual([2, 2]);

    const full = statuses.find((s) => s?.phase === "Degraded");
    const fullId = ids[statuses.indexOf(full)] ?? "";
    expect(full?.message).toContain("all 2 listeners hold 2 tenants (TENANTS_PER_LISTENER); add a listener to LISTENER_ARNS");
    expect(full?.lastError?.kind).toBe("transient");
    expect(full?.route).toBeUndefined();
    // Nothing created is undone for it: its stack stays, and it has no rule anywhere.
    expect(await targetGroupOf(fullId)).toBeTruthy();
    for (const l of [L1, L2, L3]) expect(await rulesFor(l, fullId)).toEqual([]);
    expect(full?.stackArn).toBeTruthy();
  }, 120_000);

  it("offboarding frees the tenant's place: the Degraded tenant takes it and is Ready on that listener", async () => {
    const all = await Promise.all(["lp-a", "lp-b", "lp-c", "lp-d", "lp-e"].map(async (id) => ({ id, s: await h.status(id) })));
    const waiting = all.find((t) => t.s?.phase === "Degraded");
    const leaving = all.find((t) => t.s?.phase === "Ready" && t.s.route?.listenerArn === L2);
    expect(waiting).toBeDefined();
    expect(leaving).toBeDefined();
    if (waiting === undefined || leaving === undefined) return;

    await h.update(leaving.id, { sbtaws_active: false });
    await h.waitForPhase(leaving.id, "Deprovisioned", 60_000);
    expect(await rulesFor(L2, leaving.id)).toEqual([]);
    const placement = await h.clients.dynamodb.send(
      new GetItemCommand({ TableName: h.config.leaseTable, Key: marshall({ pk: `priority-of#${leaving.id}` }), ConsistentRead: true }),
    );
    expect(placement.Item).toBeUndefined();

    // The waiting tenant retries with backoff (it may have taken the place already); an edit of its record makes the retry now.
    await h.update(waiting.id, { tenantName: "Pool retried" });
    const ready = await h.waitForPhase(waiting.id, "Ready", 60_000);
    expect(ready.route?.listenerArn).toBe(L2);
    // The number the leaver released on L2 is the lowest free one there again.
    expect(ready.route?.priority).toBe(leaving.s?.route?.priority);
    await expectRouted(waiting.id, ready);
    expect([await counted(L1), await counted(L2)]).toEqual([2, 2]);
  }, 120_000);

  it("a tenant with no listener to go to is Ready once a restart adds a listener to LISTENER_ARNS; the others stay where they are", async () => {
    await h.put(silo("lp-f"));
    const degraded = await h.waitForPhase("lp-f", "Degraded", 60_000);
    expect(degraded.message).toContain("add a listener");
    const before = await Promise.all(["lp-a", "lp-b", "lp-c", "lp-d", "lp-e"].map((id) => h.status(id)));

    await h.controller.stop();
    h.controller = await h.startController({ LISTENER_ARNS: [L1, L2, L3].join(",") });
    const ready = await h.waitForPhase("lp-f", "Ready", 60_000);
    expect(ready.route?.listenerArn).toBe(L3);
    expect(ready.route?.priority).toBe(1);
    await expectRouted("lp-f", ready);
    expect(await counted(L3)).toBe(1);

    // Placements are for life: the restart moved nobody.
    const after = await Promise.all(["lp-a", "lp-b", "lp-c", "lp-d", "lp-e"].map((id) => h.status(id)));
    expect(after.map((s) => s?.route)).toEqual(before.map((s) => s?.route));
  }, 120_000);
});
