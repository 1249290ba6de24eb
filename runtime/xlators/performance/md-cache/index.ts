import { constants as fsc } from "node:fs";
import { FopError } from "../../../core/errors";
import { defineXlator, Xlator, type ReconfigureResult, type XlatorEvent, type XlatorInit } from "../../../core/xlator";
import {
  XDATA, type CallCtx, type DirEntry, type EntryRemoved, type Fd, type Flock, type Iatt, type Invalidation, type LkCmd, type Loc, type LookupResult, type SetattrArgs, type Xdata,
} from "../../../core/types";
import schema from "../../../../schema/xlators/performance/md-cache.json";
import { childOf, MetadataCache, parentOf } from "./cache";

export interface MdCacheOptions {
  timeout: number;
  "cache-invalidation": boolean;
  "invalidation-timeout": number;
  "lru-limit": number;
  "cache-selinux": boolean;
  "cache-capability-xattrs": boolean;
  "cache-posix-acl": boolean;
  "xattr-cache-list": string;
}

/** What md-cache keeps per open file: which file it is, and whether it was written through. */
interface MdFd {
  gfid: string | undefined;
  dirty: boolean;
}

const CAPABILITY = "security.capability";

const LIVE_OPTIONS = ["timeout", "cache-invalidation", "invalidation-timeout", "lru-limit", "cache-selinux", "cache-capability-xattrs", "cache-posix-acl", "xattr-cache-list"] as const;

/**
 * The inode number of a file, from its gfid (as GlusterFS's storage/posix makes it): the bricks'
 * own inode numbers differ between replicas, and the cache serves attributes that came from
 * different replicas (a create's reply, a directory listing, a lookup's read child); `stat` of the
 * same file must not show two numbers. The root's gfid (...0001) gives 1.
 */
export function inoFromGfid(gfid: string): number {
  const n = Number.parseInt(gfid.slice(-12), 16);
  return Number.isSafeInteger(n) && n > 0 ? n : 1;
}

export { childOf, parentOf } from "./cache";

/**
 * Which xattrs are cached: exact names fetched ahead (with readdirplus, and lookups that ask), names
 * cached once asked, and prefixes.
 */
class XattrPolicy {
  /** Fetched with every listed entry: what `ls -l` asks of each file. */
  readonly names: string[];
  /**
   * Cached once asked: security.capability, which the kernel asks before a file's writes, never for
   * a listing. Fetching it for every listed entry cost the brick a getxattr per entry (~15% of its
   * CPU in a tree walk) for files mostly never written; a write pays one fetch per file instead.
   */
  readonly onDemand: string[];
  private readonly prefixes: string[];
  constructor(o: MdCacheOptions) {
    const exact = new Set<string>();
    const prefixes: string[] = [];
    if (o["cache-selinux"]) exact.add("security.selinux");
    if (o["cache-posix-acl"]) {
      exact.add("system.posix_acl_access");
      exact.add("system.posix_acl_default");
    }
    for (const raw of o["xattr-cache-list"].split(",")) {
      const n = raw.trim();
      if (n.endsWith("*")) prefixes.push(n.slice(0, -1));
      else if (n) exact.add(n);
    }
    this.onDemand = o["cache-capability-xattrs"] && !exact.has(CAPABILITY) ? [CAPABILITY] : [];
    this.names = [...exact];
    this.prefixes = prefixes;
  }
  caches(name: string): boolean {
    return this.names.includes(name) || this.onDemand.includes(name) || this.prefixes.some((p) => name.startsWith(p));
  }
}

/**
 * performance/md-cache: answers the kernel's stream of attribute and xattr questions (a GETATTR per
 * path component and per listed file, security.selinux / system.posix_acl_access per `ls -l`,
 * security.capability before every write) from what recent lookups and readdirplus replies said
 * (security.capability: from the create, or from its first fetch), for up to `timeout` seconds.
 * Attributes are kept by gfid, so a change through one hard-link name shows through the others. Every change made through this client drops (or, where the reply
 * carries the new attributes, replaces) what it affects: the file, its parent directory, the names.
 * Changes made through other clients show once the entries expire, as with GlusterFS's md-cache —
 * or at once, when the servers report them (cache-invalidation: upcalls), and then entries are kept
 * for invalidation-timeout.
 */
export class MdCache extends Xlator {
  declare options: Record<string, unknown> & MdCacheOptions;
  private xattrPolicy: XattrPolicy;
  readonly cache: MetadataCache;
  /** Every server below reports others' changes (known at each connect/disconnect). */
  private upcallsDelivered = false;

  constructor(init: XlatorInit<MdCacheOptions>, now?: () => number) {
    super(init);
    this.xattrPolicy = new XattrPolicy(this.options);
    this.cache = new MetadataCache(() => this.timeoutSeconds() * 1000, () => this.options["lru-limit"], now);
  }

  /** How long entries are served: long while every change of others is reported to us. */
  private timeoutSeconds(): number {
    return this.upcallsDelivered && this.options.timeout > 0 ? this.options["invalidation-timeout"] : this.options.timeout;
  }

  override invalidationInterest(): number {
    return this.enabled && this.options["cache-invalidation"] ? this.options["invalidation-timeout"] : 0;
  }

  /** A server reported changes of another client: drop what they touched. */
  override othersChanged(change: Invalidation, from: Xlator): void {
    this.cache.othersChanged(change);
    super.othersChanged(change, from);
  }

  private get enabled(): boolean {
    return this.options.timeout > 0;
  }

  /** Gives a reply's attributes the gfid's inode number (see inoFromGfid); replies are ours to change. */
  private readonly stable = <T extends Iatt | undefined>(iatt: T): T => {
    if (iatt && this.enabled) iatt.ino = inoFromGfid(iatt.gfid);
    return iatt;
  };

  private err(code: string, fop: string, msg: string): FopError {
    return new FopError(code, msg, { xlator: this.name, fop });
  }

  /** The file a Loc names, if known (fresh). */
  private gfidOfLoc(loc: Loc): string | undefined {
    return loc.gfid ?? this.cache.gfidOf(loc.path);
  }

  /** The file a Loc named when last seen, for invalidation. */
  private lastGfidOfLoc(loc: Loc): string | undefined {
    return loc.gfid ?? this.cache.lastGfidOf(loc.path);
  }

  private fdState(fd: Fd): MdFd {
    let s = fd.get<MdFd>(this);
    if (!s) fd.set(this, (s = { gfid: fd.gfid ?? this.cache.lastGfidOf(fd.path), dirty: false }));
    return s;
  }

  /** The xattrs to fetch along with a lookup or readdirplus (and what the caller asked for). */
  private wantXattrs(xdata?: Xdata): Xdata {
    const asked = xdata?.[XDATA.wantXattrs];
    const names = Array.isArray(asked) ? [...new Set([...(asked as string[]), ...this.xattrPolicy.names])] : this.xattrPolicy.names;
    return { ...xdata, [XDATA.wantXattrs]: names };
  }

  /** Caches the policy's xattrs out of a reply that was asked for them (absent = the file has none). */
  private primeXattrs(stat: Iatt, xattrs: Record<string, Buffer> | undefined, since: ReturnType<MetadataCache["beginFill"]>, at?: number): void {
    if (!xattrs || typeof xattrs !== "object" || this.xattrPolicy.names.length === 0) return;
    // A server reads a symlink's xattrs through the link: not the link's own (lgetxattr) answers.
    if ((stat.mode & fsc.S_IFMT) === fsc.S_IFLNK) return;
    const present: Record<string, Buffer> = {};
    for (const n of this.xattrPolicy.names) if (xattrs[n]) present[n] = xattrs[n]!;
    this.cache.primeXattrSet(stat.gfid, present, since, at);
  }

  // ---- reads served from the cache ----

  override async lookup(ctx: CallCtx, loc: Loc, xdata?: Xdata): Promise<LookupResult> {
    if (!this.enabled) return this.child.lookup(ctx, loc, xdata);
    const plain = xdata === undefined || Object.keys(xdata).length === 0;
    if (plain) {
      const cached = this.cache.statOf(this.gfidOfLoc(loc));
      if (cached) return { stat: { ...cached } };
      // Names looked up and not found are kept only while others' creates are reported to us.
      if (this.upcallsDelivered && loc.gfid === undefined && (this.cache.isAbsent(loc.path) || this.cache.knownAbsent(loc.path))) {
        throw this.err("ENOENT", "lookup", `${loc.path}: no such file (cached)`);
      }
    }
    // xattrs are not fetched along: a lookup that asks for them costs cluster/afr a second lookup
    // (about 1 ms here), more than the probes it would save unless the file is listed with ls -l,
    // and listings come through readdirplus, which brings them.
    const since = this.cache.beginFill();
    let res: LookupResult;
    try {
      res = await this.child.lookup(ctx, loc, xdata);
      this.stable(res.stat);
    } catch (err) {
      if (err instanceof FopError && err.code === "ENOENT") {
        const kept = this.upcallsDelivered && plain && loc.gfid === undefined && this.cache.primeAbsent(loc.path, since);
        if (!kept) this.cache.forgetName(loc.path);
      }
      throw err;
    }
    this.cache.primeStat(loc.path, res.stat, since);
    if (plain) return { stat: res.stat };
    const asked = xdata?.[XDATA.wantXattrs];
    if (!Array.isArray(asked) || !res.xattrs) return { stat: res.stat };
    // a reply says which names are absent only among those asked for
    if (this.xattrPolicy.names.every((n) => asked.includes(n))) this.primeXattrs(res.stat, res.xattrs, since);
    const xattrs: Record<string, Buffer> = {};
    for (const n of asked as string[]) if (res.xattrs[n]) xattrs[n] = res.xattrs[n]!;
    return { stat: res.stat, xattrs };
  }

  override async stat(ctx: CallCtx, loc: Loc, xdata?: Xdata): Promise<Iatt> {
    if (!this.enabled || xdata) return this.child.stat(ctx, loc, xdata);
    return (await this.lookup(ctx, loc)).stat;
  }

  override async fstat(ctx: CallCtx, fd: Fd, xdata?: Xdata): Promise<Iatt> {
    if (!this.enabled || xdata) return this.child.fstat(ctx, fd, xdata);
    const s = this.fdState(fd);
    const cached = this.cache.statOf(s.gfid);
    if (cached) return { ...cached };
    const since = this.cache.beginFill();
    const iatt = this.stable(await this.child.fstat(ctx, fd));
    s.gfid = iatt.gfid;
    this.cache.primeStat(undefined, iatt, since);
    return iatt;
  }

  override async readdir(ctx: CallCtx, fd: Fd, offset: number, withStat: boolean, xdata?: Xdata): Promise<DirEntry[]> {
    if (!this.enabled || !withStat) return this.child.readdir(ctx, fd, offset, withStat, xdata);
    const since = this.cache.beginFill();
    const entries = await this.child.readdir(ctx, fd, offset, true, this.wantXattrs(xdata));
    const at = this.cache.stamp();
    for (const e of entries) {
      this.stable(e.stat);
      if (!e.stat || e.name === "..") continue;
      this.cache.primeStat(e.name === "." ? fd.path : childOf(fd.path, e.name), e.stat, since, at);
      this.primeXattrs(e.stat, e.xattrs, since, at);
    }
    return entries;
  }

  override async getxattr(ctx: CallCtx, loc: Loc, name: string, xdata?: Xdata): Promise<Buffer> {
    if (!this.enabled || xdata || !this.xattrPolicy.caches(name)) return this.child.getxattr(ctx, loc, name, xdata);
    const gfid = this.gfidOfLoc(loc);
    const hit = this.cache.xattrOf(gfid, name, this.xattrPolicy.names.includes(name));
    if (hit) {
      if (!hit.value) throw this.err("ENODATA", "getxattr", `${loc.path}: no ${name} (cached)`);
      return hit.value;
    }
    const since = this.cache.beginFill();
    try {
      const v = await this.child.getxattr(ctx, loc, name);
      if (gfid !== undefined) this.cache.primeXattr(gfid, name, v, since);
      return v;
    } catch (err) {
      if (gfid !== undefined && err instanceof FopError && err.code === "ENODATA") this.cache.primeXattr(gfid, name, null, since);
      throw err;
    }
  }

  // ---- changes: drop (or replace) what they affect ----

  /** Runs a change and then drops what it affected, also when it failed (it may have half happened). */
  private async changing<T>(op: () => Promise<T>, after: (result: T | undefined) => void): Promise<T> {
    let result: T | undefined;
    try {
      result = await op();
      return result;
    } finally {
      if (this.enabled) after(result);
    }
  }

  /** A name appeared or disappeared in a directory: its mtime/ctime (and nlink for directories) changed. */
  private entryChanged(path: string): void {
    this.cache.forgetName(path);
    this.cache.invalidate(this.cache.lastGfidOf(parentOf(path)), "stat");
  }

  /** Entry fops of ours in flight, by directory (see entryFop). */
  private readonly entryFopsIn = new Map<string, number>();

  /**
   * Runs a fop that makes or removes the entry `loc` (create, mknod, mkdir, symlink; unlink, rmdir).
   * The directory's attributes change with it: they are replaced by those the brick answered with
   * (postparent) when they are its latest — no other such fop of ours was under way in it and nothing
   * invalidated it since the fop began — and dropped otherwise. The kernel asks for them right after
   * (it drops a directory's attributes on every change in it): a round trip to the bricks per file
   * created or removed, otherwise.
   */
  private async entryFop<T>(loc: Loc, op: () => Promise<T>, postparentOf: (result: T) => Iatt | undefined,
    after: (result: T | undefined) => void): Promise<T> {
    const dir = parentOf(loc.path);
    this.entryFopsIn.set(dir, (this.entryFopsIn.get(dir) ?? 0) + 1);
    const since = this.cache.beginFill();
    let result: T | undefined;
    let done = false;
    try {
      result = await op();
      done = true;
      return result;
    } finally {
      const left = this.entryFopsIn.get(dir)! - 1;
      if (left === 0) this.entryFopsIn.delete(dir);
      else this.entryFopsIn.set(dir, left);
      const postparent = done ? postparentOf(result as T) : undefined;
      if (this.enabled) {
        const latest = postparent !== undefined && left === 0 && this.cache.unchangedSince(postparent.gfid, since);
        this.entryChanged(loc.path);
        if (latest) this.cache.setStat(dir, this.stable(postparent));
        after(done ? result : undefined);
      }
    }
  }

  /** An entry fop that makes `loc`: its answer (handed up without the directory's attributes) names the new file. */
  private makingEntry(loc: Loc, op: () => Promise<Iatt>, after: (iatt: Iatt | undefined) => void): Promise<Iatt> {
    return this.entryFop(loc, async () => this.stable(await op()), (iatt) => {
      const postparent = iatt.postparent;
      delete iatt.postparent;
      return postparent;
    }, (iatt) => {
      this.cache.madeName(loc.path, iatt !== undefined);
      // (only while others' changes are reported: they could add names to it unseen otherwise)
      if (iatt && (iatt.mode & fsc.S_IFMT) === fsc.S_IFDIR && this.upcallsDelivered) this.cache.knowNewDir(loc.path);
      after(iatt);
    });
  }

  override setattr(ctx: CallCtx, loc: Loc, attr: SetattrArgs, xdata?: Xdata): Promise<Iatt> {
    const before = this.lastGfidOfLoc(loc);
    // A mode change rewrites an access ACL too: drop xattrs as well.
    return this.changing(() => this.child.setattr(ctx, loc, attr, xdata).then(this.stable), (iatt) => {
      this.cache.invalidate(before);
      if (iatt) {
        this.cache.invalidate(iatt.gfid);
        this.cache.setStat(loc.path, iatt);
      }
    });
  }

  override fsetattr(ctx: CallCtx, fd: Fd, attr: SetattrArgs, xdata?: Xdata): Promise<Iatt> {
    const s = this.fdState(fd);
    return this.changing(() => this.child.fsetattr(ctx, fd, attr, xdata).then(this.stable), (iatt) => {
      this.cache.invalidate(s.gfid);
      if (iatt) {
        s.gfid = iatt.gfid;
        this.cache.invalidate(iatt.gfid);
        this.cache.setStat(undefined, iatt);
      }
    });
  }

  override write(ctx: CallCtx, fd: Fd, data: Buffer, offset: number, xdata?: Xdata): Promise<number> {
    const s = this.fdState(fd);
    s.dirty = true;
    return this.changing(() => this.child.write(ctx, fd, data, offset, xdata), () => this.cache.invalidate(s.gfid, "stat"));
  }

  override fallocate(ctx: CallCtx, fd: Fd, mode: number, offset: number, len: number, xdata?: Xdata): Promise<void> {
    const s = this.fdState(fd);
    s.dirty = true;
    return this.changing(() => this.child.fallocate(ctx, fd, mode, offset, len, xdata), () => this.cache.invalidate(s.gfid, "stat"));
  }

  /** Written data may land (write-behind) at flush/fsync/release: the server's mtime moves then. */
  private landed(fd: Fd): void {
    const s = fd.get<MdFd>(this);
    if (s?.dirty) this.cache.invalidate(s.gfid, "stat");
  }

  override flush(ctx: CallCtx, fd: Fd, xdata?: Xdata): Promise<void> {
    return this.changing(() => this.child.flush(ctx, fd, xdata), () => this.landed(fd));
  }

  override fsync(ctx: CallCtx, fd: Fd, datasync: boolean, xdata?: Xdata): Promise<void> {
    return this.changing(() => this.child.fsync(ctx, fd, datasync, xdata), () => this.landed(fd));
  }

  override async release(ctx: CallCtx, fd: Fd, xdata?: Xdata): Promise<void> {
    const s = fd.get<MdFd>(this);
    if (this.enabled && this.upcallsDelivered && s?.dirty && s.gfid !== undefined) {
      // What the writes made of the file, for the stats that follow (ls -l after cp): worth a round
      // trip here (the caller does not wait for a release) while entries are kept for minutes.
      this.landed(fd);
      const since = this.cache.beginFill();
      try {
        this.cache.primeStat(undefined, this.stable(await this.child.fstat(ctx, fd)), since);
        s.dirty = false;
      } catch {
        // the release goes on; the next stat asks the server
      }
    }
    return this.changing(() => this.child.release(ctx, fd, xdata), () => this.landed(fd));
  }

  /**
   * A granted lock is where another client's changes become visible (the lock holder before us
   * wrote under it): what was cached about the file before the grant must not answer after it, or a
   * locked read-modify-write reads a stale size and loses updates (test/faults/concurrency.test.ts).
   */
  override async lk(ctx: CallCtx, fd: Fd, cmd: LkCmd, lock: Flock, xdata?: Xdata): Promise<Flock> {
    const r = await this.child.lk(ctx, fd, cmd, lock, xdata);
    if (this.enabled && cmd !== "getlk" && lock.type !== "un") this.cache.invalidate(this.fdState(fd).gfid, "stat");
    return r;
  }

  override async flock(ctx: CallCtx, fd: Fd, op: "sh" | "ex" | "un", nonblock: boolean, xdata?: Xdata): Promise<void> {
    await this.child.flock(ctx, fd, op, nonblock, xdata);
    if (this.enabled && op !== "un") this.cache.invalidate(this.fdState(fd).gfid, "stat");
  }

  override async open(ctx: CallCtx, loc: Loc, flags: number, fd: Fd, xdata?: Xdata): Promise<void> {
    const s = this.fdState(fd);
    s.gfid = this.lastGfidOfLoc(loc) ?? s.gfid;
    try {
      await this.changing(() => this.child.open(ctx, loc, flags, fd, xdata), () => {
        if (flags & fsc.O_TRUNC) this.cache.invalidate(s.gfid, "stat");
      });
    } catch (err) {
      // The name is another file's now (its change has not been reported yet): the kernel looks it
      // up again, and that lookup must ask the bricks.
      if (err instanceof FopError && err.code === "ESTALE") this.cache.forgetName(loc.path);
      throw err;
    }
    // Writes must find the file's other names: learn which file this is (rare: the kernel looks a
    // path up before opening it, which primes the name).
    if (this.enabled && s.gfid === undefined) s.gfid = (await this.lookup(ctx, loc).catch(() => undefined))?.stat.gfid;
  }

  override create(ctx: CallCtx, loc: Loc, flags: number, mode: number, fd: Fd, xdata?: Xdata): Promise<Iatt> {
    const before = this.lastGfidOfLoc(loc);
    return this.makingEntry(loc, () => this.child.create(ctx, loc, flags, mode, fd, xdata), (iatt) => {
      this.cache.invalidate(before, "stat");
      if (iatt) {
        this.fdState(fd).gfid = iatt.gfid;
        this.cache.setStat(loc.path, iatt);
        // The kernel asks for security.capability before every write (to drop it). The kernel sends
        // CREATE for a name it found free, and a new file never starts with capabilities (only an
        // explicit setxattr gives them; ACLs and SELinux labels may be inherited, so not those).
        if (this.xattrPolicy.caches(CAPABILITY)) this.cache.primeXattr(iatt.gfid, CAPABILITY, null, this.cache.beginFill());
      }
    });
  }

  private newEntry(loc: Loc, op: () => Promise<Iatt>): Promise<Iatt> {
    return this.makingEntry(loc, op, (iatt) => {
      if (iatt) this.cache.setStat(loc.path, iatt);
    });
  }

  override mknod(ctx: CallCtx, loc: Loc, mode: number, rdev: number, xdata?: Xdata): Promise<Iatt> {
    return this.newEntry(loc, () => this.child.mknod(ctx, loc, mode, rdev, xdata));
  }

  override mkdir(ctx: CallCtx, loc: Loc, mode: number, xdata?: Xdata): Promise<Iatt> {
    return this.newEntry(loc, () => this.child.mkdir(ctx, loc, mode, xdata));
  }

  override symlink(ctx: CallCtx, target: string, loc: Loc, xdata?: Xdata): Promise<Iatt> {
    return this.newEntry(loc, () => this.child.symlink(ctx, target, loc, xdata));
  }

  override link(ctx: CallCtx, from: Loc, to: Loc, xdata?: Xdata): Promise<Iatt> {
    const file = this.lastGfidOfLoc(from);
    return this.changing(() => this.child.link(ctx, from, to, xdata).then(this.stable), (iatt) => {
      // nlink and ctime of the file change for every name it has
      this.cache.invalidate(file, "stat");
      this.entryChanged(to.path);
      this.cache.madeName(to.path, iatt !== undefined);
      if (iatt) {
        this.cache.invalidate(iatt.gfid, "stat");
        this.cache.setStat(to.path, iatt);
      }
    });
  }

  override unlink(ctx: CallCtx, loc: Loc, xdata?: Xdata): Promise<EntryRemoved | undefined> {
    const file = this.lastGfidOfLoc(loc);
    return this.entryFop(loc, () => this.child.unlink(ctx, loc, xdata), (r) => r?.postparent, (r) => {
      this.cache.invalidate(file, "stat"); // other hard links: nlink
      this.cache.removedName(loc.path, r !== undefined);
    });
  }

  override rmdir(ctx: CallCtx, loc: Loc, xdata?: Xdata): Promise<EntryRemoved | undefined> {
    const dir = this.lastGfidOfLoc(loc);
    return this.entryFop(loc, () => this.child.rmdir(ctx, loc, xdata), (r) => r?.postparent, (r) => {
      this.cache.invalidate(dir);
      this.cache.forgetTree(loc.path);
      this.cache.removedName(loc.path, r !== undefined);
    });
  }

  override rename(ctx: CallCtx, from: Loc, to: Loc, xdata?: Xdata): Promise<void> {
    const moved = this.lastGfidOfLoc(from);
    const replaced = this.lastGfidOfLoc(to);
    let done = false;
    return this.changing(() => this.child.rename(ctx, from, to, xdata).then(() => void (done = true)), () => {
      this.cache.invalidate(moved, "stat");
      this.cache.invalidate(replaced, "stat");
      this.cache.forgetTree(from.path);
      this.cache.forgetTree(to.path);
      this.entryChanged(from.path);
      this.entryChanged(to.path);
      this.cache.removedName(from.path, done);
      this.cache.madeName(to.path, done);
    });
  }

  override setxattr(ctx: CallCtx, loc: Loc, name: string, value: Buffer, flags: number, xdata?: Xdata): Promise<void> {
    const file = this.lastGfidOfLoc(loc);
    // An ACL xattr changes the mode too; any xattr changes ctime.
    return this.changing(() => this.child.setxattr(ctx, loc, name, value, flags, xdata), () => this.cache.invalidate(file));
  }

  override removexattr(ctx: CallCtx, loc: Loc, name: string, xdata?: Xdata): Promise<void> {
    const file = this.lastGfidOfLoc(loc);
    return this.changing(() => this.child.removexattr(ctx, loc, name, xdata), () => this.cache.invalidate(file));
  }

  // ---- management ----

  /** A server went away or came back: what it said before may no longer hold. */
  override notify(event: XlatorEvent, from: Xlator): void {
    this.cache.clear();
    this.upcallsDelivered = this.options["cache-invalidation"] && this.invalidationsDelivered();
    super.notify(event, from);
  }

  override reconfigure(options: Record<string, unknown>): ReconfigureResult {
    const applied: string[] = [];
    for (const k of LIVE_OPTIONS) {
      if (options[k] !== undefined && options[k] !== this.options[k]) {
        (this.options as Record<string, unknown>)[k] = options[k];
        applied.push(k);
      }
    }
    this.xattrPolicy = new XattrPolicy(this.options);
    // Servers asked for upcalls at connect: turning it on takes effect at the next connection.
    this.upcallsDelivered = this.options["cache-invalidation"] && this.invalidationsDelivered();
    if (applied.length > 0) this.cache.clear();
    this.cache.shrink();
    return { applied, needsRestart: [] };
  }

  override dump(): Record<string, unknown> {
    const c = this.cache.counters;
    const rate = (hit: number, miss: number) => (hit + miss === 0 ? null : Number((hit / (hit + miss)).toFixed(3)));
    return {
      options: { ...this.options },
      upcallsDelivered: this.upcallsDelivered,
      servingFor: this.timeoutSeconds(),
      cachedXattrs: [...this.xattrPolicy.names, ...this.xattrPolicy.onDemand],
      ...this.cache.sizes(),
      ...c,
      statHitRate: rate(c.statHits, c.statMisses),
      xattrHitRate: rate(c.xattrHits + c.xattrNegativeHits, c.xattrMisses),
    };
  }
}

export default defineXlator<MdCacheOptions>({
  type: "performance/md-cache",
  schema,
  children: { min: 1, max: 1 },
  init: (init) => new MdCache(init),
});
