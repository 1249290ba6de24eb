// What glusterfs and glusterfsd share: flags, logging, pidfile, daemonizing, signals, statedump,
// volfile reload. (Files starting with "_" are not bundled as CLIs of their own.)
import { spawn } from "node:child_process";
import { mkdirSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import type { ParseArgsConfig } from "node:util";
import type { LevelWithSilent } from "pino";
import { ConfigError, FopError } from "../core/errors";
import type { Graph } from "../core/graph";
import { openLog, type LogHandle, type Logger } from "../core/log";
import { loadVolfile, type CheckedVolfile } from "../volfile";

/** Exit codes: 0 ok, 1 failure (bad volfile, mount or listen failed), 2 usage. */
export const EXIT_OK = 0;
export const EXIT_FAIL = 1;
export const EXIT_USAGE = 2;

/** Marks the re-executed child of a daemonizing parent (see daemonize). */
const DAEMON_CHILD_ENV = "GLUSTER_HA_DAEMON_CHILD";

export const COMMON_FLAGS = {
  volfile: { type: "string", short: "f" },
  "log-file": { type: "string", short: "l" },
  "log-level": { type: "string", short: "L" },
  pidfile: { type: "string", short: "p" },
  "pid-file": { type: "string" },
  "volfile-check": { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const satisfies ParseArgsConfig["options"];

const LOG_LEVELS: readonly string[] = ["trace", "debug", "info", "warn", "error", "fatal", "silent"];
/** GlusterFS's own level names, mapped to pino's. */
const GLUSTER_LEVELS: Record<string, LevelWithSilent> = {
  TRACE: "trace", DEBUG: "debug", INFO: "info", WARNING: "warn", ERROR: "error", CRITICAL: "fatal", NONE: "silent",
};

export class UsageError extends Error {
  override name = "UsageError";
}

/** Runs node's parseArgs, turning its complaints into UsageError (exit 2 with the usage text). */
export function asUsage<T>(parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

export function logLevel(value: string | undefined): LevelWithSilent {
  if (value === undefined) return "info";
  const v = GLUSTER_LEVELS[value.toUpperCase()] ?? value.toLowerCase();
  if (!LOG_LEVELS.includes(v)) {
    throw new UsageError(`--log-level ${value}: expected one of ${Object.keys(GLUSTER_LEVELS).join(", ")} (or ${LOG_LEVELS.join(", ")})`);
  }
  return v as LevelWithSilent;
}

export function isDaemonChild(): boolean {
  return process.env[DAEMON_CHILD_ENV] === "1";
}

/**
 * Runs this same command again as a detached background process and waits until it reports ready
 * (exit 0) or fails (its exit code; its message is printed here). Node cannot fork, so the child
 * is a fresh process that finds DAEMON_CHILD_ENV set and reports through the IPC channel.
 */
export function daemonize(progName: string): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
      detached: true,
      stdio: ["ignore", "ignore", "ignore", "ipc"],
      env: { ...process.env, [DAEMON_CHILD_ENV]: "1" },
    });
    let settled = false;
    const settle = (code: number) => {
      if (settled) return;
      settled = true;
      child.removeAllListeners();
      if (child.connected) child.disconnect();
      child.unref();
      resolve(code);
    };
    child.on("message", (m: { ready?: boolean; error?: string; code?: number }) => {
      if (m.ready) return settle(EXIT_OK);
      if (m.error) process.stderr.write(`${progName}: ${m.error}\n`);
      settle(m.code ?? EXIT_FAIL);
    });
    child.on("exit", (code, signal) => {
      process.stderr.write(`${progName}: background process exited (${signal ?? code}) before it was ready\n`);
      settle(code || EXIT_FAIL);
    });
    child.on("error", (err) => {
      process.stderr.write(`${progName}: cannot start background process: ${err.message}\n`);
      settle(EXIT_FAIL);
    });
  });
}

/** Tells a daemonizing parent that we are up, and lets go of it. */
export function reportReady(): void {
  if (process.send && isDaemonChild()) {
    process.send({ ready: true }, () => process.disconnect?.());
  }
}

/** Tells a daemonizing parent why we failed (it prints the message and exits with the code). */
export function reportFailure(message: string, code: number): Promise<void> {
  return new Promise((resolve) => {
    if (process.send && isDaemonChild() && process.connected) process.send({ error: message, code }, () => resolve());
    else resolve();
  });
}

/** Writes the pid; refuses when another live process holds the pidfile. Removed by removePidfile. */
export function writePidfile(path: string): void {
  try {
    const other = Number(readFileSync(path, "utf8").trim());
    if (other > 0 && other !== process.pid && processAlive(other)) {
      throw new FopError("EEXIST", `pidfile ${path}: process ${other} is running`);
    }
  } catch (err) {
    if (err instanceof FopError) throw err;
    // Missing or unreadable: a fresh start.
  }
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${process.pid}\n`);
}

export function removePidfile(path: string | undefined): void {
  if (!path) return;
  try {
    if (Number(readFileSync(path, "utf8").trim()) === process.pid) unlinkSync(path);
  } catch {
    // Already gone.
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Writes a statedump as JSON to /tmp/glusterdump.<pid>.<timestamp> and returns the path. */
export function writeStatedump(state: Record<string, unknown>): string {
  const path = `/tmp/glusterdump.${process.pid}.${Date.now()}`;
  writeFileSync(path, JSON.stringify({ pid: process.pid, time: new Date().toISOString(), ...state }, null, 2));
  return path;
}

/** SIGHUP: re-reads the volfile and applies what can change live; logs both lists. */
export function reloadVolfile(graph: Graph, file: string, log: Logger, stack: (v: CheckedVolfile) => CheckedVolfile = (v) => v): void {
  try {
    const result = graph.reconfigure(stack(loadVolfile(file)));
    log.info({ msgid: "VOLFILE_RELOADED", file, applied: result.applied, needsRestart: result.needsRestart }, "volfile reloaded");
    if (result.needsRestart.length > 0) {
      log.warn({ msgid: "VOLFILE_NEEDS_RESTART", file, needsRestart: result.needsRestart }, "volfile changes not applied: they need a restart");
    }
  } catch (err) {
    log.error({ msgid: "VOLFILE_RELOAD_FAILED", file, err: (err as Error).message }, "volfile reload failed: keeping the running configuration");
  }
}

export interface SignalHandlers {
  /** SIGTERM / SIGINT: stop cleanly (then the process exits 0). */
  stop(signal: string): Promise<void>;
  /** SIGHUP. */
  hup?(): void;
  /** SIGUSR1. */
  usr1?(): void;
  /** SIGUSR2 (log level: see runtime/cli/commands/log-level.ts). */
  usr2?(): void;
}

/** Installs the handlers; a second SIGTERM/SIGINT while stopping exits at once. */
export function handleSignals(h: SignalHandlers, logs: LogHandle, log: Logger = logs.log): void {
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      log.warn({ signal }, "second signal while stopping: exiting now");
      logs.flush();
      process.exit(EXIT_FAIL);
    }
    stopping = true;
    log.info({ msgid: "PROC_STOPPING", signal }, "stopping");
    h.stop(signal).then(
      () => {
        log.info({ msgid: "PROC_STOPPED", signal }, "stopped");
        logs.flush();
        process.exit(EXIT_OK);
      },
      (err: unknown) => {
        log.error({ signal, err: (err as Error).message }, "stop failed");
        logs.flush();
        process.exit(EXIT_FAIL);
      },
    );
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  if (h.hup) process.on("SIGHUP", () => h.hup!());
  if (h.usr1) process.on("SIGUSR1", () => h.usr1!());
  if (h.usr2) process.on("SIGUSR2", () => h.usr2!());
}

/** The CLIs' error report: config errors name file:line, fop errors their errno. */
export function describeError(err: unknown): string {
  if (err instanceof ConfigError || err instanceof UsageError) return err.message;
  if (err instanceof FopError) return `${err.message} (${err.code})`;
  return err instanceof Error ? err.message : String(err);
}

/** Opens the process's log; the volume name rides on every line via child loggers. */
export function openProcessLog(name: string, file: string | undefined, level: string | undefined): LogHandle {
  return openLog({ name, file, level: logLevel(level) });
}

/** A daemon that could not start: one log line with a msgid, the reason on stderr, and the waiting parent told. */
export async function failStart(prog: string, logs: LogHandle, message: string, fields: Record<string, unknown>): Promise<number> {
  logs.log.error({ msgid: "PROC_START_FAILED", ...fields }, message);
  logs.flush();
  if (logs.file !== "-") process.stderr.write(`${prog}: ${message}\n`);
  await reportFailure(message, EXIT_FAIL);
  return EXIT_FAIL;
}

/** Runs a CLI's main and exits with its code; usage errors print the usage text and exit 2. */
export function runCli(prog: string, main: (argv: string[]) => Promise<number>, usage: string): void {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`${prog}: ${describeError(err)}\n`);
      if (err instanceof UsageError) process.stderr.write(usage);
      process.exit(err instanceof UsageError ? EXIT_USAGE : EXIT_FAIL);
    },
  );
}
