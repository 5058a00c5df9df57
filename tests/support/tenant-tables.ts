import {
  BatchWriteItemCommand,
  DeleteItemCommand,
  DescribeTableCommand,
  PutItemCommand,
  QueryCommand,
  ScanCommand,
  type AttributeValue,
  type DynamoDBClient,
  type WriteRequest,
} from "@aws-sdk/client-dynamodb";
import { DescribeRulesCommand, type ElasticLoadBalancingV2Client, type Rule } from "@aws-sdk/client-elastic-load-balancing-v2";
import { GetObjectCommand, ListObjectsV2Command, type S3Client } from "@aws-sdk/client-s3";

/**
 * What a test needs to play a tenant's application against its tables and
 * to read what the controller did with them: items in and out of the app
 * tables (partition key tenantId, sort key orderId or productId), the
 * tenant's listener rule, an export in S3.
 */
export type Item = Record<string, AttributeValue>;
export type DataApp = "orders" | "products";
export const SORT_KEY: Readonly<Record<DataApp, string>> = { orders: "orderId", products: "productId" };

/** A key for maps of expected items: tenant and sort key, as the tables see them. */
export function keyOf(app: DataApp, item: Item): string {
  return `${item["tenantId"]?.S ?? "?"}|${item[SORT_KEY[app]]?.S ?? "?"}`;
}

export async function putItem(client: DynamoDBClient, table: string, item: Item): Promise<void> {
  await client.send(new PutItemCommand({ TableName: table, Item: item }));
}

export async function deleteItem(client: DynamoDBClient, table: string, app: DataApp, item: Item): Promise<void> {
  const sk = SORT_KEY[app];
  await client.send(
    new DeleteItemCommand({ TableName: table, Key: { tenantId: item["tenantId"] ?? { S: "" }, [sk]: item[sk] ?? { S: "" } } }),
  );
}

/** Writes items in batches of 25, resending what comes back unprocessed (a seeding helper: no fault rules may be armed on the table). */
export async function putItems(client: DynamoDBClient, table: string, items: readonly Item[]): Promise<void> {
  for (let i = 0; i < items.length; i += 25) {
    let requests: WriteRequest[] = items.slice(i, i + 25).map((Item) => ({ PutRequest: { Item } }));
    for (let round = 0; requests.length > 0; round++) {
      if (round > 20) throw new Error(`seeding ${table}: writes still unprocessed after 20 rounds`);
      const res = await client.send(new BatchWriteItemCommand({ RequestItems: { [table]: requests } }));
      requests = res.UnprocessedItems?.[table] ?? [];
    }
  }
}

/** Every item of one tenant in a table (consistent, all pages), sorted by sort key. */
export async function tenantItems(client: DynamoDBClient, table: string, tenantId: string): Promise<Item[]> {
  const out: Item[] = [];
  let start: Record<string, AttributeValue> | undefined;
  do {
    const res = await client.send(
      new QueryCommand({
        TableName: table,
        KeyConditionExpression: "tenantId = :t",
        ExpressionAttributeValues: { ":t": { S: tenantId } },
        ConsistentRead: true,
        ...(start ? { ExclusiveStartKey: start } : {}),
      }),
    );
    out.push(...(res.Items ?? []));
    start = res.LastEvaluatedKey;
  } while (start !== undefined);
  return out;
}

/** Every item of a table, all tenants (consistent, all pages). */
export async function scanTable(client: DynamoDBClient, table: string): Promise<Item[]> {
  const out: Item[] = [];
  let start: Record<string, AttributeValue> | undefined;
  do {
    const res = await client.send(
      new ScanCommand({ TableName: table, ConsistentRead: true, ...(start ? { ExclusiveStartKey: start } : {}) }),
    );
    out.push(...(res.Items ?? []));
    start = res.LastEvaluatedKey;
  } while (start !== undefined);
  return out;
}

/** The table's status, or undefined when it does not exist. */
export async function tableStatus(client: DynamoDBClient, table: string): Promise<string | undefined> {
  try {
    return (await client.send(new DescribeTableCommand({ TableName: table }))).Table?.TableStatus;
  } catch (err) {
    if ((err as { name?: string }).name === "ResourceNotFoundException") return undefined;
    throw err;
  }
}

/** Items as a sorted map key -> canonical JSON, so two sets compare with one toEqual and a diff names the item. */
export function byKey(app: DataApp, items: readonly Item[]): Record<string, string> {
  const entries = items.map((i) => [keyOf(app, i), canonical(i)] as const);
  return Object.fromEntries(entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** JSON with object keys sorted at every level (and set members sorted), so equal items print equal. */
export function canonical(value: unknown): string {
  return JSON.stringify(sortDeep(value));
}

function sortDeep(value: unknown, key?: string): unknown {
  if (value instanceof Uint8Array) return { B64: Buffer.from(value).toString("base64") };
  if (Array.isArray(value)) {
    const mapped = value.map((v) => sortDeep(v));
    // DynamoDB sets have no order.
    return key === "SS" || key === "NS" || key === "BS" ? mapped.map((v) => JSON.stringify(v)).sort() : mapped;
  }
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, sortDeep((value as Record<string, unknown>)[k], k)]),
    );
  }
  return value;
}

/** The tenant's rule on a listener as a test reads it: what it does, or undefined when it has none. */
export type TenantRule =
  | { readonly kind: "forward"; readonly targetGroupArn: string; readonly rule: Rule }
  | { readonly kind: "fixed-response"; readonly statusCode: string; readonly rule: Rule }
  | { readonly kind: "other"; readonly rule: Rule };

/** Rules on the listener matching header tenantPath with exactly this tenant id (case-sensitive, as the controller keys them). */
export async function tenantRules(elbv2: ElasticLoadBalancingV2Client, listenerArn: string, tenantId: string): Promise<TenantRule[]> {
  const rules: Rule[] = [];
  let marker: string | undefined;
  do {
    const res = await elbv2.send(
      new DescribeRulesCommand({ ListenerArn: listenerArn, PageSize: 400, ...(marker ? { Marker: marker } : {}) }),
    );
    rules.push(...(res.Rules ?? []));
    marker = res.NextMarker;
  } while (marker !== undefined);
  return rules
    .filter((r) =>
      (r.Conditions ?? []).some(
        (c) =>
          c.Field === "http-header" &&
          c.HttpHeaderConfig?.HttpHeaderName?.toLowerCase() === "tenantpath" &&
          (c.HttpHeaderConfig.Values ?? []).includes(tenantId),
      ),
    )
    .map((rule): TenantRule => {
      const action = rule.Actions?.[0];
      const tg = action?.TargetGroupArn ?? action?.ForwardConfig?.TargetGroups?.[0]?.TargetGroupArn;
      if (action?.Type === "forward" && tg !== undefined) return { kind: "forward", targetGroupArn: tg, rule };
      if (action?.Type === "fixed-response")
        return { kind: "fixed-response", statusCode: action.FixedResponseConfig?.StatusCode ?? "", rule };
      return { kind: "other", rule };
    });
}

/** An export's objects: the manifest and every data line, parsed. */
export async function readExport(
  s3: S3Client,
  location: string,
): Promise<{ manifest: Record<string, unknown>; keys: string[]; lines: Record<string, unknown>[] }> {
  const match = /^s3:\/\/([^/]+)\/(.*)$/.exec(location);
  if (match === null) throw new Error(`not an S3 location: ${location}`);
  const [, bucket = "", prefix = ""] = match;
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  const keys = (listed.Contents ?? []).map((o) => o.Key ?? "").sort();
  const text = async (key: string) =>
    (await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body?.transformToString()) ?? "";
  const manifest = JSON.parse(await text(`${prefix}manifest.json`)) as Record<string, unknown>;
  const lines: Record<string, unknown>[] = [];
  for (const key of keys.filter((k) => !k.endsWith("manifest.json"))) {
    for (const line of (await text(key)).split("\n")) if (line.trim() !== "") lines.push(JSON.parse(line) as Record<string, unknown>);
  }
  return { manifest, keys, lines };
}
