import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient, GetCommand, ScanCommand, TransactWriteCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { LeaseLostError, type Fence, type FenceTerm, type RawTenantItem, type TenantStore } from "../ports.js";
import type { TenantStatus } from "../tenants/status.js";
import { errorName, wrapAwsError } from "./aws-errors.js";

export interface DynamoTenantStoreOptions {
  /** Items per Scan page; DynamoDB also stops a page at 1 MB. @default 100 */
  readonly pageSize?: number;
  /**
   * The operator table, where the leases live. Given, a status write under a
   * fence with a term is one transaction with a ConditionCheck on the lease
   * item, so it lands only while that holder's term is current. @default none
   */
  readonly leaseTable?: string;
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
  readonly #leaseTable: string | undefined;

  /** @param client a configured (and possibly instrumented) client; the document client shares its middleware. */
  constructor(client: DynamoDBClient, table: string, options: DynamoTenantStoreOptions = {}) {
    this.#doc = DynamoDBDocumentClient.from(client, {
      marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: false },
      unmarshallOptions: { wrapNumbers: false },
    });
    this.#table = table;
    this.#pageSize = options.pageSize ?? 100;
    this.#leaseTable = options.leaseTable;
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
    const term = fence.term?.();
    if (term !== undefined && this.#leaseTable !== undefined) return this.#writeFenced(tenantId, status, term, this.#leaseTable);
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

  /**
   * The status and a ConditionCheck on the lease item in one transaction: a
   * controller that was paused while its shard moved on finds the holder or
   * the token changed and writes nothing (LeaseLostError).
   */
  async #writeFenced(tenantId: string, status: TenantStatus, term: FenceTerm, leaseTable: string): Promise<boolean> {
    const stamped: TenantStatus = { ...status, writtenBy: { lease: term.lease, holder: term.holder, token: term.token } };
    try {
      await this.#doc.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Update: {
                TableName: this.#table,
                Key: { tenantId },
                UpdateExpression: "SET #status = :status",
                ConditionExpression: "attribute_exists(tenantId)",
                ExpressionAttributeNames: { "#status": "status" },
                ExpressionAttributeValues: { ":status": stamped },
              },
            },
            {
              ConditionCheck: {
                TableName: leaseTable,
                Key: { pk: `lease#${term.lease}` },
                ConditionExpression: "#holder = :holder AND #token = :token",
                ExpressionAttributeNames: { "#holder": "holder", "#token": "token" },
                ExpressionAttributeValues: { ":holder": term.holder, ":token": term.token },
              },
            },
          ],
        }),
      );
      return true;
    } catch (err) {
      if (errorName(err) === "TransactionCanceledException") {
        const reasons = (err as { CancellationReasons?: readonly { Code?: string }[] }).CancellationReasons ?? [];
        if (reasons[1]?.Code === "ConditionalCheckFailed")
          throw new LeaseLostError(
            `lease "${term.lease}" is no longer held by ${term.holder} in term ${term.token}; status of ${tenantId} not written`,
          );
        if (reasons[0]?.Code === "ConditionalCheckFailed") return false;
      }
      throw wrapAwsError(err, `writing status of tenant ${tenantId} to ${this.#table}`);
    }
  }
}
