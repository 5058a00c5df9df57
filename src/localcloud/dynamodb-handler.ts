import type { Logger } from "pino";
import { splitBatchWrite, withUnprocessed } from "./dynamodb-requests.js";
import { FifoMutex, mustSerialize, ReadWriteGate } from "./dynamodb-serializer.js";
import type { FaultHit } from "./faults.js";
import { okJson, type Json } from "./json.js";
import { awsError, forward, withJsonBody, type AwsRequest, type HttpAnswer, type Upstream } from "./proxy.js";

/** The unprocessed share of a fault rule that throttles a table. */
export type Unprocessed = FaultHit["unprocessed"];

/**
 * DynamoDB's table and item API on its way to moto: writes one at a time
 * (dynamodb-serializer.ts), reads straight through, and a table under an
 * `unprocessedFraction` fault answering BatchWriteItem as a throttled table does.
 */
export class DynamoDbHandler {
  readonly #moto: Upstream;
  readonly #log: Logger | undefined;
  readonly #writes = new FifoMutex();
  readonly #gate: ReadWriteGate;
  #serialized = 0;

  /** @param gate shared with the Streams reads, which must not see a transaction in flight */
  constructor(moto: Upstream, log: Logger | undefined, gate = new ReadWriteGate()) {
    this.#moto = moto;
    this.#log = log;
    this.#gate = gate;
  }

  /** Calls that went to moto one at a time since the last resetCount(). */
  get serializedCalls(): number {
    return this.#serialized;
  }

  resetCount(): void {
    this.#serialized = 0;
  }

  handle(call: AwsRequest, input: Json | undefined, unprocessed: Unprocessed): Promise<HttpAnswer> {
    const run = () =>
      unprocessed !== undefined && call.action === "BatchWriteItem" && input !== undefined
        ? this.#throttledBatchWrite(call, input, unprocessed)
        : forward(this.#moto, call);
    if (!mustSerialize(call.action)) return run();
    this.#serialized += 1;
    // moto shows a transaction's stream records before it cancels it: no stream read may run meanwhile.
    if (call.action === "TransactWriteItems") return this.#writes.run(() => this.#gate.exclusive(run));
    return this.#writes.run(run);
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
