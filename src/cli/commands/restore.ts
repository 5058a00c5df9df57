import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBStreamsClient } from "@aws-sdk/client-dynamodb-streams";
import { S3Client } from "@aws-sdk/client-s3";
import { z } from "zod";
import { BackupError, DynamoTenantData, formatS3Location, parseS3Location } from "../../data/index.js";
import { awsClient, RETRIES } from "../../providers/aws-clients.js";
import { DATA_APPS, type BackupLocation, type DataApp, type TableSet } from "../../ports.js";
import type { Command, Io } from "../command.js";
import {
  cliTarget,
  createCliClients,
  explainAwsError,
  loadClientConfig,
  outputSchema,
  parseCommandArgs,
  type ClientConfig,
  type OutputFormat,
} from "../client-config.js";
import { fail, renderData, renderTable } from "../format.js";
import { checkTenantId, readTenant } from "./get.js";

/**
 * `tenantctl restore ID --from s3://bucket/prefix/`: loads an offboarding
 * export back into the tables the tenant's data lives in now. The tables come
 * from the record's status.tables (the controller's word on where the data
 * is), never from the export, so a backup is restored into the tenant's
 * current tier whatever tier it was taken from.
 */
const usage = `Usage: tenantctl restore ID --from s3://BUCKET/PREFIX/ [-o text|json|yaml]

Loads an export (the DynamoDB-export JSON lines and manifest.json that
offboarding writes) into the tenant's current tables, as named by its
record's status.tables. Items are put, so running it again changes nothing
more. Refuses an export of another tenant, or one holding any line of
another tenant, before writing anything.

Options:
      --from LOCATION   the export's S3 location, s3://bucket/prefix/
  -o, --output FORMAT   text (default), json or yaml

Exits 1 when the tenant does not exist, has no status.tables yet, or the
export is missing, incomplete or not the tenant's.`;

const options = {
  from: { type: "string" },
  output: { type: "string", short: "o" },
} as const;

const locationSchema = z
  .string({
    error: (issue) => (issue.input === undefined ? "required: the export's location, s3://bucket/prefix/" : "must be an S3 location"),
  })
  .transform((text, ctx): BackupLocation => {
    try {
      return parseS3Location(text);
    } catch (err) {
      ctx.addIssue({ code: "custom", message: err instanceof Error ? err.message : String(err) });
      return z.NEVER;
    }
  });

export const flagsSchema = z.object({
  from: locationSchema,
  output: outputSchema.optional(),
});

const tablesSchema = z.object({ orders: z.string().min(1), products: z.string().min(1) } satisfies Record<DataApp, z.ZodString>);

export interface RestoreRequest {
  readonly tenantId: string;
  readonly from: BackupLocation;
  readonly output: OutputFormat;
}

/** The command line as a request; throws UsageError naming the bad flag or argument. */
export function parseRestoreArgs(args: readonly string[]): RestoreRequest {
  const { flags, positionals } = parseCommandArgs(args, options, flagsSchema, { min: 1, max: 1, names: "tenant ID" });
  const tenantId = checkTenantId(positionals[0]);
  return { tenantId, from: flags.from, output: flags.output ?? "text" };
}

/** The tenant's current tables from its record, or why there are none. */
export function tablesOf(
  item: Readonly<Record<string, unknown>>,
  tenantId: string,
): { readonly ok: true; readonly tables: TableSet } | { readonly ok: false; readonly message: string } {
  const status = item["status"];
  const tables = status !== null && typeof status === "object" ? (status as Record<string, unknown>)["tables"] : undefined;
  if (tables === undefined) {
    return {
      ok: false,
      message: `tenant/${tenantId} has no status.tables: the controller has not recorded which tables hold its data (it does once the tenant is provisioned); nothing was restored`,
    };
  }
  const parsed = tablesSchema.safeParse(tables);
  if (!parsed.success)
    return {
      ok: false,
      message: `tenant/${tenantId} has a malformed status.tables (${z.prettifyError(parsed.error).replace(/\n/g, " ")}); nothing was restored`,
    };
  return { ok: true, tables: parsed.data };
}

/** The counts per table, as a person or a script wants them. */
export function formatRestored(
  tenantId: string,
  from: BackupLocation,
  tables: TableSet,
  counts: Readonly<Record<DataApp, number>>,
  output: OutputFormat,
): string {
  if (output !== "text") {
    return renderData(
      {
        tenantId,
        from: formatS3Location(from),
        tables: Object.fromEntries(DATA_APPS.map((app) => [app, { table: tables[app], items: counts[app] }])),
      },
      output,
    );
  }
  const rows = DATA_APPS.map((app) => [app, tables[app], String(counts[app])]);
  return `restored tenant/${tenantId} from ${formatS3Location(from)}\n${renderTable(["APP", "TABLE", "ITEMS"], rows)}\n`;
}

export const restoreCommand: Command = {
  name: "restore",
  summary: "Load a tenant's export from S3 into its current tables",
  usage,
  async run(args, io) {
    const request = parseRestoreArgs(args);
    const { tenantId, from } = request;
    const config = await loadClientConfig(io.env);
    const clients = createCliClients(config, io.env);
    const data = dataClients(config, io.env);
    try {
      let item;
      try {
        item = await readTenant(clients.documents, config.tenantsTable, tenantId);
      } catch (err) {
        return fail(io, "restore", explainAwsError(err, config, `reading tenant/${tenantId}`));
      }
      if (item === undefined) return fail(io, "restore", `tenant/${tenantId} not found in table ${config.tenantsTable}`);
      const found = tablesOf(item, tenantId);
      if (!found.ok) return fail(io, "restore", found.message);
      let counts;
      try {
        counts = await new DynamoTenantData(data.dynamodb, data.streams, data.s3).restore(tenantId, from, found.tables);
      } catch (err) {
        if (err instanceof BackupError) return fail(io, "restore", err.message);
        return fail(io, "restore", explainAwsError(err, config, `restoring tenant/${tenantId} from ${formatS3Location(from)}`));
      }
      io.stdout.write(formatRestored(tenantId, from, found.tables, counts, request.output));
      return 0;
    } finally {
      clients.destroy();
      data.destroy();
    }
  },
};

/**
 * The clients the data mover needs beyond the commands' shared ones, with the
 * same endpoint, region and credentials (src/cli/client-config.ts). A custom
 * endpoint (the local cloud) serves S3 by path, not by bucket host name.
 */
function dataClients(
  config: ClientConfig,
  env: Io["env"],
): { dynamodb: DynamoDBClient; streams: DynamoDBStreamsClient; s3: S3Client; destroy(): void } {
  const target = cliTarget(config, env);
  const dynamodb = awsClient(DynamoDBClient, target, RETRIES.standard);
  const streams = awsClient(DynamoDBStreamsClient, target, RETRIES.standard);
  const s3 = awsClient(S3Client, target, RETRIES.standard);
  return {
    dynamodb,
    streams,
    s3,
    destroy: () => {
      dynamodb.destroy();
      streams.destroy();
      s3.destroy();
    },
  };
}
