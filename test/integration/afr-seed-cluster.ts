// The seed's two servers and client, as processes on loopback: the seed's volfiles with only the
// addresses (10.0.0.2/3 -> 127.0.0.2/3, bind-address added), ports and brick directories changed.
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";

export const SEED = resolve(__dirname, "../fixtures/seed");

export interface SeedServerOptions {
  brick: string;
  port: number;
  /** Extra options for the cluster/afr volume (e.g. "self-heal-daemon off"). */
  afrOptions?: string[];
}

export function seedServerVolfile(node: 1 | 2, o: SeedServerOptions): string {
  let t = readFileSync(join(SEED, `node${node}-server.vol`), "utf8");
  t = t.replace("option directory /ha", `option directory ${o.brick}`);
  // The seed's node1 volfile has a typo ("gfs-ds- locks") that would refuse node2 its peer connection.
  t = t.replace("auth.ip.gfs-ds- locks.allow", "auth.ip.gfs-ds-locks.allow");
  t = t.replace(/10\.0\.0\.\*/g, "127.0.0.*").replace(/10\.0\.0\.2/g, "127.0.0.2").replace(/10\.0\.0\.3/g, "127.0.0.3");
  t = t.replace(/(option remote-host [^\n]*\n)/, `$1option remote-port ${o.port}\n`);
  t = t.replace(/(option transport-type tcp\/server[^\n]*\n)/, `$1option bind-address 127.0.0.${node + 1}\noption listen-port ${o.port}\n`);
  t = t.replace(/(type cluster\/afr\n)/, `$1${(o.afrOptions ?? []).map((l) => `option ${l}\n`).join("")}`);
  return t;
}

/** The seed's client.vol, with the round-robin name replaced by both servers' addresses. */
export function seedClientVolfile(o: { port: number; hosts?: string }): string {
  let t = readFileSync(join(SEED, "client.vol"), "utf8");
  t = t.replace("option remote-host cluster.yourdomain.com", `option remote-host ${o.hosts ?? "127.0.0.2,127.0.0.3"}`);
  t = t.replace(/(option remote-subvolume gfs[^\n]*\n)/, `$1option remote-port ${o.port}\n`);
  return t;
}

import { existsSync, readFileSync as readBytes } from "node:fs";
import { getAttributeSync } from "@napi-rs/xattr";
import { spawnSync } from "node:child_process";
import { startServer, stopAllServers, tempDir, type ServerProc } from "../helpers/servers";
import { mountVolfile, type Mounted } from "../helpers/mount";

export interface SeedCluster {
  bricks: [string, string];
  nodes: [ServerProc | undefined, ServerProc | undefined];
  volfiles: [string, string];
  mount: Mounted;
  /** (Re)starts node n (1 or 2) from its volfile and brick. */
  start(n: 1 | 2): Promise<ServerProc>;
  kill(n: 1 | 2): Promise<void>;
  brickId(n: 1 | 2): string;
  /** The data|metadata|entry counters node `holder`'s brick keeps against node `blamed` for `path`. */
  blame(holder: 1 | 2, blamed: 1 | 2, path: string): number[];
  /** Runs the built `gluster-ha` CLI. */
  cli(args: string[]): { status: number | null; stdout: string; stderr: string };
  close(): Promise<void>;
}

export async function startSeedCluster(o: { port: number; afrOptions?: string[]; clientHosts?: string }): Promise<SeedCluster> {
  const dirs = [tempDir("gha-seed-n1-"), tempDir("gha-seed-n2-")];
  const bricks: [string, string] = [join(dirs[0]!, "ha"), join(dirs[1]!, "ha")];
  const texts = [1, 2].map((n) => seedServerVolfile(n as 1 | 2, { brick: bricks[n - 1]!, port: o.port, afrOptions: o.afrOptions }));
  const volfiles: [string, string] = [join(dirs[0]!, "server.vol"), join(dirs[1]!, "server.vol")];
  const nodes: SeedCluster["nodes"] = [undefined, undefined];
  const start = async (n: 1 | 2) => {
    const p = await startServer(texts[n - 1]!, `127.0.0.${n + 1}`, o.port, bricks[n - 1], dirs[n - 1]);
    nodes[n - 1] = p;
    return p;
  };
  let mount: Mounted | undefined;
  const close = async () => {
    await mount?.unmount().catch(() => undefined);
    await stopAllServers();
  };
  try {
    await start(1);
    await start(2);
    // As in the seed, the client mounts a running pair: wait until each server's AFR has its peer up
    // (node1 reaches node2 on its next reconnect attempt), so a first write goes to both bricks.
    const peersUp = await waitUntil(() => nodes.every((p) => p?.log().includes('"msgid":"AFR_CHILD_UP"') ?? false), 20_000, 50);
    if (!peersUp) throw new Error("the two servers did not connect to each other within 20 s");
    mount = await mountVolfile(seedClientVolfile({ port: o.port, hosts: o.clientHosts }));
  } catch (err) {
    await close();
    throw err;
  }
  const cluster: SeedCluster = {
    bricks, nodes, volfiles, mount,
    start,
    kill: async (n) => {
      await nodes[n - 1]?.kill();
      nodes[n - 1] = undefined;
    },
    brickId: (n) => readBytes(join(bricks[n - 1], ".glusterfs/brick-id"), "utf8").trim(),
    blame: (holder, blamed, path) => {
      const v = getAttributeSync(join(bricks[holder - 1], path), `trusted.afr.${cluster.brickId(blamed)}`);
      if (!v || v.length < 12) return [0, 0, 0];
      return [v.readInt32BE(0), v.readInt32BE(4), v.readInt32BE(8)];
    },
    cli: (args) => {
      const r = spawnSync(process.execPath, [join(__dirname, "../../dist/bin/gluster-ha.js"), ...args], { encoding: "utf8", timeout: 120_000 });
      return { status: r.status, stdout: r.stdout, stderr: r.stderr };
    },
    close,
  };
  return cluster;
}

export function fileEquals(a: string, b: string): boolean {
  return existsSync(a) && existsSync(b) && readBytes(a).equals(readBytes(b));
}

export async function waitUntil(cond: () => boolean | Promise<boolean>, timeoutMs: number, stepMs = 25): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, stepMs));
  }
}
