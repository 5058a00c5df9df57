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
});
