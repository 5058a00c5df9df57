import {
  GetItemCommand,
  PutItemCommand,
  ScanCommand,
  TransactWriteItemsCommand,
  type AttributeValue,
  type DynamoDBClient,
  type TransactionCanceledException,
} from "@aws-sdk/client-dynamodb";
import { TransientError } from "../errors.js";
import type { Fence } from "../ports.js";
import { capacityOf, choosePlacement } from "../tiers/placement.js";
import { MAX_TENANT_PRIORITY, MIN_PRIORITY } from "../tiers/stack-template.js";
import { errorName, sleep, wrapAwsError } from "./aws-errors.js";

/**
 * ALB listener-rule priorities, one per tenant for the tenant's whole life,
 * held in the operator table (partition key `pk`) as two items written and
 * deleted together in one transaction:
 *
 *   pk = "priority#<n>"          tenantId = <tenant>    the number is taken
 *   pk = "priority-of#<tenant>"  priority = <n>         the tenant's number
 *
 * Each item is only ever created with attribute_not_exists(pk), so two
 * controllers racing for the same number cannot both win, and one tenant can
 * never get two numbers. Because both items change in one transaction, a
 * crash at any point leaves either both or neither: no number is owned by
 * nobody, none by two.
 *
 * Finding the lowest free number needs to know which are taken: a Scan of the
 * table (every page, strongly consistent, only `pk` projected). About 5,000
 * tenants fit in one 1 MB page, so it is one call for most fleets and O(tenants)
 * in read capacity. The result is kept in memory as a hint and refreshed every
 * `rescanAfterMs`, and at once after a lost race (another controller is
 * allocating, so the view is stale); a stale hint costs a failed transaction
 * and a rescan, never a wrong answer.
 * Numbers this process releases are reused at once; ones released by another
 * process are seen at the next rescan.
 *
 * With a pool of listeners (docs/adr/0015-listener-pool.md) a tenant's number
 * is a placement: a listener and a priority on it, priorities being per
 * listener. The first listener keeps the item names above, so the placements
 * made before the pool existed (an owner item without `listenerArn`) stay on
 * it; the others' numbers are `priority#<listenerArn>#<n>`. Each listener's
 * placements are counted in
 *
 *   pk = "listener-tenants#<listenerArn>"  tenants = <count>
 *
 * and the claim's transaction adds one to it on the condition that it is
 * below the listener's capacity (a release takes one off), so two writers
 * can never over-fill a listener. A missing count is seeded once from a
 * strongly consistent scan, on the condition that it still does not exist:
 * every claim and release needs the count to exist, so none can have
 * slipped between that scan and the seed.
 */

export interface PriorityAllocatorOptions {
  /** @default 1 */
  readonly min?: number;
  /** @default 49999: the ALB maximum, 50000, is the pool catch-all rule's (POOL_CATCH_ALL_PRIORITY) */
  readonly max?: number;
  /** How long the in-memory view of taken numbers is trusted. @default 60000 */
  readonly rescanAfterMs?: number;
  /** Transactions tried per call before giving up (each failure is a lost race). @default 64 */
  readonly maxAttempts?: number;
  /** @default Date.now */
  readonly now?: () => number;
  /** The listener pool, first listener first. @default one listener, whose ARN the caller knows */
  readonly listeners?: readonly string[];
  /** Placements one listener takes (TENANTS_PER_LISTENER); unset, listeners are not counted. */
  readonly perListener?: number;
}

/** Where a tenant's rule lives: its listener and its priority there. */
export interface Placement {
  readonly listenerArn: string;
  readonly priority: number;
}

/**
 * Every listener holds its bound of tenants. Transient: a tenant leaving
 * frees a place, and adding a listener (a restart with a longer
 * LISTENER_ARNS) makes room; nothing already created is undone meanwhile.
 */
export class ListenersFullError extends TransientError {}

/** Transient: priorities come free as tenants leave or move to the basic tier. */
export class PrioritiesExhaustedError extends TransientError {
  constructor(min: number, max: number) {
    super(`every listener rule priority in ${min}..${max} is allocated`);
  }
}

const NUMBER_PREFIX = "priority#";
const OWNER_PREFIX = "priority-of#";
const COUNT_PREFIX = "listener-tenants#";

type ClaimOutcome = "claimed" | "numberTaken" | "tenantHasOne" | "listenerFull" | "conflict";

export class PriorityAllocator {
  readonly #client: DynamoDBClient;
  readonly #table: string;
  readonly #min: number;
  readonly #max: number;
  readonly #rescanAfterMs: number;
  readonly #maxAttempts: number;
  readonly #now: () => number;
  readonly #listeners: readonly string[];
  readonly #perListener: number | undefined;
  /** Numbers known to be taken per listener, as of #scannedAt plus what this process has seen since. */
  #taken: Map<string, Set<number>> | undefined;
  #scannedAt = 0;
  #scanning: Promise<Map<string, Set<number>>> | undefined;
  /** `<listener> <n>` this process is trying right now, so its own concurrent calls try different ones. */
  readonly #trying = new Set<string>();

  /** @param table the operator table (config LEASE_TABLE), partition key `pk` (S). */
  constructor(client: DynamoDBClient, table: string, options: PriorityAllocatorOptions = {}) {
    this.#client = client;
    this.#table = table;
    this.#min = options.min ?? MIN_PRIORITY;
    this.#max = options.max ?? MAX_TENANT_PRIORITY;
    this.#rescanAfterMs = options.rescanAfterMs ?? 60_000;
    this.#maxAttempts = options.maxAttempts ?? 64;
    this.#now = options.now ?? Date.now;
    this.#listeners = options.listeners !== undefined && options.listeners.length > 0 ? options.listeners : [""];
    this.#perListener = options.perListener;
  }

  get #first(): string {
    return this.#listeners[0] ?? "";
  }

  /** The tenant's priority, or undefined when it has none. One strongly consistent GetItem. */
  async get(tenantId: string): Promise<number | undefined> {
    return (await this.placement(tenantId))?.priority;
  }

  /** The tenant's placement, or undefined when it has none; one without a listener (made before the pool) is on the first. */
  async placement(tenantId: string): Promise<Placement | undefined> {
    let out;
    try {
      out = await this.#client.send(new GetItemCommand({ TableName: this.#table, Key: ownerKey(tenantId), ConsistentRead: true }));
    } catch (err) {
      throw wrapAwsError(err, `reading the listener rule priority of tenant ${tenantId}`);
    }
    const priority = readNumber(out.Item?.["priority"]);
    if (priority === undefined) return undefined;
    return { listenerArn: out.Item?.["listenerArn"]?.S ?? this.#first, priority };
  }

  /**
   * The tenant's priority: its existing one, or the lowest free number,
   * claimed now. Idempotent: calling it again, or from another controller at
   * the same time, returns the same number.
   */
  async allocate(tenantId: string, fence?: Fence): Promise<number> {
    return (await this.place(tenantId, fence)).priority;
  }

  /**
   * The tenant's placement: its existing one, kept for life, or a listener
   * with room and the lowest free priority on it, claimed now in one
   * transaction. Idempotent like allocate(). ListenersFullError when every
   * listener holds its bound.
   */
  async place(tenantId: string, fence?: Fence): Promise<Placement> {
    const existing = await this.placement(tenantId);
    if (existing !== undefined) return existing;
    let rescanned = false;
    const exhausted = new Set<string>();
    for (let attempt = 0; attempt < this.#maxAttempts; attempt++) {
      const taken = await this.#view();
      const listenerArn = await this.#choose(exhausted, taken, true);
      const candidate = this.#lowestFree(listenerArn, taken);
      if (candidate === undefined) {
        // The view may hold numbers freed elsewhere since; look once more before passing the listener over.
        if (!rescanned) {
          this.#taken = undefined;
          rescanned = true;
        } else {
          exhausted.add(listenerArn);
          rescanned = false;
        }
        continue;
      }
      fence?.assertHeld();
      const trying = `${listenerArn} ${candidate}`;
      this.#trying.add(trying);
      try {
        const outcome = await this.#claim(tenantId, listenerArn, candidate);
        if (outcome === "claimed") {
          takenOn(taken, listenerArn).add(candidate);
          return { listenerArn, priority: candidate };
        }
        if (outcome === "numberTaken") {
          // Someone else is allocating: one scan shows all their numbers,
          // where walking up one failed transaction per number would not.
          takenOn(taken, listenerArn).add(candidate);
          this.#scannedAt = Number.NEGATIVE_INFINITY;
          // Racing controllers that keep losing would otherwise rescan and
          // chase the same lowest number in lockstep (seen as 64 lost races in
          // a row on a loaded machine); a growing random pause breaks the step.
          if (attempt >= 2) await sleep(Math.random() * 5 * attempt);
        } else if (outcome === "tenantHasOne") {
          // Another controller (or a concurrent call here) won for this tenant.
          const winner = await this.placement(tenantId);
          if (winner !== undefined) return winner;
        } else if (outcome === "listenerFull") {
          // Filled meanwhile by another writer: the counts are read afresh on the next turn.
          if (attempt >= 2) await sleep(Math.random() * 5 * attempt);
        } else {
          // TransactionConflict: another transaction touches one of the items right now.
          await sleep(5 + Math.random() * 20);
        }
      } finally {
        this.#trying.delete(trying);
      }
    }
    throw new Error(`allocating a listener rule priority for tenant ${tenantId}: lost ${this.#maxAttempts} races in a row`);
  }

  /**
   * What place() would answer now, claiming nothing (`tenantctl plan`): the
   * tenant's placement, else the listener and number it would get, else
   * the reason none is free.
   */
  async proposal(tenantId: string): Promise<Placement | { readonly full: string }> {
    const existing = await this.placement(tenantId);
    if (existing !== undefined) return existing;
    const taken = await this.#view();
    try {
      const listenerArn = await this.#choose(new Set(), taken, false);
      return { listenerArn, priority: this.#lowestFree(listenerArn, taken) ?? this.#min };
    } catch (err) {
      if (err instanceof ListenersFullError || err instanceof PrioritiesExhaustedError) return { full: err.message };
      throw err;
    }
  }

  /**
   * Frees the tenant's priority for reuse; true when one was freed, false
   * when the tenant had none (already released). Call only once the
   * listener rule using it is deleted.
   */
  async release(tenantId: string, fence?: Fence): Promise<boolean> {
    let counted = this.#perListener !== undefined;
    for (let attempt = 0; attempt < this.#maxAttempts; attempt++) {
      const placed = await this.placement(tenantId);
      if (placed === undefined) return false;
      const { listenerArn, priority: n } = placed;
      fence?.assertHeld();
      try {
        await this.#client.send(
          new TransactWriteItemsCommand({
            TransactItems: [
              this.#deleteOwner(tenantId, n),
              {
                Delete: {
                  TableName: this.#table,
                  Key: this.#numberKey(listenerArn, n),
                  ConditionExpression: "#tenantId = :t",
                  ExpressionAttributeNames: { "#tenantId": "tenantId" },
                  ExpressionAttributeValues: { ":t": { S: tenantId } },
                },
              },
              ...(counted ? [this.#count(listenerArn, -1)] : []),
            ],
          }),
        );
        this.#taken?.get(listenerArn)?.delete(n);
        return true;
      } catch (err) {
        if (!isCancelled(err)) throw wrapAwsError(err, `releasing listener rule priority ${n} of tenant ${tenantId}`);
        // Released or re-allocated concurrently: read again and decide anew.
        const [owner, number, count] = codes(err);
        if (count === "ConditionalCheckFailed") {
          // No count yet (seed it, this placement included) or already 0 (edited by hand: nothing to take off).
          if ((await this.#readCount(listenerArn)) === undefined) await this.#seed([listenerArn]);
          else counted = false;
          continue;
        }
        if (owner === "None" && number === "ConditionalCheckFailed") {
          // The number item is not ours (edited by hand): drop only our claim
          // on it rather than retrying forever.
          await this.#dropOwner(tenantId, n);
          return true;
        }
        if (owner !== "ConditionalCheckFailed") await sleep(5 + Math.random() * 20);
      }
    }
    throw new Error(`releasing the listener rule priority of tenant ${tenantId}: lost ${this.#maxAttempts} races in a row`);
  }

  /** The listener the next claim goes to: the one listener, or the pool's choice by the counts (read afresh). */
  async #choose(exhausted: ReadonlySet<string>, taken: ReadonlyMap<string, ReadonlySet<number>>, seed: boolean): Promise<string> {
    if (this.#perListener === undefined) {
      const free = this.#listeners.find((l) => !exhausted.has(l));
      if (free === undefined) throw new PrioritiesExhaustedError(this.#min, this.#max);
      return free;
    }
    const counts = await this.#counts(taken, seed);
    const choice = choosePlacement({ listeners: this.#listeners, counts, perListener: this.#perListener, skip: exhausted });
    if (choice.kind === "place") return choice.listenerArn;
    if (exhausted.size > 0) throw new PrioritiesExhaustedError(this.#min, this.#max);
    throw new ListenersFullError(choice.message);
  }

  /**
   * Each listener's count, strongly consistent (one GetItem per listener).
   * A missing one is seeded (when `seed`) or, for a look that writes
   * nothing, taken from the scanned numbers.
   */
  async #counts(taken: ReadonlyMap<string, ReadonlySet<number>>, seed: boolean): Promise<Map<string, number>> {
    const read = await Promise.all(this.#listeners.map(async (l) => [l, await this.#readCount(l)] as const));
    const missing = read.filter(([, c]) => c === undefined).map(([l]) => l);
    if (missing.length > 0 && seed) {
      await this.#seed(missing);
      return this.#counts(taken, false);
    }
    return new Map(read.map(([l, c]) => [l, c ?? taken.get(l)?.size ?? 0]));
  }

  async #readCount(listenerArn: string): Promise<number | undefined> {
    try {
      const out = await this.#client.send(new GetItemCommand({ TableName: this.#table, Key: countKey(listenerArn), ConsistentRead: true }));
      return readNumber(out.Item?.["tenants"]);
    } catch (err) {
      throw wrapAwsError(err, `reading how many tenants listener ${listenerArn} holds`);
    }
  }

  /** Creates the missing counts from a fresh scan; a count another controller created first is kept. */
  async #seed(listeners: readonly string[]): Promise<void> {
    const taken = await this.#scan();
    for (const l of listeners) {
      try {
        await this.#client.send(
          new PutItemCommand({
            TableName: this.#table,
            Item: { ...countKey(l), tenants: num(taken.get(l)?.size ?? 0) },
            ConditionExpression: "attribute_not_exists(pk)",
          }),
        );
      } catch (err) {
        if (errorName(err) !== "ConditionalCheckFailedException") throw wrapAwsError(err, `counting the tenants on listener ${l}`);
      }
    }
  }

  /** One more (or fewer) tenant on the listener, within its capacity: the condition is what keeps two writers from over-filling it. */
  #count(listenerArn: string, delta: 1 | -1) {
    const index = this.#listeners.indexOf(listenerArn);
    const capacity = choosePlacementCapacity(index, this.#perListener ?? 0);
    return {
      Update: {
        TableName: this.#table,
        Key: countKey(listenerArn),
        UpdateExpression: "SET #tenants = #tenants + :delta",
        ConditionExpression: delta > 0 ? "attribute_exists(pk) AND #tenants < :bound" : "attribute_exists(pk) AND #tenants > :bound",
        ExpressionAttributeNames: { "#tenants": "tenants" },
        ExpressionAttributeValues: { ":delta": num(delta), ":bound": num(delta > 0 ? capacity : 0) },
      },
    };
  }

  async #claim(tenantId: string, listenerArn: string, n: number): Promise<ClaimOutcome> {
    try {
      await this.#client.send(
        new TransactWriteItemsCommand({
          TransactItems: [
            {
              Put: {
                TableName: this.#table,
                Item: { ...this.#numberKey(listenerArn, n), tenantId: { S: tenantId } },
                ConditionExpression: "attribute_not_exists(pk)",
              },
            },
            {
              Put: {
                TableName: this.#table,
                Item: {
                  ...ownerKey(tenantId),
                  priority: num(n),
                  tenantId: { S: tenantId },
                  ...(listenerArn !== "" ? { listenerArn: { S: listenerArn } } : {}),
                },
                ConditionExpression: "attribute_not_exists(pk)",
              },
            },
            ...(this.#perListener !== undefined ? [this.#count(listenerArn, 1)] : []),
          ],
        }),
      );
      return "claimed";
    } catch (err) {
      if (!isCancelled(err)) throw wrapAwsError(err, `claiming listener rule priority ${n} on ${listenerArn} for tenant ${tenantId}`);
      const [number, owner, count] = codes(err);
      if (owner === "ConditionalCheckFailed") return "tenantHasOne";
      if (number === "ConditionalCheckFailed") return "numberTaken";
      if (count === "ConditionalCheckFailed") return "listenerFull";
      return "conflict";
    }
  }

  /** Deletes the tenant's claim on n, only if it still names n. */
  #deleteOwner(tenantId: string, n: number) {
    return {
      Delete: {
        TableName: this.#table,
        Key: ownerKey(tenantId),
        ConditionExpression: "#priority = :n",
        ExpressionAttributeNames: { "#priority": "priority" },
        ExpressionAttributeValues: { ":n": num(n) },
      },
    };
  }

  async #dropOwner(tenantId: string, n: number): Promise<void> {
    try {
      await this.#client.send(
        new TransactWriteItemsCommand({
          TransactItems: [this.#deleteOwner(tenantId, n)],
        }),
      );
    } catch (err) {
      if (!isCancelled(err)) throw wrapAwsError(err, `dropping the priority claim of tenant ${tenantId}`);
    }
  }

  /** The first listener keeps the names from before the pool; the others' numbers name their listener. */
  #numberKey(listenerArn: string, n: number): Record<string, AttributeValue> {
    return { pk: { S: listenerArn === this.#first ? `${NUMBER_PREFIX}${n}` : `${NUMBER_PREFIX}${listenerArn}#${n}` } };
  }

  /** The taken numbers: the cached view while fresh, else one full scan shared by concurrent callers. */
  async #view(): Promise<Map<string, Set<number>>> {
    if (this.#taken !== undefined && this.#now() - this.#scannedAt < this.#rescanAfterMs) return this.#taken;
    return this.#scan();
  }

  #scan(): Promise<Map<string, Set<number>>> {
    this.#scanning ??= this.#scanPages().finally(() => (this.#scanning = undefined));
    return this.#scanning;
  }

  async #scanPages(): Promise<Map<string, Set<number>>> {
    const started = this.#now();
    const taken = new Map<string, Set<number>>();
    let startKey: Record<string, AttributeValue> | undefined;
    do {
      let page;
      try {
        page = await this.#client.send(
          new ScanCommand({
            TableName: this.#table,
            ConsistentRead: true,
            FilterExpression: "begins_with(pk, :prefix)",
            ProjectionExpression: "pk",
            ExpressionAttributeValues: { ":prefix": { S: NUMBER_PREFIX } },
            ...(startKey !== undefined ? { ExclusiveStartKey: startKey } : {}),
          }),
        );
      } catch (err) {
        throw wrapAwsError(err, `scanning ${this.#table} for allocated listener rule priorities`);
      }
      for (const item of page.Items ?? []) {
        const parsed = parseNumberKey(item["pk"]?.S ?? "", this.#first);
        if (parsed !== undefined) takenOn(taken, parsed.listenerArn).add(parsed.n);
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey !== undefined);
    this.#taken = taken;
    this.#scannedAt = started;
    return taken;
  }

  #lowestFree(listenerArn: string, taken: ReadonlyMap<string, ReadonlySet<number>>): number | undefined {
    const used = taken.get(listenerArn);
    for (let n = this.#min; n <= this.#max; n++) {
      if (used?.has(n) !== true && !this.#trying.has(`${listenerArn} ${n}`)) return n;
    }
    return undefined;
  }
}

/** `priority#<n>` is the first listener's; `priority#<listenerArn>#<n>` another's. */
function parseNumberKey(pk: string, first: string): { listenerArn: string; n: number } | undefined {
  const rest = pk.slice(NUMBER_PREFIX.length);
  const hash = rest.lastIndexOf("#");
  const listenerArn = hash < 0 ? first : rest.slice(0, hash);
  const n = Number(rest.slice(hash + 1));
  return Number.isInteger(n) && rest.slice(hash + 1) !== "" ? { listenerArn, n } : undefined;
}

function takenOn(taken: Map<string, Set<number>>, listenerArn: string): Set<number> {
  let set = taken.get(listenerArn);
  if (set === undefined) {
    set = new Set();
    taken.set(listenerArn, set);
  }
  return set;
}

/** A listener no longer in the pool keeps its tenants but takes no new one. */
function choosePlacementCapacity(index: number, perListener: number): number {
  return index < 0 ? 0 : capacityOf(index, perListener);
}

function ownerKey(tenantId: string): Record<string, AttributeValue> {
  return { pk: { S: `${OWNER_PREFIX}${tenantId}` } };
}

function countKey(listenerArn: string): Record<string, AttributeValue> {
  return { pk: { S: `${COUNT_PREFIX}${listenerArn}` } };
}

function num(n: number): AttributeValue {
  return { N: String(n) };
}

function readNumber(v: AttributeValue | undefined): number | undefined {
  if (v?.N === undefined) return undefined;
  const n = Number(v.N);
  return Number.isInteger(n) ? n : undefined;
}

function isCancelled(err: unknown): err is TransactionCanceledException {
  return errorName(err) === "TransactionCanceledException";
}

/** Cancellation codes in the order of the transaction's items ("None" when that item was fine). */
function codes(err: TransactionCanceledException): (string | undefined)[] {
  return (err.CancellationReasons ?? []).map((r) => r.Code);
}
