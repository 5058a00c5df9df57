import {
  BatchGetItemCommand,
  GetItemCommand,
  PutItemCommand,
  type AttributeValue,
  type BatchGetItemCommandOutput,
} from "@aws-sdk/client-dynamodb";
import { marshall, unmarshall } from "@aws-sdk/util-dynamodb";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { FaultRule } from "../src/localcloud/index.js";
import type { TenantStatus } from "../src/tenants/status.js";
import {
  audit,
  seedLookalikes,
  snapshotLookalikes,
  totals,
  type AuditReport,
  type Expectation,
  type Finding,
  type Lookalike,
} from "./audit.js";
import { startChaosCloud, type ChaosCloud } from "./cloud.js";
import { ControllerFleet, sleep, type ControllerProcess } from "./controllers.js";
import { corrupt, fleet, invalidRecords, oddValidRecords, type PlannedRecord, type RawRecord } from "./records.js";

/**
 * The chaos scenarios. Each gets a fresh local AWS (`tenantctl local
 * --no-controller`), seeds look-alike resources the controllers must never
 * write, starts `tenantctl controller` processes from the printed export
 * line, does its damage, waits for the fleet to settle, and hands the world
 * to the auditor (audit.ts).
 */
export interface ScenarioResult {
  readonly scenario: string;
  readonly params: Readonly<Record<string, number | string | boolean>>;
  readonly durationMs: number;
  readonly totals: ReturnType<typeof totals>;
  /** Kill-to-first-reconcile of each takeover, and kill-to-lease, in ms. */
  readonly takeovers: readonly { readonly toLeaseMs: number; readonly toReconcileMs: number }[];
  readonly leaseMs: number;
  /** Scenario-specific measurements (kills in flight, calls faulted...). */
  readonly notes: Readonly<Record<string, number | string>>;
  readonly findings: Pick<AuditReport, "lost" | "duplicates" | "orphans" | "unmanagedWrites">;
  readonly counts: AuditReport["counts"];
}

export interface CommonOptions {
  /** Simulated ECS time per real second. @default 10 */
  readonly speed?: number;
  /** Where logs of the local AWS and each controller go. */
  readonly logDir: string;
  /** Seed of the random choices (kill points, fuzz). */
  readonly seed: number;
  /** How long the fleet may take to settle after the damage. */
  readonly settleTimeoutMs: number;
  readonly leaseSeconds: number;
  /** Progress lines (stderr in the runner). */
  readonly progress?: (line: string) => void;
}

/** Worlds not yet closed, so that a runner stopped by a signal can take its children down first. */
export const openWorlds = new Set<World>();

/** A chaos world: the local AWS, the controllers, the records the run wrote and what each should come to. */
export class World {
  readonly expected = new Map<string, Expectation>();
  readonly written = new Map<string, RawRecord>();
  lookalikes: { seeded: Lookalike[]; before: Map<string, string> } | undefined;

  private constructor(
    readonly cloud: ChaosCloud,
    readonly fleet: ControllerFleet,
    readonly random: () => number,
    readonly say: (line: string) => void,
  ) {}

  static async start(name: string, o: CommonOptions, extraEnv: Record<string, string> = {}): Promise<World> {
    const dir = join(o.logDir, name);
    mkdirSync(dir, { recursive: true });
    const say = (line: string) => o.progress?.(`[${name}] ${line}`);
    const cloud = await startChaosCloud({ speed: o.speed ?? 10, logFile: join(dir, "local-aws.log") });
    say(`local AWS on ${cloud.endpoint}`);
    const controllers = new ControllerFleet({ env: cloud.env, logDir: dir, leaseSeconds: o.leaseSeconds, extraEnv });
    const world = new World(cloud, controllers, mulberry32(o.seed), say);
    openWorlds.add(world);
    return world;
  }

  get table(): string {
    return this.cloud.config.tenantsTable;
  }

  /** Seeds the look-alikes and snapshots them, before any controller runs. */
  async seedLookalikes(ghosts: readonly string[], neighbour: string): Promise<void> {
    const seeded = await seedLookalikes(this.cloud.clients, this.cloud.config, { ghosts, neighbour });
    this.lookalikes = { seeded, before: await snapshotLookalikes(this.cloud.clients, seeded) };
  }

  /** Writes records (PutItem, a few at a time) and notes what each should come to. */
  async write(records: readonly PlannedRecord[], expectation?: (r: PlannedRecord) => Expectation): Promise<void> {
    let next = 0;
    const worker = async () => {
      while (next < records.length) {
        const r = records[next++];
        if (r === undefined) return;
        await this.put(r.record);
        this.expected.set(r.tenantId, expectation?.(r) ?? (r.tier === undefined ? { kind: "failed" } : { kind: "ready", tier: r.tier }));
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
  }

  async put(record: RawRecord): Promise<void> {
    await this.cloud.clients.dynamodb.send(
      new PutItemCommand({ TableName: this.table, Item: marshall(record, { removeUndefinedValues: true }) }),
    );
    this.written.set(String(record["tenantId"]), record);
  }

  async item(tenantId: string): Promise<Record<string, unknown> | undefined> {
    const res = await this.cloud.clients.dynamodb.send(
      new GetItemCommand({ TableName: this.table, Key: marshall({ tenantId }), ConsistentRead: true }),
    );
    return res.Item ? unmarshall(res.Item) : undefined;
  }

  /**
   * The phase of each record named (BatchGetItem, status.phase only): one
   * lookup per key, where a Scan would read every record, huge fuzzed ones
   * included, at each poll.
   */
  async phasesOf(ids: readonly string[]): Promise<Map<string, string | undefined>> {
    const out = new Map<string, string | undefined>();
    for (let i = 0; i < ids.length; i += 100) {
      let keys: Record<string, AttributeValue>[] | undefined = ids.slice(i, i + 100).map((tenantId) => marshall({ tenantId }));
      while (keys !== undefined && keys.length > 0) {
        const res: BatchGetItemCommandOutput = await this.cloud.clients.dynamodb.send(
          new BatchGetItemCommand({
            RequestItems: {
              [this.table]: {
                Keys: keys,
                ConsistentRead: true,
                ProjectionExpression: "tenantId, #s.phase",
                ExpressionAttributeNames: { "#s": "status" },
              },
            },
          }),
        );
        for (const raw of res.Responses?.[this.table] ?? []) {
          const item = unmarshall(raw);
          out.set(String(item["tenantId"]), (item["status"] as Partial<TenantStatus> | undefined)?.phase);
        }
        keys = res.UnprocessedKeys?.[this.table]?.Keys;
      }
    }
    return out;
  }

  /** Of the records named (every record the run wrote by default), those not yet Ready, or Failed for an invalid one. */
  async unsettled(ids: readonly string[] = [...this.expected.keys()]): Promise<string[]> {
    const phases = await this.phasesOf(ids);
    return ids.filter((id) => {
      const want = this.expected.get(id);
      return want !== undefined && phases.get(id) !== (want.kind === "ready" ? "Ready" : "Failed");
    });
  }

  /** Waits until every record is where it should be; returns how long it took, or undefined at the deadline. */
  async settle(timeoutMs: number, label = "settle"): Promise<number | undefined> {
    const started = Date.now();
    let lastSaid = 0;
    let left = [...this.expected.keys()];
    for (;;) {
      // A record counts once it got there; the audit looks at all of them again at the end.
      left = await this.unsettled(left);
      if (left.length === 0) return Date.now() - started;
      if (Date.now() - started > timeoutMs) {
        this.say(
          `${label}: ${left.length} records still unsettled after ${Math.round(timeoutMs / 1000)} s: ${left.slice(0, 5).join(", ")}`,
        );
        return undefined;
      }
      if (Date.now() - lastSaid > 15_000) {
        lastSaid = Date.now();
        this.say(`${label}: ${left.length} of ${this.expected.size} records to go`);
      }
      // Each poll is moto's time too, taken from the controllers: look less often while much is left.
      await sleep(left.length > 200 ? 5000 : 1000);
    }
  }

  async audit(): Promise<AuditReport> {
    return audit(this.cloud.clients, this.cloud.config, this.expected, this.lookalikes);
  }

  /** Reads the lease holder as a user would (the operator table), and the process holding it. */
  async leader(): Promise<ControllerProcess | undefined> {
    const res = await this.cloud.clients.dynamodb.send(
      new GetItemCommand({ TableName: this.cloud.config.leaseTable, Key: marshall({ pk: "lease#controller" }), ConsistentRead: true }),
    );
    const holder = res.Item ? (unmarshall(res.Item)["holder"] as string | undefined) : undefined;
    return this.fleet.live().find((c) => c.holder === holder);
  }

  async close(): Promise<void> {
    openWorlds.delete(this);
    await this.fleet.stopAll().catch(() => undefined);
    this.fleet.killAll();
    await this.cloud.stop();
  }

  pick<T>(items: readonly T[]): T {
    const item = items[Math.floor(this.random() * items.length)];
    if (item === undefined) throw new Error("pick from an empty list");
    return item;
  }
}

function result(
  scenario: string,
  params: ScenarioResult["params"],
  started: number,
  report: AuditReport,
  leaseMs: number,
  notes: Record<string, number | string>,
  takeovers: ScenarioResult["takeovers"] = [],
): ScenarioResult {
  const cap = (f: readonly Finding[]) => f.slice(0, 25);
  return {
    scenario,
    params,
    durationMs: Date.now() - started,
    totals: totals(report),
    takeovers,
    leaseMs,
    notes,
    findings: {
      lost: cap(report.lost),
      duplicates: cap(report.duplicates),
      orphans: cap(report.orphans),
      unmanagedWrites: cap(report.unmanagedWrites),
    },
    counts: report.counts,
  };
}

/** Ids no record has: the look-alikes' namesakes. */
const GHOSTS = ["ghost-a", "ghost-b", "ghost-c", "ghost-d", "ghost-e", "ghost-f", "ghost-g"];

function neighbourOf(records: readonly PlannedRecord[]): string {
  return records.find((r) => r.tier === "advanced")?.tenantId ?? records[0]?.tenantId ?? "ghost-n";
}

// ---- 1. kill -9 while tenants onboard ----

export interface KillOptions extends CommonOptions {
  readonly tenants: number;
  readonly rounds: number;
  /** A kill lands this long (at most) after the controller took the lease. @default 20000: spread over an onboarding of 100 tenants on a 2-core machine */
  readonly maxKillDelayMs?: number;
}

/**
 * Writes `tenants` records at once, then `rounds` times: starts a
 * controller, waits until it holds the lease, lets it work a random while,
 * and SIGKILLs it. A last controller then runs to the end.
 */
export async function killDuringOnboarding(o: KillOptions): Promise<ScenarioResult> {
  const started = Date.now();
  const world = await World.start("kill", o);
  try {
    const records = fleet(o.tenants, "k");
    await world.seedLookalikes(GHOSTS, neighbourOf(records));
    await world.write(records);
    world.say(`${records.length} records written; ${o.rounds} kill rounds`);
    const kills = await killRounds(world, o);
    world.fleet.spawn("k-final");
    const settleMs = await world.settle(o.settleTimeoutMs);
    const report = await world.audit();
    const last = world.fleet.live()[0];
    const exit = last === undefined ? -1 : await last.stop();
    return result(
      "kill",
      { tenants: o.tenants, rounds: o.rounds, leaseSeconds: o.leaseSeconds, maxKillDelayMs: o.maxKillDelayMs ?? 20_000, seed: o.seed },
      started,
      report,
      o.leaseSeconds * 1000,
      {
        killsWithOnboardingInFlight: kills.filter((k) => k.notReady > 0).length,
        notReadyAtFirstKill: kills[0]?.notReady ?? 0,
        notReadyAtLastKill: kills[kills.length - 1]?.notReady ?? 0,
        reconcilesByKilledControllers: kills.reduce((n, k) => n + k.reconciles, 0),
        settleAfterLastKillS: settleMs === undefined ? "timed out" : round1(settleMs / 1000),
        lastControllerExit: String(exit),
      },
    );
  } finally {
    await world.close();
  }
}

/**
 * `rounds` times: one controller, SIGKILLed a random while (up to
 * maxKillDelayMs) after it took the lease. The next one starts at once and
 * waits out the dead one's lease, as a restarted task would.
 */
export async function killRounds(
  world: World,
  o: Pick<KillOptions, "rounds" | "maxKillDelayMs" | "leaseSeconds">,
): Promise<{ delayMs: number; notReady: number; reconciles: number }[]> {
  const kills: { delayMs: number; notReady: number; reconciles: number }[] = [];
  for (let round = 1; round <= o.rounds; round++) {
    const c = world.fleet.spawn("k");
    const { acquiredAt } = await world.fleet.waitForLeader(c.spawnedAt, o.leaseSeconds * 1000 + 90_000);
    const delayMs = Math.round(world.random() * (o.maxKillDelayMs ?? 20_000));
    await sleep(Math.max(0, acquiredAt + delayMs - Date.now()));
    const notReady = (await world.unsettled()).length;
    c.kill9();
    await c.exited;
    kills.push({ delayMs, notReady, reconciles: c.reconciles.length });
    world.say(
      `round ${round}: killed ${c.holder} ${delayMs} ms after it led (${c.reconciles.length} reconciles done), ${notReady} records not yet settled`,
    );
  }
  return kills;
}

// ---- 2. faults: 5% 5xx, 200 ms latency, ECS throttling ----

export interface FaultOptions extends CommonOptions {
  readonly tenants: number;
  /** @default 0.05 */
  readonly errorRate?: number;
  /** @default 200 */
  readonly latencyMs?: number;
}

export function faultRules(errorRate: number, latencyMs: number): FaultRule[] {
  // The first rule that fires wins: 5% get the error (after the latency), the rest only the latency.
  return [
    { probability: errorRate, errorCode: "ServiceUnavailable", httpStatus: 503, latencyMs, message: "chaos: injected 503" },
    ...(latencyMs > 0 ? [{ latencyMs }] : []),
  ];
}

export async function faultsDuringOnboarding(o: FaultOptions): Promise<ScenarioResult> {
  const started = Date.now();
  const errorRate = o.errorRate ?? 0.05;
  const latencyMs = o.latencyMs ?? 200;
  const world = await World.start("faults", o);
  try {
    const records = fleet(o.tenants, "f");
    await world.seedLookalikes(GHOSTS, neighbourOf(records));
    await world.cloud.setThrottling(true);
    await world.cloud.setFaults(faultRules(errorRate, latencyMs));
    const callsBefore = (await world.cloud.state()).calls;
    const c = world.fleet.spawn("f");
    await world.fleet.waitForLeader(c.spawnedAt, o.leaseSeconds * 1000 + 120_000);
    const writeAt = Date.now();
    await world.write(records);
    world.say(`${records.length} records written under ${errorRate * 100}% 503s, ${latencyMs} ms latency and ECS throttling`);
    const settleMs = await world.settle(o.settleTimeoutMs);
    const allReadyS = settleMs === undefined ? "timed out" : round1((Date.now() - writeAt) / 1000);
    const metrics = await scrape(c);
    const callsAfter = (await world.cloud.state()).calls;
    await world.cloud.setFaults([]);
    await world.cloud.setThrottling(false);
    const report = await world.audit();
    const exit = await c.stop();
    const received = sumCalls(callsAfter) - sumCalls(callsBefore);
    return result(
      "faults",
      { tenants: o.tenants, errorRate, latencyMs, throttling: true, leaseSeconds: o.leaseSeconds, seed: o.seed },
      started,
      report,
      o.leaseSeconds * 1000,
      {
        allReadyAfterWriteS: allReadyS,
        callsReceived: received,
        controllerAttemptsThrottled: metrics.throttled,
        controllerAttemptsErrored: metrics.errors,
        leaseLosses: c.lostAt.length,
        controllerExit: String(exit),
      },
    );
  } finally {
    await world.close();
  }
}

// ---- 3. fuzzed invalid records among valid ones ----

export interface FuzzOptions extends CommonOptions {
  readonly invalid: number;
  /** Plain valid records (some are corrupted once Ready). */
  readonly valid: number;
  /** Odd but valid records (fast-check). */
  readonly oddValid: number;
  /** Ready tenants then made invalid in place. */
  readonly corrupted: number;
}

export async function fuzzedRecords(o: FuzzOptions): Promise<ScenarioResult> {
  const started = Date.now();
  const world = await World.start("fuzz", o);
  try {
    const plain = fleet(o.valid, "v");
    const taken = new Set(plain.map((r) => r.tenantId.toLowerCase()));
    const odd = oddValidRecords(o.oddValid, o.seed, taken);
    const invalid = invalidRecords(o.invalid, o.seed + 1, "inv");
    const toCorrupt = plain.slice(0, o.corrupted);
    // Look-alikes named for invalid records' ids too: the controller reads those records and must still touch nothing.
    const shadowed = invalid.filter((r) => /^[A-Za-z0-9_-]{1,64}$/.test(r.tenantId)).slice(0, 4);
    await world.seedLookalikes([...GHOSTS.slice(0, 3), ...shadowed.map((r) => r.tenantId)], neighbourOf(plain));
    const c = world.fleet.spawn("z");
    await world.fleet.waitForLeader(c.spawnedAt, o.leaseSeconds * 1000 + 120_000);

    // First the tenants that will be corrupted, Ready with everything their tier owns.
    await world.write(toCorrupt);
    const firstReady = await world.settle(o.settleTimeoutMs, "before corrupting");
    if (firstReady === undefined) throw new Error("the tenants to corrupt never became Ready");
    for (const [i, r] of toCorrupt.entries()) {
      const current = await world.item(r.tenantId);
      const broken = corrupt(r.record, o.seed + 100 + i);
      // An edit of the spec, as SBT or a person would make it: the status the controller wrote stays.
      await world.put({ ...broken.record, ...(current?.["status"] !== undefined ? { status: current["status"] } : {}) });
      world.expected.set(r.tenantId, { kind: "failed", ...(r.tier !== undefined ? { keeps: r.tier } : {}) });
    }
    // Then everything else, shuffled: invalid records among valid ones.
    const rest = shuffle([...plain.slice(o.corrupted), ...odd, ...invalid], world.random);
    const writeAt = Date.now();
    await world.write(rest);
    world.say(
      `${invalid.length} invalid records written among ${plain.length - o.corrupted + odd.length} valid ones; ${toCorrupt.length} Ready tenants corrupted`,
    );
    const settleMs = await world.settle(o.settleTimeoutMs);
    const report = await world.audit();
    const exit = await c.stop();
    const kinds = new Map<string, number>();
    for (const r of invalid) kinds.set(r.kind, (kinds.get(r.kind) ?? 0) + 1);
    return result(
      "fuzz",
      { invalid: o.invalid, valid: o.valid, oddValid: odd.length, corrupted: o.corrupted, leaseSeconds: o.leaseSeconds, seed: o.seed },
      started,
      report,
      o.leaseSeconds * 1000,
      {
        settledAfterWriteS: settleMs === undefined ? "timed out" : round1((Date.now() - writeAt) / 1000),
        invalidKinds: [...kinds].map(([k, n]) => `${k} ${n}`).join(", "),
        hugeInvalidRecords: invalid.filter((r) => JSON.stringify(r.record).length > 10_000).length,
        controllerExit: String(exit),
      },
    );
  } finally {
    await world.close();
  }
}

// ---- 4. several controllers, the leader killed again and again ----

export interface LeaderOptions extends CommonOptions {
  readonly controllers: number;
  readonly kills: number;
  readonly tenants: number;
  /** New tenants written right after each kill, while nobody leads. @default 2 */
  readonly writesPerKill?: number;
}

export async function leaderKills(o: LeaderOptions): Promise<ScenarioResult> {
  const started = Date.now();
  const world = await World.start("leader", o);
  try {
    const initial = fleet(o.tenants, "l");
    await world.seedLookalikes(GHOSTS, neighbourOf(initial));
    const takeovers = await killLeaders(world, o, initial);
    const settleMs = await world.settle(o.settleTimeoutMs);
    const leadersAtEnd = await world.fleet.leadersNow();
    const report = await world.audit();
    return result(
      "leader",
      { controllers: o.controllers, kills: o.kills, tenants: o.tenants, leaseSeconds: o.leaseSeconds, seed: o.seed },
      started,
      report,
      o.leaseSeconds * 1000,
      {
        ...takeoverNotes(takeovers.samples),
        maxLeadersAtOnce: takeovers.maxLeaders,
        leadersAtEnd: leadersAtEnd.length,
        settleAfterLastKillS: settleMs === undefined ? "timed out" : round1(settleMs / 1000),
      },
      takeovers.samples,
    );
  } finally {
    await world.close();
  }
}

/**
 * Runs `controllers` processes, writes the initial records, then `kills`
 * times: waits for the leader (read from the lease item) to be reconciling,
 * lets it run a random 0.5-3 s, SIGKILLs it, starts a replacement, writes a
 * few new records while nobody leads, and times the takeover: kill to the
 * new leader's lease, and kill to its first finished reconcile.
 */
export async function killLeaders(
  world: World,
  o: Pick<LeaderOptions, "controllers" | "kills" | "leaseSeconds" | "writesPerKill">,
  initial: readonly PlannedRecord[],
): Promise<{ samples: { toLeaseMs: number; toReconcileMs: number }[]; maxLeaders: number }> {
  const leaseMs = o.leaseSeconds * 1000;
  const spawnedAt = Date.now();
  for (let i = 0; i < o.controllers; i++) world.fleet.spawn("l");
  await world.fleet.waitForLeader(spawnedAt, leaseMs + 120_000);
  await world.write(initial);
  const samples: { toLeaseMs: number; toReconcileMs: number }[] = [];
  let maxLeaders = 0;
  for (let k = 1; k <= o.kills; k++) {
    let leader: ControllerProcess | undefined;
    const deadline = Date.now() + leaseMs + 120_000;
    while ((leader = await world.leader()) === undefined || leader.reconciles.length === 0) {
      if (Date.now() > deadline) throw new Error("no reconciling leader to kill");
      await sleep(200);
    }
    await sleep(500 + Math.round(world.random() * 2500));
    const killedAt = leader.kill9();
    world.fleet.spawn("l");
    await world.write(fleet(o.writesPerKill ?? 2, `lk${k}`));
    const next = await world.fleet.waitForLeader(killedAt, leaseMs + 120_000);
    const firstReconcile = await world.fleet.waitForReconcile(next.proc, next.acquiredAt, 120_000);
    const sample = { toLeaseMs: next.acquiredAt - killedAt, toReconcileMs: firstReconcile - killedAt };
    samples.push(sample);
    await sleep(300);
    const leaders = await world.fleet.leadersNow();
    maxLeaders = Math.max(maxLeaders, leaders.length);
    world.say(
      `kill ${k}: ${leader.holder} killed; ${next.proc.holder} led after ${sample.toLeaseMs} ms, first reconcile after ${sample.toReconcileMs} ms; ${leaders.length} leader(s) now`,
    );
  }
  return { samples, maxLeaders };
}

export function takeoverNotes(samples: readonly { toLeaseMs: number; toReconcileMs: number }[]): Record<string, number> {
  const r = samples.map((s) => s.toReconcileMs).sort((a, b) => a - b);
  const l = samples.map((s) => s.toLeaseMs).sort((a, b) => a - b);
  const q = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.floor(p * xs.length))] ?? Number.NaN;
  return {
    takeovers: samples.length,
    takeoverToLeaseP50Ms: q(l, 0.5),
    takeoverToLeaseMaxMs: l[l.length - 1] ?? Number.NaN,
    takeoverToReconcileP50Ms: q(r, 0.5),
    takeoverToReconcileMaxMs: r[r.length - 1] ?? Number.NaN,
  };
}

// ---- helpers ----

async function scrape(c: ControllerProcess): Promise<{ throttled: number; errors: number }> {
  if (c.httpPort === undefined) return { throttled: Number.NaN, errors: Number.NaN };
  const text = await (await fetch(`http://127.0.0.1:${c.httpPort}/metrics`)).text();
  const sum = (outcome: string) =>
    text
      .split("\n")
      .filter((l) => l.startsWith("tenant_operator_aws_attempts_total{") && l.includes(`outcome="${outcome}"`))
      .reduce((n, l) => n + Number(l.split(" ").pop()), 0);
  return { throttled: sum("throttled"), errors: sum("error") };
}

function sumCalls(calls: Readonly<Record<string, number>>): number {
  return Object.values(calls).reduce((a, b) => a + b, 0);
}

function round1(n: number): number {
  return Math.round(n * 10) / 10;
}

function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j] as T, items[i] as T];
  }
  return items;
}

/** A small seeded PRNG: the same --seed gives the same kill points and records. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
