import { z } from "zod";
import type { RolloutSettings } from "./rollouts/model.js";
import { DEFAULT_WAVES, parseWaves, WaveSpecError } from "./rollouts/waves.js";
import { DEFAULT_SHARD_COUNT, MAX_SHARD_COUNT } from "./reconciler/shards.js";

/**
 * The controller's configuration, read once from the environment and
 * normalised here so the rest of the code sees a complete, typed object.
 * Every field documents its default; a bad variable is reported by name.
 */
const csv = z.string().transform((s) =>
  s
    .split(",")
    .map((p) => p.trim())
    .filter((p) => p.length > 0),
);

const positiveInt = (name: string, def: number, max = 1_000_000) =>
  z.coerce
    .number({ error: `${name} must be a whole number` })
    .int(`${name} must be a whole number`)
    .min(1, `${name} must be at least 1`)
    .max(max, `${name} must be at most ${max}`)
    .default(def);

/** An ALB listener ARN: arn:aws:elasticloadbalancing:<region>:<account>:listener/app/<name>/<id>/<id>. */
export const LISTENER_ARN_PATTERN = /^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:\d{12}:listener\/app\/[^/]+\/[0-9a-f]+\/[0-9a-f]+$/;

/** An ALB holds at most 100 target groups (an AWS quota). */
export const MAX_TENANTS_PER_LISTENER = 100;

/** The load balancer part of a listener ARN (`app/<name>/<id>`). */
export function loadBalancerOf(listenerArn: string): string {
  return listenerArn.split(":listener/")[1]?.split("/").slice(0, 3).join("/") ?? listenerArn;
}

/** An AWS region name such as us-east-1 or ap-southeast-2. */
export const REGION_PATTERN = /^[a-z]{2}(-[a-z]+)+-\d$/;

export const configSchema = z.object({
  /** @default "us-east-1" */
  AWS_REGION: z.string().regex(REGION_PATTERN, "AWS_REGION must look like us-east-1").default("us-east-1"),
  /** Optional endpoint override; the SDK reads it too. Used for the local AWS. */
  AWS_ENDPOINT_URL: z.url({ error: "AWS_ENDPOINT_URL must be a URL such as http://127.0.0.1:4566" }).optional(),
  /** @default "tenants" */
  TENANTS_TABLE: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{3,255}$/, "TENANTS_TABLE must be 3-255 of A-Z a-z 0-9 _ . -")
    .default("tenants"),
  /** Table holding the leader lease and listener-rule priorities. @default "<TENANTS_TABLE>-operator" */
  LEASE_TABLE: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{3,255}$/, "LEASE_TABLE must be 3-255 of A-Z a-z 0-9 _ . -")
    .optional(),
  /** @default "default" */
  EVENT_BUS_NAME: z.string().min(1).max(256).default("default"),
  /** @default "sbt.application.plane" */
  EVENT_SOURCE: z.string().min(1).max(256).default("sbt.application.plane"),
  /** Prefix of every resource name the controller creates. @default "saas" */
  NAME_PREFIX: z
    .string()
    .regex(/^[a-z][a-z0-9]{0,9}$/, "NAME_PREFIX must be 1-10 lowercase letters or digits, starting with a letter")
    .default("saas"),
  /** Cluster of the pooled (basic tier) services. @default "<NAME_PREFIX>-pool" */
  POOL_CLUSTER: z.string().optional(),
  /** Shared cluster of advanced-tier tenant services. @default "<NAME_PREFIX>-advanced" */
  ADVANCED_CLUSTER: z.string().optional(),
  /** Comma-separated subnet ids for awsvpc tasks. Required. */
  SUBNETS: csv.pipe(
    z
      .array(z.string().regex(/^subnet-[0-9a-f]+$/, "SUBNETS must be subnet ids such as subnet-0abc"))
      .min(1, "SUBNETS must list at least one subnet id"),
  ),
  /** Comma-separated security group ids. Required. */
  SECURITY_GROUPS: csv.pipe(
    z
      .array(z.string().regex(/^sg-[0-9a-f]+$/, "SECURITY_GROUPS must be security group ids such as sg-0abc"))
      .min(1, "SECURITY_GROUPS must list at least one security group id"),
  ),
  /** One shared ALB listener: the same as LISTENER_ARNS with one ARN. LISTENER_ARNS or LISTENER_ARN is required. */
  LISTENER_ARN: z
    .string()
    .regex(
      LISTENER_ARN_PATTERN,
      "LISTENER_ARN must be an ALB listener ARN (arn:aws:elasticloadbalancing:<region>:<account>:listener/app/<name>/<id>/<id>)",
    )
    .optional(),
  /**
   * The pool of shared ALB listeners tenant rules hang off, comma-separated
   * (docs/adr/0015-listener-pool.md). The first holds the pool's catch-all
   * rule; append listeners, never reorder or remove one tenants are placed on.
   */
  LISTENER_ARNS: csv
    .pipe(
      z
        .array(
          z
            .string()
            .regex(
              LISTENER_ARN_PATTERN,
              "LISTENER_ARNS must be ALB listener ARNs (arn:aws:elasticloadbalancing:<region>:<account>:listener/app/<name>/<id>/<id>), comma-separated",
            ),
        )
        .min(1, "LISTENER_ARNS must list at least one listener ARN"),
    )
    .superRefine((arns, ctx) => {
      const twice = arns.find((a, i) => arns.indexOf(a) !== i);
      if (twice !== undefined) {
        ctx.addIssue({ code: "custom", message: `LISTENER_ARNS lists ${twice} twice: name each listener once` });
        return;
      }
      // Target groups are counted per load balancer, so two listeners of one ALB would share its 100.
      const albs = arns.map(loadBalancerOf);
      const shared = albs.find((a, i) => albs.indexOf(a) !== i);
      if (shared !== undefined)
        ctx.addIssue({
          code: "custom",
          message: `LISTENER_ARNS lists two listeners of load balancer ${shared}: an ALB holds at most 100 target groups whichever listener routes to them, so give one listener per load balancer`,
        });
    })
    .optional(),
  /** Silo tenants placed on one listener; an ALB holds at most 100 target groups. @default 90 */
  TENANTS_PER_LISTENER: z.coerce
    .number({ error: "TENANTS_PER_LISTENER must be a whole number" })
    .int("TENANTS_PER_LISTENER must be a whole number")
    .min(1, "TENANTS_PER_LISTENER must be at least 1")
    .max(
      MAX_TENANTS_PER_LISTENER,
      `TENANTS_PER_LISTENER must be at most ${MAX_TENANTS_PER_LISTENER}: an ALB holds at most 100 target groups and each tenant placed on its listener attaches one (the first listener's ALB also holds the pool's, so it takes at most 99); add listeners to LISTENER_ARNS instead`,
    )
    .default(90),
  /** The VPC of the tenant target groups (the ALB's VPC). Required. */
  VPC_ID: z.string().regex(/^vpc-[0-9a-f]+$/, "VPC_ID must be a VPC id such as vpc-0abc"),
  /** Retention of each tenant's log group, in days. @default 30 */
  LOG_RETENTION_DAYS: z.coerce
    .number({ error: "LOG_RETENTION_DAYS must be a number of days" })
    .refine(
      (n) => [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653].includes(n),
      "LOG_RETENTION_DAYS must be a CloudWatch Logs retention: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653",
    )
    .default(30),
  /**
   * The SQS queue an EventBridge rule fills with ECS events on the managed
   * clusters (docs/adr/0017-ecs-events-as-hints.md). Unset: no hints, the
   * controller sees ECS drift at the resync only. @default unset
   */
  ECS_EVENTS_QUEUE_URL: z
    .url({
      error: "ECS_EVENTS_QUEUE_URL must be an SQS queue URL such as https://sqs.us-east-1.amazonaws.com/123456789012/saas-ecs-events",
    })
    .optional(),
  /** Seconds between full resyncs (each one jittered by ±10%). @default 300 */
  RESYNC_SECONDS: positiveInt("RESYNC_SECONDS", 300, 86_400),
  /** Tenants reconciled at once. @default 8 */
  CONCURRENCY: positiveInt("CONCURRENCY", 8, 256),
  /** Port of /healthz, /readyz and /metrics. @default 8080 */
  HTTP_PORT: z.coerce
    .number({ error: "HTTP_PORT must be a port number" })
    .int()
    .min(0, "HTTP_PORT must be 0-65535")
    .max(65535, "HTTP_PORT must be 0-65535")
    .default(8080),
  /** @default "info" */
  LOG_LEVEL: z
    .enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"], {
      error: "LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent",
    })
    .default("info"),
  /** Lease duration in seconds; a standby takes over within it. @default 15 */
  LEASE_SECONDS: positiveInt("LEASE_SECONDS", 15, 600),
  /**
   * Shards the tenants are hashed into, one lease each; every controller of a
   * fleet must use the same count (recorded once in the operator table). @default 32
   */
  SHARD_COUNT: positiveInt("SHARD_COUNT", DEFAULT_SHARD_COUNT, MAX_SHARD_COUNT),
  /** JSON file with the app catalogue (images, versions, defaults). @default the built-in catalogue */
  CATALOGUE_FILE: z.string().min(1).optional(),
  /** S3 bucket of offboarding exports. @default "<NAME_PREFIX>-tenant-backups" (bucket names are global: set your own in a real account) */
  BACKUP_BUCKET: z
    .string()
    .regex(
      /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/,
      "BACKUP_BUCKET must be an S3 bucket name: 3-63 of a-z 0-9 . - starting and ending with a letter or digit",
    )
    .optional(),
  /** Seconds a tier move keeps draining the old tables' stream into the new ones after the routing flip. @default 30 */
  MIGRATION_DRAIN_SECONDS: z.coerce
    .number({ error: "MIGRATION_DRAIN_SECONDS must be a number of seconds" })
    .int("MIGRATION_DRAIN_SECONDS must be a whole number")
    .min(0, "MIGRATION_DRAIN_SECONDS must be 0 or more")
    .max(3600, "MIGRATION_DRAIN_SECONDS must be at most 3600")
    .default(30),
  /** The tenants' API (the reference architecture's API Gateway), given to SBT in tenantConfig. @default "" */
  API_GATEWAY_URL: z
    .url({ error: "API_GATEWAY_URL must be a URL such as https://abc123.execute-api.us-east-1.amazonaws.com/prod/" })
    .optional(),
  /** Fleet rollout waves: units reached once each wave starts, a count or a share. @default "1,10%,50%,100%" */
  ROLLOUT_WAVES: z
    .string()
    .default(DEFAULT_WAVES)
    .transform((spec, ctx) => {
      try {
        return parseWaves(spec);
      } catch (err) {
        ctx.addIssue({ code: "custom", message: `ROLLOUT_WAVES ${err instanceof WaveSpecError ? err.message : String(err)}` });
        return z.NEVER;
      }
    }),
  /** Seconds a deployed wave must stay healthy before the next starts. @default 300 */
  ROLLOUT_BAKE_SECONDS: z.coerce
    .number({ error: "ROLLOUT_BAKE_SECONDS must be a number of seconds" })
    .int("ROLLOUT_BAKE_SECONDS must be a whole number")
    .min(0, "ROLLOUT_BAKE_SECONDS must be 0 or more")
    .max(86_400, "ROLLOUT_BAKE_SECONDS must be at most 86400")
    .default(300),
  /** Failed tenants a rollout tolerates; one more halts it. @default 0 */
  ROLLOUT_MAX_FAILURES: z.coerce
    .number({ error: "ROLLOUT_MAX_FAILURES must be a number of tenants" })
    .int("ROLLOUT_MAX_FAILURES must be a whole number")
    .min(0, "ROLLOUT_MAX_FAILURES must be 0 or more")
    .max(100_000, "ROLLOUT_MAX_FAILURES must be at most 100000")
    .default(0),
  /** Seconds a reached tenant may take to be healthy on the new catalogue before it counts as failed. @default 1800 */
  ROLLOUT_TIMEOUT_SECONDS: positiveInt("ROLLOUT_TIMEOUT_SECONDS", 1800, 86_400),
  /** Task definition revisions kept per family; older ones (not in use) are deregistered and deleted. @default 5 */
  REVISIONS_TO_KEEP: positiveInt("REVISIONS_TO_KEEP", 5, 1000),
  /** Identity of this controller in the lease. @default hostname-pid-random */
  HOLDER_ID: z.string().min(1).max(128).optional(),
  /**
   * The CloudFormation service role the tenant and pool stacks are created,
   * updated and deleted with (RoleARN). Unset: CloudFormation acts with the
   * controller's own credentials. @default unset
   */
  CFN_ROLE_ARN: z
    .string()
    .regex(
      /^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/,
      "CFN_ROLE_ARN must be an IAM role ARN such as arn:aws:iam::123456789012:role/ecs-tenant-operator/cfn",
    )
    .optional(),
  /** Whether tenant tasks get a public IP (awsvpc assignPublicIp). @default "DISABLED" */
  ASSIGN_PUBLIC_IP: z.enum(["ENABLED", "DISABLED"], { error: "ASSIGN_PUBLIC_IP must be ENABLED or DISABLED" }).default("DISABLED"),
  /** The tenants table's stream; skips the DescribeTable that finds it. @default the table's latest stream */
  TENANTS_STREAM_ARN: z
    .string()
    .regex(
      /^arn:aws[a-z-]*:dynamodb:[a-z0-9-]+:\d{12}:table\/[A-Za-z0-9_.-]{3,255}\/stream\/[^/]+$/,
      "TENANTS_STREAM_ARN must be a DynamoDB stream ARN (arn:aws:dynamodb:<region>:<account>:table/<table>/stream/<label>)",
    )
    .optional(),
  /** Write CloudWatch Embedded Metric Format lines to stdout (the deployment template sets it true). @default false */
  EMF_METRICS: z
    .string()
    .trim()
    .toLowerCase()
    .pipe(z.enum(["true", "false"], { error: "EMF_METRICS must be true or false" }))
    .transform((v) => v === "true")
    .default(false),
  /** Seconds between two EMF lines. @default 60 */
  EMF_INTERVAL_SECONDS: positiveInt("EMF_INTERVAL_SECONDS", 60, 3600),
  /** A tenant outside Ready, Suspended and Deprovisioned for longer than this is stuck (metric TenantsStuck). @default 900 */
  STUCK_AFTER_SECONDS: positiveInt("STUCK_AFTER_SECONDS", 900, 604_800),
});

export interface Config {
  readonly region: string;
  readonly endpoint: string | undefined;
  readonly tenantsTable: string;
  readonly leaseTable: string;
  readonly eventBusName: string;
  readonly eventSource: string;
  readonly namePrefix: string;
  readonly poolCluster: string;
  readonly advancedCluster: string;
  readonly subnets: readonly string[];
  readonly securityGroups: readonly string[];
  /** The first of listenerArns: it holds the pool's catch-all rule, and placements made before the pool existed. */
  readonly listenerArn: string;
  /** LISTENER_ARNS (or LISTENER_ARN alone): the listeners silo tenants are placed on, in order. */
  readonly listenerArns: readonly string[];
  /** TENANTS_PER_LISTENER: placements one listener takes. */
  readonly tenantsPerListener: number;
  readonly vpcId: string;
  readonly logRetentionDays: number;
  readonly resyncSeconds: number;
  /** Where ECS events arrive as hints; undefined: resync only. */
  readonly ecsEventsQueueUrl: string | undefined;
  readonly concurrency: number;
  readonly httpPort: number;
  readonly logLevel: string;
  readonly leaseSeconds: number;
  readonly shardCount: number;
  readonly holderId: string | undefined;
  readonly catalogueFile: string | undefined;
  readonly backupBucket: string;
  readonly migrationDrainSeconds: number;
  readonly apiGatewayUrl: string;
  readonly cfnRoleArn: string | undefined;
  readonly assignPublicIp: "ENABLED" | "DISABLED";
  readonly tenantsStreamArn: string | undefined;
  readonly emfMetrics: boolean;
  readonly emfIntervalSeconds: number;
  readonly stuckAfterSeconds: number;
  /** ROLLOUT_WAVES, ROLLOUT_BAKE_SECONDS, ROLLOUT_MAX_FAILURES, ROLLOUT_TIMEOUT_SECONDS. */
  readonly rollout: RolloutSettings;
  readonly revisionsToKeep: number;
}

export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "ConfigError";
  }
}

/** Reads and validates the configuration; throws ConfigError with one line per bad variable. */
export function loadConfig(env: Readonly<Record<string, string | undefined>> = process.env): Config {
  const c = parseEnv(configSchema, env);
  const names = namesOf(c);
  const streamTable = c.TENANTS_STREAM_ARN?.split("/")[1];
  if (streamTable !== undefined && streamTable !== names.tenantsTable) {
    throw new ConfigError([
      `TENANTS_STREAM_ARN is the stream of table ${streamTable}, but TENANTS_TABLE is ${names.tenantsTable}: give the stream of ${names.tenantsTable}, or unset TENANTS_STREAM_ARN`,
    ]);
  }
  const listenerArns = listenersOf(c.LISTENER_ARNS, c.LISTENER_ARN);
  return {
    ...names,
    endpoint: c.AWS_ENDPOINT_URL,
    eventSource: c.EVENT_SOURCE,
    subnets: c.SUBNETS,
    securityGroups: c.SECURITY_GROUPS,
    listenerArn: listenerArns[0] ?? "",
    listenerArns,
    tenantsPerListener: c.TENANTS_PER_LISTENER,
    vpcId: c.VPC_ID,
    logRetentionDays: c.LOG_RETENTION_DAYS,
    resyncSeconds: c.RESYNC_SECONDS,
    ecsEventsQueueUrl: c.ECS_EVENTS_QUEUE_URL,
    concurrency: c.CONCURRENCY,
    httpPort: c.HTTP_PORT,
    logLevel: c.LOG_LEVEL,
    leaseSeconds: c.LEASE_SECONDS,
    shardCount: c.SHARD_COUNT,
    holderId: c.HOLDER_ID,
    catalogueFile: c.CATALOGUE_FILE,
    migrationDrainSeconds: c.MIGRATION_DRAIN_SECONDS,
    apiGatewayUrl: c.API_GATEWAY_URL ?? "",
    cfnRoleArn: c.CFN_ROLE_ARN,
    assignPublicIp: c.ASSIGN_PUBLIC_IP,
    tenantsStreamArn: c.TENANTS_STREAM_ARN,
    emfMetrics: c.EMF_METRICS,
    emfIntervalSeconds: c.EMF_INTERVAL_SECONDS,
    stuckAfterSeconds: c.STUCK_AFTER_SECONDS,
    rollout: {
      waves: c.ROLLOUT_WAVES,
      bakeMs: c.ROLLOUT_BAKE_SECONDS * 1000,
      maxFailures: c.ROLLOUT_MAX_FAILURES,
      timeoutMs: c.ROLLOUT_TIMEOUT_SECONDS * 1000,
    },
    revisionsToKeep: c.REVISIONS_TO_KEEP,
  };
}

/**
 * The listener pool from LISTENER_ARNS, or LISTENER_ARN alone (the variable
 * of a single-listener deployment). Both may be set while upgrading, as long
 * as they agree on the first listener: placements made before the pool
 * existed are on it.
 */
function listenersOf(arns: readonly string[] | undefined, single: string | undefined): readonly string[] {
  if (arns === undefined) {
    if (single === undefined)
      throw new ConfigError([
        "LISTENER_ARNS is required: the ALB listener ARNs tenant rules hang off, comma-separated (or LISTENER_ARN for a single listener)",
      ]);
    return [single];
  }
  if (single !== undefined && single !== arns[0])
    throw new ConfigError([
      `LISTENER_ARN is ${single} but LISTENER_ARNS starts with ${arns[0] ?? ""}: the first listener holds the pool's catch-all and the placements made before LISTENER_ARNS, so unset LISTENER_ARN or list it first in LISTENER_ARNS`,
    ]);
  return arns;
}

/** The names of the account's shared resources: what a bootstrap creates before the network ids exist. */
export type AccountNames = Pick<
  Config,
  "region" | "tenantsTable" | "leaseTable" | "eventBusName" | "namePrefix" | "poolCluster" | "advancedCluster" | "backupBucket"
>;

const namesSchema = configSchema.pick({
  AWS_REGION: true,
  TENANTS_TABLE: true,
  LEASE_TABLE: true,
  EVENT_BUS_NAME: true,
  NAME_PREFIX: true,
  POOL_CLUSTER: true,
  ADVANCED_CLUSTER: true,
  BACKUP_BUCKET: true,
});

/** Reads only the account names (no network ids needed), with the same rules and defaults as loadConfig. */
export function loadAccountNames(env: Readonly<Record<string, string | undefined>> = process.env): AccountNames {
  return namesOf(parseEnv(namesSchema, env));
}

function namesOf(c: z.output<typeof namesSchema>): AccountNames {
  return {
    region: c.AWS_REGION,
    tenantsTable: c.TENANTS_TABLE,
    leaseTable: c.LEASE_TABLE ?? `${c.TENANTS_TABLE}-operator`,
    eventBusName: c.EVENT_BUS_NAME,
    namePrefix: c.NAME_PREFIX,
    poolCluster: c.POOL_CLUSTER ?? `${c.NAME_PREFIX}-pool`,
    advancedCluster: c.ADVANCED_CLUSTER ?? `${c.NAME_PREFIX}-advanced`,
    backupBucket: c.BACKUP_BUCKET ?? `${c.NAME_PREFIX}-tenant-backups`,
  };
}

function parseEnv<S extends z.ZodType>(schema: S, env: Readonly<Record<string, string | undefined>>): z.output<S> {
  // Empty strings mean "unset" so that `FOO= tenantctl controller` falls back to the default.
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ""));
  const parsed = schema.safeParse(cleaned);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const name = String(issue.path[0] ?? "environment");
      const message = cleaned[name] === undefined ? `${name} is required` : issue.message;
      return message.startsWith(name) ? message : `${name}: ${message}`;
    });
    throw new ConfigError(problems);
  }
  return parsed.data;
}
