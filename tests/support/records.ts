import { UpdateItemCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { marshall } from "@aws-sdk/util-dynamodb";

/** Sets attributes of a tenant record the way an operator's edit would (one UpdateItem, nothing else touched). */
export async function setAttributes(client: DynamoDBClient, table: string, tenantId: string, set: Record<string, unknown>): Promise<void> {
  const names: Record<string, string> = {};
  const values: Record<string, unknown> = {};
  const parts = Object.entries(set).map(([k, v], i) => {
    names[`#k${i}`] = k;
    values[`:v${i}`] = v;
    return `#k${i} = :v${i}`;
  });
  await client.send(
    new UpdateItemCommand({
      TableName: table,
      Key: marshall({ tenantId }),
      UpdateExpression: `SET ${parts.join(", ")}`,
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: marshall(values),
    }),
  );
}
