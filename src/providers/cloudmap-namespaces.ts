import { createHash } from "node:crypto";
import {
  CreateHttpNamespaceCommand,
  DeleteNamespaceCommand,
  GetNamespaceCommand,
  GetOperationCommand,
  ListNamespacesCommand,
  ListTagsForResourceCommand,
  type NamespaceSummary,
  type ServiceDiscoveryClient,
} from "@aws-sdk/client-servicediscovery";
import { UnmanagedResourceError, type Fence, type NamespacePort, type NamespaceRef } from "../ports.js";
import { isManaged, MANAGED_BY_KEY, MANAGED_BY_VALUE, type Tags } from "../tiers/model.js";
import { doing, errorName, messageOf, wrapAwsError } from "./aws-errors.js";

type EnsureResult = Awaited<ReturnType<NamespacePort["ensure"]>>;
type RemoveResult = Awaited<ReturnType<NamespacePort["remove"]>>;

/** Cloud Map accepts a CreatorRequestId of up to 64 characters. */
const REQUEST_ID_PREFIX = "ecs-tenant-operator-";

/**
 * NamespacePort on Cloud Map (SDK v3): the HTTP namespaces Service Connect
 * uses, one per silo tenant and one for the pool. Never waits: Cloud Map
 * creates and deletes namespaces asynchronously (an operation), so each call
 * makes at most one write and reports where the namespace stands.
 *
 * Idempotency, call by call:
 * - CreateHttpNamespace carries a CreatorRequestId derived from the name, so
 *   a retry after a crash or a lost answer is the same request, not a second
 *   namespace. Cloud Map keeps a spent id (DuplicateRequest) even after that
 *   namespace is deleted; then a re-creation uses an id derived from the name
 *   and the spent operation's id, as deterministic and fresh.
 * - DeleteNamespace: absent is success; ResourceInUse (services still
 *   registered, i.e. ECS has not finished deleting the tenant's services) is
 *   reported as in progress with Cloud Map's reason.
 *
 * Ownership: a namespace of the wanted name without managed-by is neither
 * used nor deleted (UnmanagedResourceError), as the ownership contract asks.
 */
export class CloudMapNamespaces implements NamespacePort {
  readonly #sd: ServiceDiscoveryClient;
  /** Namespace ARNs already seen managed: their tags are not read again (the tag is never removed by us). */
  readonly #managed = new Set<string>();

  constructor(sd: ServiceDiscoveryClient) {
    this.#sd = sd;
  }

  async ensure(name: string, tags: Readonly<Record<string, string>>, fence: Fence): Promise<EnsureResult> {
    const found = await this.#find(name);
    if (found !== undefined) {
      await this.#assertManaged(found);
      return { kind: "ready", namespace: found };
    }
    fence.assertHeld();
    return this.#create(name, { ...tags, [MANAGED_BY_KEY]: MANAGED_BY_VALUE }, requestIdFor(name), true);
  }

  /** The namespace if it exists; reads only (for `tenantctl plan`). */
  find(name: string): Promise<NamespaceRef | undefined> {
    return this.#find(name);
  }

  async remove(name: string, fence: Fence): Promise<RemoveResult> {
    const found = await this.#find(name);
    if (found === undefined) return { kind: "gone" };
    await this.#assertManaged(found);
    fence.assertHeld();
    try {
      const res = await this.#sd.send(new DeleteNamespaceCommand({ Id: found.id }));
      this.#managed.delete(found.arn);
      return { kind: "inProgress", reason: `deleting Cloud Map namespace ${name} (operation ${res.OperationId ?? "unknown"})` };
    } catch (err) {
      switch (errorName(err)) {
        case "NamespaceNotFound":
          return { kind: "gone" };
        case "ResourceInUse":
          // Service Connect deregisters a service's Cloud Map service only after ECS deletes it.
          return { kind: "inProgress", reason: `Cloud Map namespace ${name} still has services registered: ${messageOf(err)}` };
        case "DuplicateRequest":
          return { kind: "inProgress", reason: `Cloud Map namespace ${name} is being deleted` };
        default:
          throw wrapAwsError(err, `deleting Cloud Map namespace ${name}`);
      }
    }
  }

  async #create(name: string, tags: Tags, requestId: string, mayRenewId: boolean): Promise<EnsureResult> {
    try {
      const res = await this.#sd.send(
        new CreateHttpNamespaceCommand({
          Name: name,
          CreatorRequestId: requestId,
          Description: `Service Connect namespace, managed by ${MANAGED_BY_VALUE}`,
          Tags: Object.entries(tags)
            .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
            .map(([Key, Value]) => ({ Key, Value })),
        }),
      );
      return { kind: "inProgress", reason: `creating Cloud Map namespace ${name} (operation ${res.OperationId ?? "unknown"})` };
    } catch (err) {
      switch (errorName(err)) {
        case "NamespaceAlreadyExists":
          // Created, but ListNamespaces does not show it yet (it is eventually consistent).
          return { kind: "inProgress", reason: `Cloud Map namespace ${name} exists but is not listed yet` };
        case "DuplicateRequest":
          return this.#duplicate(name, tags, err, mayRenewId);
        default:
          throw wrapAwsError(err, `creating Cloud Map namespace ${name}`);
      }
    }
  }

  /**
   * The request id was used before. Its operation tells which: still running
   * (wait), done and the namespace exists (wait to see it listed), or done
   * for a namespace since deleted, or failed (the id is spent; renew it once).
   */
  async #duplicate(name: string, tags: Tags, err: unknown, mayRenewId: boolean): Promise<EnsureResult> {
    const operationId = (err as { DuplicateOperationId?: string }).DuplicateOperationId;
    if (operationId === undefined) return { kind: "inProgress", reason: `Cloud Map namespace ${name} is being created` };
    const op = await doing(
      `reading Cloud Map operation ${operationId}`,
      this.#sd.send(new GetOperationCommand({ OperationId: operationId })),
    );
    const status = op.Operation?.Status;
    if (status === "SUBMITTED" || status === "PENDING" || status === undefined) {
      return {
        kind: "inProgress",
        reason: `Cloud Map namespace ${name} is being created (operation ${operationId} ${status ?? "unknown"})`,
      };
    }
    const target = op.Operation?.Targets?.["NAMESPACE"];
    if (status === "SUCCESS" && target !== undefined && (await this.#exists(target))) {
      return { kind: "inProgress", reason: `Cloud Map namespace ${name} was created and is not listed yet` };
    }
    const failure = status === "FAIL" ? `: ${op.Operation?.ErrorCode ?? ""} ${op.Operation?.ErrorMessage ?? ""}`.trimEnd() : "";
    if (!mayRenewId)
      return { kind: "inProgress", reason: `creating Cloud Map namespace ${name}: operation ${operationId} ended ${status}${failure}` };
    return this.#create(name, tags, requestIdFor(name, operationId), false);
  }

  async #exists(namespaceId: string): Promise<boolean> {
    try {
      await this.#sd.send(new GetNamespaceCommand({ Id: namespaceId }));
      return true;
    } catch (err) {
      if (errorName(err) === "NamespaceNotFound") return false;
      throw wrapAwsError(err, `reading Cloud Map namespace ${namespaceId}`);
    }
  }

  /**
   * The HTTP namespace of exactly that name. The filters keep the answer
   * small; the name is checked again here, since an emulator may ignore them.
   * Were there two (Cloud Map forbids it), the oldest is the one.
   */
  async #find(name: string): Promise<NamespaceRef | undefined> {
    const matches: NamespaceSummary[] = [];
    let token: string | undefined;
    do {
      const page = await doing(
        `listing Cloud Map namespaces named ${name}`,
        this.#sd.send(
          new ListNamespacesCommand({
            Filters: [
              { Name: "NAME", Values: [name], Condition: "EQ" },
              { Name: "TYPE", Values: ["HTTP"], Condition: "EQ" },
            ],
            ...(token !== undefined ? { NextToken: token } : {}),
          }),
        ),
      );
      for (const ns of page.Namespaces ?? [])
        if (ns.Name === name && ns.Type === "HTTP" && ns.Id !== undefined && ns.Arn !== undefined) matches.push(ns);
      token = page.NextToken;
    } while (token !== undefined);
    const [first] = matches.sort(
      (a, b) => (a.CreateDate?.getTime() ?? 0) - (b.CreateDate?.getTime() ?? 0) || (a.Id ?? "").localeCompare(b.Id ?? ""),
    );
    return first === undefined ? undefined : { name, id: first.Id ?? "", arn: first.Arn ?? "" };
  }

  async #assertManaged(ns: NamespaceRef): Promise<void> {
    if (this.#managed.has(ns.arn)) return;
    const res = await doing(
      `reading the tags of Cloud Map namespace ${ns.name}`,
      this.#sd.send(new ListTagsForResourceCommand({ ResourceARN: ns.arn })),
    );
    const tags: Record<string, string> = {};
    for (const t of res.Tags ?? []) if (t.Key !== undefined) tags[t.Key] = t.Value ?? "";
    if (!isManaged(tags)) throw new UnmanagedResourceError(`Cloud Map namespace ${ns.name}`);
    this.#managed.add(ns.arn);
  }
}

/** The CreatorRequestId for a namespace name, renewed by a spent operation's id when there is one. */
export function requestIdFor(name: string, spentOperationId?: string): string {
  const input = spentOperationId === undefined ? name : `${name}\n${spentOperationId}`;
  return (
    REQUEST_ID_PREFIX +
    createHash("sha256")
      .update(input)
      .digest("hex")
      .slice(0, 64 - REQUEST_ID_PREFIX.length)
  );
}
