import { z } from "zod";
import type { Command } from "../command.js";
import { createCliClients, explainAwsError, loadClientConfig, parseCommandArgs } from "../client-config.js";
import { fail, terminalWidth } from "../format.js";
import { checkTenantId, describeTenant, readTenant } from "./get.js";

/** `tenantctl describe ID`: everything a person needs to see why a tenant is where it is. */
const usage = `Usage: tenantctl describe ID

Shows a tenant in detail, as kubectl describe does: its record's spec; its
phase and how long it has been in it (status.phaseSince); message,
conditions and owned resources; its last error, if the last reconcile
failed (type, message, transient or terminal, failed tries in a row, when
the controller tries again); and the last events the controller sent SBT
about it (status.recentEvents, up to 10, oldest first).

Exits 1 when the tenant does not exist. For the stored item as data, use
\`tenantctl get ID -o json\`.`;

const options = {} as const;
const flagsSchema = z.object({});

export const describeCommand: Command = {
  name: "describe",
  summary: "Show one tenant in detail: time in phase, last error, recent events",
  usage,
  async run(args, io) {
    const { positionals } = parseCommandArgs(args, options, flagsSchema, { min: 1, max: 1, names: "tenant ID" });
    const tenantId = checkTenantId(positionals[0]);
    const config = await loadClientConfig(io.env);
    const clients = createCliClients(config, io.env);
    let item: Record<string, unknown> | undefined;
    try {
      item = await readTenant(clients.documents, config.tenantsTable, tenantId);
    } catch (err) {
      return fail(io, "describe", explainAwsError(err, config, `reading tenant/${tenantId}`));
    } finally {
      clients.destroy();
    }
    if (item === undefined) return fail(io, "describe", `tenant/${tenantId} not found in table ${config.tenantsTable}`);
    io.stdout.write(describeTenant(item, new Date(), terminalWidth(io), { detail: true }));
    return 0;
  },
};
