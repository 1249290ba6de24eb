// gluster-ha probe HOST:PORT VOLUME [--replicated] [--timeout S] [--ssl-cert F --ssl-key F --ssl-ca F]
// Exits 0 as soon as the server completes a handshake for VOLUME; retries until the timeout (the Pulumi
// component waits for servers with it). Exit 1: no successful handshake in time (the last error is printed).
// --replicated: also wait until every replicate volume of the server has all its children up (its link
// to each peer is established), so writes from then on reach every brick, not a pending heal.
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { parseArgs } from "node:util";
import { FopError } from "../../core/errors";
import { ClientConnection } from "../../xlators/protocol/client/connection";
import { SERVER_STATUS_XATTR } from "../../xlators/protocol/server/connection";
import type { Command } from "./command";

const USAGE = "usage: gluster-ha probe HOST:PORT VOLUME [--replicated] [--timeout SECONDS] [--ssl-cert F --ssl-key F --ssl-ca F]\n";
const CTX = { uid: 0, gid: 0, pid: process.pid, lkOwner: "", client: "probe" };

/** "host:port", "[v6]:port" or a bare host (port 6996). */
export function parseHostPort(s: string): { host: string; port: number } | undefined {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(s) ?? /^([^:]+)(?::(\d+))?$/.exec(s);
  if (!m) return undefined;
  const port = m[2] === undefined ? 6996 : Number(m[2]);
  return port >= 1 && port <= 65535 ? { host: m[1]!, port } : undefined;
}

/** What a server's status xattr says of its replicate volumes' children (the replicas it reaches). */
export interface ReplicateStatus {
  replicate?: { name: string; children?: { name: string; up: boolean }[] }[];
}

/** The children of the server's replicate volumes: how many, and those down as "afr-volume/child". */
export function replicaChildren(status: ReplicateStatus): { total: number; down: string[] } {
  const all = (status.replicate ?? []).flatMap((r) => (r.children ?? []).map((c) => ({ ...c, name: `${r.name}/${c.name}` })));
  return { total: all.length, down: all.filter((c) => !c.up).map((c) => c.name) };
}

/** The children of the server's replicate volumes that are down (from its status xattr). */
export async function downReplicaChildren(conn: ClientConnection): Promise<string[]> {
  const raw = await conn.request("getxattr", [CTX, { path: "/" }, SERVER_STATUS_XATTR]);
  return replicaChildren(JSON.parse(Buffer.from(raw as Uint8Array).toString("utf8")) as ReplicateStatus).down;
}

/**
 * One handshake attempt; resolves when the server accepted VOLUME (and, with `replicated`, every replica
 * child of the server is up), rejects with its FopError otherwise.
 */
export async function probeOnce(o: { host: string; port: number; volume: string; timeout: number; tls?: { cert: Buffer; key: Buffer; ca: Buffer }; replicated?: boolean }): Promise<string> {
  const conn = await ClientConnection.connect({
    host: o.host, port: o.port, volume: o.volume, timeout: o.timeout, pingInterval: o.timeout,
    maxFrame: 1 << 20, tls: o.tls, label: `${hostname()}:${process.pid}:probe`, xlator: "probe",
  });
  try {
    const down = o.replicated ? await downReplicaChildren(conn) : [];
    if (down.length) throw new FopError("ENOTCONN", `replica children down: ${down.join(", ")}`, { xlator: "probe", fop: "getxattr" });
  } finally {
    conn.abandon("probe done");
  }
  return conn.clientId;
}

export const probe: Command = {
  summary: "wait until a server answers a handshake for a volume (HOST:PORT VOLUME [--replicated] [--timeout S])",
  async run(argv) {
    let parsed;
    try {
      parsed = parseArgs({
        args: argv, allowPositionals: true,
        options: { timeout: { type: "string", default: "10" }, replicated: { type: "boolean" }, "ssl-cert": { type: "string" }, "ssl-key": { type: "string" }, "ssl-ca": { type: "string" } },
      });
    } catch (e) {
      process.stderr.write(`gluster-ha probe: ${(e as Error).message}\n${USAGE}`);
      return 2;
    }
    const [target, volume] = parsed.positionals;
    const addr = target ? parseHostPort(target) : undefined;
    const timeout = Number(parsed.values.timeout);
    if (!addr || !volume || parsed.positionals.length !== 2 || !(timeout > 0)) {
      process.stderr.write(USAGE);
      return 2;
    }
    const { "ssl-cert": cert, "ssl-key": key, "ssl-ca": ca } = parsed.values;
    const tls = cert && key && ca ? { cert: readFileSync(cert), key: readFileSync(key), ca: readFileSync(ca) } : undefined;
    const deadline = Date.now() + timeout * 1000;
    let last: FopError | undefined;
    for (;;) {
      const left = (deadline - Date.now()) / 1000;
      if (left <= 0) break;
      try {
        await probeOnce({ ...addr, volume, timeout: Math.max(0.2, Math.min(left, 5)), tls, replicated: parsed.values.replicated });
        process.stdout.write(`${target} serves ${volume}${parsed.values.replicated ? ", all replicas up" : ""}\n`);
        return 0;
      } catch (err) {
        last = FopError.from(err);
      }
      await new Promise((r) => setTimeout(r, Math.min(250, Math.max(0, deadline - Date.now()))));
    }
    process.stderr.write(`gluster-ha probe: ${target} ${volume}: ${last ? `${last.code}: ${last.message}` : "timed out"}\n`);
    return 1;
  },
};
