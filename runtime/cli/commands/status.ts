// gluster-ha status -f SERVER_VOLFILE | --server HOST:PORT/VOLUME ...  [--json] [--timeout S]
// Asks every node of the cluster over the protocol (the same fop table as any client): statfs of the
// brick root (free space), getxattr "/" trusted.gha.index (pending heals), and the virtual xattr
// trusted.gha.server-status that protocol/server answers itself (clients, uptime, split-brain).
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { parseArgs } from "node:util";
import { ConfigError, FopError } from "../../core/errors";
import type { Statfs } from "../../core/types";
import { loadVolfile, type CheckedVolfile } from "../../volfile";
import { ClientConnection } from "../../xlators/protocol/client/connection";
import { SERVER_STATUS_XATTR } from "../../xlators/protocol/server/connection";
import type { Command } from "./command";
import { parseHostPort, replicaChildren } from "./probe";

const USAGE = `usage:
  gluster-ha status -f SERVER_VOLFILE [--host ADDRESS] [--volume AFR_VOLUME] [--json] [--timeout S]
  gluster-ha status --server HOST:PORT/VOLUME [--server ...] [--json] [--timeout S]
  -f        a server volfile: its replicate volume's bricks are the nodes (this one at --host, default
            its bind-address; the others at their protocol/client remote-host)
  --server  a node directly: its address, port and the brick volume it exports
  exit 0: every node up and reaching its replicas; 1: some node down; 2: usage;
  3: every node up, but some node does not reach all its replicas (the servers are cut off from
     each other: each side writes alone, heals follow)
`;

const OPTIONS = {
  volfile: { type: "string", short: "f" },
  server: { type: "string", multiple: true },
  host: { type: "string" },
  volume: { type: "string" },
  json: { type: "boolean" },
  timeout: { type: "string", default: "3" },
  "ssl-cert": { type: "string" },
  "ssl-key": { type: "string" },
  "ssl-ca": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

/** One node to ask: where it listens and which (brick) volume to attach to. */
export interface NodeTarget {
  name: string;
  host: string;
  port: number;
  volume: string;
  tls?: { cert: Buffer; key: Buffer; ca: Buffer };
}

export interface NodeStatus {
  name: string;
  address: string;
  port: number;
  volume: string;
  up: boolean;
  error?: string;
  /** Client connections other than this status query (mounts, the peer's replication link). */
  clients?: number;
  clientList?: { client: string; volume: string }[];
  uptimeSeconds?: number;
  brick?: { totalBytes: number; freeBytes: number; availBytes: number; usedPercent: number };
  pendingHeal?: number;
  splitBrain?: number;
  /**
   * The replicas this node's own replicate volume reaches (itself and its peers): both nodes up to this
   * query while 1 of 2 here means the servers cannot reach each other, and each writes alone. `down`:
   * "afr-volume/child", as probe --replicated names them.
   */
  replicas?: { up: number; total: number; down: string[] };
}

const CTX = { uid: 0, gid: 0, pid: process.pid, lkOwner: "", client: "local" };

function readTls(v: { "ssl-cert"?: string; "ssl-key"?: string; "ssl-ca"?: string }): NodeTarget["tls"] {
  if (!v["ssl-cert"] || !v["ssl-key"] || !v["ssl-ca"]) return undefined;
  return { cert: readFileSync(v["ssl-cert"]), key: readFileSync(v["ssl-key"]), ca: readFileSync(v["ssl-ca"]) };
}

/** The nodes of a server volfile: every brick of its replicate volume (the local one and the peers). */
export function nodesOfVolfile(vf: CheckedVolfile, o: { host?: string; volume?: string } = {}): NodeTarget[] {
  const afrs = vf.volumes.filter((v) => v.type === "cluster/afr");
  const afr = o.volume !== undefined ? afrs.find((v) => v.name === o.volume) : afrs.length === 1 ? afrs[0] : undefined;
  if (!afr) {
    throw new ConfigError(o.volume !== undefined
      ? `no cluster/afr volume "${o.volume}" in ${vf.file}`
      : `${vf.file} has ${afrs.length} cluster/afr volumes; name one with --volume`, { file: vf.file, line: 0 });
  }
  const server = vf.volumes.find((v) => v.type === "protocol/server");
  const bind = server?.options["bind-address"] as string | undefined;
  const localHost = o.host ?? (bind && bind !== "0.0.0.0" ? bind : "127.0.0.1");
  const localPort = (server?.options["listen-port"] as number | undefined) ?? 6996;
  return afr.subvolumes.map((name) => {
    const child = vf.volumes.find((v) => v.name === name)!;
    if (child.type === "protocol/client") {
      const hosts = child.options["remote-host"] as string[];
      return { name, host: hosts[0]!, port: (child.options["remote-port"] as number | undefined) ?? 6996, volume: String(child.options["remote-subvolume"]) };
    }
    if (!server) throw new ConfigError(`${vf.file}: local brick ${name} but no protocol/server to reach it through`, { file: vf.file, line: afr.line });
    return { name, host: localHost, port: localPort, volume: name };
  });
}

/** Asks one node; never rejects (a node that cannot be asked is down, with the reason). */
export async function nodeStatus(t: NodeTarget, timeout: number): Promise<NodeStatus> {
  const out: NodeStatus = { name: t.name, address: t.host, port: t.port, volume: t.volume, up: false };
  let conn: ClientConnection | undefined;
  try {
    conn = await ClientConnection.connect({
      host: t.host, port: t.port, volume: t.volume, timeout, pingInterval: timeout,
      maxFrame: 16 << 20, tls: t.tls, label: `${hostname()}:${process.pid}:status`, xlator: "status",
    });
    out.up = true;
    const root = { path: "/" };
    const [fs, index, status] = await Promise.all([
      conn.request("statfs", [CTX, root]) as Promise<Statfs>,
      conn.request("getxattr", [CTX, root, "trusted.gha.index"]).catch(() => undefined),
      conn.request("getxattr", [CTX, root, SERVER_STATUS_XATTR]).catch(() => undefined),
    ]);
    const block = fs.frsize || fs.bsize;
    const total = fs.blocks * block;
    out.brick = {
      totalBytes: total, freeBytes: fs.bfree * block, availBytes: fs.bavail * block,
      usedPercent: total > 0 ? Math.round(((fs.blocks - fs.bfree) / fs.blocks) * 1000) / 10 : 0,
    };
    if (index) out.pendingHeal = (JSON.parse(Buffer.from(index as Uint8Array).toString("utf8")) as unknown[]).length;
    if (status) {
      const s = JSON.parse(Buffer.from(status as Uint8Array).toString("utf8")) as {
        uptimeSeconds: number; clients: { client: string; volume: string }[];
        replicate: { name: string; splitBrain: number; children?: { name: string; up: boolean }[] }[];
      };
      const others = s.clients.filter((c) => c.client !== conn!.clientId && c.volume !== "");
      out.clients = others.length;
      out.clientList = others.map((c) => ({ client: c.client, volume: c.volume }));
      out.uptimeSeconds = s.uptimeSeconds;
      out.splitBrain = s.replicate.reduce((n, r) => n + r.splitBrain, 0);
      const { total, down } = replicaChildren(s);
      if (total > 0) out.replicas = { up: total - down.length, total, down };
    }
  } catch (err) {
    const e = FopError.from(err);
    out.error = `${e.code}: ${e.message}`;
  } finally {
    conn?.abandon("status done");
  }
  return out;
}

function gib(n: number | undefined): string {
  return n === undefined ? "-" : `${(n / (1 << 30)).toFixed(1)}G`;
}

function uptime(s: number | undefined): string {
  if (s === undefined) return "-";
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  return d > 0 ? `${d}d${h}h` : h > 0 ? `${h}h${m}m` : `${m}m${s % 60}s`;
}

export function formatStatus(nodes: NodeStatus[]): string {
  const head = ["NODE", "ADDRESS", "PORT", "STATUS", "REPLICAS", "CLIENTS", "BRICK FREE", "BRICK SIZE", "USED", "HEAL PENDING", "SPLIT-BRAIN", "UPTIME"];
  const rows = nodes.map((n) => [
    n.name, n.address, String(n.port), n.up ? "up" : "DOWN", n.replicas ? `${n.replicas.up}/${n.replicas.total}` : "-",
    n.clients === undefined ? "-" : String(n.clients), gib(n.brick?.availBytes), gib(n.brick?.totalBytes),
    n.brick ? `${n.brick.usedPercent}%` : "-", n.pendingHeal === undefined ? "-" : String(n.pendingHeal),
    n.splitBrain === undefined ? "-" : String(n.splitBrain), uptime(n.uptimeSeconds),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd();
  const out = [line(head), ...rows.map(line)];
  for (const n of nodes) if (n.error) out.push(`${n.name}: ${n.error}`);
  for (const n of nodes) if (n.replicas?.down.length) out.push(`${n.name}: does not reach ${n.replicas.down.join(", ")}`);
  return out.join("\n") + "\n";
}

export const status: Command = {
  summary: "each node: up/down, address, clients, brick free space, pending heals, split-brain (-f SERVER_VOLFILE | --server HOST:PORT/VOLUME) [--json]",
  async run(argv) {
    let v;
    try {
      v = parseArgs({ args: argv, options: OPTIONS, allowPositionals: false, strict: true }).values;
    } catch (e) {
      process.stderr.write(`gluster-ha status: ${(e as Error).message}\n${USAGE}`);
      return 2;
    }
    if (v.help) {
      process.stdout.write(USAGE);
      return 0;
    }
    const timeout = Number(v.timeout);
    if (!(timeout > 0) || (!v.volfile && !v.server?.length) || (v.volfile && v.server?.length)) {
      process.stderr.write(`gluster-ha status: ${!(timeout > 0) ? `--timeout ${v.timeout}: expected seconds > 0` : "give either -f SERVER_VOLFILE or --server HOST:PORT/VOLUME"}\n${USAGE}`);
      return 2;
    }
    let targets: NodeTarget[];
    try {
      const tls = readTls(v);
      if (v.volfile) {
        const vf = loadVolfile(v.volfile);
        targets = nodesOfVolfile(vf, { host: v.host, volume: v.volume });
        // Volfile SSL settings (of the local protocol/server) apply unless given on the command line.
        const server = vf.volumes.find((x) => x.type === "protocol/server");
        const vtls = tls ?? (server?.options.ssl === true ? readTls({
          "ssl-cert": server.options["ssl-cert"] as string, "ssl-key": server.options["ssl-key"] as string, "ssl-ca": server.options["ssl-ca"] as string,
        }) : undefined);
        targets = targets.map((t) => ({ ...t, tls: vtls }));
      } else {
        targets = v.server!.map((s) => {
          const slash = s.lastIndexOf("/");
          const hp = parseHostPort(slash > 0 ? s.slice(0, slash) : s);
          if (!hp || slash <= 0 || slash === s.length - 1) throw new UsageStatusError(`--server ${s}: expected HOST:PORT/VOLUME`);
          return { name: `${hp.host}:${hp.port}`, ...hp, volume: s.slice(slash + 1), tls };
        });
      }
    } catch (err) {
      if (err instanceof UsageStatusError) {
        process.stderr.write(`gluster-ha status: ${err.message}\n${USAGE}`);
        return 2;
      }
      process.stderr.write(`gluster-ha status: ${(err as Error).message}\n`);
      return 1;
    }
    const nodes = await Promise.all(targets.map((t) => nodeStatus(t, timeout)));
    process.stdout.write(v.json ? `${JSON.stringify({ nodes }, null, 2)}\n` : formatStatus(nodes));
    if (!nodes.every((n) => n.up)) return 1;
    return nodes.some((n) => n.replicas?.down.length) ? 3 : 0;
  },
};

class UsageStatusError extends Error {
  override name = "UsageStatusError";
}
