import { ConflictError, LeaseLostError, NotFoundError, TerminalError, TransientError, UnmanagedResourceError } from "../src/errors.js";
import { ListenersFullError, PrioritiesExhaustedError } from "../src/providers/priority-allocator.js";

/**
 * Calls and one-way notes between two processes over a message channel
 * (child_process IPC with `serialization: "advanced"`, so Maps, Sets, Dates
 * and BigInts cross as they are). Each side answers the calls it has a
 * handler for; an error crosses as its name, message, stack, own enumerable
 * properties (an AWS error's $metadata, $fault) and cause, and is rebuilt
 * with its class when that class is one of ours, so `instanceof` and
 * kindOf() (src/errors.ts) see what they would have seen in one process.
 * Used by the scale benchmark's controller process (bench/remote-ports.ts).
 */

export type Wire =
  | { readonly rpc: "call"; readonly id: number; readonly op: string; readonly args: readonly unknown[] }
  | { readonly rpc: "answer"; readonly id: number; readonly value: unknown }
  | { readonly rpc: "fail"; readonly id: number; readonly error: WireError }
  | { readonly rpc: "note"; readonly op: string; readonly args: readonly unknown[] };

export interface WireError {
  readonly name: string;
  readonly message: string;
  readonly stack?: string;
  /** Own enumerable properties (functions left out). */
  readonly props: Readonly<Record<string, unknown>>;
  readonly cause?: WireError | { readonly value: unknown };
}

type Handler = (...args: readonly unknown[]) => unknown;

/** Our error classes, rebuilt by name on the other side (anything else comes back as an Error with the same name). */
const CLASSES: ReadonlyMap<string, { readonly prototype: Error }> = new Map(
  [
    TransientError,
    TerminalError,
    NotFoundError,
    ConflictError,
    LeaseLostError,
    UnmanagedResourceError,
    ListenersFullError,
    PrioritiesExhaustedError,
  ].map((c) => [c.name, c]),
);

export class Peer {
  readonly #send: (message: Wire) => void;
  readonly #handlers = new Map<string, Handler>();
  readonly #noteHandlers = new Map<string, Handler>();
  readonly #pending = new Map<number, { readonly resolve: (v: unknown) => void; readonly reject: (e: unknown) => void }>();
  #next = 1;
  #closed: Error | undefined;
  /** Calls this side made, by op: each is one round trip. */
  readonly called = new Map<string, number>();
  /** Calls this side answered, by op. */
  readonly answered = new Map<string, number>();
  /** Notes sent and received, by op. */
  readonly notesSent = new Map<string, number>();
  readonly notesReceived = new Map<string, number>();

  constructor(send: (message: Wire) => void) {
    this.#send = send;
  }

  /** Answers calls of `op` with what fn returns (or throws). */
  handle(op: string, fn: Handler): this {
    this.#handlers.set(op, fn);
    return this;
  }

  onNote(op: string, fn: Handler): this {
    this.#noteHandlers.set(op, fn);
    return this;
  }

  call(op: string, ...args: readonly unknown[]): Promise<unknown> {
    if (this.#closed !== undefined) return Promise.reject(this.#closed);
    const id = this.#next++;
    bump(this.called, op);
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      try {
        this.#send({ rpc: "call", id, op, args });
      } catch (err) {
        this.#pending.delete(id);
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
  }

  note(op: string, ...args: readonly unknown[]): void {
    if (this.#closed !== undefined) return;
    bump(this.notesSent, op);
    this.#send({ rpc: "note", op, args });
  }

  /** Feeds one message from the other side. */
  receive(message: Wire): void {
    switch (message.rpc) {
      case "call":
        void this.#answer(message.id, message.op, message.args);
        return;
      case "answer":
      case "fail": {
        const waiting = this.#pending.get(message.id);
        if (waiting === undefined) return;
        this.#pending.delete(message.id);
        if (message.rpc === "answer") waiting.resolve(message.value);
        else waiting.reject(decodeError(message.error));
        return;
      }
      case "note": {
        bump(this.notesReceived, message.op);
        const fn = this.#noteHandlers.get(message.op);
        if (fn === undefined) throw new Error(`no handler for the note "${message.op}"`);
        fn(...message.args);
        return;
      }
    }
  }

  /** The other side is gone: every pending call fails with `reason`, and later ones at once. */
  close(reason: Error): void {
    this.#closed = reason;
    for (const p of this.#pending.values()) p.reject(reason);
    this.#pending.clear();
  }

  get pending(): number {
    return this.#pending.size;
  }

  async #answer(id: number, op: string, args: readonly unknown[]): Promise<void> {
    bump(this.answered, op);
    let message: Wire;
    try {
      const fn = this.#handlers.get(op);
      if (fn === undefined) throw new Error(`no handler for the call "${op}"`);
      message = { rpc: "answer", id, value: await fn(...args) };
    } catch (err) {
      message = { rpc: "fail", id, error: encodeError(err) };
    }
    if (this.#closed !== undefined) return;
    try {
      this.#send(message);
    } catch (err) {
      // An answer that cannot be cloned (a function in it) must still settle the call.
      const why = new Error(`the answer to "${op}" could not cross the channel: ${err instanceof Error ? err.message : String(err)}`);
      this.#send({ rpc: "fail", id, error: encodeError(why) });
    }
  }
}

export function encodeError(err: unknown, depth = 0): WireError {
  if (!(err instanceof Error)) return { name: "Error", message: String(err), props: { thrown: String(err) } };
  const props: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(err)) if (typeof v !== "function" && k !== "cause") props[k] = v;
  const cause =
    err.cause === undefined || depth >= 8
      ? undefined
      : err.cause instanceof Error
        ? encodeError(err.cause, depth + 1)
        : { value: typeof err.cause === "object" || typeof err.cause === "function" ? describe(err.cause) : err.cause };
  return {
    name: err.name,
    message: err.message,
    ...(err.stack !== undefined ? { stack: err.stack } : {}),
    props,
    ...(cause !== undefined ? { cause } : {}),
  };
}

export function decodeError(w: WireError): Error {
  const proto = CLASSES.get(w.name)?.prototype ?? Error.prototype;
  const err = Object.create(proto) as Error;
  Object.defineProperty(err, "message", { value: w.message, writable: true, configurable: true });
  if (w.stack !== undefined) Object.defineProperty(err, "stack", { value: w.stack, writable: true, configurable: true });
  if (w.cause !== undefined) {
    const cause = "value" in w.cause ? w.cause.value : decodeError(w.cause);
    Object.defineProperty(err, "cause", { value: cause, writable: true, configurable: true });
  }
  Object.assign(err, w.props);
  // A plain Error renamed in place (Object.assign(new Error(), { name })) has name among its own properties already.
  if (err.name !== w.name) Object.defineProperty(err, "name", { value: w.name, writable: true, configurable: true });
  return err;
}

/** A non-Error cause, as text: an object may hold what cannot be cloned. */
function describe(value: unknown): string {
  try {
    return JSON.stringify(value) ?? typeof value;
  } catch {
    return typeof value;
  }
}

function bump(counts: Map<string, number>, key: string): void {
  counts.set(key, (counts.get(key) ?? 0) + 1);
}
