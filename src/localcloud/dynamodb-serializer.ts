/**
 * Makes moto's DynamoDB as atomic as the real one.
 *
 * DynamoDB evaluates a ConditionExpression and applies the write as one step,
 * and isolates transactions from each other. moto_server handles requests on
 * several threads and does neither: two conditional UpdateItems on one key can
 * both read the old item, both pass their condition and both write (8 racers
 * had more than one winner in 2 of 30 trials), and a cancelled
 * TransactWriteItems restores a copy of the table taken when it began, undoing
 * writes made meanwhile. Leases, priority allocation and every other
 * optimistic-concurrency scheme built on conditions break under that.
 *
 * So the local cloud sends every DynamoDB call that changes data or tables,
 * and TransactGetItems (which promises a snapshot across items), to moto one
 * at a time, in arrival order. Plain reads (GetItem, Query, Scan, Describe*...)
 * stay concurrent: they change nothing, and DynamoDB itself gives a single
 * read no stronger promise than "committed data". Reads, stream reads
 * included, never overlap a TransactWriteItems (ReadWriteGate): the local
 * cloud applies a transaction item by item (dynamodb-transactions.ts), and
 * moto shows a transaction's stream records before it decides to cancel it
 * (dynamodb-streams-handler.ts). They do not queue behind other writes.
 * Unknown actions are serialized, the safe side for whatever DynamoDB adds.
 */

/** The X-Amz-Target prefix of DynamoDB's table and item API (Streams use DynamoDBStreams_20120810). */
export const DYNAMODB_TARGET = "DynamoDB_20120810";

const CONCURRENT_READS = /^(GetItem|BatchGetItem|Query|Scan|Describe\w*|List\w*|GetResourcePolicy)$/;

/** Whether a DynamoDB action (of the DynamoDB_20120810 API) must run alone. */
export function mustSerialize(action: string): boolean {
  return !CONCURRENT_READS.test(action);
}

/** Whether a request is DynamoDB's table and item API, judged by its X-Amz-Target. */
export function isDynamoDbTarget(target: string | undefined): boolean {
  return target !== undefined && target.startsWith(`${DYNAMODB_TARGET}.`);
}

/** A first-in, first-out mutex: run() calls execute one at a time, in the order they were made. */
export class FifoMutex {
  #tail: Promise<void> = Promise.resolve();
  #waiting = 0;

  /** Calls queued or running. */
  get pending(): number {
    return this.#waiting;
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    const previous = this.#tail;
    let release = () => {};
    this.#tail = new Promise<void>((resolve) => (release = resolve));
    this.#waiting += 1;
    try {
      await previous;
      return await fn();
    } finally {
      this.#waiting -= 1;
      release();
    }
  }
}

/**
 * Shared sections that never overlap an exclusive one: reads and DynamoDB
 * Streams reads (shared) and TransactWriteItems (exclusive). An exclusive section
 * waits for the shared ones under way and holds new ones back until it is
 * done, so a burst of stream reads cannot starve a transaction. Callers of
 * exclusive() come one at a time (they hold the write mutex).
 */
export class ReadWriteGate {
  #readers = 0;
  /** The exclusive section waiting or under way; shared ones wait for it. */
  #writer: Promise<void> | undefined;
  #drained: (() => void) | undefined;

  async shared<T>(fn: () => Promise<T>): Promise<T> {
    while (this.#writer !== undefined) await this.#writer;
    this.#readers += 1;
    try {
      return await fn();
    } finally {
      this.#readers -= 1;
      if (this.#readers === 0) this.#drained?.();
    }
  }

  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    let release = () => {};
    this.#writer = new Promise<void>((resolve) => (release = resolve));
    try {
      if (this.#readers > 0) await new Promise<void>((resolve) => (this.#drained = resolve));
      this.#drained = undefined;
      return await fn();
    } finally {
      this.#writer = undefined;
      release();
    }
  }
}
