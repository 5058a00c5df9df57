import { DynamoDBClient, GetItemCommand, PutItemCommand, ScanCommand, type AttributeValue } from "@aws-sdk/client-dynamodb";
import { unmarshall } from "@aws-sdk/util-dynamodb";
import { execFileSync } from "node:child_process";
import { parseArgs } from "node:util";
import { pino } from "pino";
import { writeAll } from "../src/data/batch-writer.js";
import { DEFAULT_RETRY } from "../src/data/index.js";
import { loadConfig } from "../src/config.js";
import { LOCAL_CREDENTIALS, localTarget } from "../src/localcloud/index.js";
import { awsClient, RETRIES } from "../src/providers/aws-clients.js";
import { startController, type RunningController } from "../src/operator/run-controller.js";
import type { MigrationStatus, TenantStatus } from "../src/tenants/status.js";
import { poolTableName, siloTableName } from "../src/tiers/naming.js";
import { startTestCloud, type TestCloud } from "../tests/support/localcloud.js";
import { setAttributes } from "../tests/support/records.js";
import { DEFAULT_TUNING, sleep } from "./fixture.js";
import { machineInfo } from "./machine.js";

/**
 * `node --import tsx bench/tier-move.ts [--items 1000,10000] [--writes-per-second 20]`:
 * one tenant's move from basic (pooled tables) to advanced (its silo tables)
 * while its application keeps writing, end to end through the controller.
 *
 * For each N: a fresh local cloud (ECS throttling off, fast simulated ECS)
 * and an in-process controller (short MIGRATION_DRAIN_SECONDS); a basic
 * tenant and a bystander basic tenant are onboarded; N orders and N products
 * of the tenant (and N/10 of each for the bystander) are loaded into the
 * pooled tables. A writer then plays the tenant's app: new orders at a fixed
 * rate into whatever table status.tables names, re-read every 100 ms (the
 * stand-in for the routing flip). The record's tier is set to advanced, the
 * status polled every 100 ms to see when each step of status.migration first
 * shows, until the tenant is Ready with no migration. Then every item written
 * must be in the silo tables, no bystander item there, and none of the
 * tenant's left in the pool.
 *
 * Verification leaves out the keys the app changed while they were read, so
 * a tenant that never stops writing can be verified (before commit 36931fa
 * it could not: BENCHMARKS.md). Should a move still sit in
 * catchup/verify for --stall-s, the writer pauses (the app holds its writes,
 * as an operator would ask it to) until status.tables switches, and the
 * report says so: the cutover window then includes that pause.
 *
 * Everything runs against moto behind the local cloud, whose DynamoDB writes
 * are serialized (ADR 0009): the figures are moto's, not DynamoDB's.
 */
const USAGE = `usage: node --import tsx bench/tier-move.ts [options]
  --items LIST               tenant sizes, items per table (default 1000,10000)
  --writes-per-second N      the app's order writes during the move (default 20; 0: no writer)
  --drain-s N                MIGRATION_DRAIN_SECONDS (default 2)
  --stall-s N                seconds in catchup/verify before the writer pauses so the move can flip (default 60; 0: never pause)
  --timeout-s N              give up one move after N seconds (default 900)
  --speed N                  simulated ECS time per real time (default 200)
  --poll-ms N --max-poll-ms N --stream-poll-ms N
                             controller tuning (default ${DEFAULT_TUNING.pollMs} / ${DEFAULT_TUNING.maxPollMs} / ${DEFAULT_TUNING.streamPollMs}, production defaults)
  --json                     the results as JSON on stdout (the table on stderr)`;

const { values: args } = parseArgs({
  options: {
    items: { type: "string", default: "1000,10000" },
    "writes-per-second": { type: "string", default: "20" },
    "drain-s": { type: "string", default: "2" },
    "stall-s": { type: "string", default: "60" },
    "timeout-s": { type: "string", default: "900" },
    speed: { type: "string", default: "200" },
    "poll-ms": { type: "string", default: String(DEFAULT_TUNING.pollMs) },
    "max-poll-ms": { type: "string", default: String(DEFAULT_TUNING.maxPollMs) },
    "stream-poll-ms": { type: "string", default: String(DEFAULT_TUNING.streamPollMs) },
    json: { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  },
  strict: true,
});
if (args.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
const sizes = args.items.split(",").map((s) => int("items", s.trim(), 1));
const settings = {
  writesPerSecond: num("writes-per-second", args["writes-per-second"], 0),
  drainSeconds: int("drain-s", args["drain-s"], 0),
  stallS: num("stall-s", args["stall-s"], 0),
  timeoutS: num("timeout-s", args["timeout-s"], 1),
  speed: num("speed", args.speed, 1),
  pollMs: int("poll-ms", args["poll-ms"], 1),
  maxPollMs: int("max-poll-ms", args["max-poll-ms"], 1),
  streamPollMs: int("stream-poll-ms", args["stream-poll-ms"], 1),
};

const TENANT = "mover";
const BYSTANDER = "bystander";
const STATUS_EVERY_MS = 100;
/** DynamoDB's write ceiling for one partition key (1,000 WCU/s, items under 1 KB: one WCU each). */
const PARTITION_WCU_PER_S = 1000;
/** Steps a basic -> advanced move goes through, in order (abort is not part of it). */
const STEPS = ["provision", "capture", "backfill", "catchup", "verify", "flip", "drain", "retire"] as const;

type Tables = Readonly<Record<"orders" | "products", string>>;

interface Write {
  readonly seq: number;
  readonly table: string;
  readonly sentAt: number;
  acceptedAt?: number;
  error?: string;
}

interface StepSeen {
  readonly step: string;
  /** Date.now() of the first status read showing it. */
  readonly at: number;
}

interface MoveResult {
  readonly items: number;
  readonly bystanderItems: number;
  readonly loadS: number;
  readonly onboardS: number;
  /** Tier edit -> Ready with no migration, seen by the 100 ms poll. */
  readonly moveS: number;
  readonly steps: readonly { readonly step: string; readonly firstSeenS: number; readonly lastedS: number | undefined }[];
  readonly unseenSteps: readonly string[];
  readonly verifyAttempts: number;
  readonly copied: number;
  readonly backfillS: number | undefined;
  readonly copyPerS: number | undefined;
  readonly appliedBeforeFlip: number;
  readonly appliedInDrain: number;
  readonly flippedAtS: number | undefined;
  readonly writerPaused: { readonly atS: number; readonly step: string } | undefined;
  readonly writes: {
    readonly sent: number;
    readonly accepted: number;
    readonly failed: number;
    readonly toOld: number;
    readonly toNew: number;
  };
  /** Sent -> accepted of the app's writes (ms): how much the move slows the tenant's own traffic on moto. */
  readonly writeLatencyMs: { readonly median: number; readonly p99: number; readonly max: number } | undefined;
  /** Last write accepted by the old tables -> flippedAt, and -> the first write accepted by the new tables (ms). */
  readonly cutover: {
    readonly lastOldToFlipMs: number | undefined;
    readonly lastOldToFirstNewMs: number | undefined;
    readonly flipToFirstNewMs: number | undefined;
  };
  /** Writes accepted by the old tables after flippedAt (applied by the drain, if before drainUntil). */
  readonly oldWritesAfterFlip: number;
  readonly oldWritesAfterDrain: number;
  readonly check: {
    readonly expected: number;
    readonly inSilo: number;
    readonly lost: number;
    readonly extra: number;
    readonly strangers: number;
    readonly leftInPool: number;
  };
  readonly floorS: number;
  readonly ratio: number;
}

process.env["AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED"] ??= "true";
useLocalCredentials();
const log = (line: string) => process.stderr.write(`[tier-move] ${line}\n`);
// Read before the run: others may edit the tree meanwhile.
const source = sourceInfo();
const results: MoveResult[] = [];
for (const n of sizes) results.push(await measure(n));

const m = machineInfo();
const out = [
  `tier move basic -> advanced, one tenant, moto via the local cloud (DynamoDB writes serialized, ADR 0009)`,
  `machine: ${m.nproc} cores, ${m.cpuModel}, ${m.memoryGiB} GiB, node ${m.node}, ${m.platform}, ${m.date}`,
  `source: ${source.commit}${source.dirtyFiles > 0 ? ` + ${source.dirtyFiles} uncommitted files under src/` : ""}`,
  `settings: writer ${settings.writesPerSecond} orders/s, MIGRATION_DRAIN_SECONDS ${settings.drainSeconds}, stall pause after ${settings.stallS} s, speed ${settings.speed}x, ECS throttling off, ` +
    `pollMs ${settings.pollMs}, maxPollMs ${settings.maxPollMs}, streamPollMs ${settings.streamPollMs}, status read every ${STATUS_EVERY_MS} ms`,
  render(results),
].join("\n");
if (args.json) {
  process.stdout.write(`${JSON.stringify({ machine: m, source, settings, results }, null, 2)}\n`);
  process.stderr.write(`${out}\n`);
} else {
  process.stdout.write(`${out}\n`);
}
process.exit(results.every((r) => r.check.lost === 0 && r.check.strangers === 0 && r.check.leftInPool === 0) ? 0 : 1);

async function measure(n: number): Promise<MoveResult> {
  log(`${n}: starting the local cloud and controller`);
  const cloud = await startTestCloud({ speed: settings.speed, throttling: false });
  let controller: RunningController | undefined;
  const closers: (() => void)[] = [];
  try {
    const config = loadConfig({
      ...cloud.env,
      MIGRATION_DRAIN_SECONDS: String(settings.drainSeconds),
      LEASE_SECONDS: "600",
      RESYNC_SECONDS: "3600",
      LOG_LEVEL: "silent",
    });
    controller = await startController(config, pino({ level: process.env["BENCH_LOG_LEVEL"] ?? "silent" }), {
      pollMs: settings.pollMs,
      maxPollMs: settings.maxPollMs,
      streamPollMs: settings.streamPollMs,
      http: false,
      shutdownTimeoutMs: 5000,
    });
    const ddb = cloud.clients.dynamodb;
    /*
     * The app and the status reader get clients of their own: writes queued
     * behind a busy moto must not delay the reads that stand in for routing,
     * and the app's pile-up must not wait on the SDK's 50 default sockets.
     */
    const appDdb = awsClient(DynamoDBClient, localTarget(cloud.endpoint), { ...RETRIES.standard, maxSockets: 1000 });
    const statusDdb = awsClient(DynamoDBClient, localTarget(cloud.endpoint), RETRIES.standard);
    closers.push(
      () => appDdb.destroy(),
      () => statusDdb.destroy(),
    );
    const pool: Tables = { orders: poolTableName(config.namePrefix, "orders"), products: poolTableName(config.namePrefix, "products") };
    const silo: Tables = {
      orders: siloTableName(config.namePrefix, TENANT, "orders"),
      products: siloTableName(config.namePrefix, TENANT, "products"),
    };
    const status = async (): Promise<TenantStatus | undefined> => {
      const res = await statusDdb.send(
        new GetItemCommand({
          TableName: config.tenantsTable,
          Key: { tenantId: { S: TENANT } },
          ConsistentRead: true,
          ProjectionExpression: "#s",
          ExpressionAttributeNames: { "#s": "status" },
        }),
      );
      return res.Item ? (unmarshall(res.Item)["status"] as TenantStatus | undefined) : undefined;
    };

    const tOnboard = performance.now();
    for (const tenantId of [TENANT, BYSTANDER]) {
      await ddb.send(
        new PutItemCommand({
          TableName: config.tenantsTable,
          Item: {
            tenantId: { S: tenantId },
            tier: { S: "basic" },
            tenantName: { S: tenantId },
            tenantRegistrationId: { S: `reg-${tenantId}` },
          },
        }),
      );
    }
    await until(
      async () => {
        const s = await status();
        return s?.phase === "Ready" && s.tables !== undefined ? s : undefined;
      },
      `${TENANT} Ready`,
      120_000,
    );
    const onboardS = (performance.now() - tOnboard) / 1000;
    const start = await status();
    if (start?.tables?.orders !== pool.orders || start.tables.products !== pool.products)
      throw new Error(
        `a basic tenant's status.tables is ${JSON.stringify(start?.tables)}, expected the pooled tables ${JSON.stringify(pool)}`,
      );

    const bystanderItems = Math.max(100, Math.ceil(n / 10));
    log(`${n}: loading ${n} orders + ${n} products of ${TENANT}, ${bystanderItems} + ${bystanderItems} of ${BYSTANDER}`);
    const tLoad = performance.now();
    const expectedKeys = { orders: new Set<string>(), products: new Set<string>() };
    for (const app of ["orders", "products"] as const) {
      await load(cloud, pool[app], app, TENANT, "seed", n, expectedKeys[app]);
      await load(cloud, pool[app], app, BYSTANDER, "seed", bystanderItems, new Set());
    }
    const loadS = (performance.now() - tLoad) / 1000;

    // ---- the move, with the app writing ----
    let serving: Tables = pool;
    const writes: Write[] = [];
    let writing = settings.writesPerSecond > 0;
    let paused = false;
    const writer = (async () => {
      if (!writing) return;
      const interval = 1000 / settings.writesPerSecond;
      const inflight = new Set<Promise<void>>();
      const t0 = performance.now();
      for (let seq = 0; writing; seq++) {
        const due = t0 + seq * interval;
        const wait = due - performance.now();
        if (wait > 0) await sleep(wait);
        if (!writing) break;
        if (paused) {
          seq--;
          await sleep(10);
          continue;
        }
        const w: Write = { seq, table: serving.orders, sentAt: Date.now() };
        writes.push(w);
        // Writes do not wait for each other: a slow one (queued behind the copy's batches) must not slow the app's rate.
        const p = appDdb
          .send(new PutItemCommand({ TableName: w.table, Item: item("orders", TENANT, "app", seq) }))
          .then(
            () => {
              w.acceptedAt = Date.now();
            },
            (err: unknown) => {
              w.error = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
            },
          )
          .finally(() => inflight.delete(p));
        inflight.add(p);
      }
      await Promise.all(inflight);
    })();

    const seen: StepSeen[] = [];
    let last: MigrationStatus | undefined;
    let atFlip: MigrationStatus | undefined;
    let writerPaused: MoveResult["writerPaused"];
    const tEdit = Date.now();
    log(`${n}: tier -> advanced, writer at ${settings.writesPerSecond} orders/s`);
    await setAttributes(ddb, config.tenantsTable, TENANT, { tier: "advanced" });
    let done: TenantStatus | undefined;
    let firstVerifyLoopAt: number | undefined;
    try {
      for (;;) {
        const now = Date.now();
        if (now - tEdit > settings.timeoutS * 1000)
          throw new Error(
            `move not done after ${settings.timeoutS} s; steps seen ${seen.map((s) => s.step).join(",")}; last migration ${JSON.stringify(last && { ...last, checkpoints: undefined })}`,
          );
        const s = await status();
        if (s?.tables !== undefined) serving = s.tables;
        const mig = s?.migration;
        if (mig !== undefined) {
          if (!seen.some((x) => x.step === mig.step)) {
            seen.push({ step: mig.step, at: now });
            log(`${n}: ${mig.step} at ${((now - tEdit) / 1000).toFixed(1)} s`);
          }
          if (mig.step === "drain" && atFlip === undefined) atFlip = mig;
          last = mig;
          if (mig.step === "catchup" || mig.step === "verify") firstVerifyLoopAt ??= now;
          if (
            settings.stallS > 0 &&
            !paused &&
            (mig.step === "catchup" || mig.step === "verify") &&
            firstVerifyLoopAt !== undefined &&
            now - firstVerifyLoopAt > settings.stallS * 1000
          ) {
            paused = true;
            writerPaused = { atS: (now - tEdit) / 1000, step: mig.step };
            log(
              `${n}: still in catchup/verify after ${settings.stallS} s (${mig.verifyAttempts ?? 0} verify rounds unequal): the writer pauses until the flip`,
            );
          }
        }
        if (paused && s?.tables?.orders === silo.orders) paused = false;
        if (s?.phase === "Ready" && mig === undefined && seen.length > 0) {
          done = s;
          break;
        }
        await sleep(STATUS_EVERY_MS);
      }
    } finally {
      writing = false;
      await writer;
    }
    const tReady = Date.now();
    if (done === undefined) throw new Error("the move loop ended without a Ready status");
    if (done.tables?.orders !== silo.orders || done.tables.products !== silo.products)
      throw new Error(`after the move status.tables is ${JSON.stringify(done.tables)}, expected ${JSON.stringify(silo)}`);

    // ---- what the app wrote, where it landed ----
    const flippedAt = atFlip?.flippedAt !== undefined ? Date.parse(atFlip.flippedAt) : undefined;
    const drainUntil = atFlip?.drainUntil !== undefined ? Date.parse(atFlip.drainUntil) : undefined;
    const accepted = writes.filter((w) => w.acceptedAt !== undefined);
    const toOld = accepted.filter((w) => w.table === pool.orders);
    const toNew = accepted.filter((w) => w.table === silo.orders);
    for (const w of accepted) expectedKeys.orders.add(sortKey("orders", "app", w.seq));
    const lastOld = toOld.length > 0 ? Math.max(...toOld.map((w) => w.acceptedAt ?? 0)) : undefined;
    const firstNew = toNew.length > 0 ? Math.min(...toNew.map((w) => w.acceptedAt ?? Infinity)) : undefined;

    log(`${n}: checking the silo and pooled tables`);
    const check = { expected: 0, inSilo: 0, lost: 0, extra: 0, strangers: 0, leftInPool: 0 };
    for (const app of ["orders", "products"] as const) {
      const items = await scan(cloud, silo[app]);
      const mine = items.filter((i) => i["tenantId"]?.S === TENANT).map((i) => i[app === "orders" ? "orderId" : "productId"]?.S ?? "");
      const have = new Set(mine);
      check.expected += expectedKeys[app].size;
      check.inSilo += have.size;
      check.lost += [...expectedKeys[app]].filter((k) => !have.has(k)).length;
      check.extra += mine.filter((k) => !expectedKeys[app].has(k)).length;
      check.strangers += items.length - mine.length;
      check.leftInPool += (await scan(cloud, pool[app])).filter((i) => i["tenantId"]?.S === TENANT).length;
    }
    if (check.lost > 0) log(`${n}: LOST ${check.lost} items`);

    const at = (step: string) => seen.find((x) => x.step === step)?.at;
    const order = STEPS.filter((s) => at(s) !== undefined);
    const steps = order.map((step, i) => {
      const next = order[i + 1];
      const from = at(step) ?? 0;
      return { step, firstSeenS: (from - tEdit) / 1000, lastedS: ((next !== undefined ? (at(next) ?? tReady) : tReady) - from) / 1000 };
    });
    const bf = at("backfill");
    const afterBf = order[order.indexOf("backfill") + 1];
    const backfillEnd = afterBf !== undefined ? at(afterBf) : undefined;
    const counts = last?.counts;
    const copied = (counts?.orders.copied ?? 0) + (counts?.products.copied ?? 0);
    const applied = (c: MigrationStatus | undefined) => (c?.counts?.orders.applied ?? 0) + (c?.counts?.products.applied ?? 0);
    const backfillS = bf !== undefined && backfillEnd !== undefined ? (backfillEnd - bf) / 1000 : undefined;
    const moveS = (tReady - tEdit) / 1000;
    const floorS = (2 * n) / PARTITION_WCU_PER_S;
    return {
      items: n,
      bystanderItems,
      loadS,
      onboardS,
      moveS,
      steps,
      unseenSteps: STEPS.filter((s) => at(s) === undefined),
      verifyAttempts: last?.verifyAttempts ?? 0,
      copied,
      backfillS,
      copyPerS: backfillS !== undefined && backfillS > 0 ? copied / backfillS : undefined,
      appliedBeforeFlip: applied(atFlip),
      appliedInDrain: applied(last) - applied(atFlip),
      flippedAtS: flippedAt !== undefined ? (flippedAt - tEdit) / 1000 : undefined,
      writerPaused,
      writeLatencyMs: latency(accepted.map((w) => (w.acceptedAt ?? 0) - w.sentAt)),
      writes: {
        sent: writes.length,
        accepted: accepted.length,
        failed: writes.filter((w) => w.error !== undefined).length,
        toOld: toOld.length,
        toNew: toNew.length,
      },
      cutover: {
        lastOldToFlipMs: lastOld !== undefined && flippedAt !== undefined ? flippedAt - lastOld : undefined,
        lastOldToFirstNewMs: lastOld !== undefined && firstNew !== undefined ? firstNew - lastOld : undefined,
        flipToFirstNewMs: flippedAt !== undefined && firstNew !== undefined ? firstNew - flippedAt : undefined,
      },
      oldWritesAfterFlip: flippedAt === undefined ? 0 : toOld.filter((w) => (w.acceptedAt ?? 0) > flippedAt).length,
      oldWritesAfterDrain: drainUntil === undefined ? 0 : toOld.filter((w) => (w.acceptedAt ?? 0) > drainUntil).length,
      check,
      floorS,
      ratio: moveS / floorS,
    };
  } finally {
    for (const close of closers) close();
    await controller?.stop();
    await cloud.stop();
  }
}

function render(rows: readonly MoveResult[]): string {
  const lines: string[] = [];
  const f1 = (x: number | undefined) => (x === undefined ? "-" : x.toFixed(1));
  const f0 = (x: number | undefined) => (x === undefined ? "-" : x.toFixed(0));
  for (const r of rows) {
    lines.push(
      "",
      `== ${r.items} orders + ${r.items} products (bystander: ${r.bystanderItems} + ${r.bystanderItems}); load ${f1(r.loadS)} s, onboarding ${f1(r.onboardS)} s ==`,
    );
    lines.push(
      `move (tier edit -> Ready, no migration): ${f1(r.moveS)} s; DynamoDB floor for ${2 * r.items} items in one partition key: ${f1(r.floorS)} s; ratio ${r.ratio.toFixed(1)}x (moto-bound)`,
    );
    lines.push(
      `steps (first seen, s after the edit; lasted until the next seen step; verify includes every catchup/verify round after it): ${r.steps.map((s) => `${s.step} @${s.firstSeenS.toFixed(1)} (${f1(s.lastedS)})`).join(", ")}` +
        (r.unseenSteps.length > 0 ? `; not seen (under ${STATUS_EVERY_MS} ms): ${r.unseenSteps.join(", ")}` : ""),
    );
    lines.push(
      `copy: ${r.copied} items in ${f1(r.backfillS)} s = ${f0(r.copyPerS)} items/s (backfill step, purge of the empty target included); verify rounds unequal: ${r.verifyAttempts}`,
    );
    lines.push(`stream changes applied: ${r.appliedBeforeFlip} before the flip, ${r.appliedInDrain} during the drain`);
    lines.push(
      `writer: ${r.writes.sent} sent, ${r.writes.accepted} accepted (${r.writes.toOld} old tables, ${r.writes.toNew} new), ${r.writes.failed} failed` +
        (r.writeLatencyMs
          ? `; write latency median ${f0(r.writeLatencyMs.median)} / p99 ${f0(r.writeLatencyMs.p99)} / max ${f0(r.writeLatencyMs.max)} ms`
          : "") +
        (r.writerPaused
          ? `; PAUSED at ${r.writerPaused.atS.toFixed(1)} s (in ${r.writerPaused.step}) until the flip, verification could not pass under steady writes`
          : ""),
    );
    lines.push(
      `cutover: last old write -> flippedAt ${f0(r.cutover.lastOldToFlipMs)} ms; last old write -> first new write ${f0(r.cutover.lastOldToFirstNewMs)} ms; flippedAt -> first new write ${f0(r.cutover.flipToFirstNewMs)} ms; ` +
        `old-table writes after the flip (drain applies them): ${r.oldWritesAfterFlip}, after drainUntil: ${r.oldWritesAfterDrain}`,
    );
    lines.push(
      `check: ${r.check.expected} expected, ${r.check.inSilo} in silo, lost ${r.check.lost}, unexpected ${r.check.extra}, other tenants' items in silo ${r.check.strangers}, left in pool ${r.check.leftInPool}`,
    );
  }
  return lines.join("\n");
}

async function load(
  cloud: TestCloud,
  table: string,
  app: "orders" | "products",
  tenantId: string,
  label: string,
  n: number,
  keys: Set<string>,
): Promise<void> {
  const held = { assertHeld: () => undefined };
  const chunk = 5000;
  for (let start = 0; start < n; start += chunk) {
    const items = Array.from({ length: Math.min(chunk, n - start) }, (_, i) => item(app, tenantId, label, start + i));
    await writeAll(
      cloud.clients.dynamodb,
      table,
      items.map((Item) => ({ PutRequest: { Item } })),
      held,
      { retry: DEFAULT_RETRY, concurrency: 8 },
    );
    for (let i = 0; i < items.length; i++) keys.add(sortKey(app, label, start + i));
  }
}

function sortKey(app: "orders" | "products", label: string, i: number): string {
  return `${app === "orders" ? "o" : "p"}-${label}-${String(i).padStart(8, "0")}`;
}

/** The shape bench/copy.ts uses: ~200 bytes of payload, a list of maps, numbers. */
function item(app: "orders" | "products", tenantId: string, label: string, i: number): Record<string, AttributeValue> {
  return {
    tenantId: { S: tenantId },
    [app === "orders" ? "orderId" : "productId"]: { S: sortKey(app, label, i) },
    quantity: { N: String(i % 97) },
    price: { N: "19.99" },
    status: { S: i % 3 === 0 ? "shipped" : "open" },
    lines: { L: [{ M: { productId: { S: `p-${i % 50}` }, qty: { N: "2" } } }] },
    note: { S: "x".repeat(200) },
  };
}

async function scan(cloud: TestCloud, table: string): Promise<Record<string, AttributeValue>[]> {
  const out: Record<string, AttributeValue>[] = [];
  let start: Record<string, AttributeValue> | undefined;
  do {
    const res = await cloud.clients.dynamodb.send(
      new ScanCommand({ TableName: table, ConsistentRead: true, ...(start ? { ExclusiveStartKey: start } : {}) }),
    );
    out.push(...(res.Items ?? []));
    start = res.LastEvaluatedKey;
  } while (start !== undefined);
  return out;
}

/** The code measured: a move's figures change with src/data and src/operator. */
function sourceInfo(): { readonly commit: string; readonly dirtyFiles: number } {
  try {
    const commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { encoding: "utf8" }).trim();
    const dirty = execFileSync("git", ["status", "--porcelain", "--", "src"], { encoding: "utf8" })
      .split("\n")
      .filter((l) => l.trim() !== "").length;
    return { commit, dirtyFiles: dirty };
  } catch {
    return { commit: "unknown", dirtyFiles: 0 };
  }
}

function latency(ms: readonly number[]): MoveResult["writeLatencyMs"] {
  if (ms.length === 0) return undefined;
  const sorted = [...ms].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  return { median: at(0.5), p99: at(0.99), max: sorted[sorted.length - 1] ?? 0 };
}

async function until<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs: number): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** The controller uses the SDK's default credential chain: the local cloud's throwaway keys, and no instance metadata lookups. */
function useLocalCredentials(): void {
  process.env["AWS_ACCESS_KEY_ID"] = LOCAL_CREDENTIALS.accessKeyId;
  process.env["AWS_SECRET_ACCESS_KEY"] = LOCAL_CREDENTIALS.secretAccessKey;
  process.env["AWS_EC2_METADATA_DISABLED"] = "true";
  delete process.env["AWS_PROFILE"];
}

function num(name: string, value: string, min: number): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < min) fail(`--${name} must be a number of at least ${min}, got ${value}`);
  return n;
}

function int(name: string, value: string, min: number): number {
  const n = num(name, value, min);
  if (!Number.isInteger(n)) fail(`--${name} must be a whole number, got ${value}`);
  return n;
}

function fail(message: string): never {
  process.stderr.write(`tier-move: ${message}\n${USAGE}\n`);
  process.exit(2);
}
