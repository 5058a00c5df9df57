import type { Command } from "../command.js";
import { applyCommand } from "./apply.js";
import { catalogueCommand } from "./catalogue.js";
import { controllerCommand } from "./controller.js";
import { deleteCommand } from "./delete.js";
import { describeCommand } from "./describe.js";
import { eventsCommand } from "./events.js";
import { getCommand } from "./get.js";
import { listCommand } from "./list.js";
import { localCommand } from "./local.js";
import { planCommand } from "./plan.js";
import { restoreCommand } from "./restore.js";
import { rolloutCommand } from "./rollout.js";

/** Every tenantctl subcommand, in the order `tenantctl --help` lists them. */
export const commands: readonly Command[] = [
  applyCommand,
  getCommand,
  describeCommand,
  listCommand,
  deleteCommand,
  restoreCommand,
  planCommand,
  eventsCommand,
  catalogueCommand,
  rolloutCommand,
  controllerCommand,
  localCommand,
];
