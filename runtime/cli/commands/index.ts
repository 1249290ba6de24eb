import type { Command } from "./command";
import { service } from "./service";
import { probe } from "./probe";
import { heal } from "./heal";
import { status } from "./status";
import { logLevel } from "./log-level";
// Subcommands register here, one line each.
export const COMMANDS: Record<string, Command> = {
  service,
  probe,
  heal,
  status,
  "log-level": logLevel,
};
