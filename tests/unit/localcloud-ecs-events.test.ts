import { PutEventsCommand, EventBridgeClient } from "@aws-sdk/client-eventbridge";
import { mockClient } from "aws-sdk-client-mock";
import { beforeEach, describe, expect, it } from "vitest";
import { ecsEventsOf, EcsEventPublisher, TaskLedger, type EcsEvent } from "../../src/localcloud/ecs-events.js";
import {
  advanceTo,
  createService,
  findService,
  initialState,
  updateService,
  type SimService,
  type SimState,
} from "../../src/localcloud/ecs-simulation.js";
import { hintOfEvent } from "../../src/tiers/ecs-event-hint.js";

const T0 = 1_700_000_000_000;
const TIMING = { startDelayMs: 5_000, stepMs: 2_000, drainMs: 10_000 };
const HEAD = "arn:aws:ecs:us-east-1:123456789012:";
const TD1 = `${HEAD}task-definition/saas-t-acme-orders:1`;
const TD2 = `${HEAD}task-definition/saas-t-acme-orders:2`;
const CLUSTER = "saas-t-acme";
const NAME = "saas-t-acme-orders";
const identity = { serviceArn: `${HEAD}service/${CLUSTER}/${NAME}`, clusterArn: `${HEAD}cluster/${CLUSTER}` };
const names = { namePrefix: "saas", poolCluster: "saas-pool", advancedCluster: "saas-advanced" };

/** A model that records what ECS would announce, the way the scheduler wires it (calls and steps alike). */
class Recorder {
  readonly events: EcsEvent[] = [];
  readonly tasks = new TaskLedger();
  state: SimState = initialState(T0, TIMING);

  apply(change: (s: SimState) => SimState): void {
    const before = this.service();
    this.state = change(this.state);
    const after = this.service();
    if (after !== undefined && after !== before) this.events.push(...ecsEventsOf(before, after, this.state.now, identity, this.tasks));
  }

  advance(ms: number): void {
    this.state = advanceTo(this.state, this.state.now + ms, (before, after, at) =>
      this.events.push(...ecsEventsOf(before, after, at, identity, this.tasks)),
    );
  }

  service(): SimService | undefined {
    return findService(this.state, CLUSTER, NAME);
  }

  /** "<detail-type>:<eventName or lastStatus>" of each event, in order. */
  summary(): string[] {
    return this.events.map((e) => {
      const d = JSON.parse(e.entry.Detail ?? "{}") as { eventName?: string; lastStatus?: string };
      return `${e.entry.DetailType}:${d.eventName ?? d.lastStatus}`;
    });
  }

  details(): Record<string, unknown>[] {
    return this.events.map((e) => JSON.parse(e.entry.Detail ?? "{}") as Record<string, unknown>);
  }
}

const create =
  (desiredCount: number, extra: { crashloop?: boolean; rollback?: boolean } = {}) =>
  (s: SimState) =>
    createService(s, {
      cluster: CLUSTER,
      name: NAME,
      taskDefinition: TD1,
      desiredCount,
      clientToken: undefined,
      crashloop: extra.crashloop ?? false,
      deploymentConfiguration: { deploymentCircuitBreaker: { enable: true, rollback: extra.rollback ?? false } },
    });

const update = (input: { desiredCount?: number; taskDefinition?: string; crashloop?: boolean }) => (s: SimState) =>
  updateService(s, {
    cluster: CLUSTER,
    name: NAME,
    taskDefinition: input.taskDefinition,
    desiredCount: input.desiredCount,
    forceNewDeployment: false,
    crashloop: input.crashloop ?? false,
  });

describe("ecsEventsOf", () => {
  it("a new service: deployment in progress, one task state change per task, deployment completed, then steady state", () => {
    const r = new Recorder();
    r.apply(create(2));
    r.advance(60_000);
    expect(r.summary()).toEqual([
      "ECS Deployment State Change:SERVICE_DEPLOYMENT_IN_PROGRESS",
      "ECS Task State Change:RUNNING",
      "ECS Task State Change:RUNNING",
      "ECS Deployment State Change:SERVICE_DEPLOYMENT_COMPLETED",
      "ECS Service Action:SERVICE_STEADY_STATE",
    ]);
    const [inProgress, task] = r.events;
    expect(inProgress?.region).toBe("us-east-1");
    expect(inProgress?.entry).toMatchObject({ Source: "aws.ecs", Resources: [identity.serviceArn] });
    expect(task?.entry.Resources?.[0]).toMatch(new RegExp(`^${HEAD}task/${CLUSTER}/[0-9a-f]{32}$`));
    expect(r.details()[1]).toMatchObject({
      clusterArn: identity.clusterArn,
      group: `service:${NAME}`,
      lastStatus: "RUNNING",
      desiredStatus: "RUNNING",
      taskDefinitionArn: TD1,
      taskArn: task?.entry.Resources?.[0],
    });
    // The steady state comes when the model is at rest, and at the step's simulated time.
    expect(r.service()?.nextStepAt).toBeUndefined();
    expect(r.events.at(-1)?.entry.Time?.getTime()).toBe(T0 + 5_000 + 2_000);
  });

  it("a scale-down behind the operator's back: the tasks that stop are the tasks that started, then steady state again", () => {
    const r = new Recorder();
    r.apply(create(2));
    r.advance(60_000);
    const started = r.events.filter((e) => e.entry.DetailType === "ECS Task State Change").map((e) => e.entry.Resources?.[0]);
    r.events.length = 0;
    r.apply(update({ desiredCount: 0 }));
    r.advance(60_000);
    expect(r.summary()).toEqual([
      "ECS Task State Change:STOPPED",
      "ECS Task State Change:STOPPED",
      "ECS Service Action:SERVICE_STEADY_STATE",
    ]);
    expect(r.events.slice(0, 2).map((e) => e.entry.Resources?.[0])).toEqual(started);
    expect(r.details()[0]).toMatchObject({ desiredStatus: "STOPPED", stopCode: "ServiceSchedulerInitiated" });
  });

  it("a rolling update: the new deployment starts, old tasks stop as new ones run, the new one completes", () => {
    const r = new Recorder();
    r.apply(create(1));
    r.advance(60_000);
    r.events.length = 0;
    r.apply(update({ taskDefinition: TD2 }));
    r.advance(60_000);
    expect(r.summary()).toEqual([
      "ECS Deployment State Change:SERVICE_DEPLOYMENT_IN_PROGRESS",
      "ECS Task State Change:RUNNING",
      "ECS Task State Change:STOPPED",
      "ECS Deployment State Change:SERVICE_DEPLOYMENT_COMPLETED",
      "ECS Service Action:SERVICE_STEADY_STATE",
    ]);
    expect(r.details()[1]).toMatchObject({ taskDefinitionArn: TD2 });
    expect(r.details()[2]).toMatchObject({ taskDefinitionArn: TD1, lastStatus: "STOPPED" });
  });

  it("a crashloop with the circuit breaker and rollback: failed tasks, start impaired, deployment failed, the rollback's deployment", () => {
    const r = new Recorder();
    r.apply(create(1, { rollback: true }));
    r.advance(60_000);
    r.events.length = 0;
    r.apply(update({ taskDefinition: TD2, crashloop: true }));
    r.advance(120_000);
    const summary = r.summary();
    expect(summary.slice(0, 6)).toEqual([
      "ECS Deployment State Change:SERVICE_DEPLOYMENT_IN_PROGRESS",
      "ECS Task State Change:STOPPED",
      "ECS Task State Change:STOPPED",
      "ECS Task State Change:STOPPED",
      "ECS Service Action:SERVICE_TASK_START_IMPAIRED",
      "ECS Deployment State Change:SERVICE_DEPLOYMENT_FAILED",
    ]);
    expect(summary).toContain("ECS Service Action:SERVICE_STEADY_STATE");
    expect(summary.filter((s) => s === "ECS Deployment State Change:SERVICE_DEPLOYMENT_IN_PROGRESS")).toHaveLength(2);
    expect(r.details()[1]).toMatchObject({ stopCode: "EssentialContainerExited", taskDefinitionArn: TD2 });
    const failed = r.details()[5];
    expect(failed).toMatchObject({ eventType: "ERROR", reason: "ECS deployment circuit breaker: tasks failed to start." });
  });

  it("every event it makes, enveloped as EventBridge delivers it, names the service's tenant", () => {
    const r = new Recorder();
    r.apply(create(1));
    r.advance(60_000);
    r.apply(update({ desiredCount: 0 }));
    r.advance(60_000);
    expect(r.events.length).toBeGreaterThan(4);
    for (const e of r.events) {
      const delivered = {
        version: "0",
        id: "1",
        "detail-type": e.entry.DetailType,
        source: e.entry.Source,
        account: "123456789012",
        time: e.entry.Time?.toISOString(),
        region: e.region,
        resources: e.entry.Resources,
        detail: JSON.parse(e.entry.Detail ?? "{}") as unknown,
      };
      expect(hintOfEvent(delivered, names)).toMatchObject({ kind: "key", key: "acme" });
    }
  });
});

describe("EcsEventPublisher", () => {
  const ebMock = mockClient(EventBridgeClient);
  beforeEach(() => ebMock.reset());

  const event = (i: number, region = "us-east-1"): EcsEvent => ({
    region,
    entry: { Source: "aws.ecs", DetailType: "ECS Task State Change", Detail: JSON.stringify({ i }), Resources: [] },
  });

  it("sends in order, at most 10 per PutEvents and one region per call, and never makes the caller wait", async () => {
    ebMock.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [] });
    const publisher = new EcsEventPublisher({ motoEndpoint: "http://127.0.0.1:1" });
    publisher.publish(Array.from({ length: 12 }, (_, i) => event(i)));
    publisher.publish([event(12, "eu-west-1")]);
    await publisher.flush();
    const calls = ebMock
      .commandCalls(PutEventsCommand)
      .map((c) => c.args[0].input.Entries?.map((e) => (JSON.parse(e.Detail ?? "") as { i: number }).i));
    expect(calls).toEqual([[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [10, 11], [12]]);
    expect(publisher.counts).toEqual({ published: 13, dropped: 0 });
    publisher.close();
  });

  it("drops and counts what a failed call carried, and goes on with the rest", async () => {
    ebMock.on(PutEventsCommand).rejectsOnce(new Error("moto is down")).resolves({ FailedEntryCount: 0, Entries: [] });
    const publisher = new EcsEventPublisher({ motoEndpoint: "http://127.0.0.1:1" });
    publisher.publish(Array.from({ length: 15 }, (_, i) => event(i)));
    await publisher.flush();
    expect(publisher.counts).toEqual({ published: 5, dropped: 10 });
    publisher.close();
  });

  it("keeps at most maxPending waiting, dropping the oldest", async () => {
    let release: () => void = () => {};
    ebMock.on(PutEventsCommand).callsFake(() => new Promise((r) => (release = () => r({ FailedEntryCount: 0, Entries: [] }))));
    const publisher = new EcsEventPublisher({ motoEndpoint: "http://127.0.0.1:1", maxPending: 5 });
    publisher.publish([event(0)]); // in flight
    await new Promise((r) => setTimeout(r, 10));
    publisher.publish(Array.from({ length: 8 }, (_, i) => event(i + 1)));
    expect(publisher.counts.dropped).toBe(3);
    for (let i = 0; i < 3; i++) {
      release();
      await new Promise((r) => setTimeout(r, 10));
    }
    await publisher.flush();
    const sent = ebMock
      .commandCalls(PutEventsCommand)
      .flatMap((c) => c.args[0].input.Entries?.map((e) => (JSON.parse(e.Detail ?? "") as { i: number }).i));
    expect(sent).toEqual([0, 4, 5, 6, 7, 8]);
    publisher.close();
  });
});
