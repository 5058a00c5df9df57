import { ConditionalCheckFailedException, GetItemCommand, PutItemCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { marshall, unmarshall } from "@aws-sdk/util-dynamodb";
import { z } from "zod";
import type { Catalogue } from "../apps/catalogue.js";
import type { Config } from "../config.js";
import { wrapAwsError } from "./aws-errors.js";

/**
 * The acting controller's effective settings, published in the operator
 * table (partition key `pk`) so `tenantctl plan` on a workstation plans with
 * the controller's network ids, names and catalogue without being told them:
 *
 *   pk = "settings#controller"   subnets, securityGroups, listenerArn(s), vpcId, ... ,
 *                                holder, token, publishedAt
 *
 * Only what is not secret: ids, names, the catalogue. Written by a controller
 * when it becomes leader, on the condition that no later leader (a higher
 * lease token) has written since, so a deposed leader's late write never
 * replaces the settings of the one acting now.
 */
export const SETTINGS_KEY = "settings#controller";

/**
 * Read tolerantly: a newer controller may publish more, an older one less
 * (only the network ids plan cannot do without are required).
 */
export const controllerSettingsSchema = z.object({
  subnets: z.array(z.string()).min(1),
  securityGroups: z.array(z.string()).min(1),
  listenerArn: z.string(),
  listenerArns: z.array(z.string()).optional(),
  tenantsPerListener: z.number().optional(),
  vpcId: z.string(),
  region: z.string().optional(),
  accountId: z.string().optional(),
  namePrefix: z.string().optional(),
  tenantsTable: z.string().optional(),
  leaseTable: z.string().optional(),
  eventBusName: z.string().optional(),
  eventSource: z.string().optional(),
  poolCluster: z.string().optional(),
  advancedCluster: z.string().optional(),
  backupBucket: z.string().optional(),
  apiGatewayUrl: z.string().optional(),
  logRetentionDays: z.number().optional(),
  migrationDrainSeconds: z.number().optional(),
  /** Where the controller's catalogue came from: `built-in` or `file:<path>` (a path on the controller's disk). */
  catalogueSource: z.string().optional(),
  /** The catalogue the controller uses, as JSON (the file is on its disk, not on the workstation). */
  catalogue: z.string().optional(),
  holder: z.string().optional(),
  token: z.number().optional(),
  publishedAt: z.string().optional(),
});

export type ControllerSettings = z.output<typeof controllerSettingsSchema>;

/** What a controller publishes: its config's non-secret part and its catalogue. */
export function settingsOf(
  config: Config,
  catalogue: Catalogue,
  who: { readonly holder: string; readonly token: number; readonly accountId: string; readonly now: Date },
): ControllerSettings & { readonly token: number } {
  return {
    subnets: [...config.subnets],
    securityGroups: [...config.securityGroups],
    listenerArn: config.listenerArn,
    listenerArns: [...config.listenerArns],
    tenantsPerListener: config.tenantsPerListener,
    vpcId: config.vpcId,
    region: config.region,
    accountId: who.accountId,
    namePrefix: config.namePrefix,
    tenantsTable: config.tenantsTable,
    leaseTable: config.leaseTable,
    eventBusName: config.eventBusName,
    eventSource: config.eventSource,
    poolCluster: config.poolCluster,
    advancedCluster: config.advancedCluster,
    backupBucket: config.backupBucket,
    apiGatewayUrl: config.apiGatewayUrl,
    logRetentionDays: config.logRetentionDays,
    migrationDrainSeconds: config.migrationDrainSeconds,
    catalogueSource: config.catalogueFile !== undefined ? `file:${config.catalogueFile}` : "built-in",
    catalogue: JSON.stringify(catalogue),
    holder: who.holder,
    token: who.token,
    publishedAt: who.now.toISOString(),
  };
}

/** Writes the settings unless a later leader (higher token) already did. True when written. */
export async function publishSettings(
  client: DynamoDBClient,
  table: string,
  settings: ControllerSettings & { readonly token: number },
): Promise<boolean> {
  try {
    await client.send(
      new PutItemCommand({
        TableName: table,
        Item: marshall({ pk: SETTINGS_KEY, ...settings }, { removeUndefinedValues: true }),
        ConditionExpression: "attribute_not_exists(pk) OR #token <= :token",
        ExpressionAttributeNames: { "#token": "token" },
        ExpressionAttributeValues: { ":token": { N: String(settings.token) } },
      }),
    );
    return true;
  } catch (err) {
    if (err instanceof ConditionalCheckFailedException) return false;
    throw wrapAwsError(err, `publishing the controller's settings in ${table}`);
  }
}

/**
 * The published settings; undefined when none were published. Throws the AWS
 * error as it is (a missing table is ResourceNotFoundException), and an Error
 * naming the table when the item is not settings as described above.
 */
export async function readSettings(client: DynamoDBClient, table: string): Promise<ControllerSettings | undefined> {
  const out = await client.send(new GetItemCommand({ TableName: table, Key: { pk: { S: SETTINGS_KEY } }, ConsistentRead: true }));
  if (out.Item === undefined) return undefined;
  const parsed = controllerSettingsSchema.safeParse(unmarshall(out.Item));
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(
      `the item ${SETTINGS_KEY} in ${table} is not a controller's settings (${issue?.path.join(".") ?? ""}: ${issue?.message ?? "invalid"}): restart a controller to publish them again`,
    );
  }
  return parsed.data;
}
