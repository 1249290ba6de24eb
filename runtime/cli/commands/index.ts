import type { Command } from "./command";
import { service } from "./service";
import { probe } from "./probe";
import { heal } from "./heal";
// Subcommands register here, one line each.
export const COMMANDS: Record<string, Command> = {
  service,
  probe,
  heal,
};
