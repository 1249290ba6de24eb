/**
 * Real server processes for protocol tests: write a volfile, spawn a server for it (dist/bin/glusterfsd.js
 * when built, else this file in "serve" mode, which builds the Graph and starts it), wait until it listens,
 * and kill it afterwards. Also iptables DROP rules for silent-peer tests (always removed).
 *
 * Run as a script (child processes of the tests):
 *   node --import tsx test/helpers/servers.ts serve VOLFILE LOGFILE
 *   node --import tsx test/helpers/servers.ts lock-holder VOLFILE PATH      (creates PATH, holds a write lock)
 *   node --import tsx test/helpers/servers.ts connect-once VOLFILE          (prints {"addresses":[...],"connected":"host:port"})
 *   node --import tsx test/helpers/servers.ts fs-loop DIR                   (stat+write+read in DIR until stdin closes; prints a FsLoopReport)
 */
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { promises as dns } from "node:dns";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Graph } from "../../runtime/core/graph";
import { createLogger, silentLogger } from "../../runtime/core/log";
import { Fd } from "../../runtime/core/types";
import { ensureBuilt } from "./mount";

export const REPO = resolve(__dirname, "../..");
const GLUSTERFSD = join(REPO, "dist/bin/glusterfsd.js");

export interface BrickServerOptions {
  host: string;
  port: number;
  /** The brick directory (default: a new temp dir). */
  brick?: string;
  /** auth.ip.<volume>.allow entries by volume (default: locks -> 127.0.0.1). */
  allow?: Record<string, string>;
  reject?: Record<string, string>;
  /** Extra `option` lines for storage/posix. */
  posixOptions?: string[];
  /** Extra `option` lines for protocol/server. */
  serverOptions?: string[];
}

/** storage/posix "ds" -> features/posix-locks "locks" -> protocol/server "server" (exports "locks"). */
export function brickVolfile(o: BrickServerOptions & { brick: string }): string {
  const allow = o.allow ?? { locks: "127.0.0.1" };
  const auth = [
    ...Object.entries(allow).map(([v, a]) => `  option auth.ip.${v}.allow ${a}`),
    ...Object.entries(o.reject ?? {}).map(([v, a]) => `  option auth.ip.${v}.reject ${a}`),
  ];
  return [
    "volume ds", "  type storage/posix", `  option directory ${o.brick}`,
    ...(o.posixOptions ?? []).map((l) => `  option ${l}`), "end-volume",
    "volume locks", "  type features/posix-locks", "  subvolumes ds", "end-volume",
    "volume server", "  type protocol/server", "  option transport-type tcp/server",
    `  option bind-address ${o.host}`, `  option listen-port ${o.port}`, ...auth,
    ...(o.serverOptions ?? []).map((l) => `  option ${l}`), "  subvolumes locks", "end-volume", "",
  ].join("\n");
}

/** A client volfile attaching to `volume` on the given hosts. */
export function clientVolfile(o: { hosts: string; port: number; volume?: string; timeout?: number; extra?: string[] }): string {
  return [
    "volume client", "  type protocol/client", "  option transport-type tcp/client",
    `  option remote-host ${o.hosts}`, `  option remote-port ${o.port}`, `  option remote-subvolume ${o.volume ?? "locks"}`,
    `  option transport-timeout ${o.timeout ?? 5}`, ...(o.extra ?? []).map((l) => `  option ${l}`), "end-volume", "",
  ].join("\n");
}

export interface ServerProc {
  host: string;
  port: number;
  brick: string;
  logFile: string;
  child: ChildProcess;
  /** The server's log so far. */
  log(): string;
  /** SIGKILL (a crash), and wait for exit. */
  kill(): Promise<void>;
  /** SIGTERM and wait (escalates to SIGKILL after 5 s). */
  stop(): Promise<void>;
  alive(): boolean;
}

const running = new Set<ServerProc>();
const tempDirs: string[] = [];

export function tempDir(prefix = "gha-net-"): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.push(d);
  return d;
}

/** Resolves once host:port accepts TCP connections. */
export async function waitForPort(host: string, port: number, timeoutMs = 15000, child?: ChildProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((res) => {
      const s = net.connect({ host, port }, () => {
        s.destroy();
        res(true);
      });
      s.on("error", () => res(false));
    });
    if (ok) return;
    if (child && child.exitCode !== null) throw new Error(`server exited with ${child.exitCode} before listening on ${host}:${port}`);
    if (Date.now() > deadline) throw new Error(`nothing listens on ${host}:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function spawnTsx(args: string[]): ChildProcess {
  return spawn(process.execPath, ["--import", "tsx", __filename, ...args], { cwd: REPO, stdio: ["ignore", "pipe", "pipe"] });
}

/** Starts a brick server process (posix + locks + protocol/server) and waits until it listens. */
export async function startBrickServer(o: BrickServerOptions): Promise<ServerProc> {
  const dir = tempDir("gha-srv-");
  const brick = o.brick ?? join(dir, "brick");
  return startServer(brickVolfile({ ...o, brick }), o.host, o.port, brick, dir);
}

/** Starts a server process for any volfile. */
export async function startServer(volfile: string, host: string, port: number, brick = "", dir = tempDir("gha-srv-")): Promise<ServerProc> {
  const volPath = join(dir, "server.vol");
  const logFile = join(dir, "server.log");
  writeFileSync(volPath, volfile);
  // A restarted server appends: a failure message can then tell what happened before the restart too.
  appendFileSync(logFile, existsSync(logFile) ? `--- restarted at ${new Date().toISOString()} ---\n` : "");
  const useCli = existsSync(GLUSTERFSD) && process.env.GHA_TEST_OWN_SERVER !== "1";
  if (useCli) ensureBuilt();
  const child = useCli
    ? spawn(process.execPath, [GLUSTERFSD, "-f", volPath, "--log-file", logFile, "--log-level", "debug"], { cwd: REPO, stdio: ["ignore", "pipe", "pipe"] })
    : spawnTsx(["serve", volPath, logFile]);
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  child.stdout!.resume();
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  const proc: ServerProc = {
    host, port, brick, logFile, child,
    log: () => readFileSync(logFile, "utf8") + stderr,
    alive: () => child.exitCode === null && child.signalCode === null,
    kill: async () => {
      if (proc.alive()) child.kill("SIGKILL");
      await exited;
      running.delete(proc);
    },
    stop: async () => {
      if (proc.alive()) {
        child.kill("SIGTERM");
        const t = setTimeout(() => child.kill("SIGKILL"), 5000);
        await exited;
        clearTimeout(t);
      }
      running.delete(proc);
    },
  };
  running.add(proc);
  try {
    await waitForPort(host, port, 15000, child);
  } catch (err) {
    await proc.kill();
    throw new Error(`${(err as Error).message}\n${proc.log()}`);
  }
  return proc;
}

/** Spawns one of this file's helper modes as a process (lock-holder, connect-once). */
export function spawnHelper(args: string[], wrap: string[] = [], opts: { stdin?: boolean } = {}): ChildProcess {
  const cmd = [process.execPath, "--import", "tsx", __filename, ...args];
  const stdio: ("ignore" | "pipe")[] = [opts.stdin ? "pipe" : "ignore", "pipe", "pipe"];
  const child = wrap.length
    ? spawn(wrap[0]!, [...wrap.slice(1), ...cmd], { cwd: REPO, stdio })
    : spawn(cmd[0]!, cmd.slice(1), { cwd: REPO, stdio });
  running.add({
    host: "", port: 0, brick: "", logFile: "", child, log: () => "", alive: () => child.exitCode === null,
    kill: async () => void child.kill("SIGKILL"), stop: async () => void child.kill("SIGKILL"),
  });
  return child;
}

/** Resolves with the first stdout line matching `re` (rejects if the process exits first). */
export function waitForLine(child: ChildProcess, re: RegExp, timeoutMs = 15000): Promise<string> {
  return new Promise((resolveLine, reject) => {
    let out = "";
    let err = "";
    const t = setTimeout(() => reject(new Error(`timed out waiting for ${re}; stdout: ${out}; stderr: ${err}`)), timeoutMs);
    child.stderr?.on("data", (d: Buffer) => (err += d.toString()));
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const line = out.split("\n").find((l) => re.test(l));
      if (line !== undefined) {
        clearTimeout(t);
        resolveLine(line);
      }
    });
    child.once("exit", (code) => {
      clearTimeout(t);
      reject(new Error(`process exited (${code}) before ${re}; stdout: ${out}; stderr: ${err}`));
    });
  });
}

/** Kills every process started here and removes the temp dirs (call from after()). */
export async function stopAllServers(): Promise<void> {
  await Promise.all([...running].map((p) => p.kill().catch(() => undefined)));
  running.clear();
  for (const d of tempDirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

/** iptables rules that make host:port silent (packets dropped both ways); `remove()` is idempotent. */
export function dropTraffic(host: string, port: number): { remove(): void } {
  const rules = [
    ["INPUT", "-s", host, "-p", "tcp", "--sport", String(port), "-j", "DROP"],
    ["INPUT", "-d", host, "-p", "tcp", "--dport", String(port), "-j", "DROP"],
  ];
  const added: string[][] = [];
  try {
    for (const r of rules) {
      execFileSync("iptables", ["-I", ...r]);
      added.push(r);
    }
  } catch (err) {
    for (const r of added) execFileSync("iptables", ["-D", ...r]);
    throw err;
  }
  return {
    remove() {
      for (const r of added.splice(0)) {
        try {
          execFileSync("iptables", ["-D", ...r]);
        } catch {
          // already gone
        }
      }
    },
  };
}

// ---- script modes (child processes) ----

async function serve(volPath: string, logFile: string): Promise<void> {
  const log = createLogger({ file: logFile, level: "debug", name: "test-server" });
  const graph = Graph.fromFile(volPath, { log });
  await graph.start();
  const stop = () => void graph.stop().then(() => process.exit(0));
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

const CTX = { uid: 0, gid: 0, pid: process.pid, lkOwner: `holder-${process.pid}`, client: "local" };

async function clientGraph(volPath: string) {
  const graph = Graph.fromFile(volPath, { log: silentLogger() });
  await graph.start();
  return graph;
}

async function lockHolder(volPath: string, path: string): Promise<void> {
  const graph = await clientGraph(volPath);
  const fd = new Fd(path, 0o2 | 0o100);
  await graph.top.create(CTX, { path }, fd.flags, 0o644, fd);
  await graph.top.lk(CTX, fd, "setlk", { type: "wr", start: 0, len: 0, pid: process.pid });
  await graph.top.inodelk(CTX, "test-domain", { path }, "setlk", { type: "wr", start: 0, len: 0, pid: process.pid });
  process.stdout.write("locked\n");
  setInterval(() => undefined, 1 << 30);
}

async function connectOnce(volPath: string): Promise<void> {
  const text = readFileSync(volPath, "utf8");
  const host = /remote-host\s+(\S+)/.exec(text)?.[1] ?? "";
  const addresses = (await dns.lookup(host, { all: true })).map((a) => a.address);
  const graph = await clientGraph(volPath);
  await graph.top.stat(CTX, { path: "/" });
  const dump = graph.top.dump() as { address: string };
  process.stdout.write(JSON.stringify({ addresses, connected: dump.address }) + "\n");
  await graph.stop();
}

/** What `fs-loop` prints when told to stop. */
export interface FsLoopReport {
  iterations: number;
  failures: { op: string; code: string; at: number }[];
  /** The slowest single syscall, ms, and which. */
  worstMs: number;
  worstOp: string;
  /** When the loop started (epoch ms). */
  startedAt: number;
}

/**
 * An application on a mount (the seed's Apache, plus writes): stat, write a whole file, read it back,
 * over and over with synchronous syscalls, until stdin closes; every failure and the worst stall are recorded.
 */
async function fsLoop(dir: string): Promise<void> {
  let stop = false;
  process.stdin.on("data", () => undefined);
  process.stdin.on("end", () => (stop = true));
  process.stdin.on("close", () => (stop = true));
  const report: FsLoopReport = { iterations: 0, failures: [], worstMs: 0, worstOp: "", startedAt: Date.now() };
  const timed = <T>(op: string, fn: () => T): T | undefined => {
    const t0 = Date.now();
    try {
      return fn();
    } catch (err) {
      report.failures.push({ op, code: String((err as NodeJS.ErrnoException).code ?? (err as Error).message), at: Date.now() });
      return undefined;
    } finally {
      const ms = Date.now() - t0;
      if (ms > report.worstMs) {
        report.worstMs = ms;
        report.worstOp = op;
      }
    }
  };
  process.stdout.write("looping\n");
  for (let i = 0; !stop; i++) {
    const file = join(dir, `loop-${i % 4}.txt`);
    const body = `iteration ${i}\n`.repeat(1 + (i % 50));
    if (i >= 4) timed("stat", () => statSync(file));
    timed("write", () => writeFileSync(file, body));
    const back = timed("read", () => readFileSync(file, "utf8"));
    if (back !== undefined && back !== body) report.failures.push({ op: "read", code: "MISMATCH", at: Date.now() });
    report.iterations++;
    // Let stdin's end be seen (the syscalls above are synchronous).
    if (i % 20 === 0) await new Promise((r) => setImmediate(r));
  }
  process.stdout.write(JSON.stringify(report) + "\n");
}

if (require.main === module) {
  const [mode, ...rest] = process.argv.slice(2);
  const run = mode === "serve" ? serve(rest[0]!, rest[1]!)
    : mode === "lock-holder" ? lockHolder(rest[0]!, rest[1]!)
    : mode === "connect-once" ? connectOnce(rest[0]!)
    : mode === "fs-loop" ? fsLoop(rest[0]!)
    : Promise.reject(new Error(`unknown mode ${mode}`));
  run.catch((err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}
