import { DescribeServicesCommand, ListServicesCommand, RegisterTaskDefinitionCommand } from "@aws-sdk/client-ecs";
import { describe, expect, it } from "vitest";
import { createRemotePorts, describePorts, servePorts } from "../../bench/remote-ports.js";
import { decodeError, encodeError, Peer, type Wire } from "../../bench/rpc.js";
import { createCloud, type ScaleCloud } from "../../bench/scale-fleet.js";
import { ConflictError, kindOf, LeaseLostError, UnmanagedResourceError } from "../../src/errors.js";
import type { CaseClaimPort, Fence, FenceTerm, TenantChange } from "../../src/ports.js";
import { ListenersFullError } from "../../src/providers/priority-allocator.js";
import type { TenantStatus } from "../../src/tenants/status.js";

/**
 * The controller process's ports (bench/remote-ports.ts over bench/rpc.ts),
 * with both ends in this process: messages are structured-cloned, as
 * `serialization: "advanced"` IPC does, and delivered in a later turn.
 * If a proxy changed what a fake sees or answers (an error's name or
 * $metadata, a fence's verdict, a command's class, a page), the split-mode
 * benchmark would measure a controller that behaves unlike the in-process one.
 */

function connected(cloud: ScaleCloud) {
  const peers: { parent?: Peer; child?: Peer } = {};
  const deliver = (to: "parent" | "child") => (m: Wire) => {
    const copy = structuredClone(m);
    setImmediate(() => peers[to]?.receive(copy));
  };
  const parent = new Peer(deliver("child"));
  const child = new Peer(deliver("parent"));
  peers.parent = parent;
  peers.child = child;
  const shapes = describePorts(cloud);
  servePorts(parent, cloud, shapes);
  const ports = createRemotePorts(child, structuredClone(shapes), {
    identity: { issuer: (pool: { userPoolId: string }) => `local:${pool.userPoolId}` },
  });
  return { parent, child, ports };
}

const held: Fence = { assertHeld() {}, term: () => ({ lease: "shard#3", holder: "controller-1", token: 7 }) };
const lost = (message = 'lease "shard#3" is not held by controller-1'): Fence & { readonly error: LeaseLostError } => {
  const error = new LeaseLostError(message);
  return {
    error,
    assertHeld() {
      throw error;
    },
  };
};
const status = (phase: TenantStatus["phase"]) => ({ phase }) as unknown as TenantStatus;

describe("remote ports: ECS", () => {
  it("sends the command's class and input: the fake serves the same action and answers with its Dates and arrays", async () => {
    const cloud = createCloud();
    const { ports, parent } = connected(cloud);
    const ecs = ports.ecs.asClient();
    await ecs.send(
      new RegisterTaskDefinitionCommand({ family: "saas-t1-orders", containerDefinitions: [], tags: [{ key: "k", value: "v" }] }),
    );
    const page = (await ecs.send(new ListServicesCommand({ cluster: "saas-pool" }))) as unknown as { serviceArns: string[] };
    expect(page).toEqual({ serviceArns: [] });
    expect(cloud.ecs.served.get("RegisterTaskDefinition")).toBe(1);
    expect(cloud.ecs.served.get("ListServices")).toBe(1);
    expect(cloud.ecs.families.get("saas-t1-orders")?.[0]?.tags).toEqual([{ key: "k", value: "v" }]);
    expect(parent.answered.get("ecs.send")).toBe(2);
  });

  it("an ECS error comes back with its name, message, $fault and $metadata, which the providers classify by", async () => {
    const cloud = createCloud();
    const { ports } = connected(cloud);
    const ecs = ports.ecs.asClient();
    const missing = ecs.send(new DescribeServicesCommand({ cluster: "nope", services: ["s"] }));
    await expect(missing).rejects.toMatchObject({
      name: "ClusterNotFoundException",
      message: "Cluster not found.",
      $fault: "client",
      $metadata: { httpStatusCode: 400 },
    });
    await expect(missing).rejects.toBeInstanceOf(Error);
    const eleven = Array.from({ length: 11 }, (_, i) => `s${i}`);
    await expect(ecs.send(new DescribeServicesCommand({ cluster: "saas-pool", services: eleven }))).rejects.toMatchObject({
      name: "InvalidParameterException",
    });
  });
});

describe("remote ports: fences", () => {
  it("a write under a fence that does not hold fails with the fence's own error, and the fake writes nothing", async () => {
    const cloud = createCloud();
    cloud.store.put({ tenantId: "t1" });
    const { ports } = connected(cloud);
    const fence = lost();
    await expect(ports.store.writeStatus("t1", status("Ready"), fence)).rejects.toBe(fence.error);
    expect(cloud.store.statusWrites).toBe(0);
    await expect(ports.store.writeStatus("t1", status("Ready"), held)).resolves.toBe(true);
    expect(cloud.store.statusOf("t1")?.phase).toBe("Ready");
  });

  it("keeps the fake's order: a fake that checks the fence only before writing answers a no-op without it", async () => {
    const cloud = createCloud();
    const { ports } = connected(cloud);
    // MemoryPriorities.place checks the fence only when it must allocate.
    await expect(ports.priorities.place("t1", held)).resolves.toEqual({ priority: 1 });
    const fence = lost();
    await expect(ports.priorities.place("t1", fence)).resolves.toEqual({ priority: 1 });
    await expect(ports.priorities.place("t2", fence)).rejects.toBe(fence.error);
    await expect(ports.priorities.placement("t2")).resolves.toBeUndefined();
  });

  it("hands the fake the fence's term, as the DynamoDB providers condition their writes on it", async () => {
    const terms: (FenceTerm | undefined)[] = [];
    const claims: CaseClaimPort = {
      claim: async (_id: string, fence: Fence) => {
        fence.assertHeld();
        terms.push(fence.term?.());
        return { ok: true };
      },
      release: async () => {},
      get: async () => undefined,
      list: async () => [],
    };
    const cloud = { ...createCloud(), claims } as unknown as ScaleCloud;
    const { ports } = connected(cloud);
    await ports.claims.claim("t1", held);
    await ports.claims.claim("t2", { assertHeld() {} });
    expect(terms).toEqual([{ lease: "shard#3", holder: "controller-1", token: 7 }, undefined]);
  });
});

describe("remote ports: method shapes", () => {
  it("pages an async iterable (TenantStore.scan) one round trip a page, and lets the parent's iterator go on an early stop", async () => {
    const cloud = createCloud();
    for (let i = 0; i < 2500; i++) cloud.store.put({ tenantId: `t${i}` });
    const { ports, parent } = connected(cloud);
    const sizes: number[] = [];
    for await (const page of ports.store.scan()) sizes.push(page.length);
    expect(sizes).toEqual([1000, 1000, 500]);
    expect(parent.answered.get("iter.open")).toBe(1);
    expect(parent.answered.get("iter.next")).toBe(4);
    for await (const page of ports.store.scan()) {
      expect(page).toHaveLength(1000);
      break;
    }
    expect(parent.answered.get("iter.close")).toBe(1);
  });

  it("has exactly the fake's methods: sync ones from `local` or throwing by name, optional ones the fake lacks absent", async () => {
    const { ports } = connected(createCloud());
    expect(ports.identity.issuer({ userPoolId: "p1", appClientId: "c" })).toBe("local:p1");
    const store = ports.store as unknown as { count(phase: string): number };
    expect(() => store.count("Ready")).toThrow("store.count is sync and cannot cross to the parent");
    // TenantRoutes asks whether a Priorities can propose; MemoryPriorities cannot, and neither may its proxy.
    expect("proposal" in ports.priorities).toBe(false);
    expect("then" in ports.store).toBe(false);
  });

  it("pushes the stream's batches to the follower until it stops", async () => {
    const cloud = createCloud();
    const { ports } = connected(cloud);
    const seen: (readonly TenantChange[])[] = [];
    const follower = ports.changes.follower();
    await follower.start((changes) => seen.push(changes));
    expect(cloud.changes.followers).toBe(1);
    const batch: TenantChange[] = [{ tenantId: "t1", kind: "upsert", newSpecHash: "h", oldSpecHash: undefined }];
    cloud.changes.emit(batch);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(seen).toEqual([batch]);
    await follower.stop();
    expect(cloud.changes.followers).toBe(0);
  });
});

describe("rpc errors", () => {
  it("rebuilds our error classes, so instanceof and kindOf() see what they would in one process", () => {
    const cause = new ConflictError("priority 7 is taken");
    const wrapped = new ListenersFullError("every listener is full: add a listener", { cause });
    const back = decodeError(structuredClone(encodeError(wrapped)));
    expect(back).toBeInstanceOf(ListenersFullError);
    expect(back.message).toBe("every listener is full: add a listener");
    expect(kindOf(back)).toBe("transient");
    expect(back.cause).toBeInstanceOf(ConflictError);
    expect((back.cause as Error).message).toBe("priority 7 is taken");
    const unmanaged = decodeError(structuredClone(encodeError(new UnmanagedResourceError("service saas-x"))));
    expect(unmanaged).toBeInstanceOf(UnmanagedResourceError);
    expect(unmanaged).toMatchObject({ name: "UnmanagedResourceError", resource: "service saas-x" });
    expect(kindOf(unmanaged)).toBe("terminal");
  });

  it("a handler's failure rejects the call; a missing handler says which", async () => {
    const cloud = createCloud();
    const { child } = connected(cloud);
    await expect(child.call("nothing.here")).rejects.toThrow('no handler for the call "nothing.here"');
    await expect(child.call("data.backfill", "t1", "a", "b", { $fence: { held: true, term: undefined, index: 3 } })).rejects.toThrow(
      "backfill was called",
    );
  });
});
