import { ScanCommand, type AttributeValue, type DynamoDBClient } from "@aws-sdk/client-dynamodb";

/**
 * Every item of one kind in the operator table: a consistent, paged Scan for
 * the kind's key prefix, each item read by `fromItem` (undefined skips it).
 * Errors are the caller's to wrap, with what it was listing.
 */
export async function scanOperatorItems<T>(
  client: DynamoDBClient,
  table: string,
  prefix: string,
  fromItem: (item: Record<string, AttributeValue>) => T | undefined,
): Promise<T[]> {
  const out: T[] = [];
  let start: Record<string, AttributeValue> | undefined;
  do {
    const page = await client.send(
      new ScanCommand({
        TableName: table,
        ConsistentRead: true,
        FilterExpression: "begins_with(pk, :prefix)",
        ExpressionAttributeValues: { ":prefix": { S: prefix } },
        ...(start !== undefined ? { ExclusiveStartKey: start } : {}),
      }),
    );
    for (const item of page.Items ?? []) {
      const value = fromItem(item);
      if (value !== undefined) out.push(value);
    }
    start = page.LastEvaluatedKey;
  } while (start !== undefined);
  return out;
}
