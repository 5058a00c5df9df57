/**
 * The kinds of failure the operator acts on, as types (docs/adr/0013). A
 * provider sorts each AWS error into one of them where it catches it (at the
 * boundary, src/providers/aws-errors.ts); past that point nothing reads an
 * AWS error's name or message. A wrapper that adds context keeps the original
 * as `cause` and never takes its name: kindOf() walks the `cause` chain.
 *
 * A leaf module: it imports nothing of ours, so every layer can use it.
 */

/**
 * What waiting does for a failure. "transient": it may pass (a throttle, a
 * server or network fault, a resource still busy), so retry with backoff.
 * "terminal": it stays until a person or the record changes it (a refused
 * request, something that is not ours), so report it and poll slowly.
 */
export type ErrorKind = "transient" | "terminal";

/** A failure whose kind is known. Subclasses fix the kind; kindOf() reads it. */
export abstract class ClassifiedError extends Error {
  abstract readonly kind: ErrorKind;

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Waiting may help: a throttle, a server or network fault, a resource still busy. */
export class TransientError extends ClassifiedError {
  readonly kind = "transient";
}

/** Waiting does not help: the request, the record or the resource must change first. */
export class TerminalError extends ClassifiedError {
  readonly kind = "terminal";
}

/** The resource is not there. Callers that delete or look up treat it as an answer; escaping, it is terminal. */
export class NotFoundError extends TerminalError {}

/** A write lost a race or met what someone else holds (a condition, a priority, a name). */
export class ConflictError extends TerminalError {}

/** Thrown by a fenced write when this controller no longer holds the lease; the next leader carries on. */
export class LeaseLostError extends TransientError {
  constructor(message = "leader lease lost") {
    super(message);
  }
}

/** Refused: the resource lacks managed-by=ecs-tenant-operator, so it is someone else's. */
export class UnmanagedResourceError extends TerminalError {
  constructor(readonly resource: string) {
    super(`refusing to modify ${resource}: it lacks the tag managed-by=ecs-tenant-operator`);
  }
}

/** The error and its causes, outermost first (bounded, in case of a cycle). */
export function causeChain(err: unknown): unknown[] {
  const chain: unknown[] = [];
  for (let e: unknown = err; e !== undefined && e !== null && chain.length < 16 && !chain.includes(e);) {
    chain.push(e);
    e = e instanceof Error ? e.cause : undefined;
  }
  return chain;
}

/** The kind of the outermost classified error in the chain; undefined when none is. */
export function kindOf(err: unknown): ErrorKind | undefined {
  for (const e of causeChain(err)) if (e instanceof ClassifiedError) return e.kind;
  return undefined;
}

/** The outermost error in the chain of the given type, e.g. findCause(err, LeaseLostError). */
export function findCause<T extends Error>(err: unknown, type: abstract new (...args: never[]) => T): T | undefined {
  for (const e of causeChain(err)) if (e instanceof type) return e;
  return undefined;
}
