/**
 * Metadata heal: under a lock in the `<afr>:metadata` domain, copy mode, owner, times and the user
 * xattrs of the source to each sink, then clear the metadata counters.
 */
import { constants as fsc } from "node:fs";
import type { CallCtx } from "../../../core/types";
import type { Afr } from "./afr";
import { metadataLock } from "./inode-write";
import { inspect, metadataDiffers } from "./inspect";
import { clearPending, decide, healError, type HealOptions } from "./self-heal-common";
import { lockAll } from "./transaction";

export interface MetadataHealResult {
  healed: boolean;
  splitBrain: boolean;
}

async function copyXattrs(afr: Afr, ctx: CallCtx, path: string, src: number, sink: number): Promise<void> {
  const s = afr.children[src]!;
  const k = afr.children[sink]!;
  const loc = { path };
  const [srcNames, sinkNames] = await Promise.all([s.listxattr(ctx, loc), k.listxattr(ctx, loc)]);
  for (const name of srcNames) {
    const value = await s.getxattr(ctx, loc, name);
    const old = sinkNames.includes(name) ? await k.getxattr(ctx, loc, name).catch(() => undefined) : undefined;
    if (!old || !old.equals(value)) await k.setxattr(ctx, loc, name, value, 0);
  }
  for (const name of sinkNames) if (!srcNames.includes(name)) await k.removexattr(ctx, loc, name).catch(() => undefined);
}

export async function healMetadata(afr: Afr, path: string, opts: HealOptions = {}): Promise<MetadataHealResult> {
  const ctx = afr.internalCtx();
  const loc = { path };
  const held = await lockAll(afr, ctx, [metadataLock(afr, loc)], afr.upChildren());
  try {
    const insp = await inspect(afr, loc, held.children);
    if (insp.present.size === 0) return { healed: false, splitBrain: false };
    const v = decide(afr, insp, "metadata", opts, metadataDiffers);
    if (v.splitBrain) {
      afr.splitBrain.set(path, ["metadata"]);
      return { healed: false, splitBrain: true };
    }
    if (v.source === undefined) return { healed: false, splitBrain: false };
    const src = insp.present.get(v.source)!.stat;
    const isLink = (src.mode & fsc.S_IFMT) === fsc.S_IFLNK;
    for (const sink of v.sinks) {
      if (insp.present.get(sink)!.stat.gfid !== src.gfid) continue;
      if (!isLink) {
        await afr.children[sink]!.setattr(ctx, loc, { mode: src.mode & 0o7777, uid: src.uid, gid: src.gid });
        await copyXattrs(afr, ctx, path, v.source, sink);
        await afr.children[sink]!.setattr(ctx, loc, { atimeMs: src.atimeMs, mtimeMs: src.mtimeMs });
      }
    }
    if (v.pending) await clearPending(afr, ctx, insp, "metadata");
    return { healed: v.sinks.length > 0 || v.pending, splitBrain: false };
  } catch (err) {
    throw healError(afr, err);
  } finally {
    await held.releaseAll();
  }
}
