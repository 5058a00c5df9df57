import {
  CreateRuleCommand,
  CreateTargetGroupCommand,
  DescribeRulesCommand,
  DescribeTagsCommand,
  type ElasticLoadBalancingV2Client,
  type Rule,
} from "@aws-sdk/client-elastic-load-balancing-v2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UnmanagedResourceError, type DesiredRoute, type Fence } from "../../src/ports.js";
import { ListenerRoutes, PriorityInUseError } from "../../src/providers/listener-routes.js";
import { decideRoute } from "../../src/tiers/route-decide.js";
import { startTestCloud, type TestCloud } from "../support/localcloud.js";

const held: Fence = { assertHeld: () => undefined };

let cloud: TestCloud;
let elbv2: ElasticLoadBalancingV2Client;
let routes: ListenerRoutes;
let listener: string;
let tgA: string;
let tgB: string;

beforeAll(async () => {
  cloud = await startTestCloud();
  elbv2 = cloud.clients.elbv2;
  listener = cloud.account.listenerArn;
  // A small page, so the listing path pages on moto too once a few rules exist.
  routes = new ListenerRoutes(elbv2, { pageSize: 2 });
  tgA = await targetGroup("routes-a");
  tgB = await targetGroup("routes-b");
});

afterAll(async () => {
  await cloud?.stop();
});

async function targetGroup(name: string): Promise<string> {
  const out = await elbv2.send(
    new CreateTargetGroupCommand({ Name: name, Protocol: "HTTP", Port: 80, VpcId: cloud.account.vpcId, TargetType: "ip" }),
  );
  const arn = out.TargetGroups?.[0]?.TargetGroupArn;
  if (arn === undefined) throw new Error("CreateTargetGroup returned no ARN");
  return arn;
}

async function rawRule(ruleArn: string): Promise<Rule | undefined> {
  const rules = (await elbv2.send(new DescribeRulesCommand({ ListenerArn: listener }))).Rules ?? [];
  return rules.find((r) => r.RuleArn === ruleArn);
}

const route = (tenantId: string, priority: number, action: DesiredRoute["action"]): DesiredRoute => ({
  tenantId,
  listenerArn: listener,
  priority,
  action,
});

describe("ListenerRoutes on the local cloud", () => {
  it("creates a forward rule, flips it to deny and back, moves its priority, and deletes it", async () => {
    const forward = route("tenant-one", 101, { kind: "forward", targetGroupArn: tgA });
    expect(decideRoute(forward, await routes.observe("tenant-one", listener)).kind).toBe("create");
    const arn = await routes.create(forward, held);

    // Both lookups: by listing, and by the known ARN.
    const listed = await routes.observe("tenant-one", listener);
    expect(listed).toEqual({
      ruleArn: arn,
      listenerArn: listener,
      tenantId: "tenant-one",
      priority: 101,
      action: { kind: "forward", targetGroupArn: tgA },
      managed: true,
    });
    expect(await routes.observe("tenant-one", listener, arn)).toEqual(listed);
    const tags = (await elbv2.send(new DescribeTagsCommand({ ResourceArns: [arn] }))).TagDescriptions?.[0]?.Tags ?? [];
    expect(Object.fromEntries(tags.map((t) => [t.Key, t.Value]))).toEqual({
      "managed-by": "ecs-tenant-operator",
      "tenant-id": "tenant-one",
    });
    expect(decideRoute(forward, listed).kind).toBe("ready");

    // Suspend: one ModifyRule to a plain-text 403.
    const deny = route("tenant-one", 101, { kind: "deny" });
    const toDeny = decideRoute(deny, listed);
    expect(toDeny.kind === "update" && toDeny.changes).toEqual({ action: true, priority: false });
    await routes.update(deny, listed!, held);
    const denied = await routes.observe("tenant-one", listener, arn);
    expect(denied?.action).toEqual({ kind: "deny" });
    expect(denied?.ruleArn).toBe(arn);
    expect((await rawRule(arn))?.Actions?.[0]).toMatchObject({
      Type: "fixed-response",
      FixedResponseConfig: { StatusCode: "403", ContentType: "text/plain", MessageBody: "tenant suspended" },
    });

    // Resume onto another target group (a tier move's flip).
    const back = route("tenant-one", 101, { kind: "forward", targetGroupArn: tgB });
    await routes.update(back, denied!, held);
    const resumed = await routes.observe("tenant-one", listener, arn);
    expect(resumed?.action).toEqual({ kind: "forward", targetGroupArn: tgB });

    // Priority only.
    const moved = route("tenant-one", 150, { kind: "forward", targetGroupArn: tgB });
    const step = decideRoute(moved, resumed);
    expect(step.kind === "update" && step.changes).toEqual({ action: false, priority: true });
    await routes.update(moved, resumed!, held);
    const now = await routes.observe("tenant-one", listener, arn);
    expect(now?.priority).toBe(150);
    expect(now?.action).toEqual({ kind: "forward", targetGroupArn: tgB });
    expect(decideRoute(moved, now).kind).toBe("ready");

    // Offboard (or a move to basic): delete, and deleting again is success.
    const gone = decideRoute(undefined, now);
    expect(gone.kind).toBe("delete");
    await routes.delete(now!, held);
    expect(await rawRule(arn)).toBeUndefined();
    expect(await routes.observe("tenant-one", listener)).toBeUndefined();
    // The stale ARN falls back to the listing and finds nothing.
    expect(await routes.observe("tenant-one", listener, arn)).toBeUndefined();
    await expect(routes.delete(now!, held)).resolves.toBeUndefined();
  });

  it("keeps Acme and acme apart: distinct rules, each observed as its own", async () => {
    const upper = await routes.create(route("Acme", 201, { kind: "forward", targetGroupArn: tgA }), held);
    const lower = await routes.create(route("acme", 202, { kind: "deny" }), held);
    expect(upper).not.toBe(lower);

    const a = await routes.observe("Acme", listener);
    const b = await routes.observe("acme", listener);
    expect(a).toMatchObject({ ruleArn: upper, tenantId: "Acme", priority: 201, action: { kind: "forward", targetGroupArn: tgA } });
    expect(b).toMatchObject({ ruleArn: lower, tenantId: "acme", priority: 202, action: { kind: "deny" } });
    expect(await routes.observe("ACME", listener)).toBeUndefined();
    // A known ARN of the other-cased tenant is not taken for this one.
    expect((await routes.observe("acme", listener, upper))?.ruleArn).toBe(lower);

    await routes.delete(a!, held);
    await routes.delete(b!, held);
  });

  it("says which priority is taken when creating onto it", async () => {
    const first = await routes.create(route("holder", 301, { kind: "deny" }), held);
    const err = await routes.create(route("latecomer", 301, { kind: "deny" }), held).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PriorityInUseError);
    expect((err as PriorityInUseError).priority).toBe(301);
    expect((err as PriorityInUseError).holder).toBe(first);
    // The holder's own retried create is answered with its rule, not an error.
    expect(await routes.create(route("holder", 301, { kind: "deny" }), held)).toBe(first);
    await routes.delete((await routes.observe("holder", listener))!, held);
  });

  it("refuses to update or delete a rule created without the ownership tags", async () => {
    const created = await elbv2.send(
      new CreateRuleCommand({
        ListenerArn: listener,
        Priority: 401,
        Conditions: [{ Field: "http-header", HttpHeaderConfig: { HttpHeaderName: "tenantPath", Values: ["handmade"] } }],
        Actions: [{ Type: "forward", TargetGroupArn: tgA }],
      }),
    );
    const arn = created.Rules?.[0]?.RuleArn;
    const seen = await routes.observe("handmade", listener);
    expect(seen).toMatchObject({ ruleArn: arn, managed: false, action: { kind: "forward", targetGroupArn: tgA } });

    const step = decideRoute(route("handmade", 401, { kind: "deny" }), seen);
    expect(step.kind).toBe("fail");

    await expect(routes.update(route("handmade", 401, { kind: "deny" }), seen!, held)).rejects.toBeInstanceOf(UnmanagedResourceError);
    await expect(routes.delete(seen!, held)).rejects.toBeInstanceOf(UnmanagedResourceError);
    const after = await rawRule(arn!);
    expect(after?.Priority).toBe("401");
    expect(after?.Actions?.[0]?.Type).toBe("forward");
  });
});
