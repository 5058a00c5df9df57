import { DescribeStacksCommand } from "@aws-sdk/client-cloudformation";
import { GetItemCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DescribeServicesCommand } from "@aws-sdk/client-ecs";
import { marshall, unmarshall } from "@aws-sdk/util-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FaultRule } from "../../src/localcloud/index.js";
import type { MigrationStatus, TenantStatus } from "../../src/tenants/status.js";
import { shardOf } from "../../src/reconciler/shards.js";
import { APP_NAMES } from "../../src/tenants/record.js";
import { poolTableName, premiumClusterName, serviceName, siloTableName, stackName } from "../../src/tiers/naming.js";
import { eventually } from "../support/event-sink.js";
import { startHarness, type OperatorHarness } from "../support/operator.js";
import { spawnCli, type CliProcess } from "../support/spawn.js";
import {
  byKey,
  canonical,
  deleteItem,
  keyOf,
  putItem,
  putItems,
  readExport,
  scanTable,
  tableStatus,
  tenantItems,
  tenantRules,
  type DataApp,
  type Item,
  type TenantRule,
} from "../support/tenant-tables.js";

/**
 * A tenant's life against the local cloud, as docs/design.md "Contract:
 * tenant data" and "Contract: routing" state it: tier moves in every
 * direction with the application writing all along, suspension, ids equal
 * ignoring case, offboarding's export restored by `tenantctl restore`, a
 * throttled target table, and controllers SIGKILLed at each step of a move.
 *
 * One cloud and one in-process controller serve the file; every tenant is
 * onboarded at once in beforeAll (onboarding is the slow part), and each
 * test uses its own tenants. The application is played by the test: it
 * writes into whichever tables status.tables names, and during a move also
 * into the old tables while the controller says they still serve (before the
 * flip) or are being drained (just after it).
 */

type Tier = "basic" | "advanced" | "premium";
type Tables = Readonly<Record<DataApp, string>>;
const APPS: readonly DataApp[] = ["orders", "products"];
// Long enough for the app, polled on a loaded 2-core machine, to land writes in the drain.
const DRAIN_SECONDS = 6;
const BEFORE_FLIP = new Set(["provision", "capture", "backfill", "catchup", "verify"]);

let h: OperatorHarness;
const prefix = () => h.config.namePrefix;
const pool = (): Tables => ({ orders: poolTableName(prefix(), "orders"), products: poolTableName(prefix(), "products") });
const silo = (tenantId: string): Tables => ({
  orders: siloTableName(prefix(), tenantId, "orders"),
  products: siloTableName(prefix(), tenantId, "products"),
});
const tablesFor = (tenantId: string, tier: Tier): Tables => (tier === "basic" ? pool() : silo(tenantId));
const ddb = (): DynamoDBClient => h.clients.dynamodb;

/** Every tenant of the file, onboarded together. */
const ONBOARD: Readonly<Record<string, Tier>> = {
  "mv-b2a": "basic",
  "mv-b2p": "basic",
  "mv-a2b": "advanced",
  "mv-p2b": "premium",
  "mv-a2p": "advanced",
  "mv-p2a": "premium",
  "mv-steady": "basic",
  "mv-rev": "basic",
  "by-pool": "basic",
  "by-silo": "advanced",
  "sus-basic": "basic",
  "sus-silo": "advanced",
  "exp-adv": "advanced",
  "thr-1": "basic",
  "k-up": "basic",
  "k-down": "advanced",
};

beforeAll(async () => {
  h = await startHarness({ MIGRATION_DRAIN_SECONDS: String(DRAIN_SECONDS), CONCURRENCY: "16" });
  await Promise.all(
    Object.entries(ONBOARD).map(([tenantId, tier]) =>
      h.put({ tenantId, tier, tenantName: `Tenant ${tenantId}`, tenantRegistrationId: `reg-${tenantId}` }),
    ),
  );
  await Promise.all(Object.keys(ONBOARD).map((id) => h.waitForPhase(id, "Ready", 120_000)));
}, 180_000);

afterAll(async () => {
  await h?.stop();
});

// ---------------------------------------------------------------------------
// The application's items

let serial = 0;
/** An item with most attribute types, so "moved unchanged" means more than strings. */
function makeItem(app: DataApp, tenantId: string, label: string, rev = 1): Item {
  const n = ++serial;
  return {
    tenantId: { S: tenantId },
    [app === "orders" ? "orderId" : "productId"]: { S: `${label}-${String(n).padStart(5, "0")}` },
    qty: { N: String(n % 97) },
    price: { N: "12.5" },
    note: { S: `${label} item ${n} of ${tenantId}` },
    rev: { N: String(rev) },
    paid: { BOOL: n % 2 === 0 },
    tags: { SS: ["a", `t${n % 5}`] },
    lines: { L: [{ M: { sku: { S: `sku-${n}` }, n: { N: "2" } } }, { NULL: true }] },
    blob: { B: Uint8Array.from([n % 256, 1, 2, 3]) },
  };
}

/** What a tenant's tables must hold in the end: key -> item, or null once deleted. */
class Expected {
  readonly items: Record<DataApp, Map<string, Item | null>> = { orders: new Map(), products: new Map() };
  put(app: DataApp, item: Item): void {
    this.items[app].set(keyOf(app, item), item);
  }
  remove(app: DataApp, item: Item): void {
    this.items[app].set(keyOf(app, item), null);
  }
  live(app: DataApp): Item[] {
    return [...this.items[app].values()].filter((i): i is Item => i !== null);
  }
  some(app: DataApp, n: number): Item[] {
    return this.live(app).slice(0, n);
  }
}

async function write(table: string, app: DataApp, item: Item, expected: Expected): Promise<void> {
  await putItem(ddb(), table, item);
  expected.put(app, item);
}

async function seed(
  tenantId: string,
  tables: Tables,
  counts: Readonly<Record<DataApp, number>>,
  expected: Expected,
  label = "seed",
): Promise<void> {
  for (const app of APPS) {
    const items = Array.from({ length: counts[app] }, () => makeItem(app, tenantId, label));
    await putItems(ddb(), tables[app], items);
    for (const i of items) expected.put(app, i);
  }
}

/** The tenant's items in a table must be exactly the expected ones, content included. */
async function expectItems(tenantId: string, tables: Tables, expected: Expected): Promise<void> {
  for (const app of APPS) {
    expect(byKey(app, await tenantItems(ddb(), tables[app], tenantId)), `${tenantId}'s ${app} in ${tables[app]}`).toEqual(
      byKey(app, expected.live(app)),
    );
  }
}

// ---------------------------------------------------------------------------
// Reading the controller's side

async function ruleOf(tenantId: string): Promise<TenantRule | undefined> {
  const rules = await tenantRules(h.clients.elbv2, h.config.listenerArn, tenantId);
  if (rules.length > 1) throw new Error(`${tenantId} has ${rules.length} listener rules`);
  return rules[0];
}

async function stackOf(tenantId: string) {
  try {
    return (await h.clients.cloudformation.send(new DescribeStacksCommand({ StackName: stackName(prefix(), tenantId) }))).Stacks?.[0];
  } catch {
    return undefined;
  }
}

async function targetGroupOf(tenantId: string): Promise<string | undefined> {
  return (await stackOf(tenantId))?.Outputs?.find((o) => o.OutputKey === "TargetGroupArn")?.OutputValue;
}

async function eventsOf(tenantId: string, detailType: string, specHash?: string) {
  return (await h.sink.of(tenantId, detailType)).filter((e) => specHash === undefined || e.detail["specHash"] === specHash);
}

async function oneEvent(tenantId: string, detailType: string, specHash?: string) {
  return eventually(async () => {
    const e = await eventsOf(tenantId, detailType, specHash);
    return e.length > 0 ? e : undefined;
  }, `${detailType} for ${tenantId}`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------
// One tier move, with the application writing throughout

/** What a background task threw, as an Error to rethrow where the test asserts. */
const asError = (e: unknown): Error => (e instanceof Error ? e : new Error(String(e)));

interface MoveLog {
  readonly tenantId: string;
  readonly from: Tier;
  readonly to: Tier;
  readonly oldTables: Tables;
  readonly newTables: Tables;
  readonly expected: Expected;
  /** Steps of status.migration in the order they were seen. */
  readonly steps: string[];
  /** Broken promises seen while polling: tables switched early, wrong rule, early provisionSuccess... */
  readonly violations: string[];
  /** Items the app wrote to the old tables while the move said it was before its flip. */
  writtenBeforeFlip: number;
  /** Items the app wrote to the old tables after the flip, during the drain. */
  writtenInDrain: number;
  newSpecHash: string;
  oldSpecHash: string;
  ms: number;
  error?: Error;
}

interface MoveOptions {
  /** How often the app looks at the status. @default 100 */
  readonly everyMs?: number;
  /**
   * Write at every look, to whatever table status.tables names (a tenant
   * whose traffic never pauses), instead of a few writes per step.
   * @default false
   */
  readonly steady?: boolean;
  /** Seen for each status read; may act (kill a controller). */
  readonly onStatus?: (status: TenantStatus | undefined) => Promise<void>;
  /** @default 90000 */
  readonly timeoutMs?: number;
  /** Check the listener rule at each new step. @default true */
  readonly checkRules?: boolean;
}

/** Writes the app makes into the old tables per step of a move before its flip (bounded: see moveWhileWriting). */
const WRITES_PER_STEP = 2;
/** Writes into the old tables after the flip, while the move drains them. */
const WRITES_IN_DRAIN = 4;

/**
 * Changes the tenant's tier and plays its application until the move is
 * over: writing, updating and deleting in the old tables while they serve,
 * some more in the old tables during the drain (in flight at the flip),
 * then in the new ones. Every read of the status checks the contract's
 * promises about status.tables, routing and the SBT event.
 *
 * By default the app writes a few items in each step and then pauses, so
 * the move's verification can find the source quiet; `steady` keeps
 * writing at every look.
 */
async function moveWhileWriting(tenantId: string, from: Tier, to: Tier, expected: Expected, options: MoveOptions = {}): Promise<MoveLog> {
  const started = Date.now();
  const before = await h.status(tenantId);
  const oldTables = tablesFor(tenantId, from);
  const newTables = tablesFor(tenantId, to);
  const log: MoveLog = {
    tenantId,
    from,
    to,
    oldTables,
    newTables,
    expected,
    steps: [],
    violations: [],
    writtenBeforeFlip: 0,
    writtenInDrain: 0,
    newSpecHash: "",
    oldSpecHash: before?.observedSpecHash ?? "",
    ms: 0,
  };
  const oldTg = from === "basic" ? undefined : await targetGroupOf(tenantId);
  const copies = (from === "basic") !== (to === "basic");
  if (!sameTables(before?.tables, oldTables))
    log.violations.push(`before the move status.tables was ${JSON.stringify(before?.tables)}, not ${JSON.stringify(oldTables)}`);

  await h.update(tenantId, { tier: to });
  let seenMigration = false;
  let mutated = false;
  let tick = 0;
  const perStep = new Map<string, number>();
  let afterFlip = 0;
  const deadline = Date.now() + (options.timeoutMs ?? 150_000);
  for (;;) {
    if (Date.now() > deadline)
      throw new Error(
        `move ${tenantId} ${from} -> ${to} did not finish in ${Date.now() - started} ms; steps seen ${log.steps.join(",")}; last status ${JSON.stringify(await h.status(tenantId))}`,
      );
    const s = await h.status(tenantId);
    await options.onStatus?.(s);
    const m: MigrationStatus | undefined = s?.migration;
    if (s !== undefined && s.observedSpecHash !== log.oldSpecHash) log.newSpecHash = s.observedSpecHash;
    if (m !== undefined) {
      seenMigration = true;
      if (log.steps[log.steps.length - 1] !== m.step) {
        log.steps.push(m.step);
        await checkStep(log, s as TenantStatus, m, oldTg, options.checkRules ?? true);
      }
    }
    const done = s?.phase === "Ready" && m === undefined && log.newSpecHash !== "" && (seenMigration || !copies) && s.servingTier === to;
    if (done) break;

    // The app's writes for this look: where depends on what the status says now.
    tick++;
    const app: DataApp = tick % 2 === 0 ? "orders" : "products";
    const step = m === undefined ? (seenMigration ? "done" : "pre") : m.step;
    const drainLeft = m?.step === "drain" ? Date.parse(m.drainUntil ?? "") - Date.now() : 0;
    const budget = (key: string, max: number) => {
      const n = perStep.get(key) ?? 0;
      if (!options.steady && n >= max) return false;
      perStep.set(key, n + 1);
      return true;
    };
    if (step === "pre" || BEFORE_FLIP.has(step) || step === "flip") {
      if (budget(step, WRITES_PER_STEP)) {
        await write(oldTables[app], app, makeItem(app, tenantId, step), expected);
        if (step !== "pre") log.writtenBeforeFlip++;
      }
      if (!mutated && step !== "pre") {
        // An update and a delete of items the backfill may already have copied.
        mutated = true;
        const [changed, gone] = expected.some("orders", 2);
        if (changed && gone) {
          await write(oldTables.orders, "orders", { ...changed, rev: { N: "2" }, note: { S: "updated during the move" } }, expected);
          await deleteItem(ddb(), oldTables.orders, "orders", gone);
          expected.remove("orders", gone);
        }
      }
    } else if (step === "drain" && drainLeft > 1500 && budget("inflight", WRITES_IN_DRAIN)) {
      // In flight at the flip: a request routed before it, landing just after.
      await write(oldTables[app], app, makeItem(app, tenantId, "inflight"), expected);
      log.writtenInDrain++;
    } else if (options.steady || afterFlip < WRITES_IN_DRAIN) {
      // Served by the new tables now.
      afterFlip++;
      const current = step === "drain" || step === "retire" || step === "done" ? newTables : oldTables;
      await write(current[app], app, makeItem(app, tenantId, "after"), expected);
    }
    await sleep(options.everyMs ?? 100);
  }
  log.ms = Date.now() - started;
  return log;
}

function sameTables(a: Tables | undefined, b: Tables): boolean {
  return a !== undefined && a.orders === b.orders && a.products === b.products;
}

/** The contract's promises at one step of a move, recorded rather than thrown so the loop keeps the app writing. */
async function checkStep(log: MoveLog, s: TenantStatus, m: MigrationStatus, oldTg: string | undefined, checkRules: boolean): Promise<void> {
  const { tenantId } = log;
  const flipped = m.step === "drain" || m.step === "retire";
  const want = flipped ? log.newTables : log.oldTables;
  if (!sameTables(s.tables, want))
    log.violations.push(`at step ${m.step} status.tables was ${JSON.stringify(s.tables)}, expected ${JSON.stringify(want)}`);
  if (s.phase === "Ready") log.violations.push(`phase Ready while the move is at ${m.step}`);
  if (flipped) {
    const early = await eventsOf(tenantId, "sbt_aws_provisionSuccess", s.observedSpecHash);
    if (early.length > 0) log.violations.push(`provisionSuccess for the new spec sent while the move is at ${m.step}`);
  }
  if (!checkRules) return;
  // verify and flip are left out: the routing switch happens inside the flip step, before its checkpoint.
  if (!flipped && m.step !== "verify" && m.step !== "flip") {
    const rule = await ruleOf(tenantId);
    if (log.from === "basic" ? rule !== undefined : rule?.kind !== "forward" || rule.targetGroupArn !== oldTg) {
      log.violations.push(
        `at step ${m.step} the rule was ${JSON.stringify(rule && { kind: rule.kind, tg: rule.kind === "forward" ? rule.targetGroupArn : undefined })}, expected the ${log.from} tier's`,
      );
    }
  }
  if (flipped) {
    const rule = await ruleOf(tenantId);
    const tg = log.to === "basic" ? undefined : await targetGroupOf(tenantId);
    if (log.to === "basic" ? rule !== undefined : rule?.kind !== "forward" || rule.targetGroupArn !== tg) {
      log.violations.push(
        `at step ${m.step} the rule was ${JSON.stringify(rule && { kind: rule.kind })}, expected a forward to ${tg ?? "nothing (basic)"}`,
      );
    }
  }
}

/** After a move: every item in the new tables, none left behind, routing and SBT told once. */
/**
 * `killed`: controllers were SIGKILLed during the move. SBT's events are at
 * least once (ADR 0003): a kill, or a lease lost on a loaded machine, between
 * publishing provisionSuccess and writing the status that records it makes
 * the next leader send it again, for the same spec. Without either, exactly once.
 */
async function expectMoved(log: MoveLog, killed = false): Promise<void> {
  const { tenantId, to, newTables, oldTables } = log;
  expect(log.violations).toEqual([]);
  const status = await h.status(tenantId);
  expect(status?.tables).toEqual(newTables);
  expect(status?.migration).toBeUndefined();
  await expectItems(tenantId, newTables, log.expected);
  // No other tenant's item came along into the tenant's own tables.
  if (to !== "basic") {
    for (const app of APPS) {
      const strangers = (await scanTable(ddb(), newTables[app])).filter((i) => i["tenantId"]?.S !== tenantId);
      expect(
        strangers.map((i) => keyOf(app, i)),
        `other tenants' items in ${newTables[app]}`,
      ).toEqual([]);
    }
  }
  // Nothing left in the old home: the pooled items purged, or the silo tables gone.
  if ((log.from === "basic") !== (to === "basic")) {
    for (const app of APPS) {
      if (log.from === "basic") expect(await tenantItems(ddb(), oldTables[app], tenantId)).toEqual([]);
      else expect(await tableStatus(ddb(), oldTables[app]), `${oldTables[app]} dropped`).toBeUndefined();
    }
  }
  const rule = await ruleOf(tenantId);
  if (to === "basic") expect(rule).toBeUndefined();
  else expect(rule).toMatchObject({ kind: "forward", targetGroupArn: await targetGroupOf(tenantId) });
  const success = await oneEvent(tenantId, "sbt_aws_provisionSuccess", log.newSpecHash);
  if (killed || (await h.leaseLosses()) > 0) expect(success.length).toBeGreaterThanOrEqual(1);
  else expect(success).toHaveLength(1);
  expect(success[0]?.detail).toMatchObject({
    tenantRegistrationId: `reg-${tenantId}`,
    jobOutput: { tenantRegistrationData: { registrationStatus: "Created" } },
  });
}

/**
 * basic -> advanced, turned back to basic while the copy is under way
 * (before the flip): the move aborts, the partial silo copy and stack go,
 * and the pool keeps every item, including those written meanwhile.
 */
async function reverseBeforeFlip(tenantId: string, expected: Expected): Promise<{ steps: string[]; reversedAt: string }> {
  await h.update(tenantId, { tier: "advanced" });
  const steps: string[] = [];
  let reversedAt = "";
  const deadline = Date.now() + 60_000;
  for (let tick = 0; ; tick++) {
    if (Date.now() > deadline)
      throw new Error(
        `${tenantId}'s reversed move did not settle; steps ${steps.join(",")}; status ${JSON.stringify(await h.status(tenantId))}`,
      );
    const s = await h.status(tenantId);
    const step = s?.migration?.step;
    if (step !== undefined && steps[steps.length - 1] !== step) steps.push(step);
    // The app writes where routing sends it: the tables status.tables names.
    const serving = s?.tables ?? pool();
    if (reversedAt === "" && step !== undefined && ["capture", "backfill", "catchup", "verify"].includes(step)) {
      const app: DataApp = tick % 2 === 0 ? "orders" : "products";
      await write(serving[app], app, makeItem(app, tenantId, "before-reversal"), expected);
      await h.update(tenantId, { tier: "basic" });
      reversedAt = step;
    } else if (reversedAt !== "" && s?.phase === "Ready" && s.migration === undefined && s.servingTier === "basic") {
      return { steps, reversedAt };
    } else if (tick % 3 === 0) {
      const app: DataApp = tick % 2 === 0 ? "orders" : "products";
      await write(serving[app], app, makeItem(app, tenantId, reversedAt === "" ? "pre" : "after-reversal"), expected);
    }
    await sleep(50);
  }
}

// ---------------------------------------------------------------------------

describe("tier moves in every direction, with the application writing throughout", () => {
  const MOVES: readonly { tenantId: string; from: Tier; to: Tier }[] = [
    { tenantId: "mv-b2a", from: "basic", to: "advanced" },
    { tenantId: "mv-b2p", from: "basic", to: "premium" },
    { tenantId: "mv-a2b", from: "advanced", to: "basic" },
    { tenantId: "mv-p2b", from: "premium", to: "basic" },
    { tenantId: "mv-a2p", from: "advanced", to: "premium" },
    { tenantId: "mv-p2a", from: "premium", to: "advanced" },
  ];
  const logs = new Map<string, MoveLog>();
  const bystanders = { "by-pool": new Expected(), "by-silo": new Expected() };
  const stacksBefore = new Map<string, string | undefined>();
  const reversal = { expected: new Expected(), steps: [] as string[], reversedAt: "", error: undefined as Error | undefined };

  beforeAll(async () => {
    // Same sort keys in every tenant: the copy must tell tenants apart by tenantId alone.
    serial = 0;
    for (const [id, exp] of Object.entries(bystanders))
      await seed(id, tablesFor(id, ONBOARD[id] ?? "basic"), { orders: 15, products: 6 }, exp);
    const expectations = new Map(MOVES.map((m) => [m.tenantId, new Expected()]));
    for (const m of MOVES) {
      serial = 0;
      await seed(m.tenantId, tablesFor(m.tenantId, m.from), { orders: 30, products: 12 }, expectations.get(m.tenantId) ?? new Expected());
      stacksBefore.set(m.tenantId, (await stackOf(m.tenantId))?.StackId);
    }
    const steady = new Expected();
    await seed("mv-steady", pool(), { orders: 30, products: 12 }, steady);
    await seed("mv-rev", pool(), { orders: 20, products: 8 }, reversal.expected);
    // Slow batch writes and stream reads stretch the copy's steps, so the app's writes land inside them.
    const copied = MOVES.filter((m) => (m.from === "basic") !== (m.to === "basic"));
    const slow: FaultRule[] = [
      ...[...copied.filter((m) => m.to !== "basic").map((m) => silo(m.tenantId)), silo("mv-steady"), silo("mv-rev"), pool()].flatMap((t) =>
        APPS.map((a): FaultRule => ({ service: "dynamodb", action: "BatchWriteItem", resource: t[a], latencyMs: 250 })),
      ),
      ...copied
        .filter((m) => m.from !== "basic")
        .flatMap((m) =>
          APPS.map((a): FaultRule => ({ service: "dynamodb", action: "DescribeStream", resource: silo(m.tenantId)[a], latencyMs: 150 })),
        ),
    ];
    h.cloud.control.setFaults(slow);
    // Other tenants keep writing to the same tables while the moves run.
    let moving = true;
    const bystanderApp = (async () => {
      for (let i = 0; moving; i++) {
        for (const [id, exp] of Object.entries(bystanders)) {
          const app: DataApp = i % 2 === 0 ? "orders" : "products";
          await write(tablesFor(id, ONBOARD[id] ?? "basic")[app], app, makeItem(app, id, "bystander"), exp);
        }
        await sleep(150);
      }
    })();
    try {
      await Promise.all([
        (async () => {
          try {
            Object.assign(reversal, await reverseBeforeFlip("mv-rev", reversal.expected));
          } catch (error) {
            reversal.error = asError(error);
          }
        })(),
        // A tenant whose traffic never pauses: it writes 5 items a second, before, during and after its
        // move, to a target whose batch writes take 250 ms like the others'. The other moves take ~15 s.
        (async () => {
          try {
            logs.set("mv-steady", await moveWhileWriting("mv-steady", "basic", "advanced", steady, { steady: true, everyMs: 200 }));
            if (process.env["TEST_TIMINGS"]) console.info(`mv-steady: ${logs.get("mv-steady")?.ms} ms`);
          } catch (error) {
            logs.set("mv-steady", { tenantId: "mv-steady", error: asError(error) } as MoveLog);
          }
        })(),
        ...MOVES.map(async (m) => {
          const expected = expectations.get(m.tenantId) ?? new Expected();
          try {
            logs.set(m.tenantId, await moveWhileWriting(m.tenantId, m.from, m.to, expected));
            if (process.env["TEST_TIMINGS"])
              console.info(`${m.tenantId}: ${logs.get(m.tenantId)?.ms} ms, steps ${logs.get(m.tenantId)?.steps.join(",")}`);
          } catch (error) {
            logs.set(m.tenantId, { tenantId: m.tenantId, from: m.from, to: m.to, error: asError(error) } as MoveLog);
          }
        }),
      ]);
    } finally {
      moving = false;
      await bystanderApp;
      h.cloud.control.setFaults([]);
    }
  }, 240_000);

  const logOf = (tenantId: string): MoveLog => {
    const log = logs.get(tenantId);
    if (log === undefined) throw new Error(`no move ran for ${tenantId}`);
    if (log.error !== undefined) throw log.error;
    return log;
  };

  it.each(MOVES.filter((m) => (m.from === "basic") !== (m.to === "basic")))(
    "$from -> $to: every item written before, during and just after the flip ends up in the new tables, which status.tables names only from the flip",
    async ({ tenantId }) => {
      const log = logOf(tenantId);
      // The test reached every window it means to test.
      expect(log.steps).toContain("drain");
      expect(log.steps.some((s) => BEFORE_FLIP.has(s))).toBe(true);
      expect(log.writtenBeforeFlip).toBeGreaterThan(0);
      expect(log.writtenInDrain).toBeGreaterThan(0);
      expect(log.steps.indexOf("drain")).toBeGreaterThan(log.steps.findIndex((s) => BEFORE_FLIP.has(s)));
      await expectMoved(log);
    },
  );

  it.each(MOVES.filter((m) => (m.from === "basic") === (m.to === "basic")))(
    "$from -> $to: the silo tables stay, nothing is copied, routing never leaves the target group",
    async ({ tenantId, to }) => {
      const log = logOf(tenantId);
      expect(log.steps).toEqual([]);
      expect(log.oldTables).toEqual(log.newTables);
      await expectMoved(log);
      const stack = await stackOf(tenantId);
      expect(stack?.StackId).toBe(stacksBefore.get(tenantId));
      const cluster = to === "premium" ? premiumClusterName(prefix(), tenantId) : h.config.advancedCluster;
      const services = await h.clients.ecs.send(
        new DescribeServicesCommand({ cluster, services: APP_NAMES.map((a) => serviceName(prefix(), tenantId, a)) }),
      );
      expect(services.services?.filter((s) => s.status === "ACTIVE")).toHaveLength(APP_NAMES.length);
    },
  );

  it("basic -> advanced completes (no livelock in verify) while the tenant keeps writing 5 items a second, losing none", async () => {
    const log = logOf("mv-steady");
    expect(log.writtenBeforeFlip).toBeGreaterThan(0);
    await expectMoved(log);
  });

  it("basic -> advanced turned back before its flip: aborted, the pool keeps every item, the partial silo copy and stack go", async () => {
    if (reversal.error !== undefined) throw reversal.error;
    expect(reversal.steps).toContain("abort");
    expect(reversal.steps).not.toContain("flip");
    expect(reversal.steps).not.toContain("drain");
    const status = await h.status("mv-rev");
    expect(status?.tables).toEqual(pool());
    await expectItems("mv-rev", pool(), reversal.expected);
    for (const app of APPS) expect(await tableStatus(ddb(), silo("mv-rev")[app])).toBeUndefined();
    const stack = await stackOf("mv-rev");
    expect(stack === undefined || stack.StackStatus === "DELETE_COMPLETE").toBe(true);
    expect(await ruleOf("mv-rev")).toBeUndefined();
  });

  it("leaves other tenants' items untouched and copies none of them", async () => {
    for (const m of MOVES) logOf(m.tenantId);
    for (const [id, exp] of Object.entries(bystanders)) await expectItems(id, tablesFor(id, ONBOARD[id] ?? "basic"), exp);
    // The pooled tables hold, per tenant, only what that tenant wrote.
    for (const app of APPS) {
      const owners = new Set((await scanTable(ddb(), pool()[app])).map((i) => i["tenantId"]?.S));
      for (const m of MOVES.filter((x) => x.to !== "basic"))
        expect(owners.has(m.tenantId), `${m.tenantId} left items in ${pool()[app]}`).toBe(false);
    }
  });
});

describe("suspension", () => {
  it("refuses a basic and a silo tenant's requests with a 403 rule, scales the silo to 0, keeps data and stack, and resumes both", async () => {
    const ids = ["sus-basic", "sus-silo"] as const;
    const expected = { "sus-basic": new Expected(), "sus-silo": new Expected() };
    for (const id of ids) await seed(id, tablesFor(id, ONBOARD[id] ?? "basic"), { orders: 5, products: 3 }, expected[id]);
    const tg = await targetGroupOf("sus-silo");
    const stackBefore = (await stackOf("sus-silo"))?.StackId;
    const siloServices = APP_NAMES.map((a) => serviceName(prefix(), "sus-silo", a));
    const siloServicesNow = async () =>
      (await h.clients.ecs.send(new DescribeServicesCommand({ cluster: h.config.advancedCluster, services: siloServices }))).services ?? [];
    const countsBefore = Object.fromEntries((await siloServicesNow()).map((s) => [s.serviceName ?? "", s.desiredCount]));
    expect(Object.values(countsBefore).every((c) => Number(c ?? 0) > 0)).toBe(true);
    const tablesBefore = Object.fromEntries(await Promise.all(ids.map(async (id) => [id, (await h.status(id))?.tables] as const)));

    // The silo tenant alone first, so the calls seen are its own: routing is blocked before anything is scaled down.
    const calls: string[] = [];
    const unsubscribe = h.controller.calls.onCall((e) => {
      if (
        e.kind === "call" &&
        e.outcome === "ok" &&
        ((e.service === "elbv2" && /Rule/.test(e.operation) && !e.operation.startsWith("Describe")) ||
          (e.service === "ecs" && e.operation === "UpdateService"))
      )
        calls.push(`${e.service}:${e.operation}`);
    });
    await h.update("sus-silo", { suspended: true });
    await h.waitForPhase("sus-silo", "Suspended");
    unsubscribe();
    await h.update("sus-basic", { suspended: true });
    const suspended = await Promise.all(ids.map((id) => h.waitForPhase(id, "Suspended")));

    for (const [i, id] of ids.entries()) {
      expect(await ruleOf(id)).toMatchObject({ kind: "fixed-response", statusCode: "403" });
      expect(suspended[i]?.tables).toEqual(tablesBefore[id]);
      await expectItems(id, tablesFor(id, ONBOARD[id] ?? "basic"), expected[id]);
      const events = await oneEvent(id, "sbt_aws_deactivateSuccess");
      expect(events).toHaveLength(1);
      expect(events[0]?.detail).toMatchObject({ tenantRegistrationId: `reg-${id}` });
    }
    for (const s of await siloServicesNow()) {
      expect(s.status).toBe("ACTIVE");
      expect(s.desiredCount, `${s.serviceName} desiredCount`).toBe(0);
    }
    expect((await stackOf("sus-silo"))?.StackId).toBe(stackBefore);
    expect((await stackOf("sus-silo"))?.StackStatus).toMatch(/_COMPLETE$/);
    const firstRuleWrite = calls.findIndex((c) => c.startsWith("elbv2:"));
    const firstScale = calls.indexOf("ecs:UpdateService");
    expect(firstRuleWrite).toBeGreaterThanOrEqual(0);
    expect(firstScale).toBeGreaterThan(firstRuleWrite);

    for (const id of ids) await h.update(id, { suspended: false });
    await Promise.all(
      ids.map((id) => eventually(async () => ((await h.status(id))?.phase === "Ready" ? true : undefined), `${id} resumed`)),
    );
    for (const id of ids) {
      const events = await oneEvent(id, "sbt_aws_activateSuccess");
      expect(events).toHaveLength(1);
      await expectItems(id, tablesFor(id, ONBOARD[id] ?? "basic"), expected[id]);
    }
    expect(await ruleOf("sus-basic")).toBeUndefined();
    expect(await ruleOf("sus-silo")).toMatchObject({ kind: "forward", targetGroupArn: tg });
    expect(Object.fromEntries((await siloServicesNow()).map((s) => [s.serviceName, s.desiredCount]))).toEqual(countsBefore);
  });
});

describe("tenant ids equal ignoring case", () => {
  it("serves the first and refuses the second, which owns nothing", async () => {
    const ids = ["CaseMix", "casemix"];
    await Promise.all(
      ids.map((tenantId) => h.put({ tenantId, tier: "advanced", tenantName: tenantId, tenantRegistrationId: `reg-${tenantId}` })),
    );
    const phases = await eventually(
      async () => {
        const all = await Promise.all(ids.map(async (id) => (await h.status(id))?.phase));
        return all.includes("Ready") && all.includes("Failed") ? all : undefined;
      },
      "one Ready and one Failed",
      60_000,
    );
    const winner = ids[phases.indexOf("Ready")] ?? "";
    const loser = ids[phases.indexOf("Failed")] ?? "";
    const refused = await h.status(loser);
    expect(refused?.message).toContain(`equals tenant "${winner}" ignoring case`);
    expect(refused?.tables).toBeUndefined();
    expect(refused?.route).toBeUndefined();
    expect(await stackOf(loser)).toBeUndefined();
    expect(await tenantRules(h.clients.elbv2, h.config.listenerArn, loser)).toEqual([]);
    expect(await ruleOf(winner)).toMatchObject({ kind: "forward", targetGroupArn: await targetGroupOf(winner) });
    const failure = await oneEvent(loser, "sbt_aws_provisionFailure");
    expect(failure[0]?.detail).toMatchObject({
      tenantRegistrationId: `reg-${loser}`,
      jobOutput: { tenantRegistrationData: { registrationStatus: "Failed" } },
    });
    expect(String(failure[0]?.detail["reason"])).toContain(`"${winner}"`);
    expect(await eventsOf(loser, "sbt_aws_provisionSuccess")).toEqual([]);
  });
});

describe("offboarding export and tenantctl restore", () => {
  it("exports an offboarded tenant's items, deletes them, and restores them with equal content into its new tables", async () => {
    const id = "exp-adv";
    const expected = new Expected();
    await seed(id, silo(id), { orders: 40, products: 15 }, expected);
    const original = Object.fromEntries(APPS.map((app) => [app, byKey(app, expected.live(app))]));

    await h.update(id, { sbtaws_active: false });
    const gone = await h.waitForPhase(id, "Deprovisioned", 60_000);
    const backup = gone.backup;
    expect(backup?.location).toMatch(new RegExp(`^s3://${h.config.backupBucket}/.*${id}.*/$`));
    expect(backup?.counts).toEqual({ orders: 40, products: 15 });
    const deprovisioned = await oneEvent(id, "sbt_aws_deprovisionSuccess");
    expect(deprovisioned[0]?.detail).toMatchObject({ backup: { location: backup?.location } });

    // The export: DynamoDB-export JSON lines ({"Item": ...} per line) plus a manifest with counts.
    const exported = await readExport(h.clients.s3, backup?.location ?? "");
    expect(exported.manifest).toMatchObject({ tenantId: id, tables: { orders: { itemCount: 40 }, products: { itemCount: 15 } } });
    expect(exported.lines).toHaveLength(55);
    for (const line of exported.lines) expect(Object.keys(line)).toEqual(["Item"]);
    const lineKeys = exported.lines.map((l) => canonical((l["Item"] as Item)["tenantId"]));
    expect(new Set(lineKeys)).toEqual(new Set([canonical({ S: id })]));

    expect(await ruleOf(id)).toBeUndefined();
    // Deleted from every live table once exported.
    for (const app of APPS) {
      expect(await tableStatus(ddb(), silo(id)[app])).toBeUndefined();
      expect(await tenantItems(ddb(), pool()[app], id)).toEqual([]);
    }

    // Back as a basic tenant, then restored by a person with the CLI.
    await h.update(id, { sbtaws_active: true, tier: "basic" });
    const back = await eventually(
      async () => {
        const s = await h.status(id);
        return s?.phase === "Ready" && s.tables !== undefined ? s : undefined;
      },
      `${id} Ready again`,
      60_000,
    );
    expect(back.tables).toEqual(pool());
    const cli = spawnCli(["restore", id, "--from", backup?.location ?? "", "-o", "json"], {
      ...h.cloud.env,
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
    });
    const code = await cli.exited;
    expect(code, cli.output()).toBe(0);
    expect(JSON.parse(cli.output())).toMatchObject({
      tenantId: id,
      tables: { orders: { table: pool().orders, items: 40 }, products: { table: pool().products, items: 15 } },
    });
    for (const app of APPS) expect(byKey(app, await tenantItems(ddb(), pool()[app], id)), `${app} restored`).toEqual(original[app]);
  });
});

describe("a throttled target table during the copy", () => {
  it("completes the move with every item while the target leaves half of each batch unprocessed and refuses some outright", async () => {
    const id = "thr-1";
    const expected = new Expected();
    await seed(id, pool(), { orders: 200, products: 60 }, expected);
    const target = silo(id);
    h.cloud.control.setFaults([
      { service: "dynamodb", resource: target.orders, unprocessedFraction: 0.5 },
      {
        service: "dynamodb",
        action: "BatchWriteItem",
        resource: target.products,
        errorCode: "ProvisionedThroughputExceededException",
        count: 8,
      },
    ]);
    h.cloud.control.resetCalls();
    const phases = new Set<string>();
    try {
      const log = await moveWhileWriting(id, "basic", "advanced", expected, { onStatus: async (s) => void (s && phases.add(s.phase)) });
      await expectMoved(log);
      expect(log.steps).toEqual(expect.arrayContaining(["backfill", "drain"]));
    } finally {
      const left = h.cloud.control.snapshot().faults;
      h.cloud.control.setFaults([]);
      // Both rules met the copy: the refusals were all used up.
      expect(left.filter((r) => r.errorCode !== undefined)).toEqual([]);
    }
    // Half of each batch held back: the 200 orders took far more than their 8 batches.
    expect(h.cloud.control.calls()["dynamodb:BatchWriteItem"] ?? 0).toBeGreaterThan(24);
    // Throttling is waited out, never reported as a failure.
    expect([...phases]).not.toContain("Degraded");
    expect(await eventsOf(id, "sbt_aws_provisionFailure")).toEqual([]);
  }, 120_000);
});

describe("controllers killed at each step of a move", () => {
  const procs: CliProcess[] = [];
  afterAll(() => {
    for (const p of procs) if (p.child.exitCode === null) p.child.kill("SIGKILL");
  });

  /** Which controller moves the tenant: the holder of its shard's lease (docs/adr/0016), not the controller lease's. */
  async function moverOf(tenantId: string): Promise<string | undefined> {
    const pk = `lease#shard-${shardOf(tenantId, h.config.shardCount)}`;
    const res = await ddb().send(new GetItemCommand({ TableName: h.config.leaseTable, Key: marshall({ pk }), ConsistentRead: true }));
    return res.Item ? (unmarshall(res.Item)["holder"] as string | undefined) : undefined;
  }

  it("resumes each move where it stood, with no item lost, when a controller process is SIGKILLed at every step", async () => {
    // From here on, controllers are processes (tenantctl controller) that can be killed.
    await h.controller.stop();
    const env = {
      ...h.cloud.env,
      RESYNC_SECONDS: "3600",
      LEASE_SECONDS: "2",
      CONCURRENCY: "8",
      MIGRATION_DRAIN_SECONDS: String(DRAIN_SECONDS),
      HTTP_PORT: "0",
      LOG_LEVEL: "info",
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
    };
    const children = new Map<string, CliProcess>();
    let generation = 0;
    const spawnController = () => {
      const holder = `killable-${generation++}`;
      const p = spawnCli(["controller"], { ...env, HOLDER_ID: holder });
      procs.push(p);
      children.set(holder, p);
    };
    // Two controllers at all times (they share the shards): a kill costs only the lease's expiry.
    spawnController();
    spawnController();

    const moves = [
      { tenantId: "k-up", from: "basic" as Tier, to: "advanced" as Tier },
      { tenantId: "k-down", from: "advanced" as Tier, to: "basic" as Tier },
    ];
    const expected = new Map(moves.map((m) => [m.tenantId, new Expected()]));
    for (const m of moves)
      await seed(m.tenantId, tablesFor(m.tenantId, m.from), { orders: 40, products: 15 }, expected.get(m.tenantId) ?? new Expected());
    // Every data call of these tables is slowed, and so is ELBv2 (the flip), so each step lasts long enough to be killed in.
    const tables = [...APPS.map((a) => pool()[a]), ...moves.flatMap((m) => APPS.map((a) => silo(m.tenantId)[a]))];
    h.cloud.control.setFaults([
      ...tables.map((resource): FaultRule => ({ service: "dynamodb", resource, latencyMs: 120 })),
      { service: "elasticloadbalancing", latencyMs: 300 },
    ]);

    const killedAt = new Map(moves.map((m) => [m.tenantId, new Set<string>()]));
    const kills: string[] = [];
    const current = new Map<string, string | undefined>();
    let killing = false;
    // At each step not yet killed in, the process moving that tenant dies; its shard waits for the lease to expire.
    const maybeKill = async (tenantId: string) => {
      if (killing) return;
      killing = true;
      try {
        const step = current.get(tenantId);
        if (step === undefined || killedAt.get(tenantId)?.has(step)) return;
        const holder = await moverOf(tenantId);
        const mover = holder === undefined ? undefined : children.get(holder);
        if (holder === undefined || mover === undefined || mover.child.exitCode !== null || mover.child.signalCode !== null) return;
        // The other tenant's step counts too when the same process was moving it.
        const hit: [string, string][] = [];
        for (const [id, at] of [...current])
          if (at !== undefined && (id === tenantId || (await moverOf(id)) === holder)) hit.push([id, at]);
        mover.child.kill("SIGKILL");
        children.delete(holder);
        for (const [id, at] of hit) killedAt.get(id)?.add(at);
        kills.push(`${holder}: ${hit.map(([id, at]) => `${id}@${at}`).join(" ")}`);
        spawnController();
      } finally {
        killing = false;
      }
    };
    try {
      const logs = await Promise.all(
        moves.map((m) =>
          moveWhileWriting(m.tenantId, m.from, m.to, expected.get(m.tenantId) ?? new Expected(), {
            everyMs: 40,
            timeoutMs: 240_000,
            checkRules: false,
            onStatus: async (s) => {
              current.set(m.tenantId, s?.migration?.step);
              await maybeKill(m.tenantId);
            },
          }),
        ),
      );
      h.cloud.control.setFaults([]);
      for (const log of logs) await expectMoved(log, true);
      expect([...(killedAt.get("k-up") ?? [])].sort(), kills.join("\n")).toEqual([
        "backfill",
        "capture",
        "catchup",
        "drain",
        "flip",
        "provision",
        "retire",
        "verify",
      ]);
      // A move to the pool usually finds its target ready at once, so provision may never be seen.
      expect([...(killedAt.get("k-down") ?? [])], kills.join("\n")).toEqual(
        expect.arrayContaining(["capture", "backfill", "catchup", "verify", "flip", "drain", "retire"]),
      );
    } finally {
      h.cloud.control.setFaults([]);
      for (const p of children.values()) p.child.kill("SIGTERM");
      await Promise.all([...children.values()].map((p) => p.exited));
    }
  }, 300_000);
});
