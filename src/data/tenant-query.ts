import { QueryCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { Item } from "./dynamo-json.js";
import { withRetry, type RetryPolicy } from "./retry.js";

/**
 * Reads one tenant's items from a table, a page at a time (DynamoDB stops a
 * page at 1 MB or at `limit`). Strongly consistent, so an item written just
 * before the read is in it: the backfill's promise to a tier move, and the
 * digest's to its verification. Pages come in sort-key order.
 */
export interface TenantQuery {
  readonly table: string;
  readonly tenantId: string;
  /** Names of the key attributes to project; all attributes when absent. */
  readonly keysOnly?: readonly string[];
  /** Items per page at most; DynamoDB's 1 MB page limit applies anyway. */
  readonly limit?: number;
}

export async function* tenantPages(
  client: DynamoDBClient,
  q: TenantQuery,
  retry: RetryPolicy,
  signal?: AbortSignal,
): AsyncGenerator<Item[]> {
  const projection =
    q.keysOnly !== undefined
      ? {
          ProjectionExpression: q.keysOnly.map((_, i) => `#k${i}`).join(", "),
          ExpressionAttributeNames: { "#pk": "tenantId", ...Object.fromEntries(q.keysOnly.map((k, i) => [`#k${i}`, k])) },
        }
      : { ExpressionAttributeNames: { "#pk": "tenantId" } };
  let start: Item | undefined;
  do {
    const exclusiveStart = start;
    const page = await withRetry(
      `querying tenant ${q.tenantId} in table ${q.table}`,
      retry,
      () =>
        client.send(
          new QueryCommand({
            TableName: q.table,
            ConsistentRead: true,
            KeyConditionExpression: "#pk = :tenant",
            ExpressionAttributeValues: { ":tenant": { S: q.tenantId } },
            ...projection,
            ...(q.limit !== undefined ? { Limit: q.limit } : {}),
            ...(exclusiveStart !== undefined ? { ExclusiveStartKey: exclusiveStart } : {}),
          }),
          signal !== undefined ? { abortSignal: signal } : {},
        ),
      signal,
    );
    const items = page.Items ?? [];
    if (items.length > 0) yield items;
    start = page.LastEvaluatedKey;
  } while (start !== undefined);
}
