import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  advanceTo,
  canUpdate,
  createService,
  decideCreate,
  deleteService,
  failureThreshold,
  findService,
  initialState,
  isCrashloopImage,
  liveServicesIn,
  serviceCounts,
  updateService,
  type CreateInput,
  type SimService,
  type SimState,
} from "../../src/localcloud/ecs-simulation.js";

const T0 = 1_700_000_000_000;
const TIMING = { startDelayMs: 5_000, stepMs: 2_000, drainMs: 10_000 };
const TD1 = "arn:aws:ecs:us-east-1:123456789012:task-definition/orders:1";
const TD2 = "arn:aws:ecs:us-east-1:123456789012:task-definition/orders:2";

/** The circuit breaker without rollback, unless a test says otherwise. */
const BREAKER_ONLY = { deploymentCircuitBreaker: { enable: true, rollback: false } };
const BREAKER_AND_ROLLBACK = { deploymentCircuitBreaker: { enable: true, rollback: true } };

function created(overrides: Partial<CreateInput> = {}): SimState {
  return createService(initialState(T0, TIMING), {
    cluster: "c",
    name: "s",
    taskDefinition: TD1,
    desiredCount: 2,
    clientToken: "tok",
    crashloop: false,
    deploymentConfiguration: BREAKER_ONLY,
    ...overrides,
  });
}

function svc(state: SimState): SimService {
  const s = findService(state, "c", "s");
  if (s === undefined) throw new Error("service missing from state");
  return s;
}

function at(state: SimState, ms: number): SimService {
  return svc(advanceTo(state, T0 + ms));
}

describe("deployment progression", () => {
  it("starts IN_PROGRESS with nothing running, brings tasks up one per step after the start delay, then COMPLETED", () => {
    const s0 = created();
    expect(svc(s0).deployments).toMatchObject([
      { status: "PRIMARY", rolloutState: "IN_PROGRESS", runningCount: 0, pendingCount: 2, desiredCount: 2 },
    ]);
    const cases = [
      { reason: "before the start delay nothing runs", ms: 4_999, running: 0, rollout: "IN_PROGRESS" },
      { reason: "first task at the start delay", ms: 5_000, running: 1, rollout: "IN_PROGRESS" },
      { reason: "second task one step later, deployment complete", ms: 7_000, running: 2, rollout: "COMPLETED" },
      { reason: "stays at rest afterwards", ms: 60_000, running: 2, rollout: "COMPLETED" },
    ];
    for (const c of cases) {
      const s = at(s0, c.ms);
      expect({ reason: c.reason, running: serviceCounts(s).runningCount, rollout: s.deployments[0]?.rolloutState }).toEqual({
        reason: c.reason,
        running: c.running,
        rollout: c.rollout,
      });
    }
    const done = at(s0, 7_000);
    expect(done.deployments[0]?.rolloutStateReason).toBe(`ECS deployment ${done.deployments[0]?.id} completed.`);
    expect(done.nextStepAt).toBeUndefined();
  });

  it("reaches the same state however the elapsed time is cut up", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 4_000 }), { minLength: 1, maxLength: 30 }), (cuts) => {
        let start = updateService(advanceTo(created({ desiredCount: 3 }), T0 + 9_000), {
          cluster: "c",
          name: "s",
          taskDefinition: TD2,
          desiredCount: 4,
          forceNewDeployment: false,
          crashloop: false,
        });
        const total = cuts.reduce((a, b) => a + b, 0);
        const jumped = advanceTo(start, start.now + total);
        for (const cut of cuts) start = advanceTo(start, start.now + cut);
        expect(start).toEqual(jumped);
      }),
      { numRuns: 50 },
    );
  });

  it("a desired count of zero completes at the first step without running anything", () => {
    const s = at(created({ desiredCount: 0 }), 5_000);
    expect(s.deployments[0]).toMatchObject({ rolloutState: "COMPLETED", runningCount: 0 });
  });
});

describe("crashloop images", () => {
  it("never run a task; failures grow until the circuit breaker marks the deployment FAILED", () => {
    const s0 = created({ crashloop: true });
    expect(at(s0, 5_000).deployments[0]).toMatchObject({ failedTasks: 1, runningCount: 0, rolloutState: "IN_PROGRESS" });
    expect(at(s0, 7_000).deployments[0]).toMatchObject({ failedTasks: 2, runningCount: 0, rolloutState: "IN_PROGRESS" });
    const failed = at(s0, 9_000);
    expect(failed.deployments[0]).toMatchObject({
      failedTasks: 3,
      runningCount: 0,
      rolloutState: "FAILED",
      rolloutStateReason: "ECS deployment circuit breaker: tasks failed to start.",
    });
    expect(failed.nextStepAt).toBeUndefined();
    expect(at(s0, 120_000).deployments[0]?.failedTasks).toBe(3);
  });

  it("without the circuit breaker (ECS's default) keep failing tasks, IN_PROGRESS, and never give up", () => {
    const s0 = created({ crashloop: true, deploymentConfiguration: { deploymentCircuitBreaker: { enable: false, rollback: false } } });
    const later = at(s0, 120_000);
    expect(later.deployments[0]).toMatchObject({ rolloutState: "IN_PROGRESS", runningCount: 0 });
    expect(later.deployments[0]?.failedTasks).toBeGreaterThan(50);
    expect(later.nextStepAt).toBeDefined();
  });

  it.each([
    { reason: "minimum threshold is 3", desired: 1, threshold: 3 },
    { reason: "half the desired count", desired: 10, threshold: 5 },
    { reason: "rounded up", desired: 11, threshold: 6 },
    { reason: "capped at 200", desired: 1_000, threshold: 200 },
  ])("failure threshold: $reason", ({ desired, threshold }) => {
    expect(failureThreshold(desired)).toBe(threshold);
  });

  it.each([
    { reason: "plain tag", image: "repo/orders:crashloop", crash: true },
    { reason: "registry with port", image: "localhost:5000/orders:crashloop", crash: true },
    { reason: "digest after the tag", image: "orders:crashloop@sha256:abc", crash: true },
    { reason: "other tag", image: "repo/orders:1.2.3", crash: false },
    { reason: "no tag, port looks like a tag", image: "crashloop:5000/orders", crash: false },
    { reason: "name contains the word", image: "repo/crashloop", crash: false },
  ])("isCrashloopImage: $reason", ({ image, crash }) => {
    expect(isCrashloopImage(image)).toBe(crash);
  });
});

describe("UpdateService", () => {
  const base = advanceTo(created(), T0 + 7_000);
  const update = (state: SimState, change: Partial<Parameters<typeof updateService>[1]>) =>
    updateService(state, {
      cluster: "c",
      name: "s",
      taskDefinition: undefined,
      desiredCount: undefined,
      forceNewDeployment: false,
      crashloop: false,
      ...change,
    });

  it("with a new task definition starts a new PRIMARY, drains the old one as the new comes up, never below desired", () => {
    const oldId = svc(base).deployments[0]?.id;
    const s0 = update(base, { taskDefinition: TD2 });
    expect(svc(s0).deployments).toMatchObject([
      { status: "PRIMARY", taskDefinition: TD2, runningCount: 0, rolloutState: "IN_PROGRESS" },
      { status: "ACTIVE", id: oldId, taskDefinition: TD1, runningCount: 2 },
    ]);
    for (let ms = 0; ms <= 20_000; ms += 500) {
      expect(serviceCounts(svc(advanceTo(s0, s0.now + ms))).runningCount).toBeGreaterThanOrEqual(2);
    }
    const mid = svc(advanceTo(s0, s0.now + 5_000));
    expect(mid.deployments.map((d) => [d.status, d.runningCount])).toEqual([
      ["PRIMARY", 1],
      ["ACTIVE", 1],
    ]);
    const end = svc(advanceTo(s0, s0.now + 7_000));
    expect(end.deployments).toHaveLength(1);
    expect(end.deployments[0]).toMatchObject({ status: "PRIMARY", taskDefinition: TD2, runningCount: 2, rolloutState: "COMPLETED" });
    expect(end.deployments[0]?.id).not.toBe(oldId);
  });

  it("to a crashloop image fails the new deployment and leaves the old tasks serving", () => {
    const s0 = update(base, { taskDefinition: TD2, crashloop: true });
    const end = svc(advanceTo(s0, s0.now + 60_000));
    expect(end.deployments).toMatchObject([
      { status: "PRIMARY", rolloutState: "FAILED", runningCount: 0, failedTasks: 3 },
      { status: "ACTIVE", runningCount: 2 },
    ]);
    expect(serviceCounts(end).runningCount).toBe(2);
  });

  it("to a crashloop image with rollback: FAILED, then a new PRIMARY of the previous task definition, as ECS reports it", () => {
    const previousId = svc(base).deployments[0]?.id;
    const s0 = update(base, { taskDefinition: TD2, crashloop: true, deploymentConfiguration: BREAKER_AND_ROLLBACK });
    const failedId = svc(s0).deployments[0]?.id;
    // Third failed task at 5 s + 2 x 2 s: the breaker trips and the rollback deployment starts.
    const tripped = svc(advanceTo(s0, s0.now + 9_000));
    expect(tripped.deployments).toMatchObject([
      {
        status: "PRIMARY",
        taskDefinition: TD1,
        rolloutState: "IN_PROGRESS",
        rolloutStateReason: `ECS deployment circuit breaker: rolling back to deploymentId ${previousId ?? ""}.`,
        runningCount: 0,
      },
      {
        id: failedId,
        status: "ACTIVE",
        taskDefinition: TD2,
        rolloutState: "FAILED",
        rolloutStateReason: "ECS deployment circuit breaker: tasks failed to start.",
        failedTasks: 3,
        runningCount: 0,
      },
      { id: previousId, status: "ACTIVE", taskDefinition: TD1, runningCount: 2 },
    ]);
    expect(tripped.deployments[0]?.id).not.toBe(previousId);
    // Never fewer than the desired count running while it rolls back.
    for (let ms = 9_000; ms <= 30_000; ms += 500) expect(serviceCounts(svc(advanceTo(s0, s0.now + ms))).runningCount).toBe(2);
    const end = svc(advanceTo(s0, s0.now + 30_000));
    expect(end.deployments).toHaveLength(1);
    expect(end.deployments[0]).toMatchObject({ status: "PRIMARY", taskDefinition: TD1, rolloutState: "COMPLETED", runningCount: 2 });
    expect(end.deploymentConfiguration.deploymentCircuitBreaker).toEqual({ enable: true, rollback: true });
  });

  it("to a crashloop image with rollback but no completed deployment to return to: FAILED, nothing rolls back", () => {
    const s0 = created({ crashloop: true, deploymentConfiguration: BREAKER_AND_ROLLBACK });
    expect(at(s0, 60_000).deployments).toMatchObject([{ status: "PRIMARY", rolloutState: "FAILED", taskDefinition: TD1 }]);
  });

  it("keeps the deployment configuration a request leaves out, and replaces what it gives", () => {
    const s = svc(update(base, { desiredCount: 2, deploymentConfiguration: { minimumHealthyPercent: 50 } }));
    expect(s.deploymentConfiguration).toEqual({ ...BREAKER_ONLY, minimumHealthyPercent: 50, maximumPercent: 200 });
  });

  it("with only desiredCount keeps the deployment and its COMPLETED state, moving running to the new count", () => {
    const id = svc(base).deployments[0]?.id;
    const up = update(base, { desiredCount: 4 });
    expect(svc(up).deployments).toMatchObject([{ id, desiredCount: 4, runningCount: 2, pendingCount: 2, rolloutState: "COMPLETED" }]);
    expect(svc(up).desiredCount).toBe(4);
    expect(svc(advanceTo(up, up.now + 2_000)).deployments[0]).toMatchObject({ id, runningCount: 3 });
    const scaled = svc(advanceTo(up, up.now + 4_000));
    expect(scaled.deployments).toMatchObject([{ id, runningCount: 4, rolloutState: "COMPLETED" }]);
    expect(scaled.nextStepAt).toBeUndefined();

    const down = update(advanceTo(up, up.now + 4_000), { desiredCount: 1 });
    expect(svc(advanceTo(down, down.now + 6_000)).deployments).toMatchObject([{ id, runningCount: 1, desiredCount: 1 }]);
  });

  it("with the same task definition and no force changes nothing", () => {
    expect(update(base, { taskDefinition: TD1 })).toBe(base);
  });

  it("with forceNewDeployment starts a new deployment of the same task definition", () => {
    const s = svc(update(base, { forceNewDeployment: true }));
    expect(s.deployments.map((d) => [d.status, d.taskDefinition])).toEqual([
      ["PRIMARY", TD1],
      ["ACTIVE", TD1],
    ]);
  });
});

describe("DeleteService", () => {
  it("drains the tasks, stays DRAINING for the drain period, then turns INACTIVE", () => {
    const running = advanceTo(created(), T0 + 7_000);
    const s0 = deleteService(running, "c", "s");
    expect(svc(s0)).toMatchObject({ status: "DRAINING", desiredCount: 0 });
    expect(serviceCounts(svc(s0)).runningCount).toBe(2);
    const cases = [
      { reason: "one task stopped after a step", ms: 2_000, status: "DRAINING", running: 1 },
      { reason: "all stopped, still within the drain period", ms: 4_000, status: "DRAINING", running: 0 },
      { reason: "just before the drain period ends", ms: 9_999, status: "DRAINING", running: 0 },
      { reason: "inactive once the drain period is over", ms: 10_000, status: "INACTIVE", running: 0 },
    ];
    for (const c of cases) {
      const s = svc(advanceTo(s0, s0.now + c.ms));
      expect({ reason: c.reason, status: s.status, running: serviceCounts(s).runningCount }).toEqual({
        reason: c.reason,
        status: c.status,
        running: c.running,
      });
    }
  });

  it("of a service that is not ACTIVE changes nothing", () => {
    const draining = deleteService(created(), "c", "s");
    expect(deleteService(draining, "c", "s")).toBe(draining);
    expect(canUpdate(draining, "c", "s")).toBe(false);
    expect(canUpdate(created(), "c", "s")).toBe(true);
  });
});

describe("CreateService idempotency (clientToken)", () => {
  const active = created({ clientToken: "tok" });
  const draining = deleteService(active, "c", "s");
  const inactive = advanceTo(draining, T0 + 60_000);
  it.each([
    { reason: "no service of that name", state: initialState(T0), token: "tok", kind: "create" },
    { reason: "same token as the live service", state: active, token: "tok", kind: "idempotent" },
    { reason: "other token", state: active, token: "other", kind: "conflict" },
    { reason: "no token at all", state: active, token: undefined, kind: "conflict" },
    { reason: "still DRAINING, other token", state: draining, token: "other", kind: "conflict" },
    { reason: "INACTIVE services can be created again", state: inactive, token: "other", kind: "create" },
  ])("$reason → $kind", ({ state, token, kind }) => {
    expect(decideCreate(state, "c", "s", token).kind).toBe(kind);
  });

  it("recreating an INACTIVE service starts afresh", () => {
    const again = createService(inactive, {
      cluster: "c",
      name: "s",
      taskDefinition: TD2,
      desiredCount: 1,
      clientToken: "new",
      crashloop: false,
    });
    expect(svc(again)).toMatchObject({ status: "ACTIVE", clientToken: "new", deployments: [{ taskDefinition: TD2, runningCount: 0 }] });
  });
});

describe("cluster deletion", () => {
  it("is blocked by ACTIVE and DRAINING services, not by INACTIVE ones or other clusters", () => {
    const two = createService(created(), {
      cluster: "c",
      name: "t",
      taskDefinition: TD1,
      desiredCount: 1,
      clientToken: undefined,
      crashloop: false,
    });
    expect(
      liveServicesIn(two, "c")
        .map((s) => s.name)
        .sort(),
    ).toEqual(["s", "t"]);
    expect(liveServicesIn(two, "other")).toEqual([]);
    const deleted = deleteService(deleteService(two, "c", "s"), "c", "t");
    expect(liveServicesIn(deleted, "c").map((s) => s.status)).toEqual(["DRAINING", "DRAINING"]);
    expect(liveServicesIn(advanceTo(deleted, T0 + 60_000), "c")).toEqual([]);
  });
});
