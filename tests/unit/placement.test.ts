import { describe, expect, it } from "vitest";
import { capacityOf, choosePlacement, listenersFullMessage } from "../../src/tiers/placement.js";

const L1 = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/a/1/1";
const L2 = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/b/2/2";
const L3 = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/c/3/3";

const counts = (...pairs: [string, number][]) => new Map(pairs);

describe("choosePlacement: which listener takes a tenant without a placement", () => {
  it("the listener with the fewest tenants among those with room; config order breaks ties", () => {
    expect(choosePlacement({ listeners: [L1, L2, L3], counts: counts(), perListener: 2 })).toMatchObject({
      kind: "place",
      listenerArn: L1,
    });
    expect(choosePlacement({ listeners: [L1, L2, L3], counts: counts([L1, 1]), perListener: 2 })).toMatchObject({ listenerArn: L2 });
    expect(choosePlacement({ listeners: [L1, L2, L3], counts: counts([L1, 1], [L2, 1]), perListener: 2 })).toMatchObject({
      listenerArn: L3,
    });
    expect(choosePlacement({ listeners: [L1, L2, L3], counts: counts([L1, 5], [L2, 3], [L3, 4]), perListener: 90 })).toMatchObject({
      listenerArn: L2,
    });
  });

  it("a full listener is passed over even when it would be first, and a newly added listener takes the next tenants", () => {
    expect(choosePlacement({ listeners: [L1, L2], counts: counts([L1, 2], [L2, 1]), perListener: 2 })).toMatchObject({ listenerArn: L2 });
    // L3 appended to a full pool: the only one with room.
    expect(choosePlacement({ listeners: [L1, L2, L3], counts: counts([L1, 2], [L2, 2]), perListener: 2 })).toMatchObject({
      listenerArn: L3,
      capacity: 2,
    });
  });

  it("listeners to skip (their priorities are all taken) are not chosen", () => {
    expect(choosePlacement({ listeners: [L1, L2], counts: counts(), perListener: 2, skip: new Set([L1]) })).toMatchObject({
      listenerArn: L2,
    });
  });

  it("every listener full: no placement, and the message says how many, the bound, and to add a listener", () => {
    const choice = choosePlacement({ listeners: [L1, L2], counts: counts([L1, 2], [L2, 3]), perListener: 2 });
    expect(choice).toEqual({
      kind: "full",
      message:
        "all 2 listeners hold 2 tenants (TENANTS_PER_LISTENER); add a listener to LISTENER_ARNS (an ALB holds at most 100 target groups)",
    });
    expect(listenersFullMessage(1, 90)).toMatch(/^the only listener holds 90 tenants \(TENANTS_PER_LISTENER\); add a listener/);
  });

  it("the first listener's ALB also holds the pool's target group: it takes at most 99", () => {
    expect(capacityOf(0, 100)).toBe(99);
    expect(capacityOf(1, 100)).toBe(100);
    expect(capacityOf(0, 90)).toBe(90);
    expect(choosePlacement({ listeners: [L1], counts: counts([L1, 99]), perListener: 100 }).kind).toBe("full");
    expect(choosePlacement({ listeners: [L1, L2], counts: counts([L1, 99], [L2, 99]), perListener: 100 })).toMatchObject({
      listenerArn: L2,
    });
  });
});
