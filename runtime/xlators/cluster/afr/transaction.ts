/**
 * The AFR transaction (afr-transaction.c): lock -> pre-op -> op -> post-op -> unlock.
 *
 * Changelog model "v1" (GlusterFS 2.0..3.5), chosen because its blame is explicit per replica and needs
 * no separate dirty counter: pre-op adds 1 to the counter of every child on every locked child; post-op
 * subtracts 1 for each child where the op succeeded. What remains is exactly "replica i saw a change
 * that replica j missed". A transaction that died half way leaves M[i][i] != 0 (self-accusing).
 * If the op failed on every child, nothing changed anywhere, so post-op undoes all marks.
 *
 * What the answer waits for: the pre-op marks are on disk on a replica before the op runs there, and
 * blame of a replica that missed the op is on disk before the op is answered. The unlock never holds
 * up the answer, nor does the post-op of an op that succeeded on every replica (a crash before it
 * leaves every replica self-accusing, which heal clears): both run after it (after-work.ts).
 */
import { FopError } from "../../../core/errors";
import type { CallCtx, Loc, Xdata } from "../../../core/types";
import { LOCKS_AFTER_XDATA, LOCKS_FIRST_XDATA, type FirstLock } from "../../features/posix-locks/locks-first";
import type { Afr } from "./afr";
import { delta, type ChangelogKind } from "./changelog";

export type LockSpec =
  | { kind: "inode"; domain: string; loc: Loc; start: number; len: number }
  | { kind: "entry"; domain: string; loc: Loc; basename: string | null; type?: "rd" | "wr" };

export interface TxnSpec<T> {
  fop: string;
  kind: ChangelogKind;
  locks: LockSpec[];
  /** Where the pending marks go: the file for data/metadata, the parent dir(s) for entry ops. */
  changelog: Loc[];
  /** Children the op may run on (default: every locked child). Others that are locked get blamed. */
  targets?: (i: number) => boolean;
  op(i: number): Promise<T>;
  /**
   * fd-based ops: a file unlinked while open has no path any more, so a child where locking or pre-op
   * says ENOENT still runs the op (without changelog) instead of failing the write.
   */
  fdBased?: boolean;
}

export interface TxnOutcome<T> {
  results: Map<number, T>;
  failed: Map<number, FopError>;
}

const warnedNoLocks = new WeakSet<object>();
export const CONTENTION = new Set(["EAGAIN", "EWOULDBLOCK", "EDEADLK"]);

export function specKey(s: LockSpec): string {
  return s.kind === "inode" ? `i:${s.domain}:${s.loc.path}:${s.start}` : `e:${s.domain}:${s.loc.path}:${s.basename ?? ""}`;
}

async function takeLock(afr: Afr, ctx: CallCtx, i: number, s: LockSpec, blocking: boolean): Promise<void> {
  const child = afr.children[i]!;
  if (s.kind === "inode") {
    await child.inodelk(ctx, s.domain, s.loc, blocking ? "setlkw" : "setlk",
      { type: "wr", start: s.start, len: s.len, pid: ctx.pid, owner: ctx.lkOwner });
  } else {
    await child.entrylk(ctx, s.domain, s.loc, s.basename, blocking ? "lock" : "lock_nb", s.type ?? "wr");
  }
}

async function releaseLock(afr: Afr, ctx: CallCtx, i: number, s: LockSpec): Promise<void> {
  const child = afr.children[i]!;
  try {
    if (s.kind === "inode") {
      await child.inodelk(ctx, s.domain, s.loc, "setlk", { type: "un", start: s.start, len: s.len, pid: ctx.pid, owner: ctx.lkOwner });
    } else {
      await child.entrylk(ctx, s.domain, s.loc, s.basename, "unlock", s.type ?? "wr");
    }
  } catch (err) {
    // A child that went away dropped our locks with the connection.
    afr.log.debug({ child: child.name, err: (err as Error).message }, "unlock failed");
  }
}

/** Locks held by one transaction, per child. */
export class HeldLocks {
  readonly held = new Map<number, LockSpec[]>();
  /** Why a child was left out (its last lock error). */
  readonly failed = new Map<number, FopError>();
  constructor(private readonly afr: Afr, private readonly ctx: CallCtx) {}
  get children(): number[] {
    return [...this.held.keys()];
  }
  async releaseChild(i: number): Promise<void> {
    const specs = this.held.get(i) ?? [];
    this.held.delete(i);
    for (const s of [...specs].reverse()) await releaseLock(this.afr, this.ctx, i, s);
  }
  async releaseAll(): Promise<void> {
    await Promise.all(this.children.map((i) => this.releaseChild(i)));
  }
  /** Takes over `other`'s locks (taken by the same owner): they are released with these. */
  adopt(other: HeldLocks): void {
    for (const [i, specs] of other.held) this.held.set(i, [...(this.held.get(i) ?? []), ...specs]);
    other.held.clear();
  }
}

/**
 * Takes every lock on every child in `among`: first non-blocking on all at once; on contention
 * releases everything and takes them blocking, child by child in brick-identity order (the same on
 * every server, so two servers locking the same file cannot deadlock) — or, with `blocking: false`,
 * rejects with the contention error (EAGAIN). Children that fail otherwise (down) are left out.
 */
export async function lockAll(afr: Afr, ctx: CallCtx, specs: LockSpec[], among: number[], opts: { blocking?: boolean } = {}): Promise<HeldLocks> {
  const sorted = [...specs].sort((a, b) => (specKey(a) < specKey(b) ? -1 : 1));
  // An own transaction still unlocking the same lock: wait here rather than meet it on the brick.
  await afr.after.settled(sorted.map(specKey));
  const order = afr.lockOrder(among);
  const held = new HeldLocks(afr, ctx);
  if (sorted.length === 0) {
    for (const i of order) held.held.set(i, []);
    return held;
  }
  const tryChild = async (i: number, blocking: boolean): Promise<FopError | undefined> => {
    const taken: LockSpec[] = [];
    held.held.set(i, taken);
    try {
      for (const s of sorted) {
        await takeLock(afr, ctx, i, s, blocking);
        taken.push(s);
      }
      held.failed.delete(i);
      return undefined;
    } catch (err) {
      const e = FopError.from(err, { xlator: afr.name, fop: "inodelk" });
      if (e.code === "ENOSYS") {
        // No locks translator under this child: replicate without locks, and say so once.
        if (!warnedNoLocks.has(afr.children[i]!)) {
          warnedNoLocks.add(afr.children[i]!);
          afr.log.warn({ child: afr.children[i]!.name }, "subvolume has no features/posix-locks: replicating without locks");
        }
        return undefined;
      }
      await held.releaseChild(i);
      held.failed.set(i, e);
      return e;
    }
  };
  const errors = await Promise.all(order.map((i) => tryChild(i, false)));
  const contended = errors.find((e) => e && CONTENTION.has(e.code));
  if (!contended) return held;
  await held.releaseAll();
  if (opts.blocking === false) throw contended;
  for (const i of order) {
    const e = await tryChild(i, true);
    if (e) afr.log.debug({ child: afr.children[i]!.name, code: e.code }, "blocking lock failed; child left out");
  }
  return held;
}

/** What a fop sent to the locks-first child carries: its locks (in xdata) and their owner. */
export interface RidingLocks {
  lkOwner: string;
  xdata: Xdata;
}

/** `ctx` and `xdata` of a fop, with the locks riding on it when there are any. */
export function withRiding(ctx: CallCtx, xdata: Xdata | undefined, riding?: RidingLocks): [CallCtx, Xdata | undefined] {
  if (!riding) return [ctx, xdata];
  return [{ ...ctx, lkOwner: riding.lkOwner }, { ...(xdata ?? {}), ...riding.xdata }];
}

/**
 * Locks and runs an op with the remote child's locks riding on its fop: the local children (first
 * in lock order) are locked first, never waiting; then the op runs on them while it goes to `r`
 * with r's locks riding on it. Consistent order on every replica: whoever runs an op anywhere holds
 * the lock of the first child in lock order all along (here the local one, taken before anything
 * runs), so conflicting ops run one after the other everywhere. If r's locks are taken by someone
 * else, its fop does not run: keeping the local locks, r's are awaited (lock order: first child,
 * then r; nobody waits the other way round), then the op runs on r. With `releaseAfter`, r's locks
 * go again as soon as its fop is done (they ride on it both ways): the first child's lock, held
 * until the op is done everywhere, keeps the order. Resolves undefined, holding
 * nothing and having run nothing, when a local lock is contended (the caller locks the usual way).
 */
export async function runRiding<T>(afr: Afr, ctx: CallCtx, specs: LockSpec[], among: number[], r: number,
  op: (i: number, riding?: RidingLocks) => Promise<T>, fop: string, opts: { releaseAfter?: boolean } = {}): Promise<{ held: HeldLocks; outcome: TxnOutcome<T> } | undefined> {
  const sorted = [...specs].sort((a, b) => (specKey(a) < specKey(b) ? -1 : 1));
  const others = among.filter((i) => i !== r);
  await afr.after.settled(sorted.map(specKey));
  let held: HeldLocks;
  try {
    held = await lockAll(afr, ctx, sorted, others, { blocking: false });
  } catch (err) {
    if (CONTENTION.has(FopError.from(err).code)) return undefined;
    throw err;
  }
  if (held.children.length !== others.length) {
    await held.releaseAll();
    return undefined;
  }
  const wire = wireLocks(sorted);
  const results = new Map<number, T>();
  const failed = new Map<number, FopError>();
  const fail = (i: number, err: unknown) => failed.set(i, FopError.from(err, { xlator: afr.name, fop }));
  const onRemote = async (): Promise<void> => {
    try {
      const xdata: Xdata = { [LOCKS_FIRST_XDATA]: wire };
      if (opts.releaseAfter) xdata[LOCKS_AFTER_XDATA] = [...wire].reverse();
      const v = await op(r, { lkOwner: ctx.lkOwner, xdata });
      held.held.set(r, opts.releaseAfter ? [] : sorted);
      results.set(r, v);
      return;
    } catch (err) {
      if (!CONTENTION.has(FopError.from(err).code)) return void fail(r, err);
    }
    const taken: LockSpec[] = [];
    held.held.set(r, taken);
    try {
      for (const s of sorted) {
        await takeLock(afr, ctx, r, s, true);
        taken.push(s);
      }
    } catch (err) {
      await held.releaseChild(r);
      held.failed.set(r, FopError.from(err, { xlator: afr.name, fop }));
      return void fail(r, err);
    }
    try {
      results.set(r, await op(r));
    } catch (err) {
      fail(r, err);
    }
  };
  await Promise.all([onRemote(), ...others.map(async (i) => {
    try {
      results.set(i, await op(i));
    } catch (err) {
      fail(i, err);
    }
  })]);
  return { held, outcome: { results, failed } };
}

/**
 * The child whose locks may ride on the fop (see runRiding): the one remote child, last in lock
 * order, when every other child is local and it understands riding locks (locks-first.ts).
 */
export function ridingChild(afr: Afr, among: readonly number[]): number | undefined {
  if (among.length < 2) return undefined;
  const remote = among.filter((i) => !afr.localChildren[i]);
  if (remote.length !== 1 || !afr.locksFirst[remote[0]!]) return undefined;
  const order = afr.lockOrder(among);
  return order[order.length - 1] === remote[0] ? remote[0] : undefined;
}

/** Nothing could be locked: the children's errno when they all gave the same (EACCES on a bad path), else ENOTCONN. */
export function lockFailure(afr: Afr, fop: string, held: HeldLocks): FopError {
  const codes = new Set([...held.failed.values()].map((e) => e.code));
  const only = codes.size === 1 ? held.failed.values().next().value : undefined;
  if (only && !CONTENTION.has(only.code)) return new FopError(only.code, only.message, { xlator: afr.name, fop });
  return afr.err("ENOTCONN", fop, "could not lock any subvolume");
}

export function bestError(afr: Afr, fop: string, failed: Map<number, FopError>): FopError {
  const errs = [...failed.values()];
  return errs.find((e) => e.code !== "ENOTCONN" && e.code !== "EBADF") ?? errs[0] ?? afr.err("ENOTCONN", fop, "no subvolume reachable");
}

async function changelogOp(afr: Afr, ctx: CallCtx, i: number, locs: Loc[], xattrs: Record<string, Buffer>, unlock?: HeldLocks): Promise<void> {
  if (Object.keys(xattrs).length === 0) return;
  for (let k = 0; k < locs.length; k++) {
    await afr.children[i]!.xattrop(ctx, locs[k]!, "add32", xattrs, k === locs.length - 1 ? unlockRiding(afr, i, unlock) : undefined);
  }
}

/** The wire form of lock specs (what rides in xdata). */
export function wireLocks(specs: LockSpec[]): FirstLock[] {
  return specs.map((s) => (s.kind === "inode"
    ? { kind: "inode", domain: s.domain, loc: s.loc, start: s.start, len: s.len }
    : { kind: "entry", domain: s.domain, loc: s.loc, basename: s.basename, type: s.type ?? "wr" }));
}

/**
 * xdata that releases child i's locks of `held` right after the fop it rides on (a post-op: one
 * request instead of post-op + unlock); they count as released from then on. Undefined when the
 * child's locks translator cannot (they are released the usual way). `owner`: the locks' owner,
 * when the fop carrying the unlock has another (a post-op riding on a flush).
 */
export function unlockRiding(afr: Afr, i: number, held: HeldLocks | undefined, owner?: string): Xdata | undefined {
  const specs = held?.held.get(i);
  if (!held || !specs || specs.length === 0 || !afr.locksFirst[i]) return undefined;
  held.held.delete(i);
  const locks = wireLocks([...specs].reverse());
  return { [LOCKS_AFTER_XDATA]: owner === undefined ? locks : locks.map((l) => ({ ...l, owner })) };
}

/** Runs one transaction; resolves to what each child returned, or rejects with the op's errno. */
export async function transaction<T>(afr: Afr, ctx: CallCtx, spec: TxnSpec<T>): Promise<TxnOutcome<T>> {
  const up = afr.upChildren();
  if (up.length === 0) throw afr.err("ENOTCONN", spec.fop, "no subvolume is up");
  if (!afr.hasQuorum(up)) throw afr.err("EROFS", spec.fop, "quorum not met");
  const ictx = afr.internalCtx(ctx);
  const lockKeys = spec.locks.map(specKey);
  const held = await lockAll(afr, ictx, spec.locks, up);
  let afterwards: (() => Promise<void>) | undefined;
  const unbusy = spec.changelog.map((l) => afr.after.markBusy(l.path));
  try {
    let locked = held.children;
    if (locked.length === 0 && spec.fdBased) locked = up;
    if (locked.length === 0) throw lockFailure(afr, spec.fop, held);
    if (!afr.hasQuorum(locked)) throw afr.err("EROFS", spec.fop, "quorum not met");
    // Keys fixed for the whole transaction, so post-op undoes exactly what pre-op added.
    const keys = afr.children.map((_, j) => afr.blameKey(j));
    const mark = (js: number[], n: number) => Object.fromEntries(js.map((j) => [keys[j]!, delta(spec.kind, n)]));
    const all = afr.children.map((_, j) => j);

    const failed = new Map<number, FopError>();
    const marked: number[] = [];
    const runnable: number[] = [];
    await Promise.all(locked.map(async (i) => {
      try {
        await changelogOp(afr, ictx, i, spec.changelog, mark(all, 1));
        marked.push(i);
        runnable.push(i);
      } catch (err) {
        const e = FopError.from(err, { xlator: afr.name, fop: spec.fop });
        if (spec.fdBased && e.code === "ENOENT") runnable.push(i);
        else failed.set(i, e);
      }
    }));
    const results = new Map<number, T>();
    await Promise.all(runnable.map(async (i) => {
      if (spec.targets && !spec.targets(i)) {
        failed.set(i, afr.err("EBADF", spec.fop, "not open on this subvolume"));
        return;
      }
      try {
        results.set(i, await spec.op(i));
      } catch (err) {
        failed.set(i, FopError.from(err, { xlator: afr.name, fop: spec.fop }));
      }
    }));
    const succeeded = [...results.keys()];
    const undo = succeeded.length > 0 ? succeeded : all;
    const postOp = () => Promise.all(marked.map(async (i) => {
      try {
        await changelogOp(afr, ictx, i, spec.changelog, mark(undo, -1), held);
      } catch (err) {
        afr.log.warn({ child: afr.children[i]!.name, fop: spec.fop, err: (err as Error).message }, "post-op failed; replica stays marked");
      }
    })).then(() => unbusy.forEach((f) => f()));
    const everywhere = succeeded.length === afr.children.length && marked.length === afr.children.length;
    if (everywhere) afterwards = postOp;
    else await postOp();
    // Blame stays on disk: heal it as soon as the replica that missed the op is back.
    if (succeeded.length > 0 && succeeded.length < afr.children.length) afr.daemon.notePending(spec.changelog.map((l) => l.path));
    if (succeeded.length === 0) throw bestError(afr, spec.fop, failed);
    if (failed.size > 0) {
      afr.log.debug({ fop: spec.fop, failed: [...failed].map(([i, e]) => `${afr.children[i]!.name}:${e.code}`) }, "op failed on some replicas");
    }
    if (afr.options["quorum-type"] !== "none" && !afr.hasQuorum(succeeded)) throw afr.err("EROFS", spec.fop, "succeeded on fewer replicas than the quorum");
    return { results, failed };
  } finally {
    const post = afterwards;
    afr.after.run(lockKeys, async () => {
      if (post) await post();
      await held.releaseAll();
    });
    if (!post) unbusy.forEach((f) => f());
  }
}

/** The result to hand up: the read child's if it succeeded, else any. */
export function firstResult<T>(out: TxnOutcome<T>, prefer?: number): T {
  if (prefer !== undefined && out.results.has(prefer)) return out.results.get(prefer)!;
  return out.results.values().next().value as T;
}
