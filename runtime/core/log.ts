import pino, { type Logger, type LevelWithSilent } from "pino";

export type { Logger };

export interface LogOptions {
  /** A file to append to; "-" or undefined means stderr. */
  file?: string;
  level?: LevelWithSilent;
  /** The process's role, e.g. "glusterfsd" or "glusterfs". */
  name?: string;
}

/**
 * One structured line per event (pino). Each translator logs through a child logger carrying its
 * volume name; messages of known kinds carry a stable `msgid` (see runtime/core/msgids.ts).
 */
export function createLogger(opts: LogOptions = {}): Logger {
  const dest = opts.file && opts.file !== "-"
    ? pino.destination({ dest: opts.file, append: true, mkdir: true, sync: false })
    : pino.destination({ fd: 2, sync: true });
  return pino({ name: opts.name, level: opts.level ?? "info", base: { pid: process.pid } }, dest);
}

/** A logger that drops everything (unit tests). */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
