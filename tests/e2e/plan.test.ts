import { PassThrough } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main } from "../../src/cli/tenantctl.js";
import type { Io } from "../../src/cli/command.js";
import { defaultCatalogue } from "../../src/apps/catalogue.js";
import { publishSettings, readSettings, settingsOf } from "../../src/providers/controller-settings.js";
import { ensureLeaseTable } from "../../src/providers/dynamodb-lease-store.js";
import { eventually } from "../support/event-sink.js";
import { startHarness, type OperatorHarness } from "../support/operator.js";

/**
 * `tenantctl plan` against the local cloud: it lists the calls, makes none,
 * and the controller then makes exactly the calls it listed.
 */
let h: OperatorHarness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.stop();
});

async function plan(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  return planWith(h.cloud.env, ...args);
}

async function planWith(env: Readonly<Record<string, string>>, ...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = "";
  let err = "";
  stdout.on("data", (d: Buffer) => (out += d.toString()));
  stderr.on("data", (d: Buffer) => (err += d.toString()));
  const io: Io = { stdout, stderr, stdin: new PassThrough(), env: { ...env } };
  const code = await main(["plan", ...args], io);
  return { code, out, err };
}

interface PlannedTenant {
  tenantId: string;
  calls: { call: string; target: string; reason: string }[];
  converged: boolean;
  invalidRecord?: string;
}
async function planJson(...ids: string[]): Promise<PlannedTenant[]> {
  const r = await plan(...ids, "-o", "json");
  if (r.code !== 0) throw new Error(`tenantctl plan exited ${r.code}: ${r.err}`);
  return JSON.parse(r.out) as PlannedTenant[];
}
const WRITES = ["CreateCluster", "RegisterTaskDefinition", "CreateService", "UpdateService", "DeleteService", "DeleteCluster"];
function writesMade(): Record<string, number> {
  const calls = h.cloud.control.ecsCalls();
  return Object.fromEntries(WRITES.filter((w) => (calls[w] ?? 0) > 0).map((w) => [w, calls[w] ?? 0]));
}
function writesPlanned(p: PlannedTenant): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const c of p.calls) counts[c.call.replace("ecs:", "")] = (counts[c.call.replace("ecs:", "")] ?? 0) + 1;
  return counts;
}

describe("tenantctl plan", () => {
  it("plans a new premium tenant's stack first, makes no call itself, and the controller then makes those calls", async () => {
    // The pool (its stack, then its services) converges first, so the counts below are the tenant's alone.
    await eventually(async () => ((await planJson(":pool"))[0]?.converged === true ? true : undefined), "the pool converged", 60_000, 500);
    await h.controller.stop();
    await h.put({ tenantId: "plan-1", tier: "premium", tenantName: "Plan One" });
    h.cloud.control.resetCalls();

    const [planned] = await planJson("plan-1");
    expect(planned?.converged).toBe(false);
    // Services wait for the stack: its roles and target group go into them.
    // The id claim first (routing cannot cross tenants); the rule's priority comes with the rule, once services run.
    expect(planned?.calls.map((c) => c.call)).toEqual(["dynamodb:PutItem", "cognito-idp:CreateUserPool", "cloudformation:CreateStack"]);
    expect(planned?.calls.every((c) => c.reason.length > 0)).toBe(true);
    const text = await plan("plan-1");
    expect(text.code).toBe(0);
    expect(text.out).toContain("cloudformation:CreateStack");
    expect(text.out).toContain("waiting: the tenant's infrastructure stack");
    // A dry run: nothing was written anywhere.
    const made = h.cloud.control.calls();
    for (const write of [
      "cloudformation:CreateStack",
      "dynamodb:TransactWriteItems",
      "dynamodb:PutItem",
      "dynamodb:UpdateItem",
      "events:PutEvents",
      "elasticloadbalancing:CreateRule",
    ])
      expect(made[write] ?? 0).toBe(0);
    expect(writesMade()).toEqual({});

    h.controller = await h.startController();
    await h.waitForPhase("plan-1", "Ready");
    const after = h.cloud.control.calls();
    expect(after["cloudformation:CreateStack"]).toBe(1);
    // The placement is one transaction; every status write is one too, fenced by the shard's lease (docs/adr/0016).
    expect(after["dynamodb:TransactWriteItems"]).toBeGreaterThanOrEqual(1);
    expect(after["elasticloadbalancing:CreateRule"]).toBe(1);
    expect(writesMade()).toEqual({ CreateCluster: 1, RegisterTaskDefinition: 4, CreateService: 4 });

    const [settled] = await planJson("plan-1");
    expect(settled).toMatchObject({ converged: true, calls: [] });
  });

  it("plans a change to a Ready tenant the way the controller then carries it out", async () => {
    await h.put({ tenantId: "plan-2", tier: "advanced", tenantName: "Plan Two" });
    await h.waitForPhase("plan-2", "Ready");
    await h.controller.stop();
    await h.update("plan-2", { apps: { orders: { desiredCount: 2 }, users: { version: "2.1.0" } } });
    h.cloud.control.resetCalls();

    const [planned] = await planJson("plan-2");
    // The stack is unchanged: only ECS calls, and exactly these.
    expect(writesPlanned(planned!)).toEqual({ RegisterTaskDefinition: 1, UpdateService: 2 });
    expect(planned?.calls.map((c) => c.reason).join(" | ")).toMatch(/desiredCount 1 -> 2/);

    const before = (await h.status("plan-2"))?.observedSpecHash;
    h.controller = await h.startController();
    await eventually(async () => {
      const s = await h.status("plan-2");
      return s?.phase === "Ready" && s.observedSpecHash !== before ? s : undefined;
    }, "plan-2 Ready at the new spec");
    expect(writesMade()).toEqual(writesPlanned(planned!));
  });

  it("reports an invalid record and plans nothing for it; rejects bad arguments", async () => {
    await h.put({ tenantId: "plan-bad", tier: "advanced", tenantName: "Bad", apps: { orders: { desiredCount: "three" } } });
    const [planned] = await planJson("plan-bad");
    expect(planned?.calls).toEqual([]);
    expect(planned?.invalidRecord).toContain("apps.orders.desiredCount");
    expect((await plan()).code).toBe(2);
    expect((await plan("--all", "x")).code).toBe(2);
    const bad = await plan("not a valid id");
    expect(bad.code).toBe(2);
  });

  it("from a workstation with only the endpoint, region, credentials and tables: plans with the settings the controller published", async () => {
    const workstation = Object.fromEntries(
      ["AWS_ENDPOINT_URL", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "TENANTS_TABLE", "LEASE_TABLE"].flatMap((k) => {
        const v = h.cloud.env[k];
        return v === undefined ? [] : [[k, v]];
      }),
    );
    expect(workstation).not.toHaveProperty("SUBNETS");
    await h.put({ tenantId: "plan-3", tier: "advanced", tenantName: "Plan Three" });
    await h.waitForPhase("plan-3", "Ready");
    await h.controller.stop();
    try {
      await h.update("plan-3", { apps: { products: { desiredCount: 3 } } });
      const full = await planWith(h.cloud.env, "plan-3", ":pool", "-o", "json");
      const light = await planWith(workstation, "plan-3", ":pool", "-o", "json");
      expect(light.err).toBe("");
      expect(light.code).toBe(0);
      // The same calls, for the same reasons, as with the controller's whole environment.
      expect(JSON.parse(light.out)).toEqual(JSON.parse(full.out));
      const [planned] = JSON.parse(light.out) as PlannedTenant[];
      expect(planned?.calls.map((c) => c.call)).toEqual(["ecs:UpdateService"]);
    } finally {
      h.controller = await h.startController();
    }

    // Another operator table, where no controller has run: the way out is named.
    const none = await planWith({ ...workstation, LEASE_TABLE: "no-controller-here" }, "plan-3");
    expect(none.code).toBe(2);
    expect(none.err).toContain(
      "no controller has published its settings in table no-controller-here (the table does not exist): set SUBNETS, SECURITY_GROUPS, LISTENER_ARNS, VPC_ID",
    );
  });

  it("a deposed leader's late write does not replace the settings of a later leader", async () => {
    const table = "settings-fence-operator";
    await ensureLeaseTable(h.clients.dynamodb, table);
    const settings = (token: number, vpcId: string) => ({
      ...settingsOf(h.config, defaultCatalogue, { holder: `c${token}`, token, accountId: "123456789012", now: new Date() }),
      vpcId,
    });
    expect(await publishSettings(h.clients.dynamodb, table, settings(5, "vpc-05"))).toBe(true);
    expect(await publishSettings(h.clients.dynamodb, table, settings(3, "vpc-03"))).toBe(false);
    expect((await readSettings(h.clients.dynamodb, table))?.vpcId).toBe("vpc-05");
    expect(await publishSettings(h.clients.dynamodb, table, settings(6, "vpc-06"))).toBe(true);
    expect(await readSettings(h.clients.dynamodb, table)).toMatchObject({ vpcId: "vpc-06", token: 6, holder: "c6" });
    // What the running controller published is its own configuration.
    expect(await readSettings(h.clients.dynamodb, h.config.leaseTable)).toMatchObject({
      subnets: h.config.subnets,
      listenerArn: h.config.listenerArn,
      vpcId: h.config.vpcId,
      namePrefix: h.config.namePrefix,
      catalogueSource: "built-in",
    });
  });
});
