import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { BatchGetCommand, DynamoDBDocumentClient, GetCommand, PutCommand } from "@aws-sdk/lib-dynamodb";
import { z } from "zod";
import { CatalogueError, loadCatalogue, type Catalogue } from "../apps/catalogue.js";
import type { CatalogueRead, Fence, RolloutReport, RolloutStorePort } from "../ports.js";

export type { CatalogueRead };
import { catalogueHash, ROLLOUT_STATES, type Rollout } from "../rollouts/model.js";
import { errorName, wrapAwsError } from "./aws-errors.js";

/**
 * The app catalogue and the fleet rollout as items of the operator table
 * (partition key `pk`), docs/design.md "Contract: fleet rollouts":
 *
 *   pk = "catalogue#current"  apps (M: the catalogue's apps, as in CATALOGUE_FILE), revision (N), updatedAt, updatedBy
 *   pk = "rollout#current"    the rollout (src/rollouts/model.ts), version (N)
 *
 * The catalogue item is plain data on purpose: `tenantctl catalogue set`
 * writes it, and so may any DynamoDB write (an UpdateItem of
 * apps.orders.version). Whatever wrote it, it is validated on read, and an
 * invalid one changes nothing. Every write of the rollout item is
 * conditional on the version it read, because the controller and
 * `tenantctl rollout pause|resume|abort` both write it.
 */
export const CATALOGUE_KEY = "catalogue#current";
export const ROLLOUT_KEY = "rollout#current";
const REPORT_PREFIX = "rollout-report#";
const reportSchema = z.object({
  pk: z.string(),
  at: z.number(),
  hash: z.string(),
  outcome: z.enum(["healthy", "waiting", "notApplicable"]),
});

export class RolloutConflictError extends Error {
  constructor(what: string) {
    super(`${what}: the item changed since it was read; read it again and retry`);
    this.name = "RolloutConflictError";
  }
}

const waveSchema = z.object({
  units: z.array(z.string()),
  startedAt: z.string().optional(),
  deployedAt: z.string().optional(),
  checkedAt: z.string().optional(),
  bakedAt: z.string().optional(),
});

const rolloutSchema = z.object({
  id: z.string().min(1),
  version: z.number().int().min(0),
  state: z.enum(ROLLOUT_STATES),
  reason: z.string(),
  aborted: z.boolean().optional(),
  from: z.string().min(1),
  to: z.string().min(1),
  catalogues: z.record(z.string(), z.unknown()),
  baseline: z.record(z.string(), z.string()).default({}),
  waves: z.array(waveSchema).default([]),
  done: z.record(z.string(), z.object({ at: z.string(), skipped: z.boolean().optional() })).default({}),
  failed: z.record(z.string(), z.object({ at: z.string(), reason: z.string(), announced: z.boolean().optional() })).default({}),
  forgiven: z.number().int().min(0).default(0),
  unaffected: z.number().int().min(0).default(0),
  createdAt: z.string(),
  updatedAt: z.string(),
});

export class DynamoRolloutStore implements RolloutStorePort {
  readonly #doc: DynamoDBDocumentClient;
  readonly #table: string;

  /** @param table the operator table (config LEASE_TABLE). */
  constructor(client: DynamoDBClient, table: string) {
    this.#doc = DynamoDBDocumentClient.from(client, {
      marshallOptions: { removeUndefinedValues: true, convertEmptyValues: false },
      unmarshallOptions: { wrapNumbers: false },
    });
    this.#table = table;
  }

  get table(): string {
    return this.#table;
  }

  async readCatalogue(): Promise<CatalogueRead> {
    const item = await this.#get(CATALOGUE_KEY, "reading the app catalogue");
    if (item === undefined) return { kind: "missing" };
    const updatedAt = typeof item["updatedAt"] === "string" ? item["updatedAt"] : undefined;
    const updatedBy = typeof item["updatedBy"] === "string" ? item["updatedBy"] : undefined;
    try {
      const catalogue = loadCatalogue({ apps: item["apps"] });
      const revision = typeof item["revision"] === "number" ? item["revision"] : 0;
      return {
        kind: "valid",
        catalogue,
        hash: catalogueHash(catalogue),
        revision,
        ...(updatedAt !== undefined ? { updatedAt } : {}),
        ...(updatedBy !== undefined ? { updatedBy } : {}),
      };
    } catch (err) {
      const problem = err instanceof CatalogueError ? err.problems.join("; ") : String(err);
      return { kind: "invalid", problem, ...(updatedAt !== undefined ? { updatedAt } : {}) };
    }
  }

  /** Writes the catalogue unless one exists (the first controller seeds it). True when this call wrote it. */
  async seedCatalogue(catalogue: Catalogue, by: string, fence: Fence): Promise<boolean> {
    fence.assertHeld();
    try {
      await this.#doc.send(
        new PutCommand({
          TableName: this.#table,
          Item: catalogueItem(catalogue, 1, by),
          ConditionExpression: "attribute_not_exists(pk)",
        }),
      );
      return true;
    } catch (err) {
      if (errorName(err) === "ConditionalCheckFailedException") return false;
      throw wrapAwsError(err, `seeding the app catalogue in ${this.#table}`);
    }
  }

  /**
   * Replaces the catalogue, on the condition that it is still at the
   * revision read (`undefined`: that there is none); throws RolloutConflictError otherwise.
   */
  async writeCatalogue(catalogue: Catalogue, readRevision: number | undefined, by: string): Promise<void> {
    try {
      await this.#doc.send(
        new PutCommand({
          TableName: this.#table,
          Item: catalogueItem(catalogue, (readRevision ?? 0) + 1, by),
          ...(readRevision === undefined
            ? { ConditionExpression: "attribute_not_exists(pk)" }
            : readRevision === 0
              ? { ConditionExpression: "attribute_exists(pk) AND attribute_not_exists(revision)" }
              : { ConditionExpression: "revision = :r", ExpressionAttributeValues: { ":r": readRevision } }),
        }),
      );
    } catch (err) {
      if (errorName(err) === "ConditionalCheckFailedException") throw new RolloutConflictError("writing the app catalogue");
      throw wrapAwsError(err, `writing the app catalogue in ${this.#table}`);
    }
  }

  /** The rollout item, validated; throws on an item that does not parse (it is ours: a person must look). */
  async readRollout(): Promise<Rollout | undefined> {
    const item = await this.#get(ROLLOUT_KEY, "reading the fleet rollout");
    if (item === undefined) return undefined;
    const parsed = rolloutSchema.safeParse(item);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new Error(
        `the rollout item ${ROLLOUT_KEY} in ${this.#table} is malformed at ${issue?.path.join(".") ?? "?"}: ${issue?.message ?? "invalid"}`,
      );
    }
    const catalogues: Record<string, Catalogue> = {};
    for (const [hash, raw] of Object.entries(parsed.data.catalogues)) catalogues[hash] = loadCatalogue(raw);
    return { ...parsed.data, catalogues } as Rollout;
  }

  /**
   * Writes the rollout if the stored one is still at `readVersion`
   * (`undefined`: that none exists). False when it is not: someone else wrote it.
   */
  async writeRollout(rollout: Rollout, readVersion: number | undefined, fence?: Fence): Promise<boolean> {
    fence?.assertHeld();
    try {
      await this.#doc.send(
        new PutCommand({
          TableName: this.#table,
          Item: { pk: ROLLOUT_KEY, ...rollout },
          ...(readVersion === undefined
            ? { ConditionExpression: "attribute_not_exists(pk)" }
            : { ConditionExpression: "version = :v", ExpressionAttributeValues: { ":v": readVersion } }),
        }),
      );
      return true;
    } catch (err) {
      if (errorName(err) === "ConditionalCheckFailedException") return false;
      throw wrapAwsError(err, `writing the fleet rollout to ${this.#table}`);
    }
  }

  /** `rollout-report#<unit>`: the unit's latest report, written by whichever controller owns the unit. */
  async putReport(unit: string, report: RolloutReport): Promise<void> {
    try {
      await this.#doc.send(
        new PutCommand({
          TableName: this.#table,
          Item: { pk: `${REPORT_PREFIX}${unit}`, at: report.at, hash: report.hash, outcome: report.outcome },
          ConditionExpression: "attribute_not_exists(pk) OR #at < :at",
          ExpressionAttributeNames: { "#at": "at" },
          ExpressionAttributeValues: { ":at": report.at },
        }),
      );
    } catch (err) {
      if (errorName(err) === "ConditionalCheckFailedException") return; // a newer one is there
      throw wrapAwsError(err, `writing the rollout report of ${unit} to ${this.#table}`);
    }
  }

  async readReports(units: readonly string[]): Promise<ReadonlyMap<string, RolloutReport>> {
    const out = new Map<string, RolloutReport>();
    for (let i = 0; i < units.length; i += 100) {
      let keys: Record<string, unknown>[] = units.slice(i, i + 100).map((u) => ({ pk: `${REPORT_PREFIX}${u}` }));
      for (let attempt = 0; keys.length > 0 && attempt < 5; attempt++) {
        let res;
        try {
          res = await this.#doc.send(new BatchGetCommand({ RequestItems: { [this.#table]: { Keys: keys, ConsistentRead: true } } }));
        } catch (err) {
          throw wrapAwsError(err, `reading rollout reports from ${this.#table}`);
        }
        for (const item of res.Responses?.[this.#table] ?? []) {
          const parsed = reportSchema.safeParse(item);
          if (parsed.success) out.set(parsed.data.pk.slice(REPORT_PREFIX.length), parsed.data);
        }
        keys = (res.UnprocessedKeys?.[this.#table]?.Keys ?? []) as Record<string, unknown>[];
      }
    }
    return out;
  }

  async #get(pk: string, what: string): Promise<Record<string, unknown> | undefined> {
    try {
      const res = await this.#doc.send(new GetCommand({ TableName: this.#table, Key: { pk }, ConsistentRead: true }));
      return res.Item;
    } catch (err) {
      throw wrapAwsError(err, `${what} (${this.#table})`);
    }
  }
}

function catalogueItem(catalogue: Catalogue, revision: number, by: string): Record<string, unknown> {
  return { pk: CATALOGUE_KEY, apps: catalogue.apps, revision, updatedAt: new Date().toISOString(), updatedBy: by };
}
