import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { DynamoDBStreamsClient } from "@aws-sdk/client-dynamodb-streams";
import { HeadObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { awsErrorKind, wrapAwsError } from "../providers/aws-errors.js";
import { manifestKey } from "./location.js";
import type { BackupLocation, BackupManifest, CaptureCheckpoint, DataApp, Fence, TableDigest, TableSet, TenantDataPort } from "../ports.js";
import { backfill } from "./backfill.js";
import type { BatchWriterOptions } from "./batch-writer.js";
import { catchUp, openCapture, type CaptureOptions } from "./capture.js";
import { digest, itemHashes } from "./digest.js";
import { exportTenant, type ExportOptions } from "./export.js";
import { purge } from "./purge.js";
import { restore } from "./restore.js";
import { DEFAULT_RETRY, type RetryPolicy } from "./retry.js";
import { dropTable, tableStatus } from "./tables.js";

export interface DynamoTenantDataOptions {
  /** Backoff for throttles and unprocessed items (src/data/retry.ts). @default DEFAULT_RETRY */
  readonly retry?: Partial<RetryPolicy>;
  /** BatchWriteItem calls in flight at once per copy. @default 4 */
  readonly writeConcurrency?: number;
  /** Records per GetRecords. @default 1000 */
  readonly recordsPerRead?: number;
  /** Size at which an export data object is closed and the next begun. @default 8 MiB */
  readonly maxExportObjectBytes?: number;
  /** Items per backfill Query page; DynamoDB stops a page at 1 MB anyway. @default unlimited */
  readonly backfillPageLimit?: number;
  /** @default () => new Date() */
  readonly now?: () => Date;
}

/**
 * TenantDataPort on DynamoDB, DynamoDB Streams and S3. Each method is one
 * module of src/data; this class only holds the clients and the options,
 * normalised once here.
 */
export class DynamoTenantData implements TenantDataPort {
  readonly #dynamodb: DynamoDBClient;
  readonly #streams: DynamoDBStreamsClient;
  readonly #s3: S3Client;
  readonly #writer: BatchWriterOptions;
  readonly #capture: CaptureOptions;
  readonly #export: ExportOptions;
  readonly #pageLimit: number | undefined;

  constructor(dynamodb: DynamoDBClient, streams: DynamoDBStreamsClient, s3: S3Client, options: DynamoTenantDataOptions = {}) {
    this.#dynamodb = dynamodb;
    this.#streams = streams;
    this.#s3 = s3;
    const retry: RetryPolicy = { ...DEFAULT_RETRY, ...options.retry };
    this.#writer = { retry, concurrency: options.writeConcurrency ?? 4 };
    this.#capture = { retry, writer: this.#writer, recordsPerRead: options.recordsPerRead ?? 1000 };
    this.#export = { retry, maxObjectBytes: options.maxExportObjectBytes ?? 8 * 1024 * 1024, now: options.now ?? (() => new Date()) };
    this.#pageLimit = options.backfillPageLimit;
  }

  openCapture(table: string): Promise<CaptureCheckpoint> {
    return openCapture(this.#dynamodb, this.#streams, table, this.#capture);
  }

  backfill(tenantId: string, source: string, target: string, fence: Fence, signal?: AbortSignal): Promise<{ readonly items: number }> {
    return backfill(this.#dynamodb, tenantId, source, target, fence, this.#writer, signal, this.#pageLimit);
  }

  catchUp(
    tenantId: string,
    source: string,
    target: string,
    from: CaptureCheckpoint,
    fence: Fence,
    signal?: AbortSignal,
  ): Promise<{ readonly checkpoint: CaptureCheckpoint; readonly applied: number; readonly changedKeys: readonly string[] }> {
    return catchUp(this.#dynamodb, this.#streams, tenantId, source, target, from, fence, this.#capture, signal);
  }

  digest(tenantId: string, table: string, signal?: AbortSignal): Promise<TableDigest> {
    return digest(this.#dynamodb, tenantId, table, this.#writer.retry, signal);
  }

  itemHashes(tenantId: string, table: string, signal?: AbortSignal): Promise<ReadonlyMap<string, string>> {
    return itemHashes(this.#dynamodb, tenantId, table, this.#writer.retry, signal);
  }

  purge(tenantId: string, table: string, fence: Fence, signal?: AbortSignal): Promise<{ readonly deleted: number }> {
    return purge(this.#dynamodb, tenantId, table, fence, this.#writer, signal);
  }

  exportTenant(tenantId: string, tables: TableSet, to: BackupLocation, fence: Fence, signal?: AbortSignal): Promise<BackupManifest> {
    return exportTenant(this.#dynamodb, this.#s3, tenantId, tables, to, fence, this.#export, signal);
  }

  async exportExists(at: BackupLocation): Promise<boolean> {
    try {
      await this.#s3.send(new HeadObjectCommand({ Bucket: at.bucket, Key: manifestKey(at) }));
      return true;
    } catch (err) {
      if (awsErrorKind(err) === "notFound") return false;
      throw wrapAwsError(err, `looking for an export's manifest at s3://${at.bucket}/${manifestKey(at)}`);
    }
  }

  restore(tenantId: string, from: BackupLocation, tables: TableSet): Promise<Readonly<Record<DataApp, number>>> {
    return restore(this.#dynamodb, this.#s3, tenantId, from, tables, this.#writer);
  }

  tableStatus(table: string): Promise<string | undefined> {
    return tableStatus(this.#dynamodb, table, this.#writer.retry);
  }

  dropTable(table: string, fence: Fence): Promise<void> {
    return dropTable(this.#dynamodb, table, fence, this.#writer.retry);
  }
}
