import { PutItemCommand } from "@aws-sdk/client-dynamodb";
import { marshall } from "@aws-sdk/util-dynamodb";
import { z } from "zod";
import { loadAccountNames, loadConfig, type Config } from "../../config.js";
import { bootstrapAccount, localAwsEnv, startLocalCloud } from "../../localcloud/index.js";
import { createLogger } from "../../log.js";
import { startController } from "../../operator/run-controller.js";
import { createAwsClients } from "../../providers/aws-clients.js";
import { DynamoTenantStore } from "../../providers/tenant-store.js";
import type { Command } from "../command.js";
import { parseFlags } from "../flags.js";
import { startLiveView } from "../live-view.js";
import { untilSignal } from "../signals.js";

export const DEMO_TENANTS = [
  { tenantId: "demo-basic", tier: "basic", tenantName: "Demo Basic Co", tenantRegistrationId: "reg-demo-basic" },
  { tenantId: "demo-advanced", tier: "advanced", tenantName: "Demo Advanced Co", tenantRegistrationId: "reg-demo-advanced" },
  {
    tenantId: "demo-premium",
    tier: "premium",
    tenantName: "Demo Premium Co",
    tenantRegistrationId: "reg-demo-premium",
    apps: { orders: { desiredCount: 2 } },
  },
] as const;

const flagsSchema = z.object({
  port: z.coerce
    .number()
    .int()
    .min(0, "must be 0-65535 (0 picks a free port)")
    .max(65535, "must be 0-65535 (0 picks a free port)")
    .default(4566),
  demo: z.boolean().default(true),
  controller: z.boolean().default(true),
  view: z.boolean().default(true),
  speed: z.coerce.number().min(0, "must be 0 or more").max(10_000, "must be at most 10000").default(10),
  throttling: z.boolean().default(false),
  albs: z.coerce
    .number({ error: "must be a whole number of load balancers, 1-20" })
    .int("must be a whole number of load balancers, 1-20")
    .min(1, "must be at least 1 (the pool's catch-all needs a listener)")
    .max(20, "must be at most 20 (each is a load balancer in the local AWS)")
    .default(1),
});

export const localCommand: Command = {
  name: "local",
  summary: "Run everything locally: a local AWS (moto + ECS scheduler), bootstrap, demo tenants, the controller (npm start)",
  usage: `Usage: tenantctl local [--port 4566] [--no-demo] [--no-controller] [--no-view] [--speed 10] [--throttling] [--albs 1]

Starts moto server on a free loopback port behind the local ECS scheduler, which
serves the AWS endpoint on http://127.0.0.1:<port> (region us-east-1, any
credentials). Bootstraps what a real account would already have (VPC, subnets,
security group, ALB and listener, tenants table with stream, event bus, pool
and advanced clusters, the queue ECS's events reach the controller through), seeds one demo tenant per tier, runs the controller and
shows tenants converging. It prints an \`export ...\` line with every variable a
\`tenantctl controller\` needs against this local AWS. Ctrl-C stops everything
it started.

Options:
  --port N          AWS endpoint port (default 4566; 0 picks a free one)
  --no-demo         do not seed demo tenants
  --no-controller   run the local AWS alone (bootstrapped), for \`tenantctl controller\`
                    processes started, killed and compared apart with the export line
  --no-view         do not print the table of tenants when their phases change
  --speed X         simulated ECS time per real second (default 10)
  --throttling      enforce ECS's API throttling buckets
  --albs N          load balancers to make, each with a listener: the listener pool
                    silo tenants are spread over (LISTENER_ARNS; default 1, at most 20)
Environment: TENANTS_TABLE, LEASE_TABLE, EVENT_BUS_NAME, EVENT_SOURCE, NAME_PREFIX, POOL_CLUSTER,
ADVANCED_CLUSTER, BACKUP_BUCKET, HTTP_PORT, LOG_LEVEL, TENANTS_PER_LISTENER, ROLLOUT_* as for the controller
(ROLLOUT_BAKE_SECONDS defaults to 10 here, 300 in production).`,
  async run(args, io) {
    const { flags } = parseFlags(
      args,
      {
        port: { type: "string" },
        demo: { type: "boolean" },
        controller: { type: "boolean" },
        view: { type: "boolean" },
        speed: { type: "string" },
        throttling: { type: "boolean" },
        albs: { type: "string" },
      },
      flagsSchema,
    );
    const level = io.env["LOG_LEVEL"] ?? "info";
    const log = createLogger(level);
    const cloud = await startLocalCloud({
      port: flags.port,
      speed: flags.speed,
      throttling: flags.throttling,
      log: log.child({ component: "localcloud" }),
    });
    try {
      const awsEnv = localAwsEnv(cloud.endpoint);
      // The SDK's default credential chain must find credentials; moto accepts any.
      for (const [k, v] of Object.entries(awsEnv)) if (process.env[k] === undefined) process.env[k] = v;
      const env = { ...io.env, ...awsEnv };
      const names = loadAccountNames(env);
      const clients = createAwsClients({ region: names.region, endpoint: cloud.endpoint });
      const account = await bootstrapAccount(clients, { ...names, albs: flags.albs });
      const config = loadConfig({
        // A demo rollout's waves should not each take five minutes; set it to see the production pace.
        ROLLOUT_BAKE_SECONDS: "10",
        ...env,
        SUBNETS: account.subnets.join(","),
        SECURITY_GROUPS: account.securityGroups.join(","),
        LISTENER_ARNS: account.listenerArns.join(","),
        // One the shell may hold from another run would contradict the pool just made.
        LISTENER_ARN: undefined,
        VPC_ID: account.vpcId,
        ...(account.ecsEventsQueueUrl !== undefined ? { ECS_EVENTS_QUEUE_URL: account.ecsEventsQueueUrl } : {}),
      });
      if (flags.demo) {
        for (const t of DEMO_TENANTS) {
          await clients.dynamodb
            .send(
              new PutItemCommand({
                TableName: config.tenantsTable,
                Item: marshall(t),
                ConditionExpression: "attribute_not_exists(tenantId)",
              }),
            )
            .catch((err: unknown) => {
              if (!(err instanceof Error && err.name === "ConditionalCheckFailedException")) throw err;
            });
        }
      }
      // Simulated ECS runs fast here, so look often; production defaults poll less.
      const running = flags.controller
        ? await startController(config, log, { pollMs: 250, maxPollMs: 2000, streamPollMs: 250 })
        : undefined;
      io.stdout.write(nextSteps(cloud.endpoint, config, running === undefined ? undefined : (running.httpPort ?? config.httpPort)));
      const view = flags.view ? startLiveView(new DynamoTenantStore(clients.dynamodb, config.tenantsTable), io.stdout) : undefined;
      const signal = await untilSignal();
      log.info({ signal }, "stopping the local run");
      view?.stop();
      await running?.stop();
      clients.destroy();
    } finally {
      await cloud.stop();
    }
    return 0;
  },
};

/**
 * Everything a `tenantctl controller` needs to run against this local AWS:
 * the endpoint and throwaway credentials, the network ids the bootstrap
 * made, and the tables, bus, prefix, clusters and bucket in use, spelled out
 * even where they are the defaults so that a controller started from a
 * shell with other values set still meets this account.
 */
export function controllerEnv(endpoint: string, config: Config): Record<string, string> {
  return {
    ...localAwsEnv(endpoint, config.region),
    SUBNETS: config.subnets.join(","),
    SECURITY_GROUPS: config.securityGroups.join(","),
    LISTENER_ARNS: config.listenerArns.join(","),
    TENANTS_PER_LISTENER: String(config.tenantsPerListener),
    VPC_ID: config.vpcId,
    TENANTS_TABLE: config.tenantsTable,
    LEASE_TABLE: config.leaseTable,
    EVENT_BUS_NAME: config.eventBusName,
    EVENT_SOURCE: config.eventSource,
    NAME_PREFIX: config.namePrefix,
    POOL_CLUSTER: config.poolCluster,
    ADVANCED_CLUSTER: config.advancedCluster,
    BACKUP_BUCKET: config.backupBucket,
    ...(config.ecsEventsQueueUrl !== undefined ? { ECS_EVENTS_QUEUE_URL: config.ecsEventsQueueUrl } : {}),
  };
}

/** `export A=1 B=2 \` over a few lines, values quoted for a POSIX shell where they need it. */
export function exportLine(env: Readonly<Record<string, string>>, indent = "  "): string {
  const words = Object.entries(env).map(([k, v]) => `${k}=${shellQuote(v)}`);
  const lines: string[] = [];
  let line = "export";
  for (const w of words) {
    if (line.length + w.length + 1 > 110 && line.trim() !== "export") {
      lines.push(line);
      line = `${indent}      ${w}`;
    } else line += ` ${w}`;
  }
  lines.push(line);
  return indent + lines.join(" \\\n");
}

/** Parses what exportLine printed (the first `export` line and its continuations) back into variables. */
export function parseExportLine(text: string): Record<string, string> | undefined {
  const lines = text.split("\n");
  const start = lines.findIndex((l) => /^\s*export\s/.test(l));
  if (start < 0) return undefined;
  let joined = "";
  for (let i = start; i < lines.length; i++) {
    const l = lines[i] ?? "";
    if (l.endsWith("\\")) joined += `${l.slice(0, -1)} `;
    else {
      joined += l;
      break;
    }
  }
  const env: Record<string, string> = {};
  const word = /([A-Za-z_][A-Za-z0-9_]*)=('(?:[^']|'\\'')*'|[^\s']*)/g;
  for (const m of joined.replace(/^\s*export\s+/, "").matchAll(word)) {
    const [, key, raw] = m;
    if (key === undefined || raw === undefined) continue;
    env[key] = raw.startsWith("'") ? raw.slice(1, -1).replaceAll("'\\''", "'") : raw;
  }
  return env;
}

function shellQuote(value: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(value) ? value : `'${value.replaceAll("'", "'\\''")}'`;
}

function nextSteps(endpoint: string, config: Config, httpPort: number | undefined): string {
  const alone =
    httpPort === undefined
      ? `No controller runs here (--no-controller): with the export line below pasted, start one, or several
(each with its own HTTP_PORT), with \`HTTP_PORT=8080 npm run -s tenantctl -- controller\`.
`
      : "";
  return `
Local AWS on ${endpoint} (region ${config.region}, any credentials).
${alone}Next, in another terminal:

${exportLine(controllerEnv(endpoint, config))}
  npm run -s tenantctl -- list                 # tenants and their phases
  npm run -s tenantctl -- events --follow      # SBT status events as they happen
  aws --endpoint-url ${endpoint} dynamodb put-item --table-name ${config.tenantsTable} \\
      --item '{"tenantId":{"S":"acme"},"tier":{"S":"premium"},"tenantName":{"S":"Acme"}}'
  npm run -s tenantctl -- plan acme            # what the controller would do, as AWS calls
  npm run -s tenantctl -- catalogue set orders=1.1.0   # a new version, rolled out to the fleet in waves
  npm run -s tenantctl -- rollout status       # the waves, tenants done/failed/pending
  curl -s http://127.0.0.1:${httpPort ?? 8080}/metrics | grep tenant_operator_

Ctrl-C stops everything.
`;
}
