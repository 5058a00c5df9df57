import { z } from "zod";
import { loadConfig } from "../../config.js";
import { createLogger } from "../../log.js";
import { LeaseLostError, type Fence, type PlannedCall, type TenantStore } from "../../ports.js";
import { loadCatalogueFile, tenantInfra, tenantParts } from "../../operator/run-controller.js";
import { TenantReconciler } from "../../operator/tenant-reconciler.js";
import { readOnlyCatalogues } from "../../operator/rollout-executor.js";
import { DynamoRolloutStore } from "../../providers/rollout-store.js";
import { createAwsClients } from "../../providers/aws-clients.js";
import { EcsProvider } from "../../providers/ecs.js";
import { DynamoTenantStore } from "../../providers/tenant-store.js";
import { POOL_KEY } from "../../tiers/desired.js";
import type { Action, Plan } from "../../tiers/model.js";
import type { Command } from "../command.js";
import { UsageError } from "../command.js";
import { outputSchema, parseCommandArgs } from "../client-config.js";
import { renderData, renderTable } from "../format.js";
import { checkTenantId } from "./get.js";

const usage = `Usage: tenantctl plan ID... | --all [-o text|json|yaml]

Shows what the controller would do now for those tenants: the AWS calls it
would make, in order, with the reason for each, and what it would then wait
for. Makes none of them (a dry run, like \`terraform plan\` or \`kubectl diff\`);
it reads the record and the live ECS resources exactly as the controller does.

Needs the controller's configuration (SUBNETS, SECURITY_GROUPS, NAME_PREFIX...)
from the environment, since the plan depends on it.

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
    const config = loadConfig(io.env);
    const clients = createAwsClients(config);
    try {
      const store = new DynamoTenantStore(clients.dynamodb, config.tenantsTable);
      const reconciler = new TenantReconciler({
        store,
        ecs: new EcsProvider(clients.ecs, { region: config.region }),
        infra: tenantInfra(config, clients),
        ...tenantParts(config, clients),
        events: { publish: () => Promise.reject(new LeaseLostError("tenantctl plan sends no events")) },
        fence: readOnly,
        catalogue: await loadCatalogueFile(config.catalogueFile),
        // Each tenant's catalogue as the fleet rollout has it (the catalogue record, once rolled out).
        catalogues: await readOnlyCatalogues(
          new DynamoRolloutStore(clients.dynamodb, config.leaseTable),
          await loadCatalogueFile(config.catalogueFile),
        ),
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
