import {
  GetItemCommand,
  ScanCommand,
  TransactWriteItemsCommand,
  type AttributeValue,
  type DynamoDBClient,
  type TransactionCanceledException,
} from "@aws-sdk/client-dynamodb";
import { TransientError } from "../errors.js";
import type { Fence } from "../ports.js";
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
}

/** Transient: priorities come free as tenants leave or move to the basic tier. */
export class PrioritiesExhaustedError extends TransientError {
  constructor(min: number, max: number) {
    super(`every listener rule priority in ${min}..${max} is allocated`);
  }
}

const NUMBER_PREFIX = "priority#";
const OWNER_PREFIX = "priority-of#";

export class PriorityAllocator {
  readonly #client: DynamoDBClient;
  readonly #table: string;
  readonly #min: number;
  readonly #max: number;
  readonly #rescanAfterMs: number;
  readonly #maxAttempts: number;
  readonly #now: () => number;
  /** Numbers known to be taken, as of #scannedAt plus what this process has seen since. */
  #taken: Set<number> | undefined;
  #scannedAt = 0;
  #scanning: Promise<Set<number>> | undefined;
  /** Numbers this process is trying right now, so its own concurrent calls try different ones. */
  readonly #trying = new Set<number>();

  /** @param table the operator table (config LEASE_TABLE), partition key `pk` (S). */
  constructor(client: DynamoDBClient, table: string, options: PriorityAllocatorOptions = {}) {
    this.#client = client;
    this.#table = table;
    this.#min = options.min ?? MIN_PRIORITY;
    this.#max = options.max ?? MAX_TENANT_PRIORITY;
    this.#rescanAfterMs = options.rescanAfterMs ?? 60_000;
    this.#maxAttempts = options.maxAttempts ?? 64;
    this.#now = options.now ?? Date.now;
  }

  /** The tenant's priority, or undefined when it has none. One strongly consistent GetItem. */
  async get(tenantId: string): Promise<number | undefined> {
    try {
      const out = await this.#client.send(new GetItemCommand({ TableName: this.#table, Key: ownerKey(tenantId), ConsistentRead: true }));
      return readNumber(out.Item?.["priority"]);
    } catch (err) {
      throw wrapAwsError(err, `reading the listener rule priority of tenant ${tenantId}`);
    }
  }

  /**
   * The tenant's priority: its existing one, or the lowest free number,
   * claimed now. Idempotent: calling it again, or from another controller at
   * the same time, returns the same number.
   */
  async allocate(tenantId: string, fence?: Fence): Promise<number> {
    const existing = await this.get(tenantId);
    if (existing !== undefined) return existing;
    let rescanned = false;
    for (let attempt = 0; attempt < this.#maxAttempts; attempt++) {
      const taken = await this.#view();
      const candidate = this.#lowestFree(taken);
      if (candidate === undefined) {
        // The view may hold numbers freed elsewhere since; look once more before giving up.
        if (rescanned) throw new PrioritiesExhaustedError(this.#min, this.#max);
        this.#taken = undefined;
        rescanned = true;
        continue;
      }
      fence?.assertHeld();
      this.#trying.add(candidate);
      try {
        const outcome = await this.#claim(tenantId, candidate);
        if (outcome === "claimed") {
          taken.add(candidate);
          return candidate;
        }
        if (outcome === "numberTaken") {
          // Someone else is allocating: one scan shows all their numbers,
          // where walking up one failed transaction per number would not.
          taken.add(candidate);
          this.#scannedAt = Number.NEGATIVE_INFINITY;
          // Racing controllers that keep losing would otherwise rescan and
          // chase the same lowest number in lockstep (seen as 64 lost races in
          // a row on a loaded machine); a growing random pause breaks the step.
          if (attempt >= 2) await sleep(Math.random() * 5 * attempt);
        } else if (outcome === "tenantHasOne") {
          // Another controller (or a concurrent call here) won for this tenant.
          const winner = await this.get(tenantId);
          if (winner !== undefined) return winner;
        } else {
          // TransactionConflict: another transaction touches one of the items right now.
          await sleep(5 + Math.random() * 20);
        }
      } finally {
        this.#trying.delete(candidate);
      }
    }
    throw new Error(`allocating a listener rule priority for tenant ${tenantId}: lost ${this.#maxAttempts} races in a row`);
  }

  /**
   * Frees the tenant's priority for reuse; true when one was freed, false
   * when the tenant had none (already released). Call only once the
   * listener rule using it is deleted.
   */
  async release(tenantId: string, fence?: Fence): Promise<boolean> {
    for (let attempt = 0; attempt < this.#maxAttempts; attempt++) {
      const n = await this.get(tenantId);
      if (n === undefined) return false;
      fence?.assertHeld();
      try {
        await this.#client.send(
          new TransactWriteItemsCommand({
            TransactItems: [
              this.#deleteOwner(tenantId, n),
              {
                Delete: {
                  TableName: this.#table,
                  Key: numberKey(n),
                  ConditionExpression: "#tenantId = :t",
                  ExpressionAttributeNames: { "#tenantId": "tenantId" },
                  ExpressionAttributeValues: { ":t": { S: tenantId } },
                },
              },
            ],
          }),
        );
        this.#taken?.delete(n);
        return true;
      } catch (err) {
        if (!isCancelled(err)) throw wrapAwsError(err, `releasing listener rule priority ${n} of tenant ${tenantId}`);
        // Released or re-allocated concurrently: read again and decide anew.
        const [owner, number] = codes(err);
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

  async #claim(tenantId: string, n: number): Promise<"claimed" | "numberTaken" | "tenantHasOne" | "conflict"> {
    try {
      await this.#client.send(
        new TransactWriteItemsCommand({
          TransactItems: [
            {
              Put: {
                TableName: this.#table,
                Item: { ...numberKey(n), tenantId: { S: tenantId } },
                ConditionExpression: "attribute_not_exists(pk)",
              },
            },
            {
              Put: {
                TableName: this.#table,
                Item: { ...ownerKey(tenantId), priority: num(n), tenantId: { S: tenantId } },
                ConditionExpression: "attribute_not_exists(pk)",
              },
            },
          ],
        }),
      );
      return "claimed";
    } catch (err) {
      if (!isCancelled(err)) throw wrapAwsError(err, `claiming listener rule priority ${n} for tenant ${tenantId}`);
      const [number, owner] = codes(err);
      if (owner === "ConditionalCheckFailed") return "tenantHasOne";
      if (number === "ConditionalCheckFailed") return "numberTaken";
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

  /** The taken numbers: the cached view while fresh, else one full scan shared by concurrent callers. */
  async #view(): Promise<Set<number>> {
    if (this.#taken !== undefined && this.#now() - this.#scannedAt < this.#rescanAfterMs) return this.#taken;
    this.#scanning ??= this.#scan().finally(() => (this.#scanning = undefined));
    return this.#scanning;
  }

  async #scan(): Promise<Set<number>> {
    const started = this.#now();
    const taken = new Set<number>();
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
        const n = Number((item["pk"]?.S ?? "").slice(NUMBER_PREFIX.length));
        if (Number.isInteger(n)) taken.add(n);
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey !== undefined);
    this.#taken = taken;
    this.#scannedAt = started;
    return taken;
  }

  #lowestFree(taken: ReadonlySet<number>): number | undefined {
    for (let n = this.#min; n <= this.#max; n++) {
      if (!taken.has(n) && !this.#trying.has(n)) return n;
    }
    return undefined;
  }
}

function numberKey(n: number): Record<string, AttributeValue> {
  return { pk: { S: `${NUMBER_PREFIX}${n}` } };
}

function ownerKey(tenantId: string): Record<string, AttributeValue> {
  return { pk: { S: `${OWNER_PREFIX}${tenantId}` } };
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
