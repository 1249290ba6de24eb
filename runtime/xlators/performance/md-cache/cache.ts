import { nameTooLong } from "../../../core/limits";
import { trimOldest } from "../../../core/lru";
import type { Iatt, Invalidation } from "../../../core/types";

/** One xattr as last seen: its value, or null when the file had none (ENODATA). */
export interface CachedXattr {
  value: Buffer | null;
  at: number;
}

/**
 * What is cached about one file (gfid): its attributes and xattrs, each with when it was seen. Kept
 * small (there may be tens of thousands): the usual answer for the policy's names, "none of them",
 * is one timestamp.
 */
class MdInode {
  iatt: Iatt | undefined = undefined;
  iattAt = 0;
  /** The epoch of the last local change: a fill that started before it may carry old data. */
  changedAt = 0;
  /** When the whole set of names a readdirplus/lookup asks for was read (0: never)... */
  setAt = 0;
  /** ...and the values of those the file has (undefined: none). */
  setValues: Record<string, Buffer> | undefined = undefined;
  /** Names read one at a time (getxattr). */
  single: Map<string, CachedXattr> | undefined = undefined;

  dropXattrs(): void {
    this.setAt = 0;
    this.setValues = undefined;
    this.single = undefined;
  }
}

interface NameEntry {
  /** "" (ABSENT): the name was looked up and does not exist. */
  gfid: string;
  at: number;
}

/**
 * Taken when a fop that may prime the cache is wound: its reply is cached only if nothing it
 * describes changed locally meanwhile (a lookup sent before a write must not re-cache the old size).
 */
export interface FillToken {
  epoch: number;
  nsEpoch: number;
}

/** The gfid of a name known not to exist. */
const ABSENT = "";

export function parentOf(path: string): string {
  const i = path.lastIndexOf("/");
  return i <= 0 ? "/" : path.slice(0, i);
}

export function childOf(dir: string, name: string): string {
  return dir === "/" ? `/${name}` : `${dir}/${name}`;
}

const baseOf = (path: string): string => path.slice(path.lastIndexOf("/") + 1);

/** Directories whose every name is known, at most (least recently changed first out)... */
const KNOWN_DIRS = 256;
/** ...each of at most this many names (a bigger one is no longer tracked). */
const KNOWN_DIR_NAMES = 65536;

/** A directory this client made and alone changed since: all its names (see MetadataCache.knownAbsent). */
interface KnownDir {
  names: Set<string>;
  at: number;
}

export interface CacheCounters {
  statHits: number;
  statMisses: number;
  xattrHits: number;
  xattrNegativeHits: number;
  xattrMisses: number;
  invalidations: number;
  evictions: number;
  staleFillsDropped: number;
  /** Lookups answered ENOENT because the directory's every name is known (knownAbsent). */
  knownAbsentHits: number;
}

/**
 * The data of performance/md-cache: attributes and xattrs by gfid, and path -> gfid, each entry
 * expiring `timeoutMs()` after it was seen, both maps bounded by `limit()` entries (least recently
 * used first out). Because attributes are kept by gfid, a change through one hard-link name is seen
 * through every other name.
 */
export class MetadataCache {
  private readonly inodes = new Map<string, MdInode>();
  private readonly names = new Map<string, NameEntry>();
  /** By path: directories whose every name is known (GlusterFS's nl-cache). */
  private readonly knownDirs = new Map<string, KnownDir>();
  /** Bumped by every local change of a file's attributes/xattrs. */
  private epoch = 0;
  /** Bumped by every local change of the namespace (what a path refers to). */
  private nsEpoch = 0;
  /** The newest changedAt among evicted inodes (a fill for a file no longer here must not predate it). */
  private evictedChangedAt = 0;
  /** The epoch of the last change another client made (upcall): fills that started before it are not cached. */
  private othersChangedAt = 0;
  readonly counters: CacheCounters = {
    statHits: 0, statMisses: 0, xattrHits: 0, xattrNegativeHits: 0, xattrMisses: 0,
    invalidations: 0, evictions: 0, staleFillsDropped: 0, knownAbsentHits: 0,
  };

  /** Whole milliseconds: small integers are stored inline, fractional ones cost a heap object each. */
  private readonly now: () => number;

  constructor(
    private readonly timeoutMs: () => number,
    private readonly limit: () => number,
    clock: () => number = () => performance.now(),
  ) {
    this.now = () => Math.floor(clock());
  }

  private fresh(at: number): boolean {
    return this.now() - at < this.timeoutMs();
  }

  /** Marks an inode most recently used. */
  private touch(gfid: string, inode: MdInode): void {
    this.inodes.delete(gfid);
    this.inodes.set(gfid, inode);
  }

  private inode(gfid: string): MdInode {
    return this.inodes.get(gfid) ?? this.added(gfid);
  }

  /** A new entry for the file (most recently used). */
  private added(gfid: string): MdInode {
    const inode = new MdInode();
    this.inodes.set(gfid, inode);
    this.shrink();
    return inode;
  }

  shrink(): void {
    const limit = this.limit();
    trimOldest(this.inodes, limit, (_gfid, inode) => {
      if (inode.changedAt > this.evictedChangedAt) this.evictedChangedAt = inode.changedAt;
      this.counters.evictions++;
    });
    trimOldest(this.names, limit);
  }

  beginFill(): FillToken {
    return { epoch: this.epoch, nsEpoch: this.nsEpoch };
  }

  /** Whether nothing invalidated the file whose entry is `inode` (undefined: it has none) since `since`. */
  private current(since: FillToken, inode: MdInode | undefined): boolean {
    return Math.max(inode ? inode.changedAt : this.evictedChangedAt, this.othersChangedAt) <= since.epoch;
  }

  /** current(), counting the fills it refuses. */
  private accepts(since: FillToken, inode: MdInode | undefined): boolean {
    const ok = this.current(since, inode);
    if (!ok) this.counters.staleFillsDropped++;
    return ok;
  }

  /** The file's entry a reply taken at `since` fills (made if new), or undefined when the reply is stale. */
  private toFill(gfid: string, since: FillToken): MdInode | undefined {
    const known = this.inodes.get(gfid);
    if (!this.accepts(since, known)) return undefined;
    return known ?? this.added(gfid);
  }

  /** Whether nothing has invalidated `gfid` since `since` (a fill taken then would be accepted). */
  unchangedSince(gfid: string, since: FillToken): boolean {
    return this.current(since, this.inodes.get(gfid));
  }

  /** The gfid a path was last seen to name, while fresh. */
  gfidOf(path: string): string | undefined {
    const n = this.freshName(path);
    return n === ABSENT ? undefined : n;
  }

  /** Whether a path was last seen to name nothing (ENOENT), while fresh. */
  isAbsent(path: string): boolean {
    return this.freshName(path) === ABSENT;
  }

  private freshName(path: string): string | undefined {
    const n = this.names.get(path);
    if (!n) return undefined;
    if (!this.fresh(n.at)) {
      this.names.delete(path);
      return undefined;
    }
    this.names.delete(path);
    this.names.set(path, n);
    return n.gfid;
  }

  /** The gfid a path named when last seen, however old (to know what a change invalidates). */
  lastGfidOf(path: string): string | undefined {
    const g = this.names.get(path)?.gfid;
    return g === ABSENT ? undefined : g;
  }

  /** A lookup found no such name (cached only if the namespace did not change while it ran). */
  primeAbsent(path: string, since: FillToken): boolean {
    if (since.nsEpoch !== this.nsEpoch || this.othersChangedAt > since.epoch) return false;
    this.setName(path, ABSENT);
    return true;
  }

  /** Fresh attributes of a file, counted as a hit or a miss. */
  statOf(gfid: string | undefined): Iatt | undefined {
    const inode = gfid === undefined ? undefined : this.inodes.get(gfid);
    if (inode?.iatt && this.fresh(inode.iattAt)) {
      this.counters.statHits++;
      this.touch(gfid!, inode);
      return inode.iatt;
    }
    this.counters.statMisses++;
    return undefined;
  }

  /**
   * A fresh cached xattr (value or known absence), counted as a hit or a miss. `inSet`: the name is
   * one of those primeXattrSet reads.
   */
  xattrOf(gfid: string | undefined, name: string, inSet: boolean): CachedXattr | undefined {
    const inode = gfid === undefined ? undefined : this.inodes.get(gfid);
    let x = inode?.single?.get(name);
    if (!(x && this.fresh(x.at)) && inode && inSet && inode.setAt > 0) x = { value: inode.setValues?.[name] ?? null, at: inode.setAt };
    if (x && this.fresh(x.at)) {
      if (x.value) this.counters.xattrHits++;
      else this.counters.xattrNegativeHits++;
      return x;
    }
    this.counters.xattrMisses++;
    return undefined;
  }

  /**
   * Attributes seen in a reply (path: the name they were found by, if any). `at`: when they were
   * seen, if the caller read the clock already (a listing primes every entry at one time).
   */
  primeStat(path: string | undefined, iatt: Iatt, since: FillToken, at = this.now()): void {
    if (path !== undefined && since.nsEpoch === this.nsEpoch) this.setName(path, iatt.gfid, at);
    const inode = this.inodes.get(iatt.gfid);
    if (!this.accepts(since, inode)) return;
    this.storeStat(iatt, at, inode);
  }

  /** The clock the entries are stamped with (for primeStat's `at`). */
  stamp(): number {
    return this.now();
  }

  /** Attributes a local change returned (they describe the file after it): always newest. */
  setStat(path: string | undefined, iatt: Iatt): void {
    if (path !== undefined) this.setName(path, iatt.gfid);
    this.storeStat(iatt, this.now(), this.inodes.get(iatt.gfid));
  }

  /** `known`: the file's entry (undefined when it has none yet). */
  private storeStat(iatt: Iatt, at: number, known: MdInode | undefined): void {
    const inode = known ?? this.added(iatt.gfid);
    if (known) this.touch(iatt.gfid, known);
    inode.iatt = iatt;
    inode.iattAt = at;
  }

  private setName(path: string, gfid: string, at = this.now()): void {
    const known = this.names.get(path);
    if (known) {
      // (most recently used last; the entry itself is reused)
      this.names.delete(path);
      known.gfid = gfid;
      known.at = at;
      this.names.set(path, known);
      return;
    }
    this.names.set(path, { gfid, at });
    if (this.names.size > this.limit()) this.shrink();
  }

  /**
   * The whole set of xattrs a readdirplus/lookup asked for (`present`: those the file has; every
   * other name of the set it has not). Values are copied: replies are views of whole frames.
   */
  primeXattrSet(gfid: string, present: Record<string, Buffer>, since: FillToken, at = this.now()): void {
    const inode = this.toFill(gfid, since);
    if (!inode) return;
    inode.setAt = at;
    inode.single = undefined;
    let values: Record<string, Buffer> | undefined;
    for (const [name, v] of Object.entries(present)) (values ??= {})[name] = Buffer.from(v);
    inode.setValues = values;
  }

  /** One xattr read on its own: its value, or null when the file has none. */
  primeXattr(gfid: string, name: string, value: Buffer | null, since: FillToken): void {
    const inode = this.toFill(gfid, since);
    if (!inode) return;
    (inode.single ??= new Map()).set(name, { value: value ? Buffer.from(value) : null, at: this.now() });
  }

  /** A local change of a file: drop its attributes (and xattrs unless only data changed). */
  invalidate(gfid: string | undefined, what: "all" | "stat" = "all"): void {
    if (gfid === undefined) return;
    this.counters.invalidations++;
    const inode = this.inode(gfid);
    inode.changedAt = ++this.epoch;
    inode.iatt = undefined;
    if (what === "all") inode.dropXattrs();
  }

  /** A local change of the namespace at `path`: what it names is no longer known. */
  forgetName(path: string): void {
    this.nsEpoch++;
    this.names.delete(path);
  }

  /** A directory renamed or removed: every name under it is unknown now. */
  forgetTree(path: string): void {
    this.forgetName(path);
    const prefix = path === "/" ? "/" : `${path}/`;
    for (const p of this.names.keys()) if (p.startsWith(prefix)) this.names.delete(p);
    this.forgetKnownDirs(path);
  }

  /**
   * A directory this client just made: it has no names yet, and while every change others make in it
   * is reported to us (the caller's condition) we know all the names it gets. A lookup of any other
   * name in it is then ENOENT without asking (knownAbsent): the kernel looks up every name before it
   * creates it, so an untar or a copy into a new directory saves a round trip per file.
   */
  knowNewDir(dir: string): void {
    this.knownDirs.delete(dir);
    this.knownDirs.set(dir, { names: new Set(), at: this.now() });
    if (this.knownDirs.size > KNOWN_DIRS) this.knownDirs.delete(this.knownDirs.keys().next().value as string);
  }

  /** This client made the name `path` (or failed to, `made` false: then the directory is no longer known). */
  madeName(path: string, made: boolean): void {
    const dir = parentOf(path);
    const known = this.knownDirs.get(dir);
    if (!known) return;
    if (!made || known.names.size >= KNOWN_DIR_NAMES) {
      this.knownDirs.delete(dir);
      return;
    }
    known.names.add(baseOf(path));
    known.at = this.now();
  }

  /** This client removed the name `path` (or may have: `removed` false drops what was known). */
  removedName(path: string, removed: boolean): void {
    this.forgetKnownDirs(path);
    const known = this.knownDirs.get(parentOf(path));
    if (!known) return;
    if (!removed) this.knownDirs.delete(parentOf(path));
    else known.names.delete(baseOf(path));
  }

  /** Whether `path` is not a name of a directory whose every name is known (and fresh). */
  knownAbsent(path: string): boolean {
    const known = this.knownDirs.get(parentOf(path));
    if (!known) return false;
    // a name or path too long is ENAMETOOLONG, not missing: the brick says which
    if (nameTooLong(path)) return false;
    if (!this.fresh(known.at)) {
      this.knownDirs.delete(parentOf(path));
      return false;
    }
    if (known.names.has(baseOf(path))) return false;
    this.counters.knownAbsentHits++;
    return true;
  }

  /** Forgets what was known of `path` and the directories under it. */
  private forgetKnownDirs(path: string): void {
    if (this.knownDirs.size === 0) return;
    this.knownDirs.delete(path);
    const prefix = path === "/" ? "/" : `${path}/`;
    for (const d of this.knownDirs.keys()) if (d.startsWith(prefix)) this.knownDirs.delete(d);
  }

  /**
   * Another client changed these (a server's upcall). Every fill in flight is dropped too: its reply
   * may have been read before the change, and what it describes is not known until it arrives.
   */
  othersChanged(change: Invalidation): void {
    if (change.all) return this.clear();
    this.othersChangedAt = ++this.epoch;
    this.nsEpoch++;
    const drop = (gfid: string | undefined) => {
      if (gfid !== undefined && this.inodes.has(gfid)) this.invalidate(gfid);
    };
    for (const g of change.gfids) drop(g);
    for (const p of change.paths) drop(this.lastGfidOf(p));
    for (const e of change.entries) {
      drop(this.lastGfidOf(e));
      this.forgetTree(e);
      this.knownDirs.delete(parentOf(e));
    }
    for (const p of change.paths) this.knownDirs.delete(p);
    if (change.links) for (const [g, inode] of this.inodes) if (inode.iatt && inode.iatt.nlink > 1) this.invalidate(g);
  }

  /** Forgets everything (a server went away or came back: anything may have changed). */
  clear(): void {
    // Every fill in flight started before this epoch: none of them is cached.
    this.othersChangedAt = ++this.epoch;
    this.evictedChangedAt = this.epoch;
    this.nsEpoch++;
    this.inodes.clear();
    this.names.clear();
    this.knownDirs.clear();
  }

  sizes(): { inodes: number; names: number; knownDirs: number } {
    return { inodes: this.inodes.size, names: this.names.size, knownDirs: this.knownDirs.size };
  }
}
