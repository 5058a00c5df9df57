import type { Logger } from "pino";
import { asRecord, asRecords, okJson, str, type Json } from "./json.js";
import { DYNAMODB_TARGET } from "./dynamodb-serializer.js";
import { forward, forwardOwn, withBody, type AwsRequest, type HttpAnswer, type Upstream } from "./proxy.js";

/**
 * TransactWriteItems without moto's cost. Before each transaction moto
 * deep-copies every table it names, items and stream records included, to
 * restore them if it cancels; the stream only grows, so a transaction on the
 * tenants table got slower with every status write (5 ms on a fresh table,
 * about 150-300 ms once its stream held 5,000 records) and, serialized, held
 * up every lease renewal behind it. DynamoDB's transactions cost the same
 * whatever the table holds.
 *
 * So the transaction is rehearsed: the items it names are copied into a
 * scratch table per table (same key schema, no stream), moto runs the
 * transaction there unchanged but for the table names, and only if it
 * commits are the items it wrote copied back to the real tables, one
 * PutItem or DeleteItem each. moto still evaluates every condition and
 * update expression and gives every error and cancellation reason; the
 * stream gets one record per item written, as from a transaction. The caller
 * must hold writes off meanwhile (DynamoDbHandler runs this alone), or the
 * copies could go stale. A request this cannot read (a table named by ARN, a
 * key it cannot find, a table moto does not know) goes to moto as it came,
 * and moto answers it with DynamoDB's error or its own slow transaction.
 */
export class TransactionRehearsal {
  readonly #moto: Upstream;
  readonly #log: Logger | undefined;
  /** Per real table: its key attributes, once its scratch table exists. */
  readonly #scratch = new Map<string, readonly string[]>();
  #rehearsed = 0;

  constructor(moto: Upstream, log: Logger | undefined) {
    this.#moto = moto;
    this.#log = log;
  }

  /** Transactions rehearsed on scratch tables (the rest went to moto as they came). */
  get rehearsed(): number {
    return this.#rehearsed;
  }

  /** A table was created or deleted: its scratch table may no longer match, so it is made again on next use. */
  async forget(call: AwsRequest, table: string): Promise<void> {
    if (!this.#scratch.delete(table)) return;
    await this.#ask(call, "DeleteTable", { TableName: scratchName(table) });
  }

  /** moto was reset: no scratch table is left. */
  reset(): void {
    this.#scratch.clear();
  }

  async run(call: AwsRequest, input: Json | undefined): Promise<HttpAnswer> {
    const plan = input === undefined ? undefined : readTransaction(input);
    if (plan === undefined) return forward(this.#moto, call);
    const keyNames = new Map<string, readonly string[]>();
    for (const table of plan.tables) {
      const names = await this.#scratchFor(call, table);
      if (names === undefined) return forward(this.#moto, call);
      keyNames.set(table, names);
    }
    const targets = plan.targets(keyNames);
    if (targets === undefined) return forward(this.#moto, call);

    try {
      try {
        for (const t of targets) {
          const before = await this.#getItem(call, t.table, t.key);
          if (before !== undefined) await this.#must(call, "PutItem", { TableName: scratchName(t.table), Item: before });
        }
      } catch (err) {
        // Nothing is written yet: a scratch table lost under us (moto reset behind our back) is made again next time.
        this.#log?.warn({ err, tables: plan.tables }, "could not rehearse a transaction; moto runs it");
        for (const table of plan.tables) this.#scratch.delete(table);
        return await forward(this.#moto, call);
      }
      this.#rehearsed += 1;
      const answer = await forward(this.#moto, { ...call, body: Buffer.from(JSON.stringify(plan.renamed)) });
      if (answer.status !== 200) return renameBack(answer, plan.tables);
      for (const t of targets.filter((x) => x.writes)) {
        const after = await this.#getItem(call, scratchName(t.table), t.key);
        if (after !== undefined) await this.#must(call, "PutItem", { TableName: t.table, Item: after });
        else await this.#must(call, "DeleteItem", { TableName: t.table, Key: t.key });
      }
      return renameBack(answer, plan.tables);
    } finally {
      await this.#clear(call, targets);
    }
  }

  /** The table's key attribute names, its scratch table made if need be; undefined when moto does not know the table. */
  async #scratchFor(call: AwsRequest, table: string): Promise<readonly string[] | undefined> {
    const known = this.#scratch.get(table);
    if (known !== undefined) return known;
    if (scratchName(table).length > MAX_TABLE_NAME) return undefined;
    const described = asRecord(okJson(await this.#ask(call, "DescribeTable", { TableName: table }))?.["Table"]);
    const keySchema = asRecords(described?.["KeySchema"]);
    const names = keySchema.flatMap((k) => (typeof k["AttributeName"] === "string" ? [k["AttributeName"]] : []));
    if (names.length === 0) return undefined;
    const definitions = asRecords(described?.["AttributeDefinitions"]).filter((d) => names.includes(String(d["AttributeName"])));
    const scratch = scratchName(table);
    await this.#ask(call, "DeleteTable", { TableName: scratch }); // one left by an earlier table of this name
    await this.#must(call, "CreateTable", {
      TableName: scratch,
      KeySchema: keySchema,
      AttributeDefinitions: definitions,
      BillingMode: "PAY_PER_REQUEST",
    });
    this.#scratch.set(table, names);
    this.#log?.debug({ table, scratch }, "scratch table made for rehearsed transactions");
    return names;
  }

  async #getItem(call: AwsRequest, table: string, key: Json): Promise<Json | undefined> {
    const answer = await this.#must(call, "GetItem", { TableName: table, Key: key, ConsistentRead: true });
    return asRecord(okJson(answer)?.["Item"]);
  }

  /** Leaves the scratch tables empty; a scratch table that cannot be emptied is dropped and made again. */
  async #clear(call: AwsRequest, targets: readonly Target[]): Promise<void> {
    for (const t of targets) {
      const answer = await this.#ask(call, "DeleteItem", { TableName: scratchName(t.table), Key: t.key }).catch(() => undefined);
      if (answer?.status !== 200) await this.forget(call, t.table).catch(() => undefined);
    }
  }

  /** A call of ours that must succeed: a refusal means moto lost a table under us, which the caller hears as a 500. */
  async #must(call: AwsRequest, action: string, body: Json): Promise<HttpAnswer> {
    const answer = await this.#ask(call, action, body);
    if (answer.status !== 200) {
      throw new Error(`rehearsing a transaction: moto refused ${action} on ${String(body["TableName"])}: ${answer.body.toString("utf8")}`);
    }
    return answer;
  }

  #ask(call: AwsRequest, action: string, body: Json): Promise<HttpAnswer> {
    return forwardOwn(this.#moto, call, DYNAMODB_TARGET, action, body);
  }
}

/** An item a transaction names: where, its key, and whether it writes it (a ConditionCheck does not). */
interface Target {
  readonly table: string;
  readonly key: Json;
  readonly writes: boolean;
}

interface TransactionPlan {
  readonly tables: readonly string[];
  /** The request with every table name replaced by its scratch table's. */
  readonly renamed: Json;
  /** Each distinct item named, given the tables' key attributes; undefined when a key cannot be found. */
  targets(keyNames: ReadonlyMap<string, readonly string[]>): readonly Target[] | undefined;
}

const OPERATIONS = ["ConditionCheck", "Put", "Delete", "Update"] as const;

/** Reads a TransactWriteItems request; undefined when it is not one this can rehearse. */
export function readTransaction(input: Json): TransactionPlan | undefined {
  const items = input["TransactItems"];
  if (!Array.isArray(items) || items.length === 0 || items.length > 100) return undefined;
  const ops: { kind: (typeof OPERATIONS)[number]; op: Json }[] = [];
  for (const item of items) {
    const entries = Object.entries(asRecord(item) ?? {});
    const [entry] = entries;
    if (entries.length !== 1 || entry === undefined) return undefined;
    const kind = OPERATIONS.find((k) => k === entry[0]);
    const op = asRecord(entry[1]);
    const table = str(op?.["TableName"]);
    if (kind === undefined || op === undefined || table === undefined || table.startsWith("arn:")) return undefined;
    ops.push({ kind, op });
  }
  const tables = [...new Set(ops.map((o) => String(o.op["TableName"])))];
  const renamed: Json = {
    ...input,
    TransactItems: ops.map(({ kind, op }) => ({ [kind]: { ...op, TableName: scratchName(String(op["TableName"])) } })),
  };
  return {
    tables,
    renamed,
    targets(keyNames) {
      const byItem = new Map<string, Target>();
      for (const { kind, op } of ops) {
        const table = String(op["TableName"]);
        const names = keyNames.get(table);
        const source = asRecord(kind === "Put" ? op["Item"] : op["Key"]);
        if (names === undefined || source === undefined) return undefined;
        const key: Json = {};
        for (const name of names) {
          if (source[name] === undefined) return undefined;
          key[name] = source[name];
        }
        // Two operations on one item: moto refuses the transaction, which the rehearsal passes on.
        const id = `${table}\u0000${JSON.stringify(names.map((n) => key[n]))}`;
        const writes = kind !== "ConditionCheck" || byItem.get(id)?.writes === true;
        byItem.set(id, { table, key, writes });
      }
      return [...byItem.values()];
    },
  };
}

const SCRATCH_SUFFIX = ".localcloud-transaction";
const MAX_TABLE_NAME = 255;

export function scratchName(table: string): string {
  return `${table}${SCRATCH_SUFFIX}`;
}

export function isScratchTable(name: string): boolean {
  return name.endsWith(SCRATCH_SUFFIX);
}

/** moto's answer about the scratch tables, told about the real ones. */
function renameBack(answer: HttpAnswer, tables: readonly string[]): HttpAnswer {
  const text = answer.body.toString("utf8");
  let renamed = text;
  for (const table of tables) renamed = renamed.split(scratchName(table)).join(table);
  return renamed === text ? answer : withBody(answer, Buffer.from(renamed));
}
