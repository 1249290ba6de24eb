import type { Command } from "./command";
// Subcommands register here, one line each.
export const COMMANDS: Record<string, Command> = {};
