import type { Logger } from "pino";
import type { Catalogue } from "../apps/catalogue.js";
import {
  LeaseLostError,
  type CatalogueAssignment,
  type CatalogueSource,
  type Fence,
  type RolloutEventSink,
  type RolloutOutcome,
  type RolloutStorePort,
  type TenantStore,
} from "../ports.js";
import { changesFor } from "../rollouts/changes.js";
import { initialRollout, type Rollout, type RolloutSettings, type Unit } from "../rollouts/model.js";
import {
  advance,
  assignment,
  baselineAfter,
  createRollout,
  knownUnits,
  recordAnnounced,
  recordFailure,
  type Report,
} from "../rollouts/planner.js";
import type { UnitInfo } from "../rollouts/waves.js";
import { validateRecord } from "../tenants/record.js";
import { POOL_KEY } from "../tiers/desired.js";
import { describeError } from "./errors.js";

/** What the leader's manager gives a task that runs while it leads. */
export interface LeaderContext {
  /** Reconciles these keys, behind fresh record edits (resync priority). */
  enqueue(keys: readonly string[]): void;
  /** Looks at every key again (a resync). */
  resync(): void;
}

export interface RolloutExecutorOptions {
  readonly store: RolloutStorePort;
  readonly tenants: TenantStore;
  /** CATALOGUE_FILE or the built-in catalogue: written as the catalogue record when there is none. */
  readonly seed: Catalogue;
  readonly settings: RolloutSettings;
  readonly fence: Fence;
  readonly events?: RolloutEventSink;
  readonly log: Logger;
  /** Who writes (the lease holder), for the catalogue's updatedBy. */
  readonly holder: string;
  /** How often the catalogue is read and the rollout stepped. @default 2000 */
  readonly tickMs?: number;
  /** How long a reconcile waits for the first step before it fails (and is retried). @default 10000 */
  readonly loadWaitMs?: number;
  readonly now?: () => Date;
}

/**
 * Runs fleet rollouts while this controller leads (docs/design.md "Contract:
 * fleet rollouts"). Every tick it reads the catalogue record and the
 * rollout item (two strongly consistent reads), starts a rollout when the
 * catalogue changed (superseding a running one), and steps the rollout
 * through the pure planner (src/rollouts/planner.ts): units reported
 * healthy are done, a wave bakes, the next one starts, the budget halts.
 * Each write is conditional on the version read, so a `tenantctl rollout`
 * command in between is never lost: the tick reads again and goes on from it.
 *
 * It is also the tenant reconciles' CatalogueSource: the catalogue each key
 * runs, and the place they report to. Reports live in memory until a tick
 * records them; after a restart the resync's reconciles report again.
 */
export class RolloutExecutor implements CatalogueSource {
  readonly #o: RolloutExecutorOptions;
  readonly #now: () => Date;
  readonly #reports = new Map<Unit, Report>();
  #rollout: Rollout | undefined;
  #ctx: LeaderContext | undefined;
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Number.POSITIVE_INFINITY;
  #ready: Deferred = deferred();
  #lock: Promise<void> = Promise.resolve();
  #running = false;
  /** Running as a follower: another controller leads; the rollout item is read, never written by a tick. */
  #following = false;
  #tickInFlight: Promise<void> = Promise.resolve();
  #lastError: string | undefined;

  constructor(options: RolloutExecutorOptions) {
    this.#o = options;
    this.#now = options.now ?? (() => new Date());
  }

  /** The rollout as this process last read or wrote it. */
  get current(): Rollout | undefined {
    return this.#rollout;
  }

  /** Starts stepping (as leader); returns at once, loading in the background until it succeeds. */
  start(ctx: LeaderContext): Promise<void> {
    this.#ctx = ctx;
    this.#running = true;
    this.#following = false;
    this.#reports.clear();
    this.#wake(0);
    return Promise.resolve();
  }

  /**
   * Another controller leads (ADR 0016): each tick reads the rollout item
   * only, so the reconciles of this controller's shards get their keys'
   * catalogues, and keys whose catalogue the rollout moved are queued here.
   */
  follow(ctx: LeaderContext): Promise<void> {
    this.#ctx = ctx;
    this.#running = true;
    this.#following = true;
    this.#reports.clear();
    this.#wake(0);
    return Promise.resolve();
  }

  /** Stops stepping; reconciles still waiting for the catalogue get LeaseLostError (retried by the next leader). */
  async stop(): Promise<void> {
    this.#running = false;
    this.#following = false;
    this.#ctx = undefined;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Number.POSITIVE_INFINITY;
    await this.#tickInFlight;
    this.#ready.reject(new LeaseLostError("not leading: the rollout executor stopped"));
    this.#ready = deferred();
    this.#rollout = undefined;
  }

  // ---- CatalogueSource

  async assignment(key: string): Promise<CatalogueAssignment> {
    await this.#loaded();
    const r = this.#rollout;
    if (r === undefined) throw new LeaseLostError("not leading: no rollout state");
    return assignmentOf(r, key);
  }

  report(key: string, hash: string, outcome: RolloutOutcome): void {
    const report = { at: this.#now().getTime(), hash, outcome };
    this.#reports.set(key, report);
    // A follower's unit of the wave under way: the leader must see it (ADR 0016).
    const current = this.#rollout;
    if (this.#following && outcome !== "waiting" && current !== undefined && current.state !== "Completed" && inCurrentWave(current, key))
      this.#o.store
        .putReport?.(key, report)
        .catch((err: unknown) =>
          this.#o.log.warn(
            { key, err: describeError(err) },
            "could not share a rollout report; the unit reports again at its next reconcile",
          ),
        );
    // A unit of the wave under way answered: the step that may finish the wave need not wait for the next tick.
    const r = this.#rollout;
    if (outcome !== "waiting" && r !== undefined && r.state !== "Completed" && inCurrentWave(r, key)) this.#wake(NUDGE_MS);
  }

  async fail(key: string, hash: string, reason: string, fence?: Fence): Promise<void> {
    await this.#loaded();
    await this.#mutate((r) => (hash === r.to ? recordFailure(r, key, reason, this.#now()) : undefined), fence);
  }

  async announced(key: string, rolloutId: string, fence?: Fence): Promise<void> {
    await this.#loaded();
    await this.#mutate((r) => (r.id === rolloutId ? recordAnnounced(r, key, this.#now()) : undefined), fence);
  }

  /**
   * Waits for the first step to have read the catalogue and the rollout, but
   * not for ever: a worker must not hang on an unreadable rollout item. The
   * error is retryable, so the reconcile comes back with backoff.
   */
  async #loaded(): Promise<void> {
    // A reconcile still running after this controller stopped leading must not wait for a leader's state.
    if (!this.#running) throw new LeaseLostError("not leading: the rollout executor is stopped");
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(new Error(`the app catalogue and the fleet rollout are not loaded yet${this.#lastError ? `: ${this.#lastError}` : ""}`)),
        this.#o.loadWaitMs ?? 10_000,
      );
      timer.unref();
    });
    try {
      await Promise.race([this.#ready.promise, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  // ---- the loop

  /** The next step in `ms`, unless one is due sooner: one timer at a time, steps one after the other. */
  #wake(ms: number): void {
    if (!this.#running) return;
    const at = Date.now() + ms;
    if (this.#timer !== undefined && this.#timerAt <= at) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#timerAt = Number.POSITIVE_INFINITY;
      this.#tickInFlight = this.#locked(() => this.#tick())
        .then(
          () => {
            this.#lastError = undefined;
          },
          (err: unknown) => {
            this.#lastError = describeError(err);
            this.#o.log.warn({ err: this.#lastError }, "fleet rollout step failed; trying again");
          },
        )
        .finally(() => this.#wake(this.#untilNextStep()));
    }, ms);
    this.#timer.unref();
  }

  /** The tick period, or sooner when the current wave's bake ends first. */
  #untilNextStep(): number {
    const tick = this.#o.tickMs ?? 2000;
    const r = this.#rollout;
    const wave = r === undefined ? undefined : [...r.waves].reverse().find((w) => w.startedAt !== undefined);
    if (wave?.deployedAt === undefined || wave.checkedAt !== undefined) return tick;
    const left = Date.parse(wave.deployedAt) + this.#o.settings.bakeMs - this.#now().getTime();
    return Math.max(0, Math.min(tick, left + 10));
  }

  /** One step: load once; then follow the catalogue and advance the rollout. */
  async #tick(): Promise<void> {
    if (!this.#running) return;
    if (this.#following) {
      const stored = await this.#o.store.readRollout();
      if (stored === undefined) return; // the leader writes the first one
      this.#adopt(stored);
      if (!this.#ready.settled) this.#ready.resolve();
      return;
    }
    const [catalogue, stored] = await Promise.all([this.#o.store.readCatalogue(), this.#o.store.readRollout()]);
    let rollout = stored;
    if (rollout === undefined) {
      // The first controller of this fleet: everything runs the catalogue record's catalogue (seeded now if absent).
      const first = catalogue.kind === "valid" ? catalogue.catalogue : this.#o.seed;
      const initial = initialRollout(first, this.#now());
      if (!(await this.#o.store.writeRollout(initial, undefined, this.#o.fence))) return; // another wrote it: next tick
      rollout = initial;
    }
    if (catalogue.kind === "missing") {
      // Deleted by hand, or never seeded: put back what the fleet runs, never the file's (which would start a rollout).
      const current = rollout.catalogues[rollout.to];
      if (current !== undefined && (await this.#o.store.seedCatalogue(current, this.#o.holder, this.#o.fence)))
        this.#o.log.info({ table: "operator" }, "app catalogue record written from the rollout state");
    } else if (catalogue.kind === "invalid") {
      this.#o.log.error({ problem: catalogue.problem }, "the app catalogue record is invalid; it is ignored until fixed");
    }
    this.#adopt(rollout);
    if (!this.#ready.settled) this.#ready.resolve();

    if (catalogue.kind === "valid" && catalogue.hash !== rollout.to) {
      await this.#startRollout(rollout, catalogue.catalogue, catalogue.hash);
      return;
    }
    await this.#gatherReports(rollout);
    const step = advance(rollout, this.#now(), this.#reports, this.#o.settings);
    if (!step.changed) return;
    // Events before the write that records them: a crash in between publishes again (at least once).
    for (const event of step.events) await this.#o.events?.publish(step.rollout, event);
    if (!(await this.#o.store.writeRollout(step.rollout, rollout.version, this.#o.fence))) return; // changed meanwhile: next tick
    for (const event of step.events)
      this.#o.log.info({ rollout: step.rollout.id, event: event.kind, wave: event.wave, units: event.units.length }, event.reason);
    this.#adopt(step.rollout);
    this.#ctx?.enqueue(step.enqueue);
    if (step.rollout.state === "Completed") this.#ctx?.resync();
  }

  /** Reports other controllers shared for the wave under way's open units, where newer than this process's own. */
  async #gatherReports(r: Rollout): Promise<void> {
    if (this.#o.store.readReports === undefined || r.state === "Completed") return;
    const wave = [...r.waves].reverse().find((w) => w.startedAt !== undefined);
    if (wave === undefined || wave.bakedAt !== undefined) return;
    const open = wave.units.filter((u) => r.failed[u] === undefined && (r.done[u] === undefined || wave.checkedAt !== undefined));
    if (open.length === 0) return;
    for (const [unit, report] of await this.#o.store.readReports(open)) {
      const mine = this.#reports.get(unit);
      if (mine === undefined || mine.at < report.at) this.#reports.set(unit, report);
    }
  }

  /** The catalogue changed: a new rollout from where every unit stands, superseding the current one. */
  async #startRollout(previous: Rollout, target: Catalogue, hash: string): Promise<void> {
    const { from, baseline } = baselineAfter(previous);
    const base = (unit: Unit): Catalogue => previous.catalogues[baseline[unit] ?? from] ?? target;
    const affected: UnitInfo[] = [];
    let unaffected = 0;
    for await (const page of this.#o.tenants.scan()) {
      for (const item of page) {
        const v = validateRecord(item);
        if (!v.ok || !v.spec.sbtaws_active || v.spec.tier === "basic") continue;
        const id = v.spec.tenantId;
        if (changesFor(v.spec.apps, base(id), target).length === 0) unaffected += 1;
        else affected.push({ key: id, ...(v.spec.ring !== undefined ? { ring: v.spec.ring } : {}) });
      }
    }
    const pool = changesFor(undefined, base(POOL_KEY), target).length > 0 ? POOL_KEY : undefined;
    const now = this.#now();
    const next = createRollout(previous, {
      id: `r-${now.toISOString().replace(/[-:]|\.\d+Z$/g, "")}-${hash.slice(0, 6)}`,
      now,
      target: { hash, catalogue: target },
      affected,
      pool,
      unaffected,
      settings: this.#o.settings,
    });
    if (!(await this.#o.store.writeRollout(next, previous.version, this.#o.fence))) return;
    this.#o.log.info(
      { rollout: next.id, supersedes: previous.state === "Completed" ? undefined : previous.id, waves: next.waves.length, unaffected },
      "app catalogue changed: fleet rollout started",
    );
    this.#adopt(next);
    if (next.state === "Completed") this.#ctx?.resync();
  }

  /** Takes a rollout as the current one; units whose catalogue it changes are reconciled. */
  #adopt(next: Rollout): void {
    const before = this.#rollout;
    this.#rollout = next;
    if (before === undefined || before.version === next.version) return;
    const units = new Set([...knownUnits(before), ...knownUnits(next)]);
    const moved = [...units].filter((u) => assignment(before, u).hash !== assignment(next, u).hash);
    if (moved.length > 0) this.#ctx?.enqueue(moved);
    // A follower's units of a wave whose bake check began must show they are still healthy (the leader queued only its own).
    if (this.#following) {
      const checking = next.waves.flatMap((w, i) => (w.checkedAt !== undefined && before.waves[i]?.checkedAt === undefined ? w.units : []));
      if (checking.length > 0) this.#ctx?.enqueue(checking);
    }
  }

  /**
   * Read-modify-write of the rollout, retried on a conflicting write. Fenced
   * by the key's fence when given (a follower records its own keys' failures;
   * the write is conditional on the version, so it races no one).
   */
  async #mutate(change: (r: Rollout) => Rollout | undefined, fence: Fence = this.#o.fence): Promise<void> {
    await this.#locked(async () => {
      for (let attempt = 0; attempt < 5; attempt++) {
        const current = this.#rollout ?? (await this.#o.store.readRollout());
        if (current === undefined) throw new LeaseLostError("not leading: no rollout state");
        const next = change(current);
        if (next === undefined) return;
        if (await this.#o.store.writeRollout(next, current.version, fence)) {
          this.#adopt(next);
          return;
        }
        const stored = await this.#o.store.readRollout();
        if (stored !== undefined) this.#adopt(stored);
      }
      throw new Error("the rollout item kept changing while a failure was being recorded; the reconcile will try again");
    });
  }

  /** Ticks and mutations one at a time: each works on the rollout the previous one left. */
  #locked<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#lock.then(fn);
    this.#lock = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }
}

/** How soon a step follows a report that may finish a wave: reports of a wave's units arriving together share it. */
const NUDGE_MS = 100;

/** The unit belongs to the last wave started, which has not baked yet. */
function inCurrentWave(r: Rollout, unit: Unit): boolean {
  const wave = [...r.waves].reverse().find((w) => w.startedAt !== undefined);
  return wave !== undefined && wave.bakedAt === undefined && wave.units.includes(unit);
}

/** The catalogue a key runs under a rollout, with its part in it. */
export function assignmentOf(r: Rollout, key: string): CatalogueAssignment {
  const a = assignment(r, key);
  const catalogue = r.catalogues[a.hash];
  if (catalogue === undefined) throw new Error(`rollout ${r.id} refers to catalogue ${a.hash}, which it does not hold`);
  if (a.role === "settled") return { catalogue, hash: a.hash };
  const baseline = r.catalogues[r.baseline[key] ?? r.from] ?? catalogue;
  const target = r.catalogues[r.to] ?? catalogue;
  const failure = r.failed[key];
  return {
    catalogue,
    hash: a.hash,
    rollout: {
      id: r.id,
      role: a.role,
      baseline,
      target,
      ...(failure !== undefined ? { failure: { reason: failure.reason, announced: failure.announced === true } } : {}),
    },
  };
}

/**
 * The catalogues as a reader sees them, for `tenantctl plan`: the rollout
 * item read once; it records nothing.
 */
export async function readOnlyCatalogues(store: Pick<RolloutStorePort, "readRollout">, seed: Catalogue): Promise<CatalogueSource> {
  const r = (await store.readRollout()) ?? initialRollout(seed, new Date());
  return {
    assignment: (key) => Promise.resolve(assignmentOf(r, key)),
    report: () => undefined,
    fail: () => Promise.reject(new LeaseLostError("a read-only view records no failure")),
    announced: () => Promise.resolve(),
  };
}

interface Deferred {
  readonly promise: Promise<void>;
  resolve(): void;
  reject(err: Error): void;
  readonly settled: boolean;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (err: Error) => void;
  let settled = false;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // Nobody may be waiting when it is rejected at stop.
  promise.catch(() => undefined);
  return {
    promise,
    resolve: () => {
      settled = true;
      resolve();
    },
    reject: (err) => {
      settled = true;
      reject(err);
    },
    get settled() {
      return settled;
    },
  };
}
