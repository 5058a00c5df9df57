import { DeleteCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { z } from "zod";
import { sleep } from "../../providers/aws-errors.js";
import type { Command } from "../command.js";
import {
  createCliClients,
  durationSchema,
  explainAwsError,
  interruptSignal,
  loadClientConfig,
  parseCommandArgs,
  type ClientConfig,
  type CliClients,
} from "../client-config.js";
import { fail, oneLine } from "../format.js";
import { checkTenantId, readTenant } from "./get.js";

/**
 * `tenantctl delete ID`: offboard a tenant the way SBT does, by setting
 * sbtaws_active=false, so the controller removes its resources and reports
 * Deprovisioned. Deleting the item straight away would work too (the
 * controller finds the resources by their tags) but loses the record of what
 * happened; --purge removes it only once the controller says it is done.
 */
const usage = `Usage: tenantctl delete ID [--purge [--timeout 300s]]

Offboards a tenant: sets sbtaws_active=false on its record. The controller
then removes the tenant's resources and sets its phase to Deprovisioned.

Options:
      --purge           also remove the record, once the tenant's phase is
                        Deprovisioned (waits for it)
      --timeout DURATION  how long --purge waits, e.g. 90s, 5m (default 300s)

Exits 1 when the tenant does not exist, or when --purge times out (the
record is then kept; run the command again to keep waiting).`;

const POLL_MS = 1000;

const options = {
  purge: { type: "boolean" },
  timeout: { type: "string" },
} as const;

const flagsSchema = z.object({
  purge: z.boolean().optional(),
  timeout: durationSchema.optional(),
});

export const deleteCommand: Command = {
  name: "delete",
  summary: "Offboard a tenant (--purge: remove its record once deprovisioned)",
  usage,
  async run(args, io) {
    const { flags, positionals } = parseCommandArgs(args, options, flagsSchema, { min: 1, max: 1, names: "tenant ID" });
    const tenantId = checkTenantId(positionals[0]);
    const config = await loadClientConfig(io.env);
    const clients = createCliClients(config, io.env);
    try {
      let wasActive: boolean;
      try {
        wasActive = await deactivate(clients, config, tenantId);
      } catch (err) {
        if (err instanceof Error && err.name === "ConditionalCheckFailedException") {
          return fail(io, "delete", `tenant/${tenantId} not found in table ${config.tenantsTable}`);
        }
        return fail(io, "delete", explainAwsError(err, config, `offboarding tenant/${tenantId}`));
      }
      io.stdout.write(`tenant/${tenantId} ${wasActive ? "offboarding (sbtaws_active=false)" : "already offboarding"}\n`);
      if (flags.purge !== true) return 0;
      return await purge(io, clients, config, tenantId, flags.timeout ?? 300_000);
    } finally {
      clients.destroy();
    }
  },
};

/** Returns whether the tenant was active before. Throws ConditionalCheckFailedException when the item does not exist. */
async function deactivate(clients: CliClients, config: ClientConfig, tenantId: string): Promise<boolean> {
  const out = await clients.documents.send(
    new UpdateCommand({
      TableName: config.tenantsTable,
      Key: { tenantId },
      UpdateExpression: "SET #active = :false",
      // Never create a half item for a mistyped id.
      ConditionExpression: "attribute_exists(#id)",
      ExpressionAttributeNames: { "#active": "sbtaws_active", "#id": "tenantId" },
      ExpressionAttributeValues: { ":false": false },
      ReturnValues: "ALL_OLD",
    }),
  );
  return out.Attributes?.["sbtaws_active"] !== false;
}

async function purge(
  io: Parameters<Command["run"]>[1],
  clients: CliClients,
  config: ClientConfig,
  tenantId: string,
  timeoutMs: number,
): Promise<number> {
  const stop = interruptSignal(timeoutMs);
  let lastSeen = "";
  try {
    for (;;) {
      let item;
      try {
        item = await readTenant(clients.documents, config.tenantsTable, tenantId);
      } catch (err) {
        if (!stop.signal.aborted) return fail(io, "delete", explainAwsError(err, config, `reading tenant/${tenantId}`));
      }
      if (stop.signal.aborted) break;
      if (item === undefined) {
        io.stdout.write(`tenant/${tenantId} record already removed\n`);
        return 0;
      }
      const status = (item["status"] ?? {}) as Record<string, unknown>;
      const phase = typeof status["phase"] === "string" ? status["phase"] : "<none>";
      const message = typeof status["message"] === "string" ? oneLine(status["message"]) : "";
      const seen = `${phase}: ${message}`;
      if (seen !== lastSeen) {
        io.stdout.write(`tenant/${tenantId} phase ${phase}${message ? ` (${message})` : ""}\n`);
        lastSeen = seen;
      }
      if (phase === "Deprovisioned" && item["sbtaws_active"] === false) {
        try {
          await clients.documents.send(
            new DeleteCommand({
              TableName: config.tenantsTable,
              Key: { tenantId },
              // Both: the controller says it is done, and nobody re-activated the tenant since we looked.
              ConditionExpression: "#status.#phase = :done AND #active = :false",
              ExpressionAttributeNames: { "#status": "status", "#phase": "phase", "#active": "sbtaws_active" },
              ExpressionAttributeValues: { ":done": "Deprovisioned", ":false": false },
            }),
          );
          io.stdout.write(`tenant/${tenantId} purged\n`);
          return 0;
        } catch (err) {
          if (!(err instanceof Error && err.name === "ConditionalCheckFailedException")) {
            return fail(io, "delete", explainAwsError(err, config, `removing tenant/${tenantId}`));
          }
          // The record changed between the read and the delete: look again.
        }
      }
      if (item["sbtaws_active"] !== false) {
        return fail(io, "delete", `tenant/${tenantId} was re-activated (sbtaws_active is no longer false); not purging`);
      }
      await sleep(POLL_MS, stop.signal);
      if (stop.signal.aborted) break;
    }
    if (stop.interrupted()) return fail(io, "delete", `interrupted; tenant/${tenantId} is still offboarding and its record was kept`, 130);
    return fail(
      io,
      "delete",
      `timed out after ${Number((timeoutMs / 1000).toFixed(1))}s waiting for tenant/${tenantId} to be Deprovisioned (last seen: ${lastSeen || "no status"}); the record was kept`,
    );
  } finally {
    stop.dispose();
  }
}
