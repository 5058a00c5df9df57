import {
  CreateClusterCommand,
  CreateServiceCommand,
  DeleteServiceCommand,
  DescribeClustersCommand,
  DescribeServicesCommand,
  ListTaskDefinitionsCommand,
  RegisterTaskDefinitionCommand,
  UpdateServiceCommand,
} from "@aws-sdk/client-ecs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { APP_NAMES } from "../../src/tenants/record.js";
import { premiumClusterName, serviceName, taskDefinitionFamily } from "../../src/tiers/naming.js";
import { eventually } from "../support/event-sink.js";
import { startHarness, type OperatorHarness } from "../support/operator.js";

/**
 * The whole loop against moto behind the local ECS scheduler: records in,
 * ECS resources, status and SBT events out. One harness for the file; each
 * test uses its own tenant ids.
 */
let h: OperatorHarness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.stop();
});

const prefix = () => h.config.namePrefix;
async function services(cluster: string, names: readonly string[]) {
  const res = await h.clients.ecs.send(new DescribeServicesCommand({ cluster, services: [...names], include: ["TAGS"] }));
  return res.services ?? [];
}
async function activeServices(cluster: string, tenantId: string) {
  const all = await services(
    cluster,
    APP_NAMES.map((a) => serviceName(prefix(), tenantId, a)),
  );
  return all.filter((s) => s.status === "ACTIVE");
}
async function revisions(tenantId: string, app: (typeof APP_NAMES)[number]) {
  const res = await h.clients.ecs.send(new ListTaskDefinitionsCommand({ familyPrefix: taskDefinitionFamily(prefix(), tenantId, app) }));
  return res.taskDefinitionArns ?? [];
}

describe("onboarding", () => {
  it("brings one tenant of each tier to Ready and tells SBT", async () => {
    const uuid = "7c9e6679-7425-40de-944b-e07fc1f90ae7";
    await h.put({ tenantId: "basic-1", tier: "BASIC", tenantName: "Basic One", tenantRegistrationId: "reg-b1" });
    await h.put({ tenantId: "adv-1", tier: "advanced", tenantName: "Adv One", tenantRegistrationId: "reg-a1" });
    await h.put({ tenantId: uuid, tier: "Premium", tenantName: "Prem UUID", tenantRegistrationId: "reg-p1" });

    const [basic, adv, prem] = await Promise.all([
      h.waitForPhase("basic-1", "Ready"),
      h.waitForPhase("adv-1", "Ready"),
      h.waitForPhase(uuid, "Ready"),
    ]);
    expect(basic.serviceArns ?? []).toEqual([]);

    // advanced: one service per app in the shared advanced cluster, tagged as owned
    const advServices = await activeServices(h.config.advancedCluster, "adv-1");
    expect(advServices.map((s) => s.serviceName).sort()).toEqual(APP_NAMES.map((a) => serviceName(prefix(), "adv-1", a)).sort());
    for (const s of advServices) {
      const tags = Object.fromEntries((s.tags ?? []).map((t) => [t.key ?? "", t.value]));
      expect(tags).toMatchObject({ "managed-by": "ecs-tenant-operator", "tenant-id": "adv-1", tier: "advanced" });
      expect(s.runningCount).toBe(s.desiredCount);
    }
    expect(adv.serviceArns).toHaveLength(4);

    // premium: its own cluster with its own services
    const cluster = premiumClusterName(prefix(), uuid);
    const clusters = await h.clients.ecs.send(new DescribeClustersCommand({ clusters: [cluster], include: ["TAGS"] }));
    expect(clusters.clusters?.[0]?.status).toBe("ACTIVE");
    expect(await activeServices(cluster, uuid)).toHaveLength(4);
    expect(prem.clusterArn).toBe(clusters.clusters?.[0]?.clusterArn);

    // SBT heard about each, with the registration id and status Created
    for (const [id, reg] of [
      ["basic-1", "reg-b1"],
      ["adv-1", "reg-a1"],
      [uuid, "reg-p1"],
    ] as const) {
      const events = await eventually(async () => {
        const e = await h.sink.of(id, "sbt_aws_provisionSuccess");
        return e.length > 0 ? e : undefined;
      }, `provisionSuccess for ${id}`);
      expect(events).toHaveLength(1);
      expect(events[0]?.source).toBe("sbt.application.plane");
      expect(events[0]?.detail).toMatchObject({
        tenantId: id,
        tenantRegistrationId: reg,
        jobOutput: { tenantRegistrationData: { registrationStatus: "Created" } },
      });
    }
  });

  it("changes desiredCount with one UpdateService and no new task definition revision", async () => {
    await h.put({ tenantId: "scale-1", tier: "advanced", tenantName: "Scale" });
    const first = await h.waitForPhase("scale-1", "Ready");
    const before = await revisions("scale-1", "orders");
    h.cloud.control.resetCalls();

    await h.update("scale-1", { apps: { orders: { desiredCount: 3 } } });
    await eventually(async () => {
      const s = await h.status("scale-1");
      return s?.phase === "Ready" && s.observedSpecHash !== first.observedSpecHash ? s : undefined;
    }, "scale-1 Ready at the new spec");

    const calls = h.cloud.control.ecsCalls();
    expect(calls["UpdateService"]).toBe(1);
    expect(calls["RegisterTaskDefinition"] ?? 0).toBe(0);
    expect(calls["CreateService"] ?? 0).toBe(0);
    expect(await revisions("scale-1", "orders")).toEqual(before);
    const [orders] = await services(h.config.advancedCluster, [serviceName(prefix(), "scale-1", "orders")]);
    expect(orders?.desiredCount).toBe(3);
    expect(orders?.runningCount).toBe(3);
  });

  it("changes a version with exactly one new revision and one UpdateService", async () => {
    await h.put({ tenantId: "ver-1", tier: "advanced", tenantName: "Version" });
    const first = await h.waitForPhase("ver-1", "Ready");
    const before = await revisions("ver-1", "users");
    h.cloud.control.resetCalls();

    await h.update("ver-1", { apps: { users: { version: "2.0.0" } } });
    await eventually(async () => {
      const s = await h.status("ver-1");
      return s?.phase === "Ready" && s.observedSpecHash !== first.observedSpecHash ? s : undefined;
    }, "ver-1 Ready at the new version");

    const calls = h.cloud.control.ecsCalls();
    expect(calls["RegisterTaskDefinition"]).toBe(1);
    expect(calls["UpdateService"]).toBe(1);
    const after = await revisions("ver-1", "users");
    expect(after).toHaveLength(before.length + 1);
    const [users] = await services(h.config.advancedCluster, [serviceName(prefix(), "ver-1", "users")]);
    expect(users?.taskDefinition).toBe(after[after.length - 1]);
  });

  it("a status-only write does not trigger a reconcile", async () => {
    await h.put({ tenantId: "quiet-1", tier: "advanced", tenantName: "Quiet" });
    const ready = await h.waitForPhase("quiet-1", "Ready");
    await new Promise((r) => setTimeout(r, 500));
    h.cloud.control.resetCalls();
    await h.update("quiet-1", { status: { ...ready, message: "touched by hand" } });
    await new Promise((r) => setTimeout(r, 1500));
    expect(h.cloud.control.ecsCalls()).toEqual({});
    expect((await h.status("quiet-1"))?.message).toBe("touched by hand");
  });
});

describe("failed rollouts", () => {
  it("reports a version whose tasks crash as Degraded, with the reason, and does not redeploy it", async () => {
    await h.put({ tenantId: "crash-1", tier: "advanced", tenantName: "Crash" });
    await h.waitForPhase("crash-1", "Ready");
    await h.update("crash-1", { apps: { orders: { version: "crashloop" } } });
    const degraded = await h.waitForPhase("crash-1", "Degraded");
    expect(degraded.message).toContain(serviceName(prefix(), "crash-1", "orders"));
    expect(degraded.message.toLowerCase()).toContain("fail");
    const failure = await eventually(async () => {
      const e = await h.sink.of("crash-1", "sbt_aws_provisionFailure");
      return e.length > 0 ? e : undefined;
    }, "provisionFailure for the failed rollout");
    expect(failure[0]?.detail.jobOutput).toMatchObject({ tenantRegistrationData: { registrationStatus: "Failed" } });
    // Looking again does not deploy the failed revision again.
    h.cloud.control.resetCalls();
    await h.controller.manager.resyncNow();
    await new Promise((r) => setTimeout(r, 1000));
    expect(h.cloud.control.ecsCalls()["UpdateService"] ?? 0).toBe(0);
    expect(h.cloud.control.ecsCalls()["RegisterTaskDefinition"] ?? 0).toBe(0);
  });
});

describe("offboarding", () => {
  it("removes a premium tenant with sbtaws_active=false: services, then the cluster", async () => {
    await h.put({ tenantId: "off-1", tier: "premium", tenantName: "Off", tenantRegistrationId: "reg-off" });
    await h.waitForPhase("off-1", "Ready");
    await h.update("off-1", { sbtaws_active: false });
    await h.waitForPhase("off-1", "Deprovisioned");
    const cluster = premiumClusterName(prefix(), "off-1");
    const res = await h.clients.ecs.send(new DescribeClustersCommand({ clusters: [cluster] }));
    expect(res.clusters?.[0]?.status ?? "INACTIVE").toBe("INACTIVE");
    expect(await activeServices(cluster, "off-1").catch(() => [])).toHaveLength(0);
    const events = await eventually(async () => {
      const e = await h.sink.of("off-1", "sbt_aws_deprovisionSuccess");
      return e.length > 0 ? e : undefined;
    }, "deprovisionSuccess");
    expect(events[0]?.detail).toMatchObject({
      tenantRegistrationId: "reg-off",
      jobOutput: { tenantRegistrationData: { registrationStatus: "Deleted" } },
    });

    // Purging the Deprovisioned record announces nothing more.
    await h.remove("off-1");
    await new Promise((r) => setTimeout(r, 1500));
    expect(await h.sink.of("off-1", "sbt_aws_deprovisionSuccess")).toHaveLength(1);
  });

  it("removes an advanced tenant whose item is deleted, found by its names", async () => {
    await h.put({ tenantId: "del-1", tier: "advanced", tenantName: "Del", tenantRegistrationId: "reg-del" });
    await h.waitForPhase("del-1", "Ready");
    await h.remove("del-1");
    await eventually(
      async () => ((await activeServices(h.config.advancedCluster, "del-1")).length === 0 ? true : undefined),
      "del-1 services gone",
    );
    const events = await eventually(async () => {
      const e = await h.sink.of("del-1", "sbt_aws_deprovisionSuccess");
      return e.length > 0 ? e : undefined;
    }, "deprovisionSuccess after delete");
    expect(events[0]?.detail.tenantRegistrationId).toBe("reg-del");
    expect(await h.item("del-1")).toBeUndefined();
  });
});

describe("bad input", () => {
  it("marks an invalid record Failed with the field named, next to valid ones", async () => {
    await h.put({ tenantId: "bad-1", tier: "gold", tenantName: "Bad" });
    await h.put({ tenantId: "good-1", tier: "advanced", tenantName: "Good" });
    const bad = await h.waitForPhase("bad-1", "Failed");
    expect(bad.message).toContain("tier");
    expect(bad.message).toContain("basic, advanced or premium");
    await h.waitForPhase("good-1", "Ready");
    const failure = await eventually(async () => {
      const e = await h.sink.of("bad-1", "sbt_aws_provisionFailure");
      return e.length > 0 ? e : undefined;
    }, "provisionFailure");
    expect(failure[0]?.detail).toMatchObject({ jobOutput: { tenantRegistrationData: { registrationStatus: "Failed" } } });
    expect(String(failure[0]?.detail["reason"])).toContain("tier");
  });

  it("never touches a Ready tenant's resources when its record turns invalid", async () => {
    await h.put({ tenantId: "keep-1", tier: "advanced", tenantName: "Keep" });
    await h.waitForPhase("keep-1", "Ready");
    h.cloud.control.resetCalls();
    await h.update("keep-1", { apps: { orders: { desiredCount: -5 } } });
    const failed = await h.waitForPhase("keep-1", "Failed");
    expect(failed.message).toContain("apps.orders.desiredCount");
    const calls = h.cloud.control.ecsCalls();
    for (const write of ["UpdateService", "DeleteService", "CreateService", "RegisterTaskDefinition", "DeleteCluster"])
      expect(calls[write] ?? 0).toBe(0);
    expect(await activeServices(h.config.advancedCluster, "keep-1")).toHaveLength(4);
  });
});

describe("drift and ownership", () => {
  it("recreates a service deleted behind its back at the next resync", async () => {
    await h.put({ tenantId: "drift-1", tier: "advanced", tenantName: "Drift" });
    await h.waitForPhase("drift-1", "Ready");
    const name = serviceName(prefix(), "drift-1", "products");
    await h.clients.ecs.send(new UpdateServiceCommand({ cluster: h.config.advancedCluster, service: name, desiredCount: 0 }));
    await h.clients.ecs.send(new DeleteServiceCommand({ cluster: h.config.advancedCluster, service: name }));
    // Let the deletion drain in simulated time, then trigger a resync of the fleet.
    await eventually(
      async () => ((await services(h.config.advancedCluster, [name]))[0]?.status === "INACTIVE" ? true : undefined),
      "drain",
    );
    await h.controller.manager.resyncNow();
    await eventually(
      async () => ((await activeServices(h.config.advancedCluster, "drift-1")).length === 4 ? true : undefined),
      "service recreated",
    );
    await h.waitForPhase("drift-1", "Ready");
  });

  it("never touches an unmanaged service or cluster, and reports one in the way", async () => {
    const ecs = h.clients.ecs;
    const net = { awsvpcConfiguration: { subnets: [...h.config.subnets], securityGroups: [...h.config.securityGroups] } };
    const td = await ecs.send(
      new RegisterTaskDefinitionCommand({
        family: "handmade",
        containerDefinitions: [{ name: "x", image: "nginx:1", memory: 128 }],
        requiresCompatibilities: ["FARGATE"],
        networkMode: "awsvpc",
        cpu: "256",
        memory: "512",
      }),
    );
    const tdArn = td.taskDefinition?.taskDefinitionArn ?? "";
    // An unmanaged service squatting on the name the controller would use for tenant squat-1's orders.
    const squatName = serviceName(prefix(), "squat-1", "orders");
    await ecs.send(
      new CreateServiceCommand({
        cluster: h.config.advancedCluster,
        serviceName: squatName,
        taskDefinition: tdArn,
        desiredCount: 1,
        launchType: "FARGATE",
        networkConfiguration: net,
      }),
    );
    // An unmanaged premium-named cluster for a tenant that is then offboarded.
    const foreignCluster = premiumClusterName(prefix(), "foreign-1");
    await ecs.send(new CreateClusterCommand({ clusterName: foreignCluster }));

    await h.put({ tenantId: "squat-1", tier: "advanced", tenantName: "Squat" });
    const degraded = await h.waitForPhase("squat-1", "Degraded");
    expect(degraded.message).toContain("not managed by ecs-tenant-operator");
    await h.put({ tenantId: "foreign-1", tier: "premium", tenantName: "Foreign", sbtaws_active: false });
    await h.waitForPhase("foreign-1", "Degraded");

    const [squat] = await services(h.config.advancedCluster, [squatName]);
    expect(squat?.status).toBe("ACTIVE");
    expect(squat?.desiredCount).toBe(1);
    expect(squat?.taskDefinition).toBe(tdArn);
    const fc = await ecs.send(new DescribeClustersCommand({ clusters: [foreignCluster] }));
    expect(fc.clusters?.[0]?.status).toBe("ACTIVE");
  });
});
