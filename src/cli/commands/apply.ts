import { readFile } from "node:fs/promises";
import { GetCommand, UpdateCommand, type DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { Document, isMap, isNode, isScalar, LineCounter, parseAllDocuments } from "yaml";
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

Each record is validated as the controller validates it, and strictly: it
may hold only the record's attributes (tenantId, tier, tenantName, email,
tenantRegistrationId, sbtaws_active, suspended, apps), so a misspelt one is an
error naming its line and the attribute meant, not an attribute silently
ignored. If any record is invalid, the errors are printed and nothing is
written.

Like kubectl apply, it changes only what the file says: the attributes in the
file replace the stored ones, and an attribute is removed only if the last
apply set it and the file no longer has it (the record's tenantctlApplied lists
them). What SBT wrote (email, tenantRegistrationId, sbtaws_active...) and the
controller's status are kept. The "status" and "tenantctlApplied" keys that
\`tenantctl get -o yaml\` shows are ignored in a file.

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
    const config = await loadClientConfig(io.env);

    let text: string;
    try {
      text = flags.filename === "-" ? await readAll(io.stdin) : await readFile(flags.filename, "utf8");
    } catch (err) {
      return fail(io, "apply", `cannot read ${flags.filename}: ${err instanceof Error ? err.message : String(err)}`);
    }
    const source = flags.filename === "-" ? "standard input" : flags.filename;
    const loaded = parseRecords(text);
    if (!loaded.ok) return fail(io, "apply", `${source}: ${loaded.message}`);
    const checked = checkRecords(loaded.records, loaded.locate);
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

/** Line and column (1-based) of a place in the file. */
export interface FilePosition {
  readonly line: number;
  readonly col: number;
}

/** Where an attribute of a record is in the file: its key's position, else its record's; undefined when unknown. */
export type Locate = (record: number, path: readonly (string | number)[]) => FilePosition | undefined;

/** YAML is a superset of JSON, so one parser reads both; a list or a multi-document stream gives several records. */
export function parseRecords(text: string): { ok: true; records: unknown[]; locate: Locate } | { ok: false; message: string } {
  const records: unknown[] = [];
  // Per record: its document and its path in it, to find a field's line for an error.
  const origins: { doc: Document.Parsed; base: number[] }[] = [];
  const lineCounter = new LineCounter();
  for (const doc of parseAllDocuments(text, { lineCounter })) {
    if ("errors" in doc && doc.errors.length > 0) {
      const first = doc.errors[0];
      const pos = first?.linePos?.[0];
      return {
        ok: false,
        message: `not valid JSON or YAML${pos ? ` (line ${pos.line}, column ${pos.col})` : ""}: ${first?.message.split("\n")[0] ?? ""}`,
      };
    }
    if (!(doc instanceof Document)) continue;
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) continue; // an empty document, e.g. after a trailing ---
    if (Array.isArray(value)) {
      (value as unknown[]).forEach((v, i) => {
        records.push(v);
        origins.push({ doc, base: [i] });
      });
    } else {
      records.push(value);
      origins.push({ doc, base: [] });
    }
  }
  const locate: Locate = (record, path) => {
    const origin = origins[record];
    if (origin === undefined) return undefined;
    // The deepest key of the path that is in the file: a missing field is reported at its parent.
    for (let depth = path.length; depth >= 0; depth--) {
      const offset = keyOffset(origin.doc, origin.base, path.slice(0, depth));
      if (offset !== undefined) return lineCounter.linePos(offset);
    }
    return undefined;
  };
  return { ok: true, records, locate };
}

/** Offset of the key naming `path` in the record at `base` (the record's own node for an empty path). */
function keyOffset(doc: Document.Parsed, base: readonly number[], path: readonly (string | number)[]): number | undefined {
  if (path.length === 0) {
    const node: unknown = base.length === 0 ? doc.contents : doc.getIn(base, true);
    return isNode(node) ? node.range?.[0] : undefined;
  }
  const parent: unknown = path.length === 1 && base.length === 0 ? doc.contents : doc.getIn([...base, ...path.slice(0, -1)], true);
  if (!isMap(parent)) return undefined;
  const key = path[path.length - 1];
  const pair = parent.items.find((p) => isScalar(p.key) && String(p.key.value) === String(key));
  return isScalar(pair?.key) ? pair.key.range?.[0] : undefined;
}

/**
 * Validates every record first (the whole file is all or nothing) with the
 * controller's schema made strict (an unknown field is a typo, reported with
 * a suggestion), and finds duplicate ids. One problem per line, with where it
 * is in the file when `locate` knows.
 */
export function checkRecords(raw: readonly unknown[], locate?: Locate): { records: Item[]; problems: string[] } {
  const problems: string[] = [];
  const records: Item[] = [];
  const seen = new Map<string, number>();
  raw.forEach((value, i) => {
    const label = `record ${i + 1}`;
    const at = (path: readonly (string | number)[]) => {
      const pos = locate?.(i, path);
      return pos === undefined ? "" : ` line ${pos.line}`;
    };
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      problems.push(`${label}${at([])}: must be a mapping of attributes (tenantId, tier, tenantName, ...)`);
      return;
    }
    const item = Object.fromEntries(Object.entries(value as Item).filter(([k]) => !(IGNORED_IN_FILE as readonly string[]).includes(k)));
    const v = validateRecord(item, { strict: true });
    const id = typeof item["tenantId"] === "string" ? item["tenantId"] : undefined;
    const named = id !== undefined ? `${label} (tenant ${id})` : label;
    if (!v.ok) {
      for (const issue of v.issues) problems.push(`${named}${at(issue.path)}: ${issue.message}`);
      return;
    }
    const previous = seen.get(v.spec.tenantId);
    if (previous !== undefined) {
      problems.push(`${named}${at(["tenantId"])}: duplicate tenantId, also in record ${previous}`);
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

/**
 * Attributes a record file may carry besides the record's own, and ignores:
 * what `tenantctl get -o yaml` shows and apply does not write, so a record
 * read back can be edited and applied again.
 */
const IGNORED_IN_FILE = ["status", LAST_APPLIED] as const;

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
