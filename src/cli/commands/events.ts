import { ScanCommand, type DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { z } from "zod";
import type { RecentEvent } from "../../tenants/status.js";
import type { Command, Io } from "../command.js";
import {
  createCliClients,
  explainAwsError,
  interruptSignal,
  loadClientConfig,
  parseCommandArgs,
  secondsSchema,
  type CliClients,
  type ClientConfig,
} from "../client-config.js";
import {
  acknowledge,
  closeViewer,
  extendViewer,
  formatEventLine,
  HEARTBEAT_MS,
  openViewer,
  receiveEvents,
  sweepExpiredViewers,
  type EventViewer,
  type Received,
} from "../events-tail.js";
import { fail, oneLine } from "../format.js";
import { checkTenantId } from "./get.js";

/** `tenantctl events`: the status events the controller sends to SBT: the recent ones, or live. */
const usage = `Usage: tenantctl events [ID...] [--follow] [-o text|json]

Without --follow: the recent events the controller sent about each tenant
(the last 10 per tenant, kept in its record's status.recentEvents), oldest
first, one line each: time, detail-type, tenant, reason. Reads only; any
number of people can run it.

With --follow: the events on the bus EVENT_BUS_NAME with source EVENT_SOURCE
as they arrive (provisionSuccess/Failure, deprovisionSuccess/Failure,
activate/deactivate, tenantStatusChanged), until Ctrl-C. A bus cannot be
read directly, so each viewer makes its own SQS queue and EventBridge rule,
named <NAME_PREFIX>-events-<random>: viewers never take events from each
other. They are deleted when it stops (Ctrl-C or SIGTERM); if it is killed,
they expire an hour after its last heartbeat and the next viewer to start
deletes them.

Give tenant IDs to see only theirs.

Options:
  -f, --follow          wait for new events until Ctrl-C
  -o, --output FORMAT   text (default) or json (one per line: with --follow,
                        the event as EventBridge delivered it; without,
                        {tenantId, detailType, at, reason})`;

const options = {
  follow: { type: "boolean", short: "f" },
  output: { type: "string", short: "o" },
  // Hidden: ends --follow after N seconds, for tests and scripts.
  "follow-seconds": { type: "string" },
} as const;

const flagsSchema = z.object({
  follow: z.boolean().optional(),
  output: z.enum(["text", "json"], { error: "must be text or json" }).optional(),
  "follow-seconds": secondsSchema.optional(),
});

const FOLLOW_WAIT_SECONDS = 20;
/** Event ids shown lately: SQS delivers at least once, a person should see an event once. */
const SEEN_IDS_KEPT = 1000;

export const eventsCommand: Command = {
  name: "events",
  summary: "Show the tenants' recent status events (--follow: live, from the bus)",
  usage,
  async run(args, io) {
    const { flags, positionals } = parseCommandArgs(args, options, flagsSchema, { min: 0, max: 100, names: "tenant ID" });
    const tenants = new Set(positionals.map((p) => checkTenantId(p)));
    const config = await loadClientConfig(io.env);
    const follow = flags.follow === true || flags["follow-seconds"] !== undefined;
    const output = flags.output ?? "text";
    const clients = createCliClients(config, io.env);
    try {
      if (!follow) return await showRecent(io, clients, config, tenants, output);
      return await followBus(io, clients, config, tenants, output, flags["follow-seconds"]);
    } finally {
      clients.destroy();
    }
  },
};

interface RecordedEvent extends RecentEvent {
  readonly tenantId: string;
}

async function showRecent(
  io: Io,
  clients: CliClients,
  config: ClientConfig,
  tenants: ReadonlySet<string>,
  output: string,
): Promise<number> {
  let events: RecordedEvent[];
  try {
    events = await recentEvents(clients.documents, config.tenantsTable);
  } catch (err) {
    return fail(io, "events", explainAwsError(err, config, `scanning table ${config.tenantsTable}`));
  }
  for (const e of events) {
    if (tenants.size > 0 && !tenants.has(e.tenantId)) continue;
    io.stdout.write(`${output === "json" ? JSON.stringify(e) : formatRecordedLine(e)}\n`);
  }
  return 0;
}

/** Every tenant's status.recentEvents, oldest first (ties by tenant, then as recorded). */
export async function recentEvents(documents: DynamoDBDocumentClient, table: string): Promise<RecordedEvent[]> {
  const out: { event: RecordedEvent; order: number }[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await documents.send(
      new ScanCommand({
        TableName: table,
        ProjectionExpression: "tenantId, #s.recentEvents",
        ExpressionAttributeNames: { "#s": "status" },
        ExclusiveStartKey: start,
      }),
    );
    for (const item of page.Items ?? []) out.push(...eventsOf(item).map((event, order) => ({ event, order })));
    start = page.LastEvaluatedKey;
  } while (start !== undefined);
  return out
    .sort((a, b) => a.event.at.localeCompare(b.event.at) || a.event.tenantId.localeCompare(b.event.tenantId) || a.order - b.order)
    .map((e) => e.event);
}

/** The well-formed entries of an item's status.recentEvents; a hand-edited one that is not is skipped. */
function eventsOf(item: Readonly<Record<string, unknown>>): RecordedEvent[] {
  const tenantId = item["tenantId"];
  const status = item["status"];
  if (typeof tenantId !== "string" || status === null || typeof status !== "object") return [];
  const list = (status as { recentEvents?: unknown }).recentEvents;
  if (!Array.isArray(list)) return [];
  return (list as unknown[]).flatMap((e) => {
    if (e === null || typeof e !== "object") return [];
    const { detailType, at, reason } = e as Record<string, unknown>;
    if (typeof detailType !== "string" || typeof at !== "string") return [];
    return [{ tenantId, detailType, at, ...(typeof reason === "string" ? { reason } : {}) }];
  });
}

const DETAIL_TYPE_WIDTH = 26; // "sbt_aws_deprovisionFailure"

/** A recorded event as a line like a live one: time, detail-type, tenant, reason. */
export function formatRecordedLine(e: RecordedEvent): string {
  const parts = [e.at, e.detailType.padEnd(DETAIL_TYPE_WIDTH), `tenant=${e.tenantId}`];
  if (e.reason !== undefined) parts.push(`reason=${JSON.stringify(oneLine(e.reason))}`);
  return parts.join("  ");
}

async function followBus(
  io: Io,
  clients: CliClients,
  config: ClientConfig,
  tenants: ReadonlySet<string>,
  output: string,
  limitSeconds: number | undefined,
): Promise<number> {
  const stop = interruptSignal(limitSeconds !== undefined ? limitSeconds * 1000 : undefined);
  const started = Date.now();
  let viewer: EventViewer | undefined;
  let heartbeat: NodeJS.Timeout | undefined;
  try {
    try {
      await sweepExpiredViewers(clients, { namePrefix: config.namePrefix, busName: config.eventBusName });
    } catch (err) {
      // Another viewer's leftovers are not this one's problem: say so and go on.
      io.stderr.write(`tenantctl events: could not remove expired viewers: ${explainAwsError(err, config, "sweeping")}\n`);
    }
    try {
      viewer = await openViewer(clients, { namePrefix: config.namePrefix, busName: config.eventBusName, source: config.eventSource });
    } catch (err) {
      return fail(io, "events", explainAwsError(err, config, `setting up a queue and rule on bus ${config.eventBusName}`));
    }
    const live = viewer;
    // On stderr, so -o json stays data: where to look, and that Ctrl-C cleans up.
    io.stderr.write(
      `tenantctl events: following bus ${config.eventBusName} through queue ${live.queueName} (deleted on exit); Ctrl-C to stop\n`,
    );
    heartbeat = setInterval(() => {
      extendViewer(clients, live).catch((err: unknown) =>
        io.stderr.write(`tenantctl events: could not extend ${live.queueName}: ${explainAwsError(err, config, "tagging")}\n`),
      );
    }, HEARTBEAT_MS);
    heartbeat.unref();
    const seen: string[] = [];
    while (!stop.signal.aborted) {
      const left = limitSeconds === undefined ? FOLLOW_WAIT_SECONDS : limitSeconds - (Date.now() - started) / 1000;
      let received: Received[];
      try {
        received = await receiveEvents(clients.sqs, live.queueUrl, Math.max(1, Math.min(FOLLOW_WAIT_SECONDS, left)), stop.signal);
      } catch (err) {
        if (stop.signal.aborted) break;
        return fail(io, "events", explainAwsError(err, config, `reading queue ${live.queueName}`));
      }
      for (const r of received) {
        const id = r.event?.id;
        if (id !== undefined) {
          if (seen.includes(id)) continue;
          seen.push(id);
          if (seen.length > SEEN_IDS_KEPT) seen.shift();
        }
        const tenantId = r.event?.detail?.["tenantId"];
        if (tenants.size > 0 && !(typeof tenantId === "string" && tenants.has(tenantId))) continue;
        const line =
          output === "json" ? (r.event !== undefined ? JSON.stringify(r.event) : JSON.stringify({ body: r.body })) : formatEventLine(r);
        io.stdout.write(`${line}\n`);
      }
      try {
        await acknowledge(clients.sqs, live.queueUrl, received);
      } catch (err) {
        return fail(io, "events", explainAwsError(err, config, `queue ${live.queueName}`));
      }
    }
    return 0;
  } finally {
    if (heartbeat !== undefined) clearInterval(heartbeat);
    if (viewer !== undefined) {
      try {
        await closeViewer(clients, config.eventBusName, viewer);
      } catch (err) {
        io.stderr.write(
          `tenantctl events: could not delete ${viewer.queueName} (it expires within the hour): ${explainAwsError(err, config, "cleaning up")}\n`,
        );
      }
    }
    stop.dispose();
  }
}
