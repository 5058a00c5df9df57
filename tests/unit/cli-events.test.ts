import { describe, expect, it } from "vitest";
import { formatEventLine, parseEvent, tailName } from "../../src/cli/events-tail.js";

describe("tailName", () => {
  it("is the bus name behind a fixed prefix when that is valid", () => {
    expect(tailName("default")).toBe("tenantctl-events-default");
    expect(tailName("tenant-events")).toBe("tenantctl-events-tenant-events");
  });

  it.each([
    { reason: "an ARN", bus: "arn:aws:events:us-east-1:123456789012:event-bus/sbt" },
    { reason: "a partner bus with / and .", bus: "aws.partner/saas.com/123/events" },
    { reason: "a very long name", bus: "b".repeat(200) },
  ])("stays a valid queue and rule name for $reason", ({ bus }) => {
    const name = tailName(bus);
    expect(name).toMatch(/^tenantctl-events-[A-Za-z0-9_-]+$/);
    expect(name.length).toBeLessThanOrEqual(64);
  });

  it("never gives two buses the same name, even when cleaning makes them look alike", () => {
    expect(tailName("a.b")).not.toBe(tailName("a/b"));
    expect(tailName("a.b")).not.toBe(tailName("a-b"));
    expect(tailName("x".repeat(100) + "1")).not.toBe(tailName("x".repeat(100) + "2"));
  });
});

describe("event lines", () => {
  const body = JSON.stringify({
    version: "0",
    id: "e1",
    "detail-type": "sbt_aws_provisionFailure",
    source: "sbt.application.plane",
    time: "2025-06-01T12:00:00Z",
    detail: {
      tenantId: "t1",
      jobOutput: { tenantData: {}, tenantRegistrationData: { registrationStatus: "Failed" } },
      reason: 'image "x" failed',
      phase: "Failed",
    },
  });

  it("prints time, detail-type, tenant, registration status, phase and the quoted reason", () => {
    const line = formatEventLine({ event: parseEvent(body), body, receiptHandle: "r" });
    expect(line).toBe(
      '2025-06-01T12:00:00Z  sbt_aws_provisionFailure    tenant=t1  registrationStatus=Failed  phase=Failed  reason="image \\"x\\" failed"',
    );
  });

  it("shows a message that is not an EventBridge event as it is, on one line", () => {
    expect(parseEvent("hello\nworld")).toBeUndefined();
    expect(parseEvent('{"no":"detail-type"}')).toBeUndefined();
    expect(formatEventLine({ event: undefined, body: "hello\nworld", receiptHandle: undefined })).toBe(
      "(not an EventBridge event) hello world",
    );
  });
});
