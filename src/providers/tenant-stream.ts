import { DescribeTableCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import {
  DescribeStreamCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  type _Record,
  type DynamoDBStreamsClient,
  type Shard,
} from "@aws-sdk/client-dynamodb-streams";
import { unmarshall } from "@aws-sdk/util-dynamodb";
import type { Logger } from "../log.js";
import type { TenantChange, TenantChangeSource } from "../ports.js";
import { hashSpec } from "../tenants/record.js";
import { awsErrorKind, errorName, sleep, wrapAwsError } from "./aws-errors.js";

export interface DynamoStreamSourceOptions {
  /** Wait after a GetRecords that returned nothing. @default 500 */
  readonly pollIntervalMs?: number;
  /** Period of DescribeStream looking for new shards (a closed shard also triggers one). @default 30000 */
  readonly discoverIntervalMs?: number;
  /** Age at which a shard iterator is replaced before use; DynamoDB expires them at 15 min. @default 840000 (14 min) */
  readonly iteratorMaxAgeMs?: number;
  /** First wait after an error; doubles per consecutive error, with jitter. @default 500 */
  readonly backoffInitialMs?: number;
  /** @default 20000 */
  readonly backoffMaxMs?: number;
  /** Records per GetRecords. @default 1000 */
  readonly limit?: number;
  /** Skips DescribeTable when the stream ARN is known. */
  readonly streamArn?: string;
  readonly log?: Pick<Logger, "warn" | "debug">;
  /** @default Date.now */
  readonly now?: () => number;
}

type StartType = "LATEST" | "TRIM_HORIZON";

/** Where a shard reader is: the start it was given and the last record it delivered. */
interface Position {
  start: StartType;
  lastSequence: string | undefined;
}

/**
 * Follows the tenants table's stream (TenantChangeSource).
 *
 * Where reading starts: shards open when start() is called are read from
 * LATEST, because the controller scans the whole table right after start()
 * resolves and that scan covers everything written before. start() resolves
 * only once those LATEST iterators exist, so scan and stream overlap instead
 * of leaving a gap. Shards found later (children of a split) are read from
 * TRIM_HORIZON, after their parent's reader has finished, so one key's
 * changes arrive in order.
 *
 * Never stops on its own: throttling and network errors back off and resume
 * from the last delivered sequence number. One known gap: a LATEST reader
 * that has seen no record yet and must replace its iterator re-acquires
 * LATEST; the periodic resync covers what could slip between.
 *
 * Lag (lagSeconds): per shard, the point in time up to which everything is
 * read: the creation time of the last record delivered, or the time of a
 * read that found nothing new. A reader that keeps failing holds its point
 * still, so its lag grows; an idle stream reads as caught up, not as old.
 */
export class DynamoStreamSource implements TenantChangeSource {
  readonly #dynamodb: DynamoDBClient;
  readonly #streams: DynamoDBStreamsClient;
  readonly #table: string;
  readonly #o: Required<Omit<DynamoStreamSourceOptions, "streamArn" | "log">>;
  readonly #streamArnOption: string | undefined;
  readonly #log: Pick<Logger, "warn" | "debug"> | undefined;

  #abort: AbortController | undefined;
  #onChange: ((changes: readonly TenantChange[]) => void) | undefined;
  /** Every shard id seen, read or deliberately skipped (closed before start). */
  readonly #known = new Set<string>();
  /** Running readers by shard id; a child waits on its parent's entry. */
  readonly #readers = new Map<string, Promise<void>>();
  #discovery: Promise<void> | undefined;
  #wakeDiscovery: (() => void) | undefined;
  /** Set when a shard closed while discovery was busy, so it runs again at once. */
  #discoveryRequested = false;
  /** Per shard being read: epoch ms up to which its records are read. */
  readonly #readUpTo = new Map<string, number>();

  constructor(dynamodb: DynamoDBClient, streams: DynamoDBStreamsClient, table: string, options: DynamoStreamSourceOptions = {}) {
    this.#dynamodb = dynamodb;
    this.#streams = streams;
    this.#table = table;
    this.#streamArnOption = options.streamArn;
    this.#log = options.log;
    this.#o = {
      pollIntervalMs: options.pollIntervalMs ?? 500,
      discoverIntervalMs: options.discoverIntervalMs ?? 30_000,
      iteratorMaxAgeMs: options.iteratorMaxAgeMs ?? 14 * 60_000,
      backoffInitialMs: options.backoffInitialMs ?? 500,
      backoffMaxMs: options.backoffMaxMs ?? 20_000,
      limit: options.limit ?? 1000,
      now: options.now ?? Date.now,
    };
  }

  async start(onChange: (changes: readonly TenantChange[]) => void): Promise<void> {
    if (this.#abort !== undefined) throw new Error("stream source already started");
    this.#abort = new AbortController();
    this.#onChange = onChange;
    const arn = this.#streamArnOption ?? (await this.#latestStreamArn());
    const shards = await this.#describeShards(arn);
    const open = shards.filter((s) => s.SequenceNumberRange?.EndingSequenceNumber === undefined);
    for (const s of shards) if (s.ShardId !== undefined) this.#known.add(s.ShardId);
    // LATEST: what came before is the scan's, so the readers start caught up.
    const started = this.#o.now();
    for (const s of open) this.#readUpTo.set(s.ShardId ?? "", started);
    const first = await Promise.all(
      open.map(async (s) => {
        const position: Position = { start: "LATEST", lastSequence: undefined };
        return { shardId: s.ShardId ?? "", position, iterator: await this.#iterator(arn, s.ShardId ?? "", position) };
      }),
    );
    for (const r of first) this.#spawn(arn, r.shardId, r.position, r.iterator, undefined);
    this.#discovery = this.#discoverLoop(arn);
  }

  async stop(): Promise<void> {
    this.#abort?.abort();
    this.#wakeDiscovery?.();
    await Promise.allSettled([...this.#readers.values(), this.#discovery]);
    this.#readers.clear();
    this.#known.clear();
    this.#readUpTo.clear();
    this.#abort = undefined;
    this.#discovery = undefined;
    this.#discoveryRequested = false;
  }

  /**
   * How far behind the stream reading is, in seconds: the largest lag of the
   * shards being read (0 when every one is caught up). Undefined when not
   * started (a standby reads nothing).
   */
  lagSeconds(): number | undefined {
    if (this.#abort === undefined) return undefined;
    const now = this.#o.now();
    let lag = 0;
    for (const upTo of this.#readUpTo.values()) lag = Math.max(lag, (now - upTo) / 1000);
    return Math.max(0, lag);
  }

  get #signal(): AbortSignal {
    if (this.#abort === undefined) throw new Error("stream source not started");
    return this.#abort.signal;
  }

  async #latestStreamArn(): Promise<string> {
    let res;
    try {
      res = await this.#dynamodb.send(new DescribeTableCommand({ TableName: this.#table }));
    } catch (err) {
      throw wrapAwsError(err, `describing table ${this.#table} to find its stream`);
    }
    const arn = res.Table?.LatestStreamArn;
    if (arn === undefined || res.Table?.StreamSpecification?.StreamEnabled === false) {
      throw new Error(`table ${this.#table} has no stream: enable DynamoDB Streams with view type NEW_AND_OLD_IMAGES`);
    }
    return arn;
  }

  async #describeShards(arn: string): Promise<Shard[]> {
    const shards: Shard[] = [];
    let exclusiveStart: string | undefined;
    do {
      let res;
      try {
        res = await this.#streams.send(
          new DescribeStreamCommand({ StreamArn: arn, ...(exclusiveStart !== undefined ? { ExclusiveStartShardId: exclusiveStart } : {}) }),
        );
      } catch (err) {
        throw wrapAwsError(err, `describing stream of table ${this.#table}`);
      }
      shards.push(...(res.StreamDescription?.Shards ?? []));
      exclusiveStart = res.StreamDescription?.LastEvaluatedShardId;
    } while (exclusiveStart !== undefined);
    return shards;
  }

  async #iterator(arn: string, shardId: string, position: Position): Promise<string | undefined> {
    const input =
      position.lastSequence !== undefined
        ? { ShardIteratorType: "AFTER_SEQUENCE_NUMBER" as const, SequenceNumber: position.lastSequence }
        : { ShardIteratorType: position.start };
    const res = await this.#streams.send(new GetShardIteratorCommand({ StreamArn: arn, ShardId: shardId, ...input }));
    return res.ShardIterator;
  }

  #spawn(arn: string, shardId: string, position: Position, iterator: string | undefined, parent: Promise<void> | undefined): void {
    const reader = (async () => {
      if (parent !== undefined) await parent;
      await this.#readShard(arn, shardId, position, iterator);
    })()
      .catch((err: unknown) => this.#log?.warn({ err, shardId }, "stream shard reader ended by an unexpected error"))
      .finally(() => {
        this.#readers.delete(shardId);
        this.#readUpTo.delete(shardId);
      });
    this.#readers.set(shardId, reader);
  }

  async #readShard(arn: string, shardId: string, position: Position, firstIterator: string | undefined): Promise<void> {
    const signal = this.#signal;
    let iterator = firstIterator;
    let acquiredAt = this.#o.now();
    let failures = 0;
    while (!signal.aborted) {
      try {
        // An unused iterator expires after 15 minutes; replace it first
        // rather than learn it from an ExpiredIteratorException.
        if (iterator === undefined || this.#o.now() - acquiredAt >= this.#o.iteratorMaxAgeMs) {
          iterator = await this.#iterator(arn, shardId, position);
          acquiredAt = this.#o.now();
          if (iterator === undefined) return;
        }
        const sent = this.#o.now();
        const res = await this.#streams.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: this.#o.limit }));
        failures = 0;
        const records = res.Records ?? [];
        if (records.length > 0) {
          const last = records[records.length - 1]?.dynamodb;
          position.lastSequence = last?.SequenceNumber ?? position.lastSequence;
          this.#deliver(records);
          // Without a creation time the batch says nothing of the lag; the next empty read will.
          const created = last?.ApproximateCreationDateTime?.getTime();
          if (created !== undefined && !Number.isNaN(created)) this.#readUpTo.set(shardId, Math.min(created, sent));
        } else {
          // Nothing after our position as of `sent`: caught up to then.
          this.#readUpTo.set(shardId, sent);
        }
        // Every answer carries a fresh iterator, good for another 15 minutes.
        iterator = res.NextShardIterator ?? undefined;
        acquiredAt = this.#o.now();
        if (iterator === undefined) {
          // Closed shard, fully read: its children (if any) start now.
          this.#log?.debug({ shardId }, "stream shard closed");
          this.#requestDiscovery();
          return;
        }
        if (records.length === 0) await sleep(this.#o.pollIntervalMs, signal);
      } catch (err) {
        if (signal.aborted) return;
        const name = errorName(err);
        if (name === "ExpiredIteratorException") {
          iterator = undefined;
          continue;
        }
        if (name === "TrimmedDataAccessException") {
          // Our position fell out of the 24-hour window: start from the
          // oldest record kept; the resync covers what was trimmed.
          this.#log?.warn({ shardId }, "stream records trimmed before they were read; resuming at TRIM_HORIZON");
          position.start = "TRIM_HORIZON";
          position.lastSequence = undefined;
          iterator = undefined;
          continue;
        }
        if (name === "ResourceNotFoundException") {
          this.#log?.warn({ shardId, err }, "stream shard no longer exists; its reader stops");
          return;
        }
        failures++;
        const wait = this.#backoff(failures);
        this.#log?.warn({ shardId, err, failures, waitMs: wait }, "reading the tenants stream failed; backing off");
        // A throttle or a network or server fault leaves the iterator good
        // (reading does not consume it): try it again. Anything else may be
        // the iterator's fault: resume from the last delivered record.
        if (!isTransient(err)) iterator = undefined;
        await sleep(wait, signal);
      }
    }
  }

  async #discoverLoop(arn: string): Promise<void> {
    const signal = this.#signal;
    while (!signal.aborted) {
      if (!this.#discoveryRequested) {
        const wake = new AbortController();
        this.#wakeDiscovery = () => wake.abort();
        await sleep(this.#o.discoverIntervalMs, AbortSignal.any([signal, wake.signal]));
      }
      this.#wakeDiscovery = undefined;
      this.#discoveryRequested = false;
      if (signal.aborted) return;
      try {
        for (const s of await this.#describeShards(arn)) {
          const id = s.ShardId;
          if (id === undefined || this.#known.has(id)) continue;
          this.#known.add(id);
          const parent = s.ParentShardId !== undefined ? this.#readers.get(s.ParentShardId) : undefined;
          this.#spawn(arn, id, { start: "TRIM_HORIZON", lastSequence: undefined }, undefined, parent);
        }
      } catch (err) {
        this.#log?.warn({ err }, "looking for new stream shards failed; trying again at the next interval");
      }
    }
  }

  #requestDiscovery(): void {
    this.#discoveryRequested = true;
    this.#wakeDiscovery?.();
  }

  #deliver(records: readonly _Record[]): void {
    const changes = records.map(toTenantChange).filter((c): c is TenantChange => c !== undefined);
    if (changes.length === 0) return;
    try {
      this.#onChange?.(changes);
    } catch (err) {
      // The consumer's bug must not stop the stream for every other tenant.
      this.#log?.warn({ err }, "tenant change handler threw");
    }
  }

  #backoff(failures: number): number {
    const base = Math.min(this.#o.backoffMaxMs, this.#o.backoffInitialMs * 2 ** (failures - 1));
    return Math.round(base * (0.5 + Math.random() / 2));
  }
}

/** A throttle, a server or network fault, or no AWS answer at all (transport trouble). */
function isTransient(err: unknown): boolean {
  const kind = awsErrorKind(err);
  return kind === undefined || kind === "transient";
}

/** A stream record as a TenantChange; undefined for a record without a tenant id. */
export function toTenantChange(record: _Record): TenantChange | undefined {
  const data = record.dynamodb;
  const newImage: Record<string, unknown> | undefined = data?.NewImage !== undefined ? unmarshall(data.NewImage) : undefined;
  const oldImage: Record<string, unknown> | undefined = data?.OldImage !== undefined ? unmarshall(data.OldImage) : undefined;
  const keys: Record<string, unknown> = data?.Keys !== undefined ? unmarshall(data.Keys) : {};
  const tenantId = keys["tenantId"] ?? newImage?.["tenantId"] ?? oldImage?.["tenantId"];
  if (typeof tenantId !== "string") return undefined;
  const newSpecHash = newImage !== undefined ? hashSpec(newImage) : undefined;
  const oldSpecHash = oldImage !== undefined ? hashSpec(oldImage) : undefined;
  if (record.eventName === "REMOVE") {
    const status = oldImage?.["status"] as { phase?: unknown } | undefined;
    const registrationId = oldImage?.["tenantRegistrationId"];
    return {
      tenantId,
      kind: "remove",
      newSpecHash,
      oldSpecHash,
      ...(typeof status?.phase === "string" ? { oldPhase: status.phase } : {}),
      ...(typeof registrationId === "string" ? { oldRegistrationId: registrationId } : {}),
    };
  }
  return { tenantId, kind: "upsert", newSpecHash, oldSpecHash };
}

/**
 * False for a change that left the spec alone (the controller's own status
 * write), so it does not cause another reconcile.
 */
export function isSpecChange(change: TenantChange): boolean {
  if (change.kind === "remove") return true;
  return change.newSpecHash === undefined || change.oldSpecHash === undefined || change.newSpecHash !== change.oldSpecHash;
}
