import { describe, expect, it } from "vitest";
import { RecentCreates } from "../../src/providers/ecs-cache.js";
import type { ObservedService } from "../../src/tiers/model.js";

const service = (name: string): ObservedService => ({
  cluster: "saas-advanced",
  name,
  arn: `arn:aws:ecs:us-east-1:123456789012:service/saas-advanced/${name}`,
  status: "ACTIVE",
  desiredCount: 1,
  runningCount: 0,
  taskDefinitionArn: `arn:aws:ecs:us-east-1:123456789012:task-definition/${name}:1`,
  taskDefinitionContentHash: undefined,
  deployments: [],
  tags: {},
});

describe("RecentCreates", () => {
  it("lets a burst of creates go once their grace is over, at the next read, without waiting for another create", () => {
    let now = 0;
    const recent = new RecentCreates(30_000, () => now);
    for (let i = 0; i < 1000; i++) {
      now = i;
      recent.remember(service(`s${i}`));
    }
    expect(recent.size).toBe(1000);
    now = 30_500;
    // s0..s499 are older than the grace; the rest still count as being created.
    expect(recent.get("saas-advanced", "s499")).toBeUndefined();
    expect(recent.size).toBe(500);
    expect(recent.get("saas-advanced", "s500")?.name).toBe("s500");
    now = 31_000;
    expect(recent.size).toBe(0);
  });

  it("counts a service remembered again from its latest create", () => {
    let now = 0;
    const recent = new RecentCreates(30_000, () => now);
    recent.remember(service("a"));
    now = 10_000;
    recent.remember(service("b"));
    now = 20_000;
    recent.remember(service("a"));
    // b is past its grace at 40,001; a (created again at 20,000) is not, though it was first remembered before b.
    now = 40_001;
    expect(recent.get("saas-advanced", "b")).toBeUndefined();
    expect(recent.get("saas-advanced", "a")?.name).toBe("a");
    now = 50_001;
    expect(recent.size).toBe(0);
  });
});
