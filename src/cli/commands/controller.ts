import { z } from "zod";
import { loadConfig } from "../../config.js";
import { createLogger } from "../../log.js";
import { startController } from "../../operator/run-controller.js";
import type { Command } from "../command.js";
import { parseFlags } from "../flags.js";
import { untilSignal } from "../signals.js";

export const controllerCommand: Command = {
  name: "controller",
  summary: "Run the controller daemon (the container's command)",
  usage: `Usage: tenantctl controller

Runs the reconciling controller until SIGTERM or SIGINT, then stops taking new
work, lets in-flight reconciles finish (bounded), releases the leader lease and
exits 0.

Configuration comes from the environment, validated at start:
  AWS_REGION, AWS_ENDPOINT_URL   region and optional endpoint override
  TENANTS_TABLE                  tenant records table (default tenants)
  LEASE_TABLE                    lease/priority table (default <TENANTS_TABLE>-operator)
  EVENT_BUS_NAME, EVENT_SOURCE   SBT status events (default default, sbt.application.plane)
  NAME_PREFIX                    prefix of every resource name (default saas)
  POOL_CLUSTER, ADVANCED_CLUSTER shared clusters (default <prefix>-pool, <prefix>-advanced)
  SUBNETS, SECURITY_GROUPS       comma-separated ids for awsvpc tasks (required)
  RESYNC_SECONDS, CONCURRENCY    full resync period (300), parallel reconciles (8)
  HTTP_PORT                      /healthz /readyz /metrics (default 8080)
  LOG_LEVEL                      fatal..trace (default info)
  LEASE_SECONDS, HOLDER_ID       leader lease duration (15) and identity
  CATALOGUE_FILE                 JSON app catalogue (default built in)`,
  async run(args, io) {
    parseFlags(args, {}, z.object({}));
    const config = loadConfig(io.env);
    const log = createLogger(config.logLevel);
    const running = await startController(config, log);
    const signal = await untilSignal();
    log.info({ signal }, "shutting down");
    await running.stop();
    return 0;
  },
};
