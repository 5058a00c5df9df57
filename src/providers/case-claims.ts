import { DeleteItemCommand, GetItemCommand, PutItemCommand, type AttributeValue, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { CaseClaim, CaseClaimPort, ClaimResult, Fence } from "../ports.js";
import { errorName, wrapAwsError } from "./aws-errors.js";
import { scanOperatorItems } from "./operator-table-scan.js";

/**
 * ALB matches header values ignoring case, so tenants `Acme` and `acme`
 * would share one route. Before a tenant is routed it claims its id
 * lower-cased, in the operator table (partition key `pk`):
 *
 *   pk = "tenant-id-ci#<tenantId lower-cased>"   tenantId = <exact id>, registrationId
 *
 * The item is written only when absent or already ours (one conditional
 * PutItem), so of any number of differently-cased ids claiming at once,
 * exactly one holds it; claiming again is a no-op for the holder. It is
 * released only by its holder (conditional DeleteItem), so the loser of a
 * race can never free the winner's claim. Held from onboarding to the end of
 * offboarding, it marks a deleted record's tenant as still owed its
 * offboarding and announcement (with the registration id the record had).
 */

const PREFIX = "tenant-id-ci#";

export interface CaseClaimsOptions {
  /**
   * Conditional puts tried when the claim is refused but its holder has gone
   * by the time it is read (released in between). @default 3
   */
  readonly maxAttempts?: number;
}

export class CaseClaims implements CaseClaimPort {
  readonly #client: DynamoDBClient;
  readonly #table: string;
  readonly #maxAttempts: number;

  /** @param table the operator table (config LEASE_TABLE), partition key `pk` (S). */
  constructor(client: DynamoDBClient, table: string, options: CaseClaimsOptions = {}) {
    this.#client = client;
    this.#table = table;
    this.#maxAttempts = options.maxAttempts ?? 3;
  }

  /** One conditional PutItem; when refused, one consistent GetItem to name the holder. */
  async claim(tenantId: string, fence: Fence, registrationId?: string): Promise<ClaimResult> {
    for (let attempt = 0; attempt < this.#maxAttempts; attempt++) {
      fence.assertHeld();
      try {
        await this.#client.send(
          new PutItemCommand({
            TableName: this.#table,
            Item: {
              ...claimKey(tenantId),
              tenantId: { S: tenantId },
              ...(registrationId !== undefined ? { registrationId: { S: registrationId } } : {}),
            },
            ConditionExpression: "attribute_not_exists(pk) OR #tenantId = :me",
            ExpressionAttributeNames: { "#tenantId": "tenantId" },
            ExpressionAttributeValues: { ":me": { S: tenantId } },
          }),
        );
        return { ok: true };
      } catch (err) {
        if (!isConditionFailed(err)) throw wrapAwsError(err, `claiming tenant id ${tenantId} ignoring case`);
      }
      const holder = await this.holder(tenantId);
      if (holder !== undefined && holder !== tenantId) return { ok: false, holder };
      // Released between the put and the read (or taken back by us): try again.
    }
    throw new Error(`claiming tenant id ${tenantId} ignoring case: the claim changed hands ${this.#maxAttempts} times while being read`);
  }

  /** One DeleteItem on the condition that tenantId holds the claim; another holder's claim is left alone. */
  async release(tenantId: string, fence: Fence): Promise<void> {
    fence.assertHeld();
    try {
      await this.#client.send(
        new DeleteItemCommand({
          TableName: this.#table,
          Key: claimKey(tenantId),
          ConditionExpression: "#tenantId = :me",
          ExpressionAttributeNames: { "#tenantId": "tenantId" },
          ExpressionAttributeValues: { ":me": { S: tenantId } },
        }),
      );
    } catch (err) {
      // Not ours (or already gone): nothing of ours to release.
      if (isConditionFailed(err)) return;
      throw wrapAwsError(err, `releasing the claim of tenant id ${tenantId}`);
    }
  }

  /** The exact id holding lower(tenantId), or undefined; one strongly consistent GetItem. */
  async holder(tenantId: string): Promise<string | undefined> {
    return (await this.#read(tenantId))?.tenantId;
  }

  async get(tenantId: string): Promise<CaseClaim | undefined> {
    const claim = await this.#read(tenantId);
    return claim?.tenantId === tenantId ? claim : undefined;
  }

  /** A consistent Scan of the operator table for the claims' prefix. */
  async list(): Promise<readonly CaseClaim[]> {
    try {
      return await scanOperatorItems(this.#client, this.#table, PREFIX, fromItem);
    } catch (err) {
      throw wrapAwsError(err, `listing the tenant id claims in ${this.#table}`);
    }
  }

  async #read(tenantId: string): Promise<CaseClaim | undefined> {
    try {
      const out = await this.#client.send(new GetItemCommand({ TableName: this.#table, Key: claimKey(tenantId), ConsistentRead: true }));
      return out.Item === undefined ? undefined : fromItem(out.Item);
    } catch (err) {
      throw wrapAwsError(err, `reading who claims tenant id ${tenantId} ignoring case`);
    }
  }
}

function fromItem(item: Record<string, AttributeValue>): CaseClaim | undefined {
  const tenantId = item["tenantId"]?.S;
  if (tenantId === undefined) return undefined;
  const registrationId = item["registrationId"]?.S;
  return { tenantId, ...(registrationId !== undefined ? { registrationId } : {}) };
}

function claimKey(tenantId: string): Record<string, AttributeValue> {
  return { pk: { S: `${PREFIX}${tenantId.toLowerCase()}` } };
}

function isConditionFailed(err: unknown): boolean {
  return errorName(err) === "ConditionalCheckFailedException";
}
