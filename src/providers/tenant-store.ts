import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient, GetCommand, ScanCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import type { Fence, RawTenantItem, TenantStore } from "../ports.js";
import type { TenantStatus } from "../tenants/status.js";
import { errorName, wrapAwsError } from "./aws-errors.js";

export interface DynamoTenantStoreOptions {
  /** Items per Scan page; DynamoDB also stops a page at 1 MB. @default 100 */
  readonly pageSize?: number;
}

/**
 * The tenants table (docs/design.md "Contract: tenant record"). Items come back as
 * plain JS values (numbers as numbers, maps as objects), ready for
 * validateRecord. The only write is the `status` attribute.
 */
export class DynamoTenantStore implements TenantStore {
  readonly #doc: DynamoDBDocumentClient;
  readonly #table: string;
  readonly #pageSize: number;

  /** @param client a configured (and possibly instrumented) client; the document client shares its middleware. */
  constructor(client: DynamoDBClient, table: string, options: DynamoTenantStoreOptions = {}) {
    this.#doc = DynamoDBDocumentClient.from(client, {
      marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: false },
      unmarshallOptions: { wrapNumbers: false },
    });
    this.#table = table;
    this.#pageSize = options.pageSize ?? 100;
  }

  async *scan(): AsyncIterable<readonly RawTenantItem[]> {
    let start: Record<string, unknown> | undefined;
    do {
      let page;
      try {
        // Consistent, so a resync right after a write sees it.
        page = await this.#doc.send(
          new ScanCommand({
            TableName: this.#table,
            ConsistentRead: true,
            Limit: this.#pageSize,
            ...(start !== undefined ? { ExclusiveStartKey: start } : {}),
          }),
        );
      } catch (err) {
        throw wrapAwsError(err, `scanning table ${this.#table}`);
      }
      const items = (page.Items ?? []) as RawTenantItem[];
      if (items.length > 0) yield items;
      start = page.LastEvaluatedKey;
    } while (start !== undefined);
  }

  async get(tenantId: string): Promise<RawTenantItem | undefined> {
    try {
      const res = await this.#doc.send(new GetCommand({ TableName: this.#table, Key: { tenantId }, ConsistentRead: true }));
      return res.Item as RawTenantItem | undefined;
    } catch (err) {
      throw wrapAwsError(err, `reading tenant ${tenantId} from ${this.#table}`);
    }
  }

  async writeStatus(tenantId: string, status: TenantStatus, fence: Fence): Promise<boolean> {
    fence.assertHeld();
    try {
      await this.#doc.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: { tenantId },
          // SET of one attribute: the spec fields are never rewritten, so a
          // concurrent edit of the record cannot be lost to a status write.
          UpdateExpression: "SET #status = :status",
          // Without it, UpdateItem would recreate a deleted tenant as an item holding only a status.
          ConditionExpression: "attribute_exists(tenantId)",
          ExpressionAttributeNames: { "#status": "status" },
          ExpressionAttributeValues: { ":status": status },
        }),
      );
      return true;
    } catch (err) {
      if (errorName(err) === "ConditionalCheckFailedException") return false;
      throw wrapAwsError(err, `writing status of tenant ${tenantId} to ${this.#table}`);
    }
  }
}
