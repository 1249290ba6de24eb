import { FopError } from "../../../core/errors";
import { XDATA, type CallCtx, type EntrylkCmd, type EntryRemoved, type Fd, type Flock, type Iatt, type LkCmd, type Loc, type Xdata } from "../../../core/types";
import { Xlator, type XlatorInit } from "../../../core/xlator";
import { LockTables, type HeldLock, type LockTableKind } from "./lock-table";
import { rangeKind, subtractRange, type RangeLock } from "./ranges";
import { CHANGELOG_XDATA, LOCKS_AFTER_XDATA, LOCKS_FIRST_XATTR, LOCKS_FIRST_XDATA, type FirstLock } from "./locks-first";

export interface PosixLocksOptions {
  mandatory: boolean;
  "mandatory-locks": boolean;
}

interface FlockLock extends HeldLock {
  type: "sh" | "ex";
  fdId: number;
}

interface EntryLock extends HeldLock {
  type: "rd" | "wr";
  /** null: the whole directory. */
  name: string | null;
  lkOwner: string;
}

const flockKind: LockTableKind<FlockLock> = {
  conflicts: (a, b) => a.type === "ex" || b.type === "ex",
  place: (granted, lock) => [...granted, lock],
  fair: false,
};

const entryKind: LockTableKind<EntryLock> = {
  conflicts: (a, b) => (a.name === null || b.name === null || a.name === b.name) && (a.type === "wr" || b.type === "wr"),
  place: (granted, lock) => [...granted, lock],
  fair: true,
};

/** Where this translator keeps per-fd state: the inode its flock lives on. */
interface LocksFd {
  flockKey?: string;
}

const SEP = "\u0000";

/**
 * features/posix-locks: fcntl byte-range locks, flock, and the internal inodelk/entrylk domains.
 * Lock owner = (ctx.client, lock.owner || ctx.lkOwner); flock's owner is the fd (BSD semantics).
 * Locks are keyed by the inode's gfid (fd.gfid / loc.gfid, else looked up through the child), so
 * every name of an inode shares its locks.
 *
 * `releaseClient(client)` drops every lock of a connection and wakes the waiters; protocol/server
 * calls it when a connection goes.
 */
export class PosixLocks extends Xlator {
  private readonly fcntl = new LockTables<RangeLock>(rangeKind(false));
  private readonly flocks = new LockTables<FlockLock>(flockKind);
  /** Keyed `${domain}\0${gfid}`. */
  private readonly inodelks = new LockTables<RangeLock>(rangeKind(true));
  /** Keyed `${domain}\0${directory gfid}`. */
  private readonly entrylks = new LockTables<EntryLock>(entryKind);
  /** The last name each locked gfid was reached by (statedump shows paths, not just gfids). */
  private readonly names = new Map<string, string>();

  constructor(init: XlatorInit<PosixLocksOptions>) {
    super(init);
    if (init.children.length !== 1) throw this.configError("features/posix-locks needs exactly one subvolume");
  }

  // ---- helpers ----

  private fail(code: string, fop: string, msg: string): FopError {
    return new FopError(code, msg, { xlator: this.name, fop });
  }

  private static owner(ctx: CallCtx, lkOwner?: string): { owner: string; client: string; lkOwner: string } {
    const client = String(ctx.client ?? "");
    const lk = lkOwner || String(ctx.lkOwner ?? "");
    return { owner: `${client}${SEP}${lk}`, client, lkOwner: lk };
  }

  private async fdKey(ctx: CallCtx, fd: Fd): Promise<string> {
    return this.noteName(fd.gfid ?? (await this.child.fstat(ctx, fd)).gfid, fd.path);
  }

  private async locKey(ctx: CallCtx, loc: Loc): Promise<string> {
    return this.noteName(loc.gfid ?? (await this.child.stat(ctx, loc)).gfid, loc.path);
  }

  private noteName(gfid: string, path: string): string {
    if (this.names.size >= 4096) this.pruneNames();
    this.names.set(gfid, path);
    return gfid;
  }

  /** Keeps only the names of gfids some table still holds; returns gfid -> path of those. */
  private pruneNames(): Record<string, string> {
    const live = new Set<string>();
    for (const t of [this.fcntl, this.flocks, this.inodelks, this.entrylks] as LockTables<HeldLock>[]) {
      for (const key of t.tables.keys()) live.add(key.includes(SEP) ? key.split(SEP)[1]! : key);
    }
    const out: Record<string, string> = {};
    for (const [gfid, path] of this.names) {
      if (live.has(gfid)) out[gfid] = path;
      else this.names.delete(gfid);
    }
    return out;
  }

  private rangeOf(lock: Flock, fop: string): { start: number; end: number } {
    const { start, len } = lock;
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(len) || start < 0 || len < 0) {
      throw this.fail("EINVAL", fop, `bad lock range start=${String(start)} len=${String(len)}`);
    }
    if (!["rd", "wr", "un"].includes(lock.type)) throw this.fail("EINVAL", fop, `bad lock type ${String(lock.type)}`);
    return { start, end: len === 0 ? Infinity : start + len - 1 };
  }

  private static toFlock(l: RangeLock): Flock {
    return { type: l.type, start: l.start, len: l.end === Infinity ? 0 : l.end - l.start + 1, pid: l.pid, owner: l.lkOwner };
  }

  /** getlk / setlk / setlkw on a range table (shared by lk and inodelk). */
  private async rangeOp(tables: LockTables<RangeLock>, key: string, ctx: CallCtx, cmd: LkCmd, lock: Flock, fop: string): Promise<Flock> {
    const { start, end } = this.rangeOf(lock, fop);
    const who = PosixLocks.owner(ctx, lock.owner);
    const mine: RangeLock = { ...who, type: lock.type === "un" ? "rd" : lock.type, start, end, pid: lock.pid ?? ctx.pid };
    if (cmd === "getlk") {
      const c = tables.peek(key)?.firstConflict(lock.type === "un" ? { ...mine, type: "rd" } : mine);
      return c ? PosixLocks.toFlock(c) : { ...lock, type: "un" };
    }
    if (cmd !== "setlk" && cmd !== "setlkw") throw this.fail("EINVAL", fop, `bad lock command ${String(cmd)}`);
    if (lock.type === "un") {
      const t = tables.peek(key);
      t?.update((g) => subtractRange(g, who.owner, start, end));
      tables.tidy(key);
      return { ...lock, owner: who.lkOwner };
    }
    await tables.get(key).acquire(mine, cmd === "setlkw", "EAGAIN", { xlator: this.name, fop });
    return { ...lock, owner: who.lkOwner };
  }

  // ---- fcntl locks ----

  override async lk(ctx: CallCtx, fd: Fd, cmd: LkCmd, lock: Flock): Promise<Flock> {
    return this.rangeOp(this.fcntl, await this.fdKey(ctx, fd), ctx, cmd, lock, "lk");
  }

  /** close(2) semantics: any close of the file drops that owner's fcntl locks on it. */
  override flush(ctx: CallCtx, fd: Fd, xdata?: Xdata): Promise<void> {
    return this.locksFirst(ctx, xdata, async (x) => {
      const { counters, rest } = this.splitChangelog(x, "flush");
      if (!counters) return this.flushOwnersLocks(ctx, fd, rest);
      try {
        // (storage/posix adds them as xattrop would: the fd names the file)
        await this.flushOwnersLocks(ctx, fd, { ...rest, [XDATA.flushXattrop]: counters });
      } catch (err) {
        // A file unlinked (or renamed) while open has no marks to take back under its name: the
        // close still succeeds, as with the post-op of its own that it replaces.
        const code = FopError.from(err).code;
        if (code !== "ENOENT" && code !== "ESTALE") throw err;
        this.log.debug({ path: fd.path, code }, "post-op riding on a flush: the file's name is gone");
      }
    });
  }

  /** The changelog counters a fop carries (CHANGELOG_XDATA), checked, and the rest of its xdata. */
  private splitChangelog(x: Xdata | undefined, fop: string): { counters?: Record<string, Buffer>; rest?: Xdata } {
    const v = x?.[CHANGELOG_XDATA];
    if (v === undefined) return { rest: x };
    if (v === null || typeof v !== "object" || Array.isArray(v) || Buffer.isBuffer(v)) {
      throw this.fail("EINVAL", fop, `${CHANGELOG_XDATA}: expected counters by xattr name`);
    }
    const rest: Xdata = { ...x };
    delete rest[CHANGELOG_XDATA];
    return { counters: v as Record<string, Buffer>, rest: Object.keys(rest).length > 0 ? rest : undefined };
  }

  private async flushOwnersLocks(ctx: CallCtx, fd: Fd, xdata?: Xdata): Promise<void> {
    if (this.fcntl.tables.size > 0) {
      const key = fd.gfid ?? (await this.child.fstat(ctx, fd).then((s) => s.gfid, () => undefined));
      const t = key === undefined ? undefined : this.fcntl.peek(key);
      if (t && key !== undefined) {
        const { owner } = PosixLocks.owner(ctx);
        t.update((g) => g.filter((l) => l.owner !== owner));
        this.fcntl.tidy(key);
      }
    }
    return this.child.flush(ctx, fd, xdata);
  }

  // ---- flock ----

  override async flock(ctx: CallCtx, fd: Fd, op: "sh" | "ex" | "un", nonblock: boolean): Promise<void> {
    if (op !== "sh" && op !== "ex" && op !== "un") throw this.fail("EINVAL", "flock", `bad flock op ${String(op)}`);
    const key = await this.fdKey(ctx, fd);
    const owner = `fd:${fd.id}`;
    // conversion is not atomic (as on Linux): the old lock goes first, then the new one is sought
    const held = this.flocks.peek(key);
    held?.update((g) => g.filter((l) => l.owner !== owner));
    if (op === "un") {
      this.flocks.tidy(key);
      return;
    }
    const state = fd.get<LocksFd>(this) ?? {};
    state.flockKey = key;
    fd.set(this, state);
    await this.flocks.get(key).acquire({ owner, client: String(ctx.client ?? ""), type: op, fdId: fd.id }, !nonblock, "EWOULDBLOCK", { xlator: this.name, fop: "flock" });
  }

  /** The last close of an fd drops its flock (and any flock it is still waiting for). */
  override async release(ctx: CallCtx, fd: Fd, xdata?: Xdata): Promise<void> {
    const key = fd.get<LocksFd>(this)?.flockKey;
    if (key !== undefined) {
      const t = this.flocks.peek(key);
      const owner = `fd:${fd.id}`;
      t?.cancel((l) => l.owner === owner, this.fail("EBADF", "flock", "fd released while waiting"));
      t?.update((g) => g.filter((l) => l.owner !== owner));
      this.flocks.tidy(key);
      fd.ctx.delete(this);
    }
    return this.child.release(ctx, fd, xdata);
  }

  // ---- internal locks ----

  override async inodelk(ctx: CallCtx, domain: string, loc: Loc, cmd: LkCmd, lock: Flock): Promise<Flock> {
    if (typeof domain !== "string") throw this.fail("EINVAL", "inodelk", "domain must be a string");
    const key = `${domain}${SEP}${await this.locKey(ctx, loc)}`;
    return this.rangeOp(this.inodelks, key, ctx, cmd, lock, "inodelk");
  }

  override async entrylk(ctx: CallCtx, domain: string, loc: Loc, basename: string | null, cmd: EntrylkCmd, type: "rd" | "wr"): Promise<void> {
    if (typeof domain !== "string") throw this.fail("EINVAL", "entrylk", "domain must be a string");
    if (type !== "rd" && type !== "wr") throw this.fail("EINVAL", "entrylk", `bad entrylk type ${String(type)}`);
    const name = basename ?? null;
    const key = `${domain}${SEP}${await this.locKey(ctx, loc)}`;
    const who = PosixLocks.owner(ctx);
    if (cmd === "unlock") {
      const t = this.entrylks.peek(key);
      t?.update((g) => {
        const i = g.findIndex((l) => l.owner === who.owner && l.name === name);
        return i < 0 ? g : [...g.slice(0, i), ...g.slice(i + 1)];
      });
      this.entrylks.tidy(key);
      return;
    }
    if (cmd !== "lock" && cmd !== "lock_nb") throw this.fail("EINVAL", "entrylk", `bad entrylk command ${String(cmd)}`);
    await this.entrylks.get(key).acquire({ ...who, type, name }, cmd === "lock", "EAGAIN", { xlator: this.name, fop: "entrylk" });
  }

  // ---- locks that ride on a fop (locks-first.ts) ----

  private async takeFirst(base: CallCtx, l: FirstLock): Promise<void> {
    const ctx = l.owner !== undefined ? { ...base, lkOwner: l.owner } : base;
    if (l.kind === "inode") await this.inodelk(ctx, l.domain, l.loc, "setlk", { type: "wr", start: l.start, len: l.len, pid: ctx.pid });
    else await this.entrylk(ctx, l.domain, l.loc, l.basename, "lock_nb", l.type);
  }

  private async dropFirst(base: CallCtx, l: FirstLock): Promise<void> {
    const ctx = l.owner !== undefined ? { ...base, lkOwner: l.owner } : base;
    try {
      if (l.kind === "inode") await this.inodelk(ctx, l.domain, l.loc, "setlk", { type: "un", start: l.start, len: l.len, pid: ctx.pid });
      else await this.entrylk(ctx, l.domain, l.loc, l.basename, "unlock", l.type);
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, "releasing a fop's locks failed");
    }
  }

  /**
   * Runs `fop` after taking the locks its xdata asks for (all or none, never waiting; they stay held
   * only if it succeeds), and releases the ones it lists for after (locks-first.ts).
   */
  private async locksFirst<T>(ctx: CallCtx, xdata: Xdata | undefined, fop: (xdata: Xdata | undefined) => Promise<T>): Promise<T> {
    const wanted = xdata?.[LOCKS_FIRST_XDATA] as FirstLock[] | undefined;
    const after = xdata?.[LOCKS_AFTER_XDATA] as FirstLock[] | undefined;
    if (wanted === undefined && after === undefined) return fop(xdata);
    const valid = (ls: unknown): ls is FirstLock[] => Array.isArray(ls) &&
      ls.every((l) => (l?.kind === "inode" || l?.kind === "entry") && (l.owner === undefined || typeof l.owner === "string"));
    if ((wanted !== undefined && !valid(wanted)) || (after !== undefined && !valid(after))) {
      throw this.fail("EINVAL", "locks-first", "expected a list of inode or entry locks");
    }
    const rest: Xdata = { ...xdata };
    delete rest[LOCKS_FIRST_XDATA];
    delete rest[LOCKS_AFTER_XDATA];
    const taken: FirstLock[] = [];
    try {
      try {
        for (const l of wanted ?? []) {
          await this.takeFirst(ctx, l);
          taken.push(l);
        }
        return await fop(Object.keys(rest).length > 0 ? rest : undefined);
      } catch (err) {
        for (const l of taken.reverse()) await this.dropFirst(ctx, l);
        throw err;
      }
    } finally {
      for (const l of after ?? []) await this.dropFirst(ctx, l);
    }
  }

  override getxattr(ctx: CallCtx, loc: Loc, name: string, xdata?: Xdata): Promise<Buffer> {
    if (name === LOCKS_FIRST_XATTR) return Promise.resolve(Buffer.from("1"));
    return this.child.getxattr(ctx, loc, name, xdata);
  }
  override xattrop(ctx: CallCtx, loc: Loc, op: "add32", xattrs: Record<string, Buffer>, xdata?: Xdata): Promise<Record<string, Buffer>> {
    return this.locksFirst(ctx, xdata, (x) => this.child.xattrop(ctx, loc, op, xattrs, x));
  }
  /**
   * A create may carry changelog counters for the file it makes (CHANGELOG_XDATA: a replica's first
   * pre-op, with the file's data lock riding in LOCKS_FIRST_XDATA under the gfid it asks for): the
   * file gets them as it is made (storage/posix's XDATA.initialXattrs), and only if this create made
   * it (a create without O_EXCL of a name taken opens that file, which gets nothing).
   */
  override create(ctx: CallCtx, loc: Loc, flags: number, mode: number, fd: Fd, xdata?: Xdata): Promise<Iatt> {
    return this.locksFirst(ctx, xdata, (x) => {
      const { counters, rest } = this.splitChangelog(x, "create");
      return this.child.create(ctx, loc, flags, mode, fd, counters ? { ...rest, [XDATA.initialXattrs]: counters } : rest);
    });
  }
  override mknod(ctx: CallCtx, loc: Loc, mode: number, rdev: number, xdata?: Xdata): Promise<Iatt> {
    return this.locksFirst(ctx, xdata, (x) => this.child.mknod(ctx, loc, mode, rdev, x));
  }
  override mkdir(ctx: CallCtx, loc: Loc, mode: number, xdata?: Xdata): Promise<Iatt> {
    return this.locksFirst(ctx, xdata, (x) => this.child.mkdir(ctx, loc, mode, x));
  }
  override symlink(ctx: CallCtx, target: string, loc: Loc, xdata?: Xdata): Promise<Iatt> {
    return this.locksFirst(ctx, xdata, (x) => this.child.symlink(ctx, target, loc, x));
  }
  override link(ctx: CallCtx, from: Loc, to: Loc, xdata?: Xdata): Promise<Iatt> {
    return this.locksFirst(ctx, xdata, (x) => this.child.link(ctx, from, to, x));
  }
  override unlink(ctx: CallCtx, loc: Loc, xdata?: Xdata): Promise<EntryRemoved | undefined> {
    return this.locksFirst(ctx, xdata, (x) => this.child.unlink(ctx, loc, x));
  }
  override rmdir(ctx: CallCtx, loc: Loc, xdata?: Xdata): Promise<EntryRemoved | undefined> {
    return this.locksFirst(ctx, xdata, (x) => this.child.rmdir(ctx, loc, x));
  }
  override rename(ctx: CallCtx, from: Loc, to: Loc, xdata?: Xdata): Promise<void> {
    return this.locksFirst(ctx, xdata, (x) => this.child.rename(ctx, from, to, x));
  }

  // ---- connections ----

  /**
   * Drops every lock (fcntl, flock, inodelk, entrylk) held or awaited by `client` and wakes the
   * waiters that can now go. protocol/server calls it when a client connection drops.
   * Resolves to how many locks and waiters went.
   */
  releaseClient(client: string): number {
    const gone = this.fail("ENOTCONN", "lk", `client ${client} disconnected`);
    const mine = (l: HeldLock) => l.client === client;
    return this.fcntl.dropAll(mine, gone) + this.flocks.dropAll(mine, gone) + this.inodelks.dropAll(mine, gone) + this.entrylks.dropAll(mine, gone);
  }

  override async stop(): Promise<void> {
    const gone = this.fail("ENOTCONN", "lk", "translator stopped");
    for (const t of [this.fcntl, this.flocks, this.inodelks, this.entrylks] as LockTables<HeldLock>[]) t.dropAll(() => true, gone);
  }

  override reconfigure(options: Record<string, unknown>): { applied: string[]; needsRestart: string[] } {
    // mandatory locking is accepted for compatibility and not enforced: nothing to re-read
    const changed = Object.keys(options).filter((k) => JSON.stringify(options[k]) !== JSON.stringify(this.options[k]));
    this.options = { ...this.options, ...options };
    return { applied: changed, needsRestart: [] };
  }

  override dump(): Record<string, unknown> {
    const range = (l: RangeLock) => ({ client: l.client, owner: l.lkOwner, type: l.type, start: l.start, end: l.end === Infinity ? "eof" : l.end, pid: l.pid });
    const byKey = <L extends HeldLock>(tables: LockTables<L>, show: (l: L) => unknown, split: boolean) => {
      const out: Record<string, Record<string, unknown>> = {};
      for (const [key, t] of tables.tables) {
        const [domain, inode] = split ? key.split(SEP) : ["", key];
        (out[domain!] ??= {})[inode!] = t.dump(show);
      }
      return split ? out : out[""] ?? {};
    };
    return {
      fcntl: byKey(this.fcntl, range, false),
      flock: byKey(this.flocks, (l) => ({ client: l.client, fd: l.fdId, type: l.type }), false),
      inodelk: byKey(this.inodelks, range, true),
      entrylk: byKey(this.entrylks, (l) => ({ client: l.client, owner: l.lkOwner, type: l.type, name: l.name }), true),
      paths: this.pruneNames(),
    };
  }
}
