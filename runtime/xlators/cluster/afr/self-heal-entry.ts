/**
 * Entry heal of a directory: under a whole-directory entry lock, make every sink's listing equal the
 * source's — create missing names with the source's gfid, delete names the source does not have (a
 * file deleted while a replica was down must not come back), replace names whose gfid differs.
 * Without a source (nobody blamed, or both blame each other) it only merges: missing names are created
 * everywhere, nothing is deleted, and a name with different gfids is reported as a gfid mismatch.
 */
import { constants as fsc } from "node:fs";
import { posix as pathPosix } from "node:path";
import { Fd, XDATA, type CallCtx, type Iatt } from "../../../core/types";
import type { Afr } from "./afr";
import { direction, fileType, inspect, isDir } from "./inspect";
import { clearPending, healError, readdirAll, removeTree, type HealOptions } from "./self-heal-common";
import { batchLock } from "./entry-eager";
import { lockAll, type HeldLocks } from "./transaction";

export interface EntryHealResult {
  /** Names created on a sink: each still needs its data/metadata (dirs: their entries) healed from `source`. */
  created: { path: string; source: number; sink: number }[];
  deleted: string[];
  gfidMismatch: string[];
  splitBrain: boolean;
  healed: boolean;
}

async function statOf(afr: Afr, ctx: CallCtx, i: number, path: string, st: Iatt | undefined): Promise<Iatt | undefined> {
  if (st) return st;
  return (await afr.children[i]!.lookup(ctx, { path }).catch(() => undefined))?.stat;
}

/** Creates `path` on child `sink` like it is on `source`, with the same gfid. */
async function createLike(afr: Afr, ctx: CallCtx, path: string, source: number, sink: number, st: Iatt): Promise<void> {
  const k = afr.children[sink]!;
  const xdata = { [XDATA.gfidReq]: st.gfid };
  const loc = { path };
  const perm = st.mode & 0o7777;
  switch (fileType(st.mode)) {
    case fsc.S_IFDIR:
      await k.mkdir(ctx, loc, perm, xdata);
      break;
    case fsc.S_IFLNK:
      await k.symlink(ctx, await afr.children[source]!.readlink(ctx, loc), loc, xdata);
      break;
    case fsc.S_IFREG: {
      const fd = new Fd(path, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL);
      await k.create(ctx, loc, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, perm, fd, xdata);
      await k.release(ctx, fd).catch(() => undefined);
      break;
    }
    default:
      await k.mknod(ctx, loc, st.mode, st.rdev, xdata);
  }
  await k.setattr(ctx, loc, { uid: st.uid, gid: st.gid }).catch(() => undefined);
}

/**
 * A name of a multiply-linked file missing on `sink`: if the sink already has the inode under another
 * name (in this directory, or where the file was last seen), link to it. Returns whether it did.
 */
async function linkToExisting(afr: Afr, ctx: CallCtx, sink: number, path: string, st: Iatt, sinkListing: Map<string, Iatt | undefined>): Promise<boolean> {
  const dir = pathPosix.dirname(path);
  const candidates = [...sinkListing].filter(([, s]) => s?.gfid === st.gfid).map(([n]) => pathPosix.join(dir, n));
  const hint = afr.linkHints.get(st.gfid);
  if (hint !== undefined && hint !== path) candidates.push(hint);
  const k = afr.children[sink]!;
  for (const existing of candidates) {
    const there = await k.lookup(ctx, { path: existing }).catch(() => undefined);
    if (there?.stat.gfid !== st.gfid || fileType(there.stat.mode) !== fsc.S_IFREG) continue;
    await k.link(ctx, { path: existing, gfid: st.gfid }, { path });
    return true;
  }
  return false;
}

export async function healEntries(afr: Afr, path: string, opts: HealOptions = {}): Promise<EntryHealResult> {
  const ctx = afr.internalCtx();
  const result: EntryHealResult = { created: [], deleted: [], gfidMismatch: [], splitBrain: false, healed: false };
  // Open entry batches (entry-eager.ts) end first: their marks are not this heal's to clear.
  const batches = await lockAll(afr, ctx, [batchLock(afr, path, "wr")], afr.upChildren());
  let held: HeldLocks;
  try {
    held = await lockAll(afr, ctx, [{ kind: "entry", domain: afr.name, loc: { path }, basename: null }], afr.upChildren());
  } catch (err) {
    await batches.releaseAll();
    throw err;
  }
  try {
    const insp = await inspect(afr, { path }, held.children);
    for (const [i, r] of insp.present) if (!isDir(r.stat)) insp.present.delete(i);
    const present = [...insp.present.keys()];
    if (present.length === 0) return result;
    const d = direction(afr, insp, "entry");
    let sources: number[];
    let sinks: number[];
    let authoritative: boolean; // whether sinks may lose names
    if (opts.source !== undefined && insp.present.has(opts.source)) {
      sources = [opts.source];
      sinks = present.filter((i) => i !== opts.source);
      authoritative = true;
    } else if (d.splitBrain || !d.pending || d.sources.length === present.length) {
      sources = present;
      sinks = present;
      authoritative = false;
      result.splitBrain = d.splitBrain;
    } else {
      sources = d.sources;
      sinks = d.sinks;
      authoritative = true;
    }
    const listings = new Map<number, Map<string, Iatt | undefined>>();
    await Promise.all(present.map(async (i) => listings.set(i, await readdirAll(afr, ctx, i, path))));
    const mismatch = new Set<string>();
    for (const sink of sinks) {
      const mine = listings.get(sink)!;
      const others = sources.filter((s) => s !== sink);
      const names = new Set(others.flatMap((s) => [...listings.get(s)!.keys()]));
      for (const name of names) {
        const child = pathPosix.join(path, name);
        const src = others.find((s) => listings.get(s)!.has(name))!;
        const srcStat = await statOf(afr, ctx, src, child, listings.get(src)!.get(name));
        if (!srcStat) continue;
        if (mine.has(name)) {
          const sinkStat = await statOf(afr, ctx, sink, child, mine.get(name));
          if (!sinkStat || (sinkStat.gfid === srcStat.gfid && fileType(sinkStat.mode) === fileType(srcStat.mode))) continue;
          if (!authoritative) {
            mismatch.add(child);
            continue;
          }
          afr.log.warn({ path: child, sink: afr.children[sink]!.name }, "gfid mismatch: replacing the stale replica's entry");
          await removeTree(afr, ctx, sink, child, sinkStat);
        }
        if (fileType(srcStat.mode) === fsc.S_IFREG && srcStat.nlink > 1) {
          await afr.linkHints.byGfid.run(srcStat.gfid, async () => {
            if (!(await linkToExisting(afr, ctx, sink, child, srcStat, mine))) await createLike(afr, ctx, child, src, sink, srcStat);
            afr.linkHints.note(srcStat.gfid, child);
          });
        } else {
          await createLike(afr, ctx, child, src, sink, srcStat);
        }
        result.created.push({ path: child, source: src, sink });
      }
      if (authoritative) {
        for (const [name, st] of mine) {
          if (names.has(name)) continue;
          const child = pathPosix.join(path, name);
          await removeTree(afr, ctx, sink, child, st);
          result.deleted.push(child);
        }
      }
    }
    result.gfidMismatch = [...mismatch];
    for (const p of mismatch) afr.gfidMismatch.add(p);
    if (d.pending && mismatch.size === 0) await clearPending(afr, ctx, insp, "entry");
    result.healed = d.pending || result.created.length > 0 || result.deleted.length > 0;
    if (result.created.length || result.deleted.length) {
      afr.log.info({ path, created: result.created.length, deleted: result.deleted.length }, "entry self-heal done");
    }
    return result;
  } catch (err) {
    throw healError(afr, err);
  } finally {
    await held.releaseAll();
    await batches.releaseAll();
  }
}
