import { z } from "zod";
import { defaultCatalogue, loadCatalogue, type Catalogue } from "../../apps/catalogue.js";
import { ConfigError, loadConfig, type Config } from "../../config.js";
import { createLogger } from "../../log.js";
import { LeaseLostError, type Fence, type PlannedCall, type TenantStore } from "../../ports.js";
import { loadCatalogueFile, tenantInfra, tenantParts } from "../../operator/run-controller.js";
import { TenantReconciler } from "../../operator/tenant-reconciler.js";
import { readOnlyCatalogues } from "../../operator/rollout-executor.js";
import { DynamoRolloutStore } from "../../providers/rollout-store.js";
import { createAwsClients } from "../../providers/aws-clients.js";
import { readSettings, type ControllerSettings } from "../../providers/controller-settings.js";
import { EcsProvider } from "../../providers/ecs.js";
import { DynamoTenantStore } from "../../providers/tenant-store.js";
import { POOL_KEY } from "../../tiers/desired.js";
import type { Action, Plan } from "../../tiers/model.js";
import type { Command, Io } from "../command.js";
import { UsageError } from "../command.js";
import {
  createCliClients,
  explainAwsError,
  loadClientConfig,
  outputSchema,
  parseCommandArgs,
  type ClientConfig,
} from "../client-config.js";
import { fail, renderData, renderTable } from "../format.js";
import { checkTenantId } from "./get.js";

const usage = `Usage: tenantctl plan ID... | --all [-o text|json|yaml]

Shows what the controller would do now for those tenants: the AWS calls it
would make, in order, with the reason for each, and what it would then wait
for. Makes none of them (a dry run, like \`terraform plan\` or \`kubectl diff\`);
it reads the record and the live ECS resources exactly as the controller does.

The plan depends on the controller's settings (subnets, security groups,
listener, VPC, name prefix, catalogue...). The acting controller publishes
them in the operator table (LEASE_TABLE, default <TENANTS_TABLE>-operator)
when it becomes leader, so from a workstation only the endpoint or region,
credentials and tables are needed. A variable set here (SUBNETS,
SECURITY_GROUPS, LISTENER_ARN, VPC_ID, NAME_PREFIX, CATALOGUE_FILE...) wins
over the published one.

Options:
  --all                 every tenant in the table, and the pooled services
  -o, --output FORMAT   text (default), json or yaml`;

const options = { all: { type: "boolean" }, output: { type: "string", short: "o" } } as const;
const flagsSchema = z.object({ all: z.boolean().optional(), output: outputSchema.optional() });

/** The AWS API call each planned action becomes, as `tenantctl plan` names it. */
export function apiCallOf(action: Action): { call: string; target: string } {
  switch (action.kind) {
    case "createCluster":
      return { call: "ecs:CreateCluster", target: action.cluster.name };
    case "registerTaskDefinition":
      return { call: "ecs:RegisterTaskDefinition", target: action.taskDefinition.family };
    case "createService":
      return { call: "ecs:CreateService", target: `${action.service.cluster}/${action.service.name}` };
    case "updateService":
      return { call: "ecs:UpdateService", target: `${action.cluster}/${action.name}` };
    case "deleteService":
      return { call: "ecs:DeleteService", target: `${action.cluster}/${action.name}` };
    case "deleteCluster":
      return { call: "ecs:DeleteCluster", target: action.cluster };
  }
}

/** Refuses every write: a plan never changes anything. */
const readOnly: Fence = {
  assertHeld() {
    throw new LeaseLostError("tenantctl plan makes no changes");
  },
};

export const planCommand: Command = {
  name: "plan",
  summary: "Show the AWS calls the controller would make now, and why (dry run)",
  usage,
  async run(args, io) {
    const { flags, positionals } = parseCommandArgs(args, options, flagsSchema, { min: 0, max: 100, names: "tenant ID" });
    if (flags.all && positionals.length > 0) throw new UsageError("give tenant IDs or --all, not both");
    if (!flags.all && positionals.length === 0) throw new UsageError("give at least one tenant ID, or --all");
    // ":pool" names the pooled services and the pool stack, as in the controller's logs.
    const ids = positionals.map((p) => (p === POOL_KEY ? p : checkTenantId(p)));
    const client = await loadClientConfig(io.env);
    const published = await publishedSettings(client, io.env);
    if (published.kind === "failed") return fail(io, "plan", published.message);
    const config = planConfig(io.env, client, published);
    const clients = createAwsClients(config);
    try {
      const store = new DynamoTenantStore(clients.dynamodb, config.tenantsTable);
      const seedCatalogue = await planCatalogue(config, published.kind === "found" ? published.settings : undefined);
      const reconciler = new TenantReconciler({
        store,
        ecs: new EcsProvider(clients.ecs, { region: config.region }),
        infra: tenantInfra(config, clients),
        ...tenantParts(config, clients),
        events: { publish: () => Promise.reject(new LeaseLostError("tenantctl plan sends no events")) },
        fence: readOnly,
        catalogue: seedCatalogue,
        // Each tenant's catalogue as the fleet rollout has it (the catalogue record, once rolled out).
        catalogues: await readOnlyCatalogues(new DynamoRolloutStore(clients.dynamodb, config.leaseTable), seedCatalogue),
        settings: config,
        log: createLogger("silent", { pretty: false }),
      });
      const keys = flags.all ? [POOL_KEY, ...(await allTenantIds(store))] : ids;
      const plans: { key: string; plan: Plan; infraCalls: readonly PlannedCall[]; invalid?: string; noRecord?: true }[] = [];
      for (const key of keys) plans.push({ key, ...(await reconciler.planFor(key)) });
      const output = flags.output ?? "text";
      if (output !== "text") {
        const data = plans.map(({ key, plan, infraCalls, invalid, noRecord }) => ({
          tenantId: key,
          ...(noRecord ? { record: "absent" } : {}),
          ...(invalid !== undefined ? { invalidRecord: invalid } : {}),
          calls: [...infraCalls, ...plan.actions.map((a) => ({ ...apiCallOf(a), reason: a.reason }))],
          waitingFor: plan.waitingFor,
          problems: plan.problems,
          converged: plan.converged,
        }));
        io.stdout.write(renderData(data, output));
      } else {
        for (const p of plans) io.stdout.write(describePlan(p.key, p.plan, p.infraCalls, p.invalid, p.noRecord === true));
      }
      return 0;
    } finally {
      clients.destroy();
    }
  },
};

/** The acting controller's settings as read, or why there are none. */
export type Published =
  | { readonly kind: "found"; readonly settings: ControllerSettings }
  | { readonly kind: "none"; readonly why: string }
  | { readonly kind: "failed"; readonly message: string };

/** The variables plan needs that only the controller's deployment knows; without them (here or published) there is no plan. */
const REQUIRED = ["SUBNETS", "SECURITY_GROUPS", "LISTENER_ARNS", "VPC_ID"] as const;

/** LISTENER_ARN, the single-listener spelling, stands for LISTENER_ARNS. */
const isSet = (env: Io["env"], name: string): boolean =>
  (env[name] ?? "") !== "" || (name === "LISTENER_ARNS" && isSet(env, "LISTENER_ARN"));

async function publishedSettings(client: ClientConfig, env: Io["env"]): Promise<Published> {
  const clients = createCliClients(client, env);
  try {
    const settings = await readSettings(clients.dynamodb, client.leaseTable);
    return settings === undefined ? { kind: "none", why: "" } : { kind: "found", settings };
  } catch (err) {
    if (err instanceof Error && err.name === "ResourceNotFoundException") return { kind: "none", why: " (the table does not exist)" };
    // With every variable given here, the settings were only a complement: plan without them.
    if (REQUIRED.every((name) => isSet(env, name))) return { kind: "none", why: "" };
    return { kind: "failed", message: explainAwsError(err, client, `reading the controller's settings in table ${client.leaseTable}`) };
  }
}

/** The controller's variables its published settings stand for, as the environment would give them. */
export function settingsEnv(s: ControllerSettings): Record<string, string> {
  const env: Record<string, string | undefined> = {
    SUBNETS: s.subnets.join(","),
    SECURITY_GROUPS: s.securityGroups.join(","),
    // An older controller published only the one listener.
    LISTENER_ARNS: (s.listenerArns ?? [s.listenerArn]).join(","),
    TENANTS_PER_LISTENER: s.tenantsPerListener?.toString(),
    VPC_ID: s.vpcId,
    NAME_PREFIX: s.namePrefix,
    TENANTS_TABLE: s.tenantsTable,
    LEASE_TABLE: s.leaseTable,
    EVENT_BUS_NAME: s.eventBusName,
    EVENT_SOURCE: s.eventSource,
    POOL_CLUSTER: s.poolCluster,
    ADVANCED_CLUSTER: s.advancedCluster,
    BACKUP_BUCKET: s.backupBucket,
    API_GATEWAY_URL: s.apiGatewayUrl,
    LOG_RETENTION_DAYS: s.logRetentionDays?.toString(),
    MIGRATION_DRAIN_SECONDS: s.migrationDrainSeconds?.toString(),
  };
  return Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined && e[1] !== ""));
}

/**
 * The controller's configuration as plan uses it: the person's variables
 * win, the published settings fill in the rest, the region is the one the
 * CLI resolved. Throws ConfigError (exit 2) naming the table and the way out
 * when a required variable is in neither.
 */
export function planConfig(env: Io["env"], client: Pick<ClientConfig, "region" | "leaseTable">, published: Published): Config {
  const own = Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined && e[1] !== ""));
  const fromSettings = published.kind === "found" ? settingsEnv(published.settings) : {};
  // The person's listeners win whichever way they are spelled.
  if (isSet(env, "LISTENER_ARNS")) delete fromSettings["LISTENER_ARNS"];
  try {
    return loadConfig({ ...fromSettings, ...own, AWS_REGION: client.region });
  } catch (err) {
    if (!(err instanceof ConfigError) || published.kind === "found" || REQUIRED.every((name) => isSet(env, name))) throw err;
    const missing = REQUIRED.filter((name) => !isSet(env, name));
    throw new ConfigError([
      `no controller has published its settings in table ${client.leaseTable}${published.kind === "none" ? published.why : ""}: set ${missing.join(", ")} (the export line \`npm start\` prints has them), or start a controller`,
      ...err.problems.filter((p) => !missing.some((name) => p.startsWith(name))),
    ]);
  }
}

/** CATALOGUE_FILE when given here; else the catalogue the controller published; else the built-in one. */
export async function planCatalogue(config: Config, settings: ControllerSettings | undefined): Promise<Catalogue> {
  if (config.catalogueFile !== undefined) return loadCatalogueFile(config.catalogueFile);
  if (settings?.catalogue !== undefined) return loadCatalogue(settings.catalogue);
  return defaultCatalogue;
}

async function allTenantIds(store: TenantStore): Promise<string[]> {
  const ids: string[] = [];
  for await (const page of store.scan()) for (const item of page) if (typeof item["tenantId"] === "string") ids.push(item["tenantId"]);
  return ids.sort();
}

function describePlan(key: string, plan: Plan, infraCalls: readonly PlannedCall[], invalid: string | undefined, noRecord: boolean): string {
  const title = key === POOL_KEY ? "pooled services" : `tenant/${key}`;
  if (invalid !== undefined) return `${title}: invalid record, nothing will be changed: ${invalid}\n\n`;
  const calls = [...infraCalls, ...plan.actions.map((a) => ({ ...apiCallOf(a), reason: a.reason }))];
  const upToDate = calls.length === 0 && plan.converged;
  const summary = upToDate
    ? noRecord
      ? "no such record and nothing left to remove"
      : "up to date, no calls"
    : `${calls.length} call(s)${noRecord ? " to remove what the deleted record left" : ""}`;
  const lines = [`${title}: ${summary}`];
  if (calls.length > 0)
    lines.push(
      renderTable(
        ["CALL", "TARGET", "REASON"],
        calls.map((c) => [c.call, c.target, c.reason]),
      ),
    );
  for (const w of plan.waitingFor) lines.push(`  waiting: ${w}`);
  for (const p of plan.problems) lines.push(`  problem: ${p}`);
  return `${lines.join("\n")}\n\n`;
}
