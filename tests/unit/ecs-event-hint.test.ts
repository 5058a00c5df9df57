import { describe, expect, it } from "vitest";
import { ecsEventPattern, hintOfEvent, hintOfMessage, type HintNames } from "../../src/tiers/ecs-event-hint.js";
import { POOL_KEY } from "../../src/tiers/desired.js";
import { isPoolServiceName, tenantOfEcsName } from "../../src/tiers/naming.js";

const names: HintNames = { namePrefix: "saas", poolCluster: "saas-pool", advancedCluster: "saas-advanced" };
const head = "arn:aws:ecs:us-east-1:123456789012:";

/** Shaped like AWS's documented examples (ecs_service_events, ecs_service_deployment_events, ecs_task_events). */
function serviceAction(cluster: string, service: string, eventName = "SERVICE_STEADY_STATE") {
  return {
    version: "0",
    id: "af3c496d-f4a8-65d1-70f4-a69d52e9b584",
    "detail-type": "ECS Service Action",
    source: "aws.ecs",
    account: "123456789012",
    time: "2026-11-30T19:27:22Z",
    region: "us-east-1",
    resources: [`${head}service/${cluster}/${service}`],
    detail: { eventType: "INFO", eventName, clusterArn: `${head}cluster/${cluster}`, createdAt: "2026-11-30T19:27:22.695Z" },
  };
}

function deployment(cluster: string, service: string, eventName = "SERVICE_DEPLOYMENT_COMPLETED") {
  return {
    version: "0",
    id: "ddca6449-b258-46c0-8653-e0e3a6EXAMPLE",
    "detail-type": "ECS Deployment State Change",
    source: "aws.ecs",
    account: "123456789012",
    time: "2026-11-30T12:31:14Z",
    region: "us-east-1",
    resources: [`${head}service/${cluster}/${service}`],
    detail: {
      eventType: "INFO",
      eventName,
      deploymentId: "ecs-svc/0000000000000000001",
      updatedAt: "2026-11-30T12:31:14.000Z",
      reason: "ECS deployment ecs-svc/0000000000000000001 completed.",
    },
  };
}

function task(cluster: string, group: string | undefined, lastStatus = "STOPPED") {
  const taskArn = `${head}task/${cluster}/0123456789abcdef0123456789abcdef`;
  return {
    version: "0",
    id: "3317b2af-7005-947d-b652-f55e762e571a",
    "detail-type": "ECS Task State Change",
    source: "aws.ecs",
    account: "123456789012",
    time: "2026-11-30T19:27:22Z",
    region: "us-east-1",
    resources: [taskArn],
    detail: {
      clusterArn: `${head}cluster/${cluster}`,
      taskArn,
      ...(group !== undefined ? { group } : {}),
      lastStatus,
      desiredStatus: "STOPPED",
      launchType: "FARGATE",
      startedBy: "ecs-svc/0000000000000000001",
      version: 3,
    },
  };
}

describe("tenantOfEcsName", () => {
  it("inverts premiumClusterName and serviceName, hyphens and underscores in the id included", () => {
    expect(tenantOfEcsName("saas", "saas-t-acme", "cluster")).toBe("acme");
    expect(tenantOfEcsName("saas", "saas-t-a-b_c-orders", "service")).toBe("a-b_c");
    expect(tenantOfEcsName("saas", "saas-t-123e4567-e89b-12d3-a456-426614174000-rproxy", "service")).toBe(
      "123e4567-e89b-12d3-a456-426614174000",
    );
  });

  it("finds nothing in the pool's names, another prefix's, or a service whose last segment is no app", () => {
    expect(tenantOfEcsName("saas", "saas-pool-orders", "service")).toBeUndefined();
    expect(tenantOfEcsName("saas", "other-t-acme-orders", "service")).toBeUndefined();
    expect(tenantOfEcsName("saas", "saas-t-acme-billing", "service")).toBeUndefined();
    expect(tenantOfEcsName("saas", "saas-t-", "cluster")).toBeUndefined();
    expect(tenantOfEcsName("saas", "saas-t-a.b", "cluster")).toBeUndefined();
  });

  it("tells the pool's services from others", () => {
    expect(isPoolServiceName("saas", "saas-pool-users")).toBe(true);
    expect(isPoolServiceName("saas", "saas-pool-billing")).toBe(false);
  });
});

describe("hintOfEvent", () => {
  it("a Service Action event on a premium cluster names its tenant", () => {
    expect(hintOfEvent(serviceAction("saas-t-acme", "saas-t-acme-orders", "SERVICE_TASK_START_IMPAIRED"), names)).toEqual({
      kind: "key",
      key: "acme",
      detailType: "ECS Service Action",
      eventName: "SERVICE_TASK_START_IMPAIRED",
    });
  });

  it("a Deployment State Change in the advanced cluster names the service's tenant", () => {
    expect(hintOfEvent(deployment("saas-advanced", "saas-t-beta-2-users", "SERVICE_DEPLOYMENT_FAILED"), names)).toMatchObject({
      kind: "key",
      key: "beta-2",
      eventName: "SERVICE_DEPLOYMENT_FAILED",
    });
  });

  it("a Task State Change names the tenant of the service in its group", () => {
    expect(hintOfEvent(task("saas-advanced", "service:saas-t-gamma-products", "RUNNING"), names)).toMatchObject({
      kind: "key",
      key: "gamma",
      detailType: "ECS Task State Change",
      eventName: "RUNNING",
    });
  });

  it("a pooled service's events are the pool's", () => {
    expect(hintOfEvent(task("saas-pool", "service:saas-pool-orders"), names)).toMatchObject({ kind: "key", key: POOL_KEY });
    expect(hintOfEvent(serviceAction("saas-pool", "saas-pool-rproxy"), names)).toMatchObject({ kind: "key", key: POOL_KEY });
  });

  it("custom pool and advanced cluster names are followed", () => {
    const custom = { namePrefix: "acme", poolCluster: "shared", advancedCluster: "mid" };
    expect(hintOfEvent(deployment("shared", "acme-pool-users"), custom)).toMatchObject({ key: POOL_KEY });
    expect(hintOfEvent(deployment("mid", "acme-t-x-users"), custom)).toMatchObject({ key: "x" });
  });

  it("ignores foreign clusters, foreign services in managed clusters, and another tenant's service in a premium cluster", () => {
    expect(hintOfEvent(serviceAction("payments", "api"), names).kind).toBe("ignored");
    expect(hintOfEvent(serviceAction("saas-pool", "saas-t-acme-orders"), names).kind).toBe("ignored");
    expect(hintOfEvent(serviceAction("saas-advanced", "sidecar"), names).kind).toBe("ignored");
    expect(hintOfEvent(serviceAction("saas-t-acme", "saas-t-other-orders"), names).kind).toBe("ignored");
    expect(hintOfEvent(serviceAction("other-t-acme", "other-t-acme-orders"), names).kind).toBe("ignored");
  });

  it("ignores standalone tasks, other sources and other detail types", () => {
    expect(hintOfEvent(task("saas-advanced", "family:saas-t-acme-orders"), names)).toMatchObject({ kind: "ignored" });
    expect(hintOfEvent(task("saas-advanced", undefined), names)).toMatchObject({ kind: "ignored" });
    expect(hintOfEvent({ ...serviceAction("saas-t-acme", "saas-t-acme-orders"), source: "sbt.application.plane" }, names)).toMatchObject({
      kind: "ignored",
    });
    expect(
      hintOfEvent({ ...serviceAction("saas-t-acme", "saas-t-acme-orders"), "detail-type": "ECS Container Instance State Change" }, names),
    ).toMatchObject({ kind: "ignored" });
  });

  it("calls malformed what is not JSON, not an event, or lacks what its detail type always carries", () => {
    expect(hintOfMessage("{not json", names)).toMatchObject({ kind: "malformed", reason: "the message body is not JSON" });
    expect(hintOfMessage("[1,2]", names).kind).toBe("malformed");
    expect(hintOfEvent(null, names).kind).toBe("malformed");
    const noResources = { ...deployment("saas-t-acme", "saas-t-acme-orders"), resources: [] };
    expect(hintOfEvent(noResources, names)).toMatchObject({ kind: "malformed", reason: expect.stringContaining("resources") as string });
    const notAService = { ...deployment("saas-t-acme", "x"), resources: [`${head}cluster/saas-t-acme`] };
    expect(hintOfEvent(notAService, names)).toMatchObject({
      kind: "malformed",
      reason: expect.stringContaining("not a service ARN") as string,
    });
    const taskWithoutCluster = task("saas-advanced", "service:saas-t-acme-orders");
    const { clusterArn: _dropped, ...detail } = taskWithoutCluster.detail;
    expect(hintOfEvent({ ...taskWithoutCluster, detail }, names)).toMatchObject({
      kind: "malformed",
      reason: expect.stringContaining("clusterArn") as string,
    });
  });

  it("reads a message body the way hintOfEvent reads the parsed event", () => {
    const event = deployment("saas-t-acme", "saas-t-acme-orders");
    expect(hintOfMessage(JSON.stringify(event), names)).toEqual(hintOfEvent(event, names));
  });
});

describe("ecsEventPattern", () => {
  it("matches the three detail types on the managed clusters by resource ARN prefix", () => {
    const pattern = ecsEventPattern(names, head);
    expect(pattern).toEqual({
      source: ["aws.ecs"],
      "detail-type": ["ECS Service Action", "ECS Deployment State Change", "ECS Task State Change"],
      resources: [
        { prefix: `${head}service/saas-t-` },
        { prefix: `${head}service/saas-pool/` },
        { prefix: `${head}service/saas-advanced/` },
        { prefix: `${head}task/saas-t-` },
        { prefix: `${head}task/saas-pool/` },
        { prefix: `${head}task/saas-advanced/` },
      ],
    });
  });

  it("every event the mapper takes is matched by one of the prefixes, and a foreign cluster's by none", () => {
    const prefixes = (ecsEventPattern(names, head)["resources"] as { prefix: string }[]).map((p) => p.prefix);
    const matched = (e: { resources: string[] }) => e.resources.some((r) => prefixes.some((p) => r.startsWith(p)));
    for (const e of [
      serviceAction("saas-t-acme", "saas-t-acme-orders"),
      deployment("saas-advanced", "saas-t-b-users"),
      task("saas-pool", "service:saas-pool-orders"),
    ]) {
      expect(hintOfEvent(e, names).kind).toBe("key");
      expect(matched(e)).toBe(true);
    }
    expect(matched(serviceAction("saas-advanced2", "saas-t-b-users"))).toBe(false);
    expect(matched(serviceAction("payments", "api"))).toBe(false);
  });
});
