import type { AttributeValue, DynamoDBClient, WriteRequest } from "@aws-sdk/client-dynamodb";
import {
  DescribeStreamCommand,
  ExpiredIteratorException,
  GetRecordsCommand,
  GetShardIteratorCommand,
  TrimmedDataAccessException,
  type _Record,
  type DynamoDBStreamsClient,
  type Shard,
} from "@aws-sdk/client-dynamodb-streams";
import type { CaptureCheckpoint, Fence } from "../ports.js";
import { findCause, NotFoundError } from "../errors.js";
import { writeAll, type BatchWriterOptions } from "./batch-writer.js";
import { canonicalItem, type Item } from "./dynamo-json.js";
import { CaptureLostError, NoStreamError } from "./errors.js";
import { sendOptions, withRetry, type RetryPolicy } from "./retry.js";
import { describeTable } from "./tables.js";

/**
 * Change capture on a table's stream, for a tier move: openCapture marks
 * "now" before the backfill reads anything, catchUp later replays on the
 * target every change of the tenant made after that mark. Replaying a change
 * the backfill already copied is harmless (each record carries the whole new
 * item, and a key's records are replayed in order, so the last one wins);
 * missing one is not, hence the care over where each shard starts.
 *
 * Neither keeps state between calls: the checkpoint is the state, and the
 * caller stores it (status.migration) so a crash resumes from it.
 *
 * The present end of an open shard is where GetRecords first returns no
 * record. DynamoDB may answer empty a little early; stopping there is safe,
 * since the checkpoint then points before what was left, and the next
 * catchUp reads on from it.
 */

export interface CaptureOptions {
  readonly retry: RetryPolicy;
  readonly writer: BatchWriterOptions;
  /** Records per GetRecords. @default 1000 */
  readonly recordsPerRead: number;
}

/** Where a shard is read from: after a sequence number, or from its oldest record. */
type StartAt = { readonly after: string } | { readonly after: undefined };

export async function openCapture(
  dynamodb: DynamoDBClient,
  streams: DynamoDBStreamsClient,
  table: string,
  options: CaptureOptions,
): Promise<CaptureCheckpoint> {
  const description = await describeTable(dynamodb, table, options.retry);
  if (description === undefined) throw Object.assign(new Error(`table ${table} does not exist`), { name: "ResourceNotFoundException" });
  const streamArn = description.LatestStreamArn;
  if (streamArn === undefined || description.StreamSpecification?.StreamEnabled === false) throw new NoStreamError(table);
  const shards: Record<string, string> = {};
  for (const shard of await describeShards(streams, streamArn, table, options.retry)) {
    const id = shard.ShardId;
    if (id === undefined) continue;
    const end = shard.SequenceNumberRange?.EndingSequenceNumber;
    // Every shard must be in the checkpoint, closed ones too: a shard the
    // checkpoint does not know is read from its start, and replaying a closed
    // parent's old records after its child's newer ones were skipped would
    // put stale items back.
    if (end !== undefined) {
      shards[id] = end;
      continue;
    }
    let last = "";
    await readShard(streams, streamArn, table, id, { after: undefined }, options, undefined, (records) => {
      last = records[records.length - 1]?.dynamodb?.SequenceNumber ?? last;
      return Promise.resolve();
    });
    shards[id] = last;
  }
  return { streamArn, shards };
}

export async function catchUp(
  dynamodb: DynamoDBClient,
  streams: DynamoDBStreamsClient,
  tenantId: string,
  source: string,
  target: string,
  from: CaptureCheckpoint,
  fence: Fence,
  options: CaptureOptions,
  signal?: AbortSignal,
): Promise<{ readonly checkpoint: CaptureCheckpoint; readonly applied: number; readonly changedKeys: readonly string[] }> {
  const shards = lineageOrder(await describeShards(streams, from.streamArn, source, options.retry, signal));
  const positions: Record<string, string> = {};
  let applied = 0;
  const changed = new Set<string>();
  for (const shard of shards) {
    const id = shard.ShardId ?? "";
    const known = from.shards[id];
    let last = known ?? "";
    // A closed shard already read to its end: nothing to ask for.
    if (known !== undefined && known !== "" && known === shard.SequenceNumberRange?.EndingSequenceNumber) {
      positions[id] = known;
      continue;
    }
    const start = { after: known === "" ? undefined : known };
    await readShard(streams, from.streamArn, source, id, start, options, signal, async (records) => {
      const writes = tenantWrites(records, tenantId, source);
      if (writes.requests.length > 0) await writeAll(dynamodb, target, writes.requests, fence, options.writer, signal);
      applied += writes.records;
      for (const key of writes.keys) changed.add(key);
      // Only once the page is written: a crash before this repeats the page, never skips it.
      last = records[records.length - 1]?.dynamodb?.SequenceNumber ?? last;
    });
    positions[id] = last;
  }
  return { checkpoint: { streamArn: from.streamArn, shards: positions }, applied, changedKeys: [...changed] };
}

/**
 * The writes that replay a page of stream records for one tenant. Records of
 * other tenants are skipped: the key decides, since it is in every record
 * whatever the stream's view type. Within a page only the last record of each
 * key is kept, which lets the page go out as unordered batches: the target
 * ends in the same state as if every record had been applied in turn.
 */
export function tenantWrites(
  records: readonly _Record[],
  tenantId: string,
  table: string,
): { readonly requests: WriteRequest[]; readonly records: number; readonly keys: readonly string[] } {
  const byKey = new Map<string, WriteRequest>();
  let count = 0;
  for (const record of records) {
    const data = record.dynamodb;
    const keys = data?.Keys as Item | undefined;
    if (keys === undefined || keys["tenantId"]?.S !== tenantId) continue;
    count++;
    const keyText = canonicalItem(keys);
    // Delete then set, so the key moves to the end of the map's order: not
    // needed for correctness, but it keeps the batches in stream order.
    byKey.delete(keyText);
    if (record.eventName === "REMOVE") {
      byKey.set(keyText, { DeleteRequest: { Key: keys } });
    } else {
      const image = data?.NewImage as Record<string, AttributeValue> | undefined;
      if (image === undefined) {
        throw new Error(
          `the stream of table ${table} carries no new images (view type ${data?.StreamViewType ?? "unknown"}); it must be NEW_IMAGE or NEW_AND_OLD_IMAGES to copy changes`,
        );
      }
      byKey.set(keyText, { PutRequest: { Item: image } });
    }
  }
  return { requests: [...byKey.values()], records: count, keys: [...byKey.keys()] };
}

/**
 * Shards ordered so that each comes after its parent (and its parent's
 * parent...), as DynamoDB requires for reading one key's changes in order.
 * A parent no longer listed (trimmed) is simply absent. Siblings keep the
 * order DescribeStream gave.
 */
export function lineageOrder(shards: readonly Shard[]): Shard[] {
  const byId = new Map(shards.map((s) => [s.ShardId ?? "", s]));
  const out: Shard[] = [];
  const placed = new Set<string>();
  const visiting = new Set<string>();
  const place = (shard: Shard) => {
    const id = shard.ShardId ?? "";
    if (placed.has(id) || visiting.has(id)) return;
    visiting.add(id);
    const parent = shard.ParentShardId !== undefined ? byId.get(shard.ParentShardId) : undefined;
    if (parent !== undefined) place(parent);
    visiting.delete(id);
    placed.add(id);
    out.push(shard);
  };
  for (const s of shards) place(s);
  return out;
}

async function describeShards(
  streams: DynamoDBStreamsClient,
  arn: string,
  table: string,
  retry: RetryPolicy,
  signal?: AbortSignal,
): Promise<Shard[]> {
  const shards: Shard[] = [];
  let exclusiveStart: string | undefined;
  do {
    const start = exclusiveStart;
    const res = await withRetry(
      `describing the stream of table ${table}`,
      retry,
      () =>
        streams.send(
          new DescribeStreamCommand({ StreamArn: arn, ...(start !== undefined ? { ExclusiveStartShardId: start } : {}) }),
          sendOptions(signal),
        ),
      signal,
    );
    shards.push(...(res.StreamDescription?.Shards ?? []));
    exclusiveStart = res.StreamDescription?.LastEvaluatedShardId;
  } while (exclusiveStart !== undefined);
  return shards;
}

/**
 * Reads one shard from `start` to its present end (open shard) or its end
 * (closed shard), handing each non-empty page to `onPage` before reading the
 * next. An expired iterator is replaced after the last record handed over.
 */
async function readShard(
  streams: DynamoDBStreamsClient,
  arn: string,
  table: string,
  shardId: string,
  start: StartAt,
  options: CaptureOptions,
  signal: AbortSignal | undefined,
  onPage: (records: readonly _Record[]) => Promise<void>,
): Promise<void> {
  let after = start.after;
  const acquire = async (): Promise<string | undefined> => {
    const from = after;
    try {
      const res = await withRetry(
        `getting an iterator on shard ${shardId} of table ${table}`,
        options.retry,
        () =>
          streams.send(
            new GetShardIteratorCommand({
              StreamArn: arn,
              ShardId: shardId,
              ...(from !== undefined
                ? { ShardIteratorType: "AFTER_SEQUENCE_NUMBER", SequenceNumber: from }
                : { ShardIteratorType: "TRIM_HORIZON" }),
            }),
            sendOptions(signal),
          ),
        signal,
      );
      return res.ShardIterator;
    } catch (err) {
      if (findCause(err, TrimmedDataAccessException) !== undefined) throw new CaptureLostError(table, shardId, { cause: err });
      if (err instanceof NotFoundError && from === undefined) return undefined;
      if (err instanceof NotFoundError) throw new CaptureLostError(table, shardId, { cause: err });
      throw err;
    }
  };
  let iterator = await acquire();
  while (iterator !== undefined) {
    // Between pages: what was applied so far is replayed harmlessly from the caller's checkpoint.
    signal?.throwIfAborted();
    const current = iterator;
    let res;
    try {
      res = await withRetry(
        `reading shard ${shardId} of table ${table}`,
        options.retry,
        () => streams.send(new GetRecordsCommand({ ShardIterator: current, Limit: options.recordsPerRead }), sendOptions(signal)),
        signal,
      );
    } catch (err) {
      // Iterators last 15 minutes; a slow write of the previous page can outlive one.
      if (findCause(err, ExpiredIteratorException) !== undefined) {
        iterator = await acquire();
        continue;
      }
      if (findCause(err, TrimmedDataAccessException) !== undefined) throw new CaptureLostError(table, shardId, { cause: err });
      throw err;
    }
    const records = res.Records ?? [];
    if (records.length > 0) {
      await onPage(records);
      after = records[records.length - 1]?.dynamodb?.SequenceNumber ?? after;
    }
    // No next iterator: a closed shard, read to its end. An empty page on an
    // open shard: its present end.
    if (res.NextShardIterator === undefined || res.NextShardIterator === null || records.length === 0) return;
    iterator = res.NextShardIterator;
  }
}
