/**
 * The graph `gluster-ha heal` works through: the server volfile's replicate volume (same name, so the
 * same lock domains as the running servers), with every brick reached over the network through the
 * servers' own features/posix-locks — a local brick through this server's protocol/server, the peer's
 * as the server itself reaches it. Healing therefore takes the same locks as the servers' writes.
 */
import { ConfigError } from "../core/errors";
import { Graph } from "../core/graph";
import type { Logger } from "../core/log";
import { loadVolfile, type CheckedVolfile, type CheckedVolume } from "../volfile";
import { Afr } from "../xlators/cluster/afr/afr";

export interface AdminGraph {
  graph: Graph;
  afr: Afr;
  /** Per child: how the operator knows the brick ("127.0.0.2:/srv/ha"). */
  labels: string[];
  close(): Promise<void>;
}

export interface AdminOptions {
  /** Address of this server (default: its bind-address, or 127.0.0.1 when it binds every address). */
  host?: string;
  /** Which cluster/afr volume (default: the only one). */
  volume?: string;
  log: Logger;
  /** Seconds to wait for the bricks to connect. */
  connectTimeout?: number;
  /** Extra AFR options (favorite-child-policy, data-self-heal-algorithm, ...). */
  afrOptions?: Record<string, string>;
}

function posixDirectory(vf: CheckedVolfile, name: string): string | undefined {
  const vol = vf.volumes.find((v) => v.name === name);
  if (!vol) return undefined;
  if (vol.type === "storage/posix") return vol.options.directory as string;
  for (const s of vol.subvolumes) {
    const d = posixDirectory(vf, s);
    if (d) return d;
  }
  return undefined;
}

function optionLine(key: string, value: unknown): string {
  const v = Array.isArray(value) ? value.join(",") : String(value);
  return `  option ${key} ${v}`;
}

/** The admin volfile text for a server volfile (exported for tests). */
export function adminVolfile(vf: CheckedVolfile, opts: Omit<AdminOptions, "log">): { text: string; labels: string[]; afr: string } {
  const afrs = vf.volumes.filter((v) => v.type === "cluster/afr");
  const afr = opts.volume !== undefined ? afrs.find((v) => v.name === opts.volume) : afrs.length === 1 ? afrs[0] : undefined;
  if (!afr) {
    throw new ConfigError(opts.volume !== undefined
      ? `no cluster/afr volume "${opts.volume}" in ${vf.file}`
      : `${vf.file} has ${afrs.length} cluster/afr volumes; name one with --volume`, { file: vf.file, line: 0 });
  }
  const server = vf.volumes.find((v) => v.type === "protocol/server");
  const bind = server?.options["bind-address"] as string | undefined;
  const host = opts.host ?? (bind && bind !== "0.0.0.0" ? bind : "127.0.0.1");
  const port = (server?.options["listen-port"] as number | undefined) ?? 6996;
  const blocks: string[] = [];
  const labels: string[] = [];
  for (const name of afr.subvolumes) {
    const child = vf.volumes.find((v) => v.name === name) as CheckedVolume;
    const lines = [`volume ${name}`, "  type protocol/client"];
    if (child.type === "protocol/client") {
      for (const k of ["remote-host", "remote-port", "remote-subvolume", "transport-timeout", "ssl", "ssl-cert", "ssl-key", "ssl-ca"]) {
        if (child.options[k] !== undefined) lines.push(optionLine(k, child.options[k]));
      }
      const rh = child.options["remote-host"] as string[];
      labels.push(`${rh.join(",")}:${child.options["remote-subvolume"] as string}`);
    } else {
      if (!server) throw new ConfigError(`${vf.file} has a local brick but no protocol/server to reach it through`, { file: vf.file, line: afr.line });
      lines.push(optionLine("remote-host", host), optionLine("remote-port", port), optionLine("remote-subvolume", name), optionLine("transport-timeout", 10));
      for (const k of ["ssl", "ssl-cert", "ssl-key", "ssl-ca"]) if (server.options[k] !== undefined && k !== "ssl") lines.push(optionLine(k, server.options[k]));
      if (server.options.ssl === true) lines.push(optionLine("ssl", "on"));
      labels.push(`${host}:${posixDirectory(vf, name) ?? name}`);
    }
    lines.push("end-volume");
    blocks.push(lines.join("\n"));
  }
  // The CLI heals many files at once: its latency is the network's, not the disks'.
  const afrLines = [`volume ${afr.name}`, "  type cluster/afr", "  option self-heal-daemon off", "  option self-heal off", "  option heal-parallel 16"];
  for (const k of ["favorite-child-policy", "data-self-heal-algorithm", "heal-block-size", "quorum-type", "quorum-count"]) {
    if (opts.afrOptions?.[k] !== undefined) afrLines.push(`  option ${k} ${opts.afrOptions[k]}`);
    else if (afr.options[k] !== undefined) afrLines.push(optionLine(k, afr.options[k]));
  }
  for (const [k, v] of Object.entries(opts.afrOptions ?? {})) if (!afrLines.some((l) => l.startsWith(`  option ${k} `))) afrLines.push(`  option ${k} ${v}`);
  afrLines.push(`  subvolumes ${afr.subvolumes.join(" ")}`, "end-volume");
  blocks.push(afrLines.join("\n"));
  return { text: blocks.join("\n") + "\n", labels, afr: afr.name };
}

export async function openAdminGraph(serverVolfile: string, opts: AdminOptions): Promise<AdminGraph> {
  const vf = loadVolfile(serverVolfile);
  const { text, labels } = adminVolfile(vf, opts);
  const graph = Graph.fromText(text, `${serverVolfile} (heal)`, { log: opts.log });
  const afr = graph.top as Afr;
  await graph.start();
  const end = Date.now() + (opts.connectTimeout ?? 5) * 1000;
  while (Date.now() < end && !afr.children.every((c) => c.isUp())) await new Promise((r) => setTimeout(r, 50));
  await afr.learnBrickIds();
  return { graph, afr, labels, close: () => graph.stop() };
}
