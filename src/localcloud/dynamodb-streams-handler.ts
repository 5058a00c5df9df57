import type { ReadWriteGate } from "./dynamodb-serializer.js";
import { asRecord, asRecords, okJson, str, type Json } from "./json.js";
import { awsError, forward, forwardOwn, withJsonBody, type AwsRequest, type HttpAnswer, type Upstream } from "./proxy.js";

/**
 * DynamoDB Streams' shard iterators, kept by the local cloud so that they
 * mean what real ones mean: a position in a shard.
 *
 * moto ties each iterator to the Python object holding the table's stream
 * records as it was when the iterator was made. A cancelled
 * TransactWriteItems makes moto put back a deep copy of every table the
 * transaction named, stream included, so every iterator handed out before
 * then goes on reading a detached copy and never sees another record. A
 * controller whose status write was fenced out (a cancelled transaction)
 * thus stopped hearing of every later edit of every tenant.
 *
 * So the iterators handed out here carry their position (stream, shard, next
 * sequence number) and the time they were made. Each GetRecords asks moto for
 * a fresh iterator at that position, reads, and hands back an iterator just
 * past the last record read. Both run in a shared section that never
 * overlaps a TransactWriteItems (ReadWriteGate, dynamodb-serializer.ts): a
 * transaction's records are visible to moto's readers before moto cancels
 * it, and a reader that saw one would have skipped the next real record
 * (moto reuses the cancelled sequence numbers). Other writes do not hold
 * stream reads back: moto applies each of them whole.
 *
 * Like DynamoDB's, an iterator expires 15 minutes after it was made
 * (ExpiredIteratorException). Records are never trimmed here.
 */

const TARGET_PREFIX = "DynamoDBStreams_20120810";

/** A shard iterator is valid for this long after it was returned (DynamoDB Streams API reference, GetShardIterator). */
export const ITERATOR_LIFETIME_MS = 15 * 60_000;

/** What a local-cloud iterator says: where to read next, and when it was handed out. */
export interface IteratorPosition {
  readonly streamArn: string;
  readonly shardId: string;
  /** The sequence number of the next record to read, in decimal (beyond 2^53: kept as text). */
  readonly next: string;
  /** Epoch ms. */
  readonly issuedAt: number;
}

const TOKEN_PREFIX = "localcloud-iterator:";

export function encodeIterator(position: IteratorPosition): string {
  const { streamArn: a, shardId: s, next: n, issuedAt: t } = position;
  return TOKEN_PREFIX + Buffer.from(JSON.stringify({ a, s, n, t })).toString("base64url");
}

/** Undefined for anything this module did not hand out. */
export function decodeIterator(token: string): IteratorPosition | undefined {
  if (!token.startsWith(TOKEN_PREFIX)) return undefined;
  try {
    const v = asRecord(JSON.parse(Buffer.from(token.slice(TOKEN_PREFIX.length), "base64url").toString("utf8")));
    const streamArn = str(v?.["a"]);
    const shardId = str(v?.["s"]);
    const next = str(v?.["n"]);
    const issuedAt = v?.["t"];
    if (streamArn === undefined || shardId === undefined || next === undefined || !/^\d+$/.test(next) || typeof issuedAt !== "number")
      return undefined;
    return { streamArn, shardId, next, issuedAt };
  } catch {
    return undefined;
  }
}

/** Whether a request is a DynamoDB Streams call, judged by its X-Amz-Target. */
export function isStreamsTarget(target: string | undefined): boolean {
  return target !== undefined && target.startsWith(`${TARGET_PREFIX}.`);
}

export interface DynamoDbStreamsHandlerOptions {
  /** Keeps stream reads apart from transactions; shared with DynamoDbHandler. */
  readonly gate: ReadWriteGate;
  /** @default Date.now */
  readonly now?: () => number;
}

/** GetShardIterator and GetRecords with positional iterators; other Streams calls pass through to moto. */
export class DynamoDbStreamsHandler {
  readonly #moto: Upstream;
  readonly #gate: ReadWriteGate;
  readonly #now: () => number;

  constructor(moto: Upstream, options: DynamoDbStreamsHandlerOptions) {
    this.#moto = moto;
    this.#gate = options.gate;
    this.#now = options.now ?? Date.now;
  }

  handle(call: AwsRequest, input: Json | undefined): Promise<HttpAnswer> {
    if (input !== undefined && call.action === "GetShardIterator") return this.#getShardIterator(call, input);
    if (input !== undefined && call.action === "GetRecords") return this.#getRecords(call, input);
    return forward(this.#moto, call);
  }

  async #getShardIterator(call: AwsRequest, input: Json): Promise<HttpAnswer> {
    // moto checks the stream, the shard and the type, and answers with the service's errors.
    const checked = await forward(this.#moto, call);
    if (okJson(checked) === undefined) return checked;
    const streamArn = str(input["StreamArn"]) ?? "";
    const shardId = str(input["ShardId"]) ?? "";
    const type = str(input["ShardIteratorType"]);
    let next: bigint;
    if (type === "AT_SEQUENCE_NUMBER" || type === "AFTER_SEQUENCE_NUMBER") {
      const given = sequenceNumber(input["SequenceNumber"]);
      if (given === undefined) return awsError(call, "ValidationException", "SequenceNumber must be a decimal sequence number");
      next = type === "AT_SEQUENCE_NUMBER" ? given : given + 1n;
    } else {
      const first = await this.#firstSequence(call, streamArn, shardId);
      if (first === undefined) return awsError(call, "ResourceNotFoundException", `shard ${shardId} of ${streamArn} not found`);
      next = type === "LATEST" ? await this.#gate.shared(() => this.#end(call, streamArn, shardId, first)) : first;
    }
    return withJsonBody(checked, { ShardIterator: encodeIterator({ streamArn, shardId, next: next.toString(), issuedAt: this.#now() }) });
  }

  async #getRecords(call: AwsRequest, input: Json): Promise<HttpAnswer> {
    const token = str(input["ShardIterator"]);
    const position = token === undefined ? undefined : decodeIterator(token);
    if (position === undefined) return forward(this.#moto, call);
    const now = this.#now();
    if (now - position.issuedAt > ITERATOR_LIFETIME_MS)
      return awsError(
        call,
        "ExpiredIteratorException",
        `Iterator expired. The iterator was created at time ${new Date(position.issuedAt).toISOString()} while right now it is ${new Date(now).toISOString()}.`,
      );
    const limit = typeof input["Limit"] === "number" ? input["Limit"] : undefined;
    return this.#gate.shared(async () => {
      const read = await this.#read(call, position, limit);
      if (read.records === undefined) return read.answer;
      const last = sequenceNumber(asRecord(read.records.at(-1)?.["dynamodb"])?.["SequenceNumber"]);
      const next = last === undefined ? position.next : (last + 1n).toString();
      return withJsonBody(read.answer, {
        Records: read.records,
        NextShardIterator: encodeIterator({ ...position, next, issuedAt: this.#now() }),
      });
    });
  }

  /** Reads from a position with a fresh moto iterator; records undefined when moto refused (its answer says why). */
  async #read(call: AwsRequest, at: IteratorPosition, limit: number | undefined): Promise<{ answer: HttpAnswer; records?: Json[] }> {
    const iterator = await this.#ask(call, "GetShardIterator", {
      StreamArn: at.streamArn,
      ShardId: at.shardId,
      ShardIteratorType: "AT_SEQUENCE_NUMBER",
      SequenceNumber: at.next,
    });
    const motoIterator = str(okJson(iterator)?.["ShardIterator"]);
    if (motoIterator === undefined) return { answer: iterator };
    const answer = await this.#ask(call, "GetRecords", { ShardIterator: motoIterator, ...(limit !== undefined ? { Limit: limit } : {}) });
    const body = okJson(answer);
    return body === undefined ? { answer } : { answer, records: asRecords(body["Records"]) };
  }

  async #firstSequence(call: AwsRequest, streamArn: string, shardId: string): Promise<bigint | undefined> {
    const described = okJson(await this.#ask(call, "DescribeStream", { StreamArn: streamArn }));
    const shard = asRecords(asRecord(described?.["StreamDescription"])?.["Shards"]).find((s) => s["ShardId"] === shardId);
    return sequenceNumber(asRecord(shard?.["SequenceNumberRange"])?.["StartingSequenceNumber"]);
  }

  /**
   * The sequence number the next record will get: the first one not there.
   * moto numbers a shard's records without gaps from its first, so a doubling
   * then halving search finds it in 2·log2(records) reads of one record each.
   */
  async #end(call: AwsRequest, streamArn: string, shardId: string, first: bigint): Promise<bigint> {
    const exists = async (n: bigint) =>
      ((await this.#read(call, { streamArn, shardId, next: n.toString(), issuedAt: 0 }, 1)).records?.length ?? 0) > 0;
    if (!(await exists(first))) return first;
    let below = first; // exists
    let step = 1n;
    while (await exists(first + step)) {
      below = first + step;
      step *= 2n;
    }
    let above = first + step; // does not exist
    while (above - below > 1n) {
      const mid = (below + above) / 2n;
      if (await exists(mid)) below = mid;
      else above = mid;
    }
    return above;
  }

  #ask(call: AwsRequest, action: string, body: Json): Promise<HttpAnswer> {
    return forwardOwn(this.#moto, call, TARGET_PREFIX, action, body);
  }
}

function sequenceNumber(value: unknown): bigint | undefined {
  return typeof value === "string" && /^\d+$/.test(value) ? BigInt(value) : undefined;
}
