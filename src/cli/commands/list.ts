import { ScanCommand, type DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { z } from "zod";
import { sleep } from "../../providers/aws-errors.js";
import { canonicalJson } from "../../tenants/record.js";
import type { Command, Io } from "../command.js";
import {
  createCliClients,
  explainAwsError,
  interruptSignal,
  loadClientConfig,
  outputSchema,
  parseCommandArgs,
  secondsSchema,
  type OutputFormat,
} from "../client-config.js";
import { fail, formatAge, isTerminal, renderData, renderTable, terminalWidth } from "../format.js";

/** `tenantctl list`: every tenant and its phase, once or as a watch. */
const usage = `Usage: tenantctl list [-o text|json|yaml] [-w]

Lists every tenant: ID, NAME, TIER, PHASE, AGE and MESSAGE.
AGE is the time since the controller last wrote the tenant's status
(status.lastReconciledAt): the controller writes status only when something
in it changes, so AGE says how long the tenant has looked like this.
"-" when the controller has not reconciled the tenant yet.
MESSAGE is cut to the terminal's width ($COLUMNS when not a terminal;
whole when neither is known).

Options:
  -o, --output FORMAT   text (default), json or yaml (the items as stored)
  -w, --watch           poll every second and print again when a tenant
                        changes, until Ctrl-C`;

const POLL_MS = 1000;

const options = {
  output: { type: "string", short: "o" },
  watch: { type: "boolean", short: "w" },
  // Hidden: ends a watch after N seconds, for tests and scripts.
  "watch-seconds": { type: "string" },
} as const;

const flagsSchema = z.object({
  output: outputSchema.optional(),
  watch: z.boolean().optional(),
  "watch-seconds": secondsSchema.optional(),
});

type Item = Record<string, unknown>;

export const listCommand: Command = {
  name: "list",
  summary: "List tenants with their phase (-w to watch)",
  usage,
  async run(args, io) {
    const { flags } = parseCommandArgs(args, options, flagsSchema, { min: 0, max: 0, names: "" });
    const config = await loadClientConfig(io.env);
    const output = flags.output ?? "text";
    const clients = createCliClients(config, io.env);
    const watching = flags.watch === true || flags["watch-seconds"] !== undefined;
    const stop = watching ? interruptSignal(flags["watch-seconds"] !== undefined ? flags["watch-seconds"] * 1000 : undefined) : undefined;
    try {
      let previous: string | undefined;
      let renders = 0;
      do {
        let items: Item[];
        try {
          items = await scanTenants(clients.documents, config.tenantsTable, stop?.signal);
        } catch (err) {
          if (stop?.signal.aborted === true) break;
          return fail(io, "list", explainAwsError(err, config, `scanning table ${config.tenantsTable}`));
        }
        // Compare the data, not the rendered text: AGE ticks every second and is not a change.
        const fingerprint = canonicalJson(items);
        if (fingerprint !== previous) {
          io.stdout.write(render(io, items, output, watching, renders));
          previous = fingerprint;
          renders++;
        }
        if (stop !== undefined) await sleep(POLL_MS, stop.signal);
      } while (stop !== undefined && !stop.signal.aborted);
      return 0;
    } finally {
      stop?.dispose();
      clients.destroy();
    }
  },
};

/** Every tenant item, all pages, sorted by id; consistent so a list right after apply shows the write. */
export async function scanTenants(documents: DynamoDBDocumentClient, table: string, signal?: AbortSignal): Promise<Item[]> {
  const items: Item[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await documents.send(
      new ScanCommand({ TableName: table, ConsistentRead: true, ...(start !== undefined ? { ExclusiveStartKey: start } : {}) }),
      signal !== undefined ? { abortSignal: signal } : {},
    );
    items.push(...(page.Items ?? []));
    start = page.LastEvaluatedKey;
  } while (start !== undefined);
  return items.sort((a, b) => String(a["tenantId"]).localeCompare(String(b["tenantId"])));
}

function render(io: Io, items: readonly Item[], output: OutputFormat, watching: boolean, renders: number): string {
  if (output === "json") return watching ? `${JSON.stringify(items)}\n` : renderData(items, "json");
  if (output === "yaml") return `${watching ? "---\n" : ""}${renderData(items, "yaml")}`;
  const table = items.length === 0 ? "No tenants." : tenantTable(items, new Date(), terminalWidth(io));
  if (!watching) return `${table}\n`;
  // A terminal gets a redrawn screen; a pipe or file gets each table in turn.
  if (isTerminal(io)) return `\x1b[H\x1b[2J${table}\n`;
  return `${renders > 0 ? "\n" : ""}${table}\n`;
}

const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);

export function tenantTable(items: readonly Item[], now: Date, width?: number): string {
  const rows = items.map((item) => {
    const status = item["status"] !== null && typeof item["status"] === "object" ? (item["status"] as Item) : {};
    return [
      str(item["tenantId"]) ?? "?",
      str(item["tenantName"]) ?? "-",
      str(item["tier"])?.toLowerCase() ?? "-",
      str(status["phase"]) ?? "<none>",
      formatAge(str(status["lastReconciledAt"]), now),
      str(status["message"]) ?? "",
    ];
  });
  return renderTable(["ID", "NAME", "TIER", "PHASE", "AGE", "MESSAGE"], rows, { width });
}
