// gluster-ha log-level PID|PIDFILE LEVEL: changes a running glusterfsd's / glusterfs's log level.
// The request travels as a file plus SIGUSR2 (a signal alone carries no value): the command writes
// LEVEL to /tmp/gluster-ha-loglevel.<pid>, signals, and waits for the process to take the file.
// SIGUSR2 without a request file cycles info -> debug -> trace -> info (handy with plain `kill`).
import { existsSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Logger } from "pino";
import type { Command } from "./command";

const LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const;
type Level = (typeof LEVELS)[number];
/** GlusterFS's level names, accepted too. */
const GLUSTER_NAMES: Record<string, Level> = {
  TRACE: "trace", DEBUG: "debug", INFO: "info", WARNING: "warn", ERROR: "error", CRITICAL: "fatal", NONE: "silent",
};
const CYCLE: Record<string, Level> = { info: "debug", debug: "trace" };

export function logLevelRequestFile(pid: number): string {
  return join(process.env.GLUSTER_HA_RUN_DIR || tmpdir(), `gluster-ha-loglevel.${pid}`);
}

export function parseLevel(text: string): Level | undefined {
  const t = text.trim();
  const v = GLUSTER_NAMES[t.toUpperCase()] ?? t.toLowerCase();
  return (LEVELS as readonly string[]).includes(v) ? (v as Level) : undefined;
}

/**
 * The daemon's SIGUSR2 handler: applies a pending request file, else cycles the level. Child loggers
 * (one per translator) follow the root's level. Returns the level now in effect.
 */
export function applyLogLevelRequest(root: Logger, log: Logger = root): string {
  const file = logLevelRequestFile(process.pid);
  const before = root.level;
  let next: Level | undefined;
  if (existsSync(file)) {
    const raw = readFileSync(file, "utf8");
    try {
      unlinkSync(file);
    } catch {
      // Already taken.
    }
    next = parseLevel(raw);
    if (!next) {
      log.warn({ msgid: "LOG_LEVEL_CHANGED", requested: raw.trim(), to: before }, "log level request ignored: unknown level");
      return before;
    }
  } else {
    next = CYCLE[before] ?? "info";
  }
  root.level = next;
  // Logged at warn so the change is visible whatever the new level (short of silent).
  log.warn({ msgid: "LOG_LEVEL_CHANGED", from: before, to: next }, `log level ${before} -> ${next}`);
  return next;
}

function pidOf(arg: string): number | undefined {
  if (/^\d+$/.test(arg)) return Number(arg);
  try {
    const n = Number(readFileSync(arg, "utf8").trim());
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

const USAGE = `usage: gluster-ha log-level PID|PIDFILE LEVEL
  LEVEL: TRACE DEBUG INFO WARNING ERROR CRITICAL NONE (or trace debug info warn error fatal silent)
  (kill -USR2 PID alone cycles info -> debug -> trace -> info)
`;

export const logLevel: Command = {
  summary: "change a running glusterfsd/glusterfs log level: log-level PID|PIDFILE LEVEL",
  async run(argv) {
    if (argv.includes("-h") || argv.includes("--help")) {
      process.stdout.write(USAGE);
      return 0;
    }
    const [target, levelArg] = argv;
    const level = levelArg !== undefined ? parseLevel(levelArg) : undefined;
    if (!target || !level || argv.length !== 2) {
      process.stderr.write(`gluster-ha log-level: ${levelArg !== undefined && !level ? `unknown level ${levelArg}\n` : ""}${USAGE}`);
      return 2;
    }
    const pid = pidOf(target);
    if (pid === undefined) {
      process.stderr.write(`gluster-ha log-level: ${target}: not a pid nor a readable pidfile\n`);
      return 1;
    }
    const file = logLevelRequestFile(pid);
    writeFileSync(file, `${level}\n`);
    try {
      process.kill(pid, "SIGUSR2");
    } catch (err) {
      try {
        unlinkSync(file);
      } catch {
        // never written
      }
      process.stderr.write(`gluster-ha log-level: cannot signal ${pid}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}\n`);
      return 1;
    }
    const end = Date.now() + 5000;
    while (existsSync(file) && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    if (existsSync(file)) {
      unlinkSync(file);
      process.stderr.write(`gluster-ha log-level: process ${pid} did not take the request (not a gluster-ha process?)\n`);
      return 1;
    }
    process.stdout.write(`log level of ${pid} set to ${level}\n`);
    return 0;
  },
};
