import { DeleteItemCommand, GetItemCommand, PutItemCommand, type AttributeValue, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { Fence, Removal, RemovalLog } from "../ports.js";
import { errorName, wrapAwsError } from "./aws-errors.js";
import { scanOperatorItems } from "./operator-table-scan.js";

/**
 * Deleted tenant records awaiting the end of their offboarding, in the
 * operator table (partition key `pk`):
 *
 *   pk = "removed#<tenantId>"   registrationId, removedAt
 *
 * Written with attribute_not_exists(pk), so the first sighting of a removal
 * keeps its time (which names the export) however often the stream repeats it.
 */
const PREFIX = "removed#";

export class DynamoRemovalLog implements RemovalLog {
  readonly #client: DynamoDBClient;
  readonly #table: string;

  /** @param table the operator table (config LEASE_TABLE). */
  constructor(client: DynamoDBClient, table: string) {
    this.#client = client;
    this.#table = table;
  }

  async record(removal: Removal, fence: Fence): Promise<Removal> {
    fence.assertHeld();
    try {
      await this.#client.send(
        new PutItemCommand({
          TableName: this.#table,
          Item: toItem(removal),
          ConditionExpression: "attribute_not_exists(pk)",
        }),
      );
      return removal;
    } catch (err) {
      if (errorName(err) !== "ConditionalCheckFailedException")
        throw wrapAwsError(err, `recording the removal of tenant ${removal.tenantId}`);
      return (await this.get(removal.tenantId)) ?? removal;
    }
  }

  async get(tenantId: string): Promise<Removal | undefined> {
    try {
      const res = await this.#client.send(
        new GetItemCommand({ TableName: this.#table, Key: { pk: { S: PREFIX + tenantId } }, ConsistentRead: true }),
      );
      return res.Item && fromItem(res.Item);
    } catch (err) {
      throw wrapAwsError(err, `reading the removal of tenant ${tenantId}`);
    }
  }

  async list(): Promise<readonly Removal[]> {
    try {
      return await scanOperatorItems(this.#client, this.#table, PREFIX, fromItem);
    } catch (err) {
      throw wrapAwsError(err, `listing pending removals in ${this.#table}`);
    }
  }

  async clear(tenantId: string, fence: Fence): Promise<void> {
    fence.assertHeld();
    try {
      await this.#client.send(new DeleteItemCommand({ TableName: this.#table, Key: { pk: { S: PREFIX + tenantId } } }));
    } catch (err) {
      throw wrapAwsError(err, `clearing the removal of tenant ${tenantId}`);
    }
  }
}

function toItem(r: Removal): Record<string, AttributeValue> {
  return {
    pk: { S: PREFIX + r.tenantId },
    tenantId: { S: r.tenantId },
    removedAt: { S: r.removedAt },
    ...(r.registrationId !== undefined ? { registrationId: { S: r.registrationId } } : {}),
  };
}

function fromItem(item: Record<string, AttributeValue>): Removal | undefined {
  const tenantId = item["tenantId"]?.S;
  const removedAt = item["removedAt"]?.S;
  if (tenantId === undefined || removedAt === undefined) return undefined;
  const registrationId = item["registrationId"]?.S;
  return { tenantId, removedAt, ...(registrationId !== undefined ? { registrationId } : {}) };
}
