import {
  CreateHttpNamespaceCommand,
  DeleteNamespaceCommand,
  DuplicateRequest,
  GetNamespaceCommand,
  GetOperationCommand,
  ListNamespacesCommand,
  ListTagsForResourceCommand,
  NamespaceNotFound,
  ResourceInUse,
  ServiceDiscoveryClient,
} from "@aws-sdk/client-servicediscovery";
import { mockClient } from "aws-sdk-client-mock";
import { beforeEach, describe, expect, it } from "vitest";
import { LeaseLostError, UnmanagedResourceError, type Fence } from "../../src/ports.js";
import { CloudMapNamespaces, requestIdFor } from "../../src/providers/cloudmap-namespaces.js";
import { stringContaining } from "../support/matchers.js";

const sdMock = mockClient(ServiceDiscoveryClient);
let namespaces: CloudMapNamespaces;

beforeEach(() => {
  sdMock.reset();
  namespaces = new CloudMapNamespaces(new ServiceDiscoveryClient({ region: "us-east-1" }));
});

const fence = (): Fence & { calls: number } => {
  const f = { calls: 0, assertHeld: () => void f.calls++ };
  return f;
};
const lost: Fence = {
  assertHeld: () => {
    throw new LeaseLostError();
  },
};
const arnOf = (id: string) => `arn:aws:servicediscovery:us-east-1:123456789012:namespace/${id}`;
const MANAGED = [{ Key: "managed-by", Value: "ecs-tenant-operator" }];

function listed(...items: { id: string; name: string; type?: "HTTP" | "DNS_PRIVATE"; created?: number }[]) {
  sdMock.on(ListNamespacesCommand).resolves({
    Namespaces: items.map((n) => ({
      Id: n.id,
      Arn: arnOf(n.id),
      Name: n.name,
      Type: n.type ?? "HTTP",
      CreateDate: new Date(n.created ?? 0),
    })),
  });
}

describe("CloudMapNamespaces.ensure", () => {
  it("creates an absent namespace with managed-by, the caller's tags and a request id derived from the name, and reports it in progress", async () => {
    listed();
    sdMock.on(CreateHttpNamespaceCommand).resolves({ OperationId: "op-1" });
    const f = fence();
    const result = await namespaces.ensure("saas-acme-0123456789ab", { "tenant-id": "acme", tier: "premium" }, f);
    expect(result).toEqual({ kind: "inProgress", reason: stringContaining("op-1") });
    const input = sdMock.commandCalls(CreateHttpNamespaceCommand)[0]?.args[0].input;
    expect(input).toMatchObject({ Name: "saas-acme-0123456789ab", CreatorRequestId: requestIdFor("saas-acme-0123456789ab") });
    expect(input?.Tags).toEqual([
      { Key: "managed-by", Value: "ecs-tenant-operator" },
      { Key: "tenant-id", Value: "acme" },
      { Key: "tier", Value: "premium" },
    ]);
    expect(f.calls).toBe(1);
    // The list asks Cloud Map for exactly that name among HTTP namespaces.
    expect(sdMock.commandCalls(ListNamespacesCommand)[0]?.args[0].input.Filters).toEqual([
      { Name: "NAME", Values: ["saas-acme-0123456789ab"], Condition: "EQ" },
      { Name: "TYPE", Values: ["HTTP"], Condition: "EQ" },
    ]);
  });

  it("derives the same request id for the same name, a different one for another, within Cloud Map's 64 characters", () => {
    expect(requestIdFor("a")).toBe(requestIdFor("a"));
    expect(requestIdFor("a")).not.toBe(requestIdFor("b"));
    expect(requestIdFor("a", "op")).not.toBe(requestIdFor("a"));
    expect(requestIdFor("x".repeat(1024)).length).toBeLessThanOrEqual(64);
  });

  it("is ready once the namespace is listed and managed, with its id and arn, making no write", async () => {
    listed(
      { id: "ns-other", name: "saas-acme-x", type: "DNS_PRIVATE" },
      { id: "ns-1", name: "saas-acme" },
      { id: "ns-2", name: "saas-acme-longer" },
    );
    sdMock.on(ListTagsForResourceCommand).resolves({ Tags: MANAGED });
    const f = fence();
    expect(await namespaces.ensure("saas-acme", {}, f)).toEqual({
      kind: "ready",
      namespace: { name: "saas-acme", id: "ns-1", arn: arnOf("ns-1") },
    });
    expect(sdMock.commandCalls(CreateHttpNamespaceCommand)).toHaveLength(0);
    expect(f.calls).toBe(0);
    // Tags are read once per namespace, not on every reconcile.
    await namespaces.ensure("saas-acme", {}, f);
    expect(sdMock.commandCalls(ListTagsForResourceCommand)).toHaveLength(1);
  });

  it("follows ListNamespaces pages", async () => {
    sdMock
      .on(ListNamespacesCommand)
      .resolvesOnce({ Namespaces: [], NextToken: "page-2" })
      .resolvesOnce({ Namespaces: [{ Id: "ns-9", Arn: arnOf("ns-9"), Name: "n", Type: "HTTP" }] });
    sdMock.on(ListTagsForResourceCommand).resolves({ Tags: MANAGED });
    expect(await namespaces.ensure("n", {}, fence())).toMatchObject({ kind: "ready", namespace: { id: "ns-9" } });
    expect(sdMock.commandCalls(ListNamespacesCommand)[1]?.args[0].input.NextToken).toBe("page-2");
  });

  it("refuses a namespace of that name that it does not manage", async () => {
    listed({ id: "ns-1", name: "saas-acme" });
    sdMock.on(ListTagsForResourceCommand).resolves({ Tags: [{ Key: "owner", Value: "someone" }] });
    await expect(namespaces.ensure("saas-acme", {}, fence())).rejects.toBeInstanceOf(UnmanagedResourceError);
  });

  it("writes nothing without the lease", async () => {
    listed();
    await expect(namespaces.ensure("saas-acme", {}, lost)).rejects.toBeInstanceOf(LeaseLostError);
    expect(sdMock.commandCalls(CreateHttpNamespaceCommand)).toHaveLength(0);
  });

  it.each([
    { reason: "the first request's operation still runs", status: "PENDING", exists: true, renews: false },
    { reason: "created but not listed yet", status: "SUCCESS", exists: true, renews: false },
    { reason: "the id was spent on a namespace since deleted", status: "SUCCESS", exists: false, renews: true },
    { reason: "the first request's operation failed", status: "FAIL", exists: false, renews: true },
  ])("on DuplicateRequest, when $reason: renews the request id = $renews", async ({ status, exists, renews }) => {
    listed();
    sdMock
      .on(CreateHttpNamespaceCommand, { CreatorRequestId: requestIdFor("saas-acme") })
      .rejects(new DuplicateRequest({ message: "duplicate", DuplicateOperationId: "op-old", $metadata: { httpStatusCode: 400 } }));
    sdMock.on(CreateHttpNamespaceCommand, { CreatorRequestId: requestIdFor("saas-acme", "op-old") }).resolves({ OperationId: "op-new" });
    sdMock.on(GetOperationCommand).resolves({ Operation: { Id: "op-old", Status: status as "PENDING", Targets: { NAMESPACE: "ns-old" } } });
    if (exists) sdMock.on(GetNamespaceCommand).resolves({ Namespace: { Id: "ns-old" } });
    else sdMock.on(GetNamespaceCommand).rejects(new NamespaceNotFound({ message: "gone", $metadata: { httpStatusCode: 404 } }));
    const result = await namespaces.ensure("saas-acme", {}, fence());
    expect(result.kind).toBe("inProgress");
    const ids = sdMock.commandCalls(CreateHttpNamespaceCommand).map((c) => c.args[0].input.CreatorRequestId);
    expect(ids).toEqual(renews ? [requestIdFor("saas-acme"), requestIdFor("saas-acme", "op-old")] : [requestIdFor("saas-acme")]);
    if (renews) expect(result).toMatchObject({ reason: stringContaining("op-new") });
  });
});

describe("CloudMapNamespaces.remove", () => {
  it("is gone when no namespace has the name, making no write", async () => {
    listed({ id: "ns-1", name: "other" });
    expect(await namespaces.remove("saas-acme", fence())).toEqual({ kind: "gone" });
    expect(sdMock.commandCalls(DeleteNamespaceCommand)).toHaveLength(0);
  });

  it("deletes a managed namespace by id and reports the deletion in progress", async () => {
    listed({ id: "ns-1", name: "saas-acme" });
    sdMock.on(ListTagsForResourceCommand).resolves({ Tags: MANAGED });
    sdMock.on(DeleteNamespaceCommand).resolves({ OperationId: "op-d" });
    const f = fence();
    expect(await namespaces.remove("saas-acme", f)).toEqual({ kind: "inProgress", reason: stringContaining("op-d") });
    expect(sdMock.commandCalls(DeleteNamespaceCommand)[0]?.args[0].input).toEqual({ Id: "ns-1" });
    expect(f.calls).toBe(1);
  });

  it("reports services still registered (ResourceInUse) as in progress, with Cloud Map's reason", async () => {
    listed({ id: "ns-1", name: "saas-acme" });
    sdMock.on(ListTagsForResourceCommand).resolves({ Tags: MANAGED });
    sdMock
      .on(DeleteNamespaceCommand)
      .rejects(new ResourceInUse({ message: "Namespace has associated services", $metadata: { httpStatusCode: 400 } }));
    expect(await namespaces.remove("saas-acme", fence())).toEqual({
      kind: "inProgress",
      reason: stringContaining("Namespace has associated services"),
    });
  });

  it("never deletes an unmanaged namespace", async () => {
    listed({ id: "ns-1", name: "saas-acme" });
    sdMock.on(ListTagsForResourceCommand).resolves({ Tags: [] });
    await expect(namespaces.remove("saas-acme", fence())).rejects.toBeInstanceOf(UnmanagedResourceError);
    expect(sdMock.commandCalls(DeleteNamespaceCommand)).toHaveLength(0);
  });

  it("treats a namespace deleted meanwhile as gone", async () => {
    listed({ id: "ns-1", name: "saas-acme" });
    sdMock.on(ListTagsForResourceCommand).resolves({ Tags: MANAGED });
    sdMock.on(DeleteNamespaceCommand).rejects(new NamespaceNotFound({ message: "gone", $metadata: { httpStatusCode: 404 } }));
    expect(await namespaces.remove("saas-acme", fence())).toEqual({ kind: "gone" });
  });
});
