import { EventBridgeClient, PutEventsCommand, type PutEventsRequestEntry } from "@aws-sdk/client-eventbridge";
import { mockClient } from "aws-sdk-client-mock";
import { beforeEach, describe, expect, it } from "vitest";
import { isRetryable } from "../../src/operator/errors.js";
import type { StatusEvent } from "../../src/ports.js";
import { EventBridgePublisher, EventPublishError } from "../../src/providers/event-publisher.js";

const ebMock = mockClient(EventBridgeClient);
let publisher: EventBridgePublisher;

beforeEach(() => {
  ebMock.reset();
  publisher = new EventBridgePublisher(new EventBridgeClient({ region: "us-east-1" }), {
    eventBusName: "sbt-bus",
    source: "sbt.application.plane",
    backoffMs: 1,
    retries: 2,
  });
});

const event = (tenantId: string, detailType: StatusEvent["detailType"] = "sbt_aws_provisionSuccess"): StatusEvent => ({
  detailType,
  detail: {
    tenantId,
    tenantRegistrationId: `reg-${tenantId}`,
    jobOutput: { tenantData: {}, tenantRegistrationData: { registrationStatus: "Created" } },
    specHash: "abc",
  },
});

const sentTenants = (call: number) =>
  (ebMock.commandCalls(PutEventsCommand)[call]?.args[0].input.Entries ?? []).map(
    (e: PutEventsRequestEntry) => (JSON.parse(e.Detail ?? "{}") as { tenantId: string }).tenantId,
  );

describe("EventBridgePublisher", () => {
  it("sends SBT-shaped entries in batches of at most 10", async () => {
    ebMock
      .on(PutEventsCommand)
      .callsFake((i: { Entries: unknown[] }) => ({ FailedEntryCount: 0, Entries: i.Entries.map((_, n) => ({ EventId: `e${n}` })) }));
    await publisher.publish(Array.from({ length: 23 }, (_, i) => event(`t${i}`)));
    const calls = ebMock.commandCalls(PutEventsCommand);
    expect(calls.map((c) => c.args[0].input.Entries?.length)).toEqual([10, 10, 3]);
    const first = calls[0]?.args[0].input.Entries?.[0];
    expect(first).toMatchObject({ EventBusName: "sbt-bus", Source: "sbt.application.plane", DetailType: "sbt_aws_provisionSuccess" });
    expect(JSON.parse(first?.Detail ?? "")).toEqual(event("t0").detail);
  });

  it("retries only the entries that came back with an ErrorCode", async () => {
    ebMock
      .on(PutEventsCommand)
      .resolvesOnce({
        FailedEntryCount: 2,
        Entries: [
          { EventId: "1" },
          { ErrorCode: "InternalFailure", ErrorMessage: "x" },
          { EventId: "3" },
          { ErrorCode: "ThrottlingException" },
        ],
      })
      .resolves({ FailedEntryCount: 0, Entries: [{ EventId: "2" }, { EventId: "4" }] });
    await publisher.publish([event("a"), event("b"), event("c"), event("d")]);
    expect(sentTenants(0)).toEqual(["a", "b", "c", "d"]);
    expect(sentTenants(1)).toEqual(["b", "d"]);
    expect(ebMock.commandCalls(PutEventsCommand)).toHaveLength(2);
  });

  it("gives up after the retries and throws a retryable error naming what failed", async () => {
    ebMock.on(PutEventsCommand).callsFake((i: { Entries: PutEventsRequestEntry[] }) => ({
      FailedEntryCount: 1,
      Entries: i.Entries.map((e) =>
        e.Detail?.includes('"b"') ? { ErrorCode: "InternalFailure", ErrorMessage: "try later" } : { EventId: "ok" },
      ),
    }));
    const err = await publisher.publish([event("a"), event("b", "sbt_aws_deprovisionFailure")]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EventPublishError);
    expect((err as EventPublishError).failed).toEqual([
      { detailType: "sbt_aws_deprovisionFailure", tenantId: "b", errorCode: "InternalFailure", errorMessage: "try later" },
    ]);
    expect((err as Error).message).toContain("tenant b");
    expect(isRetryable(err)).toBe(true);
    // first try plus two retries, the later ones carrying only "b"
    expect(ebMock.commandCalls(PutEventsCommand)).toHaveLength(3);
    expect(sentTenants(2)).toEqual(["b"]);
  });

  it("tells how many events were not delivered: refused after the retries, or all of a call that failed", async () => {
    const undelivered: number[] = [];
    const counted = new EventBridgePublisher(new EventBridgeClient({ region: "us-east-1" }), {
      eventBusName: "sbt-bus",
      source: "sbt.application.plane",
      backoffMs: 1,
      retries: 1,
      onUndelivered: (n) => undelivered.push(n),
    });
    ebMock
      .on(PutEventsCommand)
      .resolvesOnce({
        FailedEntryCount: 2,
        Entries: [{ ErrorCode: "InternalFailure" }, { EventId: "2" }, { ErrorCode: "InternalFailure" }],
      })
      .resolvesOnce({ FailedEntryCount: 1, Entries: [{ EventId: "1" }, { ErrorCode: "InternalFailure" }] });
    await expect(counted.publish([event("a"), event("b"), event("c")])).rejects.toBeInstanceOf(EventPublishError);
    // a got through on its retry; c did not.
    expect(undelivered).toEqual([1]);

    ebMock.reset();
    ebMock.on(PutEventsCommand).rejects(Object.assign(new Error("no such bus"), { name: "ResourceNotFoundException" }));
    await expect(counted.publish([event("x"), event("y")])).rejects.toThrow(/no such bus/);
    expect(undelivered).toEqual([1, 2]);

    // Everything delivered: nothing to tell.
    ebMock.reset();
    ebMock.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: "1" }] });
    await counted.publish([event("z")]);
    expect(undelivered).toEqual([1, 2]);
  });
});
