/**
 * The pending-heal index of each brick, read through AFR's children (works the same for a local
 * brick and over the network): getxattr("/", "trusted.gha.index") -> [{gfid, path}].
 */
import { FopError } from "../core/errors";
import type { Afr } from "../xlators/cluster/afr/afr";
import { INDEX_XATTR } from "../xlators/cluster/afr/changelog";

export interface IndexEntry {
  gfid: string;
  path: string;
}

export async function readIndex(afr: Afr, child: number): Promise<IndexEntry[]> {
  const raw = await afr.children[child]!.getxattr(afr.internalCtx(), { path: "/" }, INDEX_XATTR);
  try {
    const parsed = JSON.parse(raw.toString("utf8")) as IndexEntry[];
    return Array.isArray(parsed) ? parsed.filter((e) => typeof e?.path === "string") : [];
  } catch {
    throw new FopError("EIO", `unreadable pending index on ${afr.children[child]!.name}`, { xlator: afr.name, fop: "getxattr" });
  }
}

/** Parents before children, so entry heals create what file heals then fill. */
export function byDepth(paths: Iterable<string>): string[] {
  const depth = (p: string) => (p === "/" ? 0 : p.split("/").length - 1);
  return [...new Set(paths)].sort((a, b) => depth(a) - depth(b) || (a < b ? -1 : a > b ? 1 : 0));
}

/** Every path pending on any reachable brick (deduplicated, parents first). */
export async function pendingPaths(afr: Afr): Promise<string[]> {
  const lists = await Promise.all(afr.upChildren().map((i) => readIndex(afr, i).catch(() => [] as IndexEntry[])));
  return byDepth(lists.flat().map((e) => e.path));
}

/**
 * Has each brick re-judge its index entry of `path`: an xattrop (adding nothing) makes storage/posix
 * drop the entry when every counter is zero — an entry left behind by a process killed between the
 * post-op and the index update would otherwise stay "pending" for ever.
 */
export async function refreshIndexEntry(afr: Afr, path: string): Promise<void> {
  const ctx = afr.internalCtx();
  await Promise.all(afr.upChildren().map((i) =>
    afr.children[i]!.xattrop(ctx, { path }, "add32", { [afr.blameKey(i)]: Buffer.alloc(12) }).catch(() => undefined)));
}

/** Heals every entry of the index once (the heal daemon's crawl). Resolves to the number healed. */
export async function crawlIndex(afr: Afr): Promise<{ pending: number; healed: number; splitBrain: string[] }> {
  const paths = await pendingPaths(afr);
  if (paths.length > 0) afr.log.info({ msgid: "AFR_HEAL_STARTED", pending: paths.length }, "index crawl started");
  let healed = 0;
  const splitBrain: string[] = [];
  // Depth by depth: a level's entry heals may create what the next level heals.
  const levels = new Map<number, string[]>();
  for (const p of paths) {
    const d = p === "/" ? 0 : p.split("/").length - 1;
    levels.set(d, [...(levels.get(d) ?? []), p]);
  }
  for (const d of [...levels.keys()].sort((a, b) => a - b)) {
    const results = await Promise.all(levels.get(d)!.map((p) => afr.heals.schedule(p)));
    for (const r of results) {
      if (r?.healed) healed++;
      if (r?.splitBrain) splitBrain.push(r.path);
    }
    const settled = results.filter((r) => r && !r.splitBrain && !r.missing && r.gfidMismatch.length === 0);
    await Promise.all(settled.map((r) => refreshIndexEntry(afr, r!.path)));
  }
  return { pending: paths.length, healed, splitBrain };
}
