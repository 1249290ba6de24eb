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

/** A process's logger plus what daemons need: reopen the file (logrotate, SIGHUP) and flush before exit. */
export interface LogHandle {
  log: Logger;
  /** Where it writes: a file path, or "-" for stderr. */
  file: string;
  /** Reopens the log file by name (after logrotate moved it); no-op on stderr. */
  reopen(): void;
  /** Writes out anything buffered (call before process.exit). */
  flush(): void;
}

/**
 * Like createLogger, for the CLIs: writes synchronously (events are rare and a daemon's last line
 * must not be lost on exit) and can reopen its file.
 */
export function openLog(opts: LogOptions = {}): LogHandle {
  const file = opts.file && opts.file !== "-" ? opts.file : "-";
  const dest = file !== "-"
    ? pino.destination({ dest: file, append: true, mkdir: true, sync: true })
    : pino.destination({ fd: 2, sync: true });
  const log = pino({ name: opts.name, level: opts.level ?? "info", base: { pid: process.pid } }, dest);
  return {
    log,
    file,
    reopen: () => {
      if (file !== "-") dest.reopen();
    },
    flush: () => {
      try {
        dest.flushSync();
      } catch {
        // Nothing buffered (sync destination) or the fd is gone: nothing to do.
      }
    },
  };
}
