import type { MigrationStatus } from "../tenants/status.js";
import { homeOf } from "../tiers/data-home.js";
import { isBeforeFlip } from "./tier-move.js";
import { CaptureLostError } from "../data/errors.js";
import { DATA_APPS, type DataApp, type Fence, type TenantDataPort } from "../ports.js";

/**
 * Runs the steps of a tier move, each ending in a durable checkpoint
 * (status.migration), so a crash at any line resumes at the step it was in:
 *
 *   provision -> capture -> backfill -> catchup -> verify -> flip -> drain -> retire
 *
 * Why each step is where it is:
 * - capture opens the source's stream position BEFORE the backfill reads
 *   anything, so every write the backfill may miss is in the stream after it;
 * - backfill starts from an empty target (purge first): a leftover of an
 *   earlier, abandoned move can never survive as a ghost item;
 * - verify compares the items of both sides by key, leaving out the keys the
 *   tenant changed while they were read; any other difference means the
 *   target was written behind the mover's back, so it copies again;
 * - flip changes routing and status.tables in one status write, the moment
 *   the tenant's data officially lives in the target;
 * - drain keeps applying the source's stream for a grace period, for writes
 *   that were in flight when routing changed;
 * - retire deletes the source only after all that.
 */
export type MoveOutcome = { readonly kind: "wait"; readonly reason: string; readonly ms?: number } | { readonly kind: "done" };

export interface MoveHooks {
  readonly tenantId: string;
  readonly fence: Fence;
  /** Aborted when the controller stops: the move ends at its next step or page, its last checkpoint saved. */
  readonly signal?: AbortSignal;
  readonly now: () => Date;
  readonly drainMs: number;
  /** True once the target's tables and services are in place and healthy. */
  targetReady(): Promise<boolean>;
  /** False when the record, read again, no longer wants the move's target home. */
  stillWanted(): Promise<boolean>;
  /** Points the tenant's routing at the target; false while it cannot yet (the reason goes in the status). */
  flipRouting(): Promise<boolean>;
  /** True once a silo side that is no longer wanted (stack, tables) is gone; the reconcile's cleanup removes it. */
  siloGone(): Promise<boolean>;
  /** Persists the move (undefined: finished) with the status fields that change with it. */
  save(
    move: MigrationStatus | undefined,
    flipped?: { readonly tables: MigrationStatus["target"]; readonly servingTier: MigrationStatus["to"] },
  ): Promise<void>;
}

/** Catch-ups per reconcile while verification keeps finding differences, before yielding the worker. */
const VERIFY_ROUNDS_PER_RECONCILE = 3;

export class TierMoveRunner {
  readonly #data: TenantDataPort;

  constructor(data: TenantDataPort) {
    this.#data = data;
  }

  async run(start: MigrationStatus, h: MoveHooks): Promise<MoveOutcome> {
    const step = { current: start.step };
    try {
      return await this.#run(start, h, step);
    } catch (err) {
      throw new TierMoveStepError(step.current, start, err);
    }
  }

  async #run(start: MigrationStatus, h: MoveHooks, at: { current: MigrationStatus["step"] }): Promise<MoveOutcome> {
    let move = start;
    let verifyRounds = 0;
    const save = async (next: MigrationStatus) => {
      await h.save(next);
      move = next;
    };
    for (;;) {
      // Between steps every checkpoint is saved: the best place to stop.
      h.signal?.throwIfAborted();
      at.current = move.step;
      switch (move.step) {
        case "provision": {
          if (!(await h.targetReady()))
            return { kind: "wait", reason: `moving ${move.from} -> ${move.to}: waiting for the ${move.to} tier to be ready` };
          await save({ ...move, step: "capture" });
          break;
        }
        case "capture": {
          const checkpoints = await this.#perTable(async (app) => this.#data.openCapture(move.source[app]));
          await save({ ...move, step: "backfill", checkpoints });
          break;
        }
        case "backfill": {
          const copied = await this.#perTable(async (app) => {
            await this.#data.purge(h.tenantId, move.target[app], h.fence, h.signal);
            return (await this.#data.backfill(h.tenantId, move.source[app], move.target[app], h.fence, h.signal)).items;
          });
          const counts = { orders: { copied: copied.orders, applied: 0 }, products: { copied: copied.products, applied: 0 } };
          await save({ ...move, step: "catchup", counts });
          break;
        }
        case "catchup": {
          await save(await this.#catchUp(move, h, "verify"));
          break;
        }
        case "verify": {
          let result;
          try {
            result = await this.#verify(move, h);
          } catch (err) {
            if (!(err instanceof CaptureLostError)) throw err;
            const { checkpoints: _lost, counts: _stale, ...rest } = move;
            await save({ ...rest, step: "capture" });
            break;
          }
          if (result.equal) {
            // The last moment a reversal can abort: a record changed while this
            // reconcile copied is read once more before the flip is decided.
            if (!(await h.stillWanted())) {
              await save({ ...result.move, step: "verify" });
              return {
                kind: "wait",
                reason: `moving ${move.from} -> ${move.to}: the record changed; looking again before switching routing`,
                ms: 0,
              };
            }
            const counts = result.move.counts ?? { orders: { copied: 0, applied: 0 }, products: { copied: 0, applied: 0 } };
            await save({
              ...result.move,
              step: "flip",
              counts: {
                orders: { ...counts.orders, verified: result.verified.orders },
                products: { ...counts.products, verified: result.verified.products },
              },
            });
            break;
          }
          // Items differ that no write of the tenant explains (something wrote
          // to the target behind the mover's back, say a straggler of an
          // earlier move): copy again. The target does not serve yet, so the
          // source is right by definition, and the stream position is kept.
          verifyRounds += 1;
          await save({ ...result.move, step: "backfill", verifyAttempts: (move.verifyAttempts ?? 0) + 1 });
          if (verifyRounds >= VERIFY_ROUNDS_PER_RECONCILE)
            return { kind: "wait", reason: `moving ${move.from} -> ${move.to}: the copy differed from the source, copying again`, ms: 500 };
          break;
        }
        case "flip": {
          if (!(await h.flipRouting())) return { kind: "wait", reason: `moving ${move.from} -> ${move.to}: waiting to switch routing` };
          const at = h.now();
          const next: MigrationStatus = {
            ...move,
            step: "drain",
            flippedAt: at.toISOString(),
            drainUntil: new Date(at.getTime() + h.drainMs).toISOString(),
          };
          // Routing and status.tables change together: from this write on, the target is where the data lives.
          await h.save(next, { tables: move.target, servingTier: move.to });
          move = next;
          break;
        }
        case "drain": {
          const drained = await this.#catchUp(move, h, "drain");
          const remaining = Date.parse(move.drainUntil ?? "") - h.now().getTime();
          if (remaining > 0) {
            if (drained.counts !== move.counts || drained.checkpoints !== move.checkpoints) await save(drained);
            return {
              kind: "wait",
              reason: `moving ${move.from} -> ${move.to}: draining in-flight writes from the old tables`,
              ms: Math.min(1000, remaining),
            };
          }
          await save({ ...drained, step: "retire" });
          break;
        }
        case "retire": {
          // Even a move turned around after its flip retires its source: the
          // source stopped receiving writes at the flip, so it is stale, and
          // the move back starts from an emptied target anyway (backfill purges).
          if (!(await this.#retireSide(move.source, homeOf(move.from), h))) {
            return { kind: "wait", reason: `moving ${move.from} -> ${move.to}: removing the ${move.from} tier's copy` };
          }
          await h.save(undefined);
          return { kind: "done" };
        }
        case "abort": {
          if (!(await this.#retireSide(move.target, homeOf(move.to), h))) {
            return { kind: "wait", reason: `move ${move.from} -> ${move.to} reversed: removing its partial copy` };
          }
          await h.save(undefined);
          return { kind: "done" };
        }
      }
    }
  }

  /** Applies the source's stream since the checkpoints; returns the move with new checkpoints and counts. */
  async #catchUp(move: MigrationStatus, h: MoveHooks, then: MigrationStatus["step"]): Promise<MigrationStatus> {
    const checkpoints = move.checkpoints;
    if (checkpoints === undefined) throw new Error(`tier move of ${h.tenantId} is at ${move.step} without stream checkpoints`);
    let results;
    try {
      results = await this.#perTable(async (app) =>
        this.#data.catchUp(h.tenantId, move.source[app], move.target[app], checkpoints[app], h.fence, h.signal),
      );
    } catch (err) {
      if (!(err instanceof CaptureLostError)) throw err;
      // The stream no longer reaches back to the checkpoint (a controller down
      // for a day). Before the flip the source still has everything: copy
      // again from a new capture. During the drain the target already serves
      // and the source has been idle since the flip: go on to retire.
      if (move.step === "drain") return { ...move, step: "retire" };
      const { checkpoints: _lost, counts: _stale, ...rest } = move;
      return { ...rest, step: "capture" };
    }
    const applied = results.orders.applied + results.products.applied;
    if (applied === 0 && then === move.step) return move;
    const counts = move.counts ?? { orders: { copied: 0, applied: 0 }, products: { copied: 0, applied: 0 } };
    return {
      ...move,
      step: then,
      checkpoints: { orders: results.orders.checkpoint, products: results.products.checkpoint },
      counts: {
        orders: { ...counts.orders, applied: counts.orders.applied + results.orders.applied },
        products: { ...counts.products, applied: counts.products.applied + results.products.applied },
      },
    };
  }

  /**
   * Compares every item of both sides by key, leaving out the keys that
   * changed while they were read. The target equals the source as of the
   * checkpoint; a catch-up right after the reads names (and applies) every key
   * the tenant's application changed meanwhile, and any other key must hold
   * the same item on both sides. A tenant that never stops writing is thus
   * verified too: demanding a quiet moment would never end for a busy one.
   */
  async #verify(
    move: MigrationStatus,
    h: MoveHooks,
  ): Promise<{ equal: boolean; move: MigrationStatus; verified: Record<DataApp, number> }> {
    const read = await this.#perTable(async (app) => {
      const [source, target] = await Promise.all([
        this.#data.itemHashes(h.tenantId, move.source[app], h.signal),
        this.#data.itemHashes(h.tenantId, move.target[app], h.signal),
      ]);
      return { source, target };
    });
    const checkpoints = move.checkpoints;
    if (checkpoints === undefined) throw new Error(`tier move of ${h.tenantId} is at ${move.step} without stream checkpoints`);
    const caught = await this.#perTable(async (app) =>
      this.#data.catchUp(h.tenantId, move.source[app], move.target[app], checkpoints[app], h.fence, h.signal),
    );
    let equal = true;
    for (const app of DATA_APPS) {
      const changed = new Set(caught[app].changedKeys);
      const { source, target } = read[app];
      for (const key of new Set([...source.keys(), ...target.keys()])) {
        if (!changed.has(key) && source.get(key) !== target.get(key)) equal = false;
      }
    }
    const counts = move.counts ?? { orders: { copied: 0, applied: 0 }, products: { copied: 0, applied: 0 } };
    const next: MigrationStatus = {
      ...move,
      checkpoints: { orders: caught.orders.checkpoint, products: caught.products.checkpoint },
      counts: {
        orders: { ...counts.orders, applied: counts.orders.applied + caught.orders.applied },
        products: { ...counts.products, applied: counts.products.applied + caught.products.applied },
      },
    };
    return { equal, move: next, verified: { orders: read.orders.target.size, products: read.products.target.size } };
  }

  /** Deletes one side's copy: the tenant's pooled items, or (through the reconcile's cleanup) its silo stack and tables. */
  async #retireSide(tables: MigrationStatus["source"], home: "pool" | "silo", h: MoveHooks): Promise<boolean> {
    if (home === "silo") return h.siloGone();
    for (const app of DATA_APPS) await this.#data.purge(h.tenantId, tables[app], h.fence, h.signal);
    return true;
  }

  async #perTable<T>(work: (app: DataApp) => Promise<T>): Promise<Record<DataApp, T>> {
    // One table after the other: a move competes with the tenant's own traffic for the table's capacity.
    const orders = await work("orders");
    const products = await work("products");
    return { orders, products };
  }
}

/**
 * A failure inside a tier move's step, naming the step for the tenant's
 * status and SBT's provisionFailure. Unclassified on purpose: it adds context
 * only, and the retry decision walks on to its `cause` (src/operator/errors.ts).
 */
export class TierMoveStepError extends Error {
  constructor(
    readonly step: MigrationStatus["step"],
    move: MigrationStatus,
    override readonly cause: unknown,
  ) {
    const serving = isBeforeFlip(step) || step === "abort" ? move.from : move.to;
    super(
      `tier move ${move.from} -> ${move.to} failed at step ${step}: ${cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause)}; the ${serving} tier keeps serving`,
      { cause },
    );
    this.name = "TierMoveStepError";
  }
}
