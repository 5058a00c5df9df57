import { execFileSync, fork, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { loadavg, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { ReconcileResult } from "../src/reconciler/result.js";
import { ECS_READS } from "./fakes/fake-ecs.js";
import { describePorts, servePorts } from "./remote-ports.js";
import { Peer, type Wire } from "./rpc.js";
import type { ComposeTuning, ControllerState, ProcessMemory } from "./scale-controller-process.js";
import { createCloud, type ScaleCloud } from "./scale-fleet.js";
import {
  collect,
  convergence,
  fleetRecords,
  onboardFleet,
  poolReady,
  ReconcileCounter,
  sleep,
  within,
  type ConvergenceCheck,
  type Mix,
  type PhaseFigures,
} from "./scale-run.js";

/**
 * `npm run bench:scale -- --controller-process`: the RSS of ONE controller
 * in a process that holds nothing else. This process keeps the fakes
 * (createCloud) and drives the same scenario as the in-process run's
 * onboarding and resync phases; the controller runs in a forked child
 * (bench/scale-controller-process.ts), composed by composeControllers as in
 * process, on ports that forward every call here over IPC
 * (bench/remote-ports.ts). The child reports its memory after a full GC at
 * its first line (Node and tsx), composed (not started), after onboarding,
 * after the pass, and after dropping the ECS provider's caches.
 *
 * Every port call is a round trip over the channel, serialised both ways:
 * the CPU figures here are inflated by that and are not the controller's
 * (the in-process run measures those); the RSS is the figure that matters.
 */

export interface SplitOptions {
  readonly tenants: number;
  readonly mix: Mix;
  readonly concurrency: number;
  /** LEASE_SECONDS. @default 15 */
  readonly leaseSeconds?: number;
  readonly throttle: boolean;
  readonly logLevel: string;
  readonly timeoutMs: number;
  /**
   * Run the controller process from tsc's output, without tsx, as the image
   * runs dist/ (`node bin/tenantctl.js`). @default false: through tsx, as
   * every benchmark here runs
   */
  readonly compiled?: boolean;
  readonly progress?: (line: string) => void;
}

/** One process's memory, MiB, after a full GC; its CPU so far, ms. */
export interface MemoryPoint {
  readonly rssMiB: number;
  readonly heapUsedMiB: number;
  readonly heapTotalMiB: number;
  readonly externalMiB: number;
  readonly arrayBuffersMiB: number;
  readonly cpuUserMs: number;
  readonly cpuSystemMs: number;
}

/** What one phase cost: the in-process benchmark's figures, with the IPC's share instead of the fakes'. */
export type SplitPhase = Pick<
  PhaseFigures,
  | "wallMs"
  | "reconciles"
  | "results"
  | "ecs"
  | "ecsSent"
  | "ecsReads"
  | "ecsWrites"
  | "statusWrites"
  | "otherWrites"
  | "events"
  | "leaseLosses"
> & {
  /** CPU of the controller process over the phase (its IPC serialisation included), ms. */
  readonly controllerCpuMs: number;
  /** CPU of this process (the fakes, the harness and its side of the IPC), ms. */
  readonly parentCpuMs: number;
  /** The controller's calls to the fakes over the channel: each one round trip. */
  readonly roundTrips: number;
};

export interface SplitResult {
  readonly options: Omit<SplitOptions, "progress">;
  /** The controller process alone: Node, tsx, the modules and one controller; no fakes. */
  readonly controllerProcess: {
    readonly pid: number;
    readonly gc: boolean;
    /** Node alone (`node --expose-gc -e`, no tsx, no module): what any Node process costs here. */
    readonly nodeAlone: MemoryPoint;
    /** The child at its first line: Node, and tsx unless `compiled` (the image runs compiled JS, without tsx). */
    readonly started: MemoryPoint;
    /** Every module loaded, the controller composed, not started. */
    readonly composed: MemoryPoint;
    readonly onboarded: MemoryPoint;
    readonly resynced: MemoryPoint;
    /**
     * Then, with EcsProvider.invalidateCaches() (the survey's snapshot and
     * the task definition caches dropped): what those hold is the difference.
     */
    readonly cachesDropped: MemoryPoint;
  };
  /** This process after onboarding: the fakes (every record with its status, the ECS state) and the harness. */
  readonly parentProcess: { readonly pid: number; readonly gc: boolean; readonly baseline: MemoryPoint; readonly onboarded: MemoryPoint };
  readonly onboarding: SplitPhase & { readonly tenantsPerSecond: number };
  readonly resync: SplitPhase & { readonly controllerCpuPerReconcileMs: number };
  readonly ipc: {
    /** Calls the controller made to the fakes over the whole run, by port.method (and iter.*, changes.*). */
    readonly byCall: Readonly<Record<string, number>>;
    readonly roundTrips: number;
    /** Of those, answered here (equal to roundTrips once the child stopped: nothing lost on the way). */
    readonly answered: number;
    /** The harness's own calls to the child (compose, start, state polls, memory, resync, stop). */
    readonly control: Readonly<Record<string, number>>;
    /** One-way notes: change batches to the child, reconcile results (batched) from it. */
    readonly notes: Readonly<Record<string, number>>;
  };
  /** Over the whole run (start and pool included): ECS requests the child sent and the fake served, statuses the fake wrote. */
  readonly totals: { readonly ecsSent: number; readonly ecsServed: number; readonly statusWrites: number };
  readonly converged: ConvergenceCheck;
  readonly load: readonly [number, number];
}

const CHILD = fileURLToPath(new URL("./scale-controller-process.ts", import.meta.url));
const REPO = dirname(dirname(CHILD));

export async function runScaleSplit(options: SplitOptions): Promise<SplitResult> {
  const say = options.progress ?? (() => {});
  const loadBefore = loadavg()[0] ?? 0;
  const parentGc = collect();
  const parentBaseline = point(process.memoryUsage(), process.cpuUsage());
  const cloud = createCloud({ throttle: options.throttle });
  const build = options.compiled === true ? compileChild(say) : undefined;
  const child = fork(build?.entry ?? CHILD, [], {
    execArgv: build !== undefined ? ["--expose-gc"] : ["--import", "tsx", "--expose-gc"],
    serialization: "advanced",
    // The child writes nothing to stdout (logs go to /dev/null); whatever it prints must not mix into --json.
    stdio: ["ignore", 2, 2, "ipc"],
  });
  const peer = new Peer((message) => {
    child.send(message);
  });
  const exited = new Promise<string>((resolve) => child.once("exit", (code, signal) => resolve(String(code ?? signal))));
  child.on("message", (message) => peer.receive(message as Wire));
  void exited.then((how) => peer.close(new Error(`the controller process exited (${how})`)));
  const counter = new ReconcileCounter();
  let holder = "";
  peer.onNote("results", (batch) => {
    for (const [key, kind] of batch as [string, ReconcileResult["kind"]][]) counter.record(holder, key, { kind } as ReconcileResult);
  });
  const loaded = new Promise<ProcessMemory>((resolve) => peer.onNote("loaded", (m) => resolve(m as ProcessMemory)));
  const shapes = describePorts(cloud);
  servePorts(peer, cloud, shapes);
  let running = false;
  try {
    const started = await within(
      Promise.race([loaded, exited.then((how) => Promise.reject(new Error(`the controller process exited (${how}) before it loaded`)))]),
      options.timeoutMs,
      "the controller process did not load",
    );
    const tuning: ComposeTuning = {
      concurrency: options.concurrency,
      logLevel: options.logLevel,
      ...(options.leaseSeconds !== undefined ? { leaseSeconds: options.leaseSeconds } : {}),
    };
    holder = (await peer.call("compose", tuning, shapes)) as string;
    const composed = (await peer.call("memory")) as ProcessMemory;
    say(`controller process ${composed.pid}: RSS ${mib(started.rss)} MiB at its first line, ${mib(composed.rss)} MiB composed`);

    running = true;
    await peer.call("start");
    // As in process: every shard held and synced, the controller lease held, the pool converged.
    await within(
      (async () => {
        for (;;) {
          const s = await state(peer);
          if (s.ready && s.role === "leader" && s.shards.length === 32) return;
          await sleep(50);
        }
      })(),
      options.timeoutMs,
      "the controller did not take its shards and the controller lease",
    );
    await within(poolReady(cloud, counter), options.timeoutMs, "the pooled services did not converge");
    say(`${holder} up in its own process, holds the 32 shards and the pool; the pool is converged`);

    // ---- 1. onboarding from empty, as scale-run's
    const fleet = fleetRecords(options.mix);
    const before = await snapshot(cloud, peer, counter);
    const readyAt = await onboardFleet(cloud, fleet, options.timeoutMs, say);
    await counter.quiet(1500);
    const onboarded = { ...phase(before, await snapshot(cloud, peer, counter)), wallMs: readyAt - before.at };
    say(`onboarded ${fleet.length} in ${(onboarded.wallMs / 1000).toFixed(1)} s, ${onboarded.roundTrips} round trips`);

    // ---- 2. memory of both processes
    const afterOnboarding = (await peer.call("memory")) as ProcessMemory;
    collect();
    const parentOnboarded = point(process.memoryUsage(), process.cpuUsage());
    say(`controller process RSS ${mib(afterOnboarding.rss)} MiB; this process (the fakes) ${parentOnboarded.rssMiB} MiB`);

    // ---- 3. one full resync pass
    const passStart = await snapshot(cloud, peer, counter);
    const target = counter.total + fleet.length + 1;
    const passed = counter.whenTotal(target);
    counter.beginPass();
    const listed = (await peer.call("resync")) as boolean;
    if (!listed) throw new Error("the controller could not list the fleet for the resync");
    await within(passed, options.timeoutMs, () => `resync: ${counter.total - passStart.reconciles} of ${fleet.length + 1} reconciled`);
    const pass = phase(passStart, await snapshot(cloud, peer, counter));
    await counter.quiet(500);
    const extra = counter.total - target;
    const depth = (await state(peer)).queueDepth;
    if (extra !== 0 || depth !== 0)
      throw new Error(`the resync pass reconciled ${extra} keys more than the fleet and the pool; queue depth ${depth}`);
    const resynced = (await peer.call("memory")) as ProcessMemory;
    say(
      `resync pass: ${pass.reconciles} reconciles in ${(pass.wallMs / 1000).toFixed(1)} s; controller process RSS ${mib(resynced.rss)} MiB`,
    );
    await peer.call("dropCaches");
    const cachesDropped = (await peer.call("memory")) as ProcessMemory;

    const last = await state(peer);
    const converged = convergence(cloud, fleet, last.role === "leader" ? 1 : 0);
    running = false;
    await peer.call("stop");
    const end = await state(peer);
    const childCalls = end.called;
    const { progress: _progress, ...settings } = options;
    return {
      options: settings,
      controllerProcess: {
        pid: composed.pid,
        gc: composed.gc,
        nodeAlone: nodeAlone(),
        started: point(started, started.cpu),
        composed: point(composed, composed.cpu),
        onboarded: point(afterOnboarding, afterOnboarding.cpu),
        resynced: point(resynced, resynced.cpu),
        cachesDropped: point(cachesDropped, cachesDropped.cpu),
      },
      parentProcess: { pid: process.pid, gc: parentGc, baseline: parentBaseline, onboarded: parentOnboarded },
      onboarding: { ...onboarded, tenantsPerSecond: options.tenants / (onboarded.wallMs / 1000) },
      resync: { ...pass, controllerCpuPerReconcileMs: pass.controllerCpuMs / pass.reconciles },
      ipc: {
        byCall: sorted(childCalls),
        roundTrips: sumOf(childCalls),
        answered: sumOf(peer.answered),
        control: sorted(peer.called),
        notes: { ...prefixed("to the controller: ", peer.notesSent), ...prefixed("from the controller: ", peer.notesReceived) },
      },
      totals: { ecsSent: sumOf(end.sent), ecsServed: sumOf(cloud.ecs.served), statusWrites: cloud.store.statusWrites },
      converged,
      load: [loadBefore, loadavg()[0] ?? 0],
    };
  } finally {
    await shutDown(child, peer, running, exited);
    if (build !== undefined) rmSync(build.dir, { recursive: true, force: true });
  }
}

/**
 * The controller process's modules compiled by tsc (the repo's compiler
 * options, as `npm run build` compiles src/ for the image) into a temporary
 * directory that resolves packages through a link to this repo's node_modules.
 */
function compileChild(say: (line: string) => void): { readonly dir: string; readonly entry: string } {
  const dir = mkdtempSync(join(tmpdir(), "scale-controller-"));
  try {
    symlinkSync(join(REPO, "node_modules"), join(dir, "node_modules"), "dir");
    writeFileSync(join(dir, "package.json"), JSON.stringify({ type: "module" }));
    const config = {
      extends: join(REPO, "tsconfig.json"),
      compilerOptions: { rootDir: REPO, outDir: dir, noEmit: false, declaration: false, sourceMap: false, incremental: false },
      files: [CHILD],
      include: [],
    };
    writeFileSync(join(dir, "tsconfig.json"), JSON.stringify(config));
    say(`compiling the controller process with tsc into ${dir}`);
    const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
    execFileSync(process.execPath, [tsc, "-p", join(dir, "tsconfig.json")], { stdio: ["ignore", 2, 2] });
    return { dir, entry: join(dir, "bench", "scale-controller-process.js") };
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

async function shutDown(child: ChildProcess, peer: Peer, started: boolean, exited: Promise<string>): Promise<void> {
  if (child.connected) {
    if (started) await within(peer.call("stop"), 30_000, "the controller did not stop").catch(() => undefined);
    child.disconnect();
  }
  // A child that does not leave once disconnected (stuck in a loop) is killed; the timer must not hold this process up.
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  await exited;
  clearTimeout(timer);
}

/** A bare Node process's memory after a full GC, measured the same way. */
function nodeAlone(): MemoryPoint {
  const script = "gc(); gc(); process.stdout.write(JSON.stringify({ m: process.memoryUsage(), c: process.cpuUsage() }))";
  const { m, c } = JSON.parse(execFileSync(process.execPath, ["--expose-gc", "-e", script], { encoding: "utf8" })) as {
    m: NodeJS.MemoryUsage;
    c: NodeJS.CpuUsage;
  };
  return point(m, c);
}

function state(peer: Peer): Promise<ControllerState> {
  return peer.call("state") as Promise<ControllerState>;
}

interface Snapshot {
  readonly at: number;
  readonly parentCpu: NodeJS.CpuUsage;
  readonly child: ControllerState;
  readonly reconciles: number;
  readonly served: ReadonlyMap<string, number>;
  readonly statusWrites: number;
  readonly otherWrites: number;
  readonly events: ReadonlyMap<string, number>;
}

async function snapshot(cloud: ScaleCloud, peer: Peer, counter: ReconcileCounter): Promise<Snapshot> {
  const child = await state(peer);
  return {
    at: performance.now(),
    parentCpu: process.cpuUsage(),
    child,
    reconciles: counter.total,
    served: new Map(cloud.ecs.served),
    statusWrites: cloud.store.statusWrites,
    otherWrites: cloud.routes.writes + cloud.claims.writes + cloud.identity.writes + cloud.namespaces.writes + cloud.infra.stacksCreated,
    events: new Map(cloud.events.byType),
  };
}

function phase(a: Snapshot, b: Snapshot): SplitPhase {
  const ecs = diff(a.served, b.served);
  const reads = Object.entries(ecs)
    .filter(([action]) => ECS_READS.has(action))
    .reduce((n, [, v]) => n + v, 0);
  return {
    wallMs: b.at - a.at,
    reconciles: b.reconciles - a.reconciles,
    results: diff(a.child.results, b.child.results),
    ecs,
    ecsSent: diff(a.child.sent, b.child.sent),
    ecsReads: reads,
    ecsWrites: sumOf(new Map(Object.entries(ecs))) - reads,
    statusWrites: b.statusWrites - a.statusWrites,
    otherWrites: b.otherWrites - a.otherWrites,
    events: diff(a.events, b.events),
    leaseLosses: b.child.leaseLosses - a.child.leaseLosses,
    controllerCpuMs: cpuMs(b.child.cpu) - cpuMs(a.child.cpu),
    parentCpuMs: cpuMs(b.parentCpu) - cpuMs(a.parentCpu),
    // The snapshot's own state call is the harness's, not the controller's: not in `called`.
    roundTrips: sumOf(b.child.called) - sumOf(a.child.called),
  };
}

function point(m: Omit<NodeJS.MemoryUsage, never> | ProcessMemory, cpu: NodeJS.CpuUsage): MemoryPoint {
  return {
    rssMiB: mib(m.rss),
    heapUsedMiB: mib(m.heapUsed),
    heapTotalMiB: mib(m.heapTotal),
    externalMiB: mib(m.external),
    arrayBuffersMiB: mib(m.arrayBuffers),
    cpuUserMs: Math.round(cpu.user / 1000),
    cpuSystemMs: Math.round(cpu.system / 1000),
  };
}

function mib(bytes: number): number {
  return Math.round((bytes / 2 ** 20) * 10) / 10;
}

function cpuMs(c: NodeJS.CpuUsage): number {
  return (c.user + c.system) / 1000;
}

function diff(a: ReadonlyMap<string, number>, b: ReadonlyMap<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of [...b].sort(([x], [y]) => x.localeCompare(y))) {
    const d = v - (a.get(k) ?? 0);
    if (d !== 0) out[k] = d;
  }
  return out;
}

function sorted(m: ReadonlyMap<string, number>): Record<string, number> {
  return Object.fromEntries([...m].sort(([, x], [, y]) => y - x));
}

function prefixed(prefix: string, m: ReadonlyMap<string, number>): Record<string, number> {
  return Object.fromEntries([...m].map(([k, v]) => [`${prefix}${k}`, v]));
}

function sumOf(m: ReadonlyMap<string, number>): number {
  let n = 0;
  for (const v of m.values()) n += v;
  return n;
}
