import { createHash } from "node:crypto";
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { describeTable, keyNames } from "./tables.js";
import type { TableDigest } from "../ports.js";
import { canonicalItem } from "./dynamo-json.js";
import type { RetryPolicy } from "./retry.js";
import { tenantPages } from "./tenant-query.js";

/**
 * Count and sha256 of one tenant's items, for verifying a copy before the old
 * one is deleted. The Query returns items in sort-key order in both tables,
 * and each item is hashed in canonical form (src/data/dynamo-json.ts), so
 * equal content gives an equal hash whichever table holds it.
 */
export async function digest(
  client: DynamoDBClient,
  tenantId: string,
  table: string,
  retry: RetryPolicy,
  signal?: AbortSignal,
): Promise<TableDigest> {
  const hash = createHash("sha256");
  let count = 0;
  for await (const page of tenantPages(client, { table, tenantId }, retry, signal)) {
    for (const item of page) {
      hash.update(canonicalItem(item));
      hash.update("\n");
      count++;
    }
  }
  return { count, hash: hash.digest("hex") };
}

/**
 * One sha256 per item of the tenant, by its key (canonical JSON of the key
 * attributes, as change capture names keys): a verification can then leave
 * out the keys that changed while it read, instead of failing on them.
 */
export async function itemHashes(
  client: DynamoDBClient,
  tenantId: string,
  table: string,
  retry: RetryPolicy,
  signal?: AbortSignal,
): Promise<ReadonlyMap<string, string>> {
  const description = await describeTable(client, table, retry);
  if (description === undefined) throw new Error(`table ${table} does not exist`);
  const keys = keyNames(description);
  const out = new Map<string, string>();
  for await (const page of tenantPages(client, { table, tenantId }, retry, signal)) {
    for (const item of page) {
      const key = Object.fromEntries(keys.flatMap((k) => (item[k] !== undefined ? [[k, item[k]]] : [])));
      out.set(canonicalItem(key), createHash("sha256").update(canonicalItem(item)).digest("hex"));
    }
  }
  return out;
}
