import { describe, expect, it } from "vitest";
import { decide, failureStatus, type Situation } from "../../src/operator/status-policy.js";
import type { Plan } from "../../src/tiers/model.js";
import type { TenantSpec } from "../../src/tenants/record.js";
import type { LastError } from "../../src/tenants/status.js";

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

  it("sets phaseSince when the phase changes and keeps it while the phase holds", () => {
    const t1 = new Date(now.getTime() + 60_000);
    const t2 = new Date(now.getTime() + 120_000);
    const p = decide({ tenantId: "t1", specHash: "h1", previous: undefined, now }, planned(rolling));
    expect(p.status.phaseSince).toBe(now.toISOString());
    const still = decide({ tenantId: "t1", specHash: "h1", previous: p.status, now: t1 }, planned(rolling));
    expect(still.status.phaseSince).toBe(now.toISOString());
    expect(still.changed).toBe(false);
    const ready = decide({ tenantId: "t1", specHash: "h1", previous: still.status, now: t2 }, planned(converged));
    expect(ready.status.phaseSince).toBe(t2.toISOString());
    // A status written before phaseSince existed starts counting at its next write (one write).
    const { phaseSince: _gone, ...old } = ready.status;
    const upgraded = decide({ tenantId: "t1", specHash: "h1", previous: old, now: t2 }, planned(converged));
    expect(upgraded.status.phaseSince).toBe(t2.toISOString());
    expect(upgraded.changed).toBe(true);
  });

  const lastError: LastError = {
    message: "Rate exceeded",
    kind: "transient",
    type: "ThrottlingException",
    at: now.toISOString(),
    retries: 2,
    nextAttemptAt: new Date(now.getTime() + 2000).toISOString(),
  };

  it("writes the reconcile's failure as lastError, and clears it once a reconcile gets through", () => {
    const failing = decide({ tenantId: "t1", specHash: "h1", previous: undefined, now, lastError }, { kind: "error", spec, message: "x" });
    expect(failing.status).toMatchObject({ phase: "Degraded", lastError });
    const again = decide(
      { tenantId: "t1", specHash: "h1", previous: failing.status, now, lastError: { ...lastError, retries: 3 } },
      { kind: "error", spec, message: "x" },
    );
    expect(again.changed).toBe(true); // a further failure is worth its write
    const ok = decide({ tenantId: "t1", specHash: "h1", previous: again.status, now }, planned(converged));
    expect(ok.status).not.toHaveProperty("lastError");
    expect(ok.changed).toBe(true);
  });

  it("a failure below the Degraded threshold changes nothing but lastError; a tenant never reported is Pending", () => {
    const ready = decide({ tenantId: "t1", specHash: "h1", previous: undefined, now }, planned(converged)).status;
    // Even with a new spec hash: nothing of the new spec is observed, nothing announced.
    expect(failureStatus({ specHash: "h2", previous: ready, now }, lastError)).toEqual({ ...ready, lastError });
    const fresh = failureStatus({ specHash: "h1", previous: undefined, now }, lastError);
    expect(fresh).toMatchObject({
      phase: "Pending",
      observedSpecHash: "h1",
      phaseSince: now.toISOString(),
      lastError,
      message: "first reconcile failed; retrying: ThrottlingException: Rate exceeded",
    });
    expect(fresh.conditions.map((c) => `${c.type}=${c.status}`)).toEqual(["Valid=True", "Ready=Unknown"]);
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
