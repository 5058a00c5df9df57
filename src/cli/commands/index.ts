import type { Command } from "../command.js";
import { controllerCommand } from "./controller.js";
import { localCommand } from "./local.js";

/** Every tenantctl subcommand, in the order `tenantctl --help` lists them. */
export const commands: readonly Command[] = [controllerCommand, localCommand];
