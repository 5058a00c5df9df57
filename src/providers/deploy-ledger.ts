import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DeleteCommand, DynamoDBDocumentClient, GetCommand, PutCommand } from "@aws-sdk/lib-dynamodb";
import { z } from "zod";
import type { DeployLedgerStore, Fence } from "../ports.js";
import type { DeployRecord } from "../tenants/status.js";
import { wrapAwsError } from "./aws-errors.js";

/**
 * Open and failed deployments of a reconcile key that has no tenant record
 * to keep them in: the pool. One item per key in the operator table:
 *
 *   pk = "deploys#<key>"   ledger (M: by service, see src/tiers/deploy-watch.ts)
 *
 * An empty ledger is no item.
 */
const recordSchema = z.object({
  contentHash: z.string(),
  image: z.string(),
  startedAt: z.string(),
  replaced: z.string().optional(),
  failed: z.object({ reason: z.string(), at: z.string() }).optional(),
});
const ledgerSchema = z.record(z.string(), recordSchema);

export class DynamoDeployLedger implements DeployLedgerStore {
  readonly #doc: DynamoDBDocumentClient;
  readonly #table: string;

  /** @param table the operator table (config LEASE_TABLE). */
  constructor(client: DynamoDBClient, table: string) {
    this.#doc = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
    this.#table = table;
  }

  async get(key: string): Promise<Readonly<Record<string, DeployRecord>>> {
    try {
      const res = await this.#doc.send(new GetCommand({ TableName: this.#table, Key: { pk: `deploys#${key}` }, ConsistentRead: true }));
      const parsed = ledgerSchema.safeParse(res.Item?.["ledger"] ?? {});
      // A ledger that does not parse is forgotten: the worst that costs is one more deployment attempt.
      return parsed.success ? (parsed.data as Record<string, DeployRecord>) : {};
    } catch (err) {
      throw wrapAwsError(err, `reading the open deployments of ${key}`);
    }
  }

  async put(key: string, ledger: Readonly<Record<string, DeployRecord>>, fence: Fence): Promise<void> {
    fence.assertHeld();
    try {
      if (Object.keys(ledger).length === 0)
        await this.#doc.send(new DeleteCommand({ TableName: this.#table, Key: { pk: `deploys#${key}` } }));
      else await this.#doc.send(new PutCommand({ TableName: this.#table, Item: { pk: `deploys#${key}`, ledger } }));
    } catch (err) {
      throw wrapAwsError(err, `writing the open deployments of ${key}`);
    }
  }
}
