import {
  CreateServiceCommand,
  DescribeClustersCommand,
  DescribeServicesCommand,
  DescribeTaskDefinitionCommand,
  ECSClient,
  ListClustersCommand,
  ListServicesCommand,
  UpdateServiceCommand,
  type Service,
} from "@aws-sdk/client-ecs";
import { mockClient } from "aws-sdk-client-mock";
import { beforeEach, describe, expect, it } from "vitest";
import type { Fence } from "../../src/ports.js";
import { serviceOwner } from "../../src/operator/key-ownership.js";
import { EcsProvider } from "../../src/providers/ecs.js";
import { ObservationSnapshot } from "../../src/providers/ecs-snapshot.js";
import { surveyEcs } from "../../src/providers/ecs-survey.js";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import type { DesiredService, Footprint, ObservedService } from "../../src/tiers/model.js";

const REGION = "us-east-1";
const ACCOUNT = "123456789012";
const ADVANCED = "saas-advanced";
const POOL = "saas-pool";
const APPS = ["orders", "products", "users", "rproxy"];
const MANAGED = { "managed-by": "ecs-tenant-operator" };
const MAX_AGE = 60_000;

const ecsMock = mockClient(ECSClient);
const fence: Fence = { assertHeld: () => undefined };
let clock: number;
let provider: EcsProvider;

const clusterArn = (name: string) => `arn:aws:ecs:${REGION}:${ACCOUNT}:cluster/${name}`;
const serviceArn = (cluster: string, name: string) => `arn:aws:ecs:${REGION}:${ACCOUNT}:service/${cluster}/${name}`;
const tdArn = (family: string, rev: number) => `arn:aws:ecs:${REGION}:${ACCOUNT}:task-definition/${family}:${rev}`;
const tags = (t: Record<string, string>) => Object.entries(t).map(([key, value]) => ({ key, value }));
const lastSegment = (s: string) => s.split("/").pop() ?? s;

/** A small ECS account the mock answers from, with ECS's page sizes and batch limits enforced. */
interface World {
  clusters: Map<string, { status: string; tags: Record<string, string> }>;
  /** cluster -> name -> service */
  services: Map<string, Map<string, Service>>;
  /** Services listed but gone by the time they are described (ECS answers MISSING). */
  vanished: Set<string>;
}
let world: World;

function premium(id: string) {
  return `saas-t-${id}`;
}
function names(id: string) {
  return APPS.map((a) => `saas-t-${id}-${a}`);
}
function footprint(id: string): Footprint {
  return {
    owner: id,
    serviceLocations: [
      { cluster: ADVANCED, serviceNames: names(id) },
      { cluster: premium(id), serviceNames: names(id) },
    ],
    ownedClusters: [premium(id)],
    taskDefinitionFamilies: [],
  };
}
function addService(cluster: string, name: string, tenantId: string, overrides: Partial<Service> = {}): void {
  let byName = world.services.get(cluster);
  if (byName === undefined) world.services.set(cluster, (byName = new Map<string, Service>()));
  byName.set(name, {
    serviceName: name,
    serviceArn: serviceArn(cluster, name),
    status: "ACTIVE",
    desiredCount: 1,
    runningCount: 1,
    taskDefinition: tdArn(name, 1),
    deployments: [{ id: `d-${name}`, status: "PRIMARY", rolloutState: "COMPLETED", desiredCount: 1, runningCount: 1 }],
    tags: tags({ ...MANAGED, "tenant-id": tenantId }),
    ...overrides,
  });
}
function addTenant(id: string, tier: "basic" | "advanced" | "premium"): void {
  if (tier === "basic") return;
  const cluster = tier === "premium" ? premium(id) : ADVANCED;
  if (tier === "premium") world.clusters.set(cluster, { status: "ACTIVE", tags: { ...MANAGED, "tenant-id": id, tier } });
  for (const name of names(id)) addService(cluster, name, id);
}

function mockWorld(): void {
  ecsMock.on(ListClustersCommand).callsFake((input: { maxResults?: number; nextToken?: string }) => {
    const all = [...world.clusters.keys()].map(clusterArn);
    const start = Number(input.nextToken ?? 0);
    const end = start + (input.maxResults ?? 100);
    return { clusterArns: all.slice(start, end), ...(end < all.length ? { nextToken: String(end) } : {}) };
  });
  ecsMock.on(DescribeClustersCommand).callsFake((input: { clusters: string[] }) => {
    if (input.clusters.length > 100) throw new Error("more than 100 clusters in one DescribeClusters");
    const clusters = input.clusters.flatMap((c) => {
      const name = lastSegment(c);
      const found = world.clusters.get(name);
      return found === undefined ? [] : [{ clusterName: name, clusterArn: clusterArn(name), status: found.status, tags: tags(found.tags) }];
    });
    return { clusters, failures: [] };
  });
  ecsMock.on(ListServicesCommand).callsFake((input: { cluster: string; maxResults?: number; nextToken?: string }) => {
    if (!world.clusters.has(input.cluster)) throw Object.assign(new Error("Cluster not found."), { name: "ClusterNotFoundException" });
    const all = [...(world.services.get(input.cluster)?.values() ?? [])]
      .filter((s) => s.status !== "INACTIVE")
      .map((s) => s.serviceArn ?? "");
    const start = Number(input.nextToken ?? 0);
    const end = start + Math.min(input.maxResults ?? 10, 100);
    return { serviceArns: all.slice(start, end), ...(end < all.length ? { nextToken: String(end) } : {}) };
  });
  ecsMock.on(DescribeServicesCommand).callsFake((input: { cluster: string; services: string[] }) => {
    if (input.services.length > 10) throw new Error("more than 10 services in one DescribeServices");
    const byName = world.services.get(input.cluster);
    const services: Service[] = [];
    const failures: { arn: string; reason: string }[] = [];
    for (const s of input.services) {
      const name = lastSegment(s);
      const found = byName?.get(name);
      if (found === undefined || world.vanished.has(`${input.cluster}/${name}`)) failures.push({ arn: s, reason: "MISSING" });
      else services.push(found);
    }
    return { services, failures };
  });
  ecsMock.on(DescribeTaskDefinitionCommand).callsFake((input: { taskDefinition: string }) => {
    const family = lastSegment(input.taskDefinition).split(":")[0] ?? "";
    return {
      taskDefinition: { taskDefinitionArn: input.taskDefinition, family, revision: 1, status: "ACTIVE" },
      tags: tags({ "content-hash": `hash-${family}` }),
    };
  });
  ecsMock.on(UpdateServiceCommand).resolves({});
}

const calls = (command: Parameters<typeof ecsMock.commandCalls>[0]) => ecsMock.commandCalls(command).length;
const reads = () =>
  calls(DescribeClustersCommand) + calls(DescribeServicesCommand) + calls(ListClustersCommand) + calls(ListServicesCommand);

beforeEach(() => {
  ecsMock.reset();
  clock = 1_700_000_000_000;
  provider = new EcsProvider(new ECSClient({ region: REGION }), { region: REGION, now: () => clock, snapshotMaxAgeMs: MAX_AGE });
  world = {
    clusters: new Map([
      [ADVANCED, { status: "ACTIVE", tags: { ...MANAGED } }],
      [POOL, { status: "ACTIVE", tags: { ...MANAGED } }],
    ]),
    services: new Map(),
    vanished: new Set(),
  };
  mockWorld();
});

describe("EcsProvider.survey", () => {
  it("reads services by 10 and clusters by 100 whatever tenant they belong to, following every page", async () => {
    // 150 premium tenants (150 clusters), 30 advanced tenants (120 services in one cluster), 20 basic ones (nothing in ECS).
    for (let i = 0; i < 150; i++) addTenant(`p${i}`, "premium");
    for (let i = 0; i < 30; i++) addTenant(`a${i}`, "advanced");
    // Someone else's cluster: read (a premium name may be taken by it), but its services are not ours to list.
    world.clusters.set("foreign", { status: "ACTIVE", tags: {} });
    addService("foreign", "theirs", "nobody", { tags: [] });

    const owners = await provider.survey([ADVANCED, POOL]);

    expect(owners.size).toBe(180);
    // 153 clusters: 2 pages of ListClusters, 2 DescribeClusters (100 + 53).
    expect(calls(ListClustersCommand)).toBe(2);
    expect(ecsMock.commandCalls(DescribeClustersCommand).map((c) => c.args[0].input.clusters?.length)).toEqual([100, 53]);
    // Listed: advanced (2 pages of 100 + 20), pool (1 empty page), 150 premium clusters; not the foreign one.
    expect(ecsMock.commandCalls(ListServicesCommand).map((c) => c.args[0].input.cluster)).not.toContain("foreign");
    expect(calls(ListServicesCommand)).toBe(2 + 1 + 150);
    // Described: 12 batches of 10 in the advanced cluster, 1 per premium cluster (4 services each).
    const sizes = ecsMock.commandCalls(DescribeServicesCommand).map((c) => c.args[0].input.services?.length ?? 0);
    expect(sizes.every((n) => n <= 10)).toBe(true);
    expect(sizes.filter((n) => n === 10)).toHaveLength(12);
    expect(calls(DescribeServicesCommand)).toBe(12 + 150);
    // The per-tenant observe of 200 tenants would make 2 reads each, plus one per premium cluster.
    expect(reads()).toBeLessThan(200 * 2 + 150);
  });

  it("scoped to a controller's share, lists only covered premium clusters, describes only covered services, and answers only covered keys", async () => {
    for (let i = 0; i < 20; i++) addTenant(`a${i}`, "advanced");
    for (let i = 0; i < 6; i++) addTenant(`p${i}`, "premium");
    for (const app of APPS) addService(POOL, `saas-pool-${app}`, "", { tags: tags(MANAGED) });
    // Someone else's service in the shared cluster: its name says nothing, so every controller reads it.
    addService(ADVANCED, "their-service", "nobody", { tags: [] });
    // Half of the tenants, by parity of their number; not the pool (another controller leads).
    const mine = (owner: string) => /^[ap]\d+$/.test(owner) && Number(owner.slice(1)) % 2 === 0;
    const scope = { covers: mine, ownerOfService: serviceOwner("saas") };

    const owners = await provider.survey([ADVANCED, POOL], scope);

    // Every cluster is read (2 shared + 6 premium: one page, one describe); only covered premium clusters are listed.
    expect(calls(ListClustersCommand)).toBe(1);
    expect(calls(DescribeClustersCommand)).toBe(1);
    expect(
      ecsMock
        .commandCalls(ListServicesCommand)
        .map((c) => c.args[0].input.cluster)
        .sort(),
    ).toEqual([ADVANCED, POOL, premium("p0"), premium("p2"), premium("p4")].sort());
    // Described: 10 covered advanced tenants x 4 + the foreign one = 41 services in 5 calls, 4 per covered premium cluster; no pool service.
    const described = ecsMock
      .commandCalls(DescribeServicesCommand)
      .flatMap((c) => c.args[0].input.services ?? [])
      .map(lastSegment);
    expect(described).toHaveLength(10 * 4 + 1 + 3 * 4);
    expect(described.filter((n) => n.startsWith("saas-pool-"))).toEqual([]);
    expect(described.filter((n) => /^saas-t-[ap]\d*[13579]-/.test(n))).toEqual([]);
    expect(calls(DescribeServicesCommand)).toBe(5 + 3);
    // Owners: of the covered services, and of every tagged cluster (clusters are all read; the caller keeps its share).
    expect([...owners].sort()).toEqual([
      "a0",
      "a10",
      "a12",
      "a14",
      "a16",
      "a18",
      "a2",
      "a4",
      "a6",
      "a8",
      "p0",
      "p1",
      "p2",
      "p3",
      "p4",
      "p5",
    ]);

    // A covered key is answered from the survey; an uncovered one (its services never described here) reads ECS.
    const before = reads();
    const a2 = await provider.observe(footprint("a2"));
    expect(reads()).toBe(before);
    expect(a2.services.map((s) => s.name).sort()).toEqual(names("a2").sort());
    const a3 = await provider.observe(footprint("a3"));
    expect(reads()).toBeGreaterThan(before);
    expect(a3.services.map((s) => s.name).sort()).toEqual(names("a3").sort());
  });

  it("hands the snapshot a scope test that keeps none of the survey's reads alive", async () => {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    // A bare client: the mock library records what passes through it.
    const service = (name: string): Service => ({
      serviceName: name,
      serviceArn: serviceArn(ADVANCED, name),
      status: "ACTIVE",
      desiredCount: 1,
      runningCount: 1,
      taskDefinition: tdArn(name, 1),
      deployments: [],
      tags: tags({ ...MANAGED, "tenant-id": "a1" }),
    });
    const client = {
      send: async (command: object) => {
        switch (command.constructor.name) {
          case "ListClustersCommand":
            return { clusterArns: [clusterArn(ADVANCED)] };
          case "DescribeClustersCommand":
            return { clusters: [{ clusterName: ADVANCED, clusterArn: clusterArn(ADVANCED), status: "ACTIVE", tags: tags(MANAGED) }] };
          case "ListServicesCommand":
            return { serviceArns: names("a1").map((n) => serviceArn(ADVANCED, n)) };
          default:
            return { services: names("a1").map(service), failures: [] };
        }
      },
    } as unknown as ECSClient;
    const scope = { covers: () => true, ownerOfService: serviceOwner("saas") };
    const { covers, read, count } = await (async () => {
      const survey = await surveyEcs(client, [ADVANCED], () => clock, scope);
      // What the snapshot keeps of a survey once every key took its answer: the scope's test.
      return { covers: survey.reads.covers, read: new WeakRef(survey.reads.services[0] as object), count: survey.reads.services.length };
    })();
    expect(count).toBe(4);
    // A WeakRef holds its target until the job that made it ends.
    await new Promise((resolve) => setTimeout(resolve, 0));
    gc();
    expect(covers?.("a1")).toBe(true);
    expect(read.deref()).toBeUndefined();
  });

  it("answers the next observe of each key without reading ECS, once", async () => {
    addTenant("a1", "advanced");
    addTenant("p1", "premium");
    await provider.survey([ADVANCED, POOL]);
    const before = reads();

    const a1 = await provider.observe(footprint("a1"));
    const p1 = await provider.observe(footprint("p1"));
    const basic = await provider.observe(footprint("b1"));
    expect(reads()).toBe(before);
    expect(a1.services.map((s) => s.name).sort()).toEqual(names("a1").sort());
    expect(a1.services.every((s) => s.cluster === ADVANCED && s.desiredCount === 1)).toBe(true);
    expect(a1.clusters.map((c) => c.name).sort()).toEqual([ADVANCED]);
    expect(p1.clusters.map((c) => c.name).sort()).toEqual([ADVANCED, premium("p1")].sort());
    expect(p1.services.map((s) => s.cluster)).toEqual(Array(4).fill(premium("p1")));
    expect(basic).toEqual({ clusters: [expect.objectContaining({ name: ADVANCED })], services: [], taskDefinitions: [] });
    // The hash of the revision a service runs comes from the task definition cache, as in a live observe.
    expect(a1.services[0]?.taskDefinitionContentHash).toBe(`hash-${a1.services[0]?.name}`);

    // Spent: the next observe of the same key reads ECS (a requeue while converging sees live state).
    world.services
      .get(ADVANCED)
      ?.set(names("a1")[0] ?? "", { ...world.services.get(ADVANCED)?.get(names("a1")[0] ?? ""), desiredCount: 5 });
    const again = await provider.observe(footprint("a1"));
    expect(reads()).toBeGreaterThan(before);
    expect(again.services.find((s) => s.name === names("a1")[0])?.desiredCount).toBe(5);
  });

  it("gives nothing once older than its bound, and nothing to a footprint without an owner", async () => {
    addTenant("a1", "advanced");
    addTenant("a2", "advanced");
    await provider.survey([ADVANCED, POOL]);
    const { owner: _owner, ...anonymous } = footprint("a1");
    let before = reads();
    await provider.observe(anonymous);
    expect(reads()).toBeGreaterThan(before);

    clock += MAX_AGE + 1;
    before = reads();
    await provider.observe(footprint("a2"));
    expect(reads()).toBeGreaterThan(before);
  });

  it("withdraws what a write of this process or a forget covered, and only that", async () => {
    for (const id of ["a1", "a2", "a3"]) addTenant(id, "advanced");
    await provider.survey([ADVANCED, POOL]);
    const a1 = names("a1")[0] ?? "";
    // a1's service written by another path (a tier move, a rollout) before a1's resync reconcile.
    await provider.apply(
      [{ kind: "updateService", cluster: ADVANCED, name: a1, desiredCount: 2, reason: "scale" }],
      await live("a1"),
      fence,
    );
    provider.forget("a2");

    let before = reads();
    await provider.observe(footprint("a1"));
    expect(reads()).toBeGreaterThan(before);
    before = reads();
    await provider.observe(footprint("a2"));
    expect(reads()).toBeGreaterThan(before);
    before = reads();
    await provider.observe(footprint("a3"));
    expect(reads()).toBe(before);
  });

  it("keeps a write made while the survey read: the survey's older view of that service is not given", async () => {
    addTenant("a1", "advanced");
    const a1 = names("a1")[0] ?? "";
    const observed = await live("a1");
    // The write lands between the survey's DescribeServices and its end.
    ecsMock.on(DescribeClustersCommand).callsFake(async (input: { clusters: string[] }) => {
      await provider.apply([{ kind: "updateService", cluster: ADVANCED, name: a1, desiredCount: 3, reason: "x" }], observed, fence);
      return {
        clusters: input.clusters.map((c) => ({
          clusterName: lastSegment(c),
          status: "ACTIVE",
          tags: tags(world.clusters.get(lastSegment(c))?.tags ?? {}),
        })),
      };
    });
    await provider.survey([ADVANCED, POOL]);
    const before = reads();
    await provider.observe(footprint("a1"));
    expect(reads()).toBeGreaterThan(before);
  });

  it("reads live a name this process created lately, which a listing may not show yet", async () => {
    addTenant("a1", "advanced");
    const created = names("a1")[0] ?? "";
    // Created by this process; ECS lists it only later (eventual consistency).
    ecsMock
      .on(CreateServiceCommand)
      .resolves({ service: { serviceName: created, serviceArn: serviceArn(ADVANCED, created), status: "ACTIVE" } });
    world.services.get(ADVANCED)?.delete(created);
    await provider.apply(
      [{ kind: "createService", service: desiredService(created), taskDefinitionFamily: created, reason: "new" }],
      {
        clusters: [],
        services: [],
        taskDefinitions: [{ family: created, arn: tdArn(created, 1), revision: 1, contentHash: "h", tags: {} }],
      },
      fence,
    );
    await provider.survey([ADVANCED, POOL]);
    const before = reads();
    const observed = await provider.observe(footprint("a1"));
    expect(reads()).toBeGreaterThan(before);
    // Live, the provider reports it as being created rather than missing: no second create is planned.
    expect(observed.services.find((s) => s.name === created)).toMatchObject({ status: "ACTIVE", runningCount: 0 });

    // Once a survey lists it, the listing has caught up: answered from the snapshot.
    addService(ADVANCED, created, "a1");
    await provider.survey([ADVANCED, POOL]);
    const listed = reads();
    expect((await provider.observe(footprint("a1"))).services.find((s) => s.name === created)?.runningCount).toBe(1);
    expect(reads()).toBe(listed);
  });

  it("skips INACTIVE clusters and services that vanished between listing and describing; keeps an INACTIVE service's word", async () => {
    addTenant("a1", "advanced");
    addTenant("p1", "premium");
    world.clusters.set(premium("gone"), { status: "INACTIVE", tags: { ...MANAGED, "tenant-id": "gone" } });
    const [first, second] = names("a1");
    world.vanished.add(`${ADVANCED}/${first}`);
    // Turned INACTIVE after ListServices named it: ListServices does not filter it here, DescribeServices says so.
    ecsMock.on(ListServicesCommand).callsFake((input: { cluster: string }) => ({
      serviceArns: [...(world.services.get(input.cluster)?.values() ?? [])].map((s) => s.serviceArn ?? ""),
    }));
    world.services.get(ADVANCED)?.set(second ?? "", { ...world.services.get(ADVANCED)?.get(second ?? ""), status: "INACTIVE" });

    const owners = await provider.survey([ADVANCED, POOL]);
    expect([...owners].sort()).toEqual(["a1", "p1"]);
    const before = reads();
    const a1 = await provider.observe(footprint("a1"));
    const gone = await provider.observe(footprint("gone"));
    expect(reads()).toBe(before);
    expect(a1.services.find((s) => s.name === first)).toBeUndefined();
    expect(a1.services.find((s) => s.name === second)?.status).toBe("INACTIVE");
    expect(gone.clusters.map((c) => c.name)).toEqual([ADVANCED]);
  });

  it("reads live a cluster whose services it could not list", async () => {
    addTenant("p1", "premium");
    // Unmanaged, premium-looking name: its services are not listed, so its word is not the snapshot's.
    world.clusters.set(premium("x"), { status: "ACTIVE", tags: {} });
    await provider.survey([ADVANCED, POOL]);
    const before = reads();
    const x = await provider.observe(footprint("x"));
    expect(reads()).toBeGreaterThan(before);
    expect(x.clusters.map((c) => c.name)).toContain(premium("x"));
  });

  it("looks at ECS before a create planned from the snapshot: an INACTIVE predecessor changes the clientToken, a live one stops it", async () => {
    addTenant("a1", "advanced");
    const [first, second] = names("a1");
    // Deleted behind our back: gone from the listing, INACTIVE when described by name.
    const dead = { ...world.services.get(ADVANCED)?.get(first ?? ""), status: "INACTIVE", createdAt: new Date(1_600_000_000_000) };
    world.services.get(ADVANCED)?.delete(first ?? "");
    world.services.get(ADVANCED)?.delete(second ?? "");
    await provider.survey([ADVANCED, POOL]);
    const observed = await provider.observe({ ...footprint("a1"), taskDefinitionFamilies: ["f"] });
    expect(observed.services.map((s) => s.name)).not.toContain(first);
    world.services.get(ADVANCED)?.set(first ?? "", dead);
    // The second appeared meanwhile (a create ECS had not listed yet).
    addService(ADVANCED, second ?? "", "a1");
    ecsMock
      .on(CreateServiceCommand)
      .resolves({ service: { serviceName: first, serviceArn: serviceArn(ADVANCED, first ?? ""), status: "ACTIVE" } });
    const writes = () => calls(DescribeServicesCommand);
    const describedBefore = writes();
    await provider.apply(
      [
        { kind: "createService", service: desiredService(first ?? ""), taskDefinitionFamily: "f", reason: "deleted" },
        { kind: "createService", service: desiredService(second ?? ""), taskDefinitionFamily: "f", reason: "missing" },
      ],
      observed,
      fence,
    );
    // One DescribeServices per create, by name.
    expect(writes() - describedBefore).toBe(2);
    const creates = ecsMock.commandCalls(CreateServiceCommand).map((c) => c.args[0].input);
    expect(creates.map((c) => c.serviceName)).toEqual([first]);
    // The same create from a live observation that saw the dead service carries the same token.
    const liveView = await live("a1", ["f"]);
    expect(liveView.services.find((s) => s.name === first)?.status).toBe("INACTIVE");
    await new EcsProvider(new ECSClient({ region: REGION }), { region: REGION }).apply(
      [{ kind: "createService", service: desiredService(first ?? ""), taskDefinitionFamily: "f", reason: "deleted" }],
      liveView,
      fence,
    );
    const tokens = ecsMock.commandCalls(CreateServiceCommand).map((c) => c.args[0].input.clientToken);
    expect(tokens).toHaveLength(2);
    expect(tokens[0]).toBe(tokens[1]);
  });

  it("forgets everything when the survey fails, and leaves the next observe live", async () => {
    addTenant("a1", "advanced");
    await provider.survey([ADVANCED, POOL]);
    ecsMock.on(ListClustersCommand).rejects(Object.assign(new Error("Rate exceeded"), { name: "ThrottlingException" }));
    await expect(provider.survey([ADVANCED, POOL])).rejects.toThrow(/listing clusters/);
    const before = reads();
    await provider.observe(footprint("a1"));
    expect(reads()).toBeGreaterThan(before);
  });
});

describe("ObservationSnapshot", () => {
  const service = (cluster: string, name: string, tenantId: string): ObservedService => ({
    cluster,
    name,
    arn: serviceArn(cluster, name),
    status: "ACTIVE",
    desiredCount: 1,
    runningCount: 1,
    taskDefinitionArn: tdArn(name, 1),
    taskDefinitionContentHash: undefined,
    deployments: [],
    tags: { ...MANAGED, "tenant-id": tenantId },
  });
  const reads = (at: number) => ({
    at,
    clusters: [{ name: ADVANCED, arn: clusterArn(ADVANCED), status: "ACTIVE", tags: {} }],
    listedClusters: [ADVANCED],
    services: [service(ADVANCED, "s1", "t1"), service(ADVANCED, "s2", "t2")],
  });
  const fp = (owner: string, name: string): Footprint => ({
    owner,
    serviceLocations: [{ cluster: ADVANCED, serviceNames: [name] }],
    ownedClusters: [],
    taskDefinitionFamilies: [],
  });
  const never = () => false;

  it("is primed only by a survey that began (so no write could have slipped by unseen), and holds only mapped services", () => {
    let now = 0;
    const snapshot = new ObservationSnapshot(1000, () => now);
    snapshot.prime(0, reads(now));
    expect(snapshot.take(fp("t1", "s1"), never)).toBeUndefined();
    // Two surveys overlap: the first to begin may not prime, as writes before the second began were dropped.
    const first = snapshot.begin();
    const second = snapshot.begin();
    snapshot.prime(first, reads(now));
    expect(snapshot.take(fp("t1", "s1"), never)).toBeUndefined();
    snapshot.prime(second, reads(now));
    expect(snapshot.size).toBe(2);
    expect(snapshot.take(fp("t1", "s1"), never)?.services.map((s) => s.name)).toEqual(["s1"]);
    now = 1001;
    expect(snapshot.take(fp("t2", "s2"), never)).toBeUndefined();
    // Expired: the memory went.
    expect(snapshot.size).toBe(0);
  });

  it("lets go of each service once its key had its answer, so a converged pass does not keep the fleet until the next survey", () => {
    const snapshot = new ObservationSnapshot(1000, () => 0);
    snapshot.prime(snapshot.begin(), reads(0));
    expect(snapshot.size).toBe(2);
    expect(snapshot.take(fp("t1", "s1"), never)?.services.map((s) => s.name)).toEqual(["s1"]);
    expect(snapshot.size).toBe(1);
    expect(snapshot.take(fp("t2", "s2"), never)?.services.map((s) => s.name)).toEqual(["s2"]);
    expect(snapshot.size).toBe(0);
  });

  it("withdraws a key's services by tag on forget, so another footprint covering them reads live too", () => {
    const snapshot = new ObservationSnapshot(1000, () => 0);
    snapshot.prime(snapshot.begin(), reads(0));
    snapshot.forget("t2");
    expect(snapshot.take(fp("other", "s2"), never)).toBeUndefined();
    expect(snapshot.take(fp("t1", "s1"), never)).toBeDefined();
  });

  it("asks the caller about each name absent from the listing, and gives nothing when one is unsure", () => {
    const snapshot = new ObservationSnapshot(1000, () => 0);
    snapshot.prime(snapshot.begin(), reads(0));
    expect(snapshot.take(fp("t1", "s9"), (_c, name) => name === "s9")).toBeUndefined();
    // Not spent by that refusal: still answered once the name is settled.
    expect(snapshot.take(fp("t1", "s9"), never)).toBeDefined();
    // A live service listed needs no settling.
    expect(snapshot.take(fp("t2", "s2"), () => true)?.services.map((s) => s.name)).toEqual(["s2"]);
  });
});

/** What a provider without a snapshot observes: ECS as it is now. */
async function live(id: string, families: string[] = []) {
  const fresh = new EcsProvider(new ECSClient({ region: REGION }), { region: REGION });
  const { owner: _owner, ...anonymous } = footprint(id);
  return fresh.observe({ ...anonymous, taskDefinitionFamilies: families });
}

function desiredService(name: string): DesiredService {
  return {
    cluster: ADVANCED,
    name,
    app: "orders",
    taskDefinitionFamily: name,
    desiredCount: 1,
    subnets: ["subnet-1"],
    securityGroups: ["sg-1"],
    assignPublicIp: "DISABLED",
    tags: { ...MANAGED, "tenant-id": "a1" },
  };
}
