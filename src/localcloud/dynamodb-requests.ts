import { asRecord, type Json } from "./json.js";

/**
 * Reading DynamoDB requests for the local cloud: which tables a request names
 * (so faults can target one table), and how a throttled table answers a
 * BatchWriteItem (part written, the rest handed back as UnprocessedItems).
 */

/**
 * The tables a DynamoDB (or DynamoDB Streams) request names: TableName,
 * RequestItems keys, TransactItems' TableName, and the table of a table or
 * stream ARN. ARNs are reduced to the table name. PartiQL statements are not
 * parsed, so ExecuteStatement and friends name no table.
 */
export function tablesNamed(input: unknown): readonly string[] {
  const body = asRecord(input);
  if (body === undefined) return [];
  const names = new Set<string>();
  const add = (value: unknown) => {
    const name = tableOf(value);
    if (name !== undefined) names.add(name);
  };
  add(body["TableName"]);
  add(body["StreamArn"]);
  add(body["ResourceArn"]);
  for (const key of Object.keys(asRecord(body["RequestItems"]) ?? {})) add(key);
  if (Array.isArray(body["TransactItems"])) {
    for (const item of body["TransactItems"]) {
      for (const op of Object.values(asRecord(item) ?? {})) add(asRecord(op)?.["TableName"]);
    }
  }
  return [...names];
}

/** A table name, or the table of arn:aws:dynamodb:region:account:table/NAME[/stream/...]. */
function tableOf(value: unknown): string | undefined {
  if (typeof value !== "string" || value.length === 0) return undefined;
  if (!value.startsWith("arn:")) return value;
  return /:table\/([^/]+)/.exec(value)?.[1];
}

export interface BatchWriteSplit {
  /** The request to pass on, without the withheld items; undefined when nothing is left to write. */
  readonly forward: Json | undefined;
  /** Withheld write requests by table, in the shape of BatchWriteItem's UnprocessedItems. */
  readonly unprocessed: Readonly<Record<string, readonly unknown[]>>;
}

/**
 * Withholds floor(n × fraction) of the n write requests of each table that
 * `throttled` accepts, the last ones, as a throttled table leaves part of a
 * batch unprocessed. Rounding down means a retry loop that resends its
 * UnprocessedItems always gets through in the end, as it does with DynamoDB.
 */
export function splitBatchWrite(input: Json, fraction: number, throttled: (table: string) => boolean): BatchWriteSplit {
  const requestItems = asRecord(input["RequestItems"]) ?? {};
  const kept: Record<string, unknown[]> = {};
  const unprocessed: Record<string, unknown[]> = {};
  for (const [table, writes] of Object.entries(requestItems)) {
    const list = Array.isArray(writes) ? writes : [];
    const withheld = throttled(table) ? Math.floor(list.length * fraction) : 0;
    const keep = list.slice(0, list.length - withheld);
    if (keep.length > 0) kept[table] = keep;
    if (withheld > 0) unprocessed[table] = list.slice(list.length - withheld);
  }
  return { forward: Object.keys(kept).length === 0 ? undefined : { ...input, RequestItems: kept }, unprocessed };
}

/** moto's BatchWriteItem answer with the withheld items added to its UnprocessedItems. */
export function withUnprocessed(answer: Json, unprocessed: Readonly<Record<string, readonly unknown[]>>): Json {
  const merged: Record<string, unknown[]> = {};
  for (const [table, writes] of Object.entries(asRecord(answer["UnprocessedItems"]) ?? {})) {
    if (Array.isArray(writes)) merged[table] = [...(writes as readonly unknown[])];
  }
  for (const [table, writes] of Object.entries(unprocessed)) merged[table] = [...(merged[table] ?? []), ...writes];
  return { ...answer, UnprocessedItems: merged };
}
