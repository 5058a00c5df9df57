import { describe, expect, it } from "vitest";
import { SimClock } from "../../src/localcloud/clock.js";
import { FaultInjector } from "../../src/localcloud/faults.js";
import { bucketFor, EcsThrottle } from "../../src/localcloud/throttling.js";

describe("SimClock", () => {
  it("runs at speed × real time, keeps elapsed time across speed changes, and adds advance() on top", () => {
    let real = 1_000_000;
    const clock = new SimClock(10, () => real);
    const start = clock.now();
    real += 100;
    expect(clock.now() - start).toBe(1_000);
    clock.setSpeed(0);
    real += 5_000;
    expect(clock.now() - start).toBe(1_000);
    clock.advance(250);
    expect(clock.now() - start).toBe(1_250);
    clock.setSpeed(2);
    real += 10;
    expect(clock.now() - start).toBe(1_270);
  });

  it("rejects negative speed and negative advance", () => {
    expect(() => new SimClock(-1)).toThrow(RangeError);
    expect(() => new SimClock(1).advance(-5)).toThrow(RangeError);
  });
});

describe("EcsThrottle", () => {
  it.each([
    { reason: "service writes", action: "UpdateService", burst: 50, rate: 5 },
    { reason: "service reads", action: "DescribeServices", burst: 100, rate: 20 },
    { reason: "task definition registration", action: "RegisterTaskDefinition", burst: 20, rate: 1 },
    { reason: "cluster writes", action: "DeleteCluster", burst: 20, rate: 1 },
    { reason: "cluster reads", action: "DescribeClusters", burst: 50, rate: 20 },
  ])("uses the documented bucket for $reason", ({ action, burst, rate }) => {
    expect(bucketFor(action)?.spec).toEqual({ burst, rate });
  });

  it("allows the burst, refuses the next call, refills at the sustained rate, and shares a bucket within a category", () => {
    let now = 0;
    const throttle = new EcsThrottle(() => now);
    for (let i = 0; i < 20; i++) expect(throttle.take(i % 2 === 0 ? "RegisterTaskDefinition" : "DeregisterTaskDefinition")).toBe(true);
    expect(throttle.take("RegisterTaskDefinition")).toBe(false);
    expect(throttle.take("DescribeServices")).toBe(true);
    now += 999;
    expect(throttle.take("RegisterTaskDefinition")).toBe(false);
    now += 1;
    expect(throttle.take("RegisterTaskDefinition")).toBe(true);
    expect(throttle.take("RegisterTaskDefinition")).toBe(false);
    throttle.reset();
    expect(throttle.take("RegisterTaskDefinition")).toBe(true);
  });

  it("never throttles actions ECS does not list", () => {
    const throttle = new EcsThrottle(() => 0);
    for (let i = 0; i < 500; i++) expect(throttle.take("SomeNewAction")).toBe(true);
  });
});

describe("FaultInjector", () => {
  it("matches by service and action, fires `count` times, then retires the rule", () => {
    const faults = new FaultInjector(() => 0.5);
    faults.setRules([{ service: "ecs", action: "CreateService", errorCode: "ServerException", count: 2 }]);
    expect(faults.hit("dynamodb", "CreateService")).toBeUndefined();
    expect(faults.hit("ecs", "UpdateService")).toBeUndefined();
    expect(faults.hit("ecs", "CreateService")?.error).toEqual({ code: "ServerException", message: "Injected fault", status: 500 });
    expect(faults.rules()[0]?.remaining).toBe(1);
    expect(faults.hit("ecs", "CreateService")?.error?.code).toBe("ServerException");
    expect(faults.hit("ecs", "CreateService")).toBeUndefined();
    expect(faults.rules()).toEqual([]);
  });

  it("fires with the given probability and can add latency without an error", () => {
    let roll = 0.7;
    const faults = new FaultInjector(() => roll);
    faults.setRules([
      { action: "PutItem", errorCode: "ProvisionedThroughputExceededException", probability: 0.5 },
      { action: "PutItem", latencyMs: 300 },
    ]);
    expect(faults.hit("dynamodb", "PutItem")).toEqual({ latencyMs: 300, error: undefined });
    roll = 0.2;
    expect(faults.hit("dynamodb", "PutItem")?.error).toEqual({ code: "ProvisionedThroughputExceededException", message: "Injected fault", status: 400 });
  });

  it("rejects malformed rules with a readable message", () => {
    expect(() => new FaultInjector().setRules([{ probability: 2 }])).toThrow(/invalid fault rules/);
  });
});
