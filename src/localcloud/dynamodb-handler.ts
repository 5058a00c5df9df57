import type { Logger } from "pino";
import { splitBatchWrite, withUnprocessed } from "./dynamodb-requests.js";
import { FifoMutex, mustSerialize, ReadWriteGate } from "./dynamodb-serializer.js";
import { isScratchTable, TransactionRehearsal } from "./dynamodb-transactions.js";
import type { FaultHit } from "./faults.js";
import { okJson, str, type Json } from "./json.js";
import { awsError, forward, withJsonBody, type AwsRequest, type HttpAnswer, type Upstream } from "./proxy.js";

/** The unprocessed share of a fault rule that throttles a table. */
export type Unprocessed = FaultHit["unprocessed"];

/**
 * DynamoDB's table and item API on its way to moto: writes one at a time
 * (dynamodb-serializer.ts), reads concurrently, transactions rehearsed on
 * scratch tables (dynamodb-transactions.ts) with nothing else under way, and
 * a table under an `unprocessedFraction` fault answering BatchWriteItem as a
 * throttled table does.
 */
export class DynamoDbHandler {
  readonly #moto: Upstream;
  readonly #log: Logger | undefined;
  readonly #writes = new FifoMutex();
  readonly #gate: ReadWriteGate;
  readonly #transactions: TransactionRehearsal;
  #serialized = 0;

  /** @param gate shared with the Streams reads, which must not see a transaction in flight */
  constructor(moto: Upstream, log: Logger | undefined, gate = new ReadWriteGate()) {
    this.#moto = moto;
    this.#log = log;
    this.#gate = gate;
    this.#transactions = new TransactionRehearsal(moto, log);
  }

  /** moto was reset: the scratch tables went with everything else. */
  motoReset(): void {
    this.#transactions.reset();
  }

  /** TransactWriteItems rehearsed on scratch tables rather than handed to moto's own (slow) transactions. */
  get rehearsedTransactions(): number {
    return this.#transactions.rehearsed;
  }

  /** Calls that went to moto one at a time since the last resetCount(). */
  get serializedCalls(): number {
    return this.#serialized;
  }

  resetCount(): void {
    this.#serialized = 0;
  }

  handle(call: AwsRequest, input: Json | undefined, unprocessed: Unprocessed): Promise<HttpAnswer> {
    if (!mustSerialize(call.action)) {
      // Shared with the stream reads: a transaction is applied item by item, and no read may see it half done.
      const read = () => forward(this.#moto, call);
      return call.action === "ListTables" ? this.#gate.shared(() => this.#listTables(read)) : this.#gate.shared(read);
    }
    this.#serialized += 1;
    if (call.action === "TransactWriteItems") {
      return this.#writes.run(() => this.#gate.exclusive(() => this.#transactions.run(call, input)));
    }
    return this.#writes.run(async () => {
      const answer =
        unprocessed !== undefined && call.action === "BatchWriteItem" && input !== undefined
          ? await this.#throttledBatchWrite(call, input, unprocessed)
          : await forward(this.#moto, call);
      const table = str(input?.["TableName"]);
      if ((call.action === "CreateTable" || call.action === "DeleteTable") && table !== undefined) {
        await this.#transactions.forget(call, table);
      }
      return answer;
    });
  }

  /** The scratch tables are the local cloud's own: a client listing tables does not see them. */
  async #listTables(read: () => Promise<HttpAnswer>): Promise<HttpAnswer> {
    const answer = await read();
    const body = okJson(answer);
    const names = body?.["TableNames"];
    if (body === undefined || !Array.isArray(names)) return answer;
    const kept = names.filter((n) => typeof n !== "string" || !isScratchTable(n));
    if (kept.length === names.length) return answer;
    // LastEvaluatedTableName may name a scratch table; it still pages on from there.
    return withJsonBody(answer, { ...body, TableNames: kept });
  }

  /** A throttled table writes part of a batch and hands the rest back; with nothing written it refuses the batch. */
  async #throttledBatchWrite(call: AwsRequest, input: Json, unprocessed: NonNullable<Unprocessed>): Promise<HttpAnswer> {
    const split = splitBatchWrite(
      input,
      unprocessed.fraction,
      (table) => unprocessed.resource === undefined || table === unprocessed.resource,
    );
    if (split.forward === undefined) {
      return awsError(
        call,
        "ProvisionedThroughputExceededException",
        "The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API.",
      );
    }
    if (Object.keys(split.unprocessed).length === 0) return forward(this.#moto, call);
    this.#log?.debug(
      { unprocessed: Object.fromEntries(Object.entries(split.unprocessed).map(([t, w]) => [t, w.length])) },
      "batch write partly throttled",
    );
    const answer = await forward(this.#moto, { ...call, body: Buffer.from(JSON.stringify(split.forward)) });
    const parsed = okJson(answer);
    return parsed === undefined ? answer : withJsonBody(answer, withUnprocessed(parsed, split.unprocessed));
  }
}
