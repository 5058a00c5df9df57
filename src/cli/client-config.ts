import type { ParseArgsConfig } from "node:util";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { EventBridgeClient } from "@aws-sdk/client-eventbridge";
import { SQSClient } from "@aws-sdk/client-sqs";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { z } from "zod";
import { ConfigError, configSchema } from "../config.js";
import { awsClient, credentialsFromEnv, RETRIES, type AwsTarget } from "../providers/aws-clients.js";
import { UsageError, type Io } from "./command.js";
import { parseFlags } from "./flags.js";

/**
 * What the operator's commands (apply, get, list, delete, events) need: the
 * slice of the controller's configuration that names the table, the bus and
 * the AWS endpoint, validated by the controller's own schema so both sides
 * agree on defaults and on what is a bad value. Also the commands' flag
 * parsing, so every command reports a bad flag the same way.
 */
const clientSchema = configSchema.pick({
  AWS_REGION: true,
  AWS_ENDPOINT_URL: true,
  TENANTS_TABLE: true,
  EVENT_BUS_NAME: true,
  EVENT_SOURCE: true,
});

export interface ClientConfig {
  readonly region: string;
  readonly endpoint: string | undefined;
  readonly tenantsTable: string;
  readonly eventBusName: string;
  readonly eventSource: string;
}

/** Reads the environment; throws ConfigError (exit 2 in the dispatcher) with one line per bad variable. */
export function loadClientConfig(env: Io["env"]): ClientConfig {
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
  return {
    region: c.AWS_REGION,
    endpoint: c.AWS_ENDPOINT_URL,
    tenantsTable: c.TENANTS_TABLE,
    eventBusName: c.EVENT_BUS_NAME,
    eventSource: c.EVENT_SOURCE,
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
  return { region: config.region, endpoint: config.endpoint, credentials: credentialsFromEnv(env) };
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
 * An AbortSignal that fires on SIGINT (Ctrl-C) or after `limitMs`, whichever
 * comes first; dispose() removes the handler so a finished command leaves no trace.
 */
export function interruptSignal(limitMs?: number): { readonly signal: AbortSignal; readonly interrupted: () => boolean; dispose(): void } {
  const controller = new AbortController();
  let interrupted = false;
  const onSigint = () => {
    interrupted = true;
    controller.abort(new Error("interrupted"));
  };
  process.once("SIGINT", onSigint);
  const timer = limitMs !== undefined ? setTimeout(() => controller.abort(new Error("time limit reached")), limitMs) : undefined;
  return {
    signal: controller.signal,
    interrupted: () => interrupted,
    dispose: () => {
      process.off("SIGINT", onSigint);
      if (timer !== undefined) clearTimeout(timer);
    },
  };
}

const UNREACHABLE_CODES: ReadonlySet<string> = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "ETIMEDOUT"]);

/**
 * A failed AWS call as one line a person can act on: a missing table or bus
 * most often means the environment points at the wrong account or endpoint.
 */
export function explainAwsError(err: unknown, config: ClientConfig, what: string): string {
  const name = err instanceof Error ? err.name : "";
  const message = err instanceof Error ? err.message : String(err);
  const where = config.endpoint !== undefined ? ` at ${config.endpoint}` : ` in ${config.region}`;
  if (name === "ResourceNotFoundException") {
    return `${what}: ${message} (TENANTS_TABLE=${config.tenantsTable}, EVENT_BUS_NAME=${config.eventBusName}${where})`;
  }
  // Node's code for the socket's failure, not its message: the text varies by platform.
  const code = (err as { code?: unknown }).code;
  if (typeof code === "string" && UNREACHABLE_CODES.has(code)) {
    return `${what}: cannot reach AWS${where}: ${message}`;
  }
  return `${what}: ${name && name !== "Error" ? `${name}: ` : ""}${message}`;
}
