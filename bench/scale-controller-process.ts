import type { ReconcileResult } from "../src/reconciler/result.js";
import type { MemoryIdentity } from "./fakes/memory-ports.js";
import type { LocalMethods, PortShapes } from "./remote-ports.js";
import type { Wire } from "./rpc.js";
import type { ControllerTuning, ScaleController } from "./scale-fleet.js";

/**
 * ONE scale-benchmark controller in a process of its own
 * (`npm run bench:scale -- --controller-process`, bench/scale-split.ts forks
 * this module): composed by composeControllers exactly as in process, on
 * ports that forward every call to the parent's fakes (bench/remote-ports.ts),
 * so this process's memory is the controller's alone: Node, tsx, the modules
 * and the controller's own state, none of the fleet's records or ECS state.
 *
 * The parent drives it with calls: compose, start, state, resync, memory,
 * dropCaches, stop. Reconcile results go back as notes, batched per turn of the loop.
 */

/** What `memory` answers: process.memoryUsage() after a full GC, and process.cpuUsage(). */
export interface ProcessMemory {
  readonly pid: number;
  readonly gc: boolean;
  readonly rss: number;
  readonly heapUsed: number;
  readonly heapTotal: number;
  readonly external: number;
  readonly arrayBuffers: number;
  readonly cpu: NodeJS.CpuUsage;
}

/** What `state` answers: the harness's view of the controller (ScaleController's counters, copied). */
export interface ControllerState {
  readonly holder: string;
  readonly ready: boolean;
  readonly role: string;
  readonly shards: readonly number[];
  readonly queueDepth: number;
  readonly sent: ReadonlyMap<string, number>;
  readonly results: ReadonlyMap<string, number>;
  readonly leaseLosses: number;
  /** This process's calls to the parent, by op (each a round trip). */
  readonly called: ReadonlyMap<string, number>;
  readonly cpu: NodeJS.CpuUsage;
}

export type ComposeTuning = Pick<ControllerTuning, "concurrency" | "leaseSeconds" | "logLevel">;

/** Full GC (the child runs with --expose-gc), then memoryUsage() and cpuUsage(). */
function measure(): ProcessMemory {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  gc?.();
  const m = process.memoryUsage();
  return {
    pid: process.pid,
    gc: gc !== undefined,
    rss: m.rss,
    heapUsed: m.heapUsed,
    heapTotal: m.heapTotal,
    external: m.external,
    arrayBuffers: m.arrayBuffers,
    cpu: process.cpuUsage(),
  };
}

// Node and tsx alone, before any module of the controller (or of the fakes' types) is loaded.
const started = measure();
const { MemoryIdentity: Identity } = await import("./fakes/memory-ports.js");
const { createRemotePorts } = await import("./remote-ports.js");
const { Peer } = await import("./rpc.js");
const { composeControllers } = await import("./scale-fleet.js");

const send = process.send?.bind(process);
if (send === undefined)
  throw new Error("bench/scale-controller-process.ts runs as a forked child (bench/scale-split.ts), with an IPC channel");

const peer = new Peer((message) => {
  send(message);
});
process.on("message", (message) => peer.receive(message as Wire));
// The parent gone is the end: nothing else would stop the controller's timers.
process.on("disconnect", () => process.exit(0));

// Pure sync methods, answered here (MemoryIdentity.issuer reads no state).
const localIdentity = new Identity();
const local: LocalMethods = { identity: { issuer: (pool: Parameters<MemoryIdentity["issuer"]>[0]) => localIdentity.issuer(pool) } };

let controller: ScaleController | undefined;
const the = (): ScaleController => {
  if (controller === undefined) throw new Error("compose first");
  return controller;
};

let results: [string, ReconcileResult["kind"]][] = [];
const flushResults = () => {
  const batch = results;
  results = [];
  if (batch.length > 0) peer.note("results", batch);
};

peer
  .handle("compose", (tuning, shapes) => {
    if (controller !== undefined) throw new Error("already composed");
    const ports = createRemotePorts(peer, shapes as PortShapes, local);
    [controller] = composeControllers(ports, 1, {
      ...(tuning as ComposeTuning),
      onResult: (_holder, key, result) => {
        if (results.length === 0) setImmediate(flushResults);
        results.push([key, result.kind]);
      },
    });
    return the().holder;
  })
  .handle("start", () => the().manager.start())
  .handle("resync", () => the().manager.resyncNow())
  // After the last measurement: what the provider's caches and the survey's snapshot hold shows as the drop.
  .handle("dropCaches", () => the().ecs.invalidateCaches())
  .handle("stop", async () => {
    await the().manager.stop();
    flushResults();
  })
  .handle("state", (): ControllerState => {
    const c = the();
    return {
      holder: c.holder,
      ready: c.manager.ready,
      role: c.manager.role,
      shards: c.shards.ownedShards(),
      queueDepth: c.manager.queueDepth,
      sent: new Map(c.sent.sent),
      results: new Map(c.results),
      leaseLosses: c.leaseLosses.count,
      called: new Map(peer.called),
      cpu: process.cpuUsage(),
    };
  })
  .handle("memory", measure);

peer.note("loaded", started);
