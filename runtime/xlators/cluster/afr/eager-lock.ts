/**
 * Eager lock and delayed post-op (GlusterFS's optimisation): a stream of writes through one fd shares
 * one transaction — the full-file data lock and the pre-op are taken by the first write; the post-op
 * and unlock run when the fd goes idle (`post-op-delay`), after `eager-lock-max-hold`, or before any
 * other fop on the fd (flush, fsync, fsetattr, release). A replica that fails any write of the batch
 * stays blamed; a crash inside the window leaves every replica self-accusing, which heal handles.
 * The pre-op is +1 on the dirty counter (changelog.ts DIRTY_KEY: the v1 "+1 for every replica" in one
 * short key); the post-op takes it back and blames the replicas that missed a write on their keys.
 *
 * Crash safety of the answers: a write is answered before the post-op only when the marks on disk
 * already say the right thing after a crash — it succeeded on every replica (all self-accusing: no
 * copy is preferred, and they are equal), or the batch runs on one replica alone ("solo": its pre-op
 * blamed the others without accusing itself, so it stays the source). Any other partial result ends
 * the batch (post-op, blaming the replica that missed it) before the write is answered.
 */
import { constants as fsc } from "node:fs";
import { FopError } from "../../../core/errors";
import { fdLoc, type CallCtx, type Fd, type Iatt, type Loc, type Xdata } from "../../../core/types";
import { CHANGELOG_XDATA, LOCKS_FIRST_XDATA, type FirstLock } from "../../features/posix-locks/locks-first";
import type { Afr, AfrFdCtx } from "./afr";
import { DIRTY_KEY, delta } from "./changelog";

/** A data batch's pre-op (non-solo): +1 data on the dirty counter (changelog.ts DIRTY_KEY). */
const DIRTY_MARK = { [DIRTY_KEY]: delta("data", 1) };
import { dataLock } from "./inode-write";
import { HeldLocks, lockAll, ridingChild, runRiding, specKey, unlockRiding, wireLocks, withRiding, type LockSpec } from "./transaction";

interface EagerTxn {
  ready: Promise<void>;
  held?: HeldLocks;
  ctx: CallCtx;
  keys: string[];
  marked: number[];
  /** One replica alone: its pre-op blamed the others and not itself. */
  solo: boolean;
  failed: Set<number>;
  /** Why a replica failed (its later writes in the batch report it, not ENOTCONN). */
  errors: Map<number, FopError>;
  succeeded: Set<number>;
  inflight: number;
  /** Wakes the batch's end once its last write in flight is answered (see finishEager). */
  drained?: () => void;
  /** Writes of the batch not yet answered by every replica, in arrival order (see eagerWrite). */
  writing: WriteInFlight[];
  idle?: NodeJS.Timeout;
  startedAt: number;
  closing?: Promise<void>;
  /** Ends "own marks in flight" on the file (lookup does not mistake them for a heal to do). */
  unbusy: () => void;
}

interface WriteInFlight {
  start: number;
  end: number;
  done: Promise<void>;
}

/** The byte range a write may touch; an O_APPEND write lands wherever the end is, so it overlaps all. */
export interface WriteRange {
  offset: number;
  length: number;
  append: boolean;
}

const eager = new WeakMap<AfrFdCtx, EagerTxn>();

export function eagerEnabled(afr: Afr): boolean {
  return afr.options["eager-lock"] !== false;
}

/** A batch with nothing written yet (its locks and marks, if it starts with them). */
function newTxn(afr: Afr, ctx: CallCtx, unbusy: () => void, start: { held?: HeldLocks; marked?: number[] } = {}): EagerTxn {
  return {
    ready: Promise.resolve(), held: start.held, ctx, keys: afr.children.map((_, j) => afr.blameKey(j)),
    marked: start.marked ?? [], solo: false, failed: new Set(), errors: new Map(), succeeded: new Set(), inflight: 0, writing: [], startedAt: Date.now(),
    unbusy,
  };
}

async function begin(afr: Afr, ctx: CallCtx, fd: Fd, fc: AfrFdCtx): Promise<EagerTxn> {
  const up = afr.upChildren();
  if (up.length === 0) throw afr.err("ENOTCONN", "write", "no subvolume is up");
  if (!afr.hasQuorum(up)) throw afr.err("EROFS", "write", "quorum not met");
  const txn = newTxn(afr, afr.internalCtx(ctx), afr.after.markBusy(fd.path));
  eager.set(fc, txn);
  txn.ready = (async () => {
    const loc = fdLoc(fd);
    if (await lockAndMarkRiding(afr, txn, loc, up)) return;
    txn.held = await lockAll(afr, txn.ctx, [dataLock(afr, loc)], up);
    let locked = txn.held.children;
    if (locked.length === 0) locked = up; // unlinked while open: no path to lock
    txn.solo = locked.length === 1 && afr.children.length > 1;
    const mark = txn.solo ? Object.fromEntries(txn.keys.filter((_, j) => j !== locked[0]).map((k) => [k, delta("data", 1)])) : DIRTY_MARK;
    await Promise.all(locked.map(async (i) => {
      try {
        await afr.children[i]!.xattrop(txn.ctx, loc, "add32", mark);
        txn.marked.push(i);
      } catch (err) {
        const e = FopError.from(err, { xlator: afr.name, fop: "write" });
        if (e.code !== "ENOENT") {
          txn.failed.add(i);
          txn.errors.set(i, e);
        }
      }
    }));
  })();
  try {
    await txn.ready;
  } catch (err) {
    eager.delete(fc);
    txn.unbusy();
    await txn.held?.releaseAll();
    throw err;
  }
  return txn;
}

/**
 * Lock and pre-op with the remote replica's lock riding on its pre-op (one round trip instead of
 * two; runRiding). False, with nothing held or marked, when this is not possible now.
 */
async function lockAndMarkRiding(afr: Afr, txn: EagerTxn, loc: Loc, up: number[]): Promise<boolean> {
  const r = ridingChild(afr, up);
  if (r === undefined) return false;
  const mark = DIRTY_MARK;
  const res = await runRiding(afr, txn.ctx, [dataLock(afr, loc)], up, r, (i, riding) => {
    const [c, x] = withRiding(txn.ctx, undefined, riding);
    return afr.children[i]!.xattrop(c, loc, "add32", mark, x);
  }, "xattrop");
  if (!res) return false;
  txn.held = res.held;
  txn.marked.push(...res.outcome.results.keys());
  for (const [i, e] of res.outcome.failed) {
    if (e.code === "ENOENT") continue;
    txn.failed.add(i);
    txn.errors.set(i, e);
  }
  return true;
}

function armIdle(afr: Afr, fd: Fd, txn: EagerTxn): void {
  if (txn.idle) clearTimeout(txn.idle);
  const delay = (afr.options["post-op-delay"] ?? 0.1) * 1000;
  txn.idle = setTimeout(() => void finishEager(afr, fd), delay);
}

/**
 * The batch of a file being created for writing, its lock and pre-op riding on the create itself
 * (locks-first.ts): each replica's create takes the file's data lock under the gfid it gives the
 * file, never waiting (nobody else can know that gfid yet), and marks the new file dirty. The batch
 * then starts with no lock request and no pre-op of its own: two round trips fewer per new file on
 * each remote replica, and two brick operations fewer on each. Undefined where a replica cannot
 * take them (not up, or its locks translator does not take riding locks): the batch starts the
 * usual way after the create (startEagerBatch).
 */
export function newFileBatch(afr: Afr, ctx: CallCtx, loc: Loc, flags: number, gfid: string): NewFileBatch | undefined {
  if (!eagerEnabled(afr) || (flags & 3) === fsc.O_RDONLY) return undefined;
  const up = afr.upChildren();
  if (up.length !== afr.children.length || !up.every((i) => afr.locksFirst[i])) return undefined;
  return new NewFileBatch(afr, ctx, loc, gfid);
}

export class NewFileBatch {
  private readonly txnCtx: CallCtx;
  private readonly lock: LockSpec;
  private readonly wire: FirstLock[];
  /** Locks the creates took: under the new gfid, even where a create opened a file already there. */
  private readonly held: HeldLocks;
  /** Replicas whose create made the file, and so marked it. */
  private readonly marked = new Set<number>();
  private readonly unbusy: () => void;

  constructor(private readonly afr: Afr, ctx: CallCtx, loc: Loc, private readonly gfid: string) {
    this.txnCtx = afr.internalCtx(ctx);
    this.lock = dataLock(afr, { path: loc.path, gfid });
    this.wire = wireLocks([this.lock]).map((l) => ({ ...l, owner: this.txnCtx.lkOwner }));
    this.held = new HeldLocks(afr, this.txnCtx);
    // The new file's dirty mark is this batch's own (lookup must not take it for a heal to do).
    this.unbusy = afr.after.markBusy(loc.path);
  }

  /**
   * Replica i's create with the batch's lock and pre-op riding on it. If the lock is taken (another
   * server learnt the gfid from a replica that made the file first), the create goes again without
   * them: the file is made either way, and the batch starts the usual way.
   */
  async create(i: number, xdata: Xdata | undefined, create: (xdata: Xdata | undefined) => Promise<Iatt>): Promise<Iatt> {
    const riding = (xdata?.[LOCKS_FIRST_XDATA] as FirstLock[] | undefined) ?? [];
    try {
      const made = await create({ ...xdata, [LOCKS_FIRST_XDATA]: [...riding, ...this.wire], [CHANGELOG_XDATA]: DIRTY_MARK });
      this.held.held.set(i, [this.lock]);
      if (made.gfid === this.gfid) this.marked.add(i);
      return made;
    } catch (err) {
      if (FopError.from(err).code !== "EAGAIN") throw err;
      return create(xdata);
    }
  }

  /**
   * After the creates: the batch of the new file when every replica made it born locked and
   * marked, else what was taken goes again and the batch starts the usual way if it can.
   */
  start(fd: Fd, fc: AfrFdCtx, made: Map<number, Iatt>): void {
    const afr = this.afr;
    const all = afr.children.map((_, i) => i);
    if (!all.every((i) => this.marked.has(i))) {
      this.abandon();
      if (made.size === afr.children.length) startEagerBatch(afr, this.txnCtx, fd, fc);
      return;
    }
    const txn = newTxn(afr, this.txnCtx, this.unbusy, { held: this.held, marked: all });
    eager.set(fc, txn);
    armIdle(afr, fd, txn);
  }

  /** No batch from the create: each replica's lock goes again, with its mark taken back if it has one. */
  abandon(): void {
    const afr = this.afr;
    const unmark = { [DIRTY_KEY]: delta("data", -1) };
    // (a batch of this process on the file waits for it rather than meet these locks on the bricks)
    afr.after.run([specKey(this.lock)], () => Promise.all(this.held.children.map(async (i) => {
      if (!this.marked.has(i)) return this.held.releaseChild(i);
      try {
        await afr.children[i]!.xattrop(this.txnCtx, this.lock.loc, "add32", unmark, unlockRiding(afr, i, this.held));
      } catch (err) {
        afr.log.warn({ child: afr.children[i]!.name, err: (err as Error).message }, "taking back a new file's mark failed; heal compares its copies");
      }
      if (this.held.held.has(i)) await this.held.releaseChild(i);
    })).then(() => undefined).finally(this.unbusy));
  }
}

/**
 * Opens the batch of a file just created, ahead of its first write: lock and pre-op run while the
 * client is still busy with the create's answer, so the write finds them done. Without a write the
 * batch ends after `post-op-delay`, or at flush.
 */
export function startEagerBatch(afr: Afr, ctx: CallCtx, fd: Fd, fc: AfrFdCtx): void {
  if (!eagerEnabled(afr) || eager.has(fc)) return;
  void begin(afr, ctx, fd, fc).then((txn) => {
    if (txn.inflight === 0 && !txn.closing) armIdle(afr, fd, txn);
  }, () => undefined);
}

/**
 * At flush: a batch whose marks already tell the truth after a crash (nothing failed; every replica
 * marked, or one alone) ends in the background; otherwise the post-op is on disk before the answer.
 */
export async function flushEager(afr: Afr, fd: Fd): Promise<void> {
  const fc = afr.fdCtx(fd);
  const txn = fc ? eager.get(fc) : undefined;
  if (!txn) return;
  await txn.ready.catch(() => undefined);
  const clean = txn.failed.size === 0 && (txn.solo || txn.marked.length === afr.children.length);
  if (clean) void finishEager(afr, fd);
  else await finishEager(afr, fd);
}

/**
 * Sends a batch's post-op (`change`, possibly empty) and its unlock to replica i on a fop that goes
 * there anyway: the close's flush (locks-first.ts, CHANGELOG_XDATA) — one message instead of two.
 */
export interface PostOpCarrier {
  /** The lock owner of the fop that carries it (it must come from the batch's client). */
  ctx: CallCtx;
  rides(i: number): boolean;
  send(i: number, change: Record<string, Buffer>, unlock: Xdata | undefined): Promise<void>;
  /**
   * Every replica's part is on its way (the batch's writes have all settled): `clean` when they all
   * took and every replica was marked (or the batch ran on one alone), as flushEager's condition.
   */
  dispatched?(clean: boolean): void;
}

/**
 * Ends the fd's batch with the flush carrying its post-op and unlock to each replica that can take
 * them (the others get their own xattrop, as at any batch end). Resolves once the batch has ended;
 * no batch open, or one already ending: nothing rides, and the flush goes as usual.
 */
export async function finishEagerAtFlush(afr: Afr, fd: Fd, carrier: PostOpCarrier): Promise<void> {
  const fc = afr.fdCtx(fd);
  const txn = fc ? eager.get(fc) : undefined;
  if (!txn) return;
  // (the batch's locks are owned by its client: a flush from any other cannot release them)
  await finishEager(afr, fd, carrier.ctx.client === txn.ctx.client ? carrier : undefined);
}

/** Post-op and unlock of the fd's pending batch, if any. */
export async function finishEager(afr: Afr, fd: Fd, carrier?: PostOpCarrier): Promise<void> {
  const fc = afr.fdCtx(fd);
  const txn = fc ? eager.get(fc) : undefined;
  if (!fc || !txn) return;
  txn.closing ??= (async () => {
    await txn.ready.catch(() => undefined);
    // (no write joins a closing batch, so this only waits for those already in flight)
    while (txn.inflight > 0) await new Promise<void>((r) => (txn.drained = r));
    if (eager.get(fc) === txn) eager.delete(fc);
    if (txn.idle) clearTimeout(txn.idle);
    const ok = [...txn.succeeded].filter((i) => !txn.failed.has(i));
    const all = afr.children.map((_, j) => j);
    // Solo: nothing of its own to undo; the others' blame is undone only if no write took.
    // Otherwise the dirty mark goes, and the replicas that missed a write (unless none took) are blamed.
    let change: Record<string, Buffer>;
    if (txn.solo) {
      const undo = txn.succeeded.size > 0 ? [] : all.filter((j) => j !== txn.marked[0]);
      change = Object.fromEntries(undo.map((j) => [txn.keys[j]!, delta("data", -1)]));
    } else {
      const missed = ok.length > 0 ? all.filter((j) => !ok.includes(j)) : [];
      change = { [DIRTY_KEY]: delta("data", -1), ...Object.fromEntries(missed.map((j) => [txn.keys[j]!, delta("data", 1)])) };
    }
    const loc = fdLoc(fd);
    const changes = Object.keys(change).length > 0;
    const sent = Promise.all(txn.marked.map(async (i) => {
      const rides = carrier !== undefined && afr.locksFirst[i] && carrier.rides(i);
      if (!changes && !rides) return;
      try {
        if (rides) await carrier.send(i, change, unlockRiding(afr, i, txn.held, txn.ctx.lkOwner));
        else await afr.children[i]!.xattrop(txn.ctx, loc, "add32", change, unlockRiding(afr, i, txn.held));
      } catch (err) {
        afr.log.warn({ child: afr.children[i]!.name, err: (err as Error).message }, "delayed post-op failed; replica stays marked");
      }
    }));
    // (each replica's send above started synchronously: its message is queued)
    carrier?.dispatched?.(txn.failed.size === 0 && (txn.solo || txn.marked.length === afr.children.length));
    await sent;
    // Blame stays on disk: heal it as soon as the replica that missed writes is back.
    if (txn.succeeded.size > 0 && (txn.solo || ok.length < all.length)) afr.daemon.notePending([fd.path]);
    txn.unbusy();
    // The unlock holds up nothing: a following transaction of this process waits for it in lockAll.
    const held = txn.held;
    if (held) afr.after.run([specKey(dataLock(afr, loc))], () => held.releaseAll());
  })();
  await txn.closing;
}

/** One write inside the fd's batch (starting one if needed). */
export async function eagerWrite(afr: Afr, ctx: CallCtx, fd: Fd, fc: AfrFdCtx, range: WriteRange, op: (i: number) => Promise<number>): Promise<number> {
  const maxHold = (afr.options["eager-lock-max-hold"] ?? 1) * 1000;
  let txn: EagerTxn | undefined;
  for (;;) {
    txn = eager.get(fc);
    if (txn && !txn.closing) {
      // A batch still locking (opened at create) is judged on what it marked, once it has.
      await txn.ready.catch(() => undefined);
      txn = eager.get(fc);
    }
    // A batch ends when a replica came back (it must join the next one) or it was held long enough.
    if (txn && (txn.closing || Date.now() - txn.startedAt > maxHold || afr.upChildren().some((i) => fc.opened[i] && !txn!.marked.includes(i) && !txn!.failed.has(i)))) {
      await finishEager(afr, fd);
      txn = undefined;
    }
    txn ??= eager.get(fc) ?? (await begin(afr, ctx, fd, fc));
    await txn.ready;
    // The batch may have started closing (idle timer, max hold) while we waited: its lock is then
    // being released, and a write outside it could interleave with another server's locked write
    // in a different order on each replica. Join only a batch that is still open; the check and the
    // inflight count below happen in the same tick, so a closing batch always waits for us.
    if (!txn.closing && eager.get(fc) === txn) break;
  }
  txn.inflight++;
  if (txn.idle) clearTimeout(txn.idle);
  // Writes of one batch share the lock, so the lock does not order them: two overlapping writes in
  // flight at once could land in one order on one replica and the other order on the other. An
  // overlapping write waits for the earlier ones (arrival order, the same for every replica).
  const mine: WriteInFlight = range.append
    ? { start: 0, end: Infinity, done: undefined as unknown as Promise<void> }
    : { start: range.offset, end: range.offset + range.length, done: undefined as unknown as Promise<void> };
  const earlier = txn.writing.filter((w) => w.start < mine.end && mine.start < w.end).map((w) => w.done);
  let written!: () => void;
  mine.done = new Promise<void>((r) => (written = r));
  txn.writing.push(mine);
  let settle = false;
  try {
    if (earlier.length > 0) await Promise.all(earlier);
    const targets = txn.marked.length > 0 ? txn.marked : afr.upChildren();
    const results = new Map<number, number>();
    const errors: FopError[] = [];
    await Promise.all(targets.map(async (i) => {
      if (!fc.opened[i] || txn!.failed.has(i)) {
        txn!.failed.add(i);
        const earlier = txn!.errors.get(i);
        if (earlier) errors.push(earlier);
        return;
      }
      try {
        results.set(i, await op(i));
        txn!.succeeded.add(i);
      } catch (err) {
        const e = FopError.from(err, { xlator: afr.name, fop: "write" });
        txn!.failed.add(i);
        txn!.errors.set(i, e);
        errors.push(e);
        if (e.code === "EBADF" || e.code === "ENOTCONN") fc.opened[i] = false;
      }
    }));
    if (results.size === 0) {
      throw errors.find((e) => e.code !== "ENOTCONN" && e.code !== "EBADF") ?? errors[0] ?? afr.err("ENOTCONN", "write");
    }
    settle = results.size < afr.children.length && !txn.solo;
    if (!results.has(fc.readChild)) fc.readChild = results.keys().next().value!;
    if (afr.options["quorum-type"] !== "none" && !afr.hasQuorum([...results.keys()])) throw afr.err("EROFS", "write", "succeeded on fewer replicas than the quorum");
    return results.get(fc.readChild)!;
  } finally {
    txn.writing.splice(txn.writing.indexOf(mine), 1);
    written();
    txn.inflight--;
    if (txn.inflight === 0) txn.drained?.();
    if (settle) {
      // A replica missed an answered write: its blame goes to disk first.
      await finishEager(afr, fd);
    } else if (txn.inflight === 0 && !txn.closing) {
      armIdle(afr, fd, txn);
    }
  }
}
