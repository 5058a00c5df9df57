import { GetCommand, type DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { z } from "zod";
import { hashSpec, tenantIdSchema, validateRecord } from "../../tenants/record.js";
import type { Command } from "../command.js";
import { UsageError } from "../command.js";
import { createCliClients, explainAwsError, loadClientConfig, outputSchema, parseCommandArgs } from "../client-config.js";
import { fail, formatAge, oneLine, renderData, renderTable, terminalWidth } from "../format.js";

/** `tenantctl get ID`: one tenant's spec and the status the controller wrote. */
const usage = `Usage: tenantctl get ID [-o text|json|yaml]

Shows a tenant's record: its spec (tier, name, apps...) and the status the
controller wrote (phase, message, conditions, owned ARNs, the spec hash it
last acted on and when). Exits 1 when the tenant does not exist.

Options:
  -o, --output FORMAT   text (default), json or yaml (the item as stored)`;

const options = { output: { type: "string", short: "o" } } as const;
const flagsSchema = z.object({ output: outputSchema.optional() });

type Item = Record<string, unknown>;

export const getCommand: Command = {
  name: "get",
  summary: "Show one tenant's spec and status",
  usage,
  async run(args, io) {
    const { flags, positionals } = parseCommandArgs(args, options, flagsSchema, { min: 1, max: 1, names: "tenant ID" });
    const tenantId = checkTenantId(positionals[0]);
    const config = await loadClientConfig(io.env);
    const clients = createCliClients(config, io.env);
    let item: Item | undefined;
    try {
      item = await readTenant(clients.documents, config.tenantsTable, tenantId);
    } catch (err) {
      return fail(io, "get", explainAwsError(err, config, `reading tenant/${tenantId}`));
    } finally {
      clients.destroy();
    }
    if (item === undefined) return fail(io, "get", `tenant/${tenantId} not found in table ${config.tenantsTable}`);
    const output = flags.output ?? "text";
    io.stdout.write(output === "text" ? describeTenant(item, new Date(), terminalWidth(io)) : renderData(item, output));
    return 0;
  },
};

/** The id argument, checked with the record schema's own rule so a typo is a usage error, not a "not found". */
export function checkTenantId(value: string | undefined): string {
  const parsed = tenantIdSchema.safeParse(value);
  if (!parsed.success) throw new UsageError(`invalid tenant ID "${value ?? ""}": ${parsed.error.issues[0]?.message ?? "invalid"}`);
  return parsed.data;
}

/** Strongly consistent, so a `get` right after `apply` sees the write. */
export async function readTenant(documents: DynamoDBDocumentClient, table: string, tenantId: string): Promise<Item | undefined> {
  return (await documents.send(new GetCommand({ TableName: table, Key: { tenantId }, ConsistentRead: true }))).Item;
}

const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);
/** A stored value as text: scalars as they are, anything else (a hand-edited item) as JSON. */
const text = (v: unknown): string =>
  typeof v === "string" || typeof v === "number" || typeof v === "boolean" ? String(v) : (JSON.stringify(v) ?? "-");
const obj = (v: unknown): Item | undefined => (v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Item) : undefined);

export interface DescribeOptions {
  /**
   * `tenantctl describe`: also how long the tenant has been in its phase
   * (status.phaseSince), its last error with retries and next attempt
   * (status.lastError), and its recent events (status.recentEvents).
   */
  readonly detail?: boolean;
}

/** A person's view of a tenant record: aligned fields, then the status, conditions as a table. */
export function describeTenant(item: Readonly<Item>, now: Date, width?: number, options: DescribeOptions = {}): string {
  const lines: string[] = [];
  const field = (label: string, value: string) => lines.push(`${`${label}:`.padEnd(22)}${value}`);
  const validation = validateRecord(item);
  const specHash = hashSpec(item);

  field("Tenant", str(item["tenantId"]) ?? "?");
  field("Name", str(item["tenantName"]) ?? "-");
  field("Tier", typeof item["tier"] === "string" ? item["tier"].toLowerCase() : "-");
  if (item["email"] !== undefined) field("Email", text(item["email"]));
  if (item["tenantRegistrationId"] !== undefined) field("Registration ID", text(item["tenantRegistrationId"]));
  field("Active", item["sbtaws_active"] === false ? "false (offboarding)" : "true");
  if (item["suspended"] === true) field("Suspended", "true (requests refused, services at 0)");
  field("Spec hash", specHash);
  if (!validation.ok) field("Spec INVALID", validation.message);
  const apps = obj(item["apps"]);
  if (apps !== undefined && Object.keys(apps).length > 0) {
    lines.push("Apps:");
    const rows = Object.entries(apps).map(([name, o]) => {
      const override = obj(o) ?? {};
      return [name, override["desiredCount"] === undefined ? "-" : text(override["desiredCount"]), str(override["version"]) ?? "-"];
    });
    lines.push(indent(renderTable(["APP", "DESIRED", "VERSION"], rows)));
  }

  const status = obj(item["status"]);
  lines.push("");
  if (status === undefined) {
    lines.push("Status:               none yet (the controller has not reconciled this tenant)");
    if (options.detail === true) lines.push("", "Events:               none");
    return `${lines.join("\n")}\n`;
  }
  lines.push("Status:");
  // An empty label continues the field above.
  const sfield = (label: string, value: string) => lines.push(`  ${(label === "" ? "" : `${label}:`).padEnd(20)}${value}`);
  const since = str(status["phaseSince"]);
  sfield(
    "Phase",
    `${str(status["phase"]) ?? "-"}${options.detail === true && since !== undefined ? ` (for ${formatAge(since, now)}, since ${since})` : ""}`,
  );
  sfield("Message", oneLine(str(status["message"]) ?? "-"));
  const lastError = obj(status["lastError"]);
  if (options.detail === true && lastError !== undefined) describeLastError(lastError, now, sfield);
  const observed = str(status["observedSpecHash"]);
  sfield(
    "Observed spec hash",
    observed === undefined
      ? "-"
      : observed === specHash
        ? `${observed} (current)`
        : `${observed} (stale: the controller has not acted on the current spec yet)`,
  );
  const at = str(status["lastReconciledAt"]);
  sfield("Last reconciled", at === undefined ? "-" : `${at} (${formatAge(at, now)} ago)`);
  const tables = obj(status["tables"]);
  if (tables !== undefined) sfield("Tables", `orders=${str(tables["orders"]) ?? "-"} products=${str(tables["products"]) ?? "-"}`);
  const migration = obj(status["migration"]);
  if (migration !== undefined) {
    const counts = obj(migration["counts"]);
    const copied = (app: string) => {
      const c = obj(counts?.[app]);
      return c === undefined
        ? "-"
        : `${text(c["copied"] ?? 0)} copied, ${text(c["applied"] ?? 0)} changes${c["verified"] !== undefined ? `, ${text(c["verified"])} verified` : ""}`;
    };
    sfield(
      "Tier move",
      `${str(migration["from"]) ?? "?"} -> ${str(migration["to"]) ?? "?"}, step ${str(migration["step"]) ?? "?"} (started ${formatAge(str(migration["startedAt"]), now)} ago)`,
    );
    lines.push(`    orders: ${copied("orders")}; products: ${copied("products")}`);
  }
  const route = obj(status["route"]);
  if (route !== undefined) {
    sfield("Listener rule", `${str(route["ruleArn"]) ?? "-"} (priority ${text(route["priority"] ?? "-")})`);
    // Which listener of the pool the tenant is placed on (docs/adr/0015-listener-pool.md).
    sfield("Listener", str(route["listenerArn"]) ?? "-");
  }
  const backup = obj(status["backup"]);
  if (backup !== undefined) {
    const counts = obj(backup["counts"]);
    sfield(
      "Backup",
      `${str(backup["location"]) ?? "-"} (orders ${text(counts?.["orders"] ?? "-")}, products ${text(counts?.["products"] ?? "-")}; restore with: tenantctl restore ${str(item["tenantId"]) ?? "ID"} --from ${str(backup["location"]) ?? "s3://..."})`,
    );
  }
  const arns: [string, unknown][] = [
    ["Cluster ARN", status["clusterArn"]],
    ["Stack ARN", status["stackArn"]],
    ["Service ARNs", status["serviceArns"]],
    ["Task definitions", status["taskDefinitionArns"]],
  ];
  for (const [label, value] of arns) {
    if (typeof value === "string") sfield(label, value);
    else if (Array.isArray(value) && value.length > 0) {
      lines.push(`  ${label}:`);
      for (const arn of value as unknown[]) lines.push(`    ${text(arn)}`);
    }
  }
  const conditions = Array.isArray(status["conditions"]) ? (status["conditions"] as unknown[]).map((c) => obj(c) ?? {}) : [];
  if (conditions.length > 0) {
    lines.push("  Conditions:");
    const rows = conditions.map((c) => [
      str(c["type"]) ?? "-",
      str(c["status"]) ?? "-",
      str(c["reason"]) ?? "-",
      formatAge(str(c["lastTransitionTime"]), now),
      str(c["message"]) ?? "",
    ]);
    lines.push(
      indent(
        renderTable(["TYPE", "STATUS", "REASON", "AGE", "MESSAGE"], rows, { width: width === undefined ? undefined : width - 4 }),
        "    ",
      ),
    );
  }
  if (options.detail === true) describeEvents(status["recentEvents"], now, width, lines);
  return `${lines.join("\n")}\n`;
}

/** The last failed reconcile: what, how it was classified, how many tries in a row, when the controller tries again. */
function describeLastError(e: Readonly<Item>, now: Date, sfield: (label: string, value: string) => void): void {
  const type = str(e["type"]);
  sfield("Last error", oneLine(`${type !== undefined && type !== "Error" ? `${type}: ` : ""}${str(e["message"]) ?? "-"}`));
  const at = str(e["at"]);
  const retries = typeof e["retries"] === "number" ? e["retries"] : undefined;
  const next = str(e["nextAttemptAt"]);
  const kind = str(e["kind"]);
  const parts = [
    kind === "terminal" ? "terminal (needs a fix; not retried on its own)" : (kind ?? "-"),
    retries === undefined ? undefined : `${retries} failed ${retries === 1 ? "try" : "tries"} in a row`,
    at === undefined ? undefined : `last ${formatAge(at, now)} ago`,
  ].filter((p) => p !== undefined);
  sfield("", parts.join(", "));
  if (next !== undefined) {
    const due = Date.parse(next) <= now.getTime();
    sfield("Next attempt", due ? `${next} (due now)` : `${next} (in ${formatAge(now.toISOString(), new Date(next))})`);
  }
}

/** Events, newest last, as kubectl describe shows them: age, type, reason. */
function describeEvents(value: unknown, now: Date, width: number | undefined, lines: string[]): void {
  const events = Array.isArray(value) ? (value as unknown[]).flatMap((e) => (obj(e) !== undefined ? [obj(e) as Item] : [])) : [];
  lines.push("");
  if (events.length === 0) {
    lines.push("Events:               none recorded");
    return;
  }
  lines.push("Events:");
  const rows = events.map((e) => [formatAge(str(e["at"]), now), str(e["detailType"]) ?? "-", str(e["reason"]) ?? ""]);
  lines.push(indent(renderTable(["AGE", "TYPE", "REASON"], rows, { width: width === undefined ? undefined : width - 2 })));
}

function indent(text: string, by = "  "): string {
  return text
    .split("\n")
    .map((l) => by + l)
    .join("\n");
}
