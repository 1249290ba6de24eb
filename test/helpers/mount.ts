// Mounts a volfile with the BUILT glusterfs CLI (dist/bin/glusterfs.js) in a child process, the way a
// user would, and takes it down again. Builds the CLIs first when the bundle is older than the sources.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, readdirSync, readFileSync, rmSync, statfsSync, statSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { lazyUnmount, mountEntry } from "../../runtime/fuse/mounts";

export const REPO = resolve(__dirname, "../..");
export const GLUSTERFS_BIN = join(REPO, "dist/bin/glusterfs.js");
export const GLUSTERFSD_BIN = join(REPO, "dist/bin/glusterfsd.js");

function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestMtime(p));
    else if (e.name.endsWith(".ts") || e.name.endsWith(".json")) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

/**
 * Makes sure dist/bin is current (`npm run build`; `npm test` runs it first, so this is usually a no-op).
 * A type error elsewhere in the tree fails the build's tsc step after the bundles are written; the
 * bundles are what the tests run, so only a missing or stale bundle is an error here.
 */
export function ensureBuilt(): void {
  const sources = Math.max(newestMtime(join(REPO, "runtime")), newestMtime(join(REPO, "schema")));
  const built = (f: string) => existsSync(f) && statSync(f).mtimeMs >= sources;
  if (built(GLUSTERFS_BIN) && built(GLUSTERFSD_BIN)) return;
  const r = spawnSync("npm", ["run", "build"], { cwd: REPO, encoding: "utf8" });
  if (!built(GLUSTERFS_BIN) || !built(GLUSTERFSD_BIN)) {
    throw new Error(`npm run build did not produce the CLIs:\n${r.stdout}\n${r.stderr}`);
  }
}

export interface MountOptions {
  /** Extra CLI flags (e.g. ["--attribute-timeout", "0"]). */
  args?: string[];
  /** Where to put the volfile, mountpoint and log (default: a new temp dir, removed by unmount()). */
  dir?: string;
  logLevel?: string;
  /** How long to wait for the mount to appear (ms). */
  timeoutMs?: number;
}

export interface Mounted {
  mountpoint: string;
  pid: number;
  child: ChildProcess;
  volfile: string;
  logFile: string;
  /** The log so far (pino JSON lines). */
  log(): Promise<string>;
  /** SIGTERM, wait for the process to end; falls back to SIGKILL + lazy unmount. Removes the temp dir. */
  unmount(): Promise<void>;
}

export function waitForExit(child: ChildProcess, ms: number): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((res) => {
    const t = setTimeout(() => res(null), ms);
    child.once("exit", (code) => {
      clearTimeout(t);
      res(code);
    });
  });
}

/** Writes `volfileText` to a file and mounts it with `glusterfs -f FILE MOUNTPOINT --foreground`. */
export async function mountVolfile(volfileText: string, opts: MountOptions = {}): Promise<Mounted> {
  ensureBuilt();
  const ownDir = opts.dir === undefined;
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), "gha-mount-")));
  const mountpoint = join(dir, "mnt");
  const volfile = join(dir, "client.vol");
  const logFile = join(dir, "glusterfs.log");
  await mkdir(mountpoint, { recursive: true }).catch((err: NodeJS.ErrnoException) => {
    // A stale mount left there by a killed process: the CLI clears it, which is what is tested.
    if (err.code !== "ENOTCONN") throw err;
  });
  await writeFile(volfile, volfileText);
  const child = spawn(process.execPath, [
    GLUSTERFS_BIN, "-f", volfile, mountpoint, "--foreground", "--log-file", logFile,
    "--log-level", opts.logLevel ?? "INFO", ...(opts.args ?? []),
  ], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));

  let done = false;
  const unmount = async () => {
    if (done) return;
    done = true;
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      if ((await waitForExit(child, 10_000)) === null && child.exitCode === null) {
        child.kill("SIGKILL");
        await waitForExit(child, 5_000);
      }
    }
    if (mountEntry(mountpoint)) await lazyUnmount(mountpoint).catch(() => undefined);
    if (ownDir) await rm(dir, { recursive: true, force: true });
  };
  const readLog = () => readFile(logFile, "utf8").catch(() => "");

  const deadline = Date.now() + (opts.timeoutMs ?? 20_000);
  // Mounted means: in /proc/mounts and answering (a stale mount is listed too, but fails with ENOTCONN;
  // statfs, because stat may be answered from the kernel's attribute cache).
  const live = () => {
    if (!mountEntry(mountpoint)?.fstype.startsWith("fuse")) return false;
    try {
      statfsSync(mountpoint);
      return true;
    } catch {
      return false;
    }
  };
  while (!live()) {
    if (child.exitCode !== null || Date.now() > deadline) {
      const log = await readLog();
      await unmount();
      throw new Error(`glusterfs did not mount (exit ${child.exitCode}):\n${stderr}\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { mountpoint, pid: child.pid!, child, volfile, logFile, log: readLog, unmount };
}

/** The seed-shaped local volfile: storage/posix on `brick`, features/posix-locks on top. */
export function posixLocksVolfile(brick: string, extra = ""): string {
  return `volume brick
  type storage/posix
  option directory ${brick}
end-volume

volume locks
  type features/posix-locks
  subvolumes brick
end-volume
${extra}`;
}

/** A statedump of a mount or server process (SIGUSR1), parsed; the file is removed. */
export async function statedumpOf(m: { pid: number }): Promise<Record<string, unknown>> {
  const dir = process.env.GLUSTER_HA_DUMP_DIR || "/tmp";
  const mine = () => readdirSync(dir).filter((f) => f.startsWith(`glusterdump.${m.pid}.`) && !f.endsWith(".tmp"));
  const existing = new Set(mine());
  process.kill(m.pid, "SIGUSR1");
  for (const deadline = Date.now() + 5000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 50))) {
    const fresh = mine().find((f) => !existing.has(f));
    if (!fresh) continue;
    const text = readFileSync(join(dir, fresh), "utf8");
    rmSync(join(dir, fresh), { force: true });
    return JSON.parse(text) as Record<string, unknown>;
  }
  throw new Error(`no statedump of pid ${m.pid} written`);
}
