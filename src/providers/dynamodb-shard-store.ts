import {
  BatchGetItemCommand,
  ConditionalCheckFailedException,
  GetItemCommand,
  PutItemCommand,
  UpdateItemCommand,
  type AttributeValue,
  type DynamoDBClient,
} from "@aws-sdk/client-dynamodb";
import type { AcquireResult, LeaseState } from "../reconciler/lease.js";
import type { ShardSnapshot, ShardStore } from "../reconciler/shard-leases.js";
import { allShards, shardLeaseName } from "../reconciler/shards.js";
import { wrapAwsError } from "./aws-errors.js";
import { DynamoDbLeaseStore } from "./dynamodb-lease-store.js";

/** The fleet's shard count and the controllers' heartbeats (a map holder -> expiry) share one item. */
const CONFIG_KEY = "shards#config";

/**
 * Shard leases (`lease#shard-<n>`, the same items as the leader lease) and
 * the item `shards#config` in the operator table: `count` (written once) and
 * `workers` (holder -> heartbeat expiry, epoch ms). One round of a
 * controller costs one BatchGetItem (every lease and the config item), one
 * heartbeat UpdateItem conditioned on the count, and one UpdateItem per
 * lease renewed, taken or stolen.
 */
export class DynamoDbShardStore extends DynamoDbLeaseStore implements ShardStore {
  readonly #client: DynamoDBClient;
  readonly #table: string;

  constructor(client: DynamoDBClient, table: string) {
    super(client, table);
    this.#client = client;
    this.#table = table;
  }

  async ensureShardCount(count: number): Promise<number> {
    try {
      await this.#client.send(
        new PutItemCommand({
          TableName: this.#table,
          Item: { pk: { S: CONFIG_KEY }, count: { N: String(count) }, workers: { M: {} } },
          ConditionExpression: "attribute_not_exists(pk)",
        }),
      );
      return count;
    } catch (err) {
      if (!(err instanceof ConditionalCheckFailedException)) throw wrapAwsError(err, `recording the shard count in ${this.#table}`);
    }
    try {
      const out = await this.#client.send(new GetItemCommand({ TableName: this.#table, Key: key(CONFIG_KEY), ConsistentRead: true }));
      const n = readNumber(out.Item?.["count"]);
      if (n === undefined) throw new Error(`item ${CONFIG_KEY} in ${this.#table} has no count`);
      return n;
    } catch (err) {
      throw wrapAwsError(err, `reading the shard count from ${this.#table}`);
    }
  }

  async heartbeat(holder: string, expiresAt: number, count: number, dead: readonly string[]): Promise<boolean> {
    const names: Record<string, string> = { "#workers": "workers", "#count": "count", "#me": holder };
    dead.forEach((d, i) => (names[`#d${i}`] = d));
    const remove = dead.length > 0 ? ` REMOVE ${dead.map((_, i) => `#workers.#d${i}`).join(", ")}` : "";
    try {
      await this.#client.send(
        new UpdateItemCommand({
          TableName: this.#table,
          Key: key(CONFIG_KEY),
          UpdateExpression: `SET #workers.#me = :exp${remove}`,
          ConditionExpression: "#count = :count",
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: { ":exp": num(expiresAt), ":count": num(count) },
        }),
      );
      return true;
    } catch (err) {
      if (err instanceof ConditionalCheckFailedException) return false;
      throw wrapAwsError(err, `writing the heartbeat of ${holder} to ${this.#table}`);
    }
  }

  async leave(holder: string): Promise<void> {
    try {
      await this.#client.send(
        new UpdateItemCommand({
          TableName: this.#table,
          Key: key(CONFIG_KEY),
          UpdateExpression: "REMOVE #workers.#me",
          ConditionExpression: "attribute_exists(pk)",
          ExpressionAttributeNames: { "#workers": "workers", "#me": holder },
        }),
      );
    } catch (err) {
      if (err instanceof ConditionalCheckFailedException) return;
      throw wrapAwsError(err, `removing the heartbeat of ${holder} from ${this.#table}`);
    }
  }

  async snapshot(count: number): Promise<ShardSnapshot> {
    const wanted = [CONFIG_KEY, ...allShards(count).map((s) => `lease#${shardLeaseName(s)}`)];
    const items = new Map<string, Record<string, AttributeValue>>();
    let pending: Record<string, AttributeValue>[] = wanted.map(key);
    for (let attempt = 0; pending.length > 0; attempt++) {
      if (attempt >= 5) throw new Error(`DynamoDB left ${pending.length} lease items unread in ${this.#table} after 5 attempts`);
      if (attempt > 0) await new Promise((r) => setTimeout(r, 50 * 2 ** attempt));
      let out;
      try {
        out = await this.#client.send(
          new BatchGetItemCommand({ RequestItems: { [this.#table]: { Keys: pending, ConsistentRead: true } } }),
        );
      } catch (err) {
        throw wrapAwsError(err, `reading shard leases from ${this.#table}`);
      }
      for (const item of out.Responses?.[this.#table] ?? []) if (item["pk"]?.S !== undefined) items.set(item["pk"].S, item);
      pending = out.UnprocessedKeys?.[this.#table]?.Keys ?? [];
    }
    const workers = new Map<string, number>();
    for (const [holder, v] of Object.entries(items.get(CONFIG_KEY)?.["workers"]?.M ?? {})) {
      const exp = readNumber(v);
      if (exp !== undefined) workers.set(holder, exp);
    }
    const leases: LeaseState[] = allShards(count).map((s) => {
      const item = items.get(`lease#${shardLeaseName(s)}`);
      return { holder: item?.["holder"]?.S, expiresAt: readNumber(item?.["expiresAt"]) ?? 0, token: readNumber(item?.["token"]) ?? 0 };
    });
    return { leases, workers };
  }

  async steal(name: string, holder: string, from: string, token: number, durationMs: number, now: number): Promise<AcquireResult> {
    const expiresAt = now + durationMs;
    try {
      const out = await this.#client.send(
        new UpdateItemCommand({
          TableName: this.#table,
          Key: key(`lease#${name}`),
          UpdateExpression: "SET #holder = :me, #expiresAt = :exp ADD #token :one",
          ConditionExpression: "#holder = :from AND #token = :token",
          ExpressionAttributeNames: { "#holder": "holder", "#expiresAt": "expiresAt", "#token": "token" },
          ExpressionAttributeValues: {
            ":me": { S: holder },
            ":from": { S: from },
            ":token": num(token),
            ":exp": num(expiresAt),
            ":one": num(1),
          },
          ReturnValues: "ALL_NEW",
          ReturnValuesOnConditionCheckFailure: "ALL_OLD",
        }),
      );
      return { acquired: true, holder, expiresAt, token: readNumber(out.Attributes?.["token"]) ?? token + 1 };
    } catch (err) {
      if (err instanceof ConditionalCheckFailedException) {
        const item = err.Item;
        return {
          acquired: false,
          holder: item?.["holder"]?.S,
          expiresAt: readNumber(item?.["expiresAt"]) ?? 0,
          token: readNumber(item?.["token"]) ?? 0,
        };
      }
      throw wrapAwsError(err, `taking lease ${name} from ${from} in ${this.#table}`);
    }
  }
}

function key(pk: string): Record<string, AttributeValue> {
  return { pk: { S: pk } };
}

function num(n: number): AttributeValue {
  return { N: String(n) };
}

function readNumber(v: AttributeValue | undefined): number | undefined {
  if (v?.N === undefined) return undefined;
  const n = Number(v.N);
  return Number.isFinite(n) ? n : undefined;
}
