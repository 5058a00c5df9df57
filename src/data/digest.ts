import { createHash } from "node:crypto";
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { TableDigest } from "../operator/ports.js";
import { canonicalItem } from "./dynamo-json.js";
import type { RetryPolicy } from "./retry.js";
import { tenantPages } from "./tenant-query.js";

/**
 * Count and sha256 of one tenant's items, for verifying a copy before the old
 * one is deleted. The Query returns items in sort-key order in both tables,
 * and each item is hashed in canonical form (src/data/dynamo-json.ts), so
 * equal content gives an equal hash whichever table holds it.
 */
export async function digest(client: DynamoDBClient, tenantId: string, table: string, retry: RetryPolicy): Promise<TableDigest> {
  const hash = createHash("sha256");
  let count = 0;
  for await (const page of tenantPages(client, { table, tenantId }, retry)) {
    for (const item of page) {
      hash.update(canonicalItem(item));
      hash.update("\n");
      count++;
    }
  }
  return { count, hash: hash.digest("hex") };
}
