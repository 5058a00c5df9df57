import type { DynamoDBClient, WriteRequest } from "@aws-sdk/client-dynamodb";
import { GetObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { z } from "zod";
import { DATA_APPS, SORT_KEYS, type BackupLocation, type BackupManifest, type DataApp, type Fence, type TableSet } from "../ports.js";
import { NotFoundError } from "../errors.js";
import { writeAll, type BatchWriterOptions } from "./batch-writer.js";
import { parseExportLine, type Item } from "./dynamo-json.js";
import { BackupError } from "./errors.js";
import { formatS3Location, manifestKey, parseS3Location } from "./location.js";
import { withRetry } from "./retry.js";

const tableEntrySchema = z.object({ table: z.string(), itemCount: z.number().int().min(0), dataFiles: z.array(z.string().min(1)) });
const manifestSchema = z.object({
  tenantId: z.string().min(1),
  location: z.string(),
  exportedAt: z.string(),
  tables: z.object({ orders: tableEntrySchema, products: tableEntrySchema } satisfies Record<DataApp, typeof tableEntrySchema>),
});

/** Restores run outside the controller's lease (an operator's command): nothing to fence. */
const UNFENCED: Fence = { assertHeld: () => undefined };

/**
 * Loads an export into the given tables. Puts only, so a second run writes
 * the same items again and changes nothing.
 *
 * Everything is checked before anything is written: the manifest names this
 * tenant, every line parses, carries this tenant's id and the table's sort
 * key, and each table's line count matches the manifest. A backup of another
 * tenant, or a line of another tenant slipped into one, would otherwise leak
 * that tenant's data into these tables; a short object would restore part of
 * the tenant silently. So the objects are read twice, rather than held in
 * memory whole.
 */
export async function restore(
  dynamodb: DynamoDBClient,
  s3: S3Client,
  tenantId: string,
  from: BackupLocation,
  tables: TableSet,
  writer: BatchWriterOptions,
): Promise<Readonly<Record<DataApp, number>>> {
  const manifest = await readManifest(s3, from, writer);
  if (manifest.tenantId !== tenantId) {
    throw new BackupError(
      `the backup at ${formatS3Location(from)} is tenant ${manifest.tenantId}'s, not tenant ${tenantId}'s; refusing to restore it`,
    );
  }
  const files = DATA_APPS.flatMap((app) =>
    manifest.tables[app].dataFiles.map((key) => ({ app, key: relocate(key, manifest.location, from) })),
  );

  for (const app of DATA_APPS) {
    let lines = 0;
    for (const { key } of files.filter((f) => f.app === app)) {
      lines += (await readItems(s3, from.bucket, key, app, tenantId, writer)).length;
    }
    const expected = manifest.tables[app].itemCount;
    if (lines !== expected) {
      throw new BackupError(
        `the backup at ${formatS3Location(from)} is incomplete or corrupt: the manifest counts ${expected} ${app} items, the data objects hold ${lines}`,
      );
    }
  }

  const counts = Object.fromEntries(DATA_APPS.map((app) => [app, 0])) as Record<DataApp, number>;
  for (const { app, key } of files) {
    const items = await readItems(s3, from.bucket, key, app, tenantId, writer);
    await writeAll(dynamodb, tables[app], uniquePuts(items, app), UNFENCED, writer);
    counts[app] += items.length;
  }
  return counts;
}

async function readManifest(s3: S3Client, from: BackupLocation, writer: BatchWriterOptions): Promise<BackupManifest> {
  const key = manifestKey(from);
  let text: string;
  try {
    text = await getText(s3, from.bucket, key, writer);
  } catch (err) {
    if (err instanceof NotFoundError) {
      throw new BackupError(
        `no export at ${formatS3Location(from)}: ${key} not found in bucket ${from.bucket} (an export without its manifest is incomplete)`,
        { cause: err },
      );
    }
    throw err;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new BackupError(`the manifest at s3://${from.bucket}/${key} is not JSON`, { cause: err });
  }
  const parsed = manifestSchema.safeParse(json);
  if (!parsed.success) throw new BackupError(`the manifest at s3://${from.bucket}/${key} is malformed: ${z.prettifyError(parsed.error)}`);
  return parsed.data;
}

/**
 * The manifest names objects by their keys at export time; an export copied
 * to another prefix keeps them relative to its manifest, so they are read
 * from beside the manifest that was asked for.
 */
function relocate(key: string, exportedAt: string, from: BackupLocation): string {
  let original: BackupLocation;
  try {
    original = parseS3Location(exportedAt);
  } catch {
    return key;
  }
  return key.startsWith(original.prefix) ? from.prefix + key.slice(original.prefix.length) : key;
}

async function readItems(
  s3: S3Client,
  bucket: string,
  key: string,
  app: DataApp,
  tenantId: string,
  writer: BatchWriterOptions,
): Promise<Item[]> {
  let text: string;
  try {
    text = await getText(s3, bucket, key, writer);
  } catch (err) {
    if (err instanceof NotFoundError)
      throw new BackupError(`the backup is incomplete: data object s3://${bucket}/${key} named in the manifest is missing`, { cause: err });
    throw err;
  }
  const items: Item[] = [];
  const lines = text.split("\n");
  for (const [i, line] of lines.entries()) {
    if (line.trim() === "") continue;
    const where = `s3://${bucket}/${key} line ${i + 1}`;
    let item: Item;
    try {
      item = parseExportLine(line);
    } catch (err) {
      throw new BackupError(`${where}: not a DynamoDB export line: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    const owner = item["tenantId"]?.S;
    if (owner !== tenantId) {
      throw new BackupError(
        `${where}: the item belongs to tenant ${owner ?? "(no tenantId)"}, not ${tenantId}; refusing to restore a backup that mixes tenants`,
      );
    }
    if (item[SORT_KEYS[app]]?.S === undefined)
      throw new BackupError(`${where}: the item has no ${SORT_KEYS[app]} (S), the ${app} table's sort key`);
    items.push(item);
  }
  return items;
}

/** One put per key, the last line winning, since a batch may not name one key twice. */
function uniquePuts(items: readonly Item[], app: DataApp): WriteRequest[] {
  const byKey = new Map<string, WriteRequest>();
  for (const Item of items) byKey.set(Item[SORT_KEYS[app]]?.S ?? "", { PutRequest: { Item } });
  return [...byKey.values()];
}

async function getText(s3: S3Client, bucket: string, key: string, writer: BatchWriterOptions): Promise<string> {
  return withRetry(`reading s3://${bucket}/${key}`, writer.retry, async () => {
    const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return (await res.Body?.transformToString("utf8")) ?? "";
  });
}
