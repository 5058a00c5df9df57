import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { Fence } from "../ports.js";
import { NotFoundError } from "../errors.js";
import { writeAll, type BatchWriterOptions } from "./batch-writer.js";
import { describeTable, keyNames } from "./tables.js";
import { tenantPages } from "./tenant-query.js";

/**
 * Deletes one tenant's items: Query for the keys only (the partition key
 * confines it to the tenant), then deletes in batches. Reads the key schema
 * from the table rather than assuming the app's sort key, so it cannot
 * build a wrong key for a table shaped otherwise. Deleting while paging is
 * safe: the next page starts after the last key read, deleted or not.
 */
export async function purge(
  client: DynamoDBClient,
  tenantId: string,
  table: string,
  fence: Fence,
  writer: BatchWriterOptions,
  signal?: AbortSignal,
): Promise<{ readonly deleted: number }> {
  const description = await describeTable(client, table, writer.retry);
  if (description === undefined) return { deleted: 0 };
  const keys = keyNames(description);
  if (keys[0] !== "tenantId")
    throw new Error(`table ${table} is not keyed by tenantId (its partition key is ${keys[0] ?? "unknown"}); refusing to purge`);
  let deleted = 0;
  try {
    for await (const page of tenantPages(client, { table, tenantId, keysOnly: keys }, writer.retry, signal)) {
      await writeAll(
        client,
        table,
        page.map((Key) => ({ DeleteRequest: { Key } })),
        fence,
        writer,
        signal,
      );
      deleted += page.length;
    }
  } catch (err) {
    // Dropped while we were deleting: nothing of the tenant is left in it either way.
    if (err instanceof NotFoundError) return { deleted };
    throw err;
  }
  return { deleted };
}
