import { describe, expect, it } from "vitest";
import { formatRecordedLine } from "../../src/cli/commands/events.js";
import { EXPIRES_TAG, formatEventLine, isExpiredViewer, parseEvent, viewerName, viewerPrefix } from "../../src/cli/events-tail.js";

describe("viewer names", () => {
  it("are the operator's prefix, events, and a random part: unique per viewer, valid for SQS and EventBridge", () => {
    const a = viewerName("saas");
    const b = viewerName("saas");
    expect(a).toMatch(/^saas-events-[0-9a-f]{16}$/);
    expect(a).not.toBe(b);
    // The longest NAME_PREFIX (10) still fits a rule name (64) and a queue name (80).
    expect(viewerName("abcdefghij").length).toBeLessThanOrEqual(64);
    expect(viewerName("saas", "x")).toBe(`${viewerPrefix("saas")}x`);
  });
});

describe("isExpiredViewer", () => {
  const now = new Date("2025-06-01T12:00:00Z");
  const ours = { "managed-by": "ecs-tenant-operator" };

  it("is true only for ours past its expiry", () => {
    expect(isExpiredViewer({ ...ours, [EXPIRES_TAG]: "2025-06-01T11:59:59Z" }, now)).toBe(true);
    expect(isExpiredViewer({ ...ours, [EXPIRES_TAG]: "2025-06-01T12:00:01Z" }, now)).toBe(false);
  });

  it("never judges a queue expired that is not tagged as ours, or has no readable expiry", () => {
    expect(isExpiredViewer({ [EXPIRES_TAG]: "2000-01-01T00:00:00Z" }, now)).toBe(false);
    expect(isExpiredViewer({ "managed-by": "someone-else", [EXPIRES_TAG]: "2000-01-01T00:00:00Z" }, now)).toBe(false);
    expect(isExpiredViewer(ours, now)).toBe(false);
    expect(isExpiredViewer({ ...ours, [EXPIRES_TAG]: "soon" }, now)).toBe(false);
  });
});

describe("recorded event lines", () => {
  it("read like live ones: time, detail-type, tenant, reason on one line", () => {
    expect(
      formatRecordedLine({ tenantId: "t1", detailType: "sbt_aws_provisionSuccess", at: "2025-06-01T12:00:00.000Z", reason: "all\nsteady" }),
    ).toBe('2025-06-01T12:00:00.000Z  sbt_aws_provisionSuccess    tenant=t1  reason="all steady"');
    expect(formatRecordedLine({ tenantId: "t1", detailType: "tenantStatusChanged", at: "2025-06-01T12:00:00.000Z" })).toBe(
      "2025-06-01T12:00:00.000Z  tenantStatusChanged         tenant=t1",
    );
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
