import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { Fence } from "../ports.js";
import { writeAll, type BatchWriterOptions } from "./batch-writer.js";
import { tenantPages } from "./tenant-query.js";

/**
 * Copies every item of one tenant from source to target, page by page: a
 * strongly consistent Query on the partition key (so no other tenant's item
 * can be read), each page written as puts before the next is read, so memory
 * holds one page. Puts overwrite, so running it again after a crash gives the
 * same result; items changed while it runs are the change capture's job (the
 * capture was opened before, so it replays them).
 */
export async function backfill(
  client: DynamoDBClient,
  tenantId: string,
  source: string,
  target: string,
  fence: Fence,
  writer: BatchWriterOptions,
  signal?: AbortSignal,
  pageLimit?: number,
): Promise<{ readonly items: number }> {
  let items = 0;
  for await (const page of tenantPages(
    client,
    { table: source, tenantId, ...(pageLimit !== undefined ? { limit: pageLimit } : {}) },
    writer.retry,
    signal,
  )) {
    signal?.throwIfAborted();
    await writeAll(
      client,
      target,
      page.map((Item) => ({ PutRequest: { Item } })),
      fence,
      writer,
      signal,
    );
    items += page.length;
  }
  return { items };
}
