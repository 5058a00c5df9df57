import { describe, expect, it } from "vitest";
import type { Fence } from "../../src/ports.js";
import {
  execute,
  observeAndDecide,
  plannedCall,
  type Accepted,
  type External,
  type Outcome,
  type Refused,
  type Step,
  type Unchanged,
} from "../../src/reconciler/external.js";

interface Want {
  readonly name: string;
  readonly size: number;
}
interface Seen {
  readonly id: string;
  readonly size: number;
}

/** A fake kind that records every call and answers what the case scripts. */
class FakeExternal implements External<Want, Seen> {
  readonly calls: string[] = [];
  constructor(
    readonly answers: {
      readonly observe?: Seen | undefined;
      readonly create?: Accepted | Refused;
      readonly update?: Accepted | Unchanged | Refused;
      readonly delete?: Accepted | Refused;
    } = {},
  ) {}
  async observe(key: string, desired?: Want): Promise<Seen | undefined> {
    this.calls.push(`observe ${key} ${desired?.size ?? "-"}`);
    return this.answers.observe;
  }
  async create(desired: Want, fence: Fence): Promise<Accepted | Refused> {
    fence.assertHeld();
    this.calls.push(`create ${desired.name}`);
    return this.answers.create ?? { kind: "accepted", status: "CREATING" };
  }
  async update(desired: Want, observed: Seen, fence: Fence): Promise<Accepted | Unchanged | Refused> {
    fence.assertHeld();
    this.calls.push(`update ${observed.id} ${observed.size}->${desired.size}`);
    return this.answers.update ?? { kind: "accepted", status: "UPDATING" };
  }
  async delete(observed: Seen, fence: Fence): Promise<Accepted | Refused> {
    fence.assertHeld();
    this.calls.push(`delete ${observed.id}`);
    return this.answers.delete ?? { kind: "accepted", status: "DELETING" };
  }
}

const held: Fence = { assertHeld() {} };
const want: Want = { name: "w", size: 2 };
const seen: Seen = { id: "id-1", size: 1 };

describe("execute", () => {
  it.each<{
    reason: string;
    step: Step<Want, Seen>;
    answers?: ConstructorParameters<typeof FakeExternal>[0];
    outcome: Outcome<Seen>;
    calls: string[];
  }>([
    {
      reason: "create accepted: in progress",
      step: { kind: "create", desired: want, reason: "absent" },
      outcome: { kind: "inProgress", status: "CREATING" },
      calls: ["create w"],
    },
    {
      reason: "create refused: terminal failure with the service's reason",
      step: { kind: "create", desired: want, reason: "absent" },
      answers: { create: { kind: "refused", reason: "bad template" } },
      outcome: { kind: "failed", reason: "bad template", terminal: true, resource: undefined },
      calls: ["create w"],
    },
    {
      reason: "update accepted: in progress",
      step: { kind: "update", desired: want, observed: seen, reason: "size" },
      outcome: { kind: "inProgress", status: "UPDATING" },
      calls: ["update id-1 1->2"],
    },
    {
      reason: "update with nothing to change: ready with what was observed",
      step: { kind: "update", desired: want, observed: seen, reason: "size" },
      answers: { update: { kind: "unchanged" } },
      outcome: { kind: "ready", observed: seen },
      calls: ["update id-1 1->2"],
    },
    {
      reason: "update refused: terminal failure",
      step: { kind: "update", desired: want, observed: seen, reason: "size" },
      answers: { update: { kind: "refused", reason: "no" } },
      outcome: { kind: "failed", reason: "no", terminal: true, resource: undefined },
      calls: ["update id-1 1->2"],
    },
    {
      reason: "delete of an unwanted resource: in progress",
      step: { kind: "delete", observed: seen, reason: "unwanted" },
      outcome: { kind: "inProgress", status: "DELETING" },
      calls: ["delete id-1"],
    },
    {
      reason: "delete that recovers a broken resource: its cause reported as a retryable failure",
      step: { kind: "delete", observed: seen, reason: "broken", recovering: { reason: "Part: broke", resource: "Part" } },
      outcome: { kind: "failed", reason: "Part: broke", terminal: false, resource: "Part" },
      calls: ["delete id-1"],
    },
    {
      reason: "delete refused: terminal failure",
      step: { kind: "delete", observed: seen, reason: "unwanted" },
      answers: { delete: { kind: "refused", reason: "protected" } },
      outcome: { kind: "failed", reason: "protected", terminal: true, resource: undefined },
      calls: ["delete id-1"],
    },
    {
      reason: "wait: in progress with the resource's status, no call",
      step: { kind: "wait", reason: "busy", status: "BUSY" },
      outcome: { kind: "inProgress", status: "BUSY" },
      calls: [],
    },
    {
      reason: "fail: the failure as decided, no call",
      step: { kind: "fail", reason: "stuck", terminal: true, resource: "R" },
      outcome: { kind: "failed", reason: "stuck", terminal: true, resource: "R" },
      calls: [],
    },
    {
      reason: "ready: no call",
      step: { kind: "ready", observed: seen, reason: "as desired" },
      outcome: { kind: "ready", observed: seen },
      calls: [],
    },
    { reason: "gone: no call", step: { kind: "gone", reason: "absent" }, outcome: { kind: "gone" }, calls: [] },
  ])("$reason", async ({ step, answers, outcome, calls }) => {
    const external = new FakeExternal(answers);
    expect(await execute(external, step, held)).toEqual(outcome);
    expect(external.calls).toEqual(calls);
  });

  it("passes the fence to the write, so a lost lease stops it", async () => {
    const external = new FakeExternal();
    const lost: Fence = {
      assertHeld() {
        throw new Error("lease lost");
      },
    };
    await expect(execute(external, { kind: "create", desired: want, reason: "absent" }, lost)).rejects.toThrow("lease lost");
    expect(external.calls).toEqual([]);
  });

  it("lets the External's errors through for the caller's backoff", async () => {
    const external = new FakeExternal();
    external.delete = async () => {
      throw Object.assign(new Error("Rate exceeded"), { name: "Throttling" });
    };
    await expect(execute(external, { kind: "delete", observed: seen, reason: "x" }, held)).rejects.toMatchObject({ name: "Throttling" });
  });
});

describe("observeAndDecide", () => {
  it("observes with the desired state and hands the observation to the decision", async () => {
    const external = new FakeExternal({ observe: seen });
    const decided: [Want | undefined, Seen | undefined][] = [];
    const { observed, step } = await observeAndDecide(external, "k", want, (d, o) => {
      decided.push([d, o]);
      return { kind: "update", desired: want, observed: seen, reason: "size 1 -> 2" };
    });
    expect(external.calls).toEqual(["observe k 2"]);
    expect(decided).toEqual([[want, seen]]);
    expect(observed).toBe(seen);
    expect(step.kind).toBe("update");
  });

  it("makes no write", async () => {
    const external = new FakeExternal();
    await observeAndDecide(external, "k", want, () => ({ kind: "create", desired: want, reason: "absent" }));
    await observeAndDecide(external, "k", undefined, () => ({ kind: "gone", reason: "absent" }));
    expect(external.calls).toEqual(["observe k 2", "observe k -"]);
  });
});

describe("plannedCall", () => {
  const names = { create: "svc:Create", update: "svc:Update", delete: "svc:Delete" };
  it.each<{ reason: string; step: Step<Want, Seen>; want: ReturnType<typeof plannedCall> }>([
    {
      reason: "create",
      step: { kind: "create", desired: want, reason: "absent" },
      want: { call: "svc:Create", target: "t", reason: "absent" },
    },
    {
      reason: "update",
      step: { kind: "update", desired: want, observed: seen, reason: "size 1 -> 2" },
      want: { call: "svc:Update", target: "t", reason: "size 1 -> 2" },
    },
    {
      reason: "delete",
      step: { kind: "delete", observed: seen, reason: "unwanted" },
      want: { call: "svc:Delete", target: "t", reason: "unwanted" },
    },
    {
      reason: "recovering delete",
      step: { kind: "delete", observed: seen, reason: "broken: delete, then create", recovering: { reason: "x" } },
      want: { call: "svc:Delete", target: "t", reason: "broken: delete, then create" },
    },
    { reason: "wait plans no call", step: { kind: "wait", reason: "busy", status: "BUSY" }, want: undefined },
    { reason: "fail plans no call", step: { kind: "fail", reason: "stuck", terminal: true }, want: undefined },
    { reason: "ready plans no call", step: { kind: "ready", observed: seen, reason: "as desired" }, want: undefined },
    { reason: "gone plans no call", step: { kind: "gone", reason: "absent" }, want: undefined },
  ])("$reason", ({ step, want: expected }) => {
    expect(plannedCall(step, "t", names)).toEqual(expected);
  });
});
