/**
 * Looks a path up on every reachable child with the changelog xattrs, and reads the result: which
 * replicas hold the good copy of data / metadata / entries, which are stale, which disagree on gfid.
 * Shared by lookup, open, heal and heal info.
 */
import { constants as fsc } from "node:fs";
import { FopError } from "../../../core/errors";
import type { Iatt, Loc } from "../../../core/types";
import { XDATA } from "../../../core/types";
import type { Afr } from "./afr";
import { findDirection, pendingMatrix, type ChangelogKind, type Direction } from "./changelog";

export interface Replica {
  stat: Iatt;
  xattrs: Record<string, Buffer>;
}

export interface Inspection {
  loc: Loc;
  /** Children that have the entry. */
  present: Map<number, Replica>;
  /** Children that answered ENOENT. */
  missing: number[];
  /** Children down or failing otherwise. */
  unreachable: number[];
  /** Error of the unreachable/failed children (other than ENOENT). */
  errors: Map<number, FopError>;
}

/** `extraXattrs`: more xattrs to fetch with the changelog (a caller's want-xattrs). */
export async function inspect(afr: Afr, loc: Loc, among = afr.upChildren(), extraXattrs: readonly string[] = []): Promise<Inspection> {
  const ctx = afr.internalCtx();
  const want = extraXattrs.length === 0 ? afr.allChangelogKeys() : [...new Set([...afr.allChangelogKeys(), ...extraXattrs])];
  const res: Inspection = { loc, present: new Map(), missing: [], unreachable: [], errors: new Map() };
  for (let i = 0; i < afr.children.length; i++) if (!among.includes(i)) res.unreachable.push(i);
  await Promise.all(among.map(async (i) => {
    try {
      const r = await afr.children[i]!.lookup(ctx, { path: loc.path }, { [XDATA.wantXattrs]: want });
      res.present.set(i, { stat: r.stat, xattrs: r.xattrs ?? {} });
    } catch (err) {
      const e = FopError.from(err, { xlator: afr.name, fop: "lookup" });
      if (e.code === "ENOENT" || e.code === "ENOTDIR") res.missing.push(i);
      else {
        res.unreachable.push(i);
        res.errors.set(i, e);
      }
    }
  }));
  res.missing.sort();
  res.unreachable.sort();
  return res;
}

export function fileType(mode: number): number {
  return mode & fsc.S_IFMT;
}

export function isDir(st: Iatt): boolean {
  return fileType(st.mode) === fsc.S_IFDIR;
}

export function isRegular(st: Iatt): boolean {
  return fileType(st.mode) === fsc.S_IFREG;
}

/** Source/sink direction for one kind over the replicas present. */
export function direction(afr: Afr, insp: Inspection, kind: ChangelogKind): Direction {
  const rows = new Map<number, Record<string, Buffer>>();
  for (const [i, r] of insp.present) rows.set(i, r.xattrs);
  return findDirection(pendingMatrix(rows, (j) => afr.keysOf(j), afr.children.length, kind));
}

/** Present replicas whose gfid or file type differs from the majority / first one. */
export function gfidConflict(insp: Inspection): boolean {
  const gfids = new Set([...insp.present.values()].map((r) => r.stat.gfid));
  const types = new Set([...insp.present.values()].map((r) => fileType(r.stat.mode)));
  return gfids.size > 1 || types.size > 1;
}

export function metadataDiffers(a: Iatt, b: Iatt): boolean {
  return (a.mode & 0o7777) !== (b.mode & 0o7777) || a.uid !== b.uid || a.gid !== b.gid;
}

/** Whether the entry needs any heal: pending counters, a missing replica, or differing attributes. */
export function needsHeal(afr: Afr, insp: Inspection): boolean {
  if (insp.present.size === 0) return false;
  if (insp.missing.length > 0 || gfidConflict(insp)) return true;
  const kinds: ChangelogKind[] = ["data", "metadata", "entry"];
  if (kinds.some((k) => direction(afr, insp, k).pending)) return true;
  const reps = [...insp.present.values()];
  const first = reps[0]!.stat;
  return reps.some((r) => metadataDiffers(first, r.stat) || (isRegular(first) && r.stat.size !== first.size));
}

export interface Readable {
  /** Replicas reads may use. */
  sources: number[];
  /** Data or metadata split-brain (entries of a directory never make it unreadable). */
  splitBrain: boolean;
}

/**
 * Which present replicas hold a readable copy: sources of data (files) and metadata; a directory is
 * always listable (from its entry sources when there are any).
 */
export function readable(afr: Afr, insp: Inspection): Readable {
  const present = [...insp.present.keys()];
  if (present.length === 0) return { sources: [], splitBrain: false };
  const first = insp.present.get(present[0]!)!.stat;
  if (isDir(first)) {
    const d = direction(afr, insp, "entry");
    return { sources: d.splitBrain ? present : d.sources, splitBrain: false };
  }
  const data = direction(afr, insp, "data");
  const meta = direction(afr, insp, "metadata");
  if (data.splitBrain || meta.splitBrain) return { sources: [], splitBrain: true };
  let sources = data.sources.filter((i) => meta.sources.includes(i));
  if (sources.length === 0) sources = data.sources;
  // Never read a copy smaller than the largest source (afr_read_subvol_select_by_policy).
  if (isRegular(first) && sources.length > 1) {
    const max = Math.max(...sources.map((i) => insp.present.get(i)!.stat.size));
    sources = sources.filter((i) => insp.present.get(i)!.stat.size === max);
  }
  return { sources, splitBrain: false };
}
