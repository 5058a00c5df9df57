import { describe, expect, it } from "vitest";
import { closest, didYouMean, editDistance } from "../../src/suggest.js";

describe("editDistance", () => {
  it.each([
    ["apply", "apply", 0],
    ["aply", "apply", 1],
    ["appz", "apps", 1],
    ["tenatnId", "tenantId", 1], // a swap of neighbours counts once
    ["", "abc", 3],
    ["kitten", "sitting", 3],
  ])("%s -> %s is %d", (a, b, d) => {
    expect(editDistance(a, b)).toBe(d);
    expect(editDistance(b, a)).toBe(d);
  });
});

describe("closest", () => {
  const commands = ["apply", "get", "list", "delete", "restore", "plan", "events", "describe"];

  it("suggests the intended name for a typo, ignoring case", () => {
    expect(closest("aply", commands)).toBe("apply");
    expect(closest("evnets", commands)).toBe("events");
    expect(closest("tenantname", ["tenantId", "tenantName"])).toBe("tenantName");
  });

  it("suggests nothing when no candidate is close: a guess would mislead", () => {
    expect(closest("frobnicate", commands)).toBeUndefined();
    expect(closest("zz", commands)).toBeUndefined();
    expect(didYouMean("xyz", ["apps"])).toBe("");
  });

  it("prefers the nearer candidate", () => {
    expect(closest("lis", ["plan", "list"])).toBe("list");
    expect(didYouMean("appz", ["tier", "apps"])).toBe(': did you mean "apps"?');
  });
});
