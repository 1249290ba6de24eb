/**
 * Eager entry transactions (GlusterFS's delayed post-op, for directories): a burst of entry fops in
 * one directory (a tar, a cp -r, a mail spool) shares one pre-op and one post-op on the directory.
 * The first fop marks the directory on every replica (+1 entry for every replica, as a pre-op) under a
 * shared lock of the "batch" domain; the following ones only take their name lock and run; the
 * post-op and unlock come when the directory is idle for `post-op-delay`, after `eager-lock-max-hold`,
 * or at once when an op fails on some replica only — so blame is on disk before that op is answered,
 * and every answered op is covered by marks already on disk. A crash inside the window leaves every
 * replica self-accusing on the directory: heal merges (creates nothing that was not created on all,
 * deletes nothing). Entry self-heal takes the batch lock exclusively, so it never clears marks of an
 * open batch; batches of both servers share it (rd), so they run side by side.
 * While no one else works in the directory, the batch also holds the directory's entry lock whole
 * (taken without waiting, on every replica): its fops then take no name locks at all (a create or an
 * unlink is one round trip to each replica instead of a lock and the op). Another server's entry fop
 * there waits for it: at most until the batch ends (idle for post-op-delay, or eager-lock-max-hold,
 * as a write batch holds its file), and the next batch finds the waiter and locks names one by one.
 * A directory written to at intervals a little longer than post-op-delay (files spread round-robin
 * over many directories: hashed object stores, spools, a tree made breadth-first) would pay a pre-op
 * and a post-op for every fop; so a batch that ended idle and whose directory got a fop again soon
 * after (within eager-lock-max-hold) hands its successor twice its idle time, up to
 * eager-lock-max-hold (the longest any batch holds its directory anyway). 1,000 files created
 * round-robin over 20 directories through the seed's cluster: 191 -> 278 files/s (faster in 6 of 8
 * rounds), sides swapped 166 -> 282 (7 of 8); one directory: unchanged.
 * Used only while every replica is up; otherwise each entry fop is a transaction of its own.
 */
import { FopError } from "../../../core/errors";
import type { CallCtx } from "../../../core/types";
import type { Afr } from "./afr";
import { delta } from "./changelog";
import { bestError, lockAll, ridingChild, runRiding, specKey, unlockRiding, type HeldLocks, type LockSpec, type RidingLocks, type TxnOutcome } from "./transaction";

interface EntryBatch {
  dir: string;
  ctx: CallCtx;
  keys: string[];
  /** Resolves true once every replica is locked and marked. */
  ready: Promise<boolean>;
  held?: HeldLocks;
  /** Holds the directory's entry lock whole on every replica (in `held`): its fops need no name locks. */
  whole?: boolean;
  marked: number[];
  /** Replicas where some op of the batch failed while it succeeded elsewhere. */
  failed: Set<number>;
  inflight: number;
  drained?: () => void;
  idle?: NodeJS.Timeout;
  /** How long the directory must be idle before the batch ends (see Revisit). */
  idleMs: number;
  startedAt: number;
  closing?: Promise<void>;
  unbusy: () => void;
}

/** How a directory's last batch ended: its successor's idle time is learned from it. */
interface Revisit {
  endedAt: number;
  idleMs: number;
  /** It ended because the directory was idle (rather than held long enough, or ended for a rename). */
  endedIdle: boolean;
}
/** Directories whose last batch's end is remembered, at most. */
const REMEMBERED_DIRS = 1024;

/** Per replicate volume: its open batches, and how the last batch of recently used directories ended. */
interface EntryBatches {
  open: Map<string, EntryBatch>;
  lastEnds: Map<string, Revisit>;
}
const perAfr = new WeakMap<Afr, EntryBatches>();

function batchesOf(afr: Afr): EntryBatches {
  let s = perAfr.get(afr);
  if (!s) perAfr.set(afr, (s = { open: new Map(), lastEnds: new Map() }));
  return s;
}

function table(afr: Afr): Map<string, EntryBatch> {
  return batchesOf(afr).open;
}

/** The idle time of a new batch of `dir`: post-op-delay, or more for a directory that came back soon. */
function idleTimeOf(afr: Afr, dir: string): number {
  const base = (afr.options["post-op-delay"] ?? 0.1) * 1000;
  const maxHold = (afr.options["eager-lock-max-hold"] ?? 1) * 1000;
  const last = batchesOf(afr).lastEnds.get(dir);
  if (!last || Date.now() - last.endedAt > maxHold) return base;
  return Math.max(base, Math.min(maxHold, last.endedIdle ? 2 * last.idleMs : last.idleMs));
}

function noteEnd(afr: Afr, b: EntryBatch, endedIdle: boolean): void {
  const t = batchesOf(afr).lastEnds;
  t.delete(b.dir);
  // (another server works there: its fops wait for our batches, which then end as soon as they may)
  t.set(b.dir, { endedAt: Date.now(), idleMs: b.whole ? b.idleMs : 0, endedIdle });
  if (t.size > REMEMBERED_DIRS) t.delete(t.keys().next().value!);
}


export function batchDomain(afr: Afr): string {
  return `${afr.name}:entry-batch`;
}

/** The lock an entry heal of `dir` takes (exclusive) before its entry lock; batches take it shared. */
export function batchLock(afr: Afr, dir: string, type: "rd" | "wr"): LockSpec {
  return { kind: "entry", domain: batchDomain(afr), loc: { path: dir }, basename: null, type };
}

export function entryBatchesEnabled(afr: Afr): boolean {
  return afr.options["eager-lock"] !== false && afr.children.length > 1;
}

function all(afr: Afr): number[] {
  return afr.children.map((_, j) => j);
}

function begin(afr: Afr, ctx: CallCtx, dir: string): EntryBatch {
  const b: EntryBatch = {
    dir, ctx: afr.internalCtx(ctx), keys: afr.children.map((_, j) => afr.blameKey(j)), ready: Promise.resolve(false),
    marked: [], failed: new Set(), inflight: 0, idleMs: idleTimeOf(afr, dir), startedAt: Date.now(), unbusy: afr.after.markBusy(dir),
  };
  table(afr).set(dir, b);
  b.ready = (async () => {
    const everyone = all(afr);
    b.held = await lockAll(afr, b.ctx, [batchLock(afr, dir, "rd")], everyone);
    if (b.held.children.length !== everyone.length) return false;
    const mark = Object.fromEntries(b.keys.map((k) => [k, delta("entry", 1)]));
    await Promise.all([...everyone.map(async (i) => {
      try {
        await afr.children[i]!.xattrop(b.ctx, { path: dir }, "add32", mark);
        b.marked.push(i);
      } catch {
        // left unmarked: the batch is not used, the fop runs as a transaction of its own
      }
    }), lockWhole(afr, b, everyone)]);
    return b.marked.length === everyone.length;
  })().catch(() => false);
  return b;
}

/** Post-op (un-blaming the replicas where nothing failed) and unlock of a batch. */
function finish(afr: Afr, b: EntryBatch, endedIdle = false): Promise<void> {
  if (b.closing) return b.closing;
  noteEnd(afr, b, endedIdle);
  b.closing = (async () => {
    const t = table(afr);
    if (t.get(b.dir) === b) t.delete(b.dir);
    if (b.idle) clearTimeout(b.idle);
    await b.ready;
    if (b.inflight > 0) await new Promise<void>((r) => (b.drained = r));
    const ok = all(afr).filter((j) => !b.failed.has(j));
    const undo = ok.length > 0 ? ok : all(afr);
    const change = Object.fromEntries(undo.map((j) => [b.keys[j]!, delta("entry", -1)]));
    await Promise.all(b.marked.map(async (i) => {
      try {
        await afr.children[i]!.xattrop(b.ctx, { path: b.dir }, "add32", change, unlockRiding(afr, i, b.held));
      } catch (err) {
        afr.log.warn({ child: afr.children[i]!.name, dir: b.dir, err: (err as Error).message }, "entry batch post-op failed; replica stays marked");
      }
    }));
    if (b.failed.size > 0 && ok.length > 0) afr.daemon.notePending([b.dir]);
    b.unbusy();
    const held = b.held;
    // Not keyed: a following batch of this process takes the same shared lock without waiting.
    if (held) afr.after.run([], () => held.releaseAll());
  })();
  // A following batch of this process tries the whole lock once this one let it go (with its post-op).
  afr.after.run([specKey(wholeLock(afr, b.dir))], () => b.closing!);
  return b.closing;
}

/** The directory's entry lock, whole (it excludes every name lock of the directory). */
function wholeLock(afr: Afr, dir: string): LockSpec {
  return { kind: "entry", domain: afr.name, loc: { path: dir }, basename: null, type: "wr" };
}

/** Takes the directory's entry lock whole on every replica if that needs no waiting; else the batch locks names. */
async function lockWhole(afr: Afr, b: EntryBatch, everyone: number[]): Promise<void> {
  try {
    const held = await lockAll(afr, b.ctx, [wholeLock(afr, b.dir)], everyone, { blocking: false });
    if (held.children.length === everyone.length && b.held) {
      b.held.adopt(held); // released with the batch lock: riding on the post-op
      b.whole = true;
    } else {
      await held.releaseAll();
    }
  } catch {
    // someone else holds a name (or the directory): names are locked one by one
  }
}

/** Ends the batches on `path` and under it (before the directory is renamed or removed). */
export async function finishEntryBatches(afr: Afr, path: string): Promise<void> {
  const t = table(afr);
  const mine = [...t.values()].filter((b) => b.dir === path || b.dir.startsWith(path === "/" ? "/" : path + "/"));
  await Promise.all(mine.map((b) => finish(afr, b)));
}

export async function finishAllEntryBatches(afr: Afr): Promise<void> {
  await Promise.all([...table(afr).values()].map((b) => finish(afr, b)));
}

/** Whether this process has a batch open on `dir` (its marks are ours, not a heal to do). */
export function entryBatchOpen(afr: Afr, dir: string): boolean {
  return table(afr).has(dir);
}

/** Joins (or opens) the batch of `dir`; undefined when the fop must run as a transaction of its own. */
async function join(afr: Afr, ctx: CallCtx, dir: string): Promise<EntryBatch | undefined> {
  const t = table(afr);
  let b = t.get(dir);
  const maxHold = (afr.options["eager-lock-max-hold"] ?? 1) * 1000;
  if (b && (b.closing || Date.now() - b.startedAt > maxHold)) {
    // Held long enough: its post-op runs on its own while a new batch takes over (marks add up).
    void finish(afr, b);
    b = undefined;
  }
  b ??= begin(afr, ctx, dir);
  b.inflight++;
  if (b.idle) clearTimeout(b.idle);
  b.idle = undefined;
  if (await b.ready) return b;
  leave(afr, b);
  await finish(afr, b);
  return undefined;
}

function leave(afr: Afr, b: EntryBatch): void {
  b.inflight--;
  if (b.inflight > 0) return;
  if (b.drained) {
    b.drained();
    return;
  }
  if (b.closing) return;
  b.idle = setTimeout(() => void finish(afr, b, true), b.idleMs);
}

/**
 * Runs one entry fop inside the batches of its parent directories: name locks on every replica, the
 * op on every replica at once. Resolves undefined (nothing done) when batching is not possible now.
 */
export async function batchedEntryOp<T>(afr: Afr, ctx: CallCtx, fop: string, dirs: string[], locks: LockSpec[],
  op: (i: number, riding?: RidingLocks) => Promise<T>): Promise<TxnOutcome<T> | undefined> {
  if (!entryBatchesEnabled(afr) || afr.upChildren().length !== afr.children.length) {
    for (const d of dirs) if (table(afr).has(d)) await finishEntryBatches(afr, d);
    return undefined;
  }
  const joined: EntryBatch[] = [];
  for (const d of [...dirs].sort()) {
    const b = await join(afr, ctx, d);
    if (!b) {
      for (const j of joined) leave(afr, j);
      return undefined;
    }
    joined.push(b);
  }
  // A rename between a directory held whole and one that is not: as a transaction of its own (its
  // name lock there waits for this process's batch to end, which holds nothing it waits for).
  const whole = joined.filter((b) => b.whole).length;
  if (whole > 0 && whole < joined.length) {
    for (const j of joined) leave(afr, j);
    return undefined;
  }
  const everyone = all(afr);
  const failed = new Map<number, FopError>();
  const results = new Map<number, T>();
  // the op on every replica (on those `names` locked, when it took name locks)
  const runOn = (names?: HeldLocks) => Promise.all(everyone.map(async (i) => {
    if (names && !names.held.has(i)) return void failed.set(i, names.failed.get(i) ?? afr.err("ENOTCONN", fop, "could not lock this subvolume"));
    try {
      results.set(i, await op(i));
    } catch (err) {
      failed.set(i, FopError.from(err, { xlator: afr.name, fop }));
    }
  }));
  let partial = false;
  try {
    if (whole > 0) {
      await runOn(); // the directories are locked whole by their batches: no name locks
    } else {
      const ictx = afr.internalCtx(ctx);
      const keys = locks.map(specKey);
      // The remote replica's name locks ride on its fop when they can (one round trip, not two).
      const r = ridingChild(afr, everyone);
      const riding = r === undefined ? undefined : await runRiding(afr, ictx, locks, everyone, r, op, fop, { releaseAfter: true });
      const held = riding?.held ?? await lockAll(afr, ictx, locks, everyone);
      try {
        if (riding) {
          for (const [i, v] of riding.outcome.results) results.set(i, v);
          for (const [i, e] of riding.outcome.failed) failed.set(i, e);
        } else {
          await runOn(held);
        }
      } finally {
        afr.after.run(keys, () => held.releaseAll());
      }
    }
    partial = results.size > 0 && failed.size > 0;
    if (partial) for (const b of joined) for (const i of failed.keys()) b.failed.add(i);
  } finally {
    for (const b of joined) leave(afr, b);
    // A replica that missed an answered op must be blamed on disk before the answer.
    if (partial) await Promise.all(joined.map((b) => finish(afr, b)));
  }
  if (results.size === 0) throw bestError(afr, fop, failed);
  if (failed.size > 0) {
    afr.log.debug({ fop, failed: [...failed].map(([i, e]) => `${afr.children[i]!.name}:${e.code}`) }, "op failed on some replicas");
  }
  if (afr.options["quorum-type"] !== "none" && !afr.hasQuorum([...results.keys()])) throw afr.err("EROFS", fop, "succeeded on fewer replicas than the quorum");
  return { results, failed };
}

