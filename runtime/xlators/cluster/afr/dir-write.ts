/**
 * Entry fops (create, mkdir, unlink, rename, ...): a transaction holding entry locks on the names
 * involved, with the changelog (entry counter) on the parent directory. New files get one gfid,
 * passed to every replica in xdata gfid-req, so all copies share their identity.
 */
import { randomUUID } from "node:crypto";
import { constants as fsc } from "node:fs";
import { posix as pathPosix } from "node:path";
import type { CallCtx, EntryRemoved, Fd, Iatt, Loc, Xdata } from "../../../core/types";
import { XDATA } from "../../../core/types";
import type { Afr, AfrFdCtx } from "./afr";
import { newFileBatch, startEagerBatch } from "./eager-lock";
import { batchedEntryOp, finishEntryBatches } from "./entry-eager";
import { firstResult, transaction, withRiding, type LockSpec, type RidingLocks, type TxnOutcome } from "./transaction";

export function parentOf(loc: Loc): { parent: Loc; base: string } {
  return { parent: { path: pathPosix.dirname(loc.path) }, base: pathPosix.basename(loc.path) };
}

export function entryLock(afr: Afr, loc: Loc): LockSpec {
  const { parent, base } = parentOf(loc);
  return { kind: "entry", domain: afr.name, loc: parent, basename: base };
}

/** An entry fop: inside the open batch of its directory when it can (entry-eager.ts), else a transaction. */
async function entryTxn<T>(afr: Afr, ctx: CallCtx, fop: string, names: Loc[], op: (i: number, riding?: RidingLocks) => Promise<T>): Promise<TxnOutcome<T>> {
  const parents = [...new Set(names.map((l) => parentOf(l).parent.path))];
  const locks = names.map((l) => entryLock(afr, l));
  const batched = await batchedEntryOp(afr, ctx, fop, parents, locks, op);
  if (batched) return batched;
  return transaction(afr, ctx, { fop, kind: "entry", locks, changelog: parents.map((path) => ({ path })), op: (i) => op(i) });
}

function withGfid(xdata: Xdata | undefined): { gfid: string; xdata: Xdata } {
  const gfid = (xdata?.[XDATA.gfidReq] as string | undefined) ?? randomUUID();
  return { gfid, xdata: { ...(xdata ?? {}), [XDATA.gfidReq]: gfid } };
}

export async function create(afr: Afr, ctx: CallCtx, loc: Loc, flags: number, mode: number, fd: Fd, xdata?: Xdata): Promise<Iatt> {
  const g = withGfid(xdata);
  // A file created for writing is about to be written: its write batch starts with the create.
  const batch = newFileBatch(afr, ctx, loc, flags, g.gfid);
  let out: TxnOutcome<Iatt>;
  let stat: Iatt;
  try {
    out = await entryTxn(afr, ctx, "create", [loc], (i, rl) => {
      const [c, x] = withRiding(ctx, g.xdata, rl);
      const run = (xd: Xdata | undefined) => afr.children[i]!.create(c, loc, flags, mode, fd, xd);
      return batch ? batch.create(i, x, run) : run(x);
    });
    stat = firstResult(out);
  } catch (err) {
    batch?.abandon();
    throw err;
  }
  const opened = afr.children.map((_, i) => out.results.has(i));
  fd.gfid = stat.gfid;
  const fc: AfrFdCtx = { opened, readChild: afr.pickReadChild([...out.results.keys()], stat.gfid), flags };
  fd.set(afr, fc);
  if (batch) batch.start(fd, fc, out.results);
  else if ((flags & 3) !== fsc.O_RDONLY && out.results.size === afr.children.length) startEagerBatch(afr, ctx, fd, fc);
  return stat;
}

export async function mknod(afr: Afr, ctx: CallCtx, loc: Loc, mode: number, rdev: number, xdata?: Xdata): Promise<Iatt> {
  const g = withGfid(xdata);
  return firstResult(await entryTxn(afr, ctx, "mknod", [loc], (i, rl) => { const [c, x] = withRiding(ctx, g.xdata, rl); return afr.children[i]!.mknod(c, loc, mode, rdev, x); }));
}

export async function mkdir(afr: Afr, ctx: CallCtx, loc: Loc, mode: number, xdata?: Xdata): Promise<Iatt> {
  const g = withGfid(xdata);
  return firstResult(await entryTxn(afr, ctx, "mkdir", [loc], (i, rl) => { const [c, x] = withRiding(ctx, g.xdata, rl); return afr.children[i]!.mkdir(c, loc, mode, x); }));
}

export async function symlink(afr: Afr, ctx: CallCtx, target: string, loc: Loc, xdata?: Xdata): Promise<Iatt> {
  const g = withGfid(xdata);
  return firstResult(await entryTxn(afr, ctx, "symlink", [loc], (i, rl) => { const [c, x] = withRiding(ctx, g.xdata, rl); return afr.children[i]!.symlink(c, target, loc, x); }));
}

export async function link(afr: Afr, ctx: CallCtx, from: Loc, to: Loc, xdata?: Xdata): Promise<Iatt> {
  const st = firstResult(await entryTxn(afr, ctx, "link", [to], (i, rl) => { const [c, x] = withRiding(ctx, xdata, rl); return afr.children[i]!.link(c, from, to, x); }));
  afr.linkHints.note(st.gfid, from.path);
  return st;
}

export async function unlink(afr: Afr, ctx: CallCtx, loc: Loc, xdata?: Xdata): Promise<EntryRemoved | undefined> {
  return firstResult(await entryTxn(afr, ctx, "unlink", [loc], (i, rl) => { const [c, x] = withRiding(ctx, xdata, rl); return afr.children[i]!.unlink(c, loc, x); }));
}

export async function rmdir(afr: Afr, ctx: CallCtx, loc: Loc, xdata?: Xdata): Promise<EntryRemoved | undefined> {
  // A batch of the directory itself ends first: its post-op needs the directory.
  await finishEntryBatches(afr, loc.path);
  return firstResult(await entryTxn(afr, ctx, "rmdir", [loc], (i, rl) => { const [c, x] = withRiding(ctx, xdata, rl); return afr.children[i]!.rmdir(c, loc, x); }));
}

export async function rename(afr: Afr, ctx: CallCtx, from: Loc, to: Loc, xdata?: Xdata): Promise<void> {
  // Batches address directories by path: those in a renamed (or replaced) directory end first.
  await Promise.all([finishEntryBatches(afr, from.path), finishEntryBatches(afr, to.path)]);
  await entryTxn(afr, ctx, "rename", [from, to], (i, rl) => { const [c, x] = withRiding(ctx, xdata, rl); return afr.children[i]!.rename(c, from, to, x); });
}
