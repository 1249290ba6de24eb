// A small process supervisor for hosts without systemd (`gluster-ha service ...`): it daemonizes,
// writes pidfiles under a run dir, restarts its child with backoff when it dies, and stops it cleanly
// (SIGTERM, then SIGKILL after a timeout). The child (glusterfsd, glusterfs) handles its own unmount.
import { spawn } from "node:child_process";
import { closeSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { FopError } from "../core/errors";

export const DEFAULT_RUN_DIR = process.env.GLUSTER_HA_RUN_DIR ?? "/run/gluster-ha";

export interface ServiceSpec {
  name: string;
  runDir: string;
  /** argv of the supervised process. */
  command: string[];
  logFile?: string;
  /** Seconds between SIGTERM and SIGKILL on stop. */
  stopTimeout: number;
}

export interface ServiceState {
  supervisorPid: number;
  childPid: number | null;
  restarts: number;
  command: string[];
  startedAt: string;
}

export interface ServiceStatus {
  running: boolean;
  state?: ServiceState;
}

const pidFile = (runDir: string, name: string): string => join(runDir, `${name}.pid`);
const stateFile = (runDir: string, name: string): string => join(runDir, `${name}.state.json`);
export const defaultLogFile = (runDir: string, name: string): string => join(runDir, `${name}.log`);

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** The pid in the pidfile, if that process is alive and still our supervisor (pids get reused). */
function livePid(runDir: string, name: string): number | null {
  let pid: number;
  try {
    pid = Number.parseInt(readFileSync(pidFile(runDir, name), "utf8"), 10);
  } catch {
    return null;
  }
  if (!Number.isInteger(pid) || pid <= 0 || !alive(pid)) return null;
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    if (!cmdline.includes("supervise") || !cmdline.includes(name)) return null;
  } catch {
    return null;
  }
  return pid;
}

function readState(runDir: string, name: string): ServiceState | undefined {
  try {
    return JSON.parse(readFileSync(stateFile(runDir, name), "utf8")) as ServiceState;
  } catch {
    return undefined;
  }
}

export function serviceStatus(runDir: string, name: string): ServiceStatus {
  const pid = livePid(runDir, name);
  return pid === null ? { running: false } : { running: true, state: readState(runDir, name) };
}

/** The command a service was last started with (for `restart` without a command). */
export function lastCommand(runDir: string, name: string): string[] | undefined {
  return readState(runDir, name)?.command;
}

/**
 * Starts the supervisor in the background (idempotent: a running service is left alone) and waits
 * until it has written its pidfile and started the child.
 */
export async function startService(spec: ServiceSpec, selfArgv: string[]): Promise<{ started: boolean; pid: number }> {
  const running = livePid(spec.runDir, spec.name);
  if (running !== null) return { started: false, pid: running };
  mkdirSync(spec.runDir, { recursive: true });
  const logFile = spec.logFile ?? defaultLogFile(spec.runDir, spec.name);
  const log = openSync(logFile, "a");
  const args = [
    ...selfArgv,
    "service",
    "supervise",
    spec.name,
    "--run-dir",
    spec.runDir,
    "--log-file",
    logFile,
    "--stop-timeout",
    String(spec.stopTimeout),
    "--",
    ...spec.command,
  ];
  const child = spawn(process.execPath, args, { detached: true, stdio: ["ignore", log, log] });
  child.unref();
  closeSync(log);
  // Generous: on a loaded 2-core host a node process can take seconds to start.
  for (let i = 0; i < 600; i++) {
    const state = readState(spec.runDir, spec.name);
    if (livePid(spec.runDir, spec.name) === child.pid && state?.childPid) return { started: true, pid: child.pid! };
    if (child.exitCode !== null || !alive(child.pid!)) break;
    await sleep(50);
  }
  let tail = "";
  try {
    tail = readFileSync(logFile, "utf8").split("\n").slice(-6).join("\n");
  } catch {
    // no log yet
  }
  throw new FopError("ETIMEDOUT", `service ${spec.name}: supervisor did not come up (see ${logFile})\n${tail}`);
}

/** Stops the service: SIGTERM to the supervisor, which stops its child; SIGKILL both past the timeout. */
export async function stopService(runDir: string, name: string, stopTimeout: number): Promise<{ stopped: boolean }> {
  const pid = livePid(runDir, name);
  if (pid === null) {
    rmSync(pidFile(runDir, name), { force: true });
    return { stopped: false };
  }
  const childPid = readState(runDir, name)?.childPid ?? null;
  process.kill(pid, "SIGTERM");
  const deadline = Date.now() + (stopTimeout + 2) * 1000;
  while (Date.now() < deadline && alive(pid)) await sleep(50);
  if (alive(pid)) {
    process.kill(pid, "SIGKILL");
    if (childPid !== null && alive(childPid)) process.kill(childPid, "SIGKILL");
  }
  rmSync(pidFile(runDir, name), { force: true });
  return { stopped: true };
}

/** Backoff before restart n (1-based): 0.5 s doubling, at most 30 s. */
export function restartDelayMs(n: number): number {
  return Math.min(500 * 2 ** Math.max(0, n - 1), 30_000);
}

/** The supervisor itself (runs detached): keep the child running until told to stop. */
export async function supervise(spec: ServiceSpec): Promise<number> {
  mkdirSync(spec.runDir, { recursive: true });
  const state: ServiceState = {
    supervisorPid: process.pid,
    childPid: null,
    restarts: 0,
    command: spec.command,
    startedAt: new Date().toISOString(),
  };
  // Atomic (temp + rename): `status` and `start` read it while the supervisor rewrites it.
  const save = (): void => {
    const file = stateFile(spec.runDir, spec.name);
    writeFileSync(`${file}.tmp`, `${JSON.stringify(state)}\n`);
    renameSync(`${file}.tmp`, file);
  };
  writeFileSync(pidFile(spec.runDir, spec.name), `${process.pid}\n`);
  let stopping = false;
  let current: ReturnType<typeof spawn> | null = null;
  let wake: (() => void) | null = null;

  const onSignal = (): void => {
    if (stopping) return;
    stopping = true;
    wake?.();
    const child = current;
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      setTimeout(() => {
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      }, spec.stopTimeout * 1000).unref();
    }
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  process.on("SIGHUP", () => undefined); // detached: a closing terminal must not stop the service

  let consecutiveFailures = 0;
  while (!stopping) {
    const startedAt = Date.now();
    const child = spawn(spec.command[0]!, spec.command.slice(1), { stdio: ["ignore", "inherit", "inherit"] });
    current = child;
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      child.once("exit", (code, signal) => resolve({ code, signal }));
      child.once("error", (err) => {
        process.stderr.write(`supervisor ${spec.name}: cannot run ${spec.command[0]}: ${err.message}\n`);
        resolve({ code: 127, signal: null });
      });
    });
    state.childPid = child.pid ?? null;
    save();
    const { code, signal } = await exited;
    state.childPid = null;
    save();
    if (stopping) break;
    // A child that ran a while was healthy: start the backoff over.
    consecutiveFailures = Date.now() - startedAt > 10_000 ? 1 : consecutiveFailures + 1;
    state.restarts++;
    const delay = restartDelayMs(consecutiveFailures);
    process.stderr.write(
      `${new Date().toISOString()} supervisor ${spec.name}: child exited (code ${code}, signal ${signal}); restart ${state.restarts} in ${delay} ms\n`,
    );
    await new Promise<void>((resolve) => {
      wake = resolve;
      setTimeout(resolve, delay);
    });
    wake = null;
  }
  // The state file stays (childPid null): `start NAME` / `restart NAME` without a command reuse it.
  state.childPid = null;
  save();
  rmSync(pidFile(spec.runDir, spec.name), { force: true });
  return 0;
}
