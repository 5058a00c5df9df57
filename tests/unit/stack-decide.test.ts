import { describe, expect, it } from "vitest";
import { decideStack, needsLastFailure, type DesiredStack, type ObservedStack, type StackFailure } from "../../src/tiers/stack-decide.js";

const HASH = "a".repeat(64);
const OTHER = "b".repeat(64);
const desired: DesiredStack = {
  stackName: "saas-acme",
  templateBody: "{}",
  parameters: { VpcId: "vpc-1" },
  tags: { "managed-by": "ecs-tenant-operator", "tenant-id": "acme", tier: "advanced" },
  hash: HASH,
};

function observed(
  status: string,
  o: { hashTag?: string | undefined; managed?: boolean; lastFailure?: StackFailure; noUpdatesFor?: string; statusReason?: string } = {},
): ObservedStack {
  const hashTag = "hashTag" in o ? o.hashTag : HASH;
  return {
    stackName: "saas-acme",
    stackId: "arn:aws:cloudformation:us-east-1:123456789012:stack/saas-acme/1",
    status,
    statusReason: o.statusReason,
    outputs: { TaskRoleArn: "arn:role" },
    hashTag,
    tags: {
      ...(o.managed === false ? {} : { "managed-by": "ecs-tenant-operator" }),
      "tenant-id": "acme",
      ...(hashTag !== undefined ? { "template-hash": hashTag } : {}),
    },
    lastFailure: o.lastFailure,
    noUpdatesFor: o.noUpdatesFor,
  };
}

const createFailed: StackFailure = { reason: "TargetGroup: name taken", resource: "TargetGroup", hashPrefix: HASH.slice(0, 16) };
const deleteFailed: StackFailure = { reason: "TargetGroup: in use by a listener", resource: "TargetGroup", hashPrefix: undefined };
const thisUpdateFailed: StackFailure = {
  reason: "TaskRole: Policy document is malformed",
  resource: "TaskRole",
  hashPrefix: HASH.slice(0, 16),
};
const olderUpdateFailed: StackFailure = { ...thisUpdateFailed, hashPrefix: OTHER.slice(0, 16) };
const foreignUpdateFailed: StackFailure = { ...thisUpdateFailed, hashPrefix: undefined };

const IN_PROGRESS = [
  "CREATE_IN_PROGRESS",
  "UPDATE_IN_PROGRESS",
  "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS",
  "UPDATE_ROLLBACK_IN_PROGRESS",
  "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS",
  "ROLLBACK_IN_PROGRESS",
  "DELETE_IN_PROGRESS",
  "REVIEW_IN_PROGRESS",
  "IMPORT_IN_PROGRESS",
];

describe("decideStack with a desired stack", () => {
  const o = (status: string, extra: Parameters<typeof observed>[1] = {}) => observed(status, extra);
  it.each([
    { reason: "an absent stack is created", observed: undefined, want: { kind: "create", desired } },
    {
      reason: "someone else's stack under our name is never touched",
      observed: o("CREATE_COMPLETE", { managed: false, hashTag: OTHER }),
      want: { kind: "fail", terminal: true, reason: "stack saas-acme exists without managed-by=ecs-tenant-operator; not touching it" },
    },
    {
      reason: "an unmanaged stack fails even when it is busy or dead",
      observed: o("ROLLBACK_COMPLETE", { managed: false }),
      want: { kind: "fail", terminal: true },
    },
    ...IN_PROGRESS.map((status) => ({
      reason: `${status}: wait for CloudFormation`,
      observed: o(status, { hashTag: OTHER }),
      want: { kind: "wait", status },
    })),
    ...["ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "CREATE_FAILED"].map((status) => ({
      reason: `${status}: a dead create is deleted, reported as a retryable failure, and created again once gone`,
      observed: o(status, { lastFailure: createFailed }),
      want: {
        kind: "delete",
        observed: o(status, { lastFailure: createFailed }),
        recovering: { reason: "TargetGroup: name taken", resource: "TargetGroup" },
      },
    })),
    {
      reason: "a dead create without a resource event reports the stack's own status",
      observed: o("ROLLBACK_COMPLETE", { statusReason: "The following resource(s) failed to create: [X]." }),
      want: {
        kind: "delete",
        recovering: { reason: "stack is ROLLBACK_COMPLETE: The following resource(s) failed to create: [X].", resource: undefined },
      },
    },
    {
      reason: "DELETE_FAILED: the delete is retried, reported as retryable",
      observed: o("DELETE_FAILED", { lastFailure: deleteFailed }),
      want: { kind: "delete", recovering: { reason: "TargetGroup: in use by a listener", resource: "TargetGroup" } },
    },
    ...["UPDATE_ROLLBACK_FAILED", "IMPORT_ROLLBACK_FAILED"].map((status) => ({
      reason: `${status}: a stuck rollback is a person's call, terminal`,
      observed: o(status, { hashTag: OTHER, lastFailure: thisUpdateFailed }),
      want: { kind: "fail", terminal: true, reason: "TaskRole: Policy document is malformed", resource: "TaskRole" },
    })),
    ...["CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE", "IMPORT_ROLLBACK_COMPLETE"].map((status) => ({
      reason: `${status} at the desired hash is ready`,
      observed: o(status),
      want: { kind: "ready", observed: o(status) },
    })),
    {
      reason: "a changed hash is updated",
      observed: o("CREATE_COMPLETE", { hashTag: OTHER }),
      want: { kind: "update", desired, observed: o("CREATE_COMPLETE", { hashTag: OTHER }) },
    },
    {
      reason: "a stack without a hash tag (older operator) is updated",
      observed: o("UPDATE_COMPLETE", { hashTag: undefined }),
      want: { kind: "update" },
    },
    { reason: "rolled back to exactly what is desired now: ready", observed: o("UPDATE_ROLLBACK_COMPLETE"), want: { kind: "ready" } },
    ...["UPDATE_ROLLBACK_COMPLETE", "UPDATE_FAILED"].map((status) => ({
      reason: `${status} after our update for this very hash failed: terminal, not resent`,
      observed: o(status, { hashTag: OTHER, lastFailure: thisUpdateFailed }),
      want: { kind: "fail", terminal: true, reason: "TaskRole: Policy document is malformed", resource: "TaskRole" },
    })),
    {
      reason: "UPDATE_ROLLBACK_COMPLETE after an update for an older hash: the new hash gets its own update",
      observed: o("UPDATE_ROLLBACK_COMPLETE", { hashTag: OTHER, lastFailure: olderUpdateFailed }),
      want: { kind: "update" },
    },
    {
      reason: "UPDATE_FAILED after someone else's update: ours is still tried",
      observed: o("UPDATE_FAILED", { hashTag: OTHER, lastFailure: foreignUpdateFailed }),
      want: { kind: "update" },
    },
    {
      reason: 'an update CloudFormation answered "No updates are to be performed" for is not sent again',
      observed: o("UPDATE_COMPLETE", { hashTag: OTHER, noUpdatesFor: HASH }),
      want: { kind: "ready" },
    },
    {
      reason: "the no-updates memory of another desired hash does not count",
      observed: o("UPDATE_COMPLETE", { hashTag: OTHER, noUpdatesFor: "c".repeat(64) }),
      want: { kind: "update" },
    },
    {
      reason: "a status we do not know is terminal, not guessed at",
      observed: o("SOMETHING_NEW"),
      want: { kind: "fail", terminal: true, reason: "stack saas-acme is in unexpected status SOMETHING_NEW" },
    },
  ])("$reason", ({ observed: seen, want }) => {
    const step = decideStack(desired, seen);
    expect(step).toMatchObject(want);
    expect(step.reason.length).toBeGreaterThan(0);
  });
});

describe("decideStack with no desired stack (removal)", () => {
  it.each<{ reason: string; observed: ObservedStack | undefined; want: object; recovering?: boolean }>([
    { reason: "absent: gone", observed: undefined, want: { kind: "gone" } },
    {
      reason: "complete: deleted",
      observed: observed("UPDATE_COMPLETE"),
      want: { kind: "delete", observed: observed("UPDATE_COMPLETE") },
      recovering: false,
    },
    {
      reason: "rolled back update: deleted",
      observed: observed("UPDATE_ROLLBACK_COMPLETE", { hashTag: OTHER }),
      want: { kind: "delete" },
      recovering: false,
    },
    {
      reason: "dead create: deleted, not reported as a failure",
      observed: observed("ROLLBACK_COMPLETE", { lastFailure: createFailed }),
      want: { kind: "delete" },
      recovering: false,
    },
    { reason: "stuck rollback: deleted", observed: observed("UPDATE_ROLLBACK_FAILED"), want: { kind: "delete" }, recovering: false },
    {
      reason: "DELETE_FAILED: deleted again, reported as retryable",
      observed: observed("DELETE_FAILED", { lastFailure: deleteFailed }),
      want: { kind: "delete", recovering: { reason: "TargetGroup: in use by a listener", resource: "TargetGroup" } },
      recovering: true,
    },
    ...["UPDATE_IN_PROGRESS", "DELETE_IN_PROGRESS", "CREATE_IN_PROGRESS"].map((status) => ({
      reason: `${status}: wait, then delete`,
      observed: observed(status),
      want: { kind: "wait", status },
    })),
    {
      reason: "unmanaged: never deleted",
      observed: observed("CREATE_COMPLETE", { managed: false }),
      want: { kind: "fail", terminal: true, reason: "stack saas-acme exists without managed-by=ecs-tenant-operator; not deleting it" },
    },
  ])("$reason", ({ observed: seen, want, recovering }) => {
    const step = decideStack(undefined, seen);
    expect(step).toMatchObject(want);
    // A removal reports a failure only when the delete itself failed before.
    if (recovering !== undefined) expect(step.kind === "delete" && step.recovering !== undefined).toBe(recovering);
    expect(step.reason.length).toBeGreaterThan(0);
  });
});

describe("needsLastFailure", () => {
  // Every status CloudFormation has, plus one it may add.
  const STATUSES = [
    ...IN_PROGRESS,
    "CREATE_COMPLETE",
    "CREATE_FAILED",
    "ROLLBACK_COMPLETE",
    "ROLLBACK_FAILED",
    "DELETE_FAILED",
    "UPDATE_COMPLETE",
    "UPDATE_FAILED",
    "UPDATE_ROLLBACK_COMPLETE",
    "UPDATE_ROLLBACK_FAILED",
    "IMPORT_COMPLETE",
    "IMPORT_ROLLBACK_COMPLETE",
    "IMPORT_ROLLBACK_FAILED",
    "SOMETHING_NEW",
  ];
  const variants = STATUSES.flatMap((status) =>
    [true, false].flatMap((managed) =>
      [HASH, OTHER, undefined].flatMap((hashTag) =>
        [undefined, HASH].flatMap((noUpdatesFor) => [desired, undefined].map((want) => ({ status, managed, hashTag, noUpdatesFor, want }))),
      ),
    ),
  );

  it("is true exactly when the last failure can change what decideStack does, so observe reads events only then", () => {
    let needed = 0;
    for (const v of variants) {
      const base = observed(v.status, {
        managed: v.managed,
        hashTag: v.hashTag,
        ...(v.noUpdatesFor !== undefined ? { noUpdatesFor: v.noUpdatesFor } : {}),
      });
      // The observation a step carries is left out: only the decision counts.
      const decision = (step: unknown) => JSON.stringify(step, (key, value: unknown) => (key === "observed" ? undefined : value));
      const without = decision(decideStack(v.want, base));
      const withFailure = decision(decideStack(v.want, { ...base, lastFailure: thisUpdateFailed }));
      const label = `${v.status} managed=${v.managed} hashTag=${v.hashTag?.[0]} noUpdatesFor=${v.noUpdatesFor?.[0]} desired=${v.want !== undefined}`;
      const { lastFailure: _, ...seen } = base;
      const needs = needsLastFailure(seen, v.want);
      if (needs) needed++;
      expect(needs, label).toBe(withFailure !== without);
    }
    // Not vacuous: some observations need the events, most do not.
    expect(needed).toBeGreaterThan(10);
    expect(needed).toBeLessThan(variants.length / 4);
  });

  it.each([
    { reason: "a healthy stack costs no event read", status: "CREATE_COMPLETE", hashTag: HASH, want: desired, needs: false },
    {
      reason: "a rollback to exactly what is wanted costs no event read",
      status: "UPDATE_ROLLBACK_COMPLETE",
      hashTag: HASH,
      want: desired,
      needs: false,
    },
    {
      reason: "a rollback away from what is wanted needs the failed update's hash",
      status: "UPDATE_ROLLBACK_COMPLETE",
      hashTag: OTHER,
      want: desired,
      needs: true,
    },
    {
      reason: "removing a dead create does not report why it died",
      status: "ROLLBACK_COMPLETE",
      hashTag: HASH,
      want: undefined,
      needs: false,
    },
    { reason: "a failed delete reports why", status: "DELETE_FAILED", hashTag: HASH, want: undefined, needs: true },
  ])("$reason", ({ status, hashTag, want, needs }) => {
    const { lastFailure: _, ...seen } = observed(status, { hashTag });
    expect(needsLastFailure(seen, want)).toBe(needs);
  });
});
