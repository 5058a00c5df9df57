import { DescribeTableCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb";
import {
  DescribeStreamCommand,
  DynamoDBStreamsClient,
  ExpiredIteratorException,
  GetRecordsCommand,
  GetShardIteratorCommand,
  LimitExceededException,
  type _Record,
  type Shard,
} from "@aws-sdk/client-dynamodb-streams";
import { marshall } from "@aws-sdk/util-dynamodb";
import { mockClient } from "aws-sdk-client-mock";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { TenantChange } from "../../src/ports.js";
import { hashSpec } from "../../src/tenants/record.js";
import { DynamoStreamSource, isSpecChange, toTenantChange, type DynamoStreamSourceOptions } from "../../src/providers/tenant-stream.js";

/** Generous: these machines are loaded; a wait's length proves nothing here. */
const SLOW = { timeout: 10_000 };

const STREAM = "arn:aws:dynamodb:us-east-1:123456789012:table/tenants/stream/2024-01-01T00:00:00.000";
const ddbMock = mockClient(DynamoDBClient);
const streamsMock = mockClient(DynamoDBStreamsClient);
let source: DynamoStreamSource | undefined;
let changes: TenantChange[];

beforeEach(() => {
  ddbMock.reset();
  streamsMock.reset();
  changes = [];
  ddbMock.on(DescribeTableCommand).resolves({
    Table: {
      TableName: "tenants",
      LatestStreamArn: STREAM,
      StreamSpecification: { StreamEnabled: true, StreamViewType: "NEW_AND_OLD_IMAGES" },
    },
  });
});

afterEach(async () => {
  await source?.stop();
  source = undefined;
});

const openShard = (id: string, parent?: string): Shard => ({
  ShardId: id,
  SequenceNumberRange: { StartingSequenceNumber: "1" },
  ...(parent ? { ParentShardId: parent } : {}),
});
const closedShard = (id: string): Shard => ({
  ShardId: id,
  SequenceNumberRange: { StartingSequenceNumber: "1", EndingSequenceNumber: "9" },
});

function record(
  seq: string,
  eventName: "INSERT" | "MODIFY" | "REMOVE",
  tenantId: string,
  newImage?: Record<string, unknown>,
  oldImage?: Record<string, unknown>,
): _Record {
  return {
    eventName,
    dynamodb: {
      SequenceNumber: seq,
      Keys: marshall({ tenantId }),
      ...(newImage ? { NewImage: marshall(newImage) } : {}),
      ...(oldImage ? { OldImage: marshall(oldImage) } : {}),
    },
  };
}

/** GetShardIterator answers "<shard>|<type>|<seq>" so tests can tell which iterator a GetRecords used. */
function iteratorsEcho() {
  streamsMock.on(GetShardIteratorCommand).callsFake((i: { ShardId: string; ShardIteratorType: string; SequenceNumber?: string }) => ({
    ShardIterator: `${i.ShardId}|${i.ShardIteratorType}|${i.SequenceNumber ?? ""}`,
  }));
}

function start(options: DynamoStreamSourceOptions = {}): Promise<void> {
  source = new DynamoStreamSource(
    new DynamoDBClient({ region: "us-east-1" }),
    new DynamoDBStreamsClient({ region: "us-east-1" }),
    "tenants",
    {
      pollIntervalMs: 2,
      backoffInitialMs: 1,
      backoffMaxMs: 5,
      discoverIntervalMs: 60_000,
      ...options,
    },
  );
  return source.start((c) => changes.push(...c));
}

const iteratorRequests = () => streamsMock.commandCalls(GetShardIteratorCommand).map((c) => c.args[0].input);
const readIterators = () => streamsMock.commandCalls(GetRecordsCommand).map((c) => c.args[0].input.ShardIterator);

describe("DynamoStreamSource", () => {
  it("reads open shards from LATEST, skips shards closed before start, and renews an expired iterator after the last record", async () => {
    streamsMock.on(DescribeStreamCommand).resolves({ StreamDescription: { Shards: [closedShard("s0"), openShard("s1")] } });
    iteratorsEcho();
    let expired = false;
    streamsMock.on(GetRecordsCommand).callsFake((i: { ShardIterator: string }) => {
      if (i.ShardIterator === "s1|LATEST|")
        return { Records: [record("100", "INSERT", "t1", { tenantId: "t1", tier: "basic" })], NextShardIterator: "s1-next" };
      if (i.ShardIterator === "s1-next" && !expired) {
        expired = true;
        throw new ExpiredIteratorException({ message: "Iterator expired", $metadata: { httpStatusCode: 400 } });
      }
      if (i.ShardIterator === "s1|AFTER_SEQUENCE_NUMBER|100")
        return { Records: [record("101", "INSERT", "t2", { tenantId: "t2", tier: "basic" })], NextShardIterator: "s1-idle" };
      return { Records: [], NextShardIterator: "s1-idle" };
    });
    await start();
    await vi.waitFor(() => expect(changes.map((c) => c.tenantId)).toEqual(["t1", "t2"]));
    expect(iteratorRequests()).toEqual([
      { StreamArn: STREAM, ShardId: "s1", ShardIteratorType: "LATEST" },
      { StreamArn: STREAM, ShardId: "s1", ShardIteratorType: "AFTER_SEQUENCE_NUMBER", SequenceNumber: "100" },
    ]);
  });

  it("backs off on throttling and replaces an iterator that grew too old, resuming after the last record", async () => {
    let now = 1_000_000;
    streamsMock.on(DescribeStreamCommand).resolves({ StreamDescription: { Shards: [openShard("s1")] } });
    iteratorsEcho();
    let throttles = 0;
    streamsMock.on(GetRecordsCommand).callsFake((i: { ShardIterator: string }) => {
      if (i.ShardIterator === "s1|LATEST|")
        return {
          Records: [record("7", "MODIFY", "t1", { tenantId: "t1", tier: "premium" }, { tenantId: "t1", tier: "basic" })],
          NextShardIterator: "s1-next",
        };
      if (i.ShardIterator === "s1-next") {
        throttles++;
        now += 10 * 60_000; // a long outage: the iterator in hand is now 10 minutes older each time
        throw new LimitExceededException({ message: "slow down", $metadata: { httpStatusCode: 400 } });
      }
      if (i.ShardIterator === "s1|AFTER_SEQUENCE_NUMBER|7")
        return { Records: [record("8", "REMOVE", "t1", undefined, { tenantId: "t1", tier: "premium" })], NextShardIterator: "s1-idle" };
      return { Records: [], NextShardIterator: "s1-idle" };
    });
    await start({ now: () => now });
    await vi.waitFor(() => expect(changes.map((c) => `${c.tenantId}:${c.kind}`)).toEqual(["t1:upsert", "t1:remove"]));
    // The throttled iterator was tried again while young, then replaced once it passed 14 minutes.
    expect(throttles).toBe(2);
    expect(iteratorRequests().at(-1)).toMatchObject({ ShardIteratorType: "AFTER_SEQUENCE_NUMBER", SequenceNumber: "7" });
  });

  it("ends a closed shard's reader and reads its child from TRIM_HORIZON after it", async () => {
    let split = false;
    streamsMock.on(DescribeStreamCommand).callsFake(() => ({
      StreamDescription: { Shards: split ? [closedShard("s1"), openShard("s2", "s1")] : [openShard("s1")] },
    }));
    iteratorsEcho();
    streamsMock.on(GetRecordsCommand).callsFake((i: { ShardIterator: string }) => {
      if (i.ShardIterator === "s1|LATEST|") {
        split = true;
        return { Records: [record("5", "INSERT", "parent", { tenantId: "parent", tier: "basic" })] }; // no NextShardIterator: closed
      }
      if (i.ShardIterator === "s2|TRIM_HORIZON|")
        return { Records: [record("20", "INSERT", "child", { tenantId: "child", tier: "basic" })], NextShardIterator: "s2-idle" };
      return { Records: [], NextShardIterator: "s2-idle" };
    });
    // discoverIntervalMs is a minute: only the closing shard can have triggered the second DescribeStream.
    await start();
    await vi.waitFor(() => expect(changes.map((c) => c.tenantId)).toEqual(["parent", "child"]));
    expect(readIterators().filter((it) => it?.startsWith("s1"))).toEqual(["s1|LATEST|"]);
    expect(iteratorRequests().map((r) => `${r.ShardId}:${r.ShardIteratorType}`)).toEqual(["s1:LATEST", "s2:TRIM_HORIZON"]);
  });

  it("keeps reading after the change handler throws", async () => {
    streamsMock.on(DescribeStreamCommand).resolves({ StreamDescription: { Shards: [openShard("s1")] } });
    iteratorsEcho();
    streamsMock
      .on(GetRecordsCommand)
      .resolvesOnce({ Records: [record("1", "INSERT", "a", { tenantId: "a" })], NextShardIterator: "n1" })
      .resolvesOnce({ Records: [record("2", "INSERT", "b", { tenantId: "b" })], NextShardIterator: "n2" })
      .resolves({ Records: [], NextShardIterator: "n3" });
    const seen: string[] = [];
    source = new DynamoStreamSource(
      new DynamoDBClient({ region: "us-east-1" }),
      new DynamoDBStreamsClient({ region: "us-east-1" }),
      "tenants",
      { pollIntervalMs: 2 },
    );
    await source.start((c) => {
      seen.push(...c.map((x) => x.tenantId));
      throw new Error("handler bug");
    });
    await vi.waitFor(() => expect(seen).toEqual(["a", "b"]));
  });

  it("reports its lag: the age of the last record read, 0 once a read finds nothing new, growing while reads fail", async () => {
    let now = 5_000_000;
    streamsMock.on(DescribeStreamCommand).resolves({ StreamDescription: { Shards: [openShard("s1")] } });
    iteratorsEcho();
    // Each GetRecords waits for the test to answer it.
    const pending: { resolve: (v: unknown) => void; reject: (e: unknown) => void }[] = [];
    streamsMock.on(GetRecordsCommand).callsFake(() => new Promise((resolve, reject) => pending.push({ resolve, reject })));
    const answer = async (v: unknown, fail = false) => {
      await vi.waitFor(() => expect(pending.length).toBeGreaterThan(0), SLOW);
      const p = pending.shift();
      if (fail) p?.reject(v);
      else p?.resolve(v);
    };
    const idle = new DynamoStreamSource(
      new DynamoDBClient({ region: "us-east-1" }),
      new DynamoDBStreamsClient({ region: "us-east-1" }),
      "t",
    );
    expect(idle.lagSeconds()).toBeUndefined(); // not started: not reading
    await start({ now: () => now });
    expect(source?.lagSeconds()).toBe(0); // LATEST: caught up at start
    now += 5_000;
    expect(source?.lagSeconds()).toBe(5); // nothing read since: 5 s unaccounted for

    const old = { ...record("1", "INSERT", "a", { tenantId: "a" }) };
    old.dynamodb = { ...old.dynamodb, ApproximateCreationDateTime: new Date(now - 42_000) };
    await answer({ Records: [old], NextShardIterator: "n1" });
    await vi.waitFor(() => expect(changes).toHaveLength(1), SLOW);
    expect(source?.lagSeconds()).toBe(42);

    await answer({ Records: [], NextShardIterator: "n2" });
    await vi.waitFor(() => expect(source?.lagSeconds()).toBe(0), SLOW);

    // The next read is throttled, and the ones after it too: the lag grows from the last good read.
    await answer(new LimitExceededException({ message: "slow down", $metadata: { httpStatusCode: 400 } }), true);
    now += 30_000;
    expect(source?.lagSeconds()).toBe(30);
    await answer(new LimitExceededException({ message: "slow down", $metadata: { httpStatusCode: 400 } }), true);
    now += 30_000;
    expect(source?.lagSeconds()).toBe(60);
    await answer({ Records: [], NextShardIterator: "n3" });
    await vi.waitFor(() => expect(source?.lagSeconds()).toBe(0), SLOW);

    const stopping = source?.stop();
    for (const p of pending.splice(0)) p.resolve({ Records: [], NextShardIterator: "n4" });
    await stopping;
    expect(source?.lagSeconds()).toBeUndefined(); // not reading: no lag to speak of
  });

  it("refuses to start on a table without a stream, naming the fix", async () => {
    ddbMock.on(DescribeTableCommand).resolves({ Table: { TableName: "tenants" } });
    await expect(start()).rejects.toThrow(/NEW_AND_OLD_IMAGES/);
    source = undefined;
  });
});

describe("toTenantChange and isSpecChange", () => {
  const spec = { tenantId: "t1", tier: "advanced", tenantName: "One", apps: { orders: { desiredCount: 2 } } };

  it.each([
    {
      reason: "a status-only write is no spec change",
      newImage: { ...spec, status: { phase: "Ready" } },
      oldImage: { ...spec, status: { phase: "Provisioning" } },
      expected: false,
    },
    { reason: "an edit of a spec field is", newImage: { ...spec, tier: "premium" }, oldImage: spec, expected: true },
    { reason: "a new item is", newImage: spec, oldImage: undefined, expected: true },
    { reason: "an unknown attribute changing is not", newImage: { ...spec, note: "b" }, oldImage: { ...spec, note: "a" }, expected: false },
  ])("$reason", ({ newImage, oldImage, expected }) => {
    const change = toTenantChange(record("1", oldImage ? "MODIFY" : "INSERT", "t1", newImage, oldImage));
    expect(change?.kind).toBe("upsert");
    expect(isSpecChange(change!)).toBe(expected);
  });

  it("hashes images as plain values, numbers as numbers", () => {
    const change = toTenantChange(record("1", "INSERT", "t1", spec));
    expect(change?.newSpecHash).toBe(hashSpec(spec));
    expect(change?.oldSpecHash).toBeUndefined();
  });

  it("maps REMOVE to a remove carrying the old image's hash", () => {
    const change = toTenantChange(record("1", "REMOVE", "t1", undefined, spec));
    expect(change).toEqual({ tenantId: "t1", kind: "remove", newSpecHash: undefined, oldSpecHash: hashSpec(spec) });
    expect(isSpecChange(change!)).toBe(true);
  });

  it("carries the deleted item's phase and registration id, so a purge of a Deprovisioned tenant is not announced twice", () => {
    const change = toTenantChange(
      record("2", "REMOVE", "t1", undefined, { ...spec, tenantRegistrationId: "reg-1", status: { phase: "Deprovisioned" } }),
    );
    expect(change).toMatchObject({ kind: "remove", oldPhase: "Deprovisioned", oldRegistrationId: "reg-1" });
  });
});
