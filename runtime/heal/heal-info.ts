/**
 * `heal info`: per brick, the entries of its pending index, each classified by inspecting every
 * replica — split-brain, gfid mismatch, pending heal, or (like GlusterFS's "Possibly undergoing heal")
 * marks that only an operation in flight left: nobody is accused and the file's locks are held.
 */
import { FopError } from "../core/errors";
import type { Afr } from "../xlators/cluster/afr/afr";
import { batchLock } from "../xlators/cluster/afr/entry-eager";
import { dataLock, metadataLock } from "../xlators/cluster/afr/inode-write";
import { direction, gfidConflict, inspect, isDir } from "../xlators/cluster/afr/inspect";
import { lockAll, type LockSpec } from "../xlators/cluster/afr/transaction";
import { readIndex } from "./pending-index";

export type EntryStatus = "pending" | "possibly-healing" | "split-brain" | "gfid-mismatch";

/** Whether a transaction or heal holds the locks of `path` right now (probed without waiting). */
async function inUse(afr: Afr, path: string, dir: boolean): Promise<boolean> {
  const loc = { path };
  const specs: LockSpec[] = dir
    ? [batchLock(afr, path, "wr"), { kind: "entry", domain: afr.name, loc, basename: null }]
    : [dataLock(afr, loc), metadataLock(afr, loc)];
  try {
    const held = await lockAll(afr, afr.internalCtx(), specs, afr.upChildren(), { blocking: false });
    await held.releaseAll();
    return false;
  } catch (err) {
    if (["EAGAIN", "EWOULDBLOCK", "EDEADLK"].includes(FopError.from(err).code)) return true;
    throw err;
  }
}

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
  const accused = [...kinds, ...(isDir(first) ? (["entry"] as const) : [])].some((k) => direction(afr, insp, k).accused.length > 0);
  if (!accused && (await inUse(afr, path, isDir(first)))) return "possibly-healing";
  return "pending";
}

/** Nothing left for heal to do (entries only in flight do not count). */
export function healComplete(bricks: BrickInfo[]): boolean {
  return bricks.every((b) => b.status === "Connected" && b.entries.every((e) => e.status === "possibly-healing"));
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
    info.splitBrain = info.entries.filter((e) => e.status === "split-brain" || e.status === "gfid-mismatch").length;
    return info;
  }));
}

const STATUS_TEXT: Record<Exclude<EntryStatus, "pending">, string> = {
  "possibly-healing": "Possibly undergoing heal",
  "split-brain": "Is in split-brain",
  "gfid-mismatch": "Has a gfid mismatch (split-brain)",
};

export function formatHealInfo(bricks: BrickInfo[], splitBrainOnly = false): string {
  const out: string[] = [];
  for (const b of bricks) {
    out.push(`Brick ${b.brick}`);
    const entries = splitBrainOnly ? b.entries.filter((e) => e.status === "split-brain" || e.status === "gfid-mismatch") : b.entries;
    for (const e of entries) out.push(e.status === "pending" ? e.path : `${e.path} - ${STATUS_TEXT[e.status]}`);
    out.push(`Status: ${b.status}`);
    out.push(`Number of entries${splitBrainOnly ? " in split-brain" : ""}: ${b.status === "Connected" ? entries.length : "-"}`);
    out.push("");
  }
  return out.join("\n");
}
