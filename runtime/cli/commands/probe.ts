// gluster-ha probe HOST:PORT VOLUME [--timeout S] [--ssl-cert F --ssl-key F --ssl-ca F]
// Exits 0 as soon as the server completes a handshake for VOLUME; retries until the timeout (the Pulumi
// component waits for servers with it). Exit 1: no successful handshake in time (the last error is printed).
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { parseArgs } from "node:util";
import { FopError } from "../../core/errors";
import { ClientConnection } from "../../xlators/protocol/client/connection";
import type { Command } from "./command";

const USAGE = "usage: gluster-ha probe HOST:PORT VOLUME [--timeout SECONDS] [--ssl-cert F --ssl-key F --ssl-ca F]\n";

/** "host:port", "[v6]:port" or a bare host (port 6996). */
export function parseHostPort(s: string): { host: string; port: number } | undefined {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(s) ?? /^([^:]+)(?::(\d+))?$/.exec(s);
  if (!m) return undefined;
  const port = m[2] === undefined ? 6996 : Number(m[2]);
  return port >= 1 && port <= 65535 ? { host: m[1]!, port } : undefined;
}

/** One handshake attempt; resolves when the server accepted VOLUME, rejects with its FopError otherwise. */
export async function probeOnce(o: { host: string; port: number; volume: string; timeout: number; tls?: { cert: Buffer; key: Buffer; ca: Buffer } }): Promise<string> {
  const conn = await ClientConnection.connect({
    host: o.host, port: o.port, volume: o.volume, timeout: o.timeout, pingInterval: o.timeout,
    maxFrame: 1 << 20, tls: o.tls, label: `${hostname()}:${process.pid}:probe`, xlator: "probe",
  });
  conn.abandon("probe done");
  return conn.clientId;
}

export const probe: Command = {
  summary: "wait until a server answers a handshake for a volume (HOST:PORT VOLUME [--timeout S])",
  async run(argv) {
    let parsed;
    try {
      parsed = parseArgs({
        args: argv, allowPositionals: true,
        options: { timeout: { type: "string", default: "10" }, "ssl-cert": { type: "string" }, "ssl-key": { type: "string" }, "ssl-ca": { type: "string" } },
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
        await probeOnce({ ...addr, volume, timeout: Math.max(0.2, Math.min(left, 5)), tls });
        process.stdout.write(`${target} serves ${volume}\n`);
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
