import { z } from "zod";
import type { Command } from "../command.js";
import { createCliClients, explainAwsError, interruptSignal, loadClientConfig, parseCommandArgs, secondsSchema } from "../client-config.js";
import { acknowledge, ensureEventTail, formatEventLine, receiveEvents, tailName, type Received } from "../events-tail.js";
import { fail } from "../format.js";

/** `tenantctl events`: the status events the controller sends to SBT, as they arrive. */
const usage = `Usage: tenantctl events [--follow] [-o text|json]

Shows the tenant status events on the bus EVENT_BUS_NAME with source
EVENT_SOURCE (provisionSuccess/Failure, deprovisionSuccess/Failure,
tenantStatusChanged): one line each with time, detail-type, tenant,
registration status, phase and reason.

A bus cannot be read directly: the first run creates an SQS queue and a rule
sending the events to it, both named tenantctl-events-<bus>. Events sent
before that first run are not seen; after it, events wait in the queue (one
day) until a run shows them. Shown events are removed from the queue, so two
people tailing the same bus each see only part of them.

Options:
  -f, --follow          keep waiting for new events until Ctrl-C
  -o, --output FORMAT   text (default) or json (one event per line, as
                        EventBridge delivered it)`;

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

/** Without --follow: a short long-poll, so an empty receive means the queue is drained. */
const DRAIN_WAIT_SECONDS = 1;
const FOLLOW_WAIT_SECONDS = 20;

export const eventsCommand: Command = {
  name: "events",
  summary: "Show the tenant status events on the bus (--follow to tail)",
  usage,
  async run(args, io) {
    const { flags } = parseCommandArgs(args, options, flagsSchema, { min: 0, max: 0, names: "" });
    const config = await loadClientConfig(io.env);
    const follow = flags.follow === true || flags["follow-seconds"] !== undefined;
    const output = flags.output ?? "text";
    const clients = createCliClients(config, io.env);
    const stop = follow ? interruptSignal(flags["follow-seconds"] !== undefined ? flags["follow-seconds"] * 1000 : undefined) : undefined;
    const started = Date.now();
    try {
      let tail;
      try {
        tail = await ensureEventTail(clients, config.eventBusName, config.eventSource);
      } catch (err) {
        return fail(
          io,
          "events",
          explainAwsError(err, config, `setting up ${tailName(config.eventBusName)} on bus ${config.eventBusName}`),
        );
      }
      for (;;) {
        let wait = DRAIN_WAIT_SECONDS;
        if (follow) {
          const limit = flags["follow-seconds"];
          const left = limit === undefined ? FOLLOW_WAIT_SECONDS : limit - (Date.now() - started) / 1000;
          wait = Math.max(1, Math.min(FOLLOW_WAIT_SECONDS, left));
        }
        let received: Received[];
        try {
          received = await receiveEvents(clients.sqs, tail.queueUrl, wait, stop?.signal);
        } catch (err) {
          if (stop?.signal.aborted === true) return 0;
          return fail(io, "events", explainAwsError(err, config, `reading queue ${tail.queueName}`));
        }
        for (const r of received)
          io.stdout.write(
            `${output === "json" ? (r.event !== undefined ? JSON.stringify(r.event) : JSON.stringify({ body: r.body })) : formatEventLine(r)}\n`,
          );
        try {
          await acknowledge(clients.sqs, tail.queueUrl, received);
        } catch (err) {
          return fail(io, "events", explainAwsError(err, config, `queue ${tail.queueName}`));
        }
        if (!follow && received.length === 0) return 0;
        if (stop?.signal.aborted === true) return 0;
      }
    } finally {
      stop?.dispose();
      clients.destroy();
    }
  },
};
