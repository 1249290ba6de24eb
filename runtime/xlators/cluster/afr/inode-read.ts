/**
 * Reading fops: lookup (with the self-heal check), stat, open, read, readdir, ... Reads go to one
 * readable replica (read-subvolume, else a gfid hash) and fall back to another on a transport error.
 */
import { constants as fsc } from "node:fs";
import { posix as pathPosix } from "node:path";
import { FopError } from "../../../core/errors";
import type { CallCtx, DirEntry, Fd, Iatt, Loc, LookupResult, Statfs, Xdata } from "../../../core/types";
import { XDATA } from "../../../core/types";
import type { Afr, AfrFdCtx } from "./afr";
import { entryLock } from "./dir-write";
import { fsetattr } from "./inode-write";
import { lockAll } from "./transaction";
import { direction, gfidConflict, inspect, isDir, needsHeal, readable, type Inspection } from "./inspect";

/** Errors after which another replica may answer differently. */
const FAILOVER = new Set(["ENOTCONN", "EBADF", "EIO", "ENOENT", "ESTALE", "ETIMEDOUT", "ECONNRESET"]);

export async function readFromAny<T>(afr: Afr, fop: string, order: number[], fn: (i: number) => Promise<T>): Promise<T> {
  let first: FopError | undefined;
  for (const i of order) {
    try {
      return await fn(i);
    } catch (err) {
      const e = FopError.from(err, { xlator: afr.name, fop });
      if (!first || (first.code === "ENOTCONN" && e.code !== "ENOTCONN")) first = e;
      if (!FAILOVER.has(e.code)) throw e;
    }
  }
  throw first ?? afr.err("ENOTCONN", fop, "no subvolume is up");
}

/** Up children, the preferred one for this gfid first. */
function readOrder(afr: Afr, gfid: string | undefined, candidates = afr.upChildren()): number[] {
  if (candidates.length === 0) return [];
  const first = afr.pickReadChild(candidates, gfid);
  return [first, ...candidates.filter((i) => i !== first)];
}

/**
 * Two gfids for one name, seen without a lock, may be another server's rename or create caught
 * between its replicas: look again under the name's entry lock (entry fops hold it until they are
 * done on every replica). What still differs then is a real mismatch.
 */
async function inspectUnderNameLock(afr: Afr, loc: Loc, extraXattrs: readonly string[]): Promise<Inspection> {
  const held = await lockAll(afr, afr.internalCtx(), [entryLock(afr, loc)], afr.upChildren());
  try {
    return await inspect(afr, loc, afr.upChildren(), extraXattrs);
  } finally {
    await held.releaseAll();
  }
}

/**
 * Which answer of a lookup is the truth. An entry present on some replicas only is real unless the
 * parent directory's changelog says those replicas are stale for entries (a file deleted while they
 * were down must not come back).
 */
async function resolveLookup(afr: Afr, loc: Loc, extraXattrs: readonly string[] = []): Promise<{ insp: Inspection; read: number; splitBrain: boolean }> {
  let insp = await inspect(afr, loc, afr.upChildren(), extraXattrs);
  if (gfidConflict(insp) && loc.path !== "/") insp = await inspectUnderNameLock(afr, loc, extraXattrs);
  if (insp.present.size === 0) {
    if (insp.missing.length > 0) throw afr.err("ENOENT", "lookup");
    throw [...insp.errors.values()][0] ?? afr.err("ENOTCONN", "lookup", "no subvolume is up");
  }
  if (insp.missing.length > 0 && loc.path !== "/") {
    const parent = await inspect(afr, { path: pathPosix.dirname(loc.path) });
    const d = direction(afr, parent, "entry");
    if (!d.splitBrain && d.pending && [...insp.present.keys()].every((i) => !d.sources.includes(i))) {
      afr.heals.schedule(pathPosix.dirname(loc.path));
      throw afr.err("ENOENT", "lookup", "entry exists only on stale replicas");
    }
  }
  if (gfidConflict(insp)) {
    afr.gfidMismatch.add(loc.path);
    if (afr.options["self-heal"] && loc.path !== "/") afr.heals.schedule(pathPosix.dirname(loc.path));
    throw afr.err("EIO", "lookup", `gfid or type mismatch between replicas of ${loc.path}`);
  }
  afr.gfidMismatch.delete(loc.path);
  const r = readable(afr, insp);
  if (r.splitBrain) afr.splitBrain.set(loc.path, ["data/metadata"]);
  else afr.splitBrain.delete(loc.path);
  const candidates = r.sources.length > 0 ? r.sources : [...insp.present.keys()];
  const gfid = insp.present.get(candidates[0]!)!.stat.gfid;
  // Marks of an own transaction between its pre-op and post-op are no heal to do.
  if (afr.options["self-heal"] && !afr.after.busy(loc.path) && needsHeal(afr, insp)) afr.heals.schedule(loc.path);
  return { insp, read: afr.pickReadChild(candidates, gfid), splitBrain: r.splitBrain };
}

export async function lookup(afr: Afr, ctx: CallCtx, loc: Loc, xdata?: Xdata): Promise<LookupResult> {
  void ctx;
  const wanted = (xdata?.[XDATA.wantXattrs] as string[] | undefined) ?? [];
  // What the caller wants rides on the same lookups as the changelog: no second round trip.
  const { insp, read } = await resolveLookup(afr, loc, wanted);
  const rep = insp.present.get(read)!;
  if (rep.stat.nlink > 1 && (rep.stat.mode & fsc.S_IFMT) === fsc.S_IFREG) afr.linkHints.note(rep.stat.gfid, loc.path);
  if (wanted.length === 0) return { stat: rep.stat };
  const xattrs: Record<string, Buffer> = {};
  for (const k of wanted) if (rep.xattrs[k] !== undefined) xattrs[k] = rep.xattrs[k]!;
  return { stat: rep.stat, xattrs };
}

export async function stat(afr: Afr, ctx: CallCtx, loc: Loc, xdata?: Xdata): Promise<Iatt> {
  return (await lookup(afr, ctx, loc, xdata)).stat;
}

function openedOrder(afr: Afr, fd: Fd): number[] {
  const fc = afr.fdCtx(fd);
  if (!fc) return readOrder(afr, fd.gfid);
  const opened = afr.children.map((_, i) => i).filter((i) => fc.opened[i] && afr.childUp(i));
  return [fc.readChild, ...opened.filter((i) => i !== fc.readChild)].filter((i) => opened.includes(i));
}

export async function fstat(afr: Afr, ctx: CallCtx, fd: Fd, xdata?: Xdata): Promise<Iatt> {
  return readFromAny(afr, "fstat", openedOrder(afr, fd), (i) => afr.children[i]!.fstat(ctx, fd, xdata));
}

export async function access(afr: Afr, ctx: CallCtx, loc: Loc, mask: number, xdata?: Xdata): Promise<void> {
  return readFromAny(afr, "access", readOrder(afr, loc.gfid), (i) => afr.children[i]!.access(ctx, loc, mask, xdata));
}

export async function readlink(afr: Afr, ctx: CallCtx, loc: Loc, xdata?: Xdata): Promise<string> {
  return readFromAny(afr, "readlink", readOrder(afr, loc.gfid), (i) => afr.children[i]!.readlink(ctx, loc, xdata));
}

export async function statfs(afr: Afr, ctx: CallCtx, loc: Loc, xdata?: Xdata): Promise<Statfs> {
  return readFromAny(afr, "statfs", readOrder(afr, loc.gfid), (i) => afr.children[i]!.statfs(ctx, loc, xdata));
}

export async function getxattr(afr: Afr, ctx: CallCtx, loc: Loc, name: string, xdata?: Xdata): Promise<Buffer> {
  return readFromAny(afr, "getxattr", readOrder(afr, loc.gfid), (i) => afr.children[i]!.getxattr(ctx, loc, name, xdata));
}

export async function listxattr(afr: Afr, ctx: CallCtx, loc: Loc, xdata?: Xdata): Promise<string[]> {
  return readFromAny(afr, "listxattr", readOrder(afr, loc.gfid), (i) => afr.children[i]!.listxattr(ctx, loc, xdata));
}

/**
 * Opens on every replica holding the file; reads go to a source. Split-brain refuses with EIO.
 * The opens go out together with the lookup that decides (one round trip, not two): opening has no
 * effect on a file (O_TRUNC is a transaction of its own, after), and the replicas that turn out not
 * to hold it, or the whole open when the lookup refuses it, are released again.
 */
async function openOn(afr: Afr, ctx: CallCtx, loc: Loc, fd: Fd, fop: "open" | "opendir",
  doOpen: (i: number) => Promise<void>, flags: number): Promise<void> {
  const opened = afr.children.map(() => false);
  const errors = new Map<number, FopError>();
  const opening = Promise.all(afr.upChildren().map(async (i) => {
    try {
      await doOpen(i);
      opened[i] = true;
    } catch (err) {
      errors.set(i, FopError.from(err, { xlator: afr.name, fop }));
    }
  }));
  const undo = async (which: (i: number) => boolean) => {
    await Promise.all(opened.map(async (o, i) => {
      if (!o || !which(i)) return;
      opened[i] = false;
      try {
        if (fop === "opendir") await afr.children[i]!.releasedir(ctx, fd);
        else await afr.children[i]!.release(ctx, fd);
      } catch {
        // released with the connection
      }
    }));
  };
  let res: Awaited<ReturnType<typeof resolveLookup>>;
  try {
    res = await resolveLookup(afr, loc);
  } catch (err) {
    await opening;
    await undo(() => true);
    throw err;
  }
  await opening;
  if (res.splitBrain) {
    await undo(() => true);
    if (afr.options["favorite-child-policy"] === "none") throw afr.err("EIO", fop, `${loc.path} is in split-brain`);
    await afr.heals.healNow(loc.path);
    res = await resolveLookup(afr, loc);
    if (res.splitBrain) throw afr.err("EIO", fop, `${loc.path} is in split-brain`);
    await Promise.all([...res.insp.present.keys()].map(async (i) => {
      try {
        await doOpen(i);
        opened[i] = true;
      } catch (err) {
        errors.set(i, FopError.from(err, { xlator: afr.name, fop }));
      }
    }));
  }
  // Opened where the lookup did not find it (or found only a stale name): not one of its replicas.
  await undo((i) => !res.insp.present.has(i));
  fd.gfid ??= res.insp.present.get(res.read)!.stat.gfid;
  if (!opened.some(Boolean)) {
    const present = [...res.insp.present.keys()];
    throw present.map((i) => errors.get(i)).find((e) => e !== undefined) ?? errors.values().next().value ?? afr.err("ENOTCONN", fop);
  }
  const r = readable(afr, res.insp);
  const sources = r.sources.filter((i) => opened[i]);
  const readChild = sources.length > 0 ? afr.pickReadChild(sources, fd.gfid)
    : opened[res.read] ? res.read : opened.findIndex(Boolean);
  const fc: AfrFdCtx = { opened, readChild, flags };
  fd.set(afr, fc);
}

export async function open(afr: Afr, ctx: CallCtx, loc: Loc, flags: number, fd: Fd, xdata?: Xdata): Promise<void> {
  // Truncation changes data: it runs as a transaction after the open, so a down replica gets blamed.
  const trunc = (flags & fsc.O_TRUNC) !== 0 && (flags & 3) !== fsc.O_RDONLY;
  const childFlags = flags & ~fsc.O_TRUNC;
  await openOn(afr, ctx, loc, fd, "open", (i) => afr.children[i]!.open(ctx, loc, childFlags, fd, xdata), flags);
  if (trunc) {
    await fsetattr(afr, ctx, fd, { size: 0 });
  }
}

export async function read(afr: Afr, ctx: CallCtx, fd: Fd, size: number, offset: number, xdata?: Xdata): Promise<Buffer> {
  const order = openedOrder(afr, fd);
  const fc = afr.fdCtx(fd);
  return readFromAny(afr, "read", order, async (i) => {
    const buf = await afr.children[i]!.read(ctx, fd, size, offset, xdata);
    if (fc && fc.readChild !== i) fc.readChild = i;
    return buf;
  });
}

export async function opendir(afr: Afr, ctx: CallCtx, loc: Loc, fd: Fd, xdata?: Xdata): Promise<void> {
  await openOn(afr, ctx, loc, fd, "opendir", (i) => afr.children[i]!.opendir(ctx, loc, fd, xdata), fsc.O_RDONLY);
}

export async function readdir(afr: Afr, ctx: CallCtx, fd: Fd, offset: number, withStat: boolean, xdata?: Xdata): Promise<DirEntry[]> {
  const fc = afr.fdCtx(fd);
  if (!fc) return afr.children[0]!.readdir(ctx, fd, offset, withStat, xdata);
  // Offsets belong to one replica's listing: fail over only at the start of the listing.
  const order = offset === 0 ? openedOrder(afr, fd) : [fc.readChild];
  return readFromAny(afr, "readdir", order, async (i) => {
    const entries = await afr.children[i]!.readdir(ctx, fd, offset, withStat, xdata);
    fc.readChild = i;
    return entries;
  });
}

export { isDir };
