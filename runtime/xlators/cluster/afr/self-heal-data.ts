/**
 * Data heal (afr-self-heal-data.c): under a full-file lock in the data domain (client writes to this
 * file wait; other files are untouched), pick the source, copy it to each sink block by block, cut the
 * sink to the source's size, restore times, clear the data counters.
 *
 * "diff" compares each block's checksum on source and sink (rchecksum: computed where the data is, so
 * equal blocks never cross the network) and copies only differing blocks; "full" writes everything,
 * leaving holes for zero blocks; "auto" uses diff when the sink already has data. A brick that cannot
 * checksum (ENOSYS: an earlier version) has its blocks read and compared here instead.
 */
import { constants as fsc } from "node:fs";
import { FopError } from "../../../core/errors";
import { Fd, type CallCtx } from "../../../core/types";
import type { Afr } from "./afr";
import { dataLock } from "./inode-write";
import { direction, inspect, isRegular } from "./inspect";
import { clearPending, decide, healError, type HealOptions } from "./self-heal-common";
import { lockAll } from "./transaction";

export interface DataHealResult {
  healed: boolean;
  splitBrain: boolean;
  bytes: number;
}

const WINDOW = 4;

function isZero(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

async function copyData(afr: Afr, ctx: CallCtx, path: string, src: number, sink: number, size: number, sinkSize: number): Promise<number> {
  const algo = afr.options["data-self-heal-algorithm"];
  const diff = algo === "diff" || (algo === "auto" && sinkSize > 0);
  const block = afr.options["heal-block-size"];
  const s = afr.children[src]!;
  const k = afr.children[sink]!;
  const sfd = new Fd(path, fsc.O_RDONLY);
  const kfd = new Fd(path, fsc.O_RDWR);
  await s.open(ctx, { path }, fsc.O_RDONLY, sfd);
  let written = 0;
  let checksums = true;
  try {
    await k.open(ctx, { path }, fsc.O_RDWR | (diff ? 0 : fsc.O_TRUNC), kfd);
    try {
      /** Whether the sink's block equals the source's, by checksums; undefined when a brick cannot tell. */
      const sameByChecksum = async (off: number, len: number): Promise<boolean | undefined> => {
        if (!checksums) return undefined;
        try {
          const [a, b] = await Promise.all([s.rchecksum(ctx, sfd, off, len), k.rchecksum(ctx, kfd, off, len)]);
          return a.equals(b);
        } catch (err) {
          if (FopError.from(err).code !== "ENOSYS") throw err;
          checksums = false;
          return undefined;
        }
      };
      const copyBlock = async (off: number) => {
        const len = Math.min(block, size - off);
        const compare = diff && off < sinkSize;
        if (compare && (await sameByChecksum(off, len)) === true) return;
        const [data, old] = await Promise.all([
          s.read(ctx, sfd, len, off),
          compare && !checksums ? k.read(ctx, kfd, len, off) : Promise.resolve(undefined),
        ]);
        if (old ? old.equals(data) : !diff && isZero(data)) return;
        await k.write(ctx, kfd, data, off);
        written += data.length;
      };
      const offsets: number[] = [];
      for (let off = 0; off < size; off += block) offsets.push(off);
      for (let at = 0; at < offsets.length; at += WINDOW) await Promise.all(offsets.slice(at, at + WINDOW).map(copyBlock));
      await k.fsetattr(ctx, kfd, { size });
      await k.fsync(ctx, kfd, false).catch(() => undefined);
    } finally {
      await k.release(ctx, kfd).catch(() => undefined);
    }
  } finally {
    await s.release(ctx, sfd).catch(() => undefined);
  }
  return written;
}

export async function healData(afr: Afr, path: string, opts: HealOptions = {}): Promise<DataHealResult> {
  const ctx = afr.internalCtx();
  const loc = { path };
  const held = await lockAll(afr, ctx, [dataLock(afr, loc)], afr.upChildren());
  try {
    const insp = await inspect(afr, loc, held.children);
    const first = insp.present.values().next().value;
    if (!first || !isRegular(first.stat)) return { healed: false, splitBrain: false, bytes: 0 };
    const v = decide(afr, insp, "data", opts, (a, b) => a.size !== b.size);
    if (v.splitBrain) {
      afr.splitBrain.set(path, ["data"]);
      return { healed: false, splitBrain: true, bytes: 0 };
    }
    if (v.source === undefined) return { healed: false, splitBrain: false, bytes: 0 };
    const src = insp.present.get(v.source)!.stat;
    if (afr.log.isLevelEnabled("debug")) {
      afr.log.debug({
        path, source: afr.children[v.source]!.name, sinks: v.sinks.map((i) => afr.children[i]!.name),
        sizes: Object.fromEntries([...insp.present].map(([i, r]) => [afr.children[i]!.name, r.stat.size])),
        accused: direction(afr, insp, "data").accused.map((i) => afr.children[i]!.name), pending: v.pending,
      }, "data heal direction");
    }
    let bytes = 0;
    for (const sink of v.sinks) {
      const sinkStat = insp.present.get(sink)!.stat;
      if (sinkStat.gfid !== src.gfid) continue; // a gfid mismatch is the parent's entry heal's business
      bytes += await copyData(afr, ctx, path, v.source, sink, src.size, sinkStat.size);
      await afr.children[sink]!.setattr(ctx, loc, { atimeMs: src.atimeMs, mtimeMs: src.mtimeMs });
    }
    if (v.pending) await clearPending(afr, ctx, insp, "data");
    afr.splitBrain.delete(path);
    return { healed: v.sinks.length > 0 || v.pending, splitBrain: false, bytes };
  } catch (err) {
    throw healError(afr, err);
  } finally {
    await held.releaseAll();
  }
}
