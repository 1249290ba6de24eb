/**
 * The seed topology on loopback, for fault tests: two glusterfsd processes from the seed's server
 * volfiles (test/fixtures/seed/node{1,2}-server.vol) with only addresses, ports, brick directories and
 * timeouts changed, and FUSE mounts of the seed's client.vol (remote-host: both servers as a comma list).
 * Servers can be killed with SIGKILL and restarted on the same brick; mounts can be killed and remounted
 * on the same mountpoint (the stale FUSE mount stays behind, as after a real crash). A server or mount
 * process that exits without the harness killing it counts as a crash.
 *
 * Each node's peer connection leaves from the node's own address (`bind-address` on its protocol/client),
 * so an iptables rule on the node's address cuts the node off completely (see iptables.ts).
 */
import { execFile, execFileSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, statSync } from "node:fs";
import { stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { getAttributeSync, listAttributesSync } from "@napi-rs/xattr";
import { lazyUnmount, mountEntry } from "../../runtime/fuse/mounts";
import type { NodeStatus } from "../../runtime/cli/commands/status";
import { mountVolfile, waitForExit, type Mounted } from "./mount";
import { startServer, tempDir, type ServerProc } from "./servers";

const run = promisify(execFile);
export const REPO = resolve(__dirname, "../..");
export const SEED_FIXTURES = join(REPO, "test/fixtures/seed");
const GLUSTER_HA = join(REPO, "dist/bin/gluster-ha.js");

export type NodeNo = 1 | 2;
export const nodeAddress = (n: NodeNo) => `127.0.0.${n + 1}`;

export interface ServerVolfileOptions {
  brick: string;
  port: number;
  /** Seconds before a silent peer is declared down (the seed: 5). */
  peerTimeout?: number;
  /** Extra `option` lines for cluster/afr (e.g. "quorum-type auto"). */
  afrOptions?: string[];
  /** Replaces the seed's allow lists (default: the seed's, moved to loopback: 127.0.0.*,127.0.0.1). */
  allow?: string;
}

/** The seed's server volfile for node n, moved to loopback. */
export function seedServerVolfile(n: NodeNo, o: ServerVolfileOptions): string {
  const self = nodeAddress(n);
  const peer = nodeAddress(n === 1 ? 2 : 1);
  let t = readFileSync(join(SEED_FIXTURES, `node${n}-server.vol`), "utf8");
  // The seed's node1 volfile has a typo on line 35 ("gfs-ds- locks") that refuses node2 its peer connection.
  t = t.replace("auth.ip.gfs-ds- locks.allow", "auth.ip.gfs-ds-locks.allow");
  t = t.replace("option directory /ha", `option directory ${o.brick}`);
  t = t.replace(/10\.0\.0\.\*/g, "127.0.0.*").replace(/10\.0\.0\.[23]/g, peer);
  if (o.allow) t = t.replace(/(auth\.ip\.\S+\.allow) [^\n]*/g, `$1 ${o.allow}`);
  t = t.replace(/(option remote-host [^\n]*\n)/, `$1option remote-port ${o.port}\noption bind-address ${self}\n`);
  if (o.peerTimeout !== undefined) t = t.replace(/option transport-timeout \d+/, `option transport-timeout ${o.peerTimeout}`);
  t = t.replace(/(option transport-type tcp\/server[^\n]*\n)/, `$1option bind-address ${self}\noption listen-port ${o.port}\n`);
  t = t.replace(/(type cluster\/afr\n)/, `$1${(o.afrOptions ?? []).map((l) => `option ${l}\n`).join("")}`);
  return t;
}

export interface ClientVolfileOptions {
  port: number;
  /** Comma list of servers (default both: 127.0.0.2,127.0.0.3). */
  hosts?: string;
  /** Seconds (the seed: 10). */
  timeout?: number;
}

/** The seed's client.vol with the round-robin name replaced by a comma list of the servers. */
export function seedClientVolfile(o: ClientVolfileOptions): string {
  let t = readFileSync(join(SEED_FIXTURES, "client.vol"), "utf8");
  t = t.replace("option remote-host cluster.yourdomain.com", `option remote-host ${o.hosts ?? "127.0.0.2,127.0.0.3"}`);
  t = t.replace(/(option remote-subvolume gfs[^\n]*\n)/, `$1option remote-port ${o.port}\n`);
  if (o.timeout !== undefined) t = t.replace(/option transport-timeout \d+/, `option transport-timeout ${o.timeout}`);
  return t;
}

export interface ClusterOptions {
  port: number;
  peerTimeout?: number;
  clientTimeout?: number;
  afrOptions?: string[];
  allow?: string;
  /** Use these directories as bricks (e.g. a tmpfs) instead of new temp dirs. */
  bricks?: [string?, string?];
  /** Mount a client at start (default true). */
  mount?: boolean;
}

export interface ClusterMount extends Mounted {
  dir: string;
  hosts: string;
}

/** "127.0.0.2:gfs-ds-locks Connected: /a (pending), /b (split-brain); ..." from `heal info --json`. */
export function summarizeHealInfo(json: string): string {
  try {
    const info = JSON.parse(json) as { bricks: { brick: string; status: string; count: number; entries: { path: string; status: string }[] }[] };
    return info.bricks.map((b) => `${b.brick} ${b.status} ${b.count}: ${b.entries.slice(0, 8).map((e) => `${e.path} (${e.status})`).join(", ")}`).join("; ");
  } catch {
    return json.slice(0, 2000);
  }
}

/** Polls `cond` every `stepMs` until it is truthy; throws naming `what` after `timeoutMs`. */
export async function waitFor<T>(what: string, cond: () => T | Promise<T>, timeoutMs: number, stepMs = 50): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await cond();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ""}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

export class FaultCluster {
  readonly bricks: [string, string];
  readonly volfiles: [string, string];
  readonly mounts: ClusterMount[] = [];
  private readonly nodes: [ServerProc | undefined, ServerProc | undefined] = [undefined, undefined];
  private readonly expectedExit = new Set<ChildProcess>();
  private readonly crashLog: string[] = [];
  private readonly texts: [string, string];
  private readonly dirs: [string, string];

  private constructor(readonly o: ClusterOptions) {
    this.dirs = [tempDir("gha-faults-n1-"), tempDir("gha-faults-n2-")];
    this.bricks = [o.bricks?.[0] ?? join(this.dirs[0], "ha"), o.bricks?.[1] ?? join(this.dirs[1], "ha")];
    this.volfiles = [join(this.dirs[0], "server.vol"), join(this.dirs[1], "server.vol")];
    this.texts = [1, 2].map((n) =>
      seedServerVolfile(n as NodeNo, { brick: this.bricks[n - 1]!, port: o.port, peerTimeout: o.peerTimeout ?? 2, afrOptions: o.afrOptions, allow: o.allow }),
    ) as [string, string];
  }

  static async start(o: ClusterOptions): Promise<FaultCluster> {
    const c = new FaultCluster(o);
    live.add(c);
    try {
      await c.startNode(1);
      await c.startNode(2);
      await c.waitPeersConnected();
      if (o.mount !== false) await c.mount();
    } catch (err) {
      await c.close();
      throw err;
    }
    return c;
  }

  node(n: NodeNo): ServerProc | undefined {
    return this.nodes[n - 1];
  }

  async startNode(n: NodeNo): Promise<ServerProc> {
    if (this.nodes[n - 1]?.alive()) throw new Error(`node${n} is already running`);
    const p = await startServer(this.texts[n - 1], nodeAddress(n), this.o.port, this.bricks[n - 1], this.dirs[n - 1]);
    this.watch(p.child, `node${n} glusterfsd`, p.log);
    this.nodes[n - 1] = p;
    return p;
  }

  /**
   * Until each server's AFR has its peer up. node1 starts before node2 and reaches it on its next
   * reconnect attempt: a scenario that wrote before then would begin with node2 already "down" for
   * node1 (a double fault once a node is killed), not with the healthy pair it means to break.
   */
  async waitPeersConnected(timeoutMs = 20_000): Promise<void> {
    await waitFor("both servers connected to their peer", () =>
      ([1, 2] as NodeNo[]).every((n) => this.nodes[n - 1]?.log().includes('"msgid":"AFR_CHILD_UP"')), timeoutMs, 50);
  }

  /** kill -9, and wait until it is gone. */
  async killNode(n: NodeNo): Promise<void> {
    const p = this.nodes[n - 1];
    if (!p) return;
    this.expectedExit.add(p.child);
    await p.kill();
    this.nodes[n - 1] = undefined;
  }

  async restartNode(n: NodeNo): Promise<ServerProc> {
    await this.killNode(n);
    return this.startNode(n);
  }

  /** Mounts the seed's client volfile (both servers unless `hosts` says otherwise). */
  async mount(o: { hosts?: string; timeout?: number; dir?: string } = {}): Promise<ClusterMount> {
    const dir = o.dir ?? tempDir("gha-faults-mnt-");
    const hosts = o.hosts ?? "127.0.0.2,127.0.0.3";
    const m = await mountVolfile(seedClientVolfile({ port: this.o.port, hosts, timeout: o.timeout ?? this.o.clientTimeout ?? 3 }), { dir, logLevel: "DEBUG" });
    const cm: ClusterMount = Object.assign(m, { dir, hosts });
    this.watch(m.child, `mount ${m.mountpoint}`, () => readFileSync(m.logFile, "utf8"));
    this.mounts.push(cm);
    return cm;
  }

  /** kill -9 of the mount process: the FUSE mount stays behind, stale (ENOTCONN). */
  async killMount(m: ClusterMount): Promise<void> {
    this.expectedExit.add(m.child);
    m.child.kill("SIGKILL");
    await waitForExit(m.child, 5000);
  }

  /** The node a mount's client is connected to right now (from `ss`), if any. */
  async connectedNode(m: ClusterMount): Promise<NodeNo | undefined> {
    const { stdout } = await run("ss", ["-tnpH", "state", "established"]);
    for (const line of stdout.split("\n")) {
      if (!line.includes(`pid=${m.pid},`)) continue;
      for (const n of [1, 2] as NodeNo[]) if (line.includes(` ${nodeAddress(n)}:${this.o.port} `)) return n;
    }
    return undefined;
  }

  /** Unexpected exits of servers or mounts so far, with their logs' tails. */
  crashes(): string[] {
    return [...this.crashLog];
  }

  private watch(child: ChildProcess, what: string, log: () => string): void {
    child.once("exit", (code, signal) => {
      if (this.expectedExit.has(child) || this.closing) return;
      // A mount unmounted by its own unmount() ends with SIGTERM -> exit 0; that is not a crash.
      if (code === 0 || signal === "SIGTERM") return;
      let tail = "";
      try {
        tail = log().split("\n").slice(-15).join("\n");
      } catch {
        // log gone
      }
      this.crashLog.push(`${what} exited (code ${code}, signal ${signal})\n${tail}`);
    });
  }

  brickPath(n: NodeNo, path: string): string {
    return join(this.bricks[n - 1], path);
  }

  brickId(n: NodeNo): string {
    return readFileSync(join(this.bricks[n - 1], ".glusterfs/brick-id"), "utf8").trim();
  }

  /** The data|metadata|entry counters node `holder` keeps against node `blamed` for `path`. */
  blame(holder: NodeNo, blamed: NodeNo, path: string): number[] {
    const v = getAttributeSync(this.brickPath(holder, path), `trusted.afr.${this.brickId(blamed)}`);
    if (!v || v.length < 12) return [0, 0, 0];
    return [v.readInt32BE(0), v.readInt32BE(4), v.readInt32BE(8)];
  }

  /** Runs the built `gluster-ha` CLI (never throws; resolves with status and output). */
  async cli(args: string[], timeoutMs = 120_000): Promise<{ status: number; stdout: string; stderr: string }> {
    try {
      const r = await run(process.execPath, [GLUSTER_HA, ...args], { timeout: timeoutMs, maxBuffer: 64 << 20 });
      return { status: 0, stdout: r.stdout, stderr: r.stderr };
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string; message: string };
      return { status: typeof e.code === "number" ? e.code : -1, stdout: e.stdout ?? "", stderr: e.stderr ?? e.message };
    }
  }

  /** `gluster-ha status --json` of both nodes (each node's own view of the replicas it reaches). */
  async statusJson(): Promise<{ nodes: NodeStatus[] }> {
    const r = await this.cli(["status", "-f", this.volfiles[0], "--json"]);
    if (!r.stdout.trim().startsWith("{")) throw new Error(`status failed (${r.status}): ${r.stderr}`);
    return JSON.parse(r.stdout);
  }

  /** `gluster-ha heal info --json` through node n (default: a running one). */
  async healInfo(n?: NodeNo): Promise<{ bricks: { brick: string; status: string; count: number; splitBrain: number; entries: { path: string; status: string }[] }[] }> {
    const via = n ?? (this.nodes[0]?.alive() ? 1 : 2);
    const r = await this.cli(["heal", "info", "-f", this.volfiles[via - 1], "--json"]);
    if (r.status !== 0) throw new Error(`heal info failed (${r.status}): ${r.stderr}`);
    return JSON.parse(r.stdout);
  }

  /**
   * Waits until both bricks are connected and no entry is pending heal. `busy` names files a running
   * writer is in the middle of (their changelog is legitimately non-zero while a write is in flight).
   */
  async waitHealed(timeoutMs: number, busy?: () => string[]): Promise<void> {
    if (!busy) {
      const secs = Math.max(1, Math.ceil(timeoutMs / 1000));
      const via = this.nodes[0]?.alive() ? 1 : 2;
      const r = await this.cli(["heal", "info", "-f", this.volfiles[via - 1], "--wait-empty", "--timeout", String(secs), "--json"], timeoutMs + 30_000);
      if (r.status !== 0) throw new Error(`heal did not complete within ${secs} s: ${summarizeHealInfo(r.stdout)}${r.stderr}`);
      return;
    }
    let last = "";
    const pendingSince = new Map<string, number>();
    await waitFor("heal complete", async () => {
      const info = await this.healInfo();
      const skip = new Set(busy().map((p) => (p.startsWith("/") ? p : `/${p}`)));
      // With a writer running, entries its operations hold locked (and accuse nobody) are not heal's to do.
      const left = info.bricks.flatMap((b) => (b.status !== "Connected" ? [`${b.brick} down`]
        : b.entries.filter((e) => e.status !== "possibly-healing").map((e) => e.path).filter((p) => !skip.has(p))));
      last = left.slice(0, 10).join(", ");
      // An entry that became pending after the heal daemon's crawl waits for the next crawl (heal-timeout,
      // 600 s by default) or a lookup: after 5 s, look it up through a mount (the seed's `ls -lR` way).
      const mount = this.mounts.find((m) => m.child.exitCode === null && m.child.signalCode === null);
      for (const p of left.filter((x) => x.startsWith("/"))) {
        const since = pendingSince.get(p) ?? Date.now();
        pendingSince.set(p, since);
        if (mount && Date.now() - since > 5000 && !this.lookupHealed.has(p)) {
          this.lookupHealed.add(p);
          await stat(join(mount.mountpoint, p)).catch(() => undefined);
        }
      }
      return left.length === 0;
    }, timeoutMs, 300).catch((err: Error) => {
      throw new Error(`${err.message}; still pending: ${last}; changelogs: ${this.changelogs(last.split(", ").filter((p) => p.startsWith("/")))}`);
    });
  }

  /** Connection, child up/down and heal events from every server and mount log, in order (failure messages). */
  events(limit = 80): string {
    const WANTED = /"msgid":"(PC_CONNECTED|PC_DISCONNECTED|PC_CONNECT_FAILED|PS_CLIENT_ATTACHED|PS_CLIENT_DETACHED|PS_CONNECTION_DROPPED|AFR_CHILD_UP|AFR_CHILD_DOWN|AFR_HEAL_DONE|AFR_HEAL_FAILED|AFR_SPLIT_BRAIN|PROC_STARTED|PC_RESEND|PC_REOPEN_FAILED|WB_WRITE_FAILED|WB_ERROR_AT_RELEASE)"|data heal direction|^--- restarted/;
    const lines: { t: string; text: string }[] = [];
    const sources = [
      ...this.nodes.map((p, i) => ({ who: `node${i + 1}`, read: () => (p ? readFileSync(p.logFile, "utf8") : "") })),
      ...this.mounts.map((m, i) => ({ who: `mount${i + 1}`, read: () => readFileSync(m.logFile, "utf8") })),
    ];
    for (const { who, read } of sources) {
      let text = "";
      try { text = read(); } catch { continue; }
      for (const l of text.split("\n").filter((x) => WANTED.test(x))) {
        try {
          const j = JSON.parse(l) as { time?: number; msgid?: string; msg?: string; child?: string; address?: string; client?: string; path?: string; source?: string; sinks?: string[]; sizes?: unknown; bytes?: number };
          const detail = j.source ? ` from ${j.source} to ${j.sinks?.join(",")} sizes ${JSON.stringify(j.sizes)}` : j.bytes !== undefined ? ` ${j.bytes} bytes` : "";
          lines.push({ t: new Date(j.time ?? 0).toISOString().slice(11, 23), text: `${who} ${j.msgid ?? j.msg} ${j.child ?? j.address ?? j.client ?? ""} ${j.path ?? ""}${detail}`.trim() });
        } catch {
          lines.push({ t: "", text: `${who} ${l.trim()}` });
        }
      }
    }
    lines.sort((a, b) => (a.t < b.t ? -1 : a.t > b.t ? 1 : 0));
    return `events:\n${lines.slice(-limit).map((l) => `  ${l.t} ${l.text}`).join("\n")}`;
  }

  /** The size and AFR counters (data/metadata/entry) of each path on each brick, for failure messages. */
  changelogs(paths: string[]): string {
    const ids = ([1, 2] as const).map((n) => { try { return `node${n}=${this.brickId(n).slice(0, 8)}`; } catch { return `node${n}=?`; } }).join(" ");
    return `(${ids})\n` + [...new Set(paths)].slice(0, 5).map((p) => `  ${p} ${this.bricks.map((b, n) => {
      try {
        const full = join(b, p);
        const marks = listAttributesSync(full).filter((k) => k.startsWith("trusted.afr."))
          .map((k) => { const v = getAttributeSync(full, k)!; return `${k.slice(12, 20)}=${v.readInt32BE(0)}/${v.readInt32BE(4)}/${v.readInt32BE(8)}`; });
        return `node${n + 1}[size ${statSync(full).size} ${marks.join(" ")}]`;
      } catch (e) {
        return `node${n + 1}[${(e as NodeJS.ErrnoException).code ?? e}]`;
      }
    }).join(" ")}`).join("\n");
  }

  /** Entries waitHealed had to look up through a mount to get them healed. */
  readonly lookupHealed = new Set<string>();

  /** Stops everything (mounts first, then servers); safe to call twice and after failures. */
  private closing = false;
  async close(): Promise<void> {
    this.closing = true;
    live.delete(this);
    for (const m of this.mounts.splice(0)) {
      await m.unmount().catch(() => undefined);
      if (mountEntry(m.mountpoint)) await lazyUnmount(m.mountpoint).catch(() => undefined);
    }
    for (const n of [1, 2] as NodeNo[]) await this.nodes[n - 1]?.stop().catch(() => undefined);
  }
}

/** Mounts a tmpfs of `size` (e.g. "8m") at a new directory; `unmount()` is idempotent. */
export async function tmpfsBrick(size: string): Promise<{ dir: string; unmount(): Promise<void> }> {
  const dir = join(tempDir("gha-faults-tmpfs-"), "brick");
  mkdirSync(dir);
  await run("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir]);
  let done = false;
  return {
    dir,
    async unmount() {
      if (done || !existsSync(dir)) return;
      done = true;
      await run("umount", ["-l", dir]).catch(() => undefined);
    },
  };
}

// A test process killed by a signal (the runner's timeout, ^C) skips its after hooks: take the servers
// and mounts down with it anyway.
const live = new Set<FaultCluster>();
function killLeftovers(): void {
  for (const c of live) {
    for (const m of c.mounts) {
      m.child.kill("SIGKILL");
      try {
        execFileSync("fusermount", ["-uz", m.mountpoint], { stdio: "ignore" });
      } catch {
        // not mounted
      }
    }
    for (const n of [1, 2] as NodeNo[]) c.node(n)?.child.kill("SIGKILL");
  }
}
process.on("exit", killLeftovers);
for (const sig of ["SIGTERM", "SIGINT"] as const) {
  process.once(sig, () => {
    killLeftovers();
    process.exit(128 + (sig === "SIGTERM" ? 15 : 2));
  });
}
