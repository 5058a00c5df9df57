/**
 * What a reconcile tells the queue. A discriminated union, so "error plus
 * requeue" cannot be expressed:
 * - done: forget the key's backoff; it comes back on its next change or resync.
 * - requeueAfter: look again after `ms` (waiting on ECS), backoff reset.
 * - failed, retryable: requeue with per-key exponential backoff.
 * - failed, terminal: do not retry until the key changes (a bad record).
 */
export type ReconcileResult =
  | { readonly kind: "done" }
  | { readonly kind: "requeueAfter"; readonly ms: number; readonly reason: string }
  | { readonly kind: "failed"; readonly error: Error; readonly terminal: boolean };

export const done = (): ReconcileResult => ({ kind: "done" });
export const requeueAfter = (ms: number, reason: string): ReconcileResult => ({ kind: "requeueAfter", ms, reason });
export const failed = (error: Error, terminal = false): ReconcileResult => ({ kind: "failed", error, terminal });

/** A reconcile function: level-triggered, idempotent, safe to call again at any time. */
export type Reconciler<K extends string = string> = (key: K, signal: AbortSignal) => Promise<ReconcileResult>;
