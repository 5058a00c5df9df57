import { describe, expect, it } from "vitest";
import { formatAge, renderTable, truncate } from "../../src/cli/format.js";
import { describeTenant } from "../../src/cli/commands/get.js";
import { tenantTable } from "../../src/cli/commands/list.js";
import { hashSpec } from "../../src/tenants/record.js";

const now = new Date("2025-06-01T12:00:00.000Z");
const ago = (ms: number) => new Date(now.getTime() - ms).toISOString();

describe("formatAge", () => {
  it.each([
    { reason: "seconds under two minutes", since: ago(119_000), want: "119s" },
    { reason: "minutes from two minutes", since: ago(120_000), want: "2m" },
    { reason: "hours from two hours", since: ago(2 * 3_600_000), want: "2h" },
    { reason: "days from two days", since: ago(50 * 3_600_000), want: "2d" },
    { reason: "clock skew (a time in the future) is 0s, not negative", since: ago(-5000), want: "0s" },
    { reason: "unknown", since: undefined, want: "-" },
    { reason: "unparsable", since: "yesterday-ish", want: "-" },
  ])("$reason", ({ since, want }) => {
    expect(formatAge(since, now)).toBe(want);
  });
});

describe("renderTable", () => {
  it("aligns columns and cuts only the last one to the width", () => {
    const text = renderTable(
      ["ID", "MESSAGE"],
      [
        ["a", "short"],
        ["long-id", "m".repeat(50)],
      ],
      { width: 20 },
    );
    const lines = text.split("\n");
    expect(lines).toEqual(["ID        MESSAGE", "a         short", `long-id   ${"m".repeat(9)}…`]);
    expect(lines[2]).toHaveLength(20);
  });

  it("keeps a multi-line message on one row", () => {
    expect(renderTable(["A", "B"], [["x", "line one\nline two"]])).toBe("A   B\nx   line one line two");
  });

  it("truncate marks a cut with an ellipsis and never exceeds the width", () => {
    expect(truncate("abcdef", 4)).toBe("abc…");
    expect(truncate("abc", 3)).toBe("abc");
    expect(truncate("abc", 0)).toBe("");
  });
});

describe("tenantTable", () => {
  it("shows <none> and - for a tenant the controller has not reconciled, and the lower-cased tier", () => {
    const text = tenantTable(
      [
        { tenantId: "t1", tenantName: "One", tier: "PREMIUM" },
        {
          tenantId: "t2",
          tenantName: "Two",
          tier: "basic",
          status: { phase: "Failed", lastReconciledAt: ago(600_000), message: "tier must be basic" },
        },
      ],
      now,
    );
    expect(text.split("\n")).toEqual([
      "ID   NAME   TIER      PHASE    AGE   MESSAGE",
      "t1   One    premium   <none>   -",
      "t2   Two    basic     Failed   10m   tier must be basic",
    ]);
  });
});

describe("describeTenant", () => {
  it("says when there is no status yet and when the spec is invalid", () => {
    const text = describeTenant({ tenantId: "t1", tenantName: "One", tier: "gold" }, now);
    expect(text).toMatch(/^Spec INVALID:\s+tier must be basic, advanced or premium/m);
    expect(text).toContain("none yet (the controller has not reconciled this tenant)");
  });

  it("marks the observed spec hash current when the controller acted on this spec", () => {
    const item = { tenantId: "t1", tenantName: "One", tier: "basic", sbtaws_active: false };
    const text = describeTenant(
      {
        ...item,
        status: {
          phase: "Deprovisioned",
          observedSpecHash: hashSpec(item),
          lastReconciledAt: ago(5000),
          message: "removed",
          conditions: [],
        },
      },
      now,
    );
    expect(text).toMatch(new RegExp(`Observed spec hash:\\s+${hashSpec(item)} \\(current\\)`));
    expect(text).toMatch(/^Active:\s+false \(offboarding\)$/m);
    expect(text).toMatch(/Last reconciled:\s+\S+ \(5s ago\)/);
  });

  it("shows where the data lives, a move under way, the rule and the backup with its restore command", () => {
    const item = { tenantId: "t9", tenantName: "Nine", tier: "advanced", suspended: true };
    const status = {
      phase: "Provisioning",
      observedSpecHash: "x",
      lastReconciledAt: ago(1000),
      message: "moving",
      conditions: [],
      tables: { orders: "saas-pool-orders", products: "saas-pool-products" },
      migration: {
        from: "basic",
        to: "advanced",
        step: "backfill",
        startedAt: ago(65_000),
        counts: { orders: { copied: 12, applied: 3 }, products: { copied: 4, applied: 0, verified: 4 } },
      },
      route: { listenerArn: "l", priority: 7, ruleArn: "arn:rule/7" },
      backup: { location: "s3://b/offboarded/t9/x/", exportedAt: ago(0), counts: { orders: 12, products: 4 } },
    };
    const text = describeTenant({ ...item, status }, now);
    expect(text).toMatch(/^Suspended:\s+true/m);
    expect(text).toMatch(/Tables:\s+orders=saas-pool-orders products=saas-pool-products/);
    expect(text).toMatch(/Tier move:\s+basic -> advanced, step backfill \(started 65s ago\)/);
    expect(text).toContain("orders: 12 copied, 3 changes; products: 4 copied, 0 changes, 4 verified");
    expect(text).toMatch(/Listener rule:\s+arn:rule\/7 \(priority 7\)/);
    expect(text).toMatch(/^\s+Listener:\s+l$/m);
    expect(text).toContain("tenantctl restore t9 --from s3://b/offboarded/t9/x/");
  });

  describe("in detail (tenantctl describe)", () => {
    const item = { tenantId: "t7", tenantName: "Seven", tier: "premium" };
    const status = {
      phase: "Degraded",
      phaseSince: ago(300_000),
      observedSpecHash: "x",
      lastReconciledAt: ago(20_000),
      message: "ThrottlingException: Rate exceeded",
      conditions: [
        { type: "Ready", status: "False", reason: "ReconcileError", message: "Rate exceeded", lastTransitionTime: ago(300_000) },
      ],
      lastError: {
        message: "creating service t7-orders: Rate exceeded",
        kind: "transient",
        type: "ThrottlingException",
        at: ago(20_000),
        retries: 4,
        nextAttemptAt: new Date(now.getTime() + 40_000).toISOString(),
      },
      recentEvents: [
        { detailType: "sbt_aws_provisionSuccess", at: ago(7_200_000), reason: "all services steady" },
        { detailType: "sbt_aws_provisionFailure", at: ago(300_000), reason: "Rate exceeded" },
      ],
    };

    it("shows the time in phase, the last error with its retries and next attempt, and the recent events", () => {
      const text = describeTenant({ ...item, status }, now, undefined, { detail: true });
      expect(text).toMatch(new RegExp(`^ {2}Phase:\\s+Degraded \\(for 5m, since ${status.phaseSince.replace(/\./g, "\\.")}\\)$`, "m"));
      expect(text).toMatch(/^ {2}Last error:\s+ThrottlingException: creating service t7-orders: Rate exceeded$/m);
      expect(text).toMatch(/^ {22}transient, 4 failed tries in a row, last 20s ago$/m);
      expect(text).toMatch(/^ {2}Next attempt:\s+\S+ \(in 40s\)$/m);
      const events = text.slice(text.indexOf("\nEvents:\n"));
      expect(events.split("\n").slice(2, 5)).toEqual([
        "  AGE   TYPE                       REASON",
        "  2h    sbt_aws_provisionSuccess   all services steady",
        "  5m    sbt_aws_provisionFailure   Rate exceeded",
      ]);
    });

    it("says a terminal error is not retried, and when a tenant has no events or no error", () => {
      const terminal = { ...status, lastError: { ...status.lastError, kind: "terminal", retries: 1, nextAttemptAt: undefined } };
      const text = describeTenant({ ...item, status: terminal }, now, undefined, { detail: true });
      expect(text).toMatch(/^ {22}terminal \(needs a fix; not retried on its own\), 1 failed try in a row, last 20s ago$/m);
      expect(text).not.toContain("Next attempt");
      const calm = describeTenant({ ...item, status: { ...status, lastError: undefined, recentEvents: undefined } }, now, undefined, {
        detail: true,
      });
      expect(calm).not.toContain("Last error");
      expect(calm).toMatch(/^Events:\s+none recorded$/m);
    });

    it("get (no detail) shows none of it, as before", () => {
      const text = describeTenant({ ...item, status }, now);
      expect(text).toMatch(/^ {2}Phase:\s+Degraded$/m);
      expect(text).not.toContain("Last error");
      expect(text).not.toContain("Events:");
    });
  });
});
