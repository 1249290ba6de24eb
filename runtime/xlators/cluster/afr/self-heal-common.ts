/** Helpers shared by the data, metadata and entry heals. */
import { constants as fsc } from "node:fs";
import { posix as pathPosix } from "node:path";
import { FopError } from "../../../core/errors";
import { Fd, type CallCtx, type DirEntry, type Iatt } from "../../../core/types";
import type { Afr } from "./afr";
import { DIRTY_KEY, KIND_SLOT, decodeCounters, delta, type ChangelogKind } from "./changelog";
import { direction, type Inspection } from "./inspect";
import { pickBySplitBrainPolicy } from "./split-brain";

export interface HealOptions {
  /** Force this child as the only source (split-brain resolution from the CLI). */
  source?: number;
}

export interface HealVerdict {
  source?: number;
  sinks: number[];
  splitBrain: boolean;
  /** Counters exist; they are cleared after a successful heal even when there is nothing to copy. */
  pending: boolean;
}

/**
 * Picks the source and the sinks of one kind. Among several sources (every replica self-accusing,
 * or nobody blamed but copies differ), the tie-break is the largest size, then the newest ctime.
 */
export function decide(afr: Afr, insp: Inspection, kind: ChangelogKind, opts: HealOptions,
  differs: (a: Iatt, b: Iatt) => boolean): HealVerdict {
  const present = [...insp.present.keys()];
  const d = direction(afr, insp, kind);
  const statOf = (i: number) => insp.present.get(i)!.stat;
  if (opts.source !== undefined && insp.present.has(opts.source)) {
    return { source: opts.source, sinks: present.filter((i) => i !== opts.source), splitBrain: false, pending: true };
  }
  let sources = d.sources;
  if (d.splitBrain) {
    const pick = insp.unreachable.length === 0 ? pickBySplitBrainPolicy(afr, insp, kind) : undefined;
    if (pick === undefined) return { sinks: [], splitBrain: true, pending: true };
    afr.log.info({ path: insp.loc.path, kind, source: afr.children[pick]!.name, policy: afr.options["favorite-child-policy"] }, "split-brain resolved by favorite-child-policy");
    return { source: pick, sinks: present.filter((i) => i !== pick), splitBrain: false, pending: true };
  }
  if (sources.length === 0) return { sinks: [], splitBrain: false, pending: d.pending };
  const best = [...sources].sort((a, b) => statOf(b).size - statOf(a).size || statOf(b).ctimeMs - statOf(a).ctimeMs || a - b)[0]!;
  const src = statOf(best);
  const sinks = present.filter((i) => i !== best && (d.sinks.includes(i) || (d.pending && sources.length > 1) || differs(src, statOf(i))));
  return { source: best, sinks, splitBrain: false, pending: d.pending };
}

/**
 * Zeroes the counters of `kind` read under lock (subtracting exactly what was read), but only those
 * about the replicas that took part: blame of a replica that is still away must stay.
 */
export async function clearPending(afr: Afr, ctx: CallCtx, insp: Inspection, kind: ChangelogKind): Promise<void> {
  const slot = KIND_SLOT[kind];
  const keys = [...insp.present.keys()].flatMap((j) => afr.keysOf(j));
  const away = afr.children.map((_, j) => j).filter((j) => !insp.present.has(j));
  await Promise.all([...insp.present].map(async ([i, rep]) => {
    const change: Record<string, Buffer> = {};
    for (const key of keys) {
      const v = decodeCounters(rep.xattrs[key])[slot];
      if (v !== 0) change[key] = delta(kind, -v);
    }
    // The dirty counter blames every replica: what it says about those away moves to their keys.
    const dirty = decodeCounters(rep.xattrs[DIRTY_KEY])[slot];
    if (dirty !== 0) {
      change[DIRTY_KEY] = delta(kind, -dirty);
      for (const j of away) {
        const key = afr.blameKey(j);
        change[key] = delta(kind, decodeCounters(change[key])[slot] + dirty);
      }
    }
    if (Object.keys(change).length === 0) return;
    try {
      await afr.children[i]!.xattrop(ctx, insp.loc, "add32", change);
    } catch (err) {
      afr.log.warn({ path: insp.loc.path, child: afr.children[i]!.name, err: (err as Error).message }, "could not clear changelog after heal");
    }
  }));
}

/** Every entry of a directory on one child (without "." and ".."). */
export async function readdirAll(afr: Afr, ctx: CallCtx, i: number, path: string): Promise<Map<string, Iatt | undefined>> {
  const child = afr.children[i]!;
  const fd = new Fd(path, fsc.O_RDONLY, true);
  await child.opendir(ctx, { path }, fd);
  const out = new Map<string, Iatt | undefined>();
  try {
    let offset = 0;
    for (;;) {
      const batch: DirEntry[] = await child.readdir(ctx, fd, offset, true);
      if (batch.length === 0) break;
      for (const e of batch) if (e.name !== "." && e.name !== "..") out.set(e.name, e.stat);
      const next = batch[batch.length - 1]!.next;
      if (next === offset) break;
      offset = next;
    }
  } finally {
    await child.releasedir(ctx, fd).catch(() => undefined);
  }
  return out;
}

/** Removes a name on one child, recursively for directories (an entry deleted while it was down). */
export async function removeTree(afr: Afr, ctx: CallCtx, i: number, path: string, st?: Iatt): Promise<void> {
  const child = afr.children[i]!;
  const stat = st ?? (await child.lookup(ctx, { path })).stat;
  if ((stat.mode & fsc.S_IFMT) === fsc.S_IFDIR) {
    for (const [name, est] of await readdirAll(afr, ctx, i, path)) await removeTree(afr, ctx, i, pathPosix.join(path, name), est);
    await child.rmdir(ctx, { path });
  } else {
    await child.unlink(ctx, { path });
  }
}

export function healError(afr: Afr, err: unknown): FopError {
  return FopError.from(err, { xlator: afr.name, fop: "self-heal" });
}
