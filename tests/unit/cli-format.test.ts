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
    const text = renderTable(["ID", "MESSAGE"], [["a", "short"], ["long-id", "m".repeat(50)]], { width: 20 });
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
        { tenantId: "t2", tenantName: "Two", tier: "basic", status: { phase: "Failed", lastReconciledAt: ago(600_000), message: "tier must be basic" } },
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
    const text = describeTenant({ ...item, status: { phase: "Deprovisioned", observedSpecHash: hashSpec(item), lastReconciledAt: ago(5000), message: "removed", conditions: [] } }, now);
    expect(text).toMatch(new RegExp(`Observed spec hash:\\s+${hashSpec(item)} \\(current\\)`));
    expect(text).toMatch(/^Active:\s+false \(offboarding\)$/m);
    expect(text).toMatch(/Last reconciled:\s+\S+ \(5s ago\)/);
  });
});
