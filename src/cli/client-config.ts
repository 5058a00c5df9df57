import type { ParseArgsConfig } from "node:util";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { EventBridgeClient } from "@aws-sdk/client-eventbridge";
import { SQSClient } from "@aws-sdk/client-sqs";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { z } from "zod";
import { ConfigError, configSchema, REGION_PATTERN } from "../config.js";
import { awsClient, credentialsFromEnv, RETRIES, type AwsTarget } from "../providers/aws-clients.js";
import { UsageError, type Io } from "./command.js";
import { parseFlags } from "./flags.js";

/**
 * What the operator's commands (apply, get, list, delete, events) need: the
 * slice of the controller's configuration that names the table, the bus and
 * the AWS endpoint, validated by the controller's own schema so both sides
 * agree on defaults and on what is a bad value. Also the commands' flag
 * parsing, so every command reports a bad flag the same way.
 *
 * The region is not defaulted: a person's workstation has one in its AWS
 * setup (AWS_REGION, AWS_DEFAULT_REGION, or the profile's `region`), and
 * guessing us-east-1 would show another region's (empty) table.
 */
const regionVariable = (name: string) => z.string().regex(REGION_PATTERN, `${name} must look like us-east-1`).optional();

const clientSchema = configSchema
  .pick({
    AWS_ENDPOINT_URL: true,
    TENANTS_TABLE: true,
    LEASE_TABLE: true,
    EVENT_BUS_NAME: true,
    EVENT_SOURCE: true,
    NAME_PREFIX: true,
    CATALOGUE_FILE: true,
  })
  .extend({
    AWS_REGION: regionVariable("AWS_REGION"),
    AWS_DEFAULT_REGION: regionVariable("AWS_DEFAULT_REGION"),
    AWS_PROFILE: z.string().min(1).optional(),
  });

export interface ClientConfig {
  readonly region: string;
  readonly endpoint: string | undefined;
  /** The shared-config profile to use (AWS_PROFILE), for credentials and region; undefined: the SDK's default. */
  readonly profile: string | undefined;
  readonly tenantsTable: string;
  /** The operator table (LEASE_TABLE, default `<TENANTS_TABLE>-operator`). */
  readonly leaseTable: string;
  readonly eventBusName: string;
  readonly eventSource: string;
  /** NAME_PREFIX: names what tenantctl itself creates (event viewers' queues). */
  readonly namePrefix: string;
  /** CATALOGUE_FILE: what `tenantctl catalogue set` starts from when there is no catalogue record yet. */
  readonly catalogueFile: string | undefined;
}

/** The region the SDK resolves on its own (AWS_REGION, then the profile's `region` in the shared config file); undefined when none. */
export type SdkRegion = (profile: string | undefined) => Promise<string | undefined>;

/**
 * Asks an SDK client for the region it would use: the SDK's own provider
 * chain, so tenantctl finds the region exactly where the AWS tools do, and
 * nothing here parses config files. A client that cannot resolve one
 * rejects, whatever the reason (no variable, no profile, unreadable file).
 */
export const sdkDefaultRegion: SdkRegion = async (profile) => {
  const client = new SQSClient(profile !== undefined ? { profile } : {});
  try {
    return await client.config.region();
  } catch {
    return undefined;
  } finally {
    client.destroy();
  }
};

/**
 * Reads the environment; throws ConfigError (exit 2 in the dispatcher) with one line per bad variable.
 * Region: AWS_REGION, else AWS_DEFAULT_REGION (the AWS CLI's; the JS SDK ignores it), else the SDK's chain.
 */
export async function loadClientConfig(env: Io["env"], sdkRegion: SdkRegion = sdkDefaultRegion): Promise<ClientConfig> {
  // Empty means unset, as for the controller (`EVENT_BUS_NAME= tenantctl events`).
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ""));
  const parsed = clientSchema.safeParse(cleaned);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => {
        const name = String(issue.path[0] ?? "environment");
        return issue.message.startsWith(name) ? issue.message : `${name}: ${issue.message}`;
      }),
    );
  }
  const c = parsed.data;
  const region = c.AWS_REGION ?? c.AWS_DEFAULT_REGION ?? (await sdkRegion(c.AWS_PROFILE));
  if (region === undefined) {
    throw new ConfigError([
      `no AWS region: set AWS_REGION (e.g. us-east-1), or region in your AWS profile${c.AWS_PROFILE !== undefined ? ` "${c.AWS_PROFILE}"` : ""} (~/.aws/config)`,
    ]);
  }
  if (!REGION_PATTERN.test(region)) {
    throw new ConfigError([`the AWS profile's region "${region}" does not look like a region such as us-east-1: fix it or set AWS_REGION`]);
  }
  return {
    region,
    endpoint: c.AWS_ENDPOINT_URL,
    profile: c.AWS_PROFILE,
    tenantsTable: c.TENANTS_TABLE,
    leaseTable: c.LEASE_TABLE ?? `${c.TENANTS_TABLE}-operator`,
    eventBusName: c.EVENT_BUS_NAME,
    eventSource: c.EVENT_SOURCE,
    namePrefix: c.NAME_PREFIX,
    catalogueFile: c.CATALOGUE_FILE,
  };
}

/** The SDK clients the operator's commands use. */
export interface CliClients {
  readonly dynamodb: DynamoDBClient;
  /** Marshals plain objects; numbers come back as numbers (tenant records hold small counts only). */
  readonly documents: DynamoDBDocumentClient;
  readonly eventbridge: EventBridgeClient;
  readonly sqs: SQSClient;
  destroy(): void;
}

/**
 * Clients against the same endpoint and region as the controller. Credentials
 * come from io.env when it carries keys, so a command run in-process with its
 * own environment (tests, embedding) does not silently use the process's.
 */
export function createCliClients(config: ClientConfig, env: Io["env"]): CliClients {
  const target = cliTarget(config, env);
  // A person waits on these calls: a few quick retries, not the controller's adaptive backoff.
  const dynamodb = awsClient(DynamoDBClient, target, RETRIES.standard);
  const documents = DynamoDBDocumentClient.from(dynamodb, { marshallOptions: { removeUndefinedValues: true } });
  const eventbridge = awsClient(EventBridgeClient, target, RETRIES.standard);
  const sqs = awsClient(SQSClient, target, RETRIES.standard);
  return {
    dynamodb,
    documents,
    eventbridge,
    sqs,
    destroy: () => {
      dynamodb.destroy();
      eventbridge.destroy();
      sqs.destroy();
    },
  };
}

/** The controller's endpoint and region, with credentials from io.env when it carries keys. */
export function cliTarget(config: ClientConfig, env: Io["env"]): AwsTarget {
  return { region: config.region, endpoint: config.endpoint, profile: config.profile, credentials: credentialsFromEnv(env) };
}

/** The output formats of commands whose output is data. */
export const outputSchema = z.enum(["text", "json", "yaml"], { error: "must be text, json or yaml" });
export type OutputFormat = z.output<typeof outputSchema>;

type Options = NonNullable<ParseArgsConfig["options"]>;

export interface ParsedArgs<T> {
  readonly flags: T;
  readonly positionals: readonly string[];
}

/**
 * The commands' flags through the shared parser (src/cli/flags.ts: strict
 * parseArgs, zod-validated values, a UsageError naming the flag), plus the
 * count of positional arguments each command takes.
 */
export function parseCommandArgs<S extends z.ZodType>(
  args: readonly string[],
  options: Options,
  schema: S,
  positionals: { readonly min: number; readonly max: number; readonly names: string },
): ParsedArgs<z.output<S>> {
  const parsed = parseFlags(args, options, schema, positionals.max > 0);
  if (parsed.positionals.length < positionals.min) throw new UsageError(`missing ${positionals.names}`);
  if (parsed.positionals.length > positionals.max) {
    throw new UsageError(`unexpected argument "${parsed.positionals[positionals.max] ?? ""}"`);
  }
  return { flags: parsed.flags, positionals: parsed.positionals };
}

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/;
const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** "300s", "5m", "1h", "250ms", or bare seconds ("30"), as milliseconds. */
export const durationSchema = z
  .string()
  .regex(DURATION, "must be a duration such as 30s, 5m or 1h")
  .transform((s) => {
    const [, amount = "0", unit = "s"] = DURATION.exec(s) ?? [];
    return Math.round(Number(amount) * (UNIT_MS[unit] ?? 1000));
  });

/** Whole seconds for the hidden test flags (--watch-seconds, --follow-seconds). */
export const secondsSchema = z.coerce
  .number({ error: "must be a number of seconds" })
  .positive("must be more than 0")
  .max(86_400, "must be at most 86400");

/**
 * An AbortSignal that fires on SIGINT (Ctrl-C) or SIGTERM (a supervisor, `kill`), or after
 * `limitMs`, whichever comes first, so a command can clean up what it made before it exits.
 * Each handler runs once: a second signal while cleaning up ends the process at once.
 * dispose() removes the handlers so a finished command leaves no trace.
 */
export function interruptSignal(limitMs?: number): { readonly signal: AbortSignal; readonly interrupted: () => boolean; dispose(): void } {
  const controller = new AbortController();
  let interrupted = false;
  const off = () => {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  };
  function onSignal() {
    off();
    interrupted = true;
    controller.abort(new Error("interrupted"));
  }
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  const timer = limitMs !== undefined ? setTimeout(() => controller.abort(new Error("time limit reached")), limitMs) : undefined;
  return {
    signal: controller.signal,
    interrupted: () => interrupted,
    dispose: () => {
      off();
      if (timer !== undefined) clearTimeout(timer);
    },
  };
}

/** The error, its causes and, for an AggregateError (a connection tried on several addresses), the errors it holds. */
function errorChain(err: unknown, depth = 0): { name?: unknown; code?: unknown }[] {
  if (err === null || typeof err !== "object" || depth > 5) return [];
  const e = err as { name?: unknown; code?: unknown; cause?: unknown; errors?: unknown };
  const inner = Array.isArray(e.errors) ? (e.errors as unknown[]) : [];
  return [e, ...errorChain(e.cause, depth + 1), ...inner.flatMap((i) => errorChain(i, depth + 1))];
}

/** Network errors (Node's system error codes) that mean AWS, or the local endpoint, could not be reached. */
const UNREACHABLE = new Set(["ENOTFOUND", "EAI_AGAIN", "ETIMEDOUT", "ECONNRESET", "EHOSTUNREACH", "ENETUNREACH"]);
/** AWS's answers to credentials it does not accept. */
const REJECTED_CREDENTIALS = new Set([
  "UnrecognizedClientException",
  "InvalidClientTokenId",
  "InvalidSignatureException",
  "SignatureDoesNotMatch",
  "ExpiredToken",
  "ExpiredTokenException",
]);

/**
 * The fix for an error whose cause is the person's setup rather than the
 * request: no endpoint listening, no credentials, credentials refused, AWS
 * unreachable. Classified by the error's type and system code, never by its
 * message (which SDK versions reword). Undefined when it is none of these.
 */
export function setupHint(
  err: unknown,
  where: { readonly endpoint: string | undefined; readonly region?: string | undefined },
): string | undefined {
  const chain = errorChain(err);
  const codes = new Set(chain.flatMap((e) => (typeof e.code === "string" ? [e.code] : [])));
  const names = new Set(chain.flatMap((e) => (typeof e.name === "string" ? [e.name] : [])));
  if (codes.has("ECONNREFUSED")) {
    return where.endpoint !== undefined
      ? `no AWS endpoint at ${where.endpoint}: is \`npm start\` running? (or unset AWS_ENDPOINT_URL to use AWS)`
      : `connection to AWS${where.region !== undefined ? ` in ${where.region}` : ""} refused: check HTTPS_PROXY and your network`;
  }
  if (names.has("CredentialsProviderError")) {
    return where.endpoint !== undefined
      ? `no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (any values work against ${where.endpoint}; \`npm start\` prints an export line with them)`
      : "no AWS credentials: set AWS_PROFILE (a profile in ~/.aws/config; `aws sso login` first if it uses SSO) or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY";
  }
  const rejected = [...names].find((n) => REJECTED_CREDENTIALS.has(n));
  if (rejected !== undefined) {
    return `AWS refused the credentials (${rejected}): check AWS_PROFILE or AWS_ACCESS_KEY_ID, or renew an expired session`;
  }
  const unreachable = [...codes].find((c) => UNREACHABLE.has(c));
  if (unreachable !== undefined) {
    return `cannot reach AWS ${where.endpoint !== undefined ? `at ${where.endpoint}` : `in ${where.region ?? "this region"}`} (${unreachable}): check AWS_ENDPOINT_URL, AWS_REGION and your network`;
  }
  return undefined;
}

/**
 * A failed AWS call as one line a person can act on: a missing table or bus
 * most often means the environment points at the wrong account or endpoint;
 * a setup problem (no endpoint, no credentials) gets its fix.
 */
export function explainAwsError(err: unknown, config: ClientConfig, what: string): string {
  const name = err instanceof Error ? err.name : "";
  const message = err instanceof Error ? err.message : String(err);
  const where = config.endpoint !== undefined ? ` at ${config.endpoint}` : ` in ${config.region}`;
  const hint = setupHint(err, config);
  if (hint !== undefined) return `${what}: ${hint}`;
  if (name === "ResourceNotFoundException") {
    return `${what}: ${message} (TENANTS_TABLE=${config.tenantsTable}, EVENT_BUS_NAME=${config.eventBusName}${where})`;
  }
  return `${what}: ${name && name !== "Error" ? `${name}: ` : ""}${message}`;
}
