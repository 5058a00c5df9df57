import { describe, expect, it } from "vitest";
import { decide, type Situation } from "../../src/operator/status-policy.js";
import type { Plan } from "../../src/tiers/model.js";
import type { TenantSpec } from "../../src/tenants/record.js";

const spec: TenantSpec = {
  tenantId: "t1",
  tier: "advanced",
  tenantName: "Acme",
  tenantRegistrationId: "reg-1",
  sbtaws_active: true,
  suspended: false,
  apps: {},
};
const converged: Plan = { actions: [], waitingFor: [], problems: [], converged: true };
const rolling: Plan = { actions: [], waitingFor: ["orders: 0/1 running"], problems: [], converged: false };
const broken: Plan = { actions: [], waitingFor: [], problems: ["orders: rollout FAILED: tasks failed to start"], converged: false };
const now = new Date("2026-11-27T10:00:00Z");
const planned = (plan: Plan, s: TenantSpec = spec): Situation => ({
  kind: "planned",
  spec: s,
  plan,
  arns: { serviceArns: [], taskDefinitionArns: [] },
});
const types = (d: ReturnType<typeof decide>) => d.events.map((e) => e.detailType);

describe("decide", () => {
  it("announces provisionSuccess once per spec hash", () => {
    const first = decide({ tenantId: "t1", specHash: "h1", previous: undefined, now }, planned(converged));
    expect(first.status.phase).toBe("Ready");
    expect(types(first)).toContain("sbt_aws_provisionSuccess");
    const success = first.events.find((e) => e.detailType === "sbt_aws_provisionSuccess");
    expect(success?.detail).toMatchObject({
      tenantId: "t1",
      tenantRegistrationId: "reg-1",
      specHash: "h1",
      jobOutput: { tenantRegistrationData: { registrationStatus: "Created" } },
    });

    const again = decide({ tenantId: "t1", specHash: "h1", previous: first.status, now }, planned(converged));
    expect(again.events).toEqual([]);
    expect(again.changed).toBe(false);

    const newSpec = decide({ tenantId: "t1", specHash: "h2", previous: first.status, now }, planned(converged));
    expect(types(newSpec)).toEqual(["sbt_aws_provisionSuccess"]);
  });

  it("reports an invalid record as Failed with the message and a failure event", () => {
    const d = decide(
      { tenantId: "t1", specHash: "h1", previous: undefined, now },
      { kind: "invalid", message: "tier: tier must be basic, advanced or premium", registrationId: "reg-9" },
    );
    expect(d.status.phase).toBe("Failed");
    expect(d.status.message).toContain("tier must be basic");
    const failure = d.events.find((e) => e.detailType === "sbt_aws_provisionFailure");
    expect(failure?.detail.jobOutput.tenantRegistrationData.registrationStatus).toBe("Failed");
    expect(failure?.detail.reason).toContain("tier");
    expect(failure?.detail.tenantRegistrationId).toBe("reg-9");
  });

  it("is Provisioning while waiting and Degraded with a failure event on a problem", () => {
    const p = decide({ tenantId: "t1", specHash: "h1", previous: undefined, now }, planned(rolling));
    expect(p.status.phase).toBe("Provisioning");
    expect(types(p)).toEqual(["tenantStatusChanged"]);
    const d = decide({ tenantId: "t1", specHash: "h1", previous: p.status, now }, planned(broken));
    expect(d.status.phase).toBe("Degraded");
    expect(types(d)).toContain("sbt_aws_provisionFailure");
    expect(d.status.message).toContain("rollout FAILED");
  });

  it("announces deprovisioning outcomes for sbtaws_active=false", () => {
    const off = { ...spec, sbtaws_active: false };
    const going = decide({ tenantId: "t1", specHash: "h3", previous: undefined, now }, planned(rolling, off));
    expect(going.status.phase).toBe("Deprovisioning");
    const gone = decide({ tenantId: "t1", specHash: "h3", previous: going.status, now }, planned(converged, off));
    expect(gone.status.phase).toBe("Deprovisioned");
    expect(types(gone)).toContain("sbt_aws_deprovisionSuccess");
    const blocked = decide({ tenantId: "t1", specHash: "h3", previous: going.status, now }, planned(broken, off));
    expect(types(blocked)).toContain("sbt_aws_deprovisionFailure");
  });

  it("keeps lastTransitionTime of unchanged conditions and ignores timestamps for change detection", () => {
    const first = decide({ tenantId: "t1", specHash: "h1", previous: undefined, now }, planned(converged));
    const later = new Date(now.getTime() + 60_000);
    const second = decide({ tenantId: "t1", specHash: "h1", previous: first.status, now: later }, planned(converged));
    expect(second.changed).toBe(false);
    expect(second.status.conditions.find((c) => c.type === "Ready")?.lastTransitionTime).toBe(now.toISOString());
  });

  it("remembers the events it sends in status.recentEvents, oldest first, bounded, carried over when none are sent", () => {
    const first = decide({ tenantId: "t1", specHash: "h1", previous: undefined, now }, planned(rolling));
    expect(first.status.recentEvents).toEqual([
      { detailType: "tenantStatusChanged", at: now.toISOString(), reason: "New -> Provisioning: orders: 0/1 running" },
    ]);
    const later = new Date(now.getTime() + 60_000);
    const ready = decide({ tenantId: "t1", specHash: "h1", previous: first.status, now: later }, planned(converged));
    // Exactly the events of this decision were added, in the order they are sent.
    expect(ready.status.recentEvents?.map((e) => [e.detailType, e.at])).toEqual([
      ["tenantStatusChanged", now.toISOString()],
      ["sbt_aws_provisionSuccess", later.toISOString()],
      ["tenantStatusChanged", later.toISOString()],
    ]);
    expect(ready.status.recentEvents?.[1]?.reason).toBe("all services steady");
    // Nothing sent: the list is carried over as it was, and the status is unchanged.
    const quiet = decide(
      { tenantId: "t1", specHash: "h1", previous: ready.status, now: new Date(later.getTime() + 60_000) },
      planned(converged),
    );
    expect(quiet.events).toEqual([]);
    expect(quiet.status.recentEvents).toEqual(ready.status.recentEvents);
    expect(quiet.changed).toBe(false);

    // Many transitions later only the last 10 are kept, and a long reason is cut.
    let status = ready.status;
    for (let i = 0; i < 8; i++) {
      const at = new Date(later.getTime() + (i + 2) * 60_000);
      const failing: Plan = { ...broken, problems: [`x${i} `.repeat(100)] };
      status = decide(
        { tenantId: "t1", specHash: `h${i + 2}`, previous: status, now: at },
        planned(i % 2 === 0 ? failing : converged),
      ).status;
    }
    expect(status.recentEvents).toHaveLength(10);
    const last = status.recentEvents?.[9];
    expect(last?.at).toBe(new Date(later.getTime() + 9 * 60_000).toISOString());
    expect(status.recentEvents?.every((e) => (e.reason?.length ?? 0) <= 200)).toBe(true);
    expect(status.recentEvents?.some((e) => e.reason?.length === 200)).toBe(true);
  });
});
