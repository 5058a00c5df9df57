import { wrapAwsError } from "./aws-errors.js";
import {
  ConditionalCheckFailedException,
  CreateTableCommand,
  DescribeTableCommand,
  ResourceInUseException,
  ResourceNotFoundException,
  UpdateItemCommand,
  type AttributeValue,
  type DynamoDBClient,
} from "@aws-sdk/client-dynamodb";
import type { AcquireResult, LeaseStore } from "../reconciler/lease.js";

/**
 * The leader lease as one item in the operator table (partition key `pk`):
 * `pk = lease#<name>`, `holder` (S), `expiresAt` (N, epoch ms), `token` (N).
 * Every operation is one conditional UpdateItem, so DynamoDB decides races;
 * a failed condition is an answer ("not yours"), not an error.
 *
 * expiresAt is written from the caller's clock (the `now` argument). That is
 * safe while clock skew between controllers is far below the lease duration
 * (NTP keeps it to milliseconds; leases last seconds), see ADR 0004.
 */
export class DynamoDbLeaseStore implements LeaseStore {
  readonly #client: DynamoDBClient;
  readonly #table: string;

  /** @param client constructed elsewhere with region and endpoint config. */
  constructor(client: DynamoDBClient, table: string) {
    this.#client = client;
    this.#table = table;
  }

  async tryAcquire(name: string, holder: string, durationMs: number, now: number): Promise<AcquireResult> {
    const expiresAt = now + durationMs;
    try {
      const out = await this.#client.send(
        new UpdateItemCommand({
          TableName: this.#table,
          Key: leaseKey(name),
          // ADD creates the token at 1 on a new item and increments it on every
          // acquisition, including re-acquisition by the same holder: a new
          // term gets a new fencing token.
          UpdateExpression: "SET #holder = :me, #expiresAt = :exp ADD #token :one",
          ConditionExpression: "attribute_not_exists(pk) OR attribute_not_exists(#holder) OR #expiresAt < :now OR #holder = :me",
          ExpressionAttributeNames: { "#holder": "holder", "#expiresAt": "expiresAt", "#token": "token" },
          ExpressionAttributeValues: { ":me": { S: holder }, ":exp": num(expiresAt), ":now": num(now), ":one": num(1) },
          ReturnValues: "ALL_NEW",
          ReturnValuesOnConditionCheckFailure: "ALL_OLD",
        }),
      );
      return { acquired: true, holder, expiresAt, token: readNumber(out.Attributes?.["token"]) ?? 1 };
    } catch (err) {
      if (err instanceof ConditionalCheckFailedException) {
        // ALL_OLD below: the failure carries the current holder's item, so a
        // standby learns when it expires without another read.
        const item = err.Item;
        return {
          acquired: false,
          holder: item?.["holder"]?.S,
          expiresAt: readNumber(item?.["expiresAt"]) ?? 0,
          token: readNumber(item?.["token"]) ?? 0,
        };
      }
      throw wrap(err, `acquiring lease ${name} in ${this.#table}`);
    }
  }

  async renew(name: string, holder: string, token: number, durationMs: number, now: number): Promise<boolean> {
    return this.#conditional(`renewing lease ${name} in ${this.#table}`, {
      Key: leaseKey(name),
      UpdateExpression: "SET #expiresAt = :exp",
      ConditionExpression: "#holder = :me AND #token = :token",
      ExpressionAttributeNames: { "#holder": "holder", "#expiresAt": "expiresAt", "#token": "token" },
      ExpressionAttributeValues: { ":me": { S: holder }, ":token": num(token), ":exp": num(now + durationMs) },
    });
  }

  async release(name: string, holder: string, token: number): Promise<boolean> {
    // An update rather than a delete keeps the token, so the next holder's
    // token is still larger than every earlier one.
    return this.#conditional(`releasing lease ${name} in ${this.#table}`, {
      Key: leaseKey(name),
      UpdateExpression: "SET #expiresAt = :zero REMOVE #holder",
      ConditionExpression: "#holder = :me AND #token = :token",
      ExpressionAttributeNames: { "#holder": "holder", "#expiresAt": "expiresAt", "#token": "token" },
      ExpressionAttributeValues: { ":me": { S: holder }, ":token": num(token), ":zero": num(0) },
    });
  }

  async #conditional(
    what: string,
    input: Omit<ConstructorParameters<typeof UpdateItemCommand>[0], "TableName" | "ReturnValuesOnConditionCheckFailure">,
  ): Promise<boolean> {
    try {
      await this.#client.send(new UpdateItemCommand({ TableName: this.#table, ...input }));
      return true;
    } catch (err) {
      if (err instanceof ConditionalCheckFailedException) return false;
      throw wrap(err, what);
    }
  }
}

/**
 * Creates the operator table (partition key `pk` S, on-demand) unless it
 * exists, and waits until it is ACTIVE. Safe to call from several processes
 * at once. For the local bootstrap and tests; production provisions it.
 */
export async function ensureLeaseTable(client: DynamoDBClient, name: string, options: { timeoutMs?: number } = {}): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  if ((await tableStatus(client, name)) === undefined) {
    try {
      await client.send(
        new CreateTableCommand({
          TableName: name,
          AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }],
          KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }],
          BillingMode: "PAY_PER_REQUEST",
          Tags: [{ Key: "managed-by", Value: "ecs-tenant-operator" }],
        }),
      );
    } catch (err) {
      // Another process created it between our describe and create.
      if (!(err instanceof ResourceInUseException)) throw wrap(err, `creating table ${name}`);
    }
  }
  // The SDK's waiter polls every 20 s at first; tables on moto (and most
  // real ones this small) are ACTIVE in well under a second.
  for (;;) {
    const status = await tableStatus(client, name);
    if (status === "ACTIVE") return;
    if (Date.now() > deadline) throw new Error(`table ${name} is not ACTIVE (status ${status ?? "missing"}) after waiting`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function tableStatus(client: DynamoDBClient, name: string): Promise<string | undefined> {
  try {
    const out = await client.send(new DescribeTableCommand({ TableName: name }));
    return out.Table?.TableStatus ?? "UNKNOWN";
  } catch (err) {
    if (err instanceof ResourceNotFoundException) return undefined;
    throw wrap(err, `describing table ${name}`);
  }
}

function leaseKey(name: string): Record<string, AttributeValue> {
  return { pk: { S: `lease#${name}` } };
}

function num(n: number): AttributeValue {
  return { N: String(n) };
}

function readNumber(v: AttributeValue | undefined): number | undefined {
  if (v?.N === undefined) return undefined;
  const n = Number(v.N);
  return Number.isFinite(n) ? n : undefined;
}

/** Adds context and classifies at the boundary (aws-errors.ts); the AWS error stays reachable as cause. */
const wrap = wrapAwsError;
