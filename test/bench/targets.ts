// The three systems the bench compares, each set up and torn down by the bench:
// a plain local directory, gluster-ha in the seed's topology on loopback, GlusterFS 10 (Debian).
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import { join, resolve } from "node:path";
import nodeFlags from "../../runtime/cli/node-flags.json";

export const REPO = resolve(__dirname, "../..");
const SEED = resolve(REPO, "test/fixtures/seed");
/** This bench's ports (24300-24399); GHA_BENCH_PORTS=P1,P2 moves them (to run beside another bench). */
export const [PORT_NODE1, PORT_NODE2] = (process.env.GHA_BENCH_PORTS ?? "24301,24302").split(",").map(Number) as [number, number];

export interface Target {
  name: string;
  /** The directory the workloads run in. */
  dir: string;
  /** Processes whose RSS is sampled, by role. */
  pids(): Record<string, number[]>;
  teardown(): Promise<void>;
}

export async function localTarget(base: string): Promise<Target> {
  const dir = join(base, "local");
  fs.mkdirSync(dir, { recursive: true });
  return { name: "local disk", dir, pids: () => ({}), teardown: async () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Rewrites a volfile's `volume ... end-volume` blocks: options added to blocks of a given type,
 * and text replacements (addresses, directories).
 */
export function patchVolfile(text: string, add: Record<string, string[]>, replace: [RegExp | string, string][]): string {
  for (const [from, to] of replace) text = text.split(from as string).join(to);
  const out: string[] = [];
  let type = "";
  for (const line of text.split("\n")) {
    const t = line.trim();
    const m = /^type\s+(\S+)/.exec(t);
    if (m) type = m[1]!;
    if (t === "end-volume") {
      for (const o of add[type] ?? []) out.push(`option ${o}`);
      type = "";
    }
    out.push(line);
  }
  return out.join("\n");
}

/** The seed's volfiles with loopback addresses, temp bricks and this bench's ports. */
export function seedVolfiles(base: string, [port1, port2]: [number, number] = [PORT_NODE1, PORT_NODE2]): { node1: string; node2: string; client: string; bricks: string[] } {
  const bricks = [join(base, "brick1"), join(base, "brick2")];
  const common: [string, string][] = [
    ["10.0.0.*,127.0.0.1", "127.0.0.*"],
    ["gfs-ds- locks", "gfs-ds-locks"], // the seed's typo: the option it meant
  ];
  const read = (f: string) => fs.readFileSync(join(SEED, f), "utf8");
  const node1 = patchVolfile(read("node1-server.vol"),
    { "protocol/server": ["bind-address 127.0.0.2", `listen-port ${port1}`], "protocol/client": [`remote-port ${port2}`] },
    [...common, ["option directory /ha", `option directory ${bricks[0]}`], ["10.0.0.3", "127.0.0.3"]]);
  const node2 = patchVolfile(read("node2-server.vol"),
    { "protocol/server": ["bind-address 127.0.0.3", `listen-port ${port2}`], "protocol/client": [`remote-port ${port1}`] },
    [...common, ["option directory /ha", `option directory ${bricks[1]}`], ["10.0.0.2", "127.0.0.2"]]);
  const client = patchVolfile(read("client.vol"), { "protocol/client": [`remote-port ${port1}`] },
    [["cluster.yourdomain.com", "127.0.0.2"]]);
  return { node1, node2, client, bricks };
}

function waitFor(what: string, ms: number, check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + ms;
  return (async () => {
    for (;;) {
      if (await check()) return;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
}

function listening(host: string, port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = net.connect({ host, port }, () => {
      s.destroy();
      res(true);
    });
    s.on("error", () => res(false));
  });
}

export function isMounted(dir: string): boolean {
  return fs.readFileSync("/proc/mounts", "utf8").split("\n").some((l) => l.split(" ")[1] === dir);
}

function stopProcess(p: ChildProcess, ms = 10000): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve();
  return new Promise((res) => {
    const timer = setTimeout(() => {
      p.kill("SIGKILL");
    }, ms);
    p.once("exit", () => {
      clearTimeout(timer);
      res();
    });
    p.kill("SIGTERM");
  });
}

export interface GlusterHaOptions {
  /** Extra node flags for the server and client processes (e.g. --cpu-prof). */
  nodeFlags?: (role: string) => string[];
  /** Replaces the client volfile (e.g. to stack io-cache too). */
  clientVolfile?: (seedClient: string) => string;
  /** Replaces a server's volfile (e.g. to put debug/io-stats above each AFR child). */
  serverVolfile?: (node: 1 | 2, seedServer: string) => string;
  /** Environment of the server and client processes, over runtime/cli/node-flags.json's (e.g. MALLOC_TRIM_THRESHOLD_). */
  env?: Record<string, string>;
  /** Extra flags of the glusterfs client (e.g. --md-cache-timeout 0). */
  clientArgs?: string[];
  /** Extra flags of each glusterfsd (e.g. --metrics-port), by node (1 or 2). */
  serverArgs?: (node: 1 | 2) => string[];
  /** The system's name in the results (default "gluster-ha"). */
  name?: string;
  /** The two servers' ports (default: this bench's), e.g. for a second cluster beside the first. */
  ports?: [number, number];
}

export async function glusterHaTarget(base: string, opts: GlusterHaOptions = {}): Promise<Target> {
  const ports = opts.ports ?? [PORT_NODE1, PORT_NODE2];
  const root = join(base, opts.ports ? `gluster-ha-${ports[0]}` : "gluster-ha");
  fs.rmSync(root, { recursive: true, force: true });
  fs.mkdirSync(root, { recursive: true });
  const vols = seedVolfiles(root, ports);
  for (const b of vols.bricks) fs.mkdirSync(b);
  const files = { node1: join(root, "node1-server.vol"), node2: join(root, "node2-server.vol"), client: join(root, "client.vol") };
  fs.writeFileSync(files.node1, opts.serverVolfile ? opts.serverVolfile(1, vols.node1) : vols.node1);
  fs.writeFileSync(files.node2, opts.serverVolfile ? opts.serverVolfile(2, vols.node2) : vols.node2);
  fs.writeFileSync(files.client, opts.clientVolfile ? opts.clientVolfile(vols.client) : vols.client);
  const mnt = join(root, "mnt");
  fs.mkdirSync(mnt);
  const procs: ChildProcess[] = [];
  const start = (role: string, args: string[]) => {
    const log = fs.openSync(join(root, `${role}.log`), "a");
    const p = spawn(process.execPath, [...nodeFlags.flags, ...(opts.nodeFlags?.(role) ?? []), ...args], { stdio: ["ignore", log, log], cwd: root, env: { ...process.env, ...nodeFlags.env, ...opts.env } });
    fs.closeSync(log);
    procs.push(p);
    return p;
  };
  const teardown = async () => {
    if (isMounted(mnt)) spawnSync("umount", [mnt]);
    for (const p of [...procs].reverse()) await stopProcess(p);
    if (isMounted(mnt)) spawnSync("umount", ["-l", mnt]);
    fs.rmSync(root, { recursive: true, force: true });
  };
  try {
    const node1 = start("glusterfsd-node1", [join(REPO, "dist/bin/glusterfsd.js"), "-f", files.node1, "--log-level", "WARNING", ...(opts.serverArgs?.(1) ?? [])]);
    const node2 = start("glusterfsd-node2", [join(REPO, "dist/bin/glusterfsd.js"), "-f", files.node2, "--log-level", "WARNING", ...(opts.serverArgs?.(2) ?? [])]);
    await waitFor("glusterfsd on 127.0.0.2 and 127.0.0.3", 20000, async () => {
      for (const p of [node1, node2]) if (p.exitCode !== null) throw new Error(`glusterfsd exited ${p.exitCode} (see ${root}/*.log)`);
      return (await listening("127.0.0.2", ports[0])) && (await listening("127.0.0.3", ports[1]));
    });
    const client = start("glusterfs-client", [join(REPO, "dist/bin/glusterfs.js"), "-f", files.client, mnt, "--foreground", "--log-level", "WARNING", ...(opts.clientArgs ?? [])]);
    await waitFor("the gluster-ha mount", 20000, () => {
      if (client.exitCode !== null) throw new Error(`glusterfs exited ${client.exitCode} (see ${root}/glusterfs-client.log)`);
      return isMounted(mnt);
    });
    // AFR needs both children up before writes replicate; give the peer connection a moment.
    await waitFor("a writable mount", 20000, () => {
      try {
        fs.writeFileSync(join(mnt, ".bench-probe"), "x");
        fs.unlinkSync(join(mnt, ".bench-probe"));
        return true;
      } catch {
        return false;
      }
    });
  } catch (err) {
    await teardown();
    throw err;
  }
  const dir = join(mnt, "bench");
  fs.mkdirSync(dir);
  return {
    name: opts.name ?? "gluster-ha",
    dir,
    pids: () => ({ glusterfsd: procs.slice(0, 2).map((p) => p.pid!), client: procs.slice(2).map((p) => p.pid!) }),
    teardown,
  };
}

const PEER_SCRIPT = join(REPO, "scripts/glusterfs-peer.sh");

export async function glusterfsTarget(base: string, install: boolean): Promise<Target> {
  const workdir = join(base, "glusterfs");
  const mnt = join(workdir, "mnt");
  const args = ["--workdir", workdir, "--mount", mnt];
  const up = spawnSync(PEER_SCRIPT, ["up", ...args, ...(install ? ["--install-glusterfs"] : [])], { encoding: "utf8" });
  if (up.status !== 0) {
    spawnSync(PEER_SCRIPT, ["down", ...args]);
    throw new Error(`GlusterFS peer setup failed (exit ${up.status}): ${up.stderr.trim().split("\n").slice(-3).join(" / ")}`);
  }
  const dir = join(mnt, "bench");
  fs.mkdirSync(dir);
  const pids = () => {
    const out = spawnSync(PEER_SCRIPT, ["pids", ...args], { encoding: "utf8" }).stdout;
    const get = (role: string) => (out.split("\n").find((l) => l.startsWith(role + " ")) ?? "").split(/\s+/).slice(1).filter(Boolean).map(Number);
    return { glusterfsd: get("bricks"), client: get("client") };
  };
  const cached = pids();
  return {
    name: "GlusterFS 10",
    dir,
    pids: () => cached,
    teardown: async () => {
      spawnSync(PEER_SCRIPT, ["down", ...args], { stdio: "inherit" });
      fs.rmSync(workdir, { recursive: true, force: true });
    },
  };
}
