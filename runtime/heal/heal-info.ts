/**
 * `heal info`: per brick, the entries of its pending index, each classified by inspecting every
 * replica — split-brain, gfid mismatch, or just pending heal (like `gluster volume heal VOL info`).
 */
import type { Afr } from "../xlators/cluster/afr/afr";
import { direction, gfidConflict, inspect, isDir } from "../xlators/cluster/afr/inspect";
import { readIndex } from "./pending-index";

export type EntryStatus = "pending" | "split-brain" | "gfid-mismatch";

export interface BrickInfo {
  child: string;
  brick: string;
  brickId?: string;
  status: "Connected" | "Transport endpoint is not connected";
  entries: { path: string; gfid: string; status: EntryStatus }[];
  count: number;
  splitBrain: number;
}

export async function classify(afr: Afr, path: string): Promise<EntryStatus | undefined> {
  const insp = await inspect(afr, { path });
  if (insp.present.size === 0) return undefined;
  if (gfidConflict(insp)) return "gfid-mismatch";
  const first = insp.present.values().next().value!.stat;
  const kinds = isDir(first) ? (["metadata"] as const) : (["data", "metadata"] as const);
  if (kinds.some((k) => direction(afr, insp, k).splitBrain)) return "split-brain";
  return "pending";
}

export async function healInfo(afr: Afr, labels: string[]): Promise<BrickInfo[]> {
  const statusCache = new Map<string, Promise<EntryStatus | undefined>>();
  return Promise.all(afr.children.map(async (c, i) => {
    const info: BrickInfo = {
      child: c.name, brick: labels[i] ?? c.name, brickId: afr.brickIds[i],
      status: c.isUp() ? "Connected" : "Transport endpoint is not connected", entries: [], count: 0, splitBrain: 0,
    };
    if (!c.isUp()) return info;
    const index = await readIndex(afr, i).catch(() => undefined);
    if (!index) {
      info.status = "Transport endpoint is not connected";
      return info;
    }
    for (const e of index) {
      if (!statusCache.has(e.path)) statusCache.set(e.path, classify(afr, e.path).catch(() => "pending" as const));
      const st = await statusCache.get(e.path)!;
      if (st === undefined) continue; // stale index entry of a file gone everywhere
      info.entries.push({ path: e.path, gfid: e.gfid, status: st });
    }
    info.entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    info.count = info.entries.length;
    info.splitBrain = info.entries.filter((e) => e.status !== "pending").length;
    return info;
  }));
}

export function formatHealInfo(bricks: BrickInfo[], splitBrainOnly = false): string {
  const out: string[] = [];
  for (const b of bricks) {
    out.push(`Brick ${b.brick}`);
    const entries = splitBrainOnly ? b.entries.filter((e) => e.status !== "pending") : b.entries;
    for (const e of entries) {
      out.push(e.status === "pending" ? e.path : `${e.path} - ${e.status === "split-brain" ? "Is in split-brain" : "Has a gfid mismatch (split-brain)"}`);
    }
    out.push(`Status: ${b.status}`);
    out.push(`Number of entries${splitBrainOnly ? " in split-brain" : ""}: ${b.status === "Connected" ? entries.length : "-"}`);
    out.push("");
  }
  return out.join("\n");
}
