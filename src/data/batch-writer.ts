import { BatchWriteItemCommand, type DynamoDBClient, type WriteRequest } from "@aws-sdk/client-dynamodb";
import type { Fence } from "../ports.js";
import { wrapAwsError } from "../providers/aws-errors.js";
import { backoff, isRetryable, type RetryPolicy } from "./retry.js";

/** BatchWriteItem takes at most 25 requests. */
const BATCH_SIZE = 25;

export interface BatchWriterOptions {
  readonly retry: RetryPolicy;
  /** BatchWriteItem calls in flight at once. @default 4 */
  readonly concurrency: number;
}

/**
 * Writes requests (puts and deletes) to one table in BatchWriteItem calls of
 * up to 25, several in flight. Each batch is retried until DynamoDB has taken
 * all of it: UnprocessedItems are sent again after a backoff, and so is a
 * batch refused whole by a throttle. The fence is checked before every call,
 * retries included, so a controller that lost its lease stops writing at the
 * next batch. The caller must not put two requests for one key in the list
 * (DynamoDB refuses such a batch).
 */
export async function writeAll(
  client: DynamoDBClient,
  table: string,
  requests: readonly WriteRequest[],
  fence: Fence,
  options: BatchWriterOptions,
  signal?: AbortSignal,
): Promise<void> {
  let next = 0;
  // One worker's failure stops the others at their next batch, so a lost
  // lease or a refused write does not leave writes running after the throw.
  let failed = false;
  const worker = async () => {
    while (next < requests.length && !failed) {
      const batch = requests.slice(next, next + BATCH_SIZE);
      next += BATCH_SIZE;
      try {
        await writeBatch(client, table, batch, fence, options.retry, signal);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  const workers = Math.max(1, Math.min(options.concurrency, Math.ceil(requests.length / BATCH_SIZE)));
  await Promise.all(Array.from({ length: workers }, worker));
}

/** One batch of at most 25, until nothing is left unprocessed. */
export async function writeBatch(
  client: DynamoDBClient,
  table: string,
  batch: readonly WriteRequest[],
  fence: Fence,
  retry: RetryPolicy,
  signal?: AbortSignal,
): Promise<void> {
  let pending: WriteRequest[] = [...batch];
  // Counts attempts that made no progress: a batch that shrinks each time is
  // being absorbed and may take as many rounds as it needs.
  let stalled = 0;
  while (pending.length > 0) {
    signal?.throwIfAborted();
    fence.assertHeld();
    let unprocessed: WriteRequest[];
    try {
      const out = await client.send(
        new BatchWriteItemCommand({ RequestItems: { [table]: pending } }),
        signal !== undefined ? { abortSignal: signal } : {},
      );
      unprocessed = out.UnprocessedItems?.[table] ?? [];
    } catch (err) {
      if (signal?.aborted === true) signal.throwIfAborted();
      if (!isRetryable(err) || stalled + 1 >= retry.maxAttempts)
        throw wrapAwsError(err, `writing ${pending.length} items to table ${table}`);
      stalled++;
      await backoff(retry, stalled, signal);
      continue;
    }
    if (unprocessed.length === 0) return;
    stalled = unprocessed.length < pending.length ? 0 : stalled + 1;
    if (stalled >= retry.maxAttempts) {
      throw new Error(
        `writing to table ${table}: ${unprocessed.length} items still unprocessed after ${stalled} attempts (the table stays throttled)`,
      );
    }
    pending = unprocessed;
    await backoff(retry, Math.max(1, stalled), signal);
  }
}
