/**
 * What a reconcile tells the queue. A discriminated union, so "error plus
 * requeue" cannot be expressed:
 * - done: forget the key's backoff; it comes back on its next change or resync.
 * - requeueAfter: look again after `ms` (waiting on ECS), backoff reset.
 * - failed, retryable: requeue with per-key exponential backoff.
 * - failed, terminal: retrying cannot help, so no backoff; the key comes back
 *   when it changes, or after `retryAfterMs` when given (a person may fix
 *   the cause without touching the key, e.g. re-tag a resource).
 */
export type ReconcileResult =
  | { readonly kind: "done" }
  | { readonly kind: "requeueAfter"; readonly ms: number; readonly reason: string }
  | { readonly kind: "failed"; readonly error: Error; readonly terminal: boolean; readonly retryAfterMs?: number };

export const done = (): ReconcileResult => ({ kind: "done" });
export const requeueAfter = (ms: number, reason: string): ReconcileResult => ({ kind: "requeueAfter", ms, reason });
export const failed = (error: Error, terminal = false, retryAfterMs?: number): ReconcileResult => ({
  kind: "failed",
  error,
  terminal,
  ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
});

/**
 * What the queue knows of the key's earlier attempts, handed to each
 * reconcile (controller-runtime passes a context the same way), so a
 * reconcile can report its failures without keeping counts of its own.
 */
export interface ReconcileContext {
  /** Failed attempts in a row before this one that the queue is backing off (0 after a success or a terminal failure). */
  readonly failures: number;
  /** The wait before the next attempt if this one fails and is retried with backoff; the queue then applies this very delay. */
  retryDelayMs(): number;
}

/** A reconcile function: level-triggered, idempotent, safe to call again at any time. */
export type Reconciler<K extends string = string> = (key: K, signal: AbortSignal, context: ReconcileContext) => Promise<ReconcileResult>;
