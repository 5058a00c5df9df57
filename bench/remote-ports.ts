import * as ecsSdk from "@aws-sdk/client-ecs";
import type { ECSClient } from "@aws-sdk/client-ecs";
import type { Fence, FenceTerm, TenantChange, TenantChangeSource } from "../src/ports.js";
import { InMemoryLeaseStore } from "../src/reconciler/lease.js";
import { InMemoryShardStore } from "../src/reconciler/shard-leases.js";
import type { Peer } from "./rpc.js";
import type { ControllerPorts, ScaleCloud } from "./scale-fleet.js";

/**
 * The scale benchmark's ports across a process boundary
 * (`npm run bench:scale -- --controller-process`): the parent keeps the
 * fakes (ScaleCloud) and serves them; the controller process gets one
 * generic proxy per port whose async methods forward each call over the
 * channel (bench/rpc.ts) and resolve with the fake's answer. Which methods
 * exist, and which are async, async generators (paged) or sync, is read
 * from the fakes themselves and sent to the child once, so a proxy has
 * exactly the fake's methods (an optional one a fake lacks stays absent).
 *
 * What cannot cross a channel is handled at the edges:
 * - a Fence (functions): the child calls assertHeld() when forwarding and
 *   sends whether it held and its term(); the parent hands the fake a fence
 *   that answers with that term and throws where the fake calls assertHeld()
 *   if it did not hold; the child then throws the original LeaseLostError.
 *   So a fake that checks its fence only before a write (an ensure of what
 *   exists already does not) keeps its order; only the moment of the check
 *   moves, to the forwarding, a round trip earlier.
 * - an ECS command (a class): its class name and input; the parent makes
 *   the same command class from @aws-sdk/client-ecs for FakeEcsClient.send.
 * - the change source's callback: the parent follows the stream and pushes
 *   each batch as a note.
 * - sync methods: computed in the child from `local` (pure ones only, such
 *   as IdentityPort.issuer); any other sync method throws, naming itself.
 *
 * The lease stores stay in the child (see createRemotePorts).
 */

/** The ports the parent serves (everything of ControllerPorts but the change source and the lease stores). */
export const SERVED_PORTS = [
  "ecs",
  "store",
  "infra",
  "data",
  "routes",
  "priorities",
  "claims",
  "removals",
  "namespaces",
  "identity",
  "events",
] as const;
export type ServedPort = (typeof SERVED_PORTS)[number];

/** A port's methods by how they return. */
export interface PortShape {
  readonly async: readonly string[];
  /** Async generator methods (TenantStore.scan): paged over the channel. */
  readonly iterables: readonly string[];
  readonly sync: readonly string[];
}
export type PortShapes = Readonly<Record<ServedPort, PortShape>>;

/** Sync methods a child computes itself, by port. */
export type LocalMethods = Partial<Record<ServedPort, Readonly<Record<string, (...args: never[]) => unknown>>>>;

interface FenceWire {
  readonly $fence: { readonly held: boolean; readonly term: FenceTerm | undefined; readonly index: number };
}
interface CommandWire {
  readonly $command: string;
  readonly input: unknown;
}

/** Thrown by a rebuilt fence that did not hold in the child: the child throws its own error instead. */
class FenceRefused extends Error {
  readonly fenceRefused: number;
  constructor(index: number) {
    super("the fence did not hold in the controller process");
    this.name = "FenceRefused";
    this.fenceRefused = index;
  }
}

// ------------------------------------------------------------------ parent

/** What each fake has, by kind of method: its prototype chain and its own function-valued fields. */
export function describePorts(cloud: ScaleCloud): PortShapes {
  const out = {} as Record<ServedPort, PortShape>;
  for (const port of SERVED_PORTS) out[port] = shapeOf(cloud[port]);
  return out;
}

function shapeOf(target: object): PortShape {
  const shape = { async: [] as string[], iterables: [] as string[], sync: [] as string[] };
  const seen = new Set<string>();
  const add = (name: string, fn: unknown) => {
    if (seen.has(name) || name === "constructor" || typeof fn !== "function") return;
    seen.add(name);
    const kind = (fn as { constructor: { name: string } }).constructor.name;
    if (kind === "AsyncFunction") shape.async.push(name);
    else if (kind === "AsyncGeneratorFunction") shape.iterables.push(name);
    else shape.sync.push(name);
  };
  for (const [name, value] of Object.entries(target)) add(name, value);
  for (
    let p: object | null = Object.getPrototypeOf(target) as object | null;
    p !== null && p !== Object.prototype;
    p = Object.getPrototypeOf(p) as object | null
  )
    for (const name of Object.getOwnPropertyNames(p)) {
      const d = Object.getOwnPropertyDescriptor(p, name);
      if (d !== undefined && "value" in d) add(name, d.value);
    }
  if (shape.async.length + shape.iterables.length === 0)
    throw new Error(`the fake has no async method: is it still written with async methods (bench/fakes)?`);
  return shape;
}

/**
 * Serves the cloud's fakes to one controller process: a call `<port>.<method>`
 * per async method, `iter.*` for paged iterables, `changes.*` for the stream.
 */
export function servePorts(peer: Peer, cloud: ScaleCloud, shapes: PortShapes): void {
  for (const port of SERVED_PORTS) {
    const target = cloud[port] as unknown as Record<string, (...args: unknown[]) => unknown>;
    for (const method of shapes[port].async)
      peer.handle(`${port}.${method}`, (...args) => target[method]?.call(target, ...args.map(decodeArg)));
  }
  const iterators = new Map<number, AsyncIterator<unknown>>();
  let nextIterator = 1;
  peer.handle("iter.open", (port, method, args) => {
    const target = cloud[port as ServedPort] as unknown as Record<string, (...a: unknown[]) => AsyncIterable<unknown>>;
    const fn = target[method as string];
    if (fn === undefined) throw new Error(`${String(port)} has no method ${String(method)}`);
    const id = nextIterator++;
    iterators.set(id, fn.call(target, ...(args as unknown[]).map(decodeArg))[Symbol.asyncIterator]());
    return id;
  });
  peer.handle("iter.next", async (id) => {
    const it = iterators.get(id as number);
    if (it === undefined) throw new Error(`no open iterator ${String(id)}`);
    const r = await it.next();
    if (r.done === true) iterators.delete(id as number);
    return r;
  });
  peer.handle("iter.close", async (id) => {
    const it = iterators.get(id as number);
    iterators.delete(id as number);
    await it?.return?.();
  });
  let follower: TenantChangeSource | undefined;
  peer.handle("changes.start", async () => {
    follower ??= cloud.changes.follower();
    await follower.start((changes) => peer.note("changes", changes));
  });
  peer.handle("changes.stop", async () => {
    await follower?.stop();
  });
}

function decodeArg(arg: unknown): unknown {
  if (typeof arg !== "object" || arg === null) return arg;
  if ("$fence" in arg) {
    const { held, term, index } = (arg as FenceWire).$fence;
    const fence: Fence = {
      assertHeld() {
        if (!held) throw new FenceRefused(index);
      },
      term: () => term,
    };
    return fence;
  }
  if ("$command" in arg) {
    const { $command: name, input } = arg as CommandWire;
    const Command = (ecsSdk as unknown as Record<string, unknown>)[name];
    if (typeof Command !== "function" || !name.endsWith("Command")) throw new Error(`@aws-sdk/client-ecs has no command ${name}`);
    return new (Command as new (input: unknown) => object)(input);
  }
  return arg;
}

// ------------------------------------------------------------------- child

/**
 * A controller's ports whose calls go to the parent. The lease stores are
 * the child's own: one controller contends with nobody for them, they hold
 * 33 small items, and served from the parent their renewals would queue
 * behind the workers' calls there, so a busy parent could cost the child
 * a lease (an artefact of the channel; in production they are DynamoDB's).
 */
export function createRemotePorts(peer: Peer, shapes: PortShapes, local: LocalMethods = {}): ControllerPorts {
  const proxies = {} as Record<ServedPort, object>;
  for (const port of SERVED_PORTS) proxies[port] = proxyOf(peer, port, shapes[port], local[port] ?? {});
  const ecsProxy = proxies.ecs as { send(command: object): Promise<unknown> };
  let onChange: ((changes: readonly TenantChange[]) => void) | undefined;
  peer.onNote("changes", (changes) => onChange?.(changes as readonly TenantChange[]));
  const follower: TenantChangeSource = {
    start: async (fn) => {
      onChange = fn;
      await peer.call("changes.start");
    },
    stop: async () => {
      onChange = undefined;
      await peer.call("changes.stop");
    },
  };
  return {
    ...(proxies as unknown as Omit<ControllerPorts, "ecs" | "changes" | "leases" | "shardLeases">),
    ecs: { asClient: () => ({ send: (command: object) => ecsProxy.send(command) }) as unknown as ECSClient },
    changes: { follower: () => follower },
    leases: new InMemoryLeaseStore(),
    shardLeases: new InMemoryShardStore(),
  };
}

function proxyOf(peer: Peer, port: ServedPort, shape: PortShape, local: Readonly<Record<string, (...args: never[]) => unknown>>): object {
  const proxy: Record<string, unknown> = {};
  for (const method of shape.async)
    proxy[method] = async (...args: unknown[]) => {
      const refusals: Error[] = [];
      const wire = args.map((a, i) => encodeArg(a, i, refusals));
      try {
        return await peer.call(`${port}.${method}`, ...wire);
      } catch (err) {
        // The fake reached assertHeld() on a fence that did not hold here: the fence's own error, as in one process.
        const index = (err as { fenceRefused?: unknown }).fenceRefused;
        if (typeof index === "number" && refusals[index] !== undefined) throw refusals[index];
        throw err;
      }
    };
  for (const method of shape.iterables)
    proxy[method] = async function* (...args: unknown[]) {
      const refusals: Error[] = [];
      const id = await peer.call(
        "iter.open",
        port,
        method,
        args.map((a, i) => encodeArg(a, i, refusals)),
      );
      let done = false;
      try {
        for (;;) {
          const r = (await peer.call("iter.next", id)) as IteratorResult<unknown>;
          if (r.done === true) {
            done = true;
            return;
          }
          yield r.value;
        }
      } finally {
        // A consumer that stopped early: the parent's iterator is let go.
        if (!done) await peer.call("iter.close", id).catch(() => undefined);
      }
    };
  for (const method of shape.sync)
    proxy[method] =
      local[method] ??
      (() => {
        throw new Error(`${port}.${method} is sync and cannot cross to the parent: compute it in the controller process (LocalMethods)`);
      });
  return proxy;
}

function encodeArg(arg: unknown, index: number, refusals: Error[]): unknown {
  if (typeof arg !== "object" || arg === null) return arg;
  if (typeof (arg as Partial<Fence>).assertHeld === "function") {
    const fence = arg as Fence;
    let held = true;
    try {
      fence.assertHeld();
    } catch (err) {
      held = false;
      refusals[index] = err instanceof Error ? err : new Error(String(err));
    }
    return { $fence: { held, term: fence.term?.(), index } } satisfies FenceWire;
  }
  const ctor = (arg as { constructor?: { name?: unknown } }).constructor?.name;
  if (typeof ctor === "string" && ctor.endsWith("Command") && "input" in arg && "middlewareStack" in arg)
    return { $command: ctor, input: (arg as { input: unknown }).input } satisfies CommandWire;
  return arg;
}
