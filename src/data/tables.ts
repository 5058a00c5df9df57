import {
  DeleteTableCommand,
  DescribeTableCommand,
  ListTagsOfResourceCommand,
  type DynamoDBClient,
  type TableDescription,
} from "@aws-sdk/client-dynamodb";
import { UnmanagedResourceError, type Fence } from "../ports.js";
import { NotFoundError } from "../errors.js";
import { withRetry, type RetryPolicy } from "./retry.js";

export const MANAGED_BY_KEY = "managed-by";
export const MANAGED_BY_VALUE = "ecs-tenant-operator";

/** DescribeTable; undefined when the table does not exist. */
export async function describeTable(client: DynamoDBClient, table: string, retry: RetryPolicy): Promise<TableDescription | undefined> {
  try {
    return await withRetry(
      `describing table ${table}`,
      retry,
      async () => (await client.send(new DescribeTableCommand({ TableName: table }))).Table,
    );
  } catch (err) {
    if (err instanceof NotFoundError) return undefined;
    throw err;
  }
}

/** The table's key attribute names, partition key first. */
export function keyNames(description: TableDescription): string[] {
  const schema = description.KeySchema ?? [];
  const hash = schema.find((k) => k.KeyType === "HASH")?.AttributeName;
  const range = schema.find((k) => k.KeyType === "RANGE")?.AttributeName;
  return [hash, range].filter((k): k is string => k !== undefined);
}

export async function tableStatus(client: DynamoDBClient, table: string, retry: RetryPolicy): Promise<string | undefined> {
  return (await describeTable(client, table, retry))?.TableStatus;
}

/**
 * Deletes a silo table the controller created. Ownership is read from the
 * table's tags, not assumed from its name: a table someone made by hand with
 * a colliding name is refused, never deleted. Gone (or already going) is
 * success, so a retry after a crash finishes quietly.
 */
export async function dropTable(client: DynamoDBClient, table: string, fence: Fence, retry: RetryPolicy): Promise<void> {
  const description = await describeTable(client, table, retry);
  if (description === undefined || description.TableStatus === "DELETING") return;
  const arn = description.TableArn;
  if (arn === undefined) throw new Error(`DescribeTable of ${table} returned no ARN`);
  if (!(await isManaged(client, arn, retry))) throw new UnmanagedResourceError(`DynamoDB table ${table}`);
  fence.assertHeld();
  try {
    await withRetry(`deleting table ${table}`, retry, () => client.send(new DeleteTableCommand({ TableName: table })));
  } catch (err) {
    if (err instanceof NotFoundError) return;
    throw err;
  }
}

async function isManaged(client: DynamoDBClient, arn: string, retry: RetryPolicy): Promise<boolean> {
  let token: string | undefined;
  do {
    const next = token;
    const page = await withRetry(`listing tags of ${arn}`, retry, () =>
      client.send(new ListTagsOfResourceCommand({ ResourceArn: arn, ...(next !== undefined ? { NextToken: next } : {}) })),
    );
    if ((page.Tags ?? []).some((t) => t.Key === MANAGED_BY_KEY && t.Value === MANAGED_BY_VALUE)) return true;
    token = page.NextToken;
  } while (token !== undefined);
  return false;
}
