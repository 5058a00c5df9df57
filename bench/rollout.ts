import { parseArgs } from "node:util";
import { DescribeServicesCommand } from "@aws-sdk/client-ecs";
import type { Catalogue } from "../src/apps/catalogue.js";
import { bucketFor } from "../src/localcloud/throttling.js";
import { DynamoRolloutStore } from "../src/providers/rollout-store.js";
import type { Rollout } from "../src/rollouts/model.js";
import { formWaves, parseWaves } from "../src/rollouts/waves.js";
import { POOL_KEY } from "../src/tiers/desired.js";
import { serviceName } from "../src/tiers/naming.js";
import { breakdown } from "./breakdown.js";
import { BenchFixture, DEFAULT_TUNING, sleep } from "./fixture.js";
import { machineInfo } from "./machine.js";
import { convergePool, tenantRecord } from "./tenants.js";

/**
 * `npm run bench:rollout [-- --tenants 100 --bake-s 10 --waves 1,10%,50%,100%]`:
 * a fleet rollout of one app's new version to N silo (advanced) tenants plus
 * the pool, with ECS's throttles enforced by the local scheduler.
 *
 * A fresh local cloud and an in-process controller (production poll
 * settings, CONCURRENCY 8, the rollout stepped every 2 s as in production);
 * the tenants are onboarded with throttling off, the controller goes quiet,
 * throttling is switched on (full buckets, as after a quiet spell), and the
 * catalogue record gets orders 1.0.1 as `tenantctl catalogue set` writes it.
 * Timed from that write to the rollout's Completed (every wave deployed,
 * baked and checked), then every service is read back.
 *
 * The floor: each unit needs one RegisterTaskDefinition (ECS: burst 20, then
 * 1 a second), and wave k+1 cannot start before wave k has registered,
 * deployed and baked. The floor is that bucket played out wave by wave (it
 * refills during each bake) plus the bakes; it leaves out the deployments
 * themselves and the reads, so the controller's overhead is the difference.
 * Midway through the largest wave, one tenant's desiredCount is edited: the
 * edit goes before the rollout's queued reconciles, and its time to Ready is
 * reported.
 */
const USAGE = `usage: npm run bench:rollout -- [options]
  --tenants N        silo (advanced) tenants (default 100)
  --waves LIST       ROLLOUT_WAVES (default 1,10%,50%,100%)
  --bake-s N         ROLLOUT_BAKE_SECONDS (default 10)
  --speed N          simulated ECS time per real time (default 10, the local default)
  --concurrency N    CONCURRENCY (default 8)
  --no-throttling    leave ECS's throttles off during the rollout
  --timeout-s N      give up after N seconds (default 900)
  --json             the result as JSON on stdout (the table on stderr)`;

const { values: args } = parseArgs({
  options: {
    tenants: { type: "string", default: "100" },
    waves: { type: "string", default: "1,10%,50%,100%" },
    "bake-s": { type: "string", default: "10" },
    speed: { type: "string", default: "10" },
    concurrency: { type: "string", default: "8" },
    throttling: { type: "boolean", default: true },
    "timeout-s": { type: "string", default: "900" },
    json: { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  },
  allowNegative: true,
});
if (args.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
const num = (name: string, value: string, min: number): number => {
  const n = Number(value);
  if (!Number.isFinite(n) || n < min) {
    process.stderr.write(`--${name} must be a number of at least ${min}\n${USAGE}\n`);
    process.exit(2);
  }
  return n;
};
const N = num("tenants", args.tenants, 1);
const bakeS = num("bake-s", args["bake-s"], 0);
const speed = num("speed", args.speed, 1);
const concurrency = num("concurrency", args.concurrency, 1);
const timeoutMs = num("timeout-s", args["timeout-s"], 10) * 1000;
const steps = parseWaves(args.waves);
const say = (line: string) => process.stderr.write(`${line}\n`);

/** Wave by wave: registrations through ECS's bucket (full at the start, refilled during bakes), plus the bakes. */
function floorMs(waveSizes: readonly number[], bakeMs: number): number {
  const bucket = bucketFor("RegisterTaskDefinition");
  if (bucket === undefined) throw new Error("no bucket for RegisterTaskDefinition");
  const { burst, rate } = bucket.spec;
  let tokens = burst;
  let t = 0;
  for (const n of waveSizes) {
    const fromBucket = Math.min(tokens, n);
    const waitMs = ((n - fromBucket) / rate) * 1000;
    tokens -= fromBucket;
    t += waitMs + bakeMs;
    tokens = Math.min(burst, tokens + (bakeMs / 1000) * rate);
  }
  return t;
}

const ids = Array.from({ length: N }, (_, i) => `ro-${String(i).padStart(3, "0")}`);
const fx = await BenchFixture.start({
  speed,
  throttling: false,
  concurrency,
  ...DEFAULT_TUNING,
  env: { ROLLOUT_WAVES: args.waves, ROLLOUT_BAKE_SECONDS: String(bakeS), ROLLOUT_MAX_FAILURES: "0" },
});
try {
  say(`onboarding ${N} advanced tenants (throttling off) ...`);
  await convergePool(fx);
  await fx.putMany(ids.map((id) => tenantRecord(id, "advanced")));
  const onboardStart = performance.now();
  while (fx.controller.reconciler.phaseCounts().Ready < N) {
    if (performance.now() - onboardStart > timeoutMs) throw new Error("onboarding timed out");
    await sleep(200);
  }
  await fx.waitQuiet(2000, 120_000);
  say(`onboarded in ${Math.round((performance.now() - onboardStart) / 1000)} s; rolling out orders 1.0.1 ...`);

  const store = new DynamoRolloutStore(fx.cloud.clients.dynamodb, fx.config.leaseTable);
  const read = await store.readCatalogue();
  if (read.kind !== "valid") throw new Error("no catalogue record");
  const next: Catalogue = { apps: { ...read.catalogue.apps, orders: { ...read.catalogue.apps.orders, version: "1.0.1" } } };
  const before = await store.readRollout();
  if (args.throttling) fx.cloud.control.setThrottling(true);
  const window = await fx.window();
  const started = performance.now();
  await store.writeCatalogue(next, read.revision, "bench");

  let rollout: Rollout | undefined;
  let edit: { startedAt: number; readyMs?: number } | undefined;
  let lastLog = started;
  for (;;) {
    const r = await store.readRollout();
    const now = performance.now();
    if (r !== undefined && r.id !== before?.id) {
      rollout = r;
      if (r.state !== "Progressing" && r.state !== "Paused") break;
      // Midway through the largest wave, a person's edit of a tenant the rollout already did.
      const largest = r.waves.reduce((a, w, i) => (w.units.length > (r.waves[a]?.units.length ?? 0) ? i : a), 0);
      if (edit === undefined && r.waves[largest]?.startedAt !== undefined && r.waves[largest]?.deployedAt === undefined) {
        const id = ids[0] ?? "";
        const old = (await fx.status(id))?.observedSpecHash;
        const mark = { startedAt: performance.now() } as { startedAt: number; readyMs?: number };
        edit = mark;
        await fx.update(id, { apps: { users: { desiredCount: 2 } } });
        void fx
          .waitForStatus(id, (s) => s.phase === "Ready" && s.observedSpecHash !== old, "Ready after the edit", timeoutMs, 100)
          .then(() => {
            mark.readyMs = performance.now() - mark.startedAt;
          });
      }
    }
    if (now - started > timeoutMs) break;
    if (now - lastLog > 15_000) {
      const done = rollout === undefined ? 0 : Object.keys(rollout.done).length;
      say(`  ${Math.round((now - started) / 1000)} s: ${rollout?.reason ?? "waiting for the rollout to start"} (${done} units done)`);
      lastLog = now;
    }
    await sleep(250);
  }
  const totalMs = performance.now() - started;
  await fx.waitQuiet(2000, 60_000).catch(() => undefined);
  const calls = breakdown(await window.end());
  if (rollout === undefined) throw new Error("the rollout never started");

  // Every tenant and the pool on the new version?
  const images = new Map<string, number>();
  for (let i = 0; i < ids.length; i += 10) {
    const res = await fx.cloud.clients.ecs.send(
      new DescribeServicesCommand({
        cluster: fx.config.advancedCluster,
        services: ids.slice(i, i + 10).map((id) => serviceName(fx.config.namePrefix, id, "orders")),
      }),
    );
    for (const s of res.services ?? []) images.set(s.taskDefinition ?? "", (images.get(s.taskDefinition ?? "") ?? 0) + 1);
  }
  const expectedWaves = formWaves(
    ids.map((key) => ({ key })),
    steps,
    POOL_KEY,
  ).map((w) => w.length);
  const floor = floorMs(expectedWaves, bakeS * 1000);
  const t0 = Date.parse(rollout.createdAt);
  const waves = rollout.waves.map((w, i) => ({
    wave: i + 1,
    units: w.units.length,
    pool: w.units.includes(POOL_KEY),
    startS: w.startedAt === undefined ? undefined : (Date.parse(w.startedAt) - t0) / 1000,
    deployS:
      w.startedAt === undefined || w.deployedAt === undefined ? undefined : (Date.parse(w.deployedAt) - Date.parse(w.startedAt)) / 1000,
    bakedS: w.bakedAt === undefined ? undefined : (Date.parse(w.bakedAt) - t0) / 1000,
  }));
  const registered = (calls.ecsAttempts["RegisterTaskDefinition"] ?? 0) - (calls.ecsThrottledByAction["RegisterTaskDefinition"] ?? 0);
  const result = {
    machine: machineInfo(),
    settings: { ...fx.settings, tenants: N, waves: args.waves, bakeSeconds: bakeS, throttlingDuringRollout: args.throttling },
    state: rollout.state,
    totalMs: Math.round(totalMs),
    floorMs: Math.round(floor),
    ratio: Math.round((totalMs / floor) * 100) / 100,
    waves,
    failed: Object.keys(rollout.failed).length,
    registrations: registered,
    ecsReceived: calls.ecsAttempts,
    ecsThrottled: calls.ecsThrottledByAction,
    ordersTaskDefinitionsInUse: images.size,
    editDuringRolloutReadyMs: edit?.readyMs === undefined ? undefined : Math.round(edit.readyMs),
  };

  const lines = [
    `Fleet rollout of orders 1.0.1 to ${N} advanced tenants + the pool (waves ${args.waves}, bake ${bakeS} s, ECS throttling ${args.throttling ? "on" : "off"}, speed ${speed}, CONCURRENCY ${concurrency})`,
    `  state ${rollout.state}; ${Math.round(totalMs / 100) / 10} s from the catalogue write; floor ${Math.round(floor / 100) / 10} s (registrations at burst 20 then 1/s, plus ${waves.length} bakes) -> ${result.ratio}x`,
    `  successful RegisterTaskDefinition ${registered}; throttled answers ${
      Object.entries(calls.ecsThrottledByAction)
        .map(([a, n]) => `${a} ${n}`)
        .join(", ") || "none"
    }; failed units ${result.failed}; orders services on ${images.size} task definition(s)`,
    `  a desiredCount edit during the largest wave: Ready in ${edit?.readyMs === undefined ? "n/a" : `${Math.round(edit.readyMs / 100) / 10} s`}`,
    "  wave  units  start(s)  deploy(s)  baked(s)",
    ...waves.map(
      (w) =>
        `  ${String(w.wave).padEnd(4)}  ${`${w.units}${w.pool ? " pool" : ""}`.padEnd(5)}  ${String(w.startS ?? "-").padEnd(8)}  ${String(w.deployS ?? "-").padEnd(9)}  ${String(w.bakedS ?? "-")}`,
    ),
  ];
  if (args.json) {
    process.stderr.write(`${lines.join("\n")}\n`);
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } else process.stdout.write(`${lines.join("\n")}\n`);
} finally {
  await fx.stop();
}
