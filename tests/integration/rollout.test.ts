import { PassThrough, Readable } from "node:stream";
import { DescribeServicesCommand, DescribeTaskDefinitionCommand, ListTaskDefinitionsCommand } from "@aws-sdk/client-ecs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Io } from "../../src/cli/command.js";
import { main } from "../../src/cli/tenantctl.js";
import { DynamoRolloutStore } from "../../src/providers/rollout-store.js";
import type { Rollout } from "../../src/rollouts/model.js";
import { POOL_KEY } from "../../src/tiers/desired.js";
import { poolServiceName, serviceName, taskDefinitionFamily } from "../../src/tiers/naming.js";
import { eventually } from "../support/event-sink.js";
import { startHarness, type OperatorHarness } from "../support/operator.js";

/**
 * Fleet rollouts through the local cloud: a catalogue change made with
 * tenantctl reaches the tenants wave by wave, with the bake, through ECS
 * deployments the local scheduler runs (crashloop images trip the circuit
 * breaker, which rolls the service back as ECS does).
 */
const MINUTE = 60_000;

async function cli(h: OperatorHarness, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = "";
  let err = "";
  stdout.on("data", (d: Buffer) => (out += d.toString()));
  stderr.on("data", (d: Buffer) => (err += d.toString()));
  const io: Io = { stdout, stderr, stdin: Readable.from([""]), env: { ...h.cloud.env } };
  const code = await main(args, io);
  return { code, stdout: out, stderr: err };
}

const store = (h: OperatorHarness) => new DynamoRolloutStore(h.clients.dynamodb, h.config.leaseTable);

async function rolloutOf(h: OperatorHarness): Promise<Rollout> {
  const r = await store(h).readRollout();
  if (r === undefined) throw new Error("no rollout item");
  return r;
}

/** Waits for the rollout started after `previousId` to reach `state`. */
function waitForRollout(h: OperatorHarness, previousId: string, state: Rollout["state"], timeoutMs = 3 * MINUTE): Promise<Rollout> {
  return eventually(
    async () => {
      const r = await rolloutOf(h);
      return r.id !== previousId && r.state === state ? r : undefined;
    },
    `a new rollout to be ${state}`,
    timeoutMs,
    200,
  );
}

/** The image a service runs now, and its task definition. */
async function running(h: OperatorHarness, cluster: string, name: string) {
  const res = await h.clients.ecs.send(new DescribeServicesCommand({ cluster, services: [name] }));
  const s = res.services?.[0];
  const td = s?.taskDefinition ?? "";
  const described = await h.clients.ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition: td }));
  return {
    taskDefinition: td,
    image: described.taskDefinition?.containerDefinitions?.[0]?.image ?? "",
    runningCount: s?.runningCount,
    desiredCount: s?.desiredCount,
    deployments: s?.deployments ?? [],
  };
}

const tenantOrders = (h: OperatorHarness, id: string) =>
  running(h, h.config.advancedCluster, serviceName(h.config.namePrefix, id, "orders"));
const poolOrders = (h: OperatorHarness) => running(h, h.config.poolCluster, poolServiceName(h.config.namePrefix, "orders"));

async function revisions(h: OperatorHarness, id: string, status: "ACTIVE" | "INACTIVE") {
  const res = await h.clients.ecs.send(
    new ListTaskDefinitionsCommand({ familyPrefix: taskDefinitionFamily(h.config.namePrefix, id, "orders"), status }),
  );
  return res.taskDefinitionArns ?? [];
}

async function waveEvents(h: OperatorHarness, rolloutId: string) {
  await h.sink.drain();
  return h.sink.received
    .filter((e) => e.detailType === "tenant-operator_rolloutWave" && (e.detail as unknown as { rolloutId: string }).rolloutId === rolloutId)
    .map((e) => e.detail as unknown as { event: string; wave: number; units: string[] });
}

const image = (version: string) => `public.ecr.aws/saas-factory/orders:${version}`;

describe("a fleet rollout of good versions", () => {
  let h: OperatorHarness;
  const silo = ["g-a", "g-b", "g-c", "g-d"];
  beforeAll(async () => {
    h = await startHarness({
      ROLLOUT_WAVES: "1,50%,100%",
      ROLLOUT_BAKE_SECONDS: "3",
      ROLLOUT_MAX_FAILURES: "0",
      ROLLOUT_TIMEOUT_SECONDS: "120",
      REVISIONS_TO_KEEP: "2",
    });
    await h.put({ tenantId: "g-a", tier: "advanced", tenantName: "A", ring: 0 });
    for (const id of ["g-b", "g-c", "g-d"]) await h.put({ tenantId: id, tier: "advanced", tenantName: id });
    await h.put({ tenantId: "g-pin", tier: "advanced", tenantName: "Pinned", apps: { orders: { version: "1.0.0" } } });
    await h.put({ tenantId: "g-basic", tier: "basic", tenantName: "Basic" });
    for (const id of [...silo, "g-pin", "g-basic"]) await h.waitForPhase(id, "Ready", 2 * MINUTE);
    await eventually(async () => ((await poolOrders(h).catch(() => undefined))?.runningCount === 1 ? true : undefined), "the pool", MINUTE);
  }, 4 * MINUTE);
  afterAll(async () => {
    await h?.stop();
  });

  it("seeds the catalogue record and shows it", async () => {
    const got = await cli(h, "catalogue", "get", "-o", "json");
    expect(got.code).toBe(0);
    const shown = JSON.parse(got.stdout) as { revision: number; apps: { orders: { version: string } } };
    expect(shown.apps.orders.version).toBe("1.0.0");
    expect((await rolloutOf(h)).state).toBe("Completed");
  });

  it(
    "completes wave by wave, each wave baked before the next; the pinned tenant is untouched",
    async () => {
      const before = await rolloutOf(h);
      const pinned = await tenantOrders(h, "g-pin");
      const set = await cli(h, "catalogue", "set", "orders=1.1.0");
      expect(set.code, set.stderr).toBe(0);
      expect(set.stdout).toContain("orders 1.0.0 -> 1.1.0");

      const done = await waitForRollout(h, before.id, "Completed");
      // Ring 0 first, the pool right after the first ring, then by id; the pinned tenant is in no wave.
      expect(done.waves.map((w) => w.units)).toEqual([["g-a"], [POOL_KEY], ["g-b"], ["g-c", "g-d"]]);
      expect(done.unaffected).toBe(1);
      for (let i = 1; i < done.waves.length; i++) {
        const previous = done.waves[i - 1];
        const started = Date.parse(done.waves[i]?.startedAt ?? "");
        // The bake: 3 s after the previous wave was deployed, and its tenants seen healthy after that.
        expect(started - Date.parse(previous?.deployedAt ?? "")).toBeGreaterThanOrEqual(3000);
        expect(Date.parse(previous?.checkedAt ?? "") - Date.parse(previous?.deployedAt ?? "")).toBeGreaterThanOrEqual(3000);
        expect(started).toBeGreaterThanOrEqual(Date.parse(previous?.bakedAt ?? ""));
      }
      for (const id of silo) expect((await tenantOrders(h, id)).image).toBe(image("1.1.0"));
      expect((await poolOrders(h)).image).toBe(image("1.1.0"));
      expect(await tenantOrders(h, "g-pin")).toMatchObject({ taskDefinition: pinned.taskDefinition, image: image("1.0.0") });
      expect(await revisions(h, "g-pin", "ACTIVE")).toHaveLength(1);
      for (const id of [...silo, "g-pin"]) expect((await h.status(id))?.phase).toBe("Ready");

      const events = await eventually(async () => {
        const e = await waveEvents(h, done.id);
        return e.some((x) => x.event === "Completed") ? e : undefined;
      }, "the rollout's wave events");
      expect(events.filter((e) => e.event === "WaveStarted").map((e) => e.wave)).toEqual([1, 2, 3, 4]);
      expect(events.filter((e) => e.event === "WaveCompleted").map((e) => e.wave)).toEqual([1, 2, 3, 4]);

      const status = await cli(h, "rollout", "status", "-o", "json");
      expect(JSON.parse(status.stdout)).toMatchObject({
        id: done.id,
        state: "Completed",
        changes: "orders 1.0.0 -> 1.1.0",
        counts: { total: 5, done: 5, failed: 0, pending: 0, unaffected: 1 },
      });
      expect((await cli(h, "rollout", "status")).stdout).toMatch(/Completed/);
    },
    5 * MINUTE,
  );

  it(
    "pause holds the next wave; resume lets the rollout finish",
    async () => {
      const before = await rolloutOf(h);
      expect((await cli(h, "catalogue", "set", "orders=1.2.0")).code).toBe(0);
      await eventually(
        async () => {
          const r = await rolloutOf(h);
          return r.id !== before.id && r.waves[0]?.startedAt !== undefined ? r : undefined;
        },
        "the first wave to start",
        MINUTE,
      );
      const paused = await cli(h, "rollout", "pause");
      expect(paused.code, paused.stderr).toBe(0);
      expect(paused.stdout).toMatch(/Paused/);
      // The wave under way finishes and bakes; none after it starts.
      const held = await eventually(
        async () => {
          const r = await rolloutOf(h);
          return r.waves[0]?.bakedAt !== undefined ? r : undefined;
        },
        "the first wave to bake while paused",
        2 * MINUTE,
      );
      await new Promise((r) => setTimeout(r, 4000));
      const still = await rolloutOf(h);
      expect(still.state).toBe("Paused");
      expect(still.waves.filter((w) => w.startedAt !== undefined)).toHaveLength(1);
      expect(held.waves[1]?.startedAt).toBeUndefined();
      expect((await tenantOrders(h, "g-b")).image).toBe(image("1.1.0"));
      expect((await tenantOrders(h, "g-a")).image).toBe(image("1.2.0"));

      expect((await cli(h, "rollout", "pause")).code).toBe(1);
      const resumed = await cli(h, "rollout", "resume");
      expect(resumed.code, resumed.stderr).toBe(0);
      await waitForRollout(h, before.id, "Completed");
      for (const id of silo) expect((await tenantOrders(h, id)).image).toBe(image("1.2.0"));
    },
    5 * MINUTE,
  );

  it(
    "continues where it stopped when the controller restarts mid-rollout",
    async () => {
      const before = await rolloutOf(h);
      expect((await cli(h, "catalogue", "set", "orders=1.3.0")).code).toBe(0);
      const midway = await eventually(
        async () => {
          const r = await rolloutOf(h);
          return r.id !== before.id && r.waves[1]?.startedAt !== undefined ? r : undefined;
        },
        "the second wave to start",
        2 * MINUTE,
      );
      await h.controller.stop();
      const stopped = await rolloutOf(h);
      h.controller = await h.startController();
      const done = await waitForRollout(h, before.id, "Completed");
      expect(done.id).toBe(midway.id);
      // Nothing done before the restart was done again.
      expect(done.waves[0]?.startedAt).toBe(midway.waves[0]?.startedAt);
      expect(done.waves[1]?.startedAt).toBe(midway.waves[1]?.startedAt);
      expect(done.waves[0]?.bakedAt).toBe(stopped.waves[0]?.bakedAt);
      for (const id of silo) expect((await tenantOrders(h, id)).image).toBe(image("1.3.0"));
      expect((await poolOrders(h)).image).toBe(image("1.3.0"));
    },
    5 * MINUTE,
  );

  it("keeps the last REVISIONS_TO_KEEP revisions per family, deletes older ones, never one in use", async () => {
    // g-a has had 1.0.0, 1.1.0, 1.2.0 and 1.3.0 (and a repeat of none): two are kept, the others deregistered and deleted.
    const inUse = (await tenantOrders(h, "g-a")).taskDefinition;
    const active = await eventually(async () => {
      const arns = await revisions(h, "g-a", "ACTIVE");
      return arns.length <= 2 ? arns : undefined;
    }, "old revisions of g-a's orders to be pruned");
    expect(active).toContain(inUse);
    expect(await revisions(h, "g-a", "INACTIVE")).toEqual([]);
    const first = `${inUse.slice(0, inUse.lastIndexOf(":"))}:1`;
    await expect(h.clients.ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition: first }))).rejects.toThrow();
    // The pinned tenant's only revision stays.
    expect(await revisions(h, "g-pin", "ACTIVE")).toHaveLength(1);
  });
});

describe("a fleet rollout of a crash-looping version", () => {
  let h: OperatorHarness;
  const ids = ["c-1", "c-2", "c-3", "c-4", "c-5"];
  beforeAll(async () => {
    h = await startHarness({
      ROLLOUT_WAVES: "1,2,100%",
      ROLLOUT_BAKE_SECONDS: "1",
      ROLLOUT_MAX_FAILURES: "1",
      ROLLOUT_TIMEOUT_SECONDS: "120",
    });
    // One ring for all: the pool would come after it, last.
    for (const id of ids) await h.put({ tenantId: id, tier: "advanced", tenantName: id, tenantRegistrationId: `reg-${id}`, ring: 0 });
    for (const id of ids) await h.waitForPhase(id, "Ready", 2 * MINUTE);
    await eventually(async () => ((await poolOrders(h).catch(() => undefined))?.runningCount === 1 ? true : undefined), "the pool", MINUTE);
  }, 4 * MINUTE);
  afterAll(async () => {
    await h?.stop();
  });

  it(
    "halts after the first wave plus the budget: the tenants it reached roll back to Ready, the others never change",
    async () => {
      const before = await rolloutOf(h);
      const untouched = await Promise.all(["c-3", "c-4", "c-5"].map((id) => tenantOrders(h, id)));
      const pool = await poolOrders(h);
      expect((await cli(h, "catalogue", "set", "orders=crashloop")).code).toBe(0);

      const halted = await waitForRollout(h, before.id, "Halted");
      expect(halted.waves.map((w) => w.units)).toEqual([["c-1"], ["c-2"], ["c-3", "c-4", "c-5"], [POOL_KEY]]);
      expect(Object.keys(halted.failed).sort()).toEqual(["c-1", "c-2"]);
      expect(halted.reason).toMatch(/2 failed unit\(s\) exceed the failure budget of 1/);
      expect(halted.failed["c-1"]?.reason).toMatch(/circuit breaker/);
      expect(halted.waves[2]?.startedAt).toBeUndefined();

      for (const id of ["c-1", "c-2"]) {
        // ECS's circuit breaker rolled the service back; the tenant is Ready again on its previous version.
        await eventually(async () => ((await h.status(id))?.phase === "Ready" ? true : undefined), `${id} to be Ready again`, 2 * MINUTE);
        const now = await eventually(async () => {
          const s = await tenantOrders(h, id);
          return s.deployments.length === 1 && s.runningCount === s.desiredCount ? s : undefined;
        }, `${id}'s rollback to settle`);
        expect(now.image).toBe(image("1.0.0"));
        const failures = await eventually(async () => {
          const e = await h.sink.of(id, "sbt_aws_provisionFailure");
          return e.length > 0 ? e : undefined;
        }, `${id}'s provisionFailure`);
        expect(failures).toHaveLength(1);
        expect(failures[0]?.detail).toMatchObject({
          tenantRegistrationId: `reg-${id}`,
          jobOutput: { tenantRegistrationData: { registrationStatus: "Failed" } },
        });
        expect(failures[0]?.detail["reason"]).toMatch(
          new RegExp(`fleet rollout ${halted.id}: orders crashloop failed .*returning to orders 1\\.0\\.0`),
        );
      }
      // The others were never reached: same task definition, no new revision.
      for (const [i, id] of ["c-3", "c-4", "c-5"].entries()) {
        expect((await tenantOrders(h, id)).taskDefinition).toBe(untouched[i]?.taskDefinition);
        expect(await revisions(h, id, "ACTIVE")).toHaveLength(1);
      }
      expect((await poolOrders(h)).taskDefinition).toBe(pool.taskDefinition);
      const events = await waveEvents(h, halted.id);
      expect(events.filter((e) => e.event === "WaveStarted").map((e) => e.wave)).toEqual([1, 2]);
      expect(events.some((e) => e.event === "Halted")).toBe(true);

      // Halted stays halted: nothing more starts.
      await new Promise((r) => setTimeout(r, 3000));
      expect((await rolloutOf(h)).waves[2]?.startedAt).toBeUndefined();
      const text = await cli(h, "rollout", "status");
      expect(text.stdout).toMatch(/Halted/);
      expect(text.stdout).toMatch(/c-1/);
    },
    5 * MINUTE,
  );
});
