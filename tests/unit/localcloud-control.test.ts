import { describe, expect, it } from "vitest";
import { SimClock } from "../../src/localcloud/clock.js";
import { splitBatchWrite, tablesNamed, withUnprocessed } from "../../src/localcloud/dynamodb-requests.js";
import { FifoMutex, isDynamoDbTarget, mustSerialize, ReadWriteGate } from "../../src/localcloud/dynamodb-serializer.js";
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
    expect(faults.hit("dynamodb", "PutItem")?.error).toEqual({
      code: "ProvisionedThroughputExceededException",
      message: "Injected fault",
      status: 400,
    });
  });

  it("rejects malformed rules with a readable message", () => {
    expect(() => new FaultInjector().setRules([{ probability: 2 }])).toThrow(/invalid fault rules/);
  });
});

describe("FaultInjector with resources", () => {
  it("a rule with a resource fires only for calls that name that table", () => {
    const faults = new FaultInjector(() => 0);
    faults.setRules([{ service: "dynamodb", resource: "copy-dst", errorCode: "ProvisionedThroughputExceededException" }]);
    expect(faults.hit("dynamodb", "PutItem", ["copy-src"])).toBeUndefined();
    expect(faults.hit("dynamodb", "PutItem")).toBeUndefined();
    expect(faults.hit("dynamodb", "BatchWriteItem", ["copy-src", "copy-dst"])?.error?.code).toBe("ProvisionedThroughputExceededException");
    expect(faults.hit("dynamodb", "PutItem", ["copy-dst"])?.error?.status).toBe(400);
  });

  it("an unprocessedFraction rule matches BatchWriteItem only and carries its fraction and table", () => {
    const faults = new FaultInjector(() => 0);
    faults.setRules([{ resource: "copy-dst", unprocessedFraction: 0.5, count: 1 }]);
    expect(faults.hit("dynamodb", "PutItem", ["copy-dst"])).toBeUndefined();
    expect(faults.hit("dynamodb", "BatchWriteItem", ["copy-dst"])).toEqual({
      latencyMs: 0,
      error: undefined,
      unprocessed: { fraction: 0.5, resource: "copy-dst" },
    });
    expect(faults.rules()).toEqual([]);
  });

  it("refuses an unprocessedFraction with an error code, or on another action", () => {
    expect(() => new FaultInjector().setRules([{ unprocessedFraction: 0.5, errorCode: "X" }])).toThrow(/exclude each other/);
    expect(() => new FaultInjector().setRules([{ unprocessedFraction: 0.5, action: "PutItem" }])).toThrow(/BatchWriteItem only/);
    expect(() => new FaultInjector().setRules([{ unprocessedFraction: 1.5 }])).toThrow(/invalid fault rules/);
  });
});

describe("tablesNamed", () => {
  it.each([
    { reason: "TableName", input: { TableName: "t1", Key: {} }, tables: ["t1"] },
    { reason: "a table ARN", input: { TableName: "arn:aws:dynamodb:us-east-1:123456789012:table/t1" }, tables: ["t1"] },
    { reason: "RequestItems keys", input: { RequestItems: { a: [], b: [] } }, tables: ["a", "b"] },
    {
      reason: "TransactItems, every kind, once each",
      input: {
        TransactItems: [
          { Put: { TableName: "a" } },
          { Update: { TableName: "b" } },
          { ConditionCheck: { TableName: "a" } },
          { Delete: { TableName: "c" } },
        ],
      },
      tables: ["a", "b", "c"],
    },
    { reason: "TransactGetItems", input: { TransactItems: [{ Get: { TableName: "g" } }] }, tables: ["g"] },
    {
      reason: "a stream ARN",
      input: { StreamArn: "arn:aws:dynamodb:us-east-1:123456789012:table/t1/stream/2024-01-01T00:00:00.000" },
      tables: ["t1"],
    },
    { reason: "a PartiQL statement (not parsed)", input: { Statement: 'SELECT * FROM "t1"' }, tables: [] },
    { reason: "no object", input: "nope", tables: [] },
  ])("reads $reason", ({ input, tables }) => {
    expect(tablesNamed(input)).toEqual(tables);
  });
});

describe("splitBatchWrite", () => {
  const writes = (n: number) => Array.from({ length: n }, (_, i) => ({ PutRequest: { Item: { pk: { S: `k${i}` } } } }));

  it("withholds floor(n × fraction) of the throttled table's writes, the last ones, and leaves other tables whole", () => {
    const input = { RequestItems: { slow: writes(5), fast: writes(3) }, ReturnConsumedCapacity: "TOTAL" };
    const split = splitBatchWrite(input, 0.5, (t) => t === "slow");
    expect(split.forward).toEqual({ RequestItems: { slow: writes(5).slice(0, 3), fast: writes(3) }, ReturnConsumedCapacity: "TOTAL" });
    expect(split.unprocessed).toEqual({ slow: writes(5).slice(3) });
  });

  it("drops a table left with nothing, and forwards nothing when every write is withheld", () => {
    expect(splitBatchWrite({ RequestItems: { slow: writes(2), fast: writes(1) } }, 1, (t) => t === "slow").forward).toEqual({
      RequestItems: { fast: writes(1) },
    });
    const all = splitBatchWrite({ RequestItems: { slow: writes(2) } }, 1, () => true);
    expect(all.forward).toBeUndefined();
    expect(all.unprocessed).toEqual({ slow: writes(2) });
  });

  it("rounds down, so a single write always goes through and a resend loop ends", () => {
    expect(splitBatchWrite({ RequestItems: { slow: writes(1) } }, 0.9, () => true).unprocessed).toEqual({});
  });

  it("adds the withheld writes to moto's own UnprocessedItems", () => {
    const merged = withUnprocessed({ UnprocessedItems: { slow: writes(1) }, ConsumedCapacity: [] }, { slow: writes(2), other: writes(1) });
    expect(merged).toEqual({ UnprocessedItems: { slow: [...writes(1), ...writes(2)], other: writes(1) }, ConsumedCapacity: [] });
  });
});

describe("DynamoDB serialization", () => {
  it.each([
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "BatchWriteItem",
    "TransactWriteItems",
    "TransactGetItems",
    "ExecuteStatement",
    "BatchExecuteStatement",
    "ExecuteTransaction",
    "CreateTable",
    "UpdateTable",
    "DeleteTable",
    "UpdateTimeToLive",
    "TagResource",
    "SomeFutureAction",
  ])("serializes %s", (action) => expect(mustSerialize(action)).toBe(true));

  it.each(["GetItem", "BatchGetItem", "Query", "Scan", "DescribeTable", "ListTables", "DescribeTimeToLive", "ListTagsOfResource"])(
    "lets %s run concurrently",
    (action) => expect(mustSerialize(action)).toBe(false),
  );

  it("recognises the table API by its target, not DynamoDB Streams", () => {
    expect(isDynamoDbTarget("DynamoDB_20120810.PutItem")).toBe(true);
    expect(isDynamoDbTarget("DynamoDBStreams_20120810.GetRecords")).toBe(false);
    expect(isDynamoDbTarget(undefined)).toBe(false);
  });

  it("runs one call at a time, in the order they came, and goes on after a failure", async () => {
    const mutex = new FifoMutex();
    const log: string[] = [];
    let inside = 0;
    const job = (name: string, ms: number, fail = false) =>
      mutex.run(async () => {
        inside += 1;
        expect(inside).toBe(1);
        log.push(`start ${name}`);
        await new Promise((r) => setTimeout(r, ms));
        log.push(`end ${name}`);
        inside -= 1;
        if (fail) throw new Error(name);
        return name;
      });
    const results = await Promise.allSettled([job("a", 20), job("b", 1, true), job("c", 5)]);
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect(log).toEqual(["start a", "end a", "start b", "end b", "start c", "end c"]);
    expect(mutex.pending).toBe(0);
  });
});

describe("ReadWriteGate", () => {
  const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

  it("runs shared sections together, and an exclusive one only when none is under way, holding later ones back", async () => {
    const gate = new ReadWriteGate();
    const log: string[] = [];
    let shared = 0;
    let maxShared = 0;
    const read = (name: string, ms: number) =>
      gate.shared(async () => {
        shared += 1;
        maxShared = Math.max(maxShared, shared);
        log.push(`start ${name}`);
        await tick(ms);
        log.push(`end ${name}`);
        shared -= 1;
      });
    const write = (name: string, ms: number, fail = false) =>
      gate.exclusive(async () => {
        expect(shared).toBe(0);
        log.push(`start ${name}`);
        await tick(ms);
        log.push(`end ${name}`);
        if (fail) throw new Error(name);
      });
    const r1 = read("r1", 20);
    const r2 = read("r2", 10);
    await tick(1);
    const w1 = write("w1", 10);
    await tick(1);
    // Comes after the exclusive section began waiting: it waits for it too.
    const r3 = read("r3", 1);
    await Promise.all([r1, r2, w1, r3]);
    expect(maxShared).toBe(2);
    expect(log).toEqual(["start r1", "start r2", "end r2", "end r1", "start w1", "end w1", "start r3", "end r3"]);

    // A failing exclusive section opens the gate again.
    await expect(write("w2", 1, true)).rejects.toThrow("w2");
    await read("r4", 1);
    expect(log.slice(-2)).toEqual(["start r4", "end r4"]);
  });
});
