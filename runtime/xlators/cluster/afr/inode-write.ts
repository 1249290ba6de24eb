/**
 * Fops that change a file's data or metadata: each one is a transaction over every replica where the
 * file is (open). A replica the fd is not open on (down at open time) is reopened lazily once it is back.
 */
import { constants as fsc } from "node:fs";
import { FopError } from "../../../core/errors";
import { fdLoc, type CallCtx, type Fd, type Iatt, type Loc, type LostWrites, type SetattrArgs, type Xdata } from "../../../core/types";
import type { Afr, AfrFdCtx } from "./afr";
import { CHANGELOG_XDATA, LOCKS_AFTER_XDATA } from "../../features/posix-locks/locks-first";
import { delta, type ChangelogKind } from "./changelog";
import { eagerEnabled, eagerWrite, finishEager, finishEagerAtFlush, flushEager } from "./eager-lock";
import { firstResult, specKey, transaction, type LockSpec, type TxnOutcome } from "./transaction";

const REOPEN_RETRY_MS = 1000;
const reopenTried = new WeakMap<AfrFdCtx, number[]>();


export function dataLock(afr: Afr, loc: Loc, start = 0, len = 0): LockSpec {
  return { kind: "inode", domain: afr.name, loc, start, len };
}

export function metadataLock(afr: Afr, loc: Loc): LockSpec {
  return { kind: "inode", domain: `${afr.name}:metadata`, loc, start: 0, len: 0 };
}

/** Opens the fd on replicas that are up again but were down (or lost the fd) when it was opened. */
async function reopenMissing(afr: Afr, ctx: CallCtx, fd: Fd, fc: AfrFdCtx): Promise<void> {
  const tried = reopenTried.get(fc) ?? afr.children.map(() => 0);
  reopenTried.set(fc, tried);
  const now = Date.now();
  const flags = fc.flags & ~(fsc.O_CREAT | fsc.O_EXCL | fsc.O_TRUNC);
  await Promise.all(afr.children.map(async (c, i) => {
    if (fc.opened[i] || !c.isUp() || now - tried[i]! < REOPEN_RETRY_MS) return;
    tried[i] = now;
    try {
      if (fd.isDir) await c.opendir(ctx, fdLoc(fd), fd);
      else await c.open(ctx, fdLoc(fd), flags, fd);
      fc.opened[i] = true;
    } catch {
      // Stays blamed; the heal brings the copy back and a later reopen succeeds.
    }
  }));
}

/** Forgets replicas where the fd turned out stale, and keeps reads on one that took the change. */
function afterFdTxn(fc: AfrFdCtx, out: TxnOutcome<unknown>): void {
  for (const [i, e] of out.failed) if (e.code === "EBADF" || e.code === "ENOTCONN") fc.opened[i] = false;
  if (!out.results.has(fc.readChild)) {
    const ok = out.results.keys().next();
    if (!ok.done) fc.readChild = ok.value;
  }
}

async function fdTransaction<T>(afr: Afr, ctx: CallCtx, fd: Fd, fop: string, kind: "data" | "metadata",
  lock: LockSpec, op: (i: number) => Promise<T>): Promise<T> {
  const fc = afr.fdCtx(fd);
  if (!fc) throw afr.err("EBADF", fop, "fd not opened through this replicate volume");
  await finishEager(afr, fd);
  await reopenMissing(afr, ctx, fd, fc);
  const loc = fdLoc(fd);
  const out = await transaction(afr, ctx, {
    fop, kind, locks: [lock], changelog: [loc], targets: (i) => fc.opened[i] === true, op, fdBased: true,
  });
  afterFdTxn(fc, out);
  return firstResult(out, fc.readChild);
}

export async function write(afr: Afr, ctx: CallCtx, fd: Fd, data: Buffer, offset: number, xdata?: Xdata): Promise<number> {
  const fc = afr.fdCtx(fd);
  if (fc && eagerEnabled(afr)) {
    await reopenMissing(afr, ctx, fd, fc);
    const range = { offset, length: data.length, append: (fc.flags & fsc.O_APPEND) !== 0 };
    return eagerWrite(afr, ctx, fd, fc, range, (i) => afr.children[i]!.write(ctx, fd, data, offset, xdata));
  }
  // An O_APPEND write lands at the end, wherever that is by then: it locks the whole file.
  const append = fc !== undefined && (fc.flags & fsc.O_APPEND) !== 0;
  const lock = append ? dataLock(afr, fdLoc(fd)) : dataLock(afr, fdLoc(fd), offset, Math.max(1, data.length));
  return fdTransaction(afr, ctx, fd, "write", "data", lock,
    (i) => afr.children[i]!.write(ctx, fd, data, offset, xdata));
}

export async function fallocate(afr: Afr, ctx: CallCtx, fd: Fd, mode: number, offset: number, len: number, xdata?: Xdata): Promise<void> {
  return fdTransaction(afr, ctx, fd, "fallocate", "data", dataLock(afr, fdLoc(fd)),
    (i) => afr.children[i]!.fallocate(ctx, fd, mode, offset, len, xdata));
}

export async function fsetattr(afr: Afr, ctx: CallCtx, fd: Fd, attr: SetattrArgs, xdata?: Xdata): Promise<Iatt> {
  const isData = attr.size !== undefined;
  return fdTransaction(afr, ctx, fd, "fsetattr", isData ? "data" : "metadata",
    isData ? dataLock(afr, fdLoc(fd)) : metadataLock(afr, fdLoc(fd)),
    (i) => afr.children[i]!.fsetattr(ctx, fd, attr, xdata));
}

export async function setattr(afr: Afr, ctx: CallCtx, loc: Loc, attr: SetattrArgs, xdata?: Xdata): Promise<Iatt> {
  const isData = attr.size !== undefined;
  const out = await transaction(afr, ctx, {
    fop: "setattr", kind: isData ? "data" : "metadata",
    locks: [isData ? dataLock(afr, loc) : metadataLock(afr, loc)], changelog: [loc],
    op: (i) => afr.children[i]!.setattr(ctx, loc, attr, xdata),
  });
  return firstResult(out);
}

export async function setxattr(afr: Afr, ctx: CallCtx, loc: Loc, name: string, value: Buffer, flags: number, xdata?: Xdata): Promise<void> {
  await transaction(afr, ctx, {
    fop: "setxattr", kind: "metadata", locks: [metadataLock(afr, loc)], changelog: [loc],
    op: (i) => afr.children[i]!.setxattr(ctx, loc, name, value, flags, xdata),
  });
}

export async function removexattr(afr: Afr, ctx: CallCtx, loc: Loc, name: string, xdata?: Xdata): Promise<void> {
  await transaction(afr, ctx, {
    fop: "removexattr", kind: "metadata", locks: [metadataLock(afr, loc)], changelog: [loc],
    op: (i) => afr.children[i]!.removexattr(ctx, loc, name, xdata),
  });
}

/** The replicas a fop on the fd goes to: where it is open (and up, unless the fop only forgets). */
function openedTargets(afr: Afr, fd: Fd, forget: boolean): number[] {
  const fc = afr.fdCtx(fd);
  return afr.children.map((_, i) => i).filter((i) => (fc ? fc.opened[i] : true) && (forget || afr.childUp(i)));
}

/** A fop that goes to every replica the fd is open on; succeeds if any did. */
async function onAllOpened(afr: Afr, fd: Fd, fop: string, fn: (i: number) => Promise<void>, forget = false, batchEnded = false): Promise<void> {
  if (!batchEnded) await (fop === "flush" ? flushEager(afr, fd) : finishEager(afr, fd));
  const targets = openedTargets(afr, fd, forget);
  const errors: FopError[] = [];
  let ok = 0;
  await Promise.all(targets.map(async (i) => {
    try {
      await fn(i);
      ok++;
    } catch (err) {
      errors.push(FopError.from(err, { xlator: afr.name, fop }));
    }
  }));
  if (ok === 0 && errors.length > 0 && !forget) throw errors.find((e) => e.code !== "ENOTCONN") ?? errors[0]!;
}

/**
 * The close: the fd's write batch ends with it — its post-op and unlock ride on each replica's flush
 * (one message per replica instead of two). The answer waits for the batch's writes to settle, and
 * then for the replicas' flushes only when it must: when a write failed somewhere (the blame must be
 * on disk first), when the client ever took a lock (the flush may release it: another client must not
 * find it still held), or when a replica's part did not ride. Otherwise what is left is bookkeeping —
 * the dirty mark's removal and the batch's unlock, already on their way — and the close returns a
 * round trip to the replicas sooner; the fd's release waits for it (fc.flushing).
 */
export async function flush(afr: Afr, ctx: CallCtx, fd: Fd, xdata?: Xdata): Promise<void> {
  // (a replicate volume above this one rides its own: that flush goes down as it came)
  if (xdata?.[CHANGELOG_XDATA] !== undefined || xdata?.[LOCKS_AFTER_XDATA] !== undefined) {
    return onAllOpened(afr, fd, "flush", (i) => afr.children[i]!.flush(ctx, fd, xdata));
  }
  const carried = new Map<number, Promise<void>>();
  const targets = new Set(openedTargets(afr, fd, false));
  let answerEarly!: (early: boolean) => void;
  const mayAnswer = new Promise<boolean>((r) => (answerEarly = r));
  const ending = (async () => {
    await finishEagerAtFlush(afr, fd, {
      ctx,
      rides: (i) => targets.has(i),
      send: (i, change, unlock) => {
        const x: Xdata = { ...xdata, ...unlock };
        if (Object.keys(change).length > 0) x[CHANGELOG_XDATA] = change;
        const p = afr.children[i]!.flush(ctx, fd, x);
        carried.set(i, p);
        return p;
      },
      dispatched: (clean) => answerEarly(clean && !afr.clientsWithLocks.has(ctx.client) && [...targets].every((i) => carried.has(i))),
    });
    answerEarly(false);
    await onAllOpened(afr, fd, "flush", (i) => carried.get(i) ?? afr.children[i]!.flush(ctx, fd, xdata), false, true);
  })();
  if (await Promise.race([mayAnswer, ending.then(() => false, () => false)])) {
    const fc = afr.fdCtx(fd);
    const flushing = ending.catch((err: unknown) => {
      afr.log.warn({ path: fd.path, code: FopError.from(err).code }, "flush failed after its answer (no lock to release: nothing lost)");
    });
    if (fc) fc.flushing = flushing;
    // A new batch of this process on the file (a dup'd fd, the file opened again) locks after the
    // unlock riding on these flushes, not before it: the unlock would take its lock away.
    afr.after.run([specKey(dataLock(afr, fdLoc(fd)))], () => flushing);
    return;
  }
  return ending;
}

/**
 * fsync succeeds when any replica's did: the data is on that disk. A replica whose fsync failed (its
 * disk refused the data, now or in a writeback before it: storage/posix's writeback-after) may not
 * have it on disk, though its writes were answered: the replicas that synced blame it, so heal copies
 * the file to it, as after a write it missed.
 */
export function fsync(afr: Afr, ctx: CallCtx, fd: Fd, datasync: boolean, xdata?: Xdata): Promise<void> {
  return syncEverywhere(afr, ctx, fd, "fsync", "data", (i) => afr.children[i]!.fsync(ctx, fd, datasync, xdata));
}

/**
 * fsyncdir, likewise: a replica whose disk refused to sync the directory may lose the entries made in
 * it (after a crash); the others blame it for the directory's entries, so entry heal brings them back.
 */
export function fsyncdir(afr: Afr, ctx: CallCtx, fd: Fd, datasync: boolean, xdata?: Xdata): Promise<void> {
  return syncEverywhere(afr, ctx, fd, "fsyncdir", "entry", (i) => afr.children[i]!.fsyncdir(ctx, fd, datasync, xdata));
}

/** A sync on every replica the fd is open on: passes if any did; those that failed are blamed (`kind`) by those that passed. */
async function syncEverywhere(afr: Afr, ctx: CallCtx, fd: Fd, fop: "fsync" | "fsyncdir", kind: ChangelogKind, sync: (i: number) => Promise<void>): Promise<void> {
  const synced: number[] = [];
  const failed: number[] = [];
  await onAllOpened(afr, fd, fop, async (i) => {
    try {
      await sync(i);
      synced.push(i);
    } catch (err) {
      failed.push(i);
      throw err;
    }
  });
  if (synced.length === 0 || failed.length === 0) return;
  afr.log.warn({ path: fd.path, failed: failed.map((j) => afr.children[j]!.name) }, `${fop} failed on a replica: the others blame it, heal copies the ${fop === "fsync" ? "file" : "directory's entries"} there`);
  await blameReplicas(afr, ctx, fdLoc(fd), kind, failed, synced);
}

/**
 * The copies on `sources` blame those on `sinks` (`kind`: data or entry, as after changes the sinks
 * missed): heal copies the file, or the directory's entries, to them. A source that cannot take the
 * blame is logged.
 */
export async function blameReplicas(afr: Afr, ctx: CallCtx | undefined, loc: Loc, kind: ChangelogKind, sinks: number[], sources: number[]): Promise<void> {
  const blame = Object.fromEntries(sinks.map((j) => [afr.blameKey(j), delta(kind, 1)]));
  await Promise.all(sources.map((i) => afr.children[i]!.xattrop(afr.internalCtx(ctx), loc, "add32", blame).catch((err: unknown) => {
    afr.log.warn({ path: loc.path, child: afr.children[i]!.name, code: FopError.from(err).code }, `could not blame a replica whose copy lacks changes (${kind})`);
  })));
  afr.daemon.notePending([loc.path]);
}

/**
 * A replica's brick lost writes it had answered (storage/posix: its disk refused them afterwards, in
 * a background writeback nobody waited for): the others, which have them, blame its copy.
 */
export async function writesLost(afr: Afr, child: number, files: LostWrites[]): Promise<void> {
  const sources = afr.children.map((_, i) => i).filter((i) => i !== child && afr.children[i]!.isUp());
  for (const f of files) {
    const line = { msgid: "AFR_WRITES_LOST", path: f.path, gfid: f.gfid, child: afr.children[child]!.name };
    if (sources.length === 0) {
      afr.log.error(line, "a replica lost answered writes and no other replica is up to take them from");
      continue;
    }
    afr.log.warn(line, "a replica lost answered writes: the others blame it, heal copies the file there");
    await blameReplicas(afr, undefined, { path: f.path, gfid: f.gfid }, "data", [child], sources);
  }
}

export async function release(afr: Afr, ctx: CallCtx, fd: Fd, xdata?: Xdata): Promise<void> {
  // (after a flush answered early, its messages first: the post-op rides on the fd being released)
  await afr.fdCtx(fd)?.flushing;
  return onAllOpened(afr, fd, "release", (i) => afr.children[i]!.release(ctx, fd, xdata), true);
}

export function releasedir(afr: Afr, ctx: CallCtx, fd: Fd, xdata?: Xdata): Promise<void> {
  return onAllOpened(afr, fd, "releasedir", (i) => afr.children[i]!.releasedir(ctx, fd, xdata), true);
}

/** xattrop from above (a replicate volume stacked on this one): applied on every reachable replica. */
export async function xattrop(afr: Afr, ctx: CallCtx, loc: Loc, op: "add32", xattrs: Record<string, Buffer>, xdata?: Xdata): Promise<Record<string, Buffer>> {
  let result: Record<string, Buffer> | undefined;
  let firstErr: unknown;
  for (const i of afr.upChildren()) {
    try {
      const r = await afr.children[i]!.xattrop(ctx, loc, op, xattrs, xdata);
      result ??= r;
    } catch (err) {
      firstErr ??= err;
    }
  }
  if (result) return result;
  throw FopError.from(firstErr ?? afr.err("ENOTCONN", "xattrop"), { xlator: afr.name, fop: "xattrop" });
}
