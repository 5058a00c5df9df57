import { readFile } from "node:fs/promises";
import { GetCommand, UpdateCommand, type DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { parseAllDocuments } from "yaml";
import { z } from "zod";
import { canonicalJson, validateRecord } from "../../tenants/record.js";
import type { Command, Io } from "../command.js";
import { createCliClients, explainAwsError, loadClientConfig, outputSchema, parseCommandArgs } from "../client-config.js";
import { fail, renderData } from "../format.js";

/**
 * `tenantctl apply -f FILE`: declare tenants. Every record is validated with
 * the controller's own schema before anything is written, so a file with one
 * bad record changes nothing. A write sets the file's attributes and removes
 * those the last apply set that the file no longer has, in one UpdateItem:
 * the controller's `status` and attributes others own (SBT's) are never touched.
 */
const usage = `Usage: tenantctl apply -f FILE [--dry-run] [-o text|json|yaml]

Creates or updates tenant records from FILE (JSON or YAML; one record, a list
of records, or several YAML documents). Use -f - to read standard input.

Each record is validated as the controller validates it (tenantId, tier,
tenantName, email, tenantRegistrationId, sbtaws_active, suspended, apps). If
any record is invalid, the errors are printed and nothing is written.

Like kubectl apply, it changes only what the file says: the attributes in the
file replace the stored ones, and an attribute is removed only if the last
apply set it and the file no longer has it (the record's tenantctlApplied lists
them). What SBT wrote (email, tenantRegistrationId, sbtaws_active...) and the
controller's status are kept. A "status" key in the file is ignored.

Options:
  -f, --filename FILE   file to apply, or - for standard input (required)
      --dry-run         validate and show what would change, write nothing
  -o, --output FORMAT   text (default), json or yaml

Prints one line per record: tenant/<id> created | configured | unchanged.`;

const options = {
  filename: { type: "string", short: "f" },
  "dry-run": { type: "boolean" },
  output: { type: "string", short: "o" },
} as const;

const flagsSchema = z.object({
  filename: z.string({ error: "is required (a file, or - for standard input)" }).min(1, "must not be empty"),
  "dry-run": z.boolean().optional(),
  output: outputSchema.optional(),
});

export type ApplyResult = "created" | "configured" | "unchanged";

export const applyCommand: Command = {
  name: "apply",
  summary: "Create or update tenants from a JSON or YAML file",
  usage,
  async run(args, io) {
    const { flags } = parseCommandArgs(args, options, flagsSchema, { min: 0, max: 0, names: "" });
    const config = loadClientConfig(io.env);

    let text: string;
    try {
      text = flags.filename === "-" ? await readAll(io.stdin) : await readFile(flags.filename, "utf8");
    } catch (err) {
      return fail(io, "apply", `cannot read ${flags.filename}: ${err instanceof Error ? err.message : String(err)}`);
    }
    const source = flags.filename === "-" ? "standard input" : flags.filename;
    const loaded = parseRecords(text);
    if (!loaded.ok) return fail(io, "apply", `${source}: ${loaded.message}`);
    const checked = checkRecords(loaded.records);
    if (checked.problems.length > 0) {
      io.stderr.write(`tenantctl apply: ${source}: ${checked.problems.length} invalid record(s); nothing was written\n`);
      for (const p of checked.problems) io.stderr.write(`  - ${p}\n`);
      return 1;
    }
    if (checked.records.length === 0) return fail(io, "apply", `${source}: no records found`);

    const clients = createCliClients(config, io.env);
    const results: { tenantId: string; result: ApplyResult }[] = [];
    try {
      for (const record of checked.records) {
        const tenantId = record["tenantId"] as string;
        let result: ApplyResult;
        try {
          result = await applyRecord(clients.documents, config.tenantsTable, record, flags["dry-run"] === true);
        } catch (err) {
          printResults(io, results, flags.output ?? "text", flags["dry-run"] === true);
          return fail(io, "apply", explainAwsError(err, config, `tenant/${tenantId}`));
        }
        results.push({ tenantId, result });
        if ((flags.output ?? "text") === "text") io.stdout.write(resultLine(tenantId, result, flags["dry-run"] === true));
      }
    } finally {
      clients.destroy();
    }
    if ((flags.output ?? "text") !== "text") printResults(io, results, flags.output ?? "text", flags["dry-run"] === true);
    return 0;
  },
};

function resultLine(tenantId: string, result: ApplyResult, dryRun: boolean): string {
  return `tenant/${tenantId} ${result}${dryRun ? " (dry run)" : ""}\n`;
}

function printResults(io: Io, results: readonly { tenantId: string; result: ApplyResult }[], output: string, dryRun: boolean): void {
  if (output === "json" || output === "yaml") io.stdout.write(renderData({ dryRun, results }, output));
}

type Item = Record<string, unknown>;

/** YAML is a superset of JSON, so one parser reads both; a list or a multi-document stream gives several records. */
export function parseRecords(text: string): { ok: true; records: unknown[] } | { ok: false; message: string } {
  const records: unknown[] = [];
  for (const doc of parseAllDocuments(text)) {
    if ("errors" in doc && doc.errors.length > 0) {
      const first = doc.errors[0];
      const pos = first?.linePos?.[0];
      return {
        ok: false,
        message: `not valid JSON or YAML${pos ? ` (line ${pos.line}, column ${pos.col})` : ""}: ${first?.message.split("\n")[0] ?? ""}`,
      };
    }
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) continue; // an empty document, e.g. after a trailing ---
    if (Array.isArray(value)) records.push(...(value as unknown[]));
    else records.push(value);
  }
  return { ok: true, records };
}

/** Validates every record first (the whole file is all or nothing), and finds duplicate ids. */
export function checkRecords(raw: readonly unknown[]): { records: Item[]; problems: string[] } {
  const problems: string[] = [];
  const records: Item[] = [];
  const seen = new Map<string, number>();
  raw.forEach((value, i) => {
    const label = `record ${i + 1}`;
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      problems.push(`${label}: must be a mapping of attributes (tenantId, tier, tenantName, ...)`);
      return;
    }
    const { status: _ignored, [LAST_APPLIED]: _marker, ...item } = value as Item;
    const v = validateRecord(item);
    const id = typeof item["tenantId"] === "string" ? item["tenantId"] : undefined;
    const named = id !== undefined ? `${label} (tenant ${id})` : label;
    if (!v.ok) {
      problems.push(`${named}: ${v.message}`);
      return;
    }
    const previous = seen.get(v.spec.tenantId);
    if (previous !== undefined) {
      problems.push(`${named}: duplicate tenantId, also in record ${previous}`);
      return;
    }
    seen.set(v.spec.tenantId, i + 1);
    records.push(item);
  });
  return { records, problems };
}

/**
 * The attribute naming what the last `tenantctl apply` set on a record, as
 * kubectl's last-applied annotation does. Only those attributes are removed
 * when a later file drops them: what SBT (or anyone else) wrote on the record
 * is never touched, so a minimal file cannot drop `sbtaws_active=false` and
 * re-activate an offboarded tenant.
 */
export const LAST_APPLIED = "tenantctlApplied";

/** The attributes a stored record's last apply set; none for a record apply never wrote. */
function lastApplied(stored: Readonly<Item> | undefined): string[] {
  const value = stored?.[LAST_APPLIED];
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : [];
}

/** Attributes of the file that apply sets (the key is in the Key). */
function appliedFields(desired: Readonly<Item>): string[] {
  return Object.keys(desired)
    .filter((k) => k !== "tenantId" && k !== LAST_APPLIED && desired[k] !== undefined)
    .sort();
}

/** True when writing `desired` would change no attribute the file sets and remove nothing the last apply set. */
export function sameAsStored(stored: Readonly<Item>, desired: Readonly<Item>): boolean {
  for (const [key, value] of Object.entries(desired)) {
    if (canonicalJson(stored[key]) !== canonicalJson(value)) return false;
  }
  return canonicalJson([...lastApplied(stored)].sort()) === canonicalJson(appliedFields(desired));
}

/**
 * One UpdateItem: SET what the file has, REMOVE what the last apply set and it lacks, guarded
 * by whether the item existed when read, so a concurrent create or delete is
 * noticed and the record is looked at again rather than misreported.
 */
async function applyRecord(
  documents: DynamoDBDocumentClient,
  table: string,
  record: Readonly<Item>,
  dryRun: boolean,
): Promise<ApplyResult> {
  const tenantId = record["tenantId"] as string;
  for (let attempt = 1; ; attempt++) {
    const stored = (await documents.send(new GetCommand({ TableName: table, Key: { tenantId }, ConsistentRead: true }))).Item;
    if (stored !== undefined && sameAsStored(stored, record)) return "unchanged";
    const result: ApplyResult = stored === undefined ? "created" : "configured";
    if (dryRun) return result;
    try {
      await documents.send(new UpdateCommand({ TableName: table, Key: { tenantId }, ...updateOf(record, stored) }));
      return result;
    } catch (err) {
      const raced = err instanceof Error && err.name === "ConditionalCheckFailedException";
      if (!raced || attempt >= 3) throw err;
    }
  }
}

function updateOf(record: Readonly<Item>, stored: Readonly<Item> | undefined) {
  const exists = stored !== undefined;
  const names: Record<string, string> = {};
  const values: Record<string, unknown> = {};
  const sets: string[] = [];
  const removes: string[] = [];
  let i = 0;
  for (const [key, value] of Object.entries(record)) {
    if (key === "tenantId" || value === undefined) continue;
    names[`#a${i}`] = key;
    values[`:v${i}`] = value;
    sets.push(`#a${i} = :v${i}`);
    i++;
  }
  names[`#a${i}`] = LAST_APPLIED;
  values[`:v${i}`] = appliedFields(record);
  sets.push(`#a${i} = :v${i}`);
  i++;
  // Only what the last apply set and this file drops; never the status.
  for (const field of lastApplied(stored)) {
    if (field === "tenantId" || field === "status" || record[field] !== undefined) continue;
    names[`#a${i}`] = field;
    removes.push(`#a${i}`);
    i++;
  }
  names["#id"] = "tenantId";
  const expression = [`SET ${sets.join(", ")}`, ...(removes.length > 0 ? [`REMOVE ${removes.join(", ")}`] : [])].join(" ");
  return {
    UpdateExpression: expression,
    ConditionExpression: exists ? "attribute_exists(#id)" : "attribute_not_exists(#id)",
    ExpressionAttributeNames: names,
    ExpressionAttributeValues: values,
  };
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks).toString("utf8");
}
