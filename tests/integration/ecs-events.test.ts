import {
  CreateClusterCommand,
  CreateServiceCommand,
  DescribeServicesCommand,
  RegisterTaskDefinitionCommand,
  UpdateServiceCommand,
} from "@aws-sdk/client-ecs";
import { DeleteMessageBatchCommand, ReceiveMessageCommand } from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { APP_NAMES } from "../../src/tenants/record.js";
import { hintOfMessage } from "../../src/tiers/ecs-event-hint.js";
import { serviceName } from "../../src/tiers/naming.js";
import { eventually } from "../support/event-sink.js";
import { startTestCloud, type TestCloud } from "../support/localcloud.js";
import { startHarness, type OperatorHarness } from "../support/operator.js";
import { parseExposition } from "../support/prom-text.js";

/**
 * ECS events as hints (docs/adr/0017-ecs-events-as-hints.md), end to end:
 * the local scheduler publishes ECS's events to moto's default bus, the
 * bootstrap's rule delivers those of the managed clusters to the queue, and
 * a controller reading the queue repairs drift long before its resync.
 */

describe("ECS events reach the queue through the bootstrap's rule", () => {
  let cloud: TestCloud;
  beforeAll(async () => {
    cloud = await startTestCloud({ speed: 0, ecsEvents: true });
  });
  afterAll(async () => {
    await cloud?.stop();
  });

  it("delivers a managed service's deployment, task and service action events, and nothing of a foreign cluster", async () => {
    const ecs = cloud.clients.ecs;
    const queueUrl = cloud.account.ecsEventsQueueUrl ?? "";
    expect(queueUrl).toMatch(/ecs-events$/);
    const td =
      (
        await ecs.send(
          new RegisterTaskDefinitionCommand({
            family: "probe",
            requiresCompatibilities: ["FARGATE"],
            networkMode: "awsvpc",
            cpu: "256",
            memory: "512",
            containerDefinitions: [{ name: "app", image: "nginx:1", essential: true }],
          }),
        )
      ).taskDefinition?.taskDefinitionArn ?? "";
    await ecs.send(new CreateClusterCommand({ clusterName: "payments" }));
    const managed = serviceName(cloud.config.namePrefix, "probe", "orders");
    for (const [cluster, name] of [
      [cloud.config.advancedCluster, managed],
      ["payments", "api"],
    ] as const) {
      await ecs.send(new CreateServiceCommand({ cluster, serviceName: name, taskDefinition: td, desiredCount: 1, launchType: "FARGATE" }));
    }
    cloud.control.advance(60_000);

    const names = {
      namePrefix: cloud.config.namePrefix,
      poolCluster: cloud.config.poolCluster,
      advancedCluster: cloud.config.advancedCluster,
    };
    const seen: string[] = [];
    const bodies: string[] = [];
    await eventually(
      async () => {
        const out = await cloud.clients.sqs.send(
          new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }),
        );
        for (const m of out.Messages ?? []) {
          bodies.push(m.Body ?? "");
          const hint = hintOfMessage(m.Body ?? "", names);
          if (hint.kind === "key") seen.push(`${hint.key} ${hint.detailType}:${hint.eventName}`);
        }
        const entries = (out.Messages ?? []).map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle ?? "" }));
        if (entries.length > 0) await cloud.clients.sqs.send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: entries }));
        return seen.length >= 4 ? seen : undefined;
      },
      "the managed service's four events",
      30_000,
    );
    expect(seen).toEqual([
      "probe ECS Deployment State Change:SERVICE_DEPLOYMENT_IN_PROGRESS",
      "probe ECS Task State Change:RUNNING",
      "probe ECS Deployment State Change:SERVICE_DEPLOYMENT_COMPLETED",
      "probe ECS Service Action:SERVICE_STEADY_STATE",
    ]);
    // Delivered as EventBridge delivers to SQS: the whole event, with its envelope.
    // Delivered as EventBridge delivers to SQS: the whole event, envelope and all (moto leaves out `account`).
    expect(JSON.parse(bodies[0] ?? "{}")).toMatchObject({
      version: "0",
      source: "aws.ecs",
      "detail-type": "ECS Deployment State Change",
      region: cloud.config.region,
      resources: [`${cloud.account.advancedClusterArn.replace(/cluster\/.*$/, "")}service/${cloud.config.advancedCluster}/${managed}`],
    });
    expect(bodies.join("\n")).not.toContain("payments");
  });
});

describe("a service scaled behind the controller's back", () => {
  let h: OperatorHarness;
  beforeAll(async () => {
    h = await startHarness({ RESYNC_SECONDS: "3600" }, { ecsEvents: true });
  });
  afterAll(async () => {
    await h?.stop();
  });

  const enqueuedHints = async () =>
    parseExposition(await h.controller.metrics.render())
      .get("tenant_operator_ecs_event_hints_enqueued_total")
      ?.samples.reduce((n, s) => n + s.value, 0) ?? 0;
  const service = async (name: string) =>
    (await h.clients.ecs.send(new DescribeServicesCommand({ cluster: h.config.advancedCluster, services: [name] }))).services?.[0];

  it("is repaired from its ECS event within seconds, not at the resync an hour away", async () => {
    expect(h.config.ecsEventsQueueUrl).toBeDefined();
    await h.put({ tenantId: "drift-1", tier: "advanced", tenantName: "Drift One" });
    await h.waitForPhase("drift-1", "Ready", 60_000);
    const name = serviceName(h.config.namePrefix, "drift-1", APP_NAMES[0]);
    const desired = (await service(name))?.desiredCount ?? 0;
    expect(desired).toBeGreaterThan(0);
    // The onboarding's own events are in; the next ones are the drift's.
    await new Promise((r) => setTimeout(r, 2_000));
    const hintsBefore = await enqueuedHints();
    const resyncAge = h.controller.manager.resyncAgeSeconds() ?? 0;

    await h.clients.ecs.send(new UpdateServiceCommand({ cluster: h.config.advancedCluster, service: name, desiredCount: desired + 2 }));
    const repairedIn = Date.now();
    await eventually(
      async () => ((await service(name))?.desiredCount === desired ? true : undefined),
      `${name} back at desiredCount ${desired}`,
      30_000,
    );
    const seconds = (Date.now() - repairedIn) / 1000;
    expect(seconds).toBeLessThan(30);
    expect(await enqueuedHints()).toBeGreaterThan(hintsBefore);
    // No resync ran meanwhile: its age kept growing from where it was.
    expect(h.controller.manager.resyncAgeSeconds() ?? 0).toBeGreaterThanOrEqual(resyncAge);
  });

  it("without the queue, the same drift stays until the resync: the repair above came from the event", async () => {
    await h.controller.stop();
    h.controller = await h.startController({ ECS_EVENTS_QUEUE_URL: "" });
    expect(h.controller.manager).toBeDefined();
    await eventually(async () => (h.controller.manager.ready ? true : undefined), "the new controller's initial sync", 30_000);
    const name = serviceName(h.config.namePrefix, "drift-1", APP_NAMES[0]);
    // The new leader's initial resync looks at every tenant; let that settle.
    await h.waitForPhase("drift-1", "Ready", 30_000);
    await new Promise((r) => setTimeout(r, 3_000));
    const desired = (await service(name))?.desiredCount ?? 0;
    await h.clients.ecs.send(new UpdateServiceCommand({ cluster: h.config.advancedCluster, service: name, desiredCount: desired + 2 }));
    await new Promise((r) => setTimeout(r, 8_000));
    expect((await service(name))?.desiredCount).toBe(desired + 2);
  });
});
