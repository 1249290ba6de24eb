/**
 * Statedump (SIGUSR1, as GlusterFS): one JSON file with the process and every translator's state —
 * its type, options in effect, whether it is up, and its own dump() (open fds, locks held and
 * waiting, write-behind queues, caches, pending heals). Written to /tmp/glusterdump.<pid>.<time>
 * (GLUSTER_HA_DUMP_DIR overrides the directory), the path logged with msgid STATEDUMP_WRITTEN.
 */
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Graph } from "./graph";
import type { Xlator } from "./xlator";
import { transientReclaims } from "./transient-buffers";

export interface XlatorState {
  type: string;
  up: boolean;
  children: string[];
  options: Record<string, unknown>;
  state: Record<string, unknown>;
}

function stateOf(x: Xlator): XlatorState {
  let state: Record<string, unknown>;
  try {
    state = x.dump();
  } catch (err) {
    state = { error: (err as Error).message };
  }
  let up = false;
  try {
    up = x.isUp();
  } catch {
    // A translator that cannot say counts as down.
  }
  return { type: x.type, up, children: x.children.map((c) => c.name), options: { ...x.options }, state };
}

/** The whole dump as an object (tests and `gluster-ha` read it). `extra` adds sections (fuse, ...). */
export function collectStatedump(graph: Graph, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const volumes: Record<string, XlatorState> = {};
  for (const [name, x] of graph.volumes) volumes[name] = stateOf(x);
  const mem = process.memoryUsage();
  return {
    pid: process.pid,
    time: new Date().toISOString(),
    process: {
      argv: process.argv.slice(1),
      uptimeSeconds: Math.round(process.uptime()),
      rssBytes: mem.rss,
      heapUsedBytes: mem.heapUsed,
      heapTotalBytes: mem.heapTotal,
      /** Buffers' memory outside the JS heap (file data in flight and in caches). */
      externalBytes: mem.external,
      /** Young-generation and full collections asked for after short-lived big buffers (core/transient-buffers). */
      transientReclaims: transientReclaims(),
      node: process.version,
    },
    volfile: graph.volfile.file,
    top: graph.top.name,
    volumes,
    ...extra,
  };
}

export function statedumpDir(): string {
  return process.env.GLUSTER_HA_DUMP_DIR || "/tmp";
}

/** Writes the dump (atomically: readers never see half a file) and returns its path. */
export function writeGraphStatedump(graph: Graph, extra: Record<string, unknown> = {}): string {
  const dir = statedumpDir();
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `glusterdump.${process.pid}.${Date.now()}`);
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, JSON.stringify(collectStatedump(graph, extra), (_k, v: unknown) => (v === Infinity ? "inf" : typeof v === "bigint" ? String(v) : v), 2));
  renameSync(tmp, path);
  return path;
}
