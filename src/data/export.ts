import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DeleteObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { DATA_APPS, type BackupLocation, type BackupManifest, type DataApp, type Fence, type TableSet } from "../ports.js";
import { exportLine } from "./dynamo-json.js";
import { dataObjectKey, formatS3Location, manifestKey } from "./location.js";
import { sendOptions, withRetry, type RetryPolicy } from "./retry.js";
import { tenantPages } from "./tenant-query.js";

export interface ExportOptions {
  readonly retry: RetryPolicy;
  /** A data object is closed once it holds this many bytes of lines. @default 8 MiB */
  readonly maxObjectBytes: number;
  readonly now: () => Date;
}

/**
 * Writes one tenant's items to S3 in the shape of a DynamoDB export
 * (DYNAMODB_JSON: one `{"Item": {...}}` per line), one or more objects per
 * app table, then the manifest.
 *
 * The manifest is what makes a prefix an export: it is removed first and
 * written last, so a crash half-way leaves a prefix without one (never a
 * manifest describing objects that were since overwritten), and a repeat
 * overwrites the same keys. Objects a larger earlier export left behind are
 * removed before the manifest is written, so the prefix then holds exactly
 * this export. Offboarding deletes the tenant's items only after this
 * returns.
 */
export async function exportTenant(
  dynamodb: DynamoDBClient,
  s3: S3Client,
  tenantId: string,
  tables: TableSet,
  to: BackupLocation,
  fence: Fence,
  options: ExportOptions,
  signal?: AbortSignal,
): Promise<BackupManifest> {
  const where = formatS3Location(to);
  const put = async (key: string, body: string, contentType: string) => {
    fence.assertHeld();
    await withRetry(
      `writing ${key} to bucket ${to.bucket}`,
      options.retry,
      () => s3.send(new PutObjectCommand({ Bucket: to.bucket, Key: key, Body: body, ContentType: contentType }), sendOptions(signal)),
      signal,
    );
  };
  fence.assertHeld();
  await withRetry(`removing the old manifest at ${where}`, options.retry, () =>
    s3.send(new DeleteObjectCommand({ Bucket: to.bucket, Key: manifestKey(to) })),
  );

  const written = new Set<string>();
  const entries = {} as Record<DataApp, { table: string; itemCount: number; dataFiles: string[] }>;
  for (const app of DATA_APPS) {
    const table = tables[app];
    const dataFiles: string[] = [];
    let lines: string[] = [];
    let bytes = 0;
    let itemCount = 0;
    const flush = async () => {
      const key = dataObjectKey(to, app, dataFiles.length);
      await put(key, lines.length > 0 ? `${lines.join("\n")}\n` : "", "application/json");
      dataFiles.push(key);
      written.add(key);
      lines = [];
      bytes = 0;
    };
    for await (const page of tenantPages(dynamodb, { table, tenantId }, options.retry, signal)) {
      for (const item of page) {
        const line = exportLine(item);
        lines.push(line);
        bytes += Buffer.byteLength(line) + 1;
        itemCount++;
        if (bytes >= options.maxObjectBytes) await flush();
      }
    }
    // Always at least one object per table, so every table in the manifest has a file to point at.
    if (lines.length > 0 || dataFiles.length === 0) await flush();
    entries[app] = { table, itemCount, dataFiles };
  }

  await removeStale(s3, to, written, fence, options.retry);
  const manifest: BackupManifest = { tenantId, location: where, exportedAt: options.now().toISOString(), tables: entries };
  await put(manifestKey(to), `${JSON.stringify(manifest, null, 2)}\n`, "application/json");
  return manifest;
}

const DATA_OBJECT_NAME = new RegExp(`^(${DATA_APPS.join("|")})-\\d+\\.json$`);

/** Data objects of an earlier export at the same prefix that this one did not write. */
async function removeStale(
  s3: S3Client,
  to: BackupLocation,
  written: ReadonlySet<string>,
  fence: Fence,
  retry: RetryPolicy,
): Promise<void> {
  const dataPrefix = `${to.prefix}data/`;
  let token: string | undefined;
  do {
    const next = token;
    const page = await withRetry(`listing ${dataPrefix} in bucket ${to.bucket}`, retry, () =>
      s3.send(
        new ListObjectsV2Command({ Bucket: to.bucket, Prefix: dataPrefix, ...(next !== undefined ? { ContinuationToken: next } : {}) }),
      ),
    );
    for (const object of page.Contents ?? []) {
      const key = object.Key;
      if (key === undefined || written.has(key)) continue;
      // Only what an export names so; anything else someone put there stays.
      if (!DATA_OBJECT_NAME.test(key.slice(dataPrefix.length))) continue;
      fence.assertHeld();
      await withRetry(`removing stale ${key}`, retry, () => s3.send(new DeleteObjectCommand({ Bucket: to.bucket, Key: key })));
    }
    token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
  } while (token !== undefined);
}
